#!/usr/bin/env bash
# test_ltxctl_replica_compact: ltxctl import, compact and restore over a file replica and a real
# fakes3:
#   - import -> restore of a generated SQLite database is byte-identical (cmp), integrity_check
#     ok; import refuses a non-empty replica, and --force adds a snapshot at the next TXID; of two
#     imports racing for one empty replica exactly one lands;
#   - with level-0 files written by an independent LTX writer (ltxctl/mkincr.py) on top, three
#     passes of compact (with --now moving the clock forward) build L1..L3 and snapshots, apply
#     L0 and snapshot retention exactly as Litestream does (checked file by file), and after each
#     pass restore still gives the newest database and verify passes; --dry-run changes nothing.
set -euo pipefail
source "$(dirname "$0")/ltxctl/lib.sh"
command -v sqlite3 >/dev/null || fail "needs sqlite3"

start_s3

# ---- import -> restore ----------------------------------------------------------------------
sqlite3 a.db "PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000)
  INSERT INTO t SELECT i, randomblob(120), printf('%080d', i) FROM c;
  CREATE INDEX t_s ON t(s);"
for kind in file s3; do
    if [ $kind = file ]; then R="file://$TMP/imp"; else R=$(S3URL imp); fi
    run import "$LTXCTL" import a.db "$R"
    rc_is 0 "$kind: import" import
    has import.out "TXID 0000000000000001-0000000000000001"
    run restore "$LTXCTL" restore "$R" -o "$kind-a.db"
    rc_is 0 "$kind: restore of the import" restore
    cmp a.db "$kind-a.db" || fail "$kind: import -> restore is not byte-identical"
    [ "$(sqlite3 "$kind-a.db" 'PRAGMA integrity_check')" = ok ] || fail "$kind: integrity_check"
    [ "$(sqlite3 "$kind-a.db" 'SELECT count(*) FROM t')" = 3000 ] || fail "$kind: row count"
    pass "$kind: import -> restore is byte-identical, integrity_check ok"

    run import "$LTXCTL" import a.db "$R"
    rc_is 1 "$kind: import into a non-empty replica" import
    has import.err "the replica is not empty"
    has import.err "--force"
    sqlite3 a.db "UPDATE t SET s = 'changed' WHERE id % 7 = 0" # a new state to import
    run import "$LTXCTL" import --force a.db "$R"
    rc_is 0 "$kind: import --force" import
    has import.out "TXID 0000000000000001-0000000000000002"
    run restore "$LTXCTL" restore "$R" -o "$kind-a2.db"
    rc_is 0 "$kind: restore after import --force" restore
    cmp a.db "$kind-a2.db" || fail "$kind: restore after import --force differs"
    run restore "$LTXCTL" restore "$R" -o "$kind-a1.db" --txid 1
    rc_is 0 "$kind: restore --txid 1 after import --force" restore
    cmp "$kind-a.db" "$kind-a1.db" || fail "$kind: the first import's state is gone"
    sqlite3 a.db "UPDATE t SET s = printf('%080d', id) WHERE id % 7 = 0" # back to the first state
    cmp a.db "$kind-a.db" >/dev/null || true
    pass "$kind: import refuses a non-empty replica; --force adds a snapshot at the next TXID"

    # Two imports racing for one empty replica: exactly one lands.
    if [ $kind = file ]; then R2="file://$TMP/race"; else R2=$(S3URL race); fi
    okc=0
    for round in 1 2 3; do
        if [ $kind = file ]; then rm -rf "$TMP/race"; R2="file://$TMP/race"; else R2=$(S3URL "race$round"); fi
        "$LTXCTL" import a.db "$R2" >"$TMP/r1.out" 2>"$TMP/r1.err" &
        p1=$!
        "$LTXCTL" import a.db "$R2" >"$TMP/r2.out" 2>"$TMP/r2.err" &
        p2=$!
        r1=0 r2=0
        wait $p1 || r1=$?
        wait $p2 || r2=$?
        [ $((r1 + r2)) = 1 ] || fail "$kind: two racing imports: exit $r1 and $r2, want one 0 and one 1" \
            "$(cat "$TMP/r1.out" "$TMP/r1.err" "$TMP/r2.out" "$TMP/r2.err")"
        run ls "$LTXCTL" ls "$R2"
        [ "$(grep -c '^9 ' "$TMP/ls.out")" = 1 ] || fail "$kind: racing imports left $(grep -c '^9 ' "$TMP/ls.out") snapshots"
    done
    pass "$kind: of two racing imports exactly one lands (3 rounds)"
