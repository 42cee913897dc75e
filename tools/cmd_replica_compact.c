/*
 * cmd_replica_compact: `ltxctl compact URL`, one pass of what Litestream's Store does to a
 * replica over time (reference: litestream-vfs-behavior.md 1.2 and 1.4):
 *
 *   1. compaction L0->L1, L1->L2, L2->L3: the files of level dst-1 newer than dst's max TXID are
 *      merged with ltx_compact into one file "<min>-<max>.ltx" at dst, written conditionally
 *      (If-None-Match: *), when dst is due: it has no file yet, or its newest file was created
 *      before now truncated to the level's interval (30s, 5m, 1h by default);
 *   2. a snapshot at level 9 (the latest state restored and encoded as TXID 1..max) when the
 *      newest snapshot is older than the snapshot interval (24h) or --snapshot, and it would
 *      reach further than the newest snapshot;
 *   3. retention: L0 files covered by L1 and older than the L0 retention (5m), walking in order
 *      and stopping at the first younger file, never the newest L0 file; snapshots older than the
 *      retention (24h) except the newest, and then in levels 1..3 the files below the newest
 *      deleted snapshot's TXID, keeping each level's last file.
 *
 * Every step prints one line saying what it did or why not. --dry-run prints the same without
 * writing or deleting (and without downloading). --now pretends the clock reads T.
 *
 * Threads: single-threaded (restore.c's threads live inside restore_run).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "ltx.h"
#include "restore.h"

typedef unsigned long long ull;

static const char compact_usage[] =
    "Usage: ltxctl compact URL [--level N] [--snapshot] [--retention DUR] [--l0-retention DUR]\n"
    "                          [--l1-interval DUR] [--l2-interval DUR] [--l3-interval DUR]\n"
    "                          [--snapshot-interval DUR] [--now T] [--dry-run] [--timeout DUR]\n"
    "\n"
    "One pass of Litestream's compaction over a replica: L0->L1, L1->L2, L2->L3 (each merges\n"
    "the files of the level below that are newer than the level's newest TXID, when the level\n"
    "is due), then a snapshot at level 9 when the newest is older than the snapshot interval,\n"
    "then retention. Prints a line per step.\n"
    "\n"
    "Flags:\n"
    "  --level N               only compact into level N (1..3), due or not; no snapshot,\n"
    "                          no retention\n"
    "  --snapshot              write a snapshot whatever its interval\n"
    "  --retention DUR         delete snapshots older than DUR, keeping the newest, and\n"
    "                          compactions below them (default 24h; 0: keep everything)\n"
    "  --l0-retention DUR      delete L0 files covered by L1 once older than DUR (default 5m;\n"
    "                          0: keep them)\n"
    "  --l1-interval DUR       how often L1 is due (default 30s; 0: always)\n"
    "  --l2-interval DUR       how often L2 is due (default 5m)\n"
    "  --l3-interval DUR       how often L3 is due (default 1h)\n"
    "  --snapshot-interval DUR how often a snapshot is due (default 24h)\n"
    "  --now T                 the time to decide with (RFC 3339 or ms since the epoch;\n"
    "                          default: the clock)\n"
    "  --dry-run               say what would be done, do nothing\n"
    "  --timeout DUR           give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -h, --help              show this help\n";

typedef struct fileset {
    replica_file *v;
    size_t n, cap;
} fileset;

static int set_add(fileset *s, const replica_file *f)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        replica_file *v = lv_realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *f;
    return 0;
}

static void set_remove(fileset *s, const replica_file *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].level == f->level && s->v[i].min_txid == f->min_txid &&
            s->v[i].max_txid == f->max_txid) {
            memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
            s->n--;
            return;
        }
}

/* The files of one level, in TXID order (the set is kept in listing order: level, then TXIDs). */
static size_t level_files(const fileset *s, int level, const replica_file **out)
{
    size_t first = 0, n = 0;
    while (first < s->n && s->v[first].level != level)
        first++;
    while (first + n < s->n && s->v[first + n].level == level)
        n++;
    *out = s->v + first;
    return n;
}

static void set_sort(fileset *s);

/* Whole files into bufs[i] (restarts handled). */
typedef struct fetch_ctx {
    lv_buf *bufs;
} fetch_ctx;

