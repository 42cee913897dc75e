/*
 * bench_chaos: what fakes3's fault injection costs and how exact its delays are.
 *
 * It starts fakes3 itself (build/fakes3, --memory --anonymous, on a free 127.0.0.1 port) three
 * ways, one after the other, and drives it with a libcurl multi client on one thread (keep-alive
 * connections, N requests in flight for concurrency N; a request's time is from handing it to
 * libcurl to its last byte). Every response is checked (status 200, 4 KiB body).
 *
 *   1. --latency 40ms: GET 4 KiB one at a time (400 requests; --smoke 20): p50 and p99 against
 *      40 ms (aim: p50 within 2 ms of 40 ms); then 16 GETs at once on 16 warm connections, 20
 *      rounds (--smoke 3): the median and worst wall time of a round (aim: under 60 ms, since a
 *      delay is a sleep on the request's own thread and never serialises the others).
 *   2. no rules, and 3. 100 rules that never fire: GET 4 KiB at concurrency 16 for --seconds
 *      (default 3; --smoke 0.3), alternated (none, rules, none, rules) and the better of each
 *      kept, to damp the noise of a shared machine. The rules are the engine's harder case: each
 *      names the operation (op=GetObject, which matches) and a key glob that does not, so every
 *      request is tested against all 100. Prints requests/s of each and the cost (aim: < 5%).
 *
 * Figures are printed with the aims, met or not; nothing is enforced. Exit status: 0 when every
 * request was answered right, whatever the timings; 1 when something functionally failed (a
 * server that did not start, a wrong status or body); 2 for a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "chaos.h"

#define OBJ_SIZE      4096
#define CONC          16
#define N_RULES       100
#define START_TIMEOUT 30.0
#define LATENCY_MS    40.0

#define AIM_P50_MS  2.0  /* p50 within this of 40 ms */
#define AIM_WALL_MS 60.0 /* 16 concurrent requests under 40 ms latency */
#define AIM_COST    0.05 /* 100 non-matching rules cost under 5% of throughput */

static struct {
    int smoke;
    double seconds;
    const char *fakes3;
} opt = {.seconds = 3.0};

static int failed;

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
    fprintf(stderr, "bench_chaos: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of v[0..n), sorted in place: nearest rank. */
static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)n + 0.999999);
    i = i == 0 ? 0 : i - 1;
    return v[i < n ? i : n - 1];
}

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct server {
    pid_t pid;
    int out_fd;
    char url[128];
    char err_path[PATH_MAX];
    double cpu; /* after stop_server: the CPU seconds (user + system) the server used */
} server;

static server *live;

static void stop_server(server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int status = 0;
    double t0 = now();
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(s->pid, &status, WNOHANG, &ru) == 0) {
        if (now() - t0 > 10) {
            kill(s->pid, SIGKILL);
            wait4(s->pid, &status, 0, &ru);
            break;
        }
        usleep(10000);
    }
    s->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    s->pid = 0;
    close(s->out_fd);
    unlink(s->err_path);
    live = NULL;
}

static void on_exit_stop(void)
{
    if (live)
        stop_server(live);
}

