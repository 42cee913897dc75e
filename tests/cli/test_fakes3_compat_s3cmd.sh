#!/usr/bin/env bash
# test_fakes3_compat_s3cmd: build/fakes3 as s3cmd sees it (Debian's s3cmd, 2.3 on Debian 12),
# SigV4 with a key pair, path style, us-east-1: buckets (mb, ls, info, du, rb); small objects
# with a content type, a header and user metadata under an awkward key; a 21 MiB object put in
# one request (--disable-multipart) and got whole and resumed (get --continue: bytes=a-); info
# (HEAD); listings of 1100 keys (ListObjects v1 with markers), by prefix and with the delimiter;
# put --recursive and sync; single delete; a conditional PUT (--add-header If-None-Match:*:
# 412); a wrong secret (403 SignatureDoesNotMatch); NoSuchKey and NoSuchBucket; BucketNotEmpty.
#
# s3cmd has no ranged GET of its own but --continue, and it presigns only with Signature V2
# (signurl), which fakes3 does not accept: the case checks that refusal (403 AccessDenied, an S3
# error document). Multipart uploads, cp/mv (CopyObject) and del --recursive (DeleteObjects) are
# in tests/cli/test_fakes3_compat_s3cmd_multipart.sh.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
source "$LTXVFS_SOURCE_DIR/tests/cli/compat/lib.sh"
need_cmd s3cmd s3cmd

start disk --data-dir "$TMP/data" --log "$TMP/fakes3.log"
make_data
source "$COMPAT/s3cmd/setup.sh"
B=compat-s3cmd
run_ok "s3cmd --version" s3cmd --version
echo "# $OUT"

# ---- buckets
run_ok "mb" s3cmd mb "s3://$B"
eq "$OUT" "Bucket 's3://$B/' created" "s3cmd mb"
run_ok "mb (second bucket)" s3cmd mb "s3://$B-empty"
run_ok "ls" s3cmd ls
eq "$(awk '{print $3}' "$TMP/out" | tr '\n' ' ')" "s3://$B s3://$B-empty " "s3cmd ls"
run_ok "info (bucket)" s3cmd info "s3://$B"
grep -q '^ *Location: *us-east-1$' "$TMP/out" || fail "s3cmd info: no Location us-east-1" "$OUT"
pass "create buckets, list them, bucket info (location)"

# ---- small objects
run_ok "put" s3cmd put "$SMALL" "s3://$B/dir/small.bin"
run_ok "get" s3cmd get --force "s3://$B/dir/small.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "small object through put and get"
run_ok "get to stdout" s3cmd get --force "s3://$B/dir/small.bin" -
same "$SMALL" "$TMP/out" "small object through get to stdout"
pass "put and get a small object (to a file and to stdout)"

KEY_ODD='dir/ünï cödé + 100% & =?.txt'
run_ok "put (odd key, headers)" s3cmd put --mime-type text/x-compat \
    --add-header 'Cache-Control: max-age=60' --add-header 'x-amz-meta-colour: blue' \
    "$SMALL" "s3://$B/$KEY_ODD"
run_ok "info (odd key)" s3cmd info "s3://$B/$KEY_ODD"
grep -q '^ *File size: 1000$' "$TMP/out" && grep -q '^ *MIME type: text/x-compat$' "$TMP/out" &&
    grep -q "^ *MD5 sum: *$(md5 "$SMALL")\$" "$TMP/out" &&
    grep -q '^ *x-amz-meta-colour: blue$' "$TMP/out" || fail "s3cmd info (HEAD)" "$OUT"
run_ok "get (odd key)" s3cmd get --force "s3://$B/$KEY_ODD" "$TMP/got"
same "$SMALL" "$TMP/got" "get of the awkward key"
raw_get() { req 200 "$URL/$B/dir/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%20%2B%20100%25%20%26%20%3D%3F.txt"; }
raw_get
header_is Cache-Control max-age=60
header_is Content-Type text/x-compat
header_is x-amz-meta-colour blue
pass "info (HEAD) and get of an awkward key with content type, Cache-Control, user metadata"

# ---- a 21 MiB object in one PUT; a resumed download (Range: bytes=a-)
run_ok "put --disable-multipart (big)" s3cmd put --disable-multipart "$BIG" "s3://$B/big.bin"
run_ok "info (big)" s3cmd info "s3://$B/big.bin"
grep -q "^ *File size: $BIG_SIZE\$" "$TMP/out" && grep -q "^ *MD5 sum: *$(md5 "$BIG")\$" "$TMP/out" ||
    fail "s3cmd info of the 21 MiB object" "$OUT"
eq "$(log_count PutObject) $(log_count CreateMultipartUpload)" "3 0" \
    "PutObject and CreateMultipartUpload requests so far (the big one in one request)"
run_ok "get (big)" s3cmd get --force "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "21 MiB object through get"
slice "$BIG" 0 5000000 >"$TMP/partial"
run_ok "get --continue (big)" s3cmd get --continue "s3://$B/big.bin" "$TMP/partial"
same "$BIG" "$TMP/partial" "a download resumed with get --continue"
grep -q '"operation":"GetObject","bucket":"'"$B"'","key":"big.bin","range":"bytes%3D5000000-","status":206' \
    "$TMP/fakes3.log" || fail "get --continue did not make a ranged GET (bytes=5000000-)"
pass "put a 21 MiB object in one request, get it whole and resumed (bytes=5000000-, 206)"

