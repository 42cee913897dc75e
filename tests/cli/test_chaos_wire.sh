#!/usr/bin/env bash
# test_chaos_wire: each fault action of fakes3 as a client sees it on the wire, with curl: error
# (status, S3 code and message in the XML; the body never read), reset (curl 56), close (52),
# truncate (18, the full Content-Length announced), bandwidth, stall for a time and for ever
# (curl's timeout, 28), latency, each with its request-log "fault" field and the stats' fault
# counts; SIGTERM ends a server with a request stalled for ever at once; sixteen concurrent
# requests under --latency 40ms take about 40 ms in all, not 16 x 40. Time bounds are lower
# bounds with generous upper ones.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/chaos/lib.sh"

head -c 200000 /dev/urandom >"$TMP/obj"
LOG="$TMP/wire.log"
start wire --memory --bucket bkt --log "$LOG" \
    --fault "error 503 SlowDown op=PutObject key=err*" \
    --fault 'error 418 Teapot "I am a teapot" key=tea*' \
    --fault "reset key=reset*" \
    --fault "close key=close*" \
    --fault "truncate 100 op=GetObject key=trunc*" \
    --fault "bandwidth 400k op=GetObject key=bw*" \
    --fault "stall 300ms key=stall*" \
    --fault "stall key=forever*" \
    --fault "latency 100ms key=slow*"
U="$URL/bkt"
for k in trunc bw stall plain slow; do
    try -T "$TMP/obj" "${UNSIGNED[@]}" "$U/$k"
    want_rc 0 "PUT $k"
    want_code 200 "PUT $k"
done

# error: the status and the S3 error document, before the body is read; nothing stored
try -T "$TMP/obj" "${UNSIGNED[@]}" "$U/err1"
want_rc 0 "error"
want_code 503 "error"
body_has "<Error><Code>SlowDown</Code>"
body_has "<Resource>/bkt/err1</Resource>"
body_has "<RequestId>"
wait_log "$LOG" err1
[ "$(log_field "$LOG" bytes_in err1)" = 0 ] || fail "error: the body was read" "$(cat "$LOG")"
[ "$(log_field "$LOG" error err1)" = SlowDown ] || fail "error: log error field" "$(cat "$LOG")"
[ "$(log_field "$LOG" fault err1)" = "rule 1: error 503 SlowDown" ] ||
    fail "error: log fault field" "$(cat "$LOG")"
try "$U/err1"
want_code 404 "the refused PUT stored nothing"
pass "error 503 SlowDown: 503, S3 XML error, body not read, nothing stored, logged"

try "$U/teapot"
want_code 418 "custom error"
body_has "<Code>Teapot</Code>"
body_has "<Message>I am a teapot</Message>"
pass "error with a code and message of the rule's own"

# reset: a TCP RST, no response
try "$U/reset1"
want_rc 56 "reset"
[ ! -s "$TMP/headers" ] || fail "reset: a response came" "$(cat "$TMP/headers")"
wait_log "$LOG" reset1
[ "$(log_field "$LOG" fault reset1)" = "rule 3: reset" ] || fail "reset: log" "$(cat "$LOG")"
pass "reset: curl exit 56 (connection reset), nothing received"

# close: a clean close without a response
try "$U/close1"
want_rc 52 "close"
pass "close: curl exit 52 (empty reply)"

# truncate: Content-Length says 200000, 100 bytes come, the connection closes
try "$U/trunc"
want_rc 18 "truncate"
header_is Content-Length 200000
[ "$(stat -c %s "$TMP/body")" = 100 ] || fail "truncate: got $(stat -c %s "$TMP/body") bytes"
cmp -s "$TMP/body" <(head -c 100 "$TMP/obj") || fail "truncate: the 100 bytes are not the object's"
wait_log "$LOG" trunc 2
[ "$(python3 "$CHAOS_DIR/logfield.py" "$LOG" bytes_out trunc | tail -n 1)" = 100 ] ||
    fail "truncate: the log's bytes_out" "$(cat "$LOG")"
pass "truncate 100: full Content-Length, 100 bytes of the body, curl exit 18"

