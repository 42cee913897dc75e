#!/usr/bin/env bash
# test_fakes3_copy: CopyObject (PUT with x-amz-copy-source) driven by curl, on the disk store and
# in memory: the COPY directive (metadata and content headers copied) and REPLACE (taken from the
# request); copy sources with and without the leading '/', URL-encoded keys, ?versionId; a copy
# onto itself (InvalidRequest unless REPLACE); the four x-amz-copy-source-if-* conditions (412);
# If-None-Match: * on the destination; NoSuchKey / NoSuchBucket / InvalidArgument; the
# CopyObjectResult document; a multipart source (its copy gets a plain MD5 ETag); and on disk a
# 64 MiB copy whose bytes never pass through fakes3's memory (its peak RSS barely moves).
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, md5sum, python3 (standard library).
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"

UP=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
printf 'the source object\n' >"$TMP/src.txt"
SRC_MD5=$(md5sum "$TMP/src.txt" | cut -d' ' -f1)

for store in disk memory; do
    if [ "$store" = disk ]; then start "$store" --data-dir "$TMP/data"; else start "$store" --memory; fi
    U=$URL
    req 200 -X PUT "$U/bkt"
    req 200 -X PUT "$U/other"
    req 200 -T "$TMP/src.txt" "${UP[@]}" -H "Content-Type: text/x-source" -H "x-amz-meta-color: red" \
        -H "Cache-Control: max-age=9" -H "Content-Disposition: inline" "$U/bkt/dir/src%20k%C3%BC"

    # COPY (the default): bytes, ETag, metadata and content headers
    req 200 -X PUT -H "x-amz-copy-source: /bkt/dir/src%20k%C3%BC" -H "x-amz-meta-ignored: yes" \
        -H "Content-Type: text/ignored" "$U/other/copy1"
    body_has "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>"
    body_has "<ETag>&quot;$SRC_MD5&quot;</ETag></CopyObjectResult>"
    req 200 "$U/other/copy1"
    cmp -s "$TMP/body" "$TMP/src.txt" || fail "the copy has other bytes" "$BODY"
    header_is ETag "\"$SRC_MD5\""
    header_is Content-Type text/x-source
    header_is x-amz-meta-color red
    header_is Cache-Control max-age=9
    header_is Content-Disposition inline
    grep -qi '^x-amz-meta-ignored' "$TMP/headers" && fail "COPY took the request's metadata"
    # without the leading '/', with ?versionId, explicit COPY
    req 200 -X PUT -H "x-amz-copy-source: bkt/dir/src%20k%C3%BC?versionId=null" \
        -H "x-amz-metadata-directive: COPY" "$U/bkt/copy2"
    req 200 "$U/bkt/copy2"
    cmp -s "$TMP/body" "$TMP/src.txt" || fail "copy2 has other bytes"
    pass "$store: COPY copies bytes, ETag, metadata and content headers; source forms"

    # REPLACE: the request's headers, none of the source's
    req 200 -X PUT -H "x-amz-copy-source: /bkt/dir/src%20k%C3%BC" \
        -H "x-amz-metadata-directive: REPLACE" -H "Content-Type: text/x-new" \
        -H "x-amz-meta-shape: round" "$U/other/copy3"
    req 200 -I "$U/other/copy3"
    header_is Content-Type text/x-new
    header_is x-amz-meta-shape round
    header_is ETag "\"$SRC_MD5\""
    grep -qi '^x-amz-meta-color\|^Cache-Control' "$TMP/headers" && fail "REPLACE kept source headers"
    req 400 -X PUT -H "x-amz-copy-source: /bkt/dir/src%20k%C3%BC" \
        -H "x-amz-metadata-directive: MERGE" "$U/other/copy4"
    error_is InvalidArgument
    pass "$store: REPLACE takes the request's headers; an unknown directive is InvalidArgument"

    # onto itself
    req 400 -X PUT -H "x-amz-copy-source: /bkt/copy2" "$U/bkt/copy2"
    error_is InvalidRequest
    body_has "trying to copy an object to itself"
    req 200 -X PUT -H "x-amz-copy-source: /bkt/copy2" -H "x-amz-metadata-directive: REPLACE" \
        -H "x-amz-meta-round: two" "$U/bkt/copy2"
    req 200 "$U/bkt/copy2"
    cmp -s "$TMP/body" "$TMP/src.txt" || fail "a self-copy changed the bytes"
    header_is x-amz-meta-round two
    pass "$store: a copy onto itself needs REPLACE (InvalidRequest), and then keeps the bytes"

    # copy-source conditions
    S=(-H "x-amz-copy-source: /bkt/dir/src%20k%C3%BC")
    PAST="Sat, 01 Jan 2000 00:00:00 GMT"
    FUTURE=$(date -u -d '+1 day' '+%a, %d %b %Y %H:%M:%S GMT')
    req 412 -X PUT "${S[@]}" -H 'x-amz-copy-source-if-match: "0000"' "$U/bkt/c"
    error_is PreconditionFailed
    req 412 -X PUT "${S[@]}" -H "x-amz-copy-source-if-none-match: \"$SRC_MD5\"" "$U/bkt/c"
    error_is PreconditionFailed
    req 412 -X PUT "${S[@]}" -H "x-amz-copy-source-if-unmodified-since: $PAST" "$U/bkt/c"
    req 412 -X PUT "${S[@]}" -H "x-amz-copy-source-if-modified-since: $FUTURE" "$U/bkt/c"
    req 404 "$U/bkt/c"
    # If-Match true decides over If-Unmodified-Since false, as S3 documents
    req 200 -X PUT "${S[@]}" -H "x-amz-copy-source-if-match: \"$SRC_MD5\"" \
        -H "x-amz-copy-source-if-unmodified-since: $PAST" "$U/bkt/c"
    req 200 -X PUT "${S[@]}" -H 'x-amz-copy-source-if-none-match: "0000"' \
        -H "x-amz-copy-source-if-modified-since: $PAST" "$U/bkt/c2"
    pass "$store: x-amz-copy-source-if-match / -if-none-match / -if-(un)modified-since"

    # the destination's own conditions, decided at the commit
    req 412 -X PUT "${S[@]}" -H "If-None-Match: *" "$U/bkt/c"
    error_is PreconditionFailed
    req 200 -X PUT "${S[@]}" -H "If-None-Match: *" "$U/bkt/c3"
    req 412 -X PUT "${S[@]}" -H 'If-Match: "0000"' "$U/bkt/c3"
    req 200 -X PUT "${S[@]}" -H "If-Match: \"$SRC_MD5\"" "$U/bkt/c3"
    pass "$store: If-None-Match: * and If-Match on the destination"

    # errors
    req 404 -X PUT -H "x-amz-copy-source: /bkt/nope" "$U/bkt/d"
    error_is NoSuchKey
    body_has "<Key>nope</Key>"
    req 404 -X PUT -H "x-amz-copy-source: /no-such-bucket/k" "$U/bkt/d"
    error_is NoSuchBucket
    req 400 -X PUT -H "x-amz-copy-source: /bkt" "$U/bkt/d"
    error_is InvalidArgument
    req 404 -X PUT "${S[@]}" "$U/no-such-bucket/d"
    error_is NoSuchBucket
    pass "$store: NoSuchKey and NoSuchBucket (source and destination), a source without a key"
    stop "$PID"
