/*
 * test_chaos_parse: the rule syntax of chaos.h through the public API. Every action, match key,
 * modifier and limit parses and is written back in canonical form; the canonical form parses to
 * itself; every kind of bad input is refused with an error that names the bad word; durations and
 * rates; add_text is all-or-none with line numbers; load_file; out-of-memory at every allocation.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "chaos.h"
#include "testutil.h"

/* The canonical text of rule (added to a fresh engine and listed as JSON). Caller frees. */
static char *canon_of(const char *rule)
{
    char err[LV_ERRLEN] = "";
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    ck_assert_ptr_nonnull(e);
    lv_err rc = chaos_engine_add(e, rule, NULL, err);
    ck_assert_msg(rc == LV_OK, "rule \"%s\" refused: %s", rule, err);
    lv_buf b;
    lv_buf_init(&b);
    chaos_engine_list_json(e, &b);
    ck_assert_int_eq(lv_buf_ok(&b, NULL), LV_OK);
    json_error_t jerr;
    json_t *j = json_loads(b.data, 0, &jerr);
    ck_assert_msg(j != NULL, "list JSON does not parse: %s: %s", jerr.text, b.data);
    json_t *rules = tu_jget(j, "rules");
    ck_assert_int_eq(json_array_size(rules), 1);
    char *out = strdup(tu_jstr(json_array_get(rules, 0), "rule"));
    json_decref(j);
    lv_buf_free(&b);
    chaos_engine_free(e);
    return out;
}

/* Parses rule, expects canonical text want, and checks that want parses to itself. */
static void expect_canon(const char *rule, const char *want)
{
    char *got = canon_of(rule);
    ck_assert_msg(strcmp(got, want) == 0, "\"%s\": canonical \"%s\", want \"%s\"", rule, got, want);
    char *again = canon_of(got);
    ck_assert_msg(strcmp(again, got) == 0, "canonical \"%s\" reparses as \"%s\"", got, again);
    free(again);
    free(got);
}

/* Expects rule refused with LV_EINVAL, an error naming the rule, and each of the needles. */
static void expect_bad(const char *rule, const char *needle1, const char *needle2)
{
    char err[LV_ERRLEN] = "";
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    uint64_t id = 99;
    lv_err rc = chaos_engine_add(e, rule, &id, err);
    ck_assert_msg(rc == LV_EINVAL, "\"%s\" accepted (rc %d)", rule, rc);
    ck_assert_uint_eq(chaos_engine_count(e), 0);
    ck_assert_msg(strncmp(err, "bad rule \"", 10) == 0, "\"%s\": error \"%s\"", rule, err);
    ck_assert_msg(strstr(err, needle1), "\"%s\": error \"%s\" lacks \"%s\"", rule, err, needle1);
    if (needle2)
        ck_assert_msg(strstr(err, needle2), "\"%s\": error \"%s\" lacks \"%s\"", rule, err,
                      needle2);
    chaos_engine_free(e);
}

START_TEST(test_every_action_parses_to_canonical)
{
    expect_canon("latency 40ms", "latency 40ms");
    expect_canon("latency 40", "latency 40ms");
    expect_canon("latency 1.5s", "latency 1500ms");
    expect_canon("latency 2m", "latency 2m");
    expect_canon("latency 0.5m", "latency 30s");
    expect_canon("latency 250us", "latency 250us");
    expect_canon("latency 1h", "latency 1h");
    expect_canon("latency 0", "latency 0ms");
    expect_canon("latency p50=40ms p99=200ms", "latency p50=40ms p99=200ms");
    expect_canon("latency p99=0.2s p50=40", "latency p50=40ms p99=200ms");
    expect_canon("latency p99.9=1s p0=1ms p100=2s", "latency p0=1ms p99.9=1s p100=2s");
    expect_canon("error 503", "error 503 SlowDown");
    expect_canon("error 500", "error 500 InternalError");
    expect_canon("error 403", "error 403 AccessDenied");
    expect_canon("error 404", "error 404 NoSuchKey");
    expect_canon("error 429", "error 429 SlowDown");
    expect_canon("error 400", "error 400 BadRequest");
    expect_canon("error 418", "error 418 BadRequest");
    expect_canon("error 200", "error 200 InternalError");
    expect_canon("error 503 ServiceUnavailable", "error 503 ServiceUnavailable");
    expect_canon("error 403 AccessDenied \"Access Denied\"",
                 "error 403 AccessDenied \"Access Denied\"");
    expect_canon("error 404 NoSuchKey 'gone away'", "error 404 NoSuchKey \"gone away\"");
    expect_canon("error 500 InternalError oops", "error 500 InternalError oops");
    expect_canon("reset", "reset");
    expect_canon("close", "close");
    expect_canon("lost-response", "lost-response");
    expect_canon("truncate 100", "truncate 100");
    expect_canon("truncate 0", "truncate 0");
    expect_canon("truncate 2048", "truncate 2k");
    expect_canon("truncate 1k", "truncate 1k");
    expect_canon("stall", "stall");
    expect_canon("stall 5s", "stall 5s");
    expect_canon("bandwidth 65536", "bandwidth 64k");
    expect_canon("bandwidth 1M", "bandwidth 1M");
    expect_canon("bandwidth 1.5k", "bandwidth 1536");
    expect_canon("bandwidth 1000", "bandwidth 1000");
    expect_canon("bandwidth 2G", "bandwidth 2G");
    expect_canon("crash", "crash before");
    expect_canon("crash before", "crash before");
    expect_canon("crash after", "crash after");
    expect_canon("down 10s", "down 10s");
}
END_TEST

