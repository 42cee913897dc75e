/*
 * store: buckets and objects on disk or in memory (see store.h for the contract and the locking).
 *
 * The data directory:
 *
 *   DIR/fakes3-store                  marker: "fakes3 data directory, format 1"
 *   DIR/.lock                         flock()ed by the running fakes3
 *   DIR/tmp/                          parts, uploads and bucket changes in flight; emptied at start
 *   DIR/buckets/NAME/bucket           "created <ms since epoch>"
 *   DIR/buckets/NAME/objects/HH/HASH  one file per object; HASH = hex SHA-256 of the key,
 *                                     HH = its first two digits (256 folders, made with the bucket)
 *   DIR/buckets/NAME/objects/HH/t-PID-SEQ  an object upload in flight, beside its final name;
 *                                     removed at start
 *   DIR/buckets/NAME/uploads/ID/upload  a multipart upload: an object file without data whose
 *                                     metadata is the key, the start time and the headers the
 *                                     object will get (ID: FS3_UPLOAD_ID_LEN hex digits)
 *   DIR/buckets/NAME/uploads/ID/NNNNN   part NNNNN (00001-10000), an object file (its metadata's
 *                                     "key" is the part number; the headers its checksums)
 *
 * Bucket names are checked (a-z 0-9 . -, starting and ending alphanumeric) before they are used in
 * a path, and object keys never are: only their hash is. So no request names a path outside DIR.
 *
 * An object file:
 *
 *   offset 0            +----------------------------------------------------------+
 *                       | data: the object's bytes (size)                          |
 *   size                +----------------------------------------------------------+
 *                       | metadata, text, meta_len bytes, one item per line:       |
 *                       |   key <key, percent-encoded>                             |
 *                       |   etag <etag>                                            |
 *                       |   mtime <ms since epoch>                                 |
 *                       |   h <name> <value>   (stored headers, percent-encoded)   |
 *                       |   parts <size 1> ... <size N>   (a completed multipart  |
 *                       |         upload only: where its parts begin and end)     |
 *   size + meta_len     +----------------------------------------------------------+
 *                       | trailer, 24 bytes, big-endian:                           |
 *                       |   u64 size | u32 meta_len | u32 0 | "FS3OBJv1"           |
 *                       +----------------------------------------------------------+
 *
 * The data comes first so an upload streams straight into the file and a GET sends it with
 * sendfile from offset 0; the metadata, only complete at the end of the upload, follows. A file
 * whose length is not size + meta_len + 24, or without the magic, is not an object and is skipped
 * at load (with a warning).
 *
 * Crash ordering of a write: data, metadata and trailer go to objects/HH/t-PID-SEQ (in the folder
 * of the final name, so the rename stays inside one folder; a small object is kept in memory and
 * written with one writev); (--fsync: fdatasync the file); rename onto the object's name;
 * (--fsync: fsync the folder); then the client is answered. A crash before the rename leaves only
 * a temp file (removed at the next start); after it, the new object whole. Bucket creation and
 * deletion likewise build or move a whole folder in DIR/tmp and rename it.
 *
 * --fsync costs two flushes per write, each by the writing thread itself. Concurrent writes share
 * them already in the kernel (the block layer merges the cache flushes that are pending at once).
 * A store-wide group commit (one syncfs(2) per round for all waiting writers) was measured and
 * dropped: syncfs also waits for every other process's writes to the same file system, and on a
 * busy machine a round took 2-13 ms where an fdatasync took under 1 ms (2 cores, ext4, 2026-11).
 *
 * Multipart uploads: an upload folder is built in DIR/tmp and renamed into uploads/ (a crash
 * leaves it whole or absent); a part is written like an object (in DIR/tmp) and renamed over its
 * part file; an abort renames the folder into DIR/tmp and removes it there. Completion streams the
 * listed parts into a temp file beside the object's name, appends metadata and trailer (with the
 * part sizes), (--fsync: fdatasyncs), renames it onto the object's name, and only then renames
 * the upload folder into DIR/tmp: a crash before the first rename leaves the upload as it was and
 * no object; between the two, the whole object and the upload (which can be completed again or
 * aborted); after, only the object.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/fs.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "hex.h"
#include "httpsem.h"

#define MARKER_NAME   "fakes3-store"
#define MARKER_TEXT   "fakes3 data directory, format 1\n"
#define TRAILER_SIZE  24
#define TRAILER_MAGIC "FS3OBJv1"
#define MAX_META_LEN  (1u << 20)
#define SMALL_PUT     (64u * 1024) /* a disk upload up to this size is written with one write */
#define TEMP_PREFIX   "t-"         /* temp files beside the objects: t-PID-SEQ */

typedef struct part {
    int number;
    fs3_object *obj; /* the index's reference; obj->key is the number as text */
} part;

typedef struct upload {
    char id[FS3_UPLOAD_ID_LEN + 1];
    char *key;
    size_t key_len;
    int64_t initiated_ms;
    fs3_kv *headers; /* for the object */
    size_t n_headers;
    part *parts; /* sorted by number */
    size_t n_parts, cap_parts;
    int conflicted; /* the key was deleted since the upload began (in memory only) */
} upload;

typedef struct bucket {
    char name[FS3_MAX_BUCKET_LEN + 1];
    int64_t created_ms;
    fs3_object **objs; /* sorted by key, byte order; the index holds one reference to each */
    size_t n, cap;
    upload **uploads; /* sorted by id */
    size_t nu, capu;
} bucket;

struct fs3_store {
    char *dir; /* NULL for --memory */
    int memory, do_fsync;
    pthread_rwlock_t lock; /* guards buckets and every bucket's objs */
    bucket **buckets;      /* sorted by name */
    size_t nb, capb;
    int lock_fd;
    atomic_ulong seq;          /* unique temp names, upload ids */
    struct fs3_put *cond_puts; /* conditional writes in flight (guarded by lock) */
};

struct fs3_put {
    fs3_store *st;
    char bucket[FS3_MAX_BUCKET_LEN + 1];
    char *key;
    size_t key_len;
    char hash[65];  /* an object's: the hex SHA-256 of its key, its file name */
    int fd;         /* disk: the temp file, once opened (see spill) */
    int created;    /* disk: the temp file exists (until renamed) */
    char *tmp_path; /* disk */
    uint8_t *mem;   /* memory: the bytes so far; disk: the first SMALL_PUT bytes, until spilled */
    size_t mem_cap;
    uint64_t size;
    uint64_t *part_sizes; /* a completion: the sizes of the parts, for partNumber reads */
    size_t n_part_sizes;
    /* a part: the upload and the part number ("" and 0 for an object) */
    char upload_id[FS3_UPLOAD_ID_LEN + 1];
    int part_number;
    /* hashing of what is written (fs3_put_hash) */
    EVP_MD_CTX *md5;
    fs3_ck ck;
    /* a conditional write: linked in the store's cond_puts; conflicted by a delete of the key */
    int conditional, conflicted;
    struct fs3_put *cnext, *cprev;
};

/* ---- objects --------------------------------------------------------------------------------- */

static void object_free(fs3_object *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_headers; i++) {
        lv_free(o->headers[i].name);
        lv_free(o->headers[i].value);
    }
    lv_free(o->headers);
    lv_free(o->key);
    lv_free(o->data);
    lv_free(o->part_sizes);
    lv_free(o);
}

void fs3_object_ref(fs3_object *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

void fs3_object_unref(fs3_object *o)
{
    if (o && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
        object_free(o);
}

const char *fs3_object_header(const fs3_object *o, const char *name)
{
    for (size_t i = 0; i < o->n_headers; i++)
        if (strcmp(o->headers[i].name, name) == 0)
            return o->headers[i].value;
    return NULL;
}

static int keycmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* The first index whose key is >= key (or > key when strictly_after). */
static size_t lower_bound(const bucket *b, const char *key, size_t len, int strictly_after)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = keycmp(b->objs[mid]->key, b->objs[mid]->key_len, key, len);
        if (c < 0 || (strictly_after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The object with key in b, or NULL; *pos is where it is or would go. */
static fs3_object *find_object(const bucket *b, const char *key, size_t len, size_t *pos)
{
    size_t i = lower_bound(b, key, len, 0);
    if (pos)
        *pos = i;
    if (i < b->n && keycmp(b->objs[i]->key, b->objs[i]->key_len, key, len) == 0)
        return b->objs[i];
    return NULL;
}

/*
 * Room for need (>= 1) elements of elem bytes in the growable array arr of *cap elements, which
 * doubles (from first): the array, moved or not, with *cap updated; NULL when out of memory (arr
 * and *cap unchanged, still the caller's).
 */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : first;
    while (c < need)
        c *= 2;
    void *p = lv_realloc(arr, c * elem);
    if (p)
        *cap = c;
    return p;
}

static int reserve_objs(bucket *b, size_t extra)
{
    fs3_object **p = grow(b->objs, &b->cap, b->n + extra, sizeof *p, 64);
    return p ? (b->objs = p, 1) : 0;
}

/* ---- headers and uploads in the index ------------------------------------------------------- */

static void kv_free(fs3_kv *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lv_free(h[i].name);
        lv_free(h[i].value);
    }
    lv_free(h);
}

/* A deep copy of n headers (never NULL on success, even for n == 0); NULL when out of memory. */
static fs3_kv *kv_dup(const fs3_kv *h, size_t n)
{
    fs3_kv *d = lv_calloc(n ? n : 1, sizeof *d);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
        d[i].name = lv_malloc(nl + 1);
        d[i].value = lv_malloc(vl + 1);
        if (!d[i].name || !d[i].value) {
            kv_free(d, i + 1);
            return NULL;
        }
        memcpy(d[i].name, h[i].name, nl + 1);
        memcpy(d[i].value, h[i].value, vl + 1);
    }
    return d;
}

static void upload_free(upload *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n_parts; i++)
        fs3_object_unref(u->parts[i].obj);
    lv_free(u->parts);
    kv_free(u->headers, u->n_headers);
    lv_free(u->key);
    lv_free(u);
}

