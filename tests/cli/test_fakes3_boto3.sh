#!/usr/bin/env bash
# test_fakes3_boto3: build/fakes3 as boto3, the AWS SDK for Python, sees it (the cases are in
# tests/cli/fakes3/boto3_suite.py): buckets, objects small and of several MiB, metadata, ranges,
# listings with the SDK's paginators, conditional PUT and GET, presigned URLs, error codes, path
# and virtual-host addressing, batch delete, copy, the multipart upload step by step and through
# upload_file / download_file. Runs against the disk store and the memory store; when
# /usr/bin/python3 (Debian's, boto3 1.26) is another interpreter with boto3 than `python3`
# (which may carry a current boto3 that sends CRC32 checksums), against both SDKs.
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
pass "boto3 suite against the disk store ($(python3 -c 'import boto3; print("boto3", boto3.__version__)'))"

start mem --memory
python3 "$HERE/boto3_suite.py" "$URL" "$KEY" "$SECRET" ||
    fail "boto3_suite.py failed against $URL (--memory)"
stop "$PID"
pass "boto3 suite against the memory store"

if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ] &&
    /usr/bin/python3 -c 'import boto3' 2>/dev/null; then
    start debian --data-dir "$TMP/data2"
    /usr/bin/python3 "$HERE/boto3_suite.py" "$URL" "$KEY" "$SECRET" ||
        fail "boto3_suite.py (/usr/bin/python3) failed against $URL"
    stop "$PID"
    pass "boto3 suite with /usr/bin/python3 ($(/usr/bin/python3 -c 'import boto3; print("boto3", boto3.__version__)'))"
fi
echo "$passed passed, 0 failed"