done

# ---- compact --------------------------------------------------------------------------------
# States 1..10 of a database: state 1 imported, states k>1 as level-0 files TXID k, written by
# mkincr.py with header time B + k seconds (B a little after the import).
cp a.db s1.db
for k in $(seq 2 10); do
    cp "s$((k - 1)).db" "s$k.db"
    sqlite3 "s$k.db" "UPDATE t SET v = randomblob(120) WHERE id % 11 = $k;
      INSERT INTO t(v, s) SELECT randomblob(100), 'row' || $k FROM t WHERE id < 40 + $k;"
done
# B on a whole hour, so that whether a level is due (now truncated to 30s, 5m, 1h) does not
# depend on when the test runs.
B=$(( ($(date +%s) / 3600 + 1) * 3600 * 1000 ))
mkl0() { # mkl0 K: the level-0 file for state K, in l0/
    mkdir -p l0
    python3 "$LTXDIR/mkincr.py" "s$(($1 - 1)).db" "s$1.db" "$1" $((B + $1 * 1000)) \
        "$("$LTXCTL" checksum "s$(($1 - 1)).db")" "$("$LTXCTL" checksum "s$1.db")" "l0/$1.ltx"
    "$LTXCTL" verify "l0/$1.ltx" >/dev/null || fail "mkincr.py wrote a bad file for state $1"
}
for k in $(seq 2 10); do mkl0 "$k"; done
iso() { python3 -c 'import sys,datetime; print(datetime.datetime.fromtimestamp(int(sys.argv[1])/1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]+"Z")' "$1"; }

x() { printf '%016x-%016x' "$1" "$2"; } # a TXID range as in file names
# levels R: "L:min-max ..." for every file, as ls prints them
levels() {
    local level min max rest
    "$LTXCTL" ls "$1" | grep '^[0-9]' | while read -r level min max rest; do
        printf '%s:%d-%d ' "$level" "$((16#$min))" "$((16#$max))"
    done
}
want_levels() { # want_levels R WANT WHAT
    local got
    got=$(levels "$1")
    [ "$got" = "$2" ] || fail "$3: files are \"$got\", want \"$2\"" "$(cat "$TMP/compact.out")"
}
check_restore() { # check_restore R STATE WHAT
    run restore "$LTXCTL" restore "$1" -o "$TMP/cr.db" --force
    rc_is 0 "$3: restore" restore
    cmp "$TMP/cr.db" "s$2.db" || fail "$3: restore differs from state $2"
    run verify "$LTXCTL" verify "$1"
    rc_is 0 "$3: verify" verify
}

R="file://$TMP/cmp"
"$LTXCTL" import s1.db "$R" >/dev/null
for k in 2 3 4 5 6; do put_file "$TMP/cmp" 0 "l0/$k.ltx"; done
want_levels "$R" "0:2-2 0:3-3 0:4-4 0:5-5 0:6-6 9:1-1 " "before compact"
check_restore "$R" 6 "before compact"

run compact "$LTXCTL" compact "$R" --dry-run --snapshot --now "$(iso $((B + 600000)))"
rc_is 0 "compact --dry-run" compact
has compact.out "L0 -> L1: would compact 5 files"
has compact.out "snapshot: would write"
has compact.out "retention: would delete"
want_levels "$R" "0:2-2 0:3-3 0:4-4 0:5-5 0:6-6 9:1-1 " "after --dry-run"
pass "compact --dry-run says what it would do and changes nothing"

