/*
 * fuzz_fakes3_request: libFuzzer target for fakes3's whole request path, over real TCP: one input
 * is the bytes a client sends on one connection (request line, headers, body, maybe several
 * pipelined requests), delivered as they are to a fakes3 server running inside this process.
 *
 * LLVMFuzzerInitialize starts three servers on 127.0.0.1 (any free port) through the same
 * fakes3core calls main.c makes: two --anonymous, so inputs get past authentication into routing,
 * the operations, the body and the store, one with a memory store and one with a data directory
 * (for a quarter of the inputs: those whose length is a multiple of 4); and one that checks
 * signatures (memory store), for the inputs that carry AWS4-HMAC-SHA256 (header or presigned
 * form), so the Authorization and query parsers and the aws-chunked decoder see hostile values
 * too. All run on a fixed clock (2024-01-01T00:00:00Z) with key "fuzzkey"/"fuzzsecret": seed
 * requests signed for that moment (tests/fuzz/fakes3-seeds/, made by make_fakes3_seeds.py) stay
 * valid, and their mutants that leave the signed parts alone get all the way through.
 *
 * The data directory is DIR/data in a fresh mkdtemp folder DIR: nothing but "data" may ever
 * appear in DIR, and nothing in data but names a store makes (plain ASCII, no symlinks); both are
 * checked with the health checks and at each restart, when the directory is emptied.
 *
 * For each input: connect, send it, half-close, read until the server closes, close; then wait
 * until the server has torn the connection down (fs3_server_connections), so that everything the
 * request allocated is freed before libFuzzer counts mallocs and frees (its leak check) and a
 * crash in a server thread is charged to the input that caused it. Every HEALTH_EVERY inputs the
 * anonymous servers must answer GET /_fakes3/health with 200 and the signed one must answer at
 * all; every RESTART_EVERY inputs all are stopped and started again with empty stores (which runs
 * the shutdown path and keeps the stores from growing without end).
 *
 * The signed server also runs the fault engine (fakes3/faults.c) with rules that each fire on a
 * share of the requests, whatever they are (FAULT_RULES: errors, resets, closes, truncated and
 * paced bodies, lost responses, short stalls and delays; never crash or down, which would end
 * the fuzzer or lock it out): faults are decided right after routing, before the signature is
 * checked, so its hostile requests meet every fault path on the wire. Its admin API needs a
 * signature, so an input cannot change the rules. The anonymous servers run without faults.
 *
 * The target asserts only "no crash, no leak, no hang" (a hung server thread holds its connection
 * open, and libFuzzer's -timeout reports the input) and that the servers keep answering. A state
 * left by earlier inputs (buckets, objects) can matter, so a crash found in a long run may need
 * the inputs before it; a replay of the one input starts from empty stores.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "fuzz_common.h"
#include "server.h"
#include "store.h"

#define FIXED_NOW_MS  1704067200000LL /* 2024-01-01T00:00:00Z: the seeds are signed for it */
#define HEALTH_EVERY  256
#define RESTART_EVERY 4096
#define IO_TIMEOUT_S  30 /* far beyond -timeout: a server that hangs is libFuzzer's to report */

/* The signed server's fault rules: first that fires decides; together about a third of requests. */
static const char FAULT_RULES[] = "error 503 SlowDown p=0.05\n"
                                  "error 418 Teapot \"short and stout\" p=0.03\n"
                                  "reset p=0.04\n"
                                  "close p=0.04\n"
                                  "truncate 7 p=0.05\n"
                                  "bandwidth 16M p=0.05\n"
                                  "lost-response p=0.04\n"
                                  "stall 1ms p=0.03\n"
                                  "latency 1ms jitter=1ms p=0.03\n";

typedef struct fuzz_server {
    const char *name;
    int anonymous;
    const char *dir; /* data directory; NULL: memory store */
    int faults;      /* run the fault engine with FAULT_RULES */
    fs3_server *srv;
    fs3_store *store;
    chaos_engine *engine;
    int port;
} fuzz_server;

static char g_box[64];      /* the mkdtemp folder that holds the data directory, and nothing else */
static char g_data_dir[80]; /* g_box/data */
static fuzz_server g_anon = {"anonymous", 1, NULL, 0, NULL, NULL, NULL, 0};
static fuzz_server g_disk = {"disk", 1, g_data_dir, 0, NULL, NULL, NULL, 0};
static fuzz_server g_signed = {"signed", 0, NULL, 1, NULL, NULL, NULL, 0};
static fuzz_server *const g_servers[] = {&g_anon, &g_disk, &g_signed};
#define N_SERVERS (sizeof g_servers / sizeof g_servers[0])
static unsigned long g_inputs;

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return FIXED_NOW_MS;
}

