#!/bin/sh
# app-wait COMMAND...: waits until the replica's bucket answers (`ltxctl ls` of
# LITESTREAM_REPLICA_URL succeeds: the store is up and the bucket exists), then runs COMMAND.
# For the compose demo, where the store and its bucket come up alongside the application.
set -eu
: "${LITESTREAM_REPLICA_URL:?set LITESTREAM_REPLICA_URL}"
tries=${APP_WAIT_SECONDS:-120}
until ltxctl ls "$LITESTREAM_REPLICA_URL" --timeout 2s >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
        echo "app-wait: the replica's store does not answer:" >&2
        ltxctl ls "$LITESTREAM_REPLICA_URL" --timeout 2s >&2 || true
        exit 1
    fi
    sleep 1
done
exec "$@"
