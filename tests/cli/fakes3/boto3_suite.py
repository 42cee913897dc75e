#!/usr/bin/env python3
"""boto3_suite: fakes3 as boto3 (the AWS SDK for Python) sees it.

usage: boto3_suite.py ENDPOINT_URL ACCESS_KEY SECRET_KEY

Buckets, objects of small and multi-megabyte size, user metadata, ranged GETs of every form,
HEAD, ListObjectsV2 with prefix, delimiter and pagination (the SDK's own paginator), conditional
PUTs (IfNoneMatch, IfMatch), conditional GETs, presigned GET and PUT URLs fetched with urllib,
the error codes the SDK reports (NoSuchKey, NoSuchBucket, SignatureDoesNotMatch,
BucketNotEmpty, PreconditionFailed, InvalidRange), in path style and virtual-host style.
Prints one "ok" line per case; exits 1 at the first failure.
"""
import hashlib
import os
import socket
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

passed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok {passed} - {what}", flush=True)


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if got != code and str(status) != code:
            raise AssertionError(f"want error {code}, got {got} ({status}): {e}")
        return e
    raise AssertionError(f"want error {code}, got success")


# "<bucket>.localhost" must reach fakes3 for virtual-host style; not every resolver maps *.localhost
# to the loopback (RFC 6761), so this process does.
_getaddrinfo = socket.getaddrinfo


def _loopback_localhost(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_localhost


def put_if(s3, header, value, **kwargs):
    """put_object with an If-None-Match or If-Match header, added by an event hook so that it
    works with SDKs older than the IfNoneMatch/IfMatch parameters (Debian 12's boto3 1.26)."""
    def add(request, **_):
        request.headers[header] = value
    s3.meta.events.register("before-sign.s3.PutObject", add)
    try:
        return s3.put_object(**kwargs)
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", add)


def client(endpoint, ak, sk, **cfg):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name="us-east-1", config=Config(signature_version="s3v4", **cfg))


