/*
 * crc.c -- CRC-32C in hardware where the CPU has it, in software otherwise;
 * the IEEE CRC-32 of legacy files (crc.h has the contract).
 *
 * Why hardware: opening an index in place (hnswc_open with HNSWC_OPEN_MMAP)
 * sums its 9 MB of metadata (Fashion-MNIST), and the software CRC (slicing
 * by 8, about 1.4 GB/s here) was a fifth of the open; hnswc_load sums all
 * 197 MB. x86-64's SSE4.2 `crc32` and AArch64's `crc32cx` do 8 bytes an
 * instruction, with a latency of about 3 cycles and a throughput of one a
 * cycle, so the long loop runs three independent streams over three
 * consecutive blocks and joins them: the state after A|B is
 * shift(state after A) ^ (state of B from 0), where shift multiplies by
 * x^(8 * CRC_BLOCK) modulo the polynomial -- a linear map on 32 bits, done
 * with four 256-entry tables made once. (A PCLMULQDQ fold would be faster
 * still on long buffers; rejected as more code for what is already no
 * longer a measurable part of an open.)
 *
 * CRC-32C was chosen for the files over zlib's CRC-32 for its better error
 * detection on the large blocks an index is made of (and for the
 * instruction).
 *
 * Run-time dispatch like the distance kernels (distance.c): x86-64 asks
 * __builtin_cpu_supports("sse4.2"); AArch64 uses the instruction when the
 * build targets it (__ARM_FEATURE_CRC32) or, with clang on Linux, when
 * getauxval says the CPU has it. Anything else, a big-endian AArch64, or
 * HNSWC_CRC=software: the tables. The AArch64 paths are compile-tested
 * (make test-c-neon), not run: this machine is x86-64.
 */
#include "crc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC_X86 1
#include <nmmintrin.h>
#define CRC_TARGET __attribute__((target("sse4.2")))
#define CRC_STEP64(c, v) ((uint32_t)_mm_crc32_u64((c), (v)))
#define CRC_STEP8(c, b) _mm_crc32_u8((c), (b))
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CRC_ARM 1
#define CRC_ARM_ALWAYS 1 /* the build targets CPUs that all have it */
#include <arm_acle.h>
#define CRC_TARGET
#define CRC_STEP64(c, v) __crc32cd((c), (v))
#define CRC_STEP8(c, b) __crc32cb((c), (b))
#elif defined(__aarch64__) && defined(__clang__) && defined(__linux__) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CRC_ARM 1
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRC_TARGET __attribute__((target("crc")))
#define CRC_STEP64(c, v) __builtin_arm_crc32cd((c), (v))
#define CRC_STEP8(c, b) __builtin_arm_crc32cb((c), (b))
#endif

#define POLY_32C 0x82f63b78u  /* Castagnoli, reflected */
#define POLY_IEEE 0xedb88320u /* IEEE 802.3, reflected */

/* ========================================================================
 * Software: slicing by 8
 * ======================================================================== */

typedef uint32_t crc_tables[8][256];

static crc_tables table_32c, table_ieee;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill(crc_tables t, uint32_t poly) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
        t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

/* The register after len more bytes, with no inversion at either end (the
 * raw state the hardware loop also keeps). Tables filled. */
static uint32_t soft_raw(crc_tables t, uint32_t crc, const unsigned char *p, size_t len) {
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

/* ========================================================================
 * Hardware: three streams over consecutive blocks, joined by shifting
 * ======================================================================== */

#if defined(CRC_X86) || defined(CRC_ARM)
#define HAVE_HW 1
enum { CRC_BLOCK = 1024 }; /* bytes per stream: the join costs ~10 cycles a 3 KiB */

/* shift_tab[k][b]: the state b << 8k multiplied by x^(8 * CRC_BLOCK) */
static uint32_t shift_tab[4][256];

/* a * b modulo the polynomial, both reflected (bit 31 is x^0). */
static uint32_t mult_mod(uint32_t a, uint32_t b) {
    uint32_t p = 0;
    for (uint32_t m = 1u << 31; m; m >>= 1) {
        if (a & m)
            p ^= b;
        b = b & 1 ? (b >> 1) ^ POLY_32C : b >> 1;
    }
    return p;
}

static void fill_shift(void) {
    static const unsigned char zeros[256];
    uint32_t k = 1u << 31; /* x^0; CRC_BLOCK zero bytes multiply it by x^(8 * CRC_BLOCK) */
    for (int i = 0; i < CRC_BLOCK / 256; i++)
        k = soft_raw(table_32c, k, zeros, sizeof zeros);
    for (int s = 0; s < 4; s++)
        for (uint32_t b = 0; b < 256; b++)
            shift_tab[s][b] = mult_mod(k, b << (8 * s));
}

static inline uint32_t shift(uint32_t c) {
    return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^
           shift_tab[2][(c >> 16) & 0xff] ^ shift_tab[3][c >> 24];
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

CRC_TARGET static uint32_t hw_32c(uint32_t crc, const unsigned char *p, size_t len) {
    crc = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = CRC_STEP8(crc, *p++);
        len--;
    }
    while (len >= 3 * (size_t)CRC_BLOCK) {
        uint32_t c0 = crc, c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC_BLOCK; i += 8) {
            c0 = CRC_STEP64(c0, load64(p + i));
            c1 = CRC_STEP64(c1, load64(p + CRC_BLOCK + i));
            c2 = CRC_STEP64(c2, load64(p + 2 * CRC_BLOCK + i));
        }
        crc = shift(shift(c0) ^ c1) ^ c2;
        p += 3 * CRC_BLOCK;
        len -= 3 * CRC_BLOCK;
    }
    while (len >= 8) {
        crc = CRC_STEP64(crc, load64(p));
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = CRC_STEP8(crc, *p++);
        len--;
    }
    return ~crc;
}
#endif

/* ========================================================================
 * Choice, once
 * ======================================================================== */

static int use_hw; /* set once under `once` */

static void init(void) {
    fill(table_32c, POLY_32C);
    fill(table_ieee, POLY_IEEE);
#ifdef HAVE_HW
    fill_shift();
#if defined(CRC_X86)
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2");
#elif defined(CRC_ARM_ALWAYS)
    use_hw = 1;
#else
    use_hw = (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#endif
    const char *want = getenv("HNSWC_CRC");
    if (want && strcmp(want, "software") == 0)
        use_hw = 0;
#endif
}

uint32_t crc_32c(uint32_t crc, const void *data, size_t len) {
    pthread_once(&once, init);
#ifdef HAVE_HW
    if (use_hw)
        return hw_32c(crc, data, len);
#endif
    return ~soft_raw(table_32c, ~crc, data, len);
}

uint32_t crc_32c_soft(uint32_t crc, const void *data, size_t len) {
    pthread_once(&once, init);
    return ~soft_raw(table_32c, ~crc, data, len);
}

const char *crc_32c_impl(void) {
    pthread_once(&once, init);
    if (!use_hw)
        return "software";
#if defined(CRC_X86)
    return "sse4.2";
#else
    return "armv8-crc";
#endif
}

uint32_t crc_32_ieee(uint32_t crc, const void *data, size_t len) {
    pthread_once(&once, init);
    return ~soft_raw(table_ieee, ~crc, data, len);
}
