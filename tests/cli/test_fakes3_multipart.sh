#!/usr/bin/env bash
# test_fakes3_multipart: the multipart upload driven by curl, on the disk store (with a restart
# between the parts and the completion) and in memory: CreateMultipartUpload (headers kept for the
# object), UploadPart (ETag = part MD5, Content-MD5 and x-amz-checksum-* checked, part numbers
# 1..10000, a part replaced), aws-chunked UploadPart with a checksum trailer, ListParts pages,
# ListMultipartUploads, CompleteMultipartUpload (the ETag, computed here as the MD5 of the parts'
# MD5s, "-3"; InvalidPartOrder, InvalidPart, EntityTooSmall, MalformedXML, NoSuchUpload), the
# object's bytes and headers, AbortMultipartUpload, and the conditional completions: 412 on
# If-None-Match: * over an existing key, and 409 ConditionalRequestConflict when the key is
# deleted while a conditional write is under way (multipart, and a slow PutObject).
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, md5sum, openssl, base64, python3 (standard library).
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
UPLOAD="$HERE/chunked_upload.py"
command -v python3 >/dev/null || fail "needs python3"

UP=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
MIB=1048576
head -c $((5 * MIB)) /dev/urandom >"$TMP/p1"
head -c $((5 * MIB)) /dev/urandom >"$TMP/p2"
printf 'z' >"$TMP/p3"
cat "$TMP/p1" "$TMP/p2" "$TMP/p3" >"$TMP/whole"
md5() { md5sum "$1" | cut -d' ' -f1; }
# the multipart ETag, independently of fakes3: MD5 of the concatenated binary part MD5s, "-N"
mp_etag() {
    local f
    for f in "$@"; do openssl dgst -md5 -binary "$f"; done >"$TMP/md5s"
    echo "$(md5 "$TMP/md5s")-$#"
}
WANT=$(mp_etag "$TMP/p1" "$TMP/p2" "$TMP/p3")
etag_header() { tr -d '\r' <"$TMP/headers" | sed -n 's/^ETag: *//Ip'; }
upload_id() { sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$TMP/body"; }
# complete_xml N:ETAG...: a CompleteMultipartUpload body
complete_xml() {
    printf '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    for p in "$@"; do printf '<Part><PartNumber>%s</PartNumber><ETag>%s</ETag></Part>' "${p%%:*}" "${p#*:}"; done
    printf '</CompleteMultipartUpload>'
}

for store in disk memory; do
    if [ "$store" = disk ]; then start "$store" --data-dir "$TMP/data"; else start "$store" --memory; fi
    U=$URL
    req 200 -X PUT "$U/bkt"

    req 200 -X POST -H "Content-Type: video/x-test" -H "x-amz-meta-kind: multi" \
        -H "Cache-Control: no-store" "$U/bkt/dir/big%20file?uploads="
    body_has "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>dir/big file</Key><UploadId>"
    ID=$(upload_id)
    [ ${#ID} -ge 32 ] || fail "a short upload id: $ID"
    req 200 -X POST "$U/bkt/dir/big%20file?uploads="
    ID2=$(upload_id)
    [ "$ID" != "$ID2" ] || fail "two uploads got one id"
    req 404 -X POST "$U/no-such-bucket/k?uploads="
    error_is NoSuchBucket
    pass "$store: CreateMultipartUpload: result document, distinct ids, NoSuchBucket"

    P="$U/bkt/dir/big%20file"
    req 200 -T "$TMP/p1" "${UP[@]}" "$P?partNumber=1&uploadId=$ID"
    [ "$(etag_header)" = "\"$(md5 "$TMP/p1")\"" ] || fail "part 1 ETag $(etag_header)"
    E1=$(etag_header)
    # part 2: first something else, then replaced
    req 200 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=2&uploadId=$ID"
    req 400 -T "$TMP/p2" "${UP[@]}" -H "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==" \
        "$P?partNumber=2&uploadId=$ID"
    error_is BadDigest
    req 200 -T "$TMP/p2" "${UP[@]}" -H "Content-MD5: $(openssl dgst -md5 -binary "$TMP/p2" | base64)" \
        "$P?partNumber=2&uploadId=$ID"
    E2=$(etag_header)
    [ "$E2" = "\"$(md5 "$TMP/p2")\"" ] || fail "part 2 ETag $E2"
    CRC=$(python3 -c 'import zlib,base64;print(base64.b64encode(zlib.crc32(b"z").to_bytes(4,"big")).decode())')
    req 400 -T "$TMP/p3" "${UP[@]}" -H "x-amz-checksum-crc32: AAAAAA==" "$P?partNumber=3&uploadId=$ID"
    error_is BadDigest
    body_has "The CRC32 you specified did not match the calculated checksum."
    req 200 -T "$TMP/p3" "${UP[@]}" -H "x-amz-checksum-crc32: $CRC" "$P?partNumber=3&uploadId=$ID"
    header_is x-amz-checksum-crc32 "$CRC"
    E3=$(etag_header)
    for bad in 0 10001 abc; do
        req 400 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=$bad&uploadId=$ID"
        error_is InvalidArgument
    done
    req 404 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=1&uploadId=nope"
    error_is NoSuchUpload
    req 404 -T "$TMP/p3" "${UP[@]}" "$U/bkt/other-key?partNumber=1&uploadId=$ID"
    error_is NoSuchUpload
    pass "$store: UploadPart: ETag = MD5, replace, Content-MD5 and CRC32 checked, bad numbers and ids"

    # aws-chunked parts (what current SDKs send): a CRC32 trailer, right and wrong
    out=$(python3 "$UPLOAD" unsigned-trailer "$P?partNumber=9&uploadId=$ID2" "$KEY" "$SECRET" "$REGION" 70000 8192)
    [ "$(head -n1 <<<"$out")" = 200 ] || fail "aws-chunked UploadPart" "$out"
    out=$(python3 "$UPLOAD" unsigned-badcrc "$P?partNumber=8&uploadId=$ID2" "$KEY" "$SECRET" "$REGION" 70000 8192)
    [ "$(head -n1 <<<"$out")" = 400 ] && grep -q BadDigest <<<"$out" || fail "bad trailer CRC" "$out"
    out=$(python3 "$UPLOAD" signed "$P?partNumber=7&uploadId=$ID2" "$KEY" "$SECRET" "$REGION" 70000 8192)
    [ "$(head -n1 <<<"$out")" = 200 ] || fail "signed aws-chunked UploadPart" "$out"
    req 200 "$P?uploadId=$ID2"
    body_has "<PartNumber>7</PartNumber>"
    body_has "<PartNumber>9</PartNumber>"
    body_has "<ChecksumCRC32>"
    body_lacks "<PartNumber>8</PartNumber>"
    req 204 -X DELETE "$P?uploadId=$ID2"
    pass "$store: aws-chunked UploadPart, signed and with a CRC32 trailer (a wrong one: BadDigest)"

    if [ "$store" = disk ]; then
        stop "$PID"
        start disk2 --data-dir "$TMP/data"
        U=$URL
        P="$U/bkt/dir/big%20file"
        pass "disk: restarted between the parts and the completion"
    fi

    # ListParts, two pages of two and one
    req 200 "$P?max-parts=2&uploadId=$ID"
    body_has "<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>bkt</Bucket><Key>dir/big file</Key><UploadId>$ID</UploadId>"
    body_has "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
    body_has "<PartNumber>1</PartNumber>"
    body_has "<ETag>&quot;$(md5 "$TMP/p2")&quot;</ETag><Size>5242880</Size>"
    body_lacks "<PartNumber>3</PartNumber>"
    req 200 "$P?max-parts=2&part-number-marker=2&uploadId=$ID"
    body_has "<NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>3</PartNumber>"
    body_has "<Size>1</Size><ChecksumCRC32>$CRC</ChecksumCRC32></Part></ListPartsResult>"
    req 200 "$U/bkt?uploads="
    body_has "<Upload><Key>dir/big file</Key><UploadId>$ID</UploadId>"
    body_lacks "$ID2"
    req 200 "$U/bkt?prefix=dir%2Fbig&uploads="
    body_has "<UploadId>$ID</UploadId>"
    req 200 "$U/bkt?prefix=nothing&uploads="
    body_lacks "<Upload>"
    pass "$store: ListParts (pages: NextPartNumberMarker, IsTruncated), ListMultipartUploads"

    # completion errors
    req 400 -X POST --data-binary "$(complete_xml 2:"$E2" 1:"$E1")" "$P?uploadId=$ID"
    error_is InvalidPartOrder
    req 400 -X POST --data-binary "$(complete_xml 1:"$E1" 2:'"00000000000000000000000000000000"')" "$P?uploadId=$ID"
    error_is InvalidPart
    body_has "<PartNumber>2</PartNumber>"
    req 400 -X POST --data-binary "$(complete_xml 1:"$E1" 5:"$E2")" "$P?uploadId=$ID"
    error_is InvalidPart
    req 400 -X POST --data-binary "$(complete_xml 3:"$E3" 4:"$E3")" "$P?uploadId=$ID"
    error_is InvalidPart
    req 200 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=4&uploadId=$ID"
    req 400 -X POST --data-binary "$(complete_xml 3:"$E3" 4:"$E3")" "$P?uploadId=$ID"
    error_is EntityTooSmall
    body_has "<ProposedSize>1</ProposedSize><MinSizeAllowed>5242880</MinSizeAllowed><PartNumber>3</PartNumber>"
    req 400 -X POST --data-binary "<CompleteMultipartUpload></CompleteMultipartUpload>" "$P?uploadId=$ID"
    error_is MalformedXML
    req 400 -X POST --data-binary "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber>" "$P?uploadId=$ID"
    error_is MalformedXML
    req 404 -X POST --data-binary "$(complete_xml 1:"$E1")" "$P?uploadId=0123"
    error_is NoSuchUpload
    req 404 "$P"
    pass "$store: InvalidPartOrder, InvalidPart (ETag, missing part), EntityTooSmall, MalformedXML"

    # complete (part 4 is not listed: it goes)
    req 200 -X POST --data-binary "$(complete_xml 1:"$E1" 2:"$E2" 3:"$E3")" "$P?uploadId=$ID"
    body_has "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://${U#http://}/bkt/dir/big%20file</Location><Bucket>bkt</Bucket><Key>dir/big file</Key><ETag>&quot;$WANT&quot;</ETag></CompleteMultipartUploadResult>"
    req 200 "$P"
    cmp -s "$TMP/body" "$TMP/whole" || fail "the object is not the parts in order"
    header_is ETag "\"$WANT\""
    header_is Content-Length $((10 * MIB + 1))
    header_is Content-Type video/x-test
    header_is x-amz-meta-kind multi
    header_is Cache-Control no-store
    req 206 -H "Range: bytes=5242879-5242880" "$P"
    [ "$(od -An -tx1 "$TMP/body" | tr -d ' \n')" = "$(tail -c1 "$TMP/p1" | od -An -tx1 | tr -d ' \n')$(head -c1 "$TMP/p2" | od -An -tx1 | tr -d ' \n')" ] ||
        fail "the bytes across the part boundary differ"
    req 404 "$P?uploadId=$ID"
    error_is NoSuchUpload
    req 200 "$U/bkt?uploads="
    body_lacks "<Upload>"
    req 200 "$U/bkt?list-type=2"
    body_has "<Key>dir/big file</Key>"
    body_has "<ETag>&quot;$WANT&quot;</ETag><Size>10485761</Size>"
    if [ "$store" = disk ]; then
        [ -z "$(ls -A "$TMP/data/buckets/bkt/uploads")" ] || fail "upload files left: $(ls -R "$TMP/data/buckets/bkt/uploads")"
        [ -z "$(ls -A "$TMP/data/tmp")" ] || fail "temp files left: $(ls "$TMP/data/tmp")"
    fi
    pass "$store: CompleteMultipartUpload: ETag = MD5 of part MD5s -3 (computed here), bytes, headers"

    # abort
    req 200 -X POST "$U/bkt/gone?uploads="
    ID3=$(upload_id)
    req 200 -T "$TMP/p3" "${UP[@]}" "$U/bkt/gone?partNumber=1&uploadId=$ID3"
    req 204 -X DELETE "$U/bkt/gone?uploadId=$ID3"
    req 404 -X DELETE "$U/bkt/gone?uploadId=$ID3"
    error_is NoSuchUpload
    body_has "<UploadId>$ID3</UploadId>"
    req 404 -T "$TMP/p3" "${UP[@]}" "$U/bkt/gone?partNumber=2&uploadId=$ID3"
    error_is NoSuchUpload
    req 404 -X POST --data-binary "$(complete_xml 1:"$E3")" "$U/bkt/gone?uploadId=$ID3"
    error_is NoSuchUpload
    req 404 "$U/bkt/gone"
    pass "$store: AbortMultipartUpload 204, then NoSuchUpload everywhere"

    # conditional completion: 412 on an existing key (the upload stays), then If-Match
    req 200 -X POST "$P?uploads="
    ID4=$(upload_id)
    req 200 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=1&uploadId=$ID4"
    req 412 -X POST -H "If-None-Match: *" --data-binary "$(complete_xml 1:"$E3")" "$P?uploadId=$ID4"
    error_is PreconditionFailed
    req 200 "$P?uploadId=$ID4"
    req 412 -X POST -H 'If-Match: "00000000000000000000000000000000-3"' \
        --data-binary "$(complete_xml 1:"$E3")" "$P?uploadId=$ID4"
    req 200 -X POST -H "If-Match: \"$WANT\"" --data-binary "$(complete_xml 1:"$E3")" "$P?uploadId=$ID4"
    req 200 "$P"
    [ "$BODY" = z ] || fail "If-Match completion did not replace the object"
    pass "$store: If-None-Match: * over an existing key 412 (upload kept), If-Match replaces"

    # 409: the key deleted while a conditional upload is under way
    req 200 -X POST "$P?uploads="
    ID5=$(upload_id)
    req 200 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=1&uploadId=$ID5"
    req 204 -X DELETE "$P"
    req 409 -X POST -H "If-None-Match: *" --data-binary "$(complete_xml 1:"$E3")" "$P?uploadId=$ID5"
    error_is ConditionalRequestConflict
    req 404 "$P?uploadId=$ID5"
    error_is NoSuchUpload
    req 404 "$P"
    # without a condition the same sequence simply completes
    req 200 -X POST "$P?uploads="
    ID6=$(upload_id)
    req 200 -T "$TMP/p3" "${UP[@]}" "$P?partNumber=1&uploadId=$ID6"
    req 200 -X PUT --data-binary x "$P"
    req 204 -X DELETE "$P"
    req 200 -X POST --data-binary "$(complete_xml 1:"$E3")" "$P?uploadId=$ID6"
    # a slow conditional PutObject whose key is deleted meanwhile
    req 200 -X PUT --data-binary old "$U/bkt/slow"
    head -c 300000 /dev/urandom >"$TMP/slow"
    curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" --limit-rate 100K \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "If-Match: \"$(printf old | md5sum | cut -d' ' -f1)\"" \
        -T "$TMP/slow" -o "$TMP/slow.out" -w '%{http_code}' "$U/bkt/slow" >"$TMP/slow.status" &
    cpid=$!
    sleep 1
    req 204 -X DELETE "$U/bkt/slow"
    wait "$cpid"
    [ "$(cat "$TMP/slow.status")" = 409 ] && grep -q ConditionalRequestConflict "$TMP/slow.out" ||
        fail "slow If-Match PUT after a delete: $(cat "$TMP/slow.status")" "$(cat "$TMP/slow.out")"
    req 404 "$U/bkt/slow"
    pass "$store: 409 ConditionalRequestConflict: key deleted during a conditional upload or PUT"
    stop "$PID"
done
echo "$passed passed, 0 failed"
