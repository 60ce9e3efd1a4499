/*
 * cmd_info.c -- "hnswc info": what an index file holds and how healthy its
 * graph is, from hnswc_get_info and hnswc_get_graph_stats (an exact index
 * has no graph: its parameters and counts only).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "output.h"
#include "errors.h"

static const char usage_text[] =
    "usage: hnswc info [options] INDEX\n"
    "\n"
    "Prints an index's kind, parameters, element counts (live, deleted), memory,\n"
    "level histogram, layer-0 degree statistics and graph health: nodes not\n"
    "reachable from the entry point, and one-way links (a->b without b->a).\n"
    "An exact index (hnswc build --exact) has no graph: kind, dimension,\n"
    "metric, counts, capacity and memory only.\n"
    "\n"
    "options:\n"
    "  --format F             text or json (default text)\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine\n"
    "  -h, --help             this help\n"
    "\n"
    "JSON fields: file, file_bytes, kind (\"hnsw\" or \"exact\"), dim, metric, M,\n"
    "ef_construction, ef_search, seed, count, live, deleted, removed_slots,\n"
    "pending_slots, removed_total, reused_total, capacity, max_level,\n"
    "memory_bytes, simd, graph: {levels, level_counts[], degree0_min,\n"
    "degree0_max, degree0_mean, unreachable, one_way_links, links_total},\n"
    "health (\"ok\" or \"degraded\") and health_advice (null, or the sentence of\n"
    "the text output). For an exact index: file, file_bytes, kind, dim, metric,\n"
    "count, live, deleted, capacity, memory_bytes, simd, graph null, health ok.\n"
    "\n"
    "Health is DEGRADED when some nodes cannot be reached from the entry point:\n"
    "no search can return them. The line says how many and what to change.\n";

/* Own options; the shared ones (args.h) are parsed by cli_parse_command. */
enum { O_FORMAT };

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"format", 0, 1, O_FORMAT},
    CLI_OPT_HNSWLIB,
    CLI_OPT_END,
};

typedef struct info_args {
    const char *path;
    out_format fmt;
} info_args;

/* cli_own_option_fn of "info". */
static int info_option(void *ctx, int id, const char *val)
{
    info_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->path};
        return cli_take_positional(val, slots, 1, "");
    }
    case O_FORMAT:
        if (out_format_parse(val, &a->fmt) != 0)
            return -1;
        if (a->fmt == OUT_CSV) {
            cli_set_error("--format: info prints text or json, not csv");
            return -1;
        }
        return 0;
    }
    return 0;
}

/*
 * The health verdict, one sentence: "ok: ..." or, when nodes cannot be
 * reached from the entry point (no search can ever return them), what that
 * means and what to change, with the measured figures. More links per node
 * (M) and a wider beam while building (ef_construction) both give each
 * node more chances to be linked from the rest; doubling is a step large
 * enough to matter and small enough to keep memory (M) and build time
 * (both) in proportion. Returns 1 if degraded.
 */
static int health(const hnswc_info *in, const hnswc_graph_stats *g, char *buf, size_t len)
{
    if (g->unreachable == 0) {
        snprintf(buf, len, "ok: every node is reachable");
        return 0;
    }
    unsigned m2 = in->M * 2 > 2048 ? 2048 : in->M * 2;
    unsigned long long efc2 = (unsigned long long)in->ef_construction * 2;
    snprintf(buf, len,
             "DEGRADED: %llu of %llu nodes (%.3g%%) cannot be reached from the entry point, so no "
             "search can return them; rebuild with more links per node or a wider build beam "
             "(now -M %u --ef-construction %u, try -M %u or --ef-construction %llu)",
             (unsigned long long)g->unreachable, (unsigned long long)g->nodes,
             g->nodes ? 100.0 * (double)g->unreachable / (double)g->nodes : 0.0, in->M,
             in->ef_construction, m2, efc2);
    return 1;
}

