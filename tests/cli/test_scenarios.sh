#!/usr/bin/env bash
# test_scenarios: build/scenario end to end.
#   - the command line: --help, a bad option, a scenario file with a mistake (refused with its
#     line before anything starts: exit 2);
#   - every shipped scenario (scenarios/*.scn), two trials each, with --junit: exit 0, one "ok"
#     line per check, the closing "N passed, 0 failed", and a JUnit report that parses and agrees;
#   - a scenario written to fail (kill -9 while uploads fail, never restarted, then "check durable
#     commits"): exit 1, the FAIL line, the trial folder kept with its logs, request log, data
#     directory, buffer and restored database, and the printed replay command fails the same way;
#   - the example of an application of one's own (scenarios/examples/orders.scn).
set -euo pipefail
: "${LTXVFS_BUILD_DIR:?}" "${LTXVFS_SOURCE_DIR:?}"
SCN="$LTXVFS_BUILD_DIR/scenario"
[ -x "$SCN" ] || { echo "no $SCN" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export TMPDIR="$TMP"
passed=0
pass() { passed=$((passed + 1)); echo "ok $passed - $1"; }
fail() {
    echo "FAIL: $1" >&2
    shift
    for d in "$@"; do printf '%s\n' "$d" >&2; done
    exit 1
}

# ---- the command line ------------------------------------------------------------------------
"$SCN" --help | grep -q -- "--trials N" || fail "--help"
rc=0; "$SCN" run --bogus x.scn 2>"$TMP/e" || rc=$?
[ "$rc" = 2 ] && grep -q "unknown option --bogus" "$TMP/e" || fail "a bad option: exit $rc" "$(cat "$TMP/e")"
printf 'server s\nstart s\nfault s add error 503 SlowDow p=2\n' >"$TMP/bad.scn"
rc=0; "$SCN" run "$TMP/bad.scn" >"$TMP/o" 2>"$TMP/e" || rc=$?
[ "$rc" = 2 ] && grep -q "bad.scn:3: fault:" "$TMP/e" || fail "a bad scenario: exit $rc" "$(cat "$TMP/e")"
[ ! -s "$TMP/o" ] || fail "a bad scenario must stop the run before anything starts" "$(cat "$TMP/o")"
pass "--help, a bad option and a bad scenario file (exit 2, named by file and line)"

# ---- every shipped scenario, two trials ------------------------------------------------------
cd "$LTXVFS_SOURCE_DIR"
files=(scenarios/*.scn)
[ "${#files[@]}" -ge 9 ] || fail "expected at least 9 scenarios, found ${#files[@]}"
start=$(date +%s)
rc=0
"$SCN" run "${files[@]}" --trials 2 --seed 20261121 --junit "$TMP/report.xml" --workdir "$TMP/work" \
    >"$TMP/run.out" 2>"$TMP/run.err" || rc=$?
secs=$(($(date +%s) - start))
cat "$TMP/run.out"
[ "$rc" = 0 ] || fail "scenario run exited $rc" "$(grep -A2 FAIL "$TMP/run.out")" "$(tail "$TMP/run.err")"
oks=$(grep -c '^ok  ' "$TMP/run.out")
fails=$(grep -c '^FAIL ' "$TMP/run.out" || true)
summary=$(tail -n1 "$TMP/run.out")
[ "$summary" = "$oks passed, 0 failed" ] && [ "$fails" = 0 ] || fail "summary \"$summary\" with $oks ok lines"
# every scenario ran both trials, each with at least its durable check
for f in "${files[@]}"; do
    n=$(basename "$f" .scn)
    for k in 1 2; do
        grep -q "^ok  $n#$k " "$TMP/run.out" || fail "no check of $n#$k"
    done
done
grep -q "^ok  two-writers#1 single-writer: .*the second writer was refused" "$TMP/run.out" || fail "two-writers: refusal"
grep -q "^ok  time-travel#2 answers(r): .*[1-9][0-9]* time-travel" "$TMP/run.out" || fail "time-travel: no time-travel answer compared"
# passed trials leave nothing behind
[ -z "$(ls -A "$TMP/work" 2>/dev/null)" ] || fail "passed trials left folders" "$(ls "$TMP/work")"
python3 - "$TMP/report.xml" "$oks" "${#files[@]}" <<'PY' || fail "the JUnit report" "$(head -c 2000 "$TMP/report.xml")"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
want, nfiles = int(sys.argv[2]), int(sys.argv[3])
assert root.tag == "testsuites", root.tag
assert int(root.get("tests")) == want and int(root.get("failures")) == 0, root.attrib
suites = root.findall("testsuite")
assert len(suites) == 2 * nfiles, len(suites)
cases = root.findall("testsuite/testcase")
assert len(cases) == want, len(cases)
assert not root.findall(".//failure")
assert all(s.find("properties/property[@name='seed']") is not None for s in suites)
PY
pass "all ${#files[@]} scenarios x 2 trials: $oks checks passed in ${secs}s; JUnit report agrees"

# ---- a scenario that must fail ---------------------------------------------------------------
cat >"$TMP/broken.scn" <<'EOF'
# kill -9 with unsynced commits and uploads failing, never restarted: "durable commits" (every
# logged commit present) cannot hold, and must say so.
server s3
writer w s3 sync_interval=-1 lease_ttl=2s retry_timeout=1s -- --rate 200 --sync-every 10
start s3 w
wait w synced 2
fault s3 add error 503 SlowDown op=PutObject key=*.ltx
wait w syncfails +1
wait w commits +5
kill w
check durable
check durable commits
EOF
rc=0
"$SCN" run "$TMP/broken.scn" --seed 5 --junit "$TMP/broken.xml" --workdir "$TMP/bw" >"$TMP/b.out" 2>&1 || rc=$?
cat "$TMP/b.out"
[ "$rc" = 1 ] || fail "a failing scenario must exit 1, got $rc"
grep -q '^ok  broken#1 durable: ' "$TMP/b.out" || fail "the acknowledged rows are there"
grep -q '^FAIL broken#1 durable: row [0-9]* missing: writer 1 committed rows' "$TMP/b.out" || fail "no FAIL line"
[ "$(tail -n1 "$TMP/b.out")" = "1 passed, 1 failed" ] || fail "summary"
kept=$(sed -n 's/^  kept //p' "$TMP/b.out")
[ -d "$kept" ] || fail "the failed trial's folder was not kept"
for f in steps.log w.log w.err s3.requests.jsonl s3.data/fakes3-store w/buffer.wbuf restored.db; do
    [ -e "$kept/$f" ] || fail "kept folder lacks $f" "$(ls -R "$kept")"
done
grep -q '"operation":"PutObject"' "$kept/s3.requests.jsonl" || fail "no PutObject in the request log"
grep -q '<failure message="row' "$TMP/broken.xml" || fail "JUnit lacks the failure"
replay=$(sed -n 's/^  replay: //p' "$TMP/b.out")
[[ "$replay" == *"run $TMP/broken.scn --seed 5 --trials 1 --keep" ]] || fail "replay command: $replay"
rc=0
$replay --workdir "$TMP/rw" >"$TMP/r.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q '^FAIL broken#1 durable: row' "$TMP/r.out" || fail "the replay did not fail the same way ($rc)" "$(cat "$TMP/r.out")"
pass "a broken invariant: FAIL line, exit 1, folder kept with every artifact, the replay fails the same way"

# ---- an application of one's own (scenarios/examples) -----------------------------------------
rc=0
"$SCN" run scenarios/examples/orders.scn --seed 11 --workdir "$TMP/ow" >"$TMP/o.out" 2>&1 || rc=$?
cat "$TMP/o.out"
[ "$rc" = 0 ] || fail "examples/orders.scn exited $rc"
grep -q '^ok  orders#1 exit(verify): verify exited with status 0: [1-9][0-9]* orders, 0 with a wrong total, 0 orphan lines' "$TMP/o.out" ||
    fail "the app's own verification"
pass "an app of one's own (examples/orders.scn): killed, restarted, verified by itself"

echo "$passed passed, 0 failed"
