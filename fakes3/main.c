/*
 * fakes3: an S3-compatible server for development and CI (build/fakes3). This file: the command
 * line, start-up, and shutdown on SIGINT/SIGTERM.
 *
 * Start-up order: bind the port (so a taken port is reported before anything else is touched),
 * open the store, serve. Threads: main blocks SIGINT and SIGTERM before any other thread exists
 * (so every thread inherits the mask), starts the server, and then waits for one of them with
 * sigwait; the server's connection threads never see a signal. Shutdown stops the server (ending
 * every connection and joining its thread: an upload cut off is discarded, never half stored), then
 * closes the store.
 *
 * Faults: the fault engine (chaos/chaos.h) is made here, seeded with --seed (default: from the
 * time and the process id, printed in the start-up line so that a run can be replayed), and
 * loaded with the rules of the command line in this order: every --fault RULE and --faults FILE
 * as they come, then the shortcuts --error-rate P ("error 503 SlowDown p=P") and
 * --latency/--jitter ("latency DUR jitter=J"). Rules are checked in order and the first that
 * fires decides, so a specific --fault rule wins over the blanket shortcuts, and a request that
 * draws the --error-rate error gets it at once, while the others get the latency.
 *
 * `fakes3 ctl ...` is the admin client (chaos/ctl.c), not the server.
 *
 * Exit status: 0 after a clean shutdown, 1 when start-up fails (port taken, data directory
 * unusable), 2 for a bad command line (a rule that does not parse included).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "ctl.h"
#include "error.h"
#include "server.h"
#include "store.h"

#ifndef FAKES3_VERSION
#define FAKES3_VERSION "0"
#endif

#define DEFAULT_LISTEN     "127.0.0.1:9000"
#define DEFAULT_DATA_DIR   "./fakes3-data"
#define DEFAULT_REGION     "us-east-1"
#define DEFAULT_ACCESS_KEY "fakes3"
#define DEFAULT_SECRET_KEY "fakes3secret"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: fakes3 [options]\n"
           "\n"
           "An S3-compatible server for development and CI. Requests must be signed with AWS\n"
           "Signature V4 (header or presigned URL) by the one key pair below, unless\n"
           "--anonymous.\n"
           "\n"
           "  --listen ADDR:PORT      where to listen (default " DEFAULT_LISTEN "; port 0 picks\n"
           "                          a free port, printed at start; [::1]:PORT for IPv6)\n"
           "  --data-dir DIR          where buckets and objects are kept (default " DEFAULT_DATA_DIR
           ");\n"
           "                          created if missing; must be empty or a fakes3 data dir\n"
           "  --memory                keep everything in memory instead (gone at exit)\n"
           "  --fsync                 fsync each object and its folder before answering: durable\n"
           "                          against power loss, at the cost of a disk flush per write\n"
           "                          (default off: atomic against a crash of fakes3, not of the\n"
           "                          machine)\n"
           "  --region REGION         region of every bucket; requests must be signed for it\n"
           "                          (default " DEFAULT_REGION ")\n"
           "  --access-key KEY        access key id (default $FAKES3_ACCESS_KEY, else "
           "\"" DEFAULT_ACCESS_KEY "\")\n"
           "  --secret-key SECRET     secret key (default $FAKES3_SECRET_KEY, else "
           "\"" DEFAULT_SECRET_KEY "\")\n"
           "  --anonymous             accept every request without checking signatures\n"
           "  --vhost-domain DOMAIN   Host \"<bucket>.DOMAIN[:port]\" addresses a bucket\n"
           "                          (virtual-host style; default localhost)\n"
           "  --max-connections N     simultaneous connections, one thread each (default 1024)\n"
           "  --max-object-size BYTES largest PutObject body (default 5368709120, S3's limit)\n"
           "  --idle-timeout SECONDS  close a connection on which nothing moves for this long:\n"
           "                          an idle keep-alive connection, or a client that stalls\n"
           "                          mid-request (1..86400, default 60)\n"
           "  --log FILE              append one JSON line per request (time, request id,\n"
           "                          operation, bucket, key, range, status, bytes, duration)\n"
           "  --clock-skew SECONDS    run the server's clock this far ahead (negative: behind);\n"
           "                          for testing RequestTimeTooSkewed and expiry\n"
           "  --bucket NAME           create bucket NAME at start if it is not there\n"
           "                          (repeatable)\n"
           "\n"
           "Faults (rule syntax: docs/chaos.md; checked in order, the first that fires decides):\n"
           "  --fault RULE            a fault rule, e.g. \"error 500 op=PutObject nth=3\"\n"
           "                          (repeatable; kept in command-line order with --faults)\n"
           "  --faults FILE           the rules of FILE, one per line (# comments)\n"
           "  --error-rate P          shortcut: \"error 503 SlowDown p=P\" on any operation,\n"
           "                          after the rules above\n"
           "  --latency DUR           shortcut: \"latency DUR\" on every request (40ms, 1.5s),\n"
           "                          last, so a request not given an error is delayed\n"
           "  --jitter DUR            with --latency: plus a uniform 0..DUR\n"
           "  --seed N                seed of every random draw (default: from the time,\n"
           "                          printed at start); same seed, rules and requests: same\n"
           "                          faults\n"
           "  Change them while running: GET/POST/DELETE /_fakes3/faults, or fakes3 ctl\n"
           "  (fakes3 ctl --help).\n"
           "  --help                  this text\n"
           "  --version               the version\n"
           "\n"
           "Stops cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop, 1 when it\n"
           "cannot start (port taken, data directory unusable), 2 for a bad command line.\n");
}

typedef struct clock_ctx {
    int64_t skew_ms;
} clock_ctx;

static int64_t real_clock(void *ctx)
{
    const clock_ctx *c = ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + c->skew_ms;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_LISTEN = 1000,
    OPT_DATA_DIR,
    OPT_MEMORY,
    OPT_FSYNC,
    OPT_REGION,
    OPT_ACCESS_KEY,
    OPT_SECRET_KEY,
    OPT_ANONYMOUS,
    OPT_VHOST,
    OPT_MAX_CONN,
    OPT_MAX_OBJ,
    OPT_IDLE_TIMEOUT,
    OPT_LOG,
    OPT_SKEW,
    OPT_BUCKET,
    OPT_FAULT,
    OPT_FAULTS,
    OPT_ERROR_RATE,
    OPT_LATENCY,
    OPT_JITTER,
    OPT_SEED,
    OPT_HELP,
    OPT_VERSION
};

/* A --fault RULE or --faults FILE, in command-line order. */
typedef struct fault_arg {
    int is_file;
    const char *text;
} fault_arg;

