/*
 * util.c -- error reporting, option parsing, numbers, clocks, hashing.
 * See util.h for the contracts.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/* One message, written by the main thread only (see util.h). */
static char g_error[1024];

void cli_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    /* The tool promises one line per error: fold any newline that slipped in
     * (from a file name or a library message) into a space. */
    for (char *p = g_error; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

const char *cli_error(void)
{
    return g_error;
}

void cli_set_lib_error(const char *what, hnswc_status st)
{
    const char *msg = hnswc_errmsg(NULL);
    if (msg == NULL || msg[0] == '\0')
        msg = hnswc_status_string(st);
    cli_set_error("%s: %s", what, msg);
}

void cli_report(const char *cmd, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fflush(stdout);
    if (cmd != NULL)
        fprintf(stderr, "hnswc: %s: %s\n", cmd, line);
    else
        fprintf(stderr, "hnswc: %s\n", line);
}

int cli_fail(const char *cmd)
{
    cli_report(cmd, "%s", g_error[0] ? g_error : "failed");
    return CLI_EXIT_RUNTIME;
}

int cli_usage_fail(const char *cmd)
{
    cli_report(cmd, "%s (try 'hnswc %s --help')", g_error, cmd);
    return CLI_EXIT_USAGE;
}

/* ------------------------------------------------------------------------
 * Option parsing
 * ------------------------------------------------------------------------ */

void cli_parser_init(cli_parser *p, int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
}

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name != NULL; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c)
{
    for (const cli_opt *o = opts; o->name != NULL; o++)
        if (o->short_name == c)
            return o;
    return NULL;
}

int cli_next(cli_parser *p, const cli_opt *opts, const char **value)
{
    *value = NULL;
    if (p->i >= p->argc)
        return CLI_END;
    char *w = p->argv[p->i++];

    if (p->no_options || w[0] != '-' || w[1] == '\0') {
        *value = w;
        return CLI_POSITIONAL;
    }
    if (strcmp(w, "--") == 0) {
        p->no_options = 1;
        return cli_next(p, opts, value);
    }

    const cli_opt *o;
    const char *inline_value = NULL;
    if (w[1] == '-') {
        const char *name = w + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        o = find_long(opts, name, len);
        if (o == NULL) {
            cli_set_error("unknown option '--%.*s'", (int)len, name);
            return CLI_BAD;
        }
        if (eq != NULL) {
            if (!o->has_value) {
                cli_set_error("option '--%s' takes no value", o->name);
                return CLI_BAD;
            }
            inline_value = eq + 1;
        }
    } else {
        o = find_short(opts, w[1]);
        if (o == NULL) {
            cli_set_error("unknown option '-%c'", w[1]);
            return CLI_BAD;
        }
        if (w[2] != '\0') {
            if (!o->has_value) {
                cli_set_error("option '-%c' takes no value", w[1]);
                return CLI_BAD;
            }
            inline_value = w + 2;
        }
    }

    if (o->has_value) {
        if (inline_value == NULL) {
            if (p->i >= p->argc) {
                cli_set_error("option '--%s' needs a value", o->name);
                return CLI_BAD;
            }
            inline_value = p->argv[p->i++];
        }
        *value = inline_value;
    }
    return o->id;
}

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------ */

int cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    /* strtoull accepts blanks, signs and wraps "-3" around: check by hand
     * that the word is digits only. */
    size_t len = strlen(s);
    int ok = len > 0 && len <= 20;
    for (size_t i = 0; ok && i < len; i++)
        ok = isdigit((unsigned char)s[i]) != 0;
    uint64_t v = 0;
    if (ok) {
        errno = 0;
        char *end = NULL;
        unsigned long long r = strtoull(s, &end, 10);
        ok = errno == 0 && end == s + len;
        v = (uint64_t)r;
    }
    if (!ok || v < min || v > max) {
        cli_set_error("%s: expected a whole number from %llu to %llu, got '%s'", opt,
                      (unsigned long long)min, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64_list(const char *opt, const char *s, uint64_t min, uint64_t max,
                       uint64_t **out, size_t *n)
{
    size_t count = 1;
    for (const char *c = s; *c; c++)
        count += *c == ',';
    uint64_t *vals = malloc(count * sizeof *vals);
    char *copy = malloc(strlen(s) + 1);
    if (vals == NULL || copy == NULL) {
        free(vals);
        free(copy);
        cli_set_error("out of memory");
        return -1;
    }
    strcpy(copy, s);
    size_t i = 0;
    char *start = copy;
    for (;;) {
        char *comma = strchr(start, ',');
        if (comma != NULL)
            *comma = '\0';
        if (cli_parse_u64(opt, start, min, max, &vals[i]) != 0) {
            free(vals);
            free(copy);
            return -1;
        }
        i++;
        if (comma == NULL)
            break;
        start = comma + 1;
    }
    free(copy);
    *out = vals;
    *n = i;
    return 0;
}

int cli_parse_metric(const char *s, hnswc_metric *out)
{
    if (strcmp(s, "l2") == 0 || strcmp(s, "euclidean") == 0)
        *out = HNSWC_METRIC_L2;
    else if (strcmp(s, "ip") == 0 || strcmp(s, "dot") == 0)
        *out = HNSWC_METRIC_IP;
    else if (strcmp(s, "cosine") == 0 || strcmp(s, "angular") == 0)
        *out = HNSWC_METRIC_COSINE;
    else {
        cli_set_error("--metric: expected l2, ip or cosine, got '%s'", s);
        return -1;
    }
    return 0;
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

unsigned cli_num_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

/* ------------------------------------------------------------------------
 * Hashing and byte order
 * ------------------------------------------------------------------------ */

uint64_t cli_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int cli_host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

uint32_t cli_bswap32(uint32_t v)
{
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

uint64_t cli_bswap64(uint64_t v)
{
    return ((uint64_t)cli_bswap32((uint32_t)v) << 32) | cli_bswap32((uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------------
 * JSON
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
