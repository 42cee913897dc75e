#!/usr/bin/env bash
# test_fakes3_compat_jssdk: build/fakes3 as the AWS SDK for JavaScript v3 sees it
# (@aws-sdk/client-s3 and @aws-sdk/s3-request-presigner 3.967.0, pinned with a lock file in
# tests/cli/compat/js/, installed by this test with npm ci into the build folder; Node.js from
# Debian). SigV4 with a key pair, path style, us-east-1. The cases are in
# tests/cli/compat/js/suite.cjs (part "live"): buckets; small objects; an awkward key with
# content type, cache control, disposition and metadata; 21 MiB objects from a Buffer and from a
# file stream (aws-chunked with a CRC32 trailer), read back in checksum mode; ranged GETs of every
# form and InvalidRange; conditional GETs; ListObjectsV2 over 1100 keys with the SDK's paginator,
# delimiter, prefix, start-after, fetch-owner, encoding-type url; ListObjects v1 with markers;
# DeleteObject; conditional PUTs (IfNoneMatch "*", IfMatch: 412); presigned GET and PUT
# (getSignedUrl) fetched with curl; a wrong secret (403 SignatureDoesNotMatch); NoSuchKey,
# NoSuchBucket, BucketNotEmpty.
#
# Multipart uploads, CopyObject, UploadPartCopy and DeleteObjects are the suite's "multipart" part,
# run by tests/cli/test_fakes3_compat_jssdk_multipart.sh.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. The first run
# needs the npm registry (npm ci); later runs reuse the install in $LTXVFS_BUILD_DIR/compat-js.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
source "$LTXVFS_SOURCE_DIR/tests/cli/compat/lib.sh"
source "$COMPAT/js/setup.sh"

js_install
pass "@aws-sdk/client-s3 installed from the lock file ($(cenv node --version), npm ci)"
start disk --data-dir "$TMP/data" --log "$TMP/fakes3.log"
js_suite live
stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
