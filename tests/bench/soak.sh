#!/usr/bin/env bash
# Soak: DURATION seconds at 80% of the measured peak with both query logs on (JSON lines file and
# database) and device identity on; then is every blocked query and every device event stored,
# and did the resident memory stay flat? The peak is measured first (PEAK_S seconds of dnsperf,
# same mix, same configuration, a fresh daemon). The mix: 70% cached names, 20% names of the
# soak's own blocklist (action nxdomain, so dnsperf's NXDOMAIN count is the blocked answers),
# 10% names seen once. Beside dnsperf, soak_devices.py brings a new loopback client every second
# whose first query is a `rom` name of the shipped catalog (first_seen, vendor and group_change
# events) and sends names from earlier clients, which their new group refuses (blocked too).
# RSS is sampled every 10 s into rss.csv in the work folder (printed at the end).
# Bounded: every load run has a time limit, every process started here is stopped by its PID.
# Usage: tests/bench/soak.sh [BUILD_DIR] (default build).
# Environment: DURATION (seconds, default 600), PEAK_S (default 15), SHARE (percent of the peak,
# default 80; RATE: a fixed rate in queries a second instead), CLIENTS (dnsperf -c, default
# 8), OUTSTANDING (dnsperf -q, default 256),
# TASKSET (default "1": the daemon on CPU 1, the load on CPU 0; "" runs unpinned), LOOP_ONLY
# (1: pin only the event loop's thread to CPU 1, so the writer may use either core), KEEP (1:
# keep the query logs in the work folder; by default they are deleted at exit, as a 10-minute
# run writes about 8 GB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
case "$build" in */veto) build=$(dirname "$build") ;; esac
veto=$build/veto
upstream_bin=$build/tests/bench_upstream
DURATION=${DURATION:-600}
PEAK_S=${PEAK_S:-15}
SHARE=${SHARE:-80}
RATE=${RATE:-}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-256}
TASKSET=${TASKSET-1}
LOOP_ONLY=${LOOP_ONLY:-0}
KEEP=${KEEP:-0}
UP_PORT=15320 VETO_PORT=15321
work=$(mktemp -d /tmp/veto-soak.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# the logs of a 10-minute run take gigabytes: kept only on request
	[ "$KEEP" = 1 ] || rm -rf "$work/queries.jsonl" "$work/state"
}
trap cleanup EXIT

for b in "$veto" "$upstream_bin"; do
	[ -x "$b" ] || { echo "missing $b (build first: make build)" >&2; exit 1; }
done
command -v dnsperf >/dev/null || { echo "missing dnsperf (make bench-deps)" >&2; exit 1; }
/usr/bin/python3 -c 'import dns.query' 2>/dev/null || { echo "missing python3-dnspython" >&2; exit 1; }
pin_server=() pin_load=()
if [ -n "$TASKSET" ]; then
	[ "$LOOP_ONLY" = 1 ] || pin_server=(taskset -c 1)
	pin_load=(taskset -c 0)
fi
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r); load average before: $(loadavg)"

# --- data and configuration -------------------------------------------------------------------
echo "blocked.soak.example" >"$work/blocked.list"
for i in $(seq 1 1000); do echo "h$i.bench.example A"; done >"$work/hits.txt"
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) { r = rand();
	if (r < 0.7) printf "h%d.bench.example A\n", 1 + int(rand() * 1000);
	else if (r < 0.9) printf "t%d.blocked.soak.example A\n", i;
	else printf "m%d.miss.example A\n", i; } }' >"$work/mix.txt"
catalog=$src/conf/catalog/signatures.tsv
vendors=$(awk -F'\t' '$3 == "rom" { v[$2] = 1 } END { s = ""; for (k in v) s = s (s ? ", " : "") k; print s }' "$catalog")
cat >"$work/soak.yaml" <<YAML
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
  soak: {files: [$work/blocked.list]}
state_dir: $work/state
devices:
  oui: false
groups:
  - name: banned-handsets
    vendors: [$vendors]
    default: deny
    action: refused
  - name: everyone
    block: [soak]
    action: nxdomain
log: {queries: all, file: $work/queries.jsonl, database: queries.db}
YAML
"$veto" check -c "$work/soak.yaml" >/dev/null

"${pin_load[@]}" "$upstream_bin" $UP_PORT $((PEAK_S + DURATION + 300)) &
pids+=($!)