/* What both kinds have: counts, capacity, memory, kernels (text). */
static void print_text_counts(const hnswc_info *in)
{
    char mem[32];
    printf("elements          %llu (live %llu, deleted %llu)\n", (unsigned long long)in->count,
           (unsigned long long)in->live_count, (unsigned long long)in->deleted_count);
    if (in->kind == HNSWC_KIND_HNSW) {
        /* a loaded index holds no removed slots (saves drop them); the line
         * says so, and where tombstones could go */
        printf("removed slots     %llu (%llu waiting to be reclaimed; since loading %llu "
               "removed, %llu reused)", (unsigned long long)in->removed_slots,
               (unsigned long long)in->pending_slots, (unsigned long long)in->removed_total,
               (unsigned long long)in->reused_total);
    } else {
        printf("removed slots     - (an exact index drops a removed row at once)");
    }
    if (in->deleted_count > 0)
        printf("; 'hnswc compact' would remove the %llu deleted",
               (unsigned long long)in->deleted_count);
    printf("\n");
    printf("capacity          %llu\n", (unsigned long long)in->capacity);
    printf("memory            %s (%llu bytes)\n",
           cli_human_bytes(in->memory_bytes, mem, sizeof mem),
           (unsigned long long)in->memory_bytes);
    printf("distance kernels  %s\n", in->simd != NULL ? in->simd : "?");
}

static void print_text_exact(const char *path, long long file_bytes, const hnswc_info *in)
{
    printf("file              %s (%lld bytes)\n", path, file_bytes);
    printf("kind              exact (every search compares the query with every element)\n");
    printf("dimension         %u\n", in->dim);
    printf("metric            %s\n", cli_metric_name(in->metric));
    print_text_counts(in);
    printf("health            ok: an exact index has no graph; every live element can be "
           "found\n");
}

static const char *storage_name(hnswc_storage s)
{
    return s == HNSWC_STORAGE_SQ8 ? "sq8" : s == HNSWC_STORAGE_SQ8_ONLY ? "sq8-only" : "f32";
}

static void print_text(const char *path, long long file_bytes, const hnswc_info *in,
                       const hnswc_graph_stats *g)
{
    printf("file              %s (%lld bytes)\n", path, file_bytes);
    printf("kind              hnsw\n");
    printf("dimension         %u\n", in->dim);
    printf("metric            %s\n", cli_metric_name(in->metric));
    printf("M                 %u\n", in->M);
    printf("ef_construction   %u\n", in->ef_construction);
    printf("ef_search         %u\n", in->ef_search);
    printf("seed              %llu\n", (unsigned long long)in->seed);
    print_text_counts(in);
    printf("storage           %s%s\n", storage_name(in->storage),
           in->storage == HNSWC_STORAGE_F32 ? ""
           : in->codes_trained             ? (in->storage == HNSWC_STORAGE_SQ8_ONLY
                                                  ? " (trained: codes only, approximate distances)"
                                                  : " (trained)")
                                           : " (not trained yet)");
    printf("max level         %d\n", (int)in->max_level);
    printf("levels            (elements whose top layer is L)\n");
    for (uint32_t l = 0; l < g->levels && l < HNSWC_MAX_LEVELS; l++)
        printf("  level %-2u        %llu\n", l, (unsigned long long)g->level_counts[l]);
    if (g->nodes > 0)
        printf("degree (layer 0)  min %u, mean %.2f, max %u (limit %u)\n", g->degree0_min,
               g->degree0_mean, g->degree0_max, 2 * in->M);
    else
        printf("degree (layer 0)  -\n");
    double pct = g->links_total ? 100.0 * (double)g->one_way_links / (double)g->links_total : 0;
    printf("unreachable       %llu of %llu nodes (from the entry point, layer 0)\n",
           (unsigned long long)g->unreachable, (unsigned long long)g->nodes);
    printf("one-way links     %llu of %llu (%.1f%%)\n", (unsigned long long)g->one_way_links,
           (unsigned long long)g->links_total, pct);
    char verdict[400];
    health(in, g, verdict, sizeof verdict);
    printf("health            %s\n", verdict);
}

