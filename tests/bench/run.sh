#!/usr/bin/env bash
# Side-by-side benchmark: veto, dnsdist and unbound, same upstream, same blocklist, cache on, one
# core each, driven by dnsperf over loopback. Bounded: every load run has a time limit, every process started
# here is stopped by its PID. Usage: tests/bench/run.sh [BUILD_DIR] (default build).
# Environment: DURATION (seconds per run, default 10), CLIENTS (dnsperf -c, default 8),
# OUTSTANDING (dnsperf -q, default 256), SCRAPE (1: also the cache-hit mix three times with and
# three times without a client fetching /metrics and the console's overview every second, to see
# what the HTTP listener costs the DNS path), MILLION (1, the default: then each server alone with
# 1,000,000 blocked names: seconds from start to its first answer, RSS then and after 100,000
# answers cached; 0: skip), SCALING (1: instead of the comparison above, Veto with server.workers
# 1 and 2, dnsdist with 1 and 2 listener threads and unbound with 1 and 2 threads, all on the
# same two CPUs, on the hit, blocked and miss mixes, REPS rounds: tests/bench/scaling.sh), KEEP (1: keep the
# work folder, /tmp/veto-bench.*, with the configurations and the servers' output).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
case "$build" in */veto) build=$(dirname "$build") ;; esac
veto=$build/veto
upstream_bin=$build/tests/bench_upstream
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-256}
SCRAPE=${SCRAPE:-0}
SCALING=${SCALING:-0}
MILLION=${MILLION:-1}
KEEP=${KEEP:-0}
UP_PORT=15300 VETO_PORT=15301 DD_PORT=15302 HTTP_PORT=15303 UB_PORT=15306
# the dot row: veto forwards over DNS over TLS to a dnsdist DoT terminator (dnsdist 1.7's own
# outgoing DoT, newServer{tls=...}, answered nothing here, so that row has Veto's figures only)
DOT_PORT=15304 VETO_DOT_PORT=15305
SERVER_CPU=1 LOAD_CPU=0
work=$(mktemp -d /tmp/veto-bench.XXXXXX)
pids=()
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "$KEEP" = 1 ] || rm -rf "$work" # about 100 MB with MILLION=1
}
trap cleanup EXIT

for b in "$veto" "$upstream_bin"; do
	[ -x "$b" ] || { echo "missing $b (build first: make build)" >&2; exit 1; }
done
for t in dnsperf dnsdist unbound taskset openssl; do
	command -v $t >/dev/null || { echo "missing $t (make bench-deps)" >&2; exit 1; }
done

# --- data: one blocklist for both servers, three query mixes --------------------------------
cat "$src"/conf/lists/{xiaomi,oppo-realme,oneplus,vivo,huawei-honor}.txt 2>/dev/null |
	sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u >"$work/blocked.list"
nblocked=$(wc -l <"$work/blocked.list")
[ "$nblocked" -gt 0 ] || { echo "no blocklist entries found in conf/lists" >&2; exit 1; }
for i in $(seq 1 1000); do echo "h$i.bench.example A"; done >"$work/hits.txt"
awk '{print "t" NR ".x." $1 " A"}' "$work/blocked.list" | head -1000 >"$work/blocked.txt"
# realistic: 70% cached names, 20% blocked, 10% names seen once (forwarded upstream)
awk -v seed=7 'BEGIN { srand(seed) }
	FNR == NR { b[n++] = $1; next }
	{ }
	END {
		for (i = 0; i < 200000; i++) {
			r = rand();
			if (r < 0.7) printf "h%d.bench.example A\n", 1 + int(rand() * 1000);
			else if (r < 0.9) printf "t%d.x.%s A\n", i, b[int(rand() * n)];
			else printf "m%d.miss.example A\n", i;
		}
	}' "$work/blocked.list" /dev/null >"$work/mix.txt"
# cache misses only: names never asked before (enough for a whole run at 100k qps), and another
# set for the latency run so that it does not hit what the throughput run cached
nmiss=$((DURATION * 100000))
awk -v n="$nmiss" 'BEGIN { for (i = 1; i <= n; i++) printf "u%d.miss.example A\n", i }' >"$work/miss.txt"
awk 'BEGIN { for (i = 1; i <= 500000; i++) printf "l%d.miss.example A\n", i }' >"$work/miss-lat.txt"

if [ "$SCALING" = 1 ]; then
	# shellcheck source=tests/bench/scaling.sh
	. "$here/scaling.sh"
	exit 0
fi

