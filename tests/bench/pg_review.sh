#!/usr/bin/env bash
# `veto log` and `veto report` on a large shared store: a private PostgreSQL server (initdb in a
# folder under /tmp, Unix socket only, as the "postgres" user when run as root), ROWS rows made
# by pg_gen.sh, then the wall-clock and CPU time (veto and the server's backends; median of
# RUNS) of the commands of the issue's target
# (`report attempts` and `report summary` under 1 s) and of `veto log` with a device or domain
# filter. The server is stopped by its PID at the end; DIR is removed unless KEEP=1 (then
# reused by the next run when it holds a database).
# Usage: tests/bench/pg_review.sh [BUILD_DIR]. Environment: ROWS (default 10000000), DAYS (30),
# RUNS (3), DIR (default /tmp/veto-bench-pg), KEEP (0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
ROWS=${ROWS:-10000000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-3}
DIR=${DIR:-/tmp/veto-bench-pg}
KEEP=${KEEP:-0}
PORT=15432
bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort | tail -1)")
as=()
[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
fresh=0
if [ ! -d "$DIR/data" ]; then
	mkdir -p "$DIR" && chmod 755 "$DIR"
	[ "$(id -u)" = 0 ] && chown postgres: "$DIR"
	"${as[@]}" "$bindir/initdb" -D "$DIR/data" -U veto --auth=trust -E UTF8 --locale=C \
		--no-sync >/dev/null
	fresh=1
fi
"${as[@]}" "$bindir/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
	-o "-k $DIR -c listen_addresses='' -p $PORT -c shared_buffers=256MB -c work_mem=64MB" start \
	>/dev/null
pid=$(head -1 "$DIR/data/postmaster.pid")
stop() {
	"${as[@]}" "$bindir/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || kill "$pid" || true
	[ "$KEEP" = 1 ] || rm -rf "$DIR"
}
trap stop EXIT
conn="postgresql://veto@/veto?host=$DIR&port=$PORT"
if [ "$fresh" = 1 ]; then
	"${as[@]}" "$bindir/createdb" -h "$DIR" -p $PORT -U veto veto
	"$here/pg_gen.sh" "$conn" "$ROWS" "$DAYS" "$build"
fi
cfg=$DIR/veto.yaml
printf 'upstream:\n  servers: ["127.0.0.1:53"]\nstore:\n  postgresql: "%s"\n  instance: bench\n' \
	"$conn" >"$cfg"
echo "rows: $(psql -X -At "$conn" -c 'SELECT count(*) FROM queries')," \
	"rollup_sources: $(psql -X -At "$conn" -c 'SELECT count(*) FROM rollup_sources')," \
	"rollup_days: $(psql -X -At "$conn" -c 'SELECT count(*) FROM rollup_days')," \
	"rollup_names: $(psql -X -At "$conn" -c 'SELECT count(*) FROM rollup_names')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU of the server's backends (and parallel workers): the postmaster's reaped children
# (cutime + cstime, clock ticks), read before a command and after its backend exited
server_cpu() { awk '{ print $16 + $17 }' "/proc/$pid/stat"; }
tick_ms=$((1000 / $(getconf CLK_TCK)))
timeit() {
	local t=() c=()
	for _ in $(seq "$RUNS"); do
		local a b s0 s1 u
		s0=$(server_cpu)
		a=$(date +%s%N)
		# a failed run is reported, the others still run
		u=$( { /usr/bin/time -f '%U %S' "$build/veto" "$@" -c "$cfg" >/dev/null; } 2>&1 |
			tail -1) || echo "veto $*: failed" >&2
		b=$(date +%s%N)
		sleep 0.3 # the backend exits and is reaped
		s1=$(server_cpu)
		t+=($(((b - a) / 1000000)))
		c+=($(echo "$u" | awk -v s=$(((s1 - s0) * tick_ms)) '{ printf "%d", ($1 + $2) * 1000 + s }'))
	done
	local mid=$(((RUNS + 1) / 2))
	printf '%-52s wall %5d ms, CPU %5d ms (median; CPU runs: %s)\n' "veto $*" \
		"$(printf '%s\n' "${t[@]}" | sort -n | sed -n "${mid}p")" \
		"$(printf '%s\n' "${c[@]}" | sort -n | sed -n "${mid}p")" \
		"$(printf '%s\n' "${c[@]}" | sort -n | tr '\n' ' ')"
}
timeit report attempts
timeit report attempts --since all
timeit report summary
timeit report summary --since all
timeit log
timeit log --device dev-0001
timeit log --device dev-0001 --since all --limit 0
timeit log --domain t3.miui.com
timeit log --domain miui.com --since 24h --limit 0
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
