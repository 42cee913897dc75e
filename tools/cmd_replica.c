/*
 * cmd_replica: the ltxctl commands over a replica (lib/replica.h): ls, import, verify URL, and
 * what every replica command shares (opening a replica with --timeout, telling a replica argument
 * from a file, the dispatch of verify and compact between their file and replica forms).
 *
 * Credentials and the endpoint come from the environment as the AWS tools read them
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL)
 * and from the URL's query (?endpoint=...&region=...), which wins. --timeout bounds the retries
 * of every request (the S3 client's retry_total_ms).
 *
 * Threads: single-threaded, except what lib/restore.c starts and joins inside a call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "ltx.h"
#include "restore.h"

typedef unsigned long long ull;

/* ---- shared ------------------------------------------------------------------------------ */

int rcmd_is_replica(const char *arg)
{
    const char *colon = strstr(arg, "://");
    if (colon && colon > arg) {
        for (const char *p = arg; p < colon; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9' && p > arg) || *p == '+' || *p == '-' || *p == '.'))
                return 0;
        return 1;
    }
    size_t n = strlen(arg);
    char *ltx = lv_malloc(n + 5);
    if (!ltx)
        return 0;
    memcpy(ltx, arg, n);
    memcpy(ltx + n, "/ltx", 5);
    struct stat st;
    int yes =
        stat(arg, &st) == 0 && S_ISDIR(st.st_mode) && stat(ltx, &st) == 0 && S_ISDIR(st.st_mode);
    lv_free(ltx);
    return yes;
}

int rcmd_open(const char *cmd, const char *url, const char *timeout, replica **out)
{
    char err[LV_ERRLEN] = "";
    int64_t ms;
    *out = NULL;
    if (!timeout)
        timeout = RCMD_DEFAULT_TIMEOUT;
    if (cli_parse_duration(timeout, &ms) != 0 || ms <= 0 || ms > 86400000)
        return cli_usage_error(cmd, "bad --timeout \"%s\": want a duration such as 30s or 2m",
                               timeout);
    s3_config cfg;
    s3_config_init(&cfg);
    s3_config_from_env(&cfg);
    cfg.retry_total_ms = (unsigned)ms;
    /* No single attempt may outlast the whole bound. */
    if (cfg.connect_timeout_ms > ms)
        cfg.connect_timeout_ms = (unsigned)ms;
    if (cfg.stall_timeout_ms > ms)
        cfg.stall_timeout_ms = (unsigned)ms;
    replica_options ro = {&cfg};
    if (replica_open(url, &ro, out, err) != LV_OK) {
        cli_error(cmd, url, "%s", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

void rcmd_key(replica *r, const replica_file *f, char *out, size_t cap)
{
    lv_buf b;
    lv_buf_init(&b);
    replica_file_key(r, f->level, f->min_txid, f->max_txid, &b);
    snprintf(out, cap, "%s", b.data && !b.oom ? b.data : "?");
    lv_buf_free(&b);
}

static int any_replica_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-' && rcmd_is_replica(argv[i]))
            return 1;
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-help") == 0 ||
            strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

/* ---- ls ---------------------------------------------------------------------------------- */

/* s as a JSON string body (quotes, backslashes and control characters escaped). */
static void json_str(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
}

static const char ls_usage[] =
    "Usage: ltxctl ls URL [--level N] [--json] [--timeout DUR]\n"
    "\n"
    "Lists the LTX files of a replica, level by level (0 one file per sync, 1..3 compactions,\n"
    "9 snapshots): level, TXID range, size in bytes, and time (the object's LastModified, or\n"
    "the file's mtime, which Litestream sets to the header timestamp), then a line per level.\n"
    "\n"
    "URL: s3://bucket/prefix[?endpoint=URL&region=R&force-path-style=true], file:///dir, or a\n"
    "directory holding ltx/. Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
    "AWS_SESSION_TOKEN, AWS_REGION and AWS_ENDPOINT_URL; the URL's query wins.\n"
    "\n"
    "Flags:\n"
    "  --level N      only level N (0..9)\n"
    "  --json         one JSON document instead of the table\n"
    "  --timeout DUR  give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -h, --help     show this help\n";

static int parse_level(const char *s, int *level)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > REPLICA_MAX_LEVEL)
        return -1;
    *level = (int)v;
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    static const char cmd[] = "ls";
    const char *level_arg = NULL, *timeout = NULL;
    int json = 0, npos, level = -1;
    const cli_flag flags[] = {{"level", NULL, CLI_FLAG_STRING, NULL, &level_arg},
                              {"json", NULL, CLI_FLAG_BOOL, &json, NULL},
                              {"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "", key[LV_ERRLEN], when[CLI_TIME_LEN];
    replica *r = NULL;
    replica_file *files = NULL;
    size_t n = 0;

    int rc = cli_parse(cmd, ls_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing URL" : "too many arguments");
    if (level_arg && parse_level(level_arg, &level) != 0)
        return cli_usage_error(cmd, "bad --level \"%s\": want 0..9", level_arg);
    if ((rc = rcmd_open(cmd, argv[0], timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (replica_list(r, level, &files, &n, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    if (json) {
        printf("{\"replica\":\"");
        json_str(replica_describe(r));
        printf("\",\"files\":[");
        for (size_t i = 0; i < n; i++) {
            rcmd_key(r, &files[i], key, sizeof key);
            cli_format_time(files[i].created_ms, 1, when);
            printf("%s\n{\"level\":%d,\"min_txid\":\"%016llx\",\"max_txid\":\"%016llx\","
                   "\"size\":%llu,\"created\":\"%s\",\"created_ms\":%lld,\"key\":\"",
                   i ? "," : "", files[i].level, (ull)files[i].min_txid, (ull)files[i].max_txid,
                   (ull)files[i].size, when, (long long)files[i].created_ms);
            json_str(key);
            printf("\"}");
        }
        printf("]}\n");
    } else {
        printf("%-5s  %-16s  %-16s  %12s  %s\n", "level", "min_txid", "max_txid", "size",
               "created");
        for (size_t i = 0; i < n; i++) {
            cli_format_time(files[i].created_ms, 1, when);
            printf("%-5d  %016llx  %016llx  %12llu  %s\n", files[i].level, (ull)files[i].min_txid,
                   (ull)files[i].max_txid, (ull)files[i].size, when);
        }
        /* One summary line per level that has files. */
        for (size_t i = 0; i < n;) {
            size_t k = i;
            uint64_t bytes = 0;
            while (k < n && files[k].level == files[i].level)
                bytes += files[k++].size;
            printf("# level %d: %zu file%s, TXID %016llx-%016llx, %llu bytes\n", files[i].level,
                   k - i, k - i == 1 ? "" : "s", (ull)files[i].min_txid, (ull)files[k - 1].max_txid,
                   (ull)bytes);
            i = k;
        }
        if (n == 0)
            printf("# no LTX files in %s\n", replica_describe(r));
    }
    rc = CLI_OK;
done:
    lv_free(files);
    replica_close(r);
    return cli_finish(cmd, rc);
}

/* ---- import ------------------------------------------------------------------------------ */

static const char import_usage[] =
    "Usage: ltxctl import [--force] [--timeout DUR] DB URL\n"
    "\n"
    "Makes a SQLite database file the content of a replica: a snapshot at level 9 with every\n"
    "page of the database and its checksums (TXID 1-1 in an empty replica), which ltxctl\n"
    "restore, our VFS and Litestream read. The upload is conditional (S3 If-None-Match: *), so\n"
    "of two imports racing for one replica only one lands.\n"
    "\n"
    "A replica that already holds files is refused unless --force; then the snapshot covers\n"
    "TXIDs 1 to the replica's newest TXID + 1 and becomes the state restores start from.\n"
    "The database must be quiescent, with no uncheckpointed -wal file.\n"
    "\n"
    "Flags:\n"
    "  --force        add the snapshot to a replica that already holds files\n"
    "  --timeout DUR  give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -h, --help     show this help\n";

static int wal_pending(const char *db)
{
    size_t n = strlen(db);
    char *wal = lv_malloc(n + sizeof "-wal");
    struct stat st;
    int pending = 0;
    if (!wal)
        return 0;
    memcpy(wal, db, n);
    memcpy(wal + n, "-wal", sizeof "-wal");
    if (stat(wal, &st) == 0 && st.st_size > 0)
        pending = 1;
    lv_free(wal);
    return pending;
}

lv_err rcmd_buf_write(void *ctx, const void *p, size_t n, char *err)
{
    lv_buf_append(ctx, p, n);
    return lv_buf_ok(ctx, err);
}

lv_err rcmd_encode_snapshot(int fd, uint64_t max_txid, int64_t ts, lv_buf *out, ltx_header *h,
                            ltx_trailer *t, char *err)
{
    uint32_t ps, count;
    ltx_encoder *e = NULL;
    uint8_t *buf = NULL;
    lv_err rc = ltx_db_geometry(fd, &ps, &count, err);
    if (rc)
        return rc;
    if (count == 0)
        return lv_fail(err, LV_EINVAL, "the database is empty: nothing to import");
    ltx_header hdr = {
        .page_size = ps, .commit = count, .min_txid = 1, .max_txid = max_txid, .timestamp = ts};
    uint32_t per = (1u << 20) / ps ? (1u << 20) / ps : 1, lock = ltx_lock_pgno(ps);
    buf = lv_malloc((size_t)per * ps);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    if ((rc = ltx_encoder_open(&e, &hdr, rcmd_buf_write, out, err)) != LV_OK)
        goto done;
    for (uint32_t first = 1; first <= count;) {
        uint32_t k = count - first + 1 < per ? count - first + 1 : per;
        if ((rc = cli_pread_full(fd, buf, (size_t)k * ps, (uint64_t)(first - 1) * ps, err)) !=
            LV_OK)
            goto done;
        for (uint32_t i = 0; i < k; i++)
            if (first + i != lock &&
                (rc = ltx_encoder_page(e, first + i, buf + (size_t)i * ps, err)) != LV_OK)
                goto done;
        first += k;
    }
    if ((rc = ltx_encoder_finish(e, t, err)) != LV_OK)
        goto done;
    *h = hdr;
done:
    ltx_encoder_free(e);
    lv_free(buf);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    static const char cmd[] = "import";
    const char *timeout = NULL;
    int force = 0, npos, fd = -1;
    const cli_flag flags[] = {{"force", NULL, CLI_FLAG_BOOL, &force, NULL},
                              {"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "", key[LV_ERRLEN];
    replica *r = NULL;
    replica_file *files = NULL;
    size_t n = 0;
    lv_buf out;
    ltx_header h;
    ltx_trailer t;
    lv_buf_init(&out);

    int rc = cli_parse(cmd, import_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 2)
        return cli_usage_error(cmd, npos < 2 ? "want DB and URL" : "too many arguments");
    const char *db = argv[0], *url = argv[1];
    if ((rc = rcmd_open(cmd, url, timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (wal_pending(db)) {
        cli_error(cmd, db,
                  "the database is in WAL mode with uncheckpointed frames (%s-wal is not "
                  "empty); checkpoint first (sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)')",
                  db, db);
        goto done;
    }
    if ((fd = cli_open(db, O_RDONLY, err)) < 0) {
        cli_error(cmd, db, "%s", err);
        goto done;
    }
    if (replica_list(r, -1, &files, &n, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (files[i].max_txid > top)
            top = files[i].max_txid;
    if (n > 0 && !force) {
        cli_error(cmd, replica_describe(r),
                  "the replica is not empty (%zu files, up to TXID %016llx); --force adds the "
                  "database as a snapshot at TXID %016llx",
                  n, (ull)top, (ull)(top + 1));
        goto done;
    }
    if (rcmd_encode_snapshot(fd, top + 1, cli_now_ms(), &out, &h, &t, err) != LV_OK) {
        cli_error(cmd, db, "%s", err);
        goto done;
    }
    replica_file f = {REPLICA_SNAPSHOT_LEVEL, 1, top + 1, out.len, h.timestamp};
    rcmd_key(r, &f, key, sizeof key);
    lv_err e = replica_write(r, REPLICA_SNAPSHOT_LEVEL, out.data, out.len, 1, err);
    if (e == LV_ECONFLICT) {
        cli_error(cmd, replica_describe(r),
                  "%s already exists: another import or writer got there first (%s)", key, err);
        goto done;
    }
    if (e != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    printf("%s: imported as %s: TXID %016llx-%016llx, %u pages of %u bytes, checksum %016llx, "
           "%zu bytes\n",
           db, key, 1ull, (ull)h.max_txid, h.commit, h.page_size, (ull)t.post_apply_checksum,
           out.len);
    rc = CLI_OK;
done:
    if (fd >= 0)
        close(fd);
    lv_buf_free(&out);
    lv_free(files);
    replica_close(r);
    return cli_finish(cmd, rc);
}

/* ---- verify URL -------------------------------------------------------------------------- */

static const char verify_usage[] =
    "Usage: ltxctl verify [--timeout DUR] URL\n"
    "\n"
    "Downloads every LTX file of a replica and verifies each completely (header rules, frames,\n"
    "page index, trailer, file checksum; the header's TXIDs against the name), then checks that\n"
    "the files of each level 0..3 follow each other without a gap, and the chain of the restore\n"
    "plan (TXIDs continue; where checksums are tracked, each file's pre-apply checksum is the\n"
    "previous one's post-apply). Prints \"KEY: ok\" per good file and a summary; the exit status\n"
    "is 1 if anything is wrong, with a line naming each bad file.\n"
    "\n"
    "Flags:\n"
    "  --timeout DUR  give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -h, --help     show this help\n";

int cmd_replica_verify(int argc, char **argv)
{
    static const char cmd[] = "verify";
    const char *timeout = NULL;
    int npos;
    const cli_flag flags[] = {{"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout}, CLI_FLAG_END};
    char err[LV_ERRLEN] = "", key[LV_ERRLEN], prev[LV_ERRLEN];
    replica *r = NULL;
    replica_file *files = NULL;
    restore_file_check *checks = NULL;
    replica_plan plan = {NULL, 0, 0};
    ltx_header *hs = NULL;
    ltx_trailer *ts = NULL;
    size_t n = 0, bad = 0;

    int rc = cli_parse(cmd, verify_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing URL" : "too many arguments");
    if ((rc = rcmd_open(cmd, argv[0], timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (replica_list(r, -1, &files, &n, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    if (n == 0) {
        cli_error(cmd, replica_describe(r), "no LTX files");
        goto done;
    }
    checks = lv_calloc(n, sizeof *checks);
    if (!checks) {
        cli_error(cmd, NULL, "out of memory");
        goto done;
    }
    if (restore_verify_files(r, files, n, NULL, checks, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        rcmd_key(r, &files[i], key, sizeof key);
        if (checks[i].rc == LV_OK) {
            printf("%s: ok\n", key);
        } else {
            cli_error(cmd, key, "%s", checks[i].err);
            bad++;
        }
    }
    /* Each compaction level is one run of TXIDs, without gaps or overlaps. */
    for (size_t i = 1; i < n; i++) {
        if (files[i].level != files[i - 1].level || files[i].level == REPLICA_SNAPSHOT_LEVEL)
            continue;
        if (files[i].min_txid != files[i - 1].max_txid + 1) {
            rcmd_key(r, &files[i], key, sizeof key);
            rcmd_key(r, &files[i - 1], prev, sizeof prev);
            cli_error(cmd, key,
                      "level %d is not contiguous: it starts at TXID %016llx but %s "
                      "ends at %016llx",
                      files[i].level, (ull)files[i].min_txid, prev, (ull)files[i - 1].max_txid);
            bad++;
        }
    }
    /* The chain of the latest plan, from the headers just verified. */
    replica_target latest = {0, 0};
    if (replica_plan_restore(files, n, &latest, &plan, err) != LV_OK) {
        cli_error(cmd, replica_describe(r), "restore plan: %s", err);
        bad++;
    } else {
        hs = lv_calloc(plan.n, sizeof *hs);
        ts = lv_calloc(plan.n, sizeof *ts);
        int complete = hs && ts;
        for (size_t k = 0; complete && k < plan.n; k++) {
            size_t i = 0;
            while (i < n && !(files[i].level == plan.files[k].level &&
                              files[i].min_txid == plan.files[k].min_txid &&
                              files[i].max_txid == plan.files[k].max_txid))
                i++;
            if (i == n || checks[i].rc != LV_OK) {
                complete = 0;
                break;
            }
            hs[k] = checks[i].header;
            ts[k] = checks[i].trailer;
        }
        if (!complete) {
            if (bad == 0) {
                cli_error(cmd, replica_describe(r), "restore plan: could not be checked");
                bad++;
            }
        } else if (restore_check_chain(r, plan.files, hs, ts, plan.n, err) != LV_OK) {
            cli_error(cmd, replica_describe(r), "restore plan: %s", err);
            bad++;
        } else {
            printf("restore plan: %zu file%s up to TXID %016llx: ok\n", plan.n,
                   plan.n == 1 ? "" : "s", (ull)plan.max_txid);
        }
    }
    if (bad == 0) {
        printf("%s: %zu files verified: ok\n", replica_describe(r), n);
        rc = CLI_OK;
    } else {
        printf("%s: %zu files, %zu problem%s\n", replica_describe(r), n, bad, bad == 1 ? "" : "s");
    }
done:
    lv_free(hs);
    lv_free(ts);
    lv_free(plan.files);
    lv_free(checks);
    lv_free(files);
    replica_close(r);
    return cli_finish(cmd, rc);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int cmd_verify_any(int argc, char **argv)
{
    if (any_replica_arg(argc, argv))
        return cmd_replica_verify(argc, argv);
    if (wants_help(argc, argv)) {
        int rc = cmd_verify(argc, argv);
        fputs("\nOr, over a replica:\n\n", stdout);
        fputs(verify_usage, stdout);
        return cli_finish("verify", rc);
    }
    return cmd_verify(argc, argv);
}

int cmd_compact_any(int argc, char **argv)
{
    if (any_replica_arg(argc, argv))
        return cmd_replica_compact(argc, argv);
    if (wants_help(argc, argv)) {
        int rc = cmd_compact(argc, argv);
        fputs("\nOr, over a replica:\n\n", stdout);
        static char help[] = "--help";
        char *hv[] = {argv[0], help, NULL};
        cmd_replica_compact(2, hv);
        return cli_finish("compact", rc);
    }
    return cmd_compact(argc, argv);
}
