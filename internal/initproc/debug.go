package initproc

import (
	"fmt"
	"os"
	"time"
)

// debugSince is the parent's start (--debug), 0 when off.
var debugSince int64

// step reports one step of the recipe with --debug, on the parent's clock.
func step(name string) {
	if debugSince != 0 {
		ms := float64(time.Now().UnixNano()-debugSince) / 1e6
		fmt.Fprintf(os.Stderr, "zviz: debug: %8.3fms init: %s\n", ms, name)
	}
}
