/*
 * engine: the ordered rule list of chaos.h, its counters, and the seeded decision per request.
 *
 * Determinism: a rule's draws for its n-th matching request are a pure hash of (seed, rule id, n,
 * draw index) (splitmix64's finaliser, chained), so a decision never depends on which thread got
 * there first, only on the request's place in the rule's sequence. Draw 0 is the p= test, draw 1
 * the jitter, draw 2 the latency percentile.
 *
 * Threads: one mutex (mu) guards the rule array, every counter and next_id. A decision holds it
 * for a scan that allocates nothing and does no I/O; parsing, file reading and the canonical text
 * are done outside it. The clock is called inside it only when a rule has for= (it must be cheap).
 */
#include "chaos.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "rule.h"

#define MAX_FILE (16u << 20) /* a --faults file larger than this is a mistake */

struct chaos_engine {
    pthread_mutex_t mu;
    uint64_t seed;
    int64_t (*now_us)(void *ctx);
    void *clock_ctx;
    chaos_rule **rules; /* in order; owned */
    /* op_masks[i] = rules[i]->op_mask, side by side, so that a scan over rules for other
       operations reads 8 bytes a rule and never the rule itself */
    uint64_t *op_masks;
    size_t n, cap;
    uint64_t next_id; /* ids are never reused */
    int marked;       /* some rule is marked expired and not dropped yet */
};

static int64_t monotonic_us(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- seeded draws --------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A number in [0, 1) that depends only on its four inputs. */
static double draw(uint64_t seed, uint64_t id, uint64_t n, uint64_t idx)
{
    uint64_t h = mix64(mix64(mix64(seed ^ mix64(id)) ^ n) ^ idx);
    return (double)(h >> 11) * 0x1p-53;
}

/* The latency at u in [0, 1) from the rule's percentile points, linear between them. */
static int64_t percentile_us(const chaos_rule *r, double u)
{
    double x = u * 100;
    for (int i = 0; i + 1 < r->npct; i++) {
        double q0 = r->pct_q[i], q1 = r->pct_q[i + 1];
        if (x <= q1 || i + 2 == r->npct) {
            if (q1 <= q0)
                return r->pct_us[i + 1];
            double f = (x - q0) / (q1 - q0);
            if (f < 0)
                f = 0;
            if (f > 1)
                f = 1;
            double v = (double)r->pct_us[i] + f * (double)(r->pct_us[i + 1] - r->pct_us[i]);
            return (int64_t)(v + 0.5);
        }
    }
    return r->npct ? r->pct_us[r->npct - 1] : 0;
}

/* ---- engine --------------------------------------------------------------------------------- */

chaos_engine *chaos_engine_new(uint64_t seed, int64_t (*now_us)(void *ctx), void *clock_ctx)
{
    chaos_engine *e = lv_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        lv_free(e);
        return NULL;
    }
    e->seed = seed;
    e->now_us = now_us ? now_us : monotonic_us;
    e->clock_ctx = clock_ctx;
    e->next_id = 1;
    return e;
}

void chaos_engine_free(chaos_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        chaos_rule_free(e->rules[i]);
    lv_free(e->rules);
    lv_free(e->op_masks);
    pthread_mutex_destroy(&e->mu);
    lv_free(e);
}

/* Makes room for k more rules; call with mu held. 0 when out of memory (nothing changed). */
static int reserve(chaos_engine *e, size_t k)
{
    if (e->n + k <= e->cap)
        return 1;
    size_t cap = e->cap ? e->cap : 8;
    while (cap < e->n + k)
        cap *= 2;
    chaos_rule **p = lv_realloc(e->rules, cap * sizeof *p);
    if (!p)
        return 0;
    e->rules = p; /* bigger, same content: kept even if the next realloc fails */
    uint64_t *m = lv_realloc(e->op_masks, cap * sizeof *m);
    if (!m)
        return 0;
    e->op_masks = m;
    e->cap = cap;
    return 1;
}

