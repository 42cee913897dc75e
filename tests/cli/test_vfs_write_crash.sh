#!/usr/bin/env bash
# test_vfs_write_crash: what write mode keeps when things go wrong, against a real fakes3 with
# fault rules. The workload is build/tests/vfs_writer (one row per commit, a log of what was
# committed and what litestream_sync() acknowledged, fsync'd line by line) and `vfs_writer check`
# reads the replica back in read mode. Cases:
#   - kill -9 with unsynced commits in the buffer (uploads failing at the time): the replica holds
#     exactly what was acknowledged; a writer restarted on the same buffer after the lease TTL
#     ships the rest: every commit of the killed process is there;
#   - kill -9 right after syncs: nothing litestream_sync() acknowledged is lost (two rounds);
#   - the same as the first with the default buffer path (no buffer= given);
#   - the buffer bound: with uploads failing, writes fail with SQLITE_FULL; once the store is
#     back a sync ships it all and writes work again;
#   - a lost response to level-0 PUTs: the writer carries on, one file per TXID, consecutive;
#     and one the S3 client cannot settle (every retry fails): the next sync, and a restart
#     after kill -9, recognise the stored file as their own;
#   - the store down at close: the buffer stays, and the next open ships it.
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

start s3 --bucket replicas --seed 7
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export LV_EXT="$EXT" PYTHONPATH="$TMP"
export LV_CTL="$FAKES3 ctl --endpoint $URL --access-key $KEY --secret-key $SECRET"
cat >"$TMP/lv.py" <<'PY'
import os, sqlite3, subprocess
_loader = sqlite3.connect(":memory:")
_loader.enable_load_extension(True)
_loader.load_extension(os.environ["LV_EXT"])
def connect(uri, timeout=0.0):
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)
def one(db, sql, *args):
    return db.execute(sql, args).fetchone()[0]
def ctl(*args):  # fakes3 ctl, without the sanitizer runtime preloaded here (it has its own)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run(os.environ["LV_CTL"].split() + list(args), check=True, env=env,
                          stdout=subprocess.PIPE, text=True).stdout
PY
ctl() { $LV_CTL "$@" >/dev/null || fail "fakes3 ctl $*"; }
# The fault: every upload of an LTX file fails (lock.json, the lease, still works).
FAIL_LTX='error 503 SlowDown op=PutObject key=*.ltx'

repl() { echo "s3://replicas/$1?endpoint=$URL"; }
# Lease and retries short, so that a dead writer's lease expires and a failing store fails fast.
wuri() { echo "file:$1.db?vfs=litestream&write=1&buffer=$TMP/$1.wbuf&lease_ttl=2s&retry_timeout=1s${2:+&$2}&replica=$(repl "$1")"; }
ruri() { echo "file:$1.db?vfs=litestream&replica=$(repl "$1")"; }

count() { local n; n=$(grep -c "^$2" "$1" 2>/dev/null) || true; echo "${n:-0}"; } # FILE PREFIX: lines of the log
last() { sed -n "s/^$2 \([0-9]*\).*/\1/p" "$1" | tail -n1; } # FILE PREFIX: the last id
wait_log() { # FILE PREFIX N PID: until the log has N such lines (30 s at most; PID must live)
    local i
    for i in $(seq 300); do
        [ "$(count "$1" "$2")" -ge "$3" ] && return 0
        kill -0 "$4" 2>/dev/null || fail "the writer died" "$(cat "$1")"
        sleep 0.1
    done
    fail "the log never got $3 \"$2\" lines" "$(tail "$1")"
}
# check NAME LOG: vfs_writer check over the replica; sets ROWS
check() {
    local out
    out=$("$WRITER" check "$EXT" "$(ruri "$1")" --log "$2" 2>&1) || fail "$1: check" "$out"
    ROWS=$(sed -n 's/^ok \([0-9]*\) rows$/\1/p' <<<"$out")
    [ -n "$ROWS" ] || fail "$1: check" "$out"
}
# restart NAME LOG ARGS...: vfs_writer on the same buffer once the dead writer's lease expired
# (retried while the open says the database is locked, 15 s at most)
restart() {
    local n=$1 log=$2 i
    shift 2
    sleep 2.2
    for i in $(seq 30); do
        "$WRITER" "$EXT" "$(wuri "$n" sync_interval=-1)" --log "$log" "$@" >"$TMP/$n.re.out" 2>"$TMP/$n.re.err" && return 0
        grep -q "locked" "$TMP/$n.re.err" || fail "$n: the restarted writer failed" "$(cat "$TMP/$n.re.err")"
        sleep 0.5
    done
    fail "$n: the dead writer's lease never expired (lease_ttl=2s)" "$(cat "$TMP/$n.re.err")"
}
# l0 NAME [WANT_MAX]: level 0 is one file per TXID, consecutive from 1; ltxctl verify is happy
l0() {
    "$LTXCTL" verify "$(repl "$1")" >"$TMP/$1.verify.out" 2>"$TMP/$1.verify.err" ||
        fail "$1: ltxctl verify" "$(cat "$TMP/$1.verify.out")"
    "$LTXCTL" ls "$(repl "$1")" --level 0 --json >"$TMP/$1.ls.json" || fail "$1: ltxctl ls"
    "${PY[@]}" - "$TMP/$1.ls.json" "${2:-}" <<'PY' || fail "$1: level 0" "$(cat "$TMP/$1.ls.json")"
import json, sys
ids = [(int(f["min_txid"], 16), int(f["max_txid"], 16)) for f in json.load(open(sys.argv[1]))["files"]]
assert ids and all(a == b for a, b in ids), ids
got = sorted(a for a, _ in ids)
assert got == list(range(1, len(got) + 1)), "not one file per TXID from 1: %s" % got
if sys.argv[2]:
    assert got[-1] == int(sys.argv[2], 16), "newest %d, want %s" % (got[-1], sys.argv[2])
PY
}

