# shellcheck shell=bash disable=SC2154 # sourced: the caller sets work, veto, upstream_bin
# Sourced by run.sh with SCALING=1 (uses its variables and helpers: work, veto, upstream_bin,
# DURATION, CLIENTS, OUTSTANDING, pids, and lib.sh's bench_*). Veto with server.workers 1 and 2,
# dnsdist with 1 and 2 listener threads and unbound with 1 and 2 threads (all SO_REUSEPORT), one
# server at a time on CPUs 0 and 1; dnsperf and the upstream share those CPUs (a two-core machine
# has no third). Per mix: QPS and the server's CPU (user + system, every thread) per answered
# query, then per server and mix the ratio of CPU per query with two workers to one. RATE:
# dnsperf -Q (queries per second offered), to compare CPU per query at one load rather than at
# each server's peak. RATE_PER_WORKER=N: N queries per second offered per worker or thread (N to
# one, 2N to two), so that each worker sees the same load and batches alike: the fair per-worker
# comparison where dnsperf shares the cores (at its peak neither worker is saturated); overrides
# RATE. SYSCALLS=1: also the server's system calls per answered query (perf stat,
# raw_syscalls:sys_enter: a count, not a timing, so it holds on a busy machine).
SCALE_CPUS=${SCALE_CPUS:-0,1}
SYSCALLS=${SYSCALLS:-0}
RATE=${RATE:-}
RATE_PER_WORKER=${RATE_PER_WORKER:-}
declare -A cpu_of # "server|mix|workers" -> CPU us per query, for the ratio table
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
completed() { awk '/Queries completed/ {print $3}' "$work/last.txt"; }
us_per_query() { # ticks_before ticks_after queries
	awk -v a="$1" -v b="$2" -v n="$3" -v t="$TICK" \
		'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1000000 / t / n; else print "-" }'
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# the configuration of run.sh's comparison (written there after this file is sourced)
bench_veto_yaml "$work/veto.yaml" vendors "$work/blocked.list"
printf 'log:\n  queries: none\n' >>"$work/veto.yaml"

# a bound, not a wait: 24 runs of DURATION and the servers' starts
bench_upstream_start $((DURATION * 30 + 240)) "$SCALE_CPUS"

# one server: name, port, pid, server (the ratio table's row) and its workers or threads; prints
# a table row per mix
measure() { # label port pid server workers
	local label=$1 port=$2 pid=$3 server=$4 n=$5 mix q t0 c rate=$RATE
	taskset -c "$SCALE_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$work/hits.txt" -n 1 -c 1 \
		-q 100 >/dev/null 2>&1
	[ -z "$RATE_PER_WORKER" ] || rate=$((RATE_PER_WORKER * n))
	for mix in hits blocked miss; do
		t0=$(cpu_ticks "$pid")
		sc=""
		if [ "$SYSCALLS" = 1 ]; then # system calls of the server during the run (counted)
			perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$work/sc.txt" \
				-- sleep $((DURATION + 1)) &
			sc=$!
		fi
		taskset -c "$SCALE_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$work/$mix.txt" \
			-l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -t 2 ${rate:+-Q "$rate"} \
			2>/dev/null >"$work/last.txt"
		q=$(awk '/Queries per second/ {print int($4)}' "$work/last.txt")
		c=$(us_per_query "$t0" "$(cpu_ticks "$pid")" "$(completed)")
		cpu_of["$server|$mix|$n"]=$c
		if [ -n "$sc" ]; then
			wait "$sc" 2>/dev/null || true
			c="$c | $(awk -F, -v n="$(completed)" '/raw_syscalls/ {
				if (n > 0) printf "%.2f", $1 / n; else print "-" }' "$work/sc.txt")"
		fi
		printf '| %s | %s | %s | %s |\n' "$label" "$mix" "$q" "$c"
	done
}

echo "scaling: one server at a time on CPUs $SCALE_CPUS (dnsperf -c $CLIENTS and the upstream" \
	"share them), $DURATION s per run${RATE:+, $RATE queries/s offered}${RATE_PER_WORKER:+, $RATE_PER_WORKER queries/s offered per worker or thread}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$SYSCALLS" = 1 ]; then
	printf '| server | mix | qps | CPU us/query | system calls/query |\n|---|---|---:|---:|---:|\n'
