#!/usr/bin/env bash
# run.sh — run ringo's benchmarks beside their Go peers and C baselines and
# print one table: each workload's figures, ringo against Go as a ratio, the
# DESIGN.md target and whether it is met.  `make bench` builds the programs
# and runs this; it can also be run by hand from the build directory.
#
# Programs (in BENCH_BUILDDIR, default tests/bench):
#   NAME           ringo program built from tests/bench/NAME.c
#   cacheline      C baseline: the machine's one-way cache-line transfer
#   go/NAME        Go peer, built here from tests/bench/go/NAME.go with
#                  `go build` (GO111MODULE=off, caches under the build
#                  directory, nothing downloaded)
# Each prints one line "bench=NAME impl=IMPL key=value ..." on stdout.
# Every measurement is run BENCH_REPEAT times (default 3) and the table
# shows the median of those runs.
#
# HTTP servers are started as "PROG PORT": they listen on 127.0.0.1:PORT
# with BENCH_PROCS=2 procs or threads, answer every GET with a fixed
# keep-alive hello, and may print "bench=http ... requests=N enters=E" when
# they get SIGTERM (enters: io_uring_enter, or epoll_wait, calls), which
# gives the system calls per request.  Each is loaded with
# `wrk -t2 -c100` and `-c1000` for BENCH_HTTP_SECONDS (default 5), in
# BENCH_HTTP_REPEAT rounds (default 3) where the servers of one cell take
# turns; each figure of a cell is the median of its rounds.
#
# The churn workload is the same hello with `Connection: close`: every
# request is a new connection, so accepting is a large part of the work.
# It compares ringo's multishot accept with RINGO_NO_MULTISHOT=1 (one
# accept submission per connection), BENCH_REPEAT runs each, alternated,
# median shown; Go net/http (which honours the header) beside them.  The
# C baselines and Go raw TCP keep the connection open whatever the request
# says, so they have no churn row.
#
# Environment:
#   BENCH_REPEAT=N          runs per measurement (median reported; default 3)
#   BENCH_HTTP_SECONDS=N    wrk duration per HTTP run (default 5)
#   BENCH_HTTP_REPEAT=N     HTTP runs per server and cell, taking turns
#                           with the other servers (median; default 3)
#   BENCH_IDLE_N=N          idle goroutines for the memory row (default 100000;
#                           1000000 is DESIGN.md's scale)
#   BENCH_ONLY=REGEX        run only the workloads whose name matches
#                           (yield spawn sleepers idle pingpong chanbuf mutex
#                           waitgroup coldstart http churn client kv)
#   BENCH_ENGINES=LIST      "default epoll" (the default): every ringo figure on
#                           the engine the host gives and again on the epoll
#                           engine (RINGO_ENGINE=epoll); "default" alone skips
#                           the epoll runs
#   BENCH_KV=PATH           examples/kv (default: ../../examples/kv from BENCH_BUILDDIR)
#   BENCH_KV_REQUESTS=N     redis-benchmark -n for the kv rows (default 200000)
#   GO=PATH, WRK=PATH       the go and wrk programs (default: from PATH)
#   LOAD=PATH               examples/load, the load client written with ringo
#                           (default: BENCH_BUILDDIR/../../examples/load)
#   REDIS_BENCHMARK=PATH, REDIS_SERVER=PATH
#                           redis-benchmark and redis-server (default: from PATH)
#
# The kv rows: examples/kv (a Redis-protocol server) and redis-server, one
# after the other, each loaded by the same redis-benchmark
# (-t set,get -c 50 -r 100000, without and with -P 16 pipelining);
# kv/redis-server is the ratio of their requests per second.
set -u

bindir=${BENCH_BUILDDIR:-tests/bench}
srcdir=${BENCH_SRCDIR:-$(cd "$(dirname "$0")" && pwd)}
repeat=${BENCH_REPEAT:-3}
http_secs=${BENCH_HTTP_SECONDS:-5}
http_repeat=${BENCH_HTTP_REPEAT:-3}
only=${BENCH_ONLY:-.}
GO=${GO-$(command -v go 2>/dev/null)}
WRK=${WRK-$(command -v wrk 2>/dev/null)}
LOAD=${LOAD-$bindir/../../examples/load}
REDIS_BENCHMARK=${REDIS_BENCHMARK-$(command -v redis-benchmark 2>/dev/null)}
REDIS_SERVER=${REDIS_SERVER-$(command -v redis-server 2>/dev/null)}
kv_prog=${BENCH_KV:-$bindir/../../examples/kv}
kv_requests=${BENCH_KV_REQUESTS:-200000}
export BENCH_IDLE_N=${BENCH_IDLE_N:-100000}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringo-bench.XXXXXX") || exit 1
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
wanted() { printf '%s\n' "$1" | grep -Eq -- "$only"; }

# ------------------------------------------------------------- the machine
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
virt=
grep -qw hypervisor /proc/cpuinfo 2>/dev/null && virt=" (virtual machine)"
say "ringo benchmarks: $(uname -r), ${cpus} vCPU${virt}, ${model:-unknown CPU}"
say "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
say "  Measured on a small shared VM (the reference machine is a 2-vCPU KVM guest):"
say "  absolute numbers move with the machine and its neighbours, ratios less so."
say "  Each ringo/Go figure is the median of ${repeat} runs (BENCH_REPEAT); HTTP figures are the"
say "  median of ${http_repeat} ${http_secs} s wrk runs (BENCH_HTTP_REPEAT), the servers taking turns."
say "  First-touch page faults cost ~20 us each on a VM like this, so 'round 1' rows"
say "  (fresh memory) and 'round 2' rows (same process, memory reused)"
say "  are both shown.  The runtimes pin their own threads; nothing else is pinned."
say "  'process CPU time' rows divide the process's CPU time instead of the wall clock:"
say "  for one-proc workloads they are not inflated by other programs on the machine."
say ""

# ------------------------------------------------------------- Go peers
gobin=$bindir/go
go_ok=
if [ -z "$GO" ]; then
    say "go not found: the Go peers are skipped (install golang-go, or RINGO_BENCH_DEPS=1 ./bootstrap)"
else
    mkdir -p "$gobin" || exit 1
    export GOCACHE="$(cd "$gobin" && pwd)/.cache" GOPATH="$(cd "$gobin" && pwd)/.gopath"
    export GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local GOPROXY=off
    go_ok=1
    say "Go peers: $("$GO" version 2>/dev/null)"
fi