# ---- kill -9 with unsynced commits; the restart ships them ------------------------------------
"$WRITER" "$EXT" "$(wuri c1 sync_interval=-1)" --log "$TMP/c1.log" --rate 100 --sync-every 10 \
    >"$TMP/c1.out" 2>"$TMP/c1.err" &
w=$!
PIDS+=("$w")
wait_log "$TMP/c1.log" synced 3 "$w"
ctl faults add "$FAIL_LTX"
wait_log "$TMP/c1.log" syncfail 2 "$w"
base=$(count "$TMP/c1.log" commit)
for _ in $(seq 100); do [ "$(count "$TMP/c1.log" commit)" -ge $((base + 5)) ] && break; sleep 0.05; done
kill -KILL "$w"
{ wait "$w"; } 2>/dev/null || true
ctl faults clear
synced=$(last "$TMP/c1.log" synced)
committed=$(last "$TMP/c1.log" commit)
[ "$committed" -gt $((synced + 10)) ] || fail "c1: too few unsynced commits to test ($synced synced, $committed committed)"
grep -q "litestream_sync().*\(503\|SlowDown\)" "$TMP/c1.err" ||
    fail "c1: a failing sync must fail litestream_sync() with a message naming the store's answer" "$(cat "$TMP/c1.err")"
[ -s "$TMP/c1.wbuf" ] || fail "c1: the killed writer's buffer is gone"
check c1 "$TMP/c1.log"
[ "$ROWS" = "$synced" ] || fail "c1: the replica holds $ROWS rows; acknowledged were $synced (nothing later was uploaded)"
pass "kill -9 with uploads failing: the replica holds exactly the $synced acknowledged rows, a prefix"
restart c1 "$TMP/c1.log" --count 5 --sync-every 5
check c1 "$TMP/c1.log"
[ "$ROWS" -ge $((committed + 5)) ] ||
    fail "c1: after the restart $ROWS rows; the killed writer had committed $committed, the restart 5 more"
[ "$ROWS" = "$(last "$TMP/c1.log" commit)" ] || fail "c1: $ROWS rows, the log's last commit is $(last "$TMP/c1.log" commit)"
[ ! -e "$TMP/c1.wbuf" ] || fail "c1: the buffer must be gone after the restart's clean close"
l0 c1
pass "a writer restarted on the buffer after the lease TTL ships the $((committed - synced)) unsynced commits: all $ROWS rows, one level-0 file per TXID"

# ---- kill -9 right after syncs: nothing acknowledged is lost (two rounds) ----------------------
for round in 1 2; do
    "$WRITER" "$EXT" "$(wuri c2)" --log "$TMP/c2.log" --sync-every 1 --pad 3000 \
        >"$TMP/c2.out" 2>"$TMP/c2.err" &
    w=$!
    PIDS+=("$w")
    wait_log "$TMP/c2.log" synced $((round * 15)) "$w"
    kill -KILL "$w"
    { wait "$w"; } 2>/dev/null || true
    check c2 "$TMP/c2.log"
    [ "$ROWS" -ge "$(last "$TMP/c2.log" synced)" ] || fail "c2: acknowledged rows lost"
    restart c2 "$TMP/c2.log" --count 3 --sync-every 1
    check c2 "$TMP/c2.log"
    [ "$ROWS" = "$(last "$TMP/c2.log" commit)" ] || fail "c2: $ROWS rows, the log's last commit is $(last "$TMP/c2.log" commit)"