START_TEST(test_every_key_parses_to_canonical)
{
    expect_canon("error 503 op=GetObject", "error 503 SlowDown op=GetObject");
    expect_canon("error 503 op=getobject,PUTOBJECT", "error 503 SlowDown op=GetObject,PutObject");
    expect_canon("error 503 method=put,get", "error 503 SlowDown method=GET,PUT");
    expect_canon("error 503 bucket=logs-*", "error 503 SlowDown bucket=logs-*");
    expect_canon("error 503 key=*.ltx", "error 503 SlowDown key=*.ltx");
    expect_canon("error 503 key='my file*'", "error 503 SlowDown key=\"my file*\"");
    expect_canon("error 503 range=yes", "error 503 SlowDown range=yes");
    expect_canon("error 503 range=no", "error 503 SlowDown range=no");
    expect_canon("error 503 header=If-None-Match", "error 503 SlowDown header=If-None-Match");
    expect_canon("error 503 header=If-None-Match:*", "error 503 SlowDown header=If-None-Match:*");
    expect_canon("error 503 header=X-A header=X-B:v", "error 503 SlowDown header=X-A header=X-B:v");
    expect_canon("error 503 header=\"X-A:a b\"", "error 503 SlowDown header=\"X-A:a b\"");
    expect_canon("error 503 header=X-A:", "error 503 SlowDown header=X-A:");
    expect_canon("error 503 nth=2", "error 503 SlowDown nth=2");
    expect_canon("error 503 delay=5ms", "error 503 SlowDown delay=5ms");
    expect_canon("error 503 jitter=1.5ms", "error 503 SlowDown jitter=1500us");
    expect_canon("error 503 p=0.05", "error 503 SlowDown p=0.05");
    expect_canon("error 503 p=1", "error 503 SlowDown p=1");
    expect_canon("error 503 p=0", "error 503 SlowDown p=0");
    expect_canon("error 503 p=.5", "error 503 SlowDown p=0.5");
    expect_canon("error 503 times=3", "error 503 SlowDown times=3");
    expect_canon("error 503 after=10", "error 503 SlowDown after=10");
    expect_canon("error 503 after=0", "error 503 SlowDown");
    expect_canon("error 503 for=10s", "error 503 SlowDown for=10s");
    /* everything at once, out of order: the canonical order is fixed */
    expect_canon("error 503 for=1m p=0.5 jitter=1ms delay=5ms times=4 after=2 "
                 "header=X-Test:1 range=no key=a/* bucket=b method=PUT op=PutObject",
                 "error 503 SlowDown op=PutObject method=PUT bucket=b key=a/* range=no "
                 "header=X-Test:1 delay=5ms jitter=1ms p=0.5 times=4 after=2 for=1m");
    expect_canon("latency 40ms jitter=10ms", "latency 40ms jitter=10ms");
    expect_canon("truncate 100 op=GetObject range=yes times=3",
                 "truncate 100 op=GetObject range=yes times=3");
    expect_canon("lost-response op=PutObject key=*.ltx nth=2",
                 "lost-response op=PutObject key=*.ltx nth=2");
    expect_canon("crash after op=CompleteMultipartUpload",
                 "crash after op=CompleteMultipartUpload");
    /* positional arguments may come after keys */
    expect_canon("error op=PutObject 500 InternalError", "error 500 InternalError op=PutObject");
}
END_TEST

START_TEST(test_quoting_comments_and_blanks)
{
    expect_canon("  latency\t40ms   ", "latency 40ms");
    expect_canon("latency 40ms # slow S3", "latency 40ms");
    expect_canon("latency 40ms #", "latency 40ms");
    expect_canon("error 500 InternalError \"a # b\"", "error 500 InternalError \"a # b\"");
    expect_canon("error 500 InternalError a#b", "error 500 InternalError a#b");
    expect_canon("error 500 InternalError \"say \\\"hi\\\" \\\\ now\"",
                 "error 500 InternalError \"say \\\"hi\\\" \\\\ now\"");
    expect_canon("error 500 InternalError 'it''s'", "error 500 InternalError its");
    expect_canon("error 500 InternalError \"x=y\"", "error 500 InternalError \"x=y\"");
    expect_canon("error 500 InternalError \"\"", "error 500 InternalError \"\"");
    expect_canon("error 500 InternalError 'back\\slash'", "error 500 InternalError back\\slash");
    expect_canon("error 500 InternalError \"d'Artagnan\"",
                 "error 500 InternalError \"d'Artagnan\"");
    expect_canon("error 500 InternalError \"Ünïcödé ok\"",
                 "error 500 InternalError \"Ünïcödé ok\"");
    expect_canon("latency 40ms\r", "latency 40ms");
}
END_TEST

