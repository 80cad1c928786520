#!/usr/bin/env bash
# A large synthetic shared store (store.postgresql), fast: rows made by SQL (INSERT ... SELECT
# FROM generate_series into the daily partitions, no writer), then the rollups as GROUP BY of
# the rows (the writer's contract, resolver/pg/pg_schema_log.c). The same shape as
# logdb_gen.sh: 2,000 sources (30% vendor handsets in group "banned", devices dev-0000.., most
# with a MAC), 200,000 names (500 telemetry names under miui.com, hicloud.com and
# heytapmobi.com, blocked by lists xiaomi, huawei, oppo-realme; 2,000 popular names take 70% of
# the other queries, 197,500 rarer ones the rest), 10% of the queries blocked, rows evenly
# spread over DAYS days ending now, in time order, from two instances (dns1, dns2).
# The rollups are stored in time order, as the writer appends them hour by hour (rows of one
# hour together on disk); rollup_attempt_names (one row per device and name) in key order. The schema is made by `veto log` itself (as the daemon makes it).
# Usage: tests/bench/pg_gen.sh CONNINFO ROWS [DAYS] [BUILD_DIR]   (DAYS default 30)
# CONNINFO: a libpq connection string to an empty database (psql and veto use it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
conn=${1:?usage: pg_gen.sh CONNINFO ROWS [DAYS] [BUILD_DIR]}
rows=${2:?usage: pg_gen.sh CONNINFO ROWS [DAYS] [BUILD_DIR]}
days=${3:-30}
build=${4:-$src/build}
command -v psql >/dev/null || { echo "missing psql (apt-get install postgresql-client)" >&2; exit 1; }
[ -x "$build/veto" ] || { echo "missing $build/veto (make build)" >&2; exit 1; }

cfg=$(mktemp /tmp/veto-pg-gen.XXXXXX.yaml)
trap 'rm -f "$cfg"' EXIT
printf 'upstream:\n  servers: ["127.0.0.1:53"]\nstore:\n  postgresql: "%s"\n  instance: gen\n' \
	"$conn" >"$cfg"
"$build/veto" log -c "$cfg" --limit 1 >/dev/null # the schema
now_ms=$(($(date +%s) * 1000))
span=$((days * 86400000))
start=$((now_ms - span))
t0=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 "$conn" <<EOF
SET TIME ZONE 'UTC';
SET synchronous_commit = off;
SET work_mem = '256MB';
DO \$\$ DECLARE d date; BEGIN
  FOR d IN SELECT generate_series(to_timestamp($start / 1000.0)::date,
                                  to_timestamp($now_ms / 1000.0)::date, interval '1 day')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS queries_%s PARTITION OF queries'
                   ' FOR VALUES FROM (%L) TO (%L)', to_char(d, 'YYYYMMDD'), d, d + 1);
  END LOOP;
END \$\$;
INSERT INTO queries (ts, instance, client, mac, device, group_name, vendor, vendor_source, qname,
  qtype, proto, blocked, list, rule, action, rcode, upstream, latency_us)
SELECT timestamptz 'epoch' + ($start + i * $span::int8 / $rows) * interval '1 millisecond',
  CASE WHEN i % 2 = 0 THEN 'dns1' ELSE 'dns2' END,
  '10.0.' || (s / 250) || '.' || (s % 250 + 2),
  CASE WHEN s % 10 <> 9 THEN '3c:00:00:00:' || lpad(to_hex(s >> 8), 2, '0') || ':'
    || lpad(to_hex(s & 255), 2, '0') END,
  CASE WHEN s % 3 <> 0 THEN 'dev-' || lpad(s::text, 4, '0') END,
  CASE WHEN s % 10 < 3 THEN 'banned' ELSE 'staff' END,
  CASE WHEN s % 10 < 3 THEN (CASE s % 3 WHEN 0 THEN 'Xiaomi' WHEN 1 THEN 'Huawei' ELSE 'OPPO' END) END,
  CASE WHEN s % 10 < 3 THEN 'signature' END,
  (CASE WHEN n > 500 THEN 'h' ELSE 't' END) || n || '.' || (CASE WHEN n > 500 THEN 'site' || (n % 5000)
    WHEN n % 3 = 0 THEN 'miui' WHEN n % 3 = 1 THEN 'hicloud' ELSE 'heytapmobi' END) || '.com',
  CASE WHEN x % 7 = 0 THEN 'AAAA' ELSE 'A' END, 'udp', blk,
  CASE WHEN blk THEN (ARRAY['xiaomi', 'huawei', 'oppo-realme'])[n % 3 + 1] END, NULL,
  CASE WHEN blk THEN 'sinkhole' WHEN (y / 7) % 5 = 0 THEN 'forward' ELSE 'cache' END, 'NOERROR',
  CASE WHEN NOT blk AND (y / 7) % 5 = 0 THEN '127.0.0.1:53' END, ((x / 13) % 20000)::int
FROM (SELECT i, x, y, s, blk, CASE WHEN blk THEN y % 500 + 1 WHEN y % 10 < 7
    THEN (y / 10) % 2000 + 501 ELSE (y / 10) % 197500 + 2501 END AS n
  FROM (SELECT i, x, y, (x % 2000)::int AS s, ((x % 2000) % 10 < 3 AND (x / 2000) % 3 = 0) AS blk
    FROM (SELECT i, (random() * 2147483647)::int8 AS x, (random() * 2147483647)::int8 AS y
      FROM generate_series(0::int8, $rows - 1) i) a) b) t;
INSERT INTO rollup_sources SELECT date_trunc('hour', ts), instance, client, coalesce(mac, ''),
  coalesce(device, ''), coalesce(group_name, ''), coalesce(vendor, ''), coalesce(list, ''),
  coalesce(action, ''), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
  ORDER BY 1;
INSERT INTO rollup_days SELECT (ts AT TIME ZONE 'UTC')::date, instance, client, coalesce(mac, ''),
  coalesce(device, ''), coalesce(group_name, ''), coalesce(vendor, ''), coalesce(list, ''),
  coalesce(action, ''), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
  ORDER BY 1;
INSERT INTO rollup_names SELECT coalesce(qname, ''), date_trunc('hour', ts), instance,
  coalesce(list, ''), coalesce(action, ''), blocked, count(*) FROM queries
  GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 2;
INSERT INTO rollup_name_days SELECT coalesce(qname, ''), (ts AT TIME ZONE 'UTC')::date, instance,
  coalesce(list, ''), coalesce(action, ''), blocked, count(*) FROM queries
  GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 2;
INSERT INTO rollup_hours SELECT date_trunc('hour', ts), instance, count(*),
  count(*) FILTER (WHERE blocked) FROM queries GROUP BY 1, 2 ORDER BY 1;
INSERT INTO rollup_attempts SELECT (ts AT TIME ZONE 'UTC')::date, instance, coalesce(mac, client),
  mac IS NULL, coalesce(list, ''), count(*), min(ts), max(ts) FROM queries WHERE blocked
  GROUP BY 1, 2, 3, 4, 5 ORDER BY 1;
INSERT INTO rollup_attempt_names SELECT coalesce(mac, client), mac IS NULL, coalesce(qname, ''),
  max(ts) FROM queries WHERE blocked AND list IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
VACUUM ANALYZE;
EOF
echo "generated $rows rows in $(($(date +%s) - t0)) s"
