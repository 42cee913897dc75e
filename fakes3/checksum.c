/* checksum: S3's additional checksums, CRCs by table and SHAs by OpenSSL (see checksum.h). */
#include "checksum.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static const struct {
    const char *header, *element, *name, *alg;
    size_t size;
} algs[FS3_CK_COUNT] = {
    [FS3_CK_CRC32] = {"x-amz-checksum-crc32", "ChecksumCRC32", "CRC32", "CRC32", 4},
    [FS3_CK_CRC32C] = {"x-amz-checksum-crc32c", "ChecksumCRC32C", "CRC32C", "CRC32C", 4},
    [FS3_CK_CRC64NVME] = {"x-amz-checksum-crc64nvme", "ChecksumCRC64NVME", "CRC64NVME", "CRC64NVME",
                          8},
    [FS3_CK_SHA1] = {"x-amz-checksum-sha1", "ChecksumSHA1", "SHA1", "SHA1", 20},
    [FS3_CK_SHA256] = {"x-amz-checksum-sha256", "ChecksumSHA256", "sha256", "SHA256", 32},
};

static int valid_alg(fs3_ck_alg a)
{
    return a > FS3_CK_NONE && a < FS3_CK_COUNT;
}

const char *fs3_ck_header(fs3_ck_alg alg)
{
    return valid_alg(alg) ? algs[alg].header : "";
}

const char *fs3_ck_element(fs3_ck_alg alg)
{
    return valid_alg(alg) ? algs[alg].element : "";
}

const char *fs3_ck_name(fs3_ck_alg alg)
{
    return valid_alg(alg) ? algs[alg].name : "";
}

size_t fs3_ck_size(fs3_ck_alg alg)
{
    return valid_alg(alg) ? algs[alg].size : 0;
}

fs3_ck_alg fs3_ck_from_header(const char *name)
{
    for (int a = 1; a < FS3_CK_COUNT; a++)
        if (strcasecmp(name, algs[a].header) == 0)
            return (fs3_ck_alg)a;
    return FS3_CK_NONE;
}

fs3_ck_alg fs3_ck_from_name(const char *name)
{
    for (int a = 1; a < FS3_CK_COUNT; a++)
        if (strcasecmp(name, algs[a].alg) == 0)
            return (fs3_ck_alg)a;
    return FS3_CK_NONE;
}

/* ---- CRCs, slicing by 8 (reflected polynomials, init and final xor all ones) ----------------- */

static uint32_t t32[8][256], t32c[8][256];
static uint64_t t64[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t a = i, c = i;
        uint64_t d = i;
        for (int k = 0; k < 8; k++) {
            a = a & 1 ? (a >> 1) ^ 0xEDB88320u : a >> 1;
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            d = d & 1 ? (d >> 1) ^ 0x9A6C9329AC4BC9B5ull : d >> 1;
        }
        t32[0][i] = a;
        t32c[0][i] = c;
        t64[0][i] = d;
    }
    for (int s = 1; s < 8; s++)
        for (int i = 0; i < 256; i++) {
            t32[s][i] = (t32[s - 1][i] >> 8) ^ t32[0][t32[s - 1][i] & 0xff];
            t32c[s][i] = (t32c[s - 1][i] >> 8) ^ t32c[0][t32c[s - 1][i] & 0xff];
            t64[s][i] = (t64[s - 1][i] >> 8) ^ t64[0][t64[s - 1][i] & 0xff];
        }
}

static uint32_t crc32_tab(uint32_t t[8][256], uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

uint32_t fs3_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&tables_once, build_tables);
    return crc32_tab(t32, crc, data, n);
}

uint32_t fs3_crc32c(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&tables_once, build_tables);
    return crc32_tab(t32c, crc, data, n);
}

