#!/usr/bin/env bash
# test_ltxctl: end-to-end tests of build/ltxctl against the shared LTX vectors and the JSON
# sidecars that record what the reference Go tool `ltx` printed for them.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds ltxctl), LTXVFS_TESTDATA (the vectors are
# in $LTXVFS_TESTDATA/ltx, used in place, never modified). Needs bash, python3 (json module, to
# read the sidecars), sqlite3 (the round trip), cmp (diffutils). Scratch files live in a
# mktemp -d folder removed on exit. Stops at the first failure, saying what differed.
set -euo pipefail

: "${LTXVFS_BUILD_DIR:?set LTXVFS_BUILD_DIR to the build folder that holds ltxctl}"
: "${LTXVFS_TESTDATA:?set LTXVFS_TESTDATA to the shared testdata folder}"
LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
V="$LTXVFS_TESTDATA/ltx"

for tool in python3 sqlite3 cmp; do
    command -v "$tool" >/dev/null || { echo "test_ltxctl: needs $tool" >&2; exit 1; }
done
[ -x "$LTXCTL" ] || { echo "test_ltxctl: no executable $LTXCTL" >&2; exit 1; }
[ -f "$V/snapshot-txid1.ltx.json" ] || { echo "test_ltxctl: no vectors in $V" >&2; exit 1; }

# Under ASan/UBSan/LSan a report must never pass for an ordinary failure (exit 1).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:halt_on_error=1:print_stacktrace=1"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

FORMAT3=(snapshot-txid1.ltx incr-txid2.ltx incr-txid2-nochecksum.ltx incr-txid3.ltx
    compact-txid1-2.ltx compact-txid2-3.ltx snapshot-txid1.v3-lz4frame.ltx)
OLDFORMAT=(snapshot-txid1.v2.ltx litestream-000000000000000d-000000000000000d.v1.ltx)

# ---- helpers ----------------------------------------------------------------------------------

passed=0
pass() {
    passed=$((passed + 1))
    echo "ok $passed - $1"
}
fail() {
    echo "FAIL: $1" >&2
    shift
    for detail in "$@"; do printf '%s\n' "$detail" >&2; done
    echo "$passed passed, 1 failed"
    exit 1
}

# run ARGS...: runs ltxctl; sets RC, OUT (stdout), ERR (stderr). Never aborts the script.
run() {
    set +e
    "$LTXCTL" "$@" >"$TMP/.out" 2>"$TMP/.err"
    RC=$?
    set -e
    OUT=$(cat "$TMP/.out")
    ERR=$(cat "$TMP/.err")
}

ran() { printf 'command: ltxctl %s\nexit: %s\nstdout:\n%s\nstderr:\n%s' "$CMD" "$RC" "$OUT" "$ERR"; }

# expect_rc WANT DESC ARGS...: runs ltxctl ARGS and checks the exit status.
expect_rc() {
    local want=$1 desc=$2
    shift 2
    CMD="$*"
    run "$@"
    [ "$RC" -eq "$want" ] || fail "$desc: exit $RC, want $want" "$(ran)"
    if [ "$RC" -ge 128 ]; then fail "$desc: killed by a signal" "$(ran)"; fi
    pass "$desc"
}

# expect_eq DESC WANT GOT
expect_eq() {
    [ "$2" == "$3" ] || fail "$1: output differs" "--- want" "$2" "--- got" "$3" \
        "--- diff" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") || true)"
    pass "$1"
}

# expect_has DESC NEEDLE HAYSTACK
expect_has() {
    case "$3" in
    *"$2"*) pass "$1" ;;
    *) fail "$1: missing \"$2\"" "--- in" "$3" ;;
    esac
}

# expect_same DESC FILE_A FILE_B: byte for byte.
expect_same() {
    cmp "$2" "$3" >/dev/null 2>&1 || fail "$1: $2 and $3 differ" "$(cmp "$2" "$3" 2>&1 || true)"
    pass "$1"
}

# expect_absent DESC PATH
expect_absent() {
    [ ! -e "$2" ] || fail "$1: $2 exists"
    pass "$1"
}

