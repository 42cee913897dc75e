#!/bin/bash
# test_s3_sigv4_botocore: the signatures our S3 client (lib/s3.c, driven by build/tests/s3probe)
# computes, recomputed by botocore's own signer. tests/cli/s3/verify_proxy.py sits between the
# client and a real fakes3: it rebuilds every request as a botocore AWSRequest, signs it with
# botocore.auth.S3SigV4Auth (same keys, region and X-Amz-Date), requires the exact same
# Authorization header (and a body hash that is the body's), and forwards it to fakes3. So our
# client and fakes3 cannot agree on a signing mistake unnoticed.
#
# Covered: GET with Range, PUT with metadata (runs of spaces in a value), Content-MD5 and
# If-None-Match, HEAD, LIST with a query string (prefix with spaces and unicode, start-after,
# continuation tokens past 1000 keys), DeleteObjects, DELETE, multipart upload (uploads,
# partNumber/uploadId queries), UNSIGNED-PAYLOAD, a session token; keys with spaces, unicode and
# reserved characters. And that the proxy can fail: a wrong secret is refused by the proxy itself.
# Needs python3-botocore (Debian package).
set -u
. "$(dirname "$0")/fakes3/lib.sh"

PROBE="$LTXVFS_BUILD_DIR/tests/s3probe"
[ -x "$PROBE" ] || fail "no $PROBE (build the s3probe target)"
PROXY="$HERE/../s3/verify_proxy.py"
python3 -c 'import botocore.auth' 2>/dev/null ||
    fail "python3 cannot import botocore: install the Debian package python3-botocore"

start fk --memory --bucket test-bucket

# start_proxy NAME [PROXY ARGS]: sets PURL (http://127.0.0.1:PORT) and PLOG.
start_proxy() {
    local name=$1
    shift
    python3 "$PROXY" --upstream "$URL_fk" --access-key "$KEY" --secret-key "$SECRET" \
        --log "$TMP/$name.log" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=("$!")
    local i
    for i in $(seq 200); do
        grep -q 'listening on' "$TMP/$name.out" 2>/dev/null && break
        sleep 0.05
    done
    grep -q 'listening on' "$TMP/$name.out" || fail "verify_proxy did not start" "$(cat "$TMP/$name.err")"
    PURL="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$TMP/$name.out")"
    PLOG="$TMP/$name.log"
}

# probe ARGS...: s3probe through the proxy; must succeed. Output in $TMP/out, stderr in $TMP/perr.
probe() {
    "$PROBE" --endpoint "$PURL" --bucket test-bucket --access-key "$KEY" --secret-key "$SECRET" \
        "$@" >"$TMP/out" 2>"$TMP/perr" ||
        fail "s3probe $* failed" "$(cat "$TMP/perr")" "$(tail -n 30 "$PLOG")"
}

no_mismatch() {
    ! grep -q '^MISMATCH' "$PLOG" || fail "botocore disagrees with our signature" "$(cat "$PLOG")"
}

start_proxy main

KEYS=("plain.ltx" "with space/and more" "ünïcødé/ファイル" "plus+eq=amp&q?hash#pct%" "trailing "
    "a//b/./../c" "tilde~star*(paren)'quote'!,;:@\$")
printf 'hello, botocore' >"$TMP/small"
i=0
for k in "${KEYS[@]}"; do
    probe put "$k" "$TMP/small" --md5 --if-none-match '*' --meta "litestream-timestamp=2026-11-21T09:00:00Z" \
        --meta "spaced=a   b  c" --header "content-type=application/octet-stream"
    probe get "$k" 7 5
    [ "$(cat "$TMP/out")" = "boto" ] || [ "$(cat "$TMP/out")" = "botoc" ] ||
        fail "range GET of '$k' returned '$(cat "$TMP/out")'"
    probe get "$k" 7 end
    [ "$(cat "$TMP/out")" = "botocore" ] || fail "GET to the end of '$k': '$(cat "$TMP/out")'"
    probe head "$k"
    grep -qx 'meta-litestream-timestamp=2026-11-21T09:00:00Z' "$TMP/out" ||
        fail "HEAD of '$k' lacks the metadata" "$(cat "$TMP/out")"
    i=$((i + 1))
