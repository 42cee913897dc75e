/*
 * xml: S3's XML both ways. Out: escaping, elements and the S3 error document (Code, Message,
 * Resource, RequestId, plus the fields some codes carry). In: request bodies (bucket configuration
 * now; DeleteObjects and CompleteMultipartUpload next) parsed by expat into a small tree.
 *
 * The parser refuses a DOCTYPE (so no entity can expand), limits depth and node count, and keeps
 * element local names (namespaces are dropped: S3 bodies use one default namespace, or none).
 *
 * No global state; safe from any thread. Trees are owned by the caller (fs3_xml_free).
 */
#ifndef FS3_XML_H
#define FS3_XML_H

#include <stddef.h>

#include "buf.h"
#include "s3err.h"

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

#endif