# limited BLOCKS ARGS...: runs ltxctl with its file size limited to BLOCKS KiB (writes past it
# fail with EFBIG instead of raising SIGXFSZ); sets RC, OUT, ERR like run.
limited() {
    local blocks=$1
    shift
    CMD="(file size limit ${blocks} KiB) $*"
    set +e
    (
        ulimit -f "$blocks"
        trap '' XFSZ
        exec "$LTXCTL" "$@"
    ) >"$TMP/.out" 2>"$TMP/.err"
    RC=$?
    set -e
    OUT=$(cat "$TMP/.out")
    ERR=$(cat "$TMP/.err")
}

# expect_no_temp DESC DIR: nothing named *.tmp.* was left behind.
expect_no_temp() {
    local left
    left=$(find "$2" -name '*.tmp.*')
    [ -z "$left" ] || fail "$1: temp files left behind" "$left"
    pass "$1"
}

# sidecar QUERY NAME: what the sidecar of vector NAME says.
#   tsv        the `ltx list -tsv` output lines
#   tsvrow     its data line alone
#   dump       the lines our dump must contain, in order: the reference `ltx dump` lines (minus
#              blank ones), each frame's detail line, the page index entries
#   db         the database file the vector leads to, and its checksum
#   applies    one line per `ltx apply` run of the reference tool:
#              start_db|exit_code|expect_db|message|file file...
sidecar() {
    python3 - "$1" "$V/$2.json" <<'EOF'
import json, sys
query, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
if query == "tsv":
    print("\n".join(d["ltx_list_tsv"]["output"]))
elif query == "tsvrow":
    print(d["ltx_list_tsv"]["output"][1])
elif query == "db":
    print(d["post_state_db"]["file"], d["post_state_db"]["ltx_checksum"])
elif query == "dump":
    frames = {f"Frame #{i}: pgno={f['pgno']}": f for i, f in enumerate(d["frames"])}
    for line in d["ltx_dump"]["output_without_hexdump"]:
        if line == "# TRAILER":
            pi = d["page_index"]
            print("# PAGE INDEX")
            print(f"Offset:  {pi['offset']}")
            print(f"Size:    {pi['total_bytes']}")
            print(f"Entries: {len(pi['entries'])}")
            for i, e in enumerate(pi["entries"]):
                print(f"Entry #{i}: pgno={e['pgno']} offset={e['offset']} size={e['size']}")
        if line:
            print(line)
        f = frames.get(line)
        if f:
            print(f"  offset={f['offset']} size={f['frame_size']} flags=0x{f['page_flags']:04x} "
                  f"compressed_size={f['compressed_size']} encoding={f['encoding']} "
                  f"checksum={f['page_checksum']}")
elif query == "applies":
    for a in d["apply_checks"]:
        if a["tool"] != "ltx":
            continue
        msg = ""
        if a["exit_code"] != 0:
            msg = a["output"][0].split(": ", 1)[1]
        print("|".join([a["start_db"], str(a["exit_code"]), a.get("expect_db", ""), msg,
                        " ".join(a["apply"])]))
EOF
}

# table TSV: the cells of TSV as `ltx list` aligns them (Go's tabwriter, padding 2): each column
# as wide as its widest cell plus two spaces, the last one not padded.
table() {
    python3 - "$1" <<'EOF'
import sys
rows = [line.split("\t") for line in sys.argv[1].split("\n")]
width = [max(len(r[c]) for r in rows) + 2 for c in range(len(rows[0]))]
for r in rows:
    print("".join(cell.ljust(width[c]) for c, cell in enumerate(r[:-1])) + r[-1])
EOF
}

# subsequence WANT GOT: 0 when the lines of WANT appear in GOT in the same order.
subsequence() {
    python3 - "$1" "$2" <<'EOF'
import sys
want, got = sys.argv[1].split("\n"), sys.argv[2].split("\n")
i = 0
for line in got:
    if i < len(want) and line == want[i]:
        i += 1
if i < len(want):
    print(f"first line not found in order: {want[i]!r}")
    sys.exit(1)
EOF
}

# flip FILE OFFSET: inverts the byte at OFFSET in place.
flip() {
    python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, "rb").read())
b[off] ^= 0xFF
open(path, "wb").write(bytes(b))
EOF
}

# ---- usage, help, version ---------------------------------------------------------------------

COMMANDS=(apply checksum compact dump encode-db list verify)

expect_rc 0 "--version" --version
expect_has "--version names the tool" "ltxctl " "$OUT"
expect_rc 0 "version" version
for h in --help -h help; do
    expect_rc 0 "ltxctl $h" "$h"
    for c in "${COMMANDS[@]}"; do expect_has "ltxctl $h lists $c" "  $c " "$OUT"; done
