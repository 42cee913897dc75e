/*
 * buf: a growable byte string with sticky failure, for code that builds text (canonical requests,
 * XML documents, file names) piece by piece.
 *
 * A value type with an _init/_free pair (like curl's bufq). Appends never fail visibly: when an
 * allocation fails the buffer remembers it (`oom`), drops every later append, and the caller checks
 * once at the end with lv_buf_ok(). The content is always NUL-terminated when data is not NULL, so
 * it can be used as a C string; it may also hold NUL bytes (use len).
 *
 * Memory comes from lv_malloc (lib/alloc.h). Threads: a buffer belongs to one thread at a time.
 */
#ifndef LV_BUF_H
#define LV_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"

typedef struct lv_buf {
    char *data; /* NULL until the first append; owned by the buffer */
    size_t len; /* bytes in data, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
    int oom;    /* set when an allocation failed; every later append is dropped */
} lv_buf;

/* Makes b empty; it owns nothing yet. */
void lv_buf_init(lv_buf *b);
/* Frees what b owns and makes it empty again. */
void lv_buf_free(lv_buf *b);
/* Forgets the content but keeps the allocation (and clears oom). */
void lv_buf_reset(lv_buf *b);

void lv_buf_append(lv_buf *b, const void *p, size_t n);
void lv_buf_puts(lv_buf *b, const char *s);
void lv_buf_putc(lv_buf *b, char c);
void lv_buf_printf(lv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lv_buf_vprintf(lv_buf *b, const char *fmt, va_list ap);

/*
 * Appends s[0..n) percent-encoded as AWS SigV4 (and S3's encoding-type=url) encode: the RFC 3986
 * unreserved characters A-Z a-z 0-9 - . _ ~ stay, and, if keep_slash, '/' stays; every other byte
 * becomes %XX with upper-case hex.
 */
void lv_buf_uri_encode(lv_buf *b, const char *s, size_t n, int keep_slash);

/* Appends s with the five XML special characters escaped (&amp; &lt; &gt; &quot; &apos;). */
void lv_buf_xml_escape(lv_buf *b, const char *s, size_t n);

/* LV_OK, or LV_ENOMEM (detail in err) if an append was dropped. */
lv_err lv_buf_ok(const lv_buf *b, char *err);

/*
 * Hands the content to the caller, who frees it with lv_free; b is left empty. Returns "" newly
 * allocated when b is empty, NULL if b had failed (b is then freed too) or allocation fails.
 */
char *lv_buf_take(lv_buf *b);

/*
 * Decodes %XX sequences of s[0..n) into out (which must hold n + 1 bytes) and NUL-terminates it;
 * a '%' not followed by two hex digits is kept as it is. '+' is kept (it is not a space here).
 * Returns the decoded length; the result may contain NUL bytes if the input encoded them.
 */
size_t lv_uri_decode(const char *s, size_t n, char *out);

#endif
