/*
 * checksum: the additional checksums of S3 requests, x-amz-checksum-crc32, -crc32c, -crc64nvme,
 * -sha1 and -sha256: computed over a body as it streams by and compared with what the client sent
 * (base64 of the big-endian digest, as S3 writes them).
 *
 * The CRCs are table-driven here (slicing by 8): zlib has CRC-32 but not CRC-32C or CRC-64/NVME,
 * and no Debian library has all three; SHA-1 and SHA-256 come from OpenSSL.
 *
 * A context belongs to one thread; the tables are built once, thread-safely (pthread_once).
 */
#ifndef FS3_CHECKSUM_H
#define FS3_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef enum fs3_ck_alg {
    FS3_CK_NONE = 0,
    FS3_CK_CRC32,
    FS3_CK_CRC32C,
    FS3_CK_CRC64NVME,
    FS3_CK_SHA1,
    FS3_CK_SHA256,
    FS3_CK_COUNT
} fs3_ck_alg;

/* Room for any digest in base64, with its NUL. */
#define FS3_CK_B64_MAX 48

/* "x-amz-checksum-crc32" (lower case). */
const char *fs3_ck_header(fs3_ck_alg alg);
/* The element of ListParts / CompleteMultipartUpload: "ChecksumCRC32". */
const char *fs3_ck_element(fs3_ck_alg alg);
/* How S3 names the algorithm in its BadDigest message ("CRC32", "sha256"). */
const char *fs3_ck_name(fs3_ck_alg alg);
/* The algorithm of a header name (any case), or FS3_CK_NONE. */
fs3_ck_alg fs3_ck_from_header(const char *name);
/* The algorithm of an x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm value ("CRC32",
 * any case), or FS3_CK_NONE. */
fs3_ck_alg fs3_ck_from_name(const char *name);
/* Digest size in bytes (4, 4, 8, 20, 32). */
size_t fs3_ck_size(fs3_ck_alg alg);

typedef struct fs3_ck {
    fs3_ck_alg alg;
    uint64_t crc;
    void *md; /* EVP_MD_CTX for the SHAs */
} fs3_ck;

/* 0, or -1 when out of memory (c is then safe to free). */
int fs3_ck_init(fs3_ck *c, fs3_ck_alg alg);
void fs3_ck_update(fs3_ck *c, const void *data, size_t n);
/* The digest in base64 into out (FS3_CK_B64_MAX bytes). c must be freed afterwards. */
void fs3_ck_final(fs3_ck *c, char *out);
void fs3_ck_free(fs3_ck *c);

/* One shot: the base64 digest of data[0..n). 0, or -1 when out of memory. */
int fs3_ck_compute(fs3_ck_alg alg, const void *data, size_t n, char *out);

/* 1 if b64 is the base64 of a digest of alg's size (S3 answers InvalidRequest otherwise). */
int fs3_ck_value_valid(fs3_ck_alg alg, const char *b64);
/* 1 if two base64 digests of alg are the same digest. */
int fs3_ck_equal(fs3_ck_alg alg, const char *a, const char *b);

/* Raw CRCs, for tests: CRC-32 (ISO-HDLC), CRC-32C (Castagnoli), CRC-64/NVME; crc is the value
 * so far (0 to start). */
uint32_t fs3_crc32(uint32_t crc, const void *data, size_t n);
uint32_t fs3_crc32c(uint32_t crc, const void *data, size_t n);
uint64_t fs3_crc64nvme(uint64_t crc, const void *data, size_t n);

#endif
