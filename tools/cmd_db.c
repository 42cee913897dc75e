/*
 * cmd_db: the ltxctl commands that work on SQLite database files: checksum, encode-db, apply.
 *
 * A database is taken to be a single quiescent file in rollback-journal mode. A non-empty
 * "<db>-wal" means committed pages may still sit in the WAL, so the main file alone is not the
 * database: encode-db and apply refuse it (checkpoint first), checksum warns.
 *
 * apply is all-or-nothing per LTX file: each file is verified completely before its first page
 * is written, and SIGINT/SIGTERM/SIGHUP/SIGQUIT wait while a file is being applied, so an
 * interrupted apply leaves the database as it was after some whole file (a power loss can
 * still leave it part-written; that is what the checksums catch next time).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "commands.h"
#include "ltx.h"

/* 1 when "<db>-wal" exists and is not empty. */
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

/* A macro, not a const array, so that the compiler checks the format against its arguments. */
#define WAL_REFUSAL                                                                                \
    "the database is in WAL mode with uncheckpointed frames (%s-wal is not empty); "               \
    "checkpoint first (sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE)')"

/* The LTX database checksum of the database open on fd: 0 for an empty file (an empty database). */
static lv_err db_checksum(int fd, uint64_t *checksum, char *err)
{
    struct stat st;
    uint32_t ps = 0, count = 0;
    lv_err e;
    if (fstat(fd, &st) != 0)
        return lv_fail(err, LV_EIO, "stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return lv_fail(err, LV_EINVAL, "not a regular file");
    *checksum = 0;
    if ((e = ltx_db_geometry(fd, &ps, &count, err)) != LV_OK)
        return e;
    return ltx_db_checksum_fd(fd, ps, count, checksum, err);
}

/* ---- checksum ----------------------------------------------------------------------------------
 */

static const char checksum_usage[] =
    "Usage: ltxctl checksum DB\n"
    "\n"
    "Prints the LTX database checksum of a SQLite database file as 16 hex digits: the XOR of\n"
    "the CRC-64 page checksums of every page but the lock page, with bit 63 set. It is what\n"
    "an LTX file's pre-apply and post-apply checksums are compared with. An empty file is an\n"
    "empty database and prints 0000000000000000.\n"
    "\n"
    "Flags:\n"
    "  -h, --help   show this help\n";

int cmd_checksum(int argc, char **argv)
{
    static const char cmd[] = "checksum";
    char err[LV_ERRLEN] = "";
    uint64_t sum = 0;
    int npos;

    int rc = cli_parse(cmd, checksum_usage, argc, argv, NULL, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing DB" : "too many arguments");
    const char *path = argv[0];

    int fd = cli_open(path, O_RDONLY, err);
    if (fd < 0 || db_checksum(fd, &sum, err) != LV_OK) {
        cli_error(cmd, path, "%s", err);
        rc = CLI_FAIL;
    } else {
        if (wal_pending(path))
            cli_error(cmd, path,
                      "warning: %s-wal is not empty; this is the checksum of the main file "
                      "alone, without the frames in the WAL",
                      path);
        printf("%016llx\n", (unsigned long long)sum);
    }
    if (fd >= 0)
        close(fd);
    return cli_finish(cmd, rc);
}

/* ---- encode-db ---------------------------------------------------------------------------------
 */

static const char encode_db_usage[] =
    "Usage: ltxctl encode-db -o OUT [-timestamp TIME] [-v] DB\n"
    "\n"
    "Writes a snapshot LTX file (TXID 1, every page of the database, with its post-apply\n"
    "checksum) of a SQLite database file. OUT appears complete or not at all: it is written\n"
    "to a temporary file beside it, synced, and renamed. Refuses a database whose -wal file\n"
    "is not empty (checkpoint it first). Prints nothing on success unless -v.\n"
    "\n"
    "Flags:\n"
    "  -o OUT           the LTX file to write (required)\n"
    "  -timestamp TIME  the header timestamp: RFC 3339 (2025-01-01T00:00:00Z,\n"
    "                   2025-01-01T00:00:00.123+02:00) or milliseconds since the epoch;\n"
    "                   default: now\n"
    "  -v               say what was written\n"
    "  -h, --help       show this help\n";

int cmd_encode_db(int argc, char **argv)
{
    static const char cmd[] = "encode-db";
    const char *out_path = NULL, *ts_arg = NULL;
    int verbose = 0, npos, fd = -1;
    const cli_flag flags[] = {{"o", NULL, CLI_FLAG_STRING, NULL, &out_path},
                              {"timestamp", NULL, CLI_FLAG_STRING, NULL, &ts_arg},
                              {"v", NULL, CLI_FLAG_BOOL, &verbose, NULL},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "";
    const char *err_file;
    cli_out out = {-1, NULL, NULL, 0};
    ltx_header h;
    ltx_trailer t;
    struct stat st;
    int64_t ts;

    int rc = cli_parse(cmd, encode_db_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing DB" : "too many arguments");
    if (!out_path || !*out_path)
        return cli_usage_error(cmd, "missing -o OUT");
    if (ts_arg == NULL)
        ts = cli_now_ms();
    else if (cli_parse_time(ts_arg, &ts) != 0)
        return cli_usage_error(cmd,
                               "bad -timestamp \"%s\": want RFC 3339 (2025-01-01T00:00:00Z) or "
                               "milliseconds since the epoch",
                               ts_arg);
    const char *db = argv[0];

    rc = CLI_FAIL;
    err_file = db;
    if (wal_pending(db)) {
        lv_fail(err, LV_EINVAL, WAL_REFUSAL, db, db);
        goto done;
    }
    if (cli_same_file(db, out_path)) {
        lv_fail(err, LV_EINVAL, "-o names the database itself");
        goto done;
    }
    fd = cli_open(db, O_RDONLY, err);
    if (fd < 0)
        goto done;
    err_file = out_path;
    if (cli_out_open(&out, out_path, err) != LV_OK)
        goto done;
    if (ltx_encode_db(fd, ts, cli_out_write, &out, &h, &t, err) != LV_OK) {
        err_file = out.write_failed ? out_path : db;
        goto done;
    }
    err_file = out_path;
    st.st_size = 0;
    if (fstat(out.fd, &st) != 0) {
        lv_fail(err, LV_EIO, "stat: %s", strerror(errno));
        goto done;
    }
    if (cli_out_commit(&out, err) != LV_OK)
        goto done;
    if (verbose)
        printf("%s: snapshot of %s: TXID %016llx, %u pages of %u bytes, post-apply checksum "
               "%016llx, %lld bytes\n",
               out_path, db, (unsigned long long)h.max_txid, h.commit, h.page_size,
               (unsigned long long)t.post_apply_checksum, (long long)st.st_size);
    rc = CLI_OK;

done:
    if (rc != CLI_OK)
        cli_error(cmd, err_file, "%s", err);
    cli_out_abort(&out);
    if (fd >= 0)
        close(fd);
    return cli_finish(cmd, rc);
}

/* ---- apply -------------------------------------------------------------------------------------
 */

static const char apply_usage[] =
    "Usage: ltxctl apply -db DB [-v] FILE...\n"
    "\n"
    "Applies LTX files, in the order given, to a SQLite database file, creating it if it does\n"
    "not exist. Each file is verified completely before any of its pages is written, so a\n"
    "damaged file changes nothing. Unless a file is a snapshot or has the NoChecksum flag, the\n"
    "database checksum must equal its pre-apply checksum, and after it the post-apply one. The\n"
    "database is synced at the end. Refuses a database whose -wal file is not empty.\n"
    "Do not apply to a database another process has open.\n"
    "\n"
    "Flags:\n"
    "  -db DB       the database file (also --db; required)\n"
    "  -v           print a line per file applied\n"
    "  -h, --help   show this help\n";

/*
 * Applies one verified file with the usual termination signals held off, so that it lands whole;
 * creates the database first (inside the same window) if it does not exist yet (*db_fd < 0),
 * and then sets *created.
 */
static lv_err apply_one(const char *db, int *db_fd, int *created, int ltx_fd, uint64_t *checksum,
                        ltx_header *h, char *err)
{
    sigset_t hold, old;
    int made_now = 0;
    lv_err e;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    sigaddset(&hold, SIGHUP);
    sigaddset(&hold, SIGQUIT);
    sigprocmask(SIG_BLOCK, &hold, &old);
    if (*db_fd < 0) {
        *db_fd = open(db, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (*db_fd < 0) {
            e = lv_fail(err, LV_EIO, "%s: create: %s", db, strerror(errno));
            goto done;
        }
        *created = made_now = 1;
    }
    e = ltx_apply(*db_fd, ltx_fd_read, &ltx_fd, checksum, h, err);
    /* A database this run created and could not write goes away again. */
    if (e != LV_OK && made_now) {
        close(*db_fd);
        *db_fd = -1;
        *created = 0;
        unlink(db);
    }
done:
    sigprocmask(SIG_SETMASK, &old, NULL);
    return e;
}

int cmd_apply(int argc, char **argv)
{
    static const char cmd[] = "apply";
    const char *db = NULL;
    int verbose = 0, npos, db_fd = -1, ltx_fd = -1, created = 0;
    const cli_flag flags[] = {{"db", NULL, CLI_FLAG_STRING, NULL, &db},
                              {"v", NULL, CLI_FLAG_BOOL, &verbose, NULL},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "", state_err[LV_ERRLEN] = "";
    const char *err_file;
    uint64_t checksum = 0;
    int checksum_known = 1;

    int rc = cli_parse(cmd, apply_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (!db || !*db)
        return cli_usage_error(cmd, "missing -db DB");
    if (npos == 0)
        return cli_usage_error(cmd, "missing FILE");

    rc = CLI_FAIL;
    err_file = db;
    if (wal_pending(db)) {
        lv_fail(err, LV_EINVAL, WAL_REFUSAL, db, db);
        goto done;
    }
    /* A missing database is an empty one (checksum 0); it is created when the first file has
     * been verified, so a run that fails before that leaves nothing behind. */
    db_fd = open(db, O_RDWR | O_CLOEXEC);
    if (db_fd < 0 && errno != ENOENT) {
        lv_fail(err, LV_EIO, "open: %s", strerror(errno));
        goto done;
    }
    /*
     * The starting checksum, computed once and then carried from file to file by ltx_apply. If it
     * cannot be computed (not a database), that is an error only once a file needs it; ltx_apply
     * decides whether a snapshot may replace such a file.
     */
    if (db_fd >= 0)
        checksum_known = db_checksum(db_fd, &checksum, state_err) == LV_OK;

    for (int i = 0; i < npos; i++) {
        const char *path = argv[i];
        ltx_header h;
        err_file = path;
        ltx_fd = cli_open(path, O_RDONLY, err);
        if (ltx_fd < 0)
            goto done;
        if (ltx_verify(ltx_fd_read, &ltx_fd, &h, NULL, NULL, err) != LV_OK)
            goto done;
        if (!ltx_header_is_snapshot(&h) && !checksum_known) {
            err_file = db;
            memcpy(err, state_err, sizeof err);
            goto done;
        }
        if (lseek(ltx_fd, 0, SEEK_SET) != 0) {
            lv_fail(err, LV_EIO, "seek: %s", strerror(errno));
            goto done;
        }
        if (apply_one(db, &db_fd, &created, ltx_fd, &checksum, &h, err) != LV_OK)
            goto done;
        close(ltx_fd);
        ltx_fd = -1;
        checksum_known = 1;
        if (verbose)
            printf("%s: applied TXID %016llx-%016llx, database of %u pages, checksum %016llx\n",
                   path, (unsigned long long)h.min_txid, (unsigned long long)h.max_txid, h.commit,
                   (unsigned long long)checksum);
    }

    err_file = db;
    /* The pages are durable once fsync returns; a new file's name once its folder is synced. */
    if (fsync(db_fd) != 0) {
        lv_fail(err, LV_EIO, "fsync: %s", strerror(errno));
        goto done;
    }
    if (created)
        cli_sync_parent_dir(db);
    rc = CLI_OK;

done:
    if (rc != CLI_OK)
        cli_error(cmd, err_file, "%s", err);
    if (ltx_fd >= 0)
        close(ltx_fd);
    if (db_fd >= 0)
        close(db_fd);
    return cli_finish(cmd, rc);
}
