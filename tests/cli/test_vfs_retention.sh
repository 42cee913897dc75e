#!/usr/bin/env bash
# test_vfs_retention: a reader outlives the files it opened on. Litestream (and ltxctl compact)
# compacts level 0 into level 1 and then deletes the level-0 files; a reader whose page map still
# points at them must go on answering: the poller moves the newest map to the compaction when it
# sees it, and a read whose file is gone rebuilds its map at its own TXID (same pages, other
# files), even inside a read transaction, which keeps its TXID throughout.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
MK="$LTXVFS_BUILD_DIR/tests/mkreplica"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
PY=(/usr/bin/python3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    PY=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" /usr/bin/python3)
fi

command sqlite3 s1.db "pragma page_size=1024; create table t(x, pad); insert into t select value, randomblob(300) from generate_series(1,2000);"
for k in 2 3 4; do
    cp "s$((k - 1)).db" "s$k.db"
    command sqlite3 "s$k.db" "update t set x = x + 1 where x % $k = 0"
done
"$MK" rep s1.db s2.db s3.db s4.db
want=$(command sqlite3 s4.db "select count(*), sum(x), sum(length(pad)) from t")

"${PY[@]}" - "$EXT" "$TMP" "$LTXCTL" "$want" >out.txt 2>err.txt <<'PY' ||
import glob, os, sqlite3, subprocess, sys, time
ext, tmp, ltxctl, want = sys.argv[1:5]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
uri = "file:r.db?vfs=litestream&replica=file://%s/rep&poll_interval=100ms&cache_size=8k" % tmp
q = "select count(*), sum(x), sum(length(pad)) from t"
fmt = lambda r: "|".join(str(v) for v in r)
reader = sqlite3.connect(uri, uri=True, isolation_level=None)
reader.execute("begin")
txid = reader.execute("select litestream_txid()").fetchone()[0]
first = fmt(reader.execute(q).fetchone())
# compaction, then retention: the level-0 files go
# (ltxctl carries its own sanitizer runtime in sanitizer builds: not the one preloaded here)
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
subprocess.run([ltxctl, "compact", "file://%s/rep" % tmp, "--level", "1"], check=True,
               stdout=subprocess.DEVNULL, env=env)
assert glob.glob(tmp + "/rep/ltx/1/*.ltx"), "no level-1 file"
for f in glob.glob(tmp + "/rep/ltx/0/*.ltx"):
    os.remove(f)
# the open read transaction: its files are gone, its pages are not all cached (8 KiB)
during = fmt(reader.execute(q).fetchone())
txid_during = reader.execute("select litestream_txid()").fetchone()[0]
reader.execute("commit")
after = fmt(reader.execute(q).fetchone())
other = sqlite3.connect(uri, uri=True)
fresh = fmt(other.execute(q).fetchone())
print(first == want, during == want, txid_during == txid, after == want, fresh == want)
PY
    fail "the reader failed" "$(cat out.txt err.txt)"
[ "$(cat out.txt)" = "True True True True True" ] || fail "answers after retention" "$(cat out.txt err.txt)"
pass "a read transaction whose level-0 files were compacted and deleted keeps its TXID and answers"
echo "$passed passed, 0 failed"