done
l0 c2
pass "kill -9 while syncing after every commit (twice): every acknowledged row is there, and the restart's too ($ROWS rows)"

# ---- the same with the default buffer path (${TMPDIR}/litestream-vfs-<uid>/<hash>.wbuf) -------
du="file:c3.db?vfs=litestream&write=1&sync_interval=-1&lease_ttl=2s&replica=$(repl c3)"
"$WRITER" "$EXT" "$du" --log "$TMP/c3.log" --rate 100 --sync-every 10 >"$TMP/c3.out" 2>"$TMP/c3.err" &
w=$!
PIDS+=("$w")
wait_log "$TMP/c3.log" synced 2 "$w"
wait_log "$TMP/c3.log" commit $(($(count "$TMP/c3.log" commit) + 5)) "$w"
kill -KILL "$w"
{ wait "$w"; } 2>/dev/null || true
committed=$(last "$TMP/c3.log" commit)
bufs=$(find "$TMP/litestream-vfs-$(id -u)" -name '*.wbuf' 2>/dev/null)
[[ "$(basename "$bufs")" =~ ^[0-9a-f]{16}\.wbuf$ ]] ||
    fail "c3: the default buffer must be \$TMPDIR/litestream-vfs-<uid>/<16 hex>.wbuf" "$(find "$TMP" -name '*wbuf*')"
sleep 2.2
for i in $(seq 30); do
    "$WRITER" "$EXT" "$du" --log "$TMP/c3.log" --count 1 --sync-every 1 >"$TMP/c3.re.out" 2>"$TMP/c3.re.err" && break
    grep -q "locked" "$TMP/c3.re.err" || fail "c3: the restart" "$(cat "$TMP/c3.re.err")"
    sleep 0.5
done
check c3 "$TMP/c3.log"
[ "$ROWS" -ge $((committed + 1)) ] || fail "c3: $ROWS rows; the killed writer had committed $committed (default buffer path)"
[ ! -e "$bufs" ] || fail "c3: the default buffer must be gone after the restart's clean close"
pass "the default buffer path: a restart without buffer= finds the killed writer's $(basename "$bufs") and ships it ($ROWS rows)"

# ---- the buffer bound --------------------------------------------------------------------------
"${PY[@]}" - "$(wuri bb 'sync_interval=-1&buffer_max=256k')" "$FAIL_LTX" >"$TMP/bb.out" 2>"$TMP/bb.err" <<'PY' ||
import json, sqlite3, sys
from lv import connect, one, ctl
uri, rule = sys.argv[1:3]
w = connect(uri)
w.execute("create table t(id integer primary key, pad blob)")
assert one(w, "select litestream_sync()") == "0000000000000001"
ctl("faults", "add", rule)
n = 0
full = None
while n < 500:
    try:
        w.execute("insert into t values (?, randomblob(6000))", (n + 1,))
        n += 1
    except sqlite3.OperationalError as e:
        full = str(e)
        break
assert full is not None, "500 rows of 6 KB went into a 256 KiB buffer"
assert "full" in full, "want SQLITE_FULL, got: " + full
assert 2 < n < 100, "%d rows of 6 KB before SQLITE_FULL at 256 KiB" % n
try:
    w.execute("select litestream_sync()").fetchone()
    sys.exit("litestream_sync() succeeded with every upload failing")
except sqlite3.OperationalError as e:
    assert str(e), "a failed sync must say why"
    sync_msg = str(e)
assert one(w, "select count(*) from t") == n, "the failed insert left something"
st = json.loads(one(w, "select litestream_stats()"))["write"]
# (the failed statement's transaction is dropped whole: no pending transaction of its own)
assert st["sync_errors"] >= 1 and st["last_error"] and st["pending_txs"] == n, (n, st)
ctl("faults", "clear")
assert one(w, "select litestream_sync()") == "0000000000000002", "one file for the whole window"
for i in range(8):
    w.execute("insert into t values (?, randomblob(6000))", (n + 1 + i,))
assert one(w, "select litestream_sync()") == "0000000000000003"
print(n + 8, n + 1, sync_msg, sep="\n")
PY
    fail "buffer bound" "$(cat "$TMP/bb.out" "$TMP/bb.err")"
