/*
 * scn_checks: the invariants of the scenario runner as pure functions (see scn_checks.h).
 * Threads: none.
 */
#include "scn_checks.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static int say(int ok, char *msg, size_t cap, const char *fmt, ...)
{
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return ok;
}

/* Calls fn for each complete line of text (a last line without '\n' is torn: skipped). */
static int each_line(const char *text, size_t len, int (*fn)(const char *line, size_t n, void *),
                     void *ctx)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (text + i));
        if (fn(text + i, n, ctx) != 0)
            return -1;
        i += n + 1;
    }
    return 0;
}

/* The first word of line (n bytes) equals w, and *rest points past it and one blank. */
static int word_is(const char *line, size_t n, const char *w, const char **rest)
{
    size_t k = strlen(w);
    if (n < k || memcmp(line, w, k) != 0 || (n > k && line[k] != ' '))
        return 0;
    *rest = line + (n > k ? k + 1 : k);
    return 1;
}

static int parse_i64(const char *s, const char *end, int64_t *out)
{
    int64_t v = 0;
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        s++;
    }
    *out = v;
    return 0;
}

static int parse_hex(const char *s, const char *end, uint64_t *out, const char **stop)
{
    uint64_t v = 0;
    int k = 0;
    for (; s < end && k < 16; s++, k++) {
        int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : -1;
        if (d < 0)
            break;
        v = v << 4 | (uint64_t)d;
    }
    if (k == 0)
        return -1;
    *out = v;
    if (stop)
        *stop = s;
    return 0;
}

/* ---- writer logs ---- */

static int wline(const char *line, size_t n, void *ctx)
{
    scn_wlog *w = ctx;
    const char *end = line + n, *r;
    int64_t id;
    if (word_is(line, n, "commit", &r)) {
        if (parse_i64(r, end, &id) == 0) {
            w->commits++;
            if (id > w->last_commit)
                w->last_commit = id;
        }
    } else if (word_is(line, n, "synced", &r)) {
        uint64_t txid = 0;
        if (parse_i64(r, end, &id) != 0)
            return 0;
        const char *sp = memchr(r, ' ', (size_t)(end - r));
        if (!sp || parse_hex(sp + 1, end, &txid, NULL) != 0)
            return 0;
        scn_synced *s = lv_realloc(w->synced, (w->nsynced + 1) * sizeof *s);
        if (!s)
            return -1;
        w->synced = s;
        s[w->nsynced++] = (scn_synced){id, txid};
        w->syncs++;
        if (id > w->last_synced)
            w->last_synced = id;
    } else if (word_is(line, n, "syncing", &r))
        w->syncings++;
    else if (word_is(line, n, "syncfail", &r))
        w->syncfails++;
    else if (word_is(line, n, "refused", &r))
        w->refusals++;
    else if (word_is(line, n, "open", &r))
        w->opens++;
    else if (word_is(line, n, "closed", &r))
        w->closes++;
    else if (word_is(line, n, "closefail", &r))
        w->closefails++;
    else if (word_is(line, n, "stopped", &r))
        w->stops++;
    return 0;
}

int scn_wlog_parse(const char *text, size_t len, scn_wlog *out)
{
    memset(out, 0, sizeof *out);
    if (each_line(text, len, wline, out) != 0) {
        scn_wlog_free(out);
        return -1;
    }
    return 0;
}

void scn_wlog_free(scn_wlog *w)
{
    lv_free(w->synced);
    memset(w, 0, sizeof *w);
}

/* ---- reader logs ---- */

