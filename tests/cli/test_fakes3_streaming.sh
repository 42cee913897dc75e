#!/usr/bin/env bash
# test_fakes3_streaming: streaming (aws-chunked) PutObjects, sent by a standard-library client
# (tests/cli/fakes3/chunked_upload.py) written independently of lib/sigv4: signed chunks of
# several sizes are decoded and stored whole; a wrong chunk signature is 403
# SignatureDoesNotMatch and stores nothing; a body cut short stores nothing; the unsigned-payload
# trailer variant stores its x-amz-checksum-crc32 trailer. On the disk and the memory store.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, python3 (standard library), md5sum.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
UPLOAD="$HERE/chunked_upload.py"
command -v python3 >/dev/null || fail "needs python3"

# upload MODE KEY SIZE CHUNK: sets STATUS and OUT
upload() {
    python3 "$UPLOAD" "$1" "$URL/strm/$2" "$KEY" "$SECRET" "$REGION" "$3" "$4" >"$TMP/up" ||
        fail "chunked_upload.py $1 failed"
    STATUS=$(head -n1 "$TMP/up")
    OUT=$(tail -n +2 "$TMP/up")
}

# expected SIZE: the md5 of the client's deterministic content of SIZE bytes
expected() {
    python3 -c "import hashlib,sys;n=int(sys.argv[1]);print(hashlib.md5(bytes(i%251 for i in range(n))).hexdigest())" "$1"
}

for store in disk memory; do
    if [ $store = disk ]; then start $store --data-dir "$TMP/data"; else start $store --memory; fi
    req 200 -X PUT "$URL/strm"
    for case in "1 1" "65536 8192" "200000 65536" "300000 300000" "0 8192"; do
        set -- $case
        upload signed "s-$1-$2" "$1" "$2"
        [ "$STATUS" = 200 ] || fail "signed upload of $1 bytes in $2-byte chunks: $STATUS" "$OUT"
        req 200 "$URL/strm/s-$1-$2"
        want=$(expected "$1")
        [ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$want" ] ||
            fail "signed upload of $1 bytes stored other bytes"
        header_is ETag "\"$want\""
        header_is Content-Type application/x-test
        ! grep -qi '^Content-Encoding' "$TMP/headers" ||
            fail "aws-chunked was stored as the object's Content-Encoding"
    done
    upload signed-badchunk bad 200000 65536
    [ "$STATUS" = 403 ] || fail "a wrong chunk signature: want 403, got $STATUS" "$OUT"
    grep -q '<Code>SignatureDoesNotMatch</Code>' <<<"$OUT" || fail "no SignatureDoesNotMatch" "$OUT"
    req 404 "$URL/strm/bad"
    upload signed-short short 200000 65536
    req 404 "$URL/strm/short"
    upload unsigned-trailer trailer 100000 30000
    [ "$STATUS" = 200 ] || fail "unsigned trailer upload: $STATUS" "$OUT"
    want_crc=$(python3 -c "import base64,zlib;d=bytes(i%251 for i in range(100000));print(base64.b64encode(zlib.crc32(d).to_bytes(4,'big')).decode())")
    req 200 -H "x-amz-checksum-mode: ENABLED" "$URL/strm/trailer"
    header_is x-amz-checksum-crc32 "$want_crc"
    [ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$(expected 100000)" ] ||
        fail "trailer upload stored other bytes"
    stop "$PID"
    pass "$store store: signed aws-chunked uploads, bad chunk signature, cut body, checksum trailer"
done
echo "$passed passed, 0 failed"
