/* test_vfs_config: vfs/config.c, settings from the environment and URI parameters. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

static const char *const *uri_pairs; /* name, value, name, value, ..., NULL */

static const char *lookup(void *ctx, const char *name)
{
    (void)ctx;
    for (const char *const *p = uri_pairs; p && *p; p += 2)
        if (strcmp(*p, name) == 0)
            return p[1];
    return NULL;
}

static void clear_env(void)
{
    static const char *vars[] = {"LITESTREAM_REPLICA_URL",
                                 "LITESTREAM_POLL_INTERVAL",
                                 "LITESTREAM_CACHE_SIZE",
                                 "LITESTREAM_OPEN_TIMEOUT",
                                 "LITESTREAM_WRITE_ENABLED",
                                 "LITESTREAM_SYNC_INTERVAL",
                                 "LITESTREAM_BUFFER_PATH",
                                 "LITESTREAM_HYDRATION_PATH",
                                 "LITESTREAM_LOG_LEVEL",
                                 "LITESTREAM_BUFFER_MAX",
                                 "LITESTREAM_LEASE_TTL",
                                 "LITESTREAM_COMPACTION",
                                 "LITESTREAM_L1_INTERVAL",
                                 "LITESTREAM_L2_INTERVAL",
                                 "LITESTREAM_L3_INTERVAL",
                                 "LITESTREAM_SNAPSHOT_INTERVAL",
                                 "LITESTREAM_RETENTION",
                                 "LITESTREAM_L0_RETENTION",
                                 "TMPDIR"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

START_TEST(test_defaults_and_required_replica)
{
    clear_env();
    vconf c;
    char err[LV_ERRLEN] = "";
    uri_pairs = NULL;
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "LITESTREAM_REPLICA_URL") != NULL, "%s", err);
    setenv("LITESTREAM_REPLICA_URL", "s3://b/p", 1);
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_OK);
    ck_assert_str_eq(c.replica, "s3://b/p");
    ck_assert_int_eq(c.poll_interval_ms, 1000);
    ck_assert_int_eq(c.cache_size, 10 << 20);
    ck_assert_int_eq(c.open_timeout_ms, 30000);
    ck_assert_int_eq(c.retry_timeout_ms, 30000);
    ck_assert_int_eq(c.write, 0);
    ck_assert_int_eq(c.sync_interval_ms, 1000);
    ck_assert_int_eq(c.log_level, VCONF_LOG_WARN);
    ck_assert_str_eq(c.hydration, "");
}
END_TEST

START_TEST(test_uri_overrides_environment)
{
    clear_env();
    setenv("LITESTREAM_REPLICA_URL", "s3://env/p", 1);
    setenv("LITESTREAM_CACHE_SIZE", "64k", 1);
    setenv("LITESTREAM_POLL_INTERVAL", "250ms", 1);
    setenv("LITESTREAM_WRITE_ENABLED", "true", 1);
    setenv("LITESTREAM_LOG_LEVEL", "DEBUG", 1);
    setenv("LITESTREAM_RETRY_TIMEOUT", "5s", 1);
    static const char *const pairs[] = {
        "replica",       "file:///data/r", "cache_size", "2M",        "open_timeout",
        "1.5s",          "write",          "off",        "hydration", "/tmp/h.db",
        "retry_timeout", "750ms",          NULL};
    uri_pairs = pairs;
    vconf c;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(vconf_load(&c, lookup, NULL, err) == LV_OK, "%s", err);
    ck_assert_str_eq(c.replica, "file:///data/r");
    ck_assert_int_eq(c.cache_size, 2 << 20);
    ck_assert_int_eq(c.poll_interval_ms, 250); /* from the environment */
    ck_assert_int_eq(c.open_timeout_ms, 1500);
    ck_assert_int_eq(c.write, 0);
    ck_assert_str_eq(c.hydration, "/tmp/h.db");
    ck_assert_int_eq(c.retry_timeout_ms, 750);
    ck_assert_int_eq(c.log_level, VCONF_LOG_DEBUG);
    clear_env();
}
END_TEST