static int rline(const char *line, size_t n, void *ctx)
{
    scn_rlog *rl = ctx;
    const char *end = line + n, *r;
    scn_read rec = {0};
    if (word_is(line, n, "hydrated", &r)) {
        rl->hydrated++;
        return 0;
    }
    if (word_is(line, n, "open", &r))
        rec.kind = SCN_R_OPEN;
    else if (word_is(line, n, "readfail", &r))
        rec.kind = SCN_R_FAIL;
    else if (word_is(line, n, "read", &r) || word_is(line, n, "travel", &r)) {
        rec.kind = line[0] == 'r' ? SCN_R_READ : SCN_R_TRAVEL;
        const char *stop;
        if (parse_hex(r, end, &rec.txid, &stop) != 0 || stop >= end || *stop != ' ')
            return 0;
        stop++;
        size_t k = 0;
        while (stop < end && *stop != ' ' && k + 1 < sizeof rec.answer)
            rec.answer[k++] = *stop++;
    } else
        return 0;
    scn_read *a = lv_realloc(rl->reads, (rl->n + 1) * sizeof *a);
    if (!a)
        return -1;
    rl->reads = a;
    a[rl->n++] = rec;
    return 0;
}

int scn_rlog_parse(const char *text, size_t len, scn_rlog *out)
{
    memset(out, 0, sizeof *out);
    if (each_line(text, len, rline, out) != 0) {
        scn_rlog_free(out);
        return -1;
    }
    return 0;
}

void scn_rlog_free(scn_rlog *r)
{
    lv_free(r->reads);
    memset(r, 0, sizeof *r);
}

/* ---- rows ---- */

void scn_expected_v(int64_t id, char out[64])
{
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, 64, "v%" PRId64 "-%016" PRIx64, id, z);
}

void scn_answer_of(const scn_rows *rows, char out[64])
{
    int64_t max = 0, sum = 0;
    for (size_t i = 0; i < rows->n; i++) {
        sum += rows->ids[i];
        if (rows->ids[i] > max)
            max = rows->ids[i];
    }
    snprintf(out, 64, "%zu:%" PRId64 ":%" PRId64, rows->n, max, sum);
}

/* Is id among rows (ascending)? */
static int has_row(const scn_rows *rows, int64_t id)
{
    size_t lo = 0, hi = rows->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rows->ids[mid] == id)
            return 1;
        if (rows->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int scn_check_durable(const scn_wlog *w, size_t nw, const scn_rows *rows, int all_commits,
                      char *msg, size_t cap)
{
    int64_t want = 0;
    size_t who = 0;
    for (size_t i = 0; i < nw; i++) {
        int64_t x = all_commits ? (w[i].last_commit > w[i].last_synced ? w[i].last_commit
                                                                       : w[i].last_synced)
                                : w[i].last_synced;
        if (x > want) {
            want = x;
            who = i;
        }
    }
    for (int64_t id = 1; id <= want; id++)
        if (!has_row(rows, id))
            return say(
                0, msg, cap,
                "row %" PRId64 " missing: writer %zu %s rows 1..%" PRId64 " (%zu rows present)", id,
                who + 1, all_commits ? "committed" : "had a sync acknowledged for", want, rows->n);
    if (want == 0)
        return say(0, msg, cap, "no %s to check (%zu rows present)",
                   all_commits ? "logged commit" : "acknowledged sync", rows->n);
    return say(1, msg, cap, "%" PRId64 " %s rows present (%zu in all)", want,
               all_commits ? "committed" : "synced", rows->n);
}

int scn_check_prefix(const scn_wlog *w, size_t nw, const scn_rows *rows, char *msg, size_t cap)
{
    for (size_t i = 0; i < rows->n; i++)
        if (rows->ids[i] != (int64_t)i + 1) {
            if (i > 0 && rows->ids[i] == rows->ids[i - 1])
                return say(0, msg, cap, "row %" PRId64 " appears twice", rows->ids[i]);
            return say(0, msg, cap,
                       "not a prefix: row %zu is id %" PRId64 " (rows %" PRId64 "..%" PRId64
                       ", %zu of them): a mixed state",
                       i + 1, rows->ids[i], rows->n ? rows->ids[0] : 0,
                       rows->n ? rows->ids[rows->n - 1] : 0, rows->n);
        }
    if (rows->bad_v)
        return say(0, msg, cap,
                   "%zu rows hold a value the workload never wrote (first: id %" PRId64 ")",
                   rows->bad_v, rows->first_bad_v);
    int64_t last = 0;
    for (size_t i = 0; i < nw; i++)
        if (w[i].last_commit > last)
            last = w[i].last_commit;
    int64_t m = (int64_t)rows->n;
    if (nw > 0 && m > last + 1)
        return say(0, msg, cap, "rows 1..%" PRId64 ", but the last logged commit is %" PRId64, m,
                   last);
    return say(1, msg, cap,
               "rows are exactly 1..%" PRId64 ", the state after commit %" PRId64
               " (last logged commit %" PRId64 ")",
               m, m, last);
}

/* ---- the replica ---- */

int scn_level0_parse(const char *json, scn_range **out, size_t *n, char *msg, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr), *files;
    scn_range *r = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (!root) {
        say(0, msg, cap, "ltxctl ls: not JSON: %s (line %d)", jerr.text, jerr.line);
        goto done;
    }
    files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        say(0, msg, cap, "ltxctl ls: no \"files\" array");
        goto done;
    }
    size_t k = json_array_size(files);
    r = lv_calloc(k ? k : 1, sizeof *r);
    if (!r) {
        say(0, msg, cap, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        json_t *f = json_array_get(files, i);
        const char *a = json_string_value(json_object_get(f, "min_txid"));
        const char *b = json_string_value(json_object_get(f, "max_txid"));
        if (!a || !b || parse_hex(a, a + strlen(a), &r[i].min, NULL) != 0 ||
            parse_hex(b, b + strlen(b), &r[i].max, NULL) != 0) {
            say(0, msg, cap, "ltxctl ls: file %zu has no min_txid/max_txid", i);
            goto done;
        }
    }
    *out = r;
    *n = k;
    r = NULL;
    rc = 0;
done:
    lv_free(r);
    json_decref(root);
    return rc;
}

