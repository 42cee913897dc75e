#!/usr/bin/env bash
# test_fakes3_basic: build/fakes3 driven by curl's SigV4 signer (and a standard-library presigner)
# through every operation implemented so far: buckets (create, list, head, location, delete),
# objects (put, get, ranged gets of all three forms, head, delete), user metadata round trip,
# ListObjectsV2 (prefix, delimiter, pagination, start-after, encoding-type=url) and v1, virtual-host
# addressing, conditional writes and reads, Content-MD5 and payload-hash checks, the S3 error
# documents (NoSuchKey, NoSuchBucket, SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied,
# RequestTimeTooSkewed, BucketNotEmpty...), presigned GETs, hostile keys that must stay inside the
# data directory, a restart that finds every object again, and start-up failures (port taken, data
# directory unusable) with their exit status.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, python3 (standard library), md5sum. Stops at the first failure, saying what differed.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
PRESIGN="$LTXVFS_SOURCE_DIR/tests/cli/fakes3/presign.py"
command -v python3 >/dev/null || fail "needs python3"

# ---- command line -----------------------------------------------------------------------------

"$FAKES3" --help >"$TMP/help" || fail "--help exited non-zero"
for flag in --listen --data-dir --memory --fsync --region --access-key --secret-key --anonymous \
    --log FAKES3_ACCESS_KEY FAKES3_SECRET_KEY 127.0.0.1:9000 ./fakes3-data; do
    grep -qF -- "$flag" "$TMP/help" || fail "--help does not mention $flag"
done
set +e
"$FAKES3" --no-such-flag >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "a bad flag should exit 2, got $rc"
pass "--help documents the flags; a bad flag exits 2"

# ---- buckets ----------------------------------------------------------------------------------