# go_build NAME: build go/NAME.go into $gobin/NAME; false if it cannot.
go_build() {
    [ -n "$go_ok" ] || return 1
    local src="$srcdir/go/$1.go" out="$gobin/$1"
    [ -f "$src" ] || return 1
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
        if ! "$GO" build -o "$out" "$src" >"$tmp/gobuild.log" 2>&1; then
            say "go build $1.go failed:"
            sed 's/^/  /' "$tmp/gobuild.log"
            return 1
        fi
    fi
    return 0
}

# ------------------------------------------------------------- measuring
# measure TAG ENV... -- CMD...: run CMD BENCH_REPEAT times with ENV, keep its
# bench= lines in $tmp/TAG.  A failing run is reported and dropped.
measure() {
    local tag=$1 i envs=()
    shift
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    : >"$tmp/$tag"
    for ((i = 0; i < repeat; i++)); do
        if ! env "${envs[@]+"${envs[@]}"}" timeout 300 "$@" >"$tmp/out" 2>"$tmp/err"; then
            say "  $tag: '$*' failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
            continue
        fi
        grep '^bench=' "$tmp/out" >>"$tmp/$tag"
    done
}

# value TAG KEY: the median of KEY over the lines in $tmp/TAG, or nothing.
value() {
    [ -s "$tmp/$1" ] || return 0
    tr ' ' '\n' <"$tmp/$1" | sed -n "s/^$2=//p" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# runs_median NAME COLUMN: the median of one column of $tmp/NAME, a line
# per run ('?' without runs, '-' when no run has a figure there).
runs_median() {
    [ -s "$tmp/$1" ] || { echo "?"; return; }
    awk -v c="$2" '{ print $c }' "$tmp/$1" | grep -Ev '^[-?]$' | sort -g |
        awk '{ v[NR] = $1 } END { if (!NR) print "-"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# status of a peer that has no number: why.
ringo_missing() { # NAME
    if [ -f "$srcdir/$1.c" ]; then
        echo "not built (add it to Makefile.am)"
    else
        echo "not built yet"
    fi
}

# run_ringo TAG NAME ENV...: measure the ringo program NAME (if built), on
# the engine the host gives (TAG) and, unless BENCH_ENGINES leaves it out,
# forced onto the epoll engine (TAG with .e for its .r).
engines=${BENCH_ENGINES:-default epoll}
run_ringo() {
    local tag=$1 name=$2
    shift 2
    if [ -x "$bindir/$name" ]; then
        measure "$tag" "$@" -- "$bindir/$name"
        case " $engines " in
        *" epoll "*) measure "${tag%.r}.e" RINGO_ENGINE=epoll "$@" -- "$bindir/$name" ;;
        *) echo "not asked for" >"$tmp/${tag%.r}.e.why" ;;
        esac
    else
        echo "$(ringo_missing "$name")" >"$tmp/$tag.why"
        echo "$(ringo_missing "$name")" >"$tmp/${tag%.r}.e.why"
    fi
}

run_go() {
    local tag=$1 name=$2
    shift 2
    if go_build "$name"; then
        measure "$tag" "$@" -- "$gobin/$name"
    elif [ -z "$go_ok" ]; then
        echo "go not found" >"$tmp/$tag.why"
    else
        echo "build failed" >"$tmp/$tag.why"
    fi
}

# cell TAG KEY: the figure for a table cell, or why there is none.
cell() {
    local v
    v=$(value "$1" "$2")
    if [ -n "$v" ]; then
        printf '%s' "$v"
    elif [ -f "$tmp/$1.why" ]; then
        cat "$tmp/$1.why"
    else
        printf 'failed'
    fi
}

isnum() { printf '%s' "$1" | grep -Eq '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'; }

# fmt NUM: a figure to about three significant digits, never in e-notation.
fmt() {
    isnum "$1" || { printf '%s' "$1"; return; }
    awk -v x="$1" 'BEGIN { a = x < 0 ? -x : x
        printf (a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : "%.2f"), x }'
}

# ratio RINGO GO lo|hi: "2.1x faster" style, from the better-is-lower or
# better-is-higher direction.
ratio() {
    isnum "$1" && isnum "$2" || { printf -- '-'; return; }
    awk -v r="$1" -v g="$2" -v d="$3" 'BEGIN {
        if (r <= 0 || g <= 0) { printf "-"; exit }
        x = (d == "lo") ? g / r : r / g
        if (x >= 1) printf "%.2fx better", x; else printf "%.2fx worse", 1 / x }'
}

# met VALUE TARGET: yes/no for a target like "<=12" or ">=80".
met() {
    local op=${2%%[0-9]*} lim=${2#"${2%%[0-9]*}"}
    isnum "$1" && isnum "$lim" || { printf -- '-'; return; }
    awk -v v="$1" -v l="$lim" -v op="$op" 'BEGIN {
        ok = (op == "<=") ? v <= l : v >= l; printf ok ? "yes" : "NO" }'
}

rows=()
notes=() # lines printed under the table
# A target of "<=go" or ">=go" is the Go peer's figure in the same run,
# ">=2go" twice it.
row_fmt='%-50s | %-14s | %-12s | %-12s | %-14s | %-14s | %-7s | %s'
# row LABEL UNIT lo|hi TARGET RINGOTAG GOTAG KEY [NOTE]: ringo on the
# host's engine and on epoll (RINGOTAG's .e twin, run_ringo), beside Go.
row() {
    local r e g
    local t=$4 shown=$4
    r=$(cell "$5" "$7")
    e=$(cell "${5%.r}.e" "$7")
    g=$(cell "$6" "$7")
    case $t in
    '<=go' | '>=go') shown="${t%go}Go"; t="${t%go}$g" ;;
    '>=2go') shown=">=2x Go"; t=">=$(isnum "$g" && awk -v g="$g" 'BEGIN { print 2 * g }')" ;;
    esac
    rows+=("$(printf "$row_fmt" "$1 ($2)" "$(fmt "$r")" "$(fmt "$e")" "$(fmt "$g")" \
        "$(ratio "$r" "$g" "$3")" "$(ratio "$e" "$g" "$3")" "${shown:--}" "$(met "$r" "$t")")")
}

print_rows() {
    local line
    printf "$row_fmt\n" "workload (unit)" "ringo" "ringo epoll" "Go" "ringo vs Go" "epoll vs Go" \
        "target" "met"
    printf "$row_fmt\n" "" "" "" "" "" "" "" "   " | tr ' |' '-+'

    for line in "${rows[@]}"; do printf '%s\n' "$line"; done
}

