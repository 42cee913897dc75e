#!/usr/bin/env bash
# test_vfs_write_writers: one writer per replica. A second writer process fails at open with
# SQLITE_BUSY, and its stderr names the holder (host:pid); two connections of one process share
# the write state, and the second to write while the first holds the write lock gets "database is
# locked" (a busy timeout makes it wait); when the holder is killed (kill -9), another process
# takes over once the lease expired (lease_ttl=2s) and writes on; the replica never holds two
# files for one TXID, and restores to a consistent database. A buffer left by the killed writer,
# opened after the replica moved on, is set aside (<buffer>.orphaned-<TXID>), not shipped. A
# writer whose lease another party took, or that meets another's file at its next TXID, stops for
# good: later writes fail with SQLITE_READONLY and its buffer is kept.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"

EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
WRITER="$LTXVFS_BUILD_DIR/tests/vfs_writer"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
[ -f "$EXT.so" ] || fail "no $EXT.so"
[ -x "$WRITER" ] || fail "no $WRITER"
PY=(/usr/bin/python3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    PY=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" /usr/bin/python3)
fi
export TMPDIR="$TMP"

start s3 --bucket replicas --seed 9
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export LV_EXT="$EXT" PYTHONPATH="$TMP"
cat >"$TMP/lv.py" <<'PY'
import os, sqlite3
_loader = sqlite3.connect(":memory:")
_loader.enable_load_extension(True)
_loader.load_extension(os.environ["LV_EXT"])
def connect(uri, timeout=0.0):
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
def one(db, sql, *args):
    return db.execute(sql, args).fetchone()[0]
PY

repl() { echo "s3://replicas/$1?endpoint=$URL"; }
# wuri NAME BUFFER [PARAMS]: write mode on replica NAME with the buffer file $TMP/BUFFER.wbuf
wuri() { echo "file:$1.db?vfs=litestream&write=1&buffer=$TMP/$2.wbuf&lease_ttl=2s${3:+&$3}&replica=$(repl "$1")"; }
ruri() { echo "file:$1.db?vfs=litestream&replica=$(repl "$1")"; }
count() { local n; n=$(grep -c "^$2" "$1" 2>/dev/null) || true; echo "${n:-0}"; }
last() { sed -n "s/^$2 \([0-9]*\).*/\1/p" "$1" | tail -n1; }
wait_log() { # FILE PREFIX N PID
    local i
    for i in $(seq 300); do
        [ "$(count "$1" "$2")" -ge "$3" ] && return 0
        kill -0 "$4" 2>/dev/null || fail "the writer died" "$(cat "$1")"
        sleep 0.1
    done
    fail "the log never got $3 \"$2\" lines" "$(tail "$1")"
}
check() { # URI LOG: vfs_writer check; sets ROWS
    local out
    out=$("$WRITER" check "$EXT" "$1" --log "$2" 2>&1) || fail "check $1" "$out"
    ROWS=$(sed -n 's/^ok \([0-9]*\) rows$/\1/p' <<<"$out")
    [ -n "$ROWS" ] || fail "check $1" "$out"
}

# ---- a second writer process fails at open, naming the holder ----------------------------------
"$WRITER" "$EXT" "$(wuri ww w1 sync_interval=-1)" --log "$TMP/w1.log" --rate 50 --sync-every 10 \
    >"$TMP/w1.out" 2>"$TMP/w1.err" &
w1=$!
PIDS+=("$w1")
wait_log "$TMP/w1.log" synced 2 "$w1"
rc=0
"$WRITER" "$EXT" "$(wuri ww w2 sync_interval=-1)" --log "$TMP/w2.log" --count 1 \
    >"$TMP/second.out" 2>"$TMP/second.err" || rc=$?
[ "$rc" = 1 ] || fail "a second writer process must fail (exit $rc)" "$(cat "$TMP/second.err")"
grep -q "open: database is locked (code 5," "$TMP/second.err" ||
    fail "the second writer's open must fail with SQLITE_BUSY" "$(cat "$TMP/second.err")"
grep -q "litestream-vfs.*$(uname -n):$w1\b.*[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T" "$TMP/second.err" ||
    fail "the second writer's stderr must name the holder $(uname -n):$w1 and the expiry" "$(cat "$TMP/second.err")"
[ ! -s "$TMP/w2.log" ] || fail "the second writer committed something"
pass "a second writer process: open fails with SQLITE_BUSY, stderr names the holder $(uname -n):$w1 and the expiry"

# ---- two connections in one process ------------------------------------------------------------
"${PY[@]}" - "$(wuri pc pc sync_interval=100ms)" >"$TMP/pc.out" 2>"$TMP/pc.err" <<'PY' ||
import sqlite3, sys, threading, time
from lv import connect, one
uri = sys.argv[1]
a, b = connect(uri), connect(uri)
a.execute("create table t(x)")
a.execute("begin immediate")
a.execute("insert into t values (1)")
try:
    b.execute("insert into t values (2)")
    sys.exit("b wrote while a held the write lock")
except sqlite3.OperationalError as e:
    assert "database is locked" in str(e), str(e)
assert one(b, "select count(*) from t") == 0, "b reads while a writes: the last commit"
a.execute("commit")
b.execute("insert into t values (2)")
# with a busy timeout the second writer waits for the first
a.execute("begin immediate")
a.execute("insert into t values (3)")
done, ready = {}, threading.Event()
def waiter():
    try:
        c = connect(uri, timeout=10.0)
        ready.set()
        c.execute("insert into t values (4)")
        done["inserted"] = True
        c.close()
    except Exception as e:
        done["error"] = repr(e)
th = threading.Thread(target=waiter)
th.start()
assert ready.wait(10)
time.sleep(0.5)
assert th.is_alive() and not done, "the busy writer did not wait: %s" % done
a.execute("commit")
th.join(10)
assert done == {"inserted": True}, done
assert one(a, "select group_concat(x) from (select x from t order by x)") == "1,2,3,4"
# four threads, a connection each, writing at once (busy timeouts), the syncer shipping meanwhile
a.execute("create table tt(id integer primary key, th int, pad blob)")
errors = []
def worker(k):
    try:
        c = connect(uri, timeout=30.0)
        for i in range(100):
            c.execute("insert into tt(th, pad) values (?, randomblob(300))", (k,))
        c.close()
    except Exception as e:
        errors.append(repr(e))
ths = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for th in ths:
    th.start()
for th in ths:
    th.join(60)
assert not errors, errors
assert one(a, "select count(*) || '/' || count(distinct th) from tt") == "400/4"
assert one(a, "pragma integrity_check") == "ok"
print(one(a, "select litestream_sync()"))
PY
    fail "two connections in one process" "$(cat "$TMP/pc.out" "$TMP/pc.err")"
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri pc)" "select group_concat(x) from (select x from t order by x)" \
    "select count(*) || '/' || count(distinct th) from tt" "pragma integrity_check") || fail "pc: reader"