static int cmp_range(const void *a, const void *b)
{
    const scn_range *x = a, *y = b;
    if (x->min != y->min)
        return x->min < y->min ? -1 : 1;
    return x->max < y->max ? -1 : x->max > y->max;
}

int scn_check_level0(const scn_range *files, size_t n, char *msg, size_t cap)
{
    if (n == 0)
        return say(0, msg, cap, "level 0 is empty");
    scn_range *s = lv_malloc(n * sizeof *s);
    if (!s)
        return say(0, msg, cap, "out of memory");
    memcpy(s, files, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_range);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (s[i].max < s[i].min)
            ok = say(0, msg, cap, "level 0: file %016" PRIx64 "-%016" PRIx64 " runs backwards",
                     s[i].min, s[i].max);
        else if (i > 0 && s[i].min <= s[i - 1].max)
            ok = say(0, msg, cap,
                     "level 0: two files for TXID %016" PRIx64 ": %016" PRIx64 "-%016" PRIx64
                     " and %016" PRIx64 "-%016" PRIx64,
                     s[i].min, s[i - 1].min, s[i - 1].max, s[i].min, s[i].max);
        else if (i > 0 && s[i].min != s[i - 1].max + 1)
            ok = say(0, msg, cap, "level 0: gap: TXID %016" PRIx64 " follows %016" PRIx64, s[i].min,
                     s[i - 1].max);
    }
    if (ok)
        say(1, msg, cap, "level 0: %zu files, TXID %" PRIu64 "..%" PRIu64 " contiguous", n,
            s[0].min, s[n - 1].max);
    lv_free(s);
    return ok;
}

