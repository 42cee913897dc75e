# awscli/setup.sh: the aws CLI's set-up for test_fakes3_compat_awscli*.sh (sourced after
# tests/cli/fakes3/lib.sh, tests/cli/compat/lib.sh and start): a config in the scratch HOME and
# the function aws, which runs Debian's aws CLI against $URL in a clean environment with that
# config; $XENV (an array of NAME=VALUE) adds variables, e.g. for the compat_headers plugin;
# py EXPR evaluates a Python expression over the JSON output in $TMP/out.

# Config: path style, region, the plugin; profile "parts" moves large objects in 8 MiB parts (ranged
# GETs down; multipart uploads and copies up); profile "wrong" has a wrong secret.
mkdir -p "$CHOME/.aws"
cat >"$CHOME/.aws/config" <<EOF
[default]
region = us-east-1
output = json
s3 =
  addressing_style = path
  multipart_threshold = 5GB
[profile parts]
region = us-east-1
output = json
s3 =
  addressing_style = path
  multipart_threshold = 8MB
  multipart_chunksize = 8MB
[profile wrong]
region = us-east-1
output = json
s3 =
  addressing_style = path
[plugins]
cli_legacy_plugin_path = $COMPAT/awscli
compat_headers = compat_headers
EOF
cat >"$CHOME/.aws/credentials" <<EOF
[default]
aws_access_key_id = $KEY
aws_secret_access_key = $SECRET
[parts]
aws_access_key_id = $KEY
aws_secret_access_key = $SECRET
[wrong]
aws_access_key_id = $KEY
aws_secret_access_key = not-$SECRET
EOF
XENV=()
aws() {
    cenv AWS_CONFIG_FILE="$CHOME/.aws/config" AWS_SHARED_CREDENTIALS_FILE="$CHOME/.aws/credentials" \
        AWS_EC2_METADATA_DISABLED=true AWS_PAGER= PYTHONPATH="$COMPAT/awscli" PYTHONDONTWRITEBYTECODE=1 \
        "${XENV[@]}" \
        aws --endpoint-url "$URL" --no-cli-pager "$@"
}
py() { # py EXPR: EXPR over d, the JSON in $TMP/out (the CLI's --query applies to each page)
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$TMP/out" "$1"
}