/* g NULL: an exact index (no graph fields, "graph": null). */
static void print_json(const char *path, long long file_bytes, const hnswc_info *in,
                       const hnswc_graph_stats *g)
{
    printf("{\n  \"file\": ");
    cli_json_string(stdout, path);
    printf(",\n  \"file_bytes\": %lld,\n", file_bytes);
    printf("  \"kind\": \"%s\",\n", g ? "hnsw" : "exact");
    printf("  \"dim\": %u,\n  \"metric\": \"%s\",\n", in->dim, cli_metric_name(in->metric));
    if (g) {
        printf("  \"M\": %u,\n  \"ef_construction\": %u,\n  \"ef_search\": %u,\n", in->M,
               in->ef_construction, in->ef_search);
        printf("  \"seed\": %llu,\n", (unsigned long long)in->seed);
        printf("  \"storage\": \"%s\",\n  \"codes_trained\": %s,\n", storage_name(in->storage),
               in->codes_trained ? "true" : "false");
    }
    printf("  \"count\": %llu,\n  \"live\": %llu,\n  \"deleted\": %llu,\n",
           (unsigned long long)in->count, (unsigned long long)in->live_count,
           (unsigned long long)in->deleted_count);
    if (g)
        printf("  \"removed_slots\": %llu,\n  \"pending_slots\": %llu,\n"
               "  \"removed_total\": %llu,\n  \"reused_total\": %llu,\n",
               (unsigned long long)in->removed_slots, (unsigned long long)in->pending_slots,
               (unsigned long long)in->removed_total, (unsigned long long)in->reused_total);
    printf("  \"capacity\": %llu,\n", (unsigned long long)in->capacity);
    if (g)
        printf("  \"max_level\": %d,\n", (int)in->max_level);
    printf("  \"memory_bytes\": %llu,\n  \"simd\": ", (unsigned long long)in->memory_bytes);
    cli_json_string(stdout, in->simd);
    char verdict[400];
    int degraded = 0;
    if (g) {
        printf(",\n  \"graph\": {\n    \"nodes\": %llu,\n    \"levels\": %u,\n"
               "    \"level_counts\": [",
               (unsigned long long)g->nodes, g->levels);
        for (uint32_t l = 0; l < g->levels && l < HNSWC_MAX_LEVELS; l++)
            printf("%s%llu", l ? ", " : "", (unsigned long long)g->level_counts[l]);
        printf("],\n    \"degree0_min\": %u,\n    \"degree0_max\": %u,\n    \"degree0_mean\": ",
               g->degree0_min, g->degree0_max);
        cli_json_number(stdout, g->degree0_mean, 6);
        printf(",\n    \"unreachable\": %llu,\n    \"one_way_links\": %llu,\n"
               "    \"links_total\": %llu\n  },\n",
               (unsigned long long)g->unreachable, (unsigned long long)g->one_way_links,
               (unsigned long long)g->links_total);
        degraded = health(in, g, verdict, sizeof verdict);
    } else {
        printf(",\n  \"graph\": null,\n");
    }
    printf("  \"health\": \"%s\",\n  \"health_advice\": ", degraded ? "degraded" : "ok");
    cli_json_string(stdout, degraded ? verdict : NULL);
    printf("\n}\n");
}

int cmd_info(int argc, char **argv)
{
    const char *cmd = "info";
    info_args a = {NULL, OUT_TEXT};
    cli_common_args c;
    cli_common_init(&c, NULL);
    int done = cli_parse_command(cmd, usage_text, argc, argv, options, &c, info_option, &a);
    if (done != CLI_GO_ON)
        return done;
    const char *path = a.path;
    out_format fmt = a.fmt;
    if (path == NULL) {
        cli_set_error("missing the INDEX file");
        return cli_usage_fail(cmd);
    }

    hnswc_index *ix = NULL;
    if (cli_load_index(path, c.hnswlib_metric, 0, &ix) != 0)
        return cli_fail(cmd);
    hnswc_info info;
    hnswc_graph_stats g;
    hnswc_status st = hnswc_get_info(ix, &info);
    int exact = st == HNSWC_OK && info.kind == HNSWC_KIND_FLAT;
    if (st == HNSWC_OK && !exact)
        st = hnswc_get_graph_stats(ix, &g);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot read the index statistics", st);
        hnswc_free(ix);
        return cli_fail(cmd);
    }
    struct stat sb;
    long long file_bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    if (fmt == OUT_JSON)
        print_json(path, file_bytes, &info, exact ? NULL : &g);
    else if (exact)
        print_text_exact(path, file_bytes, &info);
    else
        print_text(path, file_bytes, &info, &g);
    hnswc_free(ix);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_set_error("cannot write to standard output");
        return cli_fail(cmd);
    }
    return CLI_EXIT_OK;
}