# ------------------------------------------------------------- workloads
say ""
say "Running (each measurement ${repeat}x) ..."

if wanted yield; then
    run_ringo yield.r yield
    run_go yield.g yield
    row "yield switch, 2 goroutines, 1 proc" "ns/switch" lo "<=12" yield.r yield.g ns_per_op
    row "  same, process CPU time" "ns/switch" lo "<=12" yield.r yield.g cpu_ns_per_op
fi

if wanted spawn; then
    run_ringo spawn.r spawn BENCH_PROCS=1
    run_go spawn.g spawn BENCH_PROCS=1
    row "spawn+run+exit 1M empty, 1 proc, round 1" "ns/g" lo "<=30" spawn.r spawn.g round1_ns
    row "spawn+run+exit 1M empty, 1 proc, round 2" "ns/g" lo "<=30" spawn.r spawn.g round2_ns
    row "  same, process CPU time" "ns/g" lo "<=30" spawn.r spawn.g round2_cpu_ns
fi

if wanted sleepers; then
    run_ringo sleepers.r sleepers
    run_go sleepers.g sleepers
    row "100k sleep 10 ms, round 1: wall" "ms" lo "<=60" sleepers.r sleepers.g round1_wall_ms
    row "100k sleep 10 ms, round 1: p99 lateness" "ms" lo "<=5" sleepers.r sleepers.g round1_p99_ms
    row "100k sleep 10 ms, round 2: wall" "ms" lo "<=60" sleepers.r sleepers.g round2_wall_ms
    row "100k sleep 10 ms, round 2: p99 lateness" "ms" lo "<=5" sleepers.r sleepers.g round2_p99_ms
fi

if wanted idle; then
    run_ringo idle.r idle
    run_go idle.g idle
    row "resident memory per idle goroutine, n=$BENCH_IDLE_N" "KiB" lo "<=4.2" idle.r idle.g kib_per_g
fi

if wanted pingpong; then
    run_ringo pingpong1.r pingpong BENCH_PROCS=1
    run_go pingpong1.g pingpong BENCH_PROCS=1
    run_ringo pingpong2.r pingpong BENCH_PROCS=2
    run_go pingpong2.g pingpong BENCH_PROCS=2
    # The machine's one-way cache-line transfer, in the same run: what a
    # cross-proc hand-off is made of (src/runq.c "Lines of a hand-off" says
    # which lines, and how many: handoff_lines).
    if [ -x "$bindir/cacheline" ]; then
        measure cacheline.c -- "$bindir/cacheline"
    else
        echo "not built" >"$tmp/cacheline.c.why"
    fi
    row "unbuffered ping-pong, 1 proc (one-way)" "ns" lo "<=30" pingpong1.r pingpong1.g ns_per_op
    row "unbuffered ping-pong, 2 procs (one-way)" "ns" lo "<=100" pingpong2.r pingpong2.g ns_per_op
    row "  same, median of 32-round-trip batches" "ns" lo "<=go" pingpong2.r pingpong2.g p50_ns_per_op
    row "  same, process CPU time per hand-off" "ns" lo "" pingpong2.r pingpong2.g cpu_ns_per_op
    handoff_lines=2
    cl=$(cell cacheline.c ns_per_op)
    clm=$(cell cacheline.c mean_ns_per_op)
    pp=$(value pingpong2.r ns_per_op)
    pp50=$(value pingpong2.r p50_ns_per_op)
    times_cl() { # NS: NS as a multiple of the cache-line transfer
        isnum "$1" && isnum "$cl" && awk -v a="$1" -v b="$cl" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else printf "-" }' ||
            printf -- '-'
    }
    notes+=("one-way cache-line transfer between the two CPUs (tests/bench/cacheline: 2 pinned threads"
        "  on one flag, median of batches): $(fmt "$cl") ns (whole-run mean $(fmt "$clm") ns)"
        "ringo's 2-proc ping-pong, one-way: $(times_cl "$pp") that transfer (its batch median: $(times_cl "$pp50"));"
        "  a cross-proc hand-off moves $handoff_lines cache lines (reasoned in src/runq.c, 'Lines of a hand-off')")
fi

if wanted chanbuf; then
    run_ringo chanbuf1.r chanbuf BENCH_PROCS=1
    run_go chanbuf1.g chanbuf BENCH_PROCS=1
    run_ringo chanbuf2.r chanbuf BENCH_PROCS=2
    run_go chanbuf2.g chanbuf BENCH_PROCS=2
    row "buffered chan cap 1024, 1 proc" "M msg/s" hi ">=80" chanbuf1.r chanbuf1.g mmsg_per_s
    row "  same, process CPU time" "ns/msg" lo "<=go" chanbuf1.r chanbuf1.g cpu_ns_per_msg
    row "buffered chan cap 1024, 2 procs" "M msg/s" hi ">=40" chanbuf2.r chanbuf2.g mmsg_per_s
    row "  same, against Go" "M msg/s" hi ">=2go" chanbuf2.r chanbuf2.g mmsg_per_s
    # CPU time per message, spinning included: the cross-proc figure must
    # not come from burning CPU (both sides' procs count).
    row "  same, process CPU time" "ns/msg" lo "<=go" chanbuf2.r chanbuf2.g cpu_ns_per_msg
fi

if wanted mutex; then
    run_ringo mutex.r mutex BENCH_PROCS=2
    run_go mutex.g mutex BENCH_PROCS=2
    row "contended mutex, 100 g x 100k, 2 procs" "ns/lock" lo "<=16" mutex.r mutex.g ns_per_op
fi

if wanted waitgroup; then
    run_ringo waitgroup.r waitgroup
    run_go waitgroup.g waitgroup
    row "WaitGroup fan-out 100k, round 1" "ms" lo "<=3" waitgroup.r waitgroup.g round1_ms
    row "WaitGroup fan-out 100k, round 2" "ms" lo "<=3" waitgroup.r waitgroup.g round2_ms
fi

