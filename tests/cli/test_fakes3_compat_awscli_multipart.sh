#!/usr/bin/env bash
# test_fakes3_compat_awscli_multipart: the part of the aws CLI suite that needs fakes3's multipart
# upload, CopyObject and DeleteObjects. The rest of the aws CLI suite is
# tests/cli/test_fakes3_compat_awscli.sh.
#
# Cases: s3 cp of a 21 MiB file in 8 MiB parts (multipart ETag), the low-level s3api multipart
# calls (create, upload-part, list-parts, list-multipart-uploads, complete, abort, EntityTooSmall,
# InvalidPart, NoSuchUpload), If-None-Match: * on CompleteMultipartUpload (412); server-side copy
# (s3 cp s3:// s3://, multipart copy with UploadPartCopy, copy-object with the metadata
# directive, s3 mv); batch delete (s3api delete-objects of 1000 keys, quiet, and verbose).
#
# Seen on 2026-11-21 against the operations in progress: everything passes but the multipart
# copy (s3 cp s3:// s3:// above multipart_threshold), for which the CLI first asks for the source's
# tags (GetObjectTagging, GET /bucket/key?tagging, its --copy-props default) and fakes3 answers
# 501 NotImplemented; S3 answers 200 with an empty TagSet.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
source "$LTXVFS_SOURCE_DIR/tests/cli/compat/lib.sh"
need_cmd aws awscli

start disk --data-dir "$TMP/data" --log "$TMP/fakes3.log"
make_data
source "$COMPAT/awscli/setup.sh"
B=compat-aws-mp
PART=$((8 * 1024 * 1024))
run_ok "aws --version" aws --version
echo "# $OUT"
run_ok "s3 mb" aws s3 mb "s3://$B"

# ---- multipart upload through s3 cp (profile parts: 8 MiB parts)
before=$(log_count UploadPart)
run_ok "s3 cp up (big, multipart)" aws --profile parts s3 cp --only-show-errors "$BIG" \
    "s3://$B/big.bin"
eq $(($(log_count UploadPart) - before)) 3 "s3 cp of 21 MiB in 8 MiB parts: UploadPart requests"
run_ok "head-object (big)" aws s3api head-object --bucket "$B" --key big.bin \
    --query '[ContentLength,ETag]' --output text
eq "$OUT" "$BIG_SIZE	\"$(mp_etag "$BIG" "$PART")\"" "head-object of the multipart object"
run_ok "s3 cp down (big)" aws --profile parts s3 cp --only-show-errors "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "multipart object through s3 cp"
run_ok "get-object --range across a part boundary" aws s3api get-object --bucket "$B" \
    --key big.bin --range "bytes=$((PART - 100))-$((PART + 99))" "$TMP/got"
slice "$BIG" $((PART - 100)) 200 >"$TMP/want"
same "$TMP/want" "$TMP/got" "ranged GET across a part boundary"
pass "s3 cp of a 21 MiB file in three 8 MiB parts: multipart ETag, bytes identical"

# ---- the s3api multipart calls
parts_json() { # parts_json ETAG1 ETAG2: the --multipart-upload JSON for parts 1 and 2
    python3 -c 'import json, sys; print(json.dumps({"Parts": [
        {"PartNumber": i + 1, "ETag": e} for i, e in enumerate(sys.argv[1:])]}))' "$@"
}
run_ok "create-multipart-upload" aws s3api create-multipart-upload --bucket "$B" --key mp.bin \
    --content-type application/x-compat --metadata stage=mp --query UploadId --output text
upload=$OUT
[ -n "$upload" ] || fail "create-multipart-upload: no UploadId"
P5=$((5 * 1024 * 1024))
slice "$BIG" 0 "$P5" >"$TMP/part1"
slice "$BIG" "$P5" "" >"$TMP/part2"
run_ok "upload-part 1" aws s3api upload-part --bucket "$B" --key mp.bin --upload-id "$upload" \
    --part-number 1 --body "$TMP/part1" --query ETag --output text
e1=$OUT
eq "$e1" "\"$(md5 "$TMP/part1")\"" "upload-part 1 ETag"
run_ok "upload-part 2" aws s3api upload-part --bucket "$B" --key mp.bin --upload-id "$upload" \
    --part-number 2 --body "$TMP/part2" --query ETag --output text
e2=$OUT
run_ok "list-parts" aws s3api list-parts --bucket "$B" --key mp.bin --upload-id "$upload" \
    --query 'Parts[].[PartNumber,Size,ETag]' --output text
