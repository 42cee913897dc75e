/*
 * admin_faults: /_fakes3/faults, the fault engine's run-time control (the engine is
 * fs3_config.faults; `fakes3 ctl faults ...` is its client, chaos/ctl.c).
 *
 *   GET    /_fakes3/faults        200, the rules with their counts: chaos_engine_list_json
 *                                 {"seed":N,"rules":[{"id":1,"rule":"...","matched":M,
 *                                 "fired":F,"expired":false},...]}
 *   POST   /_fakes3/faults        body: one or more rules, one per line (blank lines and
 *                                 # comments skipped). All or none: 200 {"ids":[4,5]}, or 400
 *                                 InvalidArgument with the parse error (naming the line) and
 *                                 nothing added
 *   DELETE /_fakes3/faults        200 {"cleared":N}: every rule removed
 *   DELETE /_fakes3/faults/<id>   200 {"removed":ID}, or 404 NoSuchFaultRule
 *
 * Errors are S3 XML error documents like every other fakes3 error. The requests are signed like
 * S3 requests (unless --anonymous); they are never put to the fault engine themselves.
 *
 * Threads: the engine is thread-safe; admin_mu serialises the changes made here, so that a POST's
 * rules get consecutive ids and a POST is all or none against other admin requests (an S3
 * request deciding meanwhile sees the rules of a POST appear one by one, in order).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "faults.h"
#include "ops.h"

/* The largest POST body: rules are short lines. */
#define MAX_RULES_BODY (1024 * 1024)

static pthread_mutex_t admin_mu = PTHREAD_MUTEX_INITIALIZER;

fs3_code fs3_begin_admin_faults(fs3_req *r)
{
    if (strcmp(r->method, "POST") == 0) {
        r->body_kind = FS3_BODY_BUFFER;
        r->body_limit = MAX_RULES_BODY;
    } else {
        r->body_kind = FS3_BODY_DISCARD;
    }
    return FS3_OK;
}

static void answer_json(fs3_req *r, lv_buf *doc)
{
    lv_buf_free(&r->resp.body);
    r->resp.body = *doc;
    lv_buf_init(doc);
    r->resp.status = 200;
    fs3_resp_header(r, "Content-Type", "application/json");
}

/* A line of a rules text that holds a rule (not blank, not only a comment). */
static int is_rule_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    return i < n && s[i] != '#';
}

/* POST: validates the whole body on a scratch engine (the parse error names the line), then adds
 * the rules one by one, keeping their ids. */
static void add_rules(fs3_req *r, chaos_engine *e)
{
    char err[LV_ERRLEN] = "";
    const char *text = r->body.data ? r->body.data : "";
    size_t len = r->body.len;
    lv_buf doc, line;
    lv_buf_init(&doc);
    lv_buf_init(&line);
    uint64_t *ids = NULL;
    size_t n_ids = 0;
    chaos_engine *scratch = chaos_engine_new(0, NULL, NULL);
    if (!scratch) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        goto done;
    }
    if (chaos_engine_add_text(scratch, text, len, err) != LV_OK) {
        snprintf(r->err, sizeof r->err, "%s", err);
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, err, NULL, 0);
        goto done;
    }
    if (chaos_engine_count(scratch) == 0) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "No rule in the request body (one rule per line).",
                       NULL, 0);
        goto done;
    }
    ids = lv_calloc(chaos_engine_count(scratch), sizeof *ids);
    if (!ids) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        goto done;
    }
    pthread_mutex_lock(&admin_mu);
    lv_err rc = LV_OK;
    for (size_t at = 0; at < len && rc == LV_OK;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        if (is_rule_line(text + at, n) && n_ids < chaos_engine_count(scratch)) {
            lv_buf_reset(&line);
            lv_buf_append(&line, text + at, n);
            lv_buf_putc(&line, '\0');
            rc = line.oom ? lv_fail(err, LV_ENOMEM, "out of memory")
                          : chaos_engine_add(e, line.data, &ids[n_ids], err);
            if (rc == LV_OK)
                n_ids++;
        }
        at += n + 1;
    }
    if (rc != LV_OK) { /* validated already, so out of memory: take back what was added */
        char ignored[LV_ERRLEN];
        for (size_t i = 0; i < n_ids; i++)
            chaos_engine_remove(e, ids[i], ignored);
        n_ids = 0;
    }
    pthread_mutex_unlock(&admin_mu);
    if (rc != LV_OK) {
        snprintf(r->err, sizeof r->err, "%s", err);
        fs3_resp_error(r, FS3_INTERNAL_ERROR, err, NULL, 0);
        goto done;
    }
    lv_buf_puts(&doc, "{\"ids\":[");
    for (size_t i = 0; i < n_ids; i++)
        lv_buf_printf(&doc, "%s%" PRIu64, i ? "," : "", ids[i]);
    lv_buf_puts(&doc, "]}\n");
    answer_json(r, &doc);
done:
    chaos_engine_free(scratch);
    lv_free(ids);
    lv_buf_free(&line);
    lv_buf_free(&doc);
}

/* The id in /_fakes3/faults/<id>: 1 and up; 0 when it is not a number. */
static uint64_t route_id(const fs3_req *r)
{
    char buf[24];
    if (r->route.key_len == 0 || r->route.key_len >= sizeof buf)
        return 0;
    memcpy(buf, r->route.key, r->route.key_len);
    buf[r->route.key_len] = '\0';
    if (strspn(buf, "0123456789") != r->route.key_len)
        return 0;
    return strtoull(buf, NULL, 10);
}

void fs3_apply_admin_faults(fs3_req *r)
{
    chaos_engine *e = r->cfg->faults;
    lv_buf doc;
    lv_buf_init(&doc);
    if (!e) {
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED, "This server runs without a fault engine.", NULL, 0);
        return;
    }
    int has_id = r->route.key != NULL;
    if (strcmp(r->method, "GET") == 0 && !has_id) {
        chaos_engine_list_json(e, &doc);
        answer_json(r, &doc);
    } else if (strcmp(r->method, "POST") == 0 && !has_id) {
        add_rules(r, e);
    } else if (strcmp(r->method, "DELETE") == 0 && !has_id) {
        pthread_mutex_lock(&admin_mu);
        size_t n = chaos_engine_count(e);
        chaos_engine_clear(e);
        pthread_mutex_unlock(&admin_mu);
        lv_buf_printf(&doc, "{\"cleared\":%zu}\n", n);
        answer_json(r, &doc);
    } else if (strcmp(r->method, "DELETE") == 0) {
        uint64_t id = route_id(r);
        char err[LV_ERRLEN] = "";
        pthread_mutex_lock(&admin_mu);
        lv_err rc = id ? chaos_engine_remove(e, id, err) : LV_ENOTFOUND;
        pthread_mutex_unlock(&admin_mu);
        if (rc != LV_OK) {
            fs3_faults_error(r, 404, "NoSuchFaultRule", "There is no fault rule with that id.");
        } else {
            lv_buf_printf(&doc, "{\"removed\":%" PRIu64 "}\n", id);
            answer_json(r, &doc);
        }
    } else {
        fs3_resp_error(r, FS3_METHOD_NOT_ALLOWED,
                       "/_fakes3/faults takes GET, POST and DELETE; /_fakes3/faults/<id> DELETE.",
                       NULL, 0);
    }
    lv_buf_free(&doc);
}
