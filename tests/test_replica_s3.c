/*
 * test_replica_s3: the replica layer over its S3 backend, against a real fakes3 (auth on, started
 * once per test case with --log so the requests can be inspected).
 *
 *   - every backend-neutral check of test_replica_file.c (included below), over s3:// URLs with a
 *     nested prefix: vectors round trip, fetch_meta, conditional writes and races, delete, junk
 *     keys ignored, large files fetched as ranges in order, the vector bucket's plans restoring
 *     db-txid3.db / db-txid2.db and time targets;
 *   - the layout: keys "<prefix>/<LLLL>/<MIN>-<MAX>.ltx", and no leading '/' with an empty prefix;
 *     x-amz-meta-litestream-timestamp holds the header timestamp (RFC 3339, milliseconds);
 *   - round trips, from fakes3's request log: a listing of all levels is one ListObjectsV2 per
 *     level prefix; fetch_meta is one round of (0-99, last 32 KiB) or whole-file GETs and a second
 *     GET only for an index larger than the tail, exactly at the missing range;
 *   - the same by the clock, with every read delayed 500 ms: a listing of all levels, fetch_meta
 *     (two rounds) and a fetch of several files each take their rounds, not a round per request;
 *   - errors: a missing bucket, wrong credentials, a store that is down (fails within its bound and
 *     names the endpoint); allocation failures (no leak, no crash);
 *   - fetch and fetch_meta stay exact through truncated bodies, resets and 503s, with each restart
 *     path of the ranged fetch forced once (a live first piece, a held piece, a live later piece).
 */
#define REPLICA_BACKEND_S3 1

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "replica.h"
#include "replica_private.h"
#include "s3.h"
#include "testutil.h"

/* ---- s3 backend hooks (used by the shared tests of test_replica_file.c) -------------------- */

static tu_fakes3 g_fs3;
static char g_log[4096];
static char g_prefix[256];
static int g_counter;

/*
 * Starts fakes3 as tu_fakes3_start does (same arguments, same tu_fakes3 for tu_fakes3_stop), but
 * reads its start-up line NUL-terminated: tu_fakes3_start's tu_read_file buffer is not, and
 * strstr over it runs past the end under ASan when it reads the output file while still empty.
 */
