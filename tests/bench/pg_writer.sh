#!/usr/bin/env bash
# The query log into PostgreSQL (store.postgresql). Two measurements on a private PostgreSQL 15
# (tests/system/pgserver.py: initdb under /tmp, Unix socket only, stopped at the end):
# 1. bench_pgstore: the sink alone, ROWS synthetic records (rows/s until the last commit).
# 2. A fixed load: veto with the store (no JSON lines), dnsperf at RATE qps for DURATION
#    seconds (the soak.sh mix: 70% cache hits, 20% blocked, 10% misses to bench_upstream), then
#    queries answered (dnsperf) against rows stored (SELECT count(*)), with what veto counted as
#    not stored one by one (querylog.unlogged) and the store's own counters.
# Bounded: every run has a time limit; every process started here is stopped by its PID.
# Usage: tests/bench/pg_writer.sh [BUILD_DIR] (default build).
# Environment: ROWS (default 1000000; 0 skips 1), RATE (default 20000), DURATION (default 60;
# the issue's run is 300), CLIENTS (dnsperf -c, default 4), OUTSTANDING (dnsperf -q, default 256).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
veto=$build/veto
ROWS=${ROWS:-1000000}
RATE=${RATE:-20000}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-256}
UP_PORT=15320 VETO_PORT=15321
upstream_bin=$build/tests/bench_upstream
work=$(mktemp -d /tmp/veto-bench-pg.XXXXXX)
pids=()
. "$here/lib.sh"
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	/usr/bin/python3 "$here/pg_server.py" stop "$work" || true
	rm -rf "$work" /tmp/veto-bench-pgstore
}
trap cleanup EXIT
command -v dnsperf >/dev/null || { echo "missing dnsperf (make bench-deps)" >&2; exit 1; }
echo "pg_writer: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
conninfo=$(/usr/bin/python3 "$here/pg_server.py" start "$work")
psql_() { /usr/bin/python3 "$here/pg_server.py" psql "$work" "$1"; }

if [ "$ROWS" -gt 0 ]; then
	timeout 600 "$build/tests/bench_pgstore" "$conninfo" "$ROWS"
	rollups="rollup_sources, rollup_days, rollup_names, rollup_hours, rollup_attempts"
	psql_ "TRUNCATE queries, $rollups, rollup_attempt_names" >/dev/null
fi

# --- the fixed load ---------------------------------------------------------------------------
echo "blocked.soak.example" >"$work/blocked.list"
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) { r = rand();
	if (r < 0.7) printf "h%d.bench.example A\n", 1 + int(rand() * 1000);
	else if (r < 0.9) printf "t%d.blocked.soak.example A\n", i;
	else printf "m%d.miss.example A\n", i; } }' >"$work/mix.txt"
bench_veto_yaml "$work/veto.yaml" soak "$work/blocked.list"
cat >>"$work/veto.yaml" <<YAML
    action: nxdomain
state_dir: $work/state
log: {queries: all}
store: {postgresql: "$conninfo", instance: bench}
YAML
"$veto" check -c "$work/veto.yaml" >/dev/null
bench_upstream_start $((DURATION + 120))
"$veto" serve -c "$work/veto.yaml" 2>"$work/veto.err" &
vpid=$!
pids+=($vpid)
bench_wait_up $VETO_PORT
sleep 1
base=$(psql_ "SELECT count(*) FROM queries")
cpu0=$(awk '{print $14 + $15}' /proc/$vpid/stat)
dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/mix.txt" -l "$DURATION" -c "$CLIENTS" \
	-q "$OUTSTANDING" -Q "$RATE" -t 2 2>/dev/null >"$work/perf.txt"
cpu1=$(awk '{print $14 + $15}' /proc/$vpid/stat)
stats=$("$veto" stats -c "$work/veto.yaml" --json)
kill -TERM $vpid
wait $vpid || true
completed=$(awk '/Queries completed/ {print $3}' "$work/perf.txt")
qps=$(awk '/Queries per second/ {print $4}' "$work/perf.txt")
stored=$(( $(psql_ "SELECT count(*) FROM queries") - base ))
rollups=$(( $(psql_ "SELECT coalesce(sum(n), 0) FROM rollup_sources") - base ))
echo "fixed load: $RATE qps asked for $DURATION s ($qps qps achieved), $completed answered, $stored stored, rollup_sources counts $rollups"
echo "veto CPU during the load: $(( (cpu1 - cpu0) )) ticks ($(getconf CLK_TCK)/s)"
echo "stats at the end of the load: $stats" | /usr/bin/python3 -c 'import json, sys
s = json.loads(sys.stdin.read().split(": ", 1)[1])
print("querylog", s.get("querylog"), "store_state", s.get("store_state"), "store", s.get("store"))'
grep -E "query store" "$work/veto.err" || true
[ "$stored" -eq "$completed" ] && echo "every answered query stored" || echo "DIFFERENCE: $((completed - stored))"
