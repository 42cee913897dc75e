#!/usr/bin/env bash
# test_vfs_timetravel: PRAGMA litestream_time and litestream_set_time() through the sqlite3 CLI.
# A replica of four states of one database, one second apart (tests/tools/mkreplica: a snapshot,
# then level-0 files with chained checksums; the last state shrinks the file): every point in
# time returns exactly that state's rows, 'latest' comes back, relative times and offsets work,
# a time before the first state fails with a message, and writes stay refused.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"

EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
MK="$LTXVFS_BUILD_DIR/tests/mkreplica"
SQLITE=(sqlite3)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    SQLITE=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" sqlite3)
fi

command sqlite3 s1.db "pragma page_size=1024; create table t(x); insert into t select value from generate_series(1,100);"
cp s1.db s2.db && command sqlite3 s2.db "insert into t select value from generate_series(101,300)"
cp s2.db s3.db && command sqlite3 s3.db "update t set x = -x where x % 7 = 0"
cp s3.db s4.db && command sqlite3 s4.db "delete from t where abs(x) > 50; vacuum"
[ "$(stat -c %s s4.db)" -lt "$(stat -c %s s3.db)" ] || fail "the last state should be smaller"
# 2026-01-01T00:00:00Z, then one second apart
"$MK" --time 1767225600000 --step 1000 rep s1.db s2.db s3.db s4.db
answer() { command sqlite3 "$1" "select count(*), sum(x) from t"; }

vfs() { # SQL...: runs through the VFS on the replica, one statement per argument
    { echo ".load $EXT"; echo ".open file:db?vfs=litestream&replica=file://$TMP/rep"
      for s in "$@"; do echo "$s;"; done; } | "${SQLITE[@]}" 2>&1
}

out=$(vfs "select litestream_txid(), count(*), sum(x) from t")
[ "$out" = "0000000000000004|$(answer s4.db)" ] || fail "latest" "$out"
pass "latest is state 4"

for k in 1 2 3 4; do
    at=$(printf '2026-01-01T00:00:0%d.500Z' $((k - 1)))
    out=$(vfs "pragma litestream_time = '$at'" "select litestream_txid(), count(*), sum(x) from t" \
        "pragma litestream_time")
    # setting the pragma answers with the time it set (one row, so every binding sees a result)
    want=$(printf '%s\n%s\n%s' "$at" "000000000000000$k|$(answer s$k.db)" "$at")
    [ "$out" = "$want" ] || fail "litestream_time $at" "want:" "$want" "got:" "$out"
done
pass "each point in time returns exactly that state's rows, and litestream_time reads it back"

out=$(vfs "pragma litestream_time = '2026-01-01T02:00:01+02:00'" "select litestream_txid() from t limit 1")
[ "$out" = "$(printf '2026-01-01T00:00:01.000Z\n0000000000000002')" ] || fail "an offset time" "$out"
out=$(vfs "select litestream_set_time('2026-01-01 00:00:02Z')" "select litestream_txid(), count(*), sum(x) from t" \
    "select litestream_set_time('LATEST')" "select litestream_txid() from t limit 1")
latest=$(vfs "pragma litestream_time")
[ "$out" = "$(printf '%s\n%s\n%s\n%s' 2026-01-01T00:00:02.000Z "0000000000000003|$(answer s3.db)" "$latest" 0000000000000004)" ] ||
    fail "litestream_set_time and LATEST" "$out"
out=$(vfs "pragma litestream_time = '1 minute ago'" "select litestream_txid() from t limit 1")
[ "$(tail -n 1 <<<"$out")" = "0000000000000004" ] || fail "a relative time after the last state" "$out"
pass "offsets, litestream_set_time(), 'latest' and relative times"

out=$(vfs "pragma litestream_time = '2025-12-31T23:59:59Z'" || true)
grep -q "litestream_time 2025-12-31T23:59:59.000Z: .*" <<<"$out" || fail "too old: want a message" "$out"
out=$(vfs "pragma litestream_time = '2026-01-01T00:00:00.5Z'" "delete from t" || true)
grep -q "readonly" <<<"$out" || fail "writes while viewing the past must fail read-only" "$out"
pass "a time before the first state fails with a message; the past is read-only"

echo "$passed passed, 0 failed"
