/*
 * lease: the single-writer lease of write mode (see lease.h for the object and the protocol, and
 * docs/lease.md for what each failure means).
 *
 * Two stores behind three operations, each with S3's semantics:
 *
 *   get     the object's bytes and ETag, or LV_ENOTFOUND
 *   put     a write conditional on If-None-Match: * (if_match NULL) or If-Match: <ETag>;
 *           LV_ECONFLICT (412, or 404 for If-Match on a missing object) when the condition fails
 *   delete  the object, conditional on the ETag (S3: DeleteObject with If-Match)
 *
 * S3: one object <prefix>/lock.json through the replica's S3 client. A PUT whose response was
 * lost and whose retry got 412 is checked by the client against the stored object; when it is
 * ours (s3_result.recovered) the write succeeded and we go on with the stored ETag. Release is
 * DELETE with If-Match, as Litestream's: a 412 means the lease is not ours any more, a 404 that
 * it is gone (also what a retried delete whose first attempt succeeded finds).
 *
 * File (file:///dir): the object is <dir>/lock.json, its "ETag" the quoted MD5 of its bytes (as
 * S3's for a single PUT). Every change is made under flock(LOCK_EX) on <dir>/lock.json.flock (a
 * file created once and never removed), so the read-compare-write is atomic between processes
 * and between threads (flock locks belong to the open file description, and each operation opens
 * its own). The new bytes go to a temp file, fsynced, then linked into place (creation: link
 * fails if the name exists, which also stops a writer that ignores the flock) or renamed over the
 * old one (takeover, renewal), then the directory is fsynced. A crash before the rename leaves a
 * stray temp file and the old lease; after it, the new one. Readers take no lock: rename is
 * atomic, so a read sees the old or the new bytes, never a mix.
 *
 * Threads: see lease.h. The sequence number that makes bodies unique is a process-wide atomic.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "lease.h"
#include "s3.h"
#include "timeexpr.h"

#define ETAG_LEN      80
#define MAX_ATTEMPTS  4    /* acquire: reads and writes before giving up on a busy race */
#define MAX_LEASE_LEN 4096 /* a lease object larger than this is not one of ours */

struct lease {
    replica *r;
    s3_client *s3;    /* NULL: the file store */
    char *bucket;     /* s3 */
    char *key;        /* s3: "<prefix>/lock.json"; file: "<dir>/lock.json" */
    char *dir;        /* file */
    char *flock_path; /* file: "<dir>/lock.json.flock" */
    char *where;      /* for messages: "s3://bucket/prefix/lock.json (endpoint)" or the path */
    char *owner;
    int64_t ttl_ms;
    lease_clock clock;

    pthread_mutex_t mu; /* guards the fields below (never held across I/O) */
    int64_t generation;
    int64_t expires_ms;
    char etag[ETAG_LEN];
    int lost;
};

/* What a lease object says. */
typedef struct lease_doc {
    int64_t generation;
    int64_t expires_ms;
    char expires_at[64]; /* as written */
    char owner[256];
} lease_doc;

static atomic_uint g_seq;

