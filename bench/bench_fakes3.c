/*
 * bench_fakes3: fakes3 against s3rver (the npm package, the usual fake S3 of Node projects) on the
 * same machine, in the same run, driven by the same client.
 *
 * What it does, in order, for each server it starts:
 *   fakes3 --memory, fakes3 --data-dir DIR, fakes3 --data-dir DIR --fsync, and s3rver 3.7.1
 *   (installed by this program with `npm ci` from bench/s3rver/package-lock.json into the build
 *   folder, started with node on 127.0.0.1 on a free port, --silent, its directory in the same
 *   temporary folder as fakes3's), one after the other, each alone on the machine:
 *     1. PUT of 4 KiB objects at concurrency 1 and 16 for --seconds each, distinct keys;
 *     2. GET of 4 KiB objects (1000 stored beforehand, chosen at random) at concurrency 1 and 16;
 *     3. GET of one 64 MiB object at concurrency 1: one warm-up, then 5 timed, median MB/s;
 *     4. random 4 KiB ranged GETs (Range: bytes=a-b, 4 KiB-aligned) from that object, c=16;
 *     5. LIST of 10,000 keys (another bucket), ListObjectsV2 with 1000 keys per page as S3 does
 *        (10 requests): one warm-up, then 3 timed, median time per full listing.
 *   With --fsync only steps 1 and 2 are run: fsync changes writes only, and the listing and reads
 *   are the same code as without it.
 *   Then it prints each figure, the ratio fakes3/s3rver (for the listing: s3rver's time over
 *   fakes3's), and the aims of the issue, met or not (printed, never enforced).
 *
 * The client is this program: libcurl's multi interface on one thread, keep-alive connections,
 * N requests in flight for concurrency N, so the client costs little and the same for every
 * server. Latency is per request, from handing it to libcurl to its last byte; ops/s is requests
 * completed over the phase's wall time. Every response is checked (status, length, and the bytes
 * against what was stored; the listing's key count), so the figures are those of a server that
 * answered right.
 *
 * Requests are anonymous by default: s3rver 3.7 does not verify Signature V4 at all (its
 * authentication middleware accepts any V4 signature), so fakes3 runs with --anonymous for a fair
 * comparison. --signed signs every request with SigV4 (lib/sigv4), fakes3 then verifies each one
 * and s3rver still does not: that shows what fakes3's verification costs.
 *
 * --smoke runs every operation briefly against fakes3 only (memory, disk, disk+fsync; the disk one
 * with --signed requests so the signing code runs too), without s3rver or npm: CTest runs it so the
 * code keeps working. It does not judge timings either.
 *
 * Exit status: 0 when everything worked, whatever the timings; 1 when something functionally
 * failed (a server that did not start, a wrong status or body, npm ci failing); 2 for a bad
 * command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sigv4.h"

#ifndef BENCH_S3RVER_SRC
#define BENCH_S3RVER_SRC "bench/s3rver"
#endif

#define KiB           1024u
#define MiB           (1024u * 1024u)
#define SMALL_SIZE    (4 * KiB)
#define N_GET_KEYS    1000
#define BIG_SIZE      (64 * MiB)
#define N_LIST_KEYS   10000
#define LIST_PAGE     1000
#define BIG_REPS      5
#define LIST_REPS     3
#define MAX_SLOTS     64
#define START_TIMEOUT 30.0 /* seconds for a server to print its start-up line */

#define AIM_SMALL_RATIO 10.0
#define AIM_BIG_RATIO   1.5
#define AIM_LIST_RATIO  10.0

#define BUCKET      "bench"
#define LIST_BUCKET "bench-list"
#define ACCESS_KEY  "bench"
#define SECRET_KEY  "benchsecret"

/* ---- options and small helpers ------------------------------------------------------------- */

static struct {
    int smoke;
    int signed_requests;
    int no_s3rver;
    int keep;
    double seconds;
    const char *fakes3;
    const char *s3rver_src;
    const char *s3rver_prefix;
    const char *npm_cache;
    const char *dir;
} opt;

static int failed; /* something functionally failed: exit 1 */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_fakes3: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        die("out of memory");
    va_end(ap);
    return s;
}

/* xorshift64*: the benchmark's only randomness, seeded, so runs repeat. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- servers ------------------------------------------------------------------------------- */

typedef struct server {
    const char *label; /* "fakes3 --memory" */
    pid_t pid;
    int out_fd;     /* its stdout, kept open so that a late write cannot SIGPIPE it */
    char *err_path; /* its stderr */
    char url[128];  /* http://127.0.0.1:PORT */
} server;

static server *live_servers[8];

static void stop_server(server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int status = 0;
    double t0 = now();
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid || (r < 0 && errno != EINTR))
            break;
        if (now() - t0 > 10) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    s->pid = 0;
    if (s->out_fd >= 0)
        close(s->out_fd);
    s->out_fd = -1;
    for (size_t i = 0; i < sizeof live_servers / sizeof *live_servers; i++)
        if (live_servers[i] == s)
            live_servers[i] = NULL;
}

static void stop_all(void)
{
    for (size_t i = 0; i < sizeof live_servers / sizeof *live_servers; i++)
        if (live_servers[i])
            stop_server(live_servers[i]);
}

static char *tmp_dir; /* the temporary folder, removed at a signal or exit unless --keep */

static void at_exit(void)
{
    stop_all();
    if (tmp_dir && !opt.keep)
        rm_rf(tmp_dir);
}

static void on_signal(int sig)
{
    stop_all();
    if (tmp_dir && !opt.keep)
        rm_rf(tmp_dir);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void show_err_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n++ < 20)
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/*
 * Starts argv[0] with stdout to a pipe and stderr to err_path, and waits for a line containing
 * marker; the URL is taken from what follows marker ("http://..." for fakes3, "127.0.0.1:PORT" for
 * s3rver). Returns 0, or -1 after saying why.
 */
