/*
 * scn_run: plays one trial of a scenario. It makes the trial's folder, starts the processes the
 * steps name (fakes3 from build/fakes3, workloads from build/scenario-driver loading
 * build/litestream-vfs.so), kills, restarts, waits and adds faults as written, and runs each check
 * where it stands, printing one line per check.
 *
 * Trial folder (kept when a check fails, or with --keep):
 *   steps.log               what the runner did, with times since the start
 *   NAME.out, NAME.err      each process's stdout and stderr (appended across restarts)
 *   NAME.log                a workload's log (scn_checks.h formats)
 *   NAME.requests.jsonl     a server's request log (fakes3 --log)
 *   NAME.data/              a server's data directory (unless the scenario gives
 * --data-dir/--memory) NAME/                   a workload's folder: its working directory, TMPDIR,
 * and its buffer (NAME/buffer.wbuf unless the scenario gives buffer=) restored.db             the
 * replica restored by the last check that needed it at-TXID.db              restores at a reader's
 * TXIDs (answers)
 *
 * Randomness: one splitmix64 stream per trial, from its seed, drawn in step order (kill and sleep
 * windows) and per process (the driver's --seed, fakes3's --seed), so a trial replays from its
 * seed as far as process timing allows.
 *
 * Threads: none. Children are polled with waitpid(pid, WNOHANG) on their own pids (never -1, so
 * helpers run with run_cmd are never reaped by the wrong loop).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "scn.h"

#define KEY    "scnkey"
#define SECRET "scnsecret"
#define BUCKET "scn"

typedef struct rproc {
    const scn_proc *p;
    pid_t pid;
    int running;
    int status;   /* the last wait status (valid once it exited) */
    int exited;   /* it exited at least once */
    int killed;   /* the runner killed or stopped it: its exit is expected */
    int port;     /* server: the port (kept across restarts) */
    int starts;   /* server: start attempts so far (earlier stdout files are NAME.out.N) */
    char url[64]; /* server: http://127.0.0.1:PORT */
    uint64_t seed;
    long max_fds, max_rss_kb;
    size_t samples;
} rproc;

typedef struct trial {
    const scn_env *env;
    const scn_scenario *s;
    int num;
    uint64_t seed, rng;
    char dir[PATH_MAX];
    char scndir[PATH_MAX];
    rproc *procs;
    int nprocs;
    double t0, last_sample;
    FILE *steps;
    scn_results *res;
    int failures;
    int restored_ok; /* restored.db is up to date */
    scn_rows rows;
    int64_t *row_ids;
} trial;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(trial *t, const char *fmt, ...)
{
    if (!t->steps)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(t->steps, "%8.3f ", now_s() - t->t0);
    vfprintf(t->steps, fmt, ap);
    fputc('\n', t->steps);
    fflush(t->steps);
    va_end(ap);
}

static void record(trial *t, const char *check, int ok, double secs, const char *msg)
{
    scn_results *r = t->res;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        scn_result *v = lv_realloc(r->v, cap * sizeof *v);
        if (!v)
            return;
        r->v = v;
        r->cap = cap;
    }
    scn_result *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->scenario, sizeof x->scenario, "%s", t->s->name);
    x->trial = t->num;
    x->seed = t->seed;
    snprintf(x->check, sizeof x->check, "%s", check);
    x->ok = ok;
    x->secs = secs;
    snprintf(x->msg, sizeof x->msg, "%s", msg);
    if (!ok)
        t->failures++;
    fprintf(t->env->out, "%s%s#%d %s: %s\n", ok ? "ok  " : "FAIL ", t->s->name, t->num, check, msg);
    fflush(t->env->out);
    note(t, "%s %s: %s", ok ? "ok" : "FAIL", check, msg);
}

static rproc *rp(trial *t, const char *name)
{
    for (int i = 0; i < t->nprocs; i++)
        if (strcmp(t->procs[i].p->name, name) == 0)
            return &t->procs[i];
    return NULL;
}

static void path_of(trial *t, char *out, size_t cap, const char *name, const char *suffix)
{
    snprintf(out, cap, "%s/%s%s", t->dir, name, suffix);
}

/* Reads a whole file into a NUL-terminated buffer (lv_free), *len its size; NULL if missing. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t n = 0, cap = 65536;
    char *b = lv_malloc(cap + 1);
    while (b) {
        if (n == cap) {
            char *g = lv_realloc(b, cap * 2 + 1);
            if (!g) {
                lv_free(b);
                b = NULL;
                break;
            }
            b = g;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (b) {
        b[n] = 0;
        if (len)
            *len = n;
    }
    return b;
}

/* Expands $DIR (the trial's folder), $SCNDIR (the scenario file's) and $SEED in w into out. */
static void expand(trial *t, const char *w, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = w; *p && o + 1 < cap;) {
        if (strncmp(p, "$SCNDIR", 7) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", t->scndir);
            p += 7;
        } else if (strncmp(p, "$DIR", 4) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", t->dir);
            p += 4;
        } else if (strncmp(p, "$SEED", 5) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%" PRIu64, t->seed);
            p += 5;
        } else
            out[o++] = *p++;
        if (o >= cap)
            o = cap - 1;
    }
    out[o] = 0;
}

/* ---- sampling and reaping ---- */

static void sample(rproc *r)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)r->pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    long fds = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            fds++;
    closedir(d);
    snprintf(path, sizeof path, "/proc/%d/status", (int)r->pid);
    FILE *f = fopen(path, "r");
    long rss = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld kB", &rss) == 1)
                break;
        fclose(f);
    }
    if (fds > r->max_fds)
        r->max_fds = fds;
    if (rss > r->max_rss_kb)
        r->max_rss_kb = rss;
    r->samples++;
}

static void reap(trial *t)
{
    for (int i = 0; i < t->nprocs; i++) {
        rproc *r = &t->procs[i];
        if (!r->running)
            continue;
        int st;
        pid_t w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) {
            r->running = 0;
            r->exited = 1;
            r->status = st;
            if (WIFEXITED(st))
                note(t, "%s (pid %d) exited with status %d", r->p->name, (int)r->pid,
                     WEXITSTATUS(st));
            else
                note(t, "%s (pid %d) died of signal %d", r->p->name, (int)r->pid, WTERMSIG(st));
        }
    }
    double n = now_s();
    if (n - t->last_sample >= 0.1) {
        t->last_sample = n;
        for (int i = 0; i < t->nprocs; i++)
            if (t->procs[i].running && t->procs[i].p->kind != SCN_SERVER)
                sample(&t->procs[i]);
    }
}

/*
 * SIGINT / SIGTERM to the runner: every child runs in its own process group (so a ^C meant for
 * the runner does not kill a workload at a moment the scenario did not choose), so the runner
 * ends them itself, keeps the folder, and exits 130.
 */
