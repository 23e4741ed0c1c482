#!/bin/sh
# examples/httpd against real clients: curl (keep-alive, HEAD, 431 for an
# oversized head, 400 for a malformed request) and raw requests written with
# bash's /dev/tcp (pipelining, garbage).  Loopback only; skipped (77) when
# curl or bash is missing.
build="${top_builddir:-.}"
httpd="$build/examples/httpd"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is not installed"; exit 77; }
command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is not installed"; exit 77; }
[ -x "$httpd" ] || { echo "SKIP: $httpd not built"; exit 77; }

log=$(mktemp)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT

# A free port: try a few, keep the first httpd that listens.  An httpd
# that exits (its port was taken) moves on to the next port; one still
# starting is waited for, however slow the machine (up to a minute).
for try in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + ( $$ * 7 + try * 1031 ) % 30000 ))
    "$httpd" -a 127.0.0.1 -p "$port" -t 2 -i 1 2>"$log" &
    pid=$!
    i=0
    while [ $i -lt 600 ] && ! grep -q listening "$log" && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    grep -q listening "$log" && break
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
done
[ -n "$pid" ] || { echo "FAIL: httpd did not start"; cat "$log"; exit 1; }
url="http://127.0.0.1:$port/"
fail=0
check() { # name, expected, got
    if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected '$2', got '$3'"; fail=1; fi
}

check "GET body" "Hello, World!" "$(curl -s -m 60 "$url")"
check "GET status" "200" "$(curl -s -m 60 -o /dev/null -w '%{http_code}' "$url")"
n=$(curl -sv -m 60 "$url" "$url" "$url" 2>&1 | grep -c 'Re-using existing connection')
check "keep-alive: three requests on one connection" "2" "$n"
big=$(head -c 9000 /dev/zero | tr '\0' 'a')
check "431 for a head over 8 KiB" "431" "$(curl -s -m 60 -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$url")"
check "400 for HTTP/1.1 without Host" "400" "$(curl -s -m 60 -o /dev/null -w '%{http_code}' -H 'Host:' "$url")"

raw() { # send $1 (printf format) and print what comes back until the server closes
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1; printf "'"$1"'" >&3; timeout 60 cat <&3' 2>/dev/null
}
req='GET / HTTP/1.1\r\nHost: x\r\n\r\n'
n=$(raw "$req$req${req%\\r\\n}Connection: close\r\n\r\n" | grep -c '^HTTP/1.1 200')
check "pipelining: three requests in one write" "3" "$n"
check "400 for garbage" "HTTP/1.1 400 Bad Request" "$(raw 'hello there\r\n\r\n' | head -n 1 | tr -d '\r')"
check "400 for a bad version" "HTTP/1.1 400 Bad Request" "$(raw 'GET / HTTP/9.9\r\nHost: x\r\n\r\n' | head -n 1 | tr -d '\r')"
n=$(raw 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | grep -c '^HTTP/1.1 200')
check "request body skipped, next request answered" "2" "$n"
check "HEAD has no body" "0" "$(raw 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | grep -c Hello)"
check "HTTP/1.0 closes" "1" "$(raw 'GET / HTTP/1.0\r\n\r\n' | grep -c '^HTTP/1.1 200')"

# -i 1: a client that sends nothing, or half a request, is dropped after
# about a second (the server closes; cat sees EOF long before its 60 s,
# which only bounds the test on a server that never drops it).
dropped() { # send $1, then wait; prints cat's status: 0 = closed by the server, 124 = not
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1; printf "'"$1"'" >&3; timeout 60 cat <&3 >/dev/null; echo $?' 2>/dev/null
}
check "idle client dropped after the deadline" "0" "$(dropped '')"
check "slow client dropped after the deadline" "0" "$(dropped 'GET / HTTP/1.1\r\nHost: x\r\n')"

kill -INT "$pid"
wait "$pid" 2>/dev/null
pid=
grep -q 'requests; io_uring_enter' "$log" || { echo "FAIL: no counters on SIGINT"; cat "$log"; fail=1; }
grep 'requests;' "$log"
exit $fail
