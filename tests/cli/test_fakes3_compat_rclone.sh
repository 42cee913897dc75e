#!/usr/bin/env bash
# test_fakes3_compat_rclone: build/fakes3 as rclone sees it (Debian's rclone, 1.60 on Debian 12;
# an s3 remote, provider Other, path style, us-east-1, SigV4 with a key pair): buckets (mkdir,
# lsd, rmdir); small objects, an awkward key with user metadata (-M); a 21 MiB object uploaded in
# one PUT (--s3-upload-cutoff 5G) and downloaded whole and in parallel ranged streams; ranged
# reads (cat --offset/--count/--tail, which rclone sends as bytes=a-b); md5sum and lsjson --stat
# (HEAD); listings of 1100 keys with ListObjects v1 and v2 in chunks of 100 (--s3-list-chunk),
# with and without the delimiter; copy and sync; deletefile, delete and purge (rclone deletes key
# by key); a presigned GET (rclone link) fetched with curl; a wrong secret (403
# SignatureDoesNotMatch); a missing key and NoSuchBucket; BucketNotEmpty.
#
# rclone 1.60 cannot send If-None-Match on upload (--header-upload logs "Don't know how to set key"
# and uploads without it), so the conditional
# PUT of this suite is made with curl on rclone's object. rclone never GETs a missing key (it asks
# with HEAD first, which has no error body): that case checks rclone's answer and the 404
# NoSuchKey in fakes3's request log. Multipart uploads and server-side copy are in
# tests/cli/test_fakes3_compat_rclone_multipart.sh.
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
B=compat-rclone
run_ok "rclone version" rclone version
echo "# $(head -n1 "$TMP/out")"

# ---- buckets
run_ok "mkdir" rclone mkdir "fk:$B"
run_ok "mkdir (second bucket)" rclone mkdir "fk:$B-empty"
run_ok "lsd" rclone lsd fk:
eq "$(awk '{print $5}' "$TMP/out" | tr '\n' ' ')" "$B $B-empty " "rclone lsd fk:"
pass "create buckets and list them (mkdir, lsd)"

# ---- small objects
run_ok "copyto up" rclone copyto "$SMALL" "fk:$B/dir/small.bin"
run_ok "cat" rclone cat "fk:$B/dir/small.bin"
same "$SMALL" "$TMP/out" "small object through cat"
run_ok "copyto down" rclone copyto "fk:$B/dir/small.bin" "$TMP/got"
same "$SMALL" "$TMP/got" "small object through copyto"
run_ok "md5sum" rclone md5sum "fk:$B/dir/small.bin"
eq "$OUT" "$(md5 "$SMALL")  small.bin" "rclone md5sum (the ETag)"
pass "put and get a small object (copyto both ways, cat, md5sum)"

KEY_ODD='dir/ünï cödé + 100% & =?.txt'
run_ok "copyto -M (odd key, metadata)" rclone copyto -M --metadata-set colour=blue "$SMALL" \
    "fk:$B/$KEY_ODD"
run_ok "cat (odd key)" rclone cat "fk:$B/$KEY_ODD"
same "$SMALL" "$TMP/out" "the awkward key"
run_ok "lsjson -M --stat (odd key)" rclone lsjson -M --stat "fk:$B/$KEY_ODD"
eq "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(d["Name"], d["Size"], d["Metadata"]["colour"])' "$TMP/out")" \
    "ünï cödé + 100% & =?.txt 1000 blue" "lsjson --stat of the awkward key"
req 200 -I "$URL/$B/dir/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%20%2B%20100%25%20%26%20%3D%3F.txt"
header_is x-amz-meta-colour blue
pass "an awkward key with user metadata (copyto -M), read back by lsjson -M --stat (HEAD)"

# ---- a 21 MiB object, one PUT; downloaded whole and in parallel ranged streams
run_ok "copyto up (big, single part)" rclone copyto --s3-upload-cutoff 5G "$BIG" "fk:$B/big.bin"
eq "$(log_count CreateMultipartUpload)" 0 "no multipart upload"
run_ok "md5sum (big)" rclone md5sum "fk:$B/big.bin"
eq "$OUT" "$(md5 "$BIG")  big.bin" "rclone md5sum of the 21 MiB object"
run_ok "copyto down (big)" rclone copyto --multi-thread-streams 0 "fk:$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "21 MiB object through copyto"
before=$(log_count GetObject bytes)
rm -f "$TMP/got"
run_ok "copyto down (big, multi-thread)" rclone copyto --multi-thread-cutoff 8M \
    --multi-thread-streams 3 "fk:$B/big.bin" "$TMP/got"