# bandwidth: 200000 bytes at 400 KiB/s take at least 0.48 s, and arrive whole
try "$U/bw"
want_rc 0 "bandwidth"
want_code 200 "bandwidth"
cmp -s "$TMP/body" "$TMP/obj" || fail "bandwidth: the body differs"
took 0.45 8 "bandwidth 400k of 200000 bytes"
pass "bandwidth 400k: the whole body in ${TIME}s (>= 0.48 s)"

# stall for a time: then served normally
try "$U/stall"
want_code 200 "stall 300ms"
cmp -s "$TMP/body" "$TMP/obj" || fail "stall: the body differs"
took 0.29 8 "stall 300ms"
pass "stall 300ms: answered after ${TIME}s"

# stall for ever: the client gives up (curl 28), and the server sees it go
try --max-time 1 "$U/forever1"
want_rc 28 "stall for ever"
took 0.9 8 "stall for ever (--max-time 1)"
wait_log "$LOG" forever1
[ "$(log_field "$LOG" completed forever1)" = false ] || fail "stall: completed?" "$(cat "$LOG")"
pass "stall (for ever): curl times out (28); the server lets go when the client leaves"

# latency
try "$U/slow"
want_code 200 "latency"
took 0.095 8 "latency 100ms"
slow_time=$TIME
try "$U/plain"
want_code 200 "no rule"
wait_log "$LOG" plain 2
wait_log "$LOG" slow 2
[ "$(log_field "$LOG" fault slow)" = "rule 9: latency 100ms" ] || fail "latency: log" "$(cat "$LOG")"
[ "$(log_field "$LOG" fault plain)" = "" ] || fail "no fault: log" "$(cat "$LOG")"
pass "latency 100ms: ${slow_time}s (an unmatched request ${TIME}s); log fields"

"$FAKES3" ctl --endpoint "$URL" --access-key "$KEY" --secret-key "$SECRET" stats --json \
    >"$TMP/stats.json" || fail "fakes3 ctl stats"
python3 - "$TMP/stats.json" <<'PY' || fail "stats: fault counts" "$(cat "$TMP/stats.json")"
import json, sys
f = json.load(open(sys.argv[1]))["faults"]
# the PUTs of stall and slow were stalled and delayed too
want = {"error": 2, "reset": 1, "close": 1, "truncate": 1, "bandwidth": 1, "stall": 3, "latency": 2}
assert all(f.get(k) == v for k, v in want.items()), f
PY
pass "stats: faults carried out, by action"

# SIGTERM with a request stalled for ever: the server stops at once
curl -sS "${SIGN[@]}" -o /dev/null --max-time 20 "$U/forever2" 2>/dev/null &
CURL_PID=$!
wait_for_stall() {
    local i
    for i in $(seq 100); do
        "$FAKES3" ctl --endpoint "$URL" --access-key "$KEY" --secret-key "$SECRET" faults list \
            --json | grep -q '"rule":"stall key=forever\*","matched":2' && return 0
        sleep 0.05
    done
    fail "the second stalled request never arrived"
}
wait_for_stall
t0=$(now_ms)
stop "$PID"
t1=$(now_ms)
[ $((t1 - t0)) -lt 3000 ] || fail "SIGTERM took $((t1 - t0)) ms with a request stalled"
rc=0
wait "$CURL_PID" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 28 ] || fail "the stalled client: curl exit $rc (want a cut connection)"
pass "SIGTERM with a request stalled for ever: stopped in $((t1 - t0)) ms, the client cut off"

# sixteen requests at once under --latency 40ms: about 40 ms in all
start lat --memory --bucket bkt --latency 40ms
printf 'x' >"$TMP/one"
try -T "$TMP/one" "${UNSIGNED[@]}" "$URL/bkt/one"
want_code 200 "PUT under --latency"
took 0.039 8 "one request under --latency 40ms"
args=()
for i in $(seq 16); do args+=(-o /dev/null "$URL/bkt/one"); done
t0=$(now_ms)
curl -sS --no-progress-meter --fail "${SIGN[@]}" -Z --parallel-max 16 --parallel-immediate "${args[@]}" ||
    fail "16 parallel GETs failed"
t1=$(now_ms)
ms=$((t1 - t0))
[ "$ms" -ge 40 ] && [ "$ms" -lt 400 ] || fail "16 concurrent requests with 40 ms latency: $ms ms"
stop "$PID"
pass "16 concurrent requests with --latency 40ms: $ms ms in all (16 x 40 = 640)"

echo "$passed passed, 0 failed"