else
	printf '| server | mix | qps | CPU us/query |\n|---|---|---:|---:|\n'
fi
# DEVICES=1 (the default): also each with device identity on (a devices: section: the table on
# the main loop, its snapshot on the other worker; the load's client is one device)
devs=0
[ "${DEVICES:-1}" = 1 ] && devs="0 1"
for dev in $devs; do
	for w in 1 2; do
		port=$((VETO_PORT + 20 + w + 2 * dev))
		cfg="$work/veto-w$w-d$dev.yaml"
		sed -e "s#127.0.0.1:$VETO_PORT#127.0.0.1:$port#" "$work/veto.yaml" >"$cfg"
		sed -i -e "s#^  workers: 1 .*#  workers: $w#" "$cfg"
		label="veto, workers $w" server=veto
		if [ "$dev" = 1 ]; then
			mkdir -p "$work/state-w$w"
			printf 'state_dir: %s\ndevices:\n  arp: false\n' "$work/state-w$w" >>"$cfg"
			label="$label, devices" server="veto, devices"
		fi
		taskset -c "$SCALE_CPUS" "$veto" serve -c "$cfg" >/dev/null \
			2>"$work/veto-w$w-d$dev.err" &
		vp=$!
		pids+=("$vp")
		bench_wait_up $port
		measure "$label" $port $vp "$server" $w
		stop_pid $vp
	done
done
for t in 1 2; do
	port=$((DD_PORT + 20 + t))
	{
		for _ in $(seq 1 $t); do echo "addLocal(\"127.0.0.1:$port\", {reusePort=true})"; done
		echo "newServer({address=\"127.0.0.1:$UP_PORT\", name=\"up\", checkInterval=3600, sockets=$t})"
		echo "pc = newPacketCache(100000, {maxTTL=86400, minTTL=0, numberOfShards=$t})"
		echo 'getPool(""):setCache(pc)'
		echo 'smn = newSuffixMatchNode()'
		echo "for line in io.lines(\"$work/blocked.list\") do smn:add(line) end"
		echo 'addAction(SuffixMatchNodeRule(smn), SpoofAction({"0.0.0.0", "::"}))'
	} >"$work/dnsdist-t$t.lua"
	taskset -c "$SCALE_CPUS" dnsdist --supervised --disable-syslog -C "$work/dnsdist-t$t.lua" \
		>"$work/dnsdist-t$t.out" 2>&1 &
	dp=$!
	pids+=("$dp")
	bench_wait_up $port
	measure "dnsdist, $t listener thread$([ $t = 1 ] || echo s)" $port $dp dnsdist $t
	stop_pid $dp
done
for t in 1 2; do
	port=$((UB_PORT + 20 + t))
	bench_unbound_conf "$work/unbound-t$t.conf" $port $t "$work/blocked.list"
	taskset -c "$SCALE_CPUS" unbound -d -c "$work/unbound-t$t.conf" >"$work/unbound-t$t.out" 2>&1 &
	up=$!
	pids+=("$up")
	bench_wait_up $port
	measure "unbound, $t thread$([ $t = 1 ] || echo s)" $port $up unbound $t
	stop_pid $up
done
echo
echo "CPU per query with two workers or threads against one (ratio 2/1: 1.00 is the same cost per" \
	"query${RATE_PER_WORKER:+; each worker offered $RATE_PER_WORKER queries/s})"
printf '| server | mix | CPU us/query, 1 | CPU us/query, 2 | ratio 2/1 |\n|---|---|---:|---:|---:|\n'
for server in veto "veto, devices" dnsdist unbound; do
	for mix in hits blocked miss; do
		[ -n "${cpu_of["$server|$mix|1"]:-}" ] || continue
		a=${cpu_of["$server|$mix|1"]} b=${cpu_of["$server|$mix|2"]:--}
		printf '| %s | %s | %s | %s | %s |\n' "$server" "$mix" "$a" "$b" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')"
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
