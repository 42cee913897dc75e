/*
 * test_scn_parse: scenario files (scenarios/scn_parse.c): a good file read whole, every kind of
 * mistake refused with its line number before anything could run (fault rules checked by the
 * chaos engine fakes3 uses), durations and windows, trial seeds (trial 1 is the seed itself, so
 * "--seed S --trials 1" replays), and the JUnit report. Also parses every shipped scenario file.
 * Single-threaded.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scn.h"

static char err[1024];

static const char good[] = "# a comment\n"
                           "name my-case\n"
                           "description a case  # with a comment\n"
                           "timeout 45s\n"
                           "server s3 --fsync --fault 'latency 10ms op=GetObject'\n"
                           "writer w s3 sync_interval=-1 buffer=$DIR/b.wbuf -- --rate 100\n"
                           "reader r s3 poll_interval=100ms\n"
                           "\n"
                           "start s3 w\n"
                           "wait w synced 3 timeout=10s\n"
                           "wait w commits +5\n"
                           "fault s3 add error 503 SlowDown op=PutObject key=\"*.ltx\" p=0.5\n"
                           "kill w within 0.1s..2s\n"
                           "sleep 200ms..1s\n"
                           "restart w\n"
                           "fault s3 clear\n"
                           "check durable commits\n"
                           "check single-writer w\n"
                           "check answers r max=4\n"
                           "check bounded w fds=64 rss=200M\n"
                           "stop w\n";

START_TEST(parses_a_good_file)
{
    scn_scenario *s;
    ck_assert_msg(scn_parse_text("x/good.scn", good, &s, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(s->name, "my-case");
    ck_assert_double_eq_tol(s->timeout_s, 45, 1e-9);
    ck_assert_int_eq(s->nprocs, 3);
    ck_assert_int_eq(s->procs[0].kind, SCN_SERVER);
    ck_assert_int_eq(s->procs[0].nargs, 3);
    ck_assert_str_eq(s->procs[0].args[2], "latency 10ms op=GetObject");
    ck_assert_int_eq(s->procs[1].kind, SCN_WRITER);
    ck_assert_str_eq(s->procs[1].server, "s3");
    ck_assert_int_eq(s->procs[1].nparams, 2);
    ck_assert_str_eq(s->procs[1].params[1], "buffer=$DIR/b.wbuf");
    ck_assert_int_eq(s->procs[1].nargs, 2);
    ck_assert_int_eq(s->procs[2].kind, SCN_READER);
    ck_assert_int_eq(s->nsteps, 13);
    ck_assert_str_eq(s->steps[3].rule, "error 503 SlowDown op=PutObject key=\"*.ltx\" p=0.5");
    ck_assert_int_eq(s->steps[3].line, 12);
    ck_assert_ptr_null(s->steps[7].rule);
    scn_scenario_free(s);
    /* without a name line, the file's base name */
    ck_assert_int_eq(scn_parse_text("dir/crash-x.scn", "server s\nstart s\n", &s, err, sizeof err),
                     0);
    ck_assert_str_eq(s->name, "crash-x");
    scn_scenario_free(s);
}
END_TEST

/* text must be refused with an error naming line and containing want */
static void refused(const char *text, const char *want)
{
    scn_scenario *s = NULL;
    ck_assert_msg(scn_parse_text("bad.scn", text, &s, err, sizeof err) == -1, "accepted: %s", text);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    ck_assert_ptr_null(s);
}

START_TEST(refuses_mistakes)
{
    refused("server s\nstrat s\n", "bad.scn:2: unknown step \"strat\"");
    refused("server s\nstart t\n", "no process called \"t\"");
    refused("server s\nwriter w t\nstart s\n", "needs the name of a server");
    refused("server s\nserver s\nstart s\n", "declared twice");
    refused("server s\nstart s\nwriter w s\n", "before the first step");
    refused("server s\nstart s\nfault s add error 503 SlowDow p=2\n", "bad.scn:3: fault:");
    refused("server s\nstart s\nfault s add erorr 503\n", "erorr");
    refused("server s --fault 'latency 40xs'\nstart s\n", "--fault");
    refused("server s --listen 127.0.0.1:9000\nstart s\n", "sets --listen itself");
    refused("server s\nwriter w s write=1\nstart s\n", "sets write itself");
    refused("server s\nwriter w s oops\nstart s\n", "not NAME=VALUE");
    refused("server s\nstart s\nwait s synced 3 timeout=forever\n", "bad option");
    refused("server s\nstart s\nwait s dehydrated\n", "unknown condition");
    refused("server s\nstart s\nkill s within 2s..1s\n", "bad window");
    refused("server s\nstart s\nsleep\n", "sleep DUR");
    refused("server s\nstart s\ncheck everything\n", "unknown check");
    refused("server s\nwriter w s\nstart s\ncheck monotonic w\n", "w is a writer");
    refused("server s\nstart s\ncheck no-leftovers\n", "no-leftovers WORKLOAD");
    refused("server s\nstart s\ncheck durable all\n", "check durable [commits]");
    refused("server s\nstart 's\n", "unterminated quote");
    refused("server s\n# only declarations\n", "no steps");
    refused("server s\napp a s write=1\nstart s\n", "needs a command after --");
    refused("server s\napp a s -- true\nstart s\ncheck exit a zero\n", "check exit WORKLOAD");
    refused("server s\napp a s -- true\nstart s\ncheck monotonic a\n", "a is an app");
}
END_TEST

