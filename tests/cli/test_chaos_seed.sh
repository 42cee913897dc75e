#!/usr/bin/env bash
# test_chaos_seed: --seed replays. The same sequence of 60 requests is sent to three fresh fakes3
# runs with `error 503 SlowDown p=0.3` and `latency p50=5ms p99=20ms`: the two with --seed 42 log
# identical "fault" fields, request by request (which requests got the error, and each drawn
# latency), while --seed 43 differs. The runs must also really draw: some errors, some latencies.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/chaos/lib.sh"

run() { # run NAME SEED: the sequence against a fresh fakes3; its faults in $TMP/NAME.faults
    start "$1" --memory --bucket bkt --seed "$2" --log "$TMP/$1.log" \
        --fault "error 503 SlowDown p=0.3" --fault "latency p50=5ms p99=20ms"
    local i
    for i in $(seq 60); do
        # one GET of k1..k6 in turn, a PUT every 5th: the rules see operations and keys vary
        if [ $((i % 5)) = 0 ]; then
            try -T "$TMP/$1.out" "${UNSIGNED[@]}" "$URL/bkt/k$((i % 6))"
        else
            try "$URL/bkt/k$((i % 6))"
        fi
        [ "$CODE" = 503 ] || [ "$CODE" = 200 ] || [ "$CODE" = 404 ] ||
            fail "request $i: HTTP $CODE (curl $RC)"
    done
    stop "$PID"
    log_faults "$TMP/$1.log" >"$TMP/$1.faults"
    [ "$(wc -l <"$TMP/$1.faults")" = 60 ] || fail "$1: not 60 log lines" "$(cat "$TMP/$1.log")"
}
run a 42
run b 42
run c 43
errors=$(grep -c 'error 503 SlowDown' "$TMP/a.faults" || true)
latencies=$(grep -c 'latency' "$TMP/a.faults" || true)
[ "$errors" -ge 5 ] && [ "$latencies" -ge 20 ] ||
    fail "seed 42 drew $errors errors and $latencies latencies of 60" "$(cat "$TMP/a.faults")"
[ "$(sort -u "$TMP/a.faults" | wc -l)" -ge 10 ] ||
    fail "seed 42: the latencies are not drawn" "$(cat "$TMP/a.faults")"
cmp -s "$TMP/a.faults" "$TMP/b.faults" ||
    fail "--seed 42 twice: the fault decisions differ" "$(diff "$TMP/a.faults" "$TMP/b.faults")"
pass "--seed 42 twice: the same $errors errors and $latencies latencies, request by request"
! cmp -s "$TMP/a.faults" "$TMP/c.faults" || fail "--seed 43 made the same decisions as --seed 42"
pass "--seed 43: other decisions"
echo "$passed passed, 0 failed"