# Cold starts: what a fresh goroutine costs the first time it is touched.
# The spawn phase of 100k goroutines that block on a channel (the first
# round pays a page fault per goroutine for its stack, whose top holds the
# goroutine's wait state, and a 63rd of one for its struct's line),
# those faults per goroutine, the WaitGroup fan-out on one and two procs,
# and the peak resident set of a goroutine that spawns 1M without yielding
# (what unstarted goroutines cost while they wait in a queue: Go preempts
# the spawner after 10 ms, ringo makes a spawn yield then or once 256 wait
# on its proc, so the most that wait at once is a row too), and what one
# unstarted goroutine costs (ringo: 200k spawned by a plain thread onto a
# proc that runs none of them; Go: the growth of that peak per goroutine
# waiting, none of which has started on one proc).
if wanted coldstart; then
    for p in 1 2; do
        run_ringo cold$p.r coldstart BENCH_PROCS=$p BENCH_COLD=block
        run_go cold$p.g coldstart BENCH_PROCS=$p BENCH_COLD=block
        run_ringo coldrss$p.r coldstart BENCH_PROCS=$p BENCH_COLD=rss
        run_go coldrss$p.g coldstart BENCH_PROCS=$p BENCH_COLD=rss
        run_ringo coldwg$p.r waitgroup BENCH_PROCS=$p
        run_go coldwg$p.g waitgroup BENCH_PROCS=$p
    done
    for p in 1 2; do
        s=$([ "$p" = 1 ] || echo s)
        row "100k that block on a chan, $p proc$s, round 1" "ms" lo "<=go" cold$p.r cold$p.g round1_ms
        row "  same, round 2" "ms" lo "<=go" cold$p.r cold$p.g round2_ms
        row "  same, round 1 page faults" "per g" lo "" cold$p.r cold$p.g faults_per_g
        row "WaitGroup fan-out 100k, $p proc$s, round 1" "ms" lo "<=3" coldwg$p.r coldwg$p.g round1_ms
        row "  same, round 2" "ms" lo "<=3" coldwg$p.r coldwg$p.g round2_ms
        row "  same, round 1 page faults" "per g" lo "" coldwg$p.r coldwg$p.g faults_per_g
        row "spawn 1M without yielding, $p proc$s: peak RSS" "MB" lo "<=go" coldrss$p.r coldrss$p.g peak_rss_mb
        row "  same, most goroutines waiting at once" "g" lo "" coldrss$p.r coldrss$p.g peak_waiting
        row "  bytes per unstarted goroutine" "B" lo "" coldrss$p.r coldrss$p.g bytes_per_unstarted
    done
fi

say ""
print_rows
for line in "${notes[@]+"${notes[@]}"}"; do say "$line"; done

# ------------------------------------------------------------- HTTP
# free_port: a loopback TCP port nobody listens on.
free_port() {
    local i p hex
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 40000))
        hex=$(printf ':%04X ' "$p")
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{ print $2 }' | grep -qi -- "${hex% }\$"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_listening PORT PID: until PORT accepts a connection (5 s at most).
wait_listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# server_start LABEL CMD...: start CMD PORT on a free port, its output in
# $tmp/server.out and server.err; sets port and server_pid.  False, having
# said why, if it is not listening within wait_listening's time.
server_start() {
    local label=$1
    shift
    port=$(free_port) || { say "  $label: no free port"; return 1; }
    "$@" "$port" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    wait_listening "$port" "$server_pid" && return 0
    say "  $label: failed to start: $(head -c 200 "$tmp/server.err" | tr '\n' ' ')"
    server_stop
    return 1
}

# server_stop: SIGTERM to the server, and wait for it.
server_stop() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}

# to_ms "12.70ms" / "594.00us" / "1.20s": milliseconds.
to_ms() {
    awk -v x="$1" 'BEGIN {
        n = x + 0; u = x; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# HTTP keep-alive hello, in two placements:
#   shared  the server on 2 procs/threads and wrk -t2 share every CPU, nothing
#           pinned (how a small box runs a server and its load);
#   pinned  the server on 1 proc/thread pinned to the first CPU of our
#           affinity mask, wrk -t1 pinned to the second (each has a CPU).
# Each run of a (server, placement, connections) cell is its own server
# process: started, warmed up for 1 s, loaded for BENCH_HTTP_SECONDS, stopped.  The
# server's CPU time (user + system, from /proc/PID/stat, all threads) is
# read just before and after the measured wrk run and divided by wrk's
# request count.  SQEs and io_uring_enter (epoll_wait) calls per request
# are the server's own counts between two marks (SIGUSR1, which ringo's
# httpd and the C baselines answer with a "bench=http-mark" line of their
# counters: httpd_common.h) taken inside the measured run, a fifth of it
# (half a second at most) after its start and before its end: keep-alive
# requests only, without the connections wrk opens at the start and the
# ends of its warm-up's and its own.  (A first mark before the run tells
# whether the server answers marks at all.)
#
# The client's CPU time (wrk's user + system, from the shell's `times`
# for its children) over the same requests: in the pinned placement, a
# client that uses its whole CPU (its CPU per request times req/s near 1)
# sets req/s whatever the server does.
#
# http_cell KEY PLACEMENT CONNS CMD...: one run of a cell; appends
# "rps p50ms p99ms sqes/req enters/req cpu-us/req client-cpu-us/req" ('-'
# where unknown) to $tmp/hc.KEY.PLACEMENT.CONNS, which hc_settle reduces to
# hc_KEY_PLACEMENT_CONNS.
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() { # PID: utime + stime of the whole process, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null
}
read -r cpu_a cpu_b < <(taskset -pc $$ 2>/dev/null | sed 's/.*: //' | tr ',' '\n' |
    awk -F- '{ if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }' | head -n 2 | tr '\n' ' ')
# http_mark N: ask the server for its counters (SIGUSR1) and wait, up to
# 2 s, for the N-th "bench=http-mark" line; false if it does not come.
http_mark() {
    kill -USR1 "$server_pid" 2>/dev/null || return 1
    mark_wait "$1"
}

# mark_wait N: wait, up to 2 s, for the N-th mark line; false if it does not come.
mark_wait() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -c '^bench=http-mark' "$tmp/server.out" 2>/dev/null)" -ge "$1" ] && return 0
        sleep 0.01
    done
    return 1
}