/* Appends parsed rules (ownership passes to the engine), all or none. */
static lv_err append(chaos_engine *e, chaos_rule **rs, size_t k, uint64_t *first_id, char *err)
{
    int64_t now = e->now_us(e->clock_ctx);
    pthread_mutex_lock(&e->mu);
    if (!reserve(e, k)) {
        pthread_mutex_unlock(&e->mu);
        return lv_fail(err, LV_ENOMEM, "out of memory adding %zu rule(s)", k);
    }
    if (first_id)
        *first_id = e->next_id;
    for (size_t i = 0; i < k; i++) {
        rs[i]->id = e->next_id++;
        rs[i]->added_us = now;
        e->op_masks[e->n] = rs[i]->op_mask;
        e->rules[e->n++] = rs[i];
    }
    pthread_mutex_unlock(&e->mu);
    return LV_OK;
}

lv_err chaos_engine_add(chaos_engine *e, const char *rule, uint64_t *id, char *err)
{
    chaos_rule *r;
    lv_err rc = chaos_rule_parse(rule, strlen(rule), 0, &r, err);
    if (rc != LV_OK)
        return rc;
    rc = append(e, &r, 1, id, err);
    if (rc != LV_OK)
        chaos_rule_free(r);
    return rc;
}

lv_err chaos_engine_add_text(chaos_engine *e, const char *text, size_t len, char *err)
{
    return chaos_engine_add_text_ids(e, text, len, NULL, NULL, err);
}

lv_err chaos_engine_add_text_ids(chaos_engine *e, const char *text, size_t len, uint64_t *first_id,
                                 size_t *count, char *err)
{
    if (first_id)
        *first_id = 0;
    if (count)
        *count = 0;
    lv_err rc = LV_OK;
    chaos_rule **rs = NULL;
    size_t k = 0, cap = 0, line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        chaos_rule *r = NULL;
        rc = chaos_rule_parse(p, n, 1, &r, err);
        if (rc != LV_OK) {
            lv_wrap(err, rc, "line %zu: ", line);
            goto done;
        }
        p = nl ? nl + 1 : end;
        if (!r)
            continue; /* a blank line or a comment */
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 8;
            chaos_rule **g = lv_realloc(rs, nc * sizeof *g);
            if (!g) {
                chaos_rule_free(r);
                rc = lv_fail(err, LV_ENOMEM, "line %zu: out of memory", line);
                goto done;
            }
            rs = g;
            cap = nc;
        }
        rs[k++] = r;
    }
    if (k)
        rc = append(e, rs, k, first_id, err);
    if (rc == LV_OK) {
        if (count)
            *count = k;
        k = 0; /* the engine owns them now */
    }
done:
    for (size_t i = 0; i < k; i++)
        chaos_rule_free(rs[i]);
    lv_free(rs);
    return rc;
}

lv_err chaos_engine_load_file(chaos_engine *e, const char *path, char *err)
{
    lv_err rc = LV_OK;
    char *data = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lv_fail(err, errno == ENOENT ? LV_ENOTFOUND : LV_EIO, "%s: %s", path,
                       strerror(errno));
    size_t cap = 4096;
    data = lv_malloc(cap);
    if (!data) {
        rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE) {
                rc = lv_fail(err, LV_EINVAL, "%s: larger than %u bytes", path, MAX_FILE);
                goto done;
            }
            char *g = lv_realloc(data, cap * 2);
            if (!g) {
                rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            data = g;
            cap *= 2;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = lv_fail(err, LV_EIO, "%s: read failed", path);
            break;
        }
    }
    if (rc == LV_OK && (rc = chaos_engine_add_text(e, data, len, err)) != LV_OK)
        lv_wrap(err, rc, "%s: ", path);
done:
    lv_free(data);
    fclose(f);
    return rc;
}

