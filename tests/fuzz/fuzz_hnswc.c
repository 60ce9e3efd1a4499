/*
 * fuzz_hnswc.c -- libFuzzer harness for hnswc's own file format.
 *
 * Every input goes through both loaders of the format: hnswc_deserialize
 * (from the fuzzer's buffer, sized exactly, so ASan sees any over-read) and
 * hnswc_load (the same bytes as a file), and through hnswc_probe_file. The
 * loaders must agree: both accept, or both reject with HNSWC_ERR_FORMAT and
 * leave *out NULL; the probe must call an accepted file hnswc's. The format
 * has two kinds (HNSW and flat) and hnswc 0.1's BFIndex files, all seeded.
 * An accepted index is then used and checked by fz_exercise (search, add,
 * update, delete, remove, serialize, save, reload).
 *
 * The same file is also opened in place (hnswc_open, HNSWC_OPEN_MMAP): with
 * HNSWC_OPEN_VERIFY it must agree with hnswc_load exactly; without, it must
 * accept what hnswc_load accepts, and may accept more (damage confined to
 * the vectors, which it does not check) -- such an index must still search
 * without a fault. An accepted mapped index is exercised like the others.
 *
 * Every header and section carries a CRC-32C, so nearly every mutation is
 * rejected at a checksum and the parser behind it is rarely reached (a
 * first long run accepted 463 of 300,000 inputs, and its coverage never
 * grew). So each input is tried twice: as it is (the checksums must catch
 * the damage), and, when that changes anything, with every CRC recomputed
 * on a copy, so that the damage reaches the checks of lengths, counts,
 * levels, links, labels and vectors -- as test_persist's mutations do. The
 * CRC is written out here (bit by bit) rather than borrowed from src/: the
 * harness checks the library's files, it does not share its code.
 */
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A mapped index hnswc_load refused (its vectors are damaged): searches
 * must run; their answers mean nothing. */
static void search_damaged(hnswc_index *ix) {
    hnswc_info info;
    fz_check(hnswc_get_info(ix, &info) == HNSWC_OK, "hnswc_get_info failed");
    float *q = calloc(info.dim ? info.dim : 1, sizeof *q);
    uint64_t labels[5];
    float dists[5];
    size_t found;
    if (q) {
        hnswc_status st = hnswc_search(ix, q, 5, 20, NULL, NULL, labels, dists, &found);
        fz_check(st == HNSWC_OK || st == HNSWC_ERR_NOMEM, "search of a mapped index: %s",
                 hnswc_status_string(st));
        st = hnswc_search_exact(ix, q, 5, NULL, NULL, labels, dists, &found);
        fz_check(st == HNSWC_OK || st == HNSWC_ERR_NOMEM, "exact search of a mapped index: %s",
                 hnswc_status_string(st));
    }
    free(q);
    hnswc_free(ix);
}

/* Opens the file in place, verified and not, against hnswc_load's verdict. */
static void check_mapped(const char *path, hnswc_status loaded) {
    hnswc_index *c = (hnswc_index *)(void *)&c, *d = (hnswc_index *)(void *)&d;
    hnswc_status sc = hnswc_open(path, HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY, &c);
    fz_check(sc == loaded, "hnswc_open(MMAP|VERIFY) says %s, hnswc_load says %s",
             hnswc_status_string(sc), hnswc_status_string(loaded));
    fz_check(sc == HNSWC_OK || c == NULL, "a failed mapped open left *out set");
    hnswc_free(sc == HNSWC_OK ? c : NULL);
    hnswc_status sd = hnswc_open(path, HNSWC_OPEN_MMAP, &d);
    fz_check(sd == HNSWC_OK || sd == HNSWC_ERR_FORMAT, "hnswc_open(MMAP) gave %s",
             hnswc_status_string(sd));
    fz_check(loaded != HNSWC_OK || sd == HNSWC_OK, "hnswc_load reads a file hnswc_open(MMAP) "
             "refuses: %s", hnswc_errmsg(NULL));
    if (sd != HNSWC_OK) {
        fz_check(d == NULL, "a failed mapped open left *out set");
        return;
    }
    if (loaded == HNSWC_OK)
        fz_exercise(d);
    else
        search_damaged(d);
}

/* CRC-32C (Castagnoli, reflected 0x82f63b78), bit by bit. */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); } /* the writer's order */

/* Recomputes the header's CRC and that of every complete section an hnswc
 * file's layout (docs/ARCHITECTURE.md, "File format") finds in b, as far
 * as it goes. Files of another magic (hnswc 0.1 BFIndex files, with
 * CRC-32) are left as they are. Returns whether anything changed. */
static int fix_crcs(uint8_t *b, size_t size) {
    static const uint8_t magic[8] = {0x89, 'H', 'N', 'S', 'W', 'C', '\r', '\n'};
    if (size < 24 || memcmp(b, magic, 8) != 0)
        return 0;
    uint8_t old[4];
    int changed = 0;
    memcpy(old, b + 20, 4);
    put32(b + 20, crc32c(b, 20));
    changed |= memcmp(old, b + 20, 4) != 0;
    size_t at = 24;
    while (size - at >= 16 + 4) {
        uint64_t len;
        memcpy(&len, b + at + 8, 8);
        if (len > size - at - 16 - 4)
            break;
        uint8_t *crc = b + at + 16 + len;
        memcpy(old, crc, 4);
        put32(crc, crc32c(b + at + 16, (size_t)len));
        changed |= memcmp(old, crc, 4) != 0;
        at += 16 + (size_t)len + 4;
    }
    return changed;
}

/* Both loaders and the probe on one input; an accepted index exercised.
 * Returns whether it was accepted. */
static int check(const uint8_t *data, size_t size) {
    hnswc_index *a = (hnswc_index *)data, *b = (hnswc_index *)data; /* must be reset */
    hnswc_status sa = hnswc_deserialize(data, size, &a);
    const char *path = fz_input_file(data, size);
    hnswc_status sb = hnswc_load(path, &b);
    fz_check(sa == sb, "hnswc_deserialize says %s, hnswc_load says %s", hnswc_status_string(sa),
             hnswc_status_string(sb));
    check_mapped(path, sb);
    /* the probe reads any file; one hnswc_load accepts is hnswc's */
    hnswc_file_info fi;
    fz_check(hnswc_probe_file(path, &fi) == HNSWC_OK, "hnswc_probe_file failed");
    fz_check(sa != HNSWC_OK || fi.kind == HNSWC_FILE_HNSWC, "a loadable hnswc file probed as %d",
             (int)fi.kind);
    if (sa != HNSWC_OK) {
        fz_check(sa == HNSWC_ERR_FORMAT, "a bad input gave %s, not HNSWC_ERR_FORMAT",
                 hnswc_status_string(sa));
        fz_check(a == NULL && b == NULL, "a failed load left *out set");
        return 0;
    }
    hnswc_free(b);
    fz_exercise(a);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int accepted = check(data, size);
    /* a copy sized exactly, so that ASan still sees any over-read */
    uint8_t *copy = malloc(size ? size : 1);
    fz_check(copy != NULL, "out of memory in the harness");
    memcpy(copy, data, size);
    if (fix_crcs(copy, size))
        accepted |= check(copy, size);
    free(copy);
    fz_count(accepted); /* as it is, or with its CRCs recomputed */
    return 0;
}