static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig)
{
    interrupted = sig;
}

static void abandon(trial *t)
{
    for (int i = 0; i < t->nprocs; i++)
        if (t->procs[i].running) {
            kill(t->procs[i].pid, SIGKILL);
            waitpid(t->procs[i].pid, NULL, 0);
        }
    fprintf(t->env->out, "interrupted: trial folder kept: %s\n", t->dir);
    fflush(t->env->out);
    _exit(130);
}

/* Sleeps s seconds, reaping and sampling meanwhile. */
static void idle(trial *t, double s)
{
    double end = now_s() + s;
    for (;;) {
        if (interrupted)
            abandon(t);
        reap(t);
        double left = end - now_s();
        if (left <= 0)
            break;
        struct timespec ts = {0, (long)((left < 0.02 ? left : 0.02) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static const char *how_ended(const rproc *r, char *buf, size_t cap)
{
    if (WIFEXITED(r->status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(r->status));
    else
        snprintf(buf, cap, "died of signal %d", WTERMSIG(r->status));
    return buf;
}

/*
 * Runs argv (a helper: ltxctl, fakes3 ctl) to completion, its stdout and stderr into out_path
 * (truncated). Returns the exit status (0..255), or -1 if it could not run or timed out.
 */
static int run_cmd(trial *t, char *const argv[], const char *out_path, double timeout_s)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("AWS_ACCESS_KEY_ID", KEY, 1);
        setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
        setenv("AWS_REGION", "us-east-1", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    double end = now_s() + timeout_s;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            note(t, "%s timed out after %.0f s", argv[0], timeout_s);
            return -1;
        }
        idle(t, 0.01);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first line of a file (for messages), into out. */
static void first_line(const char *path, char *out, size_t cap)
{
    size_t n;
    char *b = slurp(path, &n);
    out[0] = 0;
    if (!b)
        return;
    char *nl = strchr(b, '\n');
    if (nl)
        *nl = 0;
    snprintf(out, cap, "%s", b);
    lv_free(b);
}

/* ---- starting processes ---- */

static int start_server(trial *t, rproc *r, char *err, size_t cap)
{
    char bin[PATH_MAX], listen[64], logp[PATH_MAX], data[PATH_MAX], outp[PATH_MAX], errp[PATH_MAX],
        seed[32];
    snprintf(bin, sizeof bin, "%s/fakes3", t->env->build_dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", r->port);
    path_of(t, logp, sizeof logp, r->p->name, ".requests.jsonl");
    path_of(t, data, sizeof data, r->p->name, ".data");
    path_of(t, outp, sizeof outp, r->p->name, ".out");
    path_of(t, errp, sizeof errp, r->p->name, ".err");
    snprintf(seed, sizeof seed, "%" PRIu64, r->seed);
    int own_data = 1;
    for (int i = 0; i < r->p->nargs; i++)
        if (strcmp(r->p->args[i], "--data-dir") == 0 || strcmp(r->p->args[i], "--memory") == 0)
            own_data = 0;
    char **argv = lv_calloc((size_t)r->p->nargs + 20, sizeof *argv);
    char(*exp)[PATH_MAX] = lv_calloc((size_t)r->p->nargs + 1, PATH_MAX);
    if (!argv || !exp) {
        lv_free(argv);
        lv_free(exp);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    int k = 0;
    argv[k++] = bin;
    argv[k++] = "--listen";
    argv[k++] = listen;
    argv[k++] = "--access-key";
    argv[k++] = KEY;
    argv[k++] = "--secret-key";
    argv[k++] = SECRET;
    argv[k++] = "--log";
    argv[k++] = logp;
    argv[k++] = "--seed";
    argv[k++] = seed;
    argv[k++] = "--bucket";
    argv[k++] = BUCKET;
    if (own_data) {
        argv[k++] = "--data-dir";
        argv[k++] = data;
    }
    for (int i = 0; i < r->p->nargs; i++) {
        expand(t, r->p->args[i], exp[i], PATH_MAX);
        argv[k++] = exp[i];
    }
    argv[k] = NULL;
    int rc = -1;
    for (int attempt = 0; attempt < 20 && rc != 0; attempt++) {
        /* the start-up line is looked for in a fresh out file; earlier ones are kept aside */
        char old[PATH_MAX + 16];
        snprintf(old, sizeof old, "%s.%d", outp, ++r->starts);
        rename(outp, old);
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(err, cap, "fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            int o = open(outp, O_WRONLY | O_CREAT | O_APPEND, 0644);
            int e = open(errp, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (o >= 0)
                dup2(o, 1);
            if (e >= 0)
                dup2(e, 2);
            setpgid(0, 0);
            execv(bin, argv);
            _exit(127);
        }
        r->pid = pid;
        r->running = 1;
        r->killed = 0;
        note(t, "started server %s (pid %d) on %s", r->p->name, (int)pid, listen);
        double end = now_s() + 10;
        while (now_s() < end) {
            char line[512];
            first_line(outp, line, sizeof line);
            char *u = strstr(line, "listening on http://");
            if (u) {
                u += strlen("listening on ");
                char *sp = strchr(u, ' ');
                if (sp)
                    *sp = 0;
                snprintf(r->url, sizeof r->url, "%s", u);
                char *colon = strrchr(r->url, ':');
                r->port = colon ? atoi(colon + 1) : 0;
                rc = 0;
                break;
            }
            reap(t);
            if (!r->running)
                break;
            idle(t, 0.02);
        }
        if (rc == 0)
            break;
        if (r->running) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &r->status, 0);
            r->running = 0;
            snprintf(err, cap, "server %s did not start in 10 s (see %s)", r->p->name, errp);
            break;
        }
        /* it exited: on a restart the port may still be held a moment; try again */
        snprintf(err, cap, "server %s exited at start (see %s)", r->p->name, errp);
        if (r->port == 0)
            break;
        idle(t, 0.25);
    }
    lv_free(argv);
    lv_free(exp);
    if (rc == 0)
        note(t, "server %s listening on %s", r->p->name, r->url);
    return rc;
}

static int start_workload(trial *t, rproc *r, char *err, size_t cap)
{
    rproc *srv = rp(t, r->p->server);
    if (!srv || !srv->url[0]) {
        snprintf(err, cap, "%s: its server %s was never started", r->p->name, r->p->server);
        return -1;
    }
    char bin[PATH_MAX], ext[PATH_MAX], logp[PATH_MAX], outp[PATH_MAX], errp[PATH_MAX],
        wdir[PATH_MAX], seed[32], uri[8192], replica[256];
    snprintf(bin, sizeof bin, "%s/scenario-driver", t->env->build_dir);
    snprintf(ext, sizeof ext, "%s/litestream-vfs", t->env->build_dir);
    path_of(t, logp, sizeof logp, r->p->name, ".log");
    path_of(t, outp, sizeof outp, r->p->name, ".out");
    path_of(t, errp, sizeof errp, r->p->name, ".err");
    path_of(t, wdir, sizeof wdir, r->p->name, "");
    mkdir(wdir, 0755);
    snprintf(seed, sizeof seed, "%" PRIu64, r->seed);
    snprintf(replica, sizeof replica, "s3://%s/db?endpoint=%s", BUCKET, srv->url);
    int kind = r->p->kind, writer = kind == SCN_WRITER, has_buffer = 0;
    size_t o =
        (size_t)snprintf(uri, sizeof uri, "file:db?vfs=litestream%s", writer ? "&write=1" : "");
    for (int i = 0; i < r->p->nparams; i++) {
        char e[PATH_MAX];
        expand(t, r->p->params[i], e, sizeof e);
        has_buffer |= strncmp(e, "buffer=", 7) == 0;
        o += (size_t)snprintf(uri + o, sizeof uri - o, "&%s", e);
    }
    if (kind != SCN_READER && !has_buffer)
        o += (size_t)snprintf(uri + o, sizeof uri - o, "&buffer=%s/buffer.wbuf", wdir);
    snprintf(uri + o, sizeof uri - o, "&replica=%s", replica);

    char **argv = lv_calloc((size_t)r->p->nargs + 12, sizeof *argv);
    char(*exp)[PATH_MAX] = lv_calloc((size_t)r->p->nargs + 1, PATH_MAX);
    if (!argv || !exp) {
        lv_free(argv);
        lv_free(exp);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    int k = 0;
    if (kind != SCN_APP) {
        argv[k++] = bin;
        argv[k++] = writer ? "writer" : "reader";
        argv[k++] = ext;
        argv[k++] = uri;
        argv[k++] = "--log";
        argv[k++] = logp;
        argv[k++] = "--seed";
        argv[k++] = seed;
    }
    for (int i = 0; i < r->p->nargs; i++) {
        expand(t, r->p->args[i], exp[i], PATH_MAX);
        argv[k++] = exp[i];
    }
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        lv_free(argv);
        lv_free(exp);
        return -1;
    }
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fe = open(errp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fo >= 0)
            dup2(fo, 1);
        if (fe >= 0)
            dup2(fe, 2);
        if (chdir(wdir) != 0)
            _exit(126);
        setenv("TMPDIR", wdir, 1);
        setenv("AWS_ACCESS_KEY_ID", KEY, 1);
        setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
        setenv("AWS_REGION", "us-east-1", 1);
        unsetenv("AWS_SESSION_TOKEN");
        unsetenv("LITESTREAM_REPLICA_URL");
        /* what an app needs to open the replica as the driver would (docs/scenarios.md) */
        setenv("SCN_URI", uri, 1);
        setenv("SCN_EXT", ext, 1);
        setenv("SCN_LOG", logp, 1);
        setenv("SCN_REPLICA", replica, 1);
        setenv("SCN_DIR", t->dir, 1);
        setenv("SCN_SEED", seed, 1);
        setpgid(0, 0);
        if (kind == SCN_APP)
            execvp(argv[0], argv);
        else
            execv(bin, argv);
        _exit(127);
    }
    r->pid = pid;
    r->running = 1;
    r->killed = 0;
    note(t, "started %s %s (pid %d): %s",
         kind == SCN_WRITER   ? "writer"
         : kind == SCN_READER ? "reader"
                              : "app",
         r->p->name, (int)pid, uri);
    lv_free(argv);
    lv_free(exp);
    return 0;
}

static int start(trial *t, rproc *r, char *err, size_t cap)
{
    reap(t);
    if (r->running) {
        snprintf(err, cap, "%s is already running (pid %d)", r->p->name, (int)r->pid);
        return -1;
    }
    t->restored_ok = 0;
    return r->p->kind == SCN_SERVER ? start_server(t, r, err, cap) : start_workload(t, r, err, cap);
}

/* SIGTERM and wait (30 s, then SIGKILL). 0 when it exited 0. */
static int stop(trial *t, rproc *r, char *err, size_t cap)
{
    reap(t);
    if (!r->running) {
        char how[64];
        snprintf(err, cap, "%s is not running (it %s)", r->p->name,
                 r->exited ? how_ended(r, how, sizeof how) : "was never started");
        return -1;
    }
    r->killed = 1;
    kill(r->pid, SIGTERM);
    note(t, "SIGTERM %s (pid %d)", r->p->name, (int)r->pid);
    double end = now_s() + 30;
    while (r->running && now_s() < end)
        idle(t, 0.02);
    if (r->running) {
        kill(r->pid, SIGKILL);
        while (r->running)
            idle(t, 0.02);
        snprintf(err, cap, "%s did not stop within 30 s of SIGTERM (killed)", r->p->name);
        return -1;
    }
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
        char how[64];
        snprintf(err, cap, "%s %s after SIGTERM (see %s.err)", r->p->name,
                 how_ended(r, how, sizeof how), r->p->name);
        return -1;
    }
    return 0;
}

static void kill9(trial *t, rproc *r)
{
    reap(t);
    if (!r->running)
        return;
    r->killed = 1;
    kill(r->pid, SIGKILL);
    note(t, "SIGKILL %s (pid %d)", r->p->name, (int)r->pid);
    while (r->running)
        idle(t, 0.005);
}

/* ---- conditions ---- */

static int64_t count_of(trial *t, rproc *r, const char *cond)
{
    char logp[PATH_MAX];
    size_t n = 0;
    path_of(t, logp, sizeof logp, r->p->name, ".log");
    char *text = slurp(logp, &n);
    if (!text)
        return 0;
    int64_t v = 0;
    if (r->p->kind == SCN_READER) {
        scn_rlog rl;
        if (scn_rlog_parse(text, n, &rl) == 0) {
            if (strcmp(cond, "hydrated") == 0)
                v = (int64_t)rl.hydrated;
            else
                for (size_t i = 0; i < rl.n; i++)
                    v += rl.reads[i].kind == SCN_R_READ || rl.reads[i].kind == SCN_R_TRAVEL;
            scn_rlog_free(&rl);
        }
    } else {
        scn_wlog w;
        if (scn_wlog_parse(text, n, &w) == 0) {
            v = strcmp(cond, "commits") == 0   ? w.commits
                : strcmp(cond, "synced") == 0  ? w.syncs
                : strcmp(cond, "syncing") == 0 ? w.syncings
                : strcmp(cond, "refused") == 0 ? w.refusals
                                               : w.syncfails;
            scn_wlog_free(&w);
        }
    }
    lv_free(text);
    return v;
}

static int do_wait(trial *t, const scn_step *st, char *err, size_t cap)
{
    rproc *r = rp(t, st->w[1]);
    const char *cond = st->w[2];
    double timeout = 30;
    int64_t want = 1;
    int relative = 0, has_num = 0;
    for (int i = 3; i < st->n; i++) {
        if (strncmp(st->w[i], "timeout=", 8) == 0)
            scn_parse_dur(st->w[i] + 8, &timeout);
        else if (!strchr(st->w[i], '=')) {
            relative = st->w[i][0] == '+';
            want = strtoll(st->w[i] + relative, NULL, 10);
            has_num = 1;
        }
    }
    double end = now_s() + timeout;
    if (strcmp(cond, "exit") == 0 || strcmp(cond, "running") == 0) {
        int is_exit = cond[0] == 'e';
        for (;;) {
            reap(t);
            if (is_exit ? !r->running : r->running)
                break;
            if (now_s() > end) {
                snprintf(err, cap, "wait %s %s: still %s after %.0f s", r->p->name, cond,
                         is_exit ? "running" : "not running", timeout);
                return -1;
            }
            idle(t, 0.02);
        }
        if (is_exit && has_num && (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != (int)want)) {
            char how[64];
            snprintf(err, cap, "wait %s exit %d: it %s", r->p->name, (int)want,
                     how_ended(r, how, sizeof how));
            return -1;
        }
        return 0;
    }
    if ((strcmp(cond, "reads") == 0 || strcmp(cond, "hydrated") == 0) && r->p->kind != SCN_READER) {
        snprintf(err, cap, "wait %s %s: %s is not a reader", r->p->name, cond, r->p->name);
        return -1;
    }
    int64_t base = relative ? count_of(t, r, cond) : 0;
    for (;;) {
        int64_t have = count_of(t, r, cond);
        if (have - base >= want)
            return 0;
        reap(t);
        if (!r->running && count_of(t, r, cond) - base < want) {
            char how[64];
            snprintf(err, cap, "wait %s %s %s%lld: it %s with %lld (see %s.err)", r->p->name, cond,
                     relative ? "+" : "", (long long)want,
                     r->exited ? how_ended(r, how, sizeof how) : "is not running",
                     (long long)(have - base), r->p->name);
            return -1;
        }
        if (now_s() > end) {
            snprintf(err, cap, "wait %s %s %s%lld: timed out after %.0f s with %lld", r->p->name,
                     cond, relative ? "+" : "", (long long)want, timeout, (long long)(have - base));
            return -1;
        }
        idle(t, 0.03);
    }
}

static double draw(trial *t, double lo, double hi)
{
    double u = (double)(scn_mix(&t->rng) >> 11) / 9007199254740992.0;
    return lo + (hi - lo) * u;
}

/* ---- restores ---- */

/* The replica's server: the server of the first workload. */
static rproc *replica_server(trial *t)
{
    for (int i = 0; i < t->nprocs; i++)
        if (t->procs[i].p->kind != SCN_SERVER)
            return rp(t, t->procs[i].p->server);
    return NULL;
}

static void replica_url(trial *t, char *out, size_t cap)
{
    rproc *s = replica_server(t);
    snprintf(out, cap, "s3://%s/db?endpoint=%s", BUCKET, s ? s->url : "");
}

/* Reads the rows of t in db into rows (ids lv_malloc'd into *ids). 0, or -1 with err. */
static int read_rows(const char *db, scn_rows *rows, int64_t **ids, char *err, size_t cap)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    size_t n = 0, ncap = 1024;
    int64_t *v = lv_malloc(ncap * sizeof *v);
    memset(rows, 0, sizeof *rows);
    if (!v || sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, cap, "open %s: %s", db, h ? sqlite3_errmsg(h) : "out of memory");
        goto done;
    }
    int exists = 0;
    if (sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master WHERE name = 't'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        exists = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (exists) {
        if (sqlite3_prepare_v2(h, "SELECT id, v FROM t ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
            snprintf(err, cap, "%s: %s", db, sqlite3_errmsg(h));
            goto done;
        }
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == ncap) {
                int64_t *g = lv_realloc(v, (ncap *= 2) * sizeof *g);
                if (!g) {
                    snprintf(err, cap, "out of memory");
                    goto done;
                }
                v = g;
            }
            int64_t id = sqlite3_column_int64(st, 0);
            const char *val = (const char *)sqlite3_column_text(st, 1);
            char want[64];
            scn_expected_v(id, want);
            if (!val || strcmp(val, want) != 0) {
                if (rows->bad_v++ == 0)
                    rows->first_bad_v = id;
            }
            v[n++] = id;
        }
        if (s != SQLITE_DONE) {
            snprintf(err, cap, "%s: reading t: %s", db, sqlite3_errmsg(h));
            goto done;
        }
    }
    rows->ids = v;
    rows->n = n;
    *ids = v;
    v = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    sqlite3_close(h);
    lv_free(v);
    return rc;
}

/* ltxctl restore into db (txid 0: the latest). 0, or -1 with err naming the output file. */
static int restore_to(trial *t, const char *db, uint64_t txid, char *err, size_t cap)
{
    char bin[PATH_MAX], url[256], out[PATH_MAX + 8], tx[32];
    snprintf(bin, sizeof bin, "%s/ltxctl", t->env->build_dir);
    replica_url(t, url, sizeof url);
    snprintf(out, sizeof out, "%s.out", db);
    snprintf(tx, sizeof tx, "%016" PRIx64, txid);
    char *argv[] = {bin,         "restore",  url,
                    "-o",        (char *)db, "--force",
                    "--timeout", "15s",      txid ? "--txid" : NULL,
                    tx,          NULL};
    int rc = run_cmd(t, argv, out, 60);
    if (rc != 0) {
        char line[256];
        first_line(out, line, sizeof line);
        snprintf(err, cap, "ltxctl restore%s%s failed (%d): %s", txid ? " --txid " : "",
                 txid ? tx : "", rc, line);
        return -1;
    }
    return 0;
}

/* restored.db and t->rows, up to date with the replica. */
static int restored(trial *t, char *err, size_t cap)
{
    if (t->restored_ok)
        return 0;
    char db[PATH_MAX];
    path_of(t, db, sizeof db, "restored", ".db");
    lv_free(t->row_ids);
    t->row_ids = NULL;
    memset(&t->rows, 0, sizeof t->rows);
    if (restore_to(t, db, 0, err, cap) != 0 || read_rows(db, &t->rows, &t->row_ids, err, cap) != 0)
        return -1;
    t->restored_ok = 1;
    note(t, "restored the replica: %zu rows", t->rows.n);
    return 0;
}

/* Is a workload running? */
static int any_running(trial *t)
{
    reap(t);
    for (int i = 0; i < t->nprocs; i++)
        if (t->procs[i].running && t->procs[i].p->kind != SCN_SERVER)
            return 1;
    return 0;
}

/* Every writer's log, parsed (*w lv_free'd by the caller after scn_wlog_free of each). */
static int writer_logs(trial *t, scn_wlog **out, const char ***names, size_t *n)
{
    scn_wlog *w = lv_calloc((size_t)t->nprocs + 1, sizeof *w);
    const char **nm = lv_calloc((size_t)t->nprocs + 1, sizeof *nm);
    size_t k = 0;
    if (!w || !nm) {
        lv_free(w);
        lv_free(nm);
        return -1;
    }
    for (int i = 0; i < t->nprocs; i++) {
        int kind = t->procs[i].p->kind;
        if (kind != SCN_WRITER && kind != SCN_APP)
            continue;
        char logp[PATH_MAX];
        size_t len = 0;
        path_of(t, logp, sizeof logp, t->procs[i].p->name, ".log");
        char *text = slurp(logp, &len);
        if (kind == SCN_APP && !text)
            continue; /* an app that keeps no log in the writer's format */
        if (scn_wlog_parse(text ? text : "", text ? len : 0, &w[k]) == 0)
            nm[k++] = t->procs[i].p->name;
        lv_free(text);
    }
    *out = w;
    *names = nm;
    *n = k;
    return 0;
}

static void free_wlogs(scn_wlog *w, const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        scn_wlog_free(&w[i]);
    lv_free(w);
    lv_free(names);
}

/* Lists the regular files under dir (recursively) into names (relative; lv_free each). */
static void list_files(const char *dir, const char *rel, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX], r[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            list_files(p, r, names, n);
            continue;
        }
        char **g = lv_realloc(*names, (*n + 1) * sizeof *g);
        if (!g)
            break;
        *names = g;
        size_t len = strlen(r);
        g[*n] = lv_malloc(len + 1);
        if (g[*n])
            memcpy(g[(*n)++], r, len + 1);
    }
    closedir(d);
}

