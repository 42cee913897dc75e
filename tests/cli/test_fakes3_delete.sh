#!/usr/bin/env bash
# test_fakes3_delete: DeleteObjects (POST /bucket?delete) driven by curl, on the disk store and in
# memory: the Content-MD5 (or x-amz-checksum-*) S3 requires, checked (BadDigest); per-key
# <Deleted> results with a missing key counted as deleted; Quiet mode; keys XML must escape;
# conditional deletes by <ETag>; exactly 1000 keys accepted and 1001 refused; malformed bodies,
# a DOCTYPE (entity expansion) and an oversized body refused as MalformedXML; NoSuchBucket.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, python3 (standard library), openssl, base64.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
command -v python3 >/dev/null || fail "needs python3"

# delete STATUS FILE [CURL_ARGS...]: POST ?delete with FILE as the body and its Content-MD5
delete() {
    local want=$1 file=$2
    shift 2
    req "$want" -X POST --data-binary @"$file" \
        -H "Content-MD5: $(openssl dgst -md5 -binary "$file" | base64)" "$@" "$U/bkt?delete="
}
# objects KEY...: a Delete body naming the keys (already XML-escaped)
objects() {
    printf '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    for k in "$@"; do printf '<Object><Key>%s</Key></Object>' "$k"; done
    printf '</Delete>'
}
put() { req 200 -X PUT --data-binary "$2" "$U/bkt/$1"; }

for store in disk memory; do
    if [ "$store" = disk ]; then start "$store" --data-dir "$TMP/data"; else start "$store" --memory; fi
    U=$URL
    req 200 -X PUT "$U/bkt"
    for k in a b c keep; do put "$k" "body of $k"; done

    objects a b > "$TMP/ab.xml"
    req 400 -X POST --data-binary @"$TMP/ab.xml" "$U/bkt?delete="
    error_is InvalidRequest
    body_has "<Message>Missing required header for this request: Content-MD5</Message>"
    req 400 -X POST --data-binary @"$TMP/ab.xml" -H "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==" \
        "$U/bkt?delete="
    error_is BadDigest
    req 400 -X POST --data-binary @"$TMP/ab.xml" -H "Content-MD5: nonsense" "$U/bkt?delete="
    error_is InvalidDigest
    req 400 -X POST --data-binary @"$TMP/ab.xml" -H "x-amz-checksum-crc32: AAAAAA==" \
        "$U/bkt?delete="
    error_is BadDigest
    req 200 "$U/bkt/a"
    req 200 "$U/bkt/b"
    pass "$store: Content-MD5 or a checksum is required and checked; nothing deleted on failure"

    # not quiet: every key, the missing one too, is <Deleted>
    objects a never-was > "$TMP/d1.xml"
    delete 200 "$TMP/d1.xml"
    body_has "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>a</Key></Deleted><Deleted><Key>never-was</Key></Deleted></DeleteResult>"
    req 404 "$U/bkt/a"
    req 200 "$U/bkt/b"
    # a checksum header instead of Content-MD5 (what current SDKs send)
    objects b > "$TMP/d2.xml"
    CRC=$(python3 -c 'import sys,zlib,base64;d=open(sys.argv[1],"rb").read();print(base64.b64encode(zlib.crc32(d).to_bytes(4,"big")).decode())' "$TMP/d2.xml")
    req 200 -X POST --data-binary @"$TMP/d2.xml" -H "x-amz-checksum-crc32: $CRC" "$U/bkt?delete="
    body_has "<Deleted><Key>b</Key></Deleted>"
    req 404 "$U/bkt/b"
    pass "$store: not quiet: each key <Deleted>, a missing key too; x-amz-checksum-crc32 accepted"

    # quiet: nothing but errors; a conditional delete with the wrong ETag is one
    put c2 "c2"
    printf '<Delete><Quiet>true</Quiet><Object><Key>c</Key></Object><Object><Key>c2</Key><ETag>"00000000000000000000000000000000"</ETag></Object></Delete>' >"$TMP/q.xml"
    delete 200 "$TMP/q.xml"
    body_lacks "<Deleted>"
    body_has "<Error><Key>c2</Key><Code>PreconditionFailed</Code>"
    req 404 "$U/bkt/c"
    req 200 "$U/bkt/c2"
    C2=$(printf c2 | md5sum | cut -d' ' -f1)
    printf '<Delete><Quiet>false</Quiet><Object><Key>c2</Key><ETag>"%s"</ETag></Object></Delete>' "$C2" >"$TMP/q2.xml"
    delete 200 "$TMP/q2.xml"
    body_has "<Deleted><Key>c2</Key></Deleted>"
    req 404 "$U/bkt/c2"
    pass "$store: Quiet answers only errors; <ETag> makes a delete conditional"

    # keys XML has to escape come back escaped
    put "x%26y%3Cz" "amp"
    objects 'x&amp;y&lt;z' > "$TMP/esc.xml"
    delete 200 "$TMP/esc.xml"
    body_has "<Deleted><Key>x&amp;y&lt;z</Key></Deleted>"
    req 404 "$U/bkt/x%26y%3Cz"
    pass "$store: keys with & and < round-trip through the XML"

    # exactly 1000 keys; 1001 is MalformedXML
    python3 - "$TMP" <<'EOF'
