/*
 * test_config: the YAML configuration loader (policy/config*.c): every error path with its
 * file, line, column, key path and message; defaults; relative paths; the example of the spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "config_int.h"
#include "config_harness.h"
#include "diag.h"

#define DATA VETO_TEST_DATA "/config"

/* ---- error paths: every case must fail with exactly this diagnostic among the others ---- */

#define LISTS_AB                                                                                 \
	"lists:\n"                                                                               \
	"  a: {domains: [a.example]}\n"                                                          \
	"  b: {domains: [b.example]}\n"

static const struct error_case error_cases[] = {
	/* unknown keys, at each level */
	{"unknown top key", "sever:\n  listen: []\n",
	 "t.yaml:1:1: sever: unknown key (did you mean 'server'?)"},
	{"unknown top key, no suggestion", "zzz: 1\n",
	 "t.yaml:1:1: zzz: unknown key 'zzz' (expected one of server, upstream, cache, block, "
	 "lists, groups, log, state_dir, devices, http, store)"},
	{"unknown server key", "server:\n  lisen: [\"127.0.0.1:53\"]\n",
	 "t.yaml:2:3: server.lisen: unknown key (did you mean 'listen'?)"},
	{"unknown upstream key", "upstream:\n  timeout: 5\n",
	 "t.yaml:2:3: upstream.timeout: unknown key (did you mean 'timeout_ms'?)"},
	{"unknown cache key", "cache:\n  size: 5\n",
	 "t.yaml:2:3: cache.size: unknown key 'size' (expected one of entries, min_ttl, max_ttl, "
	 "serve_stale, prefetch)"},
	{"serve_stale not a duration", "cache:\n  serve_stale: forever\n",
	 "t.yaml:2:3: cache.serve_stale: expected a duration from 1s to 2592000s (such as 30s, 15m, "
	 "24h, 7d), got 'forever'"},
	{"serve_stale zero", "cache:\n  serve_stale: 0\n",
	 "t.yaml:2:3: cache.serve_stale: expected a duration from 1s to 2592000s (such as 30s, 15m, "
	 "24h, 7d), got '0'"},
	{"serve_stale too long", "cache:\n  serve_stale: 31d\n",
	 "t.yaml:2:3: cache.serve_stale: expected a duration from 1s to 2592000s (such as 30s, 15m, "
	 "24h, 7d), got '31d'"},
	{"prefetch not a bool", "cache:\n  prefetch: often\n",
	 "t.yaml:2:3: cache.prefetch: expected true or false, got 'often'"},
	{"unknown block key", "block:\n  actoin: nxdomain\n",
	 "t.yaml:2:3: block.actoin: unknown key (did you mean 'action'?)"},
	{"unknown log key", "log:\n  queris: all\n",
	 "t.yaml:2:3: log.queris: unknown key (did you mean 'queries'?)"},
	{"unknown list key", "lists:\n  a: {file: [x.txt]}\ngroups:\n  - name: g\n    block: [a]\n",
	 "t.yaml:2:7: lists.a.file: unknown key (did you mean 'files'?)"},
	{"unknown group key", LISTS_AB "groups:\n  - name: g\n    blok: [a]\n    allow: [b]\n",
	 "t.yaml:6:5: groups[0].blok: unknown key (did you mean 'block'?)"},
	/* bad values of each kind */
	{"block action", "block:\n  action: drop\n",
	 "t.yaml:2:3: block.action: unknown value 'drop' (expected sinkhole, nxdomain, nodata, "
	 "refused)"},
	{"list action", "lists:\n  a: {domains: [a.example], action: inherit}\n"
			"groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:29: lists.a.action: unknown value 'inherit' (expected sinkhole, nxdomain, "
	 "nodata, refused)"},
	{"group default", LISTS_AB "groups:\n  - name: g\n    default: block\n    block: [a, b]\n",
	 "t.yaml:6:5: groups[0].default: unknown value 'block' (expected allow, deny)"},
	{"log queries", "log:\n  queries: some\n",
	 "t.yaml:2:3: log.queries: unknown value 'some' (expected all, blocked, none)"},
	/* values are lowercase: one in another case gets the right spelling */
	{"block action in capitals", "block:\n  action: NXDOMAIN\n",
	 "t.yaml:2:3: block.action: unknown value 'NXDOMAIN' (did you mean 'nxdomain'?)"},
	{"list action capitalised", "lists:\n  a: {domains: [a.example], action: Refused}\n"
				    "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:29: lists.a.action: unknown value 'Refused' (did you mean 'refused'?)"},
	{"group default capitalised", LISTS_AB "groups:\n  - name: g\n    default: Deny\n"
					       "    block: [a, b]\n",
	 "t.yaml:6:5: groups[0].default: unknown value 'Deny' (did you mean 'deny'?)"},
	{"log queries in capitals", "log:\n  queries: BLOCKED\n",
	 "t.yaml:2:3: log.queries: unknown value 'BLOCKED' (did you mean 'blocked'?)"},
	{"log database typo", "log:\n  databse: q.db\n",
	 "t.yaml:2:3: log.databse: unknown key (did you mean 'database'?)"},
	{"log database empty", "log:\n  database: \"\"\n",
	 "t.yaml:2:3: log.database: must not be empty"},
	{"log database sequence", "log:\n  database: [a]\n",
	 "t.yaml:2:3: log.database: expected a string, got a sequence"},
	{"retention negative", "log:\n  retention_days: -1\n",
	 "t.yaml:2:3: log.retention_days: expected an integer from 0 to 36500, got '-1'"},
	{"retention too long", "log:\n  retention_days: 36501\n",
	 "t.yaml:2:3: log.retention_days: expected an integer from 0 to 36500, got '36501'"},
	{"retention text", "log:\n  retention_days: \"90\"\n",
	 "t.yaml:2:3: log.retention_days: expected an integer, got a string"},
	{"evidence buffer zero", "log:\n  evidence_buffer_mb: 0\n",
	 "t.yaml:2:3: log.evidence_buffer_mb: expected an integer from 1 to 65536, got '0'"},
	{"state_dir null", "state_dir:\n",
	 "t.yaml:1:1: state_dir: expected a string, got null"},
	{"state_dir mapping", "state_dir: {a: b}\n",
	 "t.yaml:1:1: state_dir: expected a string, got a mapping"},
	{"state_dir typo", "state_dr: /x\n",
	 "t.yaml:1:1: state_dr: unknown key (did you mean 'state_dir'?)"},
	{"duplicate group name",
	 LISTS_AB "groups:\n  - {name: g, clients: [10.0.0.0/8], block: [a]}\n"
		  "  - {name: g, block: [b]}\n",
	 "t.yaml:6:6: groups[1].name: duplicate group name 'g' (first at line 5)"},
	{"unknown list, did you mean", LISTS_AB "groups:\n  - name: g\n    block: [a, bb]\n",
	 "t.yaml:6:16: groups[0].block[1]: unknown list 'bb' (did you mean 'b'?)"},
	{"unknown list", LISTS_AB "groups:\n  - name: g\n    block: [a, b]\n    allow: [portal]\n",
	 "t.yaml:7:13: groups[0].allow[0]: unknown list 'portal'"},
	{"cidr host bits", LISTS_AB "groups:\n  - name: g\n    clients: [10.0.0.1/8]\n"
				    "    block: [a, b]\n",
	 "t.yaml:6:15: groups[0].clients[0]: bad prefix '10.0.0.1/8': host bits are set "
	 "(did you mean '10.0.0.0/8'?)"},
	{"cidr prefix > 32", LISTS_AB "groups:\n  - name: g\n    clients: [10.0.0.0/33]\n"
				      "    block: [a, b]\n",
	 "t.yaml:6:15: groups[0].clients[0]: bad prefix '10.0.0.0/33': prefix longer than 32"},
	{"cidr prefix > 128", "server:\n  allow: [\"::1/128\", \"fc00::/129\"]\n",
	 "t.yaml:2:22: server.allow[1]: bad prefix 'fc00::/129': prefix longer than 128"},
	{"cidr ipv6 host bits", "server:\n  allow: [\"fc00::1/7\"]\n",
	 "t.yaml:2:11: server.allow[0]: bad prefix 'fc00::1/7': host bits are set "
	 "(did you mean 'fc00::/7'?)"},
	{"cidr not an address", "server:\n  allow:\n    - 10.0.0.0/8\n    - localhost\n",
	 "t.yaml:4:7: server.allow[1]: bad prefix 'localhost': not an IPv4 or IPv6 address"},
	{"cidr bad prefix", "server:\n  allow: [10.0.0.0/x]\n",
	 "t.yaml:2:11: server.allow[0]: bad prefix '10.0.0.0/x': bad prefix length"},
	{"listen bad port", "server:\n  listen: [\"127.0.0.1:5353\", \"127.0.0.1:99999\"]\n",
	 "t.yaml:2:30: server.listen[1]: bad address '127.0.0.1:99999' (expected IPv4, "
	 "IPv4:port, IPv6 or [IPv6]:port)"},
	{"listen name", "server:\n  listen: [\"localhost:53\"]\n",
	 "t.yaml:2:12: server.listen[0]: bad address 'localhost:53' (expected IPv4, IPv4:port, "
	 "IPv6 or [IPv6]:port)"},
	{"listen duplicate", "server:\n  listen: [\"127.0.0.1:53\", 127.0.0.1]\n",
	 "t.yaml:2:28: server.listen[1]: duplicate address '127.0.0.1' (first at line 2)"},
	{"listen empty", "server:\n  listen: []\n",
	 "t.yaml:2:3: server.listen: needs at least one address"},
	{"upstream port 0", "upstream:\n  servers: [\"192.0.2.1:0\"]\n",
	 "t.yaml:2:13: upstream.servers[0]: bad address '192.0.2.1:0' (expected IPv4, IPv4:port, "
	 "IPv6 or [IPv6]:port)"},
	{"upstream bracket garbage", "upstream:\n  servers: [\"[::1]x\"]\n",
	 "t.yaml:2:13: upstream.servers[0]: bad address '[::1]x' (expected IPv4, IPv4:port, IPv6 "
	 "or [IPv6]:port)"},
	{"upstream empty", "upstream:\n  servers: []\n",
	 "t.yaml:2:3: upstream.servers: needs at least one server"},
	{"timeout zero", "upstream:\n  timeout_ms: 0\n",
	 "t.yaml:2:3: upstream.timeout_ms: expected an integer from 1 to 60000, got '0'"},
	{"timeout words", "upstream:\n  timeout_ms: fast\n",
	 "t.yaml:2:3: upstream.timeout_ms: expected an integer from 1 to 60000, got 'fast'"},
	{"timeout quoted", "upstream:\n  timeout_ms: \"1500\"\n",
	 "t.yaml:2:3: upstream.timeout_ms: expected an integer, got a string"},
	/* server.tcp_*: out of range, not a number, wrong type, typos */
	{"tcp idle too short", "server:\n  tcp_idle_timeout_ms: 99\n",
	 "t.yaml:2:3: server.tcp_idle_timeout_ms: expected an integer from 100 to 3600000, got "
	 "'99'"},
	{"tcp idle too long",
	 "server:\n  listen: [\"127.0.0.1:53\"]\n  tcp_idle_timeout_ms: 3600001\n",
	 "t.yaml:3:3: server.tcp_idle_timeout_ms: expected an integer from 100 to 3600000, got "
	 "'3600001'"},
	{"tcp idle negative", "server:\n  tcp_idle_timeout_ms: -1\n",
	 "t.yaml:2:3: server.tcp_idle_timeout_ms: expected an integer from 100 to 3600000, got "
	 "'-1'"},
	{"tcp idle with unit", "server:\n  tcp_idle_timeout_ms: 10s\n",
	 "t.yaml:2:3: server.tcp_idle_timeout_ms: expected an integer from 100 to 3600000, got "
	 "'10s'"},
	{"tcp idle fraction", "server:\n  tcp_idle_timeout_ms: 1500.5\n",
	 "t.yaml:2:3: server.tcp_idle_timeout_ms: expected an integer from 100 to 3600000, got "
	 "'1500.5'"},
	{"tcp idle quoted", "server:\n  tcp_idle_timeout_ms: \"300\"\n",
	 "t.yaml:2:3: server.tcp_idle_timeout_ms: expected an integer, got a string"},
	{"tcp connections zero", "server: {allow: [127.0.0.1], tcp_connections: 0}\n",
	 "t.yaml:1:30: server.tcp_connections: expected an integer from 1 to 65536, got '0'"},
	{"tcp connections too many", "server:\n  tcp_connections: 65537\n",
	 "t.yaml:2:3: server.tcp_connections: expected an integer from 1 to 65536, got '65537'"},
	{"tcp connections huge", "server:\n  tcp_connections: 99999999999\n",
	 "t.yaml:2:3: server.tcp_connections: expected an integer from 1 to 65536, got "
	 "'99999999999'"},
	{"tcp connections words", "server:\n  tcp_connections: many\n",
	 "t.yaml:2:3: server.tcp_connections: expected an integer from 1 to 65536, got 'many'"},
	{"tcp connections null", "server:\n  tcp_connections:\n",
	 "t.yaml:2:3: server.tcp_connections: expected an integer, got null"},
	{"tcp connections sequence", "server:\n    tcp_connections: [3]\n",
	 "t.yaml:2:5: server.tcp_connections: expected an integer, got a sequence"},
	{"tcp pipeline zero", "server:\n  tcp_pipeline: 0\n",
	 "t.yaml:2:3: server.tcp_pipeline: expected an integer from 1 to 16384, got '0'"},
	{"tcp pipeline too deep", "server:\n  tcp_pipeline: 16385\n",
	 "t.yaml:2:3: server.tcp_pipeline: expected an integer from 1 to 16384, got '16385'"},
	{"tcp connections typo", "server:\n  tcp_conections: 3\n",
	 "t.yaml:2:3: server.tcp_conections: unknown key (did you mean 'tcp_connections'?)"},
	{"tcp idle without unit", "server:\n  tcp_idle_timeout: 300\n",
	 "t.yaml:2:3: server.tcp_idle_timeout: unknown key (did you mean 'tcp_idle_timeout_ms'?)"},
	/* per-client limits and server.rate_limit */
	{"queries per client zero", "server:\n  queries_per_client: 0\n",
	 "t.yaml:2:3: server.queries_per_client: expected an integer from 1 to 65536, got '0'"},
	{"queries per prefix too many", "server:\n  queries_per_prefix: 65537\n",
	 "t.yaml:2:3: server.queries_per_prefix: expected an integer from 1 to 65536, got '65537'"},
	{"tcp per client zero", "server:\n  tcp_connections_per_client: 0\n",
	 "t.yaml:2:3: server.tcp_connections_per_client: expected an integer from 1 to 65536, got "
	 "'0'"},
	{"error replies negative", "server:\n  error_replies_per_second: -1\n",
	 "t.yaml:2:3: server.error_replies_per_second: expected an integer from 0 to 1000000, got "
	 "'-1'"},
	{"queries per client typo", "server:\n  queries_per_clients: 9\n",
	 "t.yaml:2:3: server.queries_per_clients: unknown key (did you mean 'queries_per_client'?)"},
	{"rate limit not a mapping", "server:\n  rate_limit: 20\n",
	 "t.yaml:2:3: server.rate_limit: expected a mapping, got a scalar"},
	{"rate too high", "server:\n  rate_limit: {queries_per_second: 1000001}\n",
	 "t.yaml:2:16: server.rate_limit.queries_per_second: expected an integer from 0 to "
	 "1000000, got '1000001'"},
	{"rate burst words", "server:\n  rate_limit:\n    burst: lots\n",
	 "t.yaml:3:5: server.rate_limit.burst: expected an integer from 0 to 1000000, got 'lots'"},
	{"rate action unknown", "server:\n  rate_limit:\n    action: truncat\n",
	 "t.yaml:3:5: server.rate_limit.action: unknown value 'truncat' (expected truncate, "
	 "refused, drop)"},
	{"rate key typo", "server:\n  rate_limit:\n    queries_per_secnd: 5\n",
	 "t.yaml:3:5: server.rate_limit.queries_per_secnd: unknown key (did you mean "
	 "'queries_per_second'?)"},
	{"rate prefix typo", "server:\n  rate_limit:\n    prefix_brust: 5\n",
	 "t.yaml:3:5: server.rate_limit.prefix_brust: unknown key (did you mean 'prefix_burst'?)"},
	{"unknown server key, no suggestion", "server:\n  zzz: 1\n",
	 "t.yaml:2:3: server.zzz: unknown key 'zzz' (expected one of listen, allow, "
	 "tcp_idle_timeout_ms, tcp_connections, tcp_pipeline, tcp_connections_per_client, "
	 "queries_per_client, queries_per_prefix, error_replies_per_second, rate_limit, user, "
	 "group, workers, udp_sockets)"},
	{"udp_sockets unknown", "server:\n  udp_sockets: reuseport\n",
	 "t.yaml:2:3: server.udp_sockets: unknown value 'reuseport' (expected shared, "
	 "per_worker)"},
	{"workers too many", "server:\n  workers: 65\n",
	 "t.yaml:2:3: server.workers: expected an integer from 0 to 64, got '65'"},
	{"user empty", "server:\n  user: \"\"\n", "t.yaml:2:3: server.user: must not be empty"},
	{"user not a string", "server:\n  user: [veto]\n",
	 "t.yaml:2:3: server.user: expected a string, got a sequence"},
	{"group typo", "server:\n  grup: veto\n",
	 "t.yaml:2:3: server.grup: unknown key (did you mean 'group'?)"},
	{"entries too big", "cache:\n  entries: 99999999999\n",
	 "t.yaml:2:3: cache.entries: expected an integer from 0 to 100000000, got '99999999999'"},
	{"ttl negative", "block:\n  ttl: -1\n",
	 "t.yaml:2:3: block.ttl: expected an integer from 0 to 2147483647, got '-1'"},
	{"min_ttl > max_ttl", "cache:\n  min_ttl: 600\n  max_ttl: 60\n",
	 "t.yaml:2:3: cache.min_ttl: min_ttl (600) is greater than max_ttl (60)"},
	{"min_ttl > default max_ttl", "cache:\n  min_ttl: 90000\n",
	 "t.yaml:2:3: cache.min_ttl: min_ttl (90000) is greater than max_ttl (86400)"},
	{"block ipv4 not v4", "block:\n  ipv4: \"::\"\n",
	 "t.yaml:2:3: block.ipv4: bad address '::' (expected an IPv4 address)"},
	{"block ipv6 not v6", "block:\n  ipv6: 0.0.0.0\n",
	 "t.yaml:2:3: block.ipv6: bad address '0.0.0.0' (expected an IPv6 address)"},
	/* wrong YAML types */
	{"section is a sequence", "server: [a]\n",
	 "t.yaml:1:1: server: expected a mapping, got a sequence"},
	{"sequence is a string", "server:\n  listen: \"127.0.0.1:53\"\n",
	 "t.yaml:2:3: server.listen: expected a sequence, got a string"},
	{"sequence is null", LISTS_AB "groups:\n  - name: g\n    clients:\n    block: [a, b]\n",
	 "t.yaml:6:5: groups[0].clients: expected a sequence, got null"},
	{"group is a scalar", LISTS_AB "groups:\n  - g\n",
	 "t.yaml:5:5: groups[0]: expected a mapping, got a scalar"},
	{"groups is a mapping", "groups:\n  g: {}\n",
	 "t.yaml:1:1: groups: expected a sequence, got a mapping"},
	{"list is a sequence", "lists:\n  a: [a.example]\n",
	 "t.yaml:2:3: lists.a: expected a mapping, got a sequence"},
	{"string is a mapping", "log:\n  file: {a: b}\n",
	 "t.yaml:2:3: log.file: expected a string, got a mapping"},
	{"list item is a sequence", "lists:\n  a: {domains: [[x]]}\ngroups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:17: lists.a.domains[0]: expected a string, got a sequence"},
	{"key is not a string", "? [a]\n: b\n", "t.yaml:1:3: keys must be strings, got a sequence"},
	{"top level is a sequence", "- a\n- b\n",
	 "t.yaml:1:1: expected a mapping at the top level, got a sequence"},
	{"empty string", "lists:\n  a: {files: [\"\"]}\ngroups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:15: lists.a.files[0]: must not be empty"},
	{"nul in string", "log:\n  file: \"a\\0b\"\n",
	 "t.yaml:2:3: log.file: string contains a NUL character"},
	/* structure */
	{"missing group name", LISTS_AB "groups:\n  - block: [a, b]\n",
	 "t.yaml:5:5: groups[0]: missing key 'name'"},
	{"duplicate key", "server:\n  listen: [\"127.0.0.1:53\"]\n  listen: [\"127.0.0.1:54\"]\n",
	 "t.yaml:3:3: server.listen: duplicate key 'listen' (first at line 2)"},
	{"duplicate list", "lists:\n  a: {domains: [x.example]}\n  a: {domains: [y.example]}\n"
			   "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:3:3: lists.a: duplicate key 'a' (first at line 2)"},
	{"bad list name", "lists:\n  \"a b\": {domains: [x.example]}\n",
	 "t.yaml:2:3: lists.a b: bad list name (use letters, digits, '-', '_' and '.')"},
	{"list without entries", "lists:\n  a: {}\ngroups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:3: lists.a: list has neither files, domains nor urls"},
	{"list with empty files", "lists:\n  a: {files: []}\ngroups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:3: lists.a: list has neither files, domains nor urls"},
	/* lists downloaded from URLs */
	{"list url scheme", "lists:\n  a: {urls: [\"ftp://x.example/l.txt\"]}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:14: lists.a.urls[0]: 'ftp://x.example/l.txt' is not an http:// or https:// URL"},
	{"list url with a space", "lists:\n  a: {urls: [\"https://x.example/a b\"]}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:14: lists.a.urls[0]: 'https://x.example/a b' is not an http:// or https:// URL"},
	{"list refresh unit", "lists:\n  a: {urls: [\"https://x.example/l\"], refresh: 24y}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:38: lists.a.refresh: expected a duration from 1s to 2592000s (such as 30s, 15m, "
	 "24h, 7d), got '24y'"},
	{"list refresh too long", "lists:\n  a: {urls: [\"https://x.example/l\"], refresh: 31d}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:38: lists.a.refresh: expected a duration from 1s to 2592000s (such as 30s, 15m, "
	 "24h, 7d), got '31d'"},
	{"list timeout zero", "lists:\n  a: {urls: [\"https://x.example/l\"], timeout: 0s}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:38: lists.a.timeout: expected a duration from 1s to 3600s (such as 30s, 15m, "
	 "24h, 7d), got '0s'"},
	{"list max_size", "lists:\n  a: {urls: [\"https://x.example/l\"], max_size: 2T}\n"
	 "groups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:38: lists.a.max_size: expected a size from 1024 to 1073741824 octets (such as "
	 "512K, 64M, 1G), got '2T'"},
	{"list is null", "lists:\n  a:\ngroups: [{name: g, block: [a]}]\n",
	 "t.yaml:2:3: lists.a: expected a mapping, got null"},
	{"clients empty", LISTS_AB "groups:\n  - name: g\n    clients: []\n    block: [a, b]\n",
	 "t.yaml:6:5: groups[0].clients: empty: leave 'clients' out to make a group that matches "
	 "every client"},
	{"unreachable after catch-all",
	 LISTS_AB "groups:\n  - name: all\n    block: [a]\n  - name: late\n"
		  "    clients: [10.0.0.0/8]\n    block: [b]\n",
	 "t.yaml:7:5: groups[1]: unreachable: group 'late' is after group 'all' (line 5), which "
	 "matches every client"},
	{"unreachable shadowed",
	 LISTS_AB "groups:\n  - name: wide\n    clients: [10.0.0.0/8, \"2001:db8::/32\"]\n"
		  "    block: [a]\n  - name: narrow\n    clients: [10.1.0.0/16, \"2001:db8:1::/48\"]\n"
		  "    block: [b]\n",
	 "t.yaml:8:5: groups[1]: unreachable: every client of group 'narrow' matches an earlier "
	 "group first ('wide', line 5)"},
	/* the earlier group's name is quoted like any value: a line break would split the line */
	{"unreachable after catch-all named with a line break",
	 "groups:\n  - name: \"a\\nb\"\n  - name: late\n    clients: [10.0.0.0/8]\n",
	 "t.yaml:3:5: groups[1]: unreachable: group 'late' is after group 'a?b' (line 2), which "
	 "matches every client"},
	{"unreachable shadowed by a group named with a line break",
	 "groups:\n  - name: \"w\\ri\\nde\"\n    clients: [10.0.0.0/8]\n  - name: narrow\n"
	 "    clients: [10.1.0.0/16]\n",
	 "t.yaml:4:5: groups[1]: unreachable: every client of group 'narrow' matches an earlier "
	 "group first ('w?i?de', line 2)"},
	/* YAML itself */
	{"syntax error", "server:\n  listen: [\"127.0.0.1:53\"\nlog: {}\n",
	 "t.yaml:3:1: syntax error: did not find expected ',' or ']' (while parsing a flow "
	 "sequence at 2:11)"},
	{"bad indentation", "server:\n  listen: []\n bad: 1\n",
	 "t.yaml:3:2: syntax error: did not find expected key (while parsing a block mapping at "
	 "1:1)"},
	/* a tab where libyaml expects indentation: said in words, wherever it is */
	{"tab", "server:\n\tlisten: []\n",
	 "t.yaml:2:1: syntax error: tab characters are not allowed for indentation in YAML; use "
	 "spaces"},
	{"tab in a block mapping", "server:\n  listen: []\n\tallow: []\n",
	 "t.yaml:3:1: syntax error: tab characters are not allowed for indentation in YAML; use "
	 "spaces"},
	{"tab in a block scalar", "log:\n  file: |\n\tx\n",
	 "t.yaml:3:1: syntax error: tab characters are not allowed for indentation in YAML; use "
	 "spaces"},
	{"tab after a multi-octet character", "log:\n  file: \"\xc3\xa9\"\n\tqueries: all\n",
	 "t.yaml:3:1: syntax error: tab characters are not allowed for indentation in YAML; use "
	 "spaces"},
	{"tab after CR LF and a byte order mark",
	 "\xef\xbb\xbfserver:\r\n  allow: []\r\n\tlisten: []\r\n",
	 "t.yaml:3:1: syntax error: tab characters are not allowed for indentation in YAML; use "
	 "spaces"},
	{"not a tab", "log:\n  file: @x\n",
	 "t.yaml:2:9: syntax error: found character that cannot start any token (while scanning "
	 "for the next token at 2:9)"},
	{"unquoted ipv6 in a flow", "server:\n  allow: [10.0.0.0/8, ::1/128]\n",
	 "t.yaml:2:23: syntax error: did not find expected node content (while parsing a flow "
	 "node at 2:23) (quote IPv6 addresses, e.g. \"::1/128\")"},
	{"unquoted ipv6 value", "block:\n  ipv6: ::\n",
	 "t.yaml:2:10: syntax error: mapping values are not allowed in this context (quote IPv6 "
	 "addresses, e.g. \"::1/128\")"},
	{"alias", "lists:\n  a: &x {domains: [a.example]}\n  b: *x\n",
	 "t.yaml:3:6: aliases ('*x') are not supported"},
	{"two documents", "log: {}\n---\nlog: {}\n",
	 "t.yaml:2:1: more than one YAML document (only one is read)"},
	{"empty", "", "t.yaml: empty configuration"},
	{"only comments", "# nothing\n\n", "t.yaml: empty configuration"},
	{"null document", "~\n", "t.yaml: empty configuration"},
	{"deep nesting", "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]"
			 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	 "t.yaml:1:67: nesting deeper than 64 levels"},
	{"bad utf-8", "log:\n  file: \"\xff\xfe\"\n",
	 "t.yaml: bad input: invalid leading UTF-8 octet at byte 14"},
};

