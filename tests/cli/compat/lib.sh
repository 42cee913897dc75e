# compat/lib.sh: what the real-client compatibility tests share (tests/cli/test_fakes3_compat_*.sh
# and test_fakes3_compat_*_multipart.sh). Sourced after tests/cli/fakes3/lib.sh,
# whose start/stop/pass/fail/req it builds on.
#
# Clients run in a clean environment (cenv): env -i with PATH=/usr/bin:/bin, HOME set to a folder
# in the scratch directory, and only the variables a test names. So nothing of the user's or the
# CI machine's own set-up reaches a client (~/.aws, ~/.s3cfg, ~/.config/rclone, AWS_* variables
# such as AWS_CA_BUNDLE, which rclone's SDK refuses on plain HTTP, proxies, pyenv shims), and the
# clients are Debian's, from /usr/bin.
#
# Paths are taken from LTXVFS_SOURCE_DIR, never from the script's own folder.

: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
COMPAT="$LTXVFS_SOURCE_DIR/tests/cli/compat"
CHOME="$TMP/home"
mkdir -p "$CHOME"

# A command that fails outside the checks (set -e) says where, instead of ending the test silently.
trap 'fail "line $LINENO of $(basename "$0"): \"$BASH_COMMAND\" failed (status $?)"' ERR

cenv() {
    env -i PATH=/usr/bin:/bin HOME="$CHOME" LANG=C.UTF-8 LC_ALL=C.UTF-8 TMPDIR="$TMP" "$@"
}

# need_cmd PROGRAM DEBIAN_PACKAGE: the client must be installed (a missing client fails the test;
# it is never skipped).
need_cmd() {
    cenv sh -c "command -v '$1'" >/dev/null ||
        fail "needs $1 in /usr/bin (Debian: $2; scripts/bootstrap.sh installs it)"
}

# run_ok WHAT CMD...: CMD must exit 0; its stdout is left in $TMP/out (and $OUT), its stderr in
# $TMP/client.err (shown by fail).
run_ok() {
    local what=$1 rc=0
    shift
    "$@" >"$TMP/out" 2>"$TMP/client.err" || rc=$?
    OUT=$(tr -d '\000' <"$TMP/out")
    [ "$rc" -eq 0 ] || fail "$what: exit status $rc" "command: $*" "stdout: $OUT"
}

# run_err WHAT WANT_RC TEXT CMD...: CMD must exit with WANT_RC ('!0' means any non-zero status),
# and its stdout or stderr must contain TEXT (e.g. the S3 error code). Both are left in $TMP/out.
run_err() {
    local what=$1 want=$2 text=$3 rc=0
    shift 3
    "$@" >"$TMP/out" 2>&1 || rc=$?
    OUT=$(tr -d '\000' <"$TMP/out")
    if [ "$want" = '!0' ]; then
        [ "$rc" -ne 0 ] || fail "$what: want a failure, the command succeeded" "command: $*" "$OUT"
    else
        [ "$rc" -eq "$want" ] || fail "$what: want exit status $want, got $rc" "command: $*" "$OUT"
    fi
    grep -qF -- "$text" "$TMP/out" || fail "$what: the output does not name $text" "command: $*" "$OUT"
}

# same FILE1 FILE2 WHAT: byte-identical.
same() {
    cmp -s "$1" "$2" || fail "$3: $2 differs from $1 ($(wc -c <"$1") vs $(wc -c <"$2") bytes)"
}

# eq GOT WANT WHAT
eq() {
    [ "$1" = "$2" ] || fail "$3: want \"$2\", got \"$1\""
}

# slice FILE OFFSET LENGTH: those bytes of FILE on stdout (LENGTH '' means to the end).
slice() {
    if [ -n "$3" ]; then
        dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
    else
        dd if="$1" bs=1M iflag=skip_bytes skip="$2" status=none
    fi
}

md5() { md5sum "$1" | cut -d' ' -f1; }

# make_data: $TMP/small (1000 random bytes) and $TMP/big (21 MiB + 7 bytes, random: over every
# client's multipart threshold, and not a multiple of any part size).
SMALL="$TMP/small"
BIG="$TMP/big"
BIG_SIZE=$((21 * 1024 * 1024 + 7))
make_data() {
    head -c 1000 /dev/urandom >"$SMALL"
    head -c "$BIG_SIZE" /dev/urandom >"$BIG"
}

# make_many DIR N: N small files DIR/k0000... whose content is their own name.
make_many() {
    mkdir -p "$1"
    local i
    for i in $(seq -f '%04g' 0 $(($2 - 1))); do printf 'k%s' "$i" >"$1/k$i"; done
}

# finish: the closing line.
finish() {
    echo "$passed passed, 0 failed"
}

# mp_etag FILE PART_SIZE: the ETag S3 gives FILE uploaded in parts of PART_SIZE bytes (the last
# one shorter): the MD5 of the parts' binary MD5s, then -N. mp_etag_parts PART_FILE...: the same
# for an upload of those files as its parts.
mp_etag_parts() {
    python3 -c 'import hashlib, sys
d = b"".join(hashlib.md5(open(p, "rb").read()).digest() for p in sys.argv[1:])
print(hashlib.md5(d).hexdigest() + "-" + str(len(sys.argv) - 1))' "$@"
}
mp_etag() {
    python3 - "$1" "$2" <<'PY'
import hashlib, sys
path, size = sys.argv[1], int(sys.argv[2])
digests = []
with open(path, "rb") as f:
    while True:
        part = f.read(size)
        if not part:
            break
        digests.append(hashlib.md5(part).digest())
print(hashlib.md5(b"".join(digests)).hexdigest() + "-" + str(len(digests)))
PY
}

# log_count OPERATION [RANGE-PREFIX]: how many requests of OPERATION fakes3's request log holds
# ($TMP/fakes3.log: tests start fakes3 with --log "$TMP/fakes3.log"); with RANGE-PREFIX, only those
# whose (percent-encoded) range starts with it, e.g. "bytes".
log_count() {
    grep -c "\"operation\":\"$1\".*\"range\":\"${2:-}" "$TMP/fakes3.log" || true
}

# no_5xx: fakes3's request log ($TMP/fakes3.log) has no 5xx answer but 501 NotImplemented for a
# bucket or object sub-resource (?acl, ?policy, ?cors...), which fakes3 does not have and which
# clients ask for in passing (s3cmd info) and take as "none".
no_5xx() {
    local bad
    bad=$(grep '"status":5[0-9][0-9]' "$TMP/fakes3.log" |
        grep -v '"operation":"[A-Za-z]*Subresource".*"status":501,"error":"NotImplemented"' || true)
    [ -z "$bad" ] || fail "fakes3 answered 5xx" "$(printf '%s\n' "$bad" | head -n 5)"
}