START_TEST(test_bad_values_are_named)
{
    clear_env();
    setenv("LITESTREAM_REPLICA_URL", "s3://b/p", 1);
    vconf c;
    char err[LV_ERRLEN] = "";
    setenv("LITESTREAM_CACHE_SIZE", "10X", 1);
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "LITESTREAM_CACHE_SIZE") && strstr(err, "10X"), "%s", err);
    unsetenv("LITESTREAM_CACHE_SIZE");
    static const char *const pairs[] = {"poll_interval", "soon", NULL};
    uri_pairs = pairs;
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "poll_interval") && strstr(err, "soon"), "%s", err);
    static const char *const pairs2[] = {"write", "maybe", NULL};
    uri_pairs = pairs2;
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "write") && strstr(err, "maybe"), "%s", err);
    static const char *const pairs3[] = {"poll_interval", "0", NULL};
    uri_pairs = pairs3;
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    uri_pairs = NULL;
    setenv("LITESTREAM_LOG_LEVEL", "loud", 1);
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "LITESTREAM_LOG_LEVEL"), "%s", err);
    clear_env();
}
END_TEST

/* LITESTREAM_SYNC_INTERVAL as Litestream reads it: 0 is the default, negative is close-only. */
START_TEST(test_sync_interval)
{
    clear_env();
    setenv("LITESTREAM_REPLICA_URL", "s3://b/p", 1);
    vconf c;
    char err[LV_ERRLEN] = "";
    uri_pairs = NULL;
    setenv("LITESTREAM_SYNC_INTERVAL", "0", 1);
    ck_assert_msg(vconf_load(&c, lookup, NULL, err) == LV_OK, "%s", err);
    ck_assert_int_eq(c.sync_interval_ms, 1000);
    setenv("LITESTREAM_SYNC_INTERVAL", "-1s", 1);
    ck_assert_msg(vconf_load(&c, lookup, NULL, err) == LV_OK, "%s", err);
    ck_assert_int_eq(c.sync_interval_ms, -1);
    setenv("LITESTREAM_SYNC_INTERVAL", "250ms", 1);
    ck_assert_msg(vconf_load(&c, lookup, NULL, err) == LV_OK, "%s", err);
    ck_assert_int_eq(c.sync_interval_ms, 250);
    setenv("LITESTREAM_SYNC_INTERVAL", "-soon", 1);
    ck_assert_int_eq(vconf_load(&c, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "LITESTREAM_SYNC_INTERVAL: ") != NULL, "%s", err);
    clear_env();
}
END_TEST

