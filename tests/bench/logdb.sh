#!/usr/bin/env bash
# Throughput with the query database on and off: veto with log.queries none, then with every
# query stored in log.database (no JSON lines), same upstream and query mixes as run.sh, driven by
# dnsperf over loopback. Then the query-log store at scale: bench_logdb builds a database of ROWS
# synthetic queries and times `veto log` / `veto report` on it (the real commands).
# Bounded: every load run has a time limit, every process started here is stopped by its PID.
# Usage: tests/bench/logdb.sh [BUILD_DIR] (default build).
# Environment: DURATION (seconds per run, default 10), CLIENTS (default 8), OUTSTANDING (256),
# ROWS (default 10000000; 0 skips the store benchmark), DB (path of the big database, reused
# when it exists; default /tmp/veto-bench-logdb.db), TASKSET (default "1": the server on CPU 1,
# dnsperf on CPU 0; "" runs unpinned), ROUNDS (peak runs of each mix and mode, default 2; 0
# skips them), RATES (the fixed loads of the last runs, queries per second, default
# "50000 100000"), LOOP_ONLY (1: pin only the event loop's thread to CPU 1, so the writer
# thread may use either core, as on a 2-core machine without pinning; default 0), each run with both sinks on (JSON lines and database), reporting what each
# stored, what was counted as not stored one by one, and the evidence (blocked) lost.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
case "$build" in */veto) build=$(dirname "$build") ;; esac
veto=$build/veto
upstream_bin=$build/tests/bench_upstream
bench_logdb=$build/tests/bench_logdb
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-256}
ROWS=${ROWS:-10000000}
DB=${DB:-/tmp/veto-bench-logdb.db}
TASKSET=${TASKSET-1}
ROUNDS=${ROUNDS:-2}
RATES=${RATES:-50000 100000}
UP_PORT=15310 VETO_PORT=15311
work=$(mktemp -d /tmp/veto-bench-logdb.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

for b in "$veto" "$upstream_bin" "$bench_logdb"; do
	[ -x "$b" ] || { echo "missing $b (build first: make build)" >&2; exit 1; }
done
command -v dnsperf >/dev/null || { echo "missing dnsperf (make bench-deps)" >&2; exit 1; }
pin_server=() pin_load=()
LOOP_ONLY=${LOOP_ONLY:-0}
if [ -n "$TASKSET" ]; then
	[ "$LOOP_ONLY" = 1 ] || pin_server=(taskset -c 1)
	pin_load=(taskset -c 0)
fi

cat "$src"/conf/lists/{xiaomi,oppo-realme,oneplus,vivo,huawei-honor}.txt 2>/dev/null |
	sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u >"$work/blocked.list"
for i in $(seq 1 1000); do echo "h$i.bench.example A"; done >"$work/hits.txt"
awk -v seed=7 'BEGIN { srand(seed) }
	FNR == NR { b[n++] = $1; next }
	END {
		for (i = 0; i < 200000; i++) {
			r = rand();
			if (r < 0.7) printf "h%d.bench.example A\n", 1 + int(rand() * 1000);
			else if (r < 0.9) printf "t%d.x.%s A\n", i, b[int(rand() * n)];
			else printf "m%d.miss.example A\n", i;
		}
	}' "$work/blocked.list" /dev/null >"$work/mix.txt"

"${pin_load[@]}" "$upstream_bin" $UP_PORT $((DURATION * 8 + 120)) &
pids+=($!)

write_config() { # file logsection
	cat >"$1" <<YAML
server:
  workers: 1                  # one loop: the figures are per core (the default: one per CPU)
  listen: ["127.0.0.1:$VETO_PORT"]
  user: "$(id -un)"          # as root: stay root (no drop to veto)
upstream:
  servers: ["127.0.0.1:$UP_PORT"]
  timeout_ms: 1000
cache:
  entries: 100000
lists:
  vendors: {files: [$work/blocked.list]}
groups:
  - name: everyone
    block: [vendors]
state_dir: $work/state
$2
YAML
}
write_config "$work/off.yaml" "log: {queries: none}"
write_config "$work/db.yaml" "log: {queries: all, database: queries.db}"
write_config "$work/both.yaml" "log: {queries: all, file: $work/queries.jsonl, database: queries.db}"

wait_up() {
	for _ in $(seq 1 100); do
		if echo "h1.bench.example A" | dnsperf -s 127.0.0.1 -p $VETO_PORT -n 1 -t 1 2>/dev/null |
			grep -q 'Queries completed: *1 '; then return 0; fi
		sleep 0.1
	done
	echo "veto did not answer" >&2
	return 1
}
run_qps() { # file -> qps
	"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$1" -l "$DURATION" -c "$CLIENTS" \
		-q "$OUTSTANDING" -t 2 2>/dev/null >"$work/last.txt"
	awk '/Queries per second/ {print int($4)}' "$work/last.txt"
}

db_rows() { # file -> rows in the queries table
	/usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM queries").fetchone()[0])' "$1"
}
start_veto() { # config name
	rm -rf "$work/state" "$work/queries.jsonl"
	"${pin_server[@]}" "$veto" serve -c "$work/$1.yaml" >"$work/$1.out" 2>"$work/$1.err" &
	vpid=$!
	pids+=($vpid)
	# the main thread only (no -a): the writer thread keeps both cores
	if [ -n "$TASKSET" ] && [ "$LOOP_ONLY" = 1 ]; then taskset -p -c 1 "$vpid" >/dev/null; fi
	wait_up
	"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/hits.txt" -n 1 -c 1 -q 100 \
		>/dev/null 2>&1
}
stop_veto() {
	kill "$vpid"
	wait "$vpid" || true
}
dropped() { # stderr file -> records the database writer dropped
	grep -o 'query log records dropped [0-9]*' "$1" | awk '{n += $5} END {print n + 0}'
}

# Peak: both daemons saturated, alternating, ROUNDS times (this VM is shared: single runs
# move by 10-20%).
printf '| round | mix | log off qps | database qps | change | rows stored | dropped |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
for round in $(seq 1 "$ROUNDS"); do
	for mix in hits mix; do
		start_veto off
		a=$(run_qps "$work/$mix.txt")
		stop_veto
		start_veto db
		b=$(run_qps "$work/$mix.txt")
		stop_veto
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$round" "$mix" "$a" "$b" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%+.1f%%", 100 * (b - a) / a }')" \
			"$(db_rows "$work/state/queries.db")" "$(dropped "$work/db.err")"
	done