int fs3_upload_id_valid(const char *id)
{
    size_t i = 0;
    for (; id[i]; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return i == FS3_UPLOAD_ID_LEN;
}

/* The upload with id in b, or NULL; *pos is where it is or would go. */
static upload *find_upload(const bucket *b, const char *id, size_t *pos)
{
    size_t lo = 0, hi = b->nu;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(b->uploads[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < b->nu && strcmp(b->uploads[lo]->id, id) == 0 ? b->uploads[lo] : NULL;
}

/* The upload id of key in b (NULL if there is none, or it is another key's). */
static upload *find_upload_of(const bucket *b, const char *id, const char *key, size_t key_len,
                              size_t *pos)
{
    upload *u = b ? find_upload(b, id, pos) : NULL;
    return u && keycmp(u->key, u->key_len, key, key_len) == 0 ? u : NULL;
}

static int reserve_uploads(bucket *b)
{
    upload **p = grow(b->uploads, &b->capu, b->nu + 1, sizeof *p, 16);
    return p ? (b->uploads = p, 1) : 0;
}

/* Inserts u (capacity reserved by the caller). */
static void insert_upload(bucket *b, upload *u)
{
    size_t pos;
    find_upload(b, u->id, &pos);
    memmove(b->uploads + pos + 1, b->uploads + pos, (b->nu - pos) * sizeof *b->uploads);
    b->uploads[pos] = u;
    b->nu++;
}

static void remove_upload_at(bucket *b, size_t pos)
{
    memmove(b->uploads + pos, b->uploads + pos + 1, (b->nu - pos - 1) * sizeof *b->uploads);
    b->nu--;
}

static part *find_part(const upload *u, int number, size_t *pos)
{
    size_t lo = 0, hi = u->n_parts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->parts[mid].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < u->n_parts && u->parts[lo].number == number ? &u->parts[lo] : NULL;
}

static int reserve_parts(upload *u)
{
    part *p = grow(u->parts, &u->cap_parts, u->n_parts + 1, sizeof *p, 8);
    return p ? (u->parts = p, 1) : 0;
}

/* Puts o in as part number (capacity reserved); the part it replaces goes to *replaced. */
static void set_part(upload *u, int number, fs3_object *o, fs3_object **replaced)
{
    size_t pos;
    part *pt = find_part(u, number, &pos);
    if (pt) {
        *replaced = pt->obj;
        pt->obj = o;
        return;
    }
    memmove(u->parts + pos + 1, u->parts + pos, (u->n_parts - pos) * sizeof *u->parts);
    u->parts[pos].number = number;
    u->parts[pos].obj = o;
    u->n_parts++;
}

/* A delete of key succeeded: conditional writes of it in flight become conflicts (409). */
static void mark_conflicts(fs3_store *st, bucket *b, const char *key, size_t key_len)
{
    for (struct fs3_put *q = st->cond_puts; q; q = q->cnext)
        if (strcmp(q->bucket, b->name) == 0 && keycmp(q->key, q->key_len, key, key_len) == 0)
            q->conflicted = 1;
    for (size_t i = 0; i < b->nu; i++)
        if (keycmp(b->uploads[i]->key, b->uploads[i]->key_len, key, key_len) == 0)
            b->uploads[i]->conflicted = 1;
}

/* ---- buckets --------------------------------------------------------------------------------- */

int fs3_bucket_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > FS3_MAX_BUCKET_LEN)
        return 0;
    int all_ip = 1, dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return 0;
        if ((i == 0 || i == n - 1) && !alnum)
            return 0;
        if (c == '.' && i > 0 && name[i - 1] == '.')
            return 0;
        if (c == '.')
            dots++;
        else if (!(c >= '0' && c <= '9'))
            all_ip = 0;
    }
    return !(all_ip && dots == 3); /* not formatted as an IP address */
}

static bucket *find_bucket(const fs3_store *st, const char *name, size_t *pos)
{
    size_t lo = 0, hi = st->nb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->buckets[mid]->name, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    if (lo < st->nb && strcmp(st->buckets[lo]->name, name) == 0)
        return st->buckets[lo];
    return NULL;
}

static void bucket_free(bucket *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        fs3_object_unref(b->objs[i]);
    lv_free(b->objs);
    for (size_t i = 0; i < b->nu; i++)
        upload_free(b->uploads[i]);
    lv_free(b->uploads);
    lv_free(b);
}

/* Inserts b at pos (capacity checked by the caller with reserve_buckets). */
static void insert_bucket(fs3_store *st, bucket *b, size_t pos)
{
    memmove(st->buckets + pos + 1, st->buckets + pos, (st->nb - pos) * sizeof *st->buckets);
    st->buckets[pos] = b;
    st->nb++;
}

static int reserve_buckets(fs3_store *st)
{
    bucket **p = grow(st->buckets, &st->capb, st->nb + 1, sizeof *p, 16);
    return p ? (st->buckets = p, 1) : 0;
}

/* ---- files ----------------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all_at(int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return -1;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Removes a tree (a deleted bucket, a stale temp folder); best effort. */
static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_join(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_join(const char *fmt, ...)
{
    lv_buf b;
    lv_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    lv_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return lv_buf_take(&b);
}

/* The hex SHA-256 of a key: its file name. */
static void key_hash(const char *key, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, len, md);
    lv_hex_encode(md, sizeof md, out);
}

static char *object_path(const fs3_store *st, const char *bucket_name, const char *key,
                         size_t key_len)
{
    char h[65];
    key_hash(key, key_len, h);
    return path_join("%s/buckets/%s/objects/%.2s/%s", st->dir, bucket_name, h, h);
}

static char *upload_dir(const fs3_store *st, const char *bucket_name, const char *id)
{
    return path_join("%s/buckets/%s/uploads/%s", st->dir, bucket_name, id);
}

static char *part_path(const fs3_store *st, const char *bucket_name, const char *id, int number)
{
    return path_join("%s/buckets/%s/uploads/%s/%05d", st->dir, bucket_name, id, number);
}

static char *temp_path(fs3_store *st, const char *suffix)
{
    unsigned long n = atomic_fetch_add(&st->seq, 1);
    return path_join("%s/tmp/%ld-%lu.%s", st->dir, (long)getpid(), n, suffix);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- metadata text --------------------------------------------------------------------------- */

static void meta_encode(lv_buf *b, const fs3_object *o)
{
    lv_buf_puts(b, "key ");
    lv_buf_uri_encode(b, o->key, o->key_len, 0);
    lv_buf_printf(b, "\netag %s\nmtime %lld\n", o->etag, (long long)o->mtime_ms);
    for (size_t i = 0; i < o->n_headers; i++) {
        lv_buf_puts(b, "h ");
        lv_buf_uri_encode(b, o->headers[i].name, strlen(o->headers[i].name), 0);
        lv_buf_putc(b, ' ');
        lv_buf_uri_encode(b, o->headers[i].value, strlen(o->headers[i].value), 0);
        lv_buf_putc(b, '\n');
    }
    if (o->n_parts) {
        lv_buf_puts(b, "parts");
        for (size_t i = 0; i < o->n_parts; i++)
            lv_buf_printf(b, " %llu", (unsigned long long)o->part_sizes[i]);
        lv_buf_putc(b, '\n');
    }
}

/* A "parts" item: the part sizes, which must add up to size (checked by the caller). */
static int parts_decode(const char *v, size_t n, fs3_object *o)
{
    if (o->part_sizes || n == 0)
        return -1;
    size_t count = 1;
    for (size_t i = 0; i < n; i++)
        count += v[i] == ' ';
    if (count > FS3_MAX_PART_NUMBER || !(o->part_sizes = lv_calloc(count, sizeof(uint64_t))))
        return -1;
    const char *p = v, *end = v + n;
    for (size_t k = 0; k < count; k++) {
        uint64_t x = 0;
        const char *start = p;
        while (p < end && *p >= '0' && *p <= '9' && x <= (UINT64_MAX - 9) / 10)
            x = x * 10 + (uint64_t)(*p++ - '0');
        if (p == start || (p < end && *p != ' ') || (k + 1 < count && p == end))
            return -1;
        o->part_sizes[k] = x;
        p++; /* the space */
    }
    o->n_parts = count;
    return 0;
}

/* A decoded copy of s[0..n) (NUL-terminated; *len gets the decoded length if not NULL). */
static char *decode_dup(const char *s, size_t n, size_t *len)
{
    char *d = lv_malloc(n + 1);
    if (!d)
        return NULL;
    size_t dn = lv_uri_decode(s, n, d);
    if (len)
        *len = dn;
    return d;
}

/* Parses a metadata block into o (key, etag, mtime, headers). 0 on success. */
static int meta_decode(const char *text, size_t n, fs3_object *o)
{
    const char *p = text, *end = text + n;
    size_t cap = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return -1;
        const char *sp = memchr(p, ' ', (size_t)(eol - p));
        if (!sp)
            return -1;
        size_t tag = (size_t)(sp - p);
        const char *v = sp + 1;
        size_t vlen = (size_t)(eol - v);
        if (tag == 3 && memcmp(p, "key", 3) == 0) {
            if (o->key || !(o->key = decode_dup(v, vlen, &o->key_len)))
                return -1;
        } else if (tag == 4 && memcmp(p, "etag", 4) == 0) {
            if (vlen == 0 || vlen >= FS3_ETAG_MAX)
                return -1;
            memcpy(o->etag, v, vlen);
            o->etag[vlen] = '\0';
        } else if (tag == 5 && memcmp(p, "mtime", 5) == 0) {
            char num[32];
            if (vlen == 0 || vlen >= sizeof num)
                return -1;
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            o->mtime_ms = strtoll(num, NULL, 10);
        } else if (tag == 5 && memcmp(p, "parts", 5) == 0) {
            if (parts_decode(v, vlen, o) != 0)
                return -1;
        } else if (tag == 1 && p[0] == 'h') {
            const char *sp2 = memchr(v, ' ', vlen);
            if (!sp2)
                return -1;
            fs3_kv *h = grow(o->headers, &cap, o->n_headers + 1, sizeof *h, 8);
            if (!h)
                return -1;
            o->headers = h;
            fs3_kv *kv = &o->headers[o->n_headers];
            kv->name = decode_dup(v, (size_t)(sp2 - v), NULL);
            kv->value = decode_dup(sp2 + 1, (size_t)(eol - sp2 - 1), NULL);
            if (!kv->name || !kv->value) {
                lv_free(kv->name);
                lv_free(kv->value);
                return -1;
            }
            o->n_headers++;
        } /* unknown items: a newer format's; ignored */
        p = eol + 1;
    }
    return o->key && o->etag[0] ? 0 : -1;
}

/* Reads an object file's trailer and metadata. NULL (with a reason in why) if it is not one.
 * expect_hash NULL: the file name is not a key hash (upload and part files). */
static fs3_object *load_object_file(const char *path, const char *expect_hash, char *why,
                                    size_t why_len)
{
    fs3_object *o = NULL;
    char *meta = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t tr[TRAILER_SIZE];
    if (fstat(fd, &st) != 0 || st.st_size < TRAILER_SIZE ||
        read_all_at(fd, tr, TRAILER_SIZE, st.st_size - TRAILER_SIZE) != 0 ||
        memcmp(tr + 16, TRAILER_MAGIC, 8) != 0) {
        snprintf(why, why_len, "no object trailer");
        goto done;
    }
    uint64_t size = get_be64(tr);
    uint32_t meta_len = get_be32(tr + 8);
    if (meta_len > MAX_META_LEN || size > (uint64_t)st.st_size ||
        size + meta_len + TRAILER_SIZE != (uint64_t)st.st_size) {
        snprintf(why, why_len, "sizes in the trailer do not add up to the file size");
        goto done;
    }
    meta = lv_malloc(meta_len + 1);
    o = lv_calloc(1, sizeof *o);
    if (!meta || !o) {
        snprintf(why, why_len, "out of memory");
        goto fail;
    }
    if (read_all_at(fd, meta, meta_len, (off_t)size) != 0 || meta_decode(meta, meta_len, o) != 0) {
        snprintf(why, why_len, "unreadable metadata");
        goto fail;
    }
    char h[65];
    key_hash(o->key, o->key_len, h);
    if (expect_hash && strcmp(h, expect_hash) != 0) {
        snprintf(why, why_len, "file name is not the hash of its key");
        goto fail;
    }
    uint64_t sum = 0;
    int over = 0;
    for (size_t i = 0; i < o->n_parts; i++) {
        over |= sum + o->part_sizes[i] < sum;
        sum += o->part_sizes[i];
    }
    if (o->n_parts && (over || sum != size)) {
        snprintf(why, why_len, "part sizes do not add up to the object's size");
        goto fail;
    }
    o->size = size;
    o->refs = 1;
    goto done;
fail:
    object_free(o);
    o = NULL;
done:
    lv_free(meta);
    close(fd);
    return o;
}

