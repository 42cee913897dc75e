#!/usr/bin/env bash
# test_chaos_admin: controlling fakes3's faults.
#   the admin API with curl: GET /_fakes3/faults (rules with hit counts), POST (several rules, all
#   or none, new ids; 400 with the parse error naming the line), DELETE one (404 when none) and
#   all; signed like S3 (an unsigned request is refused unless --anonymous); admin requests are
#   never faulted themselves;
#   `fakes3 ctl`: faults add/list/clear, add -f FILE, --json, health, stats, its exit statuses
#   (0 done, 1 refused or unreachable, 2 bad usage), --help;
#   the command line: --fault, --faults FILE, --error-rate, --latency/--jitter, --seed (printed at
#   start), and exit status 2 with a message naming the rule for a rule that does not parse.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/chaos/lib.sh"

# ---- the admin API with curl ----
start admin --memory --bucket bkt --seed 7
grep -q 'seed 7)' "$TMP/admin.out" || fail "start-up line without the seed" "$(cat "$TMP/admin.out")"
A="$URL/_fakes3/faults"
req 200 "$A"
body_has '"seed":7'
body_has '"rules":[]'
printf 'error 500 InternalError key=a* nth=2\n\n# a comment\nlatency 30ms key=a*   # trailing\n' \
    >"$TMP/rules.txt"
req 200 -X POST --data-binary @"$TMP/rules.txt" "$A"
body_has '"ids":[1,2]'
for i in 1 2 3; do try "$URL/bkt/a$i"; done
want_code 404 "GET a3 after the rules"
req 200 "$A"
python3 - "$TMP/body" <<'PY' || fail "the list after three requests" "$BODY"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["rules"]
assert [x["id"] for x in r] == [1, 2], r
assert r[0]["rule"].startswith("error 500 InternalError"), r
assert (r[0]["matched"], r[0]["fired"]) == (3, 1), r[0]  # nth=2: the second of three
assert (r[1]["matched"], r[1]["fired"]) == (2, 2), r[1]  # the other two reach the latency
assert r[0]["expired"] is False, r[0]
PY
pass "GET/POST /_fakes3/faults: ids 1 and 2, hit counts (matched 3 fired 1; matched 2 fired 2)"

printf 'latency 1ms\nerror 5000 Bad\n' >"$TMP/bad.txt"
req 400 -X POST --data-binary @"$TMP/bad.txt" "$A"
error_is InvalidArgument
body_has "line 2"
req 200 "$A"
body_lacks '"id":3'
pass "POST with a bad second line: 400 InvalidArgument naming line 2, nothing added"

req 200 -X DELETE "$A/1"
body_has '"removed":1'
req 404 -X DELETE "$A/1"
error_is NoSuchFaultRule
req 404 -X DELETE "$A/abc"
req 200 -X POST --data-binary 'reset key=r*' "$A"
body_has '"ids":[3]'
req 200 -X DELETE "$A"
body_has '"cleared":2'
req 200 "$A"
body_has '"rules":[]'
req 405 -X PUT --data-binary 'x' "$A"
pass "DELETE one (404 when gone), DELETE all, ids never reused, other methods 405"

raw 403 "$A"
req 200 -X POST --data-binary 'error 503 SlowDown' "$A"
req 200 "$URL/_fakes3/health"
req 200 "$A"
try "$URL/bkt/x"
want_code 503 "an S3 request under 'error 503 SlowDown'"
req 200 -X DELETE "$A"
pass "the admin API needs a signature; admin requests are never faulted"
stop "$PID"

# ---- fakes3 ctl ----
start ctl --memory --bucket bkt
export FAKES3_ENDPOINT=$URL FAKES3_ACCESS_KEY=$KEY FAKES3_SECRET_KEY=$SECRET
ctl() { "$FAKES3" ctl "$@"; }
ctl_rc() { # ctl_rc WANT ARGS...: fakes3 ctl ARGS exits WANT; output in $TMP/ctl.out, .err
    local want=$1 rc=0
    shift
    "$FAKES3" ctl "$@" >"$TMP/ctl.out" 2>"$TMP/ctl.stderr" || rc=$?
    [ "$rc" = "$want" ] || fail "fakes3 ctl $*: exit $rc, want $want" "$(cat "$TMP/ctl.out")" \
        "$(cat "$TMP/ctl.stderr")"
}
ctl_rc 0 faults add "latency 5ms op=GetObject key=c*" "error 500 InternalError key=boom"
grep -q 'added rule 1, 2' "$TMP/ctl.out" || fail "ctl add output" "$(cat "$TMP/ctl.out")"
for i in 1 2 3 4; do try "$URL/bkt/c$i"; done
try "$URL/bkt/boom"
want_code 500 "the rule added by fakes3 ctl"
ctl_rc 0 faults list
grep -Eq '^1 +4 +4 +latency 5ms' "$TMP/ctl.out" || fail "ctl list: rule 1's counts" "$(cat "$TMP/ctl.out")"
grep -Eq '^2 +1 +1 +error 500 InternalError' "$TMP/ctl.out" || fail "ctl list: rule 2" "$(cat "$TMP/ctl.out")"
ctl_rc 0 faults list --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["rules"][0]["fired"]==4, d' \
    "$TMP/ctl.out" || fail "ctl list --json" "$(cat "$TMP/ctl.out")"
pass "fakes3 ctl faults add, list (hit counts), --json"