done
# Fixed loads (RATES, the mix), both sinks on: is every query stored? The warm-up's 1,001
# queries are stored too; "blocked" counts the blocked rows (the mix: ~20%).
printf '\n| fixed load (mix, JSON lines + database) | answered | JSON lines | rows | blocked answered | blocked rows | not stored one by one (counted) | evidence lost (reported) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for rate in $RATES; do
	start_veto both
	"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/mix.txt" -l "$DURATION" \
		-c "$CLIENTS" -q "$OUTSTANDING" -Q "$rate" -t 2 2>/dev/null >"$work/rate.txt"
	sleep 2 # the writer commits about once a second
	stop_veto
	printf '| %s qps | %s | %s | %s | %s | %s | %s | %s |\n' "$rate" \
		"$(awk '/Queries completed/ {print $3}' "$work/rate.txt")" \
		"$(grep -vc '"type":"unlogged"' "$work/queries.jsonl")" \
		"$(db_rows "$work/state/queries.db")" \
		"$(grep -o 'blocked [0-9]* (cname' "$work/both.err" | awk '{print $2}')" \
		"$(/usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM queries WHERE blocked = 1").fetchone()[0])' "$work/state/queries.db")" \
		"$(dropped "$work/both.err")" \
		"$(grep -o 'query log: [0-9]* blocked records lost' "$work/both.err" | awk '{n += $3} END {print n + 0}')"
	grep -h "query database\|query log" "$work/both.err" | grep -v ": open$\|writing to" | head -3 || true
done

[ "$ROWS" != 0 ] || exit 0
echo
"$bench_logdb" "$DB" "$ROWS" 2000 8 | grep -v "^veto"
dev=dev-0043
printf '| command (database of %s rows) | seconds |\n|---|---:|\n' "$ROWS"
for args in "log --device $dev --since 7d" "log --domain miui.com --since 7d" \
	"log --domain miui.com --since 7d --limit 0 --format csv" "report attempts --since 7d" \
	"report device $dev --since 7d"; do
	# shellcheck disable=SC2086
	t0=$(date +%s%N)
	"$veto" $args --db "$DB" >/dev/null
	t1=$(date +%s%N)
	printf '| `veto %s` | %d.%03d |\n' "$args" $(((t1 - t0) / 1000000000)) $(((t1 - t0) / 1000000 % 1000))
done
