/* xml: S3 XML documents out, request bodies in through expat (see xml.h). */
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "alloc.h"
#include "error.h"

#define MAX_DEPTH 32
#define MAX_NODES 200000

void fs3_xml_decl(lv_buf *b)
{
    lv_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void fs3_xml_text(lv_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            lv_buf_xml_escape(b, s + run, i - run);
            lv_buf_printf(b, "&#x%X;", c);
            run = i + 1;
        }
    }
    lv_buf_xml_escape(b, s + run, n - run);
}

void fs3_xml_elem(lv_buf *b, const char *name, const char *text, size_t n)
{
    lv_buf_printf(b, "<%s>", name);
    fs3_xml_text(b, text, n);
    lv_buf_printf(b, "</%s>", name);
}

void fs3_xml_elems(lv_buf *b, const char *name, const char *text)
{
    fs3_xml_elem(b, name, text, strlen(text));
}

void fs3_xml_error(lv_buf *b, fs3_code code, const char *message, const fs3_xml_field *extra,
                   size_t n_extra, const char *resource, const char *request_id)
{
    fs3_xml_decl(b);
    lv_buf_puts(b, "<Error>");
    fs3_xml_elems(b, "Code", fs3_code_name(code));
    fs3_xml_elems(b, "Message", message ? message : fs3_code_message(code));
    for (size_t i = 0; i < n_extra; i++)
        fs3_xml_elem(b, extra[i].name, extra[i].value, extra[i].len);
    if (resource)
        fs3_xml_elems(b, "Resource", resource);
    fs3_xml_elems(b, "RequestId", request_id);
    fs3_xml_elems(b, "HostId", "fakes3");
    lv_buf_puts(b, "</Error>");
}

/* ---- parsing --------------------------------------------------------------------------------- */

typedef struct parse_state {
    XML_Parser parser;
    fs3_xml_node *root;
    fs3_xml_node *stack[MAX_DEPTH];
    fs3_xml_node *last_child[MAX_DEPTH];
    lv_buf text[MAX_DEPTH];
    int depth;
    size_t nodes;
    const char *failure; /* why parsing was stopped by us */
} parse_state;

static void stop(parse_state *ps, const char *why)
{
    if (!ps->failure)
        ps->failure = why;
    XML_StopParser(ps->parser, XML_FALSE);
}