# --- servers ---------------------------------------------------------------------------------
# a bound, not a wait: 19 runs of DURATION (13 with SCRAPE=0), 13 latency runs of 5 s, the
# three 1M-name starts and cache fills
bench_upstream_start $((DURATION * 20 + 420)) $LOAD_CPU

bench_veto_yaml "$work/veto.yaml" vendors "$work/blocked.list"
printf 'log:\n  queries: none\n' >>"$work/veto.yaml"
if [ "$SCRAPE" = 1 ]; then
	cat >>"$work/veto.yaml" <<YAML
state_dir: $work/state
http:
  listen: ["127.0.0.1:$HTTP_PORT"]
YAML
fi
cat >"$work/dnsdist.lua" <<LUA
setLocal("127.0.0.1:$DD_PORT")
newServer({address="127.0.0.1:$UP_PORT", name="up", checkInterval=3600})
pc = newPacketCache(100000, {maxTTL=86400, minTTL=0})
getPool(""):setCache(pc)
smn = newSuffixMatchNode()
for line in io.lines("$work/blocked.list") do smn:add(line) end
addAction(SuffixMatchNodeRule(smn), SpoofAction({"0.0.0.0", "::"}))
LUA

# the dot row: a throwaway CA and a certificate for 127.0.0.1 / bench.test; the DoT terminator
# (dnsdist, on the load generator's CPU: its cost is not counted) forwards to the bench upstream
# over TCP (up to one connection per query in flight: bench_upstream accepts 1,024). On two cores
# it shares CPU 0 with dnsperf and is the bottleneck (a few thousand queries a second), so Veto's
# CPU per query there includes less batching than the miss row (tests/bench/dot_loss.sh: the row
# alone, with every count)
bench_dot_cert "$work"
cat >"$work/dot-terminator.lua" <<LUA
setSecurityPollSuffix("")
newServer({address="127.0.0.1:$UP_PORT", checkInterval=3600})
-- maxInFlight: answer a connection's queries out of order (dnsdist's default is one at a time)
addTLSLocal("127.0.0.1:$DOT_PORT", "$work/dot.pem", "$work/dot.key", {maxInFlight=1000})
LUA
sed -e "s#127.0.0.1:$VETO_PORT#127.0.0.1:$VETO_DOT_PORT#" \
	-e "s#servers: \[\"127.0.0.1:$UP_PORT\"\]#servers: [\"tls://127.0.0.1:$DOT_PORT\#bench.test\"]\n  tls_ca: $work/ca.pem#" \
	-e '/^state_dir:/d' -e '/^http:/,$d' "$work/veto.yaml" >"$work/veto-dot.yaml"
taskset -c $LOAD_CPU dnsdist --supervised --disable-syslog -C "$work/dot-terminator.lua" \
	>"$work/dot-terminator.out" 2>&1 &
pids+=($!)

taskset -c $SERVER_CPU "$veto" serve -c "$work/veto.yaml" >"$work/veto.out" 2>"$work/veto.err" &
veto_pid=$!
pids+=("$veto_pid")
taskset -c $SERVER_CPU "$veto" serve -c "$work/veto-dot.yaml" >"$work/veto-dot.out" \
	2>"$work/veto-dot.err" &
veto_dot_pid=$!
pids+=("$veto_dot_pid")

taskset -c $SERVER_CPU dnsdist --supervised --disable-syslog -C "$work/dnsdist.lua" \
	>"$work/dnsdist.out" 2>&1 &
dd_pid=$!
pids+=("$dd_pid")

# unbound: one thread, the same upstream and blocked names (local-zone always_null)
bench_unbound_conf "$work/unbound.conf" $UB_PORT 1 "$work/blocked.list"
taskset -c $SERVER_CPU unbound -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
ub_pid=$!
pids+=("$ub_pid")

bench_wait_up $VETO_PORT
bench_wait_up $DD_PORT
bench_wait_up $VETO_DOT_PORT
bench_wait_up $UB_PORT

run_qps() { # port file -> prints qps
	taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c "$CLIENTS" \
		-q "$OUTSTANDING" -t 2 2>/dev/null >"$work/last.txt"
	awk '/Queries per second/ {print int($4)}' "$work/last.txt"
}
lost() { awk '/Queries lost/ {print $3}' "$work/last.txt"; }