static int start_server(server *s, char *const argv[], const char *marker)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    int errfd = open(s->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (errfd < 0)
        die("%s: %s", s->err_path, strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(errfd, 2);
        close(pfd[0]);
        close(pfd[1]);
        close(errfd);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    close(errfd);
    s->pid = pid;
    s->out_fd = pfd[0];
    for (size_t i = 0; i < sizeof live_servers / sizeof *live_servers; i++)
        if (!live_servers[i]) {
            live_servers[i] = s;
            break;
        }
    char buf[4096];
    size_t len = 0;
    double t0 = now();
    for (;;) {
        buf[len] = 0;
        char *m = strstr(buf, marker);
        if (m && strchr(m, '\n')) {
            m += strlen(marker);
            while (*m == ' ')
                m++;
            size_t n = strcspn(m, " \r\n");
            if (strncmp(m, "http://", 7) == 0)
                snprintf(s->url, sizeof s->url, "%.*s", (int)n, m);
            else
                snprintf(s->url, sizeof s->url, "http://%.*s", (int)n, m);
            return 0;
        }
        double left = START_TIMEOUT - (now() - t0);
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
        int r = left > 0 ? poll(&p, 1, (int)(left * 1000)) : 0;
        if (r <= 0) {
            fprintf(stderr, "bench_fakes3: %s did not start in %.0f s\n", s->label, START_TIMEOUT);
            break;
        }
        ssize_t got = read(s->out_fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0) {
            fprintf(stderr, "bench_fakes3: %s exited at start\n", s->label);
            break;
        }
        len += (size_t)got;
        if (len == sizeof buf - 1)
            len = 0;
    }
    show_err_file(s->err_path);
    stop_server(s);
    return -1;
}

/* ---- HTTP client: libcurl multi, one easy handle per slot ----------------------------------- */

enum kind { K_PUT, K_GET, K_LIST, K_CREATE_BUCKET };

typedef struct slot {
    CURL *h;
    struct curl_slist *hdrs;
    int busy;
    double t0;
    enum kind kind;
    long want_status;
    const unsigned char *up; /* PUT body */
    size_t up_len, up_off;
    const unsigned char *expect; /* GET: the bytes it must return */
    size_t expect_len, got;
    int mismatch;
    char *coll; /* LIST: the body */
    size_t coll_len, coll_cap;
    char url[4096];
} slot;

typedef struct phase phase;
/* Sets up the slot's next request (sl->url, kind, body, expectation); 0 when there is none. */
typedef int (*next_fn)(phase *ph, slot *sl);

struct phase {
    const server *srv;
    int concurrency;
    double deadline; /* stop starting requests after this (0: no limit) */
    long max_ops;    /* stop after starting this many (0: no limit) */
    long started, completed, errors;
    char first_error[512];
    double *lat; /* seconds, one per completed request */
    size_t n_lat, cap_lat;
    double t_start, t_end;
    next_fn next;
    /* the workload's state */
    const char *key_prefix;
    long counter;
    const unsigned char *body;
    size_t body_len;
    const char *body_sha256; /* hex SHA-256 of body, for signing */
    long n_keys;
    char token[1024]; /* LIST: the next continuation token ("" at the start) */
    int list_done;
    long list_keys;
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    slot *sl = arg;
    size_t want = size * n, left = sl->up_len - sl->up_off;
    if (want > left)
        want = left;
    memcpy(buf, sl->up + sl->up_off, want);
    sl->up_off += want;
    return want;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    slot *sl = arg;
    size_t len = size * n;
    if (sl->kind == K_LIST || sl->coll_len < 512) { /* a listing, or the start of any body */
        if (sl->coll_len + len + 1 > sl->coll_cap) {
            sl->coll_cap = (sl->coll_len + len + 1) * 2;
            sl->coll = xrealloc(sl->coll, sl->coll_cap);
        }
        memcpy(sl->coll + sl->coll_len, data, len);
        sl->coll_len += len;
        sl->coll[sl->coll_len] = 0;
    }
    if (sl->expect) {
        if (sl->got + len > sl->expect_len || memcmp(sl->expect + sl->got, data, len) != 0)
            sl->mismatch = 1;
    }
    sl->got += len;
    return len;
}

/* The path and query of a URL ("http://h:p/path?query"), split for signing. */
static void sign_request(slot *sl, const char *method, const char *payload_sha256)
{
    const char *p = strstr(sl->url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    if (!p)
        return;
    char host[128];
    const char *h = strstr(sl->url, "://") + 3;
    snprintf(host, sizeof host, "%.*s", (int)(p - h), h);
    char path[512];
    const char *q = strchr(p, '?');
    snprintf(path, sizeof path, "%.*s", (int)(q ? (size_t)(q - p) : strlen(p)), p);
    char amz_date[SIGV4_DATE_LEN + 1];
    char err[LV_ERRLEN];
    sigv4_format_date((int64_t)time(NULL), amz_date, err);
    sigv4_header hs[3] = {
        {"host", host}, {"x-amz-date", amz_date}, {"x-amz-content-sha256", payload_sha256}};
    sigv4_request req = {.method = method,
                         .path = path,
                         .query = q ? q + 1 : NULL,
                         .headers = hs,
                         .n_headers = 3,
                         .payload_hash = payload_sha256};
    sigv4_credentials cr = {
        .access_key = ACCESS_KEY, .secret_key = SECRET_KEY, .region = "us-east-1", .service = "s3"};
    sigv4_result res;
    sigv4_result_init(&res);
    if (sigv4_sign(&req, &cr, amz_date, &res, err) != LV_OK)
        die("sigv4_sign: %s", err);
    char *a = fmt("Authorization: %s", (const char *)res.authorization.data);
    char *d = fmt("x-amz-date: %s", amz_date);
    char *c = fmt("x-amz-content-sha256: %s", payload_sha256);
    sl->hdrs = curl_slist_append(sl->hdrs, a);
    sl->hdrs = curl_slist_append(sl->hdrs, d);
    sl->hdrs = curl_slist_append(sl->hdrs, c);
    free(a);
    free(d);
    free(c);
    sigv4_result_free(&res);
}

/* Prepares sl->h for the request described by sl (url, kind, up, expect, range header). */
static void setup_easy(slot *sl, const char *range)
{
    CURL *h = sl->h;
    curl_easy_reset(h);
    curl_slist_free_all(sl->hdrs);
    sl->hdrs = curl_slist_append(NULL, "Expect:");
    if (range) {
        char r[96];
        snprintf(r, sizeof r, "Range: %s", range);
        sl->hdrs = curl_slist_append(sl->hdrs, r);
    }
    curl_easy_setopt(h, CURLOPT_URL, sl->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    sl->up_off = 0;
    sl->got = 0;
    sl->mismatch = 0;
    sl->coll_len = 0;
    if (sl->coll)
        sl->coll[0] = 0;
    if (sl->kind == K_PUT || sl->kind == K_CREATE_BUCKET) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, sl);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sl->up_len);
    }
}