static int is_hex64(const char *s)
{
    size_t n = strlen(s);
    if (n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int obj_sort_cmp(const void *a, const void *b)
{
    const fs3_object *x = *(fs3_object *const *)a, *y = *(fs3_object *const *)b;
    return keycmp(x->key, x->key_len, y->key, y->key_len);
}

/* Loads one upload folder (dir, named id); NULL (reason in why) if it is not a valid one. Part
 * files that are not valid are skipped with a warning. */
static upload *load_upload(const char *dir, const char *id, char *why, size_t why_len)
{
    char *info = path_join("%s/upload", dir);
    fs3_object *o = info ? load_object_file(info, NULL, why, why_len) : NULL;
    lv_free(info);
    if (!o)
        return NULL;
    upload *u = lv_calloc(1, sizeof *u);
    DIR *d = u ? opendir(dir) : NULL;
    if (!d) {
        snprintf(why, why_len, u ? "cannot read the folder" : "out of memory");
        object_free(o);
        lv_free(u);
        return NULL;
    }
    memcpy(u->id, id, FS3_UPLOAD_ID_LEN); /* checked: fs3_upload_id_valid */
    u->key = o->key;
    u->key_len = o->key_len;
    u->initiated_ms = o->mtime_ms;
    u->headers = o->headers;
    u->n_headers = o->n_headers;
    o->key = NULL;
    o->headers = NULL;
    o->n_headers = 0;
    object_free(o);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "upload") == 0)
            continue;
        char pwhy[160] = "not a part file name";
        int number = 0, ok = strlen(e->d_name) == 5 && strspn(e->d_name, "0123456789") == 5;
        if (ok)
            number = atoi(e->d_name);
        fs3_object *po = NULL;
        char *pp = path_join("%s/%s", dir, e->d_name);
        if (ok && number >= 1 && number <= FS3_MAX_PART_NUMBER && pp)
            po = load_object_file(pp, NULL, pwhy, sizeof pwhy);
        if (po && reserve_parts(u)) {
            fs3_object *replaced = NULL;
            set_part(u, number, po, &replaced);
            fs3_object_unref(replaced);
        } else {
            fs3_object_unref(po);
            fprintf(stderr, "fakes3: store: skipping %s: %s\n", pp ? pp : e->d_name, pwhy);
        }
        lv_free(pp);
    }
    closedir(d);
    return u;
}

/* Loads the uploads of bucket b from its folder bdir. */
static void load_uploads(bucket *b, const char *bdir)
{
    char *udir = path_join("%s/uploads", bdir);
    DIR *d = udir ? opendir(udir) : NULL;
    if (!d) {
        lv_free(udir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char why[160] = "not an upload id";
        char *dir = path_join("%s/%s", udir, e->d_name);
        upload *u = NULL;
        if (dir && fs3_upload_id_valid(e->d_name))
            u = load_upload(dir, e->d_name, why, sizeof why);
        if (u && reserve_uploads(b)) {
            insert_upload(b, u);
        } else {
            upload_free(u);
            fprintf(stderr, "fakes3: store: skipping upload %s: %s\n", dir ? dir : e->d_name, why);
        }
        lv_free(dir);
    }
    closedir(d);
    lv_free(udir);
}

/* Loads one bucket folder into the index. */
static fs3_code load_bucket(fs3_store *st, const char *name, char *err)
{
    fs3_code rc = FS3_OK;
    char *bdir = path_join("%s/buckets/%s", st->dir, name);
    char *meta_path = path_join("%s/bucket", bdir ? bdir : "");
    bucket *b = lv_calloc(1, sizeof *b);
    if (!bdir || !meta_path || !b) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "loading bucket %s: out of memory", name);
        goto done;
    }
    snprintf(b->name, sizeof b->name, "%.63s", name);
    FILE *f = fopen(meta_path, "r");
    long long created = 0;
    if (f) {
        if (fscanf(f, "created %lld", &created) != 1)
            created = 0;
        fclose(f);
    }
    b->created_ms = created;
    for (int i = 0; i < 256; i++) {
        char sub[3];
        snprintf(sub, sizeof sub, "%02x", i);
        char *odir = path_join("%s/objects/%s", bdir, sub);
        if (!odir) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "loading bucket %s: out of memory", name);
            goto done;
        }
        DIR *d = opendir(odir);
        if (!d) {
            mkdir(odir, 0755); /* repair a missing fan-out folder */
            lv_free(odir);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char *fpath = path_join("%s/%s", odir, e->d_name);
            if (fpath && strncmp(e->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0) {
                unlink(fpath); /* an upload a crash cut off before its rename */
                lv_free(fpath);
                continue;
            }
            char why[160] = "";
            fs3_object *o = NULL;
            if (fpath && is_hex64(e->d_name) && strncmp(e->d_name, sub, 2) == 0)
                o = load_object_file(fpath, e->d_name, why, sizeof why);
            else
                snprintf(why, sizeof why, "not an object file name");
            if (o && reserve_objs(b, 1)) {
                b->objs[b->n++] = o;
            } else {
                if (o) {
                    object_free(o);
                    snprintf(why, sizeof why, "out of memory");
                }
                fprintf(stderr, "fakes3: store: skipping %s: %s\n", fpath ? fpath : e->d_name, why);
            }
            lv_free(fpath);
        }
        closedir(d);
        lv_free(odir);
    }
    if (b->n)
        qsort(b->objs, b->n, sizeof *b->objs, obj_sort_cmp);
    load_uploads(b, bdir);
    size_t pos;
    if (find_bucket(st, name, &pos) || !reserve_buckets(st)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "loading bucket %s: out of memory", name);
        goto done;
    }
    insert_bucket(st, b, pos);
    b = NULL;
done:
    bucket_free(b);
    lv_free(meta_path);
    lv_free(bdir);
    return rc;
}

/* Prepares the data directory: creates or checks it, locks it, empties tmp/, loads buckets. */
static fs3_code open_dir(fs3_store *st, char *err)
{
    fs3_code rc = FS3_OK;
    char *marker = NULL, *lockp = NULL, *tmpd = NULL, *bdir = NULL;
    DIR *d = NULL;
    if (mkdir(st->dir, 0755) != 0 && errno != EEXIST) {
        lv_fail(err, LV_EIO, "cannot create data directory %s: %s", st->dir, strerror(errno));
        return FS3_INTERNAL_ERROR;
    }
    struct stat sb;
    if (stat(st->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        lv_fail(err, LV_EIO, "data directory %s is not a directory", st->dir);
        return FS3_INTERNAL_ERROR;
    }
    marker = path_join("%s/" MARKER_NAME, st->dir);
    lockp = path_join("%s/.lock", st->dir);
    tmpd = path_join("%s/tmp", st->dir);
    bdir = path_join("%s/buckets", st->dir);
    if (!marker || !lockp || !tmpd || !bdir) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    if (access(marker, F_OK) != 0) {
        /* not ours yet: only an empty folder may become a data directory */
        d = opendir(st->dir);
        if (!d) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_EIO, "cannot read data directory %s: %s", st->dir, strerror(errno));
            goto done;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                rc = FS3_INTERNAL_ERROR;
                lv_fail(err, LV_EINVAL,
                        "%s is not empty and is not a fakes3 data directory (no %s file); "
                        "give an empty or new directory",
                        st->dir, MARKER_NAME);
                goto done;
            }
        }
        int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, MARKER_TEXT, strlen(MARKER_TEXT)) != 0 ||
            (st->do_fsync && fsync(fd) != 0)) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_EIO, "cannot write to data directory %s: %s", st->dir, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto done;
        }
        close(fd);
    }
    st->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "cannot open %s: %s", lockp, strerror(errno));
        goto done;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "data directory %s is in use by another fakes3", st->dir);
        goto done;
    }
    /* leftovers of a crashed run: uploads never committed, buckets half made or half deleted */
    rm_rf(tmpd);
    if ((mkdir(tmpd, 0755) != 0 && errno != EEXIST) ||
        (mkdir(bdir, 0755) != 0 && errno != EEXIST)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "cannot create folders in data directory %s: %s", st->dir,
                strerror(errno));
        goto done;
    }
    if (st->do_fsync)
        fsync_path(st->dir);
    if (d)
        closedir(d);
    d = opendir(bdir);
    if (!d) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "cannot read %s: %s", bdir, strerror(errno));
        goto done;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!fs3_bucket_name_valid(e->d_name)) {
            fprintf(stderr, "fakes3: store: skipping %s/%s: not a bucket name\n", bdir, e->d_name);
            continue;
        }
        if ((rc = load_bucket(st, e->d_name, err)) != FS3_OK)
            goto done;
    }
done:
    if (d)
        closedir(d);
    lv_free(marker);
    lv_free(lockp);
    lv_free(tmpd);
    lv_free(bdir);
    return rc;
}

fs3_code fs3_store_open(const fs3_store_options *opts, fs3_store **out, char *err)
{
    fs3_code rc;
    *out = NULL;
    fs3_store *st = lv_calloc(1, sizeof *st);
    if (!st) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    st->memory = opts->memory;
    st->do_fsync = opts->fsync && !opts->memory;
    st->lock_fd = -1;
    atomic_init(&st->seq, 0);
    if (pthread_rwlock_init(&st->lock, NULL) != 0) {
        lv_free(st);
        lv_fail(err, LV_ENOMEM, "cannot create a lock");
        return FS3_INTERNAL_ERROR;
    }

    if (!st->memory) {
        if (!opts->dir || !*opts->dir) {
            fs3_store_close(st);
            lv_fail(err, LV_EINVAL, "no data directory");
            return FS3_INTERNAL_ERROR;
        }
        size_t n = strlen(opts->dir);
        while (n > 1 && opts->dir[n - 1] == '/')
            n--;
        st->dir = lv_malloc(n + 1);
        if (!st->dir) {
            fs3_store_close(st);
            lv_fail(err, LV_ENOMEM, "out of memory");
            return FS3_INTERNAL_ERROR;
        }
        memcpy(st->dir, opts->dir, n);
        st->dir[n] = '\0';
        if ((rc = open_dir(st, err)) != FS3_OK) {
            fs3_store_close(st);
            return rc;
        }
    }
    *out = st;
    return FS3_OK;
}

void fs3_store_close(fs3_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nb; i++)
        bucket_free(st->buckets[i]);
    lv_free(st->buckets);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&st->lock);
    lv_free(st->dir);
    lv_free(st);
}

void fs3_store_counts(fs3_store *st, size_t *buckets, size_t *objects)
{
    pthread_rwlock_rdlock(&st->lock);
    *buckets = st->nb;
    *objects = 0;
    for (size_t i = 0; i < st->nb; i++)
        *objects += st->buckets[i]->n;
    pthread_rwlock_unlock(&st->lock);
}

/* ---- bucket operations ----------------------------------------------------------------------- */

