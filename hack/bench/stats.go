package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// result summarizes one candidate's samples, in milliseconds.
type result struct {
	Name   string  `json:"name"`
	N      int     `json:"n"`
	Median float64 `json:"median_ms"`
	P90    float64 `json:"p90_ms"`
	Min    float64 `json:"min_ms"`
	Mean   float64 `json:"mean_ms"`
}

func summarize(name string, samples []time.Duration) result {
	ms := make([]float64, len(samples))
	var sum float64
	for i, d := range samples {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	sort.Float64s(ms)
	return result{
		Name: name, N: len(ms),
		Median: quantile(ms, 0.5), P90: quantile(ms, 0.9),
		Min: ms[0], Mean: sum / float64(len(ms)),
	}
}

// quantile interpolates linearly between the closest ranks of sorted xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 1 {
		return xs[0]
	}
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	if lo >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[lo] + (pos-float64(lo))*(xs[lo+1]-xs[lo])
}

func printTable(rs []result) {
	fmt.Printf("%-8s %10s %10s %10s %10s\n", "", "median ms", "p90 ms", "min ms", "mean ms")
	for _, r := range rs {
		fmt.Printf("%-8s %10.2f %10.2f %10.2f %10.2f\n", r.Name, r.Median, r.P90, r.Min, r.Mean)
	}
}

func printRatio(rs []result, a, b string) {
	var ra, rb *result
	for i := range rs {
		switch rs[i].Name {
		case a:
			ra = &rs[i]
		case b:
			rb = &rs[i]
		}
	}
	if ra == nil || rb == nil {
		return
	}
	fmt.Printf("%s/%s: %.2fx (median), %.2fx (p90)\n", a, b, ra.Median/rb.Median, ra.P90/rb.P90)
}