static void start_fakes3(tu_fakes3 *f, const char *const *args)
{
    const char *build = getenv("LTXVFS_BUILD_DIR");
    ck_assert_msg(build != NULL, "LTXVFS_BUILD_DIR is not set");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/fakes3", build);
    memset(f, 0, sizeof *f);
    char *out = tu_tmp_path("fakes3.out");
    snprintf(f->out_path, sizeof f->out_path, "%s", out);
    free(out);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--access-key";
    argv[n++] = TU_FAKES3_KEY;
    argv[n++] = "--secret-key";
    argv[n++] = TU_FAKES3_SECRET;
    argv[n++] = "--bucket";
    argv[n++] = TU_FAKES3_BUCKET;
    argv[n++] = "--memory";
    for (size_t i = 0; args && args[i]; i++) {
        ck_assert(n < 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(f->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 400; i++) {
        char text[4096] = "";
        FILE *fp = fopen(f->out_path, "r");
        if (fp) {
            size_t got = fread(text, 1, sizeof text - 1, fp);
            text[got] = 0;
            fclose(fp);
        }
        const char *at = strstr(text, "listening on ");
        if (at) {
            at += strlen("listening on ");
            size_t len = strcspn(at, " \n");
            ck_assert(len < sizeof f->endpoint);
            memcpy(f->endpoint, at, len);
            f->endpoint[len] = 0;
            return;
        }
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "fakes3 exited at start: %s", text);
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("fakes3 did not start in 10 s (see %s)", f->out_path);
}

static void fs3_setup(void)
{
    char *p = tu_tmp_path("fakes3.log");
    snprintf(g_log, sizeof g_log, "%s", p);
    free(p);
    const char *args[] = {"--log", g_log, NULL};
    start_fakes3(&g_fs3, args);
}

static void fs3_teardown(void)
{
    tu_fakes3_stop(&g_fs3);
    unlink(g_log);
    char *slash = strrchr(g_log, '/');
    if (slash) {
        *slash = 0;
        rmdir(g_log);
    }
}

static void test_config(s3_config *c)
{
    s3_config_init(c);
    c->access_key = TU_FAKES3_KEY;
    c->secret_key = TU_FAKES3_SECRET;
    c->region = "us-east-1";
    c->retry_total_ms = 15000;
}

static replica *open_url(const char *url)
{
    s3_config c;
    test_config(&c);
    replica_options o = {.s3 = &c};
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_open(url, &o, &r, err);
    ck_assert_msg(rc == LV_OK, "open %s: %s", url, err);
    return r;
}

/* A fresh replica: its own nested prefix in the shared bucket. */
static replica *backend_open(void)
{
    snprintf(g_prefix, sizeof g_prefix, "t%d-%d/db", (int)getpid(), ++g_counter);
    char url[512];
    snprintf(url, sizeof url, "s3://%s/%s?endpoint=%s", TU_FAKES3_BUCKET, g_prefix, g_fs3.endpoint);
    return open_url(url);
}

static void backend_put_raw(replica *r, int level, const char *name, const void *data, size_t n)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%04x/%s", g_prefix, (unsigned)level, name);
    char err[LV_ERRLEN] = "";
    lv_err rc = s3_put(replica_s3(r), TU_FAKES3_BUCKET, key, data, n, NULL, NULL, err);
    ck_assert_msg(rc == LV_OK, "put %s: %s", key, err);
}

static void backend_close(replica *r)
{
    replica_close(r);
}

#include "test_replica_file.c"

/* ---- the request log ---------------------------------------------------------------------- */

/* One logged request. */
typedef struct logged {
    char op[40];
    char key[512];
    char range[80]; /* "bytes=0-99" or "" */
} logged;

/* The requests logged after line `skip` (so a test sees only its own); caller frees. */
static logged *read_log(size_t skip, size_t *n, size_t *total)
{
    FILE *f = fopen(g_log, "r");
    ck_assert_msg(f != NULL, "open %s: %s", g_log, strerror(errno));
    logged *out = NULL;
    size_t cap = 0, line_no = 0;
    *n = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (line_no++ < skip)
            continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        ck_assert_msg(j != NULL, "log line %zu: %s", line_no, je.text);
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            out = realloc(out, cap * sizeof *out);
            ck_assert_ptr_nonnull(out);
        }
        logged *l = &out[(*n)++];
        memset(l, 0, sizeof *l);
        snprintf(l->op, sizeof l->op, "%s", tu_jstr(j, "operation"));
        snprintf(l->key, sizeof l->key, "%s", tu_jstr(j, "key"));
        const char *rg = tu_jstr(j, "range");
        char dec[80];
        lv_uri_decode(rg, strlen(rg) < sizeof dec - 1 ? strlen(rg) : sizeof dec - 1, dec);
        snprintf(l->range, sizeof l->range, "%s", dec);
        json_decref(j);
    }
    free(line);
    fclose(f);
    *total = line_no;
    return out;
}

static size_t log_lines(void)
{
    size_t n, total;
    free(read_log(0, &n, &total));
    return total;
}

/*
 * fakes3 writes a request's log line once it has answered it, so the last line may come a moment
 * after the client has its response: waits until the log has not grown for 300 ms (at most 10 s)
 * and returns its line count.
 */
static size_t settle(void)
{
    size_t last = log_lines(), same = 0;
    for (int i = 0; i < 200 && same < 6; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        size_t now = log_lines();
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

static size_t count_op(const logged *l, size_t n, const char *op)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].op, op) == 0)
            k++;
    return k;
}

static int has_get(const logged *l, size_t n, const char *key, const char *range)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i].op, "GetObject") && !strcmp(l[i].key, key) && !strcmp(l[i].range, range))
            return 1;
    return 0;
}

/* ---- s3 only ------------------------------------------------------------------------------ */

