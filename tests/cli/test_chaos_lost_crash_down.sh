#!/usr/bin/env bash
# test_chaos_lost_crash_down: the fault actions that change what the server stores or whether it
# is there at all.
#   lost-response  the object is stored, the client saw a reset (curl 56), and its retry with
#                  If-None-Match: * gets 412 PreconditionFailed;
#   crash after    fakes3 dies by SIGKILL (exit status 137) at the matching PUT, after storing it;
#                  a restart on the same --data-dir serves every object written before, whole,
#                  and that one too;
#   crash before   the same, the matching object not stored; nothing else lost;
#   crash on a multipart completion (crash after op=CompleteMultipartUpload);
#   down           connections fail for the duration (whatever the request), then succeed.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs curl,
# md5sum, python3.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/chaos/lib.sh"

DATA="$TMP/data"

# ---- lost-response ----
start lost --data-dir "$DATA" --bucket bkt --log "$TMP/lost.log" \
    --fault "lost-response op=PutObject key=lost* times=1"
head -c 300000 /dev/urandom >"$TMP/lost.bin"
try -T "$TMP/lost.bin" "${UNSIGNED[@]}" "$URL/bkt/lost1"
want_rc 56 "lost-response PUT"
try "$URL/bkt/lost1"
want_code 200 "lost-response: the object is stored"
cmp -s "$TMP/body" "$TMP/lost.bin" || fail "lost-response: the stored object differs"
try -T "$TMP/lost.bin" "${UNSIGNED[@]}" -H "If-None-Match: *" "$URL/bkt/lost1"
want_rc 0 "the retry"
want_code 412 "the retry with If-None-Match: *"
body_has "<Code>PreconditionFailed</Code>"
wait_log "$TMP/lost.log" lost1 3
python3 - "$TMP/lost.log" <<'PY' || fail "lost-response: the log" "$(cat "$TMP/lost.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"key":"lost1"' in l]
puts = [(l["status"], l["completed"], l["fault"]) for l in lines if l["method"] == "PUT"]
# the lost one has the operation's own status, but never completed; the retry is not faulted
assert sorted(puts) == [(200, False, "rule 1: lost-response"), (412, True, "")], puts
PY
pass "lost-response: stored, the client saw a reset (56), the retry with If-None-Match: * got 412"
stop "$PID"

# ---- crash after, then before ----
declare -A SUM
put_some() { # put_some PREFIX N: N objects of 1 KiB to 2 MiB, their md5 kept
    local i f
    for i in $(seq "$2"); do
        f="$TMP/$1$i.bin"
        head -c $((1024 * (i * 97 % 2048 + 1))) /dev/urandom >"$f"
        try -T "$f" "${UNSIGNED[@]}" "$URL/bkt/$1$i"
        want_code 200 "PUT $1$i"
        SUM[$1$i]=$(md5sum <"$f" | cut -d' ' -f1)
    done
}
check_all() { # check_all WHAT: every object in SUM is there, whole
    local k
    for k in "${!SUM[@]}"; do
        try "$URL/bkt/$k"
        want_code 200 "$1: GET $k"
        [ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "${SUM[$k]}" ] || fail "$1: $k is not whole"
    done
}
# crashed PID WHAT: the process died of SIGKILL (status 137)
crashed() {
    local rc=0 i
    for i in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    ! kill -0 "$1" 2>/dev/null || fail "$2: fakes3 is still running 5 s after the request"
    wait "$1" || rc=$?
    [ "$rc" = 137 ] || fail "$2: fakes3 exit status $rc, want 137 (SIGKILL)"
}

start c1 --data-dir "$DATA" --log "$TMP/c1.log" --fault "crash after op=PutObject key=crash-after"
put_some a 12
head -c 500000 /dev/urandom >"$TMP/ca.bin"
try -T "$TMP/ca.bin" "${UNSIGNED[@]}" "$URL/bkt/crash-after"
[ "$RC" != 0 ] || fail "crash after: the PUT was answered (HTTP $CODE)"
crashed "$PID" "crash after"
[ "$(log_faults "$TMP/c1.log" crash-after)" = "rule 1: crash after" ] ||
    fail "crash after: its log line" "$(cat "$TMP/c1.log")"
