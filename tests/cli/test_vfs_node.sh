#!/usr/bin/env bash
# test_vfs_node: the litestream VFS from Node.js with better-sqlite3 (npm, pinned by the lock file
# in tests/cli/node/, built from source against the system's Node.js headers by npm ci into the
# build folder; later runs reuse the install). better-sqlite3 has no URI filenames and no VFS
# option, so the extension is loaded with LITESTREAM_VFS_DEFAULT=1 and the replica comes from
# LITESTREAM_REPLICA_URL. The replica is the shared LTX vectors laid out in a fakes3; the answers
# must equal plain SQLite's on db-txid3.db, and a write must fail SQLITE_READONLY.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
: "${LTXVFS_SOURCE_DIR:?}" "${LTXVFS_TESTDATA:?}"
EXT="$LTXVFS_BUILD_DIR/litestream-vfs"
NODE_SRC="$LTXVFS_SOURCE_DIR/tests/cli/node"
NODE_DIR="$LTXVFS_BUILD_DIR/vfs-node"
V="$LTXVFS_TESTDATA/ltx"
NODE=(node)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    NODE=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" node)
fi
command -v node >/dev/null && command -v npm >/dev/null ||
    fail "needs node and npm (Debian: nodejs npm libnode-dev; scripts/bootstrap.sh installs them)"

# better-sqlite3, built from source: its prebuilt binaries would come from GitHub, which is not
# reachable; node-gyp compiles against the headers of the installed Node.js (npm_config_nodedir).
mkdir -p "$NODE_DIR"
lock_sum=$(sha256sum "$NODE_SRC/package-lock.json" | cut -d' ' -f1)
nodedir=$(dirname "$(dirname "$(command -v node)")")
[ -f "$nodedir/include/node/node.h" ] || nodedir=/usr
[ -f "$nodedir/include/node/node.h" ] ||
    fail "no Node.js headers in $nodedir/include/node (Debian: libnode-dev)"
(
    flock 9
    if [ "$(cat "$NODE_DIR/node_modules/.ltxvfs-lock-sha256" 2>/dev/null)" = "$lock_sum" ] &&
        [ -f "$NODE_DIR/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
        exit 0
    fi
    cp "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && env -u LD_PRELOAD npm_config_nodedir="$nodedir" timeout 900 npm ci \
        --no-audit --no-fund --loglevel=error --cache "$LTXVFS_BUILD_DIR/npm-cache") \
        >"$TMP/npm.err" 2>&1 || exit 1
    echo "$lock_sum" >"$NODE_DIR/node_modules/.ltxvfs-lock-sha256"
) 9>"$NODE_DIR.lock" || fail "npm ci of better-sqlite3 failed" "$(tail -n 30 "$TMP/npm.err")"
pass "better-sqlite3 $(cd "$NODE_DIR" && node -p 'require("better-sqlite3/package.json").version') built for node $(node --version)"

start s3 --bucket replicas
for f in "snapshot-txid1 0009 0000000000000001-0000000000000001" \
    "incr-txid2 0000 0000000000000002-0000000000000002" "incr-txid3 0000 0000000000000003-0000000000000003"; do
    set -- $f
    req 200 -T "$V/$1.ltx" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$URL/replicas/db/$2/$3.ltx"
done

cat >"$TMP/queries.sql" <<'SQL'
select count(*), sum(qty), printf('%.2f', sum(price)) from items;
select id, name, qty, printf('%.3f', price), hex(payload), note from items where id = 105;
select id, name from items where id between 480 and 520 order by id;
select name, count(*), max(qty) from items group by name order by name limit 20;
pragma integrity_check;
SQL
command sqlite3 "$V/db-txid3.db" <"$TMP/queries.sql" >"$TMP/want.txt"
printf '%s\n' "txid 0000000000000003" "write: SQLITE_READONLY" >>"$TMP/want.txt"

env NODE_PATH="$NODE_DIR/node_modules" LITESTREAM_VFS_DEFAULT=1 \
    LITESTREAM_REPLICA_URL="s3://replicas/db?endpoint=$URL" AWS_ACCESS_KEY_ID="$KEY" \
    AWS_SECRET_ACCESS_KEY="$SECRET" AWS_REGION="$REGION" \
    "${NODE[@]}" "$LTXVFS_SOURCE_DIR/tests/cli/node/query.cjs" "$EXT" "$TMP/queries.sql" \
    >"$TMP/node.txt" 2>"$TMP/node.err" || fail "node failed" "$(cat "$TMP/node.err")"
diff -u "$TMP/want.txt" "$TMP/node.txt" >&2 || fail "better-sqlite3's answers differ from local SQLite's"
pass "better-sqlite3 reads the replica off fakes3 exactly as local SQLite reads the file; writes fail read-only"
stop "$PID"
echo "$passed passed, 0 failed"
