#!/usr/bin/env bash
# test_fakes3_boto3: build/fakes3 as boto3, the AWS SDK for Python, sees it (the cases are in
# tests/cli/fakes3/boto3_suite.py): buckets, objects small and of several MiB, metadata, ranges,
# listings with the SDK's paginators, conditional PUT and GET, presigned URLs, error codes, path
# and virtual-host addressing. Runs against the disk store.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs python3
# with boto3 (Debian: python3-boto3, which scripts/bootstrap.sh installs); without it the test
# fails, it is not skipped.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"

python3 -c 'import boto3' 2>/dev/null ||
    fail "needs python3 with boto3 (Debian: python3-boto3; scripts/bootstrap.sh installs it)"

start disk --data-dir "$TMP/data"
python3 "$HERE/boto3_suite.py" "$URL" "$KEY" "$SECRET" ||
    fail "boto3_suite.py failed against $URL"
stop "$PID"
pass "boto3 suite against the disk store"
echo "$passed passed, 0 failed"
