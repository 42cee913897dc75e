/*
 * testutil: what every unit test needs: paths to the shared vectors and the build, reading whole
 * files, temporary files, hex parsing, and reading the JSON sidecars of the LTX vectors.
 *
 * The vectors are used in place from ../shared/testdata (LTXVFS_TESTDATA, set by CTest). A test
 * that cannot find them fails: it never skips.
 *
 * Everything here allocates with the C library (malloc/free), never through lv_malloc, so that a
 * test that injects allocation failures into lib/ (lv_alloc_fail_after) only hits lib/.
 */
#ifndef LV_TESTUTIL_H
#define LV_TESTUTIL_H

#include <check.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ltx.h"

/* "<LTXVFS_TESTDATA>/<rel>" in a static buffer (valid until the next call); aborts if unset. */
const char *tu_testdata(const char *rel);
/* "<LTXVFS_TESTDATA>/ltx/<name>", in a buffer of its own (valid until the next call). */
const char *tu_ltx(const char *name);

/* Reads a whole file, with a NUL after its *size bytes (so text can be searched as a string);
 * the caller frees the result with free(). Fails the test on error. */
uint8_t *tu_read_file(const char *path, size_t *size);
/* Writes a whole file; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t size);
/* A new empty temporary file path (a file under a fresh mkdtemp folder); caller frees. */
char *tu_tmp_path(const char *name);
/* Removes a file made under tu_tmp_path and its folder, and frees the path. */
void tu_tmp_remove(char *path);
/* open(2) that fails the test on error. */
int tu_open(const char *path, int flags);

/* The database checksum of the database open on fd (0 for an empty file); fails the test on error.
 */
uint64_t tu_db_checksum_fd(int fd);

/* Parses 16 hex digits into a u64; fails the test on a bad string. */
uint64_t tu_hex64(const char *s);
/* Parses 8 hex digits, with or without a leading "0x", into a u32; fails the test otherwise. */
uint32_t tu_hex32(const char *s);
/* The lower-case hex SHA-256 of buf (OpenSSL) into out (65 bytes with the NUL). */
void tu_sha256_hex(const void *buf, size_t n, char out[65]);

/* Loads a sidecar "<name>.json" next to the vector; caller json_decref()s it. */
json_t *tu_sidecar(const char *ltx_name);

/*
 * Sidecar accessors: a member of an object, failing the test when it is missing or has the wrong
 * type. The returned pointers are borrowed from obj.
 */
json_t *tu_jget(const json_t *obj, const char *key);
const char *tu_jstr(const json_t *obj, const char *key);
long long tu_jint(const json_t *obj, const char *key);
uint64_t tu_jhex64(const json_t *obj, const char *key);
uint32_t tu_jhex32(const json_t *obj, const char *key);
/* The sidecar's "header" object as an ltx_header. */
void tu_jheader(const json_t *sidecar, ltx_header *h);
/* Fails the test (naming `what`) unless every field of a and b is equal. */
void tu_assert_header_eq(const ltx_header *a, const ltx_header *b, const char *what);

/* A growing in-memory output for the ltx_write_fn callbacks; zero-initialise it. */
typedef struct tu_buf {
    uint8_t *data;
    size_t size, cap;
    size_t limit;  /* if nonzero, a write that would grow size past it fails with LV_EIO */
    size_t writes; /* number of write calls */
} tu_buf;
lv_err tu_buf_write(void *ctx, const void *buf, size_t n, char *err);
void tu_buf_free(tu_buf *b);

/* A memory reader positioned at the start of data. */
ltx_mem_reader tu_reader(const uint8_t *data, size_t size);

/* Big-endian stores and loads, for patching files. */
void tu_put_be16(uint8_t *p, uint16_t v);
void tu_put_be32(uint8_t *p, uint32_t v);
void tu_put_be64(uint8_t *p, uint64_t v);
uint32_t tu_get_be32(const uint8_t *p);
uint64_t tu_get_be64(const uint8_t *p);
/* Appends v as an unsigned LEB128 varint at p; returns the bytes written (at most 10). */
size_t tu_put_uvarint(uint8_t *p, uint64_t v);

/*
 * An LTX writer written independently of lib/ (LZ4 block frames), that enforces no rule at all,
 * so tests can make well-checksummed files that break a rule of the format. Writes the header h,
 * one frame per pgnos[i] holding pages + i * h->page_size, the zero page header, a page index,
 * and the trailer (post_apply, then the file checksum computed as the README says).
 * Returns the file (caller frees) and its size in *size.
 */
uint8_t *tu_craft_ltx(const ltx_header *h, const uint32_t *pgnos, const uint8_t *pages, size_t n,
                      uint64_t post_apply, size_t *size);
/*
 * Recomputes and stores the file checksum of a format-3 file with LZ4-block frames after a test
 * patched it (header, page headers, index or post-apply). Walks the frames itself (independently
 * of lib/); fails the test if the frames cannot be walked.
 */
void tu_resign_ltx(uint8_t *file, size_t size);

/* A deterministic xorshift64* generator; seed it with any nonzero value. */
uint64_t tu_rand(uint64_t *state);

/*
 * A real fakes3 process for a test: build/fakes3 --listen 127.0.0.1:0 with the test keys
 * (TU_FAKES3_KEY / TU_FAKES3_SECRET), the bucket TU_FAKES3_BUCKET created at start, --memory
 * unless args has --data-dir, then args (NULL-terminated, may be NULL). Waits for its start-up
 * line (fails the test after 10 s). endpoint is "http://127.0.0.1:PORT".
 */
#define TU_FAKES3_KEY    "testkey"
#define TU_FAKES3_SECRET "testsecret"
#define TU_FAKES3_BUCKET "test-bucket"
typedef struct tu_fakes3 {
    int pid;
    char endpoint[64];
    char out_path[4096]; /* its stdout and stderr, for a failing test to show */
} tu_fakes3;
void tu_fakes3_start(tu_fakes3 *f, const char *const *args);
/* SIGTERM and wait; the test fails unless it exits 0 (a sanitizer report makes it nonzero). */
void tu_fakes3_stop(tu_fakes3 *f);
/* SIGKILL and wait (a crash). */
void tu_fakes3_kill(tu_fakes3 *f);

#endif
