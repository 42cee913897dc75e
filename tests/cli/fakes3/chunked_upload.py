#!/usr/bin/env python3
"""chunked_upload: sends one aws-chunked streaming PutObject, written from the AWS documentation
with the standard library only (independently of lib/sigv4.c), and prints the HTTP status and the
response body.

usage: chunked_upload.py MODE URL ACCESS_KEY SECRET_KEY REGION SIZE CHUNK
  MODE   signed            STREAMING-AWS4-HMAC-SHA256-PAYLOAD, every chunk signed
         signed-badchunk   the same with the second chunk's signature wrong
         signed-short      the same, the body cut after the first chunk
         unsigned-trailer  STREAMING-UNSIGNED-PAYLOAD-TRAILER with an x-amz-checksum-crc32 trailer
         unsigned-badcrc   the same with a trailer checksum that does not match the data
  URL    http://host:port/bucket/key, optionally with a query (?partNumber=1&uploadId=...: a part)
  SIZE   object bytes (deterministic content: byte i is i % 251)
  CHUNK  bytes per chunk (the last one may be shorter)
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import sys
import urllib.parse
import zlib

EMPTY = hashlib.sha256(b"").hexdigest()


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256)


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    mode, url, ak, sk, region, size, chunk = sys.argv[1:]
    size, chunk = int(size), int(chunk)
    data = bytes(i % 251 for i in range(size))
    u = urllib.parse.urlsplit(url)
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    scope = f"{day}/{region}/s3/aws4_request"
    key = hm(hm(hm(hm(("AWS4" + sk).encode(), day).digest(), region).digest(), "s3").digest(),
             "aws4_request").digest()
    pieces = [data[i:i + chunk] for i in range(0, size, chunk)] + [b""]

    signed = mode.startswith("signed")
    payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if mode == "unsigned-badcrc":
        crc = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()

    def frame(seed):
        out, prev = [], seed
        for n, p in enumerate(pieces):
            if signed:
                sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY,
                                 hashlib.sha256(p).hexdigest()])
                sig = hm(key, sts).hexdigest()
                prev = sig
                if mode == "signed-badchunk" and n == 1:
                    sig = ("0" if sig[0] != "0" else "1") + sig[1:]
                head = b"%x;chunk-signature=%s\r\n" % (len(p), sig.encode())
            else:
                head = b"%x\r\n" % len(p)
            if p:
                out.append(head + p + b"\r\n")
            elif signed:
                out.append(head + b"\r\n")
            else:
                out.append(head + b"x-amz-checksum-crc32:%s\r\n\r\n" % crc.encode())
        return b"".join(out)

    # the framing's length does not depend on the signatures' values
    body_len = len(frame("0" * 64))
    headers = {
        "host": u.netloc,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(size),
        "content-length": str(body_len),
        "content-type": "application/x-test",
    }
    if not signed:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    signed_headers = ";".join(sorted(headers))
    path = urllib.parse.quote(urllib.parse.unquote(u.path), safe="/-_.~")
    query = "&".join(sorted(
        urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~")
        for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)))
    canonical = "\n".join(["PUT", path, query] + [f"{h}:{headers[h]}" for h in sorted(headers)]
                          + ["", signed_headers, payload])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    seed = hm(key, sts).hexdigest()
    body = frame(seed)
    assert len(body) == body_len
    if mode == "signed-short":
        body = body[:len(pieces[0]) + 100]
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, "
                                f"SignedHeaders={signed_headers}, Signature={seed}")

    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("PUT", u.path + ("?" + u.query if u.query else ""), skip_host=True,
                    skip_accept_encoding=True)
    for h, v in headers.items():
        conn.putheader(h, v)
    conn.endheaders()
    try:
        conn.send(body)
        if mode == "signed-short":
            conn.sock.shutdown(1)  # the rest of the body never comes
        r = conn.getresponse()
        print(r.status)
        print(r.read().decode(errors="replace"))
    except (ConnectionError, http.client.HTTPException) as e:
        print("closed")
        print(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
