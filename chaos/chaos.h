/*
 * chaos: the fault engine. An ordered list of rules, each a match, an action and limits, and a
 * seeded decision per request: which rule fires (the first in order that matches and passes its
 * limits) and exactly what it does. fakes3 asks once per request and carries the decision out at
 * the points of its request path (fakes3/request.h); the engine itself does no I/O, never sleeps
 * and reads no clock of its own.
 *
 * Rule syntax (one rule per line; the same text on the command line, in a --faults file, through
 * the admin API and in scenario files):
 *
 *     ACTION [ARG ...] [NAME=VALUE ...]        # a comment runs to the end of the line
 *
 *   actions and their positional arguments
 *     latency DUR                  wait DUR, then serve normally
 *     latency p50=DUR p99=DUR ...  wait a duration drawn from the percentiles given (linear
 *                                  between them; p0 defaults to 0, p100 to the largest given)
 *     error STATUS [CODE [MESSAGE]] answer STATUS (200..599; 1xx is refused, it is no final
 *                                  answer) with S3 error CODE and MESSAGE (quoted if it has
 *                                  spaces; defaults: S3's for the status, e.g. 503 SlowDown)
 *     reset                        TCP RST, no response (SO_LINGER 0 and close)
 *     close                        close the connection cleanly without a response
 *     truncate BYTES               announce the full Content-Length, send BYTES of the body, close
 *     stall [DUR]                  read the request, answer nothing (for DUR, then serve normally;
 *                                  without DUR, until the client gives up or the server stops)
 *     bandwidth RATE               send the response body at RATE bytes per second (k, M, G)
 *     lost-response                apply the operation, then reset instead of answering
 *     crash [before|after]         the process aborts at this request, before (default) or after
 *                                  the operation is applied; no cleanup, no flush
 *     down DUR                     reset this connection and refuse every new one for DUR
 *   match (all given must hold; none given matches every request)
 *     op=NAME[,NAME...]            S3 operation name as fakes3 logs it (GetObject, PutObject, ...)
 *     method=GET[,PUT...]          HTTP method
 *     bucket=GLOB  key=GLOB        fnmatch(3) globs; '*' crosses '/'
 *     range=yes|no                 the request has a Range header, or has none
 *     header=NAME  header=NAME:VALUE   the header is present (with exactly VALUE)
 *     nth=N                        only the Nth matching request (1-based): after=N-1 times=1
 *   modifiers and limits
 *     delay=DUR  jitter=DUR        wait DUR (plus uniform 0..jitter) before the action, any action
 *     p=PROB                       fire with probability PROB (0..1) on each match
 *     times=N                      fire at most N times
 *     after=N                      skip the first N matches
 *     for=DUR                      the rule expires DUR after it was added
 *   DUR: 40ms, 1.5s, 2m, 250us; a bare number is milliseconds. RATE: 65536, 64k, 1M (bytes/s).
 *
 * Examples
 *     latency 40ms jitter=10ms
 *     error 503 SlowDown op=PutObject p=0.05
 *     truncate 100 op=GetObject range=yes times=3
 *     lost-response op=PutObject key=*.ltx nth=2
 *     crash after op=CompleteMultipartUpload
 *
 * Which rule fires: the rules are scanned in order and the first one that matches and passes its
 * limits fires; that ends the scan. A rule counts a request (its "matched", which after=, nth=
 * and the draws use) only when the scan reaches it: the rules after the one that fired do not
 * count that request, so "error 503 nth=2" placed after a rule that fired on some requests sees
 * only the requests that got past it.
 *
 * Determinism: each rule numbers the requests it counts (its sequence). A decision depends only
 * on the seed, the rule's id and the request's number n in that sequence: the probability draw
 * and the jitter are hash(seed, rule id, n), never a shared generator. What replays: the same
 * seed and rules with the same sequence of requests in the same order (one client sending one
 * request at a time; a scenario replayed step by step) give the same decisions, run after run.
 * What does not: requests sent concurrently take their positions in the order they reach the
 * engine, which thread timing decides; the set of decisions for positions 1..N is the same, but
 * which request gets which position (and so which one is failed) may differ from run to run.
 *
 * Threads: an engine may be called from any number of threads at once; one mutex guards the rules
 * and their counters (a decision is a short scan, no I/O, no sleep in the lock).
 * Memory: lv_malloc. Errors: lv_err, the detail in a caller buffer of LV_ERRLEN bytes.
 */
#ifndef CHAOS_H
#define CHAOS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

typedef enum chaos_action {
    CHAOS_NONE = 0, /* no rule fired */
    CHAOS_LATENCY,
    CHAOS_ERROR,
    CHAOS_RESET,
    CHAOS_CLOSE,
    CHAOS_TRUNCATE,
    CHAOS_STALL,
    CHAOS_BANDWIDTH,
    CHAOS_LOST_RESPONSE,
    CHAOS_CRASH,
    CHAOS_DOWN
} chaos_action;

