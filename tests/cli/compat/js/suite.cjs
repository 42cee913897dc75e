#!/usr/bin/env node
// suite.cjs: fakes3 as the AWS SDK for JavaScript v3 (@aws-sdk/client-s3, pinned in package.json
// beside this file) sees it. Driven by tests/cli/test_fakes3_compat_jssdk.sh (part "live") and
// tests/cli/test_fakes3_compat_jssdk_multipart.sh (part "multipart").
//
// usage: node suite.cjs ENDPOINT_URL ACCESS_KEY SECRET_KEY live|multipart
// (the SDK is found through NODE_PATH: the test installs it with npm ci into the build folder)
//
// Prints one "ok N - ..." line per case and, at the end, "N passed, 0 failed"; at the first
// failure, "FAIL: ..." on stderr and exit status 1.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const S3 = require("@aws-sdk/client-s3");
const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");

const [endpoint, accessKeyId, secretAccessKey, part] = process.argv.slice(2);
if (!endpoint || !accessKeyId || !secretAccessKey || !["live", "multipart"].includes(part)) {
  console.error("usage: suite.cjs ENDPOINT_URL ACCESS_KEY SECRET_KEY live|multipart");
  process.exit(2);
}

const client = (secret = secretAccessKey, extra = {}) =>
  new S3.S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey: secret },
    maxAttempts: 1,
    ...extra,
  });
const s3 = client();

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok ${passed} - ${what}`);
}

const md5 = (buf) => crypto.createHash("md5").update(buf).digest("hex");
const quoted = (s) => `"${s}"`;
const body = async (out) => Buffer.from(await out.Body.transformToByteArray());
const send = (cmd, c = s3) => c.send(cmd);

// expectError(code, status, promise): the call must fail with that S3 error code (err.name) and
// HTTP status.
async function expectError(code, status, promise) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `want error ${code}, the call succeeded`);
  assert.equal(err.name, code, `want error ${code}, got ${err.name}: ${err.message}`);
  assert.equal(err.$metadata && err.$metadata.httpStatusCode, status, `${code}: HTTP status`);
  return err;
}

// pool(n, items, fn): fn over items, n at a time.
async function pool(n, items, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

function curl(args) {
  const r = spawnSync("curl", ["-sS", "-w", "%{http_code}", ...args], { encoding: "buffer" });
  if (r.status !== 0) throw new Error(`curl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.toString().slice(-3);
}

const SMALL = crypto.randomBytes(1000);
const BIG_SIZE = 21 * 1024 * 1024 + 7;
const BIG = crypto.randomBytes(BIG_SIZE);
const TMP = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), "jssdk-"));
const ODD = "dir/ünï cödé + 100% & =?.txt";

