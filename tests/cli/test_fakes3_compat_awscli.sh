#!/usr/bin/env bash
# test_fakes3_compat_awscli: build/fakes3 as the aws CLI sees it (Debian's awscli, /usr/bin/aws,
# 2.9 on Debian 12), signed with a key pair, path-style, us-east-1: buckets; small and 21 MiB
# objects (the upload single-part: multipart_threshold 5GB; the download in parallel ranged parts);
# awkward keys; ranged GETs of every form; head; ListObjectsV2 and v1 with prefix, delimiter,
# start-after and pagination over 1100 keys; sync; single delete; conditional PUTs (412);
# a presigned GET fetched with curl; a wrong secret (403 SignatureDoesNotMatch); NoSuchKey,
# NoSuchBucket, InvalidRange, BucketNotEmpty; s3 rm --recursive and s3 rb --force (which the CLI
# does with one DeleteObject per key).
#
# Multipart uploads, server-side copy and DeleteObjects (s3api delete-objects) are in
# tests/cli/test_fakes3_compat_awscli_multipart.sh.
#
# The client runs with HOME and its config files in the scratch folder and nothing else of the
# environment (tests/cli/compat/lib.sh). Debian's awscli has no --if-none-match yet; the
# conditional PUT goes through the CLI all the same, with a plugin that adds the header
# (tests/cli/compat/awscli/compat_headers.py).
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
B=compat-aws
run_ok "aws --version" aws --version
echo "# $OUT"

# ---- buckets
run_ok "s3 mb" aws s3 mb "s3://$B"
eq "$OUT" "make_bucket: $B" "aws s3 mb"
run_ok "s3 mb (second bucket)" aws s3 mb "s3://$B-empty"
run_ok "list-buckets" aws s3api list-buckets --query 'Buckets[].Name' --output text
eq "$OUT" "$B	$B-empty" "list-buckets"
run_ok "s3 ls" aws s3 ls
grep -q " $B\$" "$TMP/out" || fail "aws s3 ls does not list $B" "$OUT"
run_ok "head-bucket" aws s3api head-bucket --bucket "$B"
pass "create buckets, list them (s3 mb, s3 ls, s3api list-buckets, head-bucket)"

# ---- small objects
run_ok "s3 cp up" aws s3 cp --only-show-errors "$SMALL" "s3://$B/dir/small.bin"
run_ok "s3 cp down" aws s3 cp --only-show-errors "s3://$B/dir/small.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "small object through s3 cp"
run_ok "s3 cp - (stdout)" aws s3 cp --only-show-errors "s3://$B/dir/small.bin" -
same "$SMALL" "$TMP/out" "small object through s3 cp to stdout"
pass "put and get a small object (s3 cp both ways, and to stdout)"


# An awkward key (unicode, space, '+', '%', '&', '=', '?'), with headers and user metadata.
KEY_ODD='dir/ünï cödé + 100% & =?.txt'
run_ok "put-object (odd key, metadata)" aws s3api put-object --bucket "$B" --key "$KEY_ODD" \
    --body "$SMALL" --content-type text/x-compat --cache-control max-age=60 \
    --metadata colour=blue,Size=L --query ETag --output text
eq "$OUT" "\"$(md5 "$SMALL")\"" "put-object ETag"
run_ok "head-object (odd key)" aws s3api head-object --bucket "$B" --key "$KEY_ODD" \
    --query '[ContentLength,ETag,ContentType,CacheControl,Metadata.colour,Metadata.size]' \
    --output text
eq "$OUT" "1000	\"$(md5 "$SMALL")\"	text/x-compat	max-age=60	blue	L" "head-object"
run_ok "get-object (odd key)" aws s3api get-object --bucket "$B" --key "$KEY_ODD" "$TMP/got" \
    --query '[ContentLength,ContentType]' --output text
eq "$OUT" "1000	text/x-compat" "get-object"
same "$SMALL" "$TMP/got" "get-object of the awkward key"
run_ok "s3 ls (odd key)" aws s3 ls "s3://$B/dir/"
grep -qF " 1000 ünï cödé + 100% & =?.txt" "$TMP/out" || fail "s3 ls lacks the awkward key" "$OUT"
pass "head and get an awkward key with content type, cache control and metadata (s3api)"

# ---- a 21 MiB object: uploaded in one PUT (multipart_threshold 5GB), downloaded whole and in
# parallel 8 MiB ranged GETs (profile parts).
run_ok "s3 cp up (big, single part)" aws s3 cp --only-show-errors "$BIG" "s3://$B/big.bin"
run_ok "head-object (big)" aws s3api head-object --bucket "$B" --key big.bin \
    --query '[ContentLength,ETag]' --output text
