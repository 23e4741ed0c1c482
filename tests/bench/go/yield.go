// yield: the cost of one goroutine switch: two goroutines on one P take
// turns with runtime.Gosched.  Peer of tests/bench/yield.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// cpuTime is the process's CPU time (every thread), which other load on
// the machine does not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func round(iters int) (time.Duration, time.Duration) {
	done := make(chan struct{})
	go func() {
		for i := 0; i < iters; i++ {
			runtime.Gosched()
		}
		close(done)
	}()
	runtime.Gosched() // let the partner start before the clock does
	c0 := cpuTime()
	t0 := time.Now()
	for i := 0; i < iters; i++ {
		runtime.Gosched()
	}
	d := time.Since(t0)
	c := cpuTime() - c0
	<-done
	return d, c
}

func main() {
	runtime.GOMAXPROCS(1)
	iters := envInt("BENCH_YIELD_N", 5000000)
	round(10000) // warm up
	d, c := round(iters)
	fmt.Printf("bench=yield impl=go procs=1 ns_per_op=%.2f cpu_ns_per_op=%.2f\n",
		float64(d.Nanoseconds())/float64(2*iters), float64(c.Nanoseconds())/float64(2*iters))
}
