// idle: resident memory per idle goroutine.  Peer of tests/bench/idle.c:
// spawn N goroutines that each block in a long sleep, wait until every one
// has started, and divide the growth of the resident set (/proc/self/statm)
// by N.  Also prints Go's own accounting (runtime.MemStats.Sys growth).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func main() {
	procs := envInt("BENCH_PROCS", runtime.NumCPU())
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_IDLE_N", 100000)
	var started int64
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	before := rss()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			time.Sleep(time.Hour)
		}()
	}
	for atomic.LoadInt64(&started) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	after := rss()
	runtime.ReadMemStats(&ms1)
	fmt.Printf("bench=idle impl=go procs=%d n=%d kib_per_g=%.2f memstats_sys_kib_per_g=%.2f\n",
		procs, n, float64(after-before)/1024/float64(n), float64(ms1.Sys-ms0.Sys)/1024/float64(n))
	os.Exit(0) // the sleepers are not waited for
}
