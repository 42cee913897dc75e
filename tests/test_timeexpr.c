/* test_timeexpr: lib/timeexpr.c, user time expressions and RFC 3339. */
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "timeexpr.h"

#define NOW 1767323045678LL /* 2026-01-02T03:04:05.678Z */

static int64_t parse_ok(const char *s)
{
    char err[LV_ERRLEN] = "";
    int64_t ms = -1;
    lv_err rc = lv_time_parse(s, NOW, &ms, err);
    ck_assert_msg(rc == LV_OK, "\"%s\": %s", s, err);
    return ms;
}

static void parse_bad(const char *s, const char *want_in_err)
{
    char err[LV_ERRLEN] = "";
    int64_t ms = 12345;
    ck_assert_msg(lv_time_parse(s, NOW, &ms, err) == LV_EINVAL, "\"%s\" was accepted", s);
    ck_assert_msg(strstr(err, want_in_err) != NULL, "\"%s\": error \"%s\" lacks \"%s\"", s, err,
                  want_in_err);
}

START_TEST(test_rfc3339)
{
    ck_assert_int_eq(parse_ok("2026-01-02T03:04:05Z"), NOW - 678);
    ck_assert_int_eq(parse_ok("2026-01-02T03:04:05.678Z"), NOW);
    ck_assert_int_eq(parse_ok("2026-01-02t03:04:05.6789123z"), NOW);
    ck_assert_int_eq(parse_ok("2026-01-02 03:04:05.678Z"), NOW);
    ck_assert_int_eq(parse_ok("  2026-01-02T05:04:05.678+02:00 "), NOW);
    ck_assert_int_eq(parse_ok("2026-01-01T21:34:05.678-0530"), NOW);
    ck_assert_int_eq(parse_ok("2026-01-02T04:04:05.678+01"), NOW);
    ck_assert_int_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(parse_ok("1969-12-31T23:59:59Z"), -1000);
    ck_assert_int_eq(parse_ok("2026-01-02"), NOW - (3 * 3600 + 4 * 60 + 5) * 1000LL - 678);
    ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
}
END_TEST

/* Every day of four centuries against the C library's timegm. */
START_TEST(test_days_against_timegm)
{
    for (int64_t day = -60000; day < 90000; day += 1) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        ck_assert_int_eq(
            lv_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday),
            day);
        char out[LV_TIME_RFC3339_LEN], want[LV_TIME_RFC3339_LEN];
        lv_time_format(day * 86400000LL + 3723004, 1, out);
        snprintf(want, sizeof want, "%04d-%02d-%02dT01:02:03.004Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(parse_ok(out), day * 86400000LL + 3723004);
    }
}
END_TEST

START_TEST(test_format)
{
    char out[LV_TIME_RFC3339_LEN];
    lv_time_format(NOW, 1, out);
    ck_assert_str_eq(out, "2026-01-02T03:04:05.678Z");
    lv_time_format(NOW, 0, out);
    ck_assert_str_eq(out, "2026-01-02T03:04:05Z");
    lv_time_format(-1, 1, out);
    ck_assert_str_eq(out, "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(test_relative)
{
    ck_assert_int_eq(parse_ok("now"), NOW);
    ck_assert_int_eq(parse_ok(" NOW "), NOW);
    ck_assert_int_eq(parse_ok("yesterday"), NOW - 86400000LL);
    ck_assert_int_eq(parse_ok("5 minutes ago"), NOW - 300000);
    ck_assert_int_eq(parse_ok("1 minute ago"), NOW - 60000);
    ck_assert_int_eq(parse_ok("5m ago"), NOW - 300000);
    ck_assert_int_eq(parse_ok("5 min ago"), NOW - 300000);
    ck_assert_int_eq(parse_ok("30 s ago"), NOW - 30000);
    ck_assert_int_eq(parse_ok("30 secs ago"), NOW - 30000);
    ck_assert_int_eq(parse_ok("250ms ago"), NOW - 250);
    ck_assert_int_eq(parse_ok("1.5 hours ago"), NOW - 5400000);
    ck_assert_int_eq(parse_ok("2 hrs ago"), NOW - 7200000);
    ck_assert_int_eq(parse_ok("3 Days Ago"), NOW - 3 * 86400000LL);
    ck_assert_int_eq(parse_ok("2 weeks ago"), NOW - 14 * 86400000LL);
    ck_assert_int_eq(parse_ok("1 wk ago"), NOW - 7 * 86400000LL);
    ck_assert_int_eq(parse_ok("0 seconds ago"), NOW);
}
END_TEST

START_TEST(test_latest)
{
    ck_assert(lv_time_is_latest("latest"));
    ck_assert(lv_time_is_latest(" LATEST "));
    ck_assert(!lv_time_is_latest("latests"));
    ck_assert(!lv_time_is_latest("now"));
    parse_bad("latest", "not a time");
}
END_TEST

START_TEST(test_bad)
{
    parse_bad("", "not a time");
    parse_bad("tomorrow", "not a time");
    parse_bad("2026-13-01", "not a time");
    parse_bad("2026-02-29", "not a time");
    parse_bad("2026-01-32T00:00:00Z", "not a time");
    parse_bad("2026-01-02T24:00:00Z", "not a time");
    parse_bad("2026-01-02T03:04:05", "not a time"); /* no zone: local time is not guessed */
    parse_bad("2026-01-02T03:04:05.Z", "not a time");
    parse_bad("2026-01-02T03:04:05Zjunk", "not a time");
    parse_bad("2026-1-2", "not a time");
    parse_bad("5 fortnights ago", "UNIT");
    parse_bad("5 minutesago", "UNIT");
    parse_bad("5 minutes", "not a time");
    parse_bad("99999999999 weeks ago", "UNIT");
    char err[LV_ERRLEN] = "";
    int64_t ms;
    ck_assert_int_eq(lv_time_parse(NULL, NOW, &ms, err), LV_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timeexpr");
    TCase *tc = tcase_create("timeexpr");
    tcase_add_test(tc, test_rfc3339);
    tcase_add_test(tc, test_days_against_timegm);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_relative);
    tcase_add_test(tc, test_latest);
    tcase_add_test(tc, test_bad);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