static void
test_error_cases(void **state)
{
	(void)state;
	assert_int_equal(run_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]), false),
			 0);
}

/* Problems are all reported at once, in file order. */
static void
test_all_at_once(void **state)
{
	(void)state;
	static const char yaml[] = "server:\n"
				   "  lisen: []\n"
				   "  allow: [10.0.0.1/8]\n"
				   "groups:\n"
				   "  - name: g\n"
				   "    block: [nope]\n"
				   "cache:\n"
				   "  entries: lots\n";
	static const char *const expect[] = {
		"t.yaml:2:3: server.lisen: unknown key (did you mean 'listen'?)",
		("t.yaml:3:11: server.allow[0]: bad prefix '10.0.0.1/8': host bits are set (did you "
		 "mean '10.0.0.0/8'?)"),
		"t.yaml:6:13: groups[0].block[0]: unknown list 'nope'",
		"t.yaml:8:3: cache.entries: expected an integer from 0 to 100000000, got 'lots'",
	};
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(load(yaml, &d, &cfg), -EINVAL);
	assert_null(cfg);
	if (d.n != 4)
		dump(&d);
	assert_int_equal(d.n, 4);
	assert_int_equal(d.nerrors, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(d.v[i].text, expect[i]);
	diag_clear(&d);
}

/* ---- warnings: the config loads, with this warning ---- */

static const struct error_case warning_cases[] = {
	{"unused list", LISTS_AB "groups:\n  - name: g\n    block: [a]\n",
	 "t.yaml:3:3: lists.b: warning: used by no group"},
	{"list named twice", LISTS_AB "groups:\n  - name: g\n    block: [a, b, a]\n",
	 "t.yaml:6:19: groups[0].block[2]: warning: list 'a' is named twice"},
	{"blocked and allowed", LISTS_AB "groups:\n  - name: g\n    block: [a, b]\n    allow: [a]\n",
	 "t.yaml:5:5: groups[0]: warning: list 'a' is both blocked and allowed (allow wins)"},
	{"empty allow", "server:\n  allow: []\nlog: {}\n",
	 "t.yaml:2:3: server.allow: warning: empty: every client is refused"},
};

static void
test_warning_cases(void **state)
{
	(void)state;
	assert_int_equal(
		run_cases(warning_cases, sizeof(warning_cases) / sizeof(warning_cases[0]), true), 0);
}

/* ---- files ---- */

static void
test_missing_file(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(config_load(DATA "/does-not-exist.yaml", &d, &cfg), -ENOENT);
	assert_null(cfg);
	assert_int_equal(d.nerrors, 1);
	assert_string_equal(d.v[0].text, DATA "/does-not-exist.yaml: cannot read the "
					      "configuration: no such file or directory");
	diag_clear(&d);

	diag_init(&d);
	assert_int_equal(config_load(DATA, &d, &cfg), -EISDIR);
	assert_null(cfg);
	assert_int_equal(d.nerrors, 1);
	diag_clear(&d);
}

/* urls: the limits with their units and defaults, and the copy of each URL under state_dir. */
static void
test_list_urls(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(load("state_dir: /var/lib/v\n"
			      "lists:\n"
			      "  r: {urls: [\"https://x.example/a\", \"HTTP://y.example/b\"],\n"
			      "      refresh: 90m, timeout: 45s, max_size: 512K, ca_file: ca.pem}\n"
			      "  d: {urls: [\"http://z.example/\"], refresh: 120}\n"
			      "groups: [{name: g, block: [r, d]}]\n",
			      &d, &cfg),
			 0);
	const struct config_list *r = &cfg->lists[0], *dl = &cfg->lists[1];
	assert_int_equal(r->nurls, 2);
	assert_string_equal(r->urls[1], "HTTP://y.example/b");
	assert_int_equal(r->refresh_s, 90 * 60);
	assert_int_equal(r->timeout_s, 45);
	assert_int_equal(r->max_size, 512 * 1024);
	assert_non_null(r->ca_file);
	assert_string_equal(r->cache_files[0], "/var/lib/v/lists/r.0.txt");
	assert_string_equal(r->cache_files[1], "/var/lib/v/lists/r.1.txt");
	assert_int_equal(dl->refresh_s, 120);
	assert_int_equal(dl->timeout_s, CONFIG_LIST_TIMEOUT_S);
	assert_int_equal(dl->max_size, CONFIG_LIST_MAX_SIZE);
	assert_null(dl->ca_file);
	config_free(&cfg);
	diag_clear(&d);
}

/* The typo of the spec's own example, at the same place (line 14, column 5). */
static void
test_sinkhol_fixture(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(config_load(DATA "/sinkhol.yaml", &d, &cfg), -EINVAL);
	assert_null(cfg);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].text,
			    DATA "/sinkhol.yaml:14:5: groups[1].action: unknown value 'sinkhol' "
				 "(expected sinkhole, nxdomain, nodata, refused)");
	diag_clear(&d);
}

