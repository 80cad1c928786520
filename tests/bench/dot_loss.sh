#!/usr/bin/env bash
# The dot row of run.sh alone, bounded, with every count: dnsperf -> veto -> tls:// -> dnsdist DoT
# terminator -> bench_upstream (TCP). Prints dnsperf's report, Veto's stop line and warnings, and
# the terminator's counters. Usage: tests/bench/dot_loss.sh [BUILD_DIR] (default build).
# Environment: DURATION (default 10), CLIENTS (8), OUTSTANDING (256), TIMEOUT (dnsperf -t, 2),
# UPSTREAM_BIN (another bench_upstream), KEEP (1: keep the folder).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
veto=$build/veto
upstream_bin=${UPSTREAM_BIN:-$build/tests/bench_upstream}
DURATION=${DURATION:-10} CLIENTS=${CLIENTS:-8} OUTSTANDING=${OUTSTANDING:-256} KEEP=${KEEP:-0} TIMEOUT=${TIMEOUT:-2}
UP_PORT=15310 VETO_PORT=15311 DOT_PORT=15314 CONSOLE_PORT=15319
SERVER_CPU=1 LOAD_CPU=0
work=$(mktemp -d /tmp/veto-dotloss.XXXXXX)
pids=()
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "$KEEP" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

awk -v n=$((DURATION * 100000)) 'BEGIN { for (i = 1; i <= n; i++) printf "u%d.miss.example A\n", i }' \
	>"$work/miss.txt"
echo example.org >"$work/blocked.list"
bench_upstream_start $((DURATION + 30)) $LOAD_CPU
bench_dot_cert "$work"
cat >"$work/dot-terminator.lua" <<LUA
setSecurityPollSuffix("")
controlSocket("127.0.0.1:$CONSOLE_PORT")
setKey("$(head -c 32 /dev/urandom | base64)")
newServer({address="127.0.0.1:$UP_PORT", checkInterval=3600})
addTLSLocal("127.0.0.1:$DOT_PORT", "$work/dot.pem", "$work/dot.key", {maxInFlight=1000})
LUA
bench_veto_yaml "$work/veto.yaml" vendors "$work/blocked.list"
printf 'log:\n  queries: none\nstate_dir: %s/state\n' "$work" >>"$work/veto.yaml"
mkdir -p "$work/state"
sed -i -e "s#servers: \[\"127.0.0.1:$UP_PORT\"\]#servers: [\"tls://127.0.0.1:$DOT_PORT\#bench.test\"]\n  tls_ca: $work/ca.pem#" \
	"$work/veto.yaml"
taskset -c $LOAD_CPU dnsdist --supervised --disable-syslog -C "$work/dot-terminator.lua" \
	>"$work/dot-terminator.out" 2>&1 &
pids+=($!)
# Veto starts once the terminator listens: a refused connect would put its server in backoff (250
# ms of SERVFAIL at once, which dnsperf turns into thousands of fast answers)
for _ in $(seq 1 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$DOT_PORT) 2>/dev/null && break
	sleep 0.1
done
taskset -c $SERVER_CPU "$veto" serve -c "$work/veto.yaml" >"$work/veto.out" 2>"$work/veto.err" &
veto_pid=$!
pids+=("$veto_pid")
bench_wait_up $VETO_PORT
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
overflows() { nstat -asz TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/ {print $2}'; }
t0=$(cpu_ticks "$veto_pid") o0=$(overflows)
timeout $((DURATION + 20)) taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/miss.txt" \
	-l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -t "$TIMEOUT" >"$work/dnsperf.out" 2>&1 || true
t1=$(cpu_ticks "$veto_pid") o1=$(overflows)
grep -E 'Queries|Response codes|qps' "$work/dnsperf.out" || true
awk -v a="$t0" -v b="$t1" -v t="$TICK" '/Queries completed/ {
	printf "veto CPU (user + system) per completed query: %.2f us\n", (b - a) * 1000000 / t / $3 }' \
	"$work/dnsperf.out"
echo "TCP listen queue overflows during the run (whole machine): $((${o1:-0} - ${o0:-0}))"
sleep 4	# past Veto's request deadline (3 x timeout_ms): every late answer is in its counters
echo "--- veto stats"
"$veto" stats -c "$work/veto.yaml" || true
dnsdist -C "$work/dot-terminator.lua" -c -e 'dumpStats()' 2>/dev/null |
	grep -E -i 'queries|responses|drops|servfail|tcp|frontend|downstream|timeout|err' | tr -s ' ' || true
dnsdist -C "$work/dot-terminator.lua" -c -e 'showTCPStats()' 2>/dev/null || true
dnsdist -C "$work/dot-terminator.lua" -c -e 'showServers()' 2>/dev/null || true
kill "$veto_pid"
wait "$veto_pid" 2>/dev/null || true
echo "--- veto stderr"
grep -v '^debug' "$work/veto.err" | tail -20
echo "--- terminator"
tail -5 "$work/dot-terminator.out"
[ "$KEEP" = 1 ] && echo "kept $work"
exit 0