done
for c in "${COMMANDS[@]}"; do
    for h in --help -h; do
        expect_rc 0 "$c $h" "$c" "$h"
        expect_has "$c $h shows its usage" "Usage: ltxctl $c" "$OUT"
    done
    expect_rc 0 "help $c" help "$c"
    expect_has "help $c shows its usage" "Usage: ltxctl $c" "$OUT"
    expect_rc 2 "$c with an unknown flag" "$c" -no-such-flag
    expect_has "$c unknown flag: hint" "ltxctl $c --help" "$ERR"
done

expect_rc 2 "no command" 
expect_rc 2 "unknown command" frobnicate
expect_has "unknown command: hint" "--help" "$ERR"
expect_rc 2 "unknown top-level flag" --frobnicate
expect_rc 2 "help for an unknown command" help frobnicate
expect_rc 2 "dump without a file" dump
expect_rc 2 "dump with two files" dump "$V/incr-txid2.ltx" "$V/incr-txid3.ltx"
expect_rc 2 "verify without a file" verify
expect_rc 2 "list without a file" list -tsv
expect_rc 2 "list -tsv=1 (a bool takes no value)" list -tsv=1 "$V/incr-txid2.ltx"
expect_rc 2 "checksum without a file" checksum
expect_rc 2 "encode-db without -o" encode-db "$V/db-txid1.db"
expect_rc 2 "encode-db -o without a value" encode-db "$V/db-txid1.db" -o
expect_has "missing value: says which flag" "-o" "$ERR"
expect_rc 2 "encode-db with a bad -timestamp" encode-db -timestamp 2025-13-01T00:00:00Z \
    -o "$TMP/x.ltx" "$V/db-txid1.db"
expect_rc 2 "encode-db with a timestamp missing its zone" encode-db \
    -timestamp 2025-01-01T00:00:00 -o "$TMP/x.ltx" "$V/db-txid1.db"
expect_absent "bad usage writes nothing" "$TMP/x.ltx"
expect_rc 2 "apply without -db" apply "$V/incr-txid2.ltx"
expect_rc 2 "apply without files" apply -db "$TMP/x.db"
expect_absent "apply usage error creates no database" "$TMP/x.db"
expect_rc 2 "compact without -o" compact "$V/incr-txid2.ltx" "$V/incr-txid3.ltx"
expect_rc 2 "compact without files" compact -o "$TMP/x.ltx"

# ---- verify -----------------------------------------------------------------------------------

for f in "${FORMAT3[@]}"; do
    expect_rc 0 "verify $f" verify "$V/$f"
    expect_eq "verify $f prints ok" "$V/$f: ok" "$OUT"
done
expect_rc 0 "verify every format-3 vector at once" verify "${FORMAT3[@]/#/$V/}"
for f in "${OLDFORMAT[@]}"; do
    expect_rc 1 "verify refuses older format $f" verify "$V/$f"
    expect_has "verify $f: error names the file" "ltxctl verify: $V/$f: " "$ERR"
done
expect_rc 1 "verify a good and a bad file" verify "$V/incr-txid2.ltx" "$V/${OLDFORMAT[0]}"
expect_eq "verify still reports the good file" "$V/incr-txid2.ltx: ok" "$OUT"

cp "$V/incr-txid3.ltx" "$TMP/corrupt.ltx"
flip "$TMP/corrupt.ltx" 1000 # inside the frame of page 7
expect_rc 1 "verify a corrupted copy" verify "$TMP/corrupt.ltx"
expect_has "verify corrupted: error format" "ltxctl verify: $TMP/corrupt.ltx: " "$ERR"
expect_rc 1 "verify a missing file" verify "$TMP/no-such.ltx"
expect_rc 1 "verify an empty file" verify /dev/null
expect_rc 1 "verify a folder" verify "$TMP"

# ---- list -------------------------------------------------------------------------------------

all_tsv="min_txid	max_txid	commit	pages	preapply	postapply	timestamp	wal_offset	wal_size	wal_salt"
for f in "${FORMAT3[@]}"; do
    expect_rc 0 "list -tsv $f" list -tsv "$V/$f"
    expect_eq "list -tsv $f equals the reference" "$(sidecar tsv "$f")" "$OUT"
    expect_rc 0 "list --tsv $f" list --tsv "$V/$f"
    expect_eq "list --tsv $f equals the reference" "$(sidecar tsv "$f")" "$OUT"
    all_tsv+=$'\n'"$(sidecar tsvrow "$f")"