static void server_start(fuzz_server *s)
{
    /* the server keeps a copy of the config but not of the strings: these are static */
    fs3_config cfg = {
        .listen = "127.0.0.1:0",
        .region = "us-east-1",
        .access_key = "fuzzkey",
        .secret_key = "fuzzsecret",
        .anonymous = s->anonymous,
        .vhost_domain = "localhost",
        .max_connections = 64,
        .max_object_size = 1 << 20,
        .idle_timeout = 5,
        .clock = fixed_clock,
    };
    fs3_store_options so = {.memory = s->dir == NULL, .dir = s->dir};
    char err[LV_ERRLEN] = "";
    if (s->faults) {
        s->engine = chaos_engine_new(1, NULL, NULL);
        FUZZ_CHECK(s->engine != NULL, "%s server: no fault engine", s->name);
        FUZZ_CHECK(chaos_engine_add_text(s->engine, FAULT_RULES, sizeof FAULT_RULES - 1, err) ==
                       LV_OK,
                   "%s server: fault rules: %s", s->name, err);
        cfg.faults = s->engine;
    }
    FUZZ_CHECK(fs3_server_bind(&cfg, &s->srv, err) == LV_OK, "%s server: %s", s->name, err);
    FUZZ_CHECK(fs3_store_open(&so, &s->store, err) == FS3_OK, "%s store: %s", s->name, err);
    FUZZ_CHECK(fs3_server_serve(s->srv, s->store, err) == LV_OK, "%s serve: %s", s->name, err);
    const char *addr = fs3_server_address(s->srv);
    const char *colon = strrchr(addr, ':');
    FUZZ_CHECK(colon != NULL, "%s server address %s", s->name, addr);
    s->port = atoi(colon + 1);
}

static void server_stop(fuzz_server *s)
{
    fs3_server_stop(s->srv);
    fs3_store_close(s->store);
    chaos_engine_free(s->engine); /* after the server: it must outlive every request */
    s->srv = NULL;
    s->store = NULL;
    s->engine = NULL;
}

/* Every name in the data directory is one a store makes: plain ASCII, no symlink, no key text. */
static int check_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    const char *name = path + ftw->base;
    FUZZ_CHECK(type != FTW_SL && type != FTW_SLN, "symlink in the data directory: %s", path);
    if (ftw->level == 0)
        return 0;
    FUZZ_CHECK(*name && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._-") == strlen(name),
               "a name no store makes: %s", path);
    return 0;
}