START_TEST(test_bad_rules_name_the_bad_part)
{
    expect_bad("", "empty rule", NULL);
    expect_bad("   # only a comment", "empty rule", NULL);
    expect_bad("erorr 503", "unknown action \"erorr\"", "did you mean error?");
    expect_bad("explode", "unknown action \"explode\"", "latency, error");
    expect_bad("Latency 40ms", "unknown action \"Latency\"", NULL);
    expect_bad("op=GetObject", "starts with an action", "op=GetObject");
    /* the example of the brief, word for word up to the value */
    expect_bad("error 503 SlowDow p=2",
               "bad rule \"error 503 SlowDow p=2\": p must be between 0 "
               "and 1",
               "\"2\"");
    expect_bad("error 503 p=-0.1", "p must be between 0 and 1", "-0.1");
    expect_bad("error 503 p=1.01", "p must be between 0 and 1", "1.01");
    expect_bad("error 503 p=nan", "p must be between 0 and 1", "nan");
    expect_bad("error 503 p=inf", "p must be between 0 and 1", "inf");
    expect_bad("error 503 p=half", "p must be between 0 and 1", "half");
    expect_bad("error 503 p=0.1 p=0.2", "p= is given twice", NULL);
    expect_bad("error 503 foo=1", "unknown key \"foo\"", NULL);
    expect_bad("error 503 tmes=3", "unknown key \"tmes\"", "did you mean times=?");
    expect_bad("error 503 =5", "a key is missing", "=5");
    expect_bad("error 503 op=", "op= needs a value", NULL);
    expect_bad("error", "needs an HTTP status", NULL);
    expect_bad("error abc", "\"abc\"", "not an HTTP status");
    expect_bad("error 700", "700", "between 200 and 599");
    expect_bad("error 99", "99", "between 200 and 599");
    expect_bad("error 100", "100", "between 200 and 599"); /* 1xx is no answer (review 20) */
    expect_bad("error 199", "199", "between 200 and 599");
    /* 2^64 + 499 wraps to 499 if the check comes after the multiplication (review 19) */
    expect_bad("error 18446744073709552115", "18446744073709552115", "not an HTTP status");
    expect_bad("error 503 times=18446744073709551617", "times", NULL);
    expect_bad("error -1", "-1", "not an HTTP status");
    expect_bad("error 503 Bad!Code", "\"Bad!Code\"", "letters and digits");
    expect_bad("error 503 SlowDown msg extra", "too many arguments for error", "\"extra\"");
    expect_bad("error 503 SlowDown \"unterminated", "quote is not closed", NULL);
    expect_bad("error 503 SlowDown 'unterminated", "quote is not closed", NULL);
    expect_bad("latency", "latency needs a duration", NULL);
    expect_bad("latency 40xs", "\"40xs\"", "unknown unit");
    expect_bad("latency -5ms", "\"-5ms\"", "negative");
    expect_bad("latency ms", "\"ms\"", "not a duration");
    expect_bad("latency 1e3ms", "\"1e3ms\"", "unknown unit");
    expect_bad("latency 400d", "\"400d\"", "unknown unit");
    expect_bad("latency 367d", "\"367d\"", NULL);
    expect_bad("latency 9000h", "\"9000h\"", "too long");
    expect_bad("latency 40ms 50ms", "too many arguments for latency", "\"50ms\"");
    expect_bad("latency 40ms p50=10ms", "not both", NULL);
    expect_bad("latency p99=10ms p50=20ms", "p99= is shorter than p50=", NULL);
    expect_bad("latency p101=1ms", "p101=", "between p0 and p100");
    expect_bad("latency p50=1ms p50=2ms", "p50= is given twice", NULL);
    expect_bad("latency p50=fast", "p50=fast", "not a duration");
    expect_bad("latency p50=", "p50= needs a duration", NULL);
    expect_bad("error 503 p50=1ms", "p50=", "only for latency");
    expect_bad("reset 5", "reset takes no argument", "\"5\"");
    expect_bad("close now", "close takes no argument", "\"now\"");
    expect_bad("lost-response x", "lost-response takes no argument", "\"x\"");
    expect_bad("truncate", "truncate needs a byte count", NULL);
    expect_bad("truncate 10x", "\"10x\"", "unknown suffix");
    expect_bad("truncate -1", "\"-1\"", "negative");
    expect_bad("bandwidth", "bandwidth needs a rate", NULL);
    expect_bad("bandwidth 0", "\"0\"", "at least 1 byte");
    expect_bad("bandwidth fast", "\"fast\"", "not a number");
    expect_bad("stall forever", "stall \"forever\"", "not a duration");
    expect_bad("crash during", "crash \"during\"", "before or after");
    expect_bad("down", "down needs a duration", NULL);
    expect_bad("down 0", "down \"0\"", "longer than 0");
    expect_bad("error 503 op=GetObjet", "unknown S3 operation \"GetObjet\"",
               "did you mean GetObject?");
    expect_bad("error 503 op=Frobnicate", "unknown S3 operation \"Frobnicate\"", NULL);
    expect_bad("error 503 op=GetObject,,PutObject", "an empty operation name", NULL);
    expect_bad("error 503 op=GetObject,GetObject", "GetObject is named twice", NULL);
    expect_bad("error 503 op=GetObject op=PutObject", "op= is given twice", NULL);
    expect_bad("error 503 method=FETCH", "unknown HTTP method \"FETCH\"", NULL);
    expect_bad("error 503 method=GET,", "an empty method", NULL);
    expect_bad("error 503 range=maybe", "range=maybe", "yes or no");
    expect_bad("error 503 header=\"Bad Name\"", "\"Bad Name\" is not a header name", NULL);
    expect_bad("error 503 header=:v", "is not a header name", NULL);
    expect_bad("error 503 nth=0", "nth=0", "from 1");
    expect_bad("error 503 nth=x", "nth=x", "from 1");
    expect_bad("error 503 times=0", "times=0", "from 1");
    expect_bad("error 503 times=-1", "times=-1", "from 1");
    expect_bad("error 503 times=1.5", "times=1.5", "from 1");
    expect_bad("error 503 after=x", "after=x", "whole number");
    expect_bad("error 503 nth=2 times=3", "nth= cannot be combined", NULL);
    expect_bad("error 503 after=1 nth=2", "nth= cannot be combined", NULL);
    expect_bad("error 503 delay=5parsecs", "delay=5parsecs", "unknown unit");
    expect_bad("error 503 jitter=-1ms", "jitter=-1ms", "negative");
    expect_bad("error 503 for=0", "for=0", "longer than 0");
    expect_bad("error 503 for=soon", "for=soon", "not a duration");
    expect_bad("error 503 SlowDown \"tab\there\"", "control character", NULL);
    expect_bad("error 503 SlowDown \"\xff\xfe\"", "not valid UTF-8", NULL);
    expect_bad("error 503 SlowDown \"\xc0\xaf\"", "not valid UTF-8", NULL);
    expect_bad("latency 40ms\x01", "control character (0x01)", NULL);

    /* too many words */
    char many[1024] = "reset";
    for (int i = 0; i < 70; i++)
        strcat(many, " x");
    expect_bad(many, "too many words", NULL);
    /* too long, and the error shows the start of the rule, cut */
    char *longr = malloc(5000);
    strcpy(longr, "error 500 InternalError \"");
    memset(longr + strlen(longr), 'a', 4500);
    strcpy(longr + 25 + 4500, "\"");
    expect_bad(longr, "longer than 4096 bytes", "bad rule \"error 500 InternalError \"aaa");
    free(longr);
    /* message too long for S3's field */
    char msg[400] = "error 500 InternalError ";
    memset(msg + strlen(msg), 'm', 300);
    expect_bad(msg, "longer than 255 bytes", NULL);
}
END_TEST

