#!/usr/bin/env bash
# test_fakes3_race: conditional writes are decided atomically. 50 concurrent PutObjects of
# different bodies to one key with If-None-Match: * must give exactly one 200 and 49 412
# PreconditionFailed, and the stored object must be exactly the winner's body; then 50 concurrent
# If-Match PUTs against the winner's ETag: again exactly one wins. Run against the disk store, the
# disk store with --fsync, and the memory store.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, md5sum.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"

N=50

# race NAME URL HEADER: N concurrent PUTs of distinct 256 KiB bodies to URL with HEADER; checks
# that exactly one got 200, the rest 412, and that the object is the winner's body.
race() {
    local name=$1 url=$2 header=$3 i
    mkdir -p "$TMP/$name"
    for i in $(seq $N); do
        # distinct bodies, large enough that the uploads overlap in time
        { printf '%s body %d\n' "$name" "$i"; head -c 262144 /dev/zero | tr '\0' "$(printf '\\%03o' $((65 + i % 26)))"; } \
            >"$TMP/$name/body.$i"
    done
    for i in $(seq $N); do
        curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$SECRET" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "$header" -T "$TMP/$name/body.$i" \
            -o "$TMP/$name/resp.$i" -w '%{http_code}' "$url" >"$TMP/$name/status.$i" &
    done
    wait_curls
    local ok=0 pre=0 other="" winner=""
    for i in $(seq $N); do
        case "$(cat "$TMP/$name/status.$i")" in
        200) ok=$((ok + 1)); winner=$i ;;
        412) pre=$((pre + 1))
             grep -q '<Code>PreconditionFailed</Code>' "$TMP/$name/resp.$i" ||
                 fail "$name: a 412 without PreconditionFailed" "$(cat "$TMP/$name/resp.$i")" ;;
        *) other="$other $i:$(cat "$TMP/$name/status.$i")" ;;
        esac
    done
    [ -z "$other" ] || fail "$name: unexpected statuses:$other" "$(cat "$TMP/$name/resp.${other%%:*}" 2>/dev/null)"
    [ "$ok" -eq 1 ] && [ "$pre" -eq $((N - 1)) ] || fail "$name: $ok x 200 and $pre x 412, want 1 and $((N - 1))"
    req 200 "$url"
    cmp -s "$TMP/body" "$TMP/$name/body.$winner" || fail "$name: the stored object is not the winner's body"
    WINNER_MD5=$(md5sum "$TMP/$name/body.$winner" | cut -d' ' -f1)
    header_is ETag "\"$WINNER_MD5\""
}

# waits for the background curls (not the fakes3 servers)
wait_curls() {
    local j
    for j in $(jobs -p); do
        case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" ;; esac
    done
}

for mode in disk fsync memory; do
    case $mode in
    disk) start "$mode" --data-dir "$TMP/data-disk" ;;
    fsync) start "$mode" --data-dir "$TMP/data-fsync" --fsync ;;
    memory) start "$mode" --memory ;;
    esac
    req 200 -X PUT "$URL/race"
    race "$mode-inm" "$URL/race/the-key" "If-None-Match: *"
    race "$mode-im" "$URL/race/the-key" "If-Match: \"$WINNER_MD5\""
    stop "$PID"
    pass "$mode store: $N concurrent If-None-Match: * and If-Match PUTs, exactly one winner, stored whole"
done
echo "$passed passed, 0 failed"
