/*
 * args.c -- the option parser, option values, the shared flags and the
 * option loop of every subcommand. See args.h for the contracts.
 */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * The option parser
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
 * Option values
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

/* ------------------------------------------------------------------------
 * Shared flags and the option loop
 * ------------------------------------------------------------------------ */


void cli_common_init(cli_common_args *c, const char *hdf5_name)
{
    memset(c, 0, sizeof *c);
    c->metric = HNSWC_METRIC_L2;
    c->read.format = FMT_AUTO;
    c->read.hdf5_name = hdf5_name;
    c->hnswlib_metric = -1;
}

/*
 * Applies shared flag `id` (every id from CLI_O_SHARED on). The ranges are
 * the library's (include/hnswc.h); --threads stops at 4096 so a typo cannot
 * ask for millions of threads. Returns 0, or -1 with the message recorded.
 */
static int shared_option(cli_common_args *c, int id, const char *val)
{
    hnswc_metric m;
    switch (id) {
    case CLI_O_QUIET: c->quiet = 1; return 0;
    case CLI_O_THREADS: return cli_parse_u64("--threads", val, 0, 4096, &c->threads);
    case CLI_O_METRIC:
        c->metric_given = 1;
        return cli_parse_metric(val, &c->metric);
    case CLI_O_M: return cli_parse_u64("-M", val, 2, 2048, &c->M);
    case CLI_O_EF_CONSTRUCTION:
        return cli_parse_u64("--ef-construction", val, 1, 1u << 31, &c->ef_construction);
    case CLI_O_SEED: return cli_parse_u64("--seed", val, 0, UINT64_MAX, &c->seed);
    case CLI_O_STORAGE:
        if (strcmp(val, "f32") == 0) {
            c->storage = HNSWC_STORAGE_F32;
        } else if (strcmp(val, "sq8") == 0) {
            c->storage = HNSWC_STORAGE_SQ8;
        } else if (strcmp(val, "sq8-only") == 0) {
            c->storage = HNSWC_STORAGE_SQ8_ONLY;
        } else {
            cli_set_error("--storage: expected f32, sq8 or sq8-only, got '%s'", val);
            return -1;
        }
        return 0;
    case CLI_O_DATASET: c->read.hdf5_name = val; return 0;
    case CLI_O_INPUT_FORMAT: return input_format_parse(val, &c->read.format);
    case CLI_O_HNSWLIB:
        if (cli_parse_metric(val, &m) != 0)
            return -1;
        c->hnswlib_metric = (int)m;
        return 0;
    default:
        /* Only reachable if a CLI_OPT_* entry has no case above. */
        cli_set_error("internal error: unhandled option %d", id);
        return -1;
    }
}

int cli_parse_command(const char *cmd, const char *usage, int argc, char **argv,
                      const cli_opt *opts, cli_common_args *c, cli_own_option_fn own, void *ctx)
{
    cli_parser p;
    cli_parser_init(&p, argc, argv);
    const char *val;
    int id;
    while ((id = cli_next(&p, opts, &val)) != CLI_END) {
        if (id == CLI_BAD)
            return cli_usage_fail(cmd);
        if (id == CLI_O_HELP) {
            /* At once: the words after --help may be anything. */
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        int bad = id >= CLI_O_SHARED ? shared_option(c, id, val) : own(ctx, id, val);
        if (bad)
            return cli_usage_fail(cmd);
    }
    return CLI_GO_ON;
}

int cli_take_positional(const char *word, const char **const slots[], size_t n,
                        const char *hint)
{
    for (size_t i = 0; i < n; i++) {
        if (*slots[i] == NULL) {
            *slots[i] = word;
            return 0;
        }
    }
    cli_set_error("unexpected argument '%s'%s", word, hint);
    return -1;
}