static void
assert_addr(const struct config_addr *a, int family, const char *ip, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];
	assert_int_equal(a->ss.ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
		assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(sin->sin_port), port);
		assert_int_equal(a->len, sizeof(*sin));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
		assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(sin6->sin6_port), port);
		assert_int_equal(a->len, sizeof(*sin6));
	}
	assert_string_equal(buf, ip);
}

static void
assert_cidr(const struct config_cidr *c, const char *text)
{
	char buf[64];
	config_cidr_to_text(c, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static void
assert_default_allow(const struct config *cfg)
{
	static const char *const allow[] = {"127.0.0.0/8",   "::1/128",	       "10.0.0.0/8",
					    "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"};
	assert_int_equal(cfg->server.nallow, 6);
	for (size_t i = 0; i < 6; i++)
		assert_cidr(&cfg->server.allow[i], allow[i]);
}

/* The configuration of the spec, verbatim, loads with the values it states. */
static void
test_spec_example(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = config_load(DATA "/example.yaml", &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	/* the canary list of the example is used by no group */
	assert_int_equal(d.nerrors, 0);
	assert_int_equal(d.nwarnings, 1);
	assert_string_equal(d.v[0].text, DATA "/example.yaml:20:3: lists.canary: warning: used by "
					      "no group");
	assert_string_equal(cfg->path, DATA "/example.yaml");
	assert_string_equal(cfg->dir, DATA);

	assert_int_equal(cfg->server.nlisten, 2);
	assert_addr(&cfg->server.listen[0], AF_INET, "127.0.0.1", 5353);
	assert_addr(&cfg->server.listen[1], AF_INET6, "::1", 5353);
	assert_string_equal(cfg->server.listen[1].text, "[::1]:5353");
	assert_int_equal(cfg->server.listen[1].loc.line, 2);
	assert_default_allow(cfg);
	assert_true(cfg->upstream.resolv_conf);
	assert_int_equal(cfg->upstream.nservers, 0);
	assert_int_equal(cfg->upstream.timeout_ms, 1500);
	assert_int_equal(cfg->cache.entries, 100000);
	assert_int_equal(cfg->cache.min_ttl, 0);
	assert_int_equal(cfg->cache.max_ttl, 86400);
	assert_int_equal(cfg->cache.serve_stale_s, 86400);
	assert_true(cfg->cache.prefetch);
	assert_int_equal(cfg->block.action, CONFIG_ACTION_SINKHOLE);
	assert_int_equal(cfg->block.ttl, 60);

	assert_int_equal(cfg->nlists, 3);
	assert_string_equal(cfg->lists[0].name, "xiaomi");
	assert_int_equal(cfg->lists[0].nfiles, 1);
	assert_string_equal(cfg->lists[0].files[0], DATA "/lists/xiaomi.txt");
	assert_int_equal(cfg->lists[0].file_locs[0].line, 18);
	assert_int_equal(cfg->lists[0].file_locs[0].col, 20);
	assert_int_equal(cfg->lists[0].action, CONFIG_ACTION_INHERIT);
	assert_string_equal(cfg->lists[1].name, "portal");
	assert_int_equal(cfg->lists[1].ndomains, 1);
	assert_string_equal(cfg->lists[1].domains[0], "portal.example.org");
	assert_string_equal(cfg->lists[2].name, "canary");
	assert_string_equal(cfg->lists[2].domains[0], "use-application-dns.net");
	assert_int_equal(cfg->lists[2].action, CONFIG_ACTION_NXDOMAIN);

	assert_int_equal(cfg->ngroups, 3);
	const struct config_group *g = &cfg->groups[0];
	assert_string_equal(g->name, "lab");
	assert_int_equal(g->nclients, 3);
	assert_cidr(&g->clients[0], "10.20.0.0/16");
	assert_cidr(&g->clients[1], "2001:db8:20::/48");
	assert_cidr(&g->clients[2], "10.9.9.9/32");
	assert_int_equal(g->nblock, 1);
	assert_int_equal(g->block[0], 0);
	assert_int_equal(g->nallow, 1);
	assert_int_equal(g->allow[0], 1);
	assert_false(g->default_deny);
	assert_int_equal(g->action, CONFIG_ACTION_NXDOMAIN);
	assert_int_equal(g->loc.line, 22);
	g = &cfg->groups[1];
	assert_string_equal(g->name, "banned-handsets");
	assert_true(g->default_deny);
	assert_int_equal(g->nblock, 0);
	assert_int_equal(g->action, CONFIG_ACTION_REFUSED);
	g = &cfg->groups[2];
	assert_string_equal(g->name, "everyone");
	assert_int_equal(g->nclients, 0);
	assert_int_equal(g->action, CONFIG_ACTION_INHERIT);

	assert_int_equal(cfg->log.queries, CONFIG_LOG_ALL);
	assert_string_equal(cfg->log.file, "/dev/null");
	config_free(&cfg);
	assert_null(cfg);
	diag_clear(&d);
}

static void
test_defaults(void **state)
{
	(void)state;
	static const uint8_t zero[16] = {0};
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(load("server:\nlog:\n", &d, &cfg), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->server.nlisten, 2);
	assert_string_equal(cfg->server.listen[0].text, "127.0.0.1:5353");
	assert_addr(&cfg->server.listen[0], AF_INET, "127.0.0.1", 5353);
	assert_string_equal(cfg->server.listen[1].text, "[::1]:5353");
	assert_addr(&cfg->server.listen[1], AF_INET6, "::1", 5353);
	assert_default_allow(cfg);
	assert_true(cfg->upstream.resolv_conf);
	assert_string_equal(cfg->upstream.resolv_conf_path, "/etc/resolv.conf");
	assert_int_equal(cfg->upstream.nservers, 0);
	assert_int_equal(cfg->upstream.timeout_ms, 1500);
	assert_int_equal(cfg->cache.entries, 100000);
	assert_int_equal(cfg->cache.min_ttl, 0);
	assert_int_equal(cfg->cache.max_ttl, 86400);
	assert_int_equal(cfg->block.action, CONFIG_ACTION_SINKHOLE);
	assert_memory_equal(cfg->block.ipv4, zero, 4);
	assert_memory_equal(cfg->block.ipv6, zero, 16);
	assert_int_equal(cfg->block.ttl, 60);
	assert_int_equal(cfg->nlists, 0);
	assert_int_equal(cfg->ngroups, 0);
	assert_int_equal(cfg->log.queries, CONFIG_LOG_ALL);
	assert_string_equal(cfg->log.file, "-");
	assert_null(cfg->log.database);
	assert_int_equal(cfg->log.retention_days, 90);
	assert_int_equal(cfg->log.evidence_buffer_mb, 64);
	assert_string_equal(cfg->state_dir, "/var/lib/veto");
	/* the TCP limits the daemon had before they were keys */
	assert_int_equal(cfg->server.tcp_idle_timeout_ms, 10000);
	assert_int_equal(cfg->server.tcp_connections, 256);
	assert_int_equal(cfg->server.tcp_pipeline, 32);
	/* the per-client limits: on; rate limiting: off */
	assert_int_equal(cfg->server.tcp_connections_per_client, 64);
	assert_int_equal(cfg->server.queries_per_client, 256);
	assert_int_equal(cfg->server.queries_per_prefix, 1024);
	assert_int_equal(cfg->server.error_replies_per_second, 10);
	assert_int_equal(cfg->server.rate_limit.queries_per_second, 0);
	assert_int_equal(cfg->server.rate_limit.burst, 0);
	assert_int_equal(cfg->server.rate_limit.prefix_queries_per_second, 0);
	assert_int_equal(cfg->server.rate_limit.prefix_burst, 0);
	assert_int_equal(cfg->server.rate_limit.action, CONFIG_RATE_TRUNCATE);
	assert_int_equal(cfg->server.udp_sockets, CONFIG_UDP_SHARED);
	config_free(&cfg);
	diag_clear(&d);
}

/* server.udp_sockets: both values. */
static void
test_server_udp_sockets(void **state)
{
	static const struct {
		const char *yaml;
		enum config_udp_sockets want;
	} cases[] = {
		{"server:\n  udp_sockets: per_worker\n", CONFIG_UDP_PER_WORKER},
		{"server:\n  workers: 4\n  udp_sockets: shared\n", CONFIG_UDP_SHARED},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg = load_clean(i, cases[i].yaml);
		assert_int_equal(cfg->server.udp_sockets, cases[i].want);
		config_free(&cfg);
	}
}

/* server.rate_limit and the per-client limits: values, bounds, a burst of 0 (or none) is twice
 * the rate. */
static void
test_server_rate_limit_values(void **state)
{
	static const struct {
		const char *yaml;
		uint32_t qps, burst, pqps, pburst;
		enum config_rate_action action;
		uint32_t per_client, per_prefix, tcp_per_client, errors;
	} cases[] = {
		{"server:\n  rate_limit: {queries_per_second: 20}\n", 20, 40, 0, 0,
		 CONFIG_RATE_TRUNCATE, 256, 1024, 64, 10},
		{"server:\n  rate_limit: {queries_per_second: 20, burst: 100, action: drop}\n", 20,
		 100, 0, 0, CONFIG_RATE_DROP, 256, 1024, 64, 10},
		{"server:\n  rate_limit:\n    prefix_queries_per_second: 1000000\n"
		 "    action: refused\n",
		 0, 0, 1000000, 2000000, CONFIG_RATE_REFUSED, 256, 1024, 64, 10},
		{"server:\n  rate_limit: {queries_per_second: 0, burst: 0, prefix_burst: 1}\n", 0, 0,
		 0, 1, CONFIG_RATE_TRUNCATE, 256, 1024, 64, 10},
		{"server:\n  rate_limit:\n", 0, 0, 0, 0, CONFIG_RATE_TRUNCATE, 256, 1024, 64, 10},
		{"server:\n  queries_per_client: 1\n  queries_per_prefix: 65536\n"
		 "  tcp_connections_per_client: 65536\n  error_replies_per_second: 0\n",
		 0, 0, 0, 0, CONFIG_RATE_TRUNCATE, 1, 65536, 65536, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg = load_clean(i, cases[i].yaml);
		assert_int_equal(cfg->server.rate_limit.queries_per_second, cases[i].qps);
		assert_int_equal(cfg->server.rate_limit.burst, cases[i].burst);
		assert_int_equal(cfg->server.rate_limit.prefix_queries_per_second, cases[i].pqps);
		assert_int_equal(cfg->server.rate_limit.prefix_burst, cases[i].pburst);
		assert_int_equal(cfg->server.rate_limit.action, cases[i].action);
		assert_int_equal(cfg->server.queries_per_client, cases[i].per_client);
		assert_int_equal(cfg->server.queries_per_prefix, cases[i].per_prefix);
		assert_int_equal(cfg->server.tcp_connections_per_client, cases[i].tcp_per_client);
		assert_int_equal(cfg->server.error_replies_per_second, cases[i].errors);
		config_free(&cfg);
	}
}

/* server.tcp_*: valid values, the bounds included; keys not written keep their default. */
static void
test_server_user_group(void **state)
{
	struct diag d;
	struct config *cfg = NULL;

	(void)state;
	diag_init(&d);
	if (load("server:\n  user: dns\n  group: nogroup\n", &d, &cfg) != 0 || d.n != 0) {
		dump(&d);
		fail_msg("server.user/group did not load");
	}
	assert_string_equal(cfg->server.user, "dns");
	assert_string_equal(cfg->server.group, "nogroup");
	config_free(&cfg);
	diag_clear(&d);
}

static void
test_server_tcp_values(void **state)
{
	static const struct {
		const char *yaml;
		uint32_t idle_ms, conns, pipeline;
	} cases[] = {
		{"server:\n  tcp_idle_timeout_ms: 300\n  tcp_connections: 3\n", 300, 3, 32},
		{"server: {tcp_pipeline: 1}\n", 10000, 256, 1},
		{"server:\n  tcp_idle_timeout_ms: 100\n  tcp_connections: 1\n", 100, 1, 32},
		{"server:\n  tcp_idle_timeout_ms: 3600000\n  tcp_connections: 65536\n"
		 "  tcp_pipeline: 16384\n",
		 3600000, 65536, 16384},
		{"server:\n  listen: [\"127.0.0.1:53\"]\n  tcp_connections: 1024\n", 10000, 1024,
		 32},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg = load_clean(i, cases[i].yaml);
		assert_int_equal(cfg->server.tcp_idle_timeout_ms, cases[i].idle_ms);
		assert_int_equal(cfg->server.tcp_connections, cases[i].conns);
		assert_int_equal(cfg->server.tcp_pipeline, cases[i].pipeline);
		assert_null(cfg->server.user); /* unset: "veto" when started as root */
		assert_null(cfg->server.group);
		config_free(&cfg);
	}
}

/* The query store: log.database resolves against state_dir (itself relative to the folder of
 * the file, /etc/veto here), whichever comes first in the file; with a database and no
 * log.file there are no JSON lines. */
static void
test_store_settings(void **state)
{
	static const struct {
		const char *yaml;
		const char *database, *file, *state_dir;
		uint32_t retention;
	} cases[] = {
		{"log: {database: queries.db}\n", "/var/lib/veto/queries.db", NULL, "/var/lib/veto",
		 90},
		{"log: {database: queries.db, file: q.jsonl}\n", "/var/lib/veto/queries.db",
		 "/etc/veto/q.jsonl", "/var/lib/veto", 90},
		{"log: {database: queries.db, file: \"-\"}\n", "/var/lib/veto/queries.db", "-",
		 "/var/lib/veto", 90},
		{"log: {database: q.db}\nstate_dir: /srv/veto\n", "/srv/veto/q.db", NULL,
		 "/srv/veto", 90},
		{"state_dir: state\nlog: {database: db/q.db, retention_days: 7}\n",
		 "/etc/veto/state/db/q.db", NULL, "/etc/veto/state", 7},
		{"state_dir: state\nlog: {database: /abs/q.db, retention_days: 0}\n", "/abs/q.db",
		 NULL, "/etc/veto/state", 0},
		{"state_dir: /tmp/v\nlog: {retention_days: 36500}\n", NULL, "-", "/tmp/v", 36500},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		int rc = load(cases[i].yaml, &d, &cfg);
		if (rc != 0) {
			dump(&d);
			fail_msg("case %zu: rc %d", i, rc);
		}
		if (cases[i].database == NULL)
			assert_null(cfg->log.database);
		else
			assert_string_equal(cfg->log.database, cases[i].database);
		if (cases[i].file == NULL)
			assert_null(cfg->log.file);
		else
			assert_string_equal(cfg->log.file, cases[i].file);
		assert_string_equal(cfg->state_dir, cases[i].state_dir);
		assert_int_equal(cfg->log.retention_days, cases[i].retention);
		config_free(&cfg);
		diag_clear(&d);
	}
}

/* Values other than the defaults, including unquoted addresses and bare IPv6 upstreams. */
static void
test_values(void **state)
{
	(void)state;
	static const char yaml[] =
		"server:\n"
		"  listen:\n"
		"    - 127.0.0.2:53\n"
		"    - \"[::1]:5300\"\n"
		"  allow: [10.1.0.0/16, \"::/0\"]\n"
		"upstream:\n"
		"  servers: [\"192.0.2.53\", \"192.0.2.53:5300\", \"[2001:db8::1]:5353\", 2001:db8::2]\n"
		"  timeout_ms: 250\n"
		"cache: {entries: 0, min_ttl: 30, max_ttl: 30, serve_stale: off, prefetch: false}\n"
		"block: {action: nodata, ipv4: 192.0.2.1, ipv6: \"2001:db8::53\", ttl: 5}\n"
		"log: {queries: blocked, file: \"-\"}\n";
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->server.nlisten, 2);
	assert_addr(&cfg->server.listen[0], AF_INET, "127.0.0.2", 53);
	assert_addr(&cfg->server.listen[1], AF_INET6, "::1", 5300);
	assert_int_equal(cfg->server.nallow, 2);
	assert_cidr(&cfg->server.allow[1], "::/0");
	assert_false(cfg->upstream.resolv_conf);
	assert_int_equal(cfg->upstream.nservers, 4);
	assert_addr(&cfg->upstream.servers[0], AF_INET, "192.0.2.53", 53);
	assert_addr(&cfg->upstream.servers[1], AF_INET, "192.0.2.53", 5300);
	assert_addr(&cfg->upstream.servers[2], AF_INET6, "2001:db8::1", 5353);
	assert_addr(&cfg->upstream.servers[3], AF_INET6, "2001:db8::2", 53);
	assert_string_equal(cfg->upstream.servers[3].text, "2001:db8::2");
	assert_int_equal(cfg->upstream.timeout_ms, 250);
	assert_int_equal(cfg->cache.entries, 0);
	assert_int_equal(cfg->cache.min_ttl, 30);
	assert_int_equal(cfg->cache.max_ttl, 30);
	assert_int_equal(cfg->cache.serve_stale_s, 0);
	assert_false(cfg->cache.prefetch);
	assert_int_equal(cfg->block.action, CONFIG_ACTION_NODATA);
	assert_memory_equal(cfg->block.ipv4, "\xc0\x00\x02\x01", 4);
	assert_int_equal(cfg->block.ipv6[15], 0x53);
	assert_int_equal(cfg->block.ttl, 5);
	assert_int_equal(cfg->log.queries, CONFIG_LOG_BLOCKED);
	assert_string_equal(cfg->log.file, "-");
	config_free(&cfg);
	diag_clear(&d);
}

/* Keys stored straight from their table entry (config_schema.c): each field type, in each kind
 * of object (the config, an inventory device, a hostname vendor), lands in its own field. */
static void
test_schema_fields(void **state)
{
	(void)state;
	static const char yaml[] =
		"server: {tcp_idle_timeout_ms: 100, tcp_connections: 65536, tcp_pipeline: 7}\n"
		"upstream: {servers: [192.0.2.53], timeout_ms: 60000}\n"
		"cache: {entries: 12}\n"
		"block: {ttl: 2147483647}\n"
		"log: {retention_days: 0}\n"
		"state_dir: state\n"
		"devices:\n"
		"  arp: false\n"
		"  arp_file: arp.txt\n"
		"  arp_refresh_s: 86400\n"
		"  oui: {dir: /usr/share/ieee-data}\n"
		"  inventory:\n"
		"    - {name: tv, mac: aa:bb:cc:00:00:01, owner: it, vendor: Sony}\n"
		"    - {name: pc, mac: aa:bb:cc:00:00:02}\n"
		"  hostname_vendors: [{pattern: \"Redmi-*\", vendor: Xiaomi}]\n";
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->server.tcp_idle_timeout_ms, 100);
	assert_int_equal(cfg->server.tcp_connections, 65536);
	assert_int_equal(cfg->server.tcp_pipeline, 7);
	assert_int_equal(cfg->upstream.timeout_ms, 60000);
	assert_int_equal(cfg->cache.entries, 12);
	assert_int_equal(cfg->block.ttl, 2147483647u);
	assert_int_equal(cfg->log.retention_days, 0);
	assert_string_equal(cfg->state_dir, "/etc/veto/state");
	assert_false(cfg->devices.arp);
	assert_string_equal(cfg->devices.arp_file, "/etc/veto/arp.txt");
	assert_int_equal(cfg->devices.arp_refresh_s, 86400);
	assert_string_equal(cfg->devices.oui_dir, "/usr/share/ieee-data");
	assert_int_equal(cfg->devices.ninventory, 2);
	assert_string_equal(cfg->devices.inventory[0].name, "tv");
	assert_string_equal(cfg->devices.inventory[0].owner, "it");
	assert_string_equal(cfg->devices.inventory[0].vendor, "Sony");
	assert_string_equal(cfg->devices.inventory[1].name, "pc");
	assert_null(cfg->devices.inventory[1].owner);
	assert_null(cfg->devices.inventory[1].vendor);
	assert_int_equal(cfg->devices.nhostname_vendors, 1);
	assert_string_equal(cfg->devices.hostname_vendors[0].pattern, "Redmi-*");
	assert_string_equal(cfg->devices.hostname_vendors[0].vendor, "Xiaomi");
	config_free(&cfg);
	diag_clear(&d);
}

/* Relative list files and the query log resolve against the folder of the file. */
static void
test_relative_paths(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = config_load(DATA "/sub/relative.yaml", &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->dir, DATA "/sub");
	assert_int_equal(cfg->lists[0].nfiles, 2);
	assert_string_equal(cfg->lists[0].files[0], DATA "/sub/lists/local.txt");
	assert_string_equal(cfg->lists[0].files[1], "/abs/elsewhere.txt");
	assert_string_equal(cfg->log.file, DATA "/sub/logs/queries.jsonl");
	config_free(&cfg);
	diag_clear(&d);

	static const struct {
		const char *dir, *path, *expect;
	} cases[] = {
		{".", "lists/a.txt", "lists/a.txt"},
		{"", "a.txt", "a.txt"},
		{"conf", "lists/a.txt", "conf/lists/a.txt"},
		{"conf/", "a.txt", "conf/a.txt"},
		{"/", "a.txt", "/a.txt"},
		{"conf", "/etc/a.txt", "/etc/a.txt"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = config_resolve_path(cases[i].dir, cases[i].path);
		assert_non_null(p);
		assert_string_equal(p, cases[i].expect);
		free(p);
	}
}

/* ---- the parsing helpers ---- */

static void
test_parse_addr(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc, family;
		const char *ip;
		uint16_t port;
	} cases[] = {
		{"127.0.0.1:53", 0, AF_INET, "127.0.0.1", 53},
		{"192.0.2.1", 0, AF_INET, "192.0.2.1", 99},
		{"[::1]:5353", 0, AF_INET6, "::1", 5353},
		{"[2001:db8::1]", 0, AF_INET6, "2001:db8::1", 99},
		{"2001:db8::1", 0, AF_INET6, "2001:db8::1", 99},
		{"::", 0, AF_INET6, "::", 99},
		{"1.2.3.4:65535", 0, AF_INET, "1.2.3.4", 65535},
		{"1.2.3.4:65536", -EINVAL, 0, NULL, 0},
		{"1.2.3.4:0", -EINVAL, 0, NULL, 0},
		{"1.2.3.4:", -EINVAL, 0, NULL, 0},
		{"1.2.3.4:+53", -EINVAL, 0, NULL, 0},
		{"1.2.3:53", -EINVAL, 0, NULL, 0},
		{"[1.2.3.4]:53", -EINVAL, 0, NULL, 0},
		{"[::1", -EINVAL, 0, NULL, 0},
		{"[::1]:", -EINVAL, 0, NULL, 0},
		{"[::1]53", -EINVAL, 0, NULL, 0},
		{"localhost", -EINVAL, 0, NULL, 0},
		{"", -EINVAL, 0, NULL, 0},
		{"example.org:53", -EINVAL, 0, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_addr a;
		memset(&a, 0, sizeof(a));
		int rc = config_parse_addr(cases[i].text, 99, &a.ss, &a.len);
		if (rc != cases[i].rc)
			fprintf(stderr, "case '%s'\n", cases[i].text);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0)
			assert_addr(&a, cases[i].family, cases[i].ip, cases[i].port);
		else
			assert_int_equal(a.len, 0); /* untouched on failure */
	}
}

static void
test_parse_cidr(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *expect; /* normalised text, or the reason of the failure */
		int rc;
	} cases[] = {
		{"10.0.0.0/8", "10.0.0.0/8", 0},
		{"10.9.9.9", "10.9.9.9/32", 0},
		{"0.0.0.0/0", "0.0.0.0/0", 0},
		{"::1/128", "::1/128", 0},
		{"::1", "::1/128", 0},
		{"fc00::/7", "fc00::/7", 0},
		{"2001:db8:20::/48", "2001:db8:20::/48", 0},
		{"10.0.0.1/8", "host bits are set", -EINVAL},
		{"10.0.0.0/33", "prefix longer than 32", -EINVAL},
		{"::/129", "prefix longer than 128", -EINVAL},
		{"10.0.0.0/", "bad prefix length", -EINVAL},
		{"10.0.0.0/-1", "bad prefix length", -EINVAL},
		{"10.0.0.0/0008", "bad prefix length", -EINVAL},
		{"10.0.0/8", "not an IPv4 or IPv6 address", -EINVAL},
		{"/8", "not an IPv4 or IPv6 address", -EINVAL},
		{"", "not an IPv4 or IPv6 address", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_cidr c;
		const char *why = NULL;
		int rc = config_parse_cidr(cases[i].text, &c, &why);
		if (rc != cases[i].rc)
			fprintf(stderr, "case '%s'\n", cases[i].text);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0)
			assert_cidr(&c, cases[i].expect);
		else
			assert_string_equal(why, cases[i].expect);
	}
}

static void
test_actions_and_distance(void **state)
{
	(void)state;
	static const char *const names[] = {"inherit", "sinkhole", "nxdomain", "nodata", "refused"};
	for (int a = CONFIG_ACTION_INHERIT; a <= CONFIG_ACTION_REFUSED; a++) {
		enum config_action back = CONFIG_ACTION_INHERIT;
		assert_string_equal(config_action_name((enum config_action)a), names[a]);
		assert_int_equal(config_action_parse(names[a], &back),
				 a == CONFIG_ACTION_INHERIT ? -EINVAL : 0);
		if (a != CONFIG_ACTION_INHERIT)
			assert_int_equal(back, a);
	}
	assert_int_equal(config_action_parse("Sinkhole", &(enum config_action){0}), -EINVAL);

	static const struct {
		const char *a, *b;
		size_t d;
	} dist[] = {
		{"listen", "listen", 0}, {"lisen", "listen", 1},  {"LISTEN", "listen", 0},
		{"actoin", "action", 2}, {"", "abc", 3},	  {"kitten", "sitting", 3},
		{"a", "bcdefgh", 4},	 /* capped at 3 + 1 */
	};
	for (size_t i = 0; i < sizeof(dist) / sizeof(dist[0]); i++)
		assert_int_equal(config_edit_distance(dist[i].a, dist[i].b, 3), dist[i].d);
}

/* The YAML tree keeps positions and scalar styles. */
static void
test_yaml_tree(void **state)
{
	(void)state;
	static const char yaml[] = "a:\n  - x\n  - 'y'\nb: {c: ~}\n";
	struct diag d;
	struct config_node *root = NULL;
	diag_init(&d);
	assert_int_equal(config_yaml_parse("t.yaml", yaml, strlen(yaml), &d, &root), 0);
	assert_non_null(root);
	assert_int_equal(root->kind, CONFIG_NODE_MAPPING);
	assert_int_equal(root->n, 4);
	const struct config_node *seq = root->items[1];
	assert_int_equal(seq->kind, CONFIG_NODE_SEQUENCE);
	assert_int_equal(seq->n, 2);
	assert_string_equal(seq->items[0]->str, "x");
	assert_true(seq->items[0]->plain);
	assert_int_equal(seq->items[0]->line, 2);
	assert_int_equal(seq->items[0]->col, 5);
	assert_false(seq->items[1]->plain);
	assert_false(config_node_is_null(seq->items[1]));
	const struct config_node *m = root->items[3];
	assert_int_equal(m->line, 4);
	assert_int_equal(m->col, 4);
	assert_true(config_node_is_null(m->items[1]));
	config_node_free(&root);
	assert_null(root);
	assert_int_equal(d.n, 0);

	/* no document at all */
	assert_int_equal(config_yaml_parse("t.yaml", "", 0, &d, &root), 0);
	assert_null(root);
	diag_clear(&d);
}

/* The configurations shipped in conf/ load without error (lists are the engine's business). */
static void
test_shipped_configs(void **state)
{
	(void)state;
	static const char *const files[] = {
		VETO_SOURCE_DIR "/conf/veto.yaml",
		VETO_SOURCE_DIR "/conf/examples/organisation.yaml",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (access(files[i], R_OK) != 0)
			continue;
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		int rc = config_load(files[i], &d, &cfg);
		if (rc != 0)
			dump(&d);
		assert_int_equal(rc, 0);
		assert_true(cfg->ngroups > 0);
		config_free(&cfg);
		diag_clear(&d);
	}
}

/* ---- the commands: veto check and veto explain ---- */

#define MAX_ARGS 12
#define OUT_SIZE 8192

struct run {
	int code;
	char out[OUT_SIZE];
	char err[OUT_SIZE];
};

static void
slurp(FILE *f, char *buf, size_t size)
{
	rewind(f);
	size_t n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs a command with stdout and stderr captured. args ends with NULL. */
static void
run_cmd(int (*fn)(int, char **), const char *const *args, struct run *r)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	for (; args[argc] != NULL; argc++) {
		assert_true(argc < MAX_ARGS);
		argv[argc] = strdup(args[argc]);
		assert_non_null(argv[argc]);
	}
	argv[argc] = NULL;
	FILE *out = tmpfile(), *err = tmpfile();
	assert_non_null(out);
	assert_non_null(err);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	dup2(fileno(out), 1);
	dup2(fileno(err), 2);
	r->code = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}

/* A command line, its exit code and what its output must hold. A failing command (code != 0)
 * must also write nothing to stdout. */
struct cmd_case {
	const char *args[MAX_ARGS];	/* ends with NULL */
	int code;
	const char *out;	/* substring of stdout, or NULL */
	const char *err;	/* substring of stderr, or NULL */
};

static void
run_cmd_cases(const char *what, int (*fn)(int, char **), const struct cmd_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct run *r = calloc(1, sizeof(*r));
		assert_non_null(r);
		run_cmd(fn, cases[i].args, r);
		bool ok = r->code == cases[i].code &&
			  (cases[i].out == NULL || strstr(r->out, cases[i].out) != NULL) &&
			  (cases[i].err == NULL || strstr(r->err, cases[i].err) != NULL) &&
			  (cases[i].code == 0 || r->out[0] == '\0');
		if (!ok)
			fprintf(stderr, "FAIL %s case %zu: exit %d\n--- stdout\n%s--- stderr\n%s",
				what, i, r->code, r->out, r->err);
		assert_true(ok);
		free(r);
	}
}

