// mutex: a contended sync.Mutex: 100 goroutines each lock and unlock it
// 100k times around a shared counter, on 2 procs; ns per lock.  Peer of
// tests/bench/mutex.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func main() {
	procs := envInt("BENCH_PROCS", 2)
	runtime.GOMAXPROCS(procs)
	gs := envInt("BENCH_MUTEX_G", 100)
	per := envInt("BENCH_MUTEX_N", 100000)
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	wg.Add(gs)
	t0 := time.Now()
	for g := 0; g < gs; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if counter != int64(gs*per) {
		fmt.Fprintln(os.Stderr, "mutex: lost updates")
		os.Exit(1)
	}
	fmt.Printf("bench=mutex impl=go procs=%d ns_per_op=%.2f\n", procs, float64(d.Nanoseconds())/float64(gs*per))
}
