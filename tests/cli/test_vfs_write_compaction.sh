#!/usr/bin/env bash
# test_vfs_write_compaction: a simulated day of write mode. A writer commits and syncs continuously
# for ~25 s against a real fakes3 with its compaction intervals shortened (L1 every 1 s, L2 3 s,
# L3 6 s, a snapshot every 8 s, snapshots kept 12 s, compacted level-0 files kept 1 s): the files
# a reader lists at open stay bounded (far fewer than the syncs made), time travel to moments
# the replica still covers (after its oldest snapshot; at level-1 granularity once level 0 is
# gone, so the moments are the ends of pauses longer than the L1 interval) gives exactly the rows
# committed then, a fresh reader and `ltxctl restore` give the writer's final state, and
# `ltxctl verify` accepts the replica.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
PY=(/usr/bin/python3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    PY=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" /usr/bin/python3)
fi
# ltxctl carries its own sanitizer runtime in sanitizer builds: never the preloaded one
LTX=(env -u LD_PRELOAD "$LTXCTL")

start s3 --memory --bucket day
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
REP="s3://day/app?endpoint=$URL"

"${PY[@]}" - "$EXT" "$REP" "$TMP" >writer.out 2>writer.err <<'PY' || fail "the writer failed" "$(cat writer.out writer.err)"
import json, sqlite3, sys, time, urllib.parse
ext, rep, tmp = sys.argv[1:4]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
q = urllib.parse.quote(rep, safe="")
opts = ("write=1&sync_interval=100ms&l1_interval=1s&l2_interval=3s&l3_interval=6s"
        "&snapshot_interval=8s&retention=12s&l0_retention=1s&buffer=%s/app.wbuf" % tmp)
db = sqlite3.connect("file:app.db?vfs=litestream&%s&replica=%s" % (opts, q), uri=True,
                     isolation_level=None)
db.execute("create table t(id integer primary key, v text)")
marks = []  # (time in the middle of a pause, rows committed then)
n, syncs, start = 0, 0, time.time()
while time.time() - start < 25:
    for _ in range(5):
        n += 1
        db.execute("insert into t(v) values (?)", ("row %d" % n,))
    db.execute("select litestream_sync()")
    syncs += 1
    if syncs % 40 == 0:  # a quiet moment, covered by a level-1 file before it ends
        time.sleep(2.2)
        marks.append((time.time(), n))
    time.sleep(0.02)
stats = json.loads(db.execute("select litestream_stats()").fetchone()[0])["write"]
db.close()
json.dump({"rows": n, "syncs": syncs, "marks": marks, "stats": stats}, open(tmp + "/day.json", "w"))
print("rows", n, "syncs", syncs, "compactions", stats["compactions"])
PY
cat writer.out
rows=$(python3 -c "import json; print(json.load(open('day.json'))['rows'])")
syncs=$(python3 -c "import json; print(json.load(open('day.json'))['syncs'])")
errs=$(python3 -c "import json; s=json.load(open('day.json'))['stats']; print(s['compaction_errors'], s['sync_errors'])")
[ "$syncs" -gt 200 ] || fail "only $syncs syncs in the simulated day"
[ "$errs" = "0 0" ] || fail "compaction/sync errors: $errs" "$(cat writer.err)"

"${LTX[@]}" ls "$REP" >ls.out 2>&1 || fail "ltxctl ls" "$(cat ls.out)"
files=$(grep -cE '^[0-9]+ +[0-9a-f]{16}' ls.out || true)
l0=$(grep -cE '^0 +[0-9a-f]{16}' ls.out || true)
for l in 1 2 3 9; do
    grep -qE "^$l +[0-9a-f]{16}" ls.out || fail "no level-$l file after the simulated day" "$(cat ls.out)"
done
# ~25 syncs a second: level 0 holds what the last L1 interval and the L0 retention (1 s + 1 s)
# have not removed yet; without compaction there would be one file per sync
[ "$files" -lt $((syncs / 5)) ] && [ "$l0" -lt 100 ] ||
    fail "$files files ($l0 at level 0) listed after $syncs syncs: not bounded" "$(cat ls.out)"
pass "after $syncs syncs the replica lists $files files ($l0 at level 0), every level present"

# time travel inside the retention window (the marks of the last 10 s), and the final state
"${PY[@]}" - "$EXT" "$REP" "$TMP" >reader.out 2>reader.err <<'PY' || fail "the reader failed" "$(cat reader.out reader.err)"
import datetime, json, sqlite3, sys, time, urllib.parse
ext, rep, tmp = sys.argv[1:4]
day = json.load(open(tmp + "/day.json"))
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
db = sqlite3.connect("file:r.db?vfs=litestream&replica=" + urllib.parse.quote(rep, safe=""),
                     uri=True, isolation_level=None)
final = db.execute("select count(*), max(id) from t").fetchone()
assert final == (day["rows"], day["rows"]), (final, day["rows"])
oldest = min(datetime.datetime.fromisoformat(l.split()[4].replace("Z", "+00:00")).timestamp()
             for l in open(tmp + "/ls.out") if l.startswith("9 "))
checked = 0
for t, n in day["marks"]:
    if t < oldest:  # before the oldest snapshot kept: the replica no longer has that state
        iso = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()
        try:
            db.execute("select litestream_set_time(?)", (iso,))
            got = db.execute("select count(*) from t").fetchone()[0]
            assert got == n, ("before retention, a wrong answer", iso, got, n)
        except sqlite3.OperationalError as e:
            assert "no state" in str(e), e
        continue
    iso = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()
    db.execute("select litestream_set_time(?)", (iso,))
    got = db.execute("select count(*) from t").fetchone()[0]
    assert got == n, ("at", iso, "got", got, "want", n)
    checked += 1
db.execute("select litestream_set_time('latest')")
assert checked >= 1, ("no mark after the oldest snapshot", oldest, day["marks"])
print("ok", checked)
PY
pass "time travel inside retention: $(cat reader.out); a fresh reader sees all $rows rows"

"${LTX[@]}" restore "$REP" -o restored.db >restore.out 2>&1 || fail "ltxctl restore" "$(cat restore.out)"
got=$(command sqlite3 restored.db "pragma integrity_check; select count(*), max(id), sum(length(v)) from t" | tr '\n' ' ')
want="ok $rows|$rows|$("${PY[@]}" -c "print(sum(len('row %d' % i) for i in range(1, $rows + 1)))") "
[ "$got" = "$want" ] || fail "restored: $got, want $want"
pass "ltxctl restore gives the writer's final state"
"${LTX[@]}" verify "$REP" >verify.out 2>&1 || fail "ltxctl verify" "$(cat verify.out)"
pass "ltxctl verify accepts every file"
[ ! -e "$TMP/app.wbuf" ] || fail "the write buffer was left after a clean close"
pass "no write buffer left after a clean close"
stop "$PID"
echo "$passed passed, 0 failed"
