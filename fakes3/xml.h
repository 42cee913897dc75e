/*
 * xml: S3's XML both ways. Out: escaping, elements and the S3 error document (Code, Message,
 * Resource, RequestId, plus the fields some codes carry). In: request bodies (CreateBucket's
 * configuration, DeleteObjects' Delete, CompleteMultipartUpload's part list) parsed by expat into
 * a small tree, and the two structured bodies read out of it.
 *
 * The parser refuses a DOCTYPE (so no entity can expand), limits depth and node count, and keeps
 * element local names (namespaces are dropped: S3 bodies use one default namespace, or none).
 *
 * No global state; safe from any thread. Trees are owned by the caller (fs3_xml_free).
 */
#ifndef FS3_XML_H
#define FS3_XML_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "s3err.h"
#include "store.h"

#define FS3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Appends <?xml version="1.0" encoding="UTF-8"?> and a newline. */
void fs3_xml_decl(lv_buf *b);
/*
 * Appends s[0..n) as XML character data: & < > " ' escaped, and bytes XML 1.0 cannot carry
 * (control characters other than tab, LF, CR) written as character references, as S3 does.
 */
void fs3_xml_text(lv_buf *b, const char *s, size_t n);
/* Appends <name>text</name> (text escaped). */
void fs3_xml_elem(lv_buf *b, const char *name, const char *text, size_t n);
/* Appends <name>text</name> for a NUL-terminated text. */
void fs3_xml_elems(lv_buf *b, const char *name, const char *text);

/* One extra element of an error document (<Key>, <BucketName>, <StringToSign>...). */
typedef struct fs3_xml_field {
    const char *name;
    const char *value;
    size_t len;
} fs3_xml_field;

/*
 * Appends S3's error document for code: <Error><Code/><Message/>extra fields<Resource/>
 * <RequestId/><HostId/></Error>. message NULL means S3's default for the code.
 */
void fs3_xml_error(lv_buf *b, fs3_code code, const char *message, const fs3_xml_field *extra,
                   size_t n_extra, const char *resource, const char *request_id);

/* A parsed element: local name, concatenated text, children in document order. */
typedef struct fs3_xml_node {
    char *name;
    char *text; /* NUL-terminated, "" when none */
    size_t text_len;
    struct fs3_xml_node *child; /* first child */
    struct fs3_xml_node *next;  /* next sibling */
} fs3_xml_node;

/*
 * Parses a request body. FS3_MALFORMED_XML (detail in err) for anything not well-formed, a
 * DOCTYPE, or beyond the limits; *root is the caller's to free on success.
 */
fs3_code fs3_xml_parse(const char *data, size_t n, fs3_xml_node **root, char *err);
void fs3_xml_free(fs3_xml_node *root);
/* The first child of node named name, or NULL. */
const fs3_xml_node *fs3_xml_child(const fs3_xml_node *node, const char *name);

/* ---- DeleteObjects: <Delete><Quiet/>?<Object><Key/><ETag/>?</Object>...</Delete> ------------- */

#define FS3_MAX_DELETE_KEYS 1000

typedef struct fs3_delete_item {
    char *key; /* any bytes XML can carry; not trimmed */
    size_t key_len;
    char *etag; /* the optional <ETag> (a conditional delete), quotes removed; NULL if absent */
} fs3_delete_item;

typedef struct fs3_delete_list {
    fs3_delete_item *items; /* in document order */
    size_t n;
    int quiet; /* <Quiet>true</Quiet>: answer only the errors */
} fs3_delete_list;

/*
 * Reads a Delete body. FS3_MALFORMED_XML for anything S3 refuses as such: not well-formed, another
 * root, no <Object>, more than FS3_MAX_DELETE_KEYS, an <Object> without <Key> or with an empty one,
 * a <Quiet> other than true/false. On success *out is the caller's (fs3_delete_list_free); on
 * failure it is empty.
 */
fs3_code fs3_xml_parse_delete(const char *data, size_t n, fs3_delete_list *out, char *err);
void fs3_delete_list_free(fs3_delete_list *d);

/* ---- CompleteMultipartUpload: <CompleteMultipartUpload><Part><PartNumber/><ETag/>... ----------
 */

#define FS3_MAX_PARTS 10000

typedef struct fs3_complete_part {
    long number;             /* as written (range checked by the caller) */
    char etag[FS3_ETAG_MAX]; /* quotes removed; "" when absent or too long to be one */
} fs3_complete_part;

typedef struct fs3_complete_list {
    fs3_complete_part *parts; /* in document order */
    size_t n;
} fs3_complete_list;

/*
 * Reads a CompleteMultipartUpload body. FS3_MALFORMED_XML when not well-formed, another root, no
 * <Part>, more than FS3_MAX_PARTS, a <Part> without a decimal <PartNumber> or without <ETag>. Order
 * and existence are the caller's to check. *out as for fs3_xml_parse_delete.
 */
fs3_code fs3_xml_parse_complete(const char *data, size_t n, fs3_complete_list *out, char *err);
void fs3_complete_list_free(fs3_complete_list *c);

#endif
