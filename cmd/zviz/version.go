package main

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func printVersion() {
	fmt.Printf("zviz version %s\nspec: %s\ngo: %s\n", version, specs.Version, runtime.Version())
}