uint64_t fs3_crc64nvme(uint64_t crc, const void *data, size_t n)
{
    pthread_once(&tables_once, build_tables);
    const uint8_t *p = data;
    crc = ~crc;
    while (n >= 8) {
        uint64_t x = crc ^ ((uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                            (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                            (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56);
        crc = t64[7][x & 0xff] ^ t64[6][(x >> 8) & 0xff] ^ t64[5][(x >> 16) & 0xff] ^
              t64[4][(x >> 24) & 0xff] ^ t64[3][(x >> 32) & 0xff] ^ t64[2][(x >> 40) & 0xff] ^
              t64[1][(x >> 48) & 0xff] ^ t64[0][x >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ t64[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* ---- contexts -------------------------------------------------------------------------------- */

int fs3_ck_init(fs3_ck *c, fs3_ck_alg alg)
{
    c->alg = alg;
    c->crc = 0;
    c->md = NULL;
    if (alg == FS3_CK_SHA1 || alg == FS3_CK_SHA256) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        if (!m)
            return -1;
        if (!EVP_DigestInit_ex(m, alg == FS3_CK_SHA1 ? EVP_sha1() : EVP_sha256(), NULL)) {
            EVP_MD_CTX_free(m);
            return -1;
        }
        c->md = m;
    }
    return 0;
}

void fs3_ck_update(fs3_ck *c, const void *data, size_t n)
{
    switch (c->alg) {
    case FS3_CK_CRC32:
        c->crc = fs3_crc32((uint32_t)c->crc, data, n);
        break;
    case FS3_CK_CRC32C:
        c->crc = fs3_crc32c((uint32_t)c->crc, data, n);
        break;
    case FS3_CK_CRC64NVME:
        c->crc = fs3_crc64nvme(c->crc, data, n);
        break;
    case FS3_CK_SHA1:
    case FS3_CK_SHA256:
        if (c->md)
            EVP_DigestUpdate(c->md, data, n);
        break;
    default:
        break;
    }
}

void fs3_ck_final(fs3_ck *c, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    switch (c->alg) {
    case FS3_CK_CRC32:
    case FS3_CK_CRC32C:
        n = 4;
        for (int i = 0; i < 4; i++)
            d[i] = (unsigned char)(c->crc >> (24 - 8 * i));
        break;
    case FS3_CK_CRC64NVME:
        n = 8;
        for (int i = 0; i < 8; i++)
            d[i] = (unsigned char)(c->crc >> (56 - 8 * i));
        break;
    case FS3_CK_SHA1:
    case FS3_CK_SHA256:
        if (!c->md || !EVP_DigestFinal_ex(c->md, d, &n))
            return;
        break;
    default:
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
}

void fs3_ck_free(fs3_ck *c)
{
    if (c->md)
        EVP_MD_CTX_free(c->md);
    c->md = NULL;
}

int fs3_ck_compute(fs3_ck_alg alg, const void *data, size_t n, char *out)
{
    fs3_ck c;
    if (fs3_ck_init(&c, alg) != 0)
        return -1;
    fs3_ck_update(&c, data, n);
    fs3_ck_final(&c, out);
    fs3_ck_free(&c);
    return 0;
}

/* Decodes a base64 digest of exactly `size` bytes; 0 on success. */
static int decode_digest(const char *b64, size_t size, unsigned char *out)
{
    size_t len = strlen(b64);
    size_t want = (size + 2) / 3 * 4;
    if (len != want)
        return -1;
    unsigned char buf[64];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    size_t pad = (len && b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    if ((size_t)n - pad != size)
        return -1;
    memcpy(out, buf, size);
    return 0;
}

int fs3_ck_value_valid(fs3_ck_alg alg, const char *b64)
{
    unsigned char d[64];
    return valid_alg(alg) && decode_digest(b64, algs[alg].size, d) == 0;
}

int fs3_ck_equal(fs3_ck_alg alg, const char *a, const char *b)
{
    unsigned char x[64], y[64];
    if (!valid_alg(alg))
        return 0;
    size_t n = algs[alg].size;
    return decode_digest(a, n, x) == 0 && decode_digest(b, n, y) == 0 && memcmp(x, y, n) == 0;
}
