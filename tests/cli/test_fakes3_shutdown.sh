#!/usr/bin/env bash
# test_fakes3_shutdown: the clean-shutdown promise under load. While 20 clients are in the middle
# of uploads, 5 are stuck downloading (they never read, so fakes3's sends block) and 5 keep idle
# connections open, SIGTERM must stop fakes3 with status 0 within a few seconds; the cut uploads
# must leave nothing behind (no temp file, no object), objects stored before must be whole after a
# restart. The same with SIGINT and the memory store.
#
# Environment (CTest sets it): LTXVFS_BUILD_DIR (holds fakes3), LTXVFS_SOURCE_DIR. Needs bash,
# curl, python3 (standard library), cmp.
set -euo pipefail
: "${LTXVFS_SOURCE_DIR:?set LTXVFS_SOURCE_DIR to the source tree}"
source "$LTXVFS_SOURCE_DIR/tests/cli/fakes3/lib.sh"
RAW="$LTXVFS_SOURCE_DIR/tests/cli/hostile/rawhttp.py"
command -v python3 >/dev/null || fail "needs python3"

WORK="$TMP/work"
mkdir -p "$WORK"
DATA="$TMP/data"
UPLOADS=20
CLIENTS=() # every client process this test starts, ended at the end of a round

# load PORT: starts the uploads (8 MiB each, spread over 30 s), the stuck downloads of /bkt/big
# and the idle connections, in the background.
load() {
    local port=$1 i
    for i in $(seq "$UPLOADS"); do
        python3 "$RAW" upload "$port" "/bkt/up-$i" 8388608 30 >"$WORK/up-$i.out" 2>&1 &
        CLIENTS+=($!)
    done
    for i in $(seq 5); do
        python3 "$RAW" stall-get "$port" /bkt/big >/dev/null 2>&1 &
        CLIENTS+=($!)
        python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)' "$port" >/dev/null 2>&1 &
        CLIENTS+=($!)
    done
}

# stop_within PID SIGNAL SECONDS: signals fakes3 and requires exit status 0 within SECONDS.
stop_within() {
    local pid=$1 sig=$2 limit=$3 t0 rc=0
    t0=$(date +%s.%N)
    kill "-$sig" "$pid"
    for _ in $(seq $((limit * 20))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && fail "fakes3 still running ${limit} s after SIG$sig"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "fakes3 exited with $rc after SIG$sig"
    STOP_TOOK=$(python3 -c 'import sys, time; print("%.2f" % (time.time() - float(sys.argv[1])))' "$t0")
}

# under_way: waits (up to 20 s) until every upload has sent its first piece.
under_way() {
    local i
    for i in $(seq "$UPLOADS"); do
        for _ in $(seq 400); do
            grep -q sending "$WORK/up-$i.out" 2>/dev/null && break
            sleep 0.05
        done
        grep -q sending "$WORK/up-$i.out" || fail "upload $i did not start" "$(cat "$WORK/up-$i.out")"
    done
}

# uploads_cut: every upload client saw its connection end without an answer.
uploads_cut() {
    local i got
    for i in $(seq "$UPLOADS"); do
        for _ in $(seq 100); do
            [ "$(wc -l <"$WORK/up-$i.out")" -ge 2 ] && break
            sleep 0.1
        done
        got=$(tail -n 1 "$WORK/up-$i.out")
        [ "$got" = cut ] || fail "upload $i: want its connection cut, got \"$got\""
    done
}

end_clients() {
    local p
    for p in "${CLIENTS[@]}"; do
        { kill "$p" && wait "$p"; } 2>/dev/null || true
    done
    CLIENTS=()
}

# ---- disk store, SIGTERM -----------------------------------------------------------------------

start disk --data-dir "$DATA" --anonymous
U=$URL
raw 200 -X PUT "$U/bkt"
head -c 1048576 /dev/urandom >"$WORK/done.bin"
head -c 16777216 /dev/urandom >"$WORK/big.bin"
for i in 0 1 2; do
    raw 200 -X PUT --data-binary @"$WORK/done.bin" -H "x-amz-meta-n: $i" "$U/bkt/done-$i"
done
raw 200 -X PUT --data-binary @"$WORK/big.bin" "$U/bkt/big"
load "${U##*:}"
under_way
# each upload has its temp file: an object's is beside its final name (objects/HH/t-PID-SEQ)
temp_files() {
    find "$DATA/tmp" -mindepth 1
    find "$DATA/buckets" -path '*/objects/*/t-*'
}
for _ in $(seq 200); do
    n=$(temp_files | wc -l)
    [ "$n" -ge "$UPLOADS" ] && break
    sleep 0.05
done
[ "$n" -ge "$UPLOADS" ] || fail "only $n of $UPLOADS uploads started"
sleep 0.5
stop_within "$PID_disk" TERM 5
uploads_cut
end_clients
left=$(temp_files)
[ -z "$left" ] || fail "temp files left after the stop" "$left"
pass "SIGTERM during $UPLOADS uploads, 5 stuck downloads, 5 idle connections: exit 0 in ${STOP_TOOK} s"

start again --data-dir "$DATA" --anonymous
U=$URL
raw 200 "$U/bkt?list-type=2"
body_has "<KeyCount>4</KeyCount>"
body_lacks "<Key>up-"
for i in 0 1 2; do
    raw 200 "$U/bkt/done-$i"
    cmp -s "$TMP/body" "$WORK/done.bin" || fail "done-$i is not whole after the restart"
    header_is x-amz-meta-n "$i"
done
raw 200 "$U/bkt/big"
cmp -s "$TMP/body" "$WORK/big.bin" || fail "big is not whole after the restart"
raw 404 "$U/bkt/up-1"
error_is NoSuchKey
stop "$PID_again"
pass "after the restart: the stored objects whole, no trace of the cut uploads"

# ---- memory store, SIGINT ----------------------------------------------------------------------

start mem --memory --anonymous
U=$URL
raw 200 -X PUT "$U/bkt"
raw 200 -X PUT --data-binary @"$WORK/big.bin" "$U/bkt/big"
load "${U##*:}"
under_way
sleep 0.5
stop_within "$PID_mem" INT 5
uploads_cut
end_clients
pass "SIGINT with the memory store under the same load: exit 0 in ${STOP_TOOK} s"
echo "$passed passed"