START_TEST(test_error_for_a_long_rule_still_names_the_problem)
{
    /* a rule longer than the error buffer: the detail must still be in the message */
    char rule[600] = "error 503 op=GetObject bucket=";
    memset(rule + strlen(rule), 'b', 300);
    strcat(rule, " tmes=3");
    char err[LV_ERRLEN];
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    ck_assert_int_eq(chaos_engine_add(e, rule, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "unknown key \"tmes\""), "%s", err);
    ck_assert_msg(strstr(err, "...\""), "rule text not cut: %s", err);
    ck_assert_int_lt(strlen(err), LV_ERRLEN);
    chaos_engine_free(e);
}
END_TEST

START_TEST(test_canonical_round_trip_corpus)
{
    static const char *const corpus[] = {
        "latency 40ms jitter=10ms",
        "latency p50=40ms p90=60ms p99=200ms op=GetObject",
        "latency p0=0 p100=1s",
        "error 503 SlowDown op=PutObject p=0.05",
        "error 503 p=0.123456789",
        "error 500 InternalError \"We \\\"really\\\" broke\" delay=1.25ms",
        "error 412 PreconditionFailed header=If-None-Match:* op=PutObject",
        "truncate 100 op=GetObject range=yes times=3",
        "lost-response op=PutObject key=*.ltx nth=2",
        "crash after op=CompleteMultipartUpload",
        "crash",
        "down 10s after=5 times=1",
        "stall 2.5s method=GET,HEAD bucket='my bucket' for=30m",
        "stall",
        "bandwidth 1.5M key=big/*",
        "reset p=0.01",
        "close op=ListObjectsV2,ListObjects",
        "error 503 key=\"a=b c\" header=\"X-Odd:v = w\"",
    };
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        char *a = canon_of(corpus[i]);
        char *b = canon_of(a);
        ck_assert_msg(strcmp(a, b) == 0, "\"%s\" -> \"%s\" -> \"%s\"", corpus[i], a, b);
        free(a);
        free(b);
    }
}
END_TEST

