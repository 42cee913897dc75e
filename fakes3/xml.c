/* xml: S3 XML documents out, request bodies in through expat (see xml.h). */
#include "xml.h"

#include <stdio.h>
#include <string.h>

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
