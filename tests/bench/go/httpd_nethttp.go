// httpd_nethttp: HTTP/1.1 hello with net/http, for the HTTP rows of
// tests/bench/run.sh.  Usage: httpd_nethttp PORT.  GOMAXPROCS comes from
// BENCH_PROCS (default 2).
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var body = []byte("Hello, World!")

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpd_nethttp PORT")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(envInt("BENCH_PROCS", 2))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, "httpd_nethttp:", err)
		os.Exit(1)
	}
}