/* A level-0 LTX key: ".../0000/<16 hex>-<16 hex>.ltx" (or the file layout's "ltx/0/"). */
static int level0_key(const char *key, scn_range *r)
{
    size_t n = strlen(key);
    const size_t name = 16 + 1 + 16 + 4;
    if (n < name + 5 || strcmp(key + n - 4, ".ltx") != 0)
        return 0;
    const char *f = key + n - name;
    int l0 = (f - key >= 5 && memcmp(f - 5, "0000/", 5) == 0) ||
             (f - key >= 6 && memcmp(f - 6, "ltx/0/", 6) == 0);
    const char *stop;
    if (!l0 || parse_hex(f, f + 16, &r->min, &stop) != 0 || stop != f + 16 || f[16] != '-' ||
        parse_hex(f + 17, f + 33, &r->max, &stop) != 0 || stop != f + 33)
        return 0;
    return 1;
}

typedef struct landed {
    scn_range r;
    char key[160];
    int line;
} landed;

int scn_check_single_writer(const char *reqlog, size_t len, const int64_t *refused,
                            const char *const *refused_names, size_t nref, char *msg, size_t cap)
{
    landed *l = NULL;
    size_t nl = 0, i = 0, unanswered = 0, conflicts = 0;
    int ok = 1, lineno = 0;
    while (i < len && ok) {
        const char *nlp = memchr(reqlog + i, '\n', len - i);
        if (!nlp)
            break;
        size_t n = (size_t)(nlp - (reqlog + i));
        lineno++;
        json_t *o = json_loadb(reqlog + i, n, 0, NULL);
        i += n + 1;
        if (!o)
            continue;
        const char *op = json_string_value(json_object_get(o, "operation"));
        const char *key = json_string_value(json_object_get(o, "key"));
        json_int_t status = json_integer_value(json_object_get(o, "status"));
        scn_range r;
        int put = op && key &&
                  (strcmp(op, "PutObject") == 0 || strcmp(op, "CompleteMultipartUpload") == 0) &&
                  level0_key(key, &r);
        if (put && status == 412)
            conflicts++;
        if (put && status >= 200 && status < 300 && json_is_false(json_object_get(o, "completed")))
            unanswered++;
        if (op && key && status >= 200 && status < 300 &&
            (strcmp(op, "PutObject") == 0 || strcmp(op, "CompleteMultipartUpload") == 0) &&
            level0_key(key, &r)) {
            for (size_t j = 0; j < nl && ok; j++) {
                if (strcmp(l[j].key, key) == 0)
                    ok = say(0, msg, cap, "%s stored twice (request log lines %d and %d)", key,
                             l[j].line, lineno);
                else if (r.min <= l[j].r.max && l[j].r.min <= r.max)
                    ok = say(0, msg, cap,
                             "two level-0 files for one TXID: %s (line %d) and %s (line %d)",
                             l[j].key, l[j].line, key, lineno);
            }
            landed *g = ok ? lv_realloc(l, (nl + 1) * sizeof *g) : NULL;
            if (ok && !g)
                ok = say(0, msg, cap, "out of memory");
            if (ok) {
                l = g;
                l[nl].r = r;
                l[nl].line = lineno;
                snprintf(l[nl].key, sizeof l[nl].key, "%s", key);
                nl++;
            }
        }
        json_decref(o);
    }
    for (size_t k = 0; k < nref && ok; k++)
        if (refused[k] < 1)
            ok = say(0, msg, cap, "writer %s was never refused: two writers held the replica",
                     refused_names ? refused_names[k] : "?");
    if (ok) {
        if (nl == 0)
            ok = say(0, msg, cap, "no level-0 file was stored: nothing to check");
        else
            say(1, msg, cap,
                "%zu level-0 files stored, one per TXID (%zu stored without an answer, %zu "
                "conditional PUTs refused with 412)%s",
                nl, unanswered, conflicts, nref ? "; the second writer was refused" : "");
    }
    lv_free(l);
    return ok;
}

