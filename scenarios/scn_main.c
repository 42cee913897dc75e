/*
 * scenario (build/scenario): runs scenario files and reports each check.
 *
 *   scenario run FILE... [--seed N] [--trials N] [--junit OUT.xml] [--keep] [--workdir DIR]
 *
 * Every file is parsed first (a bad file stops the run before anything starts); then each
 * scenario runs --trials times, trial k with the seed scn_trial_seed(seed, k), so trial 1 is the
 * seed itself and "--seed S --trials 1" replays any trial whose seed S was printed. One line per
 * check, a closing "N passed, M failed"; exit 0 when all passed, 1 when one failed, 2 on a bad
 * command line or scenario file.
 *
 * Threads: none.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "scn.h"

static const char usage[] =
    "usage: scenario run FILE... [--seed N] [--trials N] [--junit OUT.xml] [--keep]\n"
    "                            [--workdir DIR]\n"
    "\n"
    "Runs each scenario file (docs/scenarios.md) --trials times (default 1), trial k with a seed\n"
    "derived from --seed (default: from the clock; printed), and prints one line per check:\n"
    "  ok  crash-before-sync#2 durable: 412 synced rows present\n"
    "  FAIL ...\n"
    "then \"N passed, M failed\". The folder of a failed trial (logs, fakes3's request log and "
    "data,\n"
    "the buffer, the restored database) is kept, and the command that replays it is printed.\n"
    "  --seed N        the seed of the first trial (the others are derived from it)\n"
    "  --trials N      trials per scenario (default 1)\n"
    "  --junit FILE    also write a JUnit XML report\n"
    "  --keep          keep every trial's folder, passed or not\n"
    "  --workdir DIR   where trial folders go (default: $TMPDIR/scenario-XXXXXX)\n"
    "The programs come from the folder of this executable (or $LTXVFS_BUILD_DIR): fakes3, ltxctl,\n"
    "litestream-vfs.so, scenario-driver.\n"
    "Exit status: 0 every check passed, 1 a check failed, 2 a bad command line or scenario file.\n";

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "scenario: unknown command \"%s\" (try --help)\n", argv[1]);
        return 2;
    }
    const char **files = lv_calloc((size_t)argc, sizeof *files);
    scn_scenario **sc = NULL;
    scn_results res = {0};
    int nfiles = 0, keep = 0, seeded = 0, rc = 2;
    if (!files) {
        fprintf(stderr, "scenario: out of memory\n");
        return 2;
    }
    uint64_t seed = 0, trials = 1;
    const char *junit = NULL, *workdir = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            rc = 0;
            goto done;
        } else if (strcmp(a, "--keep") == 0)
            keep = 1;
        else if (strcmp(a, "--seed") == 0 || strcmp(a, "--trials") == 0 ||
                 strcmp(a, "--junit") == 0 || strcmp(a, "--workdir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "scenario: %s needs a value\n", a);
                rc = 2;
                goto done;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--seed") == 0) {
                if (parse_u64(v, &seed) != 0) {
                    fprintf(stderr, "scenario: --seed: not a number: \"%s\"\n", v);
                    rc = 2;
                    goto done;
                }
                seeded = 1;
            } else if (strcmp(a, "--trials") == 0) {
                if (parse_u64(v, &trials) != 0 || trials < 1 || trials > 100000) {
                    fprintf(stderr, "scenario: --trials: want 1..100000, got \"%s\"\n", v);
                    rc = 2;
                    goto done;
                }
            } else if (strcmp(a, "--junit") == 0)
                junit = v;
            else
                workdir = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "scenario: unknown option %s (try --help)\n", a);
            rc = 2;
            goto done;
        } else
            files[nfiles++] = a;
    }
    if (nfiles == 0) {
        fprintf(stderr, "scenario: no scenario file given (try --help)\n");
        rc = 2;
        goto done;
    }
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t st =
            (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
        seed = scn_mix(&st) % 1000000000000ull;
    }

    sc = lv_calloc((size_t)nfiles, sizeof *sc);
    if (!sc) {
        fprintf(stderr, "scenario: out of memory\n");
        goto done;
    }
    for (int i = 0; i < nfiles; i++) {
        char err[1024];
        if (scn_parse_file(files[i], &sc[i], err, sizeof err) != 0) {
            fprintf(stderr, "scenario: %s\n", err);
            rc = 2;
            goto done;
        }
    }

    /* where the programs are: $LTXVFS_BUILD_DIR, else the folder of this executable */
    char build[PATH_MAX];
    const char *env_build = getenv("LTXVFS_BUILD_DIR");
    if (env_build && *env_build)
        snprintf(build, sizeof build, "%s", env_build);
    else {
        ssize_t n = readlink("/proc/self/exe", build, sizeof build - 1);
        if (n <= 0) {
            fprintf(stderr, "scenario: cannot find my own folder\n");
            rc = 2;
            goto done;
        }
        build[n] = 0;
        char *slash = strrchr(build, '/');
        if (slash)
            *slash = 0;
    }
    char work[PATH_MAX];
    if (workdir) {
        snprintf(work, sizeof work, "%s", workdir);
        mkdir(work, 0755);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(work, sizeof work, "%s/scenario-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work)) {
            fprintf(stderr, "scenario: mkdtemp %s: %s\n", work, strerror(errno));
            rc = 2;
            goto done;
        }
    }
    char *real = realpath(work, NULL);
    if (real) {
        snprintf(work, sizeof work, "%s", real);
        free(real);
    }

    printf("scenario: seed %" PRIu64 ", %" PRIu64 " trial(s) each, %d file(s), work in %s\n", seed,
           trials, nfiles, work);
    fflush(stdout);
    scn_env env = {build, work, keep, stdout};
    int failed_trials = 0;
    for (int i = 0; i < nfiles; i++) {
        for (uint64_t k = 1; k <= trials; k++) {
            uint64_t ts = scn_trial_seed(seed, (int)k);
            char dir[PATH_MAX];
            int f = scn_run_trial(&env, sc[i], (int)k, ts, &res, dir, sizeof dir);
            if (f != 0) {
                failed_trials++;
                printf("  kept %s\n  replay: %s run %s --seed %" PRIu64 " --trials 1 --keep\n", dir,
                       argv[0], files[i], ts);
            } else if (keep)
                printf("  kept %s\n", dir);
            fflush(stdout);
        }
    }
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < res.n; i++)
        res.v[i].ok ? passed++ : failed++;
    printf("%zu passed, %zu failed\n", passed, failed);
    rc = failed ? 1 : 0;
    if (junit && scn_write_junit(&res, junit) != 0) {
        fprintf(stderr, "scenario: --junit %s: %s\n", junit, strerror(errno));
        rc = rc ? rc : 1;
    }
    if (!keep && failed_trials == 0)
        rmdir(work); /* empty once every trial folder is gone; a given --workdir may hold more */
done:
    scn_results_free(&res);
    for (int i = 0; sc && i < nfiles; i++)
        scn_scenario_free(sc[i]);
    lv_free(sc);
    lv_free(files);
    return rc;
}
