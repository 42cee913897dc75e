/*
 * scn_parse: reads a scenario file into a scn_scenario and checks every line of it (names,
 * steps, conditions, durations, fault rules) before anything runs. Format: docs/scenarios.md.
 * Threads: none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "chaos.h"
#include "error.h"
#include "scn.h"

static char *dupn(const char *s, size_t n)
{
    char *d = lv_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static char *dup(const char *s)
{
    return dupn(s, strlen(s));
}

static void free_words(char **w, int n)
{
    for (int i = 0; i < n; i++)
        lv_free(w[i]);
    lv_free(w);
}

/*
 * Splits line into words (quotes as a shell: '...' literal, "..." with \" and \\), stopping at a
 * word that starts with '#'. *starts gets each word's offset in line. -1: unterminated quote or
 * out of memory.
 */
static int split(const char *line, char ***out, int *n, int **starts)
{
    char **w = NULL;
    int *st = NULL, k = 0;
    size_t i = 0, len = strlen(line);
    char *buf = lv_malloc(len + 1);
    if (!buf)
        return -1;
    for (;;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i >= len || line[i] == '#')
            break;
        size_t b = 0, start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
            char c = line[i];
            if (c == '\'' || c == '"') {
                i++;
                while (i < len && line[i] != c) {
                    if (c == '"' && line[i] == '\\' && i + 1 < len)
                        i++;
                    buf[b++] = line[i++];
                }
                if (i >= len)
                    goto fail;
                i++;
            } else
                buf[b++] = line[i++];
        }
        char **w2 = lv_realloc(w, (size_t)(k + 1) * sizeof *w2);
        int *st2 = w2 ? lv_realloc(st, (size_t)(k + 1) * sizeof *st2) : NULL;
        if (w2)
            w = w2;
        if (!st2)
            goto fail;
        st = st2;
        if (!(w[k] = dupn(buf, b)))
            goto fail;
        st[k++] = (int)start;
    }
    lv_free(buf);
    *out = w;
    *n = k;
    *starts = st;
    return 0;
fail:
    lv_free(buf);
    free_words(w, k);
    lv_free(st);
    return -1;
}

int scn_parse_dur(const char *s, double *seconds)
{
    int64_t us;
    char err[LV_ERRLEN];
    if (chaos_parse_duration(s, &us, err) != LV_OK)
        return -1;
    *seconds = (double)us / 1e6;
    return 0;
}

int scn_parse_window(const char *s, double *lo, double *hi)
{
    const char *dots = strstr(s, "..");
    if (!dots) {
        if (scn_parse_dur(s, lo) != 0)
            return -1;
        *hi = *lo;
        return 0;
    }
    char a[64];
    size_t n = (size_t)(dots - s);
    if (n >= sizeof a)
        return -1;
    memcpy(a, s, n);
    a[n] = 0;
    if (scn_parse_dur(a, lo) != 0 || scn_parse_dur(dots + 2, hi) != 0 || *hi < *lo)
        return -1;
    return 0;
}

int scn_parse_size(const char *s, long long *bytes)
{
    uint64_t b;
    char err[LV_ERRLEN];
    if (chaos_parse_rate(s, &b, err) != LV_OK)
        return -1;
    *bytes = (long long)b;
    return 0;
}

uint64_t scn_mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t scn_trial_seed(uint64_t s, int k)
{
    if (k <= 1)
        return s;
    uint64_t st = s ^ ((uint64_t)k * 0xd1b54a32d192ed03ull);
    return scn_mix(&st) % 1000000000000ull; /* short enough to type back */
}

const scn_proc *scn_find_proc(const scn_scenario *s, const char *name)
{
    for (int i = 0; i < s->nprocs; i++)
        if (strcmp(s->procs[i].name, name) == 0)
            return &s->procs[i];
    return NULL;
}

