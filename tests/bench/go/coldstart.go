// coldstart: what a fresh goroutine costs the first time.  Peer of
// tests/bench/coldstart.c (see there): BENCH_COLD=block spawns 100k
// goroutines that block receiving from one channel, two rounds, with the
// first round's minor page faults per goroutine; BENCH_COLD=rss spawns 1M
// empty goroutines without yielding and reports the peak resident set, the
// most goroutines waiting at once (runtime.NumGoroutine every 1024 spawns)
// and the growth of the peak resident set per goroutine of those.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize())
}

func main() {
	procs := envInt("BENCH_PROCS", 1)
	runtime.GOMAXPROCS(procs)
	if os.Getenv("BENCH_COLD") == "rss" {
		n := envInt("BENCH_COLD_RSS_N", 1000000)
		before := rssBytes()
		peak := 0
		for i := 0; i < n; i++ {
			go func() {}()
			if i%1024 == 1023 || i == n-1 {
				if w := runtime.NumGoroutine() - 1; w > peak {
					peak = w
				}
			}
		}
		per := 0.0
		if peak > 0 {
			per = float64(rusage().Maxrss*1024-before) / float64(peak)
		}
		for runtime.NumGoroutine() > 1 {
			runtime.Gosched()
		}
		fmt.Printf("bench=coldstart impl=go procs=%d mode=rss peak_rss_mb=%.1f peak_waiting=%d bytes_per_unstarted=%.0f\n",
			procs, float64(rusage().Maxrss)/1024, peak, per)
		return
	}
	n := int64(envInt("BENCH_COLD_N", 100000))
	var ms [2]float64
	var faults float64
	for r := 0; r < 2; r++ {
		ch := make(chan byte)
		var blocked int64
		f0 := rusage().Minflt
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			go func() {
				atomic.AddInt64(&blocked, 1)
				<-ch
			}()
		}
		for atomic.LoadInt64(&blocked) < n {
			runtime.Gosched()
		}
		ms[r] = float64(time.Since(t0).Nanoseconds()) / 1e6
		if r == 0 {
			faults = float64(rusage().Minflt-f0) / float64(n)
		}
		close(ch)
		for runtime.NumGoroutine() > 1 {
			runtime.Gosched()
		}
	}
	fmt.Printf("bench=coldstart impl=go procs=%d mode=block round1_ms=%.2f round2_ms=%.2f faults_per_g=%.3f\n",
		procs, ms[0], ms[1], faults)
}