done
expect_rc 0 "list -tsv of every vector" list -tsv "${FORMAT3[@]/#/$V/}"
expect_eq "list -tsv of every vector: one header, rows in order" "$all_tsv" "$OUT"
expect_rc 0 "list (table) of every vector" list "${FORMAT3[@]/#/$V/}"
expect_eq "list table: the -tsv cells in aligned columns" "$(table "$all_tsv")" "$OUT"
head -c 300 "$V/incr-txid2.ltx" >"$TMP/truncated.ltx"
expect_rc 1 "list a truncated file" list "$TMP/truncated.ltx"
expect_has "list truncated: error format" "ltxctl list: $TMP/truncated.ltx: " "$ERR"
expect_rc 1 "list of a good and a bad file" list -tsv "$V/incr-txid2.ltx" "$TMP/truncated.ltx"
expect_eq "list still lists the good file" "$(sidecar tsv incr-txid2.ltx)" "$OUT"
for f in "${OLDFORMAT[@]}"; do
    expect_rc 1 "list refuses older format $f" list -tsv "$V/$f"
done
set +e
"$LTXCTL" list -tsv "$V/incr-txid2.ltx" >/dev/full 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "list with stdout on /dev/full: exit $rc, want 1"
pass "a failed write to stdout is an error"

# ---- dump -------------------------------------------------------------------------------------

for f in "${FORMAT3[@]}"; do
    expect_rc 0 "dump $f" dump "$V/$f"
    want=$(sidecar dump "$f")
    why=$(subsequence "$want" "$OUT") || fail "dump $f: reference lines missing: $why" "$OUT"
    pass "dump $f has the reference lines, frame details and page index"
done
expect_rc 1 "dump of a format-2 file fails" dump "$V/snapshot-txid1.v2.ltx"
expect_has "dump format-2: header printed first" "Page size: 4096" "$OUT"
expect_has "dump format-2: error format" "ltxctl dump: $V/snapshot-txid1.v2.ltx: " "$ERR"
expect_rc 1 "dump of a corrupted copy fails" dump "$TMP/corrupt.ltx"

# ---- checksum ---------------------------------------------------------------------------------

for f in snapshot-txid1.ltx incr-txid2.ltx incr-txid3.ltx \
    litestream-000000000000000d-000000000000000d.v1.ltx; do
    read -r db sum < <(sidecar db "$f")
    expect_rc 0 "checksum $db" checksum "$V/$db"
    expect_eq "checksum $db equals the reference" "$sum" "$OUT"
done
: >"$TMP/empty.db"
expect_rc 0 "checksum of an empty file" checksum "$TMP/empty.db"
expect_eq "checksum of an empty file is zero" "0000000000000000" "$OUT"
expect_rc 1 "checksum of a file that is not a database" checksum "$V/incr-txid2.ltx"
expect_rc 1 "checksum of a missing file" checksum "$TMP/no-such.db"

# ---- encode-db --------------------------------------------------------------------------------

SNAP_TS=2026-11-21T04:57:54.374Z # the timestamp of snapshot-txid1.ltx
expect_rc 0 "encode-db db-txid1.db" encode-db -timestamp "$SNAP_TS" -o "$TMP/snap.ltx" \
    "$V/db-txid1.db"
expect_eq "encode-db prints nothing" "" "$OUT$ERR"
expect_rc 0 "verify our snapshot" verify "$TMP/snap.ltx"
expect_rc 0 "list our snapshot" list -tsv "$TMP/snap.ltx"
expect_eq "our snapshot lists as the reference's" "$(sidecar tsv snapshot-txid1.ltx)" "$OUT"
expect_rc 0 "dump our snapshot" dump "$TMP/snap.ltx"
expect_has "dump shows the millisecond timestamp" \
    "Timestamp: 2026-11-21T04:57:54.374Z (1795237074374)" "$OUT"
expect_no_temp "encode-db leaves no temp file" "$TMP"
expect_rc 0 "encode-db -timestamp in milliseconds" encode-db -timestamp 1795237074374 \
    -o "$TMP/snap-ms.ltx" "$V/db-txid1.db"
