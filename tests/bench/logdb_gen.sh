#!/usr/bin/env bash
# A large synthetic query store, fast: rows made by SQL (INSERT ... SELECT from a recursive CTE,
# no writer), then the hourly rollups built by the writer's own schema 3 -> 4 conversion
# (bench_logdb opens the file with the writer first).
# Usage: tests/bench/logdb_gen.sh DB ROWS [DAYS] [BUILD_DIR]   (DAYS default 30)
# Cardinalities: 2,000 sources (30% vendor handsets in group "banned", devices dev-0000..,
# most with a MAC), 200,000 names (500 telemetry names under miui.com, hicloud.com and
# heytapmobi.com, blocked by lists xiaomi, huawei, oppo-realme; 2,000 popular names take 70% of
# the other queries, 197,500 rarer ones the rest), 10% of the queries blocked (a third of the
# handsets' queries), rows evenly spread over DAYS days ending now, in time order.
# DB must not exist. Needs the sqlite3 command-line shell (Debian: sqlite3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
db=${1:?usage: logdb_gen.sh DB ROWS [DAYS] [BUILD_DIR]}
rows=${2:?usage: logdb_gen.sh DB ROWS [DAYS] [BUILD_DIR]}
days=${3:-30}
build=${4:-$src/build}
command -v sqlite3 >/dev/null || { echo "missing sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
[ -e "$db" ] && { echo "'$db' exists" >&2; exit 1; }
[ -x "$build/tests/bench_logdb" ] || { echo "missing $build/tests/bench_logdb" >&2; exit 1; }

# an empty store of the current schema, made by the writer
"$build/tests/bench_logdb" "$db" 0 >/dev/null
now_ms=$(($(date +%s) * 1000))
span=$((days * 86400000))
start=$((now_ms - span))
t0=$(date +%s)
sqlite3 "$db" <<EOF
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
INSERT INTO texts (id, text) VALUES (1, 'A'), (2, 'AAAA'), (3, 'HTTPS'), (4, 'udp'),
  (5, 'tcp'), (6, 'xiaomi'), (7, 'huawei'), (8, 'oppo-realme'), (9, 'cache'), (10, 'forward'),
  (11, 'sinkhole'), (12, 'NOERROR'), (13, 'NXDOMAIN'), (14, '127.0.0.1:53');
WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 1999)
INSERT INTO sources (id, client, mac, device, group_name, vendor, vendor_source)
SELECT i + 1, '10.0.' || (i / 250) || '.' || (i % 250 + 2),
  CASE WHEN i % 10 != 9 THEN printf('3c:00:00:00:%02x:%02x', i >> 8, i & 255) END,
  CASE WHEN i % 3 != 0 THEN printf('dev-%04d', i) END,
  CASE WHEN i % 10 < 3 THEN 'banned' ELSE 'staff' END,
  CASE WHEN i % 10 < 3 THEN (CASE i % 3 WHEN 0 THEN 'Xiaomi' WHEN 1 THEN 'Huawei' ELSE 'OPPO' END) END,
  CASE WHEN i % 10 < 3 THEN 'signature' END
FROM d;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000),
 v(i, dom, tld) AS (SELECT i,
   CASE WHEN i > 500 THEN 'site' || (i % 5000) WHEN i % 3 = 0 THEN 'miui'
        WHEN i % 3 = 1 THEN 'hicloud' ELSE 'heytapmobi' END, 'com' FROM n)
INSERT INTO names (id, qname, rname)
SELECT i, (CASE WHEN i > 500 THEN 'h' ELSE 't' END) || i || '.' || dom || '.' || tld,
  tld || '.' || dom || '.' || (CASE WHEN i > 500 THEN 'h' ELSE 't' END) || i || '.' FROM v;
WITH RECURSIVE q(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM q WHERE i < $rows - 1),
 r(i, x, y) AS (SELECT i, abs(random()), abs(random()) FROM q),
 s(i, x, y, src, blk) AS (SELECT i, x, y, x % 2000 + 1,
   ((x % 2000) % 10 < 3 AND (x / 2000) % 3 = 0) FROM r),
 t(i, x, y, src, blk, name) AS (SELECT i, x, y, src, blk,
   CASE WHEN blk THEN y % 500 + 1
        WHEN y % 10 < 7 THEN (y / 10) % 2000 + 501
        ELSE (y / 10) % 197500 + 2501 END FROM s)
INSERT INTO queries (ts_ms, source, name, qtype, proto, blocked, list, rule, action, rcode,
  upstream, latency_us)
SELECT $start + i * $span / $rows, src, name, CASE WHEN x % 7 = 0 THEN 2 ELSE 1 END, 4, blk,
  CASE WHEN blk THEN 6 + name % 3 END, NULL,
  CASE WHEN blk THEN 11 WHEN (y / 7) % 5 = 0 THEN 10 ELSE 9 END, 12,
  CASE WHEN NOT blk AND (y / 7) % 5 = 0 THEN 14 END, (x / 13) % 20000
FROM t;
DELETE FROM rollup_sources; DELETE FROM rollup_names; DELETE FROM rollup_hours;
PRAGMA user_version = 3;
COMMIT;
EOF
echo "generated $rows rows in $(($(date +%s) - t0)) s: '$db' (schema 3 without rollups; the writer builds them at its next open)"