/* The numbers of a rule in C's terms, whatever the locale: probabilities with an exponent, the
 * canonical text always with a point (review 20). */
static void numbers_in_c_terms(void)
{
    expect_canon("error 503 p=5e-2", "error 503 SlowDown p=0.05");
    expect_canon("error 503 p=1E0", "error 503 SlowDown p=1");
    expect_canon("error 503 p=1e-7", "error 503 SlowDown p=0.0000001");
    expect_canon("error 503 p=0.3333333333333333", "error 503 SlowDown p=0.3333333333333333");
    expect_canon("latency p99.9=1.5s p50=0.25ms", "latency p50=250us p99.9=1500ms");
    int64_t us = 0;
    ck_assert_int_eq(chaos_parse_duration("1.5s", &us, NULL), LV_OK);
    ck_assert_int_eq(us, 1500000);
    uint64_t bytes = 0;
    ck_assert_int_eq(chaos_parse_rate("1.5k", &bytes, NULL), LV_OK);
    ck_assert_uint_eq(bytes, 1536);
    expect_bad("error 503 p=1,5", "p must be between 0 and 1", NULL);
}

START_TEST(test_numbers_ignore_the_locale)
{
    numbers_in_c_terms();
    /* again under a locale whose decimal separator is a comma (de_DE, built here with
     * localedef from the Debian locales package, when it is installed) */
    if (access("/usr/share/i18n/locales/de_DE", R_OK) != 0) {
        fprintf(stderr, "note: no de_DE locale source (Debian package locales): the numbers were "
                        "checked in the C locale only\n");
        return;
    }
    char dir[] = "/tmp/chaos-locale-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "localedef failed (%d)", rc);
    setenv("LOCPATH", dir, 1);
    ck_assert_ptr_nonnull(setlocale(LC_NUMERIC, "de_DE.UTF-8"));
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    ck_assert_str_eq(probe, "1,5"); /* the locale is in force: printf would write a comma */
    numbers_in_c_terms();
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_parse_duration)
{
    int64_t us;
    char err[LV_ERRLEN];
    struct {
        const char *s;
        int64_t us;
    } ok[] = {{"40ms", 40000},   {"40", 40000},      {"1.5s", 1500000}, {"250us", 250},
              {"2m", 120000000}, {"0", 0},           {"0.5", 500},      {"1h", 3600000000LL},
              {"0.001ms", 1},    {"10.25ms", 10250}, {"3.", 3000},      {".5s", 500000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(chaos_parse_duration(ok[i].s, &us, err) == LV_OK, "%s: %s", ok[i].s, err);
        ck_assert_msg(us == ok[i].us, "%s: %lld, want %lld", ok[i].s, (long long)us,
                      (long long)ok[i].us);
    }
    const char *bad[] = {"",      "ms",     "-1ms",  "40 ms", "40MS",
                         "4e1ms", "1.2.3s", "40sec", "x",     "10000h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(chaos_parse_duration(bad[i], &us, err) == LV_EINVAL, "\"%s\" accepted",
                      bad[i]);
        char want[80];
        snprintf(want, sizeof want, "bad duration \"%s\"", bad[i]);
        ck_assert_msg(strstr(err, want), "\"%s\": %s", bad[i], err);
    }
}
END_TEST

START_TEST(test_parse_rate)
{
    uint64_t v;
    char err[LV_ERRLEN];
    struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"65536", 65536},      {"64k", 65536}, {"64K", 65536},    {"1M", 1048576},
              {"1G", 1073741824ull}, {"0.5k", 512},  {"1.5M", 1572864}, {"0", 0},
              {"1000", 1000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(chaos_parse_rate(ok[i].s, &v, err) == LV_OK, "%s: %s", ok[i].s, err);
        ck_assert_msg(v == ok[i].v, "%s: %llu", ok[i].s, (unsigned long long)v);
    }
    const char *bad[] = {"", "k", "-1", "64kb", "1T", "fast", "64 k", "1e3", "99999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(chaos_parse_rate(bad[i], &v, err) == LV_EINVAL, "\"%s\" accepted", bad[i]);
        char want[80];
        snprintf(want, sizeof want, "bad rate \"%s\"", bad[i]);
        ck_assert_msg(strstr(err, want), "\"%s\": %s", bad[i], err);
    }
}
END_TEST