int scn_check_monotonic(const scn_rlog *r, char *msg, size_t cap)
{
    uint64_t last = 0, lo = UINT64_MAX, hi = 0;
    size_t reads = 0, conns = 0;
    for (size_t i = 0; i < r->n; i++) {
        const scn_read *x = &r->reads[i];
        if (x->kind == SCN_R_OPEN) {
            last = 0;
            conns++;
            continue;
        }
        if (x->kind != SCN_R_READ)
            continue;
        if (x->txid < last)
            return say(0, msg, cap,
                       "went backwards: read %zu saw TXID %016" PRIx64 " after %016" PRIx64,
                       reads + 1, x->txid, last);
        last = x->txid;
        reads++;
        if (x->txid < lo)
            lo = x->txid;
        if (x->txid > hi)
            hi = x->txid;
    }
    if (reads == 0)
        return say(0, msg, cap, "the reader logged no read");
    return say(1, msg, cap,
               "%zu reads over %zu connection(s), TXID %" PRIu64 "..%" PRIu64 ", never backwards",
               reads, conns ? conns : 1, lo, hi);
}

int scn_check_answers(const scn_rlog *r, const scn_ref *ref, size_t nref, char *msg, size_t cap)
{
    size_t compared = 0, travels = 0;
    for (size_t i = 0; i < r->n; i++) {
        const scn_read *x = &r->reads[i];
        if (x->kind != SCN_R_READ && x->kind != SCN_R_TRAVEL)
            continue;
        for (size_t j = 0; j < nref; j++) {
            if (ref[j].txid != x->txid)
                continue;
            if (strcmp(ref[j].answer, x->answer) != 0)
                return say(0, msg, cap,
                           "%s at TXID %016" PRIx64 " answered %s; the restored state says %s",
                           x->kind == SCN_R_TRAVEL ? "a time-travel read" : "a read", x->txid,
                           x->answer, ref[j].answer);
            compared++;
            travels += x->kind == SCN_R_TRAVEL;
            break;
        }
    }
    if (compared == 0)
        return say(0, msg, cap, "no read could be compared (%zu reference TXIDs)", nref);
    return say(1, msg, cap, "%zu answers (%zu time-travel) match the restored state at %zu TXIDs",
               compared, travels, nref);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

long scn_read_txids(const scn_rlog *r, uint64_t **out)
{
    uint64_t *t = lv_malloc((r->n ? r->n : 1) * sizeof *t);
    if (!t)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->reads[i].kind == SCN_R_READ || r->reads[i].kind == SCN_R_TRAVEL)
            t[k++] = r->reads[i].txid;
    qsort(t, k, sizeof *t, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || t[u - 1] != t[i])
            t[u++] = t[i];
    *out = t;
    return (long)u;
}

int scn_check_leftovers(const char *const *names, size_t n, char *msg, size_t cap)
{
    if (n == 0)
        return say(1, msg, cap, "no buffer or hydration file left");
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used + 2 < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return say(0, msg, cap, "%zu file(s) left behind: %s", n, list);
}

int scn_check_bounded(long max_fds, long max_rss_kb, long fd_bound, long rss_bound_kb,
                      size_t samples, char *msg, size_t cap)
{
    if (samples == 0)
        return say(0, msg, cap, "no sample was taken (the workload never ran?)");
    if (fd_bound > 0 && max_fds > fd_bound)
        return say(0, msg, cap, "%ld descriptors open at the peak, bound %ld", max_fds, fd_bound);
    if (rss_bound_kb > 0 && max_rss_kb > rss_bound_kb)
        return say(0, msg, cap, "RSS peaked at %ld KiB, bound %ld KiB", max_rss_kb, rss_bound_kb);
    return say(1, msg, cap, "peak %ld descriptors, %ld KiB RSS over %zu samples", max_fds,
               max_rss_kb, samples);
}

int scn_check_catchup(int64_t want, int64_t have, double elapsed_s, double bound_s, char *msg,
                      size_t cap)
{
    if (have < want)
        return say(0, msg, cap,
                   "the replica holds %" PRId64 " rows after %.1f s; the writer committed %" PRId64
                   " (bound %.0f s)",
                   have, elapsed_s, want, bound_s);
    return say(1, msg, cap, "the replica reached commit %" PRId64 " in %.1f s (bound %.0f s)", want,
               elapsed_s, bound_s);
}
