/*
 * output.h -- printing search results as text, CSV or JSON.
 *
 *   text  a header line, then one aligned line per result:
 *             query  rank  label  distance
 *   csv   the same columns with a header row: query,rank,label,distance
 *   json  {"k": K, "ef": EF, "queries": N,
 *          "results": [{"query": 0, "labels": [...], "distances": [...]}, ...]}
 *
 * query and rank count from 0 and 1; distances are printed with 9
 * significant digits, enough to give back the float32 value exactly. A query
 * with fewer than k results (a small index, a filter) lists only what it got.
 */
#ifndef HNSWC_CLI_OUTPUT_H
#define HNSWC_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum out_format { OUT_TEXT = 0, OUT_CSV, OUT_JSON } out_format;

/* "text", "csv" or "json" (for --format). */
int out_format_parse(const char *s, out_format *out);

/*
 * Prints the results of nq queries: labels[i*k + j] and distances[i*k + j]
 * for j < n_found[i]. ef is printed as given (0: the index's default).
 */
void print_results(FILE *f, out_format fmt, size_t nq, size_t k, size_t ef,
                   const uint64_t *labels, const float *distances, const size_t *n_found);

#endif /* HNSWC_CLI_OUTPUT_H */
