/*
 * test_chaos_engine: decisions of the fault engine (chaos.h). First match in order wins and
 * counts; times, after, nth and for= limits (expiry with an injected clock); p= with a fixed seed
 * (rate, replay with the same seed, a different seed differs, independence from thread timing);
 * jitter and percentile draws (bounds, determinism, distribution); every action's decision fields
 * and log summary; every match key; remove and clear; the JSON listing (parsed with jansson);
 * several threads deciding at once; and the cost of a scan of 100 rules that do not match.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "chaos.h"
#include "testutil.h"

/* A request's headers for the header callback (case-insensitive names, like fakes3's). */
typedef struct hdrs {
    const char *name[4], *value[4];
} hdrs;

static const char *get_header(void *ctx, const char *name)
{
    hdrs *h = ctx;
    for (int i = 0; i < 4 && h->name[i]; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

static chaos_request req_of(const char *op, const char *method, const char *bucket, const char *key)
{
    chaos_request r = {.op = op, .method = method, .bucket = bucket, .key = key};
    return r;
}

static chaos_request get_obj(void)
{
    return req_of("GetObject", "GET", "b", "k");
}

static chaos_engine *engine_with(uint64_t seed, const char *text)
{
    char err[LV_ERRLEN];
    chaos_engine *e = chaos_engine_new(seed, NULL, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(chaos_engine_add_text(e, text, strlen(text), err) == LV_OK, "%s", err);
    return e;
}

static json_t *list_json(chaos_engine *e)
{
    lv_buf b;
    lv_buf_init(&b);
    chaos_engine_list_json(e, &b);
    ck_assert_int_eq(lv_buf_ok(&b, NULL), LV_OK);
    json_error_t jerr;
    json_t *j = json_loads(b.data, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "listing is not JSON (%s): %s", jerr.text, b.data);
    lv_buf_free(&b);
    return j;
}

/* matched and fired of the rule at index i of a listing. */
static void counts(chaos_engine *e, size_t i, long long *matched, long long *fired)
{
    json_t *j = list_json(e);
    json_t *r = json_array_get(tu_jget(j, "rules"), i);
    ck_assert_ptr_nonnull(r);
    *matched = tu_jint(r, "matched");
    *fired = tu_jint(r, "fired");
    json_decref(j);
}

START_TEST(test_no_rules_no_fault)
{
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    chaos_request q = get_obj();
    chaos_decision d;
    memset(&d, 0x5a, sizeof d);
    ck_assert_int_eq(chaos_engine_decide(e, &q, &d), CHAOS_NONE);
    ck_assert_int_eq(d.action, CHAOS_NONE);
    ck_assert_uint_eq(d.rule_id, 0);
    ck_assert_int_eq(d.delay_us, 0);
    ck_assert_int_eq(d.status, 0);
    ck_assert_str_eq(d.code, "");
    ck_assert_str_eq(d.summary, "");
    ck_assert_uint_eq(chaos_engine_count(e), 0);
    chaos_engine_free(e);
    chaos_engine_free(NULL);
}
END_TEST

START_TEST(test_first_matching_rule_fires_in_order)
{
    chaos_engine *e = engine_with(1, "error 500 op=GetObject\n"
                                     "error 503 op=GetObject\n"
                                     "error 403 op=PutObject\n"
                                     "latency 5ms\n");
    chaos_decision d;
    chaos_request g = get_obj(), p = req_of("PutObject", "PUT", "b", "k"),
                  l = req_of("ListObjectsV2", "GET", "b", NULL);
    ck_assert_int_eq(chaos_engine_decide(e, &g, &d), CHAOS_ERROR);
    ck_assert_int_eq(d.status, 500);
    ck_assert_uint_eq(d.rule_id, 1);
    ck_assert_str_eq(d.summary, "rule 1: error 500 InternalError");
    ck_assert_int_eq(chaos_engine_decide(e, &p, &d), CHAOS_ERROR);
    ck_assert_int_eq(d.status, 403);
    ck_assert_str_eq(d.code, "AccessDenied");
    ck_assert_str_eq(d.message, "Access Denied");
    ck_assert_uint_eq(d.rule_id, 3);
    ck_assert_int_eq(chaos_engine_decide(e, &l, &d), CHAOS_LATENCY);
    ck_assert_uint_eq(d.rule_id, 4);
    ck_assert_int_eq(d.delay_us, 5000);
    ck_assert_str_eq(d.summary, "rule 4: latency 5ms");
    /* rule 2 never saw a request: the scan stopped at rule 1 */
    long long m, f;
    counts(e, 0, &m, &f);
    ck_assert_int_eq(m, 1);
    ck_assert_int_eq(f, 1);
    counts(e, 1, &m, &f);
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(f, 0);
    counts(e, 3, &m, &f);
    ck_assert_int_eq(m, 1);
    chaos_engine_free(e);
}
END_TEST

START_TEST(test_times_after_nth)
{
    chaos_engine *e = engine_with(1, "error 500 times=2\n"
                                     "error 501 after=3\n"
                                     "error 502\n");
    chaos_request q = get_obj();
    chaos_decision d;
    int want[] = {500, 500, 502, 502, 502, 501, 501, 501};
    for (int i = 0; i < 8; i++) {
        chaos_engine_decide(e, &q, &d);
        ck_assert_msg(d.status == want[i], "request %d: %d, want %d", i + 1, d.status, want[i]);
    }
    long long m, f;
    counts(e, 0, &m, &f); /* the exhausted rule still counts the requests that match it */
    ck_assert_int_eq(m, 8);
    ck_assert_int_eq(f, 2);
    counts(e, 1, &m, &f);
    ck_assert_int_eq(m, 6);
    ck_assert_int_eq(f, 3);
    counts(e, 2, &m, &f);
    ck_assert_int_eq(m, 3);
    ck_assert_int_eq(f, 3);
    chaos_engine_free(e);

    e = engine_with(1, "reset op=PutObject nth=3\n");
    chaos_request p = req_of("PutObject", "PUT", "b", "k"), g = get_obj();
    for (int i = 1; i <= 6; i++) {
        chaos_engine_decide(e, &g, &d); /* not counted: does not match */
        ck_assert_int_eq(d.action, CHAOS_NONE);
        chaos_engine_decide(e, &p, &d);
        ck_assert_msg(d.action == (i == 3 ? CHAOS_RESET : CHAOS_NONE), "PUT %d", i);
    }
    chaos_engine_free(e);

    e = engine_with(1, "close after=2 times=2\n");
    int fired[6];
    for (int i = 0; i < 6; i++)
        fired[i] = chaos_engine_decide(e, &q, &d) == CHAOS_CLOSE;
    ck_assert(!fired[0] && !fired[1] && fired[2] && fired[3] && !fired[4] && !fired[5]);
    chaos_engine_free(e);
}
END_TEST

/* Which of n requests the single rule of text fires on, as a 0/1 array (caller frees). */
static char *fire_pattern(uint64_t seed, const char *text, int n)
{
    chaos_engine *e = engine_with(seed, text);
    chaos_request q = get_obj();
    chaos_decision d;
    char *f = malloc((size_t)n);
    for (int i = 0; i < n; i++)
        f[i] = chaos_engine_decide(e, &q, &d) != CHAOS_NONE;
    chaos_engine_free(e);
    return f;
}

START_TEST(test_probability_is_seeded_and_replays)
{
    const int n = 10000;
    char *a = fire_pattern(42, "error 503 p=0.2", n);
    char *b = fire_pattern(42, "error 503 p=0.2", n);
    char *c = fire_pattern(43, "error 503 p=0.2", n);
    int fa = 0, fc = 0, diff = 0;
    for (int i = 0; i < n; i++) {
        fa += a[i];
        fc += c[i];
        diff += a[i] != c[i];
    }
    ck_assert_msg(fa >= 1800 && fa <= 2200, "p=0.2 fired %d of %d", fa, n);
    ck_assert_msg(fc >= 1800 && fc <= 2200, "p=0.2 (seed 43) fired %d of %d", fc, n);
    ck_assert_msg(memcmp(a, b, (size_t)n) == 0, "same seed, different decisions");
    ck_assert_msg(diff > 1000, "seeds 42 and 43 differ on only %d requests", diff);
    /* no long runs: the draws are not correlated with the request number */
    int run = 0, longest = 0;
    for (int i = 0; i < n; i++) {
        run = a[i] ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    ck_assert_msg(longest < 15, "a run of %d fires in a row", longest);
    free(a);
    free(b);
    free(c);

    /* p=0 never fires, p=1 always */
    char *z = fire_pattern(1, "error 503 p=0", 1000), *o = fire_pattern(1, "error 503 p=1", 1000);
    for (int i = 0; i < 1000; i++) {
        ck_assert(!z[i]);
        ck_assert(o[i]);
    }
    free(z);
    free(o);

    /* a decision depends on the rule's own sequence, not on requests other rules see */
    chaos_engine *e1 = engine_with(9, "error 503 op=GetObject p=0.3\n");
    chaos_engine *e2 = engine_with(9, "error 503 op=GetObject p=0.3\n");
    chaos_request g = get_obj(), p = req_of("PutObject", "PUT", "b", "k");
    chaos_decision d1, d2;
    for (int i = 0; i < 2000; i++) {
        chaos_engine_decide(e2, &p, &d2); /* e2 also serves PUTs in between */
        chaos_engine_decide(e1, &g, &d1);
        chaos_engine_decide(e2, &g, &d2);
        ck_assert_int_eq(d1.action, d2.action);
    }
    chaos_engine_free(e1);
    chaos_engine_free(e2);
}
END_TEST

START_TEST(test_jitter_bounds_and_determinism)
{
    chaos_engine *e1 = engine_with(5, "latency 40ms jitter=10ms\n");
    chaos_engine *e2 = engine_with(5, "latency 40ms jitter=10ms\n");
    chaos_engine *e3 = engine_with(6, "latency 40ms jitter=10ms\n");
    chaos_request q = get_obj();
    chaos_decision d1, d2, d3;
    int64_t lo = INT64_MAX, hi = 0, same3 = 0;
    double sum = 0;
    const int n = 10000;
    for (int i = 0; i < n; i++) {
        chaos_engine_decide(e1, &q, &d1);
        chaos_engine_decide(e2, &q, &d2);
        chaos_engine_decide(e3, &q, &d3);
        ck_assert_int_eq(d1.action, CHAOS_LATENCY);
        ck_assert_int_ge(d1.delay_us, 40000);
        ck_assert_int_le(d1.delay_us, 50000);
        ck_assert_int_eq(d1.delay_us, d2.delay_us);
        same3 += d1.delay_us == d3.delay_us;
        if (d1.delay_us < lo)
            lo = d1.delay_us;
        if (d1.delay_us > hi)
            hi = d1.delay_us;
        sum += (double)d1.delay_us;
    }
    ck_assert_msg(lo < 40300 && hi > 49700, "jitter spans only %lld..%lld", (long long)lo,
                  (long long)hi);
    double mean = sum / n;
    ck_assert_msg(mean > 44700 && mean < 45300, "mean %.0f us, want about 45000", mean);
    ck_assert_msg(same3 < n / 100, "another seed gave the same jitter %lld times",
                  (long long)same3);
    chaos_engine_free(e1);
    chaos_engine_free(e2);
    chaos_engine_free(e3);

    /* delay= and jitter= on another action go to delay_us, and into the summary */
    chaos_engine *e = engine_with(5, "error 503 delay=5ms jitter=1ms\nreset delay=2s\n");
    chaos_engine_decide(e, &q, &d1);
    ck_assert_int_eq(d1.action, CHAOS_ERROR);
    ck_assert_int_ge(d1.delay_us, 5000);
    ck_assert_int_le(d1.delay_us, 6000);
    ck_assert_msg(strncmp(d1.summary, "rule 1: error 503 SlowDown (delay ", 34) == 0 &&
                      strcmp(d1.summary + strlen(d1.summary) - 3, "ms)") == 0,
                  "%s", d1.summary);
    chaos_engine_clear(e);
    char err[LV_ERRLEN];
    ck_assert_int_eq(chaos_engine_add(e, "reset delay=2s", NULL, err), LV_OK);
    chaos_engine_decide(e, &q, &d1);
    ck_assert_int_eq(d1.delay_us, 2000000);
    ck_assert_str_eq(d1.summary, "rule 3: reset (delay 2s)");
    chaos_engine_free(e);
}
END_TEST

/* The log of a bad day: decision summaries for a fixed mixed sequence of requests (caller frees).
 */
static char *bad_day_log(uint64_t seed)
{
    chaos_engine *e = engine_with(seed, "lost-response op=PutObject key=*.ltx nth=7\n"
                                        "error 503 SlowDown p=0.05\n"
                                        "truncate 10 op=GetObject range=yes p=0.1 times=20\n"
                                        "reset op=ListObjectsV2 p=0.02\n"
                                        "latency p50=20ms p99=300ms op=GetObject\n"
                                        "latency 40ms jitter=10ms\n");
    static const char *const ops[] = {"GetObject", "PutObject", "ListObjectsV2", "HeadObject"};
    static const char *const methods[] = {"GET", "PUT", "GET", "HEAD"};
    uint64_t st = 2024; /* the request sequence is the same for every seed */
    size_t cap = 1 << 20, len = 0;
    char *log = malloc(cap);
    for (int i = 0; i < 3000; i++) {
        int k = (int)(tu_rand(&st) % 4);
        char key[32];
        snprintf(key, sizeof key, "db/%04d.%s", i, tu_rand(&st) % 2 ? "ltx" : "tmp");
        chaos_request q = req_of(ops[k], methods[k], "b", key);
        q.has_range = (int)(tu_rand(&st) % 2);
        chaos_decision d;
        chaos_engine_decide(e, &q, &d);
        len += (size_t)snprintf(log + len, cap - len, "%d %s|%lld\n", i, d.summary,
                                (long long)d.delay_us);
    }
    chaos_engine_free(e);
    return log;
}

START_TEST(test_seed_replays_a_whole_bad_day)
{
    char *a = bad_day_log(42), *b = bad_day_log(42), *c = bad_day_log(43);
    ck_assert_msg(strcmp(a, b) == 0, "the same seed gave two different logs");
    ck_assert_msg(strcmp(a, c) != 0, "seeds 42 and 43 gave the same log");
    /* every rule had its turn */
    ck_assert_ptr_nonnull(strstr(a, ": lost-response|"));
    ck_assert_ptr_nonnull(strstr(a, ": error 503 SlowDown|"));
    ck_assert_ptr_nonnull(strstr(a, ": truncate 10|"));
    ck_assert_ptr_nonnull(strstr(a, ": reset|"));
    ck_assert_ptr_nonnull(strstr(a, "rule 5: latency "));
    ck_assert_ptr_nonnull(strstr(a, "rule 6: latency "));
    free(a);
    free(b);
    free(c);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_latency_percentiles)
{
    const int n = 10000;
    int64_t *v = malloc(sizeof *v * (size_t)n);
    chaos_engine *e = engine_with(77, "latency p50=40ms p90=60ms p99=200ms\n");
    chaos_request q = get_obj();
    chaos_decision d;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(chaos_engine_decide(e, &q, &d), CHAOS_LATENCY);
        v[i] = d.delay_us;
        ck_assert_int_ge(v[i], 0);
        ck_assert_int_le(v[i], 200000);
    }
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    ck_assert_msg(llabs(v[n / 2] - 40000) < 2000, "p50 %lld us", (long long)v[n / 2]);
    /*
     * Above p50 the curve is steep (p90 -> p99 is 140 ms over 9%), so p90 and p99 are checked by
     * rank: the share of draws at or below the duration given (a 10000-draw sample is within
     * about 0.3% of it).
     */
    int le60 = 0, lt200 = 0;
    for (int i = 0; i < n; i++) {
        le60 += v[i] <= 60000;
        lt200 += v[i] < 200000;
    }
    ck_assert_msg(le60 >= 8900 && le60 <= 9100, "%d of 10000 draws <= p90 (60 ms)", le60);
    ck_assert_msg(lt200 >= 9850 && lt200 <= 9950, "%d of 10000 draws < p99 (200 ms)", lt200);
    ck_assert_msg(v[n / 4] > 17000 && v[n / 4] < 23000, "p25 %lld us (linear from p0=0)",
                  (long long)v[n / 4]);
    chaos_engine_free(e);

    /* p0 and p100 given: uniform between them; same seed, same draws */
    e = engine_with(3, "latency p0=10ms p100=20ms\n");
    chaos_engine *e2 = engine_with(3, "latency p0=10ms p100=20ms\n");
    chaos_decision d2;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        chaos_engine_decide(e, &q, &d);
        chaos_engine_decide(e2, &q, &d2);
        ck_assert_int_eq(d.delay_us, d2.delay_us);
        ck_assert_int_ge(d.delay_us, 10000);
        ck_assert_int_le(d.delay_us, 20000);
        sum += (double)d.delay_us;
    }
    ck_assert_msg(sum / n > 14700 && sum / n < 15300, "mean %.0f", sum / n);
    chaos_engine_free(e);
    chaos_engine_free(e2);

    /* one point: everything above it is that value (p100 defaults to the largest) */
    e = engine_with(3, "latency p10=1ms\n");
    for (int i = 0; i < n; i++) {
        chaos_engine_decide(e, &q, &d);
        v[i] = d.delay_us;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    ck_assert_int_le(v[n / 20], 1000);
    ck_assert_int_eq(v[n / 2], 1000);
    ck_assert_int_eq(v[n - 1], 1000);
    chaos_engine_free(e);
    free(v);
}
END_TEST

typedef struct fake_clock {
    int64_t now;
    int calls;
} fake_clock;

static int64_t fake_now(void *ctx)
{
    fake_clock *c = ctx;
    c->calls++;
    return c->now;
}

START_TEST(test_expiry_with_injected_clock)
{
    char err[LV_ERRLEN];
    fake_clock clk = {.now = 1000000000};
    chaos_engine *e = chaos_engine_new(1, fake_now, &clk);
    ck_assert_int_eq(chaos_engine_add(e, "error 503 for=10s", NULL, err), LV_OK);
    clk.now += 5000000;
    ck_assert_int_eq(chaos_engine_add(e, "error 500 for=10s", NULL, err), LV_OK);
    ck_assert_int_eq(chaos_engine_add(e, "latency 1ms", NULL, err), LV_OK);
    chaos_request q = get_obj();
    chaos_decision d;
    clk.now = 1000000000 + 9999999;
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.status, 503);
    clk.now = 1000000000 + 10000000; /* rule 1 expires exactly now */
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.status, 500);
    clk.now = 1000000000 + 15000000; /* and rule 2 */
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_LATENCY);
    clk.now = 0; /* a clock going back does not revive a rule seen expired */
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_LATENCY);
    clk.now = 1000000000 + 15000000;

    /* the decisions that saw rules 1 and 2 expired dropped them */
    ck_assert_uint_eq(chaos_engine_count(e), 1);
    json_t *j = list_json(e);
    ck_assert_int_eq(json_array_size(tu_jget(j, "rules")), 1);
    ck_assert_int_eq(tu_jint(json_array_get(tu_jget(j, "rules"), 0), "id"), 3);
    json_decref(j);

    /* a rule that expires with no decision since is listed expired:true with its final counts,
     * by every lister (listing drops nothing), until a decision drops it (review 20) */
    ck_assert_int_eq(chaos_engine_add(e, "error 502 op=GetObject for=1s", NULL, err), LV_OK);
    chaos_engine_decide(e, &q, &d); /* rule 3 (latency, first in order) fires: the scan ends */
    ck_assert_int_eq(d.action, CHAOS_LATENCY);
    clk.now += 2000000;
    for (int pass = 0; pass < 2; pass++) {
        j = list_json(e);
        json_t *rules = tu_jget(j, "rules");
        ck_assert_int_eq(json_array_size(rules), 2);
        ck_assert(json_is_false(tu_jget(json_array_get(rules, 0), "expired")));
        ck_assert(json_is_true(tu_jget(json_array_get(rules, 1), "expired")));
        ck_assert_int_eq(tu_jint(json_array_get(rules, 1), "matched"), 0); /* review 9 */
        ck_assert_int_eq(tu_jint(json_array_get(rules, 1), "fired"), 0);
        json_decref(j);
        ck_assert_uint_eq(chaos_engine_count(e), 2);
    }
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_LATENCY);
    ck_assert_uint_eq(chaos_engine_count(e), 1);
    /* remove drops expired rules too */
    ck_assert_int_eq(chaos_engine_add(e, "error 502 for=1s", NULL, err), LV_OK);
    clk.now += 2000000;
    j = list_json(e);
    ck_assert_int_eq(json_array_size(tu_jget(j, "rules")), 2);
    json_decref(j);
    ck_assert_int_eq(chaos_engine_remove(e, 3, err), LV_OK);
    ck_assert_uint_eq(chaos_engine_count(e), 0);
    chaos_engine_free(e);

    /* without for= the clock is not consulted by decide */
    clk.calls = 0;
    e = chaos_engine_new(1, fake_now, &clk);
    ck_assert_int_eq(chaos_engine_add(e, "latency 1ms", NULL, err), LV_OK);
    int after_add = clk.calls;
    for (int i = 0; i < 10; i++)
        chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(clk.calls, after_add);
    chaos_engine_free(e);
}
END_TEST