START_TEST(test_action_names)
{
    ck_assert_str_eq(chaos_action_name(CHAOS_NONE), "none");
    ck_assert_str_eq(chaos_action_name(CHAOS_LATENCY), "latency");
    ck_assert_str_eq(chaos_action_name(CHAOS_ERROR), "error");
    ck_assert_str_eq(chaos_action_name(CHAOS_RESET), "reset");
    ck_assert_str_eq(chaos_action_name(CHAOS_CLOSE), "close");
    ck_assert_str_eq(chaos_action_name(CHAOS_TRUNCATE), "truncate");
    ck_assert_str_eq(chaos_action_name(CHAOS_STALL), "stall");
    ck_assert_str_eq(chaos_action_name(CHAOS_BANDWIDTH), "bandwidth");
    ck_assert_str_eq(chaos_action_name(CHAOS_LOST_RESPONSE), "lost-response");
    ck_assert_str_eq(chaos_action_name(CHAOS_CRASH), "crash");
    ck_assert_str_eq(chaos_action_name(CHAOS_DOWN), "down");
    ck_assert_str_eq(chaos_action_name((chaos_action)99), "none");
}
END_TEST

/* The canonical texts of every rule in e, joined by '\n' (caller frees). */
static char *list_rules(chaos_engine *e)
{
    lv_buf b;
    lv_buf_init(&b);
    chaos_engine_list_json(e, &b);
    json_error_t jerr;
    json_t *j = json_loads(b.data, 0, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    json_t *rules = tu_jget(j, "rules");
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < json_array_size(rules); i++) {
        json_t *r = json_array_get(rules, i);
        len += (size_t)snprintf(out + len, cap - len, "%lld:%s\n", tu_jint(r, "id"),
                                tu_jstr(r, "rule"));
    }
    json_decref(j);
    lv_buf_free(&b);
    return out;
}