START_TEST(test_s3_layout_and_timestamp_metadata)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    char want[600];
    snprintf(want, sizeof want, "s3://%s/%s (%s)", TU_FAKES3_BUCKET, g_prefix, g_fs3.endpoint);
    ck_assert_str_eq(replica_describe(r), want);
    ck_assert_ptr_nonnull(replica_s3(r));

    struct {
        int level;
        uint64_t txid;
        const char *ts;
    } k[] = {{9, 1, "2026-11-21T04:57:54.374Z"},
             {0, 2, "2025-01-01T00:00:00.000Z"},
             {0, 3, "2025-01-01T00:01:00.000Z"}};
    for (size_t i = 0; i < 3; i++) {
        lv_buf key;
        lv_buf_init(&key);
        replica_file_key(r, k[i].level, k[i].level == 9 ? 1 : k[i].txid, k[i].txid, &key);
        char expect[512];
        snprintf(expect, sizeof expect, "%s/%04x/%016llx-%016llx.ltx", g_prefix, k[i].level,
                 (unsigned long long)(k[i].level == 9 ? 1 : k[i].txid),
                 (unsigned long long)k[i].txid);
        ck_assert_str_eq(key.data, expect);
        s3_op op;
        s3_op_init(&op);
        op.kind = S3_HEAD;
        op.key = key.data;
        char err[LV_ERRLEN] = "";
        ck_assert_msg(s3_run(replica_s3(r), TU_FAKES3_BUCKET, &op, 1, err) == LV_OK, "%s: %s",
                      key.data, err);
        /* meta: "name\0value\0" pairs */
        const char *found = NULL;
        for (size_t at = 0; at < op.meta.len;) {
            const char *name = op.meta.data + at;
            const char *value = name + strlen(name) + 1;
            if (strcmp(name, "litestream-timestamp") == 0)
                found = value;
            at = (size_t)(value + strlen(value) + 1 - op.meta.data);
        }
        ck_assert_msg(found != NULL, "%s: no x-amz-meta-litestream-timestamp", key.data);
        ck_assert_str_eq(found, k[i].ts);
        s3_op_free(&op);
        lv_buf_free(&key);
    }
    backend_close(r);
}
END_TEST

START_TEST(test_s3_empty_prefix_has_no_leading_slash)
{
    char url[512];
    snprintf(url, sizeof url, "s3://%s?endpoint=%s", TU_FAKES3_BUCKET, g_fs3.endpoint);
    replica *r = open_url(url);
    write_vector(r, 0, "incr-txid2.ltx");
    char err[LV_ERRLEN] = "";
    s3_result res;
    ck_assert_msg(s3_head(replica_s3(r), TU_FAKES3_BUCKET,
                          "0000/0000000000000002-0000000000000002.ltx", &res, err) == LV_OK,
                  "%s", err);
    ck_assert_uint_eq(res.size, 454);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_gt(f[0].created_ms, 1700000000000ll); /* LastModified: now */
    lv_free(f);
    replica_delete(r, (replica_file[]){{.level = 0, .min_txid = 2, .max_txid = 2}}, 1, err);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_list_all_levels_in_one_round)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    write_vector(r, 1, "compact-txid1-2.ltx");
    write_vector(r, 2, "compact-txid2-3.ltx");
    size_t before = settle();
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert(f[2].level == 1 && f[3].level == 2 && f[4].level == 9);
    lv_free(f);
    settle();
    size_t ln, total;
    logged *l = read_log(before, &ln, &total);
    ck_assert_uint_eq(count_op(l, ln, "ListObjectsV2"), REPLICA_MAX_LEVEL + 1);
    ck_assert_uint_eq(ln, REPLICA_MAX_LEVEL + 1);
    free(l);

    before = total;
    f = list_ok(r, 2, &n);
    ck_assert_uint_eq(n, 1);
    lv_free(f);
    settle();
    l = read_log(before, &ln, &total);
    ck_assert_uint_eq(ln, 1);
    free(l);
    backend_close(r);
}
END_TEST