/* The engine with the command line's rules, or NULL after printing what is wrong. */
static chaos_engine *make_engine(uint64_t seed, const fault_arg *fa, size_t n_fa,
                                 const char *error_rate, const char *latency, const char *jitter)
{
    char err[LV_ERRLEN] = "", rule[512];
    /* a shortcut's value is one word of the rule it makes, never more words or a comment */
    const char *word[3][2] = {
        {"--error-rate", error_rate}, {"--latency", latency}, {"--jitter", jitter}};
    for (int i = 0; i < 3; i++) {
        if (word[i][1] && (!*word[i][1] || strpbrk(word[i][1], " \t\r\n#=\""))) {
            fprintf(stderr, "fakes3: %s \"%s\": want one value (0.05, 40ms)\n", word[i][0],
                    word[i][1]);
            return NULL;
        }
    }
    chaos_engine *e = chaos_engine_new(seed, NULL, NULL);
    if (!e) {
        fprintf(stderr, "fakes3: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < n_fa; i++) {
        if (fa[i].is_file) {
            if (chaos_engine_load_file(e, fa[i].text, err) != LV_OK) {
                /* the engine's message may name the file already */
                if (strncmp(err, fa[i].text, strlen(fa[i].text)) == 0)
                    fprintf(stderr, "fakes3: --faults %s\n", err);
                else
                    fprintf(stderr, "fakes3: --faults %s: %s\n", fa[i].text, err);
                goto fail;
            }
        } else if (chaos_engine_add(e, fa[i].text, NULL, err) != LV_OK) {
            fprintf(stderr, "fakes3: --fault \"%s\": %s\n", fa[i].text, err);
            goto fail;
        }
    }
    if (error_rate) {
        snprintf(rule, sizeof rule, "error 503 SlowDown p=%s", error_rate);
        if (chaos_engine_add(e, rule, NULL, err) != LV_OK) {
            fprintf(stderr, "fakes3: --error-rate %s: %s\n", error_rate, err);
            goto fail;
        }
    }
    if (latency || jitter) {
        snprintf(rule, sizeof rule, "latency %s%s%s", latency ? latency : "0",
                 jitter ? " jitter=" : "", jitter ? jitter : "");
        if (chaos_engine_add(e, rule, NULL, err) != LV_OK) {
            fprintf(stderr, "fakes3: --latency %s%s%s: %s\n", latency ? latency : "0",
                    jitter ? " --jitter " : "", jitter ? jitter : "", err);
            goto fail;
        }
    }
    return e;
fail:
    chaos_engine_free(e);
    return NULL;
}

/* Without --seed: different each run (time and pid), and printed so the run can be replayed. */
static uint64_t default_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
    /* splitmix64's finaliser, so that close start times give unrelated seeds */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x % 1000000000000ull; /* short enough to type */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return chaos_ctl_main(argc - 1, argv + 1);

    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"memory", no_argument, NULL, OPT_MEMORY},
        {"fsync", no_argument, NULL, OPT_FSYNC},
        {"region", required_argument, NULL, OPT_REGION},
        {"access-key", required_argument, NULL, OPT_ACCESS_KEY},
        {"secret-key", required_argument, NULL, OPT_SECRET_KEY},
        {"anonymous", no_argument, NULL, OPT_ANONYMOUS},
        {"vhost-domain", required_argument, NULL, OPT_VHOST},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"max-object-size", required_argument, NULL, OPT_MAX_OBJ},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"log", required_argument, NULL, OPT_LOG},
        {"clock-skew", required_argument, NULL, OPT_SKEW},
        {"bucket", required_argument, NULL, OPT_BUCKET},
        {"fault", required_argument, NULL, OPT_FAULT},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
        {"latency", required_argument, NULL, OPT_LATENCY},
        {"jitter", required_argument, NULL, OPT_JITTER},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    clock_ctx clk = {0};
    fs3_store_options so = {.dir = DEFAULT_DATA_DIR};
    fs3_config cfg = {
        .listen = DEFAULT_LISTEN,
        .region = DEFAULT_REGION,
        .access_key = getenv("FAKES3_ACCESS_KEY"),
        .secret_key = getenv("FAKES3_SECRET_KEY"),
        .vhost_domain = "localhost",
        .max_connections = 1024,
        .max_object_size = 5368709120ull,
        .idle_timeout = FS3_DEFAULT_IDLE_TIMEOUT,
        .clock = real_clock,
        .clock_ctx = &clk,
    };
    if (!cfg.access_key || !*cfg.access_key)
        cfg.access_key = DEFAULT_ACCESS_KEY;
    if (!cfg.secret_key || !*cfg.secret_key)
        cfg.secret_key = DEFAULT_SECRET_KEY;

    int c;
    uint64_t v;
    const char *buckets[64];
    size_t n_buckets = 0;
    fault_arg fault_args[256];
    size_t n_fault_args = 0;
    const char *error_rate = NULL, *latency = NULL, *jitter = NULL;
    uint64_t seed = 0;
    int has_seed = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            cfg.listen = optarg;
            break;
        case OPT_DATA_DIR:
            so.dir = optarg;
            break;
        case OPT_MEMORY:
            so.memory = 1;
            break;
        case OPT_FSYNC:
            so.fsync = 1;
            break;
        case OPT_REGION:
            cfg.region = optarg;
            break;
        case OPT_ACCESS_KEY:
            cfg.access_key = optarg;
            break;
        case OPT_SECRET_KEY:
            cfg.secret_key = optarg;
            break;
        case OPT_ANONYMOUS:
            cfg.anonymous = 1;
            break;
        case OPT_VHOST:
            cfg.vhost_domain = optarg;
            break;
        case OPT_MAX_CONN:
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 65536) {
                fprintf(stderr, "fakes3: --max-connections %s: want 1..65536\n", optarg);
                return 2;
            }
            cfg.max_connections = (unsigned)v;
            break;
        case OPT_MAX_OBJ:
            if (parse_u64(optarg, &v) != 0) {
                fprintf(stderr, "fakes3: --max-object-size %s: want a number of bytes\n", optarg);
                return 2;
            }
            cfg.max_object_size = v;
            break;
        case OPT_IDLE_TIMEOUT:
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 86400) {
                fprintf(stderr, "fakes3: --idle-timeout %s: want 1..86400 seconds\n", optarg);
                return 2;
            }
            cfg.idle_timeout = (unsigned)v;
            break;
        case OPT_LOG:
            cfg.log_path = optarg;
            break;
        case OPT_SKEW: {
            char *end;
            long long s = strtoll(optarg, &end, 10);
            if (!*optarg || *end) {
                fprintf(stderr, "fakes3: --clock-skew %s: want seconds\n", optarg);
                return 2;
            }
            clk.skew_ms = s * 1000;
            break;
        }
        case OPT_BUCKET:
            if (n_buckets == sizeof buckets / sizeof buckets[0]) {
                fprintf(stderr, "fakes3: at most %zu --bucket flags\n", n_buckets);
                return 2;
            }
            buckets[n_buckets++] = optarg;
            break;
        case OPT_FAULT:
        case OPT_FAULTS:
            if (n_fault_args == sizeof fault_args / sizeof fault_args[0]) {
                fprintf(stderr,
                        "fakes3: at most %zu --fault and --faults flags (put the rules in a "
                        "--faults file)\n",
                        n_fault_args);
                return 2;
            }
            fault_args[n_fault_args].is_file = c == OPT_FAULTS;
            fault_args[n_fault_args++].text = optarg;
            break;
        case OPT_ERROR_RATE:
            error_rate = optarg;
            break;
        case OPT_LATENCY:
            latency = optarg;
            break;
        case OPT_JITTER:
            jitter = optarg;
            break;
        case OPT_SEED:
            if (parse_u64(optarg, &seed) != 0) {
                fprintf(stderr, "fakes3: --seed %s: want a number (0..2^64-1)\n", optarg);
                return 2;
            }
            has_seed = 1;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("fakes3 %s\n", FAKES3_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fakes3: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!*cfg.region || !*cfg.access_key || !*cfg.secret_key) {
        fprintf(stderr, "fakes3: --region, --access-key and --secret-key must not be empty\n");
        return 2;
    }
    if (!has_seed)
        seed = default_seed();
    chaos_engine *faults = make_engine(seed, fault_args, n_fault_args, error_rate, latency, jitter);
    if (!faults)
        return 2;
    cfg.faults = faults;

    /* every thread made from here on inherits this mask: only sigwait below sees the signals */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the port first: a taken port is reported before a data directory is made or locked */
    char err[LV_ERRLEN] = "";
    fs3_server *srv = NULL;
    if (fs3_server_bind(&cfg, &srv, err) != LV_OK) {
        fprintf(stderr, "fakes3: %s\n", err);
        chaos_engine_free(faults);
        return 1;
    }
    fs3_store *st = NULL;
    if (fs3_store_open(&so, &st, err) != FS3_OK) {
        fprintf(stderr, "fakes3: %s\n", err);
        fs3_server_stop(srv);
        chaos_engine_free(faults);
        return 1;
    }
    for (size_t i = 0; i < n_buckets; i++) {
        fs3_code rc = fs3_store_create_bucket(st, buckets[i], real_clock(&clk), err);
        if (rc != FS3_OK && rc != FS3_BUCKET_ALREADY_OWNED_BY_YOU) {
            fprintf(stderr, "fakes3: --bucket %s: %s\n", buckets[i],
                    err[0] ? err : fs3_code_name(rc));
            fs3_server_stop(srv);
            fs3_store_close(st);
            chaos_engine_free(faults);
            return 1;
        }
    }
    if (fs3_server_serve(srv, st, err) != LV_OK) {
        fprintf(stderr, "fakes3: %s\n", err);
        fs3_server_stop(srv);
        fs3_store_close(st);
        chaos_engine_free(faults);
        return 1;
    }
    size_t nb = 0, no = 0;
    fs3_store_counts(st, &nb, &no);
    char fault_note[96];
    size_t n_rules = chaos_engine_count(faults);
    if (n_rules)
        snprintf(fault_note, sizeof fault_note, "; seed %llu, %zu fault rule%s",
                 (unsigned long long)seed, n_rules, n_rules == 1 ? "" : "s");
    else
        snprintf(fault_note, sizeof fault_note, "; seed %llu", (unsigned long long)seed);
    if (so.memory)
        printf("fakes3 listening on http://%s (memory store, region %s%s%s)\n",
               fs3_server_address(srv), cfg.region, cfg.anonymous ? ", anonymous" : "", fault_note);
    else
        printf(
            "fakes3 listening on http://%s (data %s: %zu buckets, %zu objects%s; region %s%s%s)\n",
            fs3_server_address(srv), so.dir, nb, no, so.fsync ? ", fsync" : "", cfg.region,
            cfg.anonymous ? ", anonymous" : "", fault_note);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    fprintf(stderr, "fakes3: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fs3_server_stop(srv);
    fs3_store_close(st);
    chaos_engine_free(faults);
    return 0;
}