run_p99() { # port file qps -> prints "p50 p99" in microseconds
	taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l 5 -c 1 -q 64 -Q "$3" -t 2 -v \
		2>/dev/null | awk '$1 == ">" {print $NF * 1000000}' | sort -n >"$work/lat.txt"
	n=$(wc -l <"$work/lat.txt")
	[ "$n" -gt 0 ] || { echo "- -"; return; }
	p50=$(sed -n "$(((n + 1) / 2))p" "$work/lat.txt")
	p99=$(sed -n "$(((n * 99 + 99) / 100))p" "$work/lat.txt")
	printf '%.0f %.0f\n' "$p50" "$p99"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system, all threads) a server spent, in clock ticks
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
completed() { awk '/Queries completed/ {print $3}' "$work/last.txt"; }
# microseconds of server CPU per answered query: fair even when dnsperf is the bottleneck
us_per_query() { # ticks_before ticks_after queries
	awk -v a="$1" -v b="$2" -v n="$3" -v t="$TICK" \
		'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1000000 / t / n; else print "-" }'
}
peer_run() { # port pid file -> prints "qps cpu_us_per_query" (dnsperf's report in last.txt)
	local t0 q
	t0=$(cpu_ticks "$2")
	q=$(run_qps "$1" "$3")
	echo "${q:--} $(us_per_query "$t0" "$(cpu_ticks "$2")" "$(completed)")"
}
ratio() { # a b -> a / b, or - when either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'
}

# Warm the three caches with every cacheable name once.
for port in $VETO_PORT $DD_PORT $UB_PORT; do
	taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p "$port" -d "$work/hits.txt" -n 1 -c 1 -q 100 \
		>/dev/null 2>&1
done

echo "veto vs dnsdist $(dnsdist --version 2>/dev/null | head -1 | awk '{print $2}') and unbound" \
	"$(unbound -V 2>/dev/null | head -1 | awk '{print $2}'), one core each (server on CPU" \
	"$SERVER_CPU, dnsperf on CPU $LOAD_CPU), $DURATION s per run, blocklist $nblocked names"
printf '| mix | veto qps | dnsdist qps | unbound qps | qps ratio veto/dnsdist | qps ratio veto/unbound | veto CPU us/query | dnsdist CPU us/query | unbound CPU us/query | CPU ratio dnsdist/veto | CPU ratio unbound/veto | veto p50/p99 us at half peak | dnsdist p50/p99 us at half peak | unbound p50/p99 us at half peak |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
# dot: cache misses forwarded over DNS over TLS (one connection, pipelined) to the terminator;
# Veto only (the peers' columns are -)
for mix in hits blocked mix miss dot; do
	file="$work/$mix.txt" lat="$work/$mix.txt"
	vport=$VETO_PORT vpid=$veto_pid peers=1
	[ "$mix" = miss ] && lat="$work/miss-lat.txt"
	if [ "$mix" = dot ]; then
		file="$work/miss.txt" lat="$work/miss-lat.txt"
		vport=$VETO_DOT_PORT vpid=$veto_dot_pid peers=0
	fi
	read -r v vc < <(peer_run $vport $vpid "$file")
	vl=$(lost)
	d=- dc=- dp50=- dp99=- u=- uc=- up50=- up99=-
	if [ $peers = 1 ]; then
		read -r d dc < <(peer_run $DD_PORT $dd_pid "$file")
		read -r u uc < <(peer_run $UB_PORT $ub_pid "$file")
	fi
	read -r vp50 vp99 < <(run_p99 $vport "$lat" $((${v/-/0} / 2)))
	if [ $peers = 1 ]; then
		read -r dp50 dp99 < <(run_p99 $DD_PORT "$lat" $((${d/-/0} / 2)))
		read -r up50 up99 < <(run_p99 $UB_PORT "$lat" $((${u/-/0} / 2)))
	fi
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s |\n' \
		"$mix" "$v" "$d" "$u" "$(ratio "$v" "$d")" "$(ratio "$v" "$u")" "$vc" "$dc" "$uc" \
		"$(ratio "$dc" "$vc")" "$(ratio "$uc" "$vc")" "$vp50" "$vp99" "$dp50" "$dp99" "$up50" "$up99"
	[ "${vl%%(*}" = "0" ] || echo "  (veto lost ${vl} queries on $mix)"