static void on_signal(int sig)
{
    on_exit_stop();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts fakes3 with extra (NULL-terminated) arguments; waits for its start-up line. */
static void start_server(server *s, const char *const *extra)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = opt.fakes3;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--memory";
    argv[n++] = "--anonymous";
    argv[n++] = "--bucket";
    argv[n++] = "bench";
    argv[n++] = "--seed";
    argv[n++] = "1";
    while (extra && *extra && n < 31)
        argv[n++] = *extra++;
    argv[n] = NULL;
    snprintf(s->err_path, sizeof s->err_path, "/tmp/bench_chaos.%d.err", (int)getpid());
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
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    close(errfd);
    s->pid = pid;
    s->out_fd = pfd[0];
    live = s;
    char buf[4096];
    size_t len = 0;
    double t0 = now();
    for (;;) {
        buf[len] = 0;
        char *m = strstr(buf, "listening on ");
        if (m && strchr(m, '\n')) {
            m += strlen("listening on ");
            snprintf(s->url, sizeof s->url, "%.*s", (int)strcspn(m, " \n"), m);
            return;
        }
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
        double left = START_TIMEOUT - (now() - t0);
        if (left <= 0 || poll(&p, 1, (int)(left * 1000)) <= 0)
            die("fakes3 did not start in %.0f s (see %s)", START_TIMEOUT, s->err_path);
        ssize_t got = read(s->out_fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            die("fakes3 exited at start (see %s)", s->err_path);
        len += (size_t)got;
        if (len == sizeof buf - 1)
            len = 0;
    }
}

/* ---- the client ------------------------------------------------------------------------------ */

typedef struct slot {
    CURL *h;
    double t0;
    size_t got;
    int busy;
} slot;

static slot slots[CONC];
static CURLM *multi;
static char url_get[256], url_put[256];
static unsigned char body[OBJ_SIZE];

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    ((slot *)arg)->got += size * n;
    return size * n;
}

static void start_get(slot *sl)
{
    if (!sl->h) {
        sl->h = curl_easy_init();
        if (!sl->h)
            die("curl_easy_init");
        curl_easy_setopt(sl->h, CURLOPT_URL, url_get);
        curl_easy_setopt(sl->h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(sl->h, CURLOPT_WRITEDATA, sl);
        curl_easy_setopt(sl->h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(sl->h, CURLOPT_NOSIGNAL, 1L);
    }
    sl->got = 0;
    sl->busy = 1;
    sl->t0 = now();
    curl_multi_add_handle(multi, sl->h);
}

/* Waits for one request to end: its slot (checked: 200 and the whole body); *secs its time. */
static slot *finish_one(double *secs)
{
    for (;;) {
        int running = 0, left = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *sl = NULL;
            for (int i = 0; i < CONC; i++)
                if (slots[i].h == msg->easy_handle)
                    sl = &slots[i];
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, msg->easy_handle);
            if (!sl)
                die("a transfer of no slot");
            sl->busy = 0;
            *secs = now() - sl->t0;
            if (rc != CURLE_OK || status != 200 || sl->got != OBJ_SIZE) {
                fprintf(stderr, "bench_chaos: GET: %s, HTTP %ld, %zu bytes\n",
                        curl_easy_strerror(rc), status, sl->got);
                failed = 1;
            }
            return sl;
        }
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
}

static void close_slots(void)
{
    for (int i = 0; i < CONC; i++) {
        if (slots[i].h)
            curl_easy_cleanup(slots[i].h);
        slots[i].h = NULL;
    }
}

static void put_object(const server *s)
{
    snprintf(url_get, sizeof url_get, "%s/bench/obj", s->url);
    snprintf(url_put, sizeof url_put, "%s/bench/obj", s->url);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url_put);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)OBJ_SIZE);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || status != 200)
        die("PUT %s: %s, HTTP %ld", url_put, curl_easy_strerror(rc), status);
}

/* ---- the measurements ------------------------------------------------------------------------ */

