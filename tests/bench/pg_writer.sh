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
work=$(mktemp -d /tmp/veto-bench-pg.XXXXXX)
pids=()
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
	psql_ "TRUNCATE queries, rollup_sources, rollup_days, rollup_names" >/dev/null
fi

# --- the fixed load ---------------------------------------------------------------------------
echo "blocked.soak.example" >"$work/blocked.list"
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) { r = rand();
	if (r < 0.7) printf "h%d.bench.example A\n", 1 + int(rand() * 1000);
	else if (r < 0.9) printf "t%d.blocked.soak.example A\n", i;
	else printf "m%d.miss.example A\n", i; } }' >"$work/mix.txt"
cat >"$work/veto.yaml" <<YAML
server:
  workers: 1                  # one loop: the figures are per core (the default: one per CPU)
  listen: ["127.0.0.1:$VETO_PORT"]
  user: "$(id -un)"
upstream:
  servers: ["127.0.0.1:$UP_PORT"]
  timeout_ms: 1000
cache:
  entries: 100000
lists:
  soak: {files: [$work/blocked.list]}
state_dir: $work/state
groups:
  - name: everyone
    block: [soak]
    action: nxdomain
log: {queries: all}
store: {postgresql: "$conninfo", instance: bench}
YAML
"$veto" check -c "$work/veto.yaml" >/dev/null
"$build/tests/bench_upstream" $UP_PORT $((DURATION + 120)) &
pids+=($!)
"$veto" serve -c "$work/veto.yaml" 2>"$work/veto.err" &
vpid=$!
pids+=($vpid)
for _ in $(seq 1 100); do
	if echo "h1.bench.example A" | dnsperf -s 127.0.0.1 -p $VETO_PORT -n 1 -t 1 2>/dev/null |
		grep -q 'Queries completed: *1 '; then break; fi
	sleep 0.1
done
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