static double opt_dur(const scn_step *st, const char *key, double def)
{
    size_t k = strlen(key);
    double d;
    for (int i = 2; i < st->n; i++)
        if (strncmp(st->w[i], key, k) == 0 && st->w[i][k] == '=' &&
            scn_parse_dur(st->w[i] + k + 1, &d) == 0)
            return d;
    return def;
}

static long long opt_size(const scn_step *st, const char *key, long long def)
{
    size_t k = strlen(key);
    long long z;
    for (int i = 2; i < st->n; i++)
        if (strncmp(st->w[i], key, k) == 0 && st->w[i][k] == '=' &&
            scn_parse_size(st->w[i] + k + 1, &z) == 0)
            return z;
    return def;
}

static int check_answers(trial *t, const scn_step *st, char *msg, size_t cap)
{
    char logp[PATH_MAX];
    size_t len = 0;
    path_of(t, logp, sizeof logp, st->w[2], ".log");
    char *text = slurp(logp, &len);
    scn_rlog rl = {0};
    uint64_t *tx = NULL;
    scn_ref *ref = NULL;
    size_t nref = 0;
    int ok = 0;
    if (!text || scn_rlog_parse(text, len, &rl) != 0) {
        snprintf(msg, cap, "no log from reader %s", st->w[2]);
        goto done;
    }
    long ntx = scn_read_txids(&rl, &tx);
    if (ntx <= 0) {
        snprintf(msg, cap, "reader %s logged no read", st->w[2]);
        goto done;
    }
    /* the oldest, the newest, and others drawn from the trial's stream: up to max= restores */
    size_t maxr = (size_t)opt_size(st, "max", 6);
    if (maxr < 2)
        maxr = 2;
    ref = lv_calloc(maxr, sizeof *ref);
    if (!ref) {
        snprintf(msg, cap, "out of memory");
        goto done;
    }
    uint64_t pick[64];
    size_t np = 0;
    size_t first = tx[0] == 0 && ntx > 1; /* TXID 0 (an empty replica) has nothing to restore */
    pick[np++] = tx[first];
    if ((size_t)ntx > first + 1)
        pick[np++] = tx[ntx - 1];
    for (size_t tries = 0; np < maxr && np < 64 && np < (size_t)ntx && tries < 200; tries++) {
        uint64_t c = tx[first + scn_mix(&t->rng) % (uint64_t)(ntx - (long)first)];
        size_t j;
        for (j = 0; j < np && pick[j] != c; j++)
            ;
        if (j == np)
            pick[np++] = c;
    }
    for (size_t i = 0; i < np; i++) {
        char db[PATH_MAX], name[40];
        scn_rows rows;
        int64_t *ids = NULL;
        snprintf(name, sizeof name, "at-%016" PRIx64, pick[i]);
        path_of(t, db, sizeof db, name, ".db");
        if (restore_to(t, db, pick[i], msg, cap) != 0 || read_rows(db, &rows, &ids, msg, cap) != 0)
            goto done;
        ref[nref].txid = pick[i];
        scn_answer_of(&rows, ref[nref].answer);
        nref++;
        lv_free(ids);
    }
    ok = scn_check_answers(&rl, ref, nref, msg, cap);
done:
    lv_free(text);
    lv_free(tx);
    lv_free(ref);
    scn_rlog_free(&rl);
    return ok;
}