eq "$OUT" "$BIG_SIZE	\"$(md5 "$BIG")\"" "head-object of the 21 MiB object"
run_ok "s3 cp down (big)" aws s3 cp --only-show-errors "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "21 MiB object through s3 cp"
before=$(log_count GetObject bytes)
run_ok "s3 cp down (big, ranged parts)" aws --profile parts s3 cp --only-show-errors \
    "s3://$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "21 MiB object through s3 cp in ranged parts"
after=$(log_count GetObject bytes)
[ $((after - before)) -eq 3 ] ||
    fail "s3 cp with 8 MiB parts should have made 3 ranged GETs, made $((after - before))"
pass "put a 21 MiB object in one PUT, get it whole and in 3 parallel ranged GETs"

# ---- ranged GETs of every form
ranged() { # ranged RANGE OFFSET LENGTH
    run_ok "get-object --range $1" aws s3api get-object --bucket "$B" --key big.bin \
        --range "$1" "$TMP/got" --query '[ContentLength,ContentRange]' --output text
    eq "$OUT" "$3	bytes $2-$(($2 + $3 - 1))/$BIG_SIZE" "get-object --range $1"
    slice "$BIG" "$2" "$3" >"$TMP/want"
    same "$TMP/want" "$TMP/got" "get-object --range $1"
}
ranged bytes=1000-5095 1000 4096
ranged "bytes=$((BIG_SIZE - 70000))-" $((BIG_SIZE - 70000)) 70000
ranged bytes=-12345 $((BIG_SIZE - 12345)) 12345
ranged "bytes=$((BIG_SIZE - 10))-$((BIG_SIZE + 500))" $((BIG_SIZE - 10)) 10
run_err "get-object past the end" 254 "(InvalidRange)" \
    aws s3api get-object --bucket "$B" --key big.bin --range "bytes=$BIG_SIZE-" "$TMP/got"
pass "ranged GETs: bytes=a-b, a-, -n, a-b past the end (clipped), and 416 InvalidRange"

# ---- listings: 1100 keys uploaded with s3 cp --recursive
make_many "$TMP/many" 1100
run_ok "s3 cp --recursive (1100 files)" aws s3 cp --recursive --only-show-errors "$TMP/many" \
    "s3://$B/many/"
run_ok "s3 sync (nothing to do)" aws s3 sync "$TMP/many" "s3://$B/many/"
eq "$OUT" "" "s3 sync right after s3 cp --recursive should upload nothing"
pass "upload 1100 objects with s3 cp --recursive; s3 sync then finds nothing to do"

before=$(log_count ListObjectsV2)
run_ok "s3 ls (1100 keys)" aws s3 ls "s3://$B/many/"
eq "$(wc -l <"$TMP/out")" 1100 "s3 ls of 1100 keys"
eq "$(awk '{print $4}' "$TMP/out" | head -n1)$(awk '{print $4}' "$TMP/out" | tail -n1)" \
    k0000k1099 "s3 ls first and last key"
eq $(($(log_count ListObjectsV2) - before)) 2 "s3 ls of 1100 keys: pages of 1000"
before=$(log_count ListObjectsV2)
run_ok "list-objects-v2 --page-size 100" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --page-size 100 --query 'Contents[].Key' --output text
eq "$(tr '\t' '\n' <"$TMP/out" | wc -l)" 1100 "list-objects-v2 --page-size 100: keys"
eq "$(tr '\t' '\n' <"$TMP/out" | sort -c && echo sorted)" sorted "list-objects-v2: order"
eq $(($(log_count ListObjectsV2) - before)) 11 "list-objects-v2 --page-size 100: requests"
pass "list 1100 keys: s3 ls (2 pages of 1000), list-objects-v2 --page-size 100 (11 pages)"

run_ok "list-objects-v2 --max-keys 1000" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --max-keys 1000 --no-paginate \
    --query '[KeyCount,IsTruncated,MaxKeys,Contents[-1].Key,NextContinuationToken]' --output text
read -r count truncated maxkeys last token <"$TMP/out"
eq "$count $truncated $maxkeys $last" "1000 True 1000 many/k0999" "first page of 1000"
[ -n "$token" ] && [ "$token" != None ] || fail "no NextContinuationToken" "$OUT"
run_ok "list-objects-v2 --continuation-token" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --continuation-token "$token" --no-paginate \
    --query '[KeyCount,IsTruncated,Contents[0].Key,Contents[-1].Key]' --output text
