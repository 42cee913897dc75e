#!/usr/bin/env bash
# The main job, as it stands today: set up, build, then take a sample SQLite database through
# the LTX codec the way a replica does: snapshot it, verify the snapshot, inspect it, restore it
# into a new file, and show that the restored database answers a query identically.
# (Later: fakes3 serving a database through the VFS.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
ltxctl=$PWD/build/ltxctl

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

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

query="SELECT c.city, count(*), round(sum(o.total), 2) FROM orders o JOIN customers c
       ON c.id = o.customer_id GROUP BY c.city ORDER BY c.city LIMIT 5"

echo "== ltxctl encode-db -o snapshot.ltx app.db"
"$ltxctl" encode-db -o snapshot.ltx app.db
echo "snapshot.ltx: $(stat -c %s snapshot.ltx) bytes"

echo "== ltxctl verify snapshot.ltx"
"$ltxctl" verify snapshot.ltx

echo "== ltxctl list snapshot.ltx"
"$ltxctl" list snapshot.ltx

echo "== ltxctl apply -db restored.db snapshot.ltx"
"$ltxctl" apply -db restored.db snapshot.ltx

echo "== the same query on both"
sqlite3 -header -column app.db "$query" | tee original.txt
sqlite3 -header -column restored.db "$query" > restored.txt
if cmp -s original.txt restored.txt && cmp -s app.db restored.db; then
  echo "restored.db answers identically (and is byte-for-byte app.db);" \
       "checksum $("$ltxctl" checksum restored.db)"
else
  echo "MISMATCH between app.db and restored.db" >&2
  exit 1
fi
