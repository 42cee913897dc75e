#!/usr/bin/env bash
# test_chaos_boto3: fakes3's faults as a real SDK sees them. boto3 against
# `error 503 SlowDown times=2 op=PutObject` retries twice and succeeds (RetryAttempts == 2 in its
# ResponseMetadata), and the request log shows the two 503s with the rule that fired, then the
# 200; `error 500 InternalError times=1 op=GetObject` costs one retry; `error 403 AccessDenied`
# is not retried; a connection reset is retried too. The cases are in
# tests/cli/chaos/boto3_retries.py.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs python3
# with boto3 (Debian: python3-boto3); without it the test fails, it is not skipped.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/chaos/lib.sh"

python3 -c 'import boto3' 2>/dev/null ||
    fail "needs python3 with boto3 (Debian: python3-boto3; scripts/bootstrap.sh installs it)"

LOG="$TMP/boto3.log"
start boto3 --memory --bucket bkt --log "$LOG" \
    --fault "error 503 SlowDown times=2 op=PutObject key=retried" \
    --fault "error 500 InternalError times=1 op=GetObject key=retried" \
    --fault "error 403 AccessDenied op=DeleteObject key=retried" \
    --fault "reset times=1 op=HeadObject key=retried"
python3 "$CHAOS_DIR/boto3_retries.py" "$URL" "$KEY" "$SECRET" || fail "boto3_retries.py failed"
pass "boto3: RetryAttempts 2 after two 503 SlowDown, 1 after a 500, 403 not retried, reset retried"

python3 - "$LOG" <<'PY' || fail "the request log of the retries" "$(cat "$LOG")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
put = [(l["status"], l["error"], l["fault"]) for l in lines if l["operation"] == "PutObject"]
assert put == [(503, "SlowDown", "rule 1: error 503 SlowDown")] * 2 + [(200, "", "")], put
get = [(l["status"], l["fault"]) for l in lines if l["operation"] == "GetObject"]
assert get == [(500, "rule 2: error 500 InternalError"), (200, "")], get
dele = [(l["status"], l["error"]) for l in lines if l["operation"] == "DeleteObject"]
assert dele == [(403, "AccessDenied")], dele
head = [(l["status"], l["fault"]) for l in lines if l["operation"] == "HeadObject"]
# the reset request and the retry ran on two connections: their lines may come in either order
assert sorted(head) == [(0, "rule 4: reset"), (200, "")], head
PY
pass "the log: PUT 503 503 200, GET 500 200, DELETE 403, HEAD reset then 200, each fault named"
stop "$PID"
echo "$passed passed, 0 failed"