START_TEST(test_every_action_decision)
{
    chaos_request q = get_obj();
    chaos_decision d;
    struct {
        const char *rule;
        chaos_action a;
        const char *summary;
    } cases[] = {
        {"latency 40ms", CHAOS_LATENCY, "rule 1: latency 40ms"},
        {"latency 41.2ms", CHAOS_LATENCY, "rule 1: latency 41.2ms"},
        {"latency 1.5s", CHAOS_LATENCY, "rule 1: latency 1.5s"},
        {"latency 250us", CHAOS_LATENCY, "rule 1: latency 250us"},
        {"error 503", CHAOS_ERROR, "rule 1: error 503 SlowDown"},
        {"reset", CHAOS_RESET, "rule 1: reset"},
        {"close", CHAOS_CLOSE, "rule 1: close"},
        {"truncate 100", CHAOS_TRUNCATE, "rule 1: truncate 100"},
        {"stall", CHAOS_STALL, "rule 1: stall forever"},
        {"stall 2s", CHAOS_STALL, "rule 1: stall 2s"},
        {"bandwidth 64k", CHAOS_BANDWIDTH, "rule 1: bandwidth 65536 B/s"},
        {"lost-response", CHAOS_LOST_RESPONSE, "rule 1: lost-response"},
        {"crash", CHAOS_CRASH, "rule 1: crash before"},
        {"crash after", CHAOS_CRASH, "rule 1: crash after"},
        {"down 10s", CHAOS_DOWN, "rule 1: down 10s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chaos_engine *e = engine_with(1, cases[i].rule);
        ck_assert_int_eq(chaos_engine_decide(e, &q, &d), cases[i].a);
        ck_assert_uint_eq(d.rule_id, 1);
        ck_assert_msg(strcmp(d.summary, cases[i].summary) == 0, "%s: summary \"%s\"", cases[i].rule,
                      d.summary);
        chaos_engine_free(e);
    }
    chaos_engine *e = engine_with(1, "truncate 100 nth=1\n"
                                     "bandwidth 1M nth=1\n"
                                     "stall nth=1\n"
                                     "stall 1.5s nth=1\n"
                                     "down 10s nth=1\n"
                                     "crash after nth=1\n"
                                     "crash nth=1\n"
                                     "error 404 NoSuchKey \"no such thing\" nth=1\n"
                                     "latency 2m nth=1\n");
    chaos_engine_decide(e, &q, &d);
    ck_assert_uint_eq(d.bytes, 100);
    ck_assert_int_eq(d.delay_us, 0);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_BANDWIDTH);
    ck_assert_uint_eq(d.bytes, 1048576);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.duration_us, -1);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.duration_us, 1500000);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_DOWN);
    ck_assert_int_eq(d.duration_us, 10000000);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.action, CHAOS_CRASH);
    ck_assert_int_eq(d.after_apply, 1);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.after_apply, 0);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.status, 404);
    ck_assert_str_eq(d.code, "NoSuchKey");
    ck_assert_str_eq(d.message, "no such thing");
    ck_assert_uint_eq(d.rule_id, 8);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.delay_us, 120000000);
    ck_assert_str_eq(d.summary, "rule 9: latency 120s");
    /* a field of an earlier decision never leaks into the next */
    ck_assert_int_eq(d.status, 0);
    ck_assert_str_eq(d.code, "");
    ck_assert_uint_eq(d.bytes, 0);
    ck_assert_int_eq(chaos_engine_decide(e, &q, &d), CHAOS_NONE);
    chaos_engine_free(e);

    /* the default S3 errors */
    struct {
        int status;
        const char *code, *message;
    } defs[] = {
        {503, "SlowDown", "Please reduce your request rate."},
        {500, "InternalError", "We encountered an internal error. Please try again."},
        {403, "AccessDenied", "Access Denied"},
        {404, "NoSuchKey", "The specified key does not exist."},
        {400, "BadRequest", "Bad Request"},
        {412, "PreconditionFailed",
         "At least one of the pre-conditions you specified did not hold"},
        {429, "SlowDown", "Please reduce your request rate."},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        char rule[32];
        snprintf(rule, sizeof rule, "error %d", defs[i].status);
        e = engine_with(1, rule);
        chaos_engine_decide(e, &q, &d);
        ck_assert_int_eq(d.status, defs[i].status);
        ck_assert_str_eq(d.code, defs[i].code);
        ck_assert_str_eq(d.message, defs[i].message);
        chaos_engine_free(e);
    }
}
END_TEST

