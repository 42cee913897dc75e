/*
 * scn: a scenario file, parsed (scn_parse.c), and the runner that plays it (scn_run.c).
 *
 * A scenario is data (docs/scenarios.md is the reference): line-based, `#` comments, words split
 * at blanks with '...' and "..." quoting. Declarations (server, writer, reader), then steps in
 * order (start, stop, kill, restart, wait, fault, sleep, check). Everything is checked when the
 * file is read, fault rules included (with the chaos engine fakes3 itself uses), so a typo fails
 * before any process starts.
 *
 * Threads: none. The runner forks processes and polls them from the calling thread.
 */
#ifndef SCN_H
#define SCN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scn_checks.h"

enum { SCN_SERVER, SCN_WRITER, SCN_READER, SCN_APP };

/* A declared process. Strings owned by the scenario. */
typedef struct scn_proc {
    char *name;
    int kind;     /* SCN_* */
    char *server; /* workloads: the server whose bucket holds the replica */
    char **args;  /* server: fakes3 flags; writer, reader: driver flags (after "--"); app: the
                     command and its arguments (after "--") */
    int nargs;
    char **params; /* workloads: URI parameters NAME=VALUE */
    int nparams;
    int line;
} scn_proc;

/* A step: its words, and the raw text from the fourth word on (a fault rule). */
typedef struct scn_step {
    int line;
    char **w;
    int n;
    char *rule; /* "fault NAME add RULE": RULE as written; else NULL */
} scn_step;

typedef struct scn_scenario {
    char *path, *name, *description;
    double timeout_s; /* the whole trial's bound */
    scn_proc *procs;
    int nprocs;
    scn_step *steps;
    int nsteps;
} scn_scenario;

/*
 * Parses text (the contents of a file called path; the name defaults to its base name without
 * .scn) into *out (the caller frees it with scn_scenario_free). 0, or -1 with "FILE:LINE: what"
 * in err.
 */
int scn_parse_text(const char *path, const char *text, scn_scenario **out, char *err, size_t cap);
int scn_parse_file(const char *path, scn_scenario **out, char *err, size_t cap);
void scn_scenario_free(scn_scenario *s);
const scn_proc *scn_find_proc(const scn_scenario *s, const char *name);

/*
 * Durations: "250ms", "2s", "1.5s", "1m", a bare number is milliseconds (as fault rules). 0 or
 * -1.
 */
int scn_parse_dur(const char *s, double *seconds);
/* "MIN..MAX" or one DUR (then both the same). */
int scn_parse_window(const char *s, double *lo, double *hi);
/* Sizes: 65536, 64k, 200M, 1G (powers of 1024). */
int scn_parse_size(const char *s, long long *bytes);

/* splitmix64 step: the runner's seeded stream and the derivation of trial seeds. */
uint64_t scn_mix(uint64_t *state);
/* The seed of trial k (1-based) of a run with seed s: s itself for k = 1. */
uint64_t scn_trial_seed(uint64_t s, int k);

/* ---- running ---- */

typedef struct scn_result {
    char scenario[64];
    int trial;
    uint64_t seed;
    char check[48];
    int ok;
    double secs;
    char msg[SCN_MSGLEN];
} scn_result;

typedef struct scn_results {
    scn_result *v;
    size_t n, cap;
} scn_results;

typedef struct scn_env {
    const char *build_dir; /* holds fakes3, ltxctl, litestream-vfs.so, scenario-driver */
    const char *work_dir;  /* trial folders go under it */
    int keep;              /* keep every trial's folder, not only failed ones */
    FILE *out;             /* the check lines */
} scn_env;

/*
 * Runs one trial of s with seed; appends one result per check (and one "run" result if a step
 * failed) to res, printing each line to env->out. The trial's folder is kept when a check failed
 * or env->keep; its path goes to dir (cap bytes) either way. Returns the number of failures, or
 * -1 when the trial could not be set up at all (the reason in res as a failed "setup").
 */
int scn_run_trial(const scn_env *env, const scn_scenario *s, int trial, uint64_t seed,
                  scn_results *res, char *dir, size_t cap);

void scn_results_free(scn_results *r);
/* Writes res as JUnit XML to path. 0, or -1 with errno. */
int scn_write_junit(const scn_results *res, const char *path);

#endif
