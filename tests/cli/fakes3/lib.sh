# lib.sh: what the fakes3 command-line tests share (sourced by tests/cli/test_fakes3_*.sh).
#
# Starts build/fakes3 on a free 127.0.0.1 port (--listen 127.0.0.1:0, the port read back from its
# start-up line, so tests running in parallel never race for a port) with a data directory under
# a mktemp -d scratch folder; stops it with SIGTERM and requires a clean exit (status 0, and under
# the sanitizers no report: they exit 86). An EXIT trap kills whatever is still running and
# removes the scratch folder.
#
# Requests go through curl's own SigV4 signer (--aws-sigv4, curl >= 7.75). curl 7.88 signs the
# query string exactly as written, so tests write query parameters sorted and percent-encoded,
# which is also the canonical form a server computes.

: "${LTXVFS_BUILD_DIR:?set LTXVFS_BUILD_DIR to the build folder that holds fakes3}"
FAKES3="$LTXVFS_BUILD_DIR/fakes3"
[ -x "$FAKES3" ] || { echo "$0: no executable $FAKES3" >&2; exit 1; }
command -v curl >/dev/null || { echo "$0: needs curl" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:halt_on_error=1:print_stacktrace=1"

KEY=testkey
SECRET=testsecret
REGION=us-east-1
TMP=$(mktemp -d)
PIDS=()
cd "$TMP" # anything a test leaves in the working directory goes with the scratch folder

cleanup() {
    for p in "${PIDS[@]}"; do
        { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

passed=0
pass() {
    passed=$((passed + 1))
    echo "ok $passed - $1"
}
fail() {
    echo "FAIL: $1" >&2
    shift
    for detail in "$@"; do printf '%s\n' "$detail" >&2; done
    for f in "$TMP"/*.err; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    echo "$passed passed, 1 failed"
    exit 1
}

# start NAME ARGS...: starts fakes3 (extra ARGS appended) and waits for its start-up line.
# Sets URL_<NAME> / PID_<NAME>, and URL / PID for the most recent one.
start() {
    local name=$1
    shift
    "$FAKES3" --listen 127.0.0.1:0 --access-key "$KEY" --secret-key "$SECRET" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    local i
    for i in $(seq 200); do
        grep -q 'listening on' "$TMP/$name.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || fail "fakes3 ($name) exited at start" "$(cat "$TMP/$name.err")"
        sleep 0.05
    done
    grep -q 'listening on' "$TMP/$name.out" || fail "fakes3 ($name) did not start in 10 s"
    URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$TMP/$name.out")
    PID=$pid
    printf -v "URL_$name" '%s' "$URL"
    printf -v "PID_$name" '%s' "$pid"
}

# stop PID: SIGTERM, then the exit status must be 0 (a sanitizer report would make it 86).
stop() {
    local pid=$1 rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "fakes3 (pid $pid) exited with $rc after SIGTERM"
}

# req WANT_STATUS CURL_ARGS...: a signed request; the status must be WANT_STATUS. Leaves the body
# in $TMP/body (and $BODY), the headers in $TMP/headers.
req() {
    local want=$1
    shift
    local status
    status=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" \
        -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "$@") ||
        fail "curl failed: $*"
    BODY=$(tr -d '\000' <"$TMP/body")
    [ "$status" = "$want" ] ||
        fail "want HTTP $want, got $status: curl $*" "$(cat "$TMP/headers")" "$BODY"
}

# raw WANT_STATUS CURL_ARGS...: the same without signing.
raw() {
    local want=$1
    shift
    local status
    status=$(curl -sS -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "$@") ||
        fail "curl failed: $*"
    BODY=$(tr -d '\000' <"$TMP/body")
    [ "$status" = "$want" ] ||
        fail "want HTTP $want, got $status: curl $*" "$(cat "$TMP/headers")" "$BODY"
}

# body_has TEXT: the last response body contains TEXT.
body_has() {
    grep -qF -- "$1" "$TMP/body" || fail "response body lacks $1" "$BODY"
}
body_lacks() {
    ! grep -qF -- "$1" "$TMP/body" || fail "response body has $1" "$BODY"
}
# header_is NAME VALUE: the last response has header NAME with exactly VALUE.
header_is() {
    local got
    got=$(tr -d '\r' <"$TMP/headers" | grep -i "^$1:" | head -n1 | sed 's/^[^:]*: *//')
    [ "$got" = "$2" ] || fail "header $1: want \"$2\", got \"$got\"" "$(cat "$TMP/headers")"
}
# error_is CODE: the last response is an S3 error document with that code.
error_is() {
    body_has "<Error><Code>$1</Code>"
    body_has "<RequestId>"
    body_has "<Resource>"
}