static int fetch_sink(void *ctx, size_t which, const void *data, size_t len, int restart)
{
    fetch_ctx *f = ctx;
    if (restart)
        lv_buf_reset(&f->bufs[which]);
    lv_buf_append(&f->bufs[which], data, len);
    return f->bufs[which].oom;
}

static int cmp_file(const void *a, const void *b)
{
    const replica_file *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    if (x->min_txid != y->min_txid)
        return x->min_txid < y->min_txid ? -1 : 1;
    if (x->max_txid != y->max_txid)
        return x->max_txid < y->max_txid ? -1 : 1;
    return 0;
}

static void set_sort(fileset *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_file);
}

static int64_t truncate_time(int64_t now, int64_t interval)
{
    if (interval <= 0)
        return now;
    int64_t q = now / interval;
    if (now % interval < 0)
        q--;
    return q * interval;
}

typedef struct settings {
    int dry_run;
    int64_t now;
    int64_t interval[4]; /* [1..3] */
    int64_t snapshot_interval, retention, l0_retention;
} settings;

/* Merges the due files of level dst-1 into dst. Returns CLI_OK or CLI_FAIL (reported). */
static int compact_level(const char *cmd, replica *r, fileset *set, int dst, int forced,
                         const settings *cfg)
{
    const replica_file *src, *dfiles;
    size_t nsrc = level_files(set, dst - 1, &src), ndst = level_files(set, dst, &dfiles);
    uint64_t dst_max = 0;
    int64_t newest = 0;
    char err[LV_ERRLEN] = "", key[LV_ERRLEN], when[CLI_TIME_LEN];
    for (size_t i = 0; i < ndst; i++) {
        if (dfiles[i].max_txid > dst_max)
            dst_max = dfiles[i].max_txid;
        if (dfiles[i].created_ms > newest)
            newest = dfiles[i].created_ms;
    }
    size_t first = 0;
    while (first < nsrc && src[first].min_txid <= dst_max)
        first++;
    size_t n = nsrc - first;
    if (n == 0) {
        printf("L%d -> L%d: nothing new to compact\n", dst - 1, dst);
        return CLI_OK;
    }
    int64_t boundary = truncate_time(cfg->now, cfg->interval[dst]);
    if (!forced && ndst > 0 && newest >= boundary && cfg->interval[dst] > 0) {
        cli_format_time(boundary + cfg->interval[dst], 0, when);
        printf("L%d -> L%d: not due (%zu file%s waiting; next at %s)\n", dst - 1, dst, n,
               n == 1 ? "" : "s", when);
        return CLI_OK;
    }
    /* The inputs must follow each other (and the level they go to). */
    replica_file *in = lv_malloc(n * sizeof *in);
    if (!in) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    memcpy(in, src + first, n * sizeof *in);
    for (size_t i = 0; i < n; i++) {
        uint64_t want = i ? in[i - 1].max_txid + 1 : dst_max + 1;
        if (in[i].min_txid != want && (i > 0 || dst_max > 0)) {
            rcmd_key(r, &in[i], key, sizeof key);
            cli_error(cmd, key, "L%d has a gap: the file starts at TXID %016llx, expected %016llx",
                      dst - 1, (ull)in[i].min_txid, (ull)want);
            lv_free(in);
            return CLI_FAIL;
        }
    }
    replica_file out = {dst, in[0].min_txid, in[n - 1].max_txid, 0, cfg->now};
    rcmd_key(r, &out, key, sizeof key);
    if (cfg->dry_run) {
        printf("L%d -> L%d: would compact %zu file%s into %s\n", dst - 1, dst, n, n == 1 ? "" : "s",
               key);
        lv_free(in);
        return set_add(set, &out) == 0 ? (set_sort(set), CLI_OK) : CLI_FAIL;
    }

    int rc = CLI_FAIL;
    lv_buf *bufs = lv_calloc(n, sizeof *bufs);
    ltx_source *srcs = lv_calloc(n, sizeof *srcs);
    ltx_mem_reader *readers = lv_calloc(n, sizeof *readers);
    char **names = lv_calloc(n, sizeof *names);
    lv_buf merged;
    lv_buf_init(&merged);
    ltx_header h;
    if (!bufs || !srcs || !readers || !names) {
        cli_error(cmd, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        lv_buf_init(&bufs[i]);
    fetch_ctx fc = {bufs};
    if (replica_fetch(r, in, n, fetch_sink, &fc, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "L%d -> L%d: %s", dst - 1, dst, err);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char k[LV_ERRLEN];
        rcmd_key(r, &in[i], k, sizeof k);
        names[i] = lv_malloc(strlen(k) + 1);
        if (!names[i]) {
            cli_error(cmd, NULL, "out of memory");
            goto done;
        }
        strcpy(names[i], k);
        readers[i] = (ltx_mem_reader){(const uint8_t *)bufs[i].data, bufs[i].len, 0};
        srcs[i] = (ltx_source){ltx_mem_read, &readers[i], names[i]};
    }
    {
        lv_err e = ltx_compact(srcs, n, rcmd_buf_write, &merged, &h, NULL, err);
        if (e != LV_OK) {
            cli_error(cmd, key, "compaction failed: %s", err);
            goto done;
        }
        e = replica_write(r, dst, merged.data, merged.len, 1, err);
        if (e == LV_ECONFLICT) {
            cli_error(cmd, key, "already exists: another compactor got there first (%s)", err);
            goto done;
        }
        if (e != LV_OK) {
            cli_error(cmd, key, "%s", err);
            goto done;
        }
    }
    out.size = merged.len;
    printf("L%d -> L%d: compacted %zu file%s (TXID %016llx-%016llx) into %s, %zu bytes\n", dst - 1,
           dst, n, n == 1 ? "" : "s", (ull)out.min_txid, (ull)out.max_txid, key, merged.len);
    if (set_add(set, &out) != 0) {
        cli_error(cmd, NULL, "out of memory");
        goto done;
    }
    set_sort(set);
    rc = CLI_OK;
done:
    for (size_t i = 0; bufs && i < n; i++)
        lv_buf_free(&bufs[i]);
    for (size_t i = 0; names && i < n; i++)
        lv_free(names[i]);
    lv_free(bufs);
    lv_free(srcs);
    lv_free(readers);
    lv_free(names);
    lv_free(in);
    lv_buf_free(&merged);
    return rc;
}

/* A snapshot of the latest state at level 9, when due. */
static int snapshot_step(const char *cmd, replica *r, fileset *set, int forced, const settings *cfg)
{
    const replica_file *snaps;
    size_t ns = level_files(set, REPLICA_SNAPSHOT_LEVEL, &snaps);
    char err[LV_ERRLEN] = "", key[LV_ERRLEN], when[CLI_TIME_LEN];
    uint64_t top = 0;
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].max_txid > top)
            top = set->v[i].max_txid;
    if (top == 0) {
        printf("snapshot: the replica is empty\n");
        return CLI_OK;
    }
    const replica_file *newest = ns ? &snaps[ns - 1] : NULL;
    if (newest && newest->max_txid >= top) {
        printf("snapshot: the newest snapshot already reaches TXID %016llx\n",
               (ull)newest->max_txid);
        return CLI_OK;
    }
    if (!forced && newest && cfg->now - newest->created_ms < cfg->snapshot_interval) {
        cli_format_time(newest->created_ms + cfg->snapshot_interval, 0, when);
        printf("snapshot: not due (next at %s)\n", when);
        return CLI_OK;
    }
    replica_file snap = {REPLICA_SNAPSHOT_LEVEL, 1, top, 0, cfg->now};
    rcmd_key(r, &snap, key, sizeof key);
    if (cfg->dry_run) {
        printf("snapshot: would write %s\n", key);
        return set_add(set, &snap) == 0 ? (set_sort(set), CLI_OK) : CLI_FAIL;
    }

    int rc = CLI_FAIL, fd = -1;
    lv_buf out;
    lv_buf_init(&out);
    restore_result res;
    ltx_header h;
    ltx_trailer t;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/ltxctl-snapshot-XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        cli_error(cmd, path, "create a temporary file: %s", strerror(errno));
        goto done;
    }
    unlink(path);                     /* gone when closed, whatever happens */
    replica_target at_top = {top, 0}; /* what was listed, whatever lands meanwhile */
    if (restore_run(r, &at_top, fd, NULL, &res, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "snapshot: restore: %s", err);
        goto done;
    }
    if (res.max_txid != top) {
        cli_error(cmd, replica_describe(r),
                  "snapshot: the restore reached TXID %016llx, the listing %016llx",
                  (ull)res.max_txid, (ull)top);
        goto done;
    }
    if (rcmd_encode_snapshot(fd, top, cfg->now, &out, &h, &t, err) != LV_OK) {
        cli_error(cmd, key, "snapshot: %s", err);
        goto done;
    }
    lv_err e = replica_write(r, REPLICA_SNAPSHOT_LEVEL, out.data, out.len, 1, err);
    if (e != LV_OK) {
        cli_error(cmd, key, "%s%s", e == LV_ECONFLICT ? "already exists: " : "", err);
        goto done;
    }
    snap.size = out.len;
    printf("snapshot: wrote %s, %u pages, %zu bytes\n", key, h.commit, out.len);
    if (set_add(set, &snap) != 0) {
        cli_error(cmd, NULL, "out of memory");
        goto done;
    }
    set_sort(set);
    rc = CLI_OK;