async function live() {
  const B = "compat-js";

  // ---- buckets
  await send(new S3.CreateBucketCommand({ Bucket: B }));
  await send(new S3.CreateBucketCommand({ Bucket: `${B}-empty` }));
  const lb = await send(new S3.ListBucketsCommand({}));
  assert.deepEqual(lb.Buckets.map((b) => b.Name), [B, `${B}-empty`]);
  await send(new S3.HeadBucketCommand({ Bucket: B }));
  const loc = await send(new S3.GetBucketLocationCommand({ Bucket: B }));
  assert.ok(!loc.LocationConstraint, `GetBucketLocation: ${loc.LocationConstraint}`);
  await expectError("BucketAlreadyOwnedByYou", 409, send(new S3.CreateBucketCommand({ Bucket: B })));
  ok("CreateBucket, ListBuckets, HeadBucket, GetBucketLocation, BucketAlreadyOwnedByYou");

  // ---- small objects
  const put = await send(new S3.PutObjectCommand({ Bucket: B, Key: "dir/small.bin", Body: SMALL }));
  assert.equal(put.ETag, quoted(md5(SMALL)));
  const got = await send(new S3.GetObjectCommand({ Bucket: B, Key: "dir/small.bin" }));
  assert.ok((await body(got)).equals(SMALL), "small object differs");
  assert.equal(got.ContentLength, 1000);
  assert.equal(got.ETag, quoted(md5(SMALL)));
  ok("PutObject and GetObject of a small object (ETag is the MD5)");

  await send(new S3.PutObjectCommand({
    Bucket: B, Key: ODD, Body: SMALL, ContentType: "text/x-compat", CacheControl: "max-age=60",
    ContentDisposition: 'attachment; filename="x.txt"', Metadata: { colour: "blue", size: "L" },
  }));
  const head = await send(new S3.HeadObjectCommand({ Bucket: B, Key: ODD }));
  assert.equal(head.ContentLength, 1000);
  assert.equal(head.ContentType, "text/x-compat");
  assert.equal(head.CacheControl, "max-age=60");
  assert.equal(head.ContentDisposition, 'attachment; filename="x.txt"');
  assert.deepEqual(head.Metadata, { colour: "blue", size: "L" });
  assert.ok(head.LastModified instanceof Date && Math.abs(head.LastModified - Date.now()) < 600e3);
  const gotOdd = await send(new S3.GetObjectCommand({ Bucket: B, Key: ODD }));
  assert.ok((await body(gotOdd)).equals(SMALL));
  ok("HeadObject and GetObject of an awkward key: content type, cache control, disposition, metadata");

  // ---- a 21 MiB object: from a Buffer, and from a file stream (aws-chunked with a checksum trailer)
  const bigPut = await send(new S3.PutObjectCommand({ Bucket: B, Key: "big.bin", Body: BIG }));
  assert.equal(bigPut.ETag, quoted(md5(BIG)));
  const bigGot = await send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin" }));
  assert.ok((await body(bigGot)).equals(BIG), "21 MiB object differs");
  const file = path.join(TMP, "big");
  fs.writeFileSync(file, BIG);
  const streamPut = await send(new S3.PutObjectCommand({
    Bucket: B, Key: "big-stream.bin", Body: fs.createReadStream(file), ContentLength: BIG_SIZE,
  }));
  assert.equal(streamPut.ETag, quoted(md5(BIG)));
  const streamGot = await send(new S3.GetObjectCommand({
    Bucket: B, Key: "big-stream.bin", ChecksumMode: "ENABLED",
  }));
  assert.ok((await body(streamGot)).equals(BIG), "streamed 21 MiB object differs");
  ok("PutObject of 21 MiB from a Buffer and from a file stream; GetObject (checksum mode) identical");

  // ---- ranged GETs
  const ranged = async (range, off, len) => {
    const r = await send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin", Range: range }));
    assert.equal(r.$metadata.httpStatusCode, 206, range);
    assert.equal(r.ContentRange, `bytes ${off}-${off + len - 1}/${BIG_SIZE}`, range);
    assert.equal(r.ContentLength, len, range);
    assert.ok((await body(r)).equals(BIG.subarray(off, off + len)), `${range}: bytes differ`);
  };
  await ranged("bytes=1000-5095", 1000, 4096);
  await ranged(`bytes=${BIG_SIZE - 70000}-`, BIG_SIZE - 70000, 70000);
  await ranged("bytes=-12345", BIG_SIZE - 12345, 12345);
  await ranged(`bytes=${BIG_SIZE - 10}-${BIG_SIZE + 500}`, BIG_SIZE - 10, 10);
  await expectError("InvalidRange", 416,
    send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin", Range: `bytes=${BIG_SIZE}-` })));
  ok("ranged GETs: bytes=a-b, a-, -n, past the end (clipped); 416 InvalidRange");

  // ---- conditional reads
  const etag = quoted(md5(BIG));
  await expectError("304", 304,
    send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin", IfNoneMatch: etag })).catch((e) => {
      if (e.$metadata && e.$metadata.httpStatusCode === 304) e.name = "304";
      throw e;
    }));
  await expectError("PreconditionFailed", 412,
    send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin", IfMatch: '"0000"' })));
  const im = await send(new S3.HeadObjectCommand({ Bucket: B, Key: "big.bin", IfMatch: etag }));
  assert.equal(im.ContentLength, BIG_SIZE);
  ok("conditional GET: If-None-Match (304), If-Match (412, 200)");

  // ---- listings over 1100 keys
  const keys = Array.from({ length: 1100 }, (_, i) => `many/k${String(i).padStart(4, "0")}`);
  await pool(16, keys, (k) => send(new S3.PutObjectCommand({ Bucket: B, Key: k, Body: k })));
  const pages = [];
  for await (const p of S3.paginateListObjectsV2({ client: s3, pageSize: 100 },
    { Bucket: B, Prefix: "many/" })) pages.push(p);
  assert.equal(pages.length, 11, "pages of 100");
  assert.deepEqual(pages.flatMap((p) => p.Contents.map((o) => o.Key)), keys);
  assert.ok(pages.every((p) => p.Contents.every((o) => o.Size === 10 && o.ETag && o.LastModified)));
  const p1 = await send(new S3.ListObjectsV2Command({ Bucket: B, Prefix: "many/" }));
  assert.equal(p1.KeyCount, 1000);
  assert.equal(p1.MaxKeys, 1000);
  assert.equal(p1.IsTruncated, true);
  assert.ok(p1.NextContinuationToken);
  const p2 = await send(new S3.ListObjectsV2Command({
    Bucket: B, Prefix: "many/", ContinuationToken: p1.NextContinuationToken,
  }));
  assert.equal(p2.KeyCount, 100);
  assert.equal(p2.IsTruncated, false);
  assert.equal(p2.Contents[0].Key, "many/k1000");
  ok("ListObjectsV2 over 1100 keys: the SDK's paginator (11 pages of 100), 1000 per page by default");

  const top = await send(new S3.ListObjectsV2Command({ Bucket: B, Delimiter: "/" }));
  assert.deepEqual(top.CommonPrefixes.map((p) => p.Prefix), ["dir/", "many/"]);
  assert.deepEqual(top.Contents.map((o) => o.Key), ["big-stream.bin", "big.bin"]);
  const dir = await send(new S3.ListObjectsV2Command({ Bucket: B, Prefix: "dir/", Delimiter: "/" }));
  assert.deepEqual(dir.Contents.map((o) => o.Key), ["dir/small.bin", ODD]);
  const pre = await send(new S3.ListObjectsV2Command({ Bucket: B, Prefix: "many/k10" }));
  assert.equal(pre.KeyCount, 100);
  const sa = await send(new S3.ListObjectsV2Command({
    Bucket: B, Prefix: "many/", StartAfter: "many/k1097",
  }));
  assert.deepEqual(sa.Contents.map((o) => o.Key), ["many/k1098", "many/k1099"]);
  const fo = await send(new S3.ListObjectsV2Command({
    Bucket: B, Prefix: "dir/s", FetchOwner: true, EncodingType: "url",
  }));
  assert.ok(fo.Contents[0].Owner && fo.Contents[0].Owner.ID, "FetchOwner");
  const enc = await send(new S3.ListObjectsV2Command({ Bucket: B, Prefix: "dir/ü", EncodingType: "url" }));
  assert.equal(decodeURIComponent(enc.Contents[0].Key.replace(/\+/g, " ")), ODD);
  let marker;
  let v1 = [];
  for (;;) {
    const r = await send(new S3.ListObjectsCommand({ Bucket: B, Prefix: "many/", MaxKeys: 300, Marker: marker }));
    v1 = v1.concat(r.Contents.map((o) => o.Key));
    if (!r.IsTruncated) break;
    marker = r.NextMarker || r.Contents[r.Contents.length - 1].Key;
  }
  assert.deepEqual(v1, keys);
  ok("listings: delimiter (CommonPrefixes), prefix, start-after, fetch-owner, encoding-type url, v1 markers");

  // ---- single delete
  await send(new S3.DeleteObjectCommand({ Bucket: B, Key: "dir/small.bin" }));
  await expectError("NoSuchKey", 404, send(new S3.GetObjectCommand({ Bucket: B, Key: "dir/small.bin" })));
  await expectError("NotFound", 404, send(new S3.HeadObjectCommand({ Bucket: B, Key: "dir/small.bin" })));
  const del = await send(new S3.DeleteObjectCommand({ Bucket: B, Key: "no/such/key" }));
  assert.equal(del.$metadata.httpStatusCode, 204);
  ok("DeleteObject; GetObject then NoSuchKey, HeadObject 404; deleting an absent key is 204");

  // ---- conditional PUTs
  await send(new S3.PutObjectCommand({ Bucket: B, Key: "cond.bin", Body: SMALL }));
  await expectError("PreconditionFailed", 412, send(new S3.PutObjectCommand({
    Bucket: B, Key: "cond.bin", Body: "other", IfNoneMatch: "*",
  })));
  await send(new S3.PutObjectCommand({ Bucket: B, Key: "cond-new.bin", Body: "new", IfNoneMatch: "*" }));
  await expectError("PreconditionFailed", 412, send(new S3.PutObjectCommand({
    Bucket: B, Key: "cond.bin", Body: "other", IfMatch: '"0123456789abcdef0123456789abcdef"',
  })));
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "cond.bin" })))).equals(SMALL));
  await send(new S3.PutObjectCommand({
    Bucket: B, Key: "cond.bin", Body: "replaced", IfMatch: quoted(md5(SMALL)),
  }));
  assert.equal((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "cond.bin" })))).toString(), "replaced");
  ok("conditional PutObject: IfNoneMatch * (412 over an object, 200 for a new key), IfMatch (412, 200)");

  // ---- presigned URLs, fetched with curl
  const getUrl = await getSignedUrl(s3, new S3.GetObjectCommand({ Bucket: B, Key: "big.bin" }), { expiresIn: 300 });
  assert.match(getUrl, /X-Amz-Signature=/);
  const out = path.join(TMP, "presigned");
  assert.equal(curl(["-o", out, getUrl]), "200");
  assert.ok(fs.readFileSync(out).equals(BIG), "presigned GET: bytes differ");
  const oddUrl = await getSignedUrl(s3, new S3.GetObjectCommand({ Bucket: B, Key: ODD }), { expiresIn: 60 });
  assert.equal(curl(["-o", out, oddUrl]), "200");
  assert.ok(fs.readFileSync(out).equals(SMALL), "presigned GET of the awkward key: bytes differ");
  const putUrl = await getSignedUrl(s3, new S3.PutObjectCommand({ Bucket: B, Key: "presigned-put.bin" }), { expiresIn: 300 });
  const src = path.join(TMP, "small");
  fs.writeFileSync(src, SMALL);
  assert.equal(curl(["-o", out, "-T", src, putUrl]), "200");
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "presigned-put.bin" })))).equals(SMALL));
  const bad = getUrl.replace(/X-Amz-Signature=([0-9a-f])/, (m, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`);
  assert.equal(curl(["-o", out, bad]), "403");
  assert.match(fs.readFileSync(out, "utf8"), /<Code>SignatureDoesNotMatch<\/Code>/);
  ok("presigned GET (whole, awkward key) and PUT with getSignedUrl, fetched with curl; tampered: 403");

  // ---- a wrong secret
  const wrong = client(`not-${secretAccessKey}`);
  await expectError("SignatureDoesNotMatch", 403, send(new S3.ListObjectsV2Command({ Bucket: B }), wrong));
  await expectError("SignatureDoesNotMatch", 403,
    send(new S3.PutObjectCommand({ Bucket: B, Key: "wrong.bin", Body: SMALL }), wrong));
  await expectError("SignatureDoesNotMatch", 403,
    send(new S3.GetObjectCommand({ Bucket: B, Key: "big.bin" }), wrong));
  await expectError("NotFound", 404, send(new S3.HeadObjectCommand({ Bucket: B, Key: "wrong.bin" })));
  ok("a wrong secret: 403 SignatureDoesNotMatch (list, put, get), nothing stored");

  // ---- errors
  await expectError("NoSuchKey", 404, send(new S3.GetObjectCommand({ Bucket: B, Key: "no/such/key" })));
  await expectError("NoSuchBucket", 404, send(new S3.ListObjectsV2Command({ Bucket: "no-such-bucket" })));
  await expectError("NoSuchBucket", 404, send(new S3.GetObjectCommand({ Bucket: "no-such-bucket", Key: "k" })));
  await expectError("NoSuchBucket", 404,
    send(new S3.PutObjectCommand({ Bucket: "no-such-bucket", Key: "k", Body: SMALL })));
  await expectError("NotFound", 404, send(new S3.HeadBucketCommand({ Bucket: "no-such-bucket" })));
  ok("NoSuchKey; NoSuchBucket (list, get, put); HeadBucket 404");

  // ---- removing everything: DeleteObject per key (DeleteObjects is in the multipart part)
  await expectError("BucketNotEmpty", 409, send(new S3.DeleteBucketCommand({ Bucket: B })));
  const all = [];
  for await (const p of S3.paginateListObjectsV2({ client: s3 }, { Bucket: B })) {
    for (const o of p.Contents || []) all.push(o.Key);
  }
  assert.equal(all.length, 1100 + 6);
  await pool(16, all, (k) => send(new S3.DeleteObjectCommand({ Bucket: B, Key: k })));
  await send(new S3.DeleteBucketCommand({ Bucket: B }));
  await send(new S3.DeleteBucketCommand({ Bucket: `${B}-empty` }));
  const lb2 = await send(new S3.ListBucketsCommand({}));
  assert.deepEqual(lb2.Buckets || [], []);
  ok("DeleteBucket: 409 BucketNotEmpty; then every key deleted and both buckets removed");
}

async function multipart() {
  const B = "compat-js-mp";
  const MiB = 1024 * 1024;
  await send(new S3.CreateBucketCommand({ Bucket: B }));

  // ---- multipart upload
  const partsOf = (buf, size) => {
    const parts = [];
    for (let off = 0; off < buf.length; off += size) parts.push(buf.subarray(off, off + size));
    return parts;
  };
  const mpEtag = (parts) =>
    quoted(`${crypto.createHash("md5").update(Buffer.concat(parts.map((p) => crypto.createHash("md5").update(p).digest()))).digest("hex")}-${parts.length}`);
  const parts = partsOf(BIG, 5 * MiB);
  const cmu = await send(new S3.CreateMultipartUploadCommand({
    Bucket: B, Key: "mp.bin", ContentType: "application/x-compat", Metadata: { stage: "mp" },
  }));
  assert.ok(cmu.UploadId);
  const done = [];
  await pool(3, parts, async (p, i) => {
    const r = await send(new S3.UploadPartCommand({
      Bucket: B, Key: "mp.bin", UploadId: cmu.UploadId, PartNumber: i + 1, Body: p,
    }));
    assert.equal(r.ETag, quoted(md5(p)));
    done[i] = { PartNumber: i + 1, ETag: r.ETag };
  });
  const lp = await send(new S3.ListPartsCommand({ Bucket: B, Key: "mp.bin", UploadId: cmu.UploadId }));
  assert.deepEqual(lp.Parts.map((p) => [p.PartNumber, p.Size, p.ETag]),
    done.map((d, i) => [d.PartNumber, parts[i].length, d.ETag]));
  const lmu = await send(new S3.ListMultipartUploadsCommand({ Bucket: B }));
  assert.deepEqual(lmu.Uploads.map((u) => [u.Key, u.UploadId]), [["mp.bin", cmu.UploadId]]);
  await expectError("NoSuchKey", 404, send(new S3.GetObjectCommand({ Bucket: B, Key: "mp.bin" })));
  await expectError("InvalidPart", 400, send(new S3.CompleteMultipartUploadCommand({
    Bucket: B, Key: "mp.bin", UploadId: cmu.UploadId,
    MultipartUpload: { Parts: [done[0], { PartNumber: 2, ETag: '"00000000000000000000000000000000"' }] },
  })));
  const cpl = await send(new S3.CompleteMultipartUploadCommand({
    Bucket: B, Key: "mp.bin", UploadId: cmu.UploadId, MultipartUpload: { Parts: done },
  }));
  assert.equal(cpl.ETag, mpEtag(parts));
  const mp = await send(new S3.GetObjectCommand({ Bucket: B, Key: "mp.bin" }));
  assert.equal(mp.ContentType, "application/x-compat");
  assert.deepEqual(mp.Metadata, { stage: "mp" });
  assert.equal(mp.ETag, mpEtag(parts));
  assert.ok((await body(mp)).equals(BIG), "multipart object differs");
  const pr = await send(new S3.GetObjectCommand({ Bucket: B, Key: "mp.bin", Range: `bytes=${5 * MiB - 100}-${5 * MiB + 99}` }));
  assert.ok((await body(pr)).equals(BIG.subarray(5 * MiB - 100, 5 * MiB + 100)));
  const left = await send(new S3.ListMultipartUploadsCommand({ Bucket: B }));
  assert.deepEqual(left.Uploads || [], []);
  ok("multipart upload of 21 MiB in 5 MiB parts: ListParts, ListMultipartUploads, InvalidPart, Complete (ETag -5)");

  const small = await send(new S3.CreateMultipartUploadCommand({ Bucket: B, Key: "small-parts.bin" }));
  const sp = [];
  for (const n of [1, 2]) {
    const r = await send(new S3.UploadPartCommand({ Bucket: B, Key: "small-parts.bin", UploadId: small.UploadId, PartNumber: n, Body: SMALL }));
    sp.push({ PartNumber: n, ETag: r.ETag });
  }
  await expectError("EntityTooSmall", 400, send(new S3.CompleteMultipartUploadCommand({
    Bucket: B, Key: "small-parts.bin", UploadId: small.UploadId, MultipartUpload: { Parts: sp },
  })));
  await send(new S3.AbortMultipartUploadCommand({ Bucket: B, Key: "small-parts.bin", UploadId: small.UploadId }));
  await expectError("NoSuchUpload", 404, send(new S3.UploadPartCommand({
    Bucket: B, Key: "small-parts.bin", UploadId: small.UploadId, PartNumber: 3, Body: SMALL,
  })));
  ok("EntityTooSmall, AbortMultipartUpload, NoSuchUpload after abort");

  const again = await send(new S3.CreateMultipartUploadCommand({ Bucket: B, Key: "mp.bin" }));
  const a1 = await send(new S3.UploadPartCommand({ Bucket: B, Key: "mp.bin", UploadId: again.UploadId, PartNumber: 1, Body: SMALL }));
  await expectError("PreconditionFailed", 412, send(new S3.CompleteMultipartUploadCommand({
    Bucket: B, Key: "mp.bin", UploadId: again.UploadId, IfNoneMatch: "*",
    MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a1.ETag }] },
  })));
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "mp.bin" })))).equals(BIG));
  ok("CompleteMultipartUpload with IfNoneMatch * over an existing key: 412, object unchanged");

  // ---- copies
  await send(new S3.PutObjectCommand({ Bucket: B, Key: "src.bin", Body: SMALL, ContentType: "text/x-compat", Metadata: { colour: "blue" } }));
  const cp = await send(new S3.CopyObjectCommand({ Bucket: B, Key: "copy.bin", CopySource: `${B}/src.bin` }));
  assert.equal(cp.CopyObjectResult.ETag, quoted(md5(SMALL)));
  const ch = await send(new S3.HeadObjectCommand({ Bucket: B, Key: "copy.bin" }));
  assert.equal(ch.ContentType, "text/x-compat");
  assert.deepEqual(ch.Metadata, { colour: "blue" });
  await send(new S3.CopyObjectCommand({
    Bucket: B, Key: "replaced.bin", CopySource: `${B}/src.bin`, MetadataDirective: "REPLACE",
    ContentType: "text/plain", Metadata: { colour: "red" },
  }));
  const rh = await send(new S3.HeadObjectCommand({ Bucket: B, Key: "replaced.bin" }));
  assert.equal(rh.ContentType, "text/plain");
  assert.deepEqual(rh.Metadata, { colour: "red" });
  await send(new S3.CopyObjectCommand({ Bucket: B, Key: ODD, CopySource: encodeURIComponent(`${B}/src.bin`) }));
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: ODD })))).equals(SMALL));
  await send(new S3.CopyObjectCommand({ Bucket: B, Key: "from-odd.bin", CopySource: `${B}/${encodeURIComponent(ODD)}` }));
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "from-odd.bin" })))).equals(SMALL));
  await expectError("NoSuchKey", 404, send(new S3.CopyObjectCommand({ Bucket: B, Key: "x", CopySource: `${B}/no/such/key` })));
  await expectError("PreconditionFailed", 412, send(new S3.CopyObjectCommand({
    Bucket: B, Key: "x", CopySource: `${B}/src.bin`, CopySourceIfMatch: '"0000"',
  })));
  await expectError("InvalidRequest", 400, send(new S3.CopyObjectCommand({ Bucket: B, Key: "src.bin", CopySource: `${B}/src.bin` })));
  ok("CopyObject: metadata COPY and REPLACE, awkward keys both ways, NoSuchKey, CopySourceIfMatch 412, onto itself 400");

  const upc = await send(new S3.CreateMultipartUploadCommand({ Bucket: B, Key: "partcopy.bin" }));
  const pcs = [];
  for (let i = 0, off = 0; off < BIG_SIZE; i++, off += 8 * MiB) {
    const end = Math.min(off + 8 * MiB, BIG_SIZE) - 1;
    const r = await send(new S3.UploadPartCopyCommand({
      Bucket: B, Key: "partcopy.bin", UploadId: upc.UploadId, PartNumber: i + 1,
      CopySource: `${B}/mp.bin`, CopySourceRange: `bytes=${off}-${end}`,
    }));
    assert.equal(r.CopyPartResult.ETag, quoted(md5(BIG.subarray(off, end + 1))));
    pcs.push({ PartNumber: i + 1, ETag: r.CopyPartResult.ETag });
  }
  await send(new S3.CompleteMultipartUploadCommand({ Bucket: B, Key: "partcopy.bin", UploadId: upc.UploadId, MultipartUpload: { Parts: pcs } }));
  assert.ok((await body(await send(new S3.GetObjectCommand({ Bucket: B, Key: "partcopy.bin" })))).equals(BIG));
  ok("UploadPartCopy with CopySourceRange: a 21 MiB object copied in 8 MiB parts");

  // ---- DeleteObjects
  const keys = Array.from({ length: 1100 }, (_, i) => `many/k${String(i).padStart(4, "0")}`);
  await pool(16, keys, (k) => send(new S3.PutObjectCommand({ Bucket: B, Key: k, Body: k })));
  const d1 = await send(new S3.DeleteObjectsCommand({
    Bucket: B, Delete: { Objects: keys.slice(0, 1000).map((Key) => ({ Key })), Quiet: true },
  }));
  assert.deepEqual([d1.Deleted || [], d1.Errors || []], [[], []]);
  const rest = await send(new S3.ListObjectsV2Command({ Bucket: B, Prefix: "many/" }));
  assert.deepEqual(rest.Contents.map((o) => o.Key), keys.slice(1000));
  const d2 = await send(new S3.DeleteObjectsCommand({
    Bucket: B, Delete: { Objects: [...keys.slice(1000), "no/such/key"].map((Key) => ({ Key })) },
  }));
  assert.deepEqual(d2.Deleted.map((d) => d.Key).sort(), [...keys.slice(1000), "no/such/key"].sort());
  assert.deepEqual(d2.Errors || [], []);
  await expectError("MalformedXML", 400, send(new S3.DeleteObjectsCommand({
    Bucket: B, Delete: { Objects: Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` })) },
  })));
  ok("DeleteObjects: 1000 keys quiet, then verbose with an absent key; 1001 keys is MalformedXML");

  const all = [];
  for await (const p of S3.paginateListObjectsV2({ client: s3 }, { Bucket: B })) {
    for (const o of p.Contents || []) all.push({ Key: o.Key });
  }
  await send(new S3.DeleteObjectsCommand({ Bucket: B, Delete: { Objects: all } }));
  await send(new S3.DeleteBucketCommand({ Bucket: B }));
  ok("the bucket emptied with DeleteObjects and removed");
}

(part === "live" ? live() : multipart())
  .then(() => {
    fs.rmSync(TMP, { recursive: true, force: true });
    console.log(`${passed} passed, 0 failed`);
  })
  .catch((e) => {
    fs.rmSync(TMP, { recursive: true, force: true });
    console.error(`FAIL (after ${passed} cases): ${e.stack || e}`);
    if (e.$response) console.error(`response: ${JSON.stringify(e.$metadata)}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  });
