# tests/bench/lib.sh - what the benchmark commands share: building, a private
# redis-server and services on free loopback ports, measuring with
# redis-benchmark, bench_rpc and wrk into one table, memory readings, and the
# report with ratios to a reference measured in the same run.
#
# A benchmark script sets BENCH_NAME and BENCH_TARGETS, sources this file,
# starts what it needs, adds rows with bench_* and ends with bench_report.
# Settings: BUILD_DIR (default build), BENCH_SECONDS (default 10),
# BENCH_NO_BUILD=1 to skip the build step, BENCH_PEER (1: the scripts that
# compare against the Node peer start it and fail when it cannot start; 0:
# skip it, as the smoke runs of tests/run do), BENCH_ROUNDS (default 3:
# rounds of alternate runs of ours and the peer), BENCH_WARMUP (default 3:
# seconds of unrecorded wrk against each before them), PEER_NODE_DIR
# (default $ROOT/../shared/peer-node), BENCH_RPC_SECRET (default 1: every
# process of the run signs its internal traffic with one generated
# RPC_SECRET, as deployed; 0: unsigned).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SECONDS_EACH=${BENCH_SECONDS:-10}
BENCH_PEER=${BENCH_PEER:-1}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
PEER_NODE_DIR=${PEER_NODE_DIR:-$ROOT/../shared/peer-node}
if [ "${BENCH_RPC_SECRET:-1}" = 1 ]; then
    RPC_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    export RPC_SECRET
else
    unset RPC_SECRET
fi

die() { echo "bench: $*" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools wrk curl python3)"
done

if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
    echo "bench: building ${BENCH_TARGETS[*]} in $BUILD" >&2
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" -j2 --target "${BENCH_TARGETS[@]}" >/dev/null
fi
BENCH_RPC="$BUILD/tests/bench/bench_rpc"

WORK=$(mktemp -d "/tmp/bench-$BENCH_NAME.XXXXXX")
PIDS=()
MEM=()          # "name pid" of each process whose memory is reported
RESULTS="$WORK/results.tsv"   # name, ops/s, p50 ms, p99 ms, errors
: >"$RESULTS"
bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a loopback port free now and not handed out before in this run
# (kept in a file: callers use $(free_port), a subshell).
free_port() {
    local p
    while :; do
        p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        grep -qx "$p" "$WORK/ports" 2>/dev/null || break
    done
    echo "$p" >>"$WORK/ports"
    echo "$p"
}

# Memory of a process, in KiB: vm_kib PID VmRSS|VmHWM.
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# bench_start_redis: a private redis-server; sets REDIS_PORT, REDIS_PID, REDIS_URL.
bench_start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
        --daemonize no >"$WORK/redis.log" 2>&1 </dev/null &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    MEM+=("redis-server $REDIS_PID")
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not start"
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    unset KV_URL
}

# bench_start NAME: one of our services from the build tree (environment as
# set by the caller); sets LAST_PID.
bench_start() {
    local bin="$BUILD/services/$1/$1"
    [ -x "$bin" ] || die "missing $bin (build first)"
    "$bin" >"$WORK/$1.log" 2>&1 </dev/null &
    local pid=$!
    LAST_PID=$pid
    PIDS+=("$pid")
    MEM+=("$1 $pid")
}