fs3_code fs3_store_list_buckets(fs3_store *st, fs3_bucket_info **out, size_t *n, char *err)
{
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&st->lock);
    fs3_bucket_info *v = lv_calloc(st->nb ? st->nb : 1, sizeof *v);
    if (!v) {
        pthread_rwlock_unlock(&st->lock);
        lv_fail(err, LV_ENOMEM, "listing buckets: out of memory");
        return FS3_INTERNAL_ERROR;
    }
    for (size_t i = 0; i < st->nb; i++) {
        memcpy(v[i].name, st->buckets[i]->name, sizeof v[i].name);
        v[i].created_ms = st->buckets[i]->created_ms;
    }
    *n = st->nb;
    pthread_rwlock_unlock(&st->lock);
    *out = v;
    return FS3_OK;
}

fs3_code fs3_store_head_bucket(fs3_store *st, const char *name, char *err)
{
    pthread_rwlock_rdlock(&st->lock);
    int found = find_bucket(st, name, NULL) != NULL;
    pthread_rwlock_unlock(&st->lock);
    if (!found) {
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", name);
        return FS3_NO_SUCH_BUCKET;
    }
    return FS3_OK;
}

/*
 * Asks the file system to spread the folders made in dir over the disk (ext4's "top of a directory
 * hierarchy" flag, chattr +T; best effort, elsewhere a no-op). ext4 puts a new file in its
 * folder's block group and looks for a free inode there from the group's start, skipping every
 * inode freed in the last minutes: with all 256 fan-out folders in one group, each PUT's create
 * walked every file deleted lately near it. Spread, each group sees 1/256 of the creates.
 */
static void spread_subdirs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags |= FS_TOPDIR_FL;
        (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

/* Builds a complete bucket folder under tmp/ (disk store); returns its path or NULL. */
static char *make_bucket_dir(fs3_store *st, int64_t now_ms, char *err)
{
    char *tdir = temp_path(st, "bucket");
    char *p = NULL;
    if (!tdir) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return NULL;
    }
    if (mkdir(tdir, 0755) != 0)
        goto fail;
    p = path_join("%s/bucket", tdir);
    if (!p)
        goto fail;
    char text[64];
    int tn = snprintf(text, sizeof text, "created %lld\n", (long long)now_ms);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (write_all(fd, text, (size_t)tn) != 0 || (st->do_fsync && fsync(fd) != 0)) {
        close(fd);
        goto fail;
    }
    close(fd);
    lv_free(p);
    p = path_join("%s/objects", tdir);
    if (!p || mkdir(p, 0755) != 0)
        goto fail;
    spread_subdirs(p);
    for (int i = 0; i < 256; i++) {
        char sub[8];
        snprintf(sub, sizeof sub, "/%02x", i);
        char *s = path_join("%s%s", p, sub);
        if (!s || mkdir(s, 0755) != 0) {
            lv_free(s);
            goto fail;
        }
        lv_free(s);
    }
    /* the folder whole on disk before the rename that publishes it can be */
    if (st->do_fsync && (fsync_path(p) != 0 || fsync_path(tdir) != 0))
        goto fail;
    lv_free(p);
    return tdir;
fail:
    lv_fail(err, LV_EIO, "creating a bucket folder in %s/tmp: %s", st->dir, strerror(errno));
    lv_free(p);
    rm_rf(tdir);
    lv_free(tdir);
    return NULL;
}

fs3_code fs3_store_create_bucket(fs3_store *st, const char *name, int64_t now_ms, char *err)
{
    if (!fs3_bucket_name_valid(name)) {
        lv_fail(err, LV_EINVAL, "invalid bucket name");
        return FS3_INVALID_BUCKET_NAME;
    }
    fs3_code rc = FS3_OK;
    char *tdir = NULL, *final = NULL;
    bucket *b = lv_calloc(1, sizeof *b);
    if (!b) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    snprintf(b->name, sizeof b->name, "%.63s", name);
    b->created_ms = now_ms;
    if (!st->memory) {
        pthread_rwlock_rdlock(&st->lock);
        int exists = find_bucket(st, name, NULL) != NULL;
        pthread_rwlock_unlock(&st->lock);
        if (exists) {
            bucket_free(b);
            lv_fail(err, LV_EINVAL, "bucket %s exists", name);
            return FS3_BUCKET_ALREADY_OWNED_BY_YOU;
        }
        if (!(tdir = make_bucket_dir(st, now_ms, err)) ||
            !(final = path_join("%s/buckets/%s", st->dir, name))) {
            rc = FS3_INTERNAL_ERROR;
            goto done;
        }
    }
    pthread_rwlock_wrlock(&st->lock);
    size_t pos;
    if (find_bucket(st, name, &pos)) {
        rc = FS3_BUCKET_ALREADY_OWNED_BY_YOU;
        lv_fail(err, LV_EINVAL, "bucket %s exists", name);
    } else if (!reserve_buckets(st)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
    } else if (tdir && rename(tdir, final) != 0) {
        /* crash before this rename: only tmp/ holds the new folder */
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", tdir, final, strerror(errno));
    } else {
        insert_bucket(st, b, pos);
        b = NULL;
    }
    pthread_rwlock_unlock(&st->lock);
    if (rc == FS3_OK && st->do_fsync) {
        char *bdir = path_join("%s/buckets", st->dir);
        if (!bdir || fsync_path(bdir) != 0) {
            lv_fail(err, LV_EIO, "fsync %s/buckets: %s", st->dir, strerror(errno));
            rc = FS3_INTERNAL_ERROR; /* the bucket exists, but its durability is unknown */
        }
        lv_free(bdir);
    }
done:
    if (rc != FS3_OK && tdir)
        rm_rf(tdir);
    lv_free(tdir);
    lv_free(final);
    bucket_free(b);
    return rc;
}

fs3_code fs3_store_delete_bucket(fs3_store *st, const char *name, char *err)
{
    fs3_code rc = FS3_OK;
    char *final = NULL, *tdir = NULL;
    bucket *gone = NULL;
    if (!st->memory) {
        final = path_join("%s/buckets/%s", st->dir, name);
        tdir = temp_path(st, "deleted");
        if (!final || !tdir) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
    }
    pthread_rwlock_wrlock(&st->lock);
    size_t pos;
    bucket *b = find_bucket(st, name, &pos);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", name);
    } else if (b->n) {
        rc = FS3_BUCKET_NOT_EMPTY;
        lv_fail(err, LV_EINVAL, "bucket %s holds %zu objects", name, b->n);
    } else if (final && rename(final, tdir) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", final, tdir, strerror(errno));
    } else {
        memmove(st->buckets + pos, st->buckets + pos + 1, (st->nb - pos - 1) * sizeof *st->buckets);
        st->nb--;
        gone = b;
    }
    pthread_rwlock_unlock(&st->lock);
    if (gone && tdir) {
        if (st->do_fsync) {
            char *bdir = path_join("%s/buckets", st->dir);
            if (bdir)
                fsync_path(bdir);
            lv_free(bdir);
        }
        rm_rf(tdir);
    }
done:
    bucket_free(gone);
    lv_free(final);
    lv_free(tdir);
    return rc;
}

/* ---- writes ---------------------------------------------------------------------------------- */

/*
 * A new upload; key copied. An object's upload (object 1) will be written to a temp file in the
 * folder of its final name (objects/HH/t-PID-SEQ), so that the commit is a rename within one
 * folder: no rename lock across folders, no one folder that every upload creates files in; a
 * part's (object 0) goes to DIR/tmp. The file is created only when the bytes outgrow SMALL_PUT or
 * at the commit (spill), so a small object costs one open and one write.
 */
static fs3_code put_new(fs3_store *st, const char *bucket_name, const char *key, size_t key_len,
                        int object, fs3_put **out, char *err)
{
    *out = NULL;
    fs3_put *p = lv_calloc(1, sizeof *p);
    if (!p || !(p->key = lv_malloc(key_len + 1))) {
        lv_free(p);
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    p->st = st;
    p->fd = -1;
    snprintf(p->bucket, sizeof p->bucket, "%s", bucket_name);
    memcpy(p->key, key, key_len);
    p->key[key_len] = '\0';
    p->key_len = key_len;
    if (!st->memory) {
        unsigned long n = atomic_fetch_add(&st->seq, 1);
        if (object) {
            key_hash(key, key_len, p->hash);
            p->tmp_path = path_join("%s/buckets/%s/objects/%.2s/" TEMP_PREFIX "%ld-%lu", st->dir,
                                    bucket_name, p->hash, (long)getpid(), n);
        } else {
            p->tmp_path = path_join("%s/tmp/%ld-%lu.put", st->dir, (long)getpid(), n);
        }
        if (!p->tmp_path) {
            fs3_put_abort(p);
            lv_fail(err, LV_ENOMEM, "out of memory");
            return FS3_INTERNAL_ERROR;
        }
    }
    *out = p;
    return FS3_OK;
}

/* Disk: creates the temp file and writes what was buffered into it. */
static fs3_code spill(fs3_put *p, char *err)
{
    if (p->fd >= 0 || p->st->memory)
        return FS3_OK;
    if (!p->tmp_path) { /* an earlier spill failed */
        lv_fail(err, LV_EIO, "the upload's temp file could not be created");
        return FS3_INTERNAL_ERROR;
    }
    p->fd = open(p->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    p->created = p->fd >= 0;
    if (p->fd < 0) {
        int e = errno;
        lv_fail(err, LV_EIO, "creating %s: %s", p->tmp_path, strerror(e));
        lv_free(p->tmp_path); /* not ours to remove */
        p->tmp_path = NULL;
        /* an object's folder went away under the upload: the bucket was deleted */
        return e == ENOENT && p->hash[0] ? FS3_NO_SUCH_BUCKET : FS3_INTERNAL_ERROR;
    }
    if (p->size && write_all(p->fd, p->mem, (size_t)p->size) != 0) {
        lv_fail(err, LV_EIO, "writing %s: %s", p->tmp_path, strerror(errno));
        return FS3_INTERNAL_ERROR;
    }
    lv_free(p->mem);
    p->mem = NULL;
    p->mem_cap = 0;
    return FS3_OK;
}

fs3_code fs3_store_put_begin(fs3_store *st, const char *bucket_name, const char *key,
                             size_t key_len, fs3_put **out, char *err)
{
    *out = NULL;
    fs3_code rc = fs3_store_head_bucket(st, bucket_name, err);
    if (rc != FS3_OK)
        return rc;
    return put_new(st, bucket_name, key, key_len, 1, out, err);
}

fs3_code fs3_put_hash(fs3_put *p, int md5, fs3_ck_alg alg, char *err)
{
    if (md5 && !p->md5) {
        p->md5 = EVP_MD_CTX_new();
        if (!p->md5 || !EVP_DigestInit_ex(p->md5, EVP_md5(), NULL)) {
            lv_fail(err, LV_ENOMEM, "out of memory");
            return FS3_INTERNAL_ERROR;
        }
    }
    if (alg != FS3_CK_NONE && p->ck.alg == FS3_CK_NONE && fs3_ck_init(&p->ck, alg) != 0) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    return FS3_OK;
}

int fs3_put_md5(fs3_put *p, uint8_t out[16])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!p->md5 || !EVP_DigestFinal_ex(p->md5, md, &n) || n != 16)
        return -1;
    memcpy(out, md, 16);
    return 0;
}