same "$BIG" "$TMP/got" "21 MiB object through a multi-thread copyto"
[ $(($(log_count GetObject bytes) - before)) -ge 2 ] ||
    fail "multi-thread copyto made no parallel ranged GETs"
pass "put a 21 MiB object in one PUT; get it whole and in parallel ranged streams"

# ---- ranged reads
cat_range() { # cat_range OFFSET LENGTH ARGS...
    local off=$1 len=$2
    shift 2
    run_ok "cat $*" rclone cat "$@" "fk:$B/big.bin"
    slice "$BIG" "$off" "$len" >"$TMP/want"
    same "$TMP/want" "$TMP/out" "rclone cat $*"
}
cat_range 1000 4096 --offset 1000 --count 4096
cat_range $((BIG_SIZE - 70000)) "" --offset $((BIG_SIZE - 70000))
cat_range $((BIG_SIZE - 12345)) "" --tail 12345
cat_range 0 10 --head 10
grep -q '"key":"big.bin","range":"bytes%3D1000-5095","status":206' "$TMP/fakes3.log" ||
    fail "cat --offset 1000 --count 4096 did not GET bytes=1000-5095"
pass "ranged reads: cat --offset/--count, --offset, --tail, --head (bytes=a-b, 206)"

# ---- listings: 1100 keys
make_many "$TMP/many" 1100
run_ok "copy (1100 files)" rclone copy --transfers 8 "$TMP/many" "fk:$B/many"
puts=$(log_count PutObject)
run_ok "sync (nothing to do)" rclone sync "$TMP/many" "fk:$B/many"
eq "$(log_count PutObject)" "$puts" "rclone sync right after copy uploaded again"
pass "copy of 1100 files; sync then finds nothing to do"

before=$(log_count ListObjects)
run_ok "lsf (1100 keys, v1, chunks of 100)" rclone lsf --s3-list-chunk 100 "fk:$B/many"
eq "$(wc -l <"$TMP/out")" 1100 "rclone lsf of 1100 keys"
eq "$(sed -n '1p;$p' "$TMP/out" | tr '\n' ' ')" "k0000 k1099 " "first and last key"
eq "$(sort -c "$TMP/out" && echo sorted)" sorted "rclone lsf order"
eq $(($(log_count ListObjects) - before)) 11 "ListObjects (v1) requests for 1100 keys in chunks of 100"
before=$(log_count ListObjectsV2)
run_ok "lsf (1100 keys, v2, chunks of 100)" rclone lsf --s3-list-version 2 --s3-list-chunk 100 \
    "fk:$B/many"
eq "$(wc -l <"$TMP/out")" 1100 "rclone lsf (list v2) of 1100 keys"
eq $(($(log_count ListObjectsV2) - before)) 11 "ListObjectsV2 requests for 1100 keys in chunks of 100"
run_ok "size" rclone size --json "fk:$B"
eq "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["count"], d["bytes"])' "$TMP/out")" \
    "1103 $((2000 + BIG_SIZE + 1100 * 5))" "rclone size"
pass "list 1100 keys with ListObjects v1 and v2 in chunks of 100 (markers, continuation tokens)"

run_ok "lsf (top, delimiter)" rclone lsf "fk:$B"
eq "$(tr '\n' ' ' <"$TMP/out")" "big.bin dir/ many/ " "rclone lsf at the top (CommonPrefixes)"
run_ok "lsf --s3-list-version 2 (dir)" rclone lsf --s3-list-version 2 "fk:$B/dir"
eq "$(tr '\n' ' ' <"$TMP/out")" "small.bin ünï cödé + 100% & =?.txt " "rclone lsf by prefix dir/"
run_ok "lsf -R --s3-list-chunk 7" rclone lsf -R --files-only --s3-list-chunk 7 "fk:$B"
eq "$(wc -l <"$TMP/out")" 1103 "rclone lsf -R"
pass "listings: delimiter (dir/ and many/ as directories), prefix, recursive in chunks of 7"