eq "$OUT" "100	False	many/k1000	many/k1099" "second page"
run_ok "list-objects-v2 --max-items" aws s3api list-objects-v2 --bucket "$B" --prefix many/ \
    --page-size 40 --max-items 50 --output json
last=$(py 'd["Contents"][-1]["Key"]') next=$(py 'd["NextToken"]')
eq "$last" many/k0049 "--max-items 50: last key"
run_ok "list-objects-v2 --starting-token" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --page-size 40 --max-items 5 --starting-token "$next" --output json
eq "$(py '" ".join(o["Key"] for o in d["Contents"])')" \
    "many/k0050 many/k0051 many/k0052 many/k0053 many/k0054" "--starting-token"
pass "list-objects-v2: max-keys, continuation-token, the CLI's own --max-items/--starting-token"

run_ok "list-objects-v2 --delimiter /" aws s3api list-objects-v2 --bucket "$B" --delimiter / \
    --query '[CommonPrefixes[].Prefix,Contents[].Key]' --output text
eq "$OUT" "dir/	many/
big.bin" "delimiter / at the top"
run_ok "list-objects-v2 --prefix dir/ --delimiter /" aws s3api list-objects-v2 --bucket "$B" \
    --prefix dir/ --delimiter / --no-paginate --query '[KeyCount,Contents[].Key]' --output text
eq "$OUT" "2
dir/small.bin	$KEY_ODD" "prefix dir/ with delimiter /"
run_ok "s3 ls (top)" aws s3 ls "s3://$B/"
grep -q '^ *PRE dir/$' "$TMP/out" && grep -q '^ *PRE many/$' "$TMP/out" &&
    grep -q " $BIG_SIZE big.bin\$" "$TMP/out" || fail "s3 ls s3://$B/" "$OUT"
run_ok "list-objects-v2 --prefix many/k10" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/k10 --no-paginate --query '[KeyCount,Contents[0].Key,Contents[-1].Key]' --output text
eq "$OUT" "100	many/k1000	many/k1099" "prefix many/k10"
run_ok "list-objects-v2 --start-after" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --start-after many/k1097 --query 'Contents[].Key' --output text
eq "$OUT" "many/k1098	many/k1099" "start-after"
run_ok "list-objects-v2 --encoding-type url" aws s3api list-objects-v2 --bucket "$B" \
    --prefix 'dir/ü' --encoding-type url --query 'Contents[].Key' --output text
eq "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote_plus(sys.argv[1]))' "$OUT")" \
    "$KEY_ODD" "encoding-type url (asked for explicitly, so the CLI leaves it encoded)"
before=$(log_count ListObjects)
run_ok "list-objects (v1) --page-size 300" aws s3api list-objects --bucket "$B" --prefix many/ \
    --page-size 300 --query 'Contents[].Key' --output text
eq "$(tr '\t' '\n' <"$TMP/out" | wc -l)" 1100 "list-objects (v1) with markers: keys"
eq $(($(log_count ListObjects) - before)) 4 "list-objects (v1) --page-size 300: requests"
pass "listings: delimiter (CommonPrefixes), prefix, start-after, encoding-type url, v1 markers"

# ---- single delete
run_ok "s3 rm" aws s3 rm --only-show-errors "s3://$B/dir/small.bin"
run_err "get-object after s3 rm" 254 "(NoSuchKey)" \
    aws s3api get-object --bucket "$B" --key dir/small.bin "$TMP/got"
run_ok "delete-object" aws s3api delete-object --bucket "$B" --key "$KEY_ODD"
run_err "head-object after delete-object" 254 "(404)" \
    aws s3api head-object --bucket "$B" --key "$KEY_ODD"
run_ok "delete-object (absent key)" aws s3api delete-object --bucket "$B" --key no/such/key
pass "delete single objects (s3 rm, s3api delete-object; deleting an absent key succeeds)"

# ---- conditional PUTs (If-None-Match: *, If-Match)
run_ok "put-object (new key)" aws s3api put-object --bucket "$B" --key cond.bin --body "$SMALL"
XENV=(COMPAT_PUT_IF_NONE_MATCH='*')
run_err "put-object If-None-Match: * on an existing key" 254 "(PreconditionFailed)" \
    aws s3api put-object --bucket "$B" --key cond.bin --body "$BIG"
run_ok "put-object If-None-Match: * on a new key" aws s3api put-object --bucket "$B" \
    --key cond-new.bin --body "$SMALL"
XENV=(COMPAT_PUT_IF_MATCH='"0123456789abcdef0123456789abcdef"')
run_err "put-object If-Match: another ETag" 254 "(PreconditionFailed)" \
    aws s3api put-object --bucket "$B" --key cond.bin --body "$BIG"
