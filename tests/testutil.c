/* testutil: helpers shared by the unit tests (see testutil.h). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <lz4.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc64.h"

const char *tu_testdata(const char *rel)
{
    static char path[4096];
    const char *dir = getenv("LTXVFS_TESTDATA");
    ck_assert_msg(dir && *dir, "LTXVFS_TESTDATA is not set (run the tests through ctest)");
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    ck_assert_msg(access(path, R_OK) == 0, "test data missing: %s (is ../shared there?)", path);
    return path;
}

const char *tu_ltx(const char *name)
{
    static char path[4096];
    char rel[1024];
    snprintf(rel, sizeof rel, "ltx/%s", name);
    snprintf(path, sizeof path, "%s", tu_testdata(rel));
    return path;
}

uint8_t *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(fread(buf, 1, (size_t)n, f) == (size_t)n, "read %s", path);
    fclose(f);
    buf[n] = 0; /* a NUL after the content, so text files can be searched as strings */
    *size = (size_t)n;
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "create %s: %s", path, strerror(errno));
    ck_assert_msg(fwrite(data, 1, size, f) == size, "write %s", path);
    ck_assert_int_eq(fclose(f), 0);
}

char *tu_tmp_path(const char *name)
{
    char tmpl[] = "/tmp/ltxvfs-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    size_t n = strlen(tmpl) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", tmpl, name);
    return p;
}

void tu_tmp_remove(char *path)
{
    unlink(path);
    rmdir(dirname(path)); /* dirname edits path in place: it is freed right after */
    free(path);
}