DATA="$TMP/data"
start main --data-dir "$DATA" --log "$TMP/requests.jsonl"
U=$URL
HOSTPORT=${U#http://}

req 200 -X PUT "$U/photos"
header_is Location /photos
req 409 -X PUT "$U/photos"
error_is BucketAlreadyOwnedByYou
req 400 -X PUT "$U/Bad_Bucket"
error_is InvalidBucketName
req 200 -X PUT "$U/other-bucket" --data-binary \
    '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>'
req 400 -X PUT "$U/third" --data-binary \
    '<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>'
error_is InvalidLocationConstraint
req 400 -X PUT "$U/third" --data-binary '<CreateBucketConfiguration><Location'
error_is MalformedXML
req 200 "$U/"
body_has "<ListAllMyBucketsResult"
body_has "<Name>other-bucket</Name>"
body_has "<Name>photos</Name>"
body_lacks "<Name>third</Name>"
req 200 -I "$U/photos"
header_is x-amz-bucket-region us-east-1
req 404 -I "$U/nope-bucket"
req 200 "$U/photos?location="
body_has "<LocationConstraint"
req 204 -X DELETE "$U/other-bucket"
req 404 -X DELETE "$U/other-bucket"
error_is NoSuchBucket
body_has "<BucketName>other-bucket</BucketName>"
pass "buckets: create, duplicate, invalid name, configuration, list, head, location, delete"

# ---- put, get, head ---------------------------------------------------------------------------

printf 'hello, fakes3 world\n' >"$TMP/hello.txt" # 20 bytes
MD5=$(md5sum "$TMP/hello.txt" | cut -d' ' -f1)
req 200 -T "$TMP/hello.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "Content-Type: text/plain" -H "x-amz-meta-color: blue" -H "X-Amz-Meta-Owner: Ada Lovelace" \
    -H "Cache-Control: max-age=60" -H "Content-Disposition: inline" "$U/photos/docs/hello.txt"
header_is ETag "\"$MD5\""
req 200 "$U/photos/docs/hello.txt"
cmp -s "$TMP/body" "$TMP/hello.txt" || fail "GET returned other bytes" "$BODY"
header_is ETag "\"$MD5\""
header_is Content-Type text/plain
header_is Content-Length 20
header_is x-amz-meta-color blue
header_is x-amz-meta-owner "Ada Lovelace"
header_is Cache-Control max-age=60
header_is Content-Disposition inline
header_is Accept-Ranges bytes
grep -qi '^Last-Modified: .* GMT' "$TMP/headers" || fail "no Last-Modified"
req 200 -I "$U/photos/docs/hello.txt"
header_is Content-Length 20
header_is ETag "\"$MD5\""
header_is x-amz-meta-color blue
pass "put and get round-trip bytes, ETag (MD5), Content-Type and user metadata; head"

# the payload hash: signed by curl over the body (no x-amz-content-sha256 header), declared in the
# header and right, declared and wrong
req 200 -X PUT --data-binary @"$TMP/hello.txt" "$U/photos/signed.txt"
header_is ETag "\"$MD5\""
SHA=$(sha256sum "$TMP/hello.txt" | cut -d' ' -f1)
req 200 -T "$TMP/hello.txt" -H "x-amz-content-sha256: $SHA" "$U/photos/signed2.txt"
WRONG=0000000000000000000000000000000000000000000000000000000000000000
req 400 -T "$TMP/hello.txt" -H "x-amz-content-sha256: $WRONG" "$U/photos/signed3.txt"
error_is XAmzContentSHA256Mismatch
req 404 "$U/photos/signed3.txt"
# Content-MD5: right, wrong, malformed
GOODMD5=$(openssl dgst -md5 -binary "$TMP/hello.txt" | base64)
req 200 -T "$TMP/hello.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "Content-MD5: $GOODMD5" "$U/photos/md5.txt"
req 400 -T "$TMP/hello.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==" "$U/photos/md5-bad.txt"
error_is BadDigest
req 400 -T "$TMP/hello.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "Content-MD5: nonsense" "$U/photos/md5-bad.txt"
error_is InvalidDigest
req 404 "$U/photos/md5-bad.txt"
# an empty object
req 200 -X PUT -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "Content-Length: 0" "$U/photos/empty"
header_is ETag '"d41d8cd98f00b204e9800998ecf8427e"'
req 200 "$U/photos/empty"
header_is Content-Length 0
pass "payload hash (signed body, declared, mismatch) and Content-MD5 (good, BadDigest, InvalidDigest)"

# ---- ranges -----------------------------------------------------------------------------------

req 206 -H "Range: bytes=0-4" "$U/photos/docs/hello.txt"
[ "$BODY" = "hello" ] || fail "bytes=0-4 gave \"$BODY\""
header_is Content-Range "bytes 0-4/20"
header_is Content-Length 5
req 206 -H "Range: bytes=7-" "$U/photos/docs/hello.txt"
[ "$BODY" = "fakes3 world" ] || fail "bytes=7- gave \"$BODY\""
header_is Content-Range "bytes 7-19/20"
req 206 -H "Range: bytes=-6" "$U/photos/docs/hello.txt"
[ "$BODY" = "world" ] || fail "bytes=-6 gave \"$BODY\""
header_is Content-Range "bytes 14-19/20"
req 206 -H "Range: bytes=15-1000" "$U/photos/docs/hello.txt"
header_is Content-Range "bytes 15-19/20"
req 206 -H "Range: bytes=-1000" "$U/photos/docs/hello.txt"
header_is Content-Range "bytes 0-19/20"
req 416 -H "Range: bytes=20-30" "$U/photos/docs/hello.txt"
error_is InvalidRange
header_is Content-Range "bytes */20"
req 416 -H "Range: bytes=99999999999999999999999-" "$U/photos/docs/hello.txt"
error_is InvalidRange
req 416 -H "Range: bytes=-0" "$U/photos/docs/hello.txt"
req 200 -H "Range: bytes=5-2" "$U/photos/docs/hello.txt" # invalid: ignored, as S3 does
header_is Content-Length 20
req 206 -I -H "Range: bytes=0-4" "$U/photos/docs/hello.txt"
header_is Content-Length 5
pass "ranges: a-b, a-, -n, clamped ends, 416 InvalidRange with Content-Range */size, HEAD"

# ---- conditional requests ---------------------------------------------------------------------

req 412 -T "$TMP/hello.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "If-None-Match: *" \
    "$U/photos/docs/hello.txt"
error_is PreconditionFailed
body_has "<Condition>If-None-Match</Condition>"
printf 'first\n' >"$TMP/first.txt"
req 200 -T "$TMP/first.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "If-None-Match: *" \
    "$U/photos/new.txt"
FIRST=$(md5sum "$TMP/first.txt" | cut -d' ' -f1)
printf 'second\n' >"$TMP/second.txt"
req 412 -T "$TMP/second.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "If-Match: \"0123456789abcdef0123456789abcdef\"" "$U/photos/new.txt"
error_is PreconditionFailed
req 200 -T "$TMP/second.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "If-Match: \"$FIRST\"" "$U/photos/new.txt"
req 200 "$U/photos/new.txt"
[ "$BODY" = "second" ] || fail "If-Match PUT did not replace the object: \"$BODY\""
req 404 -T "$TMP/second.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "If-Match: \"$FIRST\"" "$U/photos/never.txt"
error_is NoSuchKey
req 501 -T "$TMP/second.txt" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -H "If-None-Match: \"$FIRST\"" "$U/photos/new.txt"
error_is NotImplemented
# reads
req 304 -H "If-None-Match: \"$MD5\"" "$U/photos/docs/hello.txt"
header_is ETag "\"$MD5\""
req 200 -H "If-None-Match: \"$FIRST\"" "$U/photos/docs/hello.txt"
req 200 -H "If-Match: \"$MD5\"" "$U/photos/docs/hello.txt"
req 412 -H "If-Match: \"$FIRST\"" "$U/photos/docs/hello.txt"
error_is PreconditionFailed
req 304 -H "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT" "$U/photos/docs/hello.txt"
req 200 -H "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT" "$U/photos/docs/hello.txt"
req 412 -H "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT" "$U/photos/docs/hello.txt"
req 200 -H "If-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT" "$U/photos/docs/hello.txt"
# If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since (RFC 7232)
req 200 -H "If-Match: \"$MD5\"" -H "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT" \
    "$U/photos/docs/hello.txt"
req 200 -H "If-None-Match: \"$FIRST\"" -H "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT" \
    "$U/photos/docs/hello.txt"
pass "conditional writes (If-None-Match: *, If-Match) and reads (304, 412, dates)"

# ---- listing ----------------------------------------------------------------------------------

req 200 -X PUT "$U/list"
for k in a/1 a/2 a/b/3 b/1 c d%20e; do
    req 200 -X PUT --data-binary "$k" "$U/list/$k"
done
req 200 "$U/list?list-type=2"
body_has "<KeyCount>6</KeyCount>"
body_has "<IsTruncated>false</IsTruncated>"
body_has "<Key>a/b/3</Key>"
body_has "<Key>d e</Key>"
body_has "<Size>3</Size>"
body_lacks "<Owner>"
req 200 "$U/list?delimiter=%2F&list-type=2"
body_has "<KeyCount>4</KeyCount>"
body_has "<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"
body_has "<CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>"
body_has "<Contents><Key>c</Key>"
body_lacks "<Key>a/1</Key>"
req 200 "$U/list?delimiter=%2F&list-type=2&prefix=a%2F"
body_has "<Prefix>a/</Prefix><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>"
body_has "<Key>a/1</Key>"
body_has "<Key>a/2</Key>"
body_has "<CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes>"
body_lacks "<Key>a/b/3</Key>"
req 200 "$U/list?list-type=2&prefix=a%2F&start-after=a%2F1"
body_lacks "<Key>a/1</Key>"
body_has "<Key>a/2</Key>"
body_has "<StartAfter>a/1</StartAfter>"
req 200 "$U/list?fetch-owner=true&list-type=2&prefix=c"
body_has "<Owner><ID>"
req 200 "$U/list?encoding-type=url&list-type=2&prefix=d"
body_has "<Key>d%20e</Key>"
body_has "<EncodingType>url</EncodingType>"
# pagination: two at a time, with the delimiter rolling a/ and b/ up, until IsTruncated is false
seen=""
token=""
for page in 1 2 3 4; do
    q="delimiter=%2F&list-type=2&max-keys=2"
    [ -n "$token" ] && q="continuation-token=$token&$q"
    req 200 "$U/list?$q"
    seen="$seen$(grep -o '<Key>[^<]*</Key>\|<Prefix>[^<]*</Prefix>' "$TMP/body" | grep -v '<Prefix></Prefix>' | tr -d '\n')"
    if grep -q "<IsTruncated>true</IsTruncated>" "$TMP/body"; then
        token=$(sed -n 's/.*<NextContinuationToken>\([^<]*\)<.*/\1/p' "$TMP/body")
        [ -n "$token" ] || fail "truncated page without NextContinuationToken" "$BODY"
    else
        token=""
        break
    fi
done
want="<Prefix>a/</Prefix><Prefix>b/</Prefix><Key>c</Key><Key>d e</Key>"
[ -z "$token" ] || fail "pagination did not end in 4 pages"
[ "$seen" = "$want" ] || fail "pagination gave $seen, want $want"
req 200 "$U/list?list-type=2&max-keys=0"
body_has "<KeyCount>0</KeyCount>"
req 400 "$U/list?continuation-token=zz&list-type=2"
error_is InvalidArgument
req 400 "$U/list?encoding-type=base64&list-type=2"
error_is InvalidArgument
# ListObjects v1, with marker
req 200 "$U/list?marker=a%2Fb%2F3&max-keys=2"
body_has "<Marker>a/b/3</Marker>"
body_has "<Key>b/1</Key>"
body_has "<Key>c</Key>"
body_has "<IsTruncated>true</IsTruncated>"
body_has "<NextMarker>c</NextMarker>"
body_has "<Owner>"
req 404 "$U/nope-bucket?list-type=2"
error_is NoSuchBucket
pass "ListObjectsV2 (prefix, delimiter, start-after, fetch-owner, url encoding, pagination) and v1"

# ---- errors and auth --------------------------------------------------------------------------

req 404 "$U/photos/missing/key.txt"
error_is NoSuchKey
body_has "<Key>missing/key.txt</Key>"
body_has "<Resource>/photos/missing/key.txt</Resource>"
req 404 "$U/nope-bucket/key"
error_is NoSuchBucket
req 404 -X PUT --data-binary x "$U/nope-bucket/key"
error_is NoSuchBucket
status=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:wrong-secret" -o "$TMP/body" \
    -w '%{http_code}' "$U/photos/docs/hello.txt")
BODY=$(cat "$TMP/body")
[ "$status" = 403 ] || fail "wrong secret: want 403, got $status" "$BODY"
error_is SignatureDoesNotMatch
body_has "<StringToSign>"
body_has "<CanonicalRequest>"
status=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "someone-else:$SECRET" -o "$TMP/body" \
    -w '%{http_code}' "$U/photos/docs/hello.txt")