SUM[crash-after]=$(md5sum <"$TMP/ca.bin" | cut -d' ' -f1)
start c2 --data-dir "$DATA" --fault "crash op=PutObject key=crash-before"
check_all "after the crash after"
pass "crash after: SIGKILL at the PUT, a restart serves the 13 objects before, and that one, whole"

put_some b 5
try -T "$TMP/ca.bin" "${UNSIGNED[@]}" "$URL/bkt/crash-before"
[ "$RC" != 0 ] || fail "crash before: the PUT was answered (HTTP $CODE)"
crashed "$PID" "crash before"
start c3 --data-dir "$DATA" --fault "crash after op=CompleteMultipartUpload"
check_all "after the crash before"
try "$URL/bkt/crash-before"
want_code 404 "crash before: the object was never stored"
pass "crash before: SIGKILL before the PUT was applied; nothing of it stored, nothing else lost"

# a multipart upload whose completion crashes the server after it is applied
try -X POST "$URL/bkt/mp?uploads="
want_code 200 "CreateMultipartUpload"
UPLOAD=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$TMP/body")
head -c $((5 * 1048576)) /dev/urandom >"$TMP/p1.bin"
head -c 1000 /dev/urandom >"$TMP/p2.bin"
try -T "$TMP/p1.bin" "${UNSIGNED[@]}" "$URL/bkt/mp?partNumber=1&uploadId=$UPLOAD"
want_code 200 "UploadPart 1"
E1=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^[Ee][Tt]ag: *//p')
try -T "$TMP/p2.bin" "${UNSIGNED[@]}" "$URL/bkt/mp?partNumber=2&uploadId=$UPLOAD"
want_code 200 "UploadPart 2"
E2=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^[Ee][Tt]ag: *//p')
printf '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>' \
    "$E1" "$E2" >"$TMP/complete.xml"
try -X POST --data-binary @"$TMP/complete.xml" "$URL/bkt/mp?uploadId=$UPLOAD"
[ "$RC" != 0 ] || fail "crash after CompleteMultipartUpload: it was answered (HTTP $CODE)"
crashed "$PID" "crash after CompleteMultipartUpload"
start c4 --data-dir "$DATA"
cat "$TMP/p1.bin" "$TMP/p2.bin" >"$TMP/mp.bin"
SUM[mp]=$(md5sum <"$TMP/mp.bin" | cut -d' ' -f1)
check_all "after the crash after CompleteMultipartUpload"
stop "$PID"
pass "crash after CompleteMultipartUpload: the completed object is there, whole, after a restart"

# ---- down ----
start down --memory --bucket bkt --fault "down 1500ms key=down*"
try "$URL/bkt/x"
want_code 404 "before down"
t0=$(now_ms)
try "$URL/bkt/down1"
[ "$RC" != 0 ] || fail "down: the request that fired was answered (HTTP $CODE)"
failures=0
while :; do
    try --max-time 5 "$URL/bkt/x"
    [ "$RC" = 0 ] && break
    failures=$((failures + 1))
    [ $(($(now_ms) - t0)) -lt 10000 ] || fail "down 1500ms: still refusing after 10 s (curl $RC)"
    sleep 0.1
done
up=$(($(now_ms) - t0))
want_code 404 "after down"
[ "$failures" -ge 3 ] || fail "down: only $failures failed connections during the down time"
[ "$up" -ge 1300 ] && [ "$up" -lt 6000 ] || fail "down 1500ms: back after $up ms"
stop "$PID"
pass "down 1500ms: $failures connections failed, served again after $up ms"

echo "$passed passed, 0 failed"