grep -q "LITESTREAM_BUFFER_MAX" "$TMP/bb.err" ||
    fail "the SQLITE_FULL of the buffer bound must be logged naming LITESTREAM_BUFFER_MAX" "$(cat "$TMP/bb.err")"
rows=$(head -n1 "$TMP/bb.out")
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri bb)" "select count(*), max(id), sum(length(pad)) from t" "pragma integrity_check") ||
    fail "bb: reader"
[ "$out" = "$(printf '%s\n' "$rows|$rows|$((rows * 6000))" ok)" ] || fail "bb: the reader" "$out"
l0 bb 3
pass "buffer_max=256k with uploads failing: insert $(sed -n 2p "$TMP/bb.out") fails with SQLITE_FULL (logged naming LITESTREAM_BUFFER_MAX); once the store is back one sync ships it all and writes go on"

# ---- lost responses to level-0 PUTs ------------------------------------------------------------
# (compaction off: the only LTX uploads are the level-0 files of the syncs)
ctl faults add 'lost-response op=PutObject key=lr/*.ltx nth=1' \
    'lost-response op=PutObject key=lr/*.ltx nth=3'
"${PY[@]}" - "$(wuri lr 'sync_interval=-1&compaction=off')" >"$TMP/lr.out" 2>"$TMP/lr.err" <<'PY' ||
import json, sqlite3, sys
from lv import connect, one, ctl
w = connect(sys.argv[1])
w.execute("create table t(id integer primary key, v)")
got = []
for i in range(8):
    w.execute("insert into t values (?, ?)", (i, "x" * i))
    try:
        got.append(one(w, "select litestream_sync()"))
    except sqlite3.OperationalError as e:  # a sync may fail once; the next carries the window
        got.append("failed: " + str(e))
ok = [int(t, 16) for t in got if not t.startswith("failed")]
assert got[-1] == "%016x" % ok[-1] and ok == sorted(set(ok)), got
assert json.loads(one(w, "select litestream_stats()"))["write"]["stopped"] == 0
rules = json.loads(ctl("--json", "faults", "list"))["rules"]
assert all(r["fired"] == 1 for r in rules), rules
print("%x" % ok[-1])
print(" ".join(got))
PY
    fail "lost responses" "$(cat "$TMP/lr.out" "$TMP/lr.err")"
ctl faults clear
lr_txid=$(head -n1 "$TMP/lr.out")
l0 lr "$lr_txid"
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri lr)" "select count(*), sum(length(v)) from t") || fail "lr: reader"
[ "$out" = "8|28" ] || fail "lr: the reader" "$out"
pass "lost responses to two level-0 PUTs: the writer carries on (syncs: $(sed -n 2p "$TMP/lr.out")); one file per TXID 1..$lr_txid"

# ---- a lost response the S3 client cannot settle (every retry fails) ---------------------------
# The upload of TXID 2 lands but its answer is lost, and the store fails every request on the file
# after it: the sync fails. The next sync (a bigger window) meets the stored file (412): it must
# recognise it as its own earlier upload and ship the rest as TXID 3. Then the same with the
# process killed in that state: the restart recognises it through the sync record.
rc=0
{ "${PY[@]}" - "$(wuri lu 'sync_interval=-1&compaction=off')" >"$TMP/lu.out" 2>"$TMP/lu.err" || rc=$?; } 2>/dev/null <<'PY'
import json, os, signal, sqlite3, sys
from lv import connect, one, ctl
w = connect(sys.argv[1])
w.execute("create table t(id integer primary key)")
assert one(w, "select litestream_sync()") == "0000000000000001"
def limbo(first_id):
    ctl("faults", "add", "lost-response op=PutObject key=lu/*.ltx nth=1",
        "error 503 SlowDown key=lu/*.ltx")
    w.execute("insert into t values (?)", (first_id,))
    try:
        w.execute("select litestream_sync()").fetchone()
        sys.exit("the sync succeeded although every retry failed")
    except sqlite3.OperationalError:
        pass
    rules = json.loads(ctl("--json", "faults", "list"))["rules"]
    assert [r["fired"] > 0 for r in rules] == [True, True], rules
    ctl("faults", "clear")
