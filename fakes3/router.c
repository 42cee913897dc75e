/* router: S3 operation from method, path, query and Host (see router.h). */
#include "router.h"

#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "hex.h"

static const char *const op_names[FS3_OP_COUNT] = {
    [FS3_OP_UNKNOWN] = "Unknown",
    [FS3_OP_LIST_BUCKETS] = "ListBuckets",
    [FS3_OP_CREATE_BUCKET] = "CreateBucket",
    [FS3_OP_DELETE_BUCKET] = "DeleteBucket",
    [FS3_OP_HEAD_BUCKET] = "HeadBucket",
    [FS3_OP_GET_BUCKET_LOCATION] = "GetBucketLocation",
    [FS3_OP_LIST_OBJECTS] = "ListObjects",
    [FS3_OP_LIST_OBJECTS_V2] = "ListObjectsV2",
    [FS3_OP_PUT_OBJECT] = "PutObject",
    [FS3_OP_GET_OBJECT] = "GetObject",
    [FS3_OP_HEAD_OBJECT] = "HeadObject",
    [FS3_OP_DELETE_OBJECT] = "DeleteObject",
    [FS3_OP_ADMIN_HEALTH] = "AdminHealth",
    [FS3_OP_ADMIN_STATS] = "AdminStats",
    [FS3_OP_COPY_OBJECT] = "CopyObject",
    [FS3_OP_DELETE_OBJECTS] = "DeleteObjects",
    [FS3_OP_CREATE_MULTIPART_UPLOAD] = "CreateMultipartUpload",
    [FS3_OP_UPLOAD_PART] = "UploadPart",
    [FS3_OP_UPLOAD_PART_COPY] = "UploadPartCopy",
    [FS3_OP_COMPLETE_MULTIPART_UPLOAD] = "CompleteMultipartUpload",
    [FS3_OP_ABORT_MULTIPART_UPLOAD] = "AbortMultipartUpload",
    [FS3_OP_LIST_PARTS] = "ListParts",
    [FS3_OP_LIST_MULTIPART_UPLOADS] = "ListMultipartUploads",
    [FS3_OP_GET_OBJECT_TAGGING] = "GetObjectTagging",
    [FS3_OP_ADMIN_FAULTS] = "AdminFaults",
    [FS3_OP_GET_BUCKET_VERSIONING] = "GetBucketVersioning",
    [FS3_OP_GET_BUCKET_ACL] = "GetBucketAcl",
    [FS3_OP_GET_OBJECT_ACL] = "GetObjectAcl",
    [FS3_OP_BUCKET_SUBRESOURCE] = "BucketSubresource",
    [FS3_OP_OBJECT_SUBRESOURCE] = "ObjectSubresource",
};

const char *fs3_op_name(fs3_op op)
{
    return (int)op >= 0 && op < FS3_OP_COUNT && op_names[op] ? op_names[op] : "Unknown";
}

/* ---- query ----------------------------------------------------------------------------------- */

/* Decodes s[0..n) (%XX, '+' as space) into a new NUL-terminated string. */
static char *form_decode(const char *s, size_t n, size_t *out_len)
{
    char *d = lv_malloc(n + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && lv_hex_digit(s[i + 1]) >= 0 &&
            lv_hex_digit(s[i + 2]) >= 0) {
            d[o++] = (char)(lv_hex_digit(s[i + 1]) * 16 + lv_hex_digit(s[i + 2]));
            i += 2;
        } else if (s[i] == '+') {
            d[o++] = ' ';
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    if (out_len)
        *out_len = o;
    return d;
}

int fs3_query_parse(const char *raw, fs3_query *q)
{
    q->params = NULL;
    q->n = 0;
    if (!raw || !*raw)
        return 0;
    size_t cap = 1;
    for (const char *p = raw; *p; p++)
        cap += *p == '&';
    q->params = lv_calloc(cap, sizeof *q->params);
    if (!q->params)
        return -1;
    const char *p = raw;
    while (*p) {
        const char *e = strchr(p, '&');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            fs3_query_param *qp = &q->params[q->n];
            qp->name = form_decode(p, nlen, NULL);
            qp->value = eq ? form_decode(eq + 1, len - nlen - 1, &qp->value_len)
                           : form_decode("", 0, &qp->value_len);
            q->n++;
            if (!qp->name || !qp->value) {
                fs3_query_free(q);
                return -1;
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

void fs3_query_free(fs3_query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        lv_free(q->params[i].name);
        lv_free(q->params[i].value);
    }
    lv_free(q->params);
    q->params = NULL;
    q->n = 0;
}

const char *fs3_query_get(const fs3_query *q, const char *name, size_t *len)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->params[i].name, name) == 0) {
            if (len)
                *len = q->params[i].value_len;
            return q->params[i].value;
        }
    }
    return NULL;
}

