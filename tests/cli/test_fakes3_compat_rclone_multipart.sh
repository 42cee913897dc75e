#!/usr/bin/env bash
# test_fakes3_compat_rclone_multipart: the part of the rclone suite that needs fakes3's multipart
# upload and CopyObject. The rest of the rclone suite is tests/cli/test_fakes3_compat_rclone.sh. (rclone deletes key by key, so it has no DeleteObjects
# case.)
#
# Cases: copyto of a 21 MiB file in 5 MiB parts (--s3-upload-cutoff 5M --s3-chunk-size 5M:
# multipart ETag; rclone's md5 of the whole file kept in metadata), rcat from stdin (multipart
# of unknown length), the multipart-upload listing; server-side copyto and moveto (CopyObject),
# across buckets, of 21 MiB in parts (--s3-copy-cutoff 5M: UploadPartCopy).
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
source "$LTXVFS_SOURCE_DIR/tests/cli/compat/lib.sh"
need_cmd rclone rclone

start disk --data-dir "$TMP/data" --log "$TMP/fakes3.log"
make_data
source "$COMPAT/rclone/setup.sh"
B=compat-rclone-mp
MiB=$((1024 * 1024))
run_ok "rclone version" rclone version
echo "# $(head -n1 "$TMP/out")"
run_ok "mkdir" rclone mkdir "fk:$B"
run_ok "mkdir (second bucket)" rclone mkdir "fk:$B-2"

# ---- multipart uploads
run_ok "copyto (big, 5 MiB parts)" rclone copyto --s3-upload-cutoff 5M --s3-chunk-size 5M \
    "$BIG" "fk:$B/big.bin"
eq "$(log_count UploadPart) $(log_count CompleteMultipartUpload)" "5 1" \
    "copyto of 21 MiB in 5 MiB parts: UploadPart and CompleteMultipartUpload requests"
req 200 -I "$URL/$B/big.bin"
header_is ETag "\"$(mp_etag "$BIG" $((5 * MiB)))\""
header_is Content-Length "$BIG_SIZE"
run_ok "md5sum (big)" rclone md5sum "fk:$B/big.bin"
eq "$OUT" "$(md5 "$BIG")  big.bin" "rclone md5sum of the multipart object (its md5chksum metadata)"
run_ok "copyto down (big)" rclone copyto "fk:$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the multipart object"
pass "copyto of 21 MiB in five 5 MiB parts: multipart ETag, md5sum, bytes identical"

run_ok "rcat (stdin)" cenv "${RCLONE_ENV[@]}" RCLONE_CONFIG_FK_SECRET_ACCESS_KEY="$SECRET" \
    sh -c "rclone --retries 1 rcat --s3-chunk-size 5M 'fk:$B/stdin.bin' <'$BIG'"
run_ok "cat (stdin.bin)" rclone cat "fk:$B/stdin.bin"
same "$BIG" "$TMP/out" "rcat from stdin (multipart of unknown length)"
run_ok "backend list-multipart-uploads" rclone backend list-multipart-uploads "fk:$B"
eq "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(sum(len(v or []) for v in d.values()))' "$TMP/out")" 0 "multipart uploads left"
pass "rcat from stdin (multipart of unknown length); no upload left"

# ---- server-side copy
run_ok "copyto (small, metadata)" rclone copyto -M --metadata-set colour=blue "$SMALL" \
    "fk:$B/dir/small.bin"
run_ok "copyto (server-side)" rclone copyto "fk:$B/dir/small.bin" "fk:$B/copy/small.bin"
eq "$(log_count CopyObject)" 1 "copyto on one remote: one CopyObject"
run_ok "cat (copy)" rclone cat "fk:$B/copy/small.bin"
same "$SMALL" "$TMP/out" "the server-side copy"
run_ok "lsjson -M --stat (copy)" rclone lsjson -M --stat "fk:$B/copy/small.bin"
eq "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["Metadata"]["colour"])' \
    "$TMP/out")" blue "the copy's metadata"
run_ok "copyto across buckets" rclone copyto "fk:$B/dir/small.bin" "fk:$B-2/small.bin"
run_ok "cat (copy in the second bucket)" rclone cat "fk:$B-2/small.bin"
same "$SMALL" "$TMP/out" "a copy across buckets"
run_ok "moveto" rclone moveto "fk:$B/copy/small.bin" "fk:$B/moved.bin"
run_ok "lsf (copy/)" rclone lsf "fk:$B/copy"
eq "$OUT" "" "moveto left the source"
run_ok "cat (moved)" rclone cat "fk:$B/moved.bin"
same "$SMALL" "$TMP/out" "moveto"
pass "server-side copyto (metadata kept), across buckets, moveto"

before=$(log_count UploadPartCopy)
run_ok "copyto (big, server-side in parts)" rclone copyto --s3-copy-cutoff 5M \
    "fk:$B/big.bin" "fk:$B/copy/big.bin"
eq $(($(log_count UploadPartCopy) - before)) 5 "multipart copy of 21 MiB in 5 MiB parts"
run_ok "copyto down (big copy)" rclone copyto "fk:$B/copy/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the multipart server-side copy"
pass "server-side copy of 21 MiB in 5 MiB parts (UploadPartCopy)"

run_ok "purge" rclone purge "fk:$B"
run_ok "purge (second bucket)" rclone purge "fk:$B-2"
stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