int fs3_put_checksum(fs3_put *p, char *out)
{
    if (p->ck.alg == FS3_CK_NONE)
        return -1;
    fs3_ck_final(&p->ck, out);
    return out[0] ? 0 : -1;
}

void fs3_put_conditional(fs3_put *p)
{
    fs3_store *st = p->st;
    pthread_rwlock_wrlock(&st->lock);
    if (!p->conditional) {
        p->conditional = 1;
        p->cnext = st->cond_puts;
        if (st->cond_puts)
            st->cond_puts->cprev = p;
        st->cond_puts = p;
    }
    pthread_rwlock_unlock(&st->lock);
}

fs3_code fs3_put_write(fs3_put *p, const void *data, size_t n, char *err)
{
    if (n == 0)
        return FS3_OK;
    if (p->md5)
        EVP_DigestUpdate(p->md5, data, n);
    if (p->ck.alg != FS3_CK_NONE)
        fs3_ck_update(&p->ck, data, n);
    if (!p->st->memory && p->fd < 0 && p->size + n > SMALL_PUT) {
        fs3_code rc = spill(p, err);
        if (rc != FS3_OK)
            return rc;
    }
    if (p->fd < 0) {
        uint8_t *m = grow(p->mem, &p->mem_cap, (size_t)p->size + n, 1, 4096);
        if (!m) {
            lv_fail(err, LV_ENOMEM, "out of memory holding %llu bytes",
                    (unsigned long long)(p->size + n));
            return FS3_INTERNAL_ERROR;
        }
        p->mem = m;
        memcpy(p->mem + p->size, data, n);
    } else if (write_all(p->fd, data, n) != 0) {
        lv_fail(err, LV_EIO, "writing %s: %s", p->tmp_path, strerror(errno));
        return FS3_INTERNAL_ERROR;
    }
    p->size += n;
    return FS3_OK;
}

fs3_code fs3_put_copy(fs3_put *p, const fs3_body *src, uint64_t off, uint64_t len, char *err)
{
    if (off > src->size || len > src->size - off) {
        lv_fail(err, LV_EINVAL, "copy of %llu bytes from %llu: the source has %llu",
                (unsigned long long)len, (unsigned long long)off, (unsigned long long)src->size);
        return FS3_INTERNAL_ERROR;
    }
    if (src->fd < 0) { /* memory store: the source bytes are at hand */
        const uint8_t *d = src->data + off;
        while (len) {
            size_t k = len > (1u << 30) ? (1u << 30) : (size_t)len;
            fs3_code rc = fs3_put_write(p, d, k, err);
            if (rc != FS3_OK)
                return rc;
            d += k;
            len -= k;
        }
        return FS3_OK;
    }
    if (!p->st->memory && !p->md5 && p->ck.alg == FS3_CK_NONE) {
        /* nothing to hash: the kernel copies file to file (or shares the extents) */
        fs3_code src_rc = spill(p, err);
        if (src_rc != FS3_OK)
            return src_rc;
        loff_t in = (loff_t)off;
        while (len) {
            size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;
            ssize_t k = copy_file_range(src->fd, &in, p->fd, NULL, want, 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 &&
                (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
                break; /* not here: copy through a buffer below */
            if (k < 0) {
                lv_fail(err, LV_EIO, "copying into %s: %s", p->tmp_path, strerror(errno));
                return FS3_INTERNAL_ERROR;
            }
            if (k == 0) {
                lv_fail(err, LV_EIO, "copy source ended early");
                return FS3_INTERNAL_ERROR;
            }
            len -= (uint64_t)k;
            p->size += (uint64_t)k;
        }
        off = (uint64_t)in;
        if (!len)
            return FS3_OK;
    }
    size_t cap = 1u << 20;
    char *buf = lv_malloc(cap);
    if (!buf) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    fs3_code rc = FS3_OK;
    while (len && rc == FS3_OK) {
        size_t want = len > cap ? cap : (size_t)len;
        ssize_t k = pread(src->fd, buf, want, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            lv_fail(err, LV_EIO, "reading the copy source: %s",
                    k < 0 ? strerror(errno) : "it ended early");
            rc = FS3_INTERNAL_ERROR;
            break;
        }
        rc = fs3_put_write(p, buf, (size_t)k, err);
        off += (uint64_t)k;
        len -= (uint64_t)k;
    }
    lv_free(buf);
    return rc;
}

uint64_t fs3_put_size(const fs3_put *p)
{
    return p->size;
}

void fs3_put_abort(fs3_put *p)
{
    if (!p)
        return;
    if (p->conditional) {
        fs3_store *st = p->st;
        pthread_rwlock_wrlock(&st->lock);
        if (p->cprev)
            p->cprev->cnext = p->cnext;
        else
            st->cond_puts = p->cnext;
        if (p->cnext)
            p->cnext->cprev = p->cprev;
        pthread_rwlock_unlock(&st->lock);
    }
    if (p->fd >= 0)
        close(p->fd);
    if (p->tmp_path && p->created)
        unlink(p->tmp_path);
    if (p->md5)
        EVP_MD_CTX_free(p->md5);
    fs3_ck_free(&p->ck);
    lv_free(p->tmp_path);
    lv_free(p->mem);
    lv_free(p->key);
    lv_free(p->part_sizes);
    lv_free(p);
}

/* A new object from an upload (key and headers copied: p's key stays, so a delete can still find
 * a conditional write in flight); NULL on allocation failure. */
static fs3_object *object_from_put(fs3_put *p, const char *etag, const fs3_kv *headers, size_t n,
                                   int64_t now_ms)
{
    fs3_object *o = lv_calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->refs = 1;
    o->size = p->size;
    o->mtime_ms = now_ms;
    snprintf(o->etag, sizeof o->etag, "%s", etag);
    if (n) {
        o->headers = kv_dup(headers, n);
        if (!o->headers)
            goto fail;
        o->n_headers = n;
    }
    if (!(o->key = lv_malloc(p->key_len + 1)))
        goto fail;
    memcpy(o->key, p->key, p->key_len + 1);
    o->key_len = p->key_len;
    o->part_sizes = p->part_sizes;
    o->n_parts = p->n_part_sizes;
    p->part_sizes = NULL;
    p->n_part_sizes = 0;
    return o;
fail:
    object_free(o);
    return NULL;
}

/* Writes all of iov (n pieces); 0, or -1 with errno. The array is modified. */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/*
 * Writes an object file's end: head (head_len bytes of data not yet in fd, or none), then the
 * metadata and the trailer for size bytes of data in all; one writev.
 */
static int write_meta_trailer_after(int fd, const void *head, size_t head_len, uint64_t size,
                                    const lv_buf *meta)
{
    uint8_t tr[TRAILER_SIZE];
    put_be64(tr, size);
    put_be32(tr + 8, (uint32_t)meta->len);
    put_be32(tr + 12, 0);
    memcpy(tr + 16, TRAILER_MAGIC, 8);
    struct iovec iov[3];
    int n = 0;
    if (head_len)
        iov[n++] = (struct iovec){(void *)head, head_len};
    if (meta->len)
        iov[n++] = (struct iovec){meta->data, meta->len};
    iov[n++] = (struct iovec){tr, sizeof tr};
    return writev_all(fd, iov, n);
}

/* Writes an object file's metadata and trailer after size bytes of data already in fd. */
static int write_meta_trailer(int fd, uint64_t size, const lv_buf *meta)
{
    return write_meta_trailer_after(fd, NULL, 0, size, meta);
}

/*
 * Turns p into o's data: memory, the buffer moves to o; disk, the temp file gets (what is still
 * buffered,) the metadata and the trailer, (--fsync) is fdatasynced, and is closed, ready to be
 * renamed.
 */
static fs3_code seal_put(fs3_store *st, fs3_put *p, fs3_object *o, char *err)
{
    if (st->memory) {
        o->data = p->mem;
        p->mem = NULL;
        return FS3_OK;
    }
    fs3_code rc = FS3_OK;
    uint8_t *head = NULL;
    lv_buf meta;
    lv_buf_init(&meta);
    meta_encode(&meta, o);
    if (meta.oom || meta.len > MAX_META_LEN) {
        rc = FS3_METADATA_TOO_LARGE;
        lv_fail(err, LV_EINVAL, "metadata of %zu bytes", meta.len);
        goto done;
    }
    size_t head_len = 0;
    if (p->fd < 0) { /* small: still in memory; created and written whole now */
        head = p->mem;
        head_len = (size_t)p->size;
        p->mem = NULL; /* spill writes nothing: the one writev below has it all */
        p->mem_cap = 0;
        p->size = 0;
        rc = spill(p, err);
        p->size = head_len;
        if (rc != FS3_OK)
            goto done;
    }
    /* --fsync: the file whole on disk before the rename can be; a crash until the rename leaves
     * only the temp file, removed at the next start */
    if (write_meta_trailer_after(p->fd, head, head_len, o->size, &meta) != 0 ||
        (st->do_fsync && fdatasync(p->fd) != 0)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "writing %s: %s", p->tmp_path, strerror(errno));
    } else {
        int fd = p->fd;
        p->fd = -1;
        if (close(fd) != 0) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_EIO, "closing %s: %s", p->tmp_path, strerror(errno));
        }
    }
done:
    lv_free(head);
    lv_buf_free(&meta);
    return rc;
}

/* The new version p makes (*o, the caller's to free), its file sealed (see seal_put). */
static fs3_code sealed_object(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                              size_t n_headers, int64_t now_ms, fs3_object **o, char *err)
{
    *o = object_from_put(p, etag, headers, n_headers, now_ms);
    if (!*o) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    return seal_put(st, p, *o, err);
}

static int has_cond(const fs3_write_cond *c)
{
    return c && (c->if_match || c->if_none_match);
}

/*
 * The commit of an object write (PutObject, CopyObject, CompleteMultipartUpload): see
 * fs3_store_put_commit. complete_id: the upload this write completes, removed with it.
 */