# ---- deletes (rclone deletes key by key: DeleteObject)
run_ok "deletefile" rclone deletefile "fk:$B/dir/small.bin"
run_err "deletefile again" '!0' "doesn't exist" rclone deletefile "fk:$B/dir/small.bin"
before=$(log_count DeleteObject)
run_ok "delete (1100 keys)" rclone delete --transfers 8 "fk:$B/many"
eq $(($(log_count DeleteObject) - before)) 1100 "rclone delete: DeleteObject requests"
run_ok "lsf after delete" rclone lsf "fk:$B/many"
eq "$OUT" "" "keys left after rclone delete"
pass "deletefile, and delete of 1100 keys (one DeleteObject each)"

# ---- a conditional PUT (rclone 1.60 cannot send If-None-Match: curl on rclone's object)
run_ok "copyto (cond.bin)" rclone copyto "$SMALL" "fk:$B/cond.bin"
req 412 -X PUT -H 'If-None-Match: *' --data-binary @"$TMP/many/k0001" "$URL/$B/cond.bin"
error_is PreconditionFailed
run_ok "cat (cond.bin)" rclone cat "fk:$B/cond.bin"
same "$SMALL" "$TMP/out" "rclone's object after the refused conditional PUT"
pass "conditional PUT on rclone's object (curl, If-None-Match: *): 412, object unchanged"

# ---- presigned GET
run_ok "link" rclone link --expire 5m "fk:$B/big.bin"
url=$OUT
case "$url" in "$URL/$B/big.bin?"*X-Amz-Signature=*) ;; *) fail "rclone link: odd URL $url" ;; esac
raw 200 "$url"
same "$BIG" "$TMP/body" "presigned GET (rclone link) with curl"
raw 206 -H 'Range: bytes=-100' "$url"
slice "$BIG" $((BIG_SIZE - 100)) 100 >"$TMP/want"
same "$TMP/want" "$TMP/body" "presigned ranged GET (bytes=-100)"
pass "presigned GET (rclone link) fetched with curl, whole and ranged"

# ---- a wrong secret
run_err "lsf with a wrong secret" '!0' "SignatureDoesNotMatch" rclone_wrong lsf "fk:$B"
grep -q 'status code: 403' "$TMP/out" || fail "rclone with a wrong secret: no 403" "$OUT"
run_err "copyto with a wrong secret" '!0' "SignatureDoesNotMatch" \
    rclone_wrong copyto --no-check-dest --s3-no-check-bucket "$SMALL" "fk:$B/wrong.bin"
req 404 -I "$URL/$B/wrong.bin"
pass "a wrong secret: 403 SignatureDoesNotMatch, nothing stored"

# ---- errors
lines=$(wc -l <"$TMP/fakes3.log")
run_err "deletefile of an absent key" '!0' "doesn't exist" rclone deletefile "fk:$B/no/such/key"
tail -n +$((lines + 1)) "$TMP/fakes3.log" |
    grep -q '"method":"HEAD","operation":"HeadObject".*"status":404,"error":"NoSuchKey"' ||
    fail "no HEAD 404 NoSuchKey for the absent key" "$(tail -n +$((lines + 1)) "$TMP/fakes3.log")"
run_err "lsf of an absent bucket" 3 "directory not found" rclone lsf fk:no-such-bucket
run_err "lsf of an absent bucket (--dump bodies)" 3 "<Code>NoSuchBucket</Code>" \
    rclone lsf --dump bodies fk:no-such-bucket
run_err "copyto into an absent bucket (--s3-no-check-bucket)" '!0' "NoSuchBucket" \
    rclone copyto --s3-no-check-bucket "$SMALL" fk:no-such-bucket/k
pass "a missing key (HEAD 404 NoSuchKey; rclone: doesn't exist), NoSuchBucket (list, put)"

# ---- removing buckets
run_err "rmdir of a bucket with objects" '!0' "BucketNotEmpty" rclone rmdir "fk:$B"
run_ok "rmdir (empty bucket)" rclone rmdir "fk:$B-empty"
run_ok "purge" rclone purge "fk:$B"
run_ok "lsd" rclone lsd fk:
eq "$OUT" "" "buckets after rmdir and purge"
pass "remove buckets: 409 BucketNotEmpty, rmdir of an empty one, purge"

stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
