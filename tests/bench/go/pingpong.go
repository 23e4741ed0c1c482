// pingpong: unbuffered channel ping-pong between two goroutines; the time
// per one-way hand-off (a send completed by the matching receive).  Run
// with BENCH_PROCS=1 and =2.  Peer of tests/bench/pingpong.c.
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
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	t0 := time.Now()
	for i := 0; i < iters; i++ {
		ping <- i
		<-pong
	}
	d := time.Since(t0)
	close(ping)
	<-pong
	return d
}

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	iters := envInt("BENCH_PINGPONG_N", 1000000)
	round(10000) // warm up
	d := round(iters)
	fmt.Printf("bench=pingpong impl=go procs=%d ns_per_op=%.2f\n", procs, float64(d.Nanoseconds())/float64(2*iters))
}
