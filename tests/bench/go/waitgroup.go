// waitgroup: fan-out: the main goroutine adds 100k to a WaitGroup, spawns
// 100k goroutines that each call Done, and waits; milliseconds from the
// first spawn to Wait returning, and the first round's minor page faults
// per goroutine.  Peer of tests/bench/waitgroup.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
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
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go wg.Done()
	}
	wg.Wait()
	return time.Since(t0)
}

func main() {
	procs := envInt("BENCH_PROCS", runtime.NumCPU())
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_WAITGROUP_N", 100000)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	r1 := round(n)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	r2 := round(n)
	fmt.Printf("bench=waitgroup impl=go procs=%d round1_ms=%.2f round2_ms=%.2f faults_per_g=%.3f\n", procs,
		float64(r1.Nanoseconds())/1e6, float64(r2.Nanoseconds())/1e6,
		float64(ru1.Minflt-ru0.Minflt)/float64(n))
}