static void add_signature(slot *sl, const char *payload_sha256)
{
    if (!opt.signed_requests)
        return;
    const char *method = (sl->kind == K_PUT || sl->kind == K_CREATE_BUCKET) ? "PUT" : "GET";
    sign_request(sl, method, payload_sha256);
}

static void record_error(phase *ph, const char *fmt_, ...)
{
    ph->errors++;
    if (ph->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt_);
    vsnprintf(ph->first_error, sizeof ph->first_error, fmt_, ap);
    va_end(ap);
}

/* LIST: takes the page's keys and continuation token from sl->coll. */
static void list_page_done(phase *ph, slot *sl)
{
    long keys = 0;
    for (const char *p = sl->coll; p && (p = strstr(p, "<Key>")); p += 5)
        keys++;
    ph->list_keys += keys;
    const char *t = sl->coll ? strstr(sl->coll, "<NextContinuationToken>") : NULL;
    int truncated = sl->coll && strstr(sl->coll, "<IsTruncated>true</IsTruncated>") != NULL;
    if (truncated && t) {
        t += strlen("<NextContinuationToken>");
        const char *e = strstr(t, "</NextContinuationToken>");
        size_t n = e ? (size_t)(e - t) : 0;
        if (n == 0 || n >= sizeof ph->token) {
            record_error(ph, "LIST: bad continuation token");
            ph->list_done = 1;
            return;
        }
        memcpy(ph->token, t, n);
        ph->token[n] = 0;
    } else {
        ph->list_done = 1;
        if (truncated)
            record_error(ph, "LIST: truncated without a continuation token");
    }
}

static void complete(phase *ph, slot *sl, CURLcode rc)
{
    double t = now();
    long status = 0;
    curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &status);
    ph->completed++;
    if (rc != CURLE_OK) {
        record_error(ph, "%s: %s", sl->url, curl_easy_strerror(rc));
    } else if (status != sl->want_status) {
        record_error(ph, "%s: HTTP %ld, want %ld: %.300s", sl->url, status, sl->want_status,
                     sl->coll ? sl->coll : "");
    } else if (sl->expect && (sl->mismatch || sl->got != sl->expect_len)) {
        record_error(ph, "%s: wrong body (%zu bytes, want %zu%s)", sl->url, sl->got, sl->expect_len,
                     sl->mismatch ? ", bytes differ" : "");
    } else {
        if (ph->n_lat == ph->cap_lat) {
            ph->cap_lat = ph->cap_lat ? ph->cap_lat * 2 : 4096;
            ph->lat = xrealloc(ph->lat, ph->cap_lat * sizeof *ph->lat);
        }
        ph->lat[ph->n_lat++] = t - sl->t0;
        if (sl->kind == K_LIST)
            list_page_done(ph, sl);
    }
    if (sl->kind == K_LIST && ph->errors > 0)
        ph->list_done = 1; /* never loop on a failing page */
    ph->t_end = t;
}

static slot slots[MAX_SLOTS];
static CURLM *multi;

static void run_phase(phase *ph)
{
    int c = ph->concurrency;
    if (c > MAX_SLOTS)
        c = MAX_SLOTS;
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)c + 4);
    ph->t_start = now();
    ph->t_end = ph->t_start;
    int active = 0;
    int stop = 0;
    for (;;) {
        for (int i = 0; i < c && !stop; i++) {
            slot *sl = &slots[i];
            if (sl->busy)
                continue;
            if ((ph->deadline > 0 && now() >= ph->deadline) ||
                (ph->max_ops > 0 && ph->started >= ph->max_ops) || !ph->next(ph, sl)) {
                stop = 1;
                break;
            }
            ph->started++;
            sl->busy = 1;
            sl->t0 = now();
            curl_multi_add_handle(multi, sl->h);
            active++;
        }
        if (active == 0)
            break;
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *sl = NULL;
            for (int i = 0; i < c; i++)
                if (slots[i].h == msg->easy_handle)
                    sl = &slots[i];
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, msg->easy_handle);
            if (!sl)
                continue;
            complete(ph, sl, rc);
            sl->busy = 0;
            active--;
        }
        if (active > 0 && running > 0)
            curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
}