/* durable [commits]: every acknowledged (or every logged) commit is in the replica. */
static int check_durable(trial *t, const scn_step *st, char *msg, size_t cap)
{
    scn_wlog *w = NULL;
    const char **names = NULL;
    size_t nw = 0;
    int ok = 0;
    /*
     * What was acknowledged is read from the logs before the replica is restored (a writer
     * may still be running: a sync acknowledged after the restore must not count), so a
     * restore kept from an earlier check is used only when no workload runs.
     */
    if (writer_logs(t, &w, &names, &nw) != 0)
        return snprintf(msg, cap, "out of memory"), 0;
    if (any_running(t))
        t->restored_ok = 0;
    if (restored(t, msg, cap) == 0)
        ok = scn_check_durable(w, nw, &t->rows, st->n > 2, msg, cap);
    free_wlogs(w, names, nw);
    return ok;
}

/* prefix: the replica is the state after one committed transaction. */
static int check_prefix(trial *t, const scn_step *st, char *msg, size_t cap)
{
    (void)st;
    scn_wlog *w = NULL;
    const char **names = NULL;
    size_t nw = 0;
    int ok = 0;
    /* the other way round: the commits logged are read after the rows */
    if (restored(t, msg, cap) != 0)
        return 0;
    if (writer_logs(t, &w, &names, &nw) != 0)
        return snprintf(msg, cap, "out of memory"), 0;
    ok = scn_check_prefix(w, nw, &t->rows, msg, cap);
    free_wlogs(w, names, nw);
    return ok;
}

