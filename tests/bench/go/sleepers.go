// sleepers: many goroutines sleeping at once, two rounds in one process.
// Peer of tests/bench/sleepers.c: wall from the first spawn to the last
// wake-up, and p99 of each goroutine's lateness past its due time.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

const sleep = 10 * time.Millisecond

func main() {
	procs := envInt("BENCH_PROCS", runtime.NumCPU())
	runtime.GOMAXPROCS(procs)
	n := envInt("BENCH_SLEEPERS_N", 100000)
	late := make([]int64, n)
	var wall, p99 [2]float64
	for r := 0; r < 2; r++ {
		var wg sync.WaitGroup
		var done int64
		var tEnd int64
		base := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(i int) {
				due := time.Now().Add(sleep)
				time.Sleep(sleep)
				now := time.Now()
				late[i] = int64(now.Sub(due))
				if atomic.AddInt64(&done, 1) == int64(n) {
					atomic.StoreInt64(&tEnd, int64(now.Sub(base)))
				}
				wg.Done()
			}(i)
		}
		wg.Wait()
		wall[r] = float64(atomic.LoadInt64(&tEnd)) / 1e6
		sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
		p99[r] = float64(late[int(0.99*float64(n-1)+0.5)]) / 1e6
	}
	fmt.Printf("bench=sleepers impl=go procs=%d round1_wall_ms=%.1f round1_p99_ms=%.2f round2_wall_ms=%.1f round2_p99_ms=%.2f\n",
		procs, wall[0], p99[0], wall[1], p99[1])
}