START_TEST(apps)
{
    scn_scenario *s;
    const char *text = "description the app's own check # not a comment\n"
                       "server s\n"
                       "app shop s write=1 -- python3 $SCNDIR/orders.py write\n"
                       "start s shop\n"
                       "check exit shop 0 timeout=5s\n";
    ck_assert_msg(scn_parse_text("a.scn", text, &s, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(s->description, "the app's own check # not a comment");
    ck_assert_int_eq(s->procs[1].kind, SCN_APP);
    ck_assert_int_eq(s->procs[1].nparams, 1); /* write= is the app's to give */
    ck_assert_int_eq(s->procs[1].nargs, 3);
    ck_assert_str_eq(s->procs[1].args[0], "python3");
    scn_scenario_free(s);
}
END_TEST

START_TEST(durations_windows_sizes)
{
    double a, b;
    ck_assert_int_eq(scn_parse_dur("1.5s", &a), 0);
    ck_assert_double_eq_tol(a, 1.5, 1e-9);
    ck_assert_int_eq(scn_parse_dur("250", &a), 0); /* a bare number is ms, as in fault rules */
    ck_assert_double_eq_tol(a, 0.25, 1e-9);
    ck_assert_int_eq(scn_parse_dur("soon", &a), -1);
    ck_assert_int_eq(scn_parse_window("0.2s..2s", &a, &b), 0);
    ck_assert_double_eq_tol(a, 0.2, 1e-9);
    ck_assert_double_eq_tol(b, 2, 1e-9);
    ck_assert_int_eq(scn_parse_window("3s", &a, &b), 0);
    ck_assert_double_eq_tol(b, 3, 1e-9);
    ck_assert_int_eq(scn_parse_window("2s..1s", &a, &b), -1);
    long long z;
    ck_assert_int_eq(scn_parse_size("200M", &z), 0);
    ck_assert_int_eq(z, 200LL << 20);
}
END_TEST

START_TEST(trial_seeds_replay)
{
    ck_assert_uint_eq(scn_trial_seed(42, 1), 42);
    uint64_t s2 = scn_trial_seed(42, 2), s3 = scn_trial_seed(42, 3);
    ck_assert_uint_ne(s2, 42);
    ck_assert_uint_ne(s2, s3);
    ck_assert_uint_eq(scn_trial_seed(42, 2), s2); /* a pure function */
    ck_assert_uint_eq(scn_trial_seed(s2, 1), s2); /* --seed s2 --trials 1 replays trial 2 */
    ck_assert_uint_lt(s2, 1000000000000ull);      /* short enough to type back */
}
END_TEST

START_TEST(junit_report)
{
    char path[] = "/tmp/test_scn_junit_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    scn_result v[3] = {
        {"crash-x", 1, 42, "durable", 1, 0.5, "3 synced rows present"},
        {"crash-x", 1, 42, "prefix", 0, 0.25, "row 2 is id 3 & <not> \"1\""},
        {"crash-x", 2, 77, "durable", 1, 0.5, "ok"},
    };
    scn_results r = {v, 3, 3};
    ck_assert_int_eq(scn_write_junit(&r, path), 0);
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(buf, "<testsuites name=\"scenario\" tests=\"3\" failures=\"1\""));
    ck_assert_ptr_nonnull(strstr(buf, "<testsuite name=\"crash-x#1\" tests=\"2\" failures=\"1\""));
    ck_assert_ptr_nonnull(strstr(buf, "<testsuite name=\"crash-x#2\" tests=\"1\" failures=\"0\""));
    ck_assert_ptr_nonnull(strstr(buf, "<property name=\"seed\" value=\"77\"/>"));
    ck_assert_ptr_nonnull(
        strstr(buf, "<failure message=\"row 2 is id 3 &amp; &lt;not&gt; &quot;1&quot;\""));
    ck_assert_ptr_null(strstr(buf, "<not>"));
}
END_TEST

START_TEST(shipped_scenarios_parse)
{
    const char *src = getenv("LTXVFS_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/scenarios", src);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".scn") != 0)
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        scn_scenario *s;
        ck_assert_msg(scn_parse_file(p, &s, err, sizeof err) == 0, "%s", err);
        scn_scenario_free(s);
        n++;
    }
    closedir(d);
    ck_assert_int_ge(n, 9);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scn_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_a_good_file);
    tcase_add_test(tc, refuses_mistakes);
    tcase_add_test(tc, apps);
    tcase_add_test(tc, durations_windows_sizes);
    tcase_add_test(tc, trial_seeds_replay);
    tcase_add_test(tc, junit_report);
    tcase_add_test(tc, shipped_scenarios_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
