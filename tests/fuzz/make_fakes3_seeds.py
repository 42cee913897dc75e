#!/usr/bin/env python3
"""make_fakes3_seeds: writes the seed corpus of the fakes3 fuzz targets, tests/fuzz/fakes3-seeds/:

  request/NAME.http   what a client sends on one connection to fuzz_fakes3_request: real S3
                      requests, several pipelined where one needs another (a bucket before its
                      objects). Those that carry AWS4-HMAC-SHA256 go to the server that checks
                      signatures, and are signed here for the fuzz target's fixed clock and key
                      (2024-01-01T00:00:00Z, fuzzkey/fuzzsecret, us-east-1), so they pass.
  parse/NAME.txt      inputs of fuzz_fakes3_parse: a digit picking the parser, then its input.

The files are committed; run this again (python3 tests/fuzz/make_fakes3_seeds.py) after changing
it. SigV4 is written from the AWS documentation with the standard library, independently of
lib/sigv4.c. Output is deterministic.
"""
import base64
import hashlib
import hmac
import os
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fakes3-seeds")
AK, SK, REGION = "fuzzkey", "fuzzsecret", "us-east-1"
AMZ_DATE = "20240101T000000Z"
DAY = AMZ_DATE[:8]
SCOPE = f"{DAY}/{REGION}/s3/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def enc(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def signing_key():
    k = b"AWS4" + SK.encode()
    for part in (DAY, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def canonical(method, path, query, headers, payload_hash):
    cpath = enc(urllib.parse.unquote(path), safe="/-_.~")
    pairs = sorted((enc(urllib.parse.unquote_plus(k)), enc(urllib.parse.unquote_plus(v)))
                   for k, v in query)
    cquery = "&".join(f"{k}={v}" for k, v in pairs)
    names = sorted(headers)
    chead = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    return "\n".join([method, cpath, cquery, chead, ";".join(names), payload_hash]), ";".join(names)


def signature(creq):
    sts = "\n".join(["AWS4-HMAC-SHA256", AMZ_DATE, SCOPE, sha(creq.encode())])
    return hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()


def request(method, target, headers=(), body=b""):
    """An unsigned request; Host and Content-Length added unless given."""
    hs = list(headers)
    names = [h[0].lower() for h in hs]
    if "host" not in names:
        hs.insert(0, ("Host", "127.0.0.1:9000"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode() + body


def signed(method, target, headers=(), body=b"", payload_hash=None):
    """A request signed in the Authorization header."""
    path, _, q = target.partition("?")
    query = urllib.parse.parse_qsl(q, keep_blank_values=True)
    ph = payload_hash or sha(body)
    hs = {"host": "127.0.0.1:9000", "x-amz-date": AMZ_DATE, "x-amz-content-sha256": ph}
    for k, v in headers:
        hs[k.lower()] = v
    if body and "content-length" not in hs:
        hs["content-length"] = str(len(body))
    creq, signed_names = canonical(method, path, query, hs, ph)
    sig = signature(creq)
    hs["authorization"] = (f"AWS4-HMAC-SHA256 Credential={AK}/{SCOPE}, "
                           f"SignedHeaders={signed_names}, Signature={sig}")
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items())
    return (head + "\r\n").encode() + body, sig


def presigned(method, path, expires=3600):
    query = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{AK}/{SCOPE}"),
             ("X-Amz-Date", AMZ_DATE), ("X-Amz-Expires", str(expires)),
             ("X-Amz-SignedHeaders", "host")]
    creq, _ = canonical(method, path, query, {"host": "127.0.0.1:9000"}, "UNSIGNED-PAYLOAD")
    query.append(("X-Amz-Signature", signature(creq)))
    target = path + "?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in query)
    return request(method, target)


def chunk_sigs(key, seed, chunks):
    """aws-chunked body with a chunk-signature per chunk, chained from seed."""
    out, prev = b"", seed
    for data in chunks + [b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE, prev, EMPTY, sha(data)])
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode()) + data + b"\r\n"
    return out