expect_same "milliseconds and RFC 3339 give the same file" "$TMP/snap.ltx" "$TMP/snap-ms.ltx"
expect_rc 0 "encode-db -timestamp with a zone offset" encode-db \
    --timestamp=2026-11-21T06:57:54.374+02:00 --o="$TMP/snap-tz.ltx" "$V/db-txid1.db"
expect_same "a zone offset gives the same file" "$TMP/snap.ltx" "$TMP/snap-tz.ltx"
expect_rc 0 "encode-db -v" encode-db -v -o "$TMP/snap-now.ltx" "$V/db-txid1.db"
expect_has "encode-db -v says what it wrote" "$TMP/snap-now.ltx" "$OUT"
expect_rc 0 "dump snapshot stamped now" dump "$TMP/snap-now.ltx"
now_ms=$(($(date +%s) * 1000))
stamp=$(printf '%s\n' "$OUT" | sed -n 's/^Timestamp: .* (\(-\{0,1\}[0-9]*\))$/\1/p')
if [ -z "$stamp" ] || [ $((now_ms - stamp)) -ge 60000 ] || [ $((stamp - now_ms)) -ge 60000 ]; then
    fail "default timestamp '$stamp' is not now ($now_ms)"
fi
pass "the default timestamp is now"

expect_rc 0 "apply our snapshot to a new database" apply -db "$TMP/from-snap.db" "$TMP/snap.ltx"
expect_same "encode-db then apply gives db-txid1.db" "$V/db-txid1.db" "$TMP/from-snap.db"

cp "$V/db-txid1.db" "$TMP/wal.db"
printf 'not really a wal' >"$TMP/wal.db-wal"
expect_rc 1 "encode-db refuses a database with a non-empty -wal" encode-db -o "$TMP/wal.ltx" \
    "$TMP/wal.db"
expect_has "encode-db -wal refusal says why" "WAL mode with uncheckpointed frames" "$ERR"
expect_has "encode-db -wal refusal says what to do" "checkpoint first" "$ERR"
expect_absent "refused encode-db writes nothing" "$TMP/wal.ltx"
: >"$TMP/wal.db-wal"
expect_rc 0 "encode-db accepts an empty -wal" encode-db -o "$TMP/wal.ltx" "$TMP/wal.db"
rm -f "$TMP/wal.db-wal"

cp "$V/db-txid1.db" "$TMP/self.db"
expect_rc 1 "encode-db -o the database itself" encode-db -o "$TMP/self.db" "$TMP/self.db"
expect_same "the database is untouched" "$V/db-txid1.db" "$TMP/self.db"
printf 'old contents' >"$TMP/keep.ltx"
expect_rc 1 "encode-db of a file that is not a database" encode-db -o "$TMP/keep.ltx" \
    "$V/incr-txid2.ltx"
expect_eq "a failed encode-db leaves the old output alone" "old contents" "$(cat "$TMP/keep.ltx")"
expect_rc 1 "encode-db of an empty file" encode-db -o "$TMP/e.ltx" "$TMP/empty.db"
expect_absent "failed encode-db writes nothing" "$TMP/e.ltx"
limited 8 encode-db -o "$TMP/efbig.ltx" "$V/db-txid1.db"
[ "$RC" -eq 1 ] || fail "encode-db with a failing write: exit $RC, want 1" "$(ran)"
pass "encode-db with a write that fails part-way"
expect_has "a failed write names the output" "ltxctl encode-db: $TMP/efbig.ltx: " "$ERR"
expect_absent "a failed write leaves no output" "$TMP/efbig.ltx"
expect_rc 1 "encode-db into a missing folder" encode-db -o "$TMP/no/such/dir.ltx" "$V/db-txid1.db"
expect_no_temp "failed encode-db leaves no temp file" "$TMP"

# ---- apply ------------------------------------------------------------------------------------

expect_rc 0 "apply snapshot, txid2, txid3 to a new database" apply -db "$TMP/chain.db" \
    "$V/snapshot-txid1.ltx" "$V/incr-txid2.ltx" "$V/incr-txid3.ltx"
expect_eq "apply prints nothing" "" "$OUT$ERR"
expect_same "the chain gives db-txid3.db" "$V/db-txid3.db" "$TMP/chain.db"

cp "$V/db-txid2.db" "$TMP/mismatch.db"
expect_rc 1 "apply incr-txid2 onto db-txid2" apply -db "$TMP/mismatch.db" "$V/incr-txid2.ltx"
expect_has "apply mismatch: the reference message" \
    "pre-apply checksum mismatch: cd115f8f97105891 <> c267408b523358b2" "$ERR"