# Pass 1, at B+10m: L1, L2, L3 from nothing; a forced snapshot; L0 retention (5m) deletes what
# L1 covers but the newest L0 file.
run compact "$LTXCTL" compact "$R" --snapshot --now "$(iso $((B + 600000)))"
rc_is 0 "compact pass 1" compact
has compact.out "L0 -> L1: compacted 5 files (TXID $(x 2 6))"
has compact.out "L1 -> L2: compacted 1 file"
has compact.out "L2 -> L3: compacted 1 file"
has compact.out "snapshot: wrote"
want_levels "$R" "0:6-6 1:2-6 2:2-6 3:2-6 9:1-1 9:1-6 " "after pass 1"
check_restore "$R" 6 "after pass 1"
pass "compact pass 1: L1..L3, a snapshot, L0 retention keeping the newest; restore and verify ok"

# Nothing is due two seconds after L1's newest file (B+6s), though new L0 files wait: the L1
# interval (30s, aligned) has not passed.
for k in 7 8; do put_file "$TMP/cmp" 0 "l0/$k.ltx"; done
run compact "$LTXCTL" compact "$R" --now "$(iso $((B + 8000)))" --l0-retention 0
rc_is 0 "compact, not due" compact
has compact.out "L0 -> L1: not due (2 files waiting"
has compact.out "snapshot: not due"
want_levels "$R" "0:6-6 0:7-7 0:8-8 1:2-6 2:2-6 3:2-6 9:1-1 9:1-6 " "after a pass that was not due"
pass "compact leaves levels that are not due (intervals) alone"

# Pass 2, at B+25h: L1..L3 take 7-8; the snapshot is due (24h); L0 retention; snapshot retention
# deletes 1-1 and 1-6 (older than 24h, not the newest); the floor (6) deletes nothing in 1..3.
run compact "$LTXCTL" compact "$R" --now "$(iso $((B + 90000000)))"
rc_is 0 "compact pass 2" compact
want_levels "$R" "0:8-8 1:2-6 1:7-8 2:2-6 2:7-8 3:2-6 3:7-8 9:1-8 " "after pass 2"
check_restore "$R" 8 "after pass 2"
run restore "$LTXCTL" restore "$R" -o "$TMP/c7.db" --txid 7
rc_is 1 "restore --txid 7 after retention (no file ends there)" restore
pass "compact pass 2: snapshot due after 24h, snapshot retention keeps the newest"

# Pass 3, at B+50h: the floor is now 8: files below it go from levels 1..3, each keeping its last.
for k in 9 10; do put_file "$TMP/cmp" 0 "l0/$k.ltx"; done
run compact "$LTXCTL" compact "$R" --now "$(iso $((B + 180000000)))"
rc_is 0 "compact pass 3" compact
has compact.out "below the oldest snapshot kept"
want_levels "$R" "0:10-10 1:7-8 1:9-10 2:7-8 2:9-10 3:7-8 3:9-10 9:1-10 " "after pass 3"
check_restore "$R" 10 "after pass 3"
pass "compact pass 3: retention below the snapshot floor, keeping each level's last file"

# --level N compacts that level only, due or not; over fakes3 the same pass works.
RS=$(S3URL cmp)
"$LTXCTL" import s1.db "$RS" >/dev/null
mkdir -p tree
for k in 2 3 4; do put_tree tree 0 "l0/$k.ltx"; done
put_s3 tree cmp
run compact "$LTXCTL" compact "$RS" --level 2
rc_is 0 "s3: compact --level 2" compact
has compact.out "L1 -> L2: nothing new to compact"
run compact "$LTXCTL" compact "$RS" --level 1
rc_is 0 "s3: compact --level 1" compact
want_levels "$RS" "0:2-2 0:3-3 0:4-4 1:2-4 9:1-1 " "s3: after --level 1"
run compact "$LTXCTL" compact "$RS" --snapshot --now "$(iso $((B + 600000)))"
rc_is 0 "s3: compact" compact
check_restore "$RS" 4 "s3: after compact"
pass "s3: compact --level and a full pass; restore and verify ok"

stop "$PID_s3"
echo "$passed passed, 0 failed"
