#!/usr/bin/env bash
# test_fakes3_crash: kill -9 of fakes3 in the middle of large uploads never leaves a partial or
# mixed object. Seven rounds each overwrite an existing key and create a new one with 24 MiB
# bodies sent at a limited rate, kill fakes3 with SIGKILL at a varying moment (before, around and
# after the uploads end), restart it on the same data directory, and check that each key holds
# exactly one whole version (old or new for the overwritten key, absent or new for the created
# one, with matching ETag and metadata) and that the temp folder was emptied. A last round kills
# fakes3 right after an upload was acknowledged: that object must be there after the restart.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, md5sum.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"

DATA="$TMP/data"
MIB=24
head -c $((MIB * 1048576)) /dev/urandom >"$TMP/new.bin"
head -c 1048576 /dev/urandom >"$TMP/old.bin"
NEW=$(md5sum "$TMP/new.bin" | cut -d' ' -f1)
OLD=$(md5sum "$TMP/old.bin" | cut -d' ' -f1)

start s0 --data-dir "$DATA"
req 200 -X PUT "$URL/crash"
req 200 -T "$TMP/old.bin" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-meta-v: old" \
    "$URL/crash/over"
pid=$PID

upload() { # upload KEY: in the background, at 16 MiB/s
    curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" --limit-rate 16M \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-meta-v: new" -T "$TMP/new.bin" \
        -o /dev/null "$URL/crash/$1" 2>/dev/null &
}

# check KEY ALLOWED...: the key is one of the allowed versions (old, new, absent), whole
check() {
    local key=$1 got status
    shift
    status=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" \
        -D "$TMP/headers" -o "$TMP/got" -w '%{http_code}' "$URL/crash/$key")
    if [ "$status" = 404 ]; then
        got=absent
    elif [ "$status" = 200 ]; then
        case "$(md5sum "$TMP/got" | cut -d' ' -f1)" in
        "$OLD") got=old; header_is x-amz-meta-v old; header_is ETag "\"$OLD\"" ;;
        "$NEW") got=new; header_is x-amz-meta-v new; header_is ETag "\"$NEW\"" ;;
        *) fail "$key: $(stat -c %s "$TMP/got") bytes that are neither version" ;;
        esac
    else
        fail "$key: HTTP $status"
    fi
    case " $* " in *" $got "*) ;; *) fail "$key is $got, allowed: $*" ;; esac
    echo "$got"
}

# uploads take about 1.5 s: kill before, around and after their end
delays=(0.1 0.7 1.3 1.5 1.6 1.8 2.5)
for round in 0 1 2 3 4 5 6; do
    upload over
    c1=$!
    upload "fresh$round"
    c2=$!
    sleep "${delays[$round]}"
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
    wait "$c1" "$c2" 2>/dev/null || true
    start "r$round" --data-dir "$DATA"
    pid=$PID
    a=$(check over old new)
    b=$(check "fresh$round" absent new)
    ls "$DATA/tmp" | grep -q . && fail "temp files survived the restart: $(ls "$DATA/tmp")"
    # an object's upload is written beside its final name (objects/HH/t-PID-SEQ)
    left=$(find "$DATA/buckets" -path '*/objects/*/t-*')
    [ -z "$left" ] || fail "object temp files survived the restart" "$left"
    pass "kill -9 after ${delays[$round]} s of uploads: overwritten key $a, new key $b, whole"
    req 200 -T "$TMP/old.bin" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-meta-v: old" \
        "$URL/crash/over"
done

# an acknowledged upload survives a kill -9 that follows it at once
req 200 -T "$TMP/new.bin" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-meta-v: new" \
    "$URL/crash/acked"
{ kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
start last --data-dir "$DATA"
[ "$(check acked new)" = new ] || fail "the acknowledged object is gone"
pass "an acknowledged upload is there after kill -9 and restart"
pid=$PID

# ---- kill -9 during CompleteMultipartUpload ----------------------------------------------------
for i in 1 2 3 4 5 6 7 8; do head -c $((5 * 1048576)) /dev/urandom >"$TMP/part$i"; done
cat "$TMP"/part{1,2,3,4,5,6,7,8} >"$TMP/mp.bin"
MP=$(md5sum "$TMP/mp.bin" | cut -d' ' -f1)
for i in 1 2 3 4 5 6 7 8; do openssl dgst -md5 -binary "$TMP/part$i"; done >"$TMP/md5s"
MPETAG="$(md5sum "$TMP/md5s" | cut -d' ' -f1)-8"
complete_body() {
    printf '<CompleteMultipartUpload>'
    for i in 1 2 3 4 5 6 7 8; do
        printf '<Part><PartNumber>%d</PartNumber><ETag>"%s"</ETag></Part>' "$i"             "$(md5sum "$TMP/part$i" | cut -d' ' -f1)"
    done
    printf '</CompleteMultipartUpload>'
}
complete_body >"$TMP/complete.xml"
mp_delays=(0 0.005 0.01 0.02 0.04 0.08)
for round in 0 1 2 3 4 5; do
    key="mp$round"
    req 200 -X POST -H "x-amz-meta-v: mp" "$URL/crash/$key?uploads="
    id=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$TMP/body")
    for i in 1 2 3 4 5 6 7 8; do
        req 200 -T "$TMP/part$i" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            "$URL/crash/$key?partNumber=$i&uploadId=$id"
    done
    curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" -X POST \
        --data-binary @"$TMP/complete.xml" -o /dev/null "$URL/crash/$key?uploadId=$id" 2>/dev/null &
    c1=$!
    sleep "${mp_delays[$round]}"
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
    wait "$c1" 2>/dev/null || true
    start "m$round" --data-dir "$DATA"
    pid=$PID
    ls "$DATA/tmp" | grep -q . && fail "temp files survived the restart: $(ls "$DATA/tmp")"
    left=$(find "$DATA/buckets" -path '*/objects/*/t-*')
    [ -z "$left" ] || fail "object temp files survived the restart" "$left"
    status=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" \
        -D "$TMP/headers" -o "$TMP/got" -w '%{http_code}' "$URL/crash/$key")
    if [ "$status" = 200 ]; then
        [ "$(md5sum "$TMP/got" | cut -d' ' -f1)" = "$MP" ] ||
            fail "$key: $(stat -c %s "$TMP/got") bytes that are not the whole upload"
        header_is ETag "\"$MPETAG\""
        header_is x-amz-meta-v mp
        got=whole
        # killed between the object's rename and the upload's removal: the upload may remain
        curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" -X DELETE -o /dev/null \
            "$URL/crash/$key?uploadId=$id"
    elif [ "$status" = 404 ]; then
        got=absent
        req 200 "$URL/crash/$key?uploadId=$id"
        [ "$(grep -o '<Part>' "$TMP/body" | wc -l)" -eq 8 ] || fail "$key: the upload lost parts" "$BODY"
        req 200 -X POST --data-binary @"$TMP/complete.xml" "$URL/crash/$key?uploadId=$id"
        body_has "<ETag>&quot;$MPETAG&quot;</ETag>"
        req 200 "$URL/crash/$key"
        [ "$(md5sum <"$TMP/body" | cut -d' ' -f1)" = "$MP" ] || fail "$key: completed again, other bytes"
    else
        fail "$key: HTTP $status"
    fi
    pass "kill -9 ${mp_delays[$round]} s into a 40 MiB CompleteMultipartUpload: object $got"
done
stop "$pid"
echo "$passed passed, 0 failed"