static char *dup_str(const char *s, size_t n)
{
    char *p = lv_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static int64_t now_ms(const lease *l)
{
    if (l->clock.now_ms)
        return l->clock.now_ms(l->clock.ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the object ---------------------------------------------------------------------------- */

/* RFC3339Nano as Go writes it (UTC): "2026-01-02T03:04:05.678000001Z", trailing zeros trimmed. */
static void format_expiry(int64_t ms, uint32_t sub_ms_ns, char out[64])
{
    char base[LV_TIME_RFC3339_LEN];
    lv_time_format(ms, 0, base); /* "2026-01-02T03:04:05Z" */
    size_t n = strlen(base);
    if (n > 0)
        base[--n] = 0; /* the 'Z' */
    int64_t msr = ms % 1000;
    if (msr < 0)
        msr += 1000;
    uint32_t frac = (uint32_t)msr * 1000000u + sub_ms_ns % 1000000u;
    if (frac == 0) {
        snprintf(out, 64, "%sZ", base);
        return;
    }
    char digits[10];
    snprintf(digits, sizeof digits, "%09u", frac);
    size_t d = 9;
    while (d > 0 && digits[d - 1] == '0')
        d--;
    digits[d] = 0;
    snprintf(out, 64, "%s.%sZ", base, digits);
}

/* A JSON string as Go's encoding/json writes it (<, > and & escaped too). */
static void json_string(lv_buf *b, const char *s)
{
    lv_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\')
            lv_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            lv_buf_puts(b, "\\n");
        else if (c == '\r')
            lv_buf_puts(b, "\\r");
        else if (c == '\t')
            lv_buf_puts(b, "\\t");
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            lv_buf_printf(b, "\\u%04x", c);
        else
            lv_buf_putc(b, (char)c);
    }
    lv_buf_putc(b, '"');
}

/* The body Litestream's leaser writes: json.Marshal of {Generation, ExpiresAt, Owner}. */
static void encode_doc(lv_buf *b, int64_t generation, const char *expires_at, const char *owner)
{
    lv_buf_printf(b, "{\"generation\":%lld,\"expires_at\":", (long long)generation);
    json_string(b, expires_at);
    if (owner && *owner) {
        lv_buf_puts(b, ",\"owner\":");
        json_string(b, owner);
    }
    lv_buf_putc(b, '}');
}

/* A minimal JSON reader, enough for the lease object (and to skip whatever else it may hold). */
typedef struct jreader {
    const char *p, *end;
} jreader;

static void jws(jreader *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string at j->p into out (UTF-8, truncated to cap - 1 bytes; NUL-terminated). 0 or -1. */
static int jstring(jreader *j, char *out, size_t cap)
{
    size_t n = 0;
    if (j->p >= j->end || *j->p != '"')
        return -1;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned long cp;
        if (*j->p == '\\') {
            if (++j->p >= j->end)
                return -1;
            char e = *j->p++;
            switch (e) {
            case '"':
                cp = '"';
                break;
            case '\\':
                cp = '\\';
                break;
            case '/':
                cp = '/';
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u': {
                if (j->end - j->p < 4)
                    return -1;
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(j->p[i]);
                    if (h < 0)
                        return -1;
                    cp = cp << 4 | (unsigned long)h;
                }
                j->p += 4;
                break;
            }
            default:
                return -1;
            }
            /* UTF-8 (a lone surrogate is written as it is: it only ends up in a message) */
            char u[4];
            size_t un;
            if (cp < 0x80) {
                u[0] = (char)cp;
                un = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                un = 2;
            } else {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                un = 3;
            }
            for (size_t i = 0; i < un; i++)
                if (n + 1 < cap)
                    out[n++] = u[i];
        } else {
            if ((unsigned char)*j->p < 0x20)
                return -1;
            if (n + 1 < cap)
                out[n++] = *j->p;
            j->p++;
        }
    }
    if (j->p >= j->end)
        return -1;
    j->p++;
    if (cap)
        out[n] = 0;
    return 0;
}

/* Skips one value (any type, nested to a bounded depth). 0 or -1. */
static int jskip(jreader *j, int depth)
{
    jws(j);
    if (j->p >= j->end || depth > 32)
        return -1;
    char c = *j->p;
    if (c == '"') {
        char dummy[1];
        return jstring(j, dummy, 1);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                char dummy[1];
                jws(j);
                if (jstring(j, dummy, 1) != 0)
                    return -1;
                jws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return -1;
            }
            if (jskip(j, depth + 1) != 0)
                return -1;
            jws(j);
            if (j->p >= j->end)
                return -1;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != close)
                return -1;
            return 0;
        }
    }
    /* number, true, false, null */
    const char *s = j->p;
    while (j->p < j->end && strchr("+-.0123456789eEtruefalsn", *j->p))
        j->p++;
    return j->p > s ? 0 : -1;
}

