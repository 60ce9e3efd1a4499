/*
 * output.h -- what the tool prints: search results as text, CSV or JSON, and
 * the pieces every command's output is made of (JSON strings and numbers,
 * byte counts, metric names).
 *
 * Search results:
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

#include "hnswc.h"

/* ------------------------------------------------------------------------
 * Search results
 * ------------------------------------------------------------------------ */

typedef enum out_format { OUT_TEXT = 0, OUT_CSV, OUT_JSON } out_format;

/* "text", "csv" or "json" (for --format). */
int out_format_parse(const char *s, out_format *out);

/*
 * Prints the results of nq queries: labels[i*k + j] and distances[i*k + j]
 * for j < n_found[i]. ef is printed as given (0: the index's default).
 */
void print_results(FILE *f, out_format fmt, size_t nq, size_t k, size_t ef,
                   const uint64_t *labels, const float *distances, const size_t *n_found);

/*
 * Range search results (search --radius), printed as they come, query by
 * query: the same text and CSV lines as above; JSON with "radius": R in
 * place of "k": K. begin, then query for q = 0 .. nq-1 in order, then end.
 */
void range_print_begin(FILE *f, out_format fmt, size_t nq, double radius, size_t ef);
void range_print_query(FILE *f, out_format fmt, size_t q, const uint64_t *labels,
                       const float *distances, size_t n);
void range_print_end(FILE *f, out_format fmt, size_t nq);

/* ------------------------------------------------------------------------
 * Pieces of output
 * ------------------------------------------------------------------------ */

/* Writes s as a JSON string literal (quoted, escaped). NULL -> null. */
void cli_json_string(FILE *f, const char *s);

/* Writes a finite double with %.*g; NaN and infinities become null. */
void cli_json_number(FILE *f, double v, int digits);

/* "12.3 MiB" style rendering of a byte count into buf. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t len);

/* "l2", "ip" or "cosine" (the names cli_parse_metric reads). */
const char *cli_metric_name(hnswc_metric m);

#endif /* HNSWC_CLI_OUTPUT_H */
