/*
 * test_crc.c -- the checksums of crc.c: the hardware CRC-32C (SSE4.2 here)
 * against the software one on random buffers of every length 0..4096 at
 * every start offset 0..15 (so every alignment, the three-stream loop and
 * every tail), on long buffers of odd lengths, in pieces (a CRC continued
 * call by call is the CRC of the whole), and both against the standard
 * check values and a bit-at-a-time reference (testutil's tu_crc32c).
 */
#include "testutil.h"

#include "crc.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_LEN = 4096, MAX_OFF = 16 };

static unsigned char *random_bytes(tu_rng *r, size_t n) {
    unsigned char *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(tu_next(r) >> 56);
    return b;
}

/* On x86-64 with SSE4.2 the hardware path must be the one chosen (else the
 * comparisons below would test the software CRC against itself). */
static void test_impl(void **state) {
    (void)state;
    const char *impl = crc_32c_impl();
    print_message("crc_32c uses: %s\n", impl);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const char *env = getenv("HNSWC_CRC");
    if (__builtin_cpu_supports("sse4.2") && !(env && strcmp(env, "software") == 0))
        assert_string_equal(impl, "sse4.2");
#endif
}

static void test_check_values(void **state) {
    (void)state;
    const char *s = "123456789";
    assert_int_equal(crc_32c(0, s, 9), 0xE3069283u);
    assert_int_equal(crc_32c_soft(0, s, 9), 0xE3069283u);
    assert_int_equal(crc_32_ieee(0, s, 9), 0xCBF43926u);
    assert_int_equal(crc_32c(0, s, 0), 0u);
    assert_int_equal(crc_32c(0x12345678u, NULL, 0), 0x12345678u);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(crc_32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(crc_32c(0, ones, 32), 0x62A8AB43u);
}

static void test_every_length_and_offset(void **state) {
    (void)state;
    tu_rng r = tu_rng_make(42);
    unsigned char *b = random_bytes(&r, MAX_LEN + MAX_OFF);
    for (size_t off = 0; off < MAX_OFF; off++)
        for (size_t len = 0; len <= MAX_LEN; len++) {
            uint32_t seed = len % 3 == 0 ? 0u : (uint32_t)tu_next(&r); /* continued CRCs too */
            uint32_t hw = crc_32c(seed, b + off, len), sw = crc_32c_soft(seed, b + off, len);
            if (hw != sw)
                fail_msg("offset %zu, length %zu, seed %08x: %08x != %08x", off, len, seed, hw, sw);
        }
    /* and the software CRC against a bit-at-a-time reference, every length
     * up to 300 (slicing by 8 and its tail) */
    for (size_t len = 0; len <= 300; len++)
        assert_int_equal(crc_32c_soft(0, b + 3, len), tu_crc32c(b + 3, len));
    free(b);
}

static void test_long_and_in_pieces(void **state) {
    (void)state;
    tu_rng r = tu_rng_make(7);
    size_t n = (1u << 20) + 12345;
    unsigned char *b = random_bytes(&r, n);
    for (int i = 0; i < 40; i++) {
        size_t off = tu_next(&r) % 64, len = tu_next(&r) % (n - 64);
        assert_int_equal(crc_32c(0, b + off, len), crc_32c_soft(0, b + off, len));
    }
    uint32_t whole = crc_32c(0, b, n);
    assert_int_equal(whole, crc_32c_soft(0, b, n));
    for (int i = 0; i < 40; i++) { /* cut into random pieces */
        uint32_t c = 0;
        for (size_t at = 0; at < n;) {
            size_t piece = 1 + tu_next(&r) % (i < 20 ? 97 : 40000);
            piece = piece < n - at ? piece : n - at;
            c = crc_32c(c, b + at, piece);
            at += piece;
        }
        assert_int_equal(c, whole);
    }
    /* one bit flipped anywhere changes it */
    for (int i = 0; i < 64; i++) {
        size_t at = tu_next(&r) % n;
        unsigned char bit = (unsigned char)(1u << (tu_next(&r) % 8));
        b[at] ^= bit;
        assert_int_not_equal(crc_32c(0, b, n), whole);
        b[at] ^= bit;
    }
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impl),
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_every_length_and_offset),
        cmocka_unit_test(test_long_and_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