eq "$OUT" "1	$P5	$e1
2	$((BIG_SIZE - P5))	$e2" "list-parts"
run_ok "list-multipart-uploads" aws s3api list-multipart-uploads --bucket "$B" \
    --query 'Uploads[].[Key,UploadId]' --output text
eq "$OUT" "mp.bin	$upload" "list-multipart-uploads"
run_err "get-object before complete" 254 "(NoSuchKey)" \
    aws s3api get-object --bucket "$B" --key mp.bin "$TMP/got"
run_err "complete with a wrong part ETag" 254 "(InvalidPart)" \
    aws s3api complete-multipart-upload --bucket "$B" --key mp.bin --upload-id "$upload" \
    --multipart-upload "$(parts_json "$e1" '"00000000000000000000000000000000"')"
run_ok "complete-multipart-upload" aws s3api complete-multipart-upload --bucket "$B" \
    --key mp.bin --upload-id "$upload" --multipart-upload "$(parts_json "$e1" "$e2")" \
    --query ETag --output text
eq "$OUT" "\"$(mp_etag_parts "$TMP/part1" "$TMP/part2")\"" "complete-multipart-upload ETag"
run_ok "get-object (mp.bin)" aws s3api get-object --bucket "$B" --key mp.bin "$TMP/got" \
    --query '[ContentType,Metadata.stage]' --output text
eq "$OUT" "application/x-compat	mp" "the completed object's content type and metadata"
same "$BIG" "$TMP/got" "the completed multipart object"
run_ok "list-multipart-uploads (after complete)" aws s3api list-multipart-uploads --bucket "$B" \
    --query 'length(Uploads || `[]`)' --output text
eq "$OUT" 0 "no upload left after complete"
pass "s3api: create, upload-part, list-parts, list-multipart-uploads, InvalidPart, complete"

run_ok "create-multipart-upload (small parts)" aws s3api create-multipart-upload --bucket "$B" \
    --key small-parts.bin --query UploadId --output text
upload=$OUT
run_ok "upload-part 1 (1000 bytes)" aws s3api upload-part --bucket "$B" --key small-parts.bin \
    --upload-id "$upload" --part-number 1 --body "$SMALL" --query ETag --output text
s1=$OUT
run_ok "upload-part 2 (1000 bytes)" aws s3api upload-part --bucket "$B" --key small-parts.bin \
    --upload-id "$upload" --part-number 2 --body "$SMALL" --query ETag --output text
s2=$OUT
run_err "complete with a first part under 5 MiB" 254 "(EntityTooSmall)" \
    aws s3api complete-multipart-upload --bucket "$B" --key small-parts.bin \
    --upload-id "$upload" --multipart-upload "$(parts_json "$s1" "$s2")"
run_ok "abort-multipart-upload" aws s3api abort-multipart-upload --bucket "$B" \
    --key small-parts.bin --upload-id "$upload"
run_err "upload-part after abort" 254 "(NoSuchUpload)" \
    aws s3api upload-part --bucket "$B" --key small-parts.bin --upload-id "$upload" \
    --part-number 3 --body "$SMALL"
run_err "get-object of the aborted upload" 254 "(NoSuchKey)" \
    aws s3api get-object --bucket "$B" --key small-parts.bin "$TMP/got"
pass "EntityTooSmall, abort-multipart-upload, NoSuchUpload after abort"

XENV=(COMPAT_PUT_IF_NONE_MATCH='*')
run_err "s3 cp (multipart) If-None-Match: * over an existing key" '!0' "PreconditionFailed" \
    aws --profile parts s3 cp --only-show-errors "$TMP/part1" "s3://$B/big.bin"
run_ok "s3 cp (multipart) If-None-Match: * to a new key" aws --profile parts s3 cp \
    --only-show-errors "$BIG" "s3://$B/big-new.bin"
XENV=()
run_ok "s3 cp down (big.bin)" aws s3 cp --only-show-errors "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "big.bin after the refused conditional multipart upload"
pass "If-None-Match: * on CompleteMultipartUpload: 412 over an existing key, 200 for a new one"

# ---- server-side copy
run_ok "s3 cp up (small)" aws s3 cp --only-show-errors "$SMALL" "s3://$B/dir/small.bin" \
    --metadata colour=blue --content-type text/x-compat
before=$(log_count CopyObject)
run_ok "s3 cp s3:// s3:// (small)" aws s3 cp --only-show-errors "s3://$B/dir/small.bin" \
    "s3://$B/copy/small.bin"
