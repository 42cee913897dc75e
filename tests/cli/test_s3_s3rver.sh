#!/bin/bash
# test_s3_s3rver: our S3 client (lib/s3.c through build/tests/s3probe) against s3rver, an
# independent S3 implementation (npm, Node), so that the client is not only right against the
# server written beside it. s3rver is installed as bench/bench_fakes3 installs it: `npm ci` of the
# pinned bench/s3rver/package-lock.json, here into $LTXVFS_BUILD_DIR/test-s3rver (redone only when
# the lock file changes). s3rver checks the access key (S3RVER) but not SigV4 signatures (the
# botocore test covers those), and it does not do conditional writes; so this test covers PUT,
# GET (whole, ranges), HEAD metadata, listings (prefix, start-after, past 1000 keys, several
# prefixes), DeleteObjects, DELETE, multipart upload, odd keys, and the error categories.
#
# s3rver quirks seen here (not our client's): a multipart ETag without "-N"; DeleteObjects trims
# a key's trailing space (so that key is deleted with DELETE instead).
set -u
. "$(dirname "$0")/fakes3/lib.sh"

PROBE="$LTXVFS_BUILD_DIR/tests/s3probe"
[ -x "$PROBE" ] || fail "no $PROBE (build the s3probe target)"
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR}"
SRC="$LTXVFS_SOURCE_DIR/bench/s3rver"
PREFIX="$LTXVFS_BUILD_DIR/test-s3rver"
command -v node >/dev/null && command -v npm >/dev/null || fail "needs node and npm (Debian: nodejs npm)"

# ---- install (npm ci of the lock file) ----
sum=$(sha256sum "$SRC/package-lock.json" | cut -d' ' -f1)
JS="$PREFIX/node_modules/s3rver/bin/s3rver.js"
if [ "$(cat "$PREFIX/node_modules/.ltxvfs-lock-sha256" 2>/dev/null)" != "$sum" ] || [ ! -f "$JS" ]; then
    mkdir -p "$PREFIX"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$PREFIX/"
    (cd "$PREFIX" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error \
        --cache "$PREFIX/npm-cache" >npm.log 2>&1) ||
        fail "npm ci of s3rver failed" "$(tail -n 20 "$PREFIX/npm.log")"
    echo "$sum" >"$PREFIX/node_modules/.ltxvfs-lock-sha256"
fi
[ -f "$JS" ] || fail "no $JS after npm ci"

# ---- start s3rver on a free port ----
mkdir -p "$TMP/s3rver"
# s3rver's continuation tokens use DES: Node 17+ has it only in OpenSSL's legacy provider
node --openssl-legacy-provider "$JS" -d "$TMP/s3rver" -a 127.0.0.1 -p 0 --silent \
    --configure-bucket test-bucket >"$TMP/s3rver.out" 2>"$TMP/s3rver.err" &
S3RVER_PID=$!
PIDS+=("$S3RVER_PID")
for i in $(seq 300); do
    grep -q 'listening on' "$TMP/s3rver.out" 2>/dev/null && break
    kill -0 "$S3RVER_PID" 2>/dev/null || fail "s3rver exited at start" "$(cat "$TMP/s3rver.err")"
    sleep 0.05
done
EP="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$TMP/s3rver.out")"
[ "$EP" != "http://" ] || fail "s3rver did not start in 15 s" "$(cat "$TMP/s3rver.out")"

probe() {
    "$PROBE" --endpoint "$EP" --bucket test-bucket --access-key S3RVER --secret-key S3RVER \
        "$@" >"$TMP/out" 2>"$TMP/perr" || fail "s3probe $* failed" "$(cat "$TMP/perr")"
}
# probe_fails ERR ARGS...: s3probe must fail with err=ERR.
probe_fails() {
    local want=$1
    shift
    if "$PROBE" --endpoint "$EP" --bucket test-bucket "$@" >"$TMP/out" 2>"$TMP/perr"; then
        fail "s3probe $* succeeded"
    fi
    grep -q "err=$want" "$TMP/perr" || fail "s3probe $*: want $want" "$(cat "$TMP/perr")"
}

