#!/usr/bin/env bash
# test_fakes3_compat_s3cmd_multipart: the part of the s3cmd suite that needs fakes3's multipart
# upload, CopyObject and DeleteObjects. The rest of the s3cmd suite is
# tests/cli/test_fakes3_compat_s3cmd.sh.
#
# Cases: put of a 21 MiB file in s3cmd's default 15 MiB parts and in 5 MiB parts (multipart
# ETags), put from stdin (multipart of unknown length), the multipart listing; cp, mv and modify
# (CopyObject, with the REPLACE directive for modify); del --recursive and rb --recursive
# (DeleteObjects).
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
B=compat-s3cmd-mp
MiB=$((1024 * 1024))
run_ok "s3cmd --version" s3cmd --version
echo "# $OUT"
run_ok "mb" s3cmd mb "s3://$B"

# ---- multipart uploads
run_ok "put (big, default 15 MiB parts)" s3cmd put "$BIG" "s3://$B/big.bin"
eq "$(log_count UploadPart) $(log_count CompleteMultipartUpload)" "2 1" \
    "put of 21 MiB in 15 MiB parts: UploadPart and CompleteMultipartUpload requests"
req 200 -I "$URL/$B/big.bin"
header_is ETag "\"$(mp_etag "$BIG" $((15 * MiB)))\""
header_is Content-Length "$BIG_SIZE"
run_ok "info (big)" s3cmd info "s3://$B/big.bin"
grep -q "^ *File size: $BIG_SIZE\$" "$TMP/out" && grep -q "^ *MD5 sum: *$(md5 "$BIG")\$" "$TMP/out" ||
    fail "s3cmd info of the multipart object (s3cmd keeps the whole MD5 in its attrs)" "$OUT"
run_ok "get (big)" s3cmd get --force "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the multipart object through get"
pass "put of 21 MiB in two 15 MiB parts: multipart ETag, info, get"

run_ok "put --multipart-chunk-size-mb=5" s3cmd put --multipart-chunk-size-mb=5 "$BIG" \
    "s3://$B/big5.bin"
req 200 -I "$URL/$B/big5.bin"
header_is ETag "\"$(mp_etag "$BIG" $((5 * MiB)))\""
run_ok "get (big5)" s3cmd get --force "s3://$B/big5.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the object in 5 MiB parts"
pass "put of 21 MiB in five 5 MiB parts"

run_ok "put - (stdin)" cenv sh -c "s3cmd -c '$CHOME/.s3cfg' put --multipart-chunk-size-mb=5 - \
    's3://$B/stdin.bin' <'$BIG'"
run_ok "get (stdin.bin)" s3cmd get --force "s3://$B/stdin.bin" "$TMP/got"
same "$BIG" "$TMP/got" "an upload from stdin (multipart of unknown length)"
run_ok "multipart (list uploads)" s3cmd multipart "s3://$B"
grep -q '^Initiated' "$TMP/out" && [ "$(wc -l <"$TMP/out")" -le 2 ] ||
    fail "s3cmd multipart: uploads left after complete" "$OUT"
pass "put from stdin (multipart, unknown length); no upload left in the listing"

# ---- server-side copy
run_ok "put (small, metadata)" s3cmd put --mime-type text/x-compat \
    --add-header 'x-amz-meta-colour: blue' "$SMALL" "s3://$B/dir/small.bin"
run_ok "cp" s3cmd cp "s3://$B/dir/small.bin" "s3://$B/copy/small.bin"
eq "$(log_count CopyObject)" 1 "s3cmd cp: one CopyObject"
run_ok "info (copy)" s3cmd info "s3://$B/copy/small.bin"
grep -q '^ *MIME type: text/x-compat$' "$TMP/out" && grep -q '^ *x-amz-meta-colour: blue$' "$TMP/out" ||
    fail "s3cmd cp kept neither content type nor metadata" "$OUT"
run_ok "get (copy)" s3cmd get --force "s3://$B/copy/small.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "the copy"
run_ok "cp (big)" s3cmd cp "s3://$B/big.bin" "s3://$B/copy/big.bin"
run_ok "get (big copy)" s3cmd get --force "s3://$B/copy/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the copy of the multipart object"
run_ok "mv" s3cmd mv "s3://$B/copy/small.bin" "s3://$B/moved.bin"
run_err "info of the moved key" 12 "404 (NoSuchKey)" s3cmd info "s3://$B/copy/small.bin"
run_ok "get (moved)" s3cmd get --force "s3://$B/moved.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "s3cmd mv"
run_ok "modify --add-header" s3cmd modify --add-header 'x-amz-meta-colour: red' "s3://$B/moved.bin"
run_ok "info (modified)" s3cmd info "s3://$B/moved.bin"
grep -q '^ *x-amz-meta-colour: red$' "$TMP/out" || fail "s3cmd modify (CopyObject REPLACE)" "$OUT"
run_ok "get (modified)" s3cmd get --force "s3://$B/moved.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "the object after s3cmd modify"
run_err "cp of an absent key" 12 "Key not found" s3cmd cp "s3://$B/no/such/key" "s3://$B/x"
pass "cp, mv, modify (CopyObject, metadata kept and replaced); cp of an absent key"

# ---- batch delete
make_many "$TMP/many" 1100
run_ok "put --recursive (1100 files)" s3cmd put --recursive --quiet "$TMP/many/" "s3://$B/many/"
run_ok "del --recursive" s3cmd del --recursive "s3://$B/many/"
eq "$(grep -c "^delete: 's3://$B/many/k" "$TMP/out")" 1100 "s3cmd del --recursive: deleted keys"
eq "$(log_count DeleteObjects)" 2 "del --recursive of 1100 keys: DeleteObjects requests"
run_ok "ls after del --recursive" s3cmd ls "s3://$B/many/"
eq "$OUT" "" "keys left after del --recursive"
pass "del --recursive of 1100 keys in 2 DeleteObjects requests"

run_ok "rb --recursive" s3cmd rb --recursive --force "s3://$B"
run_ok "ls" s3cmd ls
eq "$OUT" "" "buckets after rb --recursive"
pass "rb --recursive empties and removes the bucket"

stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
