/*
 * router: which S3 operation a request is, on which bucket and key, from its method, path, query,
 * Host and (for copies) one header. Path style (/bucket/key) and virtual-host style
 * (Host: bucket.localhost:9000, /key) are both recognised; paths under /_fakes3/ are fakes3's own
 * admin endpoints.
 *
 * Also the query-string parser the operations read their parameters with.
 *
 * Pure functions; safe from any thread.
 */
#ifndef FS3_ROUTER_H
#define FS3_ROUTER_H

#include <stddef.h>

#include "s3err.h"
#include "store.h"

typedef enum fs3_op {
    FS3_OP_UNKNOWN = 0,
    /* implemented */
    FS3_OP_LIST_BUCKETS,
    FS3_OP_CREATE_BUCKET,
    FS3_OP_DELETE_BUCKET,
    FS3_OP_HEAD_BUCKET,
    FS3_OP_GET_BUCKET_LOCATION,
    FS3_OP_LIST_OBJECTS,
    FS3_OP_LIST_OBJECTS_V2,
    FS3_OP_PUT_OBJECT,
    FS3_OP_GET_OBJECT,
    FS3_OP_HEAD_OBJECT,
    FS3_OP_DELETE_OBJECT,
    FS3_OP_ADMIN_HEALTH,
    FS3_OP_ADMIN_STATS,
    FS3_OP_COPY_OBJECT,
    FS3_OP_DELETE_OBJECTS,
    FS3_OP_CREATE_MULTIPART_UPLOAD,
    FS3_OP_UPLOAD_PART,
    FS3_OP_UPLOAD_PART_COPY,
    FS3_OP_COMPLETE_MULTIPART_UPLOAD,
    FS3_OP_ABORT_MULTIPART_UPLOAD,
    FS3_OP_LIST_PARTS,
    FS3_OP_LIST_MULTIPART_UPLOADS,
    FS3_OP_GET_OBJECT_TAGGING,    /* always an empty tag set: fakes3 keeps no tags */
    FS3_OP_ADMIN_FAULTS,          /* /_fakes3/faults[/<id>]: GET list, POST add, DELETE clear */
    FS3_OP_GET_BUCKET_VERSIONING, /* always unversioned: an empty VersioningConfiguration */
    FS3_OP_GET_BUCKET_ACL,        /* always the owner with FULL_CONTROL */
    FS3_OP_GET_OBJECT_ACL,        /* likewise */
    /* recognised, answered 501 NotImplemented */
    FS3_OP_BUCKET_SUBRESOURCE, /* ?acl, ?versioning, ?policy... */
    FS3_OP_OBJECT_SUBRESOURCE, /* ?acl, ?tagging, ?retention... */
    FS3_OP_COUNT
} fs3_op;

/* "PutObject", as S3 and the request log name it. */
const char *fs3_op_name(fs3_op op);

/* A query string, decoded: %XX sequences and '+' (a space, as S3 reads query strings). */
typedef struct fs3_query_param {
    char *name;
    char *value; /* "" for a parameter without '=' */
    size_t value_len;
} fs3_query_param;

typedef struct fs3_query {
    fs3_query_param *params;
    size_t n;
} fs3_query;

/* Parses raw (without '?'; NULL is empty) into q, which the caller frees. 0, or -1 (no memory). */
int fs3_query_parse(const char *raw, fs3_query *q);
void fs3_query_free(fs3_query *q);
/* The value of the first parameter called name, or NULL; *len (if not NULL) gets its length. */
const char *fs3_query_get(const fs3_query *q, const char *name, size_t *len);

/* The sub-resource a FS3_OP_BUCKET_SUBRESOURCE / FS3_OP_OBJECT_SUBRESOURCE request names
 * ("policy", "retention"...), for its error message; "" if none. */
const char *fs3_route_subresource(const fs3_query *q, fs3_op op);

typedef struct fs3_route {
    fs3_op op;
    char bucket[FS3_MAX_BUCKET_LEN + 1]; /* "" when the request is about no bucket */
    const char *key;                     /* into the caller's path; NULL when no key */
    size_t key_len;
    int virtual_host; /* the bucket came from Host */
} fs3_route;

/*
 * Routes a request. path is the decoded path (it may hold any byte), host the Host header (may be
 * NULL), vhost_domain the domain under which Host names a bucket ("localhost": Host
 * "photos.localhost:9000" means bucket "photos"), copy_source the x-amz-copy-source header (NULL
 * if absent). Errors: FS3_INVALID_BUCKET_NAME, FS3_KEY_TOO_LONG, FS3_METHOD_NOT_ALLOWED.
 */
fs3_code fs3_route_request(const char *method, const char *path, size_t path_len,
                           const fs3_query *q, const char *host, const char *vhost_domain,
                           const char *copy_source, fs3_route *out, char *err);

#endif