[ "$out" = "$(printf '%s\n' 1,2,3,4 400/4 ok)" ] || fail "pc: the reader" "$out"
pass "two connections of one process: both open; the second's write gets \"database is locked\" (with a busy timeout it waits); four threads writing at once"

# ---- kill -9 the holder: after the lease TTL another process takes over ------------------------
# stopped (SIGSTOP) where it has commits after its last sync, then killed
for _ in $(seq 100); do
    kill -STOP "$w1"
    [ "$(last "$TMP/w1.log" commit)" -gt "$(last "$TMP/w1.log" synced)" ] && break
    kill -CONT "$w1"
    sleep 0.03
done
kill -KILL "$w1"
{ wait "$w1"; } 2>/dev/null || true
killed=$(date +%s.%N)
synced1=$(last "$TMP/w1.log" synced)
committed1=$(last "$TMP/w1.log" commit)
[ "$committed1" -gt "$synced1" ] || fail "ww: the killed writer had no unsynced commit"
took=
for _ in $(seq 60); do
    if "$WRITER" "$EXT" "$(wuri ww w2 sync_interval=-1)" --log "$TMP/w2.log" --count 10 --sync-every 5 \
        >"$TMP/w2.out" 2>"$TMP/w2.err"; then
        took=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        break
    fi
    grep -q "database is locked" "$TMP/w2.err" || fail "the taking-over writer failed" "$(cat "$TMP/w2.err")"
    sleep 0.25