static void
test_cmd_check(void **state)
{
	(void)state;
	static const struct cmd_case cases[] = {
		{{"check", "-c", DATA "/example.yaml"}, 0,
		 "list xiaomi: 4 entries, 0 skipped, action from group, files " DATA
		 "/lists/xiaomi.txt\n",
		 DATA "/example.yaml:20:3: lists.canary: warning: used by no group\n"},
		{{"check", "--config", DATA "/example.yaml"}, 0,
		 "group lab: clients 10.20.0.0/16,2001:db8:20::/48,10.9.9.9/32; block xiaomi; allow "
		 "portal; default allow; action nxdomain\n", NULL},
		{{"check", "-c", DATA "/example.yaml"}, 0,
		 "group everyone: clients any; block xiaomi; allow -; default allow; action sinkhole "
		 "(block.action)\n", NULL},
		{{"check", "-c", DATA "/example.yaml"}, 0, "list canary: 1 entries, 0 skipped, action "
		 "nxdomain, 1 inline\n", NULL},
		{{"check", "-c", DATA "/example.yaml"}, 0, "policy: 3 lists, 3 groups, 6 distinct "
		 "names, ", NULL},
		{{"check", "-c", DATA "/sinkhol.yaml"}, 2, NULL,
		 DATA "/sinkhol.yaml:14:5: groups[1].action: unknown value 'sinkhol' (expected "
		 "sinkhole, nxdomain, nodata, refused)\n"},
		{{"check", "-c", DATA "/missing-list.yaml"}, 2, NULL, "lists/does-not-exist.txt"},
		{{"check", "-c", DATA "/nope.yaml"}, 2, NULL,
		 DATA "/nope.yaml: cannot read the configuration: no such file or directory\n"},
		{{"check", "--help"}, 0, "usage: veto check [-c FILE]", NULL},
		{{"check", "-c", DATA "/example.yaml", "extra"}, 2, NULL, "unexpected argument 'extra'"},
		{{"check", "--bogus"}, 2, NULL, "usage: veto check"},
	};
	run_cmd_cases("check", cmd_check, cases, sizeof(cases) / sizeof(cases[0]));
}