XENV=(COMPAT_PUT_IF_MATCH="\"$(md5 "$SMALL")\"")
run_ok "put-object If-Match: its ETag" aws s3api put-object --bucket "$B" --key cond.bin \
    --body "$TMP/many/k0007"
XENV=()
run_ok "get-object (cond.bin)" aws s3api get-object --bucket "$B" --key cond.bin "$TMP/got"
same "$TMP/many/k0007" "$TMP/got" "the object after the conditional PUTs"
grep -q '"operation":"PutObject".*"status":412,"error":"PreconditionFailed"' "$TMP/fakes3.log" ||
    fail "the request log has no 412 PutObject"
pass "conditional PUT: If-None-Match: * and a wrong If-Match get 412 PreconditionFailed"

# ---- presigned GET, fetched with curl
run_ok "s3 presign" aws s3 presign "s3://$B/big.bin" --expires-in 300
url=$OUT
case "$url" in "$URL/$B/big.bin?"*X-Amz-Signature=*) ;; *) fail "s3 presign: odd URL $url" ;; esac
raw 200 "$url"
same "$BIG" "$TMP/body" "presigned GET of the 21 MiB object with curl"
raw 206 -H 'Range: bytes=5-9' "$url"
slice "$BIG" 5 5 >"$TMP/want"
same "$TMP/want" "$TMP/body" "presigned ranged GET"
raw 403 "${url%?}$(printf '%s' "${url: -1}" | tr '0-9a-f' '1-9a-f0')"
error_is SignatureDoesNotMatch
pass "presigned GET (aws s3 presign) fetched with curl, whole and ranged; a tampered one is 403"

# ---- a wrong secret
run_err "list-objects-v2 with a wrong secret" 254 "(SignatureDoesNotMatch)" \
    aws --profile wrong s3api list-objects-v2 --bucket "$B"
run_err "s3 cp up with a wrong secret" '!0' "SignatureDoesNotMatch" \
    aws --profile wrong s3 cp --only-show-errors "$SMALL" "s3://$B/wrong.bin"
run_err "head-object of the refused upload" 254 "(404)" \
    aws s3api head-object --bucket "$B" --key wrong.bin
pass "a wrong secret: 403 SignatureDoesNotMatch, and nothing stored"

# ---- errors
run_err "get-object of an absent key" 254 "(NoSuchKey)" \
    aws s3api get-object --bucket "$B" --key no/such/key "$TMP/got"
run_err "list-objects-v2 of an absent bucket" 254 "(NoSuchBucket)" \
    aws s3api list-objects-v2 --bucket no-such-bucket
run_err "s3 ls of an absent bucket" '!0' "NoSuchBucket" aws s3 ls s3://no-such-bucket
run_err "get-object in an absent bucket" 254 "(NoSuchBucket)" \
    aws s3api get-object --bucket no-such-bucket --key k "$TMP/got"
run_err "put-object in an absent bucket" 254 "(NoSuchBucket)" \
    aws s3api put-object --bucket no-such-bucket --key k --body "$SMALL"
pass "NoSuchKey and NoSuchBucket (get, list, put)"

# ---- removing objects and buckets: s3 rm --recursive and s3 rb --force delete key by key
before=$(log_count DeleteObject)
run_ok "s3 rm --recursive (1100 keys)" aws s3 rm --recursive "s3://$B/many/"
eq "$(grep -c '^delete: s3://' "$TMP/out")" 1100 "s3 rm --recursive: deleted keys"
eq $(($(log_count DeleteObject) - before)) 1100 "s3 rm --recursive: DeleteObject requests"
run_ok "list-objects-v2 after s3 rm --recursive" aws s3api list-objects-v2 --bucket "$B" \
    --prefix many/ --no-paginate --query KeyCount --output text
eq "$OUT" 0 "keys left after s3 rm --recursive"
pass "s3 rm --recursive of 1100 keys (the CLI deletes them one by one)"

run_err "s3 rb of a bucket with objects" '!0' "BucketNotEmpty" aws s3 rb "s3://$B"
run_ok "s3 rb (empty bucket)" aws s3 rb "s3://$B-empty"
eq "$OUT" "remove_bucket: $B-empty" "s3 rb"
run_ok "s3 rb --force" aws s3 rb --force "s3://$B"
run_ok "list-buckets" aws s3api list-buckets --query 'length(Buckets)' --output text
eq "$OUT" 0 "buckets after s3 rb and s3 rb --force"
pass "remove buckets: 409 BucketNotEmpty, an empty one, s3 rb --force"

stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
