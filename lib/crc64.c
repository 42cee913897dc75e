/*
 * crc64: slicing-by-8 CRC-64/ISO and CRC combination (see crc64.h).
 *
 * Slicing-by-8: T[0] is the classic byte table; T[k][b] is the CRC contribution of byte b followed
 * by k zero bytes, so eight input bytes are folded with eight independent lookups per step.
 *
 * One slicing-by-8 chain is bound by the latency of its lookups, so long inputs run four chains at
 * once over four adjacent lanes of LANE bytes and join them: in the raw register (before the final
 * XOR) the CRC is linear, reg(a||b) = reg(a) * x^(8*|b|) + reg0(b), and the multiplication by the
 * fixed x^(8*LANE) is itself a table lookup per byte (S[k][b] = b*2^(8k) * x^(8*LANE) mod p).
 *
 * On x86-64 with PCLMULQDQ (checked at run time), long inputs are folded with carry-less
 * multiplies instead, 128 bytes per step in eight 16-byte accumulators. In the reflected order a
 * 16-byte chunk V is A*x^64 + B (A its first 8 bytes); moving it D bits further along is
 * V*x^D = A*x^(64+D) + B*x^D, and since clmul(a, b) yields x*a*b, the constants are x^(63+D) and
 * x^(D-1) mod p, computed at start-up with multmodp. The last accumulator is congruent to 16
 * message bytes, so the table code finishes the job. A self-check against the table code at
 * start-up turns the fast path off should the two ever disagree.
 *
 * Combination works in GF(2)[x] modulo the polynomial, in the reflected bit order the CRC uses
 * (x^0 is bit 63): CRC(a||b) = CRC(a) * x^(8*len(b)) + CRC(b). The initial and final XORs cancel,
 * exactly as in zlib's crc32_combine.
 */
#include "crc64.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CRC64_CLMUL 1
#endif

#define CRC64_POLY 0xD800000000000000ull

#define LANE 1024 /* bytes per lane when four run at once; a multiple of 8 */

static uint64_t T[8][256];
static uint64_t S[8][256]; /* multiplication by x^(8*LANE) mod p, a byte at a time */
static uint64_t x2n[64];   /* x^(2^k) mod p */
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

#ifdef CRC64_CLMUL
static void clmul_init(void);
#endif

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
    uint64_t lane_op = 1ull << 63; /* x^(8*LANE), built as in crc64_combine_op */
    for (unsigned n = LANE, k = 3; n; n >>= 1, k++)
        if (n & 1)
            lane_op = multmodp(x2n[k], lane_op);
    for (int k = 0; k < 8; k++)
        for (int b = 0; b < 256; b++)
            S[k][b] = multmodp(lane_op, (uint64_t)b << (8 * k));
#ifdef CRC64_CLMUL
    clmul_init();
#endif
}

/* x^e mod p */
static uint64_t xpow(uint64_t e)
{
    uint64_t p = 1ull << 63;
    for (unsigned k = 0; e; e >>= 1, k++)
        if (e & 1)
            p = multmodp(x2n[k & 63], p);
    return p;
}

/* reg * x^(8*LANE) mod p */
static inline uint64_t shift_lane(uint64_t v)
{
    return S[0][v & 0xff] ^ S[1][(v >> 8) & 0xff] ^ S[2][(v >> 16) & 0xff] ^
           S[3][(v >> 24) & 0xff] ^ S[4][(v >> 32) & 0xff] ^ S[5][(v >> 40) & 0xff] ^
           S[6][(v >> 48) & 0xff] ^ S[7][v >> 56];
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

/* Folds 8 bytes into a raw register. */
static inline uint64_t step8(uint64_t crc, const unsigned char *p)
{
    uint64_t v = crc ^ load_le64(p);
    return T[7][v & 0xff] ^ T[6][(v >> 8) & 0xff] ^ T[5][(v >> 16) & 0xff] ^
           T[4][(v >> 24) & 0xff] ^ T[3][(v >> 32) & 0xff] ^ T[2][(v >> 40) & 0xff] ^
           T[1][(v >> 48) & 0xff] ^ T[0][v >> 56];
}

/* The table code on a raw register (no initial or final XOR). */
static uint64_t update_tables(uint64_t crc, const unsigned char *p, size_t n)
{
    while (n >= 4 * LANE) {
        uint64_t c0 = crc, c1 = 0, c2 = 0, c3 = 0;
        for (size_t i = 0; i < LANE; i += 8) {
            c0 = step8(c0, p + i);
            c1 = step8(c1, p + LANE + i);
            c2 = step8(c2, p + 2 * LANE + i);
            c3 = step8(c3, p + 3 * LANE + i);
        }
        crc = shift_lane(shift_lane(shift_lane(c0) ^ c1) ^ c2) ^ c3;
        p += 4 * LANE;
        n -= 4 * LANE;
    }
    while (n >= 8) {
        crc = step8(crc, p);
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = T[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#ifdef CRC64_CLMUL
static int clmul_ok;      /* the CPU has PCLMULQDQ and the self-check passed */
static uint64_t K1024[2]; /* fold by 1024 bits: x^(63+1024), x^(1024-1) */
static uint64_t K128[2];  /* fold by 128 bits */

__attribute__((target("pclmul,sse2"))) static inline __m128i fold(__m128i acc, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(acc, k, 0x00), _mm_clmulepi64_si128(acc, k, 0x11));
}

/* The raw register after n >= 128 bytes; the bytes past the last whole 16 go to the tables. */
__attribute__((target("pclmul,sse2"))) static uint64_t
update_clmul(uint64_t crc, const unsigned char *p, size_t n)
{
    const __m128i k1024 = _mm_set_epi64x((long long)K1024[1], (long long)K1024[0]);
    const __m128i k128 = _mm_set_epi64x((long long)K128[1], (long long)K128[0]);
    __m128i acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
    acc[0] = _mm_xor_si128(acc[0], _mm_set_epi64x(0, (long long)crc));
    p += 128;
    n -= 128;
    while (n >= 128) {
        for (int i = 0; i < 8; i++)
            acc[i] =
                _mm_xor_si128(fold(acc[i], k1024), _mm_loadu_si128((const __m128i *)(p + 16 * i)));
        p += 128;
        n -= 128;
    }
    __m128i v = acc[0];
    for (int i = 1; i < 8; i++)
        v = _mm_xor_si128(fold(v, k128), acc[i]);
    while (n >= 16) {
        v = _mm_xor_si128(fold(v, k128), _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    unsigned char last[16];
    _mm_storeu_si128((__m128i *)last, v);
    return update_tables(update_tables(0, last, 16), p, n);
}

static void clmul_init(void)
{
    K1024[0] = xpow(63 + 1024);
    K1024[1] = xpow(1024 - 1);
    K128[0] = xpow(63 + 128);
    K128[1] = xpow(128 - 1);
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("pclmul"))
        return;
    unsigned char buf[1000];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t n = 128; n <= sizeof buf; n += 41)
        if (update_clmul(~0ull, buf, n) != update_tables(~0ull, buf, n))
            return;
    clmul_ok = 1;
}
#endif

uint64_t crc64_update(uint64_t crc, const void *buf, size_t n)
{
    pthread_once(&tables_once, build_tables);
#ifdef CRC64_CLMUL
    if (clmul_ok && n >= 128)
        return ~update_clmul(~crc, buf, n);
#endif
    return ~update_tables(~crc, buf, n);
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
