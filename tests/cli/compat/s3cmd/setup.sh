# s3cmd/setup.sh: s3cmd's set-up for test_fakes3_compat_s3cmd*.sh (sourced after
# tests/cli/fakes3/lib.sh, tests/cli/compat/lib.sh and start): a config in the scratch HOME for
# $URL (path style: host_bucket without %(bucket)s; SigV4; region us-east-1; plain HTTP), and the
# function s3cmd, which runs Debian's s3cmd in a clean environment with that config; s3cmd_wrong
# does the same with a wrong secret.
hostport=${URL#http://}
cat >"$CHOME/.s3cfg" <<CFG
[default]
access_key = $KEY
secret_key = $SECRET
host_base = $hostport
host_bucket = $hostport
bucket_location = us-east-1
use_https = False
signature_v2 = False
check_ssl_certificate = False
progress_meter = False
CFG
sed "s/^secret_key = .*/secret_key = not-$SECRET/" "$CHOME/.s3cfg" >"$CHOME/.s3cfg-wrong"
s3cmd() {
    cenv s3cmd -c "$CHOME/.s3cfg" "$@"
}
s3cmd_wrong() {
    cenv s3cmd -c "$CHOME/.s3cfg-wrong" "$@"
}
