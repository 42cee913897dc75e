#!/usr/bin/env python3
"""boto3_suite: fakes3 as boto3 (the AWS SDK for Python) sees it.

usage: boto3_suite.py ENDPOINT_URL ACCESS_KEY SECRET_KEY

Buckets, objects of small and multi-megabyte size, user metadata, ranged GETs of every form,
HEAD, ListObjectsV2 with prefix, delimiter and pagination (the SDK's own paginator), conditional
PUTs (IfNoneMatch, IfMatch), conditional GETs, presigned GET and PUT URLs fetched with urllib,
the error codes the SDK reports (NoSuchKey, NoSuchBucket, SignatureDoesNotMatch,
BucketNotEmpty, PreconditionFailed, InvalidRange), in path style and virtual-host style;
batch delete (quiet, not quiet, a missing key), copy_object (COPY and REPLACE directives,
copy-source conditions, onto itself), the multipart upload step by step (ETag checked against an
MD5 of MD5s computed here, EntityTooSmall, InvalidPart, InvalidPartOrder, abort, list_parts and
list_multipart_uploads with pagination, upload_part_copy with a range, a conditional complete),
and the SDK's own upload_file / download_file of 20 MiB (multipart both ways), byte for byte.
Works with Debian's boto3 1.26 and with current releases (which send CRC32 checksums, as
aws-chunked trailers on uploads).
Prints one "ok" line per case; exits 1 at the first failure.
"""
import base64
import binascii
import datetime
import hashlib
import os
import tempfile
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


def with_header(s3, op, header, value, fn, *args, **kwargs):
    """Calls fn(*args, **kwargs) with one more request header on the operation op (for
    parameters old SDKs lack)."""
    def add(request, **_):
        request.headers[header] = value
    s3.meta.events.register(f"before-sign.s3.{op}", add)
    try:
        return fn(*args, **kwargs)
    finally:
        s3.meta.events.unregister(f"before-sign.s3.{op}", add)