def streaming_put(target, chunks):
    body_len = sum(len(c) for c in chunks)
    # the Content-Length of the framed body must be known before signing: frame once to count
    framed_len = len(chunk_sigs(b"k" * 32, "0" * 64, chunks))
    headers = [("content-encoding", "aws-chunked"),
               ("x-amz-decoded-content-length", str(body_len)),
               ("content-length", str(framed_len))]
    head, sig = signed("PUT", target, headers, b"", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    return head + chunk_sigs(signing_key(), sig, chunks)


def md5_b64(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def write(sub, name, data):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    R = request
    xml_cfg = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
               b"<LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>")
    mk = R("PUT", "/bkt")
    del_body = (b"<Delete><Quiet>false</Quiet><Object><Key>dir/key.txt</Key></Object>"
                b"<Object><Key>nope</Key><ETag>\"abc\"</ETag></Object></Delete>")
    complete_body = (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                     b"<ETag>\"5d41402abc4b2a76b9719d911017c592\"</ETag></Part>"
                     b"</CompleteMultipartUpload>")
    put = R("PUT", "/bkt/dir/key.txt", [("Content-Type", "text/plain"),
                                        ("x-amz-meta-color", "blue"),
                                        ("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg==")], b"hello")
    seeds = {
        "create-bucket": R("PUT", "/bkt", [("Content-Length", "0")]),
        "create-bucket-config": R("PUT", "/cfg-bkt", [], xml_cfg),
        "put-get-range": mk + put + R("GET", "/bkt/dir/key.txt", [("Range", "bytes=1-3")]),
        "put-conditional": mk + R("PUT", "/bkt/k", [("If-None-Match", "*")], b"one") +
        R("PUT", "/bkt/k", [("If-Match", '"0123456789abcdef0123456789abcdef"')], b"two"),
        "get-conditional": mk + put + R("GET", "/bkt/dir/key.txt", [
            ("If-None-Match", '"5d41402abc4b2a76b9719d911017c592"'),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")]),
        "head-delete": mk + put + R("HEAD", "/bkt/dir/key.txt") +
        R("DELETE", "/bkt/dir/key.txt") + R("DELETE", "/bkt"),
        "list-v2": mk + put + R("GET", "/bkt?delimiter=%2F&encoding-type=url&fetch-owner=true"
                                "&list-type=2&max-keys=2&prefix=dir%2F&start-after=a"),
        "list-v1": mk + put + R("GET", "/bkt?marker=a&max-keys=1&prefix=d"),
        "list-buckets-location": mk + R("GET", "/") + R("GET", "/bkt?location="),
        "admin": R("GET", "/_fakes3/health") + R("GET", "/_fakes3/stats"),
        "vhost": R("PUT", "/", [("Host", "vbkt.localhost:9000")]) +
        R("PUT", "/a%20b/c", [("Host", "vbkt.localhost:9000")], b"v") +
        R("GET", "/a%20b/c", [("Host", "vbkt.localhost:9000")]),
        "transfer-chunked": mk + R("PUT", "/bkt/te", [("Transfer-Encoding", "chunked")],
                                   b"5\r\nhello\r\n0\r\n\r\n"),
        "unsigned-trailer": mk + R("PUT", "/bkt/tr", [
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", "5"),
            ("x-amz-trailer", "x-amz-checksum-crc32")],
            b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"),
        "response-overrides": mk + put + R("GET", "/bkt/dir/key.txt?response-cache-control=no"
                                           "&response-content-type=text%2Fhtml"),
        "hostile-key": mk + R("PUT", "/bkt/..%2F..%2Fetc%2Fpasswd%00", [], b"x") +
        R("GET", "/bkt/%2e%2e/%zz/%C3%BC"),
        # more query parameters than libmicrohttpd's per-connection memory holds (about 2000):
        # it abandons the request after uri_log without calling on_completed, which leaked the
        # request before server.c freed it with its connection (fs3_conn)
        "many-params": R("GET", "/bkt?list-type=2&" + "a&" * 2100),
        "multipart-routes": mk + R("POST", "/bkt/m?uploads=") +
        R("PUT", "/bkt/m?partNumber=1&uploadId=x", [], b"p") +
        R("POST", "/bkt?delete=", [], b"<Delete><Object><Key>a</Key></Object></Delete>"),
        "delete-objects": mk + put + R("POST", "/bkt?delete=", [("Content-MD5", md5_b64(del_body))],
                                       del_body),
        "copy-object": mk + put + R("PUT", "/bkt/copy", [
            ("x-amz-copy-source", "/bkt/dir/key.txt"), ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-meta-new", "yes"), ("x-amz-copy-source-if-match", '"x"')]) +
        R("PUT", "/bkt/copy2", [("x-amz-copy-source", "bkt/dir%2Fkey.txt")]),
        # an upload id is not known before the server makes it: these reach the operations'
        # checks and their NoSuchUpload answers (an error before a body ends the connection,
        # so each one that sends a body comes last)
        "multipart-list": mk + R("POST", "/bkt/mp?uploads=", [("Content-Type", "text/plain")]) +
        R("GET", "/bkt/mp?max-parts=2&part-number-marker=1&uploadId=nosuch") +
        R("GET", "/bkt?key-marker=a&max-uploads=1&prefix=m&uploads=") +
        R("DELETE", "/bkt/mp?uploadId=nosuch"),
        "multipart-part": mk + R("PUT", "/bkt/mp?partNumber=1&uploadId=nosuch", [], b"part"),
        "multipart-part-copy": mk + put + R("PUT", "/bkt/mp?partNumber=2&uploadId=nosuch", [
            ("x-amz-copy-source", "/bkt/dir/key.txt"), ("x-amz-copy-source-range", "bytes=0-1")]),
        "multipart-complete": mk + R("POST", "/bkt/mp?uploadId=nosuch", [], complete_body),
        "checksums": mk + R("PUT", "/bkt/ck", [("x-amz-checksum-crc32", "NhCmhg=="),
                                               ("x-amz-sdk-checksum-algorithm", "CRC32")],
                            b"hello") +
        R("GET", "/bkt/ck", [("x-amz-checksum-mode", "ENABLED")]) +
        R("PUT", "/bkt/ck2", [("x-amz-checksum-sha256", "bad")], b"x"),
        "signed-put-get": signed("PUT", "/sbkt")[0] +
        signed("PUT", "/sbkt/obj", [("content-type", "text/plain")], b"signed body")[0] +
        signed("GET", "/sbkt/obj", [("range", "bytes=0-5")])[0],
        "signed-unsigned-payload": signed("PUT", "/sbkt")[0] +
        signed("PUT", "/sbkt/u", [], b"any body", "UNSIGNED-PAYLOAD")[0],
        "presigned-get": signed("PUT", "/sbkt")[0] + presigned("GET", "/sbkt/obj"),
        "signed-streaming": signed("PUT", "/sbkt")[0] +
        streaming_put("/sbkt/stream", [b"a" * 40, b"b" * 17]),
    }
    for name, data in seeds.items():
        write("request", name + ".http", data)

    key = bytes(range(1, 17)) + bytes(16)
    seed_sig = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    auth_req, _ = signed("GET", "/sbkt/obj?list-type=2&prefix=a", [("range", "bytes=0-1")])
    auth_lines = auth_req.split(b"\r\n\r\n")[0].split(b"\r\n")
    method, target, _ = auth_lines[0].split(b" ")
    parse = {
        "route-list": b"0B/bkt?delimiter=%2F&list-type=2&prefix=a%2F\n127.0.0.1:9000\n",
        "route-vhost": b"0C/key/with%20space?uploadId=1&partNumber=2\nbkt.localhost:9000\n"
                       b"/src/key",
        "route-admin": b"0B/_fakes3/health",
        "range": b"1bytes=0-5",
        "range-suffix": b"1bytes=-5",
        "dates": b"2Sun, 06 Nov 1994 08:49:37 GMT\n*\nSunday, 06-Nov-94 08:49:37 GMT\n"
                 b"1994-11-06T08:49:37Z",
        "etags": b'3"abc", W/"def", *\ndef',
        "chunked": b"40" + b"5\r\nhello\r\n0\r\n\r\n",
        "chunked-trailer": b"41" + b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n",
        "chunked-signed": b"50" + chunk_sigs(key, seed_sig, [b"hello world", b"!"]),
        "xml-delete": b"6<Delete><Quiet>true</Quiet><Object><Key>a</Key><ETag>\"e\"</ETag>"
                      b"</Object><Object><Key>b&amp;c</Key></Object></Delete>",
        "xml-complete": b"6<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                        b"<ETag>\"x\"</ETag></Part></CompleteMultipartUpload>",
        "xml-config": b"6" + xml_cfg,
        "auth-signed": b"7" + method + b" " + target + b"\n" +
                       b"\n".join(line.replace(b": ", b":", 1) for line in auth_lines[1:]),
        "auth-presigned": b"7" + presigned("GET", "/sbkt/obj").split(b" HTTP/1.1")[0] +
                          b"\nhost:127.0.0.1:9000",
        "encode": "8a%20b%2Fc/ü %zz%4".encode(),
        "checksum-crc32": b"9x-amz-checksum-crc32\nNhCmhg==\nhello",
        "checksum-sha256": b"9SHA256\nLPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=\nhello",
    }
    for name, data in parse.items():
        write("parse", name + ".txt", data)


if __name__ == "__main__":
    main()
