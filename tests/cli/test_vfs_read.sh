#!/usr/bin/env bash
# test_vfs_read: the read-mode VFS (build/litestream-vfs.so) loaded by real clients: the sqlite3
# CLI, Debian's Python 3 (/usr/bin/python3: its sqlite3 module can load extensions) and a C
# program (build/tests/vfs_query). The replica is laid out by hand from the shared LTX vectors
# (snapshot at level 9, incrementals at level 0), as a directory and in a real fakes3; every
# answer must equal plain SQLite's on db-txid3.db. Then: pragmas and functions, read-only,
# errors with messages, and polling (a new file shows up, a read transaction keeps its TXID).
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"

: "${LTXVFS_TESTDATA:?}"
EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
QUERY="$LTXVFS_BUILD_DIR/tests/vfs_query"
PY=(/usr/bin/python3)
V="$LTXVFS_TESTDATA/ltx"
[ -f "$EXT.so" ] || fail "no $EXT.so"
command -v sqlite3 >/dev/null || fail "needs the sqlite3 CLI"
# A sanitized extension needs the sanitizer runtime in the process that loads it: preloaded into
# the sqlite3 CLI and python3 alone (their own leaks at exit are not ours to report; vfs_query is
# built with the sanitizers and checks for leaks in full).
SQLITE=(sqlite3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    SQLITE=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" sqlite3)
    PY=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" /usr/bin/python3)
fi

# The replica as Litestream's file backend lays it out.
lay_out() { # DIR FILES...: snapshot + incrementals of the vectors
    local dir=$1
    mkdir -p "$dir/ltx/9" "$dir/ltx/0"
    cp "$V/snapshot-txid1.ltx" "$dir/ltx/9/0000000000000001-0000000000000001.ltx"
    cp "$V/incr-txid2.ltx" "$dir/ltx/0/0000000000000002-0000000000000002.ltx"
    [ "${2:-3}" = 2 ] || cp "$V/incr-txid3.ltx" "$dir/ltx/0/0000000000000003-0000000000000003.ltx"
}
lay_out "$TMP/rep"

QUERIES=(
    "select count(*), sum(qty), round(sum(price), 2) from items"
    "select id, name, qty, price, hex(payload), note from items where id = 105"
    "select id, name from items where id between 480 and 520 order by id"
    "select name, count(*), max(qty) from items group by name order by name limit 20"
    "select a.id, b.id from items a join items b on a.qty = b.qty and a.id < b.id order by 1, 2 limit 25"
    "select count(*) from items where name like 'item-5%'"
    "select id from items indexed by items_name_qty where name > 'item-3' order by name, qty limit 10"
    "pragma integrity_check"
)
for q in "${QUERIES[@]}"; do printf '%s;\n' "$q"; done >"$TMP/queries.sql"
command sqlite3 "$V/db-txid3.db" <"$TMP/queries.sql" >"$TMP/want.txt"
[ "$(wc -l <"$TMP/want.txt")" -gt 30 ] || fail "the reference answers look too short"

check_clients() { # URI WHAT: the three clients answer every query as plain SQLite does
    local uri=$1 what=$2
    { echo ".load $EXT"; echo ".open $uri"; cat "$TMP/queries.sql"; } |
        "${SQLITE[@]}" >"$TMP/cli.txt" 2>"$TMP/cli.err" || fail "$what: sqlite3 CLI failed" "$(cat "$TMP/cli.err")"
    diff -u "$TMP/want.txt" "$TMP/cli.txt" >&2 || fail "$what: the sqlite3 CLI's answers differ"
    pass "$what: sqlite3 CLI (.load) answers as local SQLite"

    "$QUERY" "$EXT" "$uri" "${QUERIES[@]}" >"$TMP/c.txt" 2>"$TMP/c.err" ||
        fail "$what: vfs_query failed" "$(cat "$TMP/c.err")"
    diff -u "$TMP/want.txt" "$TMP/c.txt" >&2 || fail "$what: the C program's answers differ"
    pass "$what: a C program (sqlite3_load_extension) answers as local SQLite"

    "${PY[@]}" - "$EXT" "$uri" "$TMP/queries.sql" >"$TMP/py.txt" 2>"$TMP/py.err" <<'PY' ||
import sqlite3, sys
ext, uri, qfile = sys.argv[1:4]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
db = sqlite3.connect(uri, uri=True)
def fmt(v):
    if v is None: return ""
    if isinstance(v, float): return repr(v) if v != int(v) else "%.1f" % v
    return str(v)
for q in open(qfile).read().split(";\n"):
    if q.strip():
        for row in db.execute(q):
            print("|".join(fmt(v) for v in row))
PY
        fail "$what: python3 failed" "$(cat "$TMP/py.err")"
    diff -u "$TMP/want.txt" "$TMP/py.txt" >&2 || fail "$what: Python's answers differ"
    pass "$what: Debian's python3 (enable_load_extension) answers as local SQLite"
}

export LITESTREAM_REPLICA_URL="file://$TMP/rep"
check_clients "file:app.db?vfs=litestream" "file replica"

# ---- pragmas, functions, read-only, messages --------------------------------------------------
out=$({ echo ".load $EXT"; echo ".open file:app.db?vfs=litestream"
        echo "pragma litestream_txid;"; echo "select litestream_txid(), litestream_lag() >= 0;"
        echo "pragma journal_mode;"; echo "select json_extract(litestream_stats(), '\$.txid');"
        echo "pragma litestream_time;"; } | "${SQLITE[@]}" 2>&1)
want=$(printf '%s\n' 0000000000000003 "0000000000000003|1" delete 0000000000000003 \
    2025-01-01T00:01:00.000Z)
[ "$out" = "$want" ] || fail "pragmas and functions" "want:" "$want" "got:" "$out"
pass "litestream_txid, litestream_lag, litestream_stats, litestream_time; journal_mode is delete"

out=$({ echo ".load $EXT"; echo ".open file:app.db?vfs=litestream"
        echo "insert into items(id) values (100000);"; } | "${SQLITE[@]}" 2>&1 || true)
grep -q "readonly" <<<"$out" || fail "a write in read mode must fail read-only" "$out"
out=$({ echo ".load $EXT"; echo ".open file:app.db?vfs=litestream"
        echo "pragma litestream_time = 'the day after tomorrow';"; } | "${SQLITE[@]}" 2>&1 || true)
grep -q "litestream_time: .*not a time" <<<"$out" || fail "a bad time must say why" "$out"
out=$({ echo ".load $EXT"; echo ".open file:app.db?vfs=litestream"
        echo "pragma litestream_txid = 5;"; } | "${SQLITE[@]}" 2>&1 || true)
grep -q "read-only" <<<"$out" || fail "setting litestream_txid must say it is read-only" "$out"
pass "writes fail read-only; pragma errors carry their message"

out=$(LITESTREAM_REPLICA_URL= "$QUERY" "$EXT" "file:app.db?vfs=litestream" "select 1" 2>&1 || true)
grep -q "LITESTREAM_REPLICA_URL" <<<"$out" || fail "no replica: the log must say how to set one" "$out"
out=$(LITESTREAM_OPEN_TIMEOUT=300ms "$QUERY" "$EXT" \
    "file:app.db?vfs=litestream&replica=file://$TMP/empty" "select 1" 2>&1 || true)
grep -q "no LTX file" <<<"$out" || fail "an empty replica must fail after the open timeout" "$out"
pass "a missing replica URL and an empty replica fail with a message naming the cause"

# ---- a URI parameter picks another replica in the same process --------------------------------
lay_out "$TMP/rep2" 2
out=$("${PY[@]}" - "$EXT" "$TMP" <<'PY'
import sqlite3, sys
ext, tmp = sys.argv[1:3]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
a = sqlite3.connect("file:a.db?vfs=litestream", uri=True)
b = sqlite3.connect("file:b.db?vfs=litestream&replica=file://%s/rep2" % tmp, uri=True)
print(a.execute("select litestream_txid(), count(*) from items").fetchone())
print(b.execute("select litestream_txid(), count(*) from items").fetchone())
PY
)
[ "$out" = "$(printf "%s\n" "('0000000000000003', 560)" "('0000000000000002', 500)")" ] ||
    fail "two replicas in one process" "$out"
pass "two databases with different replicas in one process"

# ---- polling: a new file appears; a read transaction keeps its TXID ---------------------------
out=$("${PY[@]}" - "$EXT" "$TMP" "$V" <<'PY'
import shutil, sqlite3, sys, time
ext, tmp, v = sys.argv[1:4]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
uri = "file:p.db?vfs=litestream&replica=file://%s/rep2&poll_interval=100ms" % tmp
reader = sqlite3.connect(uri, uri=True, isolation_level=None)
other = sqlite3.connect(uri, uri=True, isolation_level=None)
reader.execute("begin")
before = reader.execute("select litestream_txid(), count(*) from items").fetchone()
shutil.copy(v + "/incr-txid3.ltx", tmp + "/rep2/ltx/0/0000000000000003-0000000000000003.ltx")
deadline = time.time() + 10
while other.execute("select litestream_txid()").fetchone()[0] != "0000000000000003":
    if time.time() > deadline:
        sys.exit("the new TXID never showed up")
    time.sleep(0.05)
seen_after = time.time() - (deadline - 10)
during = reader.execute("select litestream_txid(), count(*) from items").fetchone()
reader.execute("commit")
after = reader.execute("select litestream_txid(), count(*) from items").fetchone()
print(before, during, after, "fast" if seen_after < 5 else "slow:%.1fs" % seen_after)
PY
)
[ "$out" = "('0000000000000002', 500) ('0000000000000002', 500) ('0000000000000003', 560) fast" ] ||
    fail "polling" "$out"
pass "polling: a new level-0 file shows up; a read transaction keeps its TXID until it ends"

# ---- the same replica in fakes3 ---------------------------------------------------------------
start s3 --bucket replicas --seed 11
for f in 9/0000000000000001-0000000000000001 0/0000000000000002-0000000000000002 \
    0/0000000000000003-0000000000000003; do
    level=$(printf '%04x' "${f%%/*}")
    req 200 -T "$TMP/rep/ltx/$f.ltx" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "$URL/replicas/db/$level/${f#*/}.ltx"
done
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export LITESTREAM_REPLICA_URL="s3://replicas/db?endpoint=$URL"
check_clients "file:app.db?vfs=litestream" "fakes3 replica"

# the same answers through a bad day: 10% 503 SlowDown, resets and truncated bodies on GETs,
# latency on everything (seeded, so a failure can be replayed)
"$FAKES3" ctl --endpoint "$URL" --access-key "$KEY" --secret-key "$SECRET" faults add \
    "error 503 SlowDown op=GetObject p=0.1" "reset op=GetObject p=0.1" \
    "truncate 50 op=GetObject range=yes p=0.1" "error 503 SlowDown op=ListObjectsV2 p=0.1" \
    "latency 2ms jitter=3ms" >/dev/null || fail "fakes3 ctl faults add"
check_clients "file:app.db?vfs=litestream" "fakes3 replica with faults"
"$FAKES3" ctl --endpoint "$URL" --access-key "$KEY" --secret-key "$SECRET" --json faults list \
    >"$TMP/faults.json"
"${PY[@]}" - "$TMP/faults.json" <<'PY' || fail "the faults did not fire" "$(cat "$TMP/faults.json")"
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
fired = [r["fired"] for r in rules]
assert all(f > 0 for f in fired[:4]), fired
PY
pass "the faults fired, and every answer stayed exactly right"
"$FAKES3" ctl --endpoint "$URL" --access-key "$KEY" --secret-key "$SECRET" faults clear >/dev/null

# polling over S3 (ListObjectsV2 with start-after): db2 holds TXIDs 1-2, then 3 arrives
for f in 9/0000000000000001-0000000000000001 0/0000000000000002-0000000000000002; do
    level=$(printf '%04x' "${f%%/*}")
    req 200 -T "$TMP/rep/ltx/$f.ltx" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "$URL/replicas/db2/$level/${f#*/}.ltx"
done
"${PY[@]}" - "$EXT" "$URL" >"$TMP/poll.out" 2>&1 <<'PY' &
import sqlite3, sys, time
ext, url = sys.argv[1:3]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
db = sqlite3.connect("file:p.db?vfs=litestream&poll_interval=100ms&replica=s3://replicas/db2?endpoint=" + url, uri=True)
print(db.execute("select litestream_txid(), count(*) from items").fetchone(), flush=True)
deadline = time.time() + 15
while db.execute("select litestream_txid()").fetchone()[0] != "0000000000000003":
    if time.time() > deadline:
        sys.exit("TXID 3 never showed up")
    time.sleep(0.05)
print(db.execute("select litestream_txid(), count(*) from items").fetchone())
PY
poller=$!
for i in $(seq 100); do grep -q 500 "$TMP/poll.out" && break; sleep 0.1; done
req 200 -T "$TMP/rep/ltx/0/0000000000000003-0000000000000003.ltx" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$URL/replicas/db2/0000/0000000000000003-0000000000000003.ltx"
wait "$poller" || fail "polling over S3" "$(cat "$TMP/poll.out")"
[ "$(cat "$TMP/poll.out")" = "$(printf "%s\n" "('0000000000000002', 500)" "('0000000000000003', 560)")" ] ||
    fail "polling over S3" "$(cat "$TMP/poll.out")"
pass "polling over S3 picks up a new level-0 file"

# the store goes away under an open database: a read of a page not cached fails within the
# retry budget with an I/O error and a log line naming the key and the range; it never hangs
mkfifo "$TMP/go"
"${PY[@]}" - "$EXT" "$URL" "$TMP/go" >"$TMP/down.out" 2>&1 <<'PY' &
import sqlite3, sys, time
ext, url, go = sys.argv[1:4]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
db = sqlite3.connect("file:d.db?vfs=litestream&retry_timeout=1s&cache_size=16k&replica=s3://replicas/db?endpoint=" + url, uri=True)
print(db.execute("select count(*) from items where id < 10").fetchone()[0], flush=True)
open(go).read()
start = time.time()
try:
    db.execute("select sum(length(payload)) from items").fetchone()
    print("read succeeded with the store down")
except sqlite3.OperationalError as e:
    print("error:", e, "after %.1fs" % (time.time() - start))
PY
reader=$!
for _ in $(seq 100); do [ -s "$TMP/down.out" ] && break; sleep 0.1; done
[ "$(head -n1 "$TMP/down.out")" = 9 ] || fail "the reader's first query" "$(cat "$TMP/down.out")"
stop "$PID"
echo go >"$TMP/go"
wait "$reader" || fail "the reader failed" "$(cat "$TMP/down.out")"
out=$(cat "$TMP/down.out")
grep -q "^error: disk I/O error after [0-9.]*s" <<<"$out" || fail "store down: want an I/O error" "$out"
secs=$(sed -n 's/.*after \([0-9.]*\)s.*/\1/p' <<<"$out")
awk -v s="$secs" 'BEGIN { exit !(s < 15) }' || fail "the read took ${secs}s with a 1s retry budget" "$out"
grep -q "0000/0000000000000003-0000000000000003.ltx bytes=\|0009/0000000000000001-0000000000000001.ltx bytes=" <<<"$out" ||
    fail "the log must name the key and the range" "$out"
pass "the store down: a read fails in ${secs}s with an I/O error and a log line naming key and range"

echo "$passed passed, 0 failed"