static fs3_code commit_object(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                              size_t n_headers, const fs3_write_cond *cond, int64_t now_ms,
                              const char *complete_id, fs3_object **out, char *err)
{
    fs3_code rc = FS3_OK;
    char *final = NULL, *udir = NULL, *utmp = NULL;
    fs3_object *replaced = NULL;
    upload *gone_upload = NULL;
    int moved_upload = 0;
    if (out)
        *out = NULL;
    fs3_object *o = NULL;
    if ((rc = sealed_object(st, p, etag, headers, n_headers, now_ms, &o, err)) != FS3_OK)
        goto done;
    if (!st->memory) {
        final = path_join("%s/buckets/%s/objects/%.2s/%s", st->dir, p->bucket, p->hash, p->hash);
        if (complete_id) {
            udir = upload_dir(st, p->bucket, complete_id);
            utmp = temp_path(st, "completed");
        }
        if (!final || (complete_id && (!udir || !utmp))) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
    }

    /* the commit: precondition, rename and index update under one write lock */
    pthread_rwlock_wrlock(&st->lock);
    bucket *b = find_bucket(st, p->bucket, NULL);
    size_t pos = 0, upos = 0;
    fs3_object *cur = b ? find_object(b, o->key, o->key_len, &pos) : NULL;
    upload *u = complete_id ? find_upload_of(b, complete_id, o->key, o->key_len, &upos) : NULL;
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "bucket %s was deleted during the upload", p->bucket);
    } else if (complete_id && !u) {
        rc = FS3_NO_SUCH_UPLOAD;
        lv_fail(err, LV_ENOTFOUND, "upload %s was aborted or completed meanwhile", complete_id);
    } else if (has_cond(cond) && (p->conflicted || (u && u->conflicted))) {
        rc = FS3_CONDITIONAL_REQUEST_CONFLICT;
        lv_fail(err, LV_EINVAL, "the key was deleted while this conditional write was under way");
        if (u) { /* S3 wants a new upload after this: the old one goes */
            if (!udir || rename(udir, utmp) == 0) {
                remove_upload_at(b, upos);
                gone_upload = u;
                moved_upload = udir != NULL;
            }
        }
    } else if (cond && cond->if_none_match && cur) {
        rc = FS3_PRECONDITION_FAILED;
        lv_fail(err, LV_EINVAL, "If-None-Match: the key exists");
    } else if (cond && cond->if_match && !cur) {
        rc = FS3_NO_SUCH_KEY;
        lv_fail(err, LV_ENOTFOUND, "If-Match: the key does not exist");
    } else if (cond && cond->if_match && !fs3_etag_list_matches(cond->if_match, cur->etag)) {
        rc = FS3_PRECONDITION_FAILED;
        lv_fail(err, LV_EINVAL, "If-Match: the ETag is \"%s\"", cur->etag);
    } else if (!cur && !reserve_objs(b, 1)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
    } else if (final && rename(p->tmp_path, final) != 0) {
        /* ENOENT: the bucket was deleted (and made anew) under the upload, its folder with it */
        rc = errno == ENOENT ? FS3_NO_SUCH_BUCKET : FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", p->tmp_path, final, strerror(errno));
    } else {
        /* crash from here on: the new version is in place, whole; the index is rebuilt at start */
        p->created = 0;
        if (cur) {
            replaced = cur;
            b->objs[pos] = o;
        } else {
            memmove(b->objs + pos + 1, b->objs + pos, (b->n - pos) * sizeof *b->objs);
            b->objs[pos] = o;
            b->n++;
        }
        if (out) {
            fs3_object_ref(o);
            *out = o;
        }
        o = NULL;
        lv_free(p->tmp_path);
        p->tmp_path = NULL; /* renamed: nothing to remove */
        if (u) {
            /* a crash before this rename leaves the object and the upload: completing it again
             * or aborting it are both still possible; the rename moves the parts to tmp/, which
             * the next start empties if the removal below does not finish */
            if (udir && rename(udir, utmp) != 0)
                fprintf(stderr, "fakes3: store: cannot remove completed upload %s: %s\n", udir,
                        strerror(errno));
            else
                moved_upload = udir != NULL;
            remove_upload_at(b, upos);
            gone_upload = u;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    /* --fsync: the rename durable before the client is answered */
    if (rc == FS3_OK && st->do_fsync) {
        *strrchr(final, '/') = '\0';
        if (fsync_path(final) != 0) {
            lv_fail(err, LV_EIO, "fsync %s: %s", final, strerror(errno));
            rc = FS3_INTERNAL_ERROR; /* the object is visible, but its durability is unknown */
        }
    }
    if (moved_upload) {
        if (st->do_fsync) {
            *strrchr(udir, '/') = '\0';
            fsync_path(udir);
        }
        rm_rf(utmp);
    }
done:
    upload_free(gone_upload);
    fs3_object_unref(replaced);
    object_free(o);
    lv_free(final);
    lv_free(udir);
    lv_free(utmp);
    fs3_put_abort(p);
    if (rc != FS3_OK && out && *out) {
        fs3_object_unref(*out);
        *out = NULL;
    }
    return rc;
}

fs3_code fs3_store_put_commit(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                              size_t n_headers, const fs3_write_cond *cond, int64_t now_ms,
                              fs3_object **out, char *err)
{
    return commit_object(st, p, etag, headers, n_headers, cond, now_ms, NULL, out, err);
}

fs3_code fs3_store_delete_if(fs3_store *st, const char *bucket_name, const char *key,
                             size_t key_len, const char *etag, int *deleted, char *err)
{
    fs3_code rc = FS3_OK;
    char *final = NULL;
    fs3_object *gone = NULL;
    if (deleted)
        *deleted = 0;
    if (!st->memory && !(final = object_path(st, bucket_name, key, key_len))) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        return FS3_INTERNAL_ERROR;
    }
    pthread_rwlock_wrlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    size_t pos;
    fs3_object *cur = b ? find_object(b, key, key_len, &pos) : NULL;
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
    } else if (etag && !cur) {
        rc = FS3_NO_SUCH_KEY;
        lv_fail(err, LV_ENOTFOUND, "no such key");
    } else if (etag && !fs3_etag_list_matches(etag, cur->etag)) {
        rc = FS3_PRECONDITION_FAILED;
        lv_fail(err, LV_EINVAL, "the ETag is \"%s\"", cur->etag);
    } else if (cur) {
        if (final && unlink(final) != 0 && errno != ENOENT) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_EIO, "unlink %s: %s", final, strerror(errno));
        } else {
            memmove(b->objs + pos, b->objs + pos + 1, (b->n - pos - 1) * sizeof *b->objs);
            b->n--;
            gone = cur;
            mark_conflicts(st, b, key, key_len);
        }
    }
    pthread_rwlock_unlock(&st->lock);
    if (gone && final && st->do_fsync) {
        *strrchr(final, '/') = '\0';
        fsync_path(final);
    }
    if (gone && deleted)
        *deleted = 1;
    fs3_object_unref(gone);
    lv_free(final);
    return rc;
}

fs3_code fs3_store_delete(fs3_store *st, const char *bucket_name, const char *key, size_t key_len,
                          char *err)
{
    return fs3_store_delete_if(st, bucket_name, key, key_len, NULL, NULL, err);
}

/* ---- multipart uploads ----------------------------------------------------------------------- */

/* A new upload id: creation time and a sequence (so ids sort in creation order, as S3 lists
 * uploads of one key), then 128 bits from OpenSSL's CSPRNG, so no id can be guessed. This is the
 * one place the store draws randomness, and unguessability is the point: no injected seed. */
static int new_upload_id(fs3_store *st, int64_t now_ms, char out[FS3_UPLOAD_ID_LEN + 1])
{
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    unsigned long seq = atomic_fetch_add(&st->seq, 1) & 0xffff;
    snprintf(out, 17, "%012llx%04lx", (unsigned long long)now_ms & 0xffffffffffffull, seq);
    lv_hex_encode(rnd, sizeof rnd, out + 16);
    return 0;
}

fs3_code fs3_store_create_upload(fs3_store *st, const char *bucket_name, const char *key,
                                 size_t key_len, const fs3_kv *headers, size_t n_headers,
                                 int64_t now_ms, char id_out[FS3_UPLOAD_ID_LEN + 1], char *err)
{
    fs3_code rc = FS3_OK;
    char *tdir = NULL, *info = NULL, *updir = NULL, *final = NULL;
    int fd = -1;
    lv_buf meta;
    lv_buf_init(&meta);
    id_out[0] = '\0';
    upload *u = lv_calloc(1, sizeof *u);
    if (!u || !(u->key = lv_malloc(key_len + 1)) || !(u->headers = kv_dup(headers, n_headers))) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(u->key, key, key_len);
    u->key[key_len] = '\0';
    u->key_len = key_len;
    u->n_headers = n_headers;
    u->initiated_ms = now_ms;
    if (new_upload_id(st, now_ms, u->id) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "no random bytes for an upload id");
        goto done;
    }
    if (!st->memory) {
        /* the upload's folder, whole, in tmp/: its info file is an object file without data */
        fs3_object io = {.key = u->key,
                         .key_len = key_len,
                         .mtime_ms = now_ms,
                         .headers = u->headers,
                         .n_headers = n_headers};
        snprintf(io.etag, sizeof io.etag, "upload");
        meta_encode(&meta, &io);
        tdir = temp_path(st, "upload");
        info = tdir ? path_join("%s/upload", tdir) : NULL;
        updir = path_join("%s/buckets/%s/uploads", st->dir, bucket_name);
        final = updir ? path_join("%s/%s", updir, u->id) : NULL;
        if (!tdir || !info || !updir || !final || meta.oom) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        if (meta.len > MAX_META_LEN) {
            rc = FS3_METADATA_TOO_LARGE;
            lv_fail(err, LV_EINVAL, "metadata of %zu bytes", meta.len);
            goto done;
        }
        if (mkdir(tdir, 0755) != 0 ||
            (fd = open(info, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
            write_meta_trailer(fd, 0, &meta) != 0 || (st->do_fsync && fsync(fd) != 0) ||
            (st->do_fsync && fsync_path(tdir) != 0)) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_EIO, "writing upload %s in %s/tmp: %s", u->id, st->dir,
                    strerror(errno));
            goto done;
        }
    }
    pthread_rwlock_wrlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
    } else if (!reserve_uploads(b)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
    } else if (updir && mkdir(updir, 0755) != 0 && errno != EEXIST) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "mkdir %s: %s", updir, strerror(errno));
    } else if (final && rename(tdir, final) != 0) {
        /* crash before this rename: the upload is only in tmp/, emptied at the next start */
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", tdir, final, strerror(errno));
    } else {
        memcpy(id_out, u->id, FS3_UPLOAD_ID_LEN + 1);
        insert_upload(b, u);
        u = NULL;
    }
    pthread_rwlock_unlock(&st->lock);
    if (rc == FS3_OK && st->do_fsync) {
        char *bdir = path_join("%s/buckets/%s", st->dir, bucket_name);
        if (fsync_path(updir) != 0 || !bdir || fsync_path(bdir) != 0) {
            lv_fail(err, LV_EIO, "fsync %s: %s", updir, strerror(errno));
            rc = FS3_INTERNAL_ERROR;
        }
        lv_free(bdir);
    }
done:
    if (fd >= 0)
        close(fd);
    if (rc != FS3_OK && tdir && u) /* not renamed into place */
        rm_rf(tdir);
    upload_free(u);
    lv_buf_free(&meta);
    lv_free(tdir);
    lv_free(info);
    lv_free(updir);
    lv_free(final);
    return rc;
}

fs3_code fs3_store_abort_upload(fs3_store *st, const char *bucket_name, const char *key,
                                size_t key_len, const char *id, char *err)
{
    fs3_code rc = FS3_OK;
    char *dir = NULL, *tdir = NULL;
    upload *gone = NULL;
    if (!fs3_upload_id_valid(id)) {
        lv_fail(err, LV_ENOTFOUND, "no upload %.60s", id);
        return FS3_NO_SUCH_UPLOAD;
    }
    if (!st->memory &&
        (!(dir = upload_dir(st, bucket_name, id)) || !(tdir = temp_path(st, "aborted")))) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    pthread_rwlock_wrlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    size_t pos;
    upload *u = find_upload_of(b, id, key, key_len, &pos);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
    } else if (!u) {
        rc = FS3_NO_SUCH_UPLOAD;
        lv_fail(err, LV_ENOTFOUND, "no upload %s of that key", id);
    } else if (dir && rename(dir, tdir) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", dir, tdir, strerror(errno));
    } else {
        /* crash from here on: the parts are in tmp/, removed at the next start */
        remove_upload_at(b, pos);
        gone = u;
    }
    pthread_rwlock_unlock(&st->lock);
    if (gone && dir) {
        if (st->do_fsync) {
            *strrchr(dir, '/') = '\0';
            fsync_path(dir);
        }
        rm_rf(tdir);
    }