/* integrity: PRAGMA integrity_check of the restored database. */
static int check_integrity(trial *t, const scn_step *st, char *msg, size_t cap)
{
    (void)st;
    int ok = 0;
    if (restored(t, msg, cap) != 0)
        return 0;
    char db[PATH_MAX];
    path_of(t, db, sizeof db, "restored", ".db");
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        ok = r && strcmp(r, "ok") == 0;
        if (ok)
            snprintf(msg, cap, "PRAGMA integrity_check: ok (%zu rows)", t->rows.n);
        else
            snprintf(msg, cap, "PRAGMA integrity_check: %s", r ? r : "(null)");
    } else
        snprintf(msg, cap, "integrity_check on %s: %s", db, h ? sqlite3_errmsg(h) : "?");
    sqlite3_finalize(q);
    sqlite3_close(h);
    return ok;
}

/* chain: ltxctl verify, then level 0 one file per TXID. */
static int check_chain(trial *t, const scn_step *st, char *msg, size_t cap)
{
    (void)st;
    int ok = 0;
    char bin[PATH_MAX], url[256], out[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/ltxctl", t->env->build_dir);
    replica_url(t, url, sizeof url);
    path_of(t, out, sizeof out, "verify", ".out");
    char *v[] = {bin, "verify", "--timeout", "15s", url, NULL};
    int rc = run_cmd(t, v, out, 120);
    if (rc != 0) {
        size_t len;
        char *text = slurp(out, &len);
        const char *bad = text ? strstr(text, "ltxctl verify:") : NULL;
        char line[300] = "";
        if (bad)
            snprintf(line, sizeof line, "%.*s", (int)strcspn(bad, "\n"), bad);
        snprintf(msg, cap, "ltxctl verify failed (%d): %s", rc, line[0] ? line : "see verify.out");
        lv_free(text);
        return 0;
    }
    path_of(t, out, sizeof out, "ls", ".json");
    char *l[] = {bin, "ls", url, "--level", "0", "--json", "--timeout", "15s", NULL};
    if (run_cmd(t, l, out, 60) != 0)
        return snprintf(msg, cap, "ltxctl ls --level 0 failed: see ls.json"), 0;
    size_t len;
    char *text = slurp(out, &len);
    scn_range *r = NULL;
    size_t n = 0;
    if (text && scn_level0_parse(text, &r, &n, msg, cap) == 0) {
        ok = scn_check_level0(r, n, msg, cap);
        if (ok) {
            char l0[SCN_MSGLEN];
            snprintf(l0, sizeof l0, "%s", msg);
            snprintf(msg, cap, "ltxctl verify ok; %s", l0);
        }
    }
    lv_free(r);
    lv_free(text);
    return ok;
}

/* single-writer [W...]: over the server's request log and the writers' refusals. */
static int check_single_writer(trial *t, const scn_step *st, char *msg, size_t cap)
{
    int ok = 0;
    rproc *srv = replica_server(t);
    char logp[PATH_MAX];
    size_t len = 0;
    path_of(t, logp, sizeof logp, srv ? srv->p->name : "?", ".requests.jsonl");
    char *text = slurp(logp, &len);
    int64_t refused[16] = {0};
    const char *rn[16];
    size_t nr = 0;
    for (int i = 2; i < st->n && nr < 16; i++) {
        rproc *r = rp(t, st->w[i]);
        rn[nr] = st->w[i];
        refused[nr++] = count_of(t, r, "refused");
    }
    ok = scn_check_single_writer(text ? text : "", text ? len : 0, refused, rn, nr, msg, cap);
    lv_free(text);
    return ok;
}

/* monotonic R: the reader's TXIDs never go backwards. */
static int check_monotonic(trial *t, const scn_step *st, char *msg, size_t cap)
{
    int ok = 0;
    char logp[PATH_MAX];
    size_t len = 0;
    path_of(t, logp, sizeof logp, st->w[2], ".log");
    char *text = slurp(logp, &len);
    scn_rlog rl;
    if (!text || scn_rlog_parse(text, len, &rl) != 0) {
        lv_free(text);
        return snprintf(msg, cap, "no log from reader %s", st->w[2]), 0;
    }
    ok = scn_check_monotonic(&rl, msg, cap);
    scn_rlog_free(&rl);
    lv_free(text);
    return ok;
}

/* catch-up W [within=DUR]: restores until the replica holds W's last logged commit. */
static int check_catch_up(trial *t, const scn_step *st, char *msg, size_t cap)
{
    scn_wlog *w = NULL;
    const char **names = NULL;
    size_t nw = 0;
    rproc *r = rp(t, st->w[2]);
    int64_t want = 0;
    if (writer_logs(t, &w, &names, &nw) != 0)
        return snprintf(msg, cap, "out of memory"), 0;
    for (size_t i = 0; i < nw; i++)
        if (strcmp(names[i], r->p->name) == 0)
            want = w[i].last_commit;
    free_wlogs(w, names, nw);
    double bound = opt_dur(st, "within", 30), start = now_s(), el = 0;
    int64_t have = 0;
    for (;;) {
        t->restored_ok = 0;
        if (restored(t, msg, cap) == 0)
            have = t->rows.n ? t->rows.ids[t->rows.n - 1] : 0;
        el = now_s() - start;
        if (have >= want || el > bound)
            break;
        idle(t, 0.3);
    }
    return scn_check_catchup(want, have, el, bound, msg, cap);
}

/* no-leftovers NAME...: nothing left in the workloads' folders. */
static int check_no_leftovers(trial *t, const scn_step *st, char *msg, size_t cap)
{
    int ok = 0;
    char **found = NULL;
    size_t n = 0;
    for (int i = 2; i < st->n; i++) {
        rproc *r = rp(t, st->w[i]);
        reap(t);
        if (r->running)
            return snprintf(msg, cap, "%s is still running: stop it first", r->p->name), 0;
        char wdir[PATH_MAX];
        path_of(t, wdir, sizeof wdir, r->p->name, "");
        size_t before = n;
        list_files(wdir, "", &found, &n);
        for (size_t j = before; j < n; j++) { /* name them NAME/FILE */
            char *q = lv_malloc(strlen(found[j]) + strlen(r->p->name) + 2);
            if (q) {
                sprintf(q, "%s/%s", r->p->name, found[j]);
                lv_free(found[j]);
                found[j] = q;
            }
        }
    }
    ok = scn_check_leftovers((const char *const *)found, n, msg, cap);
    for (size_t j = 0; j < n; j++)
        lv_free(found[j]);
    lv_free(found);
    return ok;
}

/* exit NAME [STATUS] [timeout=DUR]: NAME exits with STATUS. */
static int check_exit(trial *t, const scn_step *st, char *msg, size_t cap)
{
    int ok = 0;
    rproc *r = rp(t, st->w[2]);
    int want = 0;
    for (int i = 3; i < st->n; i++)
        if (!strchr(st->w[i], '='))
            want = atoi(st->w[i]);
    double bound = opt_dur(st, "timeout", 60), end = now_s() + bound;
    reap(t);
    while (r->running && now_s() < end)
        idle(t, 0.02);
    char out[PATH_MAX], last[256] = "", how[64];
    path_of(t, out, sizeof out, r->p->name, ".out");
    size_t len;
    char *text = slurp(out, &len);
    if (text) { /* the last line it printed says what it found */
        while (len > 0 && text[len - 1] == '\n')
            text[--len] = 0;
        char *nl = strrchr(text, '\n');
        snprintf(last, sizeof last, "%s", nl ? nl + 1 : text);
        lv_free(text);
    }
    if (r->running)
        return snprintf(msg, cap, "%s still running after %.0f s", r->p->name, bound), 0;
    if (!r->exited)
        return snprintf(msg, cap, "%s was never started", r->p->name), 0;
    ok = WIFEXITED(r->status) && WEXITSTATUS(r->status) == want;
    snprintf(msg, cap, "%s %s%s%s", r->p->name, how_ended(r, how, sizeof how), last[0] ? ": " : "",
             last);
    return ok;
}

/* Under AddressSanitizer (this runner is built like the workloads it runs) a process's RSS holds
 * ASan's shadow memory and its quarantine of freed blocks (256 MiB by default): the RSS bounds of
 * the scenario files are for a normal build, so they are scaled for a sanitizer build. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define RSS_BOUND_SCALE 4
#else
#define RSS_BOUND_SCALE 1
#endif

/* bounded NAME [fds=N] [rss=SIZE]: the sampled peaks within the bounds. */
static int check_bounded(trial *t, const scn_step *st, char *msg, size_t cap)
{
    rproc *r = rp(t, st->w[2]);
    long fds = (long)opt_size(st, "fds", 0);
    long rss = (long)(opt_size(st, "rss", 0) / 1024) * RSS_BOUND_SCALE;
    return scn_check_bounded(r->max_fds, r->max_rss_kb, fds, rss, r->samples, msg, cap);
}

typedef int (*check_fn)(trial *t, const scn_step *st, char *msg, size_t cap);

static const struct {
    const char *name;
    check_fn fn;
} checks[] = {
    {"durable", check_durable},
    {"prefix", check_prefix},
    {"integrity", check_integrity},
    {"chain", check_chain},
    {"single-writer", check_single_writer},
    {"monotonic", check_monotonic},
    {"catch-up", check_catch_up},
    {"no-leftovers", check_no_leftovers},
    {"exit", check_exit},
    {"bounded", check_bounded},
    {"answers", check_answers},
};

static int run_check(trial *t, const scn_step *st, char *msg, size_t cap)
{
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (strcmp(checks[i].name, st->w[1]) == 0)
            return checks[i].fn(t, st, msg, cap);
    snprintf(msg, cap, "unknown check %s", st->w[1]);
    return 0;
}

/* ---- steps ---- */

static int do_step(trial *t, const scn_step *st, char *err, size_t cap)
{
    const char *v = st->w[0];
    double lo, hi;
    if (strcmp(v, "check") != 0)
        t->restored_ok = 0;
    if (strcmp(v, "start") == 0) {
        for (int i = 1; i < st->n; i++)
            if (start(t, rp(t, st->w[i]), err, cap) != 0)
                return -1;
        return 0;
    }
    if (strcmp(v, "restart") == 0) {
        for (int i = 1; i < st->n; i++) {
            rproc *r = rp(t, st->w[i]);
            reap(t);
            if (r->running)
                kill9(t, r);
            if (start(t, r, err, cap) != 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(v, "stop") == 0) {
        for (int i = 1; i < st->n; i++)
            if (stop(t, rp(t, st->w[i]), err, cap) != 0)
                return -1;
        return 0;
    }
    if (strcmp(v, "kill") == 0) {
        rproc *r = rp(t, st->w[1]);
        if (st->n == 4) {
            scn_parse_window(st->w[3], &lo, &hi);
            double d = draw(t, lo, hi);
            note(t, "kill %s in %.3f s", r->p->name, d);
            idle(t, d);
        }
        reap(t);
        if (!r->running) {
            char how[64];
            snprintf(err, cap, "kill %s: it is not running (it %s)", r->p->name,
                     r->exited ? how_ended(r, how, sizeof how) : "was never started");
            return -1;
        }
        kill9(t, r);
        return 0;
    }
    if (strcmp(v, "sleep") == 0) {
        scn_parse_window(st->w[1], &lo, &hi);
        idle(t, draw(t, lo, hi));
        return 0;
    }
    if (strcmp(v, "wait") == 0)
        return do_wait(t, st, err, cap);
    if (strcmp(v, "fault") == 0) {
        rproc *r = rp(t, st->w[1]);
        reap(t);
        if (!r->running) {
            snprintf(err, cap, "fault %s: the server is not running", r->p->name);
            return -1;
        }
        char bin[PATH_MAX], out[PATH_MAX];
        snprintf(bin, sizeof bin, "%s/fakes3", t->env->build_dir);
        path_of(t, out, sizeof out, "ctl", ".out");
        char *add[] = {
            bin,      "ctl", "--endpoint", r->url, "--access-key", KEY, "--secret-key", SECRET,
            "faults", "add", st->rule,     NULL};
        char *clr[] = {bin,    "ctl",    "--endpoint", r->url, "--access-key", KEY, "--secret-key",
                       SECRET, "faults", "clear",      NULL};
        int rc = run_cmd(t, st->rule ? add : clr, out, 20);
        char line[256];
        first_line(out, line, sizeof line);
        note(t, "fault %s %s: %s", r->p->name, st->rule ? st->rule : "clear", line);
        if (rc != 0) {
            snprintf(err, cap, "fakes3 ctl faults %s failed (%d): %s", st->rule ? "add" : "clear",
                     rc, line);
            return -1;
        }
        return 0;
    }
    if (strcmp(v, "check") == 0) {
        char msg[SCN_MSGLEN], name[48];
        double t1 = now_s();
        int ok = run_check(t, st, msg, sizeof msg);
        if (strcmp(st->w[1], "durable") == 0 || strcmp(st->w[1], "prefix") == 0 ||
            strcmp(st->w[1], "chain") == 0 || strcmp(st->w[1], "integrity") == 0 || st->n < 3 ||
            strcmp(st->w[1], "single-writer") == 0 || strcmp(st->w[1], "no-leftovers") == 0)
            snprintf(name, sizeof name, "%s", st->w[1]);
        else
            snprintf(name, sizeof name, "%s(%s)", st->w[1], st->w[2]);
        record(t, name, ok, now_s() - t1, msg);
        return 0;
    }
    snprintf(err, cap, "unknown step %s", v);
    return -1;
}

static int rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                rm_rf(p);
            }
            closedir(d);
        }
        return rmdir(path);
    }
    return unlink(path);
}