# mark_field N KEY: KEY's value in the N-th mark line.
mark_field() {
    grep '^bench=http-mark' "$tmp/server.out" | sed -n "${1}p" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

http_cell() {
    local key=$1 place=$2 c=$3 port out rps p50 p99 t0 t1 reqs line e q r marks=
    local spr=- epr=- upr=- wpr=- wcpu procs=2 run=() load=("$WRK" -t2)
    shift 3
    if [ "$place" = pinned ]; then
        procs=1
        run=(taskset -c "$cpu_a")
        load=(taskset -c "$cpu_b" "$WRK" -t1)
    fi
    server_start "$key ($place)" env BENCH_PROCS=$procs "${run[@]}" "$@" || {
        echo "? ? ? - - -" >>"$tmp/hc.$key.$place.$c"
        return
    }
    "${load[@]}" -c"$c" -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 # warm up
    # The servers that answer SIGUSR1 with a mark (the Go ones would die of it).
    case $key in ringo | ringoep | uring | epoll) http_mark 1 && marks=1 ;; esac
    t0=$(cpu_ticks "$server_pid")
    local mpid= edge
    if [ -n "$marks" ]; then # marks 2 and 3, inside the run (see above)
        edge=$(awk -v s="$http_secs" 'BEGIN { e = s / 5; if (e > 0.5) e = 0.5; print e }')
        (
            sleep "$edge"
            kill -USR1 "$server_pid"
            sleep "$(awk -v s="$http_secs" -v e="$edge" 'BEGIN { print s - 2 * e }')"
            kill -USR1 "$server_pid"
        ) 2>/dev/null &
        mpid=$!
    fi
    # `times`, last line: this subshell's children, i.e. the client.
    out=$("${load[@]}" -c"$c" -d"${http_secs}s" --latency "http://127.0.0.1:$port/" 2>&1; times)
    t1=$(cpu_ticks "$server_pid")
    [ -n "$mpid" ] && wait "$mpid"
    wcpu=$(printf '%s\n' "$out" | tail -n 1 | awk '{ s = 0; for (i = 1; i <= NF; i++) {
        split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] } print s }')
    [ -n "$marks" ] && { mark_wait 3 || marks=; }
    server_stop
    rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec:[[:space:]]*//p')
    reqs=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*\([0-9][0-9]*\) requests in .*/\1/p')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
    p50=${p50:+$(to_ms "$p50")}
    p99=${p99:+$(to_ms "$p99")}
    errs=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*Socket errors: //p; s/^[[:space:]]*Non-2xx or 3xx responses: /non-2xx /p' | tr '\n' ' ')
    [ -n "$errs" ] && say "  $key ($place, c$c): $errs"
    isnum "$t0" && isnum "$t1" && isnum "$reqs" && [ "$reqs" -gt 0 ] &&
        upr=$(awk -v a="$t0" -v b="$t1" -v r="$reqs" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / r }')
    isnum "$wcpu" && isnum "$reqs" && [ "$reqs" -gt 0 ] &&
        wpr=$(awk -v w="$wcpu" -v r="$reqs" 'BEGIN { printf "%.2f", w * 1e6 / r }')
    if [ -n "$marks" ]; then
        # The counts between the marks (a few requests may fall on the
        # other side of a mark: the signal is handled while serving).
        local r1 e1 q1
        r=$(mark_field 3 requests) e=$(mark_field 3 enters) q=$(mark_field 3 sqes)
        r1=$(mark_field 2 requests) e1=$(mark_field 2 enters) q1=$(mark_field 2 sqes)
        if isnum "$r" && isnum "$r1" && [ "$((r - r1))" -gt 0 ]; then
            isnum "$e" && isnum "$e1" && epr=$(awk -v a="$e1" -v b="$e" -v n="$((r - r1))" 'BEGIN { printf "%.3f", (b - a) / n }')
            isnum "$q" && isnum "$q1" && spr=$(awk -v a="$q1" -v b="$q" -v n="$((r - r1))" 'BEGIN { printf "%.2f", (b - a) / n }')
        fi
    fi
    line=$(grep '^bench=http ' "$tmp/server.out" | tail -n 1)
    if [ -z "$marks" ] && [ -n "$line" ]; then
        e=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^enters=//p')
        q=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^sqes=//p')
        r=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^requests=//p')
        if isnum "$r" && [ "$r" -gt 0 ]; then
            isnum "$e" && epr=$(awk -v e="$e" -v r="$r" 'BEGIN { printf "%.3f", e / r }')
            isnum "$q" && spr=$(awk -v q="$q" -v r="$r" 'BEGIN { printf "%.2f", q / r }')
        fi
    fi
    echo "${rps:-?} ${p50:-?} ${p99:-?} $spr $epr $upr $wpr" >>"$tmp/hc.$key.$place.$c"
}

# hc_settle KEY PLACEMENT CONNS: the cell's figures, each the median of its
# runs (runs_median, field by field; '?' for a req/s or latency, '-' for a
# count, when no run gave a number).
hc_settle() {
    local f v out=
    for f in 1 2 3 4 5 6 7; do
        v=$(runs_median "hc.$1.$2.$3" "$f")
        [ "$v" = - ] && [ "$f" -le 3 ] && v='?'
        [ "$v" = '?' ] && [ "$f" -gt 3 ] && v=-
        out="$out${out:+ }$v"
    done
    eval "hc_$1_$2_$3=\"$out\""
}

# hc_pair KEY PLACEMENT CONNS FIELD OTHER...: the median over the rounds
# of KEY's figure divided by the best of the OTHER servers' in the same
# round (the highest for req/s, field 1; else the lowest), three decimals;
# '-' if no round has all of them.  The servers of a round run one after
# the other within seconds, so a slow spell of the host, which moves every
# server's figures alike, moves the ratio less than it moves the medians.
hc_pair() {
    local key=$1 place=$2 c=$3 f=$4 o files=()
    shift 4
    for o in "$key" "$@"; do
        [ -s "$tmp/hc.$o.$place.$c" ] || { printf -- '-'; return; }
        files+=("$tmp/hc.$o.$place.$c")
    done
    awk -v f="$f" -v n="${#files[@]}" '
        FNR == 1 { file++ }
        { v[file, FNR] = $f; if (FNR > rounds) rounds = FNR }
        END {
            k = 0
            for (r = 1; r <= rounds; r++) {
                x = v[1, r]; best = ""
                if (x !~ /^[0-9.]+$/ || x <= 0) continue
                for (i = 2; i <= n; i++) {
                    y = v[i, r]
                    if (y !~ /^[0-9.]+$/ || y <= 0) continue
                    if (best == "" || (f == 1 ? y > best : y < best)) best = y
                }
                if (best != "") q[++k] = x / best
            }
            if (!k) { printf "-"; exit }
            for (i = 2; i <= k; i++) for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
            printf "%.3f", k % 2 ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2
        }' "${files[@]}"
}

# hc KEY PLACEMENT CONNS FIELD: one figure of a cell (1 rps, 2 p50, 3 p99,
# 4 SQEs/req, 5 enters/req, 6 CPU us/req, 7 client CPU us/req).
hc() {
    local v
    eval "v=\${hc_$1_$2_$3:-}"
    [ -n "$v" ] || { printf -- '-'; return; }
    printf '%s\n' "$v" | awk -v f="$4" '{ print $f }'
}