expect_has "apply mismatch: names the file" "ltxctl apply: $V/incr-txid2.ltx: " "$ERR"
expect_same "apply mismatch leaves the database unchanged" "$V/db-txid2.db" "$TMP/mismatch.db"

# Every `ltx apply` run recorded in the sidecars, repeated with ltxctl.
n=0
for f in "${FORMAT3[@]}"; do
    while IFS='|' read -r start code expect msg files; do
        n=$((n + 1))
        db="$TMP/ref-apply-$n.db"
        if [ "$start" == "(new empty file)" ]; then
            : >"$db"
            orig="$TMP/empty.db"
        else
            cp "$V/$start" "$db"
            orig="$V/$start"
        fi
        args=()
        for x in $files; do args+=("$V/$x"); done
        expect_rc "$code" "reference apply #$n: $start + $files" apply --db "$db" "${args[@]}"
        if [ "$code" -eq 0 ]; then
            expect_same "reference apply #$n gives $expect" "$V/$expect" "$db"
        else
            expect_has "reference apply #$n: message" "$msg" "$ERR"
            expect_same "reference apply #$n: database unchanged" "$orig" "$db"
        fi
    done < <(sidecar applies "$f")
done
[ "$n" -ge 8 ] || fail "only $n reference apply runs found in the sidecars"
pass "all $n reference apply runs repeated"

cp "$V/db-txid2.db" "$TMP/corrupt-apply.db"
expect_rc 1 "apply a corrupted file" apply -db "$TMP/corrupt-apply.db" "$TMP/corrupt.ltx"
expect_same "a corrupted file leaves the database unchanged" "$V/db-txid2.db" \
    "$TMP/corrupt-apply.db"
cp "$V/db-txid1.db" "$TMP/half.db"
expect_rc 1 "apply a good file then a corrupted one" apply -db "$TMP/half.db" \
    "$V/incr-txid2.ltx" "$TMP/corrupt.ltx"
expect_same "the database holds the good file only" "$V/db-txid2.db" "$TMP/half.db"
expect_rc 1 "apply a corrupted file to a missing database" apply -db "$TMP/never.db" \
    "$TMP/corrupt.ltx"
expect_absent "a failed apply leaves no new database behind" "$TMP/never.db"
expect_rc 1 "apply a format-2 file" apply -db "$TMP/never.db" "$V/snapshot-txid1.v2.ltx"
expect_absent "no database after a format-2 apply" "$TMP/never.db"

cp "$V/db-txid1.db" "$TMP/nock.db"
expect_rc 0 "apply -v NoChecksum then checksummed files" apply -v -db "$TMP/nock.db" \
    "$V/incr-txid2-nochecksum.ltx" "$V/incr-txid3.ltx"
expect_same "NoChecksum file in a chain gives db-txid3.db" "$V/db-txid3.db" "$TMP/nock.db"
expect_has "apply -v reports the final checksum" "database of 30 pages, checksum 99b99777dc425342" "$OUT"

cp "$V/db-txid1.db" "$TMP/walapply.db"
printf 'frames' >"$TMP/walapply.db-wal"
expect_rc 1 "apply refuses a database with a non-empty -wal" apply -db "$TMP/walapply.db" \
    "$V/incr-txid2.ltx"
expect_same "refused apply leaves the database unchanged" "$V/db-txid1.db" "$TMP/walapply.db"

printf 'this is not a database, it is a text file of some length' >"$TMP/junk.db"
expect_rc 1 "apply an incremental file onto a non-database" apply -db "$TMP/junk.db" \
    "$V/incr-txid2.ltx"
expect_has "apply onto a non-database: says so" "ltxctl apply: $TMP/junk.db: " "$ERR"
cp "$TMP/junk.db" "$TMP/junk-orig.db"
# A snapshot over a file that is not a database: the codec may refuse it (then the file is
# untouched) or replace it (then it is exactly the snapshot's database); nothing in between.
CMD="apply -db $TMP/junk.db $V/snapshot-txid1.ltx"
run apply -db "$TMP/junk.db" "$V/snapshot-txid1.ltx"
case "$RC" in
0) expect_same "a snapshot over a non-database replaces it" "$V/db-txid1.db" "$TMP/junk.db" ;;
1) expect_same "a refused snapshot leaves the non-database alone" "$TMP/junk-orig.db" \
    "$TMP/junk.db" ;;