/* Write mode's settings: defaults, the per-replica default buffer path, overrides, bounds. */
START_TEST(test_write_mode_settings)
{
    clear_env();
    vconf a, b;
    char err[LV_ERRLEN] = "";
    uri_pairs = NULL;
    setenv("LITESTREAM_REPLICA_URL", "s3://b/one", 1);
    ck_assert_int_eq(vconf_load(&a, lookup, NULL, err), LV_OK);
    ck_assert_uint_eq(a.buffer_max, 1u << 30);
    ck_assert_int_eq(a.lease_ttl_ms, 30000);
    ck_assert_int_eq(a.compaction, 1);
    ck_assert_int_eq(a.level_interval_ms[1], 30000);
    ck_assert_int_eq(a.level_interval_ms[2], 300000);
    ck_assert_int_eq(a.level_interval_ms[3], 3600000);
    ck_assert_int_eq(a.snapshot_interval_ms, 86400000);
    ck_assert_int_eq(a.retention_ms, 86400000);
    ck_assert_int_eq(a.l0_retention_ms, 300000);
    /* the default buffer: per replica, stable, under TMPDIR */
    ck_assert_msg(strncmp(a.buffer, "/tmp/litestream-vfs-", 20) == 0, "%s", a.buffer);
    ck_assert_msg(strstr(a.buffer, ".wbuf") != NULL, "%s", a.buffer);
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_OK);
    ck_assert_str_eq(a.buffer, b.buffer);
    setenv("LITESTREAM_REPLICA_URL", "s3://b/two", 1);
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_OK);
    ck_assert_str_ne(a.buffer, b.buffer);
    setenv("TMPDIR", "/var/tmp", 1);
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_OK);
    ck_assert_msg(strncmp(b.buffer, "/var/tmp/litestream-vfs-", 24) == 0, "%s", b.buffer);
    static const char *const pairs[] = {
        "buffer", "/x/buf",      "buffer_max", "64k",          "lease_ttl", "2s", "compaction",
        "off",    "l1_interval", "1s",         "l0_retention", "0",         NULL};
    uri_pairs = pairs;
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_OK);
    ck_assert_str_eq(b.buffer, "/x/buf");
    ck_assert_uint_eq(b.buffer_max, 65536);
    ck_assert_int_eq(b.lease_ttl_ms, 2000);
    ck_assert_int_eq(b.compaction, 0);
    ck_assert_int_eq(b.level_interval_ms[1], 1000);
    ck_assert_int_eq(b.l0_retention_ms, 0);
    static const char *const short_ttl[] = {"lease_ttl", "500ms", NULL};
    uri_pairs = short_ttl;
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "lease TTL") != NULL, "%s", err);
    static const char *const bad[] = {"compaction", "maybe", NULL};
    uri_pairs = bad;
    ck_assert_int_eq(vconf_load(&b, lookup, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "compaction") != NULL, "%s", err);
    uri_pairs = NULL;
    clear_env();
}
END_TEST

START_TEST(test_parsers)
{
    int64_t ms;
    uint64_t b;
    int v;
    char err[LV_ERRLEN];
    ck_assert_int_eq(vconf_parse_duration("1", &ms, err), LV_OK);
    ck_assert_int_eq(ms, 1000);
    ck_assert_int_eq(vconf_parse_duration("1.5s", &ms, err), LV_OK);
    ck_assert_int_eq(ms, 1500);
    ck_assert_int_eq(vconf_parse_duration("2m", &ms, err), LV_OK);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(vconf_parse_duration("1h", &ms, err), LV_OK);
    ck_assert_int_eq(ms, 3600000);
    ck_assert_int_eq(vconf_parse_duration("250ms", &ms, err), LV_OK);
    ck_assert_int_eq(ms, 250);
    ck_assert_int_eq(vconf_parse_duration("-1s", &ms, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_duration("1d", &ms, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_duration("", &ms, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_duration(" 1s", &ms, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_size("10M", &b, err), LV_OK);
    ck_assert_int_eq(b, 10 << 20);
    ck_assert_int_eq(vconf_parse_size("64kb", &b, err), LV_OK);
    ck_assert_int_eq(b, 65536);
    ck_assert_int_eq(vconf_parse_size("1G", &b, err), LV_OK);
    ck_assert_int_eq(b, 1ull << 30);
    ck_assert_int_eq(vconf_parse_size("123", &b, err), LV_OK);
    ck_assert_int_eq(b, 123);
    ck_assert_int_eq(vconf_parse_size("-1", &b, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_size("99999999999999999999", &b, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_size("17179869184G", &b, err), LV_EINVAL);
    ck_assert_int_eq(vconf_parse_bool("ON", &v, err), LV_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(vconf_parse_bool("no", &v, err), LV_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(vconf_parse_bool("2", &v, err), LV_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults_and_required_replica);
    tcase_add_test(tc, test_uri_overrides_environment);
    tcase_add_test(tc, test_bad_values_are_named);
    tcase_add_test(tc, test_parsers);
    tcase_add_test(tc, test_sync_interval);
    tcase_add_test(tc, test_write_mode_settings);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