if wanted http; then
    say ""
    if [ -z "$WRK" ]; then
        say "HTTP/1.1 hello: wrk not found, skipped (install wrk, or RINGO_BENCH_DEPS=1 ./bootstrap)"
    else
        places=shared
        if [ -n "${cpu_b:-}" ] && command -v taskset >/dev/null 2>&1; then
            places="shared pinned"
        else
            say "HTTP/1.1 hello: fewer than 2 CPUs in the affinity mask (or no taskset): the pinned placement is skipped"
        fi
        say "HTTP/1.1 hello, keep-alive (${http_repeat} runs of ${http_secs} s per server and cell, taking turns; placements: ${places}) ..."
        servers=()
        if [ -x "$bindir/httpd" ]; then
            servers+=("ringo|ringo httpd (example)|$bindir/httpd")
            case " $engines " in
            *" epoll "*) servers+=("ringoep|ringo httpd, epoll engine|$bindir/httpd") ;;
            esac
        else
            say "  ringo httpd: $(ringo_missing httpd)"
        fi
        for s in uring epoll; do
            if [ -x "$bindir/${s}_httpd" ]; then
                servers+=("$s|C ${s}_httpd|$bindir/${s}_httpd")
            else
                say "  C ${s}_httpd: not built"
            fi
        done
        if go_build httpd_raw; then
            servers+=("goraw|Go raw TCP|$gobin/httpd_raw")
        else
            say "  Go raw TCP: ${go_ok:+build failed}${go_ok:-go not found}"
        fi
        if go_build httpd_nethttp; then
            servers+=("nethttp|Go net/http|$gobin/httpd_nethttp")
        else
            say "  Go net/http: ${go_ok:+build failed}${go_ok:-go not found}"
        fi
        # Each cell's servers take turns, http_repeat rounds of them, so that
        # a slow spell of the machine falls on all of them alike.
        for place in $places; do
            for c in 100 1000; do
                for ((round = 1; round <= http_repeat; round++)); do
                    for sv in "${servers[@]}"; do
                        IFS='|' read -r key label cmd <<<"$sv"
                        if [ "$key" = ringoep ]; then
                            http_cell "$key" "$place" "$c" env RINGO_ENGINE=epoll "$cmd"
                        else
                            http_cell "$key" "$place" "$c" "$cmd"
                        fi
                    done
                done
                for sv in "${servers[@]}"; do
                    IFS='|' read -r key label cmd <<<"$sv"
                    hc_settle "$key" "$place" "$c"
                done
            done
        done
        for place in $places; do
            say ""
            case $place in
            shared) say "placement shared: server on 2 procs/threads, wrk -t2, all sharing the CPUs" ;;
            pinned) say "placement pinned: server on 1 proc/thread on CPU $cpu_a, wrk -t1 on CPU $cpu_b" ;;
            esac
            printf '%-24s| %5s | %10s | %7s | %7s | %8s | %10s | %17s | %s\n' "server" "conns" "req/s" \
                "p50 ms" "p99 ms" "SQEs/req" "enters/req" "server CPU us/req" "client CPU us/req"
            printf '%s\n' "------------------------+-------+------------+---------+---------+----------+------------+-------------------+------------------"
            for c in 100 1000; do
                for sv in "${servers[@]}"; do
                    IFS='|' read -r key label cmd <<<"$sv"
                    printf '%-24s| %5s | %10s | %7s | %7s | %8s | %10s | %17s | %s\n' "$label" "$c" \
                        "$(fmt "$(hc "$key" "$place" "$c" 1)")" "$(hc "$key" "$place" "$c" 2)" \
                        "$(hc "$key" "$place" "$c" 3)" "$(hc "$key" "$place" "$c" 4)" \
                        "$(hc "$key" "$place" "$c" 5)" "$(hc "$key" "$place" "$c" 6)" \
                        "$(hc "$key" "$place" "$c" 7)"
                done
            done
        done

        # The DESIGN.md targets, per placement and connection count.
        say ""
        if [ -x "$bindir/httpd" ]; then
            for place in $places; do
                for c in 100 1000; do
                    r=$(hc ringo "$place" "$c" 1)
                    best=$(printf '%s\n' "$(hc uring "$place" "$c" 1)" "$(hc epoll "$place" "$c" 1)" |
                        grep -E '^[0-9.]+$' | sort -g | tail -n 1)
                    lim() { # FIELD: 1.1x the liburing loop's figure
                        local u
                        u=$(hc uring "$place" "$c" "$1")
                        isnum "$u" && awk -v u="$u" 'BEGIN { printf "%.3f", 1.1 * u }' || printf -- '-'
                    }
                    say "target $place c$c: req/s >= best C baseline ($(fmt "${best:-?}")): $(met "$r" ">=${best:-x}");" \
                        "p50 <= $(lim 2) ms: $(met "$(hc ringo "$place" "$c" 2)" "<=$(lim 2)");" \
                        "p99 <= $(lim 3) ms: $(met "$(hc ringo "$place" "$c" 3)" "<=$(lim 3)")"
                    say "    the same, round by round (median of ringo's figure over the other's in each" \
                        "round): req/s over the best C baseline $(hc_pair ringo "$place" "$c" 1 uring epoll)," \
                        "p50 over liburing's $(hc_pair ringo "$place" "$c" 2 uring)," \
                        "p99 $(hc_pair ringo "$place" "$c" 3 uring)," \
                        "CPU/req $(hc_pair ringo "$place" "$c" 6 uring)"
                    busy() { # KEY FIELD: the share of a CPU that figure's time a request takes at the cell's req/s
                        awk -v r="$(hc "$1" "$place" "$c" 1)" -v u="$(hc "$1" "$place" "$c" "$2")" \
                            'BEGIN { if (r ~ /^[0-9.]+$/ && u ~ /^[0-9.]+$/) printf "%.2f", r * u / 1e6; else printf "-" }'
                    }
                    say "    CPUs busy (req/s x CPU per request), server / client: ringo $(busy ringo 6) / $(busy ringo 7)," \
                        "liburing loop $(busy uring 6) / $(busy uring 7), epoll loop $(busy epoll 6) / $(busy epoll 7)"
                    say "    SQEs/req <= 2: $(met "$(hc ringo "$place" "$c" 4)" "<=2");" \
                        "enters/req <= 0.1: $(met "$(hc ringo "$place" "$c" 5)" "<=0.1");" \
                        "CPU us/req <= $(lim 6) (1.1x liburing): $(met "$(hc ringo "$place" "$c" 6)" "<=$(lim 6)")"
                    case " $engines " in
                    *" epoll "*)
                        g=$(hc goraw "$place" "$c" 1)
                        say "    epoll engine: req/s >= Go raw TCP ($(fmt "$g")): $(met "$(hc ringoep "$place" "$c" 1)" ">=${g:-x}")" ;;
                    esac
                done
            done
        else
            say "targets: not checked, ringo's server is not built"
        fi
        say "SQEs/req, enters/req: submissions and io_uring_enter (epoll_wait for epoll) calls per keep-alive"
        say "request, as counted by the server between two marks inside the measured run (its connections'"
        say "set-up and ends left out; '-': it does not count them).  server CPU:"
        say "the server process's user + system time during the measured run over wrk's requests"
        say "(${clk_tck} Hz ticks); client CPU: wrk's, over the same requests.  CPUs busy: how many CPUs"
        say "that time fills at the cell's req/s; pinned, a client near 1.00 has all of its CPU, and"
        say "req/s then measures the client as much as the server."
    fi