done
no_mismatch
pass "PUT (metadata, Content-MD5, If-None-Match), GET with Range, HEAD: ${#KEYS[@]} odd keys"

# a second conditional PUT is refused by fakes3 (after botocore agreed with the signature)
if "$PROBE" --endpoint "$PURL" --bucket test-bucket --access-key "$KEY" --secret-key "$SECRET" \
    put "plain.ltx" "$TMP/small" --if-none-match '*' >"$TMP/out" 2>"$TMP/perr"; then
    fail "a second If-None-Match PUT succeeded"
fi
grep -q 'err=ECONFLICT' "$TMP/perr" || fail "want ECONFLICT" "$(cat "$TMP/perr")"
no_mismatch
pass "If-None-Match: * on an existing key is a conflict"

# listings with a query string: prefixes with spaces and unicode, start-after, pagination
probe list "with space/" ""
grep -q $'^with space/and more\t15' "$TMP/out" || fail "list with a spaced prefix" "$(cat "$TMP/out")"
probe list "ünïcødé/"
grep -q '^ünïcødé/ファイル' "$TMP/out" || fail "list with a unicode prefix" "$(cat "$TMP/out")"
probe list "" "plus+eq=amp&q?hash#pct%"
[ "$(head -n1 "$TMP/out" | cut -f1)" = "tilde~star*(paren)'quote'!,;:@\$" ] ||
    fail "list with start-after" "$(cat "$TMP/out")"
grep -q 'start-after=plus%2Beq%3Damp%26q%3Fhash%23pct%25' "$PLOG" ||
    fail "no start-after in the log" "$(cat "$PLOG")"
grep -q 'prefix=%C3%BCn%C3%AFc%C3%B8d%C3%A9%2F' "$PLOG" || fail "no unicode prefix in the log"
no_mismatch
pass "LIST with prefix (spaces, unicode) and start-after"

# 1100 small objects in one batch (s3_run), then a listing of two pages (a continuation token)
probe put-many "many/" 1100
probe list "many/"
[ "$(wc -l <"$TMP/out")" -eq 1100 ] || fail "list of 1100 keys gave $(wc -l <"$TMP/out")"
grep -q 'continuation-token=' "$PLOG" || fail "no continuation token went through the proxy"
probe list-many "many/" "with space/" "ünïcødé/"
[ "$(wc -l <"$TMP/out")" -eq 1102 ] || fail "list-many gave $(wc -l <"$TMP/out") lines"
no_mismatch
pass "LIST past 1000 keys (continuation token) and several prefixes at once"

mapfile -t MANY < <(for n in $(seq 0 1099); do printf 'many/%05d\n' "$n"; done)
probe delete-keys "${KEYS[@]}" "${MANY[@]}"
probe list ""
[ ! -s "$TMP/out" ] || fail "keys left after DeleteObjects" "$(cat "$TMP/out")"
probe put "single" "$TMP/small"
probe delete "single"
no_mismatch
pass "DeleteObjects and DELETE"

head -c 12000000 /dev/urandom >"$TMP/big"
probe --part-size 5242880 put "big/object" "$TMP/big" --md5 --if-none-match '*' --meta "k=v"
grep -q -- '-3"$' "$TMP/out" || fail "a 12 MB PUT was not multipart" "$(cat "$TMP/out")"
probe get "big/object"
cmp -s "$TMP/out" "$TMP/big" || fail "multipart object read back differs"
grep -q 'uploadId=' "$PLOG" && grep -q '?uploads' "$PLOG" || fail "no multipart requests in the log"
no_mismatch
pass "multipart upload (CreateMultipartUpload, UploadPart, Complete with If-None-Match)"

