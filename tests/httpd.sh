#!/bin/sh
# examples/httpd against real clients: curl (keep-alive, HEAD, 431 for an
# oversized head, 400 for a malformed request), raw requests written with
# bash's /dev/tcp (pipelining, garbage), and graceful shutdown on SIGTERM
# with requests in flight, within the grace period and past it.  Loopback only; skipped (77) when
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

# RINGO_TEST_WRAP, if set, is a program httpd runs under (seccomp.sh: one
# that refuses io_uring); when it asks RINGO_DEBUG=1, the httpd says which
# engine it runs on, and the line must name epoll.
# start_httpd ARGS...: a free port: try a few, keep the first httpd that
# listens.  An httpd that exits (its port was taken) moves on to the next
# port; one still starting is waited for, however slow the machine (up to
# a minute).  A port on which something already answers is passed over
# first, saving a start.  Sets pid and port.
starts=0
start_httpd() {
    starts=$((starts + 1))
    for try in 1 2 3 4 5 6 7 8; do
        port=$(( 20000 + ( $$ * 7 + try * 1031 + starts * 5003 ) % 30000 ))
        if bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; then
            continue # taken
        fi
        : >"$log" # not the last server's "listening"
        $RINGO_TEST_WRAP "$httpd" -a 127.0.0.1 -p "$port" -t 2 "$@" 2>"$log" &
        pid=$!
        i=0
        while [ $i -lt 600 ] && ! grep -q listening "$log" && kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
            i=$((i + 1))
        done
        if grep -q listening "$log"; then
            if [ -n "$RINGO_TEST_WRAP" ] && ! grep -q "ringo: engine epoll" "$log"; then
                echo "FAIL: httpd under $RINGO_TEST_WRAP is not on the epoll engine"
                cat "$log"
                exit 1
            fi
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    done
    echo "FAIL: httpd did not start"
    cat "$log"
    exit 1
}
start_httpd -i 1
url="http://127.0.0.1:$port/"
fail=0
check() { # name, expected, got
    if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected '$2', got '$3'"; fail=1; fi
}

check "GET body" "Hello, World!" "$(curl -s -m 60 "$url")"

# A second httpd on the port: its SO_REUSEPORT listeners would share it,
# and take some of the connections; it says the port is taken and exits 1.
out=$($RINGO_TEST_WRAP "$httpd" -a 127.0.0.1 -p "$port" -t 2 2>&1)
check "port taken: exit status" "1" "$?"
check "port taken: said so" "1" "$(printf '%s\n' "$out" | grep -c 'Address already in use')"
# Bad arguments: the usage, exit status 2.
for args in "-t abc" "-t -1" "-t 0" "-i 5x" "-g 0" "extra"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    "$httpd" -p "$port" $args >/dev/null 2>&1
    check "bad arguments ($args): exit status" "2" "$?"