def main():
    endpoint, ak, sk = sys.argv[1:4]
    s3 = client(endpoint, ak, sk, s3={"addressing_style": "path"})

    s3.create_bucket(Bucket="boto")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "boto" in names, names
    s3.head_bucket(Bucket="boto")
    expect_error("404", s3.head_bucket, Bucket="no-such-bucket")
    ok("create_bucket, list_buckets, head_bucket")

    body = b"hello from boto3\n" * 3
    r = s3.put_object(Bucket="boto", Key="dir/a.txt", Body=body, ContentType="text/plain",
                      Metadata={"color": "blue", "owner": "ada"}, CacheControl="no-cache")
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r["ETag"]
    g = s3.get_object(Bucket="boto", Key="dir/a.txt")
    assert g["Body"].read() == body
    assert g["ContentType"] == "text/plain", g["ContentType"]
    assert g["Metadata"] == {"color": "blue", "owner": "ada"}, g["Metadata"]
    assert g["CacheControl"] == "no-cache"
    assert g["ContentLength"] == len(body)
    h = s3.head_object(Bucket="boto", Key="dir/a.txt")
    assert h["ContentLength"] == len(body) and h["ETag"] == r["ETag"]
    assert h["Metadata"]["color"] == "blue"
    ok("put_object / get_object / head_object with metadata")

    big = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket="boto", Key="big.bin", Body=big)
    assert s3.get_object(Bucket="boto", Key="big.bin")["Body"].read() == big
    ok("a 3 MiB object round-trips")

    for rng, want in (("bytes=0-4", body[0:5]), ("bytes=10-", body[10:]), ("bytes=-7", body[-7:])):
        g = s3.get_object(Bucket="boto", Key="dir/a.txt", Range=rng)
        assert g["Body"].read() == want, rng
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    expect_error("InvalidRange", s3.get_object, Bucket="boto", Key="dir/a.txt",
                 Range="bytes=1000-2000")
    ok("ranged gets: a-b, a-, -n, InvalidRange")

    for i in range(7):
        s3.put_object(Bucket="boto", Key=f"p/{i:02d}", Body=b"x")
    s3.put_object(Bucket="boto", Key="p/sub/deep", Body=b"y")
    l = s3.list_objects_v2(Bucket="boto", Prefix="p/", Delimiter="/")
    assert [c["Key"] for c in l["Contents"]] == [f"p/{i:02d}" for i in range(7)], l
    assert [c["Prefix"] for c in l["CommonPrefixes"]] == ["p/sub/"], l
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="boto", Prefix="p/", PaginationConfig={"PageSize": 3}):
        keys += [c["Key"] for c in page.get("Contents", [])]
    assert keys == [f"p/{i:02d}" for i in range(7)] + ["p/sub/deep"], keys
    l = s3.list_objects_v2(Bucket="boto", StartAfter="p/05", Prefix="p/")
    assert [c["Key"] for c in l["Contents"]] == ["p/06", "p/sub/deep"], l
    keys = []
    for page in s3.get_paginator("list_objects").paginate(
            Bucket="boto", Prefix="p/", PaginationConfig={"PageSize": 2}):
        keys += [c["Key"] for c in page.get("Contents", [])]
    assert keys == [f"p/{i:02d}" for i in range(7)] + ["p/sub/deep"], keys
    ok("list_objects_v2: prefix, delimiter, paginator, start-after; list_objects (v1)")

    odd = "odd key/with spaces+plus%percent/ü/..//x"
    s3.put_object(Bucket="boto", Key=odd, Body=b"odd")
    assert s3.get_object(Bucket="boto", Key=odd)["Body"].read() == b"odd"
    l = s3.list_objects_v2(Bucket="boto", Prefix="odd ")
    assert [c["Key"] for c in l["Contents"]] == [odd], l
    ok("odd keys round-trip, listing decodes encoding-type=url")

    expect_error("PreconditionFailed", put_if, s3, "If-None-Match", "*", Bucket="boto",
                 Key="dir/a.txt", Body=b"other")
    put_if(s3, "If-None-Match", "*", Bucket="boto", Key="cond.txt", Body=b"one")
    etag = s3.head_object(Bucket="boto", Key="cond.txt")["ETag"]
    expect_error("PreconditionFailed", put_if, s3, "If-Match",
                 '"00000000000000000000000000000000"', Bucket="boto", Key="cond.txt", Body=b"two")
    put_if(s3, "If-Match", etag, Bucket="boto", Key="cond.txt", Body=b"two")
    assert s3.get_object(Bucket="boto", Key="cond.txt")["Body"].read() == b"two"
    ok("conditional put_object: IfNoneMatch='*' -> PreconditionFailed; IfMatch")

    etag = s3.head_object(Bucket="boto", Key="dir/a.txt")["ETag"]
    expect_error("304", s3.get_object, Bucket="boto", Key="dir/a.txt", IfNoneMatch=etag)
    expect_error("PreconditionFailed", s3.get_object, Bucket="boto", Key="dir/a.txt",
                 IfMatch='"nope"')
    ok("conditional get_object: 304, PreconditionFailed")

    expect_error("NoSuchKey", s3.get_object, Bucket="boto", Key="missing")
    expect_error("NoSuchBucket", s3.get_object, Bucket="no-such-bucket", Key="k")
    expect_error("NoSuchBucket", s3.list_objects_v2, Bucket="no-such-bucket")
    bad = client(endpoint, ak, sk + "x", s3={"addressing_style": "path"})
    expect_error("SignatureDoesNotMatch", bad.get_object, Bucket="boto", Key="dir/a.txt")
    expect_error("SignatureDoesNotMatch", bad.put_object, Bucket="boto", Key="x", Body=b"x")
    ok("NoSuchKey, NoSuchBucket, SignatureDoesNotMatch (wrong secret)")

    url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "dir/a.txt"},
                                    ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == body
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "boto", "Key": "pre.txt"},
                                    ExpiresIn=300)
    urllib.request.urlopen(urllib.request.Request(url, data=b"presigned", method="PUT")).read()
    assert s3.get_object(Bucket="boto", Key="pre.txt")["Body"].read() == b"presigned"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": odd},
                                    ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"odd"
    sig = url[url.index("X-Amz-Signature=") + 16:][:64]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    try:
        urllib.request.urlopen(url.replace(sig, flipped))
        raise AssertionError("a tampered presigned URL worked")
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code
    ok("presigned GET and PUT URLs (urllib), tampered URL refused")

    vh = client(endpoint.replace("127.0.0.1", "localhost"), ak, sk,
                s3={"addressing_style": "virtual"})
    assert vh.get_object(Bucket="boto", Key="dir/a.txt")["Body"].read() == body
    vh.put_object(Bucket="boto", Key="vh.txt", Body=b"vh")
    assert s3.get_object(Bucket="boto", Key="vh.txt")["Body"].read() == b"vh"
    l = vh.list_objects_v2(Bucket="boto", Prefix="vh")
    assert [c["Key"] for c in l["Contents"]] == ["vh.txt"], l
    ok("virtual-host addressing (Host: boto.localhost:PORT)")

    expect_error("BucketNotEmpty", s3.delete_bucket, Bucket="boto")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="boto"):
        for c in page.get("Contents", []):
            s3.delete_object(Bucket="boto", Key=c["Key"])
    s3.delete_object(Bucket="boto", Key="already-gone")
    s3.delete_bucket(Bucket="boto")
    expect_error("404", s3.head_bucket, Bucket="boto")
    ok("delete_object, BucketNotEmpty, delete_bucket")

    print(f"{passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
