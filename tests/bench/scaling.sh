# Sourced by run.sh with SCALING=1 (uses its variables and helpers: work, veto, upstream_bin,
# DURATION, CLIENTS, OUTSTANDING, pids, and lib.sh's bench_*). Veto with server.workers 1 and 2, dnsdist with 1 and 2
# listener threads (SO_REUSEPORT), one server at a time on CPUs 0 and 1; dnsperf and the
# upstream share those CPUs (a two-core machine has no third). Per mix: QPS and the server's CPU
# (user + system, every thread) per answered query. RATE: dnsperf -Q (queries per second
# offered), to compare CPU per query at one load rather than at each server's peak. SYSCALLS=1:
# also the server's system calls per answered query (perf stat, raw_syscalls:sys_enter: a
# count, not a timing, so it holds on a busy machine).
SCALE_CPUS=${SCALE_CPUS:-0,1}
SYSCALLS=${SYSCALLS:-0}
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

bench_upstream_start $((DURATION * 8 * 4 + 120)) "$SCALE_CPUS"

# one server: name, port, pid; prints a table row per mix
measure() { # label port pid
	local label=$1 port=$2 pid=$3 mix q t0 c
	taskset -c "$SCALE_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$work/hits.txt" -n 1 -c 1 \
		-q 100 >/dev/null 2>&1
	for mix in hits blocked miss; do
		t0=$(cpu_ticks "$pid")
		sc=""
		if [ "$SYSCALLS" = 1 ]; then # system calls of the server during the run (counted)
			perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$work/sc.txt" \
				-- sleep $((DURATION + 1)) &
			sc=$!
		fi
		taskset -c "$SCALE_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$work/$mix.txt" \
			-l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -t 2 ${RATE:+-Q "$RATE"} \
			2>/dev/null >"$work/last.txt"
		q=$(awk '/Queries per second/ {print int($4)}' "$work/last.txt")
		c=$(us_per_query "$t0" "$(cpu_ticks "$pid")" "$(completed)")
		if [ -n "$sc" ]; then
			wait "$sc" 2>/dev/null || true
			c="$c | $(awk -F, -v n="$(completed)" '/raw_syscalls/ {
				if (n > 0) printf "%.2f", $1 / n; else print "-" }' "$work/sc.txt")"
		fi
		printf '| %s | %s | %s | %s |\n' "$label" "$mix" "$q" "$c"
	done
}

echo "scaling: one server at a time on CPUs $SCALE_CPUS (dnsperf -c $CLIENTS and the upstream" \
	"share them), $DURATION s per run${RATE:+, $RATE queries/s offered}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
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
		label="veto, workers $w"
		if [ "$dev" = 1 ]; then
			mkdir -p "$work/state-w$w"
			printf 'state_dir: %s\ndevices:\n  arp: false\n' "$work/state-w$w" >>"$cfg"
			label="$label, devices"
		fi
		taskset -c "$SCALE_CPUS" "$veto" serve -c "$cfg" >/dev/null \
			2>"$work/veto-w$w-d$dev.err" &
		vp=$!
		pids+=($vp)
		bench_wait_up $port
		measure "$label" $port $vp
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
	pids+=($dp)
	bench_wait_up $port
	measure "dnsdist, $t listener thread$([ $t = 1 ] || echo s)" $port $dp
	stop_pid $dp
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