done
if [ "$SCRAPE" = 1 ]; then
	command -v curl >/dev/null || { echo "missing curl" >&2; exit 1; }
	scrape_loop() { # for at most DURATION + 5 s: /metrics and the overview every second
		local end=$((SECONDS + DURATION + 5))
		while [ $SECONDS -lt $end ]; do
			curl -s -o /dev/null -m 2 "http://127.0.0.1:$HTTP_PORT/metrics" || true
			curl -s -o /dev/null -m 2 "http://127.0.0.1:$HTTP_PORT/" || true
			sleep 1
		done
	}
	echo
	echo "cache-hit mix with and without a scraper (/metrics and / every second), alternating:"
	echo "(the scraper shares dnsperf's CPU, so QPS can fall by dnsperf's loss; Veto's CPU per"
	echo "query, its HTTP threads included, is the figure that isolates the listener's cost)"
	printf '| round | qps, no scraper | qps, scraper | qps ratio | CPU us/query, no scraper | CPU us/query, scraper | CPU ratio |\n'
	printf '|---|---:|---:|---:|---:|---:|---:|\n'
	for round in 1 2 3; do
		t0=$(cpu_ticks $veto_pid)
		a=$(run_qps $VETO_PORT "$work/hits.txt")
		ac=$(us_per_query "$t0" "$(cpu_ticks $veto_pid)" "$(completed)")
		t0=$(cpu_ticks $veto_pid)
		taskset -c $LOAD_CPU bash -c "$(declare -f scrape_loop); DURATION=$DURATION HTTP_PORT=$HTTP_PORT scrape_loop" &
		sp=$!
		pids+=("$sp")
		b=$(run_qps $VETO_PORT "$work/hits.txt")
		bc=$(us_per_query "$t0" "$(cpu_ticks $veto_pid)" "$(completed)")
		kill $sp 2>/dev/null || true
		wait $sp 2>/dev/null || true
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' $round "$a" "$b" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')" \
			"$ac" "$bc" \
			"$(awk -v a="$ac" -v b="$bc" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')"
	done
fi
echo
echo "resident memory after the runs: veto $(rss_kb $veto_pid) kB, dnsdist $(rss_kb $dd_pid) kB," \
	"unbound $(rss_kb $ub_pid) kB"

# --- 1,000,000 blocked names: each server alone, its start and memory ---------------------------
[ "$MILLION" = 1 ] || exit 0
awk 'BEGIN { srand(11); for (i = 0; i < 1000000; i++)
	printf "%s%d.%s-%d.example\n", substr("trackmetricsadslogstatpushcdnapi", 1 + int(rand() * 28), 4),
	       i, substr("abcdefghijklmnopqrstuvwxyz", 1 + int(rand() * 20), 6), int(rand() * 5000) }' \
	>"$work/million.list"
sed -e "s#$work/blocked.list#$work/million.list#" -e "s#$VETO_PORT#$((VETO_PORT + 10))#" \
	-e '/^state_dir:/d' -e '/^http:/,$d' "$work/veto.yaml" >"$work/veto-1m.yaml"
sed -e "s#$work/blocked.list#$work/million.list#" -e "s#127.0.0.1:$DD_PORT#127.0.0.1:$((DD_PORT + 10))#" \
	"$work/dnsdist.lua" >"$work/dnsdist-1m.lua"
bench_unbound_conf "$work/unbound-1m.conf" $((UB_PORT + 10)) 1 "$work/million.list"
for i in $(seq 1 100000); do echo "c$i.fill.example A"; done >"$work/fill.txt"

million() { # label port command...: pinned like the comparison; prints a table row, then stops it
	local label=$1 port=$2 start p ready rss
	shift 2
	start=$(date +%s.%N)
	taskset -c $SERVER_CPU "$@" >"$work/$label-1m.out" 2>&1 &
	p=$!
	pids+=("$p")
	if bench_wait_up "$port" 120; then
		ready=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
		rss=$(rss_kb $p)
		taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p "$port" -d "$work/fill.txt" -n 1 -c 4 \
			-q 500 -t 2 -l 60 2>/dev/null >"$work/last.txt"
		printf '| %s | %s | %s | %s | %s |\n' "$label" "$ready" "$rss" "$(completed)" "$(rss_kb $p)"
	else
		printf '| %s | no answer within 120 s | - | - | - |\n' "$label"
	fi
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
echo
echo "1,000,000 blocked names (generated, about 25 characters each), one server at a time on CPU $SERVER_CPU:"
printf '| server | ready to answer after s | RSS then kB | fill: answers of 100,000 | RSS after the fill kB |\n'
printf '|---|---:|---:|---:|---:|\n'
million veto $((VETO_PORT + 10)) "$veto" serve -c "$work/veto-1m.yaml"
million dnsdist $((DD_PORT + 10)) dnsdist --supervised --disable-syslog -C "$work/dnsdist-1m.lua"
million unbound $((UB_PORT + 10)) unbound -d -c "$work/unbound-1m.conf"
