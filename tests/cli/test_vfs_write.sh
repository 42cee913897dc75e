#!/usr/bin/env bash
# test_vfs_write: write mode of the VFS (build/litestream-vfs.so) through real clients: the
# sqlite3 CLI, Debian's python3 and C programs (build/tests/vfs_query in read mode), against a
# real fakes3 and a file:// replica. Each database is written in one process and checked from
# others: a read-mode reader, `ltxctl restore` (its .dump equals the writer's, integrity ok) and
# `ltxctl verify`; the level-0 files are one per TXID, consecutive from 1. Covered: new databases
# (page size 4096 by default, 8192 when asked before the first write), read-your-writes in a
# transaction and between two connections of a process, ROLLBACK, schema changes, 200 KiB blobs,
# growth past 5,000 pages then DELETE + VACUUM, litestream_sync() / litestream_txid /
# litestream_stats() / litestream_write_enabled, and a reader in another process seeing a synced
# commit.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"

EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
QUERY="$LTXVFS_BUILD_DIR/tests/vfs_query"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
[ -f "$EXT.so" ] || fail "no $EXT.so"
command -v sqlite3 >/dev/null || fail "needs the sqlite3 CLI"
# A sanitized extension needs the sanitizer runtime in the process that loads it: preloaded into
# the sqlite3 CLI and python3 alone (vfs_query and ltxctl carry their own).
SQLITE=(sqlite3)
PY=(/usr/bin/python3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    SQLITE=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" sqlite3)
    PY=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" /usr/bin/python3)
fi
export TMPDIR="$TMP" # a default buffer path lands in the scratch folder too

start s3 --bucket replicas --seed 5
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export LV_EXT="$EXT" PYTHONPATH="$TMP"
cat >"$TMP/lv.py" <<'PY'
# What the Python snippets share: the extension loaded once, connections without a busy timeout.
import os, sqlite3
_loader = sqlite3.connect(":memory:")
_loader.enable_load_extension(True)
_loader.load_extension(os.environ["LV_EXT"])
def connect(uri, timeout=0.0):
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
def one(db, sql, *args):
    return db.execute(sql, args).fetchone()[0]
PY

repl() { echo "s3://replicas/$1?endpoint=$URL"; } # NAME: the replica URL of database NAME
# wuri NAME [PARAMS] / ruri NAME [PARAMS]: write-mode / read-mode URI of database NAME (its
# replica REPL_<NAME> if set, else the fakes3 one); the replica comes last, its URL has a '?'.
rep_of() { local v="REPL_$1"; echo "${!v:-$(repl "$1")}"; }
wuri() { echo "file:$1.db?vfs=litestream&write=1&buffer=$TMP/$1.wbuf${2:+&$2}&replica=$(rep_of "$1")"; }
ruri() { echo "file:$1.db?vfs=litestream${2:+&$2}&replica=$(rep_of "$1")"; }
# wsql NAME [PARAMS] <SQL: the sqlite3 CLI in write mode (-bail), its output on stdout
wsql() {
    { echo ".load $EXT"; echo ".open $(wuri "$1" "${2:-}")"; cat; } |
        "${SQLITE[@]}" -bail 2>"$TMP/$1.wsql.err" || fail "$1: the writer failed" "$(cat "$TMP/$1.wsql.err")"
}
# rsql NAME <SQL: the sqlite3 CLI in read mode
rsql() {
    { echo ".load $EXT"; echo ".open $(ruri "$1")"; cat; } |
        "${SQLITE[@]}" -bail 2>"$TMP/$1.rsql.err" || fail "$1: the reader failed" "$(cat "$TMP/$1.rsql.err")"
}
# restored NAME: `ltxctl restore` of the replica into $TMP/NAME.restored.db (replaced)
restored() {
    rm -f "$TMP/$1.restored.db"
    "$LTXCTL" restore "$(rep_of "$1")" -o "$TMP/$1.restored.db" -q 2>"$TMP/$1.restore.err" ||
        fail "$1: ltxctl restore failed" "$(cat "$TMP/$1.restore.err")"
    [ "$(command sqlite3 "$TMP/$1.restored.db" 'pragma integrity_check')" = ok ] ||
        fail "$1: the restored database fails integrity_check"
}
# same_dump NAME WHAT: the reader's and the restore's .dump equal $TMP/NAME.writer.dump
same_dump() {
    [ -s "$TMP/$1.writer.dump" ] || fail "$1: no writer dump"
    echo .dump | rsql "$1" >"$TMP/$1.reader.dump"
    diff -u "$TMP/$1.writer.dump" "$TMP/$1.reader.dump" >&2 || fail "$1 ($2): the reader's .dump differs"
    restored "$1"
    command sqlite3 "$TMP/$1.restored.db" .dump >"$TMP/$1.restored.dump"
    diff -u "$TMP/$1.writer.dump" "$TMP/$1.restored.dump" >&2 || fail "$1 ($2): the restore's .dump differs"
}
# verify_replica NAME [WANT_MAX]: ltxctl verify accepts every file; level 0 is one file per TXID,
# consecutive from 1 (to WANT_MAX if given), no TXID twice
verify_replica() {
    "$LTXCTL" verify "$(rep_of "$1")" >"$TMP/$1.verify.out" 2>"$TMP/$1.verify.err" ||
        fail "$1: ltxctl verify failed" "$(cat "$TMP/$1.verify.out")"
    grep -q "^restore plan: .*: ok" "$TMP/$1.verify.out" || fail "$1: verify: no restore plan ok line"
    "$LTXCTL" ls "$(rep_of "$1")" --level 0 --json >"$TMP/$1.ls.json" 2>"$TMP/$1.ls.err" ||
        fail "$1: ltxctl ls failed"
    "${PY[@]}" - "$TMP/$1.ls.json" "${2:-}" <<'PY' || fail "$1: level 0" "$(cat "$TMP/$1.ls.json")"
import json, sys
files = json.load(open(sys.argv[1]))["files"]
assert files, "no level-0 file"
ids = [(int(f["min_txid"], 16), int(f["max_txid"], 16)) for f in files if f["level"] == 0]
assert all(a == b for a, b in ids), "a level-0 file spans several TXIDs: %s" % ids
got = sorted(a for a, _ in ids)
assert got == list(range(1, len(got) + 1)), "not consecutive from 1: %s" % got
if sys.argv[2]:
    assert got[-1] == int(sys.argv[2], 16), "newest %d, want %s" % (got[-1], sys.argv[2])
PY
}

# ---- a new database, written, closed, read back from elsewhere: fakes3 and a folder -----------
roundtrip() { # NAME WHAT
    local n=$1
    wsql "$n" >"$TMP/$n.w.out" <<SQL
create table items(id integer primary key, name text, qty int, price real, note text);
insert into items select value, 'item-' || value, value % 13, value * 1.25,
    case when value % 5 = 0 then null else hex(randomblob(20)) end from generate_series(1, 3000);
create index items_name on items(name, qty);
update items set qty = qty + 100 where id % 3 = 0;
delete from items where id % 11 = 0;
select count(*) from items;
pragma page_size;
pragma litestream_write_enabled;
pragma integrity_check;
.output $TMP/$n.writer.dump
.dump
SQL
    [ "$(cat "$TMP/$n.w.out")" = "$(printf '%s\n' 2728 4096 1 ok)" ] ||
        fail "$2: the writer's answers" "$(cat "$TMP/$n.w.out")"
    [ ! -e "$TMP/$n.wbuf" ] || fail "$2: a clean close must remove the buffer (nothing left to ship)"
    out=$("$QUERY" "$EXT" "$(ruri "$n")" "select count(*), sum(qty), max(id) from items" \
        "pragma litestream_write_enabled" 2>"$TMP/$n.q.err") || fail "$2: vfs_query" "$(cat "$TMP/$n.q.err")"
    want=$(command sqlite3 :memory: "select count(*), sum(value % 13 + case when value % 3 = 0 then 100 else 0 end), max(value) from generate_series(1, 3000) where value % 11 != 0"; echo 0)
    [ "$out" = "$want" ] || fail "$2: a reader in another process" "want: $want" "got: $out"
    same_dump "$n" "$2"
    verify_replica "$n"
    pass "$2: a new database (4096-byte pages) written and closed; a reader, ltxctl restore (.dump equal, integrity ok) and ltxctl verify agree"
}
roundtrip a "fakes3"
REPL_f="file://$TMP/frep"
roundtrip f "file:// replica"
[ -f "$TMP/frep/ltx/0/0000000000000001-0000000000000001.ltx" ] || fail "file replica: no ltx/0/1-1" "$(find "$TMP/frep")"
pass "file:// replica: Litestream's layout (ltx/0/<min>-<max>.ltx)"

# ---- page size 8192 asked before the first write ----------------------------------------------
wsql b >"$TMP/b.w.out" <<SQL
pragma page_size = 8192;
create table t(x integer primary key, y text);
insert into t select value, printf('%.*c', 500, 'y') from generate_series(1, 400);
pragma page_size;
.output $TMP/b.writer.dump
.dump
SQL
[ "$(cat "$TMP/b.w.out")" = 8192 ] || fail "page_size 8192: the writer says" "$(cat "$TMP/b.w.out")"
[ "$(echo 'pragma page_size;' | rsql b)" = 8192 ] || fail "page_size 8192: the reader"
same_dump b "page size 8192"
[ "$(command sqlite3 "$TMP/b.restored.db" 'pragma page_size')" = 8192 ] || fail "the restored page size"
[ $(($(stat -c %s "$TMP/b.restored.db") % 8192)) = 0 ] || fail "the restored file is not whole 8192-byte pages"
verify_replica b
pass "PRAGMA page_size=8192 before the first write: an 8192-byte database, read and restored"

# ---- read-your-writes, two connections, ROLLBACK ----------------------------------------------
"${PY[@]}" - "$(wuri d sync_interval=-1)" >"$TMP/d.out" 2>"$TMP/d.err" <<'PY' || fail "two connections" "$(cat "$TMP/d.out" "$TMP/d.err")"
import sqlite3, sys
from lv import connect, one
a, b = connect(sys.argv[1]), connect(sys.argv[1])
a.execute("create table t(id integer primary key, v text)")
a.execute("insert into t values (1, 'one')")
assert one(b, "select count(*) from t") == 1, "b does not see a's commit"
a.execute("begin")
a.execute("insert into t values (2, 'two')")
a.execute("update t set v = 'uno' where id = 1")
assert one(a, "select group_concat(id || v) from t") == "1uno,2two", "no read-your-writes"
assert one(b, "select group_concat(id || v) from t") == "1one", "b sees a's open transaction"
a.execute("commit")
assert one(b, "select group_concat(id || v) from t") == "1uno,2two", "b misses a's commit"
b.execute("begin")
b.executemany("insert into t values (?, 'r')", [(i + 10,) for i in range(1, 501)])
b.execute("update t set v = 'gone' where id = 2")
b.execute("create table junk(x)")
assert one(b, "select count(*) from t") == 502
b.execute("rollback")
for c in (a, b):
    assert one(c, "select group_concat(id || v) from t") == "1uno,2two", "ROLLBACK left something"
    assert one(c, "select count(*) from sqlite_master where name = 'junk'") == 0
    assert one(c, "pragma integrity_check") == "ok"
# a transaction larger than the page cache (5 pages): SQLite spills pages to the database file
# before the commit; they must read back inside the transaction, stay invisible to the other
# connection, and go with the ROLLBACK
a.execute("create table big(id integer primary key, pad blob)")
a.execute("begin")
a.executemany("insert into big values (?, randomblob(1500))", [(i,) for i in range(1, 2001)])
a.execute("commit")
q = "select count(*), sum(length(pad)), sum(id) from big"
before = a.execute(q).fetchone()
b.execute("pragma cache_size = 5")
b.execute("begin")
b.execute("update big set pad = randomblob(700) where id % 2 = 0")
b.execute("delete from big where id % 3 = 0")
mid = b.execute(q).fetchone()
want = (1334, sum(700 if i % 2 == 0 else 1500 for i in range(1, 2001) if i % 3),
        sum(i for i in range(1, 2001) if i % 3))
assert mid == want, "inside the spilling transaction: %s, want %s" % (mid, want)
try:  # b spilled: it holds EXCLUSIVE, and a reader waits, as with SQLite's own VFS
    assert a.execute(q).fetchone() == before, "the other connection sees spilled pages"
except sqlite3.OperationalError as e:
    assert "locked" in str(e), e
b.execute("rollback")
for c in (a, b):
    assert c.execute(q).fetchone() == before, "the ROLLBACK of spilled pages left something"
    assert one(c, "pragma integrity_check") == "ok"
print(one(a, "select litestream_sync()"))
PY
out=$("$QUERY" "$EXT" "$(ruri d)" "select group_concat(id || v) from t" \
    "select count(*) from sqlite_master" "select count(*), sum(length(pad)), sum(id) from big" \
    2>"$TMP/dq.err") || fail "d: reader" "$(cat "$TMP/dq.err")"
want="$(printf '%s\n' 1uno,2two 2 "2000|3000000|2001000")"
[ "$out" = "$want" ] || fail "d: a reader in another process" "$out"
restored d
[ "$(command sqlite3 "$TMP/d.restored.db" "select group_concat(id || v) from t; select count(*) from sqlite_master;
    select count(*), sum(length(pad)), sum(id) from big")" = "$want" ] || fail "d: the restore"
verify_replica d
pass "read-your-writes in a transaction (also with pages spilled past a 5-page cache); two connections of one process see each other's commits, not open transactions; ROLLBACK leaves nothing"

# ---- schema changes and 200 KiB blobs, over three sessions ------------------------------------
wsql e <<SQL >/dev/null
create table s1(a integer primary key, b text);
create table s2(x);
insert into s1 select value, 'b' || (value % 17) from generate_series(1, 300);
insert into s2 values (1), (2);
create table blobs(id integer primary key, data blob);
insert into blobs select value, randomblob(200 * 1024) from generate_series(1, 3);
SQL
wsql e <<SQL >"$TMP/e.w.out"
alter table s1 add column c text default 'dflt';
create index s1_b on s1(b);
drop table s2;
update s1 set c = 'c' || a where a % 2 = 0;
insert into blobs values (4, randomblob(200 * 1024 + 2));
update blobs set data = zeroblob(10) where id = 2;
select name from sqlite_master order by name;
select id, length(data) from blobs order by id;
.output $TMP/e.writer.dump
.dump
SQL
[ "$(cat "$TMP/e.w.out")" = "$(printf '%s\n' blobs s1 s1_b 1\|204800 2\|10 3\|204800 4\|204802)" ] ||
    fail "e: the writer's answers" "$(cat "$TMP/e.w.out")"
same_dump e "schema changes and blobs"
out=$("$QUERY" "$EXT" "$(ruri e)" "select count(*), count(c), sum(c = 'dflt') from s1" \
    "select name from sqlite_master where type = 'index'" 2>"$TMP/eq.err") || fail "e: reader" "$(cat "$TMP/eq.err")"
[ "$out" = "$(printf '%s\n' "300|300|150" s1_b)" ] || fail "e: the reader" "$out"
verify_replica e
pass "ALTER TABLE ADD COLUMN, CREATE INDEX, DROP TABLE, 200 KiB blobs over several sessions: reader and restore equal the writer"

# ---- growth past 5,000 pages, then DELETE + VACUUM --------------------------------------------
state() { # what to compare: pages and the content hash
    echo "pragma page_count;"
    echo ".sha3sum"
}
wsql g >"$TMP/g.w1" <<SQL
create table big(id integer primary key, pad blob);
insert into big select value, randomblob(3000) from generate_series(1, 5600);
$(state)
SQL
pages=$(head -n1 "$TMP/g.w1")
[ "$pages" -gt 5000 ] || fail "g: the table did not grow past 5,000 pages" "$(cat "$TMP/g.w1")"
state | rsql g >"$TMP/g.r1"
diff -u "$TMP/g.w1" "$TMP/g.r1" >&2 || fail "g: the reader disagrees after the growth"
restored g
state | command sqlite3 "$TMP/g.restored.db" >"$TMP/g.x1"
diff -u "$TMP/g.w1" "$TMP/g.x1" >&2 || fail "g: the restore disagrees after the growth"
wsql g >"$TMP/g.w2" <<SQL
delete from big where id > 50;
vacuum;
pragma integrity_check;
$(state)
SQL
[ "$(head -n1 "$TMP/g.w2")" = ok ] || fail "g: integrity after VACUUM" "$(cat "$TMP/g.w2")"
sed -i 1d "$TMP/g.w2"
small=$(head -n1 "$TMP/g.w2")
[ "$small" -lt 100 ] || fail "g: VACUUM did not shrink the database" "$(cat "$TMP/g.w2")"
state | rsql g >"$TMP/g.r2"
diff -u "$TMP/g.w2" "$TMP/g.r2" >&2 || fail "g: the reader disagrees after DELETE + VACUUM"
restored g
state | command sqlite3 "$TMP/g.restored.db" >"$TMP/g.x2"
diff -u "$TMP/g.w2" "$TMP/g.x2" >&2 || fail "g: the restore disagrees after DELETE + VACUUM"
[ "$(stat -c %s "$TMP/g.restored.db")" = $((small * 4096)) ] ||
    fail "g: the restored file is $(stat -c %s "$TMP/g.restored.db") bytes, want $small pages"
verify_replica g
pass "a table grown to $pages pages, then DELETE + VACUUM to $small: reader and restore agree after each"

# ---- litestream_sync(), litestream_txid, litestream_stats(), litestream_write_enabled ----------
"${PY[@]}" - "$(wuri h sync_interval=-1)" >"$TMP/h.out" 2>"$TMP/h.err" <<'PY' || fail "functions" "$(cat "$TMP/h.out" "$TMP/h.err")"
import json, os, re, sys
from lv import connect, one
w = connect(sys.argv[1])
assert one(w, "pragma litestream_write_enabled") in (1, "1"), "write_enabled"
w.execute("create table t(x)")
t1 = one(w, "select litestream_sync()")
assert re.fullmatch("[0-9a-f]{16}", t1), t1
assert t1 == "0000000000000001", "the first sync of a new database is TXID 1, got " + t1
assert one(w, "pragma litestream_txid") == t1 and one(w, "select litestream_txid()") == t1
prev = int(t1, 16)
for i in range(5):
    w.execute("insert into t values (?)", (i,))
    w.execute("insert into t values (?)", (i + 100,))
    t = one(w, "select litestream_sync()")
    assert int(t, 16) == prev + 1, "sync %d: %s after %x" % (i, t, prev)
    assert one(w, "pragma litestream_txid") == t, "pragma litestream_txid"
    prev = int(t, 16)
assert one(w, "select litestream_sync()") == "%016x" % prev, "a sync with nothing to ship moved on"
w.execute("insert into t values (-1)")
s = json.loads(one(w, "select litestream_stats()"))
wr = s["write"]
for k in ("txid", "pending_txs", "dirty_pages", "buffer_bytes", "syncs", "sync_errors",
          "last_sync_ms", "last_error", "lease", "stopped", "compactions"):
    assert k in wr, "stats: no write.%s: %s" % (k, wr)
# (the TXID as the read side prints it, 16 hex digits, or as a number)
txid_of = lambda v: int(v, 16) if isinstance(v, str) else v
assert txid_of(wr["txid"]) == prev, wr
assert wr["pending_txs"] == 1 and wr["dirty_pages"] >= 1 and wr["buffer_bytes"] > 64, wr
assert wr["syncs"] >= 6 and wr["sync_errors"] == 0 and wr["stopped"] == 0, wr
assert wr["lease"]["owner"].endswith(":%d" % os.getpid()), wr["lease"]
assert wr["lease"]["expires_ms"] > 0, wr["lease"]
t = one(w, "select litestream_sync()")
assert int(t, 16) == prev + 1
wr = json.loads(one(w, "select litestream_stats()"))["write"]
assert wr["pending_txs"] == 0 and txid_of(wr["txid"]) == prev + 1, wr
print(t)
PY
htxid=$(cat "$TMP/h.out")
out=$("$QUERY" "$EXT" "$(ruri h)" "pragma litestream_write_enabled" "pragma litestream_txid" \
    "select count(*) from t" 2>"$TMP/hq.err") || fail "h: reader" "$(cat "$TMP/hq.err")"
[ "$out" = "$(printf '%s\n' 0 "$htxid" 11)" ] || fail "h: the reader" "$out"
verify_replica h "$htxid"
pass "litestream_sync() returns TXIDs +1 per sync (1 first), equal to PRAGMA litestream_txid; litestream_stats() has the write object; write_enabled 1 (0 in read mode); level 0 is 1..$((16#$htxid))"

# ---- a reader in another process sees a synced commit ------------------------------------------
mkfifo "$TMP/go"
"${PY[@]}" - "$(ruri h poll_interval=200ms)" "$TMP/go" >"$TMP/poll.out" 2>"$TMP/poll.err" <<'PY' &
import sys, time
from lv import connect, one
r = connect(sys.argv[1])
print(one(r, "select count(*) from t"), flush=True)
open(sys.argv[2]).read()
start = time.time()
while one(r, "select count(*) from t") != 12:
    if time.time() - start > 30:
        sys.exit("the synced row never showed up")
    time.sleep(0.02)
print("seen after %.2f s" % (time.time() - start))
PY
poller=$!
PIDS+=("$poller")
for _ in $(seq 100); do [ -s "$TMP/poll.out" ] && break; sleep 0.1; done
[ "$(head -n1 "$TMP/poll.out")" = 11 ] || fail "the polling reader's first answer" "$(cat "$TMP/poll.out" "$TMP/poll.err")"
# this writer turns write mode on through the environment
{ echo ".load $EXT"; echo ".open $(ruri h "buffer=$TMP/h2.wbuf&sync_interval=-1")"
  echo "pragma litestream_write_enabled;"; echo "insert into t values (1000);"
  echo "select litestream_sync();"; } |
    LITESTREAM_WRITE_ENABLED=true "${SQLITE[@]}" -bail >"$TMP/h2.out" 2>"$TMP/h2.err" &
writer=$!
echo go >"$TMP/go"
wait "$writer" || fail "h: the second writer" "$(cat "$TMP/h2.err")"
[ "$(cat "$TMP/h2.out")" = "$(printf '1\n%016x' $((16#$htxid + 1)))" ] ||
    fail "h: the second writer (LITESTREAM_WRITE_ENABLED=true): write_enabled and its sync" "$(cat "$TMP/h2.out")"
wait "$poller" || fail "the polling reader" "$(cat "$TMP/poll.out" "$TMP/poll.err")"
seen=$(sed -n 's/^seen after \([0-9.]*\) s$/\1/p' "$TMP/poll.out")
[ -n "$seen" ] || fail "the polling reader" "$(cat "$TMP/poll.out")"
awk -v s="$seen" 'BEGIN { exit !(s < 10) }' || fail "a synced commit took ${seen}s to reach a reader polling every 200ms"
verify_replica h "$(printf '%x' $((16#$htxid + 1)))"
pass "a reader in another process (poll_interval=200ms) sees a synced commit after ${seen}s; LITESTREAM_WRITE_ENABLED=true"

stop "$PID"
echo "$passed passed, 0 failed"
