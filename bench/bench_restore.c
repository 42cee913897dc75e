/*
 * bench_restore: how fast a database comes back from a replica in fakes3, beside awscli copying
 * the same objects, in the same run.
 *
 * What it does:
 *   1. makes a SQLite database of --size MiB (default 100; a table of rows that are half random
 *      bytes, half text, and an index), in rollback-journal mode;
 *   2. for each setting: fakes3 --memory, then fakes3 --memory --latency 40ms (when fakes3 has
 *      the flag), started by this program on a free port:
 *        - imports it: a snapshot at level 9 (restore.h's replica layer, as ltxctl import does),
 *          plus --l0 level-0 files (a few changed pages each), so the plan has more than one level;
 *        - restore_run in-process into a file: one warm-up, then --reps timed runs, the output
 *          compared byte for byte with the database; MB/s of database per second, best and
 *          median; requests in the plan's round trips;
 *        - `ltxctl restore` of the same replica (the whole tool, fsync and rename included);
 *        - `aws s3 cp --recursive` of the replica's objects to a folder (unless --no-aws), timed,
 *          and the ratio of the two;
 *   3. prints the figures and the aims (never enforced: a benchmark prints, it does not
 *      judge).
 *
 * --smoke: a 2 MiB database, one run of each, no awscli: CTest runs it so the code keeps working.
 *
 * Exit status: 0 when everything worked whatever the timings; 1 when something failed (a server
 * that did not start, a restore that differs); 2 for a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alloc.h"
#include "buf.h"
#include "ltx.h"
#include "replica.h"
#include "restore.h"

#ifndef BENCH_BUILD_DIR
#define BENCH_BUILD_DIR "."
#endif

#define KEY    "benchkey"
#define SECRET "benchsecret"
#define BUCKET "bench"

typedef struct opts {
    unsigned size_mib;
    unsigned reps;
    unsigned l0;
    int aws;
    int smoke;
    const char *build;
} opts;

typedef struct server {
    pid_t pid;
    int out_fd;
    char url[128];
} server;

static char tmpdir[256];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_restore: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the database ------------------------------------------------------------------------ */

static void sql(sqlite3 *db, const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
        die("sqlite: %s: %s", q, msg ? msg : "?");
}

static void make_db(const char *path, unsigned mib)
{
    sqlite3 *db;
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite3_open %s", path);
    sql(db, "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, blob BLOB, txt TEXT);");
    /* ~495 bytes a row with the index (measured): rows for the size wanted */
    unsigned long rows = (unsigned long)mib * 1024 * 1024 / 495;
    char q[512];
    snprintf(q, sizeof q,
             "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<%lu)"
             " INSERT INTO t SELECT i, randomblob(200), printf('%%0200d-%%s', i, hex(i*7919))"
             " FROM c; CREATE INDEX t_txt ON t(substr(txt, 190)); COMMIT;",
             rows);
    sql(db, q);
    sqlite3_close(db);
}

static lv_err buf_write(void *ctx, const void *p, size_t n, char *err)
{
    lv_buf_append(ctx, p, n);
    return lv_buf_ok(ctx, err);
}

/*
 * The next state of the database on fd as an incremental LTX file for TXID txid: pages first,
 * first+step, ... (n of them, page 1 and the lock page left out) get a byte changed in the file,
 * and out receives the LTX file that carries them, with its pre- and post-apply checksums.
 */