done:
    if (fd >= 0)
        close(fd);
    lv_buf_free(&out);
    return rc;
}

/* Deletes (or in a dry run, names) del[0..n), saying why. */
static int delete_files(const char *cmd, replica *r, fileset *set, replica_file *del, size_t n,
                        const char *why, const settings *cfg)
{
    char err[LV_ERRLEN] = "", key[LV_ERRLEN];
    if (n == 0)
        return CLI_OK;
    if (!cfg->dry_run && replica_delete(r, del, n, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "retention: %s", err);
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        rcmd_key(r, &del[i], key, sizeof key);
        printf("retention: %s %s (%s)\n", cfg->dry_run ? "would delete" : "deleted", key, why);
        set_remove(set, &del[i]);
    }
    return CLI_OK;
}

static int retention_step(const char *cmd, replica *r, fileset *set, const settings *cfg)
{
    int rc = CLI_FAIL;
    replica_file *del = lv_malloc((set->n + 1) * sizeof *del);
    size_t nd = 0;
    const replica_file *l0, *l1, *snaps;
    if (!del) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }

    /* L0: files L1 covers, once older than the L0 retention; stop at the first younger one,
     * so no hole opens; never the newest L0 file. */
    size_t n0 = level_files(set, 0, &l0), n1 = level_files(set, 1, &l1);
    if (cfg->l0_retention > 0 && n1 > 0) {
        uint64_t max1 = 0;
        for (size_t i = 0; i < n1; i++)
            if (l1[i].max_txid > max1)
                max1 = l1[i].max_txid;
        size_t i = 0;
        for (; i < n0; i++) {
            if (l0[i].created_ms > cfg->now - cfg->l0_retention)
                break;
            if (l0[i].max_txid <= max1)
                del[nd++] = l0[i];
        }
        if (i == n0 && nd > 0 && del[nd - 1].max_txid == l0[n0 - 1].max_txid)
            nd--;
    }
    if (delete_files(cmd, r, set, del, nd, "L0, covered by L1", cfg) != CLI_OK)
        goto done;
    nd = 0;

    /* Snapshots older than the retention, always keeping the newest; then what they covered in
     * levels 1..3, keeping each level's last file. */
    size_t ns = level_files(set, REPLICA_SNAPSHOT_LEVEL, &snaps);
    uint64_t floor = 0;
    if (cfg->retention > 0) {
        for (size_t i = 0; i + 1 < ns; i++)
            if (snaps[i].created_ms < cfg->now - cfg->retention) {
                del[nd++] = snaps[i];
                if (snaps[i].max_txid > floor)
                    floor = snaps[i].max_txid;
            }
    }
    if (delete_files(cmd, r, set, del, nd, "snapshot older than the retention", cfg) != CLI_OK)
        goto done;
    nd = 0;
    if (floor > 0) {
        for (int level = 1; level < REPLICA_SNAPSHOT_LEVEL; level++) {
            const replica_file *lf;
            size_t n = level_files(set, level, &lf);
            for (size_t i = 0; i + 1 < n; i++)
                if (lf[i].max_txid < floor)
                    del[nd++] = lf[i];
        }
    }
    if (delete_files(cmd, r, set, del, nd, "below the oldest snapshot kept", cfg) != CLI_OK)
        goto done;
    rc = CLI_OK;