static void latency_accuracy(void)
{
    server s = {0};
    const char *extra[] = {"--latency", "40ms", NULL};
    start_server(&s, extra);
    put_object(&s);
    int n = opt.smoke ? 20 : 400, rounds = opt.smoke ? 3 : 20;
    double *t = calloc((size_t)n, sizeof *t), secs;
    if (!t)
        die("out of memory");
    start_get(&slots[0]); /* the connection, warmed */
    finish_one(&secs);
    for (int i = 0; i < n; i++) {
        start_get(&slots[0]);
        finish_one(&t[i]);
    }
    double p50 = quantile(t, (size_t)n, 0.50) * 1e3, p99 = quantile(t, (size_t)n, 0.99) * 1e3;
    free(t);

    double *wall = calloc((size_t)rounds, sizeof *wall);
    if (!wall)
        die("out of memory");
    for (int r = -1; r < rounds; r++) { /* round -1 opens the 16 connections */
        double t0 = now();
        for (int i = 0; i < CONC; i++)
            start_get(&slots[i]);
        for (int i = 0; i < CONC; i++)
            finish_one(&secs);
        if (r >= 0)
            wall[r] = (now() - t0) * 1e3;
    }
    double wall_med = quantile(wall, (size_t)rounds, 0.5), wall_max = wall[rounds - 1];
    free(wall);
    close_slots();
    stop_server(&s);

    printf("--latency 40ms, GET 4 KiB one at a time (%d requests):\n", n);
    printf("  p50 %.2f ms, p99 %.2f ms (p50 - 40 ms = %+.2f ms)\n", p50, p99, p50 - LATENCY_MS);
    printf("--latency 40ms, 16 GETs at once (%d rounds):\n", rounds);
    printf("  wall time median %.2f ms, worst %.2f ms (16 x 40 ms = 640 ms serialised; ratio "
           "%.2f of one delay)\n",
           wall_med, wall_max, wall_med / LATENCY_MS);
    printf("  aim: p50 within %.0f ms of 40 ms: %s\n", AIM_P50_MS,
           p50 - LATENCY_MS <= AIM_P50_MS && p50 >= LATENCY_MS ? "met" : "NOT met");
    printf("  aim: 16 concurrent under %.0f ms: %s\n", AIM_WALL_MS,
           wall_med < AIM_WALL_MS ? "met" : "NOT met");
    if (p50 < LATENCY_MS - 0.5) {
        fprintf(stderr, "bench_chaos: p50 %.2f ms is below the 40 ms latency\n", p50);
        failed = 1;
    }
}

/* GETs at concurrency 16 for opt.seconds: requests per second; *cpu_us the server's CPU time
 * per request (microseconds, all its requests counted), a figure the machine's load moves less. */
static double throughput(const char *const *extra, double *cpu_us)
{
    server s = {0};
    start_server(&s, extra);
    put_object(&s);
    double secs;
    for (int i = 0; i < CONC; i++) /* open and warm the connections */
        start_get(&slots[i]);
    for (int i = 0; i < CONC; i++)
        finish_one(&secs);
    long done = 0;
    double t0 = now(), end = t0 + opt.seconds;
    for (int i = 0; i < CONC; i++)
        start_get(&slots[i]);
    int in_flight = CONC;
    while (in_flight) {
        slot *sl = finish_one(&secs);
        done++;
        in_flight--;
        if (now() < end) {
            start_get(sl);
            in_flight++;
        }
    }
    double rate = (double)done / (now() - t0);
    close_slots();
    stop_server(&s);
    *cpu_us = s.cpu * 1e6 / (double)(done + 2 * CONC + 1);
    return rate;
}

static void rules_cost(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/tmp/bench_chaos.%d.faults", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    fprintf(f, "# %d rules that never fire: the operation matches, the key never does\n", N_RULES);
    for (int i = 0; i < N_RULES; i++)
        fprintf(f, "error 500 InternalError op=GetObject key=never-%03d/*\n", i);
    fclose(f);
    const char *none[] = {NULL};
    const char *rules[] = {"--faults", path, NULL};
    double best_none = 0, best_rules = 0, cpu_none = 1e9, cpu_rules = 1e9;
    int rounds = opt.smoke ? 1 : 3;
    for (int round = 0; round < rounds; round++) {
        double ca, cb;
        double a = throughput(none, &ca), b = throughput(rules, &cb);
        printf(
            "  round %d: no rules %.0f req/s (%.1f us CPU each), %d rules %.0f req/s (%.1f us)\n",
            round + 1, a, ca, N_RULES, b, cb);
        best_none = a > best_none ? a : best_none;
        best_rules = b > best_rules ? b : best_rules;
        cpu_none = ca < cpu_none ? ca : cpu_none;
        cpu_rules = cb < cpu_rules ? cb : cpu_rules;
    }
    unlink(path);
    double cost = 1.0 - best_rules / best_none;
    printf("GET 4 KiB, concurrency 16, %.1f s each, best of %d:\n", opt.seconds, rounds);
    printf("  no rules %.0f req/s, %d non-matching rules %.0f req/s: ratio %.3f, cost %.1f%%\n",
           best_none, N_RULES, best_rules, best_rules / best_none, cost * 100);
    printf("  server CPU per request: %.1f us without rules, %.1f us with: cost %.1f%%\n", cpu_none,
           cpu_rules, (cpu_rules / cpu_none - 1) * 100);
    printf("  aim: cost under %.0f%%: %s\n", AIM_COST * 100, cost < AIM_COST ? "met" : "NOT met");
}