static void make_l0(int fd, uint64_t txid, uint32_t first, uint32_t step, uint32_t n, lv_buf *out)
{
    char err[LV_ERRLEN] = "";
    uint32_t ps, count;
    uint64_t pre, post;
    if (ltx_db_geometry(fd, &ps, &count, err) != LV_OK ||
        ltx_db_checksum_fd(fd, ps, count, &pre, err) != LV_OK)
        die("%s", err);
    uint8_t *page = malloc(ps);
    uint32_t *pgnos = malloc((size_t)n * sizeof *pgnos), k = 0, lock = ltx_lock_pgno(ps);
    if (!page || !pgnos)
        die("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = first + i * step;
        if (p > count)
            break;
        if (p == 1 || p == lock)
            continue;
        if (pread(fd, page, ps, (off_t)(p - 1) * ps) != (ssize_t)ps)
            die("pread: %s", strerror(errno));
        page[ps - 1] ^= (uint8_t)(txid * 31 + i + 1);
        if (pwrite(fd, page, ps, (off_t)(p - 1) * ps) != (ssize_t)ps)
            die("pwrite: %s", strerror(errno));
        pgnos[k++] = p;
    }
    if (ltx_db_checksum_fd(fd, ps, count, &post, err) != LV_OK)
        die("%s", err);
    ltx_header h = {.page_size = ps,
                    .commit = count,
                    .min_txid = txid,
                    .max_txid = txid,
                    .timestamp = 1735689600000ll + (int64_t)txid * 1000,
                    .pre_apply_checksum = pre};
    ltx_encoder *e;
    if (ltx_encoder_open(&e, &h, buf_write, out, err) != LV_OK)
        die("encoder: %s", err);
    for (uint32_t i = 0; i < k; i++) {
        if (pread(fd, page, ps, (off_t)(pgnos[i] - 1) * ps) != (ssize_t)ps)
            die("pread: %s", strerror(errno));
        if (ltx_encoder_page(e, pgnos[i], page, err) != LV_OK)
            die("encoder: %s", err);
    }
    ltx_encoder_set_post_apply(e, post);
    if (ltx_encoder_finish(e, NULL, err) != LV_OK)
        die("encoder: %s", err);
    ltx_encoder_free(e);
    free(page);
    free(pgnos);
}

/* ---- fakes3 ------------------------------------------------------------------------------ */

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st;
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
    if (s->out_fd >= 0)
        close(s->out_fd);
    s->out_fd = -1;
}

static server *live;
static void on_exit_stop(void)
{
    if (live)
        server_stop(live);
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_restore: could not remove %s\n", tmpdir);
    }
}

/* fakes3 --memory on a free port with extra (NULL-terminated) arguments; waits for its URL. */
static void server_start(server *s, const opts *o, const char *const *extra)
{
    char bin[600], log[300];
    snprintf(bin, sizeof bin, "%s/fakes3", o->build);
    snprintf(log, sizeof log, "%s/fakes3.err", tmpdir);
    const char *argv[32] = {bin,    "--listen",     "127.0.0.1:0", "--memory",     "--bucket",
                            BUCKET, "--access-key", KEY,           "--secret-key", SECRET};
    size_t n = 10;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        int errfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (errfd >= 0)
            dup2(errfd, 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    s->out_fd = pfd[0];
    live = s;
    char buf[2048];
    size_t len = 0;
    double t0 = now_s();
    for (;;) {
        buf[len] = 0;
        char *m = strstr(buf, "listening on ");
        if (m && strchr(m, '\n')) {
            m += strlen("listening on ");
            snprintf(s->url, sizeof s->url, "%.*s", (int)strcspn(m, " \r\n"), m);
            return;
        }
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
        double left = 10 - (now_s() - t0);
        if (left <= 0 || poll(&p, 1, (int)(left * 1000)) <= 0)
            die("fakes3 did not start in 10 s (see %s)", log);
        ssize_t got = read(s->out_fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            die("fakes3 exited at start: %s", log);
        len += (size_t)got;
        if (len >= sizeof buf - 1)
            len = 0;
    }
}

static int fakes3_has(const opts *o, const char *flag)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "'%s/fakes3' --help 2>&1 | grep -q -- '%s'", o->build, flag);
    return system(cmd) == 0;
}

/* ---- the runs ---------------------------------------------------------------------------- */

typedef struct figures {
    double best, median; /* seconds of restore_run */
    double tool;         /* seconds of ltxctl restore */
    double aws;          /* seconds of aws s3 cp --recursive; 0: not run */
    size_t plan;
    uint64_t bytes;
} figures;

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