done:
    upload_free(gone);
    lv_free(dir);
    lv_free(tdir);
    return rc;
}

fs3_code fs3_store_part_begin(fs3_store *st, const char *bucket_name, const char *key,
                              size_t key_len, const char *id, int number, fs3_put **out, char *err)
{
    *out = NULL;
    if (!fs3_upload_id_valid(id)) {
        lv_fail(err, LV_ENOTFOUND, "no upload %.60s", id);
        return FS3_NO_SUCH_UPLOAD;
    }
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    int found = find_upload_of(b, id, key, key_len, NULL) != NULL;
    pthread_rwlock_unlock(&st->lock);
    if (!b) {
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
        return FS3_NO_SUCH_BUCKET;
    }
    if (!found) {
        lv_fail(err, LV_ENOTFOUND, "no upload %s of that key", id);
        return FS3_NO_SUCH_UPLOAD;
    }
    char num[16];
    snprintf(num, sizeof num, "%05d", number);
    fs3_code rc = put_new(st, bucket_name, num, strlen(num), 0, out, err);
    if (rc == FS3_OK) {
        memcpy((*out)->upload_id, id, FS3_UPLOAD_ID_LEN + 1);
        (*out)->part_number = number;
    }
    return rc;
}

fs3_code fs3_store_part_commit(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                               size_t n_headers, int64_t now_ms, fs3_object **out, char *err)
{
    fs3_code rc = FS3_OK;
    char *final = NULL;
    fs3_object *replaced = NULL;
    if (out)
        *out = NULL;
    fs3_object *o = NULL;
    if ((rc = sealed_object(st, p, etag, headers, n_headers, now_ms, &o, err)) != FS3_OK)
        goto done;
    if (!st->memory && !(final = part_path(st, p->bucket, p->upload_id, p->part_number))) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    pthread_rwlock_wrlock(&st->lock);
    bucket *b = find_bucket(st, p->bucket, NULL);
    upload *u = b ? find_upload(b, p->upload_id, NULL) : NULL;
    if (!u) {
        rc = FS3_NO_SUCH_UPLOAD;
        lv_fail(err, LV_ENOTFOUND, "upload %s was aborted or completed meanwhile", p->upload_id);
    } else if (!reserve_parts(u)) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
    } else if (final && rename(p->tmp_path, final) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EIO, "rename %s -> %s: %s", p->tmp_path, final, strerror(errno));
    } else {
        /* crash from here on: the part is the new one, whole */
        p->created = 0;
        set_part(u, p->part_number, o, &replaced);
        if (out) {
            fs3_object_ref(o);
            *out = o;
        }
        o = NULL;
        lv_free(p->tmp_path);
        p->tmp_path = NULL;
    }
    pthread_rwlock_unlock(&st->lock);
    /* the rename durable before the client hears of the part */
    if (rc == FS3_OK && st->do_fsync) {
        *strrchr(final, '/') = '\0';
        if (fsync_path(final) != 0) {
            lv_fail(err, LV_EIO, "fsync %s: %s", final, strerror(errno));
            rc = FS3_INTERNAL_ERROR;
        }
    }
done:
    fs3_object_unref(replaced);
    object_free(o);
    lv_free(final);
    fs3_put_abort(p);
    if (rc != FS3_OK && out && *out) {
        fs3_object_unref(*out);
        *out = NULL;
    }
    return rc;
}

static void storage_class_of(const fs3_kv *h, size_t n, char *out, size_t cap)
{
    snprintf(out, cap, "STANDARD");
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, "x-amz-storage-class") == 0)
            snprintf(out, cap, "%s", h[i].value);
}

fs3_code fs3_store_list_parts(fs3_store *st, const char *bucket_name, const char *key,
                              size_t key_len, const char *id, int after, size_t max,
                              fs3_parts_page *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (!fs3_upload_id_valid(id)) {
        lv_fail(err, LV_ENOTFOUND, "no upload %.60s", id);
        return FS3_NO_SUCH_UPLOAD;
    }
    fs3_code rc = FS3_OK;
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    upload *u = find_upload_of(b, id, key, key_len, NULL);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
        goto done;
    }
    if (!u) {
        rc = FS3_NO_SUCH_UPLOAD;
        lv_fail(err, LV_ENOTFOUND, "no upload %s of that key", id);
        goto done;
    }
    out->initiated_ms = u->initiated_ms;
    storage_class_of(u->headers, u->n_headers, out->storage_class, sizeof out->storage_class);
    size_t i;
    find_part(u, after + 1, &i);
    size_t n = u->n_parts - i < max ? u->n_parts - i : max;
    out->truncated = i + n < u->n_parts;
    out->parts = lv_calloc(n ? n : 1, sizeof *out->parts);
    if (!out->parts) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const part *pt = &u->parts[i + k];
        fs3_part_entry *e = &out->parts[k];
        e->number = pt->number;
        e->size = pt->obj->size;
        e->mtime_ms = pt->obj->mtime_ms;
        memcpy(e->etag, pt->obj->etag, sizeof e->etag);
        for (size_t h = 0; h < pt->obj->n_headers; h++) {
            const fs3_kv *kv = &pt->obj->headers[h];
            if (fs3_ck_from_header(kv->name) != FS3_CK_NONE &&
                strlen(kv->value) < sizeof e->ck_value) {
                snprintf(e->ck_header, sizeof e->ck_header, "%s", kv->name);
                snprintf(e->ck_value, sizeof e->ck_value, "%s", kv->value);
            }
        }
    }
    out->n = n;
done:
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

void fs3_parts_page_free(fs3_parts_page *pg)
{
    lv_free(pg->parts);
    memset(pg, 0, sizeof *pg);
}

static int upload_sort_cmp(const void *a, const void *b)
{
    const upload *x = *(upload *const *)a, *y = *(upload *const *)b;
    int c = keycmp(x->key, x->key_len, y->key, y->key_len);
    return c ? c : strcmp(x->id, y->id);
}

static long find_delim(const char *s, size_t n, size_t from, const char *d, size_t dn);
static int has_prefix(const char *s, size_t n, const char *p, size_t pn);

fs3_code fs3_store_list_uploads(fs3_store *st, const char *bucket_name, const fs3_uploads_params *p,
                                fs3_uploads_page *out, char *err)
{
    memset(out, 0, sizeof *out);
    fs3_code rc = FS3_OK;
    upload **v = NULL;
    size_t nv = 0, cap = 0;
    size_t dn = p->delimiter ? p->delimiter_len : 0;
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
        goto done;
    }
    v = lv_calloc(b->nu ? b->nu : 1, sizeof *v);
    if (!v)
        goto nomem;
    for (size_t i = 0; i < b->nu; i++)
        if (has_prefix(b->uploads[i]->key, b->uploads[i]->key_len, p->prefix, p->prefix_len))
            v[nv++] = b->uploads[i];
    qsort(v, nv, sizeof *v, upload_sort_cmp);
    /* a key marker that is a common prefix given out earlier: skip everything under it */
    int marker_is_prefix = p->key_marker_len && dn && p->key_marker_len >= dn &&
                           memcmp(p->key_marker + p->key_marker_len - dn, p->delimiter, dn) == 0;
    const char *cp = NULL;
    size_t cp_len = 0;
    for (size_t i = 0; i < nv; i++) {
        const upload *u = v[i];
        if (p->key_marker_len) {
            int c = keycmp(u->key, u->key_len, p->key_marker, p->key_marker_len);
            if (c < 0)
                continue;
            if (c == 0 && !(p->id_marker && *p->id_marker && strcmp(u->id, p->id_marker) > 0))
                continue;
            if (marker_is_prefix &&
                has_prefix(u->key, u->key_len, p->key_marker, p->key_marker_len))
                continue;
        }
        long d = find_delim(u->key, u->key_len, p->prefix_len, p->delimiter, dn);
        size_t plen = d >= 0 ? (size_t)d + dn : 0;
        if (d >= 0 && cp && plen == cp_len && memcmp(u->key, cp, cp_len) == 0)
            continue; /* rolled up into the prefix just given */
        if (out->n == p->max) {
            out->truncated = p->max > 0;
            break;
        }
        if (out->n == cap) {
            size_t c = cap ? cap * 2 : 32;
            fs3_upload_entry *e = lv_realloc(out->entries, c * sizeof *e);
            if (!e)
                goto nomem;
            out->entries = e;
            cap = c;
        }
        fs3_upload_entry *e = &out->entries[out->n];
        memset(e, 0, sizeof *e);
        size_t klen = d >= 0 ? plen : u->key_len;
        if (!(e->key = lv_malloc(klen + 1)))
            goto nomem;
        memcpy(e->key, u->key, klen);
        e->key[klen] = '\0';
        e->key_len = klen;
        out->n++;
        if (d >= 0) {
            e->is_prefix = 1;
            cp = e->key;
            cp_len = klen;
        } else {
            memcpy(e->id, u->id, sizeof e->id);
            e->initiated_ms = u->initiated_ms;
            storage_class_of(u->headers, u->n_headers, e->storage_class, sizeof e->storage_class);
        }
    }
    goto done;
nomem:
    rc = FS3_INTERNAL_ERROR;
    lv_fail(err, LV_ENOMEM, "listing uploads: out of memory");
done:
    pthread_rwlock_unlock(&st->lock);
    lv_free(v);
    if (rc != FS3_OK)
        fs3_uploads_page_free(out);
    return rc;
}

void fs3_uploads_page_free(fs3_uploads_page *pg)
{
    for (size_t i = 0; i < pg->n; i++)
        lv_free(pg->entries[i].key);
    lv_free(pg->entries);
    memset(pg, 0, sizeof *pg);
}

int fs3_multipart_etag(const char *const *part_md5s, size_t n, char *out)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;
    out[0] = '\0';
    if (!m || !EVP_DigestInit_ex(m, EVP_md5(), NULL))
        goto done;
    for (size_t i = 0; i < n; i++) {
        uint8_t bin[16];
        if (strlen(part_md5s[i]) != 32 || lv_hex_decode(part_md5s[i], bin, 16) != 0)
            goto done;
        EVP_DigestUpdate(m, bin, 16);
    }
    if (!EVP_DigestFinal_ex(m, md, &mdlen))
        goto done;
    lv_hex_encode(md, 16, out);
    snprintf(out + 32, FS3_ETAG_MAX - 32, "-%zu", n);
    rc = 0;
done:
    EVP_MD_CTX_free(m);
    return rc;
}

/* Opens part file path and checks it is still the version the index had (etag and size): a part
 * replaced between the check and the open would otherwise slip in. -1 if the file is gone (the
 * upload was aborted or completed meanwhile), -2 if it is another version. */
