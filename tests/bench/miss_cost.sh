#!/bin/bash
# The user-space cost of a cache miss and of a cache hit, in instructions (valgrind's
# callgrind: the count holds on a shared machine where times do not). One daemon under callgrind
# with the benchmark's configuration (lib.sh bench_veto_yaml, workers 1, log.queries none),
# bench_upstream as its upstream. Counters are dumped and zeroed after start and a warm-up of
# 1,000 names (dump 1), after N names never asked before (dump 2: misses) and after 20 x 1,000
# cache hits (dump 3: hits), each sent by dnsperf at Q queries/s (bounded with -l). At 500/s the
# daemon, slowed by callgrind, takes one datagram per wake-up, so the counts repeat from run to
# run; at 2,000/s some replies are read in batches and the figures move by a few per cent.
# Prints instructions per miss and per hit and the top functions of the miss run.
#
#   tests/bench/miss_cost.sh [BIN] [OUTDIR]        N=10000 Q=500 TOP=25
#
# Loopback only; every process started is stopped by its PID; the upstream stops by itself
# after 600 s at the latest.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BIN=${1:-$src/build/veto}
OUT=${2:-$(mktemp -d /tmp/veto-miss-cost.XXXXXX)}
N=${N:-10000}; Q=${Q:-500}; TOP=${TOP:-25}
UP_PORT=${UP_PORT:-25363}; VETO_PORT=${VETO_PORT:-25364}
upstream_bin=${UPSTREAM_BIN:-$src/build/tests/bench_upstream}
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
for t in valgrind callgrind_control callgrind_annotate dnsperf; do
	command -v $t >/dev/null || { echo "missing $t (make bench-deps)" >&2; exit 1; }
done
. "$here/lib.sh"
mkdir -p "$OUT"
rm -f "$OUT"/cg.out*
printf 'ads.blocked.example\n' >"$OUT/blocked.list"
bench_upstream_start 600
bench_veto_yaml "$OUT/veto.yaml" vendors "$OUT/blocked.list"
printf 'log:\n  queries: none\n' >>"$OUT/veto.yaml"
tag=$$
awk -v n="$N" -v t="$tag" 'BEGIN { for (i = 1; i <= n; i++) printf "u%d-%s.miss.example A\n", i, t }' \
	>"$OUT/miss.txt"
awk 'BEGIN { for (i = 1; i <= 1000; i++) printf "h%d.bench.example A\n", i }' >"$OUT/hits.txt"
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BIN" serve -c "$OUT/veto.yaml" \
	>"$OUT/veto.out" 2>"$OUT/veto.err" &
vpid=$!
pids+=("$vpid")
for _ in $(seq 1 300); do
	echo "h1.bench.example A" | dnsperf -s 127.0.0.1 -p "$VETO_PORT" -n 1 -t 1 2>/dev/null |
		grep -q 'Queries completed: *1 ' && break
	sleep 0.2
done
dnsperf -s 127.0.0.1 -p "$VETO_PORT" -d "$OUT/hits.txt" -n 1 -Q 2000 -l 30 >"$OUT/warm.txt" 2>&1
sleep 1; callgrind_control -d start "$vpid" >/dev/null; sleep 1
dnsperf -s 127.0.0.1 -p "$VETO_PORT" -d "$OUT/miss.txt" -n 1 -Q "$Q" -l 300 -t 5 \
	>"$OUT/miss.dnsperf" 2>&1
sleep 1; callgrind_control -d miss "$vpid" >/dev/null; sleep 1
dnsperf -s 127.0.0.1 -p "$VETO_PORT" -d "$OUT/hits.txt" -n 20 -Q "$Q" -l 300 -t 5 \
	>"$OUT/hits.dnsperf" 2>&1
sleep 1; callgrind_control -d hits "$vpid" >/dev/null; sleep 1
cleanup
pids=()
per() {	# per DUMP DNSPERF: instructions per answered query
	local ir answered
	ir=$(sed -n 's/^totals: //p' "$OUT/cg.out.$1")
	answered=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$OUT/$2")
	echo "$ir instructions / $answered answers = $((ir / answered)) per query"
}
echo "== $BIN (N=$N, Q=$Q): $OUT"
echo "miss: $(per 2 miss.dnsperf)"
echo "hit:  $(per 3 hits.dnsperf)"
for mode in yes no; do
	echo "-- miss run, top functions (inclusive=$mode), instructions per miss"
	callgrind_annotate --auto=no --threshold=100 --inclusive=$mode "$OUT/cg.out.2" 2>/dev/null |
		sed -n '/file:function/,$p' | grep -E '^ *[0-9]' | grep -vE 'libc-start|below main|main.c:main|cmd_serve|0x000000000001ab70' |
		sed "s#$src/##" | awk '{ k = $0; sub(/^[^)]*\) */, "", k); sub(/ \[.*$/, "", k) } !seen[k]++' |
		head -"$TOP" | awk -v n="$N" '{ v = $1; gsub(",", "", v); sub(/^[^)]*\) */, "")
			sub(/ \[.*$/, ""); printf "%8.0f  %s\n", v / n, $0 }'
done