/* ---- workloads ----------------------------------------------------------------------------- */

static unsigned char *small_body;
static unsigned char *big_body;
static size_t big_size;
static char small_sha[SIGV4_HEX_LEN + 1], big_sha[SIGV4_HEX_LEN + 1], empty_sha[SIGV4_HEX_LEN + 1];

/* The slot's next request is a PUT of the phase's body to sl->url (already written). */
static int start_put(phase *ph, slot *sl)
{
    sl->kind = K_PUT;
    sl->want_status = 200;
    sl->up = ph->body;
    sl->up_len = ph->body_len;
    sl->expect = NULL;
    setup_easy(sl, NULL);
    add_signature(sl, ph->body_sha256);
    curl_easy_setopt(sl->h, CURLOPT_HTTPHEADER, sl->hdrs);
    return 1;
}

/* The slot's next request is a GET of sl->url (already written) that must answer status with the
 * len bytes at expect; range: a Range header value, or NULL. */
static int start_get(slot *sl, long status, const unsigned char *expect, size_t len,
                     const char *range)
{
    sl->kind = K_GET;
    sl->want_status = status;
    sl->expect = expect;
    sl->expect_len = len;
    setup_easy(sl, range);
    add_signature(sl, empty_sha);
    curl_easy_setopt(sl->h, CURLOPT_HTTPHEADER, sl->hdrs);
    return 1;
}

static int next_put(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/%s%ld", ph->srv->url, BUCKET, ph->key_prefix,
             ph->counter++);
    return start_put(ph, sl);
}

static int next_put_obj(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/obj/%04ld", ph->srv->url, BUCKET, ph->counter++);
    return start_put(ph, sl);
}

static int next_put_list_key(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/k%05ld", ph->srv->url, LIST_BUCKET, ph->counter++);
    return start_put(ph, sl);
}

static int next_get_small(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/obj/%04ld", ph->srv->url, BUCKET,
             (long)(rnd() % (uint64_t)ph->n_keys));
    return start_get(sl, 200, small_body, SMALL_SIZE, NULL);
}

static int next_get_big(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/big", ph->srv->url, BUCKET);
    return start_get(sl, 200, big_body, big_size, NULL);
}

static int next_get_range(phase *ph, slot *sl)
{
    size_t blocks = big_size / SMALL_SIZE;
    size_t off = (size_t)(rnd() % blocks) * SMALL_SIZE;
    snprintf(sl->url, sizeof sl->url, "%s/%s/big", ph->srv->url, BUCKET);
    char range[64];
    snprintf(range, sizeof range, "bytes=%zu-%zu", off, off + SMALL_SIZE - 1);
    return start_get(sl, 206, big_body + off, SMALL_SIZE, range);
}

static void url_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

/* LIST pages are sequential: one in flight, the next one built from the previous answer. */
static int next_list(phase *ph, slot *sl)
{
    if (ph->list_done)
        return 0;
    if (ph->token[0]) {
        char tok[3 * sizeof ph->token];
        url_encode(ph->token, tok, sizeof tok);
        snprintf(sl->url, sizeof sl->url, "%s/%s?continuation-token=%s&list-type=2&max-keys=%d",
                 ph->srv->url, LIST_BUCKET, tok, LIST_PAGE);
    } else {
        snprintf(sl->url, sizeof sl->url, "%s/%s?list-type=2&max-keys=%d", ph->srv->url,
                 LIST_BUCKET, LIST_PAGE);
    }
    sl->kind = K_LIST;
    sl->want_status = 200;
    sl->expect = NULL;
    setup_easy(sl, NULL);
    add_signature(sl, empty_sha);
    curl_easy_setopt(sl->h, CURLOPT_HTTPHEADER, sl->hdrs);
    return 1;
}

static int next_create_bucket(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s", ph->srv->url, ph->key_prefix);
    sl->kind = K_CREATE_BUCKET;
    sl->want_status = 200;
    sl->up = NULL;
    sl->up_len = 0;
    sl->expect = NULL;
    setup_easy(sl, NULL);
    add_signature(sl, empty_sha);
    curl_easy_setopt(sl->h, CURLOPT_HTTPHEADER, sl->hdrs);
    return 1;
}

static void phase_init(phase *ph, const server *s, int concurrency, next_fn next)
{
    memset(ph, 0, sizeof *ph);
    ph->srv = s;
    ph->concurrency = concurrency;
    ph->next = next;
}

static void phase_free(phase *ph)
{
    free(ph->lat);
    ph->lat = NULL;
}

static int check_phase(phase *ph, const char *what)
{
    if (ph->errors == 0)
        return 0;
    fprintf(stderr, "bench_fakes3: %s, %s: %ld of %ld requests failed; first: %s\n", ph->srv->label,
            what, ph->errors, ph->completed, ph->first_error);
    failed = 1;
    return -1;
}

/* ---- figures ------------------------------------------------------------------------------- */

typedef struct ops_figure {
    int have;
    double ops, p50_ms, p99_ms;
} ops_figure;

enum { PUT_C1, PUT_C16, GET_C1, GET_C16, RANGE_C16, N_OPS };
static const char *op_names[N_OPS] = {"PUT 4 KiB, concurrency 1", "PUT 4 KiB, concurrency 16",
                                      "GET 4 KiB, concurrency 1", "GET 4 KiB, concurrency 16",
                                      "ranged GET 4 KiB of 64 MiB, concurrency 16"};

typedef struct target {
    const char *label;
    int is_s3rver;
    int fsync_variant; /* only the small-object phases */
    server srv;
    int ok;
    ops_figure ops[N_OPS];
    double big_mbps; /* 0: not measured */
    double list_ms;
    long list_keys;
} target;

