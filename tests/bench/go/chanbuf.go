// chanbuf: throughput of a buffered channel of capacity 1024 between one
// sender and one receiver, in millions of messages per second.  Run with
// BENCH_PROCS=1 and =2.  cpu_ns_per_msg: the process's CPU time per
// message (getrusage).  Peer of tests/bench/chanbuf.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
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

// cpuNs: the process's user and system CPU time, ns.
func cpuNs() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_CHANBUF_N", 10000000)
	round(100000) // warm up
	c0 := cpuNs()
	d := round(n)
	c1 := cpuNs()
	fmt.Printf("bench=chanbuf impl=go procs=%d mmsg_per_s=%.2f cpu_ns_per_msg=%.2f\n", procs,
		float64(n)/d.Seconds()/1e6, float64(c1-c0)/float64(n))
}