fi

# ------------------------------------------------------------- churn
# churn_once LABEL TAG CMD...: one server run loaded with Connection: close
# at c100; appends "rps p99 enters/req sqes/req cpu-us/req" to
# $tmp/churn.TAG.
churn_once() {
    local label=$1 tag=$2 port out rps p99 line e r q u epr=- spr=- upr=-
    shift 2
    server_start "$label" env BENCH_PROCS=2 "$@" || return
    "$WRK" -t2 -c100 -d1s -H 'Connection: close' "http://127.0.0.1:$port/" >/dev/null 2>&1
    out=$("$WRK" -t2 -c100 -d"${http_secs}s" --latency -H 'Connection: close' \
        "http://127.0.0.1:$port/" 2>&1)
    server_stop
    rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec:[[:space:]]*//p')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
    p99=${p99:+$(to_ms "$p99")}
    line=$(grep '^bench=http' "$tmp/server.out" | tail -n 1)
    if [ -n "$line" ]; then
        e=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^enters=//p')
        q=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^sqes=//p')
        u=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^cpu_us=//p')
        r=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^requests=//p')
        if isnum "$r" && [ "$r" -gt 0 ]; then
            isnum "$e" && epr=$(awk -v e="$e" -v r="$r" 'BEGIN { printf "%.3f", e / r }')
            isnum "$q" && spr=$(awk -v q="$q" -v r="$r" 'BEGIN { printf "%.2f", q / r }')
            isnum "$u" && upr=$(awk -v u="$u" -v r="$r" 'BEGIN { printf "%.1f", u / r }')
        fi
    fi
    isnum "${rps:-}" && printf '%s %s %s %s %s\n' "$rps" "${p99:-?}" "$epr" "$spr" "$upr" >>"$tmp/churn.$tag"
}


if wanted churn; then
    say ""
    if [ -z "$WRK" ]; then
        say "HTTP churn (Connection: close): wrk not found, skipped"
    elif [ ! -x "$bindir/httpd" ]; then
        say "HTTP churn (Connection: close): ringo's httpd is not built, skipped"
    else
        say "HTTP churn: a new connection per request (wrk -t2 -c100 -H 'Connection: close'),"
        say "server on 2 procs/threads, ${http_secs} s per run, ${repeat} runs each, alternated, median ..."
        go_build httpd_nethttp && churn_go=1 || churn_go=
        for ((i = 0; i < repeat; i++)); do
            churn_once "ringo multishot" ms "$bindir/httpd"
            churn_once "ringo single-shot" ss env RINGO_NO_MULTISHOT=1 "$bindir/httpd"
            [ -n "$churn_go" ] && churn_once "Go net/http" go "$gobin/httpd_nethttp"
        done
        say ""
        printf '%-34s| %10s | %9s | %10s | %8s | %s\n' "server" "req/s" "p99 ms" "enters/req" \
            "SQEs/req" "server CPU us/req"
        printf '%s\n' "----------------------------------+------------+-----------+------------+----------+------------------"
        for t in ms ss go; do
            case $t in
            ms) label="ringo (multishot accept)" ;;
            ss) label="ringo RINGO_NO_MULTISHOT=1" ;;
            go) [ -n "$churn_go" ] || continue; label="Go net/http" ;;
            esac
            printf '%-34s| %10s | %9s | %10s | %8s | %s\n' "$label" "$(fmt "$(runs_median churn.$t 1)")" \
                "$(runs_median churn.$t 2)" "$(runs_median churn.$t 3)" "$(runs_median churn.$t 4)" "$(runs_median churn.$t 5)"
        done
        if [ -s "$tmp/churn.ms" ] && [ -s "$tmp/churn.ss" ]; then
            say "  every run, req/s: multishot $(awk '{ printf "%s ", $1 }' "$tmp/churn.ms")| single-shot $(awk '{ printf "%s ", $1 }' "$tmp/churn.ss")"
            say "  every run, server CPU us/req: multishot $(awk '{ printf "%s ", $5 }' "$tmp/churn.ms")| single-shot $(awk '{ printf "%s ", $5 }' "$tmp/churn.ss")"
        fi
        say "enters/req, SQEs/req, server CPU us/req: io_uring_enter calls, submissions and the server"
        say "process's CPU time (user + system) per request over the whole run (warm-up included), as"
        say "counted by ringo's server; the CPU figure moves less with other load on the machine than req/s."
    fi
fi