static int open_part_checked(const char *path, const fs3_object *want)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat sb;
    uint8_t tr[TRAILER_SIZE];
    char *meta = NULL;
    fs3_object o;
    memset(&o, 0, sizeof o);
    int ok = 0;
    if (fstat(fd, &sb) == 0 && sb.st_size >= TRAILER_SIZE &&
        read_all_at(fd, tr, TRAILER_SIZE, sb.st_size - TRAILER_SIZE) == 0 &&
        memcmp(tr + 16, TRAILER_MAGIC, 8) == 0 && get_be64(tr) == want->size) {
        uint32_t ml = get_be32(tr + 8);
        if (ml <= MAX_META_LEN && (meta = lv_malloc(ml + 1)) != NULL &&
            read_all_at(fd, meta, ml, (off_t)want->size) == 0 && meta_decode(meta, ml, &o) == 0)
            ok = strcmp(o.etag, want->etag) == 0;
    }
    lv_free(meta);
    lv_free(o.key);
    lv_free(o.part_sizes);
    kv_free(o.headers, o.n_headers);
    if (!ok) {
        close(fd);
        return -2;
    }
    return fd;
}

fs3_code fs3_store_complete_upload(fs3_store *st, const char *bucket_name, const char *key,
                                   size_t key_len, const char *id, const fs3_part_ref *parts,
                                   size_t n, const fs3_write_cond *cond, int64_t now_ms,
                                   fs3_object **out, fs3_complete_fail *fail, char *err)
{
    fs3_code rc = FS3_OK;
    fs3_object **objs = NULL;
    const char **md5s = NULL;
    fs3_kv *headers = NULL;
    size_t n_headers = 0;
    fs3_put *p = NULL;
    char *path = NULL;
    if (out)
        *out = NULL;
    memset(fail, 0, sizeof *fail);
    if (!fs3_upload_id_valid(id)) {
        lv_fail(err, LV_ENOTFOUND, "no upload %.60s", id);
        return FS3_NO_SUCH_UPLOAD;
    }
    objs = lv_calloc(n ? n : 1, sizeof *objs);
    md5s = lv_calloc(n ? n : 1, sizeof *md5s);
    if (!objs || !md5s) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    /* the list against the upload as it is now; the parts are held by reference */
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    upload *u = find_upload_of(b, id, key, key_len, NULL);
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
    } else if (!u) {
        rc = FS3_NO_SUCH_UPLOAD;
        lv_fail(err, LV_ENOTFOUND, "no upload %s of that key", id);
    }
    for (size_t i = 0; rc == FS3_OK && i < n; i++) {
        if (i > 0 && parts[i].number <= parts[i - 1].number) {
            rc = FS3_INVALID_PART_ORDER;
            fail->index = i;
            lv_fail(err, LV_EINVAL, "part %ld follows part %ld", parts[i].number,
                    parts[i - 1].number);
        }
    }
    for (size_t i = 0; rc == FS3_OK && i < n; i++) {
        long num = parts[i].number;
        part *pt = num >= 1 && num <= FS3_MAX_PART_NUMBER ? find_part(u, (int)num, NULL) : NULL;
        if (!pt || strcmp(pt->obj->etag, parts[i].etag) != 0) {
            rc = FS3_INVALID_PART;
            fail->index = i;
            lv_fail(err, LV_EINVAL, "part %ld %s", num, pt ? "has another ETag" : "is missing");
            break;
        }
        objs[i] = pt->obj;
        fs3_object_ref(pt->obj);
        md5s[i] = pt->obj->etag;
    }
    for (size_t i = 0; rc == FS3_OK && i + 1 < n; i++) {
        if (objs[i]->size < FS3_MIN_PART_SIZE) {
            rc = FS3_ENTITY_TOO_SMALL;
            fail->index = i;
            fail->size = objs[i]->size;
            lv_fail(err, LV_EINVAL, "part %ld is %llu bytes, under %u", parts[i].number,
                    (unsigned long long)objs[i]->size, FS3_MIN_PART_SIZE);
        }
    }
    if (rc == FS3_OK) {
        n_headers = u->n_headers;
        if (!(headers = kv_dup(u->headers, n_headers))) {
            rc = FS3_INTERNAL_ERROR;
            lv_fail(err, LV_ENOMEM, "out of memory");
        }
    }
    pthread_rwlock_unlock(&st->lock);
    if (rc != FS3_OK)
        goto done;

    char etag[FS3_ETAG_MAX];
    if (fs3_multipart_etag(md5s, n, etag) != 0) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_EINVAL, "a part's ETag is not an MD5");
        goto done;
    }
    /* assemble: part after part into an upload of the key, streamed (copy_file_range on disk) */
    if ((rc = put_new(st, bucket_name, key, key_len, 1, &p, err)) != FS3_OK)
        goto done;
    /* the part boundaries go with the object (GET ?partNumber=N) */
    if (n && !(p->part_sizes = lv_calloc(n, sizeof *p->part_sizes))) {
        rc = FS3_INTERNAL_ERROR;
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        p->part_sizes[i] = objs[i]->size;
    p->n_part_sizes = n;
    for (size_t i = 0; i < n; i++) {
        fs3_body src = {.fd = -1, .data = objs[i]->data, .size = objs[i]->size};
        if (!st->memory) {
            lv_free(path);
            if (!(path = part_path(st, bucket_name, id, (int)parts[i].number))) {
                rc = FS3_INTERNAL_ERROR;
                lv_fail(err, LV_ENOMEM, "out of memory");
                goto done;
            }
            if ((src.fd = open_part_checked(path, objs[i])) < 0) {
                /* replaced or aborted since the check: the list no longer names this part */
                rc = src.fd == -1 ? FS3_NO_SUCH_UPLOAD : FS3_INVALID_PART;
                fail->index = i;
                lv_fail(err, LV_EIO, "part %ld changed during the completion", parts[i].number);
                goto done;
            }
        }
        rc = fs3_put_copy(p, &src, 0, objs[i]->size, err);
        if (src.fd >= 0)
            close(src.fd);
        if (rc != FS3_OK)
            goto done;
    }
    fs3_put *pp = p;
    p = NULL;
    rc = commit_object(st, pp, etag, headers, n_headers, cond, now_ms, id, out, err);
done:
    fs3_put_abort(p);
    for (size_t i = 0; objs && i < n; i++)
        fs3_object_unref(objs[i]);
    lv_free(objs);
    lv_free(md5s);
    kv_free(headers, n_headers);
    lv_free(path);
    return rc;
}

/* ---- reads ----------------------------------------------------------------------------------- */

fs3_code fs3_store_get(fs3_store *st, const char *bucket_name, const char *key, size_t key_len,
                       fs3_object **obj, fs3_body *body, char *err)
{
    fs3_code rc = FS3_OK;
    char *final = NULL;
    *obj = NULL;
    if (body) {
        body->fd = -1;
        body->data = NULL;
        body->size = 0;
        if (!st->memory && !(final = object_path(st, bucket_name, key, key_len))) {
            lv_fail(err, LV_ENOMEM, "out of memory");
            return FS3_INTERNAL_ERROR;
        }
    }
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    fs3_object *o = b ? find_object(b, key, key_len, NULL) : NULL;
    if (!b) {
        rc = FS3_NO_SUCH_BUCKET;
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
    } else if (!o) {
        rc = FS3_NO_SUCH_KEY;
        lv_fail(err, LV_ENOTFOUND, "no such key");
    } else {
        if (body && final) {
            /* opened under the lock, so the file is the version o describes */
            body->fd = open(final, O_RDONLY | O_CLOEXEC);
            if (body->fd < 0) {
                rc = FS3_INTERNAL_ERROR;
                lv_fail(err, LV_EIO, "open %s: %s", final, strerror(errno));
            }
        } else if (body) {
            body->data = o->data;
        }
        if (rc == FS3_OK) {
            fs3_object_ref(o);
            *obj = o;
            if (body)
                body->size = o->size;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    lv_free(final);
    return rc;
}

/* ---- listing --------------------------------------------------------------------------------- */

static int has_prefix(const char *s, size_t n, const char *p, size_t pn)
{
    return n >= pn && memcmp(s, p, pn) == 0;
}

/* Where the delimiter first occurs in s[from..n), or -1. */
static long find_delim(const char *s, size_t n, size_t from, const char *d, size_t dn)
{
    if (dn == 0 || n < dn)
        return -1;
    for (size_t i = from; i + dn <= n; i++)
        if (memcmp(s + i, d, dn) == 0)
            return (long)i;
    return -1;
}

static int add_entry(fs3_list_result *r, size_t *cap, const char *key, size_t len,
                     const fs3_object *o)
{
    fs3_list_entry *grown = grow(r->entries, cap, r->n + 1, sizeof *grown, 64);
    if (!grown)
        return 0;
    r->entries = grown;
    fs3_list_entry *e = &r->entries[r->n];
    memset(e, 0, sizeof *e);
    e->key = lv_malloc(len + 1);
    if (!e->key)
        return 0;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->key_len = len;
    if (o) {
        e->size = o->size;
        memcpy(e->etag, o->etag, sizeof e->etag);
        e->mtime_ms = o->mtime_ms;
    } else {
        e->is_prefix = 1;
    }
    r->n++;
    return 1;
}

fs3_code fs3_store_list(fs3_store *st, const char *bucket_name, const fs3_list_params *p,
                        fs3_list_result *out, char *err)
{
    fs3_code rc = FS3_OK;
    size_t cap = 0;
    memset(out, 0, sizeof *out);
    size_t dn = p->delimiter ? p->delimiter_len : 0;
    pthread_rwlock_rdlock(&st->lock);
    bucket *b = find_bucket(st, bucket_name, NULL);
    if (!b) {
        pthread_rwlock_unlock(&st->lock);
        lv_fail(err, LV_ENOTFOUND, "no bucket %s", bucket_name);
        return FS3_NO_SUCH_BUCKET;
    }
    size_t i = lower_bound(b, p->prefix, p->prefix_len, 0);
    if (p->after) {
        size_t j = lower_bound(b, p->after, p->after_len, 1);
        if (j > i)
            i = j;
    }
    /* the last common prefix given out (or resumed from): keys under it are skipped */
    const char *cp = p->after_is_prefix ? p->after : NULL;
    size_t cp_len = p->after_is_prefix ? p->after_len : 0;
    for (; i < b->n; i++) {
        const fs3_object *o = b->objs[i];
        if (!has_prefix(o->key, o->key_len, p->prefix, p->prefix_len))
            break; /* sorted: nothing further has the prefix */
        if (cp && has_prefix(o->key, o->key_len, cp, cp_len))
            continue;
        long d = find_delim(o->key, o->key_len, p->prefix_len, p->delimiter, dn);
        if (out->n == p->max_keys) {
            out->truncated = p->max_keys > 0;
            break;
        }
        if (d >= 0) {
            size_t len = (size_t)d + dn;
            if (!add_entry(out, &cap, o->key, len, NULL))
                goto nomem;
            cp = out->entries[out->n - 1].key;
            cp_len = len;
        } else if (!add_entry(out, &cap, o->key, o->key_len, o)) {
            goto nomem;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    return rc;
nomem:
    pthread_rwlock_unlock(&st->lock);
    fs3_list_free(out);
    lv_fail(err, LV_ENOMEM, "listing: out of memory");
    return FS3_INTERNAL_ERROR;
}

void fs3_list_free(fs3_list_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        lv_free(r->entries[i].key);
    lv_free(r->entries);
    memset(r, 0, sizeof *r);
}