/* The engine alone: a decision against 100 rules that never fire, in this process. */
static void decide_cost(void)
{
    char err[LV_ERRLEN] = "", rule[128];
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    if (!e)
        die("out of memory");
    for (int i = 0; i < N_RULES; i++) {
        snprintf(rule, sizeof rule, "error 500 InternalError op=GetObject key=never-%03d/*", i);
        if (chaos_engine_add(e, rule, NULL, err) != LV_OK)
            die("%s", err);
    }
    chaos_request q = {.op = "GetObject", .method = "GET", .bucket = "bench", .key = "obj"};
    chaos_decision d;
    long n = opt.smoke ? 20000 : 1000000;
    double t0 = now();
    for (long i = 0; i < n; i++)
        if (chaos_engine_decide(e, &q, &d) != CHAOS_NONE)
            die("a rule that should never fire fired: %s", d.summary);
    double ns = (now() - t0) * 1e9 / (double)n;
    chaos_engine_free(e);
    printf("chaos_engine_decide with %d non-matching rules: %.0f ns per request (%ld calls)\n",
           N_RULES, ns, n);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_chaos [--smoke] [--seconds S] [--fakes3 PATH]\n"
               "\n"
               "Latency accuracy of fakes3 --latency 40ms (p50, p99; 16 concurrent requests' wall\n"
               "time), and the throughput cost of 100 fault rules that never fire.\n"
               "  --smoke        a second or two (CTest runs this; no figure is judged)\n"
               "  --seconds S    each throughput run (default 3)\n"
               "  --fakes3 PATH  the server (default: fakes3 beside this program)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"smoke", no_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 'S'},
        {"fakes3", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            opt.smoke = 1;
            break;
        case 'S':
            opt.seconds = atof(optarg);
            if (opt.seconds <= 0 || opt.seconds > 600) {
                fprintf(stderr, "bench_chaos: --seconds %s: want 0..600\n", optarg);
                return 2;
            }
            break;
        case 'f':
            opt.fakes3 = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (opt.smoke)
        opt.seconds = 0.3;
    static char self_fakes3[PATH_MAX];
    if (!opt.fakes3) { /* beside this program: build/fakes3 */
        ssize_t n = readlink("/proc/self/exe", self_fakes3, sizeof self_fakes3 - 8);
        if (n <= 0)
            die("cannot find myself: %s", strerror(errno));
        self_fakes3[n] = '\0';
        strcpy(strrchr(self_fakes3, '/'), "/fakes3"); /* room was kept for it */
        opt.fakes3 = self_fakes3;
    }
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)(i * 131 + 7);
    atexit(on_exit_stop);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(multi = curl_multi_init()))
        die("cannot start libcurl");
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONC);

    printf("bench_chaos: %s%s\n", opt.fakes3, opt.smoke ? " (smoke: timings not meaningful)" : "");
    latency_accuracy();
    rules_cost();
    decide_cost();

    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return failed;
}