/* Whether the single rule of text matches q. */
static int matches(const char *text, const chaos_request *q)
{
    chaos_engine *e = engine_with(1, text);
    chaos_decision d;
    int m = chaos_engine_decide(e, q, &d) != CHAOS_NONE;
    chaos_engine_free(e);
    return m;
}

START_TEST(test_match_keys)
{
    hdrs h = {{"If-None-Match", "X-Trace"}, {"*", "abc"}};
    chaos_request put = req_of("PutObject", "PUT", "logs-2024", "db/0000/0001-0002.ltx");
    put.header = get_header;
    put.header_ctx = &h;
    chaos_request get = req_of("GetObject", "GET", "data", "a/b.txt");
    get.has_range = 1;
    chaos_request list = req_of("ListObjectsV2", "GET", "data", NULL);
    chaos_request buckets = req_of("ListBuckets", "GET", "", NULL);

    ck_assert(matches("reset", &put) && matches("reset", &buckets));
    ck_assert(matches("reset op=PutObject", &put));
    ck_assert(!matches("reset op=PutObject", &get));
    ck_assert(matches("reset op=GetObject,PutObject", &get));
    ck_assert(matches("reset op=putobject", &put));
    ck_assert(matches("reset method=PUT", &put));
    ck_assert(!matches("reset method=PUT", &get));
    ck_assert(matches("reset method=post,get", &get));
    ck_assert(matches("reset bucket=logs-*", &put));
    ck_assert(!matches("reset bucket=logs-*", &get));
    ck_assert(matches("reset bucket=*", &buckets));
    ck_assert(!matches("reset bucket=?*", &buckets));
    ck_assert(matches("reset key=*.ltx", &put)); /* '*' crosses '/' */
    ck_assert(matches("reset key=db/*/0001-*", &put));
    ck_assert(!matches("reset key=*.ltx", &get));
    ck_assert(!matches("reset key=*", &list)); /* no key: a key glob does not match */
    ck_assert(matches("reset key=a/[ab].txt", &get));
    ck_assert(matches("reset key=a/b.txt", &get)); /* the fast paths agree with fnmatch */
    ck_assert(!matches("reset key=a/b.tx", &get));
    ck_assert(!matches("reset key=a/b.txtx", &get));
    ck_assert(matches("reset key=a/*", &get));
    ck_assert(matches("reset key=a/b.txt*", &get));
    ck_assert(!matches("reset key=b*", &get));
    ck_assert(!matches("reset key=a/b.txt/*", &get));
    ck_assert(matches("reset key=*.txt", &get));
    ck_assert(matches("reset key=*a/b.txt", &get));
    ck_assert(!matches("reset key=*xa/b.txt", &get));
    ck_assert(matches("reset key=*", &get));
    ck_assert(matches("reset key=a*.txt", &get));
    ck_assert(matches("reset key=*/*", &get));
    ck_assert(matches("reset key=a?b.txt", &get)); /* '?' matches '/' too */
    ck_assert(!matches("reset key=a?c.txt", &get));
    ck_assert(matches("reset key=a?b*", &get));
    ck_assert(matches("reset bucket=data", &get));
    ck_assert(!matches("reset bucket=dat", &get));
    ck_assert(matches("reset range=yes", &get));
    ck_assert(!matches("reset range=yes", &put));
    ck_assert(matches("reset range=no", &put));
    ck_assert(!matches("reset range=no", &get));
    ck_assert(matches("reset header=if-none-match", &put));
    ck_assert(matches("reset header=If-None-Match:*", &put));
    ck_assert(!matches("reset header=If-None-Match:x", &put));
    ck_assert(matches("reset header=X-Trace:abc header=If-None-Match", &put));
    ck_assert(!matches("reset header=X-Trace:abc header=X-Missing", &put));
    ck_assert(!matches("reset header=If-None-Match", &get)); /* no header callback */
    ck_assert(matches("reset op=PutObject method=PUT bucket=logs-2024 key=db/* range=no "
                      "header=If-None-Match:*",
                      &put));
    ck_assert(!matches("reset op=PutObject method=PUT bucket=logs-2024 key=db/* range=yes", &put));
}
END_TEST