done

# ---- a multipart source, and a big copy that stays out of memory (disk store) ------------------
start big --data-dir "$TMP/data"
U=$URL
head -c $((5 * 1048576)) /dev/urandom >"$TMP/p1"
printf 'tail' >"$TMP/p2"
req 200 -X POST "$U/bkt/mp?uploads="
ID=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$TMP/body")
req 200 -T "$TMP/p1" "${UP[@]}" "$U/bkt/mp?partNumber=1&uploadId=$ID"
E1=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^ETag: *//Ip')
req 200 -T "$TMP/p2" "${UP[@]}" "$U/bkt/mp?partNumber=2&uploadId=$ID"
E2=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^ETag: *//Ip')
req 200 -X POST --data-binary \
    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$E1</ETag></Part><Part><PartNumber>2</PartNumber><ETag>$E2</ETag></Part></CompleteMultipartUpload>" \
    "$U/bkt/mp?uploadId=$ID"
body_has -2\&quot\;
req 200 -X PUT -H "x-amz-copy-source: /bkt/mp" "$U/bkt/mp-copy"
WHOLE=$(cat "$TMP/p1" "$TMP/p2" | md5sum | cut -d' ' -f1)
body_has "<ETag>&quot;$WHOLE&quot;</ETag>"
req 200 "$U/bkt/mp-copy"
header_is ETag "\"$WHOLE\""
[ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$WHOLE" ] || fail "multipart copy: other bytes"
pass "a multipart source: the copy has the same bytes and a plain MD5 ETag"

hwm() { sed -n 's/^VmHWM: *\([0-9]*\) kB/\1/p' "/proc/$PID/status"; }
head -c $((64 * 1048576)) /dev/urandom >"$TMP/big"
BIG=$(md5sum "$TMP/big" | cut -d' ' -f1)
req 200 -T "$TMP/big" "${UP[@]}" "$U/bkt/big"
before=$(hwm)
req 200 -X PUT -H "x-amz-copy-source: /bkt/big" "$U/bkt/big-copy"
req 200 -X PUT -H "x-amz-copy-source: /bkt/big" -H "x-amz-metadata-directive: REPLACE" \
    "$U/bkt/big"
after=$(hwm)
req 200 "$U/bkt/big-copy"
[ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$BIG" ] || fail "the 64 MiB copy differs"
req 200 "$U/bkt/big"
[ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$BIG" ] || fail "the 64 MiB self-copy differs"
[ $((after - before)) -lt 32768 ] ||
    fail "copying 64 MiB raised fakes3's peak RSS by $((after - before)) kB (from $before kB)"
stop "$PID"
pass "64 MiB copies (to a new key and onto itself) streamed: peak RSS +$((after - before)) kB"
echo "$passed passed, 0 failed"