START_TEST(test_add_text_all_or_none_with_line_numbers)
{
    char err[LV_ERRLEN];
    chaos_engine *e = chaos_engine_new(7, NULL, NULL);
    const char *good = "# faults for a bad day\n"
                       "\n"
                       "latency 40ms jitter=10ms   # everything slow\r\n"
                       "   \t\n"
                       "error 503 SlowDown op=PutObject p=0.05\n"
                       "crash after op=CompleteMultipartUpload"; /* no final newline */
    ck_assert_int_eq(chaos_engine_add_text(e, good, strlen(good), err), LV_OK);
    ck_assert_uint_eq(chaos_engine_count(e), 3);
    char *l = list_rules(e);
    ck_assert_str_eq(l, "1:latency 40ms jitter=10ms\n"
                        "2:error 503 SlowDown op=PutObject p=0.05\n"
                        "3:crash after op=CompleteMultipartUpload\n");
    free(l);

    const char *badtext = "reset op=GetObject\n"
                          "\n"
                          "error 503 times=0\n"
                          "close\n";
    ck_assert_int_eq(chaos_engine_add_text(e, badtext, strlen(badtext), err), LV_EINVAL);
    ck_assert_msg(strncmp(err, "line 3: bad rule \"error 503 times=0\"", 36) == 0, "%s", err);
    ck_assert_msg(strstr(err, "times=0"), "%s", err);
    ck_assert_uint_eq(chaos_engine_count(e), 3); /* nothing of the bad text was added */

    /* ids go on from where they were; a NUL inside the text is refused with its line */
    const char nul[] = "reset\nclose\0x\n";
    ck_assert_int_eq(chaos_engine_add_text(e, nul, sizeof nul - 1, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "line 2:") && strstr(err, "NUL"), "%s", err);
    ck_assert_int_eq(chaos_engine_add_text(e, "reset\nclose\n", 12, err), LV_OK);
    l = list_rules(e);
    ck_assert_msg(strstr(l, "4:reset\n5:close\n"), "%s", l);
    free(l);
    /* the ids of a text's rules */
    uint64_t first = 99;
    size_t count = 99;
    ck_assert_int_eq(
        chaos_engine_add_text_ids(e, "# x\nreset\n\nclose nth=2\n", 23, &first, &count, err),
        LV_OK);
    ck_assert_uint_eq(first, 6);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(chaos_engine_add_text_ids(e, "reset\nreset x\n", 14, &first, &count, err),
                     LV_EINVAL);
    ck_assert_uint_eq(first, 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(chaos_engine_add_text_ids(e, "\n# only\n", 8, &first, &count, err), LV_OK);
    ck_assert_uint_eq(first, 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(chaos_engine_remove(e, 6, err), LV_OK);
    ck_assert_int_eq(chaos_engine_remove(e, 7, err), LV_OK);
    /* an empty text and a text of comments add nothing and succeed */
    ck_assert_int_eq(chaos_engine_add_text(e, "", 0, err), LV_OK);
    ck_assert_int_eq(chaos_engine_add_text(e, "# x\n\n", 5, err), LV_OK);
    ck_assert_uint_eq(chaos_engine_count(e), 5);
    chaos_engine_free(e);
}
END_TEST

START_TEST(test_load_file)
{
    char err[LV_ERRLEN];
    char *path = tu_tmp_path("faults.txt");
    const char *text = "latency 40ms\nerror 500 op=GetObject\n";
    tu_write_file(path, text, strlen(text));
    chaos_engine *e = chaos_engine_new(1, NULL, NULL);
    ck_assert_int_eq(chaos_engine_load_file(e, path, err), LV_OK);
    ck_assert_uint_eq(chaos_engine_count(e), 2);

    /* a bad file names itself and the line, and adds nothing */
    const char *bad = "reset\nreset\nreset\nreset\nlatency 1 2\n";
    tu_write_file(path, bad, strlen(bad));
    ck_assert_int_eq(chaos_engine_load_file(e, path, err), LV_EINVAL);
    ck_assert_msg(strstr(err, path) == err, "%s", err);
    ck_assert_msg(strstr(err, ": line 5: bad rule \"latency 1 2\""), "%s", err);
    ck_assert_uint_eq(chaos_engine_count(e), 2);

    /* a file longer than one read buffer */
    size_t n = 0, cap = 200000;
    char *big = malloc(cap);
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(big + n, cap - n, "error 503 op=GetObject nth=%d\n", i + 1);
    tu_write_file(path, big, n);
    free(big);
    ck_assert_int_eq(chaos_engine_load_file(e, path, err), LV_OK);
    ck_assert_uint_eq(chaos_engine_count(e), 3002);
    tu_tmp_remove(path);

    ck_assert_int_eq(chaos_engine_load_file(e, "/nonexistent/faults.txt", err), LV_ENOTFOUND);
    ck_assert_msg(strstr(err, "/nonexistent/faults.txt"), "%s", err);
    chaos_engine_free(e);
}
END_TEST

/*
 * Out of memory at every allocation of an add, an add_text and a listing: each failure is clean
 * (LV_ENOMEM, nothing added, no leak under ASan), and with enough memory each succeeds.
 */
START_TEST(test_out_of_memory_everywhere)
{
    char err[LV_ERRLEN];
    const char *rule = "error 500 InternalError \"x y\" op=GetObject,PutObject bucket=b* "
                       "key=*.ltx header=X-A:1 header=X-B p=0.5 for=1m";
    int succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        ck_assert_ptr_nonnull(e);
        lv_alloc_fail_after(n);
        uint64_t id = 0;
        lv_err rc = chaos_engine_add(e, rule, &id, err);
        lv_alloc_fail_after(-1);
        if (rc == LV_OK) {
            succeeded = 1;
            ck_assert_uint_eq(id, 1);
            ck_assert_uint_eq(chaos_engine_count(e), 1);
        } else {
            ck_assert_msg(rc == LV_ENOMEM, "n=%ld: rc %d: %s", n, rc, err);
            ck_assert_uint_eq(chaos_engine_count(e), 0);
        }
        chaos_engine_free(e);
    }
    ck_assert(succeeded);

    const char *text = "latency 40ms\n# c\nerror 503 op=PutObject key=a*\nreset nth=3\n";
    succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        ck_assert_int_eq(chaos_engine_add(e, "close", NULL, err), LV_OK);
        lv_alloc_fail_after(n);
        lv_err rc = chaos_engine_add_text(e, text, strlen(text), err);
        lv_alloc_fail_after(-1);
        if (rc == LV_OK) {
            succeeded = 1;
            ck_assert_uint_eq(chaos_engine_count(e), 4);
        } else {
            ck_assert_msg(rc == LV_ENOMEM, "n=%ld: rc %d: %s", n, rc, err);
            ck_assert_uint_eq(chaos_engine_count(e), 1);
        }
        chaos_engine_free(e);
    }
    ck_assert(succeeded);

    succeeded = 0;
    for (long n = 0; n < 50 && !succeeded; n++) {
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        ck_assert_int_eq(chaos_engine_add_text(e, text, strlen(text), err), LV_OK);
        lv_buf b;
        lv_buf_init(&b);
        lv_alloc_fail_after(n);
        chaos_engine_list_json(e, &b);
        lv_alloc_fail_after(-1);
        if (lv_buf_ok(&b, NULL) == LV_OK) {
            succeeded = 1;
            ck_assert_ptr_nonnull(strstr(b.data, "\"rule\":\"reset nth=3\""));
        }
        lv_buf_free(&b);
        chaos_engine_free(e);
    }
    ck_assert(succeeded);

    char *path = tu_tmp_path("oom.faults");
    tu_write_file(path, text, strlen(text));
    succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        lv_alloc_fail_after(n);
        lv_err rc = chaos_engine_load_file(e, path, err);
        lv_alloc_fail_after(-1);
        if (rc == LV_OK) {
            succeeded = 1;
            ck_assert_uint_eq(chaos_engine_count(e), 3);
        } else {
            ck_assert_msg(rc == LV_ENOMEM, "n=%ld: rc %d: %s", n, rc, err);
            ck_assert_msg(strstr(err, path) == err, "%s", err);
            ck_assert_uint_eq(chaos_engine_count(e), 0);
        }
        chaos_engine_free(e);
    }
    ck_assert(succeeded);
    tu_tmp_remove(path);

    lv_alloc_fail_after(0);
    ck_assert_ptr_null(chaos_engine_new(1, NULL, NULL));
    lv_alloc_fail_after(-1);
}
END_TEST