START_TEST(test_s3_fetch_meta_round_trips)
{
    replica *r = backend_open();
    size_t b1n, b2n;
    uint8_t *b1 = make_ltx(512, 9000, 1, 4, 1700000000123ll, 0, &b1n);
    uint8_t *b2 = make_ltx(512, 12000, 5, 5, 1700000000999ll, 0, &b2n);
    write_ok(r, 9, b1, b1n, 1);
    write_ok(r, 0, b2, b2n, 1);
    write_vector(r, 0, "incr-txid2.ltx");
    write_vector(r, 0, "incr-txid3.ltx");
    write_vector(r, 1, "compact-txid1-2.ltx"); /* 36885 bytes: above the tail, small index */
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 5);
    size_t before = settle();
    replica_meta m[5];
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_fetch_meta(r, f, n, m, err) == LV_OK, "%s", err);
    settle();
    size_t ln, total;
    logged *l = read_log(before, &ln, &total);

    /* files: L0 2-2 (454), L0 3-3 (8076), L0 5-5 (b2), L1 1-2 (36885), L9 1-4 (b1) */
    ck_assert(f[2].min_txid == 5 && f[4].level == 9);
    uint64_t tail = REPLICA_INDEX_TAIL;
    /* small: one whole-file GET each */
    ck_assert_uint_eq(count_op(l, ln, "GetObject"), 1 + 1 + 3 + 2 + 3);
    ck_assert_uint_eq(ln, 10);
    char key[512], range[80], head[80];
    snprintf(head, sizeof head, "bytes=0-%d", REPLICA_META_HEAD - 1);
    snprintf(key, sizeof key, "%s/0000/0000000000000002-0000000000000002.ltx", g_prefix);
    ck_assert_msg(has_get(l, ln, key, "bytes=0-453"), "no whole-file GET of %s", key);
    /* the compaction: header and tail, and nothing more (its index fits the tail) */
    snprintf(key, sizeof key, "%s/0001/0000000000000001-0000000000000002.ltx", g_prefix);
    ck_assert(has_get(l, ln, key, head));
    snprintf(range, sizeof range, "bytes=%llu-%llu", (ull)(36885 - tail), (ull)36884);
    ck_assert_msg(has_get(l, ln, key, range), "no %s of %s", range, key);
    /* the large indexes: header, tail, then exactly the missing start of the index */
    for (int i = 0; i < 2; i++) {
        const replica_meta *mm = &m[i == 0 ? 4 : 2];
        size_t size = i == 0 ? b1n : b2n;
        ck_assert_uint_gt(mm->index.size, tail);
        snprintf(key, sizeof key, "%s/%04x/%016llx-%016llx.ltx", g_prefix, mm->file.level,
                 (ull)mm->file.min_txid, (ull)mm->file.max_txid);
        ck_assert(has_get(l, ln, key, head));
        snprintf(range, sizeof range, "bytes=%llu-%llu", (ull)(size - tail), (ull)(size - 1));
        ck_assert_msg(has_get(l, ln, key, range), "no %s of %s", range, key);
        snprintf(range, sizeof range, "bytes=%llu-%llu", (ull)mm->index.offset,
                 (ull)(size - tail - 1));
        ck_assert_msg(has_get(l, ln, key, range), "no %s of %s", range, key);
        assert_meta_matches(mm, i == 0 ? b1 : b2, size);
    }
    free(l);
    replica_meta_free(m, n);

    /* only small indexes: one round, one GET per small file, two per larger one */
    replica_file some[3] = {f[0], f[1], f[3]};
    before = total;
    ck_assert_msg(replica_fetch_meta(r, some, 3, m, err) == LV_OK, "%s", err);
    settle();
    l = read_log(before, &ln, &total);
    ck_assert_uint_eq(ln, 4);
    free(l);
    replica_meta_free(m, 3);
    lv_free(f);
    free(b1);
    free(b2);
    backend_close(r);
}
END_TEST