static int has(const fs3_query *q, const char *name)
{
    return fs3_query_get(q, name, NULL) != NULL;
}

/* Sub-resources fakes3 does not serve yet: a request naming one is not a plain object/bucket op. */
static int has_any(const fs3_query *q, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (has(q, names[i]))
            return 1;
    return 0;
}

static const char *const bucket_subresources[] = {"accelerate",
                                                  "acl",
                                                  "analytics",
                                                  "cors",
                                                  "encryption",
                                                  "intelligent-tiering",
                                                  "inventory",
                                                  "lifecycle",
                                                  "logging",
                                                  "metrics",
                                                  "notification",
                                                  "object-lock",
                                                  "ownershipControls",
                                                  "policy",
                                                  "policyStatus",
                                                  "publicAccessBlock",
                                                  "replication",
                                                  "requestPayment",
                                                  "tagging",
                                                  "versioning",
                                                  "versions",
                                                  "website",
                                                  NULL};

static const char *const object_subresources[] = {"acl",     "attributes", "legal-hold",
                                                  "restore", "retention",  "select",
                                                  "tagging", "torrent",    NULL};

const char *fs3_route_subresource(const fs3_query *q, fs3_op op)
{
    const char *const *names = op == FS3_OP_BUCKET_SUBRESOURCE   ? bucket_subresources
                               : op == FS3_OP_OBJECT_SUBRESOURCE ? object_subresources
                                                                 : NULL;
    for (size_t i = 0; names && names[i]; i++)
        if (has(q, names[i]))
            return names[i];
    return "";
}

/* ---- routing --------------------------------------------------------------------------------- */

