#!/usr/bin/env bash
# The main job: fakes3 serving a demo database through the litestream VFS.
#
#   1. set up (Debian packages) and build;
#   2. start fakes3 (in memory, on a free 127.0.0.1 port, 20 ms of latency per request so it
#      behaves like a remote store) with a bucket "demo";
#   3. make a sample SQLite database and import it into s3://demo/app (ltxctl import: an LTX
#      snapshot, the layout Litestream writes), list the replica (ltxctl ls);
#   4. load build/litestream-vfs.so into the sqlite3 CLI and query the database straight off
#      fakes3: the same answers as the local file, its TXID, and what it cost in requests;
#   5. restore the replica to a file (ltxctl restore) and show it is byte-for-byte the original.
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

echo "== fakes3 (in memory, 20 ms latency per request)"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demosecret AWS_REGION=us-east-1
"$root/build/fakes3" --memory --listen 127.0.0.1:0 --access-key demo --secret-key demosecret \
    --bucket demo --latency 20ms >fakes3.out 2>fakes3.err &
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

echo "== the query on the local file"
sqlite3 -header -column app.db "$query" | tee local.txt

echo "== the same query through the VFS, straight off fakes3"
sqlite3 -header -column >remote.txt <<SQL
.load $root/build/litestream-vfs
.open file:app.db?vfs=litestream&replica=s3://demo/app?endpoint=$url
$query;
SQL
cat remote.txt
cmp -s local.txt remote.txt || { echo "MISMATCH between local and remote answers" >&2; exit 1; }
sqlite3 <<SQL
.load $root/build/litestream-vfs
.open file:app.db?vfs=litestream&replica=s3://demo/app?endpoint=$url
SELECT 'TXID ' || litestream_txid() || ', order 4242: ' || (SELECT total FROM orders WHERE id = 4242);
SELECT 'requests: ' || json_extract(litestream_stats(), '\$.requests.pages') || ' page GETs, '
       || json_extract(litestream_stats(), '\$.requests.lists') || ' listing, '
       || json_extract(litestream_stats(), '\$.requests.indexes') || ' page index fetched';
SQL
echo "the VFS answers exactly as the local file does"

echo "== ltxctl restore $replica -o restored.db"
"$ltxctl" restore "$replica" -o restored.db
if cmp -s app.db restored.db; then
    echo "restored.db is byte-for-byte app.db; checksum $("$ltxctl" checksum restored.db)"
else
    echo "MISMATCH between app.db and restored.db" >&2
    exit 1
fi
