// httpd_raw: HTTP/1.1 hello over raw TCP, one goroutine per connection
// reading requests and writing a fixed keep-alive response: the Go peer
// without net/http's parsing.  Usage: httpd_raw PORT.  GOMAXPROCS comes
// from BENCH_PROCS (default 2).
package main

import (
	"bytes"
	"fmt"
	"net"
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

var response = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
var eoh = []byte("\r\n\r\n")

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	out := make([]byte, 0, 4096)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil || n == 0 {
			return
		}
		have += n
		out = out[:0]
		start := 0
		for {
			i := bytes.Index(buf[start:have], eoh)
			if i < 0 {
				break
			}
			start += i + len(eoh)
			out = append(out, response...)
		}
		copy(buf, buf[start:have])
		have -= start
		if have == len(buf) {
			return // a request header larger than the buffer
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpd_raw PORT")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(envInt("BENCH_PROCS", 2))
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpd_raw:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
