# tests/bench/lib.sh - what the benchmark commands share: building, a private
# redis-server and services on free loopback ports, measuring with
# redis-benchmark, bench_rpc and wrk into one table, memory readings, and the
# report with ratios to a reference measured in the same run.
#
# A benchmark script sets BENCH_NAME and BENCH_TARGETS, sources this file,
# starts what it needs, adds rows with bench_* and ends with bench_report.
# Settings: BUILD_DIR (default build), BENCH_SECONDS (default 10),
# BENCH_NO_BUILD=1 to skip the build step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SECONDS_EACH=${BENCH_SECONDS:-10}

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
# set by the caller); prints its pid.
bench_start() {
    local bin="$BUILD/services/$1/$1"
    [ -x "$bin" ] || die "missing $bin (build first)"
    "$bin" >"$WORK/$1.log" 2>&1 </dev/null &
    local pid=$!
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

# bench_wrk LABEL CONNECTIONS LUA URL: one row from wrk.
bench_wrk() {
    local label=$1 c=$2 lua=$3 url=$4
    local threads=$((c < 2 ? 1 : 2))   # wrk needs connections >= threads
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
rps = re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1)
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errs = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m: errs += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m: errs += sum(int(x) for x in m.groups())
print("%s\t%s\t%.3f\t%.3f\t%d" % (sys.argv[1], rps, p50, p99, errs))
' "$label" >>"$RESULTS"
}

# bench_report REFERENCE AIMS_PY: the table of rows with their ratio to the
# row named REFERENCE, memory idle and peak, then the aims: AIMS_PY is Python
# with row(name) -> (ops, p50, p99, errors), ref, mem {name: (idle, peak) KiB}
# and aim(ok, text) in scope.
bench_report() {
    local ref_name=$1 aims=$2 entry name pid
    : >"$WORK/mem-peak"
    for entry in "${MEM[@]}"; do
        read -r name pid <<<"$entry"
        kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) died during the run; logs in $WORK"
        echo "$name $(vm_kib "$pid" VmHWM)" >>"$WORK/mem-peak"
    done
    python3 - "$RESULTS" "$WORK/mem-idle" "$WORK/mem-peak" "$ref_name" "$aims" <<EOF
import sys
results, idle_f, peak_f, ref_name, aims = sys.argv[1:6]
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
print("%-44s %12s %8s %9s %9s %7s" % ("benchmark", "ops/s", "ratio", "p50 ms", "p99 ms", "errors"))
for name in order:
    ops, p50, p99, errs = rows[name]
    print("%-44s %12.0f %8.3f %9.3f %9.3f %7d" % (name, ops, ops / ref, p50, p99, errs))
print("(ratio: ops/s over %s)" % ref_name)
idle = dict((l.split()[0], int(l.split()[1] or 0)) for l in open(idle_f) if l.strip())
peak = dict((l.split()[0], int(l.split()[1] or 0)) for l in open(peak_f) if l.strip())
mem = dict((k, (idle.get(k, 0), peak.get(k, 0))) for k in peak)
print()
print("%-44s %14s %14s" % ("process", "idle RSS MiB", "peak RSS MiB"))
for name, (i, p) in mem.items():
    print("%-44s %14.2f %14.2f" % (name, i / 1024.0, p / 1024.0))
def row(name):
    return rows[name]
def aim(ok, text):
    print("  %-4s %s" % ("PASS" if ok else "MISS", text))
print()
print("aims:")
exec(aims)
EOF
}
