#!/usr/bin/env bash
# test_fakes3_hostile: build/fakes3 against hostile input, byte for byte over raw sockets
# (tests/cli/hostile/rawhttp.py) where curl would not send it: malformed request lines and headers,
# conflicting and absurd lengths, request smuggling shapes, absurd ranges, bad XML bodies
# (CreateBucket, DeleteObjects, CompleteMultipartUpload), keys that try to escape the data
# directory, header injection through response-* parameters, malformed signatures, and slowloris
# clients. Every case checks the status and, where fakes3 answers at the HTTP level, the S3 error
# <Code> ("html" marks libmicrohttpd's own error page, for the inputs it rejects before fakes3
# sees them; see check_framing in fakes3/server.c). After all of them the server must still
# answer its health check and stop cleanly, the data directory must hold only the store's own
# layout, and nothing may have appeared outside it.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, python3 (standard library), cmp. Stops at the first failure, saying what differed.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
RAW="$LTXVFS_SOURCE_DIR/tests/cli/hostile/rawhttp.py"
command -v python3 >/dev/null || fail "needs python3"

WORK="$TMP/work"
mkdir -p "$WORK"
BOX="$TMP/box" # the data directory's parent: nothing but the data directory may appear in it
DATA="$BOX/data"
mkdir -p "$BOX"
MARK="hostile$$x" # in every escaping key, so a file made from one would be found by name
IDLE=3

