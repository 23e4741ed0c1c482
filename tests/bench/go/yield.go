// yield: the cost of one goroutine switch: two goroutines on one P take
// turns with runtime.Gosched.  Peer of tests/bench/yield.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func round(iters int) time.Duration {
	done := make(chan struct{})
	go func() {
		for i := 0; i < iters; i++ {
			runtime.Gosched()
		}
		close(done)
	}()
	runtime.Gosched() // let the partner start before the clock does
	t0 := time.Now()
	for i := 0; i < iters; i++ {
		runtime.Gosched()
	}
	d := time.Since(t0)
	<-done
	return d
}

func main() {
	runtime.GOMAXPROCS(1)
	iters := envInt("BENCH_YIELD_N", 5000000)
	round(10000) // warm up
	d := round(iters)
	fmt.Printf("bench=yield impl=go procs=1 ns_per_op=%.2f\n", float64(d.Nanoseconds())/float64(2*iters))
}
