#!/usr/bin/env bash
# test_fakes3_parts: what fakes3 answers beside the plain object operations, driven by curl on the
# disk store (with a restart) and in memory:
#   - GET/HEAD ?partNumber=N: part N of a completed multipart upload (206, Content-Range,
#     x-amz-mp-parts-count, the part's bytes, also after a restart), part 1 of a single-part object
#     (the whole object, 206, no parts count), InvalidPartNumber past the last part, InvalidArgument
#     for 0 / 10001 / "x", InvalidRequest beside a Range header; a copy of a multipart object is a
#     single-part object;
#   - GetBucketVersioning (an empty VersioningConfiguration), GetBucketAcl and GetObjectAcl (the
#     owner with FULL_CONTROL), NoSuchBucket / NoSuchKey, and 501 NotImplemented naming the
#     sub-resource for the ones fakes3 does not serve (PUT ?versioning, GET ?policy);
#   - DeleteBucket with a multipart upload in progress: 204 (as S3, uploads do not make a bucket
#     non-empty), the upload is gone with it (also from the disk, across a restart), and a part
#     sent to it afterwards is NoSuchBucket / NoSuchUpload.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, cmp, head, md5sum.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"

UP=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
MIB=1048576
head -c $((5 * MIB)) /dev/urandom >"$TMP/p1"
head -c $((5 * MIB + 3)) /dev/urandom >"$TMP/p2"
printf 'tail' >"$TMP/p3"
printf 'single object' >"$TMP/single"
hdr() { tr -d '\r' <"$TMP/headers" | grep -i "^$1:" | head -n1 | sed 's/^[^:]*: *//'; }
upload_id() { sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$TMP/body"; }
etag_of() { hdr ETag; }

# multipart U KEY: uploads p1 p2 p3 as a 3-part object KEY in bucket bkt
multipart() {
    local u=$1 key=$2 id e1 e2 e3
    req 200 -X POST "$u/bkt/$key?uploads="
    id=$(upload_id)
    req 200 -T "$TMP/p1" "${UP[@]}" "$u/bkt/$key?partNumber=1&uploadId=$id"
    e1=$(etag_of)
    req 200 -T "$TMP/p2" "${UP[@]}" "$u/bkt/$key?partNumber=2&uploadId=$id"
    e2=$(etag_of)
    req 200 -T "$TMP/p3" "${UP[@]}" "$u/bkt/$key?partNumber=3&uploadId=$id"
    e3=$(etag_of)
    printf '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part><Part><PartNumber>3</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>' \
        "$e1" "$e2" "$e3" >"$TMP/complete.xml"
    req 200 -X POST --data-binary @"$TMP/complete.xml" "$u/bkt/$key?uploadId=$id"
    body_has "<ETag>"
}

# check_parts U KEY WHAT: every part of KEY (the p1 p2 p3 object) by GET and HEAD
check_parts() {
    local u=$1 key=$2 what=$3 total=$((10 * MIB + 7))
    req 206 "$u/bkt/$key?partNumber=1"
    cmp -s "$TMP/body" "$TMP/p1" || fail "$what: part 1 bytes differ"
    header_is Content-Range "bytes 0-$((5 * MIB - 1))/$total"
    header_is x-amz-mp-parts-count 3
    header_is Content-Length $((5 * MIB))
    req 206 "$u/bkt/$key?partNumber=2"
    cmp -s "$TMP/body" "$TMP/p2" || fail "$what: part 2 bytes differ"
    header_is Content-Range "bytes $((5 * MIB))-$((10 * MIB + 2))/$total"
    req 206 "$u/bkt/$key?partNumber=3"
    [ "$BODY" = tail ] || fail "$what: part 3 is \"$BODY\""
    header_is Content-Range "bytes $((10 * MIB + 3))-$((total - 1))/$total"
    local etag_part etag_whole
    etag_part=$(etag_of)
    req 206 -I "$u/bkt/$key?partNumber=2"
    header_is Content-Length $((5 * MIB + 3))
    header_is x-amz-mp-parts-count 3
    header_is Content-Range "bytes $((5 * MIB))-$((10 * MIB + 2))/$total"
    req 200 "$u/bkt/$key"
    etag_whole=$(etag_of)
    [ "$etag_part" = "$etag_whole" ] || fail "$what: a part's ETag $etag_part, the object's $etag_whole"
    case "$etag_whole" in *-3\") ;; *) fail "$what: not a 3-part ETag: $etag_whole" ;; esac
    [ -z "$(hdr x-amz-mp-parts-count)" ] || fail "$what: a whole GET carries x-amz-mp-parts-count"
    cat "$TMP/p1" "$TMP/p2" "$TMP/p3" | cmp -s - "$TMP/body" || fail "$what: whole object differs"
    req 416 "$u/bkt/$key?partNumber=4"
    error_is InvalidPartNumber
    body_has "<PartNumberRequested>4</PartNumberRequested><ActualPartCount>3</ActualPartCount>"
    req 416 -I "$u/bkt/$key?partNumber=4"
}

for store in disk memory; do
    if [ "$store" = disk ]; then start "$store" --data-dir "$TMP/data"; else start "$store" --memory; fi
    U=$URL
    req 200 -X PUT "$U/bkt"

    multipart "$U" "multi%20part"
    check_parts "$U" "multi%20part" "$store"
    for bad in 0 10001 x -1; do
        req 400 "$U/bkt/multi%20part?partNumber=$bad"
        error_is InvalidArgument
        body_has "Part number must be an integer between 1 and 10000, inclusive"
    done
    req 400 -H "Range: bytes=0-1" "$U/bkt/multi%20part?partNumber=1"
    error_is InvalidRequest
    body_has "Cannot specify both Range header and partNumber query parameter"
    req 404 "$U/bkt/missing?partNumber=1"
    error_is NoSuchKey
    pass "$store: GET/HEAD ?partNumber on a 3-part object: bytes, Content-Range, parts count, errors"

    req 200 -T "$TMP/single" "${UP[@]}" "$U/bkt/single"
    req 206 "$U/bkt/single?partNumber=1"
    [ "$BODY" = "single object" ] || fail "single-part partNumber=1: \"$BODY\""
    header_is Content-Range "bytes 0-12/13"
    [ -z "$(hdr x-amz-mp-parts-count)" ] || fail "a single-part object has a parts count"
    req 416 "$U/bkt/single?partNumber=2"
    error_is InvalidPartNumber
    body_has "<ActualPartCount>1</ActualPartCount>"
    req 200 -H "x-amz-copy-source: /bkt/multi%20part" -X PUT "$U/bkt/copied"
    req 416 "$U/bkt/copied?partNumber=2"
    error_is InvalidPartNumber
    req 206 "$U/bkt/copied?partNumber=1"
    header_is Content-Range "bytes 0-$((10 * MIB + 6))/$((10 * MIB + 7))"
    pass "$store: partNumber=1 of a single-part object is the whole object; a copy is single-part"

    req 200 "$U/bkt?versioning="
    body_has '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    body_lacks "<Status>"
    req 404 "$U/no-such-bucket?versioning="
    error_is NoSuchBucket
    req 200 "$U/bkt?acl="
    body_has '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>'
    body_has '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
    body_has "<Permission>FULL_CONTROL</Permission>"
    req 200 "$U/bkt/single?acl="
    body_has "<Permission>FULL_CONTROL</Permission>"
    req 404 "$U/bkt/missing?acl="
    error_is NoSuchKey
    req 404 "$U/no-such-bucket?acl="
    error_is NoSuchBucket
    printf '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' >"$TMP/v.xml"
    req 501 -X PUT --data-binary @"$TMP/v.xml" "$U/bkt?versioning="
    error_is NotImplemented
    body_has "PUT on the bucket sub-resource ?versioning is not implemented by fakes3"
    req 501 "$U/bkt?policy="
    body_has "GET on the bucket sub-resource ?policy is not implemented by fakes3"
    pass "$store: GetBucketVersioning, GetBucketAcl, GetObjectAcl; other sub-resources 501"

    # DeleteBucket with an upload in progress
    req 200 -X PUT "$U/gone"
    req 200 -X POST "$U/gone/k?uploads="
    ID=$(upload_id)
    req 200 -T "$TMP/p3" "${UP[@]}" "$U/gone/k?partNumber=1&uploadId=$ID"
    req 200 "$U/gone?uploads="
    body_has "<UploadId>$ID</UploadId>"
    req 204 -X DELETE "$U/gone"
    req 404 -T "$TMP/p3" "${UP[@]}" "$U/gone/k?partNumber=2&uploadId=$ID"
    error_is NoSuchBucket
    req 200 -X PUT "$U/gone"
    req 200 "$U/gone?uploads="
    body_lacks "<Upload>"
    req 404 -T "$TMP/p3" "${UP[@]}" "$U/gone/k?partNumber=2&uploadId=$ID"
    error_is NoSuchUpload
    req 204 -X DELETE "$U/gone"
    pass "$store: DeleteBucket with an upload in progress: 204, the upload goes with it"

    if [ "$store" = disk ]; then
        stop "$PID"
        [ -z "$(find "$TMP/data" -path '*/gone*')" ] || fail "the deleted bucket left files" \
            "$(find "$TMP/data" -path '*/gone*')"
        [ -z "$(find "$TMP/data" -name 't-*')" ] || fail "temp files left beside the objects"
        start disk2 --data-dir "$TMP/data"
        U=$URL
        check_parts "$U" "multi%20part" "disk, after a restart"
        req 206 "$U/bkt/single?partNumber=1"
        [ "$BODY" = "single object" ] || fail "single-part after a restart: \"$BODY\""
        req 404 "$U/gone?uploads="
        error_is NoSuchBucket
        pass "disk: the part boundaries survive a restart; the deleted bucket stays deleted"
    fi
    stop "$PID"
done
echo "$passed passed, 0 failed"