eq $(($(log_count CopyObject) - before)) 1 "s3 cp between keys: one CopyObject"
run_ok "head-object (copy)" aws s3api head-object --bucket "$B" --key copy/small.bin \
    --query '[ContentLength,ETag]' --output text
eq "$OUT" "1000	\"$(md5 "$SMALL")\"" "the copy's length and ETag"
run_ok "s3 cp down (copy)" aws s3 cp --only-show-errors "s3://$B/copy/small.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "the copy"
before=$(log_count UploadPartCopy)
run_ok "s3 cp s3:// s3:// (big, multipart copy)" aws --profile parts s3 cp --only-show-errors \
    "s3://$B/big.bin" "s3://$B/copy/big.bin"
eq $(($(log_count UploadPartCopy) - before)) 3 "multipart copy of 21 MiB in 8 MiB parts"
run_ok "s3 cp down (big copy)" aws s3 cp --only-show-errors "s3://$B/copy/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "the multipart copy"
pass "server-side copy: s3 cp between keys (CopyObject), and of 21 MiB (UploadPartCopy)"

run_ok "copy-object (COPY directive)" aws s3api copy-object --bucket "$B" --key copy/keep.bin \
    --copy-source "$B/dir/small.bin"
run_ok "head-object (COPY)" aws s3api head-object --bucket "$B" --key copy/keep.bin \
    --query '[ContentType,Metadata.colour]' --output text
eq "$OUT" "text/x-compat	blue" "copy-object keeps the metadata by default"
run_ok "copy-object (REPLACE directive)" aws s3api copy-object --bucket "$B" \
    --key copy/replaced.bin --copy-source "$B/dir/small.bin" --metadata-directive REPLACE \
    --metadata colour=red --content-type text/plain
run_ok "head-object (REPLACE)" aws s3api head-object --bucket "$B" --key copy/replaced.bin \
    --query '[ContentType,Metadata.colour,ETag]' --output text
eq "$OUT" "text/plain	red	\"$(md5 "$SMALL")\"" "copy-object REPLACE"
run_err "copy-object onto itself without REPLACE" 254 "(InvalidRequest)" \
    aws s3api copy-object --bucket "$B" --key dir/small.bin --copy-source "$B/dir/small.bin"
run_err "copy-object of an absent key" 254 "(NoSuchKey)" \
    aws s3api copy-object --bucket "$B" --key copy/x --copy-source "$B/no/such/key"
run_ok "s3 mv" aws s3 mv --only-show-errors "s3://$B/copy/keep.bin" "s3://$B/moved.bin"
run_err "head-object of the moved key" 254 "(404)" \
    aws s3api head-object --bucket "$B" --key copy/keep.bin
run_ok "s3 cp down (moved)" aws s3 cp --only-show-errors "s3://$B/moved.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "s3 mv"
pass "copy-object with the COPY and REPLACE metadata directives, its errors, s3 mv"

# ---- batch delete (DeleteObjects; the CLI's s3 rm --recursive deletes key by key and is in the
# live suite)
make_many "$TMP/many" 1100
run_ok "s3 cp --recursive (1100 files)" aws s3 cp --recursive --only-show-errors "$TMP/many" \
    "s3://$B/many/"
python3 -c 'import json; print(json.dumps({"Objects": [{"Key": "many/k%04d" % i}
    for i in range(1000)], "Quiet": True}))' >"$TMP/delete.json"
run_ok "delete-objects (1000 keys, quiet)" aws s3api delete-objects --bucket "$B" \
    --delete "file://$TMP/delete.json" \
    --query '[length(Deleted || `[]`), length(Errors || `[]`)]' --output text
eq "$OUT" "0	0" "delete-objects quiet: neither Deleted nor Errors"
run_ok "list-objects-v2 after delete-objects" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --no-paginate --query '[KeyCount,Contents[0].Key]' --output text
eq "$OUT" "100	many/k1000" "keys left after deleting 1000 of 1100"
run_ok "delete-objects" aws s3api delete-objects --bucket "$B" --delete \
    '{"Objects":[{"Key":"copy/small.bin"},{"Key":"copy/replaced.bin"},{"Key":"no/such/key"}]}' \
    --query 'Deleted[].Key' --output text
eq "$(tr '\t' '\n' <"$TMP/out" | sort | tr '\n' ' ')" "copy/replaced.bin copy/small.bin no/such/key " \
    "delete-objects: Deleted (an absent key counts as deleted, as S3)"
run_err "head-object after delete-objects" 254 "(404)" \
    aws s3api head-object --bucket "$B" --key copy/small.bin
pass "delete-objects: 1000 keys quiet, then verbose with an absent key"

stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