BODY=$(cat "$TMP/body")
[ "$status" = 403 ] || fail "unknown key: want 403, got $status" "$BODY"
error_is InvalidAccessKeyId
status=$(curl -sS --aws-sigv4 "aws:amz:eu-west-1:s3" --user "$KEY:$SECRET" -o "$TMP/body" \
    -w '%{http_code}' "$U/photos/docs/hello.txt")
BODY=$(cat "$TMP/body")
[ "$status" = 400 ] || fail "wrong region: want 400, got $status" "$BODY"
error_is AuthorizationHeaderMalformed
raw 403 "$U/photos/docs/hello.txt"
error_is AccessDenied
raw 400 -H "Authorization: AWS $KEY:c2lnbmF0dXJl" "$U/photos/docs/hello.txt"
error_is InvalidRequest
raw 400 -H "Authorization: AWS4-HMAC-SHA256 Credential=garbage" "$U/photos/docs/hello.txt"
error_is AuthorizationHeaderMalformed
req 405 -X PATCH "$U/photos/docs/hello.txt"
error_is MethodNotAllowed
req 501 "$U/photos/docs/hello.txt?retention="
error_is NotImplemented
body_has "GET on the object sub-resource ?retention is not implemented by fakes3"
# GetObjectTagging: fakes3 keeps no tags; an object has an empty set, a missing one is NoSuchKey
req 200 "$U/photos/docs/hello.txt?tagging="
case "$BODY" in
*"<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet></TagSet></Tagging>"*) ;;
*) fail "GetObjectTagging: want an empty TagSet" "$BODY" ;;
esac
req 404 "$U/photos/no-such-key?tagging="
error_is NoSuchKey
pass "NoSuchKey, NoSuchBucket, SignatureDoesNotMatch, InvalidAccessKeyId, region, unsigned, SigV2"

