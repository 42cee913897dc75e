#!/usr/bin/env bash
# test_examples: every program in examples/ (C, Python, Node with better-sqlite3, Go with
# mattn/go-sqlite3) built as its README says and run against a real fakes3, writers and readers
# crossed. The C writer starts a new database in an empty replica; every reader (all four
# languages) must then print exactly what the test derives from `ltxctl restore` of the replica:
# the TXID, every note, every mark, and for each mark a time-travelled count equal to the count
# the writer recorded (3 after the first writer's first batch, 5 more per writer). Then the Python,
# Node and Go writers add theirs in turn (each one's TXIDs continue the last), and all four readers
# are checked again. A second writer while one holds the lease fails with "database is locked".
#
# Needs: cc and pkg-config (libsqlite3-dev), /usr/bin/python3, node + npm + the Node headers
# (better-sqlite3 is built from source into $LTXVFS_BUILD_DIR/vfs-node, shared with
# test_vfs_node.sh), go + golang-github-mattn-go-sqlite3-dev (built offline against the Debian
# source). scripts/bootstrap.sh installs them all.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
: "${LTXVFS_SOURCE_DIR:?}"
EX="$LTXVFS_SOURCE_DIR/examples"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
[ -f "$LTXVFS_BUILD_DIR/litestream-vfs.so" ] || fail "no $LTXVFS_BUILD_DIR/litestream-vfs.so"
[ -x "$LTXCTL" ] || fail "no $LTXCTL"
for c in cc pkg-config sqlite3 node npm go; do
    command -v "$c" >/dev/null || fail "needs $c (scripts/bootstrap.sh installs it)"
done
[ -x /usr/bin/python3 ] || fail "needs /usr/bin/python3"

# A sanitized extension needs the sanitizer runtime preloaded in every process that loads it (none
# of the example programs is built with the sanitizers).
RUN=(env)
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    RUN=(env LD_PRELOAD="$LTXVFS_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0")
fi

# --- build each example as its README says --------------------------------------------------
cc -std=c11 -Wall -Wextra -Werror -O2 -o "$TMP/c_example" "$EX/c/litestream_example.c" \
    $(pkg-config --cflags --libs sqlite3) 2>"$TMP/cc.err" || fail "the C example does not build" "$(cat "$TMP/cc.err")"
pass "C example built with cc and pkg-config sqlite3"

[ -d /usr/share/gocode/src/github.com/mattn/go-sqlite3 ] ||
    fail "no /usr/share/gocode/src/github.com/mattn/go-sqlite3 (Debian: golang-github-mattn-go-sqlite3-dev)"
cp -r "$EX/go" "$TMP/go-src" # go may touch go.mod / go.sum: never in the source tree
(cd "$TMP/go-src" && env -u LD_PRELOAD GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    GOCACHE="$LTXVFS_BUILD_DIR/go-cache" GOPATH="$TMP/gopath" \
    go build -o "$TMP/go_example" .) >"$TMP/go.err" 2>&1 ||
    fail "the Go example does not build offline" "$(cat "$TMP/go.err")"
pass "Go example built offline against Debian's mattn/go-sqlite3 ($(go version | cut -d' ' -f3))"

# better-sqlite3, built from source as test_vfs_node.sh does, into the same folder (whichever test
# comes first installs it; the lock file's hash says whether an install is current).
NODE_SRC="$LTXVFS_SOURCE_DIR/tests/cli/node"
NODE_DIR="$LTXVFS_BUILD_DIR/vfs-node"
mkdir -p "$NODE_DIR"
lock_sum=$(sha256sum "$NODE_SRC/package-lock.json" | cut -d' ' -f1)
nodedir=$(dirname "$(dirname "$(command -v node)")")
[ -f "$nodedir/include/node/node.h" ] || nodedir=/usr
[ -f "$nodedir/include/node/node.h" ] || fail "no Node.js headers in $nodedir/include/node (Debian: libnode-dev)"
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
pass "better-sqlite3 ready in $NODE_DIR"

# --- the replica -----------------------------------------------------------------------------
start s3 --bucket examples
export LITESTREAM_REPLICA_URL="s3://examples/app?endpoint=$URL"
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export LTXVFS_EXTENSION="$LTXVFS_BUILD_DIR/litestream-vfs"
export TMPDIR="$TMP" # the writers' default buffer path lands in the scratch folder
export NODE_PATH="$NODE_DIR/node_modules"

# example LANG ARGS...: run one example program; its stdout in $TMP/out, stderr in $TMP/LANG.err
example() {
    local lang=$1
    shift
    local cmd
    case $lang in
    c) cmd=("$TMP/c_example") ;;
    python) cmd=(/usr/bin/python3 "$EX/python/litestream_example.py") ;;
    node) cmd=(node "$EX/node/litestream_example.cjs") ;;
    go) cmd=("$TMP/go_example") ;;
    esac
    "${RUN[@]}" "${cmd[@]}" "$@" >"$TMP/out" 2>"$TMP/$lang.err"
}