done:
    lv_free(del);
    return rc;
}

static int parse_dur_flag(const char *cmd, const char *name, const char *arg, int64_t *ms)
{
    if (!arg)
        return CLI_OK;
    if (cli_parse_duration(arg, ms) != 0)
        return cli_usage_error(cmd, "bad --%s \"%s\": want a duration such as 30s, 5m or 24h", name,
                               arg);
    return CLI_OK;
}

int cmd_replica_compact(int argc, char **argv)
{
    static const char cmd[] = "compact";
    const char *level_arg = NULL, *ret_arg = NULL, *l0_arg = NULL, *i1 = NULL, *i2 = NULL,
               *i3 = NULL, *snap_arg = NULL, *now_arg = NULL, *timeout = NULL;
    int snapshot = 0, dry_run = 0, npos, level = 0;
    const cli_flag flags[] = {{"level", NULL, CLI_FLAG_STRING, NULL, &level_arg},
                              {"snapshot", NULL, CLI_FLAG_BOOL, &snapshot, NULL},
                              {"retention", NULL, CLI_FLAG_STRING, NULL, &ret_arg},
                              {"l0-retention", NULL, CLI_FLAG_STRING, NULL, &l0_arg},
                              {"l1-interval", NULL, CLI_FLAG_STRING, NULL, &i1},
                              {"l2-interval", NULL, CLI_FLAG_STRING, NULL, &i2},
                              {"l3-interval", NULL, CLI_FLAG_STRING, NULL, &i3},
                              {"snapshot-interval", NULL, CLI_FLAG_STRING, NULL, &snap_arg},
                              {"now", NULL, CLI_FLAG_STRING, NULL, &now_arg},
                              {"dry-run", NULL, CLI_FLAG_BOOL, &dry_run, NULL},
                              {"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "";
    replica *r = NULL;
    fileset set = {NULL, 0, 0};
    settings cfg = {0, 0, {0, 30000, 5 * 60000, 3600000}, 24 * 3600000, 24 * 3600000, 5 * 60000};

    int rc = cli_parse(cmd, compact_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing URL" : "too many arguments");
    if (level_arg) {
        char *end;
        long v = strtol(level_arg, &end, 10);
        if (*end || v < 1 || v > 3)
            return cli_usage_error(cmd, "bad --level \"%s\": want 1..3", level_arg);
        level = (int)v;
    }
    if ((rc = parse_dur_flag(cmd, "retention", ret_arg, &cfg.retention)) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l0-retention", l0_arg, &cfg.l0_retention)) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l1-interval", i1, &cfg.interval[1])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l2-interval", i2, &cfg.interval[2])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l3-interval", i3, &cfg.interval[3])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "snapshot-interval", snap_arg, &cfg.snapshot_interval)) != CLI_OK)
        return rc;
    cfg.dry_run = dry_run;
    cfg.now = cli_now_ms();
    if (now_arg && cli_parse_time(now_arg, &cfg.now) != 0)
        return cli_usage_error(cmd, "bad --now \"%s\": want RFC 3339 or ms since the epoch",
                               now_arg);
    if ((rc = rcmd_open(cmd, argv[0], timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (replica_list(r, -1, &set.v, &set.n, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    set.cap = set.n;
    for (int dst = 1; dst <= 3; dst++) {
        if (level && dst != level)
            continue;
        if (compact_level(cmd, r, &set, dst, level == dst, &cfg) != CLI_OK)
            goto done;
    }
    if (!level) {
        if (snapshot_step(cmd, r, &set, snapshot, &cfg) != CLI_OK)
            goto done;
        if (retention_step(cmd, r, &set, &cfg) != CLI_OK)
            goto done;
    }
    rc = CLI_OK;
done:
    lv_free(set.v);
    replica_close(r);
    return cli_finish(cmd, rc);
}
