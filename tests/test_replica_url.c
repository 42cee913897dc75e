/*
 * test_replica_url: replica URLs, names and keys.
 *   - good URLs (table): s3 bucket and cleaned prefix, every query parameter and its spellings,
 *     file:// and plain paths;
 *   - bad URLs (table): LV_EINVAL with a message that says what is wrong (unknown parameters are
 *     named);
 *   - the precedence of S3 settings: defaults < environment < replica_options.s3 < URL query;
 *   - replica_parse_name: exactly ^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$ with 0 < min <= max;
 *   - keys of both layouts, and replica_open/describe for file replicas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replica.h"
#include "replica_private.h"
#include "testutil.h"

typedef struct good_url {
    const char *url;
    replica_kind kind;
    const char *bucket, *prefix, *dir, *endpoint, *region;
    int path_style, skip_verify, unsigned_payload; /* -1: not set by the URL */
} good_url;

static const good_url good[] = {
    {"s3://bucket/prefix", REPLICA_S3, "bucket", "prefix", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket", REPLICA_S3, "bucket", "", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket/", REPLICA_S3, "bucket", "", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket//a//b/", REPLICA_S3, "bucket", "a/b", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket/a/./b/../c", REPLICA_S3, "bucket", "a/c", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket/../../x", REPLICA_S3, "bucket", "x", NULL, NULL, NULL, -1, -1, -1},
    {"s3://bucket/.", REPLICA_S3, "bucket", "", NULL, NULL, NULL, -1, -1, -1},
    {"s3://my-bucket.v2/db/prod/", REPLICA_S3, "my-bucket.v2", "db/prod", NULL, NULL, NULL, -1, -1,
     -1},
    {"s3://b/my%20db", REPLICA_S3, "b", "my db", NULL, NULL, NULL, -1, -1, -1},
    {"s3://b/p?endpoint=http://127.0.0.1:9000", REPLICA_S3, "b", "p", NULL, "http://127.0.0.1:9000",
     NULL, 1, -1, -1},
    {"s3://b/p?endpoint=http%3A%2F%2Fh%3A1", REPLICA_S3, "b", "p", NULL, "http://h:1", NULL, 1, -1,
     -1},
    {"s3://b?endpoint=https://s3.example.com&region=eu-west-1", REPLICA_S3, "b", "", NULL,
     "https://s3.example.com", "eu-west-1", 1, -1, -1},
    {"s3://b/p?endpoint=http://h:1&force-path-style=false", REPLICA_S3, "b", "p", NULL,
     "http://h:1", NULL, 0, -1, -1},
    {"s3://b/p?forcePathStyle=true", REPLICA_S3, "b", "p", NULL, NULL, NULL, 1, -1, -1},
    {"s3://b/p?force-path-style", REPLICA_S3, "b", "p", NULL, NULL, NULL, 1, -1, -1},
    {"s3://b/p?skip-verify=1&sign-payload=false", REPLICA_S3, "b", "p", NULL, NULL, NULL, -1, 1, 1},
    {"s3://b/p?skipVerify=T&signPayload=True", REPLICA_S3, "b", "p", NULL, NULL, NULL, -1, 1, 0},
    {"s3://b/p?region=us-west-2&&", REPLICA_S3, "b", "p", NULL, NULL, "us-west-2", -1, -1, -1},
    /* Litestream's host forms of AWS: the bucket and its region */
    {"s3://mybucket.s3.us-west-2.amazonaws.com/db", REPLICA_S3, "mybucket", "db", NULL, NULL,
     "us-west-2", -1, -1, -1},
    {"s3://my.bucket.s3-eu-west-1.amazonaws.com/db", REPLICA_S3, "my.bucket", "db", NULL, NULL,
     "eu-west-1", -1, -1, -1},
    {"s3://mybucket.s3.amazonaws.com", REPLICA_S3, "mybucket", "", NULL, NULL, NULL, -1, -1, -1},
    {"s3://mybucket.s3.us-west-2.amazonaws.com/db?region=eu-north-1", REPLICA_S3, "mybucket", "db",
     NULL, NULL, "eu-north-1", -1, -1, -1},
    {"file:///tmp/replica", REPLICA_FILE, NULL, NULL, "/tmp/replica", NULL, NULL, -1, -1, -1},
    {"file://localhost/tmp/replica/", REPLICA_FILE, NULL, NULL, "/tmp/replica", NULL, NULL, -1, -1,
     -1},
    {"file:///tmp//a%20b", REPLICA_FILE, NULL, NULL, "/tmp/a b", NULL, NULL, -1, -1, -1},
    {"file:/tmp/replica", REPLICA_FILE, NULL, NULL, "/tmp/replica", NULL, NULL, -1, -1, -1},
    {"/abs/dir/", REPLICA_FILE, NULL, NULL, "/abs/dir", NULL, NULL, -1, -1, -1},
    {"./rel/dir", REPLICA_FILE, NULL, NULL, "./rel/dir", NULL, NULL, -1, -1, -1},
    {"rel%20dir", REPLICA_FILE, NULL, NULL, "rel%20dir", NULL, NULL, -1, -1, -1},
    {"/", REPLICA_FILE, NULL, NULL, "/", NULL, NULL, -1, -1, -1},
};

static void str_eq(const char *got, const char *want, const char *what, const char *url)
{
    if (!want) {
        ck_assert_msg(got == NULL, "%s: %s = \"%s\", want none", url, what, got);
        return;
    }
    ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s = \"%s\", want \"%s\"", url, what,
                  got ? got : "(none)", want);
}