/* Parses a lease object. LV_ECORRUPT naming what is wrong. */
static lv_err decode_doc(const char *data, size_t len, lease_doc *d, char *err)
{
    memset(d, 0, sizeof *d);
    jreader j = {data, data + len};
    int has_gen = 0, has_exp = 0;
    jws(&j);
    if (j.p >= j.end || *j.p++ != '{')
        return lv_fail(err, LV_ECORRUPT, "not a JSON object");
    jws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            char name[32];
            jws(&j);
            if (jstring(&j, name, sizeof name) != 0)
                return lv_fail(err, LV_ECORRUPT, "bad JSON at byte %zu", (size_t)(j.p - data));
            jws(&j);
            if (j.p >= j.end || *j.p++ != ':')
                return lv_fail(err, LV_ECORRUPT, "bad JSON at byte %zu", (size_t)(j.p - data));
            jws(&j);
            if (strcmp(name, "generation") == 0) {
                char *endp = NULL;
                char num[32];
                size_t k = 0;
                while (j.p < j.end && k + 1 < sizeof num && strchr("-0123456789", *j.p))
                    num[k++] = *j.p++;
                num[k] = 0;
                errno = 0;
                long long g = strtoll(num, &endp, 10);
                if (k == 0 || *endp || errno)
                    return lv_fail(err, LV_ECORRUPT, "generation is not an integer");
                d->generation = g;
                has_gen = 1;
            } else if (strcmp(name, "expires_at") == 0) {
                if (jstring(&j, d->expires_at, sizeof d->expires_at) != 0)
                    return lv_fail(err, LV_ECORRUPT, "expires_at is not a string");
                char terr[LV_ERRLEN];
                if (d->expires_at[0] < '0' || d->expires_at[0] > '9' ||
                    lv_time_parse(d->expires_at, 0, &d->expires_ms, terr) != LV_OK)
                    return lv_fail(err, LV_ECORRUPT, "expires_at \"%s\" is not an RFC 3339 time",
                                   d->expires_at);
                has_exp = 1;
            } else if (strcmp(name, "owner") == 0) {
                if (jstring(&j, d->owner, sizeof d->owner) != 0)
                    return lv_fail(err, LV_ECORRUPT, "owner is not a string");
            } else if (jskip(&j, 0) != 0) {
                return lv_fail(err, LV_ECORRUPT, "bad JSON at byte %zu", (size_t)(j.p - data));
            }
            jws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p >= j.end || *j.p++ != '}')
                return lv_fail(err, LV_ECORRUPT, "bad JSON at byte %zu", (size_t)(j.p - data));
            break;
        }
    }
    jws(&j);
    if (j.p != j.end)
        return lv_fail(err, LV_ECORRUPT, "bytes after the JSON object");
    if (!has_gen || !has_exp)
        return lv_fail(err, LV_ECORRUPT, "no %s", has_gen ? "expires_at" : "generation");
    return LV_OK;
}

/* "is held by host:1234 until 2026-01-02T03:04:05.678Z (generation 7)" */
static lv_err held_by(const lease *l, const lease_doc *d, char *err)
{
    char until[LV_TIME_RFC3339_LEN];
    lv_time_format(d->expires_ms, 1, until);
    return lv_fail(err, LV_ECONFLICT, "lease %s is held by %s until %s (generation %lld)", l->where,
                   d->owner[0] ? d->owner : "(no owner)", until, (long long)d->generation);
}

/* ---- the stores ---------------------------------------------------------------------------- */

static void md5_etag(const void *data, size_t len, char out[ETAG_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL))
        mdlen = 0;
    char *p = out;
    *p++ = '"';
    for (unsigned i = 0; i < mdlen && i < 16; i++)
        p += snprintf(p, 3, "%02x", md[i]);
    *p++ = '"';
    *p = 0;
}

/* Reads a whole small file into body. LV_ENOTFOUND when it does not exist. */
static lv_err file_read(const char *path, lv_buf *body, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return LV_ENOTFOUND;
        return lv_fail(err, LV_EIO, "open %s: %s", path, strerror(errno));
    }
    lv_err rc = LV_OK;
    char buf[1024];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = lv_fail(err, LV_EIO, "read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        lv_buf_append(body, buf, (size_t)n);
        if (body->len > MAX_LEASE_LEN) {
            rc = lv_fail(err, LV_ECORRUPT, "%s: over %d bytes: not a lease", path, MAX_LEASE_LEN);
            break;
        }
    }
    close(fd);
    if (rc == LV_OK)
        rc = lv_buf_ok(body, err);
    return rc;
}

