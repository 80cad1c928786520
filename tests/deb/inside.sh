#!/bin/sh
# Run by deb-test.sh inside a clean Debian 12 container, as root, without systemd.
set -eu
say() { echo "deb-test: $*"; }
fail() { echo "deb-test: FAILED: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

say "apt install (runtime dependencies from the archive)"
apt-get update -qq
# as an administrator installs it (`apt install ./veto_*.deb`): with its Recommends (ieee-data,
# the MAC registry device identity needs; logrotate)
apt-get install -y -qq /pkg/veto_*.deb >/tmp/apt.log 2>&1 ||
	{ cat /tmp/apt.log; fail "apt-get install"; }
apt-get install -y -qq --no-install-recommends bind9-dnsutils >>/tmp/apt.log 2>&1 ||
	{ cat /tmp/apt.log; fail "apt-get install bind9-dnsutils"; }

say "installed files, user and folders"
for f in /usr/sbin/veto /etc/veto/veto.yaml /etc/logrotate.d/veto /lib/systemd/system/veto.service \
	/usr/share/man/man8/veto.8 /usr/share/man/man5/veto.yaml.5 /usr/share/veto/lists/xiaomi.txt; do
	[ -f "$f" ] || fail "$f missing"
done
dpkg-query -W -f='${Conffiles}\n' veto | grep -q '^ /etc/veto/veto.yaml ' || fail "veto.yaml is not a conffile"
id veto >/dev/null 2>&1 || fail "no veto user"
[ "$(stat -c %U:%G /var/lib/veto)" = veto:veto ] || fail "/var/lib/veto not veto's"
[ "$(stat -c %U:%G /var/log/veto)" = veto:veto ] || fail "/var/log/veto not veto's"

say "veto check (the default configuration path)"
veto check >/tmp/check.out 2>&1 || { cat /tmp/check.out; fail "veto check"; }
cat /tmp/check.out
# the shipped configuration, installed with its recommended packages, checks clean
! grep -q ": warning:" /tmp/check.out || fail "veto check warns on the installed configuration"

say "veto serve as root, without systemd"
veto serve >/tmp/serve.out 2>&1 &
pid=$!
i=0
answer=
while [ $i -lt 100 ]; do
	answer=$(dig @127.0.0.1 +short +time=1 +tries=1 ad.mi.com A 2>/dev/null || true)
	[ "$answer" = 0.0.0.0 ] && break
	kill -0 $pid 2>/dev/null || { cat /tmp/serve.out; fail "veto serve exited"; }
	sleep 0.2
	i=$((i + 1))
done
[ "$answer" = 0.0.0.0 ] || { cat /tmp/serve.out; fail "no sinkhole answer for ad.mi.com (got '$answer')"; }
say "ad.mi.com A -> $answer (sinkholed)"
uid=$(id -u veto)
awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$pid/status | grep -qx "$uid $uid $uid $uid" ||
	{ grep -E '^(Uid|Gid|Cap)' /proc/$pid/status; fail "not running as veto"; }
grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/$pid/status || fail "capabilities left"
say "running as veto (uid $uid), no capabilities"
i=0
until grep -q '"qname":"ad.mi.com"' /var/log/veto/queries.jsonl 2>/dev/null; do
	[ $i -lt 50 ] || fail "the query is not in /var/log/veto/queries.jsonl"
	sleep 0.2
	i=$((i + 1))
done
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc -eq 0 ] || { cat /tmp/serve.out; fail "veto serve exited with $rc"; }
[ "$(stat -c %U /var/lib/veto/queries.db)" = veto ] || fail "queries.db not veto's"
say "stopped (exit 0); log and database written as veto"

say "apt purge"
apt-get purge -y -qq veto >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; fail "apt-get purge"; }
for f in /usr/sbin/veto /etc/veto /etc/logrotate.d/veto /lib/systemd/system/veto.service \
	/var/lib/veto /var/log/veto /usr/share/veto; do
	[ ! -e "$f" ] || fail "$f left after purge"
done
! id veto >/dev/null 2>&1 || fail "user veto left after purge"
! getent group veto >/dev/null || fail "group veto left after purge"
say "ok"