START_TEST(test_good_urls)
{
    const good_url *g = &good[_i];
    replica_url u;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_url_parse(g->url, &u, err);
    ck_assert_msg(rc == LV_OK, "%s: %s", g->url, err);
    ck_assert_int_eq(u.kind, g->kind);
    str_eq(u.bucket, g->bucket, "bucket", g->url);
    str_eq(u.prefix, g->prefix, "prefix", g->url);
    str_eq(u.dir, g->dir, "dir", g->url);
    str_eq(u.endpoint, g->endpoint, "endpoint", g->url);
    str_eq(u.region, g->region, "region", g->url);

    /* what the S3 settings become, over a base with everything off */
    s3_config base, cfg;
    s3_config_init(&base);
    base.path_style = 0;
    base.skip_verify = 0;
    base.unsigned_payload = 0;
    replica_url_s3_config(&u, &base, &cfg);
    ck_assert_int_eq(cfg.path_style, g->path_style < 0 ? 0 : g->path_style);
    ck_assert_int_eq(cfg.skip_verify, g->skip_verify < 0 ? 0 : g->skip_verify);
    ck_assert_int_eq(cfg.unsigned_payload, g->unsigned_payload < 0 ? 0 : g->unsigned_payload);
    if (g->endpoint)
        ck_assert_str_eq(cfg.endpoint, g->endpoint);
    else
        ck_assert_ptr_null(cfg.endpoint);
    replica_url_free(&u);
}
END_TEST

typedef struct bad_url {
    const char *url;
    const char *msg; /* must appear in the message */
} bad_url;

static const bad_url bad[] = {
    {"", "empty"},
    {"s3://", "no bucket"},
    {"s3:///prefix", "no bucket"},
    {"s3://?region=x", "no bucket"},
    {"s3://bucket/p?foo=1", "unknown query parameter foo "},
    {"s3://bucket/p?endpoint=http://h:1&bar=2&baz", "unknown query parameters bar, baz"},
    {"s3://bucket/p?forcepathstyle=true", "forcepathstyle"},
    {"s3://bucket/p?force-path-style=maybe", "force-path-style=\"maybe\""},
    {"s3://bucket/p?skipVerify=yes", "skipVerify=\"yes\""},
    {"s3://bucket/p?sign-payload=2", "sign-payload"},
    {"s3://bucket/p?endpoint=ftp://h", "endpoint \"ftp://h\""},
    {"s3://bucket/p?endpoint=127.0.0.1:9000", "want http://"},
    {"s3://bucket/p?endpoint=", "endpoint \"\""},
    {"s3://bucket/p?endpoint=http://", "endpoint"},
    {"s3://bucket/p?region=", "region"},
    {"s3://bucket/p?part-size=12", "part-size"},
    {"s3://bucket/p?partSize=abc", "partSize"},
    {"s3://user:secret@bucket/p", "credentials"},
    {"s3://bucket:9000/p", "endpoint"},
    {"s3://buc ket/p", "invalid character ' '"},
    {"s3://mybucket.s3.dualstack.us-east-1.amazonaws.com/db", "is a host name: write s3://BUCKET"},
    {"s3://s3.amazonaws.com/db", "is a host name"},
    {"s3://mybucket.s3.us-west-000.backblazeb2.com/db", "?endpoint=https://HOST"},
    {"s3://mybucket.nyc3.digitaloceanspaces.com/db", "is a host name"},
    {"s3://mybucket.localhost/db", "is a host name"},
    {"s3://bucket/p#frag", "'#'"},
    {"s3:bucket/p", "want s3://BUCKET"},
    {"file:relative", "want file:///"},
    {"gs://bucket/p", "unsupported scheme \"gs\""},
    {"abs://x/y", "unsupported scheme"},
    {"file://host/tmp/x", "host \"host\""},
    {"file:///tmp/x?y=1", "no query"},
    {"file://", "no directory"},
};