/* Nothing but "data" in the box, and only store names inside it. */
static void check_box(int walk)
{
    DIR *d = opendir(g_box);
    FUZZ_CHECK(d != NULL, "%s: %s", g_box, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        FUZZ_CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                       strcmp(e->d_name, "data") == 0,
                   "%s/%s appeared beside the data directory", g_box, e->d_name);
    closedir(d);
    if (walk)
        FUZZ_CHECK(nftw(g_data_dir, check_entry, 16, FTW_PHYS) == 0, "walking %s", g_data_dir);
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void remove_data_dir(void)
{
    if (g_data_dir[0] && access(g_data_dir, F_OK) == 0)
        FUZZ_CHECK(nftw(g_data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "removing %s",
                   g_data_dir);
}

static void cleanup_at_exit(void)
{
    if (g_disk.srv)
        server_stop(&g_disk);
    remove_data_dir();
    rmdir(g_box);
}

/* Waits until the server has torn down every connection (bounded: a hang is a finding). */
static void wait_idle(fuzz_server *s)
{
    struct timespec pause = {0, 20000}; /* 20 us */
    for (long i = 0; fs3_server_connections(s->srv) > 0; i++) {
        FUZZ_CHECK(i < 1000000, "%s server: a connection not torn down after 20 s", s->name);
        nanosleep(&pause, NULL);
    }
}

/*
 * connect(2) that survives signals: libFuzzer's timer (SIGALRM, for -timeout) interrupts blocking
 * calls, and an interrupted connect goes on in the background, to be waited for.
 */
static int connect_eintr(int fd, const struct sockaddr_in *sa)
{
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
        return 0;
    if (errno != EINTR && errno != EINPROGRESS)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int rc;
    while ((rc = poll(&p, 1, IO_TIMEOUT_S * 1000)) < 0 && errno == EINTR)
        ;
    if (rc <= 0) {
        errno = rc == 0 ? ETIMEDOUT : errno;
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -1;
    errno = soerr;
    return soerr ? -1 : 0;
}

/*
 * Sends data on a new connection, half-closes, and reads the answer into resp (up to cap bytes;
 * the rest is read and dropped) until the server closes. Returns the bytes kept, -1 if the
 * connection could not be made.
 */
static long exchange(const fuzz_server *s, const uint8_t *data, size_t n, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /*
     * The client half-closes first, so each connection leaves a socket in TIME_WAIT for a minute
     * on the client's side: at a thousand inputs a second, from 127.0.0.1, that would hold every
     * ephemeral port of 127.0.0.1 and make other tests' servers (--listen 127.0.0.1:0) and
     * clients fail. So each connection comes from its own address in 127.1.0.0/16, where only
     * this process makes sockets.
     */
    static unsigned src_seq;
    static int src_ok = 1;
    if (src_ok) {
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        src.sin_addr.s_addr = htonl(0x7f010000u | (src_seq++ & 0xffffu));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            /* a loopback with 127.0.0.1 alone (some sandboxes): connect from there after all */
            fprintf(stderr,
                    "fuzz_fakes3_request: cannot bind 127.1.x.y (%s); connecting from "
                    "127.0.0.1, whose ports TIME_WAIT will hold\n",
                    strerror(errno));
            src_ok = 0;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect_eintr(fd, &sa) != 0) {
        fprintf(stderr, "connect to 127.0.0.1:%d: %s\n", s->port, strerror(errno));
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < n) { /* the server may answer early and close: then stop sending */
        ssize_t w = send(fd, data + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    char sink[16384];
    for (;;) {
        char *to = got < cap ? resp + got : sink;
        size_t room = got < cap ? cap - got : sizeof sink;
        ssize_t r = recv(fd, to, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) /* closed, reset, or the 30 s safety timeout */
            break;
        if (got < cap)
            got += (size_t)r;
    }
    close(fd);
    return (long)got;
}

/* The servers still answer: the anonymous ones their health check, the signed one anything. */
static void check_alive(void)
{
    static const char health[] = "GET /_fakes3/health HTTP/1.1\r\nHost: x\r\n\r\n";
    char resp[4096];
    for (size_t i = 0; i < N_SERVERS; i++) {
        fuzz_server *s = g_servers[i];
        long n = exchange(s, (const uint8_t *)health, sizeof health - 1, resp, sizeof resp - 1);
        FUZZ_CHECK(n > 0, "%s server: no answer to the health check after %lu inputs", s->name,
                   g_inputs);
        resp[n] = '\0';
        if (s->anonymous)
            FUZZ_CHECK(strncmp(resp, "HTTP/1.1 200 ", 13) == 0 && strstr(resp, "\"status\":\"ok\""),
                       "%s server: health check answered %.80s", s->name, resp);
        else
            FUZZ_CHECK(strncmp(resp, "HTTP/1.1 403 ", 13) == 0, "%s server answered %.80s", s->name,
                       resp);
        wait_idle(s);
    }
}

static int looks_signed(const uint8_t *data, size_t n)
{
    static const char tag[] = "AWS4-HMAC-SHA256";
    return memmem(data, n, tag, sizeof tag - 1) != NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_box, sizeof g_box, "%s/fuzz_fakes3.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(g_box) != NULL, "mkdtemp %s: %s", g_box, strerror(errno));
    snprintf(g_data_dir, sizeof g_data_dir, "%s/data", g_box);
    atexit(cleanup_at_exit);
    for (size_t i = 0; i < N_SERVERS; i++)
        server_start(g_servers[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_server *s = looks_signed(data, size) ? &g_signed : size % 4 == 0 ? &g_disk : &g_anon;
    char resp[512];
    long n = exchange(s, data, size, resp, sizeof resp);
    FUZZ_CHECK(n >= 0, "%s server: connection refused", s->name);
    wait_idle(s);
    g_inputs++;
    if (g_inputs % HEALTH_EVERY == 0) {
        check_alive();
        check_box(0);
    }
    if (g_inputs % RESTART_EVERY == 0) {
        for (size_t i = 0; i < N_SERVERS; i++)
            server_stop(g_servers[i]);
        check_box(1);
        remove_data_dir();
        for (size_t i = 0; i < N_SERVERS; i++)
            server_start(g_servers[i]);
    }
    return 0;
}