/*
 * Random rules from a vocabulary of good and bad words, with random bytes mixed in: each is
 * either refused with a "bad rule" error, or accepted with a canonical text that parses to itself.
 * Never a crash (the sanitizer build runs this too).
 */
START_TEST(test_random_rules_round_trip_or_clean_error)
{
    static const char *const words[] = {"latency",
                                        "error",
                                        "reset",
                                        "close",
                                        "truncate",
                                        "stall",
                                        "bandwidth",
                                        "lost-response",
                                        "crash",
                                        "down",
                                        "40ms",
                                        "1.5s",
                                        "0",
                                        "503",
                                        "500",
                                        "404",
                                        "SlowDown",
                                        "\"a b\"",
                                        "'c d'",
                                        "before",
                                        "after",
                                        "64k",
                                        "1M",
                                        "op=GetObject",
                                        "op=PutObject,GetObject",
                                        "op=Bad",
                                        "method=GET",
                                        "method=get,put",
                                        "bucket=b*",
                                        "key=*.ltx",
                                        "key='x y'",
                                        "range=yes",
                                        "range=no",
                                        "header=X-A",
                                        "header=X-A:v",
                                        "nth=2",
                                        "nth=0",
                                        "delay=5ms",
                                        "jitter=1ms",
                                        "p=0.5",
                                        "p=2",
                                        "times=3",
                                        "after=1",
                                        "for=10s",
                                        "p50=40ms",
                                        "p99=100ms",
                                        "p0=1ms",
                                        "#",
                                        "=",
                                        "\"",
                                        "'",
                                        "x=",
                                        "==",
                                        "p=",
                                        "p50=",
                                        "\\",
                                        "\t",
                                        "  "};
    const size_t nwords = sizeof words / sizeof words[0];
    uint64_t st = 12345;
    int accepted = 0;
    char rule[512], err[LV_ERRLEN];
    for (int i = 0; i < 20000; i++) {
        size_t len = 0;
        int n = 1 + (int)(tu_rand(&st) % 7);
        for (int k = 0; k < n; k++) {
            /* mostly an action first, so that many rules get past the first word */
            const char *w = words[tu_rand(&st) % (k == 0 && tu_rand(&st) % 10 ? 10 : nwords)];
            if (tu_rand(&st) % 50 == 0) { /* now and then a random printable or high byte */
                char b[2] = {(char)(0x20 + tu_rand(&st) % 0xe0), 0};
                w = b;
                len += (size_t)snprintf(rule + len, sizeof rule - len, "%s%s", k ? " " : "", w);
                continue;
            }
            len += (size_t)snprintf(rule + len, sizeof rule - len, "%s%s", k ? " " : "", w);
        }
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        err[0] = '\0';
        lv_err rc = chaos_engine_add(e, rule, NULL, err);
        if (rc != LV_OK) {
            ck_assert_msg(rc == LV_EINVAL, "\"%s\": rc %d", rule, rc);
            ck_assert_msg(strncmp(err, "bad rule \"", 10) == 0, "\"%s\": %s", rule, err);
        } else {
            accepted++;
            char *a = canon_of(rule);
            char *b = canon_of(a);
            ck_assert_msg(strcmp(a, b) == 0, "\"%s\" -> \"%s\" -> \"%s\"", rule, a, b);
            free(a);
            free(b);
        }
        chaos_engine_free(e);
    }
    ck_assert_msg(accepted > 1500, "only %d random rules were accepted", accepted);
}
END_TEST

static Suite *chaos_parse_suite(void)
{
    Suite *s = suite_create("chaos_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_every_action_parses_to_canonical);
    tcase_add_test(tc, test_every_key_parses_to_canonical);
    tcase_add_test(tc, test_quoting_comments_and_blanks);
    tcase_add_test(tc, test_bad_rules_name_the_bad_part);
    tcase_add_test(tc, test_error_for_a_long_rule_still_names_the_problem);
    tcase_add_test(tc, test_canonical_round_trip_corpus);
    tcase_add_test(tc, test_parse_duration);
    tcase_add_test(tc, test_numbers_ignore_the_locale);
    tcase_add_test(tc, test_parse_rate);
    tcase_add_test(tc, test_action_names);
    tcase_add_test(tc, test_add_text_all_or_none_with_line_numbers);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_out_of_memory_everywhere);
    tcase_add_test(tc, test_random_rules_round_trip_or_clean_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chaos_parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