static void node_free(fs3_xml_node *n)
{
    while (n) {
        fs3_xml_node *next = n->next;
        node_free(n->child);
        lv_free(n->name);
        lv_free(n->text);
        lv_free(n);
        n = next;
    }
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    parse_state *ps = ud;
    if (ps->depth >= MAX_DEPTH) {
        stop(ps, "elements nested too deeply");
        return;
    }
    if (ps->depth == 0 && ps->root) {
        stop(ps, "more than one root element");
        return;
    }
    if (++ps->nodes > MAX_NODES) {
        stop(ps, "too many elements");
        return;
    }
    const char *local = strrchr(name, '\x01'); /* "namespace\x01local" */
    local = local ? local + 1 : name;
    fs3_xml_node *n = lv_calloc(1, sizeof *n);
    size_t len = strlen(local);
    if (!n || !(n->name = lv_malloc(len + 1))) {
        lv_free(n);
        stop(ps, "out of memory");
        return;
    }
    memcpy(n->name, local, len + 1);
    if (ps->depth == 0) {
        ps->root = n;
    } else {
        int d = ps->depth - 1;
        if (ps->last_child[d])
            ps->last_child[d]->next = n;
        else
            ps->stack[d]->child = n;
        ps->last_child[d] = n;
    }
    ps->stack[ps->depth] = n;
    ps->last_child[ps->depth] = NULL;
    lv_buf_reset(&ps->text[ps->depth]);
    ps->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    parse_state *ps = ud;
    if (ps->depth <= 0)
        return;
    ps->depth--;
    fs3_xml_node *n = ps->stack[ps->depth];
    lv_buf *t = &ps->text[ps->depth];
    if (t->oom) {
        stop(ps, "out of memory");
        return;
    }
    n->text_len = t->len;
    n->text = lv_buf_take(t);
    if (!n->text) {
        stop(ps, "out of memory");
        return;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parse_state *ps = ud;
    if (ps->depth > 0)
        lv_buf_append(&ps->text[ps->depth - 1], s, (size_t)len);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    stop(ud, "a DOCTYPE is not allowed");
}

fs3_code fs3_xml_parse(const char *data, size_t n, fs3_xml_node **root, char *err)
{
    *root = NULL;
    parse_state ps;
    memset(&ps, 0, sizeof ps);
    for (int i = 0; i < MAX_DEPTH; i++)
        lv_buf_init(&ps.text[i]);
    ps.parser = XML_ParserCreateNS("UTF-8", '\x01');
    if (!ps.parser) {
        lv_fail(err, LV_ENOMEM, "cannot create an XML parser");
        return FS3_INTERNAL_ERROR;
    }
    XML_SetUserData(ps.parser, &ps);
    XML_SetElementHandler(ps.parser, on_start, on_end);
    XML_SetCharacterDataHandler(ps.parser, on_text);
    XML_SetStartDoctypeDeclHandler(ps.parser, on_doctype);
    fs3_code rc = FS3_OK;
    if (n > (size_t)0x7fffffff) {
        rc = FS3_MALFORMED_XML;
        lv_fail(err, LV_EINVAL, "XML body too large");
    } else if (XML_Parse(ps.parser, data, (int)n, XML_TRUE) != XML_STATUS_OK || ps.failure) {
        rc = FS3_MALFORMED_XML;
        lv_fail(err, LV_ECORRUPT, "XML: %s at line %lu",
                ps.failure ? ps.failure : XML_ErrorString(XML_GetErrorCode(ps.parser)),
                (unsigned long)XML_GetCurrentLineNumber(ps.parser));
    } else if (!ps.root) {
        rc = FS3_MALFORMED_XML;
        lv_fail(err, LV_ECORRUPT, "XML: no root element");
    }
    XML_ParserFree(ps.parser);
    for (int i = 0; i < MAX_DEPTH; i++)
        lv_buf_free(&ps.text[i]);
    if (rc != FS3_OK) {
        node_free(ps.root);
        return rc;
    }
    *root = ps.root;
    return FS3_OK;
}

void fs3_xml_free(fs3_xml_node *root)
{
    node_free(root);
}

const fs3_xml_node *fs3_xml_child(const fs3_xml_node *node, const char *name)
{
    for (const fs3_xml_node *c = node ? node->child : NULL; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* ---- structured bodies ----------------------------------------------------------------------- */

/* text without leading and trailing XML white space, as [*p, *p + *n) */
static void trimmed(const fs3_xml_node *x, const char **p, size_t *n)
{
    const char *s = x->text, *e = x->text + x->text_len;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *p = s;
    *n = (size_t)(e - s);
}

/* An ETag as clients write it ("\"abc\"", "abc", "&quot;abc&quot;"): trimmed, quotes removed. */
static void etag_text(const fs3_xml_node *x, const char **p, size_t *n)
{
    trimmed(x, p, n);
    if (*n >= 2 && (*p)[0] == '"' && (*p)[*n - 1] == '"') {
        (*p)++;
        *n -= 2;
    }
}

static fs3_code malformed(char *err, const char *why)
{
    lv_fail(err, LV_EINVAL, "%s", why);
    return FS3_MALFORMED_XML;
}

/*
 * The frame of a list body (Delete, CompleteMultipartUpload): parses data, whose root element must
 * be root_name and hold 1 to max elements named item (else MalformedXML, with none or too_many as
 * the reason), and allocates *items, an array of that many zeroed elements of size bytes. On
 * success the tree is in *root (the caller frees it with fs3_xml_free) and *items is the caller's
 * to lv_free; on failure both are NULL.
 */
static fs3_code parse_list(const char *data, size_t n, const char *root_name, const char *item,
                           size_t max, const char *none, const char *too_many, size_t size,
                           fs3_xml_node **root, void **items, char *err)
{
    *items = NULL;
    fs3_code rc = fs3_xml_parse(data, n, root, err);
    if (rc != FS3_OK)
        return rc;
    size_t count = 0;
    if (strcmp((*root)->name, root_name) != 0) {
        lv_fail(err, LV_EINVAL, "the root element is not %s", root_name);
        rc = FS3_MALFORMED_XML;
        goto done;
    }
    for (const fs3_xml_node *c = (*root)->child; c; c = c->next)
        count += strcmp(c->name, item) == 0;
    if (count == 0 || count > max) {
        rc = malformed(err, count ? too_many : none);
        goto done;
    }
    if (!(*items = lv_calloc(count, size))) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
    }
done:
    if (rc != FS3_OK) {
        fs3_xml_free(*root);
        *root = NULL;
    }
    return rc;
}

fs3_code fs3_xml_parse_delete(const char *data, size_t n, fs3_delete_list *out, char *err)
{
    memset(out, 0, sizeof *out);
    fs3_xml_node *root = NULL;
    void *items = NULL;
    fs3_code rc =
        parse_list(data, n, "Delete", "Object", FS3_MAX_DELETE_KEYS, "no Object to delete",
                   "more than 1000 objects to delete", sizeof *out->items, &root, &items, err);
    if (rc != FS3_OK)
        return rc;
    out->items = items;
    for (const fs3_xml_node *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "Quiet") == 0) {
            const char *t;
            size_t tn;
            trimmed(c, &t, &tn);
            if (tn == 4 && strncasecmp(t, "true", 4) == 0)
                out->quiet = 1;
            else if (!(tn == 5 && strncasecmp(t, "false", 5) == 0)) {
                rc = malformed(err, "Quiet is neither true nor false");
                goto done;
            }
            continue;
        }
        if (strcmp(c->name, "Object") != 0)
            continue;
        const fs3_xml_node *k = fs3_xml_child(c, "Key");
        const fs3_xml_node *e = fs3_xml_child(c, "ETag");
        if (!k || k->text_len == 0) {
            rc = malformed(err, "an Object without a Key");
            goto done;
        }
        fs3_delete_item *it = &out->items[out->n++];
        it->key = lv_malloc(k->text_len + 1);
        if (it->key) {
            memcpy(it->key, k->text, k->text_len + 1);
            it->key_len = k->text_len;
        }
        if (e) {
            const char *t;
            size_t tn;
            etag_text(e, &t, &tn);
            if ((it->etag = lv_malloc(tn + 1)) != NULL) {
                memcpy(it->etag, t, tn);
                it->etag[tn] = '\0';
            }
        }
        if (!it->key || (e && !it->etag)) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
    }
done:
    fs3_xml_free(root);
    if (rc != FS3_OK)
        fs3_delete_list_free(out);
    return rc;
}

