# js/setup.sh: the AWS SDK for JavaScript for test_fakes3_compat_jssdk*.sh (sourced after
# tests/cli/fakes3/lib.sh and tests/cli/compat/lib.sh). js_install copies package.json and
# package-lock.json (beside this file; exact versions) to $LTXVFS_BUILD_DIR/compat-js and runs
# npm ci there, with npm's cache in $LTXVFS_BUILD_DIR/npm-cache, bounded to 5 minutes; when that
# folder already holds an install of the same lock file (a stamp with its SHA-256), it installs
# nothing, so a second run needs no network. An flock serialises concurrent tests. js_suite PART
# runs suite.cjs (live or multipart) against $URL with node in a clean environment.
JS_DIR="$LTXVFS_BUILD_DIR/compat-js"

js_install() {
    cenv sh -c 'command -v node && command -v npm' >/dev/null ||
        fail "needs node and npm in /usr/bin (Debian: nodejs, npm; scripts/bootstrap.sh installs them)"
    mkdir -p "$JS_DIR"
    local lock_sum rc=0
    lock_sum=$(sha256sum "$COMPAT/js/package-lock.json" | cut -d' ' -f1)
    (
        flock 9
        if [ "$(cat "$JS_DIR/node_modules/.ltxvfs-lock-sha256" 2>/dev/null)" = "$lock_sum" ] &&
            [ -d "$JS_DIR/node_modules/@aws-sdk/client-s3" ]; then
            exit 0
        fi
        cp "$COMPAT/js/package.json" "$COMPAT/js/package-lock.json" "$JS_DIR/"
        echo "# npm ci in $JS_DIR"
        (cd "$JS_DIR" && timeout 300 npm ci --no-audit --no-fund --prefer-offline \
            --loglevel=error --cache "$LTXVFS_BUILD_DIR/npm-cache") >"$TMP/npm.err" 2>&1 ||
            exit 1
        echo "$lock_sum" >"$JS_DIR/node_modules/.ltxvfs-lock-sha256"
    ) 9>"$JS_DIR.lock" || rc=$?
    [ "$rc" -eq 0 ] || fail "npm ci of tests/cli/compat/js failed (status $rc)" "$(tail -n 30 "$TMP/npm.err")"
}

js_suite() {
    local rc=0 line
    cenv NODE_PATH="$JS_DIR/node_modules" node "$COMPAT/js/suite.cjs" "$URL" "$KEY" "$SECRET" "$1" \
        >"$TMP/js.out" 2>"$TMP/js.err" || rc=$?
    # The suite's cases count as this test's own: each "ok N - WHAT" becomes a pass here.
    while IFS= read -r line; do
        case "$line" in "ok "*) pass "js: ${line#* - }" ;; esac
    done <"$TMP/js.out"
    [ "$rc" -eq 0 ] || fail "suite.cjs $1 failed against $URL (status $rc)" "$(cat "$TMP/js.err")"
}