void scn_scenario_free(scn_scenario *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nprocs; i++) {
        scn_proc *p = &s->procs[i];
        lv_free(p->name);
        lv_free(p->server);
        free_words(p->args, p->nargs);
        free_words(p->params, p->nparams);
    }
    for (int i = 0; i < s->nsteps; i++) {
        free_words(s->steps[i].w, s->steps[i].n);
        lv_free(s->steps[i].rule);
    }
    lv_free(s->procs);
    lv_free(s->steps);
    lv_free(s->path);
    lv_free(s->name);
    lv_free(s->description);
    lv_free(s);
}

typedef struct pctx {
    const char *path;
    int line;
    char *err;
    size_t cap;
    scn_scenario *s;
} pctx;

static int perr(pctx *c, const char *fmt, ...)
{
    int k = snprintf(c->err, c->cap, "%s:%d: ", c->path, c->line);
    if (k >= 0 && (size_t)k < c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int valid_name(const char *n)
{
    if (!*n || strlen(n) > 24)
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int declare(pctx *c, char **w, int n)
{
    int kind = strcmp(w[0], "server") == 0   ? SCN_SERVER
               : strcmp(w[0], "writer") == 0 ? SCN_WRITER
               : strcmp(w[0], "reader") == 0 ? SCN_READER
                                             : SCN_APP;
    if (c->s->nsteps > 0)
        return perr(c, "declare processes before the first step");
    if (n < 2 || !valid_name(w[1]))
        return perr(c, "%s needs a NAME (letters, digits, - and _; at most 24)", w[0]);
    if (scn_find_proc(c->s, w[1]))
        return perr(c, "%s is declared twice", w[1]);
    if (kind != SCN_SERVER) {
        const scn_proc *srv = n >= 3 ? scn_find_proc(c->s, w[2]) : NULL;
        if (!srv || srv->kind != SCN_SERVER)
            return perr(c, "%s %s needs the name of a server declared before it", w[0], w[1]);
    }
    scn_proc *ps = lv_realloc(c->s->procs, (size_t)(c->s->nprocs + 1) * sizeof *ps);
    if (!ps)
        return perr(c, "out of memory");
    c->s->procs = ps;
    scn_proc *p = &ps[c->s->nprocs++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->line = c->line;
    p->name = dup(w[1]);
    int i = 2;
    if (kind != SCN_SERVER) {
        p->server = dup(w[2]);
        for (i = 3; i < n && strcmp(w[i], "--") != 0; i++) {
            if (!strchr(w[i], '=') || w[i][0] == '=')
                return perr(c,
                            "%s %s: URI parameter \"%s\" is not NAME=VALUE (driver flags go "
                            "after --)",
                            w[0], w[1], w[i]);
            if (strncmp(w[i], "replica=", 8) == 0 || strncmp(w[i], "vfs=", 4) == 0 ||
                (kind != SCN_APP && strncmp(w[i], "write=", 6) == 0))
                return perr(c, "%s: the runner sets %.*s itself", w[1],
                            (int)(strchr(w[i], '=') - w[i]), w[i]);
            char **pp = lv_realloc(p->params, (size_t)(p->nparams + 1) * sizeof *pp);
            if (!pp)
                return perr(c, "out of memory");
            p->params = pp;
            pp[p->nparams++] = dup(w[i]);
        }
        if (i < n)
            i++; /* the "--" */
    }
    for (; i < n; i++) {
        if (kind == SCN_SERVER &&
            (strcmp(w[i], "--listen") == 0 || strcmp(w[i], "--log") == 0 ||
             strcmp(w[i], "--seed") == 0 || strcmp(w[i], "--access-key") == 0 ||
             strcmp(w[i], "--secret-key") == 0 || strcmp(w[i], "--anonymous") == 0))
            return perr(c, "server %s: the runner sets %s itself", p->name, w[i]);
        if (kind == SCN_SERVER && strcmp(w[i], "--fault") == 0 && i + 1 < n) {
            chaos_engine *e = chaos_engine_new(1, NULL, NULL);
            char err[LV_ERRLEN];
            lv_err rc = e ? chaos_engine_add(e, w[i + 1], NULL, err) : LV_ENOMEM;
            chaos_engine_free(e);
            if (rc != LV_OK)
                return perr(c, "server %s: --fault: %s", p->name, e ? err : "out of memory");
        }
        char **a = lv_realloc(p->args, (size_t)(p->nargs + 1) * sizeof *a);
        if (!a)
            return perr(c, "out of memory");
        p->args = a;
        a[p->nargs++] = dup(w[i]);
    }
    if (kind == SCN_APP && p->nargs == 0)
        return perr(c, "app %s needs a command after --", p->name);
    return 0;
}

/* The named process, of an allowed kind (mask of 1 << SCN_*). */
static const scn_proc *need(pctx *c, const char *verb, const char *name, int mask)
{
    const scn_proc *p = scn_find_proc(c->s, name);
    if (!p) {
        perr(c, "%s: no process called \"%s\" is declared", verb, name);
        return NULL;
    }
    if (!(mask & (1 << p->kind))) {
        perr(c, "%s: %s is a%s", verb, name,
             p->kind == SCN_SERVER   ? " server"
             : p->kind == SCN_WRITER ? " writer"
             : p->kind == SCN_READER ? " reader"
                                     : "n app");
        return NULL;
    }
    return p;
}

#define ANY  ((1 << SCN_SERVER) | (1 << SCN_WRITER) | (1 << SCN_READER) | (1 << SCN_APP))
#define WORK ((1 << SCN_WRITER) | (1 << SCN_READER) | (1 << SCN_APP))

static const char *const wait_conds[] = {"commits", "synced",   "syncing", "syncfails", "refused",
                                         "reads",   "hydrated", "exit",    "running",   NULL};
static const char *const check_names[] = {"durable",       "prefix",    "chain",   "integrity",
                                          "single-writer", "monotonic", "answers", "catch-up",
                                          "no-leftovers",  "bounded",   "exit",    NULL};

static int in_list(const char *const *l, const char *w)
{
    for (; *l; l++)
        if (strcmp(*l, w) == 0)
            return 1;
    return 0;
}

/* An optional "timeout=DUR" / "within=DUR" / "fds=N" / "rss=SIZE" / "max=N" word. */
static int opt_word(pctx *c, const char *w)
{
    double d;
    long long z;
    const char *eq = strchr(w, '=');
    if (!eq)
        return perr(c, "unexpected word \"%s\"", w);
    if ((strncmp(w, "timeout=", 8) == 0 || strncmp(w, "within=", 7) == 0) &&
        scn_parse_dur(eq + 1, &d) == 0)
        return 0;
    if ((strncmp(w, "fds=", 4) == 0 || strncmp(w, "rss=", 4) == 0 || strncmp(w, "max=", 4) == 0) &&
        scn_parse_size(eq + 1, &z) == 0)
        return 0;
    return perr(c, "bad option \"%s\"", w);
}

static int step(pctx *c, char **w, int n, const char *raw, const int *starts)
{
    const char *v = w[0];
    double lo, hi;
    if (strcmp(v, "start") == 0 || strcmp(v, "restart") == 0 || strcmp(v, "stop") == 0) {
        if (n < 2)
            return perr(c, "%s needs NAME...", v);
        for (int i = 1; i < n; i++)
            if (!need(c, v, w[i], ANY))
                return -1;
    } else if (strcmp(v, "kill") == 0) {
        if (n < 2 || !need(c, v, w[1], ANY))
            return n < 2 ? perr(c, "kill needs NAME") : -1;
        if (n == 4 && strcmp(w[2], "within") == 0) {
            if (scn_parse_window(w[3], &lo, &hi) != 0)
                return perr(c, "kill %s within: bad window \"%s\" (MIN..MAX, e.g. 0.2s..2s)", w[1],
                            w[3]);
        } else if (n != 2)
            return perr(c, "kill NAME [within MIN..MAX]");
    } else if (strcmp(v, "sleep") == 0) {
        if (n != 2 || scn_parse_window(w[1], &lo, &hi) != 0)
            return perr(c, "sleep DUR or sleep MIN..MAX");
    } else if (strcmp(v, "wait") == 0) {
        if (n < 3 || !need(c, v, w[1], ANY))
            return n < 3 ? perr(c, "wait NAME CONDITION [N] [timeout=DUR]") : -1;
        if (!in_list(wait_conds, w[2]))
            return perr(c,
                        "wait: unknown condition \"%s\" (commits, synced, syncing, syncfails, "
                        "refused, reads, exit, running)",
                        w[2]);
        int i = 3;
        if (i < n && !strchr(w[i], '=')) {
            const char *num = w[i][0] == '+' ? w[i] + 1 : w[i];
            char *end;
            if (strtol(num, &end, 10) < 0 || end == num || *end)
                return perr(c, "wait: bad count \"%s\" (N or +N)", w[i]);
            i++;
        }
        for (; i < n; i++)
            if (opt_word(c, w[i]) != 0)
                return -1;
    } else if (strcmp(v, "fault") == 0) {
        if (n < 3 || !need(c, v, w[1], 1 << SCN_SERVER))
            return n < 3 ? perr(c, "fault SERVER add RULE | fault SERVER clear") : -1;
        if (strcmp(w[2], "clear") == 0 && n == 3)
            return 0;
        if (strcmp(w[2], "add") != 0 || n < 4)
            return perr(c, "fault SERVER add RULE | fault SERVER clear");
        chaos_engine *e = chaos_engine_new(1, NULL, NULL);
        char err[LV_ERRLEN];
        const char *rule = raw + starts[3];
        lv_err rc = e ? chaos_engine_add(e, rule, NULL, err) : LV_ENOMEM;
        chaos_engine_free(e);
        if (rc != LV_OK)
            return perr(c, "fault: %s", e ? err : "out of memory");
        c->s->steps[c->s->nsteps - 1].rule = dup(rule);
    } else if (strcmp(v, "check") == 0) {
        if (n < 2 || !in_list(check_names, w[1]))
            return perr(c,
                        "check: unknown check \"%s\" (durable, prefix, chain, integrity, "
                        "single-writer, monotonic, answers, catch-up, no-leftovers, bounded, exit)",
                        n < 2 ? "" : w[1]);
        const char *k = w[1];
        int i = 2;
        if (strcmp(k, "durable") == 0) {
            if (n > 3 || (n == 3 && strcmp(w[2], "commits") != 0))
                return perr(c, "check durable [commits]");
            return 0;
        }
        if (strcmp(k, "prefix") == 0 || strcmp(k, "chain") == 0 || strcmp(k, "integrity") == 0) {
            if (n != 2)
                return perr(c, "check %s takes no argument", k);
            return 0;
        }
        if (strcmp(k, "single-writer") == 0 || strcmp(k, "no-leftovers") == 0) {
            if (strcmp(k, "no-leftovers") == 0 && n < 3)
                return perr(c, "check no-leftovers WORKLOAD...");
            for (; i < n; i++)
                if (!need(c, k, w[i], strcmp(k, "single-writer") == 0 ? 1 << SCN_WRITER : WORK))
                    return -1;
            return 0;
        }
        if (strcmp(k, "exit") == 0) {
            if (n < 3 || !need(c, k, w[2], WORK))
                return n < 3 ? perr(c, "check exit WORKLOAD [STATUS] [timeout=DUR]") : -1;
            for (i = 3; i < n; i++) {
                char *end;
                if (strchr(w[i], '=') ? opt_word(c, w[i]) != 0
                                      : (strtol(w[i], &end, 10) < 0 || *end || end == w[i]))
                    return perr(c, "check exit WORKLOAD [STATUS] [timeout=DUR]");
            }
            return 0;
        }
        int mask = strcmp(k, "monotonic") == 0 || strcmp(k, "answers") == 0 ? 1 << SCN_READER
                   : strcmp(k, "catch-up") == 0                             ? 1 << SCN_WRITER
                                                                            : WORK;
        if (n < 3 || !need(c, k, w[2], mask))
            return n < 3 ? perr(c, "check %s needs a workload name", k) : -1;
        for (i = 3; i < n; i++)
            if (opt_word(c, w[i]) != 0)
                return -1;
    } else
        return perr(c, "unknown step \"%s\"", v);
    return 0;
}

static int parse_line(pctx *c, const char *raw)
{
    char **w = NULL;
    int n = 0, *starts = NULL, rc = 0;
    const char *b = raw + strspn(raw, " \t");
    if (strncmp(b, "description", 11) == 0 && (b[11] == ' ' || b[11] == '\t')) {
        /* free text: quotes and '#' are just characters */
        b += 11 + strspn(b + 11, " \t");
        lv_free(c->s->description);
        c->s->description = dup(b);
        return 0;
    }
    if (split(raw, &w, &n, &starts) != 0)
        return perr(c, "unterminated quote");
    if (n == 0)
        goto done;
    if (strcmp(w[0], "name") == 0) {
        if (n != 2 || !valid_name(w[1])) {
            rc = perr(c, "name NAME (letters, digits, - and _; at most 24)");
            goto done;
        }
        lv_free(c->s->name);
        c->s->name = dup(w[1]);
    } else if (strcmp(w[0], "timeout") == 0) {
        if (n != 2 || scn_parse_dur(w[1], &c->s->timeout_s) != 0)
            rc = perr(c, "timeout DUR");
    } else if (strcmp(w[0], "server") == 0 || strcmp(w[0], "writer") == 0 ||
               strcmp(w[0], "reader") == 0 || strcmp(w[0], "app") == 0)
        rc = declare(c, w, n);
    else {
        scn_step *st = lv_realloc(c->s->steps, (size_t)(c->s->nsteps + 1) * sizeof *st);
        if (!st) {
            rc = perr(c, "out of memory");
            goto done;
        }
        c->s->steps = st;
        st[c->s->nsteps++] = (scn_step){.line = c->line, .w = w, .n = n};
        rc = step(c, w, n, raw, starts);
        w = NULL; /* the step owns the words now */
        n = 0;
    }
done:
    free_words(w, n);
    lv_free(starts);
    return rc;
}

int scn_parse_text(const char *path, const char *text, scn_scenario **out, char *err, size_t cap)
{
    scn_scenario *s = lv_calloc(1, sizeof *s);
    pctx c = {path, 0, err, cap, s};
    if (!s)
        return perr(&c, "out of memory");
    s->path = dup(path);
    s->timeout_s = 180;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = dupn(p, len);
        c.line++;
        int rc = line ? parse_line(&c, line) : perr(&c, "out of memory");
        lv_free(line);
        if (rc != 0) {
            scn_scenario_free(s);
            return -1;
        }
        p += len + (nl ? 1 : 0);
    }
    if (!s->name) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        size_t n = strlen(b);
        if (n > 4 && strcmp(b + n - 4, ".scn") == 0)
            n -= 4;
        s->name = dupn(b, n);
    }
    if (s->nsteps == 0) {
        snprintf(err, cap, "%s: no steps", path);
        scn_scenario_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int scn_parse_file(const char *path, scn_scenario **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: cannot open", path);
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, capb = 0;
    for (;;) {
        if (n + 4096 + 1 > capb) {
            char *b = lv_realloc(buf, capb = n + 65536);
            if (!b) {
                lv_free(buf);
                fclose(f);
                snprintf(err, cap, "%s: out of memory", path);
                return -1;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = 0;
    int rc = scn_parse_text(path, buf, out, err, cap);
    lv_free(buf);
    return rc;
}
