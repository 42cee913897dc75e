#!/usr/bin/env bash
# test_ltxctl_replica_faults: ltxctl over a fakes3 that fails (chaos rules, seeded):
#   - a replica (a ~20 MB snapshot, fetched in ranges, and level-0 files on top) is uploaded to a
#     healthy fakes3 with a data folder; fakes3 is restarted on the same folder with 20% 503
#     SlowDown, 20% connection resets and 20% truncated bodies on GetObject: restore is
#     byte-identical to the source (five runs), verify and ls pass, and the request log shows
#     that every kind of fault did fire;
#   - with fakes3 stopped, restore, ls, verify and import with --timeout 2s fail within 5 s
#     (the bound plus start-up), naming the endpoint and the error, and leave no output file.
set -euo pipefail
source "$(dirname "$0")/ltxctl/lib.sh"
command -v sqlite3 >/dev/null || fail "needs sqlite3"
"$FAKES3" --help 2>&1 | grep -q -- '--fault RULE' || fail "fakes3 has no --fault"

# The source: a database of ~20 MB in state 1, and states 2..4 as level-0 files.
sqlite3 s1.db "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<60000)
  INSERT INTO t SELECT i, randomblob(200), printf('%0100d', i) FROM c;"
for k in 2 3 4; do
    cp "s$((k - 1)).db" "s$k.db"
    sqlite3 "s$k.db" "UPDATE t SET v = randomblob(200) WHERE id % 97 = $k;
      INSERT INTO t(v, s) SELECT randomblob(300), 'new' FROM t WHERE id < 500;"
    python3 "$LTXDIR/mkincr.py" "s$((k - 1)).db" "s$k.db" "$k" $((1735689600000 + k * 1000)) \
        "$("$LTXCTL" checksum "s$((k - 1)).db")" "$("$LTXCTL" checksum "s$k.db")" "l0-$k.ltx"
done

mkdir -p data
start_s3 --data-dir "$TMP/data"
R=$(S3URL db)
run import "$LTXCTL" import s1.db "$R"
rc_is 0 "import" import
mkdir -p tree
for k in 2 3 4; do put_tree tree 0 "l0-$k.ltx"; done
put_s3 tree db
stop "$PID_s3"
pass "replica uploaded to a healthy fakes3"

start_s3 --data-dir "$TMP/data" --seed 7 --log "$TMP/requests.log" \
    --fault "error 503 SlowDown p=0.2" --fault "reset op=GetObject p=0.2" \
    --fault "truncate 1000 op=GetObject p=0.2"
R=$(S3URL db)
for i in 1 2 3 4 5; do
    run restore "$LTXCTL" restore "$R" -o "out$i.db" --timeout 60s
    rc_is 0 "restore through faults (run $i)" restore
    cmp "out$i.db" s4.db || fail "restore through faults (run $i) is not byte-identical"
done
pass "restore through 20% 503s, resets and truncated bodies is byte-identical (5 runs)"
run verify "$LTXCTL" verify "$R" --timeout 60s
rc_is 0 "verify through faults" verify
has verify.out "4 files verified: ok"
run ls "$LTXCTL" ls "$R" --timeout 60s
rc_is 0 "ls through faults" ls
has ls.out "# level 0: 3 files"
pass "verify and ls pass through faults"
for kind in "error 503" "reset" "truncate"; do
    n=$(grep -c "\"fault\":\"[^\"]*$kind" "$TMP/requests.log" || true)
    [ "$n" -gt 0 ] || fail "no \"$kind\" fault fired" "$(tail -n 5 "$TMP/requests.log")"
done
pass "every kind of fault fired ($(grep -c '"fault":"r' "$TMP/requests.log") requests faulted)"

# SIGINT (and SIGTERM) in the middle of a slow restore: no output file, no temp file. (A background
# job of a script starts with SIGINT ignored; the wrapper gives ltxctl the default disposition, as
# an interactive shell would.)
stop "$PID_s3"
start_s3 --data-dir "$TMP/data" --fault "bandwidth 256k op=GetObject"
R=$(S3URL db)
for sig in INT TERM; do
    python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$LTXCTL" restore "$R" -o int.db >"$TMP/int.out" 2>"$TMP/int.err" &
    rp=$!
    for i in $(seq 100); do
        [ -n "$(ls int.db.tmp.* 2>/dev/null)" ] && break
        sleep 0.05
    done
    [ -n "$(ls int.db.tmp.* 2>/dev/null)" ] || fail "restore did not start writing its temp file"
    sleep 0.5
    kill -$sig $rp
    rc=0
    wait $rp || rc=$?
    want=$((128 + $(kill -l $sig)))
    [ "$rc" -eq $want ] || fail "restore after SIG$sig: exit $rc, want $want" "$(cat "$TMP/int.out" "$TMP/int.err")"
    [ -z "$(ls int.db* 2>/dev/null)" ] || fail "SIG$sig left files behind" "$(ls int.db*)"
done
pass "SIGINT or SIGTERM during restore leaves neither the output nor its temp file"

# The store goes away.
ENDPOINT=$S3_ENDPOINT
PORT=${ENDPOINT##*:}
stop "$PID_s3"
for cmd in restore ls verify import; do
    case $cmd in
    restore) args=(restore "$R" -o down.db) ;;
    ls) args=(ls "$R") ;;
    verify) args=(verify "$R") ;;
    import) args=(import s1.db "$(S3URL other)") ;;
    esac
    t0=$(date +%s%N)
    run down "$LTXCTL" "${args[@]}" --timeout 2s
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    rc_is 1 "$cmd with the store down" down
    [ "$ms" -lt 5000 ] || fail "$cmd with the store down took $ms ms (bound 2 s)"
    has down.err "127.0.0.1:$PORT"
    grep -qiE "connect|refused|reach" "$TMP/down.err" || fail "$cmd: the error does not say what failed" "$(cat "$TMP/down.err")"
    [ -z "$(ls down.db* 2>/dev/null)" ] || fail "$cmd left an output file behind"
    echo "  $cmd failed after $ms ms: $(head -c 300 "$TMP/down.err")"
done
pass "with fakes3 stopped, restore/ls/verify/import --timeout 2s fail within 5 s naming the endpoint"

echo "$passed passed, 0 failed"