static void setting(const opts *o, const char *label, const char *const *extra, const char *db,
                    size_t db_size, const uint8_t *db_bytes, figures *f)
{
    server s = {0, -1, ""};
    char err[LV_ERRLEN] = "", url[300], out[300], cmd[2048];
    memset(f, 0, sizeof *f);
    server_start(&s, o, extra);
    setenv("AWS_ACCESS_KEY_ID", KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    snprintf(url, sizeof url, "s3://" BUCKET "/db?endpoint=%s", s.url);
    replica *r;
    if (replica_open(url, NULL, &r, err) != LV_OK)
        die("%s", err);

    /* The import: a snapshot, then level-0 files over a copy of the database. */
    int fd = open(db, O_RDONLY);
    lv_buf snap;
    lv_buf_init(&snap);
    if (fd < 0 || ltx_encode_db(fd, 1735689600000ll, buf_write, &snap, NULL, NULL, err) != LV_OK)
        die("encode %s: %s", db, err);
    close(fd);
    if (replica_write(r, 9, snap.data, snap.len, 1, err) != LV_OK)
        die("upload the snapshot: %s", err);
    lv_buf_free(&snap);
    char want_path[300];
    snprintf(want_path, sizeof want_path, "%s/want.db", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", db, want_path);
    if (run_cmd(cmd) != 0)
        die("%s", cmd);
    int wfd = open(want_path, O_RDWR);
    if (wfd < 0)
        die("%s: %s", want_path, strerror(errno));
    uint32_t pages = (uint32_t)(db_size / 4096);
    for (unsigned i = 0; i < o->l0; i++) {
        lv_buf l0;
        lv_buf_init(&l0);
        make_l0(wfd, 2 + i, 2 + i * 13, pages / 50 + 1, 50, &l0);
        if (replica_write(r, 0, l0.data, l0.len, 1, err) != LV_OK)
            die("upload a level-0 file: %s", err);
        lv_buf_free(&l0);
    }
    close(wfd);
    size_t want_n = 0;
    uint8_t *want = NULL;
    {
        FILE *wf = fopen(want_path, "rb");
        if (!wf)
            die("%s", want_path);
        want = malloc(db_size + 1);
        want_n = fread(want, 1, db_size + 1, wf);
        fclose(wf);
    }
    (void)db_bytes;

    /* restore_run, in-process */
    snprintf(out, sizeof out, "%s/out.db", tmpdir);
    unsigned reps = o->smoke ? 1 : o->reps;
    double *t = calloc(reps + 1, sizeof *t);
    for (unsigned i = 0; i <= reps; i++) {
        int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
        restore_result res;
        double t0 = now_s();
        if (ofd < 0 || restore_run(r, NULL, ofd, NULL, &res, err) != LV_OK)
            die("%s: restore: %s", label, err);
        double dt = now_s() - t0;
        close(ofd);
        if (i > 0 || o->smoke)
            t[i > 0 ? i - 1 : 0] = dt;
        f->plan = res.plan_len;
        f->bytes = res.bytes_downloaded;
        /* the output is the database, byte for byte */
        FILE *of = fopen(out, "rb");
        uint8_t *got = malloc(want_n + 1);
        size_t got_n = of ? fread(got, 1, want_n + 1, of) : 0;
        if (of)
            fclose(of);
        if (got_n != want_n || memcmp(got, want, want_n) != 0)
            die("%s: the restored database differs from the source", label);
        free(got);
        if (o->smoke)
            break;
    }
    qsort(t, reps, sizeof *t, cmp_double);
    f->best = t[0];
    f->median = t[reps / 2];
    free(t);
    free(want);

    /* ltxctl restore, the whole tool */
    unlink(out);
    snprintf(cmd, sizeof cmd, "'%s/ltxctl' restore -q '%s' -o '%s'", o->build, url, out);
    double t0 = now_s();
    if (run_cmd(cmd) != 0)
        die("%s: %s failed", label, cmd);
    f->tool = now_s() - t0;

    /* awscli, the same objects */
    if (o->aws && !o->smoke) {
        snprintf(cmd, sizeof cmd,
                 "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null aws "
                 "--endpoint-url '%s' s3 cp --recursive --only-show-errors s3://" BUCKET
                 "/db '%s/aws' >'%s/aws.err' 2>&1",
                 s.url, tmpdir, tmpdir);
        t0 = now_s();
        if (run_cmd(cmd) != 0)
            fprintf(stderr, "bench_restore: %s: aws s3 cp failed (see %s/aws.err)\n", label,
                    tmpdir);
        else
            f->aws = now_s() - t0;
        snprintf(cmd, sizeof cmd, "rm -rf '%s/aws'", tmpdir);
        run_cmd(cmd);
    }
    replica_close(r);
    server_stop(&s);
    live = NULL;
}

static void print_figures(const char *label, const figures *f, double mb)
{
    printf("%-22s plan %zu files, %.1f MB downloaded\n", label, f->plan, (double)f->bytes / 1e6);
    printf("  restore_run          best %7.3f s  %7.1f MB/s    median %7.3f s  %7.1f MB/s\n",
           f->best, mb / f->best, f->median, mb / f->median);
    printf("  ltxctl restore       %7.3f s  %7.1f MB/s (process, fsync and rename included)\n",
           f->tool, mb / f->tool);
    if (f->aws > 0)
        printf("  aws s3 cp --recursive %6.3f s  %7.1f MB/s of objects; restore_run/aws time "
               "ratio %.2f (below 1: faster than awscli)\n",
               f->aws, (double)f->bytes / 1e6 / f->aws, f->median / f->aws);
}

int main(int argc, char **argv)
{
    opts o = {100, 5, 3, 1, 0, BENCH_BUILD_DIR};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            o.smoke = 1;
            o.size_mib = 2;
            o.aws = 0;
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            o.size_mib = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            o.reps = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--l0") == 0 && i + 1 < argc) {
            o.l0 = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-aws") == 0) {
            o.aws = 0;
        } else if (strcmp(argv[i], "--build") == 0 && i + 1 < argc) {
            o.build = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench_restore [--smoke] [--size MIB] [--reps N] [--l0 N] [--no-aws] "
                    "[--build DIR]\n");
            return 2;
        }
    }
    if (o.size_mib < 1 || o.reps < 1)
        return 2;
    if (o.aws && run_cmd("command -v aws >/dev/null") != 0) {
        fprintf(stderr, "bench_restore: no aws on PATH: the awscli comparison is left out\n");
        o.aws = 0;
    }
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/bench_restore.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        die("mkdtemp: %s", strerror(errno));
    atexit(on_exit_stop);
    signal(SIGPIPE, SIG_IGN);

    char db[300];
    snprintf(db, sizeof db, "%s/source.db", tmpdir);
    double t0 = now_s();
    make_db(db, o.size_mib);
    struct stat st;
    if (stat(db, &st) != 0)
        die("stat %s", db);
    double mb = (double)st.st_size / 1e6;
    printf("bench_restore: a database of %.1f MB (%lld pages of 4096), made in %.1f s; %u level-0 "
           "files on top of the snapshot\n",
           mb, (long long)st.st_size / 4096, now_s() - t0, o.l0);

    figures f0, f40;
    setting(&o, "fakes3 --memory", NULL, db, (size_t)st.st_size, NULL, &f0);
    print_figures("fakes3 --memory", &f0, mb);
    int has_latency = fakes3_has(&o, "--latency");
    if (has_latency) {
        const char *extra[] = {"--latency", "40ms", NULL};
        setting(&o, "fakes3 --latency 40ms", extra, db, (size_t)st.st_size, NULL, &f40);
        print_figures("fakes3 --latency 40ms", &f40, mb);
    } else {
        printf("fakes3 has no --latency: the 40 ms run is left out\n");
    }
    printf("aims (printed, not enforced): >= 300 MB/s at 0 ms: %s (median %.1f MB/s)\n",
           mb / f0.median >= 300 ? "met" : "not met", mb / f0.median);
    if (has_latency) {
        /* At 40 ms a restore needs the round trips of its plan: LIST, the page indexes of the
         * files after the snapshot (1-2), then the download; the aim is the transfer time (at 0 ms)
         * plus one round trip per plan level. */
        double aim = f0.median + 0.040 * (double)(f40.plan + 1);
        printf("aims: at 40 ms within one round trip per plan level of the transfer time: %.3f s "
               "against %.3f s (%s)\n",
               f40.median, aim, f40.median <= aim ? "met" : "not met");
    }
    return 0;
}