#define EXPLAIN_CFG DATA "/explain.yaml"
#define J(client, allowed, group, blocked, reason, action, list, rule, qname, qtype, answer)    \
	"{\"client\":\"" client "\",\"allowed\":" allowed ",\"group\":" group                  \
	",\"blocked\":" blocked ",\"reason\":\"" reason "\",\"action\":" action ",\"list\":"    \
	list ",\"rule\":" rule ",\"qname\":\"" qname "\",\"qtype\":\"" qtype                   \
	"\",\"answer\":" answer "}\n"

static void
test_cmd_explain_json(void **state)
{
	(void)state;
	static const struct {
		const char *client, *name, *type;
		const char *expect;
	} cases[] = {
		{"10.1.2.3", "tracking.miui.com", NULL,
		 J("10.1.2.3", "true", "\"kids\"", "true", "block_list", "\"sinkhole\"", "\"ads\"",
		   "\"tracking.miui.com\"", "tracking.miui.com", "A", "\"192.0.2.1 (ttl 30)\"")},
		{"10.1.2.3", "Sub.Tracking.MIUI.com.", "aaaa",
		 J("10.1.2.3", "true", "\"kids\"", "true", "block_list", "\"sinkhole\"", "\"ads\"",
		   "\"tracking.miui.com\"", "sub.tracking.miui.com", "AAAA",
		   "\"2001:db8::dead (ttl 30)\"")},
		{"10.1.2.3", "x.ad.xiaomi.com", "TXT",
		 J("10.1.2.3", "true", "\"kids\"", "true", "block_list", "\"sinkhole\"", "\"ads\"",
		   "\"ad.xiaomi.com\"", "x.ad.xiaomi.com", "TXT", "\"NODATA (ttl 30)\"")},
		{"2001:db8:1::5", "x.safe.ad.xiaomi.com", NULL,
		 J("2001:db8:1::5", "true", "\"kids\"", "false", "allow_list", "null", "\"ok\"",
		   "\"safe.ad.xiaomi.com\"", "x.safe.ad.xiaomi.com", "A", "null")},
		{"10.1.0.1", "use-application-dns.net", NULL,
		 J("10.1.0.1", "true", "\"kids\"", "true", "block_list", "\"nxdomain\"",
		   "\"canary\"", "\"use-application-dns.net\"", "use-application-dns.net", "A",
		   "\"NXDOMAIN\"")},
		{"10.1.0.1", "notmiui.com", NULL,
		 J("10.1.0.1", "true", "\"kids\"", "false", "no_match", "null", "null", "null",
		   "notmiui.com", "A", "null")},
		{"10.2.0.1", "example.com", NULL,
		 J("10.2.0.1", "true", "\"jail\"", "true", "default_deny", "\"refused\"", "null",
		   "null", "example.com", "A", "\"REFUSED\"")},
		{"10.2.0.1", "safe.ad.xiaomi.com", NULL,
		 J("10.2.0.1", "true", "\"jail\"", "false", "allow_list", "null", "\"ok\"",
		   "\"safe.ad.xiaomi.com\"", "safe.ad.xiaomi.com", "A", "null")},
		{"10.3.0.1", "tracking.miui.com", NULL,
		 J("10.3.0.1", "true", "null", "false", "no_group", "null", "null", "null",
		   "tracking.miui.com", "A", "null")},
		{"192.168.1.1", "tracking.miui.com", NULL,
		 J("192.168.1.1", "false", "null", "false", "not_allowed", "\"refused\"", "null",
		   "null", "tracking.miui.com", "A", "\"REFUSED\"")},
		{"::ffff:10.1.2.3", "tracking.miui.com", NULL,
		 J("::ffff:10.1.2.3", "true", "\"kids\"", "true", "block_list", "\"sinkhole\"",
		   "\"ads\"", "\"tracking.miui.com\"", "tracking.miui.com", "A",
		   "\"192.0.2.1 (ttl 30)\"")},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = {"explain", "-c",		   EXPLAIN_CFG,	  "--client",
				      cases[i].client, cases[i].name, "--json", cases[i].type,
				      NULL};
		struct run *r = calloc(1, sizeof(*r));
		assert_non_null(r);
		run_cmd(cmd_explain, args, r);
		if (r->code != 0 || strcmp(r->out, cases[i].expect) != 0)
			fprintf(stderr, "FAIL explain %s %s: exit %d\n  want %s  got  %s%s", cases[i].client,
				cases[i].name, r->code, cases[i].expect, r->out, r->err);
		assert_int_equal(r->code, 0);
		assert_string_equal(r->out, cases[i].expect);
		assert_string_equal(r->err, "");
		free(r);
	}
}

