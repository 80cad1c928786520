# shellcheck shell=bash disable=SC2154 # sourced: the caller sets work, veto, upstream_bin
# Sourced by run.sh with SCALING=1 (uses its variables and helpers: work, veto, upstream_bin,
# DURATION, CLIENTS, OUTSTANDING, pids, and lib.sh's bench_*). Veto with server.workers 1 and 2
# (two workers with server.udp_sockets shared, the default, and per_worker), dnsdist with 1 and
# 2 listener threads and unbound with 1 and 2 threads (SO_REUSEPORT), one server at a time on
# CPUs 0 and 1; dnsperf and the upstream share those CPUs (a two-core machine has no third).
# Per mix: QPS and the server's CPU (user + system, every thread) per answered query.
# REPS (default 3) rounds: each round starts every configuration once, in turn, so that what
# the machine's neighbours do falls on all of them alike; then a table of the medians and, per
# server and mix, the ratio of the median CPU per query with two workers to one. For Veto with
# two workers, the share of the queries the second worker answered and the times the main loop
# asked it for help (`veto stats`). RATE: dnsperf -Q (queries per second offered), to compare CPU
# per query at one load rather than at each server's peak. RATE_PER_WORKER=N: N queries per
# second offered per worker or thread (N to one, 2N to two); overrides RATE. SYSCALLS=1: also
# the server's system calls per answered query (perf stat, raw_syscalls:sys_enter: a count, not
# a timing, so it holds on a busy machine). SERVERS: which to measure (default "veto dnsdist
# unbound"). DEVICES (1, the default): Veto also with device identity on.
SCALE_CPUS=${SCALE_CPUS:-0,1}
SERVERS=${SERVERS:-veto dnsdist unbound}
REPS=${REPS:-3}
SYSCALLS=${SYSCALLS:-0}
RATE=${RATE:-}
RATE_PER_WORKER=${RATE_PER_WORKER:-}
declare -A cpu_of qps_of # "label|mix" -> the rounds' figures, space-separated
declare -a labels=()     # in the order first measured
TICK=$(getconf CLK_TCK)
wanted() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
completed() { awk '/Queries completed/ {print $3}' "$work/last.txt"; }
us_per_query() { # ticks_before ticks_after queries
	awk -v a="$1" -v b="$2" -v n="$3" -v t="$TICK" \
		'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1000000 / t / n; else print "-" }'
}
median() { # FORMAT (printf's, for the mean of the middle two): the median of stdin's numbers
	tr ' ' '\n' | awk '$1 ~ /^[0-9.]+$/' | sort -g | awk -v f="$1" '{ v[NR] = $1 } END {
	if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
	else printf f "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# the configuration of run.sh's comparison (written there after this file is sourced)
bench_veto_yaml "$work/veto.yaml" vendors "$work/blocked.list"
printf 'log:\n  queries: none\n' >>"$work/veto.yaml"

# a bound, not a wait: the rounds' runs of DURATION and the servers' starts
bench_upstream_start $((DURATION * 27 * REPS + 120 * REPS)) "$SCALE_CPUS"

# one server: label, port, pid, workers or threads; prints a table row per mix
measure() { # label port pid workers
	local label=$1 port=$2 pid=$3 n=$4 mix q t0 c rate=$RATE
	case " ${labels[*]} " in *" $label "*) ;; *) labels+=("$label") ;; esac
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
		cpu_of["$label|$mix"]+=" $c"
		qps_of["$label|$mix"]+=" $q"
		if [ -n "$sc" ]; then
			wait "$sc" 2>/dev/null || true
			c="$c | $(awk -F, -v n="$(completed)" '/raw_syscalls/ {
				if (n > 0) printf "%.2f", $1 / n; else print "-" }' "$work/sc.txt")"
		fi
		printf '| %s | %s | %s | %s |\n' "$label" "$mix" "$q" "$c"
	done
}