limbo(1)
w.execute("insert into t values (2)")
assert one(w, "select litestream_sync()") == "0000000000000003", "the stored TXID 2 is ours"
assert json.loads(one(w, "select litestream_stats()"))["write"]["stopped"] == 0
limbo(3)  # TXID 4 is stored, its answer lost; then the process dies
os.kill(os.getpid(), signal.SIGKILL)
PY
[ "$rc" = 137 ] || fail "lost response, unsettled (want the process killed: 137, got $rc)" "$(cat "$TMP/lu.out" "$TMP/lu.err")"
[ -s "$TMP/lu.wbuf" ] || fail "lu: the killed writer's buffer is gone"
sleep 2.2
for i in $(seq 30); do
    "${PY[@]}" - "$(wuri lu 'sync_interval=-1&compaction=off')" >"$TMP/lu2.out" 2>"$TMP/lu2.err" <<'PY' && break
import sys
from lv import connect, one
w = connect(sys.argv[1])
print(one(w, "select litestream_sync()"))
w.execute("insert into t values (4)")
print(one(w, "select litestream_sync()"))
PY
    grep -q "locked" "$TMP/lu2.err" || fail "lu: the restart" "$(cat "$TMP/lu2.out" "$TMP/lu2.err")"
    sleep 0.5
done
[ "$(cat "$TMP/lu2.out")" = "$(printf '%s\n' 0000000000000004 0000000000000005)" ] ||
    fail "lu: after the restart the stored TXID 4 must be recognised as the killed writer's" "$(cat "$TMP/lu2.out" "$TMP/lu2.err")"
! ls "$TMP"/lu.wbuf.orphaned-* >/dev/null 2>&1 || fail "lu: the buffer was set aside instead of reconciled" "$(cat "$TMP/lu2.err")"
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri lu)" "select group_concat(id) from t") || fail "lu: reader"
[ "$out" = "1,2,3,4" ] || fail "lu: the reader" "$out"
l0 lu 5
pass "a lost response the client could not settle: the next sync, and a restart after kill -9, recognise the stored file as theirs; TXIDs 1..5, nothing twice"

# ---- the store down at close: the buffer stays, the next open ships it -------------------------
"${PY[@]}" - "$(wuri dn sync_interval=-1)" >"$TMP/dn.out" 2>"$TMP/dn.err" <<'PY' ||
import sys
from lv import connect, one, ctl
w = connect(sys.argv[1])
w.execute("create table t(id integer primary key)")
w.executemany("insert into t values (?)", [(i,) for i in range(1, 11)])
assert one(w, "select litestream_sync()") == "0000000000000001"
w.execute("begin")
w.executemany("insert into t values (?)", [(i,) for i in range(11, 26)])
w.execute("commit")
w.execute("delete from t where id = 3")
ctl("faults", "add", "error 503 SlowDown")  # every request: the store is down
w.close()
print("closed")
PY
    fail "store down at close" "$(cat "$TMP/dn.out" "$TMP/dn.err")"
ctl faults clear
[ -s "$TMP/dn.wbuf" ] || fail "dn: a failed final sync must keep the buffer" "$(cat "$TMP/dn.err")"
grep -qF "$TMP/dn.wbuf" "$TMP/dn.err" || fail "dn: the failed final sync must be logged with the buffer's path" "$(cat "$TMP/dn.err")"
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri dn)" "select count(*) from t") || fail "dn: reader"
[ "$out" = 10 ] || fail "dn: before the next open the replica holds the synced 10 rows" "$out"
sleep 2.2 # the lease was not given back (the store was down): it expires
for i in $(seq 30); do
    "${PY[@]}" - "$(wuri dn sync_interval=-1)" >"$TMP/dn2.out" 2>"$TMP/dn2.err" <<'PY' && break
import sys
from lv import connect, one
w = connect(sys.argv[1])
print(one(w, "select litestream_sync()"))
print(one(w, "select count(*) from t"))
PY
    grep -q "locked" "$TMP/dn2.err" || fail "dn: the next open" "$(cat "$TMP/dn2.out" "$TMP/dn2.err")"
    sleep 0.5
done
[ "$(cat "$TMP/dn2.out")" = "$(printf '%s\n' 0000000000000002 24)" ] || fail "dn: the next open's sync" "$(cat "$TMP/dn2.out" "$TMP/dn2.err")"
out=$("$LTXVFS_BUILD_DIR/tests/vfs_query" "$EXT" "$(ruri dn)" "select count(*), sum(id) from t") || fail "dn: reader"
[ "$out" = "24|322" ] || fail "dn: after the next open's sync" "$out"
[ ! -e "$TMP/dn.wbuf" ] || fail "dn: the buffer must be gone once shipped and closed"
l0 dn 2
pass "the store down at close: the buffer is kept (logged with its path), and the next open ships it"

stop "$PID"
echo "$passed passed, 0 failed"
