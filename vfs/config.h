/*
 * config: the settings of one database opened through the VFS, from the environment and the URI
 * parameters of its open (a URI parameter overrides the environment for that database, so one
 * process can open several replicas):
 *
 *   environment                 URI parameter   meaning                              default
 *   LITESTREAM_REPLICA_URL      replica         where the database lives             (required)
 *   LITESTREAM_POLL_INTERVAL    poll_interval   read mode: how often level 0/1 are   1s
 *                                               polled for new files
 *   LITESTREAM_CACHE_SIZE       cache_size      page cache, bytes (k, M, G suffixes) 10M
 *   LITESTREAM_OPEN_TIMEOUT     open_timeout    read mode: how long an open waits    30s
 *                                               for an empty replica's first file
 *   LITESTREAM_RETRY_TIMEOUT    retry_timeout   how long a failing request to the    30s
 *                                               store is retried before a read fails
 *   LITESTREAM_WRITE_ENABLED    write           write mode                           off
 *   LITESTREAM_SYNC_INTERVAL    sync_interval   write mode: shipping interval (0:    1s
 *                                               the default; negative: on close only)
 *   LITESTREAM_BUFFER_PATH      buffer          write mode: the write buffer         see below
 *   LITESTREAM_BUFFER_MAX       buffer_max      write mode: the buffer's size bound  1G
 *                                               (past it writes fail: SQLITE_FULL)
 *   LITESTREAM_LEASE_TTL        lease_ttl       write mode: the writer lease's TTL   30s
 *   LITESTREAM_COMPACTION       compaction      write mode: compact in the writer    on
 *   LITESTREAM_L1_INTERVAL      l1_interval     compaction L0->L1 every              30s
 *   LITESTREAM_L2_INTERVAL      l2_interval     compaction L1->L2 every              5m
 *   LITESTREAM_L3_INTERVAL      l3_interval     compaction L2->L3 every              1h
 *   LITESTREAM_SNAPSHOT_INTERVAL snapshot_interval  a snapshot every                 24h
 *   LITESTREAM_RETENTION        retention       snapshots (and what they cover) kept 24h
 *   LITESTREAM_L0_RETENTION     l0_retention    compacted L0 files kept              5m
 *   LITESTREAM_HYDRATION_PATH   hydration       hydrate to this file                 off
 *   LITESTREAM_HYDRATION_KEEP   hydration_keep  keep it (and PATH.meta) at exit and  off
 *                                               reuse it at the next open if it checks
 *   LITESTREAM_LOG_LEVEL                        error, warn, info, debug (stderr)    warn
 *
 * The default buffer path is ${TMPDIR:-/tmp}/litestream-vfs-<uid>/<16 hex digits of a hash of
 * the replica URL>.wbuf: the same replica gets the same buffer after a restart (which ships what
 * a crash left in it), different replicas never share one.
 *
 * Durations: 250ms, 1s, 1.5s, 2m, 1h; a bare number is seconds. Sizes: 1048576, 64k, 10M, 1G
 * (powers of 1024). Booleans: 1/0, true/false, on/off, yes/no.
 * S3 credentials and endpoint come from the AWS_* variables and the replica URL's query (see
 * lib/replica.h), not from here.
 *
 * Pure parsing: nothing here opens anything. Threads: none.
 */
#ifndef VFS_CONFIG_H
#define VFS_CONFIG_H

#include <stdint.h>

#include "error.h"

typedef enum vconf_log_level {
    VCONF_LOG_ERROR = 0,
    VCONF_LOG_WARN,
    VCONF_LOG_INFO,
    VCONF_LOG_DEBUG
} vconf_log_level;

#define VCONF_PATH_MAX 1024

typedef struct vconf {
    char replica[2048];
    int64_t poll_interval_ms;
    uint64_t cache_size;
    int64_t open_timeout_ms;
    int64_t retry_timeout_ms;
    int write;
    int64_t sync_interval_ms;    /* -1: ship on close (and litestream_sync()) only */
    char buffer[VCONF_PATH_MAX]; /* "" until vconf_load fills in the default */
    uint64_t buffer_max;
    int64_t lease_ttl_ms;
    int compaction;
    int64_t level_interval_ms[4]; /* [1..3] */
    int64_t snapshot_interval_ms, retention_ms, l0_retention_ms;
    char hydration[VCONF_PATH_MAX];
    int hydration_keep;
    vconf_log_level log_level;
} vconf;

/*
 * Looks a setting up by its URI parameter name; returns NULL when absent. The VFS passes one
 * built on sqlite3_uri_parameter; tests pass their own.
 */
typedef const char *(*vconf_lookup_fn)(void *ctx, const char *name);

/*
 * Fills c from the defaults, then the environment, then uri (may be NULL). LV_EINVAL with err
 * naming the setting and the bad value ("LITESTREAM_CACHE_SIZE=10X: ..."). A missing replica URL
 * is an error too.
 */
lv_err vconf_load(vconf *c, vconf_lookup_fn uri, void *uri_ctx, char *err);

/* The parsers, shared with the pragmas. */
lv_err vconf_parse_duration(const char *s, int64_t *ms, char *err);
lv_err vconf_parse_size(const char *s, uint64_t *bytes, char *err);
lv_err vconf_parse_bool(const char *s, int *v, char *err);
lv_err vconf_parse_log_level(const char *s, vconf_log_level *v, char *err);

#endif