START_TEST(test_bad_urls)
{
    const bad_url *b = &bad[_i];
    replica_url u;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_url_parse(b->url, &u, err);
    ck_assert_msg(rc == LV_EINVAL, "\"%s\": got %s (%s), want LV_EINVAL", b->url, lv_strerror(rc),
                  err);
    ck_assert_msg(strstr(err, b->msg) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", b->url, err,
                  b->msg);
    /* nothing is left allocated */
    ck_assert_ptr_null(u.bucket);
    ck_assert_ptr_null(u.prefix);
    ck_assert_ptr_null(u.dir);

    /* replica_open says the same, and gives nothing */
    replica *r = (replica *)1;
    char err2[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_open(b->url, NULL, &r, err2), LV_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err2, b->msg) != NULL, "open: \"%s\"", err2);
}
END_TEST

START_TEST(test_precedence_defaults_env_options_query)
{
    replica_url u;
    char err[LV_ERRLEN] = "";
    setenv("AWS_ENDPOINT_URL", "http://env-host:1", 1);
    setenv("AWS_REGION", "env-region", 1);
    setenv("AWS_ACCESS_KEY_ID", "env-key", 1);

    /* no options: the environment over the defaults */
    ck_assert_int_eq(replica_url_parse("s3://b/p", &u, err), LV_OK);
    s3_config cfg;
    replica_url_s3_config(&u, NULL, &cfg);
    ck_assert_str_eq(cfg.endpoint, "http://env-host:1");
    ck_assert_str_eq(cfg.region, "env-region");
    ck_assert_str_eq(cfg.access_key, "env-key");
    ck_assert_int_eq(cfg.path_style, 1);
    replica_url_free(&u);

    /* options replace the environment */
    s3_config base;
    s3_config_init(&base);
    base.endpoint = "http://opt-host:2";
    base.region = "opt-region";
    base.access_key = "opt-key";
    base.max_inflight = 7;
    ck_assert_int_eq(replica_url_parse("s3://b/p", &u, err), LV_OK);
    replica_url_s3_config(&u, &base, &cfg);
    ck_assert_str_eq(cfg.endpoint, "http://opt-host:2");
    ck_assert_str_eq(cfg.region, "opt-region");
    ck_assert_str_eq(cfg.access_key, "opt-key");
    ck_assert_uint_eq(cfg.max_inflight, 7);
    replica_url_free(&u);

    /* the query overrides both */
    ck_assert_int_eq(
        replica_url_parse("s3://b/p?endpoint=http://url-host:3&region=url-region", &u, err), LV_OK);
    replica_url_s3_config(&u, &base, &cfg);
    ck_assert_str_eq(cfg.endpoint, "http://url-host:3");
    ck_assert_str_eq(cfg.region, "url-region");
    ck_assert_str_eq(cfg.access_key, "opt-key");
    ck_assert_int_eq(cfg.path_style, 1);
    replica_url_s3_config(&u, NULL, &cfg);
    ck_assert_str_eq(cfg.endpoint, "http://url-host:3");
    ck_assert_str_eq(cfg.access_key, "env-key");
    replica_url_free(&u);

    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_REGION");
    unsetenv("AWS_ACCESS_KEY_ID");
}
END_TEST