done
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
# An HTTP/1.0 client keeps a connection only if the answer says so (ab -k).
n=$(raw 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n' | tr -d '\r' | grep -c '^Connection: keep-alive$')
check "HTTP/1.0 keep-alive: said in the answer" "1" "$n"
n=$(raw '\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | grep -c '^HTTP/1.1 200')
check "empty lines before a request line ignored" "2" "$n"

# SIGUSR1: the statistics on stderr, and the server goes on serving.
kill -USR1 "$pid"
i=0
while [ $i -lt 600 ] && ! grep -q '^httpd: stats: ' "$log"; do sleep 0.1; i=$((i + 1)); done
line=$(grep '^httpd: stats: ' "$log" | head -n 1)
check "SIGUSR1: statistics printed" "1" "$(printf '%s\n' "$line" | grep -c 'goroutines [0-9]* (running [0-9]*, runnable [0-9]*, waiting [0-9]*); procs idle')"
check "SIGUSR1: still serving" "Hello, World!" "$(curl -s -m 60 "$url")"

# -i 1: a client that sends nothing, or half a request, is dropped after
# about a second (the server closes; cat sees EOF long before its 60 s,
# which only bounds the test on a server that never drops it).
dropped() { # send $1, then wait; prints cat's status: 0 = closed by the server, 124 = not
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1; printf "'"$1"'" >&3; timeout 60 cat <&3 >/dev/null; echo $?' 2>/dev/null
}
check "idle client dropped after the deadline" "0" "$(dropped '')"
check "slow client dropped after the deadline" "0" "$(dropped 'GET / HTTP/1.1\r\nHost: x\r\n')"

kill -INT "$pid"
wait "$pid"
status=$?
pid=
check "SIGINT: exit status" "0" "$status"
grep -q 'requests; \(io_uring_enter\|epoll_wait\) calls' "$log" || { echo "FAIL: no counters on SIGINT"; cat "$log"; fail=1; }
grep 'requests;' "$log"

# -i 4: the request deadline runs from a request's first byte, whether that
# byte came alone or after the previous request in the same read, to the
# end of its body.  Two clients at once: P pipelines three requests in
# pieces 2.5 s apart, each piece finishing one and starting the next (all
# three answered: each began less than 4 s before it ended); T sends a
# POST head promising 100 bytes of body, then a byte every half second (the
# server drops it 4 s after its first byte, so a write soon fails; without
# the deadline over the body each byte would renew it).
start_httpd -i 4
pipelined() {
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
        r="GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        printf "${r}GET / HT" >&3; sleep 2.5
        printf "TP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo" >&3; sleep 2.5
        printf "st: x\r\nConnection: close\r\n\r\n" >&3
        timeout 60 cat <&3' 2>/dev/null | grep -c '^HTTP/1.1 200'
}
trickled() { # prints the number of body bytes written before a write failed
    bash -c 'trap "" PIPE; exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
        printf "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" >&3
        n=0
        while [ $n -lt 40 ]; do sleep 0.5; printf x >&3 2>/dev/null || break; n=$((n + 1)); done
        echo $n' 2>/dev/null
}
pipelined >"$log.p" &
ppid=$!
t=$(trickled)
wait "$ppid"
check "pipelined pieces: each request's deadline from its first byte" "3" "$(cat "$log.p")"
rm -f "$log.p"
[ "$t" -lt 40 ] && t=dropped
check "trickled body: dropped at the request's deadline" "dropped" "$t"
kill "$pid"
wait "$pid" 2>/dev/null
pid=

# Graceful shutdown on SIGTERM, on a server with long deadlines (so that
# only the shutdown ends a connection here).  Connection A has sent half a request,
# connection B a whole one, answered, and now waits between requests.
# After SIGTERM: B is closed (EOF), A's request is still answered once its
# end arrives (sent only after B's EOF shows the shutdown under way), with
# "Connection: close", then A is closed; the server exits 0 with its
# counters, and the port accepts nothing more.
start_httpd -i 600 -g 600
out=$(bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    exec 4<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "GET / HTTP/1.1\r\nHost: x\r\n" >&3
    printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&4
    while IFS= read -r -t 60 line <&4; do [ "$line" = $'"'"'\r'"'"' ] && break; done
    read -r -t 60 -N 14 body <&4
    echo "B before: $body"
    kill -TERM '"$pid"'
    timeout 60 cat <&4 >/dev/null && echo "B closed"
    printf "\r\n" >&3
    timeout 60 cat <&3 | tr -d "\r" | grep -E "^HTTP/1.1 |^Connection: |^Hello"
    echo "A closed"
' 2>&1)
printf '%s\n' "$out"
check "shutdown: B answered before" "B before: Hello, World!" "$(printf '%s\n' "$out" | grep '^B before')"
check "shutdown: idle B closed" "B closed" "$(printf '%s\n' "$out" | grep '^B closed')"
check "shutdown: A's request under way answered" "HTTP/1.1 200 OK" "$(printf '%s\n' "$out" | grep '^HTTP/1.1')"
check "shutdown: A told to close" "Connection: close" "$(printf '%s\n' "$out" | grep '^Connection:')"
check "shutdown: A closed after its answer" "A closed" "$(printf '%s\n' "$out" | grep '^A closed')"
wait "$pid"
status=$?
pid=
check "shutdown: exit status" "0" "$status"
grep -q 'requests; \(io_uring_enter\|epoll_wait\) calls' "$log" || { echo "FAIL: no counters on SIGTERM"; cat "$log"; fail=1; }
grep 'requests;' "$log"
if bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; then
    echo "FAIL: still accepting after shutdown"; fail=1
else
    echo "ok: shutdown: no longer accepting"
fi

# The grace period runs out (-g 1).  Connection A sends a whole request and
# the start of a second in one write; once the first answer is back, the
# server has read the second's start, so A is busy.  After SIGTERM the
# server waits for A up to the grace period, which A's unfinished request
# outlasts; then it says so, ends A (EOF, no second answer), and exits 0
# with its counters.
start_httpd -i 600 -g 1
out=$(bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n" >&3
    while IFS= read -r -t 60 line <&3; do [ "$line" = $'"'"'\r'"'"' ] && break; done
    read -r -t 60 -N 14 body <&3
    echo "A first: $body"
    kill -TERM '"$pid"'
    rest=$(timeout 60 cat <&3) && echo "A closed after $(printf "%s" "$rest" | grep -c "^HTTP/1.1") more answers"
' 2>&1)
printf '%s\n' "$out"
check "grace over: A's first request answered" "A first: Hello, World!" "$(printf '%s\n' "$out" | grep '^A first')"
check "grace over: A ended, unfinished request not answered" "A closed after 0 more answers" \
    "$(printf '%s\n' "$out" | grep '^A closed')"
i=0
while [ $i -lt 600 ] && kill -0 "$pid" 2>/dev/null; do # a server that does not end fails, not hangs
    sleep 0.1
    i=$((i + 1))
done
kill -0 "$pid" 2>/dev/null && { echo "FAIL: grace over: httpd still running"; kill -KILL "$pid"; }
wait "$pid"
status=$?
pid=
check "grace over: exit status" "0" "$status"
grep -q 'grace period over' "$log" || { echo "FAIL: no grace period message"; cat "$log"; fail=1; }
grep -q 'requests; \(io_uring_enter\|epoll_wait\) calls' "$log" || { echo "FAIL: no counters after the grace period"; cat "$log"; fail=1; }
grep 'requests;' "$log"
exit $fail
