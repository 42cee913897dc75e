#!/usr/bin/env python3
"""presign: prints a SigV4 presigned URL, written from the AWS documentation with the standard
library only, so the fakes3 tests can check presigned requests without an SDK and independently
of lib/sigv4.c.

usage: presign.py METHOD URL ACCESS_KEY SECRET_KEY REGION EXPIRES [AMZ_DATE]
  URL       http://host:port/bucket/key (path as the client sends it: percent-encoded)
  AMZ_DATE  20240102T030405Z (default: now)
"""
import datetime
import hashlib
import hmac
import sys
import urllib.parse


def enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def main():
    if len(sys.argv) not in (7, 8):
        print(__doc__, file=sys.stderr)
        return 2
    method, url, ak, sk, region, expires = sys.argv[1:7]
    if len(sys.argv) == 8:
        amz_date = sys.argv[7]
    else:
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    u = urllib.parse.urlsplit(url)
    day = amz_date[:8]
    scope = f"{day}/{region}/s3/aws4_request"
    params = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    params += [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{ak}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", expires),
        ("X-Amz-SignedHeaders", "host"),
    ]
    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params))
    # canonical URI: the decoded path, each segment encoded once ('/' kept)
    path = urllib.parse.quote(urllib.parse.unquote(u.path), safe="/-_.~")
    canonical = "\n".join(
        [method, path, query, f"host:{u.netloc}", "", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])

    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = h(h(h(h(("AWS4" + sk).encode(), day), region), "s3"), "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    print(f"{u.scheme}://{u.netloc}{u.path}?{query}&X-Amz-Signature={sig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