START_TEST(test_s3_missing_bucket)
{
    char url[512];
    snprintf(url, sizeof url, "s3://no-such-bucket/p?endpoint=%s", g_fs3.endpoint);
    replica *r = open_url(url);
    replica_file *f = NULL;
    size_t n = 0;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_list(r, -1, &f, &n, err);
    ck_assert_msg(rc == LV_ENOTFOUND, "%s (%s)", lv_strerror(rc), err);
    ck_assert_msg(strstr(err, "no-such-bucket") != NULL, "%s", err);
    ck_assert_ptr_null(f);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_wrong_secret)
{
    s3_config c;
    test_config(&c);
    c.secret_key = "not-the-secret";
    replica_options o = {.s3 = &c};
    char url[512];
    snprintf(url, sizeof url, "s3://%s/p?endpoint=%s", TU_FAKES3_BUCKET, g_fs3.endpoint);
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_open(url, &o, &r, err), LV_OK);
    replica_file *f = NULL;
    size_t n = 0;
    lv_err rc = replica_list(r, 0, &f, &n, err);
    ck_assert_msg(rc == LV_EACCESS, "%s (%s)", lv_strerror(rc), err);
    size_t an;
    uint8_t *a = vec("incr-txid2.ltx", &an);
    rc = replica_write(r, 0, a, an, 1, err);
    ck_assert_msg(rc == LV_EACCESS, "%s (%s)", lv_strerror(rc), err);
    free(a);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_store_down_fails_in_bound)
{
    /* a port nothing listens on: bound, never listened on, closed */
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(sock, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(sock, (struct sockaddr *)&sa, &sl), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    close(sock);
    s3_config c;
    test_config(&c);
    c.retry_total_ms = 1000;
    c.connect_timeout_ms = 500;
    replica_options o = {.s3 = &c};
    char url[512];
    snprintf(url, sizeof url, "s3://%s/p?endpoint=%s", TU_FAKES3_BUCKET, ep);
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_open(url, &o, &r, err), LV_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    replica_file *f = NULL;
    size_t n = 0;
    lv_err rc = replica_list(r, -1, &f, &n, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(rc == LV_ENET, "%s (%s)", lv_strerror(rc), err);
    ck_assert_msg(strstr(err, ep + 7) != NULL, "message does not name %s: %s", ep, err);
    ck_assert_msg(secs < 10.0, "took %.1f s", secs);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_large_file_fetched_as_ranges)
{
    replica *r = backend_open();
    size_t big_n;
    uint8_t *big = make_ltx(4096, 5000, 1, 2, 1700000000000ll, 1, &big_n);
    write_ok(r, 9, big, big_n, 1);
    write_vector(r, 0, "incr-txid3.ltx");
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 2);
    size_t before = settle();
    collect c = {.n = n};
    c.files = calloc(n, sizeof *c.files);
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_fetch(r, f, n, collect_sink, &c, err) == LV_OK, "%s", err);
    ck_assert(c.files[1].size == big_n && memcmp(c.files[1].data, big, big_n) == 0);
    settle();
    size_t ln, total;
    logged *l = read_log(before, &ln, &total);
    /* the small file in one plain GET; the large one in pieces of REPLICA_FETCH_PIECE */
    size_t pieces = (big_n + REPLICA_FETCH_PIECE - 1) / REPLICA_FETCH_PIECE;
    ck_assert_uint_ge(pieces, 3);
    ck_assert_uint_eq(ln, 1 + pieces);
    char key[512], range[80];
    snprintf(key, sizeof key, "%s/0000/0000000000000003-0000000000000003.ltx", g_prefix);
    ck_assert_msg(has_get(l, ln, key, ""), "no plain GET of %s", key);
    snprintf(key, sizeof key, "%s/0009/0000000000000001-0000000000000002.ltx", g_prefix);
    for (size_t i = 0; i < pieces; i++) {
        uint64_t off = (uint64_t)i * REPLICA_FETCH_PIECE;
        uint64_t end = off + REPLICA_FETCH_PIECE > big_n ? big_n : off + REPLICA_FETCH_PIECE;
        snprintf(range, sizeof range, "bytes=%llu-%llu", (ull)off, (ull)(end - 1));
        ck_assert_msg(has_get(l, ln, key, range), "no %s of %s", range, key);
    }
    free(l);
    collect_free(&c);
    free(big);
    lv_free(f);
    backend_close(r);
}
END_TEST

/* ---- through faults ------------------------------------------------------------------------ */

/*
 * fakes3 with faults for a fetch of `big_size` bytes: the three 8 MiB pieces of the large file
 * each get a truncated body once, timed so that every restart path of replica_s3_fetch runs:
 *   piece 0 (live from the start): cut at 1 MB: the sink is told to start the file over;
 *   piece 2 (held while pieces 0 and 1 run): cut at once: its held bytes are dropped;
 *   piece 1: delayed 1 s (piece 0 is done by then, so it is live), 4 MB sent, cut: the retry
 *            skips the 4 MB already delivered.
 * Then random 503s, resets and truncations on every read.
 */
static void fs3_faulty_start(uint64_t big_size)
{
    char *p = tu_tmp_path("fakes3.log");
    snprintf(g_log, sizeof g_log, "%s", p);
    free(p);
    char r0[128], r1[128], r2[128];
    snprintf(r0, sizeof r0, "truncate 1000000 op=GetObject header=Range:bytes=0-%u times=1",
             REPLICA_FETCH_PIECE - 1);
    snprintf(r1, sizeof r1,
             "truncate 4000000 op=GetObject header=Range:bytes=%u-%u delay=1s times=1",
             REPLICA_FETCH_PIECE, 2 * REPLICA_FETCH_PIECE - 1);
    snprintf(r2, sizeof r2, "truncate 500000 op=GetObject header=Range:bytes=%u-%llu times=1",
             2 * REPLICA_FETCH_PIECE, (ull)big_size - 1);
    const char *args[] = {"--log",   g_log,
                          "--seed",  "7",
                          "--fault", r0,
                          "--fault", r1,
                          "--fault", r2,
                          "--fault", "truncate 300000 op=GetObject p=0.2",
                          "--fault", "reset op=GetObject p=0.1",
                          "--fault", "error 503 SlowDown op=GetObject,ListObjectsV2 p=0.1",
                          NULL};
    start_fakes3(&g_fs3, args);
}