/* If host is "<bucket>.<domain>[:port]", copies the bucket into out and returns 1. */
static int vhost_bucket(const char *host, const char *domain, char *out, size_t cap)
{
    if (!host || !domain || !*domain)
        return 0;
    size_t hlen = strlen(host);
    const char *colon = strrchr(host, ':');
    if (colon && !strchr(host, ']')) /* not an IPv6 literal */
        hlen = (size_t)(colon - host);
    size_t dlen = strlen(domain);
    if (hlen <= dlen + 1 || host[hlen - dlen - 1] != '.' ||
        strncasecmp(host + hlen - dlen, domain, dlen) != 0)
        return 0;
    size_t blen = hlen - dlen - 1;
    if (blen >= cap)
        blen = cap - 1; /* too long a name: truncated, then refused as invalid */
    for (size_t i = 0; i < blen; i++) {
        char c = host[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[blen] = '\0';
    return 1;
}

fs3_code fs3_route_request(const char *method, const char *path, size_t path_len,
                           const fs3_query *q, const char *host, const char *vhost_domain,
                           const char *copy_source, fs3_route *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (path_len == 0 || path[0] != '/') {
        lv_fail(err, LV_EINVAL, "the path does not start with '/'");
        return FS3_INVALID_REQUEST;
    }
    const char *rest = path + 1; /* after the leading '/' */
    size_t rest_len = path_len - 1;

    if (rest_len >= 8 && memcmp(rest, "_fakes3/", 8) == 0) {
        if (rest_len == 14 && memcmp(rest + 8, "health", 6) == 0 && strcmp(method, "GET") == 0) {
            out->op = FS3_OP_ADMIN_HEALTH;
            return FS3_OK;
        }
        if (rest_len == 13 && memcmp(rest + 8, "stats", 5) == 0 && strcmp(method, "GET") == 0) {
            out->op = FS3_OP_ADMIN_STATS;
            return FS3_OK;
        }
        /* /_fakes3/faults, and /_fakes3/faults/<id> (the id is left in key) */
        if (rest_len >= 14 && memcmp(rest + 8, "faults", 6) == 0 &&
            (rest_len == 14 || rest[14] == '/')) {
            out->op = FS3_OP_ADMIN_FAULTS;
            if (rest_len > 15) {
                out->key = rest + 15;
                out->key_len = rest_len - 15;
            }
            return FS3_OK;
        }
        lv_fail(err, LV_ENOTFOUND, "no such admin endpoint");
        return FS3_INVALID_REQUEST;
    }

    char vb[FS3_MAX_BUCKET_LEN + 2];
    if (vhost_bucket(host, vhost_domain, vb, sizeof vb)) {
        out->virtual_host = 1;
        if (strlen(vb) > FS3_MAX_BUCKET_LEN || !fs3_bucket_name_valid(vb)) {
            lv_fail(err, LV_EINVAL, "invalid bucket name in Host");
            return FS3_INVALID_BUCKET_NAME;
        }
        memcpy(out->bucket, vb, strlen(vb) + 1);
        if (rest_len) {
            out->key = rest;
            out->key_len = rest_len;
        }
    } else if (rest_len) {
        const char *slash = memchr(rest, '/', rest_len);
        size_t blen = slash ? (size_t)(slash - rest) : rest_len;
        if (blen > FS3_MAX_BUCKET_LEN || memchr(rest, '\0', blen)) {
            lv_fail(err, LV_EINVAL, "invalid bucket name");
            return FS3_INVALID_BUCKET_NAME;
        }
        memcpy(out->bucket, rest, blen);
        out->bucket[blen] = '\0';
        if (!fs3_bucket_name_valid(out->bucket)) {
            lv_fail(err, LV_EINVAL, "invalid bucket name");
            return FS3_INVALID_BUCKET_NAME;
        }
        if (slash && rest_len > blen + 1) {
            out->key = slash + 1;
            out->key_len = rest_len - blen - 1;
        }
    }
    if (out->key_len > FS3_MAX_KEY_LEN) {
        lv_fail(err, LV_EINVAL, "key of %zu bytes (at most %d)", out->key_len, FS3_MAX_KEY_LEN);
        return FS3_KEY_TOO_LONG;
    }

    int get = strcmp(method, "GET") == 0, put = strcmp(method, "PUT") == 0,
        del = strcmp(method, "DELETE") == 0, head = strcmp(method, "HEAD") == 0,
        post = strcmp(method, "POST") == 0;
    if (!out->bucket[0]) {
        if (get) {
            out->op = FS3_OP_LIST_BUCKETS;
            return FS3_OK;
        }
    } else if (!out->key) {
        if (get && has(q, "location"))
            out->op = FS3_OP_GET_BUCKET_LOCATION;
        else if (get && has(q, "uploads"))
            out->op = FS3_OP_LIST_MULTIPART_UPLOADS;
        else if (post && has(q, "delete"))
            out->op = FS3_OP_DELETE_OBJECTS;
        else if (get && has(q, "versioning"))
            out->op = FS3_OP_GET_BUCKET_VERSIONING;
        else if (get && has(q, "acl"))
            out->op = FS3_OP_GET_BUCKET_ACL;
        else if ((get || put || del || post) && has_any(q, bucket_subresources))
            out->op = FS3_OP_BUCKET_SUBRESOURCE;
        else if (get) {
            const char *lt = fs3_query_get(q, "list-type", NULL);
            out->op = lt && strcmp(lt, "2") == 0 ? FS3_OP_LIST_OBJECTS_V2 : FS3_OP_LIST_OBJECTS;
        } else if (put)
            out->op = FS3_OP_CREATE_BUCKET;
        else if (del)
            out->op = FS3_OP_DELETE_BUCKET;
        else if (head)
            out->op = FS3_OP_HEAD_BUCKET;
        if (out->op)
            return FS3_OK;
    } else {
        int upload = has(q, "uploadId");
        if (put && upload && has(q, "partNumber"))
            out->op = copy_source ? FS3_OP_UPLOAD_PART_COPY : FS3_OP_UPLOAD_PART;
        else if (post && has(q, "uploads"))
            out->op = FS3_OP_CREATE_MULTIPART_UPLOAD;
        else if (post && upload)
            out->op = FS3_OP_COMPLETE_MULTIPART_UPLOAD;
        else if (del && upload)
            out->op = FS3_OP_ABORT_MULTIPART_UPLOAD;
        else if (get && upload)
            out->op = FS3_OP_LIST_PARTS;
        else if (get && has(q, "tagging"))
            out->op = FS3_OP_GET_OBJECT_TAGGING;
        else if (get && has(q, "acl"))
            out->op = FS3_OP_GET_OBJECT_ACL;
        else if ((get || put || del || post) && has_any(q, object_subresources))
            out->op = FS3_OP_OBJECT_SUBRESOURCE;
        else if (put)
            out->op = copy_source ? FS3_OP_COPY_OBJECT : FS3_OP_PUT_OBJECT;
        else if (get)
            out->op = FS3_OP_GET_OBJECT;
        else if (head)
            out->op = FS3_OP_HEAD_OBJECT;
        else if (del)
            out->op = FS3_OP_DELETE_OBJECT;
        if (out->op)
            return FS3_OK;
    }
    lv_fail(err, LV_EINVAL, "%s is not allowed here", method);
    return FS3_METHOD_NOT_ALLOWED;
}
