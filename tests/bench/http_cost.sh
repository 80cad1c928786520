#!/bin/sh
# The DNS path's cost of the metrics counters and of /metrics scrapes, in instructions
# (valgrind's callgrind: hardware counters are often missing in VMs, and wall-clock time on a
# shared machine is noise). One daemon per run under callgrind, counters zeroed after start and
# cache warm-up, then 10,000 cache hits and 10,000 blocked queries (dnsperf, 20 outstanding);
# with SCRAPE=1, curl fetches /metrics every second meanwhile. Prints the program's total
# instructions and those of the loop's counting functions.
#
#   tests/bench/http_cost.sh BIN LABEL [HTTP=0|1] [SCRAPE=0|1]     (BIN: a veto binary)
#
# Loopback only; every process started is stopped by its PID; the upstream stops by itself
# after 300 s at the latest.
set -eu
BIN=$1; LABEL=$2; HTTP=${3:-0}; SCRAPE=${4:-0}
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../../build}
UP=${UP_PORT:-25353}; PORT=${DNS_PORT:-25354}; HP=${HTTP_PORT:-25355}
work=$(mktemp -d /tmp/veto-http-cost.XXXXXX)
cd "$work"
"$build/tests/bench_upstream" $UP 300 >/dev/null 2>&1 & UPID=$!
{
echo "server: {workers: 1, listen: [\"127.0.0.1:$PORT\"], user: $(id -un)}"
echo "upstream: {servers: [\"127.0.0.1:$UP\"]}"
echo "cache: {entries: 100000}"
echo "lists: {ads: {domains: [ads.test]}}"
echo "groups: [{name: sink, clients: [127.0.0.2/32], block: [ads]}, {name: rest, block: []}]"
echo "log: {file: q.jsonl, queries: none}"
echo "state_dir: ."
if [ "$HTTP" = 1 ]; then echo "http: {listen: [\"127.0.0.1:$HP\"]}"; fi
} > v.yaml
valgrind --tool=callgrind --callgrind-out-file=cg.out "$BIN" serve -c v.yaml 2>err.txt & VPID=$!
sleep 8
awk 'BEGIN{for(i=0;i<2000;i++) printf "h%d.bench.example A\n", i}' > fwd.txt
awk 'BEGIN{for(i=0;i<2000;i++) printf "b%d.ads.test A\n", i}' > blk.txt
dnsperf -s 127.0.0.1 -p $PORT -d fwd.txt -n 1 -q 20 -l 60 >/dev/null 2>&1
callgrind_control -z $VPID >/dev/null
SPID=
if [ "$SCRAPE" = 1 ]; then
	( for i in $(seq 1 120); do curl -s -m 5 http://127.0.0.1:$HP/metrics >/dev/null; sleep 1; done ) &
	SPID=$!
fi
dnsperf -s 127.0.0.1 -p $PORT -d fwd.txt -n 5 -q 20 -l 120 > perf_fwd.txt 2>&1
dnsperf -s 127.0.0.1 -a 127.0.0.2 -p $PORT -d blk.txt -n 5 -q 20 -l 120 > perf_blk.txt 2>&1
[ -n "$SPID" ] && kill $SPID 2>/dev/null || true
callgrind_control -d $VPID >/dev/null
sleep 1
kill -TERM $VPID; wait $VPID || true
kill $UPID 2>/dev/null || true
echo "== $LABEL (http $HTTP, scrape $SCRAPE): $work"
grep -h "Queries completed" perf_fwd.txt perf_blk.txt
f=$(ls cg.out.* | head -1)
callgrind_annotate --threshold=100 "$f" 2>/dev/null | grep -E "PROGRAM TOTALS|metrics_count_query|upstream_observe|on_feed_async|metrics_snapshot|query.c:finish |query.c:query_process " | grep -v "=>" | head -12
