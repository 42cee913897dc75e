#!/usr/bin/env bash
# test_vfs_large: the VFS on a database of about 50 MiB imported with ltxctl import into a real
# fakes3: point lookups, range scans, joins, aggregates and PRAGMA integrity_check answer exactly as
# plain SQLite on the local file (through vfs_query, a C program, with a small cache so that pages
# are evicted and fetched again). Then a corrupt frame (a file replica whose page-1 frame names
# another page) fails the query with an I/O error and a log line naming the file and the range:
# never a wrong page.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
QUERY="$LTXVFS_BUILD_DIR/tests/vfs_query"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"

command sqlite3 big.db >/dev/null <<'SQL'
PRAGMA page_size = 4096;
PRAGMA journal_mode = DELETE;
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, score REAL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total INTEGER, note BLOB);
CREATE INDEX orders_by_customer ON orders(customer_id);
CREATE INDEX customers_by_city ON customers(city, name);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO customers SELECT i, 'customer ' || i, char(65 + i % 26) || 'ville', (i * 7919 % 1000) / 10.0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 160000)
INSERT INTO orders SELECT i, 1 + (i * 7919) % 20000, i * 37 % 10000, randomblob(200 + i % 200) FROM n;
SQL
size=$(stat -c %s big.db)
[ "$size" -gt $((50 * 1024 * 1024)) ] || fail "the database is only $size bytes"

start s3 --bucket replicas
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
"$LTXCTL" import big.db "s3://replicas/big?endpoint=$URL" >/dev/null || fail "ltxctl import"
pass "a $((size / 1048576)) MiB database imported with ltxctl import"

QUERIES=(
    "select count(*), sum(total), sum(length(note)) from orders"
    "select id, name, city, score from customers where id in (1, 777, 13001, 20000)"
    "select id, customer_id, total, hex(substr(note, 1, 16)) from orders where id between 80000 and 80040"
    "select c.city, count(*), sum(o.total), round(avg(c.score), 3) from orders o join customers c on c.id = o.customer_id group by c.city order by c.city"
    "select name from customers indexed by customers_by_city where city = 'Qville' order by name limit 30"
    "select customer_id, count(*), max(total) from orders where customer_id between 100 and 140 group by customer_id"
    "select count(*) from orders where total > 9000 and customer_id % 7 = 3"
    "pragma integrity_check"
)
for q in "${QUERIES[@]}"; do printf '%s;\n' "$q"; done | command sqlite3 big.db >want.txt
"$QUERY" "$EXT" "file:big.db?vfs=litestream&replica=s3://replicas/big?endpoint=$URL&cache_size=4M" \
    "${QUERIES[@]}" >got.txt 2>err.txt || fail "vfs_query failed" "$(cat err.txt)"
diff -u want.txt got.txt >&2 || fail "answers differ from local SQLite's"
[ "$(tail -n1 got.txt)" = ok ] || fail "integrity_check" "$(tail -n3 got.txt)"
pass "point lookups, range scans, joins, aggregates and integrity_check equal local SQLite's (4 MiB cache)"
stop "$PID"

# A corrupt frame: page 1's frame header names page 2^31-1.
mkdir -p rep/ltx/9
cp "$LTXVFS_TESTDATA/ltx/snapshot-txid1.ltx" rep/ltx/9/0000000000000001-0000000000000001.ltx
printf '\x7f\xff\xff\xff' | dd of=rep/ltx/9/0000000000000001-0000000000000001.ltx bs=1 seek=100 \
    conv=notrunc status=none
out=$("$QUERY" "$EXT" "file:x.db?vfs=litestream&replica=file://$TMP/rep" "select count(*) from items" 2>&1) &&
    fail "a corrupt frame was read as a page" "$out"
grep -q "disk I/O error" <<<"$out" || fail "want an I/O error" "$out"
grep -q "0000000000000001-0000000000000001.ltx bytes=100-" <<<"$out" ||
    fail "the log must name the file and the range" "$out"
pass "a corrupt frame fails the read with an I/O error naming the file and the range"
echo "$passed passed, 0 failed"