import sys
d = sys.argv[1]
for n in (1000, 1001):
    with open(f"{d}/n{n}.xml", "w") as f:
        f.write("<Delete>" + "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(n))
                + "</Delete>")
EOF
    for i in 0 1 999; do put "k$i" "x"; done
    delete 400 "$TMP/n1001.xml"
    error_is MalformedXML
    req 200 "$U/bkt/k999"
    delete 200 "$TMP/n1000.xml"
    [ "$(grep -o '<Deleted>' "$TMP/body" | wc -l)" -eq 1000 ] || fail "want 1000 <Deleted>"
    req 404 "$U/bkt/k999"
    pass "$store: 1000 keys deleted in one request, 1001 refused as MalformedXML"

    # malformed bodies
    for bad in '<Delete><Object><Key>a</Key></Object>' '<Delete></Delete>' \
        '<Other><Object><Key>a</Key></Object></Other>' '<Delete><Object><Key></Key></Object></Delete>' \
        '<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>' 'not xml at all'; do
        printf '%s' "$bad" >"$TMP/bad.xml"
        delete 400 "$TMP/bad.xml"
        error_is MalformedXML
    done
    cat >"$TMP/lol.xml" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"><!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"><!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>
EOF
    delete 400 "$TMP/lol.xml"
    error_is MalformedXML
    head -c $((9 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$TMP/huge.xml"
    delete 400 "$TMP/huge.xml"
    error_is MalformedXML
    req 200 "$U/bkt/keep"
    pass "$store: malformed bodies, a DOCTYPE (billion laughs) and a 9 MiB body: MalformedXML"

    objects a > "$TMP/a.xml"
    req 404 -X POST --data-binary @"$TMP/a.xml" \
        -H "Content-MD5: $(openssl dgst -md5 -binary "$TMP/a.xml" | base64)" "$U/no-such-bucket?delete="
    error_is NoSuchBucket
    pass "$store: NoSuchBucket"

    # DeleteObject with If-Match (S3's conditional delete): 412 while the ETag differs
    req 200 -X PUT --data-binary "lease" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$U/bkt/cond"
    etag=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
    req 412 -X DELETE -H 'If-Match: "00000000000000000000000000000000"' "$U/bkt/cond"
    error_is PreconditionFailed
    req 200 "$U/bkt/cond"
    req 204 -X DELETE -H "If-Match: $etag" "$U/bkt/cond"
    req 404 "$U/bkt/cond"
    req 404 -X DELETE -H "If-Match: $etag" "$U/bkt/cond"
    error_is NoSuchKey
    pass "$store: DeleteObject with If-Match: 412 on another ETag, 204 on ours, 404 when gone"
    stop "$PID"
done
echo "$passed passed, 0 failed"