# ------------------------------------------------------------- kv
# kv_cell KEY CMD...: start the server CMD... on a free port (it takes the
# port as its last argument), run redis-benchmark on it without and with
# pipelining, stop it; sets kv_KEY_{SET,GET}_{1,16} to the requests/s.
kv_cell() {
    local key=$1 port p line t rps
    shift
    server_start "$key" "$@" || return
    for p in 1 16; do
        "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -t set,get -n "$kv_requests" -c 50 -r 100000 \
            -P "$p" --csv >"$tmp/rb.out" 2>"$tmp/rb.err" ||
            say "  $key -P $p: redis-benchmark failed: $(head -c 200 "$tmp/rb.err" | tr '\n' ' ')"
        grep -q WARNING "$tmp/rb.err" && say "  $key -P $p: $(grep WARNING "$tmp/rb.err" | head -n 1)"
        while IFS=, read -r t rps line; do
            t=${t//\"/}
            rps=${rps//\"/}
            case $t in SET | GET) isnum "$rps" && eval "kv_${key}_${t}_$p=$rps" ;; esac
        done <"$tmp/rb.out"
    done
    server_stop
    grep -h 'commands on' "$tmp/server.err" | sed "s/^kv: /  $key: /"
}

kvv() { # KEY TEST P: a figure, or '-'
    local v
    eval "v=\${kv_$1_$2_$3:-}"
    printf '%s' "${v:--}"
}

if wanted kv; then
    say ""
    if [ -z "$REDIS_BENCHMARK" ]; then
        say "Redis protocol (examples/kv): redis-benchmark not found, skipped (install redis-tools)"
    elif [ ! -x "$kv_prog" ]; then
        say "Redis protocol (examples/kv): $kv_prog not built, skipped (make)"
    else
        say "Redis protocol: redis-benchmark -t set,get -n $kv_requests -c 50 -r 100000, without and with -P 16,"
        say "one run per cell, every server on this machine's CPUs beside redis-benchmark ..."
        kv_servers=("kv2|kv (example), 2 procs" "kv1|kv (example), 1 proc")
        kv_cell kv2 "$kv_prog" -t 2 -p
        kv_cell kv1 "$kv_prog" -t 1 -p
        if [ -n "$REDIS_SERVER" ]; then
            mkdir -p "$tmp/redis"
            kv_servers+=("redis|$("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/redis-server \1/p')")
            kv_cell redis "$REDIS_SERVER" --bind 127.0.0.1 --save '' --appendonly no \
                --dir "$tmp/redis" --logfile '' --port
        else
            say "  redis-server not found: no comparison (install redis-server)"
        fi
        say ""
        printf '%-30s| %10s | %10s | %12s | %12s\n' "server (req/s)" "SET" "GET" "SET -P 16" "GET -P 16"
        printf '%s\n' "------------------------------+------------+------------+--------------+-------------"
        for sv in "${kv_servers[@]}"; do
            IFS='|' read -r key label <<<"$sv"
            printf '%-30s| %10s | %10s | %12s | %12s\n' "$label" \
                "$(fmt "$(kvv "$key" SET 1)")" "$(fmt "$(kvv "$key" GET 1)")" \
                "$(fmt "$(kvv "$key" SET 16)")" "$(fmt "$(kvv "$key" GET 16)")"
        done
        if [ -n "$REDIS_SERVER" ]; then
            for key in kv2 kv1; do
                label="kv ${key#kv} proc$([ "$key" = kv1 ] || echo s) / redis-server"
                r() { # TEST P: kv / redis-server
                    local a b
                    a=$(kvv "$key" "$1" "$2")
                    b=$(kvv redis "$1" "$2")
                    isnum "$a" && isnum "$b" && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }' ||
                        printf -- '-'
                }
                printf '%-30s| %10s | %10s | %12s | %12s\n' "$label" \
                    "$(r SET 1)" "$(r GET 1)" "$(r SET 16)" "$(r GET 16)"
            done
        fi
        say "redis-server runs its commands on one thread; kv on 1 proc is the like-for-like row."
    fi
fi

# ------------------------------------------------------------- client
# The load client of the demo, examples/load (written with ringo), beside
# wrk: each loads ringo's httpd (2 procs) with 50 keep-alive connections
# for http_secs, alternated, BENCH_REPEAT runs each.  The client's own CPU
# time per request shows which of the two costs the machine more; on a
# box where client and server share the CPUs, the cheaper client leaves
# more to the server.

# children_cpu VAR: set VAR to the user + system CPU seconds of the
# waited-for children (`times` in this shell: a subshell has its own).
children_cpu() {
    times >"$tmp/times"
    printf -v "$1" '%s' "$(tail -n 1 "$tmp/times" |
        awk '{ for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } printf "%.3f", s }')"
}

# client_once TAG CMD...: one run of CMD URL against a fresh server;
# appends "rps client-cpu-us/req" to $tmp/client.TAG.
client_once() {
    local tag=$1 port out rps reqs c0 c1 upr=-
    shift
    server_start "$tag" env BENCH_PROCS=2 "$bindir/httpd" || return
    "$WRK" -t2 -c50 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 # warm up
    children_cpu c0
    out=$("$@" "http://127.0.0.1:$port/" 2>/dev/null)
    children_cpu c1 # before the server is waited for: the client's time only
    server_stop
    rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p')
    reqs=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*\([0-9][0-9]*\) requests in .*/\1/p')
    isnum "${reqs:-}" && [ "$reqs" -gt 0 ] &&
        upr=$(awk -v a="$c0" -v b="$c1" -v r="$reqs" 'BEGIN { printf "%.2f", (b - a) * 1e6 / r }')
    isnum "${rps:-}" && printf '%s %s\n' "$rps" "$upr" >>"$tmp/client.$tag"
}

if wanted client; then
    say ""
    if [ -z "$WRK" ]; then
        say "Load client: wrk not found, skipped"
    elif [ ! -x "$LOAD" ] || [ ! -x "$bindir/httpd" ]; then
        say "Load client: examples/load or ringo's httpd is not built, skipped"
    else
        say "Load client: examples/load beside wrk, each with 50 keep-alive connections (2 threads"
        say "or procs) against ringo's httpd on 2 procs, ${http_secs} s per run, ${repeat} runs each,"
        say "alternated, median ..."
        for ((i = 0; i < repeat; i++)); do
            client_once wrk "$WRK" -t2 -c50 -d"${http_secs}s"
            client_once load "$LOAD" -c50 -t2 -d"$http_secs"
        done
        say ""
        printf '%-34s| %10s | %s\n' "client" "req/s" "client CPU us/req"
        printf '%s\n' "----------------------------------+------------+------------------"
        printf '%-34s| %10s | %s\n' "wrk -t2 -c50" "$(fmt "$(runs_median client.wrk 1)")" \
            "$(runs_median client.wrk 2)"
        printf '%-34s| %10s | %s\n' "examples/load -t2 -c50" "$(fmt "$(runs_median client.load 1)")" \
            "$(runs_median client.load 2)"
        lw=$(runs_median client.wrk 1)
        ll=$(runs_median client.load 1)
        isnum "$lw" && isnum "$ll" &&
            say "  examples/load vs wrk, req/s: $(awk -v a="$ll" -v b="$lw" 'BEGIN { printf "%.2fx", a / b }')"
        say "  every run, req/s: wrk $(awk '{ printf "%s ", $1 }' "$tmp/client.wrk" 2>/dev/null)| load $(awk '{ printf "%s ", $1 }' "$tmp/client.load" 2>/dev/null)"
    fi
fi
exit 0