static ops_figure timed_ops(const server *s, int c, next_fn next, const char *prefix,
                            const char *what)
{
    phase ph;
    phase_init(&ph, s, c, next);
    ph.key_prefix = prefix;
    ph.body = small_body;
    ph.body_len = SMALL_SIZE;
    ph.body_sha256 = small_sha;
    ph.n_keys = opt.smoke ? 50 : N_GET_KEYS;
    ph.deadline = now() + opt.seconds;
    run_phase(&ph);
    ops_figure f = {0};
    if (check_phase(&ph, what) == 0 && ph.n_lat > 0) {
        double el = ph.t_end - ph.t_start;
        f.have = 1;
        f.ops = el > 0 ? (double)ph.n_lat / el : 0;
        qsort(ph.lat, ph.n_lat, sizeof *ph.lat, cmp_double);
        f.p50_ms = ph.lat[(ph.n_lat - 1) / 2] * 1e3;
        f.p99_ms = ph.lat[(size_t)((double)(ph.n_lat - 1) * 0.99)] * 1e3;
    }
    phase_free(&ph);
    return f;
}

/* An untimed phase: count requests of next at concurrency c; 0 when all succeeded. */
static int untimed(const server *s, int c, long count, next_fn next, const char *prefix,
                   const unsigned char *body, size_t len, const char *sha, const char *what)
{
    phase ph;
    phase_init(&ph, s, c, next);
    ph.key_prefix = prefix;
    ph.body = body;
    ph.body_len = len;
    ph.body_sha256 = sha;
    ph.max_ops = count;
    run_phase(&ph);
    int rc = check_phase(&ph, what);
    phase_free(&ph);
    return rc;
}

static int next_put_fixed(phase *ph, slot *sl)
{
    snprintf(sl->url, sizeof sl->url, "%s/%s/%s", ph->srv->url, BUCKET, ph->key_prefix);
    return start_put(ph, sl);
}

static void run_target(target *t)
{
    const server *s = &t->srv;
    printf("  %-28s %s\n", t->label, s->url);
    fflush(stdout);
    long n_get = opt.smoke ? 50 : N_GET_KEYS;
    long n_list = opt.smoke ? 2500 : N_LIST_KEYS;
    if (untimed(s, 1, 1, next_create_bucket, BUCKET, NULL, 0, empty_sha, "create bucket") ||
        untimed(s, 16, n_get, next_put_obj, NULL, small_body, SMALL_SIZE, small_sha,
                "store the objects for the GETs"))
        return;
    t->ok = 1;
    t->ops[PUT_C1] = timed_ops(s, 1, next_put, "put1/", "PUT c=1");
    t->ops[PUT_C16] = timed_ops(s, 16, next_put, "put16/", "PUT c=16");
    t->ops[GET_C1] = timed_ops(s, 1, next_get_small, NULL, "GET c=1");
    t->ops[GET_C16] = timed_ops(s, 16, next_get_small, NULL, "GET c=16");
    if (t->fsync_variant)
        return;

    /* the 64 MiB object */
    if (untimed(s, 1, 1, next_put_fixed, "big", big_body, big_size, big_sha, "PUT 64 MiB"))
        return;
    double mbps[BIG_REPS];
    int reps = opt.smoke ? 2 : BIG_REPS;
    for (int r = -1; r < reps; r++) {
        phase ph;
        phase_init(&ph, s, 1, next_get_big);
        ph.max_ops = 1;
        double t0 = now();
        run_phase(&ph);
        double el = now() - t0;
        int bad = check_phase(&ph, "GET 64 MiB");
        phase_free(&ph);
        if (bad)
            return;
        if (r >= 0)
            mbps[r] = (double)big_size / 1e6 / el;
    }
    t->big_mbps = median(mbps, (size_t)reps);
    t->ops[RANGE_C16] = timed_ops(s, 16, next_get_range, NULL, "ranged GET c=16");

    /* the listing */
    static unsigned char list_body[16];
    memset(list_body, 'x', sizeof list_body);
    static char list_sha[SIGV4_HEX_LEN + 1];
    char err[LV_ERRLEN];
    sigv4_sha256_hex(list_body, sizeof list_body, list_sha, err);
    if (untimed(s, 1, 1, next_create_bucket, LIST_BUCKET, NULL, 0, empty_sha,
                "create the listing bucket") ||
        untimed(s, 16, n_list, next_put_list_key, NULL, list_body, sizeof list_body, list_sha,
                "store the listing's keys"))
        return;
    double ms[LIST_REPS];
    int lreps = opt.smoke ? 1 : LIST_REPS;
    for (int r = -1; r < lreps; r++) {
        /* pages one after the other: each request needs the previous one's token */
        phase ph;
        phase_init(&ph, s, 1, next_list);
        double t0 = now();
        while (!ph.list_done) {
            ph.max_ops = ph.started + 1;
            run_phase(&ph);
        }
        double el = now() - t0;
        int bad = check_phase(&ph, "LIST");
        long keys = ph.list_keys;
        phase_free(&ph);
        if (bad)
            return;
        if (keys != n_list) {
            fprintf(stderr, "bench_fakes3: %s: the listing gave %ld keys, want %ld\n", t->label,
                    keys, n_list);
            failed = 1;
            return;
        }
        t->list_keys = keys;
        if (r >= 0)
            ms[r] = el * 1e3;
    }
    t->list_ms = median(ms, (size_t)lreps);
}

/* ---- npm ci of s3rver ---------------------------------------------------------------------- */