START_TEST(test_remove_and_clear)
{
    char err[LV_ERRLEN];
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    uint64_t id1, id2, id3;
    ck_assert_int_eq(chaos_engine_add(e, "error 500", &id1, err), LV_OK);
    ck_assert_int_eq(chaos_engine_add(e, "error 501", &id2, err), LV_OK);
    ck_assert_int_eq(chaos_engine_add(e, "error 502", &id3, err), LV_OK);
    ck_assert_uint_eq(id1, 1);
    ck_assert_uint_eq(id2, 2);
    ck_assert_uint_eq(id3, 3);
    chaos_request q = get_obj();
    chaos_decision d;
    ck_assert_int_eq(chaos_engine_remove(e, id1, err), LV_OK);
    chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(d.status, 501);
    ck_assert_uint_eq(d.rule_id, 2);
    ck_assert_int_eq(chaos_engine_remove(e, id1, err), LV_ENOTFOUND);
    ck_assert_msg(strstr(err, "1"), "%s", err);
    ck_assert_int_eq(chaos_engine_remove(e, 99, err), LV_ENOTFOUND);
    ck_assert_uint_eq(chaos_engine_count(e), 2);
    chaos_engine_clear(e);
    ck_assert_uint_eq(chaos_engine_count(e), 0);
    ck_assert_int_eq(chaos_engine_decide(e, &q, &d), CHAOS_NONE);
    uint64_t id4;
    ck_assert_int_eq(chaos_engine_add(e, "reset", &id4, err), LV_OK);
    ck_assert_uint_eq(id4, 4); /* ids are never reused */
    chaos_engine_clear(e);
    chaos_engine_clear(e);
    chaos_engine_free(e);
}
END_TEST