static lv_err st_get(lease *l, lv_buf *body, char etag[ETAG_LEN], char *err)
{
    if (l->s3) {
        s3_result res;
        lv_err rc = s3_get(l->s3, l->bucket, l->key, 0, 0, body, &res, err);
        if (rc == LV_OK)
            snprintf(etag, ETAG_LEN, "%s", res.etag);
        return rc;
    }
    lv_err rc = file_read(l->key, body, err);
    if (rc == LV_OK)
        md5_etag(body->data ? body->data : "", body->len, etag);
    return rc;
}

static lv_err fsync_dir(const char *p, char *err)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lv_fail(err, LV_EIO, "open %s: %s", p, strerror(errno));
    int ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    return ok ? LV_OK : lv_fail(err, LV_EIO, "fsync %s: %s", p, strerror(e));
}

/* Opens and locks <dir>/lock.json.flock (creating <dir> and it). *fd is then the caller's. */
static lv_err file_lock(lease *l, int *fd, char *err)
{
    if (mkdir(l->dir, 0755) != 0 && errno != EEXIST)
        return lv_fail(err, LV_EIO, "mkdir %s: %s", l->dir, strerror(errno));
    int f = open(l->flock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return lv_fail(err, LV_EIO, "open %s: %s", l->flock_path, strerror(errno));
    while (flock(f, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(f);
        return lv_fail(err, LV_EIO, "flock %s: %s", l->flock_path, strerror(e));
    }
    *fd = f;
    return LV_OK;
}

/* The current ETag under the flock: "" when there is no object. */
static lv_err file_current(lease *l, char etag[ETAG_LEN], char *err)
{
    lv_buf cur;
    lv_buf_init(&cur);
    lv_err rc = file_read(l->key, &cur, err);
    etag[0] = 0;
    if (rc == LV_OK)
        md5_etag(cur.data ? cur.data : "", cur.len, etag);
    else if (rc == LV_ENOTFOUND)
        rc = LV_OK;
    lv_buf_free(&cur);
    return rc;
}

static lv_err file_put(lease *l, const char *body, size_t len, const char *if_match,
                       char etag[ETAG_LEN], char *err)
{
    lv_err rc = LV_OK;
    int lockfd = -1, fd = -1, tmp_exists = 0;
    char cur[ETAG_LEN];
    lv_buf tmp;
    lv_buf_init(&tmp);
    if ((rc = file_lock(l, &lockfd, err)) != LV_OK)
        goto done;
    if ((rc = file_current(l, cur, err)) != LV_OK)
        goto done;
    if (!if_match && cur[0]) {
        rc = lv_fail(err, LV_ECONFLICT, "%s exists (If-None-Match: *)", l->key);
        goto done;
    }
    if (if_match && strcmp(cur, if_match) != 0) {
        rc = lv_fail(err, LV_ECONFLICT, "%s: %s (If-Match: %s)", l->key,
                     cur[0] ? "changed" : "does not exist", if_match);
        goto done;
    }
    lv_buf_printf(&tmp, "%s/.lock.json.tmp-XXXXXX", l->dir);
    if ((rc = lv_buf_ok(&tmp, err)) != LV_OK)
        goto done;
    fd = mkostemp(tmp.data, O_CLOEXEC);
    if (fd < 0) {
        rc = lv_fail(err, LV_EIO, "create %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    tmp_exists = 1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, body + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = lv_fail(err, LV_EIO, "write %s: %s", tmp.data, strerror(errno));
            goto done;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        rc = lv_fail(err, LV_EIO, "fsync %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    /* a crash before this leaves the old lease and a stray temp file; after it, the new lease */
    if (!if_match) {
        if (link(tmp.data, l->key) != 0) {
            rc = errno == EEXIST ? lv_fail(err, LV_ECONFLICT, "%s exists", l->key)
                                 : lv_fail(err, LV_EIO, "link %s: %s", l->key, strerror(errno));
            goto done;
        }
    } else {
        if (rename(tmp.data, l->key) != 0) {
            rc = lv_fail(err, LV_EIO, "rename %s to %s: %s", tmp.data, l->key, strerror(errno));
            goto done;
        }
        tmp_exists = 0;
    }
    if ((rc = fsync_dir(l->dir, err)) != LV_OK)
        goto done;
    md5_etag(body, len, etag);
done:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp.data);
    if (lockfd >= 0)
        close(lockfd); /* releases the flock */
    lv_buf_free(&tmp);
    return rc;
}

/* PUT the lease body conditionally; etag gets the new object's ETag. */
static lv_err st_put(lease *l, const char *body, size_t len, const char *if_match,
                     char etag[ETAG_LEN], char *err)
{
    if (!l->s3)
        return file_put(l, body, len, if_match, etag, err);
    s3_op opts;
    s3_op_init(&opts);
    s3_header ct = {"Content-Type", "application/json"};
    opts.headers = &ct;
    opts.n_headers = 1;
    if (if_match)
        opts.if_match = if_match;
    else
        opts.if_none_match = "*";
    s3_result res;
    lv_err rc = s3_put(l->s3, l->bucket, l->key, body, len, &opts, &res, err);
    s3_op_free(&opts);
    /* a lost response recognised as ours (res.recovered) is LV_OK here: the write happened */
    if (rc == LV_OK)
        snprintf(etag, ETAG_LEN, "%s", res.etag);
    else if (rc == LV_ENOTFOUND && if_match) /* If-Match on an object that is gone */
        rc = LV_ECONFLICT;
    return rc;
}

/* Deletes the object only if its ETag is if_match (S3: DeleteObject with If-Match). */
static lv_err st_delete(lease *l, const char *if_match, char *err)
{
    if (l->s3) {
        s3_op op;
        s3_op_init(&op);
        op.kind = S3_DELETE;
        op.key = l->key;
        op.if_match = if_match;
        lv_err rc = s3_run(l->s3, l->bucket, &op, 1, err);
        s3_op_free(&op);
        return rc;
    }
    int lockfd = -1;
    char cur[ETAG_LEN];
    lv_err rc = file_lock(l, &lockfd, err);
    if (rc != LV_OK)
        return rc;
    if ((rc = file_current(l, cur, err)) != LV_OK)
        goto done;
    if (!cur[0])
        goto done; /* already gone */
    if (strcmp(cur, if_match) != 0) {
        rc = lv_fail(err, LV_ECONFLICT, "%s changed (If-Match: %s)", l->key, if_match);
        goto done;
    }
    if (unlink(l->key) != 0) {
        rc = lv_fail(err, LV_EIO, "unlink %s: %s", l->key, strerror(errno));
        goto done;
    }
    rc = fsync_dir(l->dir, err);
done:
    close(lockfd);
    return rc;
}

/* Reads and parses the object. LV_ENOTFOUND when there is none. */
static lv_err read_doc(lease *l, lease_doc *d, char etag[ETAG_LEN], char *err)
{
    lv_buf body;
    lv_buf_init(&body);
    lv_err rc = st_get(l, &body, etag, err);
    if (rc == LV_OK) {
        if (body.len > MAX_LEASE_LEN)
            rc = lv_fail(err, LV_ECORRUPT, "lease %s: %zu bytes: not a lease object", l->where,
                         body.len);
        else if ((rc = decode_doc(body.data ? body.data : "", body.len, d, err)) != LV_OK)
            lv_wrap(err, rc, "lease %s: not a lease object: ", l->where);
    } else if (rc != LV_ENOTFOUND) {
        lv_wrap(err, rc, "lease %s: ", l->where);
    }
    lv_buf_free(&body);
    return rc;
}

/* Writes {generation, now + ttl, owner} conditionally; on LV_OK fills etag and *expires. */
static lv_err write_doc(lease *l, int64_t generation, const char *if_match, char etag[ETAG_LEN],
                        int64_t *expires, char *err)
{
    int64_t exp = now_ms(l) + l->ttl_ms;
    char at[64];
    format_expiry(exp, (uint32_t)(atomic_fetch_add(&g_seq, 1) % 1000000u), at);
    lv_buf body;
    lv_buf_init(&body);
    encode_doc(&body, generation, at, l->owner);
    lv_err rc = lv_buf_ok(&body, err);
    if (rc == LV_OK)
        rc = st_put(l, body.data, body.len, if_match, etag, err);
    if (rc == LV_OK)
        *expires = exp;
    lv_buf_free(&body);
    return rc;
}

/* ---- the lease ----------------------------------------------------------------------------- */

/* Where the lease object of r lives: <prefix>/lock.json (s3) or <dir>/lock.json (file). */
static lv_err locate(lease *l, char *err)
{
    lv_buf k, w;
    lv_buf_init(&k);
    lv_buf_init(&w);
    replica_object_key(l->r, LEASE_KEY_NAME, &k);
    if (l->s3) {
        l->bucket = dup_str(replica_bucket(l->r), strlen(replica_bucket(l->r)));
        lv_buf_printf(&w, "s3://%s/%s (%s)", l->bucket ? l->bucket : "", k.data ? k.data : "",
                      s3_client_endpoint(l->s3));
    } else {
        size_t n = k.len >= strlen(LEASE_KEY_NAME) + 1 ? k.len - strlen(LEASE_KEY_NAME) - 1 : 0;
        l->dir = dup_str(k.data ? k.data : "", n);
        lv_buf_printf(&w, "%s%s", k.data && k.data[0] == '/' ? "file://" : "",
                      k.data ? k.data : "");
        lv_buf f;
        lv_buf_init(&f);
        lv_buf_printf(&f, "%s.flock", k.data ? k.data : "");
        l->flock_path = lv_buf_take(&f);
    }
    l->key = lv_buf_take(&k);
    l->where = lv_buf_take(&w);
    if (!l->key || !l->where || (l->s3 ? !l->bucket : !l->dir || !l->flock_path))
        return lv_fail(err, LV_ENOMEM, "lease: out of memory");
    return LV_OK;
}

void lease_free(lease *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    lv_free(l->bucket);
    lv_free(l->key);
    lv_free(l->dir);
    lv_free(l->flock_path);
    lv_free(l->where);
    lv_free(l->owner);
    lv_free(l);
}

static lv_err lease_new(replica *r, int64_t ttl_ms, const char *owner, const lease_clock *clock,
                        lease **out, char *err)
{
    if (ttl_ms < 0)
        return lv_fail(err, LV_EINVAL, "lease: ttl %lld ms: want 0 (default) or more",
                       (long long)ttl_ms);
    lease *l = lv_calloc(1, sizeof *l);
    if (!l)
        return lv_fail(err, LV_ENOMEM, "lease: out of memory");
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        lv_free(l);
        return lv_fail(err, LV_ENOMEM, "lease: cannot make a mutex");
    }
    l->r = r;
    l->s3 = replica_s3(r);
    l->ttl_ms = ttl_ms ? ttl_ms : LEASE_DEFAULT_TTL_MS;
    if (clock)
        l->clock = *clock;
    char def[320];
    if (!owner) {
        char host[256];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = 0;
        snprintf(def, sizeof def, "%s:%ld", host, (long)getpid());
        owner = def;
    }
    lv_err rc = LV_OK;
    if (!(l->owner = dup_str(owner, strlen(owner))))
        rc = lv_fail(err, LV_ENOMEM, "lease: out of memory");
    else
        rc = locate(l, err);
    if (rc != LV_OK) {
        lease_free(l);
        return rc;
    }
    *out = l;
    return LV_OK;
}

lv_err lease_acquire(replica *r, int64_t ttl_ms, const char *owner, const lease_clock *clock,
                     lease **out, char *err)
{
    lease *l = NULL;
    lv_err rc = lease_new(r, ttl_ms, owner, clock, &l, err);
    if (rc != LV_OK)
        return rc;
    for (int attempt = 0;; attempt++) {
        lease_doc cur;
        char etag[ETAG_LEN] = "";
        rc = read_doc(l, &cur, etag, err);
        int exists = rc == LV_OK;
        if (rc != LV_OK && rc != LV_ENOTFOUND)
            goto done;
        if (exists && now_ms(l) < cur.expires_ms) {
            rc = held_by(l, &cur, err);
            goto done;
        }
        if (attempt == MAX_ATTEMPTS) {
            rc = lv_fail(err, LV_ECONFLICT,
                         "lease %s: lost %d races to acquire it to writers that then let it go",
                         l->where, MAX_ATTEMPTS);
            goto done;
        }
        /* none, or expired: create it, or take it over from the ETag we read */
        int64_t gen = exists ? cur.generation + 1 : 1;
        char new_etag[ETAG_LEN];
        int64_t exp = 0;
        rc = write_doc(l, gen, exists ? etag : NULL, new_etag, &exp, err);
        if (rc == LV_OK) {
            l->generation = gen;
            l->expires_ms = exp;
            snprintf(l->etag, sizeof l->etag, "%s", new_etag);
            goto done;
        }
        if (rc != LV_ECONFLICT) {
            lv_wrap(err, rc, "lease %s: ", l->where);
            goto done;
        }
        /* 412: someone else wrote it between our read and our write; see who */
    }
done:
    if (rc != LV_OK) {
        lease_free(l);
        return rc;
    }
    *out = l;
    return LV_OK;
}

/* After a lost condition: "... was taken over by host:1 until ... (generation 8)" or gone. */
static lv_err lost_msg(lease *l, const char *what, char *err)
{
    lease_doc cur;
    char etag[ETAG_LEN];
    char rerr[LV_ERRLEN];
    lv_err rc = read_doc(l, &cur, etag, rerr);
    if (rc == LV_OK) {
        char until[LV_TIME_RFC3339_LEN];
        lv_time_format(cur.expires_ms, 1, until);
        return lv_fail(err, LV_ECONFLICT,
                       "%s lease %s: lost: now held by %s until %s (generation %lld); stop writing",
                       what, l->where, cur.owner[0] ? cur.owner : "(no owner)", until,
                       (long long)cur.generation);
    }
    if (rc == LV_ENOTFOUND)
        return lv_fail(err, LV_ECONFLICT, "%s lease %s: lost: the object was deleted; stop writing",
                       what, l->where);
    return lv_fail(err, LV_ECONFLICT, "%s lease %s: lost: the object changed (%s); stop writing",
                   what, l->where, rerr);
}

lv_err lease_renew(lease *l, char *err)
{
    char etag[ETAG_LEN];
    pthread_mutex_lock(&l->mu);
    int lost = l->lost;
    int64_t gen = l->generation;
    snprintf(etag, sizeof etag, "%s", l->etag);
    pthread_mutex_unlock(&l->mu);
    if (lost)
        return lv_fail(err, LV_ECONFLICT, "renew lease %s: lost earlier; stop writing", l->where);
    char new_etag[ETAG_LEN];
    int64_t exp = 0;
    lv_err rc = write_doc(l, gen, etag, new_etag, &exp, err);
    pthread_mutex_lock(&l->mu);
    if (rc == LV_OK) {
        l->expires_ms = exp;
        snprintf(l->etag, sizeof l->etag, "%s", new_etag);
    } else if (rc == LV_ECONFLICT) {
        l->lost = 1;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc == LV_ECONFLICT)
        return lost_msg(l, "renew", err);
    if (rc != LV_OK)
        lv_wrap(err, rc, "renew lease %s: ", l->where);
    return rc;
}

lv_err lease_release(lease *l, char *err)
{
    if (!l)
        return LV_OK;
    lv_err rc = LV_OK;
    if (l->lost) {
        rc = lv_fail(err, LV_ECONFLICT, "release lease %s: lost earlier; left alone", l->where);
        goto done;
    }
    /* a conditional delete: only while the object is still the one we wrote (a retried
     * delete whose first attempt succeeded finds nothing: that is ours too) */
    rc = st_delete(l, l->etag, err);
    if (rc == LV_ENOTFOUND)
        rc = LV_OK;
    else if (rc == LV_ECONFLICT)
        rc = lost_msg(l, "release", err);
    else if (rc != LV_OK)
        lv_wrap(err, rc, "release lease %s: ", l->where);
done:
    lease_free(l);
    return rc;
}

const char *lease_holder(const lease *l)
{
    return l->owner;
}

int64_t lease_expires_ms(const lease *l)
{
    lease *m = (lease *)l; /* the mutex only */
    pthread_mutex_lock(&m->mu);
    int64_t v = l->expires_ms;
    pthread_mutex_unlock(&m->mu);
    return v;
}

int64_t lease_generation(const lease *l)
{
    return l->generation; /* set once, at acquire */
}

int lease_lost(const lease *l)
{
    lease *m = (lease *)l;
    pthread_mutex_lock(&m->mu);
    int v = l->lost;
    pthread_mutex_unlock(&m->mu);
    return v;
}