# ---- listings: 1100 keys (ListObjects v1, pages of 1000 with markers)
make_many "$TMP/many" 1100
run_ok "put --recursive (1100 files)" s3cmd put --recursive --quiet "$TMP/many/" "s3://$B/many/"
run_ok "sync (nothing to do)" s3cmd sync "$TMP/many/" "s3://$B/many/"
grep -q 'upload:' "$TMP/out" && fail "s3cmd sync uploaded again" "$OUT"
before=$(log_count ListObjects)
run_ok "ls (1100 keys)" s3cmd ls "s3://$B/many/"
eq "$(wc -l <"$TMP/out")" 1100 "s3cmd ls of 1100 keys"
eq "$(awk '{print $4}' "$TMP/out" | sort -c && echo sorted)" sorted "s3cmd ls order"
eq "$(awk 'NR==1 || NR==1100 {print $4}' "$TMP/out" | tr '\n' ' ')" \
    "s3://$B/many/k0000 s3://$B/many/k1099 " "first and last key"
eq $(($(log_count ListObjects) - before)) 2 "s3cmd ls of 1100 keys: pages of 1000"
run_ok "ls --recursive" s3cmd ls --recursive "s3://$B"
eq "$(wc -l <"$TMP/out")" 1103 "s3cmd ls --recursive"
run_ok "du" s3cmd du "s3://$B"
eq "$(awk '{print $1, $2}' "$TMP/out")" "$((1000 + 1000 + BIG_SIZE + 1100 * 5)) 1103" "s3cmd du"
pass "put --recursive of 1100 files, sync finds nothing to do, ls of 1100 keys (2 pages), du"

run_ok "ls (top, delimiter)" s3cmd ls "s3://$B/"
grep -q "^ *DIR *s3://$B/dir/\$" "$TMP/out" && grep -q "^ *DIR *s3://$B/many/\$" "$TMP/out" &&
    grep -q " $BIG_SIZE *s3://$B/big.bin\$" "$TMP/out" && [ "$(wc -l <"$TMP/out")" -eq 3 ] ||
    fail "s3cmd ls s3://$B/ (CommonPrefixes)" "$OUT"
run_ok "ls (prefix many/k10)" s3cmd ls "s3://$B/many/k10"
eq "$(wc -l <"$TMP/out")" 100 "s3cmd ls by prefix"
run_ok "ls (prefix dir/)" s3cmd ls "s3://$B/dir/"
eq "$(awk '{print $3}' "$TMP/out" | tr '\n' ' ')" "1000 1000 " "s3cmd ls s3://$B/dir/ sizes"
grep -qF "s3://$B/$KEY_ODD" "$TMP/out" || fail "s3cmd ls lacks the awkward key" "$OUT"
pass "listings: delimiter (DIR entries), prefix, the awkward key"

# ---- single delete
run_ok "del" s3cmd del "s3://$B/dir/small.bin"
eq "$OUT" "delete: 's3://$B/dir/small.bin'" "s3cmd del"
run_err "info after del" 12 "404 (NoSuchKey)" s3cmd info "s3://$B/dir/small.bin"
req 404 "$URL/$B/dir/small.bin"
error_is NoSuchKey
pass "delete a single object"

# ---- a conditional PUT
run_err "put If-None-Match: * over an existing key" 14 "412 (PreconditionFailed)" \
    s3cmd put --add-header='If-None-Match:*' "$TMP/many/k0007" "s3://$B/$KEY_ODD"
run_ok "put If-None-Match: * to a new key" s3cmd put --add-header='If-None-Match:*' "$SMALL" \
    "s3://$B/cond-new.bin"
run_ok "get (after the refused PUT)" s3cmd get --force "s3://$B/$KEY_ODD" "$TMP/got"
same "$SMALL" "$TMP/got" "the object after the refused conditional PUT"
pass "conditional PUT (--add-header If-None-Match:*): 412 PreconditionFailed, object unchanged"

# ---- presigned URLs: s3cmd signs them with Signature V2 only, which fakes3 refuses (SigV4 only).
run_ok "signurl" s3cmd signurl "s3://$B/big.bin" +300
case "$OUT" in *"AWSAccessKeyId=$KEY&Expires="*"&Signature="*) ;; *) fail "signurl: $OUT" ;; esac
raw 403 "$OUT"
error_is AccessDenied
pass "signurl makes a SigV2 URL; fakes3 (SigV4 only) refuses it with 403 AccessDenied"

# ---- a wrong secret
run_err "ls with a wrong secret" 77 "403 (SignatureDoesNotMatch)" s3cmd_wrong ls "s3://$B"
run_err "put with a wrong secret" 77 "403 (SignatureDoesNotMatch)" \
    s3cmd_wrong put "$SMALL" "s3://$B/wrong.bin"
req 404 "$URL/$B/wrong.bin"
pass "a wrong secret: 403 SignatureDoesNotMatch, nothing stored"

# ---- errors
run_err "info of an absent key" 12 "404 (NoSuchKey)" s3cmd info "s3://$B/no/such/key"
run_err "get of an absent key" 64 "does not exist" s3cmd get --force "s3://$B/no/such/key" "$TMP/got"
run_err "ls of an absent bucket" 12 "404 (NoSuchBucket)" s3cmd ls s3://no-such-bucket
run_err "put to an absent bucket" 12 "404 (NoSuchBucket)" \
    s3cmd put "$SMALL" s3://no-such-bucket/k
pass "NoSuchKey (info, get) and NoSuchBucket (ls, put)"

# ---- removing buckets
run_err "rb of a bucket with objects" 13 "409 (BucketNotEmpty)" s3cmd rb "s3://$B"
run_ok "rb (empty bucket)" s3cmd rb "s3://$B-empty"
eq "$OUT" "Bucket 's3://$B-empty/' removed" "s3cmd rb"
run_ok "ls" s3cmd ls
eq "$(awk '{print $3}' "$TMP/out")" "s3://$B" "s3cmd ls after rb"
pass "remove buckets: 409 BucketNotEmpty, then an empty one"

stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