*) fail "apply a snapshot over a non-database: exit $RC" "$(ran)" ;;
esac

# ---- compact ----------------------------------------------------------------------------------

expect_rc 0 "compact incr-txid2 incr-txid3" compact -o "$TMP/c23.ltx" "$V/incr-txid2.ltx" \
    "$V/incr-txid3.ltx"
expect_eq "compact prints nothing" "" "$OUT$ERR"
expect_rc 0 "verify the compaction" verify "$TMP/c23.ltx"
expect_rc 0 "list the compaction" list -tsv "$TMP/c23.ltx"
expect_eq "the compaction lists as the reference's" "$(sidecar tsv compact-txid2-3.ltx)" "$OUT"
cp "$V/db-txid1.db" "$TMP/c23.db"
expect_rc 0 "apply the compaction onto db-txid1.db" apply -db "$TMP/c23.db" "$TMP/c23.ltx"
expect_same "compaction onto db-txid1.db gives db-txid3.db" "$V/db-txid3.db" "$TMP/c23.db"

expect_rc 0 "compact -v snapshot incr-txid2" compact -v -o "$TMP/c12.ltx" \
    "$V/snapshot-txid1.ltx" "$V/incr-txid2.ltx"
expect_has "compact -v says what it wrote" "$TMP/c12.ltx" "$OUT"
expect_rc 0 "list the snapshot compaction" list -tsv "$TMP/c12.ltx"
expect_eq "the snapshot compaction lists as the reference's" "$(sidecar tsv compact-txid1-2.ltx)" \
    "$OUT"
expect_rc 0 "apply the snapshot compaction" apply -db "$TMP/c12.db" "$TMP/c12.ltx"
expect_same "the snapshot compaction gives db-txid2.db" "$V/db-txid2.db" "$TMP/c12.db"

expect_rc 1 "compact non-contiguous files" compact -o "$TMP/gap.ltx" "$V/snapshot-txid1.ltx" \
    "$V/incr-txid3.ltx"
expect_absent "failed compact leaves no output" "$TMP/gap.ltx"
expect_rc 1 "compact a corrupted input" compact -o "$TMP/bad.ltx" "$V/incr-txid2.ltx" \
    "$TMP/corrupt.ltx"
expect_absent "compact of a corrupted input leaves no output" "$TMP/bad.ltx"
printf 'old contents' >"$TMP/keep2.ltx"
expect_rc 1 "compact in the wrong order" compact -o "$TMP/keep2.ltx" "$V/incr-txid3.ltx" \
    "$V/incr-txid2.ltx"
expect_eq "a failed compact leaves the old output alone" "old contents" "$(cat "$TMP/keep2.ltx")"
cp "$V/incr-txid2.ltx" "$TMP/in2.ltx"
expect_rc 1 "compact -o one of its inputs" compact -o "$TMP/in2.ltx" "$TMP/in2.ltx" \
    "$V/incr-txid3.ltx"
expect_same "the input is untouched" "$V/incr-txid2.ltx" "$TMP/in2.ltx"
limited 4 compact -o "$TMP/efbig.ltx" "$V/incr-txid2.ltx" "$V/incr-txid3.ltx"
[ "$RC" -eq 1 ] || fail "compact with a failing write: exit $RC, want 1" "$(ran)"
pass "compact with a write that fails part-way"
expect_has "a failed compact write names the output" "ltxctl compact: $TMP/efbig.ltx: " "$ERR"
expect_absent "a failed compact write leaves no output" "$TMP/efbig.ltx"
expect_rc 1 "compact a missing input" compact -o "$TMP/m.ltx" "$TMP/no-such.ltx"
expect_absent "compact of a missing input leaves no output" "$TMP/m.ltx"
expect_no_temp "failed compactions leave no temp files" "$TMP"

# ---- a SQLite round trip ----------------------------------------------------------------------

for ps in 512 4096 65536; do
    db="$TMP/rt-$ps.db"
    sqlite3 "$db" <<EOF
