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
	"time"
)

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
	for r := 0; r < 2; r++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() {}()
		}
		for runtime.NumGoroutine() > 1 {
			runtime.Gosched()
		}
		ns[r] = float64(time.Since(t0).Nanoseconds()) / float64(n)
	}
	fmt.Printf("bench=spawn impl=go procs=%d round1_ns=%.1f round2_ns=%.1f\n", procs, ns[0], ns[1])
}
