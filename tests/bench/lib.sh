# shellcheck shell=bash disable=SC2154 # sourced: the caller sets work, veto, upstream_bin
# Sourced by run.sh (scaling.sh through it), pg_writer.sh, logdb.sh and soak.sh: what they set
# up alike. Uses the caller's variables: upstream_bin (bench_upstream), UP_PORT, VETO_PORT, work
# (the run's folder), and the array pids (every process started here is added, for the caller's
# cleanup to stop by PID).

# bench_veto_base FILE LIST LIST_FILE: veto on 127.0.0.1:VETO_PORT forwarding to the bench
# upstream, with a cache and the list LIST (names in LIST_FILE); the caller appends the rest.
bench_veto_base() {
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
  $2: {files: [$3]}
YAML
}

# bench_veto_yaml FILE LIST LIST_FILE: the base and one group "everyone" blocking LIST. The
# file ends inside the group: a caller may append the group's own keys ("    action:
# nxdomain"), then top-level ones.
bench_veto_yaml() {
	bench_veto_base "$@"
	printf 'groups:\n  - name: everyone\n    block: [%s]\n' "$2" >>"$1"
}

# bench_unbound_conf FILE PORT THREADS LIST_FILE: unbound on 127.0.0.1:PORT with THREADS
# threads (SO_REUSEPORT), configured as the peers are: forwarding everything to the bench
# upstream with its cache on (msg and rrset caches large enough for 100,000 answers), no DNSSEC
# validation (iterator only), every name of LIST_FILE and its subdomains answered 0.0.0.0 / ::
# (always_null, unbound's sinkhole). Runs as the caller (no chroot, no user change), logs to
# stderr, its pid file next to FILE, no remote control.
bench_unbound_conf() {
	{
		cat <<CONF
server:
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: "$1.pid"
  logfile: ""
  use-syslog: no
  verbosity: 0
  interface: 127.0.0.1
  port: $2
  do-ip6: no
  num-threads: $3
  so-reuseport: yes
  # dnsperf keeps up to -c x -q (8 x 256) queries in flight: above the default 1024 per thread
  num-queries-per-thread: 4096
  outgoing-range: 8192
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  auto-trust-anchor-file: ""
  msg-cache-size: 64m
  rrset-cache-size: 128m
CONF
		awk '{ printf "  local-zone: \"%s.\" always_null\n", $1 }' "$4"
		cat <<CONF
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$UP_PORT
CONF
	} >"$1"
}

# bench_upstream_start SECONDS [CPUS]: the fast fake authoritative server on UP_PORT for at most
# SECONDS (pinned to CPUS when given); its PID in up_pid and in pids.
bench_upstream_start() {
	if [ -n "${2:-}" ]; then
		taskset -c "$2" "$upstream_bin" "$UP_PORT" "$1" &
	else
		"$upstream_bin" "$UP_PORT" "$1" &
	fi
	up_pid=$!
	pids+=("$up_pid")
}

# bench_wait_up PORT [SECONDS]: until a DNS server on 127.0.0.1:PORT answers (SECONDS, default
# 10, at most).
bench_wait_up() {
	local end=$((SECONDS + ${2:-10}))
	while [ $SECONDS -lt $end ]; do
		if echo "h1.bench.example A" | dnsperf -s 127.0.0.1 -p "$1" -n 1 -t 1 2>/dev/null |
			grep -q 'Queries completed: *1 '; then return 0; fi
		sleep 0.1
	done
	echo "server on port $1 did not answer" >&2
	return 1
}

# A throwaway CA (DIR/ca.pem) and a certificate for 127.0.0.1 and bench.test signed by it
# (DIR/dot.pem, key DIR/dot.key), for a DoT terminator in front of the bench upstream.
bench_dot_cert() { # dir
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" \
		-out "$1/ca.pem" -days 2 -subj /CN=bench-ca 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/dot.key" \
		-out "$1/dot.csr" -subj /CN=bench.test 2>/dev/null
	echo "subjectAltName=IP:127.0.0.1,DNS:bench.test" >"$1/dot.ext"
	openssl x509 -req -in "$1/dot.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial \
		-out "$1/dot.pem" -days 2 -extfile "$1/dot.ext" 2>/dev/null
}
