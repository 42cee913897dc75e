# chaos/lib.sh: what the fault tests share (sourced by tests/cli/test_chaos_*.sh), on top of
# tests/cli/fakes3/lib.sh (start, stop, req, fail, pass, the scratch folder $TMP).
#
# A fault makes requests fail on purpose, so these helpers never fail on curl's exit status: try
# records it (RC), with the HTTP status (CODE, 000 when there was none) and the time the request
# took (TIME, seconds), and the test checks each.

: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
CHAOS_DIR="$LTXVFS_SOURCE_DIR/tests/cli/chaos"
SIGN=(--aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET")
UNSIGNED=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD") # for -T uploads (curl signs no body)

# try CURL_ARGS...: a signed request that may fail. Sets RC, CODE, TIME; the body is in
# $TMP/body, the headers in $TMP/headers, curl's complaint in $TMP/curl.err.
try() {
    local out
    RC=0
    : >"$TMP/body"
    : >"$TMP/headers"
    out=$(curl -sS "${SIGN[@]}" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code} %{time_total}' \
        "$@" 2>"$TMP/curl.err") || RC=$?
    CODE=${out%% *}
    TIME=${out##* }
}

# want_rc N WHAT: curl's exit status of the last try was N (0: it worked; 18 partial body;
# 28 timeout; 52 empty reply; 56 reset).
want_rc() {
    [ "$RC" = "$1" ] || fail "$2: want curl exit $1, got $RC (HTTP $CODE)" "$(cat "$TMP/curl.err")"
}
# want_code STATUS WHAT: the last try got HTTP STATUS.
want_code() {
    [ "$CODE" = "$1" ] || fail "$2: want HTTP $1, got $CODE (curl exit $RC)" "$(cat "$TMP/body")"
}
# took LO HI WHAT: the last try took between LO and HI seconds.
took() {
    awk -v t="$TIME" -v lo="$1" -v hi="$2" 'BEGIN { exit !(t >= lo && t <= hi) }' ||
        fail "$3: took ${TIME}s, want ${1}s to ${2}s"
}
# now_ms: the time in milliseconds (for spans of several requests).
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}
# log_faults LOG [KEY]: the "fault" field of each line of LOG (of the lines for KEY), one a line.
log_faults() {
    python3 "$CHAOS_DIR/logfield.py" "$1" fault ${2:+"$2"}
}
# log_field LOG FIELD KEY: FIELD of the last line of LOG for KEY.
log_field() {
    python3 "$CHAOS_DIR/logfield.py" "$1" "$2" "$3" | tail -n 1
}
# wait_log LOG KEY [N]: waits (up to 5 s) until LOG has N lines (default 1) for KEY: the log line
# of a request is written when it ends, which may be a little after the client saw the end.
wait_log() {
    local i
    for i in $(seq 100); do
        [ "$(python3 "$CHAOS_DIR/logfield.py" "$1" key "$2" | wc -l)" -ge "${3:-1}" ] && return 0
        sleep 0.05
    done
    fail "not ${3:-1} log lines for $2 in $1" "$(cat "$1")"
}
