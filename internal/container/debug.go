package container

import (
	"fmt"
	"os"
	"time"
)

// started is when this process's Go code began: --debug reports each step
// of create and run against it, and passes it to the init so that both
// sides' steps share one clock.
var started = time.Now()

// debugf prints one --debug line: the time since start and the step.
func (o *Options) debugf(format string, args ...any) {
	if o.Debug {
		fmt.Fprintf(os.Stderr, "zviz: debug: %8.3fms %s\n", float64(time.Since(started).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
}