START_TEST(test_parse_name)
{
    uint64_t a = 0, b = 0;
    const char *ok = "0000000000000001-00000000000000ff.ltx";
    ck_assert_int_eq(replica_parse_name(ok, strlen(ok), &a, &b), 1);
    ck_assert_uint_eq(a, 1);
    ck_assert_uint_eq(b, 255);
    const char *big = "fffffffffffffffe-ffffffffffffffff.ltx";
    ck_assert_int_eq(replica_parse_name(big, strlen(big), &a, &b), 1);
    ck_assert_uint_eq(a, 0xfffffffffffffffeull);
    ck_assert_uint_eq(b, UINT64_MAX);
    const char *same = "00000000000000a0-00000000000000a0.ltx";
    ck_assert_int_eq(replica_parse_name(same, strlen(same), &a, &b), 1);

    static const char *const no[] = {
        "0000000000000001-00000000000000FF.ltx",  /* upper case */
        "000000000000001-0000000000000001.ltx",   /* 15 digits */
        "00000000000000001-0000000000000001.ltx", /* 17 digits */
        "0000000000000002-0000000000000001.ltx",  /* min > max */
        "0000000000000000-0000000000000001.ltx",  /* zero */
        "0000000000000001-0000000000000001.LTX",  /* suffix case */
        "0000000000000001-0000000000000001.ltx.tmp", "0000000000000001_0000000000000001.ltx",
        "0000000000000001-0000000000000001",         ".0000000000000001-0000000000000001.ltx",
        "000000000000000g-0000000000000001.ltx",     "",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(replica_parse_name(no[i], strlen(no[i]), &a, &b) == 0, "accepted \"%s\"",
                      no[i]);
    /* the length is what counts, not a NUL */
    ck_assert_int_eq(replica_parse_name(ok, strlen(ok) - 1, &a, &b), 0);
}
END_TEST

START_TEST(test_keys_of_both_layouts)
{
    char err[LV_ERRLEN] = "";
    /* s3 keys from a parsed URL (no client needed to name a key) */
    struct {
        const char *url, *want;
        int level;
    } s3[] = {
        {"s3://b/db/prod", "db/prod/0009/0000000000000001-0000000000000010.ltx", 9},
        {"s3://b", "0000/0000000000000001-0000000000000010.ltx", 0},
        {"s3://b/x/", "x/000a/0000000000000001-0000000000000010.ltx", 10},
    };
    for (size_t i = 0; i < sizeof s3 / sizeof s3[0]; i++) {
        replica r;
        memset(&r, 0, sizeof r);
        ck_assert_int_eq(replica_url_parse(s3[i].url, &r.url, err), LV_OK);
        r.kind = r.url.kind;
        lv_buf k;
        lv_buf_init(&k);
        replica_file_key(&r, s3[i].level, 1, 16, &k);
        ck_assert_str_eq(k.data, s3[i].want);
        lv_buf_free(&k);
        replica_url_free(&r.url);
    }

    replica *r = NULL;
    ck_assert_int_eq(replica_open("file:///var/lib/rep/", NULL, &r, err), LV_OK);
    ck_assert_str_eq(replica_describe(r), "file:///var/lib/rep");
    ck_assert_ptr_null(replica_s3(r));
    lv_buf k;
    lv_buf_init(&k);
    replica_file_key(r, 9, 1, 0x10, &k);
    ck_assert_str_eq(k.data, "/var/lib/rep/ltx/9/0000000000000001-0000000000000010.ltx");
    lv_buf_reset(&k);
    replica_file_key(r, 0, 0xabc, 0xabc, &k);
    ck_assert_str_eq(k.data, "/var/lib/rep/ltx/0/0000000000000abc-0000000000000abc.ltx");
    lv_buf_free(&k);
    replica_close(r);

    ck_assert_int_eq(replica_open("rel/dir", NULL, &r, err), LV_OK);
    ck_assert_str_eq(replica_describe(r), "rel/dir");
    replica_close(r);
}
END_TEST

START_TEST(test_format_time)
{
    char b[40];
    replica_format_time(1795237074374ll, b, sizeof b);
    ck_assert_str_eq(b, "2026-11-21T04:57:54.374Z");
    replica_format_time(1735689600000ll, b, sizeof b);
    ck_assert_str_eq(b, "2025-01-01T00:00:00.000Z");
    replica_format_time(0, b, sizeof b);
    ck_assert_str_eq(b, "1970-01-01T00:00:00.000Z");
    replica_format_time(-1, b, sizeof b);
    ck_assert_str_eq(b, "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(test_open_never_leaks_under_allocation_failures)
{
    /* every allocation of replica_open failing in turn: an error or a replica, never a leak */
    const char *urls[] = {"file:///tmp/x", "s3://b/p?foo=1&bar=2", "s3://b/a/b?region=r&x=1"};
    for (size_t u = 0; u < sizeof urls / sizeof urls[0]; u++) {
        for (long nth = 0; nth < 40; nth++) {
            replica *r = NULL;
            char err[LV_ERRLEN] = "";
            lv_alloc_fail_after(nth);
            lv_err rc = replica_open(urls[u], NULL, &r, err);
            lv_alloc_fail_after(-1);
            if (rc == LV_OK)
                replica_close(r);
            else
                ck_assert_ptr_null(r);
        }
    }
}
END_TEST

static Suite *url_suite(void)
{
    Suite *s = suite_create("replica_url");
    TCase *tc = tcase_create("url");
    tcase_add_loop_test(tc, test_good_urls, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_loop_test(tc, test_bad_urls, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_precedence_defaults_env_options_query);
    tcase_add_test(tc, test_open_never_leaks_under_allocation_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("names");
    tcase_add_test(tc, test_parse_name);
    tcase_add_test(tc, test_keys_of_both_layouts);
    tcase_add_test(tc, test_format_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(url_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