# bench_wait_ready URL: wait for the gateway's /readyz.
bench_wait_ready() {
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$1/readyz" || true)" = 200 ] && return 0
        sleep 0.1
    done
    tail -n 20 "$WORK"/*.log >&2
    die "gateway not ready at $1/readyz within 30 s"
}

# bench_start_stack: the stack as deploy/local-stack runs it: progress,
# coordinator, sync-worker and gateway, talking over unix sockets in $WORK
# (BENCH_TRANSPORT=tcp: over free loopback ports). The sync-worker runs with
# SYNC_CONCURRENCY=0 (it serves its RPC, which /readyz pings, and syncs
# nothing: no bench here has accounts). Sets TOKEN, URL, HTTP_PORT and
# GATEWAY_PID; returns when /readyz answers 200.
bench_addr() {
    if [ "${BENCH_TRANSPORT:-ipc}" = tcp ]; then
        echo "tcp://127.0.0.1:$(free_port)"
    else
        mkdir -p "$WORK/run"
        echo "ipc://$WORK/run/$1.sock"
    fi
}

bench_start_stack() {
    case "${BENCH_TRANSPORT:-ipc}" in ipc | tcp) ;; *) die "BENCH_TRANSPORT must be ipc or tcp" ;; esac
    export PROGRESS_RPC_URL=$(bench_addr progress-rpc)
    export PROGRESS_EVENTS_URL=$(bench_addr progress-events)
    export COORDINATOR_RPC_URL=$(bench_addr coordinator-rpc)
    export COORDINATOR_EVENTS_URL=$(bench_addr coordinator-events)
    export SYNC_WORKER_RPC_URL=$(bench_addr sync-rpc)
    export SYNC_WORKER_EVENTS_URL=$(bench_addr sync-events)
    HTTP_PORT=$(free_port)
    export GATEWAY_LISTEN="127.0.0.1:$HTTP_PORT"
    TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    export API_TOKEN="$TOKEN"
    ENCRYPTION_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    export ENCRYPTION_KEY
    export LOG_LEVEL=${LOG_LEVEL:-warn}
    unset API_READ_ONLY_TOKEN CRON_SECRET
    URL="http://127.0.0.1:$HTTP_PORT"
    bench_start progress
    bench_start coordinator
    SYNC_CONCURRENCY=0 bench_start sync-worker
    bench_start gateway
    GATEWAY_PID=$LAST_PID
    bench_wait_ready "$URL"
}

# bench_start_peer: the Express peer (PEER_NODE_DIR, copied to $WORK/peer and
# installed there with npm ci, since that folder may be read-only) with two
# cluster workers on a free port, on the bench's Redis in db 1, with the same
# API_TOKEN. Sets PEER_URL. Dies when it cannot start: a comparison without
# its peer is no comparison.
bench_start_peer() {
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "the Node peer needs node and npm (apt-get install nodejs npm), or run with BENCH_PEER=0"
    [ -f "$PEER_NODE_DIR/server.js" ] || die "no peer at $PEER_NODE_DIR (set PEER_NODE_DIR)"
    mkdir -p "$WORK/peer"
    cp "$PEER_NODE_DIR/server.js" "$PEER_NODE_DIR/package.json" "$PEER_NODE_DIR/package-lock.json" \
        "$WORK/peer/"
    echo "bench: npm ci of the Node peer in $WORK/peer" >&2
    (cd "$WORK/peer" && npm ci --omit=dev --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1 ||
        { tail -n 20 "$WORK/npm.log" >&2; die "npm ci of the peer failed"; }
    local port
    port=$(free_port)
    (cd "$WORK/peer" && CLUSTER=2 PORT="$port" HOST=127.0.0.1 API_TOKEN="$TOKEN" \
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" exec node server.js) >"$WORK/peer.log" 2>&1 </dev/null &
    local pid=$!
    PIDS+=("$pid")
    PEER_URL="http://127.0.0.1:$port"
    local code=
    for _ in $(seq 1 200); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H "Authorization: Bearer $TOKEN" \
            "$PEER_URL/api/progress/bench-peer-probe" || true)
        [ "$code" = 404 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # The cluster workers are the primary's children: note them so that
    # the cleanup ends them even if the primary is gone.
    local w
    for w in $(cat "/proc/$pid/task/$pid/children" 2>/dev/null); do PIDS+=("$w"); done
    [ "$code" = 404 ] || { tail -n 20 "$WORK/peer.log" >&2; die "the Node peer did not start at $PEER_URL"; }
}

# bench_mem_idle: record every process's RSS now, as its idle figure.
bench_mem_idle() {
    local entry name pid
    : >"$WORK/mem-idle"
    for entry in "${MEM[@]}"; do
        read -r name pid <<<"$entry"
        echo "$name $(vm_kib "$pid" VmRSS)" >>"$WORK/mem-idle"
    done
}

# bench_redis LABEL redis-benchmark-args...: one row from redis-benchmark.
bench_redis() {
    local label=$1
    shift
    local line
    line=$(redis-benchmark -p "$REDIS_PORT" --csv "$@" | grep -v '^"test"' | tail -n 1)
    echo "  $label: $line" >&2
    echo "$line" | awk -F'"' -v l="$label" '{ printf "%s\t%s\t%s\t%s\t0\n", l, $4, $10, $14 }' >>"$RESULTS"
}

# bench_rpc LABEL bench_rpc-args...: one row from bench_rpc.
bench_rpc() {
    local label=$1
    shift
    local line
    line=$("$BENCH_RPC" "$@")
    echo "  $label: $line" >&2
    echo "$line" | python3 -c '
import sys
kv = dict(f.split("=", 1) for f in sys.stdin.read().split()[1:])
print("%s\t%s\t%s\t%s\t%s" % (sys.argv[1], kv["ops_per_s"], kv["p50_ms"], kv["p99_ms"], kv["errors"]))' "$label" >>"$RESULTS"
}

# wrk_once CONNECTIONS LUA URL [THREADS] [PER]: one wrk run, its output on
# stderr; prints "ops/s p50_ms p99_ms errors", where ops/s is requests/s
# over PER (default 1: a script sending PER requests per operation).
# THREADS defaults to 2 (1 for one connection).
wrk_once() {
    local c=$1 lua=$2 url=$3 threads=${4:-$(($1 < 2 ? 1 : 2))} per=${5:-1}
    local out
    out=$(wrk -t"$threads" -c"$c" -d"${SECONDS_EACH}s" --latency -s "$lua" "$url")
    echo "$out" | sed 's/^/  /' >&2
    echo "$out" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    m = re.match(r"([0-9.]+)(us|ms|s)$", v)
    n = float(m.group(1))
    return {"us": n / 1000.0, "ms": n, "s": n * 1000.0}[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errs = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m: errs += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m: errs += sum(int(x) for x in m.groups())
print("%.1f %.3f %.3f %d" % (rps / float(sys.argv[1]), p50, p99, errs))
' "$per"
}

# bench_wrk LABEL CONNECTIONS LUA URL [THREADS] [PER]: one row from wrk.
bench_wrk() {
    local label=$1
    shift
    local ops p50 p99 errs
    read -r ops p50 p99 errs < <(wrk_once "$@")
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$ops" "$p50" "$p99" "$errs" >>"$RESULTS"
}

# bench_rounds CONNECTIONS THREADS SPEC...: wrk runs in rounds, each SPEC
# "LABEL|ours-or-peer|LUA|PATH|PER" once a round in the order given (PATH
# on $URL for ours, $PEER_URL for the peer), ROUNDS rounds, after an
# unrecorded warm-up of each (Node's JIT, our first connections) when the
# peer runs. Specs of the peer are left out with BENCH_PEER=0. Each LABEL's
# row holds the median of each column (errors: the sum); every run goes to
# rounds.tsv for bench_compare.
bench_rounds() {
    local c=$1 threads=$2
    shift 2
    local spec label who lua path per base i specs=()
    for spec in "$@"; do
        IFS='|' read -r label who lua path per <<<"$spec"
        [ "$who" = peer ] && [ "$BENCH_PEER" != 1 ] && continue
        specs+=("$spec")
    done
    if [ "$BENCH_PEER" = 1 ]; then
        for spec in "${specs[@]}"; do
            IFS='|' read -r label who lua path per <<<"$spec"
            base=$URL
            [ "$who" = peer ] && base=$PEER_URL
            echo "bench: $label, warm-up, ${WARMUP} s" >&2
            SECONDS_EACH=$WARMUP wrk_once "$c" "$lua" "$base$path" "$threads" "$per" >/dev/null 2>&1
        done
    fi
    local runs="$WORK/runs.$RANDOM$RANDOM"
    for i in $(seq 1 "$ROUNDS"); do
        for spec in "${specs[@]}"; do
            IFS='|' read -r label who lua path per <<<"$spec"
            base=$URL
            [ "$who" = peer ] && base=$PEER_URL
            echo "bench: $label, round $i of $ROUNDS" >&2
            printf '%s\t%s\t%s\n' "$label" "$i" "$(wrk_once "$c" "$lua" "$base$path" "$threads" "$per")" \
                >>"$runs"
        done
    done
    cat "$runs" >>"$WORK/rounds.tsv"
    python3 - "$runs" >>"$RESULTS" <<'PY'
import statistics, sys
by, order = {}, []
for l in open(sys.argv[1]):
    label, _, fig = l.rstrip("\n").split("\t")
    if label not in by:
        order.append(label)
    by.setdefault(label, []).append([float(x) for x in fig.split()])
for label in order:
    r = by[label]
    med = [statistics.median(x[i] for x in r) for i in range(3)]
    print("%s\t%.1f\t%.3f\t%.3f\t%d" % (label, med[0], med[1], med[2], sum(x[3] for x in r)))
    sys.stderr.write("  %s: ops/s of each round %s\n" % (label, " ".join("%.0f" % x[0] for x in r)))
PY
}

# bench_compare TITLE OURS_LABEL PEER_LABEL: bench_report prints, under TITLE,
# the rows' medians and ours over the peer round by round (each round's run
# of ours over the peer's of the same round: load from elsewhere drifts
# more slowly than a round) and their median, which the aims get as
# peer[TITLE]. Nothing with BENCH_PEER=0.
bench_compare() {
    [ "$BENCH_PEER" = 1 ] && printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/pairs"
    return 0
}

# bench_wrk_peer LABEL CONNECTIONS LUA PATH [THREADS] [PER]: the same wrk
# script against ours and the peer, alternately (ours first), ROUNDS times
# each: rows "LABEL: ours" and "LABEL: peer", compared under LABEL.
bench_wrk_peer() {
    local label=$1 c=$2 lua=$3 path=$4 threads=${5:-$(($2 < 2 ? 1 : 2))} per=${6:-1}
    bench_rounds "$c" "$threads" "$label: ours|ours|$lua|$path|$per" "$label: peer|peer|$lua|$path|$per"
    bench_compare "$label" "$label: ours" "$label: peer"
}

# bench_report REFERENCE AIMS_PY: the table of rows with their ratio to the
# row named REFERENCE, memory idle and peak, the ours/peer ratios of
# bench_compare, then the aims: AIMS_PY is Python with row(name) -> (ops,
# p50, p99, errors), ref, mem {name: (idle, peak) KiB}, peer {label: ratio}
# (empty with BENCH_PEER=0) and aim(ok, text) in scope (ok None: SKIP).
bench_report() {
    local ref_name=$1 aims=$2 entry name pid
    : >"$WORK/mem-peak"
    for entry in "${MEM[@]}"; do
        read -r name pid <<<"$entry"
        kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the run; logs in $WORK"
        echo "$name $(vm_kib "$pid" VmHWM)" >>"$WORK/mem-peak"
    done
    python3 - "$RESULTS" "$WORK/mem-idle" "$WORK/mem-peak" "$ref_name" "$aims" "$WORK/pairs" "$WORK/rounds.tsv" <<EOF
import os, statistics, sys
results, idle_f, peak_f, ref_name, aims, pairs_f, rounds_f = sys.argv[1:8]
print()
print("machine: $(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg) (other load skews the figures)")
rows = {}
order = []
for l in open(results):
    if l.strip():
        name, ops, p50, p99, errs = l.rstrip("\n").split("\t")
        rows[name] = (float(ops), float(p50), float(p99), int(errs))
        order.append(name)
ref = rows[ref_name][0]
print()
print("%-52s %12s %8s %9s %9s %7s" % ("benchmark", "ops/s", "ratio", "p50 ms", "p99 ms", "errors"))
for name in order:
    ops, p50, p99, errs = rows[name]
    print("%-52s %12.0f %8.3f %9.3f %9.3f %7d" % (name, ops, ops / ref, p50, p99, errs))
print("(ratio: ops/s over %s)" % ref_name)
idle = dict((l.split()[0], int(l.split()[1] or 0)) for l in open(idle_f) if l.strip())
peak = dict((l.split()[0], int(l.split()[1] or 0)) for l in open(peak_f) if l.strip())
mem = dict((k, (idle.get(k, 0), peak.get(k, 0))) for k in peak)
print()
print("%-52s %14s %14s" % ("process", "idle RSS MiB", "peak RSS MiB"))
for name, (i, p) in mem.items():
    print("%-52s %14.2f %14.2f" % (name, i / 1024.0, p / 1024.0))
pairs = [l.rstrip("\n").split("\t") for l in open(pairs_f) if l.strip()] if os.path.exists(pairs_f) else []
rounds = {}
if os.path.exists(rounds_f):
    for l in open(rounds_f):
        label, i, fig = l.rstrip("\n").split("\t")
        rounds.setdefault(label, {})[i] = float(fig.split()[0])
peer = {}
if pairs:
    print()
    print("%-52s %8s %8s %8s %8s  %s" % ("ours / peer (wrk, alternate runs)",
                                        "ours", "peer", "ratio", "of meds", "each round"))
    for title, o_l, q_l in pairs:
        o, q = rows[o_l][0], rows[q_l][0]
        rr = [rounds[o_l][i] / rounds[q_l][i] for i in sorted(rounds[o_l], key=int) if i in rounds[q_l]]
        peer[title] = statistics.median(rr)
        print("%-52s %8.0f %8.0f %8.3f %8.3f  %s" % (title, o, q, peer[title], o / q,
                                                     " ".join("%.3f" % x for x in rr)))
    print("(ours, peer: median ops/s; ratio: median over the rounds of ours over the peer's run")
    print(" of the same round, the figure the aims use; of meds: ratio of the medians)")
def row(name):
    return rows[name]
def aim(ok, text):
    print("  %-4s %s" % ("SKIP" if ok is None else "PASS" if ok else "MISS", text))
print()
print("aims:")
exec(aims)
EOF
}