probe --unsigned-payload put "unsigned" "$TMP/small"
probe get "unsigned"
no_mismatch
pass "UNSIGNED-PAYLOAD"

start_proxy token --session-token "FwoGZXIvYXdzEXAMPLE+/=token"
probe --session-token "FwoGZXIvYXdzEXAMPLE+/=token" put "tok" "$TMP/small"
probe --session-token "FwoGZXIvYXdzEXAMPLE+/=token" get "tok" 0 5
[ "$(cat "$TMP/out")" = "hello" ] || fail "GET with a session token"
no_mismatch
pass "a session token is sent and signed"

# https: the proxy serves TLS with a certificate of its own CA for localhost
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ltxvfs test CA" \
    -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>"$TMP/openssl.err" || fail "openssl CA" "$(cat "$TMP/openssl.err")"
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TMP/srv.key" \
    -out "$TMP/srv.csr" 2>>"$TMP/openssl.err" || fail "openssl CSR"
printf 'subjectAltName=DNS:localhost\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/srv.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
    -days 2 -extfile "$TMP/ext" -out "$TMP/srv.pem" 2>>"$TMP/openssl.err" ||
    fail "openssl sign" "$(cat "$TMP/openssl.err")"
start_proxy tls --tls-cert "$TMP/srv.pem" --tls-key "$TMP/srv.key"
PURL="https://localhost:${PURL##*:}"
probe --ca-bundle "$TMP/ca.pem" put "tls/obj" "$TMP/small" --meta "k=v"
probe --ca-bundle "$TMP/ca.pem" get "tls/obj" 0 5
[ "$(cat "$TMP/out")" = "hello" ] || fail "GET over https"
AWS_CA_BUNDLE="$TMP/ca.pem" probe head "tls/obj"
grep -qx 'meta-k=v' "$TMP/out" || fail "HEAD over https with AWS_CA_BUNDLE" "$(cat "$TMP/out")"
if "$PROBE" --endpoint "$PURL" --bucket test-bucket --access-key "$KEY" --secret-key "$SECRET" \
    --max-attempts 2 get "tls/obj" >"$TMP/out" 2>"$TMP/perr"; then
    fail "https with an unknown CA succeeded without --skip-verify"
fi
grep -q 'err=ENET' "$TMP/perr" && grep -q "$PURL" "$TMP/perr" ||
    fail "an unverifiable certificate: want ENET naming the endpoint" "$(cat "$TMP/perr")"
probe --skip-verify get "tls/obj" 0 5
[ "$(cat "$TMP/out")" = "hello" ] || fail "GET over https with --skip-verify"
grep -q '^OK PUT /test-bucket/tls/obj' "$PLOG" || fail "no https PUT in the log" "$(cat "$PLOG")"
no_mismatch
pass "https: a CA bundle (option and AWS_CA_BUNDLE), a refused certificate, skip-verify"

# the proxy can fail: a client with another secret is refused by botocore's check itself
start_proxy neg
if "$PROBE" --endpoint "$PURL" --bucket test-bucket --access-key "$KEY" --secret-key wrong \
    get "tok" >"$TMP/out" 2>"$TMP/perr"; then
    fail "a request signed with a wrong secret went through the proxy"
fi
grep -q 'ProxySignatureMismatch' "$TMP/perr" || fail "not refused by the proxy" "$(cat "$TMP/perr")"
grep -q '^MISMATCH GET /test-bucket/tok' "$PLOG" || fail "the mismatch is not logged" "$(cat "$PLOG")"
# and a request that curl signs (another signer) is accepted
curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" -o "$TMP/out" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "$PURL/test-bucket/tok" || fail "curl through the proxy"
[ "$(cat "$TMP/out")" = "hello, botocore" ] || fail "curl's request was refused" "$(cat "$TMP/out")" "$(cat "$PLOG")"
pass "the proxy refuses a wrong signature and accepts curl's"

stop "$PID_fk"
echo "$passed passed"