/* Drops the rules marked expired (under e->mu). */
static void drop_expired(chaos_engine *e)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->n; i++) {
        chaos_rule *r = e->rules[i];
        if (r->expired) {
            chaos_rule_free(r);
        } else {
            e->op_masks[kept] = e->op_masks[i];
            e->rules[kept++] = r;
        }
    }
    e->n = kept;
    e->marked = 0;
}

lv_err chaos_engine_remove(chaos_engine *e, uint64_t id, char *err)
{
    chaos_rule *gone = NULL;
    pthread_mutex_lock(&e->mu);
    drop_expired(e);
    for (size_t i = 0; i < e->n; i++)
        if (e->rules[i]->id == id) {
            gone = e->rules[i];
            memmove(e->rules + i, e->rules + i + 1, (e->n - i - 1) * sizeof *e->rules);
            memmove(e->op_masks + i, e->op_masks + i + 1, (e->n - i - 1) * sizeof *e->op_masks);
            e->n--;
            break;
        }
    pthread_mutex_unlock(&e->mu);
    if (!gone)
        return lv_fail(err, LV_ENOTFOUND, "no fault rule with id %llu", (unsigned long long)id);
    chaos_rule_free(gone);
    return LV_OK;
}

void chaos_engine_clear(chaos_engine *e)
{
    pthread_mutex_lock(&e->mu);
    chaos_rule **rs = e->rules;
    uint64_t *masks = e->op_masks;
    size_t n = e->n;
    e->rules = NULL;
    e->op_masks = NULL;
    e->n = e->cap = 0;
    e->marked = 0;
    pthread_mutex_unlock(&e->mu);
    lv_free(masks);
    for (size_t i = 0; i < n; i++) /* freed outside the lock */
        chaos_rule_free(rs[i]);
    lv_free(rs);
}

size_t chaos_engine_count(const chaos_engine *e)
{
    chaos_engine *m = (chaos_engine *)e; /* the mutex is not part of the engine's value */
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Appends s as a JSON string (quotes included); s is valid UTF-8 (the parser checks). */
static void json_string(lv_buf *b, const char *s)
{
    lv_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            lv_buf_putc(b, '\\');
            lv_buf_putc(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            lv_buf_printf(b, "\\u%04x", c);
        } else {
            lv_buf_putc(b, (char)c);
        }
    }
    lv_buf_putc(b, '"');
}

static int is_expired(const chaos_rule *r, int64_t now)
{
    return r->expired || (r->for_us >= 0 && now - r->added_us >= r->for_us);
}

void chaos_engine_list_json(chaos_engine *e, lv_buf *out)
{
    pthread_mutex_lock(&e->mu);
    int64_t now = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->rules[i]->for_us >= 0) {
            now = e->now_us(e->clock_ctx);
            break;
        }
    lv_buf_printf(out, "{\"seed\":%llu,\"rules\":[", (unsigned long long)e->seed);
    for (size_t i = 0; i < e->n; i++) {
        chaos_rule *r = e->rules[i];
        /* marked, not dropped: every lister sees it until a decision, a remove or a clear */
        int expired = r->expired = is_expired(r, now);
        e->marked |= expired;
        lv_buf_printf(out, "%s{\"id\":%llu,\"rule\":", i ? "," : "", (unsigned long long)r->id);
        json_string(out, r->canon);
        lv_buf_printf(out, ",\"matched\":%llu,\"fired\":%llu,\"expired\":%s}",
                      (unsigned long long)r->matched, (unsigned long long)r->fired,
                      expired ? "true" : "false");
    }
    lv_buf_puts(out, "]}");
    pthread_mutex_unlock(&e->mu);
}

