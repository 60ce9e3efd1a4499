/*
 * crc.h -- the checksums of hnswc's files (crc.c).
 *
 * Prefix: crc_. Depends on nothing else in src/. Used by persist.c (every
 * section of a file is summed with CRC-32C; hnswc 0.1's BFIndex files with
 * the IEEE CRC-32).
 *
 * Every function is pure and thread safe (the tables and the choice of
 * implementation are made once, under pthread_once).
 */
#ifndef HNSWC_CRC_H
#define HNSWC_CRC_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC-32C (Castagnoli, reflected 0x82f63b78): start with
 * crc = 0; crc_32c(crc_32c(0, a, n), b, m) is the CRC of a followed by b.
 * Uses the CPU's CRC-32C instruction where it has one (x86-64 SSE4.2,
 * AArch64 CRC extension, chosen at run time), else crc_32c_soft; both give
 * the same value for every input.
 */
uint32_t crc_32c(uint32_t crc, const void *data, size_t len);

/* The same in software (slicing by 8), whatever the CPU: the reference the
 * hardware path is tested against. */
uint32_t crc_32c_soft(uint32_t crc, const void *data, size_t len);

/* Which implementation crc_32c uses here: "sse4.2", "armv8-crc" or
 * "software". HNSWC_CRC=software in the environment forces the software one
 * (read once, like HNSWC_SIMD). */
const char *crc_32c_impl(void);

/* Continues a CRC-32 (IEEE 802.3, zlib's, reflected 0xedb88320): start with
 * crc = 0. Software only: hnswc 0.1 BFIndex files are its one use. */
uint32_t crc_32_ieee(uint32_t crc, const void *data, size_t len);

#endif /* HNSWC_CRC_H */