START_TEST(test_list_json)
{
    char err[LV_ERRLEN];
    chaos_engine *e = chaos_engine_new(12345678901234ull, NULL, NULL);
    ck_assert_int_eq(chaos_engine_add(e, "latency 40ms jitter=10ms", NULL, err), LV_OK);
    ck_assert_int_eq(chaos_engine_add(e,
                                      "error 500 InternalError \"quote \\\" back\\\\slash "
                                      "ünï\" key='a b' op=GetObject",
                                      NULL, err),
                     LV_OK);
    chaos_request q = get_obj();
    chaos_decision d;
    for (int i = 0; i < 3; i++)
        chaos_engine_decide(e, &q, &d);
    json_t *j = list_json(e);
    ck_assert_int_eq(tu_jint(j, "seed"), 12345678901234ll);
    json_t *rules = tu_jget(j, "rules");
    ck_assert_int_eq(json_array_size(rules), 2);
    json_t *r0 = json_array_get(rules, 0), *r1 = json_array_get(rules, 1);
    ck_assert_int_eq(tu_jint(r0, "id"), 1);
    ck_assert_str_eq(tu_jstr(r0, "rule"), "latency 40ms jitter=10ms");
    ck_assert_int_eq(tu_jint(r0, "matched"), 3);
    ck_assert_int_eq(tu_jint(r0, "fired"), 3);
    ck_assert(json_is_false(tu_jget(r0, "expired")));
    ck_assert_int_eq(tu_jint(r1, "id"), 2);
    ck_assert_str_eq(tu_jstr(r1, "rule"),
                     "error 500 InternalError \"quote \\\" back\\\\slash ünï\" op=GetObject "
                     "key=\"a b\"");
    ck_assert_int_eq(tu_jint(r1, "matched"), 0);
    ck_assert_int_eq(json_object_size(r1), 5);
    ck_assert_int_eq(json_object_size(j), 2);
    json_decref(j);

    /* what the listing says is a rule that adds as the same rule */
    j = list_json(e);
    chaos_engine *e2 = chaos_engine_new(1, NULL, NULL);
    json_t *rr = tu_jget(j, "rules");
    for (size_t i = 0; i < json_array_size(rr); i++)
        ck_assert_int_eq(chaos_engine_add(e2, tu_jstr(json_array_get(rr, i), "rule"), NULL, err),
                         LV_OK);
    json_t *j2 = list_json(e2);
    for (size_t i = 0; i < json_array_size(rr); i++)
        ck_assert_str_eq(tu_jstr(json_array_get(rr, i), "rule"),
                         tu_jstr(json_array_get(tu_jget(j2, "rules"), i), "rule"));
    json_decref(j);
    json_decref(j2);
    chaos_engine_free(e2);

    chaos_engine_clear(e);
    lv_buf b;
    lv_buf_init(&b);
    chaos_engine_list_json(e, &b);
    ck_assert_str_eq(b.data, "{\"seed\":12345678901234,\"rules\":[]}");
    lv_buf_free(&b);
    chaos_engine_free(e);
}
END_TEST

