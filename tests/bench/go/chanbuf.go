// chanbuf: throughput of a buffered channel of capacity 1024 between one
// sender and one receiver, in millions of messages per second.  Run with
// BENCH_PROCS=1 and =2.  Peer of tests/bench/chanbuf.c.
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

func round(n int) time.Duration {
	c := make(chan int64, 1024)
	done := make(chan int64)
	go func() {
		var sum int64
		for v := range c {
			sum += v
		}
		done <- sum
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		c <- int64(i)
	}
	close(c)
	<-done
	return time.Since(t0)
}

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_CHANBUF_N", 10000000)
	round(100000) // warm up
	d := round(n)
	fmt.Printf("bench=chanbuf impl=go procs=%d mmsg_per_s=%.2f\n", procs, float64(n)/d.Seconds()/1e6)
}