done
[ -n "$took" ] || fail "no writer could take over within 15 s of the holder's death (lease_ttl=2s)" "$(cat "$TMP/w2.err")"
cat "$TMP/w1.log" "$TMP/w2.log" >"$TMP/w12.log" # what both writers committed and acknowledged
check "$(ruri ww)" "$TMP/w12.log"
# the new writer went on from what the replica held: at least every acknowledged row (a sync that
# was uploading when the kill came may have landed too), never the killed writer's unsynced ones
base=$(($(sed -n 's/^commit \([0-9]*\)$/\1/p' "$TMP/w2.log" | head -n1) - 1))
[ "$base" -ge "$synced1" ] && [ "$base" -le $((committed1 + 1)) ] ||
    fail "ww: the new writer started after id $base; acknowledged were $synced1, committed $committed1"
[ "$ROWS" = $((base + 10)) ] || fail "ww: $ROWS rows; the new writer started after id $base and added 10"
pass "kill -9 of the holder: another process took over ${took}s later and wrote; $ROWS rows, every acknowledged one"

# ---- the replica: one file per TXID; a consistent restore --------------------------------------
"$LTXCTL" ls "$(repl ww)" --level 0 --json >"$TMP/ww.ls.json" || fail "ltxctl ls"
"${PY[@]}" - "$TMP/ww.ls.json" <<'PY' || fail "ww: level 0" "$(cat "$TMP/ww.ls.json")"
import json, sys
ids = [(int(f["min_txid"], 16), int(f["max_txid"], 16)) for f in json.load(open(sys.argv[1]))["files"]]
assert ids and all(a == b for a, b in ids), ids
got = sorted(a for a, _ in ids)
assert len(set(got)) == len(got), "a TXID has two files: %s" % got
assert got == list(range(1, len(got) + 1)), "not consecutive from 1: %s" % got
PY
"$LTXCTL" verify "$(repl ww)" >"$TMP/ww.verify" 2>&1 || fail "ltxctl verify" "$(cat "$TMP/ww.verify")"
"$LTXCTL" restore "$(repl ww)" -o "$TMP/ww.restored.db" -q || fail "ltxctl restore"
check "file:$TMP/ww.restored.db" "$TMP/w12.log"
[ "$ROWS" = $((base + 10)) ] || fail "ww: the restore holds $ROWS rows"
pass "level 0: one file per TXID, consecutive, no duplicate; ltxctl verify ok; the restore is consistent ($ROWS rows)"

# ---- the dead writer's buffer, opened after the replica moved on, is set aside ------------------
[ -s "$TMP/w1.wbuf" ] || fail "the killed writer's buffer is gone"
"$WRITER" "$EXT" "$(wuri ww w1 sync_interval=-1)" --log "$TMP/w3.log" --count 2 --sync-every 2 \
    >"$TMP/w3.out" 2>"$TMP/w3.err" || fail "a writer on the old buffer" "$(cat "$TMP/w3.err")"
ls "$TMP"/w1.wbuf.orphaned-* >/dev/null 2>&1 || fail "the old buffer must be kept as w1.wbuf.orphaned-<TXID>" "$(ls "$TMP")"
grep -q "orphaned" "$TMP/w3.err" || fail "setting a buffer aside must be logged" "$(cat "$TMP/w3.err")"
cat "$TMP/w12.log" "$TMP/w3.log" >"$TMP/w123.log"
check "$(ruri ww)" "$TMP/w123.log"
[ "$ROWS" = $((base + 12)) ] || fail "ww: $ROWS rows after the third writer; the orphaned window must not be shipped"
pass "the killed writer's buffer, opened after another writer moved the replica on, is set aside (logged), not shipped"