# Veto: workers, device identity (0/1), udp_sockets; one start, the three mixes, one stop
veto_run() { # workers dev udp_sockets
	local w=$1 dev=$2 udp=$3 port name cfg label vp
	port=$((VETO_PORT + 20 + w + 2 * dev))
	name="w$w-d$dev-$udp"
	cfg="$work/veto-$name.yaml"
	sed -e "s#127.0.0.1:$VETO_PORT#127.0.0.1:$port#" "$work/veto.yaml" >"$cfg"
	sed -i -e "s#^  workers: 1 .*#  workers: $w\n  udp_sockets: $udp#" "$cfg"
	# its own folder: the control socket for `veto stats` (and the device table)
	mkdir -p "$work/state-$name"
	printf 'state_dir: %s\n' "$work/state-$name" >>"$cfg"
	label="veto, workers $w"
	[ "$w" = 1 ] || label="$label, $udp"
	if [ "$dev" = 1 ]; then
		printf 'devices:\n  arp: false\n' >>"$cfg"
		label="$label, devices"
	fi
	taskset -c "$SCALE_CPUS" "$veto" serve -c "$cfg" >/dev/null 2>"$work/veto-$name.err" &
	vp=$!
	pids+=("$vp")
	bench_wait_up $port
	measure "$label" $port $vp "$w"
	if [ "$w" != 1 ]; then
		# who answered: the second worker's share, and the main loop's calls for help
		{ "$veto" stats -c "$cfg" --json 2>/dev/null || true; } | awk -v l="$label" '{
			q0 = q1 = h = 0
			if (match($0, /"queries_0":[0-9]+/)) q0 = substr($0, RSTART + 12, RLENGTH - 12)
			if (match($0, /"queries_1":[0-9]+/)) q1 = substr($0, RSTART + 12, RLENGTH - 12)
			if (match($0, /"help_requests":[0-9]+/)) h = substr($0, RSTART + 16, RLENGTH - 16)
			if (q0 + q1 > 0) printf "(%s: worker 1 answered %.1f%% of %d queries; help asked %d times)\n", l, 100 * q1 / (q0 + q1), q0 + q1, h }'
	fi
	stop_pid $vp
}

dnsdist_run() { # threads
	local t=$1 port dp
	port=$((DD_PORT + 20 + t))
	{
		for _ in $(seq 1 "$t"); do echo "addLocal(\"127.0.0.1:$port\", {reusePort=true})"; done
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
	measure "dnsdist, $t listener thread$([ "$t" = 1 ] || echo s)" $port $dp "$t"
	stop_pid $dp
}

unbound_run() { # threads
	local t=$1 port up
	port=$((UB_PORT + 20 + t))
	bench_unbound_conf "$work/unbound-t$t.conf" $port "$t" "$work/blocked.list"
	taskset -c "$SCALE_CPUS" unbound -d -c "$work/unbound-t$t.conf" >"$work/unbound-t$t.out" 2>&1 &
	up=$!
	pids+=("$up")
	bench_wait_up $port
	measure "unbound, $t thread$([ "$t" = 1 ] || echo s)" $port $up "$t"
	stop_pid $up
}

echo "scaling: one server at a time on CPUs $SCALE_CPUS (dnsperf -c $CLIENTS and the upstream" \
	"share them), $DURATION s per run, $REPS rounds${RATE:+, $RATE queries/s offered}${RATE_PER_WORKER:+, $RATE_PER_WORKER queries/s offered per worker or thread}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$SYSCALLS" = 1 ]; then
	printf '| server | mix | qps | CPU us/query | system calls/query |\n|---|---|---:|---:|---:|\n'
else
	printf '| server | mix | qps | CPU us/query |\n|---|---|---:|---:|\n'
fi
for rep in $(seq 1 "$REPS"); do
	echo "(round $rep of $REPS)"
	if wanted veto; then
		veto_run 1 0 shared
		veto_run 2 0 shared
		veto_run 2 0 per_worker
		if [ "${DEVICES:-1}" = 1 ]; then
			veto_run 1 1 shared
			veto_run 2 1 shared
		fi
	fi
	if wanted dnsdist; then dnsdist_run 1; dnsdist_run 2; fi
	if wanted unbound; then unbound_run 1; unbound_run 2; fi
done

echo
echo "Medians of the $REPS rounds: qps (CPU us per query), and the ratio of CPU per query, two" \
	"workers or threads / one (1.00 is the same cost per" \
	"query${RATE_PER_WORKER:+; each worker offered $RATE_PER_WORKER queries/s})"
printf '| server | hits | blocked | miss | ratio 2/1: hits | blocked | miss |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for label in "${labels[@]}"; do
	# the configuration with one worker or thread that this one is compared with
	case "$label" in
	"veto, workers 2"*", devices") one="veto, workers 1, devices" ;;
	"veto, workers 2"*) one="veto, workers 1" ;;
	*", 2 listener threads") one="${label%, 2 listener threads}, 1 listener thread" ;;
	*", 2 threads") one="${label%, 2 threads}, 1 thread" ;;
	*) one="" ;;
	esac
	row="| $label |" ratios=""
	for mix in hits blocked miss; do
		c=$(echo "${cpu_of["$label|$mix"]:-}" | median %.2f)
		q=$(echo "${qps_of["$label|$mix"]:-}" | median %.0f)
		row="$row $q ($c) |"
		if [ -n "$one" ]; then
			a=$(echo "${cpu_of["$one|$mix"]:-}" | median %.2f)
			ratios="$ratios $(awk -v a="$a" -v b="$c" 'BEGIN {
				if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }') |"
		else
			ratios="$ratios |"
		fi
	done
	echo "$row$ratios"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
