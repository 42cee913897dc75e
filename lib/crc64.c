/*
 * crc64: slicing-by-8 CRC-64/ISO and CRC combination (see crc64.h).
 *
 * Slicing-by-8: T[0] is the classic byte table; T[k][b] is the CRC contribution of byte b followed
 * by k zero bytes, so eight input bytes are folded with eight independent lookups per step.
 *
 * Combination works in GF(2)[x] modulo the polynomial, in the reflected bit order the CRC uses
 * (x^0 is bit 63): CRC(a||b) = CRC(a) * x^(8*len(b)) + CRC(b). The initial and final XORs cancel,
 * exactly as in zlib's crc32_combine.
 */
#include "crc64.h"

#include <pthread.h>
#include <string.h>

#define CRC64_POLY 0xD800000000000000ull

static uint64_t T[8][256];
static uint64_t x2n[64]; /* x^(2^k) mod p */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static uint64_t multmodp(uint64_t a, uint64_t b)
{
    uint64_t m = 1ull << 63, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ CRC64_POLY : b >> 1;
    }
    return p;
}

static void build_tables(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t c = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            c = (c & 1) ? (c >> 1) ^ CRC64_POLY : c >> 1;
        T[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            T[k][i] = (T[k - 1][i] >> 8) ^ T[0][T[k - 1][i] & 0xff];
    uint64_t p = 1ull << 62; /* x^1 */
    x2n[0] = p;
    for (int k = 1; k < 64; k++)
        x2n[k] = p = multmodp(p, p);
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t crc64_update(uint64_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    pthread_once(&tables_once, build_tables);
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = T[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t v = crc ^ load_le64(p);
        crc = T[7][v & 0xff] ^ T[6][(v >> 8) & 0xff] ^ T[5][(v >> 16) & 0xff] ^
              T[4][(v >> 24) & 0xff] ^ T[3][(v >> 32) & 0xff] ^ T[2][(v >> 40) & 0xff] ^
              T[1][(v >> 48) & 0xff] ^ T[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = T[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint64_t crc64_combine_op(uint64_t len_b)
{
    pthread_once(&tables_once, build_tables);
    uint64_t p = 1ull << 63; /* x^0 */
    unsigned k = 3;          /* bytes to bits: x^(8n) = x^(n * 2^3) */
    while (len_b) {
        if (len_b & 1)
            p = multmodp(x2n[k & 63], p);
        len_b >>= 1;
        k++;
    }
    return p;
}

uint64_t crc64_combine_with(uint64_t crc_a, uint64_t crc_b, uint64_t op)
{
    return multmodp(op, crc_a) ^ crc_b;
}

uint64_t crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b)
{
    return crc64_combine_with(crc_a, crc_b, crc64_combine_op(len_b));
}