# hs WANT_STATUS WANT_CODE [rawhttp send options] REQUEST: sends REQUEST (a Python bytes
# expression) to the server on $HP exactly as written. WANT_CODE is the S3 error code, "html" for
# libmicrohttpd's error page, "-" for anything else. Leaves the raw answer in $WORK/resp and the
# number of responses on the connection in $NRESP.
hs() {
    local want="$1 $2" got
    shift 2
    got=$(python3 "$RAW" send "$HP" --out "$WORK/resp" "$@") || fail "rawhttp failed: $*"
    NRESP=${got##* }
    got=${got% *}
    [ "$got" = "$want" ] || fail "want $want, got $got for: ${*: -1}" "$(head -c 800 "$WORK/resp")"
}
resp_has() {
    grep -qaF -- "$1" "$WORK/resp" || fail "response lacks $1" "$(head -c 800 "$WORK/resp")"
}
resp_lacks() {
    ! grep -qaiF -- "$1" "$WORK/resp" || fail "response has $1" "$(head -c 800 "$WORK/resp")"
}
nresp_is() {
    [ "$NRESP" = "$1" ] || fail "want $1 responses on the connection, got $NRESP" \
        "$(head -c 800 "$WORK/resp")"
}
# The scratch folder outside the data directory and this test's own files.
outside() {
    find "$TMP" -mindepth 1 \( -path "$DATA" -o -path "$WORK" \) -prune -o -print |
        grep -v -E "^$TMP/(headers|body|[a-z]+\.(out|err)|requests\.jsonl)$" | sort
}

"$FAKES3" --help >"$WORK/help" || fail "--help exited non-zero"
grep -q -- "--idle-timeout SECONDS" "$WORK/help" || fail "--help does not document --idle-timeout"
for bad in 0 -1 x 86401; do
    rc=0
    "$FAKES3" --idle-timeout "$bad" --memory >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || fail "--idle-timeout $bad: want exit 2, got $rc"
done
before=$(outside)
start anon --data-dir "$DATA" --anonymous --max-object-size 1048576 --idle-timeout "$IDLE" \
    --log "$TMP/requests.jsonl"
A=$URL
HP=${URL##*:}
hs 200 - 'b"PUT /bkt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"'
hs 200 - 'b"PUT /bkt/obj HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"'

# ---- request lines -----------------------------------------------------------------------------

hs 405 MethodNotAllowed 'b"FOO\x01 /bkt HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 405 MethodNotAllowed 'b"BREW /bkt/obj HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 html 'b"GET /bkt/obj\r\nHost: x\r\n\r\n"'      # no version
hs 400 html 'b"GET /bkt/obj\r\n\r\n"'                 # HTTP/0.9
hs 505 html 'b"GET /bkt/obj HTTP/2.0\r\nHost: x\r\n\r\n"'
hs 400 html 'b"GET /bkt/obj XTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 InvalidRequest 'b"GET bkt/obj HTTP/1.1\r\nHost: x\r\n\r\n"' # not starting with /
hs 400 InvalidRequest 'b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"'
# a NUL in the request line: libmicrohttpd would cut the URI there ("a"), fakes3 refuses it
hs 400 InvalidRequest 'b"PUT /bkt/a\x00b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"'
hs 404 NoSuchKey 'b"GET /bkt/a HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 InvalidRequest 'b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n"'
# a URI over 64 KiB reaches fakes3 (libmicrohttpd keeps 128 KiB per connection): S3's errors
hs 400 KeyTooLongError 'b"GET /bkt/" + b"k" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 InvalidBucketName 'b"GET /" + b"b" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 200 - 'b"GET /bkt?list-type=2&" + b"&".join(b"x%d=1" % i for i in range(1000)) + b" HTTP/1.1\r\nHost: x\r\n\r\n"'
# ...and beyond that libmicrohttpd answers 414 itself; a query of thousands of parameters fills
# its per-connection records before that, and then it can only close the connection
hs 414 html 'b"GET /bkt/" + b"k" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"'
hs none - 'b"GET /bkt?list-type=2&" + b"&".join(b"x%d=1" % i for i in range(6000)) + b" HTTP/1.1\r\nHost: x\r\n\r\n"'
# bad percent-encoding is taken literally (decoded once, as S3 canonicalises): key "%zz"
hs 200 - 'b"PUT /bkt/%zz%4 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\npct"'
hs 200 - 'b"GET /bkt/%zz%4 HTTP/1.1\r\nHost: x\r\n\r\n"'
resp_has "pct"
hs 400 InvalidArgument 'b"PUT /bkt/a%00b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"'
hs 400 InvalidArgument 'b"GET /bk%00t/x HTTP/1.1\r\nHost: x\r\n\r\n"'
pass "request lines: bad methods, versions, NUL bytes, 70 KiB and 200 KiB URIs, bad escapes"

# ---- headers -----------------------------------------------------------------------------------

hs 400 html 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"'
hs 400 html 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nRa\x00nge: bytes=0-1\r\n\r\n"'
# a NUL inside a value ends it (libmicrohttpd reads header lines as C strings)
hs 206 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\x00junk\r\n\r\n"'
hs 200 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"'
hs 431 html 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"'
hs 200 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n"'
hs 431 html 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(6000)) + b"\r\n"'
hs 200 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\tc\r\n\r\n"'
hs 400 InvalidBucketName 'b"GET /k HTTP/1.1\r\nHost: ..localhost\r\n\r\n"'
hs 400 InvalidBucketName 'b"GET /k HTTP/1.1\r\nHost: x/../../etc.localhost:1\r\n\r\n"'
pass "headers: no colon, NUL, 70 KiB and 200 KiB values, 1000 and 6000 headers, folding, Host"

# ---- lengths and framing -----------------------------------------------------------------------

hs 400 html 'b"PUT /bkt/cl HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"'
hs 413 html 'b"PUT /bkt/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"'
hs 400 html 'b"PUT /bkt/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n"'
# two different Content-Length: refused, and what follows is not taken for a second request
hs 400 InvalidRequest 'b"PUT /bkt/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabcGET /bkt/obj HTTP/1.1\r\nHost: x\r\n\r\n"'
nresp_is 1
hs 200 - 'b"PUT /bkt/cl2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"'
# Transfer-Encoding with Content-Length (the smuggling shape): refused, the connection closed
hs 400 InvalidRequest 'b"PUT /bkt/te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /bkt/obj HTTP/1.1\r\nHost: x\r\n\r\n"'
nresp_is 1
hs 404 NoSuchKey 'b"GET /bkt/te HTTP/1.1\r\nHost: x\r\n\r\n"'
# codings other than chunked: 501 as S3 (libmicrohttpd could not find the body's end)
hs 501 NotImplemented 'b"PUT /bkt/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc"'
resp_has "<Header>Transfer-Encoding</Header>"
hs 501 NotImplemented 'b"PUT /bkt/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"'
hs 501 NotImplemented 'b"PUT /bkt/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"'
hs 200 - 'b"PUT /bkt/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"'
hs 400 html 'b"PUT /bkt/te2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"'
hs 413 html 'b"PUT /bkt/te2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n"'
# over --max-object-size: EntityTooLarge at once, without the body and without 100 Continue
hs 400 EntityTooLarge --keep-open --timeout 5 'b"PUT /bkt/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"'
nresp_is 1
resp_has "<MaxSizeAllowed>1048576</MaxSizeAllowed>"
hs 400 EntityTooLarge --keep-open --timeout 5 'b"PUT /bkt/big HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999\r\n\r\n"'
# 2^64-1 is libmicrohttpd's "length unknown": refused before it waits for a body without end
hs 400 InvalidArgument --keep-open --timeout 5 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\nabc"'
# chunked bodies have no length to check first: cut off once they pass the limit
hs 400 EntityTooLarge 'b"PUT /bkt/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + b"z" * 0x100000 + b"\r\n1\r\nz\r\n0\r\n\r\n"'
hs 404 NoSuchKey 'b"GET /bkt/big HTTP/1.1\r\nHost: x\r\n\r\n"'
# a body shorter than its Content-Length, then the client leaves: nothing stored
hs none - 'b"PUT /bkt/short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"'
hs none - 'b"PUT /bkt/short HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"'
hs 404 NoSuchKey 'b"GET /bkt/short HTTP/1.1\r\nHost: x\r\n\r\n"'
# pipelining still works
hs 206 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\nGET /bkt/obj HTTP/1.1\r\nHost: x\r\nRange: bytes=1-1\r\n\r\n"'
nresp_is 2
pass "lengths: invalid, conflicting, with Transfer-Encoding, over the limit, short bodies"

# ---- ranges (object "0123456789") ----------------------------------------------------------------

range() { # range WANT_STATUS WANT_CODE RANGE
    hs "$1" "$2" "b\"GET /bkt/obj HTTP/1.1\\r\\nHost: x\\r\\nRange: $3\\r\\n\\r\\n\""
}
range 416 InvalidRange "bytes=999999999999999999999-"
resp_has "Content-Range: bytes */10"
range 416 InvalidRange "bytes=18446744073709551615-"
range 416 InvalidRange "bytes=-0"
range 416 InvalidRange "bytes=10-"
range 200 - "bytes=5-3" # not a valid range: ignored, as S3 does
resp_has "0123456789"
resp_lacks "Content-Range"
range 200 - "bytes=0-1,3-4" # S3 does not do multiple ranges: the whole object, 200
resp_has "0123456789"
resp_lacks "Content-Range"
range 206 - "bytes=0-99999999999999999999999"
resp_has "Content-Range: bytes 0-9/10"
range 206 - "bytes=-99999999999999999999999"
resp_has "Content-Range: bytes 0-9/10"
range 200 - "items=0-1"
range 200 - "bytes=--1"
range 200 - "bytes="
pass "ranges: absurd, reversed, empty suffix, several, overflowing, other units"

# ---- XML bodies (CreateBucket) ---------------------------------------------------------------------

xml() { # xml WANT_STATUS WANT_CODE BUCKET BODY-EXPR
    hs "$1" "$2" "(lambda b: b\"PUT /$3 HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %d\\r\\n\\r\\n\" % len(b) + b)($4)"
}
xml 400 MalformedXML xml-a 'b"<CreateBucketConfiguration><Location"'
xml 400 MalformedXML xml-a 'b"<!DOCTYPE a [<!ENTITY e \"x\">]><CreateBucketConfiguration>&e;</CreateBucketConfiguration>"'
xml 400 MalformedXML xml-a 'b"<!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><a>&d;&d;&d;&d;&d;&d;&d;</a>"'
xml 400 MalformedXML xml-a 'b"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><CreateBucketConfiguration/>"'
xml 400 MalformedXML xml-a 'b"<a>" * 20000'
xml 400 MalformedXML xml-a 'b"<CreateBucketConfiguration>" + b" " * 70000 + b"</CreateBucketConfiguration>"'
xml 400 MalformedXML xml-a 'b"<CreateBucketConfiguration><LocationConstraint>\xff\xfe</LocationConstraint></CreateBucketConfiguration>"'
xml 400 MalformedXML xml-a 'bytes(range(256)) * 8'
xml 400 MalformedXML xml-a 'b"<CreateBucketConfiguration></CreateBucketConfiguration><second/>"'
xml 400 InvalidLocationConstraint xml-a 'b"<CreateBucketConfiguration><LocationConstraint>" + b"x" * 10000 + b"</LocationConstraint></CreateBucketConfiguration>"'
hs 200 - 'b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"'
resp_lacks "<Name>xml-a</Name>"
xml 200 - xml-b 'b"<CreateBucketConfiguration/>"'
# DeleteObjects (Content-MD5 required, as S3)
del() { # del WANT_STATUS WANT_CODE BODY-EXPR
    hs "$1" "$2" "(lambda b: b\"POST /bkt?delete= HTTP/1.1\\r\\nHost: x\\r\\nContent-MD5: \" + md5(b) + b\"\\r\\nContent-Length: %d\\r\\n\\r\\n\" % len(b) + b)($3)"
}
del 400 MalformedXML 'b"<Delete><Object><Key>a</Key></Object>"'
del 400 MalformedXML 'b"<Delete></Delete>"'
del 400 MalformedXML 'b"<Foo><Object><Key>a</Key></Object></Foo>"'
del 400 MalformedXML 'b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"'
del 400 MalformedXML 'b"<!DOCTYPE a [<!ENTITY e \"obj\">]><Delete><Object><Key>&e;</Key></Object></Delete>"'
del 400 MalformedXML 'bytes(range(256)) * 4'
del 400 MalformedXML 'b""'
del 200 - 'b"<Delete><Object><Key>../../../../../../etc/passwd</Key></Object><Object><Key>/etc/hostname</Key></Object></Delete>"'
resp_has "<Deleted><Key>../../../../../../etc/passwd</Key></Deleted>"
[ -s /etc/passwd ] || fail "/etc/passwd is gone"
hs 400 InvalidRequest '(lambda b: b"POST /bkt?delete= HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(b) + b)(b"<Delete><Object><Key>obj</Key></Object></Delete>")'
hs 200 - 'b"GET /bkt/obj HTTP/1.1\r\nHost: x\r\n\r\n"'
# CompleteMultipartUpload
hs 200 - 'b"POST /bkt/mp?uploads= HTTP/1.1\r\nHost: x\r\n\r\n"'
UPLOAD=$(sed -n 's/.*<UploadId>\([^<]*\)<.*/\1/p' "$WORK/resp")
[ -n "$UPLOAD" ] || fail "CreateMultipartUpload gave no UploadId" "$(cat "$WORK/resp")"
complete() { # complete WANT_STATUS WANT_CODE BODY-EXPR
    hs "$1" "$2" "(lambda b: b\"POST /bkt/mp?uploadId=$UPLOAD HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %d\\r\\n\\r\\n\" % len(b) + b)($3)"
}
complete 400 MalformedXML 'b"<CompleteMultipartUpload><Part>"'
complete 400 MalformedXML 'b"<CompleteMultipartUpload></CompleteMultipartUpload>"'
complete 400 MalformedXML 'b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"'
complete 400 MalformedXML 'b"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><CompleteMultipartUpload/>"'
complete 400 MalformedXML 'os.urandom(3000)'
pass "XML bodies: truncated, entities, billion laughs, external DTD, deep, big, binary, invalid UTF-8; DeleteObjects, CompleteMultipartUpload"

# ---- keys that try to leave the data directory ---------------------------------------------------

printf 'escape\n' >"$WORK/esc.txt"
ESC_KEYS=()
esc() { # esc URL-PATH KEY: stores the file under URL-PATH (sent as is), reads it back
    raw 200 --path-as-is -X PUT --data-binary @"$WORK/esc.txt" "$A$1"
    raw 200 --path-as-is "$A$1"
    cmp -s "$TMP/body" "$WORK/esc.txt" || fail "$1 did not round-trip" "$BODY"
    ESC_KEYS+=("$2")
}
up=""
for _ in $(seq 24); do up="$up../"; done
esc "/bkt/$up${TMP#/}/$MARK-dots" "$up${TMP#/}/$MARK-dots"
esc "/bkt/$(echo "$up" | sed 's,\.\./,%2e%2e%2f,g')${TMP#/}%2f$MARK-enc" "$up${TMP#/}/$MARK-enc"
esc "/bkt/..%2F..%2F..%2F$MARK-mixed" "../../../$MARK-mixed"
esc "/bkt/$TMP/$MARK-abs" "${TMP#/}/$MARK-abs"
esc "/bkt//$MARK-root" "/$MARK-root"
esc "/bkt/..%5C..%5C$MARK-back" "..\\..\\$MARK-back"
esc "/bkt/%252e%252e%252f$MARK-twice" "%2e%2e%2f$MARK-twice"
esc "/bkt/./$MARK-dot/." "./$MARK-dot/."
for k in "${ESC_KEYS[@]}"; do # none of them is a path anywhere
    for base in "$DATA" "$DATA/buckets" "$DATA/buckets/bkt" "$DATA/buckets/bkt/objects" \
        "$DATA/buckets/bkt/objects/00" "$DATA/tmp" "$TMP" /; do
        p=$(realpath -m "$base/$k")
        [ ! -e "$p" ] || fail "key $k made $p"
    done
done
raw 400 --path-as-is "$A/../$MARK"
error_is InvalidBucketName
raw 400 --path-as-is "$A/%2e%2e/$MARK"
error_is InvalidBucketName
raw 400 --path-as-is "$A/%2e%2e%2f%2e%2e%2fetc/passwd"
error_is InvalidBucketName
raw 400 --path-as-is "$A/bkt/a%00b"
error_is InvalidArgument
long=$(head -c 1025 /dev/zero | tr '\0' k)
raw 400 -X PUT --data-binary x "$A/bkt/$long"
error_is KeyTooLongError
raw 200 -X PUT --data-binary x "$A/bkt/${long:1}"
raw 200 "$A/bkt/${long:1}"
# unicode, spaces, '%', '+' round-trip and list as themselves
uni="dir one/ünï cödé ✓ 🐙 100% a+b $MARK.txt"
enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$uni")
raw 200 -T "$WORK/esc.txt" "$A/bkt/$enc"
raw 200 "$A/bkt/$enc"
cmp -s "$TMP/body" "$WORK/esc.txt" || fail "unicode key did not round-trip"
raw 200 "$A/bkt?list-type=2&prefix=dir%20one%2F"
body_has "<Key>$uni</Key>"
pass "keys: ../, %2e%2e%2f, absolute, backslashes, double-encoded, NUL, 1025 bytes, unicode"

# ---- header injection ------------------------------------------------------------------------------

hs 200 - 'b"GET /bkt/obj?response-content-type=a%0D%0AX-Injected:%20yes&response-cache-control=b%0AX-Injected2:%20yes HTTP/1.1\r\nHost: x\r\n\r\n"'
resp_lacks "X-Injected"
hs 200 - 'b"PUT /bkt/inj HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nx-amz-meta-a: b\rX-Injected: yes\r\n\r\nx"'
hs 200 - 'b"GET /bkt/inj HTTP/1.1\r\nHost: x\r\n\r\n"'
resp_lacks "X-Injected: yes"
pass "no header injection through response-* parameters or stored metadata"

# ---- slowloris ----------------------------------------------------------------------------------

python3 "$RAW" slowloris "$HP" 20 "$IDLE" || fail "slowloris"
pass "20 stalled connections: others are served meanwhile, the stalled ones time out"

# ---- signatures (a second fakes3 that checks them) -------------------------------------------------

start signed --memory
HP=${URL##*:}
hs 403 AccessDenied 'b"GET /bkt HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 AuthorizationHeaderMalformed 'b"GET /bkt HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 garbage\r\n\r\n"'
hs 400 AuthorizationHeaderMalformed 'b"GET /bkt HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + b"A" * 60000 + b", SignedHeaders=host, Signature=00\r\n\r\n"'
hs 400 AuthorizationHeaderMalformed 'b"GET /bkt HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g/h, SignedHeaders=" + b";" * 5000 + b", Signature=\xff\r\n\r\n"'
hs 400 InvalidRequest 'b"GET /bkt HTTP/1.1\r\nHost: x\r\nAuthorization: AWS a:b\r\n\r\n"'
hs 400 AuthorizationQueryParametersError 'b"GET /bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%00%ff&X-Amz-Date=x&X-Amz-Expires=-1&X-Amz-SignedHeaders=&X-Amz-Signature=zz HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 400 AuthorizationQueryParametersError 'b"GET /bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=testkey%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=99999999999999999999&X-Amz-SignedHeaders=host&X-Amz-Signature=00 HTTP/1.1\r\nHost: x\r\n\r\n"'
hs 403 RequestTimeTooSkewed 'b"GET /bkt HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testkey/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64 + b"\r\nx-amz-date: 20240101T000000Z\r\n\r\n"'
# a signed request with a hostile key still round-trips through curl's signer
req 200 -X PUT "$URL/sbkt"
req 200 -X PUT --data-binary @"$WORK/esc.txt" "$URL/sbkt/$enc"
req 200 "$URL/sbkt/$enc"
cmp -s "$TMP/body" "$WORK/esc.txt" || fail "signed unicode key did not round-trip"
stop "$PID_signed"
pass "signatures: missing, malformed, huge, SigV2, bad presigned parameters, old dates"

# ---- afterwards ---------------------------------------------------------------------------------

HP=${A##*:}
hs 200 - 'b"GET /_fakes3/health HTTP/1.1\r\nHost: x\r\n\r\n"'
resp_has '"status":"ok"'
stop "$PID_anon"
python3 "$RAW" tree "$DATA" "$MARK" passwd etc "%" " " || fail "data directory"
after=$(outside)
[ "$before" = "$after" ] || fail "files appeared outside the data directory" \
    "$(diff <(echo "$before") <(echo "$after") || true)"
[ "$(ls -A "$BOX")" = data ] || fail "the data directory's parent holds $(ls -A "$BOX")"
grep -q '"status":400,"error":"InvalidRequest"' "$TMP/requests.jsonl" ||
    fail "the request log lacks the framing errors"
# and it finds everything again
start again --data-dir "$DATA" --anonymous
raw 200 "$URL/bkt/obj"
[ "$BODY" = 0123456789 ] || fail "obj after restart: $BODY"
raw 200 "$URL/bkt/$enc"
stop "$PID_again"
pass "after all of it: alive, clean stop, data directory holds only the store, nothing outside"
echo "$passed passed"
