# rclone/setup.sh: rclone's set-up for test_fakes3_compat_rclone*.sh (sourced after
# tests/cli/fakes3/lib.sh, tests/cli/compat/lib.sh and start): a remote "fk:" of type s3,
# provider Other, for $URL (path style, us-east-1), defined by RCLONE_CONFIG_FK_* variables with
# an empty config file in the scratch HOME, and the function rclone, which runs Debian's rclone in
# a clean environment with them (one try only: --retries 1 --low-level-retries 1, so an expected
# error is answered once). rclone_wrong does the same with a wrong secret.
: >"$CHOME/rclone.conf"
RCLONE_ENV=(RCLONE_CONFIG="$CHOME/rclone.conf" RCLONE_CONFIG_FK_TYPE=s3
    RCLONE_CONFIG_FK_PROVIDER=Other RCLONE_CONFIG_FK_ENDPOINT="$URL"
    RCLONE_CONFIG_FK_REGION=us-east-1 RCLONE_CONFIG_FK_FORCE_PATH_STYLE=true
    RCLONE_CONFIG_FK_ACCESS_KEY_ID="$KEY")
rclone() {
    cenv "${RCLONE_ENV[@]}" RCLONE_CONFIG_FK_SECRET_ACCESS_KEY="$SECRET" \
        rclone --retries 1 --low-level-retries 1 "$@"
}
rclone_wrong() {
    cenv "${RCLONE_ENV[@]}" RCLONE_CONFIG_FK_SECRET_ACCESS_KEY="not-$SECRET" \
        rclone --retries 1 --low-level-retries 1 "$@"
}