/* Fills out from rule r firing on its n-th matching request. */
static void fill(const chaos_engine *e, const chaos_rule *r, uint64_t n, chaos_decision *out)
{
    out->action = r->action;
    out->rule_id = r->id;
    int64_t delay = r->delay_us;
    if (r->jitter_us > 0)
        delay += (int64_t)(draw(e->seed, r->id, n, 1) * (double)(r->jitter_us + 1));
    if (delay > r->delay_us + r->jitter_us) /* u < 1, but keep the bound exact */
        delay = r->delay_us + r->jitter_us;
    char tmp[48];
    int len = snprintf(out->summary, sizeof out->summary, "rule %llu: %s",
                       (unsigned long long)r->id, chaos_action_name(r->action));
    size_t room =
        len > 0 && (size_t)len < sizeof out->summary ? sizeof out->summary - (size_t)len : 0;
    char *s = out->summary + (sizeof out->summary - room);
    switch (r->action) {
    case CHAOS_LATENCY:
        delay += r->npct ? percentile_us(r, draw(e->seed, r->id, n, 2)) : r->latency_us;
        chaos_human_duration(tmp, sizeof tmp, delay);
        snprintf(s, room, " %s", tmp);
        break;
    case CHAOS_ERROR:
        out->status = r->status;
        snprintf(out->code, sizeof out->code, "%s", r->code);
        snprintf(out->message, sizeof out->message, "%s", r->message);
        snprintf(s, room, " %d %s", r->status, r->code);
        break;
    case CHAOS_TRUNCATE:
        out->bytes = r->bytes;
        snprintf(s, room, " %llu", (unsigned long long)r->bytes);
        break;
    case CHAOS_BANDWIDTH:
        out->bytes = r->bytes;
        snprintf(s, room, " %llu B/s", (unsigned long long)r->bytes);
        break;
    case CHAOS_STALL:
        out->duration_us = r->duration_us;
        if (r->duration_us < 0) {
            snprintf(s, room, " forever");
        } else {
            chaos_human_duration(tmp, sizeof tmp, r->duration_us);
            snprintf(s, room, " %s", tmp);
        }
        break;
    case CHAOS_DOWN:
        out->duration_us = r->duration_us;
        chaos_human_duration(tmp, sizeof tmp, r->duration_us);
        snprintf(s, room, " %s", tmp);
        break;
    case CHAOS_CRASH:
        out->after_apply = r->after_apply;
        snprintf(s, room, " %s", r->after_apply ? "after" : "before");
        break;
    default:
        break;
    }
    out->delay_us = delay;
    if (r->action != CHAOS_LATENCY && delay > 0) {
        size_t used = strlen(out->summary);
        chaos_human_duration(tmp, sizeof tmp, delay);
        snprintf(out->summary + used, sizeof out->summary - used, " (delay %s)", tmp);
    }
}

chaos_action chaos_engine_decide(chaos_engine *e, const chaos_request *req, chaos_decision *out)
{
    out->action = CHAOS_NONE;
    out->rule_id = 0;
    out->delay_us = 0;
    out->duration_us = 0;
    out->status = 0;
    out->code[0] = '\0';
    out->message[0] = '\0';
    out->bytes = 0;
    out->after_apply = 0;
    out->summary[0] = '\0';

    chaos_req_facts facts;
    chaos_req_facts_init(&facts, req);
    int64_t now = 0;
    int have_now = 0, any_expired = 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n; i++) {
        if (e->op_masks[i] && !(e->op_masks[i] & facts.op_bit))
            continue; /* the common case of a long rule list: another operation */
        chaos_rule *r = e->rules[i];
        if (r->expired) {
            any_expired = 1;
            continue;
        }
        if (r->for_us >= 0) {
            if (!have_now) {
                now = e->now_us(e->clock_ctx);
                have_now = 1;
            }
            if (now - r->added_us >= r->for_us) {
                r->expired = 1;
                any_expired = 1;
                continue;
            }
        }
        if (!chaos_rule_matches(r, req, &facts))
            continue;
        uint64_t n = ++r->matched;
        if (n <= r->after)
            continue;
        if (r->times && r->fired >= r->times)
            continue;
        if (r->has_p && !(draw(e->seed, r->id, n, 0) < r->p))
            continue;
        r->fired++;
        fill(e, r, n, out);
        break;
    }
    if (any_expired || e->marked)
        drop_expired(e);
    pthread_mutex_unlock(&e->mu);
    return out->action;
}
