#!/usr/bin/env bash
# test_fakes3_compat_jssdk_multipart: the part of the AWS SDK for JavaScript suite that needs
# fakes3's multipart upload, CopyObject, UploadPartCopy and DeleteObjects. The cases are the
# "multipart" part of tests/cli/compat/js/suite.cjs: a 21 MiB
# multipart upload in 5 MiB parts (ListParts, ListMultipartUploads, InvalidPart, the -N ETag,
# metadata, a range across a part boundary), EntityTooSmall, abort and NoSuchUpload, IfNoneMatch
# on CompleteMultipartUpload (412); CopyObject with the COPY and REPLACE metadata directives,
# awkward keys, NoSuchKey, CopySourceIfMatch and copy-onto-itself errors; UploadPartCopy with
# CopySourceRange; DeleteObjects quiet and verbose, and over 1000 keys (MalformedXML).
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
source "$LTXVFS_SOURCE_DIR/tests/cli/compat/lib.sh"
source "$COMPAT/js/setup.sh"

js_install
pass "@aws-sdk/client-s3 installed from the lock file ($(cenv node --version), npm ci)"
start disk --data-dir "$TMP/data" --log "$TMP/fakes3.log"
js_suite multipart
stop "$PID"
no_5xx
pass "fakes3 stopped cleanly and never answered 5xx (but 501 for sub-resources)"
finish