START_TEST(test_s3_faults_fetch_and_meta_are_exact)
{
    size_t big_n, b2n;
    uint8_t *big = make_ltx(4096, 5000, 1, 2, 1700000000000ll, 1, &big_n);
    uint8_t *b2 = make_ltx(512, 9000, 4, 4, 1700000000500ll, 0, &b2n);
    ck_assert_uint_gt(big_n, 2 * REPLICA_FETCH_PIECE);
    ck_assert_uint_le(big_n, 3 * REPLICA_FETCH_PIECE);
    fs3_faulty_start(big_n);
    replica *r = backend_open();
    /* writes go through undisturbed (the rules match reads only) */
    write_ok(r, 9, big, big_n, 1);
    write_ok(r, 0, b2, b2n, 1);
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 5); /* L0 2-2, L0 3-3, L0 4-4 (b2), L9 1-1, L9 1-2 (big) */
    char err[LV_ERRLEN] = "";
    for (int round = 0; round < 4; round++) {
        collect c = {.n = n};
        c.files = calloc(n, sizeof *c.files);
        ck_assert_msg(replica_fetch(r, f, n, collect_sink, &c, err) == LV_OK, "%s", err);
        if (round == 0)
            ck_assert_msg(c.restarts >= 1, "piece 0 was cut but the sink never restarted");
        ck_assert_msg(c.files[4].size == big_n && memcmp(c.files[4].data, big, big_n) == 0,
                      "round %d: the large file came out wrong (%zu of %zu bytes)", round,
                      c.files[4].size, big_n);
        for (size_t i = 0; i < 4; i++) {
            size_t want_n;
            uint8_t *want = read_whole(r, &f[i], &want_n);
            ck_assert_msg(c.files[i].size == want_n && memcmp(c.files[i].data, want, want_n) == 0,
                          "round %d: file %zu fetched wrong (%zu of %zu bytes)", round, i,
                          c.files[i].size, want_n);
            free(want);
        }
        collect_free(&c);

        replica_meta m[5];
        ck_assert_msg(replica_fetch_meta(r, f, n, m, err) == LV_OK, "%s", err);
        assert_meta_matches(&m[2], b2, b2n);
        assert_meta_matches(&m[4], big, big_n);
        replica_meta_free(m, n);
    }
    /* the faults did fire: retried GETs in the log */
    settle();
    size_t ln, total;
    logged *l = read_log(0, &ln, &total);
    size_t gets = count_op(l, ln, "GetObject");
    free(l);
    /* without faults: per round 5 + 2 pieces (fetch), 4 (read_whole), 1 + 1 + 3 + 2 + 3 (meta) */
    ck_assert_msg(gets > 4 * (7 + 4 + 10) + 3, "only %zu GETs: no fault fired?", gets);
    free(big);
    free(b2);
    lv_free(f);
    backend_close(r);
    fs3_teardown();
}
END_TEST

START_TEST(test_s3_allocation_failures_do_not_leak)
{
    replica *r = backend_open();
    size_t big_n;
    uint8_t *big = make_ltx(4096, 5000, 1, 2, 1700000000000ll, 1, &big_n);
    write_ok(r, 9, big, big_n, 1);
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    for (long nth = 0; nth < 120; nth += 3) {
        char err[LV_ERRLEN] = "";
        collect c = {.n = n};
        c.files = calloc(n, sizeof *c.files);
        replica_meta m[4];
        replica_file *g = NULL;
        size_t gn = 0;
        lv_alloc_fail_after(nth);
        lv_err a = replica_fetch(r, f, n, collect_sink, &c, err);
        lv_alloc_fail_after(-1);
        if (a == LV_OK)
            ck_assert(c.files[3].size == big_n && memcmp(c.files[3].data, big, big_n) == 0);
        collect_free(&c);
        lv_alloc_fail_after(nth);
        lv_err b = replica_fetch_meta(r, f, n, m, err);
        lv_alloc_fail_after(-1);
        if (b == LV_OK)
            replica_meta_free(m, n);
        lv_alloc_fail_after(nth);
        lv_err d = replica_list(r, -1, &g, &gn, err);
        lv_alloc_fail_after(-1);
        if (d == LV_OK)
            lv_free(g);
    }
    free(big);
    lv_free(f);
    backend_close(r);
}
END_TEST

