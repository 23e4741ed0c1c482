// spawn: spawn, run and exit of empty goroutines, two rounds in one
// process (the first pays for first-touch page faults).  Peer of
// tests/bench/spawn.c: the main goroutine spawns them all, then yields
// until they have finished.
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

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_SPAWN_N", 1000000)
	var ns [2]float64
	var cpuNs float64
	for r := 0; r < 2; r++ {
		c0 := cpuTime()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() {}()
		}
		for runtime.NumGoroutine() > 1 {
			runtime.Gosched()
		}
		ns[r] = float64(time.Since(t0).Nanoseconds()) / float64(n)
		cpuNs = float64((cpuTime() - c0).Nanoseconds()) / float64(n)
	}
	fmt.Printf("bench=spawn impl=go procs=%d round1_ns=%.1f round2_ns=%.1f round2_cpu_ns=%.1f\n",
		procs, ns[0], ns[1], cpuNs)
}