# ---- put, get, ranges, head ----
printf 'hello, independent server' >"$TMP/small"
probe put "dir/obj" "$TMP/small" --md5 --meta "litestream-timestamp=2026-11-21T09:00:00Z"
probe get "dir/obj"
cmp -s "$TMP/out" "$TMP/small" || fail "whole GET differs"
probe get "dir/obj" 7 11
[ "$(cat "$TMP/out")" = "independent" ] || fail "GET bytes 7-17: '$(cat "$TMP/out")'"
probe get "dir/obj" 19 end
[ "$(cat "$TMP/out")" = "server" ] || fail "GET from 19 to the end: '$(cat "$TMP/out")'"
probe head "dir/obj"
grep -qx 'size=25' "$TMP/out" && grep -qx 'meta-litestream-timestamp=2026-11-21T09:00:00Z' "$TMP/out" ||
    fail "HEAD" "$(cat "$TMP/out")"
pass "PUT (Content-MD5, metadata), GET whole and ranges, HEAD"

# ---- odd keys ----
KEYS=("with space" "ünïcødé/ファイル" "plus+eq=amp&q?hash#pct%" "tilde~star*(paren)'!,;:@\$")
for k in "${KEYS[@]}" "trailing "; do
    printf '%s' "$k" >"$TMP/k"
    probe put "$k" "$TMP/k"
    probe get "$k"
    cmp -s "$TMP/out" "$TMP/k" || fail "GET of '$k' differs"
    probe list "$k"
    [ "$(head -n1 "$TMP/out" | cut -f1)" = "$k" ] || fail "list of '$k'" "$(cat "$TMP/out")"
done
probe delete-keys "${KEYS[@]}"
probe delete "trailing "
probe list ""
[ "$(cut -f1 "$TMP/out")" = "dir/obj" ] || fail "after deleting the odd keys" "$(cat "$TMP/out")"
pass "keys with spaces, unicode and reserved characters"

# ---- listings ----
probe put-many "many/" 1100
probe put-many "few/" 5
probe list "many/"
[ "$(wc -l <"$TMP/out")" -eq 1100 ] || fail "list of 1100 keys gave $(wc -l <"$TMP/out")"
[ "$(head -n1 "$TMP/out" | cut -f1)" = "many/00000" ] && [ "$(tail -n1 "$TMP/out" | cut -f1)" = "many/01099" ] ||
    fail "list order"
probe list "many/" "many/01050"
[ "$(wc -l <"$TMP/out")" -eq 49 ] || fail "start-after gave $(wc -l <"$TMP/out")"
probe list-many "many/" "few/" "none/"
[ "$(grep -c $'^0\t' "$TMP/out")" -eq 1100 ] && [ "$(grep -c $'^1\t' "$TMP/out")" -eq 5 ] ||
    fail "list-many"
pass "LIST: prefix, start-after, 1100 keys (two pages), several prefixes at once"

# ---- delete ----
mapfile -t MANY < <(for n in $(seq 0 1099); do printf 'many/%05d\n' "$n"; done)
probe delete-keys "${MANY[@]}" "few/00000"
probe list ""
[ "$(wc -l <"$TMP/out")" -eq 5 ] || fail "after DeleteObjects of 1101 keys" "$(cat "$TMP/out")"
probe delete "dir/obj"
probe_fails ENOTFOUND --access-key S3RVER --secret-key S3RVER get "dir/obj"
pass "DeleteObjects (two batches), DELETE, and a missing key is ENOTFOUND"

# ---- multipart ----
head -c 13000000 /dev/urandom >"$TMP/big"
probe put "big/object" "$TMP/big" --md5
probe get "big/object"
cmp -s "$TMP/out" "$TMP/big" || fail "multipart object read back differs"
probe get "big/object" 5242870 20
cmp -s "$TMP/out" <(tail -c +5242871 "$TMP/big" | head -c 20) || fail "range across parts"
pass "multipart upload of 13 MB (3 parts) reads back identical"

# ---- errors ----
probe_fails EACCESS --access-key WRONG --secret-key S3RVER get "few/00001"
probe_fails ENOTFOUND --access-key S3RVER --secret-key S3RVER --bucket no-such-bucket list ""
pass "a wrong access key is EACCESS, a missing bucket ENOTFOUND"

kill -TERM "$S3RVER_PID"
wait "$S3RVER_PID" 2>/dev/null || true
echo "$passed passed"
