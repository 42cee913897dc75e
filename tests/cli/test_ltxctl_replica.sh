#!/usr/bin/env bash
# test_ltxctl_replica: ltxctl ls, restore and verify over a replica laid out by hand from the LTX
# vectors (snapshot-txid1 at level 9, incr-txid2 and incr-txid3 at level 0), both as a file
# replica and in a real fakes3 (uploaded with awscli, an independent client):
#   - restore gives db-txid3.db byte for byte, db-txid2.db with --txid 2, db-txid1.db with --txid 1;
#   - ls prints the files (table and --json, --level);
#   - verify passes; a flipped byte makes verify and restore fail naming the file, and restore
#     leaves no output file and no temp file; a gap makes restore fail with the gap message;
#   - restore refuses to overwrite without --force, and replaces with it; a progress bar on a
#     terminal (script(1)) and nothing on stderr otherwise.
set -euo pipefail
source "$(dirname "$0")/ltxctl/lib.sh"
command -v script >/dev/null || fail "needs script (util-linux)"

start_s3

# The good replica, the damaged one, the one with a gap: in a file tree and in the bucket.
mkdir -p good bad gap s3good s3bad s3gap
for d in good bad gap; do put_file "$d" 9 "$VEC/snapshot-txid1.ltx"; done
for d in s3good s3bad s3gap; do put_tree "$d" 9 "$VEC/snapshot-txid1.ltx"; done
put_file good 0 "$VEC/incr-txid2.ltx"
put_file good 0 "$VEC/incr-txid3.ltx"
put_tree s3good 0 "$VEC/incr-txid2.ltx"
put_tree s3good 0 "$VEC/incr-txid3.ltx"
put_file bad 0 "$VEC/incr-txid2.ltx"
put_tree s3bad 0 "$VEC/incr-txid2.ltx"
cp "$VEC/incr-txid3.ltx" flipped.ltx
printf '\x55' | dd of=flipped.ltx bs=1 seek=3000 conv=notrunc status=none
cmp -s flipped.ltx "$VEC/incr-txid3.ltx" && fail "the byte flip did not change the file"
put_file bad 0 flipped.ltx
put_tree s3bad 0 flipped.ltx
put_file gap 0 "$VEC/incr-txid3.ltx"
put_tree s3gap 0 "$VEC/incr-txid3.ltx"
put_s3 s3good good
put_s3 s3bad bad
put_s3 s3gap gap
pass "replicas laid out (file and fakes3)"

N3=0000000000000003-0000000000000003.ltx
for kind in file s3; do
    if [ $kind = file ]; then
        GOOD="file://$TMP/good" BAD="$TMP/bad" GAP="file://$TMP/gap"
    else
        GOOD=$(S3URL good) BAD=$(S3URL bad) GAP=$(S3URL gap)
    fi

    run restore "$LTXCTL" restore "$GOOD" -o "$kind-3.db"
    rc_is 0 "$kind: restore latest" restore
    cmp "$kind-3.db" "$VEC/db-txid3.db" || fail "$kind: restore differs from db-txid3.db"
    has restore.out "restored TXID 0000000000000003 from 3 files"
    has restore.out "(verified)"
    [ ! -s "$TMP/restore.err" ] || fail "$kind: restore wrote to stderr without a terminal" "$(cat "$TMP/restore.err")"
    pass "$kind: restore gives db-txid3.db byte for byte (and no progress bar off a terminal)"

    # script(1) (util-linux) gives ltxctl a terminal.
    script -qec "'$LTXCTL' restore '$GOOD' -o '$kind-tty.db'" /dev/null >"$TMP/tty.out" 2>&1 ||
        fail "$kind: restore on a terminal" "$(cat "$TMP/tty.out")"
    grep -q '\[#*\] 100%' "$TMP/tty.out" || fail "$kind: no progress bar on a terminal" "$(cat "$TMP/tty.out")"
    cmp "$kind-tty.db" "$VEC/db-txid3.db" || fail "$kind: restore on a terminal differs"
    pass "$kind: a progress bar on a terminal"

    run restore "$LTXCTL" restore "$GOOD" -o "$kind-2.db" --txid 2
    rc_is 0 "$kind: restore --txid 2" restore
    cmp "$kind-2.db" "$VEC/db-txid2.db" || fail "$kind: --txid 2 differs from db-txid2.db"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-1.db" --txid 0000000000000001
    rc_is 0 "$kind: restore --txid 1" restore
    cmp "$kind-1.db" "$VEC/db-txid1.db" || fail "$kind: --txid 1 differs from db-txid1.db"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-9.db" --txid 9
    rc_is 1 "$kind: restore --txid 9 (not there)" restore
    [ ! -e "$kind-9.db" ] || fail "$kind: a failed restore left $kind-9.db"
    pass "$kind: --txid 2 gives db-txid2.db, --txid 1 db-txid1.db, --txid 9 fails"

    # The snapshot's header time is 2026-11-21T04:57:54.374Z, the incrementals' 2025-01-01 (made
    # earlier): a time before the snapshot finds nothing (the upload times, now, would have
    # allowed everything), one after it everything.
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-t.db" --timestamp 2026-11-21T05:00:00Z
    rc_is 0 "$kind: restore --timestamp" restore
    cmp "$kind-t.db" "$VEC/db-txid3.db" || fail "$kind: --timestamp differs from db-txid3.db"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-t0.db" --timestamp 2026-11-21T04:57:54.373Z
    rc_is 1 "$kind: restore --timestamp before the snapshot" restore
    grep -qiE "no state|not available" "$TMP/restore.err" || fail "$kind: --timestamp too early: unclear message" "$(cat "$TMP/restore.err")"
    [ ! -e "$kind-t0.db" ] || fail "$kind: a failed restore left $kind-t0.db"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-t1.db" --timestamp 1795237074374
    rc_is 0 "$kind: restore --timestamp at the snapshot's millisecond" restore
    pass "$kind: --timestamp picks by header timestamps"

    cp "$VEC/db-txid1.db" "$kind-exists.db"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-exists.db"
    rc_is 1 "$kind: restore over an existing file" restore
    has restore.err "--force"
    cmp "$kind-exists.db" "$VEC/db-txid1.db" || fail "$kind: the existing file was changed"
    run restore "$LTXCTL" restore "$GOOD" -o "$kind-exists.db" --force
    rc_is 0 "$kind: restore --force" restore
    cmp "$kind-exists.db" "$VEC/db-txid3.db" || fail "$kind: --force did not replace the file"
    pass "$kind: an existing output is refused, and replaced with --force"

    run ls "$LTXCTL" ls "$GOOD"
    rc_is 0 "$kind: ls" ls
    [ "$(grep -c '^0 ' "$TMP/ls.out")" = 2 ] || fail "$kind: ls: want 2 level-0 rows" "$(cat "$TMP/ls.out")"
    grep -Eq '^0 +0000000000000002 +0000000000000002 +454 ' "$TMP/ls.out" || fail "$kind: ls: no row for TXID 2" "$(cat "$TMP/ls.out")"
    grep -Eq '^0 +0000000000000003 +0000000000000003 +8076 ' "$TMP/ls.out" || fail "$kind: ls: no row for TXID 3" "$(cat "$TMP/ls.out")"
    grep -Eq '^9 +0000000000000001 +0000000000000001 +36885 ' "$TMP/ls.out" || fail "$kind: ls: no snapshot row" "$(cat "$TMP/ls.out")"
    has ls.out "# level 0: 2 files, TXID 0000000000000002-0000000000000003, 8530 bytes"
    run ls "$LTXCTL" ls "$GOOD" --json --level 0
    rc_is 0 "$kind: ls --json" ls
    python3 - "$TMP/ls.out" <<'PY' || fail "$kind: ls --json" "$(cat "$TMP/ls.out")"