/* Ends whatever still runs: workloads first (SIGTERM, 10 s, SIGKILL), then servers. */
static void teardown(trial *t)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < t->nprocs; i++) {
            rproc *r = &t->procs[i];
            if ((r->p->kind == SCN_SERVER) != pass)
                continue;
            reap(t);
            if (!r->running)
                continue;
            r->killed = 1;
            kill(r->pid, SIGTERM);
            double end = now_s() + 10;
            while (r->running && now_s() < end)
                idle(t, 0.02);
            if (r->running)
                kill9(t, r);
            note(t, "teardown: %s ended", r->p->name);
        }
    }
}

int scn_run_trial(const scn_env *env, const scn_scenario *s, int num, uint64_t seed,
                  scn_results *res, char *dir, size_t cap)
{
    trial t = {.env = env, .s = s, .num = num, .seed = seed, .rng = seed, .res = res};
    struct sigaction sa = {0};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    t.t0 = now_s();
    snprintf(t.dir, sizeof t.dir, "%s/%s-%d-seed%" PRIu64, env->work_dir, s->name, num, seed);
    snprintf(dir, cap, "%s", t.dir);
    char *real = realpath(s->path, NULL);
    snprintf(t.scndir, sizeof t.scndir, "%s", real ? real : s->path);
    free(real);
    char *slash = strrchr(t.scndir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(t.scndir, sizeof t.scndir, ".");
    rm_rf(t.dir);
    if (mkdir(t.dir, 0755) != 0) {
        char msg[SCN_MSGLEN];
        snprintf(msg, sizeof msg, "cannot create %s: %s", t.dir, strerror(errno));
        record(&t, "setup", 0, 0, msg);
        return -1;
    }
    char p[PATH_MAX];
    path_of(&t, p, sizeof p, "steps", ".log");
    t.steps = fopen(p, "w");
    note(&t, "scenario %s (%s), trial %d, seed %" PRIu64, s->name, s->path, num, seed);
    t.procs = lv_calloc((size_t)s->nprocs, sizeof *t.procs);
    if (!t.procs) {
        record(&t, "setup", 0, 0, "out of memory");
        return -1;
    }
    t.nprocs = s->nprocs;
    for (int i = 0; i < s->nprocs; i++) {
        t.procs[i].p = &s->procs[i];
        t.procs[i].seed = scn_mix(&t.rng) % 1000000000000ull;
    }
    for (int i = 0; i < s->nsteps; i++) {
        const scn_step *st = &s->steps[i];
        char err[SCN_MSGLEN];
        char line[256] = "";
        size_t o = 0;
        for (int k = 0; k < st->n && o + 2 < sizeof line; k++)
            o += (size_t)snprintf(line + o, sizeof line - o, "%s%s", k ? " " : "", st->w[k]);
        if (strcmp(st->w[0], "check") != 0)
            note(&t, "line %d: %s", st->line, line);
        if (now_s() - t.t0 > s->timeout_s) {
            char msg[SCN_MSGLEN];
            snprintf(msg, sizeof msg, "the trial ran past its timeout (%.0f s) before line %d",
                     s->timeout_s, st->line);
            record(&t, "run", 0, now_s() - t.t0, msg);
            break;
        }
        if (do_step(&t, st, err, sizeof err) != 0) {
            char msg[SCN_MSGLEN + 300];
            snprintf(msg, sizeof msg, "line %d (%s): %s", st->line, line, err);
            record(&t, "run", 0, now_s() - t.t0, msg);
            break;
        }
    }
    teardown(&t);
    note(&t, "done: %d failure(s)", t.failures);
    if (t.steps)
        fclose(t.steps);
    lv_free(t.procs);
    lv_free(t.row_ids);
    if (t.failures == 0 && !env->keep)
        rm_rf(t.dir);
    return t.failures;
}

void scn_results_free(scn_results *r)
{
    lv_free(r->v);
    memset(r, 0, sizeof *r);
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&')
            fputs("&amp;", f);
        else if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c < 0x20 && c != '\t' && c != '\n')
            fputc(' ', f);
        else
            fputc(c, f);
    }
}