PRAGMA page_size = $ps;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n REAL, b BLOB);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
INSERT INTO t SELECT i, 'row ' || i, i * 1.5, zeroblob(i % 300) FROM c;
CREATE INDEX t_name ON t(name);
UPDATE t SET b = x'00ff00ff' WHERE id % 7 = 0;
DELETE FROM t WHERE id % 11 = 0;
EOF
    expect_rc 0 "encode-db of a page size $ps database" encode-db -o "$TMP/rt-$ps.ltx" "$db"
    expect_rc 0 "verify it" verify "$TMP/rt-$ps.ltx"
    expect_rc 0 "apply it to a new file" apply -db "$TMP/rt-$ps-new.db" "$TMP/rt-$ps.ltx"
    expect_same "page size $ps: the new file is the database" "$db" "$TMP/rt-$ps-new.db"
    q='SELECT count(*), sum(id), sum(n), group_concat(hex(b)), max(name) FROM t;'
    expect_eq "page size $ps: sqlite3 reads the same rows" "$(sqlite3 "$db" "$q")" \
        "$(sqlite3 "$TMP/rt-$ps-new.db" "$q")"
    expect_eq "page size $ps: integrity_check" "ok" \
        "$(sqlite3 "$TMP/rt-$ps-new.db" 'PRAGMA integrity_check;')"
    expect_rc 0 "checksum of the copy" checksum "$TMP/rt-$ps-new.db"
    sum=$OUT
    expect_rc 0 "list it" list -tsv "$TMP/rt-$ps.ltx"
    expect_eq "page size $ps: the snapshot's post-apply is the database checksum" "$sum" \
        "$(printf '%s\n' "$OUT" | sed -n 2p | cut -f6)"
done

# ---- damaged input never crashes --------------------------------------------------------------

# Every byte of a small file inverted in turn: verify, list and dump must fail cleanly (exit 1)
# or, where the damage happens to be harmless, succeed; never crash. A damaged header or trailer
# is always caught by verify. apply of a damaged file never changes the database.
src="$V/incr-txid2.ltx"
size=$(wc -c <"$src")
read -r -a bytes < <(od -An -tu1 -v "$src" | tr '\n' ' '; echo)
[ "${#bytes[@]}" -eq "$size" ] || fail "od read ${#bytes[@]} bytes of $size"
for ((off = 0; off < size; off++)); do
    cp "$src" "$TMP/m.ltx"
    # shellcheck disable=SC2059 # the format is the octal escape of the inverted byte
    printf "\\$(printf %03o $((bytes[off] ^ 255)))" |
        dd of="$TMP/m.ltx" bs=1 seek="$off" conv=notrunc status=none
    for c in verify list dump; do
        set +e
        "$LTXCTL" "$c" "$TMP/m.ltx" >/dev/null 2>"$TMP/m.err"
        rc=$?
        set -e
        [ "$rc" -le 1 ] || fail "$c with byte $off inverted: exit $rc" "$(cat "$TMP/m.err")"
        if [ "$c" == verify ] && { [ "$off" -lt 100 ] || [ "$off" -ge $((size - 16)) ]; }; then
            [ "$rc" -eq 1 ] || fail "verify missed an inverted byte at $off"
        fi
    done
    if ((off % 5 == 0)); then
        cp "$V/db-txid1.db" "$TMP/m.db"
        set +e
        "$LTXCTL" apply -db "$TMP/m.db" "$TMP/m.ltx" >/dev/null 2>&1
        rc=$?
        set -e
        [ "$rc" -le 1 ] || fail "apply with byte $off inverted: exit $rc"
        [ "$rc" -eq 0 ] || cmp -s "$V/db-txid1.db" "$TMP/m.db" ||
            fail "apply with byte $off inverted failed but changed the database"
        [ "$rc" -ne 0 ] || cmp -s "$V/db-txid2.db" "$TMP/m.db" ||
            fail "apply with byte $off inverted succeeded with a wrong result"
    fi
done
pass "every inverted byte of incr-txid2.ltx handled ($size bytes x verify, list, dump, apply)"

for len in 0 1 50 99 100 101 106 200 419 425 440 446 453; do
    head -c "$len" "$src" >"$TMP/t.ltx"
    for c in verify list dump; do
        set +e
        "$LTXCTL" "$c" "$TMP/t.ltx" >/dev/null 2>&1
        rc=$?
        set -e
        [ "$rc" -eq 1 ] || fail "$c of incr-txid2.ltx cut to $len bytes: exit $rc, want 1"
    done
done
cat "$src" "$src" >"$TMP/t.ltx"
expect_rc 1 "verify a file with bytes after the trailer" verify "$TMP/t.ltx"
pass "truncated files fail cleanly"

echo "$passed passed, 0 failed"