static int file_sha256(const char *path, char out[SIGV4_HEX_LEN + 1])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    char err[LV_ERRLEN];
    int rc = sigv4_sha256_hex(buf, len, out, err) == LV_OK ? 0 : -1;
    free(buf);
    return rc;
}

static int run_shell(const char *cmd)
{
    int rc = system(cmd);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

/* Installs s3rver from the lock file into opt.s3rver_prefix; 0 when it is there. */
static int install_s3rver(void)
{
    char *lock = fmt("%s/package-lock.json", opt.s3rver_src);
    char sum[SIGV4_HEX_LEN + 1];
    if (file_sha256(lock, sum) < 0) {
        fprintf(stderr, "bench_fakes3: cannot read %s\n", lock);
        free(lock);
        return -1;
    }
    char *stamp = fmt("%s/node_modules/.ltxvfs-lock-sha256", opt.s3rver_prefix);
    char *bin = fmt("%s/node_modules/s3rver/bin/s3rver.js", opt.s3rver_prefix);
    char have[SIGV4_HEX_LEN + 2] = "";
    FILE *f = fopen(stamp, "r");
    if (f) {
        if (!fgets(have, sizeof have, f))
            have[0] = 0;
        fclose(f);
        have[strcspn(have, "\n")] = 0;
    }
    int rc = 0;
    if (strcmp(have, sum) != 0 || access(bin, R_OK) != 0) {
        printf("installing s3rver (npm ci) into %s\n", opt.s3rver_prefix);
        fflush(stdout);
        char *cmd = fmt("mkdir -p '%s' && cp '%s/package.json' '%s' '%s/' && cd '%s' && "
                        "timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error "
                        "--cache '%s' >npm.log 2>&1",
                        opt.s3rver_prefix, opt.s3rver_src, lock, opt.s3rver_prefix,
                        opt.s3rver_prefix, opt.npm_cache);
        rc = run_shell(cmd);
        free(cmd);
        if (rc != 0) {
            fprintf(stderr, "bench_fakes3: npm ci of s3rver failed (status %d); see %s/npm.log\n",
                    rc, opt.s3rver_prefix);
            rc = -1;
        } else if ((f = fopen(stamp, "w"))) {
            fprintf(f, "%s\n", sum);
            fclose(f);
        }
    }
    free(lock);
    free(stamp);
    free(bin);
    return rc;
}

/* ---- output -------------------------------------------------------------------------------- */

static target *s3rver_target(target *ts, int n)
{
    for (int i = 0; i < n; i++)
        if (ts[i].is_s3rver && ts[i].ok)
            return &ts[i];
    return NULL;
}

static void print_ratio(double ours, double base)
{
    if (ours > 0 && base > 0)
        printf("  %7.1fx", ours / base);
    else
        printf("  %8s", "");
}

static void print_results(target *ts, int n)
{
    target *base = s3rver_target(ts, n);
    for (int op = 0; op < N_OPS; op++) {
        printf("\n%s%s\n", op_names[op], base ? "  (ratio: ops/s over s3rver's)" : "");
        printf("  %-28s %10s %9s %9s\n", "server", "ops/s", "p50 ms", "p99 ms");
        for (int i = 0; i < n; i++) {
            ops_figure *f = &ts[i].ops[op];
            if (!f->have)
                continue;
            printf("  %-28s %10.0f %9.2f %9.2f", ts[i].label, f->ops, f->p50_ms, f->p99_ms);
            if (base && !ts[i].is_s3rver)
                print_ratio(f->ops, base->ops[op].ops);
            printf("\n");
        }
    }
    printf("\nGET of a 64 MiB object, concurrency 1 (median of %d)%s\n", opt.smoke ? 2 : BIG_REPS,
           base ? "  (ratio: MB/s over s3rver's)" : "");
    printf("  %-28s %10s %9s\n", "server", "MB/s", "ms");
    for (int i = 0; i < n; i++) {
        if (ts[i].big_mbps <= 0)
            continue;
        printf("  %-28s %10.0f %9.1f", ts[i].label, ts[i].big_mbps,
               (double)big_size / 1e6 / ts[i].big_mbps * 1e3);
        if (base && !ts[i].is_s3rver)
            print_ratio(ts[i].big_mbps, base->big_mbps);
        printf("\n");
    }
    printf("\nLIST of %d keys, %d per page (median of %d full listings)%s\n",
           opt.smoke ? 2500 : N_LIST_KEYS, LIST_PAGE, opt.smoke ? 1 : LIST_REPS,
           base ? "  (ratio: s3rver's time over this one's)" : "");
    printf("  %-28s %10s\n", "server", "ms");
    for (int i = 0; i < n; i++) {
        if (ts[i].list_ms <= 0)
            continue;
        printf("  %-28s %10.1f", ts[i].label, ts[i].list_ms);
        if (base && !ts[i].is_s3rver)
            print_ratio(base->list_ms, ts[i].list_ms);
        printf("\n");
    }
}

static void aim(const char *what, double ours, double base, double want, int inverse)
{
    if (ours <= 0 || base <= 0) {
        printf("  %-52s %s\n", what, "not measured");
        return;
    }
    double ratio = inverse ? base / ours : ours / base;
    printf("  %-52s %7.1fx  (want >= %.1fx)  %s\n", what, ratio, want,
           ratio >= want ? "met" : "NOT met");
}

static void print_aims(target *ts, int n)
{
    target *base = s3rver_target(ts, n), *disk = NULL, *fs = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i].ok || ts[i].is_s3rver)
            continue;
        if (ts[i].fsync_variant)
            fs = &ts[i];
        else if (strstr(ts[i].label, "data-dir"))
            disk = &ts[i];
    }
    if (!base)
        return;
    printf("\nAims of the issue (fakes3 with its default disk store, and with --fsync, "
           "over s3rver; printed, not enforced)\n");
    if (disk) {
        aim("PUT 4 KiB ops/s at c=16, --data-dir", disk->ops[PUT_C16].ops, base->ops[PUT_C16].ops,
            AIM_SMALL_RATIO, 0);
        aim("GET 4 KiB ops/s at c=16, --data-dir", disk->ops[GET_C16].ops, base->ops[GET_C16].ops,
            AIM_SMALL_RATIO, 0);
    }
    if (fs) {
        aim("PUT 4 KiB ops/s at c=16, --data-dir --fsync", fs->ops[PUT_C16].ops,
            base->ops[PUT_C16].ops, AIM_SMALL_RATIO, 0);
        aim("GET 4 KiB ops/s at c=16, --data-dir --fsync", fs->ops[GET_C16].ops,
            base->ops[GET_C16].ops, AIM_SMALL_RATIO, 0);
    }
    if (disk) {
        aim("GET 64 MiB MB/s at c=1, --data-dir", disk->big_mbps, base->big_mbps, AIM_BIG_RATIO, 0);
        aim("LIST 10,000 keys (time), --data-dir", disk->list_ms, base->list_ms, AIM_LIST_RATIO, 1);
    }
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_fakes3 [options]\n"
            "\n"
            "fakes3 against s3rver on this machine, in one run: 4 KiB PUT and GET ops/s at\n"
            "concurrency 1 and 16 with p50/p99 latency, a 64 MiB GET in MB/s, random 4 KiB ranged\n"
            "GETs from it at concurrency 16, and a LIST of 10,000 keys in pages of 1000; for\n"
            "fakes3 --memory, --data-dir, --data-dir --fsync (small objects only) and s3rver\n"
            "(installed with npm ci from bench/s3rver/package-lock.json). Prints every figure,\n"
            "the ratios and the issue's aims (never enforced). About 2 minutes.\n"
            "\n"
            "  --seconds S        length of each timed ops/s phase (default 2)\n"
            "  --signed           sign every request with SigV4 (fakes3 verifies them; s3rver\n"
            "                     does not verify V4 signatures); default: anonymous requests and\n"
            "                     fakes3 --anonymous\n"
            "  --no-s3rver        fakes3 only (no npm, no node)\n"
            "  --fakes3 PATH      the fakes3 binary (default: fakes3 beside this program)\n"
            "  --s3rver-src DIR   where package.json and package-lock.json of s3rver are\n"
            "                     (default %s)\n"
            "  --s3rver-prefix DIR  where to npm ci s3rver (default: bench-s3rver beside this\n"
            "                     program); reused when it holds the same lock file\n"
            "  --npm-cache DIR    npm's cache (default: npm-cache beside this program)\n"
            "  --dir DIR          where the temporary folder with the data directories goes\n"
            "                     (default $TMPDIR or /tmp; a disk, so --fsync means something)\n"
            "  --keep             keep the temporary folder\n"
            "  --smoke            every operation briefly against fakes3 only (memory, disk,\n"
            "                     disk+fsync, the disk one signed): a functional check for CTest\n"
            "  --help             this text\n"
            "\n"
            "Exit status: 0 when everything worked, whatever the timings; 1 when something failed\n"
            "(a server that did not start, a wrong answer, npm ci); 2 for a bad command line.\n",
            BENCH_S3RVER_SRC);
}