# ---- presigned URLs ---------------------------------------------------------------------------

PURL=$(python3 "$PRESIGN" GET "$U/photos/docs/hello.txt" "$KEY" "$SECRET" "$REGION" 300)
raw 200 "$PURL"
cmp -s "$TMP/body" "$TMP/hello.txt" || fail "presigned GET returned other bytes" "$BODY"
OLD=$(date -u -d '-2 hours' +%Y%m%dT%H%M%SZ)
PURL=$(python3 "$PRESIGN" GET "$U/photos/docs/hello.txt" "$KEY" "$SECRET" "$REGION" 60 "$OLD")
raw 403 "$PURL"
error_is AccessDenied
body_has "Request has expired"
PURL=$(python3 "$PRESIGN" GET "$U/photos/docs/hello.txt" "$KEY" "wrong" "$REGION" 300)
raw 403 "$PURL"
error_is SignatureDoesNotMatch
PURL=$(python3 "$PRESIGN" GET "$U/photos/docs/hello.txt" "$KEY" "$SECRET" "$REGION" 604801)
raw 400 "$PURL"
error_is AuthorizationQueryParametersError
pass "presigned GET: valid, expired (AccessDenied), wrong secret, expiry over a week"

# ---- keys -------------------------------------------------------------------------------------

# odd but legal keys round-trip; keys that look like paths never leave the data directory
touch "$TMP/marker-before"
for path in 'odd/with%20space/%C3%BC%2B%25.txt' '..%2F..%2F..%2Fescape.txt' \
    '%2E%2E/%2E%2E/escape2.txt' 'dir//double' 'trailing/' '%E2%9C%93'; do
    req 200 --path-as-is -X PUT --data-binary "k:$path" "$U/photos/$path"
    req 200 --path-as-is "$U/photos/$path"
    [ "$BODY" = "k:$path" ] || fail "key $path returned \"$BODY\""