/* ---- threads -------------------------------------------------------------------------------- */

typedef struct worker {
    chaos_engine *e;
    int n;
    int fired;
    int64_t delay_sum;
} worker;

static void *decide_loop(void *arg)
{
    worker *w = arg;
    chaos_request q = get_obj();
    chaos_decision d;
    for (int i = 0; i < w->n; i++) {
        if (chaos_engine_decide(w->e, &q, &d) != CHAOS_NONE) {
            w->fired++;
            w->delay_sum += d.delay_us;
        }
    }
    return NULL;
}

/* Runs nthreads threads of n decisions each on e; returns the fires and the delay sum. */
static int run_threads(chaos_engine *e, int nthreads, int n, int64_t *delay_sum)
{
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){.e = e, .n = n};
        ck_assert_int_eq(pthread_create(&t[i], NULL, decide_loop, &w[i]), 0);
    }
    int fired = 0;
    *delay_sum = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        fired += w[i].fired;
        *delay_sum += w[i].delay_sum;
    }
    return fired;
}

START_TEST(test_concurrent_decisions)
{
    int64_t sum;
    chaos_engine *e = engine_with(1, "error 503 times=1000\n");
    ck_assert_int_eq(run_threads(e, 8, 5000, &sum), 1000);
    long long m, f;
    counts(e, 0, &m, &f);
    ck_assert_int_eq(m, 40000);
    ck_assert_int_eq(f, 1000);
    chaos_engine_free(e);

    /*
     * p= and jitter under threads: the set of request numbers that fire, and the draws, do not
     * depend on which thread takes which number, so the totals equal a single thread's.
     */
    const char *rule = "latency 10ms jitter=5ms p=0.3\n";
    chaos_engine *one = engine_with(99, rule), *many = engine_with(99, rule);
    int64_t sum1, sumn;
    int f1 = run_threads(one, 1, 20000, &sum1);
    int fn = run_threads(many, 4, 5000, &sumn);
    ck_assert_int_eq(f1, fn);
    ck_assert_int_eq(sum1, sumn);
    ck_assert_msg(f1 > 5500 && f1 < 6500, "p=0.3 fired %d of 20000", f1);
    chaos_engine_free(one);
    chaos_engine_free(many);

    /* rules added and removed while other threads decide */
    e = engine_with(1, "latency 1ms op=PutObject\n");
    pthread_t t;
    worker w = {.e = e, .n = 20000};
    ck_assert_int_eq(pthread_create(&t, NULL, decide_loop, &w), 0);
    char err[LV_ERRLEN];
    for (int i = 0; i < 200; i++) {
        uint64_t id;
        ck_assert_int_eq(chaos_engine_add(e, "error 500 op=GetObject p=0.5", &id, err), LV_OK);
        lv_buf b;
        lv_buf_init(&b);
        chaos_engine_list_json(e, &b);
        lv_buf_free(&b);
        ck_assert_int_eq(chaos_engine_remove(e, id, err), LV_OK);
    }
    pthread_join(t, NULL);
    ck_assert_uint_eq(chaos_engine_count(e), 1);
    chaos_engine_free(e);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The cost of a decision that scans 100 rules of which none matches (the fakes3 benchmark's
 * "100 non-matching rules" case). Prints the figure; fails only if it is absurdly slow (20 us a
 * decision, 200 ns a rule, 50 times the aim), so that a sanitizer build or a loaded machine passes.
 */
START_TEST(test_hundred_non_matching_rules_are_cheap)
{
    static const char *const ops[] = {"PutObject",     "DeleteObject",
                                      "ListObjectsV2", "CompleteMultipartUpload",
                                      "UploadPart",    "HeadObject"};
    lv_buf text;
    lv_buf_init(&text);
    for (int i = 0; i < 100; i++)
        lv_buf_printf(&text, "error 503 op=%s p=0.5 key=*.ltx\n", ops[i % 6]);
    chaos_engine *e = engine_with(1, text.data);
    lv_buf_free(&text);
    chaos_request q = get_obj();
    chaos_decision d;
    const int n = 200000;
    int fired = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++) /* no ck_assert in the loop: Check's mark point is a write */
        fired += chaos_engine_decide(e, &q, &d) != CHAOS_NONE;
    double per = (now_s() - t0) / n * 1e9;
    ck_assert_int_eq(fired, 0);
    printf("chaos: decide with 100 non-matching rules: %.0f ns (%.1f ns a rule)\n", per, per / 100);
    ck_assert_msg(per < 20000, "a decision over 100 rules took %.0f ns", per);

    /* and no allocation at all in decide */
    lv_alloc_fail_after(0);
    for (int i = 0; i < 1000; i++)
        chaos_engine_decide(e, &q, &d);
    ck_assert_int_eq(lv_alloc_fail_after(-1), 0);
    chaos_engine_free(e);
}
END_TEST

static Suite *chaos_engine_suite(void)
{
    Suite *s = suite_create("chaos_engine");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, test_no_rules_no_fault);
    tcase_add_test(tc, test_first_matching_rule_fires_in_order);
    tcase_add_test(tc, test_times_after_nth);
    tcase_add_test(tc, test_probability_is_seeded_and_replays);
    tcase_add_test(tc, test_jitter_bounds_and_determinism);
    tcase_add_test(tc, test_seed_replays_a_whole_bad_day);
    tcase_add_test(tc, test_latency_percentiles);
    tcase_add_test(tc, test_expiry_with_injected_clock);
    tcase_add_test(tc, test_every_action_decision);
    tcase_add_test(tc, test_match_keys);
    tcase_add_test(tc, test_remove_and_clear);
    tcase_add_test(tc, test_list_json);
    tcase_add_test(tc, test_concurrent_decisions);
    tcase_add_test(tc, test_hundred_non_matching_rules_are_cheap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chaos_engine_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