int tu_open(const char *path, int flags)
{
    int fd = open(path, flags, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

uint64_t tu_hex64(const char *s)
{
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strlen(s) == 16, "not 16 hex digits: %s", s);
    char *end;
    uint64_t v = strtoull(s, &end, 16);
    ck_assert_msg(*end == '\0', "bad hex: %s", s);
    return v;
}

uint32_t tu_hex32(const char *s)
{
    ck_assert_ptr_nonnull(s);
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    ck_assert_msg(strlen(s) == 8, "not 8 hex digits: %s", s);
    char *end;
    unsigned long v = strtoul(s, &end, 16);
    ck_assert_msg(*end == '\0', "bad hex: %s", s);
    return (uint32_t)v;
}

void tu_sha256_hex(const void *buf, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ck_assert_int_eq(EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(len, 32);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

json_t *tu_sidecar(const char *ltx_name)
{
    char name[1024];
    snprintf(name, sizeof name, "%s.json", ltx_name);
    json_error_t e;
    json_t *j = json_load_file(tu_ltx(name), 0, &e);
    ck_assert_msg(j != NULL, "parse %s: %s (line %d)", name, e.text, e.line);
    return j;
}

json_t *tu_jget(const json_t *obj, const char *key)
{
    ck_assert_msg(json_is_object(obj), "looking up \"%s\" in something that is not an object", key);
    json_t *v = json_object_get(obj, key);
    ck_assert_msg(v != NULL, "sidecar has no \"%s\"", key);
    return v;
}

const char *tu_jstr(const json_t *obj, const char *key)
{
    json_t *v = tu_jget(obj, key);
    ck_assert_msg(json_is_string(v), "sidecar \"%s\" is not a string", key);
    return json_string_value(v);
}

long long tu_jint(const json_t *obj, const char *key)
{
    json_t *v = tu_jget(obj, key);
    ck_assert_msg(json_is_integer(v), "sidecar \"%s\" is not an integer", key);
    return (long long)json_integer_value(v);
}

uint64_t tu_jhex64(const json_t *obj, const char *key)
{
    return tu_hex64(tu_jstr(obj, key));
}

uint32_t tu_jhex32(const json_t *obj, const char *key)
{
    return tu_hex32(tu_jstr(obj, key));
}

void tu_jheader(const json_t *sidecar, ltx_header *h)
{
    const json_t *j = tu_jget(sidecar, "header");
    ck_assert_str_eq(tu_jstr(j, "magic"), LTX_MAGIC);
    memset(h, 0, sizeof *h);
    h->flags = tu_jhex32(j, "flags");
    h->page_size = (uint32_t)tu_jint(j, "page_size");
    h->commit = (uint32_t)tu_jint(j, "commit");
    h->min_txid = tu_jhex64(j, "min_txid_hex");
    h->max_txid = tu_jhex64(j, "max_txid_hex");
    ck_assert_uint_eq(h->min_txid, (uint64_t)tu_jint(j, "min_txid"));
    ck_assert_uint_eq(h->max_txid, (uint64_t)tu_jint(j, "max_txid"));
    h->timestamp = tu_jint(j, "timestamp_ms");
    h->pre_apply_checksum = tu_jhex64(j, "pre_apply_checksum");
    h->wal_offset = tu_jint(j, "wal_offset");
    h->wal_size = tu_jint(j, "wal_size");
    h->wal_salt1 = tu_jhex32(j, "wal_salt1");
    h->wal_salt2 = tu_jhex32(j, "wal_salt2");
    h->node_id = tu_jhex64(j, "node_id");
}

void tu_assert_header_eq(const ltx_header *a, const ltx_header *b, const char *what)
{
    ck_assert_msg(a->flags == b->flags, "%s: flags %#x != %#x", what, a->flags, b->flags);
    ck_assert_msg(a->page_size == b->page_size, "%s: page size %u != %u", what, a->page_size,
                  b->page_size);
    ck_assert_msg(a->commit == b->commit, "%s: commit %u != %u", what, a->commit, b->commit);
    ck_assert_msg(a->min_txid == b->min_txid, "%s: min txid %llu != %llu", what,
                  (unsigned long long)a->min_txid, (unsigned long long)b->min_txid);
    ck_assert_msg(a->max_txid == b->max_txid, "%s: max txid %llu != %llu", what,
                  (unsigned long long)a->max_txid, (unsigned long long)b->max_txid);
    ck_assert_msg(a->timestamp == b->timestamp, "%s: timestamp %lld != %lld", what,
                  (long long)a->timestamp, (long long)b->timestamp);
    ck_assert_msg(
        a->pre_apply_checksum == b->pre_apply_checksum, "%s: pre-apply %016llx != %016llx", what,
        (unsigned long long)a->pre_apply_checksum, (unsigned long long)b->pre_apply_checksum);
    ck_assert_msg(a->wal_offset == b->wal_offset, "%s: wal offset %lld != %lld", what,
                  (long long)a->wal_offset, (long long)b->wal_offset);
    ck_assert_msg(a->wal_size == b->wal_size, "%s: wal size %lld != %lld", what,
                  (long long)a->wal_size, (long long)b->wal_size);
    ck_assert_msg(a->wal_salt1 == b->wal_salt1, "%s: wal salt1 %08x != %08x", what, a->wal_salt1,
                  b->wal_salt1);
    ck_assert_msg(a->wal_salt2 == b->wal_salt2, "%s: wal salt2 %08x != %08x", what, a->wal_salt2,
                  b->wal_salt2);
    ck_assert_msg(a->node_id == b->node_id, "%s: node id %016llx != %016llx", what,
                  (unsigned long long)a->node_id, (unsigned long long)b->node_id);
}

lv_err tu_buf_write(void *ctx, const void *buf, size_t n, char *err)
{
    tu_buf *b = ctx;
    b->writes++;
    if (b->limit && b->size + n > b->limit)
        return lv_fail(err, LV_EIO, "test writer: limit of %zu bytes reached", b->limit);
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        ck_assert_ptr_nonnull(p);
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->size, buf, n);
    b->size += n;
    return LV_OK;
}

void tu_buf_free(tu_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

ltx_mem_reader tu_reader(const uint8_t *data, size_t size)
{
    ltx_mem_reader r = {data, size, 0};
    return r;
}

void tu_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void tu_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void tu_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint32_t tu_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t tu_get_be64(const uint8_t *p)
{
    return (uint64_t)tu_get_be32(p) << 32 | tu_get_be32(p + 4);
}

size_t tu_put_uvarint(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

uint8_t *tu_craft_ltx(const ltx_header *h, const uint32_t *pgnos, const uint8_t *pages, size_t n,
                      uint64_t post_apply, size_t *size)
{
    size_t ps = h->page_size;
    int bound = LZ4_compressBound((int)ps);
    size_t cap = LTX_HEADER_SIZE + n * (LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE + bound) +
                 LTX_PAGE_HEADER_SIZE + n * 30 + 1 + LTX_INDEX_SIZE_FIELD + LTX_TRAILER_SIZE;
    uint8_t *f = calloc(1, cap);
    uint64_t *offs = calloc(n + 1, sizeof *offs);
    ck_assert(f && offs);

    ltx_header_encode(h, f);
    uint64_t crc = crc64_update(0, f, LTX_HEADER_SIZE);
    size_t pos = LTX_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        offs[i] = pos;
        tu_put_be32(f + pos, pgnos[i]);
        tu_put_be16(f + pos + 4, LTX_PAGE_FLAG_SIZE);
        int c = LZ4_compress_default((const char *)pages + i * ps, (char *)f + pos + 10, (int)ps,
                                     bound);
        ck_assert_int_gt(c, 0);
        tu_put_be32(f + pos + 6, (uint32_t)c);
        crc = crc64_update(crc, f + pos, 10);
        crc = crc64_update(crc, pages + i * ps, ps);
        pos += 10 + (size_t)c;
    }
    offs[n] = pos;
    crc = crc64_update(crc, f + pos, LTX_PAGE_HEADER_SIZE); /* the zero page header */
    pos += LTX_PAGE_HEADER_SIZE;

    size_t index_start = pos;
    for (size_t i = 0; i < n; i++) {
        pos += tu_put_uvarint(f + pos, pgnos[i]);
        pos += tu_put_uvarint(f + pos, offs[i]);
        pos += tu_put_uvarint(f + pos, offs[i + 1] - offs[i]);
    }
    pos += tu_put_uvarint(f + pos, 0);
    tu_put_be64(f + pos, pos - index_start);
    pos += LTX_INDEX_SIZE_FIELD;
    tu_put_be64(f + pos, post_apply);
    pos += 8;
    crc = crc64_update(crc, f + index_start, pos - index_start);
    tu_put_be64(f + pos, LTX_CHECKSUM_FLAG | crc);
    pos += 8;
    ck_assert_uint_le(pos, cap);
    free(offs);
    *size = pos;
    return f;
}

void tu_resign_ltx(uint8_t *file, size_t size)
{
    ck_assert_uint_ge(size, LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE + LTX_TAIL_SIZE);
    uint32_t ps = tu_get_be32(file + 8);
    ck_assert_msg(ps >= 512 && ps <= 65536, "resign: page size %u", ps);
    char *page = malloc(ps);
    ck_assert_ptr_nonnull(page);
    uint64_t crc = crc64_update(0, file, LTX_HEADER_SIZE);
    size_t pos = LTX_HEADER_SIZE;
    for (;;) {
        ck_assert_uint_le(pos + LTX_PAGE_HEADER_SIZE, size - LTX_TRAILER_SIZE);
        uint32_t pgno = tu_get_be32(file + pos);
        uint16_t flags = (uint16_t)(file[pos + 4] << 8 | file[pos + 5]);
        if (pgno == 0 && flags == 0) {
            crc = crc64_update(crc, file + pos, LTX_PAGE_HEADER_SIZE);
            pos += LTX_PAGE_HEADER_SIZE;
            break;
        }
        ck_assert_msg(flags == LTX_PAGE_FLAG_SIZE, "resign: frame at %zu has flags %#x", pos,
                      flags);
        uint32_t c = tu_get_be32(file + pos + 6);
        ck_assert_uint_le(pos + 10 + (size_t)c, size - LTX_TRAILER_SIZE);
        int got = LZ4_decompress_safe((const char *)file + pos + 10, page, (int)c, (int)ps);
        ck_assert_msg(got == (int)ps, "resign: frame at %zu does not decompress", pos);
        crc = crc64_update(crc, file + pos, 10);
        crc = crc64_update(crc, page, ps);
        pos += 10 + c;
    }
    crc = crc64_update(crc, file + pos, size - 8 - pos); /* index and post-apply */
    tu_put_be64(file + size - 8, LTX_CHECKSUM_FLAG | crc);
    free(page);
}

uint64_t tu_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint64_t tu_db_checksum_fd(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    if (st.st_size == 0)
        return 0;
    uint32_t ps, pc;
    uint64_t c = 0;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_db_geometry(fd, &ps, &pc, err) == LV_OK, "%s", err);
    ck_assert_msg(ltx_db_checksum_fd(fd, ps, pc, &c, err) == LV_OK, "%s", err);
    return c;
}

/* ---- a real fakes3 ----------------------------------------------------------------------------
 */

void tu_fakes3_start(tu_fakes3 *f, const char *const *args)
{
    const char *build = getenv("LTXVFS_BUILD_DIR");
    ck_assert_msg(build != NULL, "LTXVFS_BUILD_DIR is not set");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/fakes3", build);
    memset(f, 0, sizeof *f);
    char *out = tu_tmp_path("fakes3.out");
    snprintf(f->out_path, sizeof f->out_path, "%s", out);
    free(out);

    const char *argv[64];
    size_t n = 0, n_args = 0;
    int has_dir = 0;
    while (args && args[n_args]) {
        if (strcmp(args[n_args], "--data-dir") == 0)
            has_dir = 1;
        n_args++;
    }
    ck_assert_msg(n_args < 48, "too many fakes3 arguments");
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--access-key";
    argv[n++] = TU_FAKES3_KEY;
    argv[n++] = "--secret-key";
    argv[n++] = TU_FAKES3_SECRET;
    argv[n++] = "--bucket";
    argv[n++] = TU_FAKES3_BUCKET;
    if (!has_dir)
        argv[n++] = "--memory";
    for (size_t i = 0; i < n_args; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(f->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 400; i++) {
        size_t size = 0;
        uint8_t *text = NULL;
        FILE *fp = fopen(f->out_path, "rb");
        if (fp) {
            fclose(fp);
            text = tu_read_file(f->out_path, &size);
        }
        const char *at = text ? strstr((const char *)text, "listening on ") : NULL;
        if (at) {
            at += strlen("listening on ");
            size_t len = strcspn(at, " \n");
            ck_assert(len < sizeof f->endpoint);
            memcpy(f->endpoint, at, len);
            f->endpoint[len] = 0;
            free(text);
            return;
        }
        free(text);
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "fakes3 exited at start (see %s)",
                      f->out_path);
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("fakes3 did not start in 10 s (see %s)", f->out_path);
}

void tu_fakes3_stop(tu_fakes3 *f)
{
    if (f->pid <= 0)
        return;
    int status = 0;
    kill(f->pid, SIGTERM);
    ck_assert(waitpid(f->pid, &status, 0) == f->pid);
    f->pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "fakes3 did not stop cleanly (status %d, see %s)", status, f->out_path);
    unlink(f->out_path);
    char *slash = strrchr(f->out_path, '/');
    if (slash) {
        *slash = 0;
        rmdir(f->out_path);
    }
}

void tu_fakes3_kill(tu_fakes3 *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
}