/* "latency", "error", ..., "lost-response"; "none" for CHAOS_NONE. */
const char *chaos_action_name(chaos_action a);

/* What the engine is told about a request. Every pointer is borrowed for the call. */
typedef struct chaos_request {
    const char *op;     /* S3 operation name ("GetObject"); never NULL */
    const char *method; /* "GET" */
    const char *bucket; /* "" when none */
    const char *key;    /* NUL-terminated; NULL when the request names no key */
    int has_range;
    /* A request header by name (case-insensitive), or NULL; header_ctx is passed back. */
    const char *(*header)(void *header_ctx, const char *name);
    void *header_ctx;
} chaos_request;

/* The decision for one request: what to do, filled in full by chaos_engine_decide. */
typedef struct chaos_decision {
    chaos_action action; /* CHAOS_NONE: serve normally */
    uint64_t rule_id;    /* the rule that fired (0 when none) */
    int64_t delay_us;    /* wait this long first (latency, delay=, jitter=): drawn already */
    int64_t duration_us; /* stall: how long (-1: forever); down: how long */
    int status;          /* error: HTTP status */
    char code[64];       /* error: S3 code ("SlowDown") */
    char message[256];   /* error: S3 message */
    uint64_t bytes;      /* truncate: body bytes to send; bandwidth: bytes per second */
    int after_apply;     /* crash: 1 = after the operation is applied */
    char summary[160];   /* for the request log: "rule 3: error 503 SlowDown" */
} chaos_decision;

typedef struct chaos_engine chaos_engine;

/*
 * A new engine with no rules. seed drives every random draw. now_us is the clock used for rule
 * expiry (for=), microseconds; NULL means CLOCK_MONOTONIC. Returns NULL when out of memory.
 * The caller frees it with chaos_engine_free.
 */
chaos_engine *chaos_engine_new(uint64_t seed, int64_t (*now_us)(void *ctx), void *clock_ctx);
void chaos_engine_free(chaos_engine *e);

/*
 * Parses one rule and appends it (last in order). *id (may be NULL) gets its id: ids count up
 * from 1 and are never reused within an engine. On error nothing is added and err says what is
 * wrong and where ("error 503 SlowDow p=2: p must be between 0 and 1").
 */
lv_err chaos_engine_add(chaos_engine *e, const char *rule, uint64_t *id, char *err);
/*
 * Adds every rule of a text (one per line; blank lines and # comments skipped), all or none:
 * on error nothing is added and err names the line number. chaos_engine_load_file reads a file.
 */
lv_err chaos_engine_add_text(chaos_engine *e, const char *text, size_t len, char *err);
lv_err chaos_engine_load_file(chaos_engine *e, const char *path, char *err);
/*
 * As chaos_engine_add_text, and says which ids the rules got: they are consecutive, from
 * *first_id to *first_id + *count - 1 (either pointer may be NULL; a text without rules gives
 * *count 0 and *first_id 0). The rules are added under one lock: a decision sees all or none.
 */
lv_err chaos_engine_add_text_ids(chaos_engine *e, const char *text, size_t len, uint64_t *first_id,
                                 size_t *count, char *err);
/* Removes rule id: LV_OK, or LV_ENOTFOUND. */
lv_err chaos_engine_remove(chaos_engine *e, uint64_t id, char *err);
/* Removes every rule. */
void chaos_engine_clear(chaos_engine *e);
/* Rules in the engine (expired ones included until the next decision, remove or clear). */
size_t chaos_engine_count(const chaos_engine *e);

/*
 * Appends the rules as JSON to out:
 * {"seed":N,"rules":[{"id":1,"rule":"<canonical text>","matched":M,"fired":F,"expired":false},...]}
 * Listing changes nothing but marks: a rule past its for= is listed "expired":true with its final
 * counts, by every lister, until the next decision (or remove, or clear) drops it.
 */
void chaos_engine_list_json(chaos_engine *e, lv_buf *out);

/*
 * The decision for req: scans the rules in order; each rule reached whose match holds counts the
 * request, and the first one that then passes its limits fires, fills *out and ends the scan
 * (the rules after it do not count this request). Returns out->action. Drops expired rules.
 * Cheap when no rule matches (a test of the operation name per rule; no allocation).
 */
chaos_action chaos_engine_decide(chaos_engine *e, const chaos_request *req, chaos_decision *out);

/*
 * The parsing pieces, shared with the command-line shortcuts and scenario files.
 * "40ms" -> 40000; "1.5s" -> 1500000; "250us"; "2m"; a bare number is milliseconds.
 */
lv_err chaos_parse_duration(const char *s, int64_t *us, char *err);
/* "65536", "64k", "1M", "1G" (powers of 1024) -> bytes. */
lv_err chaos_parse_rate(const char *s, uint64_t *bytes, char *err);

#endif
