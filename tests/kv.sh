#!/bin/sh
# examples/kv against the real redis-cli (Debian's redis-tools): every
# command, errors in commands, binary-safe and large values, many clients on
# one key, pipelining (redis-cli --pipe, and several commands in one write),
# SET with EX and PX expiring, protocol errors (answered, then the
# connection closed), idle clients dropped, and graceful shutdown on SIGTERM
# with a command in flight, and after the grace period.  Raw clients are
# bash's /dev/tcp.  Loopback only; skipped (77) when redis-cli or bash is
# missing.  Every wait is bounded; none decides the result by its length.
build="${top_builddir:-.}"
kv="$build/examples/kv"
command -v redis-cli >/dev/null 2>&1 || { echo "SKIP: redis-cli is not installed (Debian package redis-tools)"; exit 77; }
command -v bash >/dev/null 2>&1 || { echo "SKIP: bash is not installed"; exit 77; }
[ -x "$kv" ] || { echo "SKIP: $kv not built"; exit 77; }

log=$(mktemp)
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$log" "$tmp"; }
trap cleanup EXIT

# alive: kv is running (not exited; an exited child stays a zombie until
# waited for, and kill -0 would still find it).
alive() {
    [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# start_kv ARGS...: kv on a free port: try a few, keep the first kv that
# listens.  A kv that exits (its port was taken) moves on to the next
# port; one still starting is waited for, however slow the machine (up to
# a minute).  A port on which something already answers is passed over
# first, as in httpd.sh.  Sets pid and port.
starts=0
start_kv() {
    starts=$((starts + 1))
    for try in 1 2 3 4 5 6 7 8; do
        port=$(( 20000 + ( $$ * 11 + try * 1031 + starts * 5003 ) % 30000 ))
        if bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; then
            continue # taken
        fi
        : >"$log" # not the last server's "listening"
        "$kv" -a 127.0.0.1 -p "$port" -t 2 "$@" 2>"$log" &
        pid=$!
        i=0
        while [ $i -lt 600 ] && ! grep -q listening "$log" && alive; do
            sleep 0.1
            i=$((i + 1))
        done
        grep -q listening "$log" && return 0
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    done
    echo "FAIL: kv did not start"
    cat "$log"
    exit 1
}

# wait_exit: wait for kv to exit by itself, a minute at most (then it is
# killed); sets status.
wait_exit() {
    i=0
    while [ $i -lt 600 ] && alive; do
        sleep 0.1
        i=$((i + 1))
    done
    [ $i -lt 600 ] || { echo "FAIL: kv did not exit"; kill -9 "$pid"; fail=1; }
    wait "$pid"
    status=$?
    pid=
}

fail=0
check() { # name, expected, got
    if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected '$2', got '$3'"; fail=1; fi
}
# cli ARGS...: redis-cli's answer as it shows it on a terminal ("(nil)",
# "(integer) 1", "(error) ERR ...", quoted strings), on one line.
cli() { timeout 60 redis-cli -h 127.0.0.1 -p "$port" --no-raw "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# raw FORMAT: send printf FORMAT in one write, print all that comes back
# until the server closes (CR shown as \r).
raw() {
    bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; printf "$1" >&3; timeout 60 cat <&3' \
        "$port" "$1" 2>/dev/null | sed 's/\r/\\r/g' | tr '\n' ' ' | sed 's/ $//'
}

# ------------------------------------------------------------ commands
start_kv -i 5
check "PING" "PONG" "$(cli ping)"
check "PING message" '"hi there"' "$(cli ping 'hi there')"
check "ECHO" '"hello world"' "$(cli echo 'hello world')"
check "SET" "OK" "$(cli set greeting hello)"
check "GET" '"hello"' "$(cli get greeting)"
check "GET missing key" "(nil)" "$(cli get nosuchkey)"
check "SET replaces" "OK" "$(cli set greeting bonjour)"
check "GET replaced" '"bonjour"' "$(cli get greeting)"
check "SET binary-safe value" "OK" "$(cli set bin "$(printf 'a b\tc\rd')")"
check "GET binary-safe value" '"a b\tc\rd"' "$(cli get bin)"
check "INCR new key" "(integer) 1" "$(cli incr counter)"
check "INCR again" "(integer) 2" "$(cli incr counter)"
cli set n -5 >/dev/null
check "INCR negative" "(integer) -4" "$(cli incr n)"
check "INCR of a string" "(error) ERR value is not an integer or out of range" "$(cli incr greeting)"
cli set big 9223372036854775807 >/dev/null
check "INCR overflow" "(error) ERR increment or decrement would overflow" "$(cli incr big)"
check "GET after failed INCR" '"9223372036854775807"' "$(cli get big)"
check "MGET" '1) "bonjour" 2) (nil) 3) "2"' "$(cli mget greeting nosuchkey counter)"
check "DEL several keys" "(integer) 2" "$(cli del greeting nosuchkey counter)"
check "GET deleted" "(nil)" "$(cli get greeting)"
check "DEL again" "(integer) 0" "$(cli del greeting)"
check "command names in any case" '"x"' "$(cli sEt lower x >/dev/null; cli GeT lower)"
check "unknown command" "(error) ERR unknown command 'flushall'" "$(cli flushall)"
check "wrong number of arguments" "(error) ERR wrong number of arguments for 'get' command" "$(cli get a b)"
check "SET syntax error" "(error) ERR syntax error" "$(cli set a b nx)"
check "SET EX without seconds" "(error) ERR syntax error" "$(cli set a b ex)"
check "SET EX 0" "(error) ERR invalid expire time in 'set' command" "$(cli set a b ex 0)"
check "SET EX not a number" "(error) ERR value is not an integer or out of range" "$(cli set a b ex soon)"
check "CONFIG GET (what redis-benchmark asks)" '1) "save" 2) "" 3) "appendonly" 4) "no"' \
    "$(cli config get save appendonly)"

# A value larger than the reader's buffer, from stdin (-x).
head -c 300000 /dev/zero | tr '\0' v >"$tmp/big"
check "SET 300 kB value" "OK" "$(timeout 60 redis-cli -h 127.0.0.1 -p "$port" -x set large <"$tmp/big")"
timeout 60 redis-cli -h 127.0.0.1 -p "$port" --raw get large | head -c 300000 >"$tmp/got"
if cmp -s "$tmp/big" "$tmp/got"; then echo "ok: GET 300 kB value"; else echo "FAIL: GET 300 kB value differs"; fail=1; fi

# Four clients on one key at once, 200 INCRs each (-r: repeat on one
# connection): the store is shared, and no increment is lost.
pids=
for c in 1 2 3 4; do
    timeout 60 redis-cli -h 127.0.0.1 -p "$port" -r 200 incr shared >/dev/null &
    pids="$pids $!"
done
for c in $pids; do wait "$c"; done
check "4 clients x 200 INCR on one key" '"800"' "$(cli get shared)"

# ------------------------------------------------------------ pipelining
# redis-cli --pipe: 1000 SETs in RESP written at once, then its own ECHO
# to know when the last answer is in.
i=0
while [ $i -lt 1000 ]; do
    printf '*3\r\n$3\r\nSET\r\n$%d\r\np%d\r\n$%d\r\n%d\r\n' $((${#i} + 1)) $i ${#i} $i
    i=$((i + 1))
done >"$tmp/pipe"
out=$(timeout 60 redis-cli -h 127.0.0.1 -p "$port" --pipe <"$tmp/pipe" 2>&1 | tail -n 1)
check "redis-cli --pipe: 1000 SETs" "errors: 0, replies: 1000" "$out"
check "GET after --pipe" '1) "0" 2) "500" 3) "999"' "$(cli mget p0 p500 p999)"
# Inline and RESP commands in one write, the last closing the connection:
# every one answered, in order.
check "several commands in one write" \
    '+PONG\r $2\r hi\r :1\r :2\r +OK\r' \
    "$(raw 'PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nINCR pipe\r\n*2\r\n$4\r\nINCR\r\n$4\r\npipe\r\nQUIT\r\n')"
check "empty commands ignored" '+PONG\r +OK\r' "$(raw '\r\n*0\r\n  \r\nPING\r\nQUIT\r\n')"

# ------------------------------------------------------------ expiry
# EX 1: the key is there when read in the same write as the SET (order,
# not time: both run before the server reads again), then gone; the wait
# for that is bounded (60 s) and only ends the loop.  "keep" was set with
# EX 1 before, then set again without: a SET clears the expiry, so it is
# still there when ex1 (set later, same EX) has gone.
cli set keep v ex 1 >/dev/null
cli set keep w >/dev/null
check "SET EX 1 then GET at once" '+OK\r $1\r v\r +OK\r' \
    "$(raw 'SET ex1 v EX 1\r\nGET ex1\r\nQUIT\r\n')"
gone() { # key: wait until GET says (nil), 60 s at most; prints what GET said last
    i=0
    while [ $i -lt 600 ]; do
        v=$(cli get "$1")
        [ "$v" = "(nil)" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    printf '%s' "$v"
}
cli set px100 v px 100 >/dev/null
check "SET EX 1: the key expires" "(nil)" "$(gone ex1)"
check "SET PX 100: the key expires" "(nil)" "$(gone px100)"
check "keys without EX stay" '"x"' "$(cli get lower)"
check "expired key gone from MGET" '1) (nil) 2) "x"' "$(cli mget ex1 lower)"
check "SET without EX after SET EX: no expiry" '"w"' "$(cli get keep)"

# ------------------------------------------------------------ protocol errors
# Each is answered with -ERR Protocol error and the connection closed
# (raw returns only then); what came before is answered.
check "protocol: bad multibulk length" '+PONG\r -ERR Protocol error: invalid multibulk length\r' \
    "$(raw 'PING\r\n*x\r\nPING\r\n')"
check "protocol: too many arguments" '-ERR Protocol error: invalid multibulk length\r' \
    "$(raw '*100000\r\n')"
q="'"
check "protocol: not a bulk string" "-ERR Protocol error: expected $q\$$q, got ${q}f$q\\r" \
    "$(raw '*2\r\nfoo\r\n')"
check "protocol: bulk over 1 MiB" '-ERR Protocol error: invalid bulk length\r' \
    "$(raw '*2\r\n$3\r\nGET\r\n$2000000\r\n')"
check "protocol: negative bulk length" '-ERR Protocol error: invalid bulk length\r' \
    "$(raw '*1\r\n$-3\r\n')"
check "protocol: bulk without CRLF" '-ERR Protocol error: bulk string not followed by CRLF\r' \
    "$(raw '*1\r\n$4\r\nPINGxx')"
# Exactly 64 KiB, all of which the server reads before it closes (unread
# bytes would make its close a reset, which may discard the answer).
head -c 65536 /dev/zero | tr '\0' a >"$tmp/long"
out=$(bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; cat "$1" >&3; timeout 60 cat <&3' \
    "$port" "$tmp/long" 2>/dev/null | tr -d '\r')
check "protocol: a line of 64 KiB" '-ERR Protocol error: too big inline request' "$out"
check "still serving after protocol errors" "PONG" "$(cli ping)"

# ------------------------------------------------------------ idle deadline
# -i 5: a client that sends nothing, or half a command, is dropped (the
# server closes; cat sees EOF; its 60 s only bound the test on a server
# that never drops it).
dropped() { # send $1, then wait; prints cat's status: 0 = closed by the server, 124 = not
    bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; printf "$1" >&3; timeout 60 cat <&3 >/dev/null; echo $?' \
        "$port" "$1" 2>/dev/null
}
dropped '' >"$tmp/idle1" &
idle1=$!
dropped '*2\r\n$3\r\nGET\r\n' >"$tmp/idle2" &
idle2=$!
wait "$idle1" "$idle2"
check "idle client dropped" "0" "$(cat "$tmp/idle1")"
check "client silent in the middle of a command dropped" "0" "$(cat "$tmp/idle2")"

kill -INT "$pid"
wait_exit
check "SIGINT: exit status" "0" "$status"
grep -q 'commands on .* connections; \(io_uring_enter\|epoll_wait\) calls' "$log" || { echo "FAIL: no counters on SIGINT"; cat "$log"; fail=1; }
grep 'commands on' "$log"

# ------------------------------------------------------------ shutdown
# On a server with long deadlines (only the shutdown ends a connection
# here): connection A has sent PING and half an ECHO; the PONG it gets
# shows the server is in the middle of A's command.  Connection B sent a
# PING, answered, and waits.  After SIGTERM: B is closed; A's ECHO is
# still answered once its end arrives (sent only after B's close shows the
# shutdown under way), then A is closed; the server exits 0 with its
# counters and accepts nothing more.
start_kv -i 600 -g 600
out=$(bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    exec 4<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "PING\r\n*2\r\n\$4\r\nECHO\r\n" >&3
    IFS= read -r -t 60 line <&3; echo "A before: $line"
    printf "PING\r\n" >&4
    IFS= read -r -t 60 line <&4; echo "B before: $line"
    kill -TERM '"$pid"'
    timeout 60 cat <&4 >/dev/null && echo "B closed"
    printf "\$5\r\nhello\r\n" >&3
    timeout 60 cat <&3 | tr -d "\r" | tr "\n" " "
    closed=${PIPESTATUS[0]}
    echo
    [ "$closed" = 0 ] && echo "A closed"
' 2>&1)
printf '%s\n' "$out"
check "shutdown: A under way" "A before: +PONG" "$(printf '%s\n' "$out" | grep '^A before' | tr -d '\r')"
check "shutdown: B answered" "B before: +PONG" "$(printf '%s\n' "$out" | grep '^B before' | tr -d '\r')"
check "shutdown: idle B closed" "B closed" "$(printf '%s\n' "$out" | grep '^B closed')"
check "shutdown: A's command under way answered" '$5 hello ' "$(printf '%s\n' "$out" | grep '^\$5')"
check "shutdown: A closed after its answer" "A closed" "$(printf '%s\n' "$out" | grep '^A closed')"
wait_exit
check "shutdown: exit status" "0" "$status"
grep -q 'commands on .* connections; \(io_uring_enter\|epoll_wait\) calls' "$log" || { echo "FAIL: no counters on SIGTERM"; cat "$log"; fail=1; }
grep 'commands on' "$log"
if bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port" 2>/dev/null; then
    echo "FAIL: still accepting after shutdown"; fail=1
else
    echo "ok: shutdown: no longer accepting"
fi

# The grace period (-g 1): A stays in the middle of a command; after
# SIGTERM and the grace period the server ends it unanswered and exits 0.
start_kv -i 600 -g 1
out=$(bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "PING\r\n*2\r\n\$4\r\nECHO\r\n" >&3
    IFS= read -r -t 60 line <&3; echo "A before: $line"
    kill -TERM '"$pid"'
    timeout 60 cat <&3 | tr -d "\r" | tr "\n" " "
    closed=${PIPESTATUS[0]}
    [ "$closed" = 0 ] && echo "A closed"
' 2>&1)
printf '%s\n' "$out"
check "grace: A under way" "A before: +PONG" "$(printf '%s\n' "$out" | grep '^A before' | tr -d '\r')"
check "grace: A ended unanswered" "A closed" "$(printf '%s\n' "$out" | grep 'A closed')"
wait_exit
check "grace: exit status" "0" "$status"
grep -q 'grace period over' "$log" || { echo "FAIL: no grace period message"; cat "$log"; fail=1; }
exit $fail