int scn_write_junit(const scn_results *res, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t fails = 0;
    double total = 0;
    for (size_t i = 0; i < res->n; i++) {
        fails += !res->v[i].ok;
        total += res->v[i].secs;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"scenario\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n",
            res->n, fails, total);
    /* one testsuite per scenario and trial, in the order they ran */
    for (size_t i = 0; i < res->n;) {
        size_t j = i, nf = 0;
        double secs = 0;
        while (j < res->n && strcmp(res->v[j].scenario, res->v[i].scenario) == 0 &&
               res->v[j].trial == res->v[i].trial) {
            nf += !res->v[j].ok;
            secs += res->v[j].secs;
            j++;
        }
        fprintf(f, "  <testsuite name=\"");
        xml_text(f, res->v[i].scenario);
        fprintf(f, "#%d\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", res->v[i].trial, j - i,
                nf, secs);
        fprintf(f, "    <properties><property name=\"seed\" value=\"%" PRIu64 "\"/></properties>\n",
                res->v[i].seed);
        for (size_t k = i; k < j; k++) {
            const scn_result *x = &res->v[k];
            fprintf(f, "    <testcase classname=\"scenario.");
            xml_text(f, x->scenario);
            fprintf(f, "\" name=\"");
            xml_text(f, x->check);
            fprintf(f, "\" time=\"%.3f\">", x->secs);
            if (!x->ok) {
                fprintf(f, "\n      <failure message=\"");
                xml_text(f, x->msg);
                fprintf(f, "\" type=\"%s\">seed %" PRIu64 ": ", x->check, x->seed);
                xml_text(f, x->msg);
                fprintf(f, "</failure>\n    ");
            } else {
                fprintf(f, "<system-out>");
                xml_text(f, x->msg);
                fprintf(f, "</system-out>");
            }
            fprintf(f, "</testcase>\n");
        }
        fprintf(f, "  </testsuite>\n");
        i = j;
    }
    fprintf(f, "</testsuites>\n");
    return fclose(f) == 0 ? 0 : -1;
}