wait_up() {
	for _ in $(seq 1 100); do
		if echo "h1.bench.example A" | dnsperf -s 127.0.0.1 -p $VETO_PORT -n 1 -t 1 2>/dev/null |
			grep -q 'Queries completed: *1 '; then return 0; fi
		sleep 0.1
	done
	echo "veto did not answer" >&2
	return 1
}
start_veto() { # name
	rm -rf "$work/state" "$work/queries.jsonl"
	"${pin_server[@]}" "$veto" serve -c "$work/soak.yaml" >"$work/$1.out" 2>"$work/$1.err" &
	vpid=$!
	pids+=($vpid)
	if [ -n "$TASKSET" ] && [ "$LOOP_ONLY" = 1 ]; then taskset -p -c 1 "$vpid" >/dev/null; fi
	wait_up
	"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/hits.txt" -n 1 -c 1 -q 100 \
		>/dev/null 2>&1
}
stop_veto() { # SIGTERM: the daemon writes what is buffered, then exits
	kill -TERM "$vpid"
	wait "$vpid" || true
}
sql() { # query -> one value
	/usr/bin/python3 -c 'import sqlite3, sys
v = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute(sys.argv[2]).fetchone()[0]
print(v if v is not None else 0)' "$work/state/queries.db" "$1"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# VmRSS, RssAnon (heap: SQLite's page cache, the ring, the caches), RssFile (mostly the
# database's pages mapped by SQLite's mmap_size, bounded at 256 MB) as "rss,anon,file"
rss_split() { awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2}
	END { printf "%d,%d,%d\n", r, a, f }' "/proc/$1/status" 2>/dev/null || echo "0,0,0"; }

# --- peak --------------------------------------------------------------------------------------
start_veto peak
"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/mix.txt" -l "$PEAK_S" -c "$CLIENTS" \
	-q "$OUTSTANDING" -t 2 2>/dev/null >"$work/peak.txt"
stop_veto
peak=$(awk '/Queries per second/ {print int($4)}' "$work/peak.txt")
rate=$((peak * SHARE / 100))
[ -z "$RATE" ] || { rate=$RATE; SHARE=$((RATE * 100 / (peak > 0 ? peak : 1))); }
echo "peak (mix, both logs on, ${PEAK_S} s): $peak qps; soak rate ${SHARE}%: $rate qps for $DURATION s"

# --- soak --------------------------------------------------------------------------------------
start_veto soak
echo "t_s,rss_kb,anon_kb,file_kb" >"$work/rss.csv"
(
	t0=$(date +%s)
	for _ in $(seq 0 $((DURATION / 10 + 6))); do
		r=$(rss_split "$vpid")
		[ "${r%%,*}" != 0 ] || break
		echo "$(($(date +%s) - t0)),$r" >>"$work/rss.csv"
		sleep 10
	done
) &
rss_pid=$!
pids+=($rss_pid)
"${pin_load[@]}" /usr/bin/python3 "$here/soak_devices.py" $VETO_PORT "$((DURATION - 5))" "$catalog" \
	"$work/devices.json" &
dev_pid=$!
pids+=($dev_pid)
"${pin_load[@]}" dnsperf -s 127.0.0.1 -p $VETO_PORT -d "$work/mix.txt" -l "$DURATION" -c "$CLIENTS" \
	-q "$OUTSTANDING" -Q "$rate" -t 2 2>/dev/null >"$work/soak.txt"
wait "$dev_pid"
rss_end=$(rss_split "$vpid")
sleep 2 # the writer commits about once a second
stop_veto
kill "$rss_pid" 2>/dev/null || true
wait "$rss_pid" 2>/dev/null || true
echo "load average after: $(loadavg)"

# --- what was answered, what was stored -------------------------------------------------------
completed=$(awk '/Queries completed/ {print $3}' "$work/soak.txt")
lost=$(awk '/Queries lost/ {print $3}' "$work/soak.txt")
nx=$({ grep -o 'NXDOMAIN [0-9]*' "$work/soak.txt" || true; } | awk '{print $2}')
nx=${nx:-0}
read -r side_refused side_total caused unanswered < <(/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["rcodes"].get("REFUSED", 0), sum(v for k, v in d["rcodes"].items() if k != "timeout"),
      len(d["caused"]), len(d["unanswered"]))' "$work/devices.json")
blocked_answered=$((nx + side_refused))
daemon_line=$(grep 'stopped:' "$work/soak.err" | tail -1)
daemon_blocked=$(echo "$daemon_line" | grep -o 'blocked [0-9]*' | awk '{print $2}')
daemon_refused=$(echo "$daemon_line" | grep -o 'refused [0-9]*' | awk '{print $2}')
daemon_total=$(echo "$daemon_line" | grep -o 'stopped: [0-9]*' | awk '{print $2}')
jsonl_lines=$(grep -vc '"type":"unlogged"' "$work/queries.jsonl" || true)
jsonl_blocked=$(grep -c '"blocked":true' "$work/queries.jsonl" || true)
jsonl_unlogged=$({ grep -o '"type":"unlogged".*"forwarded":[0-9]*' "$work/queries.jsonl" || true; } |
	{ grep -o '"forwarded":[0-9]*$' || true; } | cut -d: -f2 | awk '{n += $1} END {print n + 0}')
db_rows=$(sql "SELECT count(*) FROM queries")
db_blocked=$(sql "SELECT count(*) FROM queries WHERE blocked = 1")
db_unlogged=$(sql "SELECT sum(forwarded) FROM unlogged")
evidence_lost=$({ grep -o 'query log: [0-9]* blocked records lost' "$work/soak.err" || true; } | awk '{n += $3} END {print n + 0}')
events_lost=$(grep -c 'device event lost' "$work/soak.err" || true)
# every client the side-load caused events for must have its three events in the database
read -r ev_expected ev_missing ev_first ev_vendor ev_group ev_total < <(/usr/bin/python3 -c 'import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
db = sqlite3.connect("file:" + sys.argv[2] + "?mode=ro", uri=True)
have = set(db.execute("SELECT client, kind FROM device_events").fetchall())
kinds = dict(db.execute("SELECT kind, count(*) FROM device_events GROUP BY kind").fetchall())
want = [(c["client"], k) for c in d["caused"] for k in ("first_seen", "vendor", "group_change")]
missing = [w for w in want if w not in have]
for m in missing[:10]:
    print("missing event", m, file=sys.stderr)
print(len(want), len(missing), kinds.get("first_seen", 0), kinds.get("vendor", 0),
      kinds.get("group_change", 0), sum(kinds.values()))' "$work/devices.json" "$work/state/queries.db")

echo
echo "| measure | value |"
echo "|---|---:|"
echo "| duration, rate | $DURATION s at $rate qps ($SHARE% of $peak) |"
echo "| dnsperf answered / lost | $completed / $lost |"
echo "| side-load answered (new clients, unanswered) | $side_total ($caused, $unanswered) |"
echo "| daemon: queries / blocked / refused (its stop line) | $daemon_total / $daemon_blocked / $daemon_refused |"
echo "| blocked answered (dnsperf NXDOMAIN + side-load REFUSED) | $blocked_answered ($nx + $side_refused) |"
echo "| blocked stored: JSON lines / database | $jsonl_blocked / $db_blocked |"
echo "| lost blocked (answered - stored in the database) | $((blocked_answered - db_blocked)) |"
echo "| evidence lost (the daemon's count) | $evidence_lost |"
echo "| records: JSON lines / database rows (warm-up included) | $jsonl_lines / $db_rows |"
echo "| forwarded counted as unlogged: JSON lines / database | $jsonl_unlogged / $db_unlogged |"
echo "| stored + unlogged vs daemon queries | $((db_rows + db_unlogged)) vs $daemon_total |"
echo "| device events caused (3 per new client) / missing | $ev_expected / $ev_missing |"
echo "| device events stored: first_seen / vendor / group_change / all | $ev_first / $ev_vendor / $ev_group / $ev_total |"
echo "| device events the daemon reported lost | $events_lost |"
for col in 2:RSS 3:RssAnon 4:RssFile; do
	awk -F, -v c="${col%%:*}" -v what="${col#*:}" -v end="$(echo "$rss_end" | cut -d, -f"$((${col%%:*} - 1))")" '
	NR > 1 { n++; t[n] = $1; v[n] = $c
		if (min == "" || $c < min) min = $c; if ($c > max) max = $c
		if (base == "" && $1 >= 60) base = $c }
	END { if (base == "") base = v[n]
		# least-squares slope over the samples of the second half, kB per minute
		for (i = 1; i <= n; i++) if (t[i] >= t[n] / 2) { m++; sx += t[i]; sy += v[i]; sxx += t[i] * t[i]; sxy += t[i] * v[i] }
		slope = (m > 1 && m * sxx - sx * sx != 0) ? (m * sxy - sx * sy) / (m * sxx - sx * sx) * 60 : 0
		printf "| %s kB: start / after 1 min / min / max / end | %d / %d / %d / %d / %d |\n", what, v[1], base, min, max, end
		printf "| %s end vs after 1 min; trend over the second half | %+.1f%%; %+.1f kB/min (%d samples) |\n", what, base ? 100 * (end - base) / base : 0, slope, m }' "$work/rss.csv"
done
echo
echo "RSS samples (t_s,rss_kb,anon_kb,file_kb): $(tail -n +2 "$work/rss.csv" | tr '\n' ' ')"
grep -h "lost" "$work/soak.err" | head -20 || true
grep -h "query log\|query database" "$work/soak.err" | grep -v ": open$\|writing to\|lost" | head -3 || true
echo "work folder: $work"
