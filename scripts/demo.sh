#!/usr/bin/env bash
# The main job: fakes3 serving a demo database through the litestream VFS.
#
#   1. set up (Debian packages) and build;
#   2. start fakes3 (in memory, on a free 127.0.0.1 port, 40 ms of latency per request so it
#      behaves like a remote store) with a bucket "demo";
#   3. make a sample SQLite database and import it into s3://demo/app (ltxctl import: an LTX
#      snapshot, the layout Litestream writes), list the replica (ltxctl ls);
#   4. load build/litestream-vfs.so into the sqlite3 CLI and query the database straight off
#      fakes3, cold then warm, with their timings and request counts: the same answers as the
#      local file;
#   5. write mode: insert a row, litestream_sync() ships it as a level-0 LTX file;
#   6. time travel: the database as it was before that write;
#   7. hydration: a local copy built in the background (its progress), then queries served from
#      it without a request; gone at close;
#   8. restore the replica to a file (ltxctl restore): integrity ok, the written row there;
#   then stop everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/bootstrap.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
ltxctl=$root/build/ltxctl

work=$(mktemp -d)
fakes3_pid=
cleanup() {
    [ -z "$fakes3_pid" ] || { kill "$fakes3_pid" 2>/dev/null && wait "$fakes3_pid" 2>/dev/null; } || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

echo "== fakes3 (in memory, 40 ms latency per request)"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demosecret AWS_REGION=us-east-1
"$root/build/fakes3" --memory --listen 127.0.0.1:0 --access-key demo --secret-key demosecret \
    --bucket demo --latency 40ms >fakes3.out 2>fakes3.err &
fakes3_pid=$!
for _ in $(seq 100); do grep -q 'listening on' fakes3.out && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' fakes3.out)
[ -n "$url" ] || { cat fakes3.err >&2; exit 1; }
echo "fakes3 at $url"
replica="s3://demo/app?endpoint=$url"

echo "== a sample database: app.db"
sqlite3 app.db >/dev/null <<'SQL'
PRAGMA journal_mode = DELETE;
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                     total REAL, note BLOB);
CREATE INDEX orders_by_customer ON orders(customer_id);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO customers SELECT i, 'customer ' || i, char(65 + i % 26) || 'ville' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO orders SELECT i, 1 + (i * 7919) % 2000, round((i * 37 % 10000) / 100.0, 2),
                          randomblob(i % 64) FROM n;
SQL
echo "app.db: $(stat -c %s app.db) bytes"

echo "== ltxctl import app.db $replica"
"$ltxctl" import app.db "$replica"
echo "== ltxctl ls"
"$ltxctl" ls "$replica"

query="SELECT c.city, count(*), round(sum(o.total), 2) FROM orders o JOIN customers c
       ON c.id = o.customer_id GROUP BY c.city ORDER BY c.city LIMIT 5"
vfs="file:app.db?vfs=litestream&replica=$replica"
# page GETs, listings and page indexes so far, from litestream_stats()
requests="SELECT '   requests so far: ' || json_extract(litestream_stats(), '\$.requests.pages') || ' page GETs ('
       || json_extract(litestream_stats(), '\$.requests.page_bytes') || ' bytes), '
       || json_extract(litestream_stats(), '\$.requests.lists') || ' listing(s), '
       || json_extract(litestream_stats(), '\$.requests.indexes') || ' page index(es)'"

echo "== the query on the local file"
sqlite3 -header -column app.db "$query" | tee local.txt

echo "== the same query through the VFS, straight off fakes3 (40 ms a request): cold, then warm"
sqlite3 >session.txt <<SQL
.load $root/build/litestream-vfs
.open $vfs
.timer on
.print -- cold (the open listed the replica and fetched its page index; the pages come now)
$query;
.timer off
$requests;
.timer on
.print -- warm (the same query: every page from the cache)
$query;
.timer off
$requests;
SQL
sed -e 's/^Run Time: real \([0-9.]*\).*/   took \1 s/' session.txt
sqlite3 -header -column >remote.txt <<SQL
.load $root/build/litestream-vfs
.open $vfs
$query;
SQL
cmp -s local.txt remote.txt || { echo "MISMATCH between local and remote answers" >&2; exit 1; }
echo "the VFS answers exactly as the local file does"

before=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.2
echo "== write mode: a new order, shipped to fakes3 as a level-0 LTX file"
sqlite3 <<SQL
.load $root/build/litestream-vfs
.open $vfs&write=1
INSERT INTO orders(customer_id, total, note) VALUES (42, 99.95, 'written through the VFS');
SELECT '   orders now: ' || count(*) FROM orders;
SELECT '   durable at TXID ' || litestream_sync() || ' (litestream_sync() waits for the upload)';
SQL
"$ltxctl" ls "$replica"

echo "== a point-in-time query: the database as it was before that write ($before)"
sqlite3 <<SQL
.load $root/build/litestream-vfs
.open $vfs
SELECT '   latest:             ' || count(*) || ' orders, TXID ' || litestream_txid() FROM orders;
PRAGMA litestream_time = '$before';
SELECT '   at $before: ' || count(*) || ' orders, TXID ' || litestream_txid() FROM orders;
SQL

echo "== hydration: a full local copy built in the background, then reads are local"
sqlite3 <<SQL
.load $root/build/litestream-vfs
.open $vfs&hydration=$work/hydrated.db
SELECT '   first answer at once (remote): ' || count(*) || ' orders' FROM orders;
.print -- PRAGMA litestream_hydration_progress, every 0.2 s:
PRAGMA litestream_hydration_progress;
.shell sleep 0.2
PRAGMA litestream_hydration_progress;
.shell sleep 0.2
PRAGMA litestream_hydration_progress;
.shell sleep 0.5
PRAGMA litestream_hydration_progress;
SELECT '   state: ' || json_extract(litestream_stats(), '\$.hydration.state') || ', built in '
       || json_extract(litestream_stats(), '\$.hydration.cutover_ms') || ' ms';
$requests;
.print -- the query again, now from the local copy: no new page GET
$query;
$requests;
SQL
[ ! -e "$work/hydrated.db" ] || { echo "the hydrated copy outlived its connection" >&2; exit 1; }
echo "the local copy is gone with the connection (it is a temporary)"

echo "== ltxctl restore $replica -o restored.db"
"$ltxctl" restore "$replica" -o restored.db
check=$(sqlite3 restored.db "PRAGMA integrity_check; SELECT count(*) FROM orders; SELECT note FROM orders ORDER BY id DESC LIMIT 1")
[ "$check" = "$(printf 'ok\n20001\nwritten through the VFS')" ] || { echo "restored.db: $check" >&2; exit 1; }
echo "restored.db: integrity ok, 20001 orders, the last one written through the VFS"
echo "== done: fakes3 stops, the scratch folder goes"