/* ---- round trips, by the clock ------------------------------------------------------------ */

static void fs3_slow_setup(void)
{
    char *p = tu_tmp_path("fakes3.log");
    snprintf(g_log, sizeof g_log, "%s", p);
    free(p);
    const char *args[] = {"--log", g_log, "--fault", "latency 500ms op=ListObjectsV2,GetObject",
                          NULL};
    start_fakes3(&g_fs3, args);
}

static double elapsed_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

START_TEST(test_s3_round_trips_by_the_clock)
{
    /* every read waits 500 ms: one at a time, the ten listings would take 5 s and the twelve GETs
     * of fetch_meta 6 s; batched, about 0.5 s and 1 s. The bound (3 s) is far from both. */
    replica *r = backend_open();
    size_t bn;
    uint8_t *b = make_ltx(512, 9000, 1, 4, 1700000000123ll, 0, &bn);
    write_ok(r, 9, b, bn, 1);
    size_t b2n;
    uint8_t *b2 = make_ltx(512, 12000, 5, 5, 1700000000999ll, 0, &b2n);
    write_ok(r, 0, b2, b2n, 1);
    lay_out_vectors(r);
    write_vector(r, 1, "compact-txid1-2.ltx");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    double list_s = elapsed_since(&t0);
    ck_assert_uint_eq(n, 6);
    ck_assert_msg(list_s < 3.0, "listing all levels took %.2f s: not one round", list_s);

    replica_meta m[6];
    char err[LV_ERRLEN] = "";
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_msg(replica_fetch_meta(r, f, n, m, err) == LV_OK, "%s", err);
    double meta_s = elapsed_since(&t0);
    ck_assert_msg(meta_s >= 0.9, "fetch_meta took %.2f s: fewer than two rounds of 0.5 s?", meta_s);
    ck_assert_msg(meta_s < 3.0, "fetch_meta took %.2f s: more than two rounds", meta_s);
    replica_meta_free(m, n);

    /* and a fetch of every file whole is one round */
    collect c = {.n = n};
    c.files = calloc(n, sizeof *c.files);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_msg(replica_fetch(r, f, n, collect_sink, &c, err) == LV_OK, "%s", err);
    double fetch_s = elapsed_since(&t0);
    ck_assert_msg(fetch_s < 3.0, "fetching 6 files took %.2f s: not one round", fetch_s);
    collect_free(&c);
    free(b);
    free(b2);
    lv_free(f);
    backend_close(r);
}
END_TEST

static Suite *s3_suite(void)
{
    Suite *s = suite_create("replica_s3");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, fs3_setup, fs3_teardown);
    add_shared_tests(tc);
    suite_add_tcase(s, tc);

    tc = tcase_create("s3");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, fs3_setup, fs3_teardown);
    tcase_add_test(tc, test_s3_layout_and_timestamp_metadata);
    tcase_add_test(tc, test_s3_empty_prefix_has_no_leading_slash);
    tcase_add_test(tc, test_s3_list_all_levels_in_one_round);
    tcase_add_test(tc, test_s3_fetch_meta_round_trips);
    tcase_add_test(tc, test_s3_missing_bucket);
    tcase_add_test(tc, test_s3_wrong_secret);
    tcase_add_test(tc, test_s3_store_down_fails_in_bound);
    tcase_add_test(tc, test_s3_large_file_fetched_as_ranges);
    tcase_add_test(tc, test_s3_allocation_failures_do_not_leak);
    suite_add_tcase(s, tc);

    tc = tcase_create("latency");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, fs3_slow_setup, fs3_teardown);
    tcase_add_test(tc, test_s3_round_trips_by_the_clock);
    suite_add_tcase(s, tc);

    tc = tcase_create("faults");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_s3_faults_fetch_and_meta_are_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
