/*
 * bytes.h -- the tool's one byte-order helper: integers of a stated byte
 * order read from, and written to, byte buffers.
 *
 * Every file the tool reads or writes states its byte order (fvecs, bvecs
 * and the ground-truth cache: little-endian; idx: big-endian; .npy: either,
 * per its dtype), so values are assembled from bytes in that order, which is
 * right on every host and never asks which order the host uses. Compilers
 * turn these into one load (and a byte swap where needed). Rejected: a host
 * probe plus memcpy and a conditional byte swap, which meant two code paths
 * of which only one ever runs on the machine testing it.
 *
 * A float32 or float64 is read by reading its bits as an integer of the
 * file's order, then copying them into the float (cli_get_f32/f64).
 */
#ifndef HNSWC_CLI_BYTES_H
#define HNSWC_CLI_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t cli_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t cli_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t cli_get_be32(const unsigned char *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static inline uint64_t cli_get_le64(const unsigned char *p)
{
    return (uint64_t)cli_get_le32(p) | (uint64_t)cli_get_le32(p + 4) << 32;
}

static inline uint64_t cli_get_be64(const unsigned char *p)
{
    return (uint64_t)cli_get_be32(p) << 32 | (uint64_t)cli_get_be32(p + 4);
}

static inline void cli_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void cli_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A float32 stored little-endian (big_endian 0) or big-endian (1). */
static inline float cli_get_f32(const unsigned char *p, int big_endian)
{
    uint32_t u = big_endian ? cli_get_be32(p) : cli_get_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A float64 stored little-endian (big_endian 0) or big-endian (1). */
static inline double cli_get_f64(const unsigned char *p, int big_endian)
{
    uint64_t u = big_endian ? cli_get_be64(p) : cli_get_le64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif /* HNSWC_CLI_BYTES_H */
