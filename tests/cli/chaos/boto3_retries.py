#!/usr/bin/env python3
"""boto3_retries: boto3's retries against fakes3's fault rules (test_chaos_boto3.sh starts the
server with the rules).

usage: boto3_retries.py ENDPOINT_URL ACCESS_KEY SECRET_KEY

Expects bucket "bkt" and these rules on key "retried": two 503 SlowDown on PutObject, one 500
InternalError on GetObject, 403 AccessDenied on DeleteObject, one reset on HeadObject. Checks the
SDK's own count of retries (ResponseMetadata.RetryAttempts) and that it logged them. Exits 1 at
the first failure.
"""
import io
import logging
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key, secret = sys.argv[1:4]
log = io.StringIO()
handler = logging.StreamHandler(log)
logging.getLogger("botocore.retryhandler").addHandler(handler)
logging.getLogger("botocore.retryhandler").setLevel(logging.DEBUG)
logging.getLogger("botocore.retries").addHandler(handler)
logging.getLogger("botocore.retries").setLevel(logging.DEBUG)

s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=key,
    aws_secret_access_key=secret,
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 5, "mode": "standard"},
                  s3={"addressing_style": "path"}),
)


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        print(log.getvalue(), file=sys.stderr)
        sys.exit(1)
    print("ok -", what)


r = s3.put_object(Bucket="bkt", Key="retried", Body=b"hello after two SlowDowns")
check(r["ResponseMetadata"]["HTTPStatusCode"] == 200, "put_object succeeded in the end")
check(r["ResponseMetadata"]["RetryAttempts"] == 2,
      "put_object: RetryAttempts %s, want 2" % r["ResponseMetadata"]["RetryAttempts"])
check(log.getvalue().count("Retry needed") == 2,
      "botocore logged the two retries (%r)" % log.getvalue())

r = s3.get_object(Bucket="bkt", Key="retried")
check(r["Body"].read() == b"hello after two SlowDowns", "get_object: the object")
check(r["ResponseMetadata"]["RetryAttempts"] == 1,
      "get_object: RetryAttempts %s, want 1" % r["ResponseMetadata"]["RetryAttempts"])

try:
    s3.delete_object(Bucket="bkt", Key="retried")
    check(False, "delete_object under 'error 403 AccessDenied' succeeded")
except ClientError as e:
    check(e.response["Error"]["Code"] == "AccessDenied", "delete_object: AccessDenied")
    check(e.response["ResponseMetadata"]["RetryAttempts"] == 0, "AccessDenied is not retried")

r = s3.head_object(Bucket="bkt", Key="retried")
check(r["ResponseMetadata"]["RetryAttempts"] == 1,
      "head_object after a reset: RetryAttempts %s, want 1" % r["ResponseMetadata"]["RetryAttempts"])