def md5_of_md5s(parts):
    """The multipart ETag, computed independently of fakes3: MD5 of the parts' binary MD5s."""
    return '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest(),
                        len(parts))


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


    # ---- DeleteObjects ----------------------------------------------------------------------
    s3.create_bucket(Bucket="batch")
    for k in ("d/1", "d/2", "d/3", "keep"):
        s3.put_object(Bucket="batch", Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket="batch", Delete={"Objects": [
        {"Key": "d/1"}, {"Key": "d/2"}, {"Key": "never-there"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d/1", "d/2", "never-there"], r
    assert not r.get("Errors"), r
    r = s3.delete_objects(Bucket="batch", Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors"), r
    left = [c["Key"] for c in s3.list_objects_v2(Bucket="batch")["Contents"]]
    assert left == ["keep"], left
    expect_error("NoSuchBucket", s3.delete_objects, Bucket="no-such-bucket",
                 Delete={"Objects": [{"Key": "x"}]})
    ok("delete_objects: not quiet (a missing key counts as deleted), quiet, NoSuchBucket")

    # ---- CopyObject -------------------------------------------------------------------------
    src_body = b"copy me " * 1000
    src = s3.put_object(Bucket="batch", Key="src", Body=src_body, ContentType="text/x-src",
                        Metadata={"origin": "src"}, CacheControl="max-age=5")
    r = s3.copy_object(Bucket="batch", Key="dst", CopySource={"Bucket": "batch", "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == src["ETag"], r
    h = s3.head_object(Bucket="batch", Key="dst")
    assert h["Metadata"] == {"origin": "src"} and h["ContentType"] == "text/x-src", h
    assert h["CacheControl"] == "max-age=5", h
    assert s3.get_object(Bucket="batch", Key="dst")["Body"].read() == src_body
    r = s3.copy_object(Bucket="batch", Key="dst2", CopySource="batch/src",
                       MetadataDirective="REPLACE", Metadata={"new": "yes"},
                       ContentType="text/x-new")
    h = s3.head_object(Bucket="batch", Key="dst2")
    assert h["Metadata"] == {"new": "yes"} and h["ContentType"] == "text/x-new", h
    assert "CacheControl" not in h, h
    assert s3.get_object(Bucket="batch", Key="dst2")["Body"].read() == src_body
    ok("copy_object: COPY keeps metadata and content headers, REPLACE takes the request's")

    expect_error("PreconditionFailed", s3.copy_object, Bucket="batch", Key="dst3",
                 CopySource={"Bucket": "batch", "Key": "src"}, CopySourceIfMatch='"0000"')
    expect_error("PreconditionFailed", s3.copy_object, Bucket="batch", Key="dst3",
                 CopySource={"Bucket": "batch", "Key": "src"}, CopySourceIfNoneMatch=src["ETag"])
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    expect_error("PreconditionFailed", s3.copy_object, Bucket="batch", Key="dst3",
                 CopySource={"Bucket": "batch", "Key": "src"}, CopySourceIfUnmodifiedSince=past)
    expect_error("PreconditionFailed", s3.copy_object, Bucket="batch", Key="dst3",
                 CopySource={"Bucket": "batch", "Key": "src"}, CopySourceIfModifiedSince=future)
    expect_error("404", s3.head_object, Bucket="batch", Key="dst3")
    s3.copy_object(Bucket="batch", Key="dst3", CopySource={"Bucket": "batch", "Key": "src"},
                   CopySourceIfMatch=src["ETag"], CopySourceIfModifiedSince=past)
    expect_error("NoSuchKey", s3.copy_object, Bucket="batch", Key="dst4",
                 CopySource={"Bucket": "batch", "Key": "no-such-source"})
    ok("copy_object: copy-source If-Match / If-None-Match / If-(Un)Modified-Since, NoSuchKey")

    e = expect_error("InvalidRequest", s3.copy_object, Bucket="batch", Key="src",
                     CopySource={"Bucket": "batch", "Key": "src"})
    assert "itself" in e.response["Error"]["Message"], e.response
    s3.copy_object(Bucket="batch", Key="src", CopySource={"Bucket": "batch", "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"round": "2"})
    h = s3.head_object(Bucket="batch", Key="src")
    assert h["Metadata"] == {"round": "2"} and h["ETag"] == src["ETag"], h
    expect_error("PreconditionFailed", with_header, s3, "CopyObject", "If-None-Match", "*",
                 s3.copy_object, Bucket="batch", Key="dst",
                 CopySource={"Bucket": "batch", "Key": "src"})
    ok("copy_object onto itself: InvalidRequest unless REPLACE; If-None-Match on the destination")

    # ---- multipart, step by step ------------------------------------------------------------
    MiB = 1024 * 1024
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"z"]
    up = s3.create_multipart_upload(Bucket="batch", Key="mp/obj", ContentType="video/x-test",
                                    Metadata={"mp": "yes"})
    uid = up["UploadId"]
    etags = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket="batch", Key="mp/obj", UploadId=uid, PartNumber=i, Body=p)
        assert r["ETag"] == '"%s"' % hashlib.md5(p).hexdigest(), r
        etags.append(r["ETag"])
    listing = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="batch")["Uploads"]]
    assert listing == [uid], listing
    got, marker = [], 0
    while True:
        lp = s3.list_parts(Bucket="batch", Key="mp/obj", UploadId=uid, MaxParts=2,
                           PartNumberMarker=marker)
        got += [(p["PartNumber"], p["ETag"], p["Size"]) for p in lp["Parts"]]
        if not lp["IsTruncated"]:
            break
        marker = lp["NextPartNumberMarker"]
    assert got == [(1, etags[0], 5 * MiB), (2, etags[1], 5 * MiB), (3, etags[2], 1)], got
    ok("create_multipart_upload, upload_part (ETag = part MD5), list_parts pages, list uploads")

    def complete(key, upload_id, pairs, **kw):
        return s3.complete_multipart_upload(
            Bucket="batch", Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t} for n, t in pairs]}, **kw)

    expect_error("InvalidPartOrder", complete, "mp/obj", uid, [(2, etags[1]), (1, etags[0])])
    expect_error("InvalidPart", complete, "mp/obj", uid,
                 [(1, etags[0]), (2, '"00000000000000000000000000000000"')])
    expect_error("InvalidPart", complete, "mp/obj", uid, [(1, etags[0]), (7, etags[1])])
    e4 = s3.upload_part(Bucket="batch", Key="mp/obj", UploadId=uid, PartNumber=4, Body=b"w")
    e = expect_error("EntityTooSmall", complete, "mp/obj", uid, [(3, etags[2]), (4, e4["ETag"])])
    assert e.response["Error"].get("MinSizeAllowed") == "5242880", e.response
    s3.put_object(Bucket="batch", Key="mp/taken", Body=b"taken")
    expect_error("NoSuchUpload", complete, "mp/taken", uid, list(enumerate(etags, 1)))
    r = complete("mp/obj", uid, list(enumerate(etags, 1)))
    assert r["ETag"] == md5_of_md5s(parts), (r["ETag"], md5_of_md5s(parts))
    g = s3.get_object(Bucket="batch", Key="mp/obj")
    assert g["Body"].read() == b"".join(parts)
    assert g["ETag"] == md5_of_md5s(parts) and g["ContentLength"] == 10 * MiB + 1
    assert g["ContentType"] == "video/x-test" and g["Metadata"] == {"mp": "yes"}, g
    expect_error("NoSuchUpload", s3.list_parts, Bucket="batch", Key="mp/obj", UploadId=uid)
    assert not s3.list_multipart_uploads(Bucket="batch").get("Uploads")
    ok("complete: InvalidPartOrder, InvalidPart, EntityTooSmall, then 5+5 MiB+1 byte, "
       "ETag = MD5 of MD5s -3")

    up2 = s3.create_multipart_upload(Bucket="batch", Key="mp/aborted")["UploadId"]
    s3.upload_part(Bucket="batch", Key="mp/aborted", UploadId=up2, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="batch", Key="mp/aborted", UploadId=up2)
    expect_error("NoSuchUpload", s3.upload_part, Bucket="batch", Key="mp/aborted", UploadId=up2,
                 PartNumber=2, Body=b"y")
    expect_error("NoSuchUpload", complete, "mp/aborted", up2, [(1, '"x"')])
    expect_error("NoSuchUpload", s3.abort_multipart_upload, Bucket="batch", Key="mp/aborted",
                 UploadId=up2)
    expect_error("404", s3.head_object, Bucket="batch", Key="mp/aborted")
    ok("abort_multipart_upload: then NoSuchUpload for parts, complete and abort")

    ids = [s3.create_multipart_upload(Bucket="batch", Key=k)["UploadId"]
           for k in ("u/a", "u/b", "u/b", "u/c/1", "u/c/2", "v")]
    seen, kw = [], {}
    while True:
        r = s3.list_multipart_uploads(Bucket="batch", Prefix="u/", MaxUploads=2, **kw)
        seen += [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "UploadIdMarker": r["NextUploadIdMarker"]}
    want = [("u/a", ids[0]), ("u/b", ids[1]), ("u/b", ids[2]), ("u/c/1", ids[3]),
            ("u/c/2", ids[4])]
    assert seen == want, (seen, want)
    r = s3.list_multipart_uploads(Bucket="batch", Prefix="u/", Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["u/a", "u/b", "u/b"], r
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == ["u/c/"], r
    for (k, i) in zip(("u/a", "u/b", "u/b", "u/c/1", "u/c/2", "v"), ids):
        s3.abort_multipart_upload(Bucket="batch", Key=k, UploadId=i)
    ok("list_multipart_uploads: prefix, pages of 2 with key and upload-id markers, delimiter")

    whole = os.urandom(6 * MiB)
    s3.put_object(Bucket="batch", Key="copysrc", Body=whole)
    up3 = s3.create_multipart_upload(Bucket="batch", Key="mp/copied")["UploadId"]
    r1 = s3.upload_part_copy(Bucket="batch", Key="mp/copied", UploadId=up3, PartNumber=1,
                             CopySource={"Bucket": "batch", "Key": "copysrc"},
                             CopySourceRange="bytes=0-5242879")
    r2 = s3.upload_part_copy(Bucket="batch", Key="mp/copied", UploadId=up3, PartNumber=2,
                             CopySource={"Bucket": "batch", "Key": "copysrc"},
                             CopySourceRange="bytes=5242880-6291455")
    assert r1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(whole[:5 * MiB]).hexdigest()
    expect_error("InvalidArgument", s3.upload_part_copy, Bucket="batch", Key="mp/copied",
                 UploadId=up3, PartNumber=3, CopySource={"Bucket": "batch", "Key": "copysrc"},
                 CopySourceRange="bytes=0-99999999")
    r = complete("mp/copied", up3, [(1, r1["CopyPartResult"]["ETag"]),
                                    (2, r2["CopyPartResult"]["ETag"])])
    assert r["ETag"] == md5_of_md5s([whole[:5 * MiB], whole[5 * MiB:]]), r
    assert s3.get_object(Bucket="batch", Key="mp/copied")["Body"].read() == whole
    ok("upload_part_copy with ranges; a range past the source is InvalidArgument")

    up4 = s3.create_multipart_upload(Bucket="batch", Key="mp/obj")["UploadId"]
    e4 = s3.upload_part(Bucket="batch", Key="mp/obj", UploadId=up4, PartNumber=1,
                        Body=b"new")["ETag"]
    expect_error("PreconditionFailed", with_header, s3, "CompleteMultipartUpload",
                 "If-None-Match", "*", complete, "mp/obj", up4, [(1, e4)])
    assert s3.get_object(Bucket="batch", Key="mp/obj")["Body"].read() == b"".join(parts)
    with_header(s3, "CompleteMultipartUpload", "If-Match", md5_of_md5s(parts), complete,
                "mp/obj", up4, [(1, e4)])
    assert s3.get_object(Bucket="batch", Key="mp/obj")["Body"].read() == b"new"
    ok("conditional complete: If-None-Match: * on an existing key 412, If-Match replaces")

    # ---- the SDK's managed transfers --------------------------------------------------------
    with tempfile.TemporaryDirectory() as d:
        src_path, dst_path = os.path.join(d, "up.bin"), os.path.join(d, "down.bin")
        data = os.urandom(20 * MiB + 12345)
        with open(src_path, "wb") as f:
            f.write(data)
        s3.upload_file(src_path, "batch", "managed.bin")
        h = s3.head_object(Bucket="batch", Key="managed.bin")
        assert h["ContentLength"] == len(data) and h["ETag"].endswith('-3"'), h
        s3.download_file("batch", "managed.bin", dst_path)
        with open(dst_path, "rb") as f:
            assert f.read() == data
    ok("upload_file of 20 MiB (multipart, 3 parts) and download_file, byte-identical")

    # ---- checksums --------------------------------------------------------------------------
    body = b"checksummed"
    crc = base64.b64encode(binascii.crc32(body).to_bytes(4, "big")).decode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    s3.put_object(Bucket="batch", Key="ck", Body=body, ChecksumCRC32=crc)
    s3.put_object(Bucket="batch", Key="ck2", Body=body, ChecksumSHA256=sha)
    e = expect_error("BadDigest", s3.put_object, Bucket="batch", Key="ck3", Body=body,
                     ChecksumCRC32="AAAAAA==")
    expect_error("BadDigest", s3.put_object, Bucket="batch", Key="ck3", Body=body,
                 ChecksumSHA256=base64.b64encode(b"\0" * 32).decode())
    expect_error("404", s3.head_object, Bucket="batch", Key="ck3")
    h = s3.head_object(Bucket="batch", Key="ck", ChecksumMode="ENABLED")
    assert h.get("ChecksumCRC32") == crc, h
    ok("x-amz-checksum-crc32 / -sha256 verified: right stored, wrong BadDigest")

    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="batch"):
        objs = [{"Key": c["Key"]} for c in page.get("Contents", [])]
        if objs:
            s3.delete_objects(Bucket="batch", Delete={"Objects": objs, "Quiet": True})
    s3.delete_bucket(Bucket="batch")

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