printf '# scenario\nclose key=closed\ntruncate 10 key=short\n' >"$TMP/scenario.faults"
ctl_rc 0 faults add -f "$TMP/scenario.faults"
grep -q 'added rule 3, 4' "$TMP/ctl.out" || fail "ctl add -f" "$(cat "$TMP/ctl.out")"
ctl_rc 1 faults add "latency 1ms" "nonsense 42"
grep -q 'InvalidArgument' "$TMP/ctl.stderr" || fail "ctl add bad: message" "$(cat "$TMP/ctl.stderr")"
grep -q 'nonsense' "$TMP/ctl.stderr" || fail "ctl add bad: names the rule" "$(cat "$TMP/ctl.stderr")"
ctl_rc 0 faults clear 1
grep -q 'removed rule 1' "$TMP/ctl.out" || fail "ctl clear 1" "$(cat "$TMP/ctl.out")"
ctl_rc 1 faults clear 1
grep -q 'NoSuchFaultRule' "$TMP/ctl.stderr" || fail "ctl clear 1 again" "$(cat "$TMP/ctl.stderr")"
ctl_rc 0 faults clear
grep -q 'cleared 3 rules' "$TMP/ctl.out" || fail "ctl clear" "$(cat "$TMP/ctl.out")"
ctl_rc 0 faults list
grep -q 'no fault rules' "$TMP/ctl.out" || fail "ctl list empty" "$(cat "$TMP/ctl.out")"
pass "fakes3 ctl faults add -f FILE, a bad rule refused (exit 1), clear ID, clear"

ctl_rc 0 health
grep -q '^ok: 1 buckets' "$TMP/ctl.out" || fail "ctl health" "$(cat "$TMP/ctl.out")"
ctl_rc 0 stats
grep -q 'faults: latency:4 error:1' "$TMP/ctl.out" || fail "ctl stats" "$(cat "$TMP/ctl.out")"
ctl_rc 0 stats --json
grep -q '"faults":{' "$TMP/ctl.out" || fail "ctl stats --json" "$(cat "$TMP/ctl.out")"
ctl_rc 1 --secret-key wrong faults list
grep -q 'SignatureDoesNotMatch' "$TMP/ctl.stderr" || fail "ctl wrong key" "$(cat "$TMP/ctl.stderr")"
ctl_rc 2 faults frobnicate
ctl_rc 2 nonsense
ctl_rc 2 faults clear x
ctl_rc 2 --endpoint
ctl_rc 0 --help
grep -q 'faults add RULE' "$TMP/ctl.out" || fail "ctl --help" "$(cat "$TMP/ctl.out")"
ctl_rc 0 faults list --help
stop "$PID"
ctl_rc 1 faults list
pass "fakes3 ctl health, stats, exit 1 refused or unreachable, exit 2 bad usage, --help"

# ---- the command line ----
bad_start() { # bad_start TEXT ARGS...: fakes3 ARGS exits 2 saying TEXT
    local text=$1 rc=0
    shift
    "$FAKES3" --listen 127.0.0.1:0 --memory "$@" >/dev/null 2>"$TMP/bad.stderr" || rc=$?
    [ "$rc" = 2 ] || fail "fakes3 $*: exit $rc, want 2"
    grep -qF -- "$text" "$TMP/bad.stderr" || fail "fakes3 $*: message lacks $text" \
        "$(cat "$TMP/bad.stderr")"
}
bad_start '--fault "error 503 SlowDown p=2"' --fault "error 503 SlowDown p=2"
bad_start 'frobnicate' --fault "latency 1ms" --fault "frobnicate"
printf 'latency 1ms\n\nreset key=x z=1\n' >"$TMP/bad.faults"
bad_start "--faults $TMP/bad.faults: line 3" --faults "$TMP/bad.faults"
bad_start "--faults $TMP/none" --faults "$TMP/none"
bad_start "--error-rate 1.5" --error-rate 1.5
bad_start "--latency soon" --latency soon
bad_start '--error-rate "0.1 reset"' --error-rate "0.1 reset"
bad_start "--seed x" --seed x
"$FAKES3" --help | grep -q -- '--error-rate P' || fail "--help lacks the fault flags"
pass "bad rules on the command line: exit 2, naming the flag, the rule or the file's line"

printf 'error 500 InternalError key=file*\n' >"$TMP/good.faults"
start flags --memory --bucket bkt --seed 99 --fault "close key=first*" --faults "$TMP/good.faults" \
    --error-rate 0 --latency 20ms --jitter 5ms
grep -q 'seed 99, 4 fault rules' "$TMP/flags.out" || fail "start-up line" "$(cat "$TMP/flags.out")"
req 200 "$URL/_fakes3/faults"
python3 - "$TMP/body" <<'PY' || fail "the order of the command line's rules" "$BODY"
import json, sys
r = [x["rule"] for x in json.load(open(sys.argv[1]))["rules"]]
assert r[0].startswith("close") and r[1].startswith("error 500"), r
assert r[2].startswith("error 503 SlowDown") and "p=0" in r[2], r
assert r[3].startswith("latency 20ms") and "jitter=5ms" in r[3], r
PY
try "$URL/bkt/first"
want_rc 52 "--fault close"
try "$URL/bkt/file1"
want_code 500 "--faults FILE"
try "$URL/bkt/other"
want_code 404 "--latency"
took 0.019 8 "--latency 20ms --jitter 5ms"
stop "$PID"
start rate --memory --bucket bkt --error-rate 1
try "$URL/bkt/x"
want_code 503 "--error-rate 1"
body_has "<Code>SlowDown</Code>"
stop "$PID"
pass "--fault, --faults, --error-rate, --latency/--jitter: in that order; --seed printed"

echo "$passed passed, 0 failed"