# ---- the lease taken away from a live writer: it stops for good --------------------------------
"$WRITER" "$EXT" "$(wuri ll ll sync_interval=-1)" --log "$TMP/ll.log" --rate 50 --sync-every 5 \
    >"$TMP/ll.out" 2>"$TMP/ll.err" &
w=$!
PIDS+=("$w")
wait_log "$TMP/ll.log" synced 2 "$w"
# another party writes lock.json (as a writer that took over would)
printf '{"generation":9,"expires_at":"2099-01-01T00:00:00Z","owner":"thief:1"}' >"$TMP/thief.json"
req 200 -T "$TMP/thief.json" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$URL/replicas/ll/lock.json"
for _ in $(seq 100); do kill -0 "$w" 2>/dev/null || break; sleep 0.1; done
rc=0
kill -0 "$w" 2>/dev/null && rc=running || { wait "$w" || rc=$?; }
[ "$rc" = 1 ] || fail "ll: a writer whose lease was taken must stop writing within 10 s (lease_ttl=2s): $rc" "$(cat "$TMP/ll.err")"
grep -q "attempt to write a readonly database (code 8" "$TMP/ll.err" ||
    fail "ll: the writes after a lost lease must fail with SQLITE_READONLY" "$(cat "$TMP/ll.err")"
grep -q "litestream-vfs.*thief:1" "$TMP/ll.err" || fail "ll: the log must name the new holder" "$(cat "$TMP/ll.err")"
check "$(ruri ll)" "$TMP/ll.log"
pass "a writer whose lease another party took stops: writes fail with SQLITE_READONLY, the log names the holder; $ROWS rows, every acknowledged one"

# ---- a level-0 file that is not ours at our next TXID: the writer stops for good ---------------
export LV_FORGE="curl -sS -f --aws-sigv4 aws:amz:$REGION:s3 --user $KEY:$SECRET -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
"${PY[@]}" - "$(wuri fo fo sync_interval=-1)" "$URL/replicas/fo/0000" >"$TMP/fo.out" 2>"$TMP/fo.err" <<'PY' ||
import json, os, sqlite3, subprocess, sys
from lv import connect, one
uri, base = sys.argv[1:3]
w = connect(uri)
w.execute("create table t(x)")
assert one(w, "select litestream_sync()") == "0000000000000001"
w.execute("insert into t values (1)")
assert one(w, "select litestream_sync()") == "0000000000000002"
w.execute("insert into t values (2)")
# someone else's TXID 3 (here: TXID 2's bytes under 3's name) lands first
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # curl: no sanitizer runtime
curl = lambda *a, **kw: subprocess.run(os.environ["LV_FORGE"].split() + list(a), check=True,
                                       env=env, timeout=30, **kw)
body = curl(base + "/0000000000000002-0000000000000002.ltx", stdout=subprocess.PIPE).stdout
open("forged.ltx", "wb").write(body)
curl("-T", "forged.ltx", base + "/0000000000000003-0000000000000003.ltx", stdout=subprocess.DEVNULL)
try:
    w.execute("select litestream_sync()").fetchone()
    sys.exit("the sync succeeded over another's TXID 3")
except sqlite3.OperationalError as e:
    print("sync:", e)
try:
    w.execute("insert into t values (3)")
    sys.exit("a write succeeded after the writer met another's file")
except sqlite3.OperationalError as e:
    assert "readonly" in str(e), e
st = json.loads(one(w, "select litestream_stats()"))["write"]
assert st["stopped"] == 1 and st["txid"] in (2, "0000000000000002"), st
assert one(w, "select count(*) from t") == 2, "the committed rows are still readable"
w.close()
PY
    fail "a foreign TXID 3" "$(cat "$TMP/fo.out" "$TMP/fo.err")"
[ -s "$TMP/fo.wbuf" ] || fail "fo: the stopped writer's buffer must be kept" "$(cat "$TMP/fo.err")"
pass "another's file at the next TXID: the sync fails ($(sed -n 's/^sync: //p' "$TMP/fo.out" | cut -c1-80)...), later writes fail read-only, the buffer is kept"

stop "$PID"
echo "$passed passed, 0 failed"
