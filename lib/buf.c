/* buf: the growable string with sticky failure, and URI/XML escaping (see buf.h). */
#include "buf.h"
#include "hex.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

void lv_buf_init(lv_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void lv_buf_free(lv_buf *b)
{
    lv_free(b->data);
    lv_buf_init(b);
}

void lv_buf_reset(lv_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus the NUL; returns 0 (and sets oom) if it cannot. */
static int reserve(lv_buf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (n > (size_t)-1 / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = lv_realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void lv_buf_append(lv_buf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void lv_buf_puts(lv_buf *b, const char *s)
{
    lv_buf_append(b, s, strlen(s));
}

void lv_buf_putc(lv_buf *b, char c)
{
    lv_buf_append(b, &c, 1);
}

void lv_buf_vprintf(lv_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void lv_buf_printf(lv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lv_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void lv_buf_uri_encode(lv_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    /* worst case three bytes out per byte in: reserve once, then write directly */
    if (n > (size_t)-1 / 4 || !reserve(b, n * 3))
        return;
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void lv_buf_xml_escape(lv_buf *b, const char *s, size_t n)
{
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            break;
        }
        if (rep) {
            lv_buf_append(b, s + run, i - run);
            lv_buf_puts(b, rep);
            run = i + 1;
        }
    }
    lv_buf_append(b, s + run, n - run);
}

lv_err lv_buf_ok(const lv_buf *b, char *err)
{
    if (b->oom)
        return lv_fail(err, LV_ENOMEM, "out of memory building a string");
    return LV_OK;
}

char *lv_buf_take(lv_buf *b)
{
    if (b->oom) {
        lv_buf_free(b);
        return NULL;
    }
    if (!b->data) {
        char *p = lv_malloc(1);
        if (p)
            p[0] = '\0';
        return p;
    }
    char *p = b->data;
    lv_buf_init(b);
    return p;
}

size_t lv_uri_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && lv_hex_digit(s[i + 1]) >= 0 &&
            lv_hex_digit(s[i + 2]) >= 0) {
            out[o++] = (char)(lv_hex_digit(s[i + 1]) * 16 + lv_hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}
