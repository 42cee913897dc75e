/*
 * cmd_restore: `ltxctl restore URL -o DB`, the database of a replica at its latest state, a TXID
 * or a time, through lib/restore.h (parallel downloads, streaming merge, chain and checksum
 * verification).
 *
 * The output appears whole or not at all: restore_run writes a temp file beside DB (cli_out),
 * which is fsynced and renamed over DB only when everything checked out; on an error, or on
 * SIGINT, SIGTERM, SIGHUP or SIGPIPE meanwhile, the temp file is removed. A progress bar goes to
 * stderr when stderr is a terminal.
 *
 * Threads: the progress callback runs on the main thread (restore.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "restore.h"

typedef unsigned long long ull;

static const char restore_usage[] =
    "Usage: ltxctl restore URL -o DB [--txid N | --timestamp T] [--force] [--timeout DUR]\n"
    "\n"
    "Rebuilds the database of a replica: lists every level, plans (the newest snapshot, then the\n"
    "files that continue it), downloads every file of the plan at once, verifies each file's\n"
    "checksum and the chain (TXIDs continue; tracked pre-/post-apply checksums agree; the\n"
    "result's checksum is the last file's post-apply), and writes DB. DB appears complete or\n"
    "not at all. An existing DB is refused unless --force.\n"
    "\n"
    "Flags:\n"
    "  -o DB            the database file to write (required)\n"
    "  --txid N         the state at TXID N (hex, as ls prints it: 2, 0000000000000002)\n"
    "  --timestamp T    the last state created at or before T (header timestamps): RFC 3339\n"
    "                   (2026-01-02T03:04:05Z), a date, now, yesterday, \"2 hours ago\",\n"
    "                   or milliseconds since the epoch\n"
    "  --force          replace an existing DB\n"
    "  --concurrency N  files downloaded at once (default 32)\n"
    "  --timeout DUR    give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -q               print nothing on success\n"
    "  -h, --help       show this help\n";

typedef struct bar {
    int on;
    int64_t start, last;
} bar;

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    bar *b = ctx;
    int64_t now = cli_mono_ms();
    if (!b->on || (now - b->last < 100 && done < total))
        return;
    b->last = now;
    double secs = (double)(now - b->start) / 1000.0;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    char line[width + 1];
    for (int i = 0; i < width; i++)
        line[i] = i < fill ? '#' : ' ';
    line[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f MB %.1f MB/s ", line,
            total ? (int)(done * 100 / total) : 100, (double)done / 1e6, (double)total / 1e6,
            secs > 0 ? (double)done / 1e6 / secs : 0.0);
}

static int parse_txid(const char *s, uint64_t *out)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n)
        return -1;
    *out = strtoull(s, NULL, 16);
    return *out == 0 ? -1 : 0;
}

int cmd_restore(int argc, char **argv)
{
    static const char cmd[] = "restore";
    const char *out_path = NULL, *txid_arg = NULL, *ts_arg = NULL, *timeout = NULL,
               *conc_arg = NULL;
    int force = 0, quiet = 0, npos;
    const cli_flag flags[] = {{"o", NULL, CLI_FLAG_STRING, NULL, &out_path},
                              {"txid", NULL, CLI_FLAG_STRING, NULL, &txid_arg},
                              {"timestamp", NULL, CLI_FLAG_STRING, NULL, &ts_arg},
                              {"force", NULL, CLI_FLAG_BOOL, &force, NULL},
                              {"concurrency", NULL, CLI_FLAG_STRING, NULL, &conc_arg},
                              {"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout},
                              {"q", NULL, CLI_FLAG_BOOL, &quiet, NULL},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "";
    replica *r = NULL;
    cli_out out = {-1, NULL, NULL, 0};
    replica_target target = {0, 0};
    restore_options o = {NULL, NULL, 0};
    restore_result res;
    bar b = {0, 0, 0};
    struct stat st;

    int rc = cli_parse(cmd, restore_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing URL" : "too many arguments");
    if (!out_path || !*out_path)
        return cli_usage_error(cmd, "missing -o DB");
    if (txid_arg && ts_arg)
        return cli_usage_error(cmd, "--txid and --timestamp do not go together");
    if (txid_arg && parse_txid(txid_arg, &target.txid) != 0)
        return cli_usage_error(cmd, "bad --txid \"%s\": want a TXID in hex (1 to 16 digits)",
                               txid_arg);
    if (ts_arg) {
        if (cli_parse_time(ts_arg, &target.time_ms) != 0)
            return cli_usage_error(cmd,
                                   "bad --timestamp \"%s\": want RFC 3339 "
                                   "(2026-01-02T03:04:05Z), a date, \"5 minutes ago\" or "
                                   "milliseconds since the epoch",
                                   ts_arg);
        if (target.time_ms == 0)
            target.time_ms = 1; /* 0 means "no time target" to the planner */
    }
    if (conc_arg) {
        char *end;
        long v = strtol(conc_arg, &end, 10);
        if (*end || v < 1 || v > 1024)
            return cli_usage_error(cmd, "bad --concurrency \"%s\": want 1..1024", conc_arg);
        o.concurrency = (unsigned)v;
    }
    if (stat(out_path, &st) == 0 && !force) {
        cli_error(cmd, out_path, "the file exists; --force replaces it");
        return cli_finish(cmd, CLI_FAIL);
    }
    if ((rc = rcmd_open(cmd, argv[0], timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (cli_out_open(&out, out_path, err) != LV_OK) {
        cli_error(cmd, out_path, "%s", err);
        goto done;
    }
    b.on = isatty(STDERR_FILENO);
    b.start = b.last = cli_mono_ms();
    o.progress = progress;
    o.progress_ctx = &b;
    lv_err e = restore_run(r, &target, out.fd, &o, &res, err);
    if (b.on)
        fputc('\n', stderr);
    if (e != LV_OK) {
        cli_error(cmd, replica_describe(r), "%s", err);
        goto done;
    }
    int64_t restored = cli_mono_ms();
    /* fsync, rename, fsync the folder: a crash before the rename leaves DB as it was. */
    if (cli_out_commit(&out, err) != LV_OK) {
        cli_error(cmd, out_path, "%s", err);
        goto done;
    }
    int64_t end = cli_mono_ms();
    double secs = (double)(end - b.start) / 1000.0;
    double db_mb = (double)res.pages * res.page_size / 1e6;
    if (!quiet)
        printf("%s: restored TXID %016llx from %zu file%s: %u pages of %u bytes, checksum "
               "%016llx%s; %llu bytes downloaded; %.3f s (%.3f s restoring, %.3f s syncing), "
               "%.1f MB/s of database\n",
               out_path, (ull)res.max_txid, res.plan_len, res.plan_len == 1 ? "" : "s", res.pages,
               res.page_size, (ull)res.checksum,
               res.checksum_verified ? " (verified)" : " (not tracked)", (ull)res.bytes_downloaded,
               secs, (double)(restored - b.start) / 1000.0, (double)(end - restored) / 1000.0,
               secs > 0 ? db_mb / secs : 0.0);
    rc = CLI_OK;
done:
    cli_out_abort(&out);
    replica_close(r);
    return cli_finish(cmd, rc);
}