static char *beside_self(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return xstrdup(name);
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    return fmt("%s/%s", self, name);
}

int main(int argc, char **argv)
{
    opt.seconds = 2.0;
    opt.s3rver_src = BENCH_S3RVER_SRC;
    static const struct option longopts[] = {{"seconds", required_argument, 0, 's'},
                                             {"signed", no_argument, 0, 'S'},
                                             {"no-s3rver", no_argument, 0, 'n'},
                                             {"fakes3", required_argument, 0, 'f'},
                                             {"s3rver-src", required_argument, 0, 'r'},
                                             {"s3rver-prefix", required_argument, 0, 'p'},
                                             {"npm-cache", required_argument, 0, 'c'},
                                             {"dir", required_argument, 0, 'd'},
                                             {"keep", no_argument, 0, 'k'},
                                             {"smoke", no_argument, 0, 'm'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            char *end;
            opt.seconds = strtod(optarg, &end);
            if (*end || opt.seconds <= 0 || opt.seconds > 600) {
                fprintf(stderr, "bench_fakes3: --seconds wants a number of seconds (0-600]\n");
                return 2;
            }
            break;
        }
        case 'S':
            opt.signed_requests = 1;
            break;
        case 'n':
            opt.no_s3rver = 1;
            break;
        case 'f':
            opt.fakes3 = optarg;
            break;
        case 'r':
            opt.s3rver_src = optarg;
            break;
        case 'p':
            opt.s3rver_prefix = optarg;
            break;
        case 'c':
            opt.npm_cache = optarg;
            break;
        case 'd':
            opt.dir = optarg;
            break;
        case 'k':
            opt.keep = 1;
            break;
        case 'm':
            opt.smoke = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (opt.smoke) {
        opt.no_s3rver = 1;
        opt.seconds = 0.15;
    }
    if (!opt.fakes3)
        opt.fakes3 = beside_self("fakes3");
    if (!opt.s3rver_prefix)
        opt.s3rver_prefix = beside_self("bench-s3rver");
    if (!opt.npm_cache)
        opt.npm_cache = beside_self("npm-cache");
    if (access(opt.fakes3, X_OK) != 0)
        die("no executable fakes3 at %s (--fakes3)", opt.fakes3);
    if (!opt.dir)
        opt.dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(at_exit);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("curl_global_init failed");
    multi = curl_multi_init();
    for (int i = 0; i < MAX_SLOTS; i++) {
        slots[i].h = curl_easy_init();
        if (!slots[i].h)
            die("curl_easy_init failed");
    }

    /* bodies: random, seeded; the 64 MiB one is what ranged GETs are checked against */
    big_size = opt.smoke ? 8 * MiB : BIG_SIZE;
    small_body = xmalloc(SMALL_SIZE);
    big_body = xmalloc(big_size);
    for (size_t i = 0; i < SMALL_SIZE; i += 8) {
        uint64_t r = rnd();
        memcpy(small_body + i, &r, 8);
    }
    for (size_t i = 0; i < big_size; i += 8) {
        uint64_t r = rnd();
        memcpy(big_body + i, &r, 8);
    }
    char err[LV_ERRLEN];
    sigv4_sha256_hex(small_body, SMALL_SIZE, small_sha, err);
    sigv4_sha256_hex(big_body, big_size, big_sha, err);
    sigv4_sha256_hex("", 0, empty_sha, err);

    char *tmp = fmt("%s/bench_fakes3.XXXXXX", opt.dir);
    if (!mkdtemp(tmp))
        die("mkdtemp %s: %s", tmp, strerror(errno));
    tmp_dir = tmp;

    int have_s3rver = 0;
    if (!opt.no_s3rver) {
        if (install_s3rver() == 0)
            have_s3rver = 1;
        else
            failed = 1;
    }

    struct utsname un;
    uname(&un);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    time_t t = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    printf(
        "bench_fakes3%s: %s, %s %s, %ld cores; %s requests; %.2g s per ops/s phase; libcurl %s\n",
        opt.smoke ? " --smoke" : "", date, un.sysname, un.machine, cores,
        opt.signed_requests ? "SigV4-signed" : "anonymous", opt.seconds,
        curl_version_info(CURLVERSION_NOW)->version);
    printf("data directories in %s\n", tmp);
    double load[3];
    if (getloadavg(load, 3) == 3) {
        printf("load average at start: %.2f %.2f %.2f", load[0], load[1], load[2]);
        if (load[0] > (double)cores * 0.5)
            printf("  (a busy machine: the figures will be low and noisy; the ratios less so)");
        printf("\n");
    }

    target ts[4];
    int n = 0;
    memset(ts, 0, sizeof ts);
    ts[n++].label = "fakes3 --memory";
    ts[n++].label = "fakes3 --data-dir";
    ts[n].label = "fakes3 --data-dir --fsync";
    ts[n++].fsync_variant = 1;
    if (have_s3rver) {
        ts[n].label = "s3rver 3.7.1";
        ts[n++].is_s3rver = 1;
    }
    int signed_default = opt.signed_requests;
    for (int i = 0; i < n; i++) {
        target *tg = &ts[i];
        server *s = &tg->srv;
        s->label = tg->label;
        s->out_fd = -1;
        s->err_path = fmt("%s/server%d.err", tmp, i);
        /* smoke: the disk store with signed requests, so the signing code runs too */
        opt.signed_requests = signed_default || (opt.smoke && i == 1);
        if (opt.smoke && i == 1)
            tg->label = s->label = "fakes3 --data-dir (SigV4)";
        int rc;
        if (tg->is_s3rver) {
            char *dir = fmt("%s/s3rver", tmp);
            char *js = fmt("%s/node_modules/s3rver/bin/s3rver.js", opt.s3rver_prefix);
            /* s3rver makes its continuation tokens with DES, which Node 17+ (OpenSSL 3) has only
             * in the legacy provider: without it every truncated listing is a 500. */
            char *av[] = {"node",      "--openssl-legacy-provider",
                          js,          "-d",
                          dir,         "-a",
                          "127.0.0.1", "-p",
                          "0",         "--silent",
                          NULL};
            rc = start_server(s, av, "S3rver listening on");
            free(js);
            free(dir);
        } else {
            char *dir = fmt("%s/fakes3-%d", tmp, i);
            char *av[16];
            int k = 0;
            av[k++] = (char *)opt.fakes3;
            av[k++] = "--listen";
            av[k++] = "127.0.0.1:0";
            if (opt.signed_requests) {
                av[k++] = "--access-key";
                av[k++] = ACCESS_KEY;
                av[k++] = "--secret-key";
                av[k++] = SECRET_KEY;
            } else {
                av[k++] = "--anonymous";
            }
            if (i == 0) {
                av[k++] = "--memory";
            } else {
                av[k++] = "--data-dir";
                av[k++] = dir;
            }
            if (tg->fsync_variant)
                av[k++] = "--fsync";
            av[k] = NULL;
            rc = start_server(s, av, "listening on");
            free(dir);
        }
        if (rc != 0) {
            failed = 1;
            continue;
        }
        run_target(tg);
        stop_server(s);
        if (!tg->ok)
            failed = 1;
    }
    opt.signed_requests = signed_default;

    print_results(ts, n);
    print_aims(ts, n);
    if (opt.smoke)
        printf("\n(a smoke run: its figures say nothing)\n");

    for (int i = 0; i < MAX_SLOTS; i++) {
        curl_easy_cleanup(slots[i].h);
        curl_slist_free_all(slots[i].hdrs);
        free(slots[i].coll);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    if (!opt.keep)
        rm_rf(tmp);
    else
        printf("kept %s\n", tmp);
    for (int i = 0; i < n; i++)
        free(ts[i].srv.err_path);
    tmp_dir = NULL;
    free(tmp);
    free(small_body);
    free(big_body);
    if (failed)
        fprintf(stderr, "bench_fakes3: something failed (see above)\n");
    return failed ? 1 : 0;
}