import json, sys
d = json.load(open(sys.argv[1]))
f = d["files"]
assert [(x["level"], x["min_txid"], x["max_txid"], x["size"]) for x in f] == [
    (0, "0000000000000002", "0000000000000002", 454),
    (0, "0000000000000003", "0000000000000003", 8076)], f
assert f[1]["key"].endswith("0000000000000003-0000000000000003.ltx"), f
PY
    pass "$kind: ls (table, --json, --level)"

    run verify "$LTXCTL" verify "$GOOD"
    rc_is 0 "$kind: verify" verify
    has verify.out "3 files verified: ok"
    has verify.out "restore plan: 3 files up to TXID 0000000000000003: ok"
    pass "$kind: verify passes"

    run verify "$LTXCTL" verify "$BAD"
    rc_is 1 "$kind: verify of a flipped byte" verify
    has verify.err "$N3"
    has verify.err "checksum"
    run restore "$LTXCTL" restore "$BAD" -o "$kind-bad.db"
    rc_is 1 "$kind: restore of a flipped byte" restore
    has restore.err "$N3"
    [ -z "$(ls "$kind"-bad.db* 2>/dev/null)" ] || fail "$kind: a failed restore left files behind" "$(ls "$kind"-bad.db*)"
    pass "$kind: a flipped byte fails verify and restore, naming the file; no output left"

    run restore "$LTXCTL" restore "$GAP" -o "$kind-gap.db"
    rc_is 1 "$kind: restore across a gap" restore
    has restore.err "non-contiguous ltx files: have up to TXID 0000000000000001 but the next file starts at 0000000000000003"
    [ ! -e "$kind-gap.db" ] || fail "$kind: restore across a gap left the output"
    run verify "$LTXCTL" verify "$GAP"
    rc_is 1 "$kind: verify across a gap" verify
    has verify.err "non-contiguous"
    pass "$kind: a gap fails restore and verify with the gap message"
done

# The file forms of verify and compact still work (dispatch by argument).
run verify "$LTXCTL" verify "$VEC/incr-txid2.ltx"
rc_is 0 "verify FILE" verify
has verify.out "incr-txid2.ltx: ok"
run compact "$LTXCTL" compact -o c.ltx "$VEC/incr-txid2.ltx" "$VEC/incr-txid3.ltx"
rc_is 0 "compact FILES" compact
cmp c.ltx "$VEC/compact-txid2-3.ltx" >/dev/null 2>&1 || "$LTXCTL" verify c.ltx >/dev/null || fail "compact FILES output"
run usage "$LTXCTL" restore "$(S3URL good)"
rc_is 2 "restore without -o" usage
run usage "$LTXCTL" ls "$(S3URL good)" --timeout nonsense
rc_is 2 "ls with a bad --timeout" usage
pass "the file forms of verify and compact still work; usage errors exit 2"

stop "$PID_s3"
echo "$passed passed, 0 failed"