LAST_TXID=0
# write LANG: the LANG writer adds its notes; its two TXIDs must continue the replica's
write() {
    example "$1" writer "$1" || fail "the $1 writer failed" "$(cat "$TMP/out")" "$(cat "$TMP/$1.err")"
    local want
    want=$(printf '%s: 3 notes durable at TXID %016x\n%s: 5 notes durable at TXID %016x' \
        "$1" $((LAST_TXID + 1)) "$1" $((LAST_TXID + 2)))
    [ "$(cat "$TMP/out")" = "$want" ] || fail "the $1 writer's output" "want:" "$want" "got:" "$(cat "$TMP/out")"
    LAST_TXID=$((LAST_TXID + 2))
}

# expect WRITERS...: the reader output the replica must give, from `ltxctl restore` and plain
# sqlite3 (not the VFS); the marks' counts must be 3, 8, 13, ... for the writers in order
expect() {
    rm -f "$TMP/restored.db"
    "$LTXCTL" restore "$LITESTREAM_REPLICA_URL" -o "$TMP/restored.db" >"$TMP/restore.out" 2>&1 ||
        fail "ltxctl restore failed" "$(cat "$TMP/restore.out")"
    local txid
    txid=$(sed -n 's/.*restored TXID \([0-9a-f]\{16\}\).*/\1/p' "$TMP/restore.out")
    [ "$txid" = "$(printf '%016x' "$LAST_TXID")" ] || fail "restored TXID $txid, want $LAST_TXID"
    local n=0 w want_marks=""
    for w in "$@"; do
        want_marks+="$w|$((n * 5 + 3))"$'\n'
        n=$((n + 1))
    done
    [ "$(command sqlite3 "$TMP/restored.db" 'SELECT author, notes FROM marks ORDER BY rowid')"$'\n' = "$want_marks" ] ||
        fail "the marks in the restored database" "$(command sqlite3 "$TMP/restored.db" 'SELECT * FROM marks')"
    [ "$(command sqlite3 "$TMP/restored.db" 'SELECT count(*) FROM notes')" = $((n * 5)) ] ||
        fail "the restored database has not $((n * 5)) notes"
    {
        echo "txid $txid"
        command sqlite3 "$TMP/restored.db" 'SELECT id, author, body FROM notes ORDER BY id'
        command sqlite3 "$TMP/restored.db" \
            "SELECT 'mark ' || author || ' ' || at || ': ' || notes || ' notes' FROM marks ORDER BY rowid"
        command sqlite3 "$TMP/restored.db" \
            "SELECT 'time travel to ' || at || ': ' || notes || ' notes' FROM marks ORDER BY rowid"
    } >"$TMP/want.txt"
}

# read_all WHAT: every language's reader prints exactly $TMP/want.txt
read_all() {
    local lang
    for lang in c python node go; do
        example "$lang" reader || fail "the $lang reader failed" "$(cat "$TMP/$lang.err")"
        diff -u "$TMP/want.txt" "$TMP/out" >&2 || fail "the $lang reader's output differs ($1)"
    done
    pass "readers in C, Python, Node and Go print the replica as restored, time travel included ($1)"
}

write c
pass "the C writer made a new database in an empty replica: TXIDs 1 and 2"
expect c
read_all "written by C"

for lang in python node go; do
    write "$lang"
    pass "the $lang writer added its notes: TXIDs $((LAST_TXID - 1)) and $LAST_TXID"
done
expect c python node go
read_all "written by C, Python, Node and Go"

# One writer per replica: a writer holding the lease (the sqlite3 CLI, in write mode, waiting on
# its stdin) makes every example writer fail at open with "database is locked", and nothing moves.
mkfifo "$TMP/hold.in"
"${RUN[@]}" sqlite3 >"$TMP/hold.out" 2>"$TMP/hold.err" <"$TMP/hold.in" &
hold_pid=$!
PIDS+=("$hold_pid")
exec 8>"$TMP/hold.in"
printf '.load %s\n.open file:app.db?vfs=litestream&write=1\nSELECT litestream_sync();\n' "$LTXVFS_EXTENSION" >&8
for _ in $(seq 200); do [ -s "$TMP/hold.out" ] && break; sleep 0.05; done
[ "$(cat "$TMP/hold.out")" = "$(printf '%016x' "$LAST_TXID")" ] ||
    fail "the holding writer did not open" "$(cat "$TMP/hold.out" "$TMP/hold.err")"
for lang in c python node go; do
    if example "$lang" writer "$lang-2"; then fail "a second $lang writer opened while another held the lease"; fi
    grep -q "database is locked" "$TMP/$lang.err" || fail "the second $lang writer's error" "$(cat "$TMP/$lang.err")"
done
exec 8>&-
wait "$hold_pid" || fail "the holding writer failed" "$(cat "$TMP/hold.err")"
expect c python node go
read_all "after the refused writers"
pass "while another process holds the lease every example writer fails with \"database is locked\""

stop "$PID"
echo "$passed passed, 0 failed"