done
req 200 "$U/photos?list-type=2&prefix=..%2F"
body_has "<Key>../../../escape.txt</Key>"
req 200 "$U/photos?list-type=2&prefix=odd"
body_has "<Key>odd/with space/ü+%.txt</Key>"
outside=$(find "$TMP" -newer "$TMP/marker-before" -type f -name '*escape*' -print)
[ -z "$outside" ] || fail "a key made a file outside the data directory: $outside"
long=$(head -c 1025 /dev/zero | tr '\0' k)
req 400 -X PUT --data-binary x "$U/photos/$long"
error_is KeyTooLongError
req 400 "$U/photos/a%00b"
error_is InvalidArgument
pass "odd keys (space, %, +, unicode, //, ..) round-trip and stay inside the data directory"

# ---- virtual-host style -----------------------------------------------------------------------

PORT=${HOSTPORT##*:}
VH="--resolve photos.localhost:$PORT:127.0.0.1"
req 200 $VH "http://photos.localhost:$PORT/docs/hello.txt"
cmp -s "$TMP/body" "$TMP/hello.txt" || fail "virtual-host GET returned other bytes"
req 200 $VH -X PUT --data-binary vhost "http://photos.localhost:$PORT/vh.txt"
req 200 "$U/photos/vh.txt"
[ "$BODY" = vhost ] || fail "virtual-host PUT stored \"$BODY\""
req 200 $VH "http://photos.localhost:$PORT/?list-type=2&prefix=vh"
body_has "<Key>vh.txt</Key>"
pass "virtual-host style (Host: photos.localhost)"

# ---- delete -----------------------------------------------------------------------------------

req 409 -X DELETE "$U/list"
error_is BucketNotEmpty
for k in a/1 a/2 a/b/3 b/1 c d%20e; do
    req 204 -X DELETE "$U/list/$k"
done
req 204 -X DELETE "$U/list/c" # deleting what is not there succeeds, as in S3
req 404 "$U/list/c"
req 204 -X DELETE "$U/list"
req 404 -I "$U/list"
pass "delete objects, BucketNotEmpty, delete bucket"

# ---- health and log ---------------------------------------------------------------------------

req 200 "$U/_fakes3/health"
body_has '"status":"ok"'
raw 403 "$U/_fakes3/health"
req 200 "$U/_fakes3/stats"
body_has '"PutObject":{"200":'
body_has '"412":'
body_has '"GetObject":{"200":'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["requests"] > 100, d' "$TMP/body" ||
    fail "stats are not the JSON expected" "$BODY"
grep -q '"operation":"PutObject"' "$TMP/requests.jsonl" || fail "no PutObject in the request log"
grep -q '"status":412' "$TMP/requests.jsonl" || fail "no 412 in the request log"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$TMP/requests.jsonl" ||
    fail "the request log is not JSON lines"
pass "admin health and stats (signed), and the JSON-lines request log"

# ---- restart ----------------------------------------------------------------------------------

stop "$PID_main"
ls "$DATA/tmp" | grep -q . && fail "temp files left behind: $(ls "$DATA/tmp")"
left=$(find "$DATA/buckets" -path '*/objects/*/t-*')
[ -z "$left" ] || fail "object temp files left behind" "$left"
start again --data-dir "$DATA"
U=$URL
grep -q '1 buckets' "$TMP/again.out" || fail "restart did not find 1 bucket" "$(cat "$TMP/again.out")"
req 200 "$U/photos/docs/hello.txt"
cmp -s "$TMP/body" "$TMP/hello.txt" || fail "after restart GET returned other bytes"
header_is ETag "\"$MD5\""
header_is x-amz-meta-color blue
header_is Content-Type text/plain
req 200 --path-as-is "$U/photos/odd/with%20space/%C3%BC%2B%25.txt"
req 200 "$U/photos?list-type=2&prefix=docs%2F"
body_has "<Key>docs/hello.txt</Key>"
req 200 "$U/photos/new.txt"
[ "$BODY" = second ] || fail "after restart new.txt is \"$BODY\""
pass "a restart finds every object, its metadata and its listing"

# ---- start-up failures ------------------------------------------------------------------------

PORT=${U##*:}
set +e
"$FAKES3" --listen "127.0.0.1:$PORT" --memory >"$TMP/taken.out" 2>"$TMP/taken.log"
rc=$?
"$FAKES3" --listen 127.0.0.1:0 --data-dir "$DATA" >/dev/null 2>"$TMP/locked.log"
rc2=$?
mkdir -p "$TMP/notempty" && echo precious >"$TMP/notempty/file.txt"
"$FAKES3" --listen 127.0.0.1:0 --data-dir "$TMP/notempty" >/dev/null 2>"$TMP/notempty.log"
rc3=$?
"$FAKES3" --listen 127.0.0.1:0 --data-dir "$TMP/hello.txt" >/dev/null 2>"$TMP/file.log"
rc4=$?
"$FAKES3" --listen nonsense >/dev/null 2>"$TMP/nonsense.log"
rc5=$?
set -e
[ "$rc" -eq 1 ] && grep -q "already in use" "$TMP/taken.log" ||
    fail "port taken: want exit 1 and 'already in use', got $rc" "$(cat "$TMP/taken.log")"
[ "$rc2" -eq 1 ] && grep -q "in use by another fakes3" "$TMP/locked.log" ||
    fail "data dir in use: want exit 1, got $rc2" "$(cat "$TMP/locked.log")"
[ "$rc3" -eq 1 ] && grep -q "not a fakes3 data directory" "$TMP/notempty.log" ||
    fail "foreign data dir: want exit 1, got $rc3" "$(cat "$TMP/notempty.log")"
[ "$(cat "$TMP/notempty/file.txt")" = precious ] || fail "fakes3 touched a foreign directory"
[ "$rc4" -eq 1 ] && grep -q "not a directory" "$TMP/file.log" ||
    fail "file as data dir: want exit 1, got $rc4" "$(cat "$TMP/file.log")"
[ "$rc5" -eq 1 ] || [ "$rc5" -eq 2 ] || fail "--listen nonsense: want failure, got $rc5"
[ ! -e "$TMP/fakes3-data" ] || fail "a failed start made the default data directory anyway"
pass "start-up failures: port taken, data dir locked, foreign or a file (exit 1, clear message)"

# ---- clock skew, memory store ------------------------------------------------------------------

start skewed --memory --clock-skew 3600
req 403 "$URL/"
error_is RequestTimeTooSkewed
body_has "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
stop "$PID_skewed"
start mem --memory
req 200 -X PUT "$URL/mem-bucket"
req 200 -X PUT --data-binary "in memory" "$URL/mem-bucket/k"
req 206 -H "Range: bytes=3-" "$URL/mem-bucket/k"
[ "$BODY" = memory ] || fail "memory store range gave \"$BODY\""
stop "$PID_mem"
start anon --memory --anonymous
raw 200 -X PUT "$URL/anon"
raw 200 -X PUT --data-binary "no signature" "$URL/anon/k"
raw 200 "$URL/anon/k"
[ "$BODY" = "no signature" ] || fail "--anonymous GET gave \"$BODY\""
stop "$PID_anon"
pass "RequestTimeTooSkewed (--clock-skew), --memory store, --anonymous"

stop "$PID_again"
echo "$passed passed, 0 failed"
