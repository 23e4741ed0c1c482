// pingpong: unbuffered channel ping-pong between two goroutines; the time
// per one-way hand-off (a send completed by the matching receive), the
// process's CPU time per hand-off, and the median over batches of 32
// round trips (as tests/bench/pingpong.c measures them).  Run with
// BENCH_PROCS=1 and =2.  Peer of tests/bench/pingpong.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"
)

const batch = 32

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTime is the process's CPU time (every thread).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func round(iters int) (d, cpu, p50 time.Duration) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	nb := iters / batch
	if nb == 0 {
		nb = 1
	}
	batches := make([]time.Duration, 0, nb)
	c0 := cpuTime()
	t0 := time.Now()
	tb := t0
	for i := 0; i < iters; i++ {
		ping <- i
		<-pong
		if i%batch == batch-1 {
			now := time.Now()
			batches = append(batches, now.Sub(tb))
			tb = now
		}
	}
	d = time.Since(t0)
	cpu = cpuTime() - c0
	close(ping)
	<-pong
	if len(batches) > 0 {
		sort.Slice(batches, func(a, b int) bool { return batches[a] < batches[b] })
		p50 = batches[len(batches)/2]
	}
	return
}

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	iters := envInt("BENCH_PINGPONG_N", 1000000)
	round(10000) // warm up
	d, cpu, p50 := round(iters)
	fmt.Printf("bench=pingpong impl=go procs=%d ns_per_op=%.2f cpu_ns_per_op=%.2f p50_ns_per_op=%.2f\n", procs,
		float64(d.Nanoseconds())/float64(2*iters), float64(cpu.Nanoseconds())/float64(2*iters),
		float64(p50.Nanoseconds())/float64(2*batch))
}