void fs3_delete_list_free(fs3_delete_list *d)
{
    for (size_t i = 0; i < d->n; i++) {
        lv_free(d->items[i].key);
        lv_free(d->items[i].etag);
    }
    lv_free(d->items);
    memset(d, 0, sizeof *d);
}

fs3_code fs3_xml_parse_complete(const char *data, size_t n, fs3_complete_list *out, char *err)
{
    memset(out, 0, sizeof *out);
    fs3_xml_node *root = NULL;
    void *parts = NULL;
    fs3_code rc = parse_list(data, n, "CompleteMultipartUpload", "Part", FS3_MAX_PARTS, "no Part",
                             "more than 10000 parts", sizeof *out->parts, &root, &parts, err);
    if (rc != FS3_OK)
        return rc;
    out->parts = parts;
    for (const fs3_xml_node *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "Part") != 0)
            continue;
        const fs3_xml_node *pn = fs3_xml_child(c, "PartNumber");
        const fs3_xml_node *e = fs3_xml_child(c, "ETag");
        const char *t;
        size_t tn;
        if (!pn || !e) {
            rc = malformed(err, "a Part without PartNumber or ETag");
            goto done;
        }
        trimmed(pn, &t, &tn);
        long v = 0;
        size_t i = 0;
        for (; i < tn && t[i] >= '0' && t[i] <= '9' && v <= 100000000; i++)
            v = v * 10 + (t[i] - '0');
        if (tn == 0 || i != tn) {
            rc = malformed(err, "a PartNumber that is not a number");
            goto done;
        }
        fs3_complete_part *p = &out->parts[out->n++];
        p->number = v;
        etag_text(e, &t, &tn);
        if (tn < sizeof p->etag) {
            memcpy(p->etag, t, tn);
            p->etag[tn] = '\0';
        }
    }
done:
    fs3_xml_free(root);
    if (rc != FS3_OK)
        fs3_complete_list_free(out);
    return rc;
}

void fs3_complete_list_free(fs3_complete_list *c)
{
    lv_free(c->parts);
    memset(c, 0, sizeof *c);
}