static void
test_cmd_explain_text_and_usage(void **state)
{
	(void)state;
	static const struct cmd_case cases[] = {
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.2.3", "a.tracking.miui.com"}, 0,
		 "client:  10.1.2.3 (allowed by server.allow)\n"
		 "query:   a.tracking.miui.com A\n"
		 "group:   kids\n"
		 "verdict: blocked\n"
		 "reason:  block list 'ads' contains 'tracking.miui.com'\n"
		 "action:  sinkhole\n"
		 "answer:  192.0.2.1 (ttl 30)\n", NULL},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.3.0.1", "example.com"}, 0,
		 "group:   none (no group matches the client)\nverdict: forward\n"
		 "reason:  no group matches the client: forwarded unfiltered\n", NULL},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.0.1", "example.com"}, 0,
		 "verdict: forward\nreason:  the name is in none of the lists of group 'kids'\n", NULL},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.2.0.1", "example.com"}, 0,
		 "reason:  group 'jail' has default: deny and no allow list contains the name\n"
		 "action:  refused\n", NULL},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "172.16.0.1", "example.com"}, 0,
		 "client:  172.16.0.1 (not in server.allow)\n", NULL},
		{{"explain", "--help"}, 0, "usage: veto explain", NULL},
		{{"explain", "-c", EXPLAIN_CFG, "example.com"}, 2, NULL, "--client IP is required"},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.0.1"}, 2, NULL, "a NAME is required"},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.0.1", "a.com", "A", "B"}, 2, NULL,
		 "too many arguments"},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1", "a.com"}, 2, NULL,
		 "--client: bad address '10.1'"},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.0.1", "a..com"}, 2, NULL,
		 "bad name 'a..com'"},
		{{"explain", "-c", EXPLAIN_CFG, "--client", "10.1.0.1", "a.com", "NOPE"}, 2, NULL,
		 "unknown type 'NOPE'"},
		{{"explain", "-c", DATA "/sinkhol.yaml", "--client", "10.1.0.1", "a.com"}, 2, NULL,
		 "sinkhol.yaml:14:5: groups[1].action: unknown value 'sinkhol'"},
	};
	run_cmd_cases("explain", cmd_explain, cases, sizeof(cases) / sizeof(cases[0]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_cases),
		cmocka_unit_test(test_all_at_once),
		cmocka_unit_test(test_warning_cases),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sinkhol_fixture),
		cmocka_unit_test(test_list_urls),
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_server_tcp_values),
		cmocka_unit_test(test_server_user_group),
		cmocka_unit_test(test_server_rate_limit_values),
		cmocka_unit_test(test_server_udp_sockets),
		cmocka_unit_test(test_store_settings),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_schema_fields),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_actions_and_distance),
		cmocka_unit_test(test_yaml_tree),
		cmocka_unit_test(test_shipped_configs),
		cmocka_unit_test(test_cmd_check),
		cmocka_unit_test(test_cmd_explain_json),
		cmocka_unit_test(test_cmd_explain_text_and_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
