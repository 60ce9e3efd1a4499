/*
 * output.c -- search results as text, CSV or JSON, and the pieces of output
 * the commands share (output.h).
 */
#include "output.h"

#include <math.h>
#include <string.h>

#include "errors.h"

/* ------------------------------------------------------------------------
 * Pieces of output
 * ------------------------------------------------------------------------ */

void cli_json_string(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v, int digits)
{
    if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%.*g", digits, v);
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_metric_name(hnswc_metric m)
{
    switch (m) {
    case HNSWC_METRIC_L2: return "l2";
    case HNSWC_METRIC_IP: return "ip";
    case HNSWC_METRIC_COSINE: return "cosine";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------
 * Search results
 * ------------------------------------------------------------------------ */

int out_format_parse(const char *s, out_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = OUT_TEXT;
    else if (strcmp(s, "csv") == 0)
        *out = OUT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = OUT_JSON;
    else {
        cli_set_error("--format: expected text, csv or json, got '%s'", s);
        return -1;
    }
    return 0;
}

/* The header line of text and CSV results. */
static void print_header(FILE *f, out_format fmt)
{
    if (fmt == OUT_CSV)
        fputs("query,rank,label,distance\n", f);
    else
        fprintf(f, "%8s %6s %12s %16s\n", "query", "rank", "label", "distance");
}

/* The text or CSV lines of query q's n results. */
static void print_rows(FILE *f, out_format fmt, size_t q, const uint64_t *labels,
                       const float *distances, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        unsigned long long label = (unsigned long long)labels[j];
        double dist = distances[j];
        if (fmt == OUT_CSV)
            fprintf(f, "%zu,%zu,%llu,%.9g\n", q, j + 1, label, dist);
        else
            fprintf(f, "%8zu %6zu %12llu %16.9g\n", q, j + 1, label, dist);
    }
}

/* The JSON object of query q's n results, after a ',' unless q is 0. */
static void print_json_query(FILE *f, size_t q, const uint64_t *labels, const float *distances,
                             size_t n)
{
    fprintf(f, "%s\n  {\"query\": %zu, \"labels\": [", q ? "," : "", q);
    for (size_t j = 0; j < n; j++)
        fprintf(f, "%s%llu", j ? ", " : "", (unsigned long long)labels[j]);
    fputs("], \"distances\": [", f);
    for (size_t j = 0; j < n; j++) {
        fputs(j ? ", " : "", f);
        cli_json_number(f, distances[j], 9);
    }
    fputs("]}", f);
}

void print_results(FILE *f, out_format fmt, size_t nq, size_t k, size_t ef,
                   const uint64_t *labels, const float *distances, const size_t *n_found)
{
    if (fmt == OUT_JSON) {
        fprintf(f, "{\"k\": %zu, \"ef\": %zu, \"queries\": %zu, \"results\": [", k, ef, nq);
        for (size_t q = 0; q < nq; q++)
            print_json_query(f, q, labels + q * k, distances + q * k, n_found[q]);
        fputs(nq ? "\n]}\n" : "]}\n", f);
        return;
    }
    print_header(f, fmt);
    for (size_t q = 0; q < nq; q++)
        print_rows(f, fmt, q, labels + q * k, distances + q * k, n_found[q]);
}

void range_print_begin(FILE *f, out_format fmt, size_t nq, double radius, size_t ef)
{
    if (fmt == OUT_JSON) {
        fputs("{\"radius\": ", f);
        cli_json_number(f, radius, 9);
        fprintf(f, ", \"ef\": %zu, \"queries\": %zu, \"results\": [", ef, nq);
    } else {
        print_header(f, fmt);
    }
}

void range_print_query(FILE *f, out_format fmt, size_t q, const uint64_t *labels,
                       const float *distances, size_t n)
{
    if (fmt == OUT_JSON)
        print_json_query(f, q, labels, distances, n);
    else
        print_rows(f, fmt, q, labels, distances, n);
}

void range_print_end(FILE *f, out_format fmt, size_t nq)
{
    if (fmt == OUT_JSON)
        fputs(nq ? "\n]}\n" : "]}\n", f);
}
