/*
 * cmd_export.c -- "hnswc export": the links of one layer of an index's
 * graph, for Graphviz (dot) or any JSON reader.
 *
 * Everything comes from the library's inspection calls (hnswc_node_info,
 * hnswc_node_links); nodes and links are named by label, as users know
 * them. Links are directed, as HNSW stores them: a -> b does not imply
 * b -> a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"

static const char usage_text[] =
    "usage: hnswc export [options] INDEX\n"
    "\n"
    "Writes the graph of one layer of an index on standard output: every node\n"
    "on that layer (its label, top layer and deleted mark) and every link,\n"
    "directed, from the node that holds it. Layer 0 holds every node; layer L\n"
    "the nodes whose top layer is L or more.\n"
    "\n"
    "options:\n"
    "  --layer L              the layer (default 0)\n"
    "  --format F             dot (Graphviz, default) or json\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine\n"
    "  -h, --help             this help\n"
    "\n"
    "dot:  digraph hnswc_layer_L { \"7\" [level=2]; \"7\" -> \"12\"; ... }\n"
    "      (a deleted node has deleted=1; render with e.g. neato -Tsvg)\n"
    "json: {\"layer\": L, \"max_level\": T, \"nodes\": [{\"label\": 7, \"level\": 2,\n"
    "      \"deleted\": false}, ...], \"links\": [[7, 12], ...]}\n";

enum { O_FORMAT, O_LAYER };

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"format", 0, 1, O_FORMAT},
    {"layer", 0, 1, O_LAYER},
    CLI_OPT_HNSWLIB,
    CLI_OPT_END,
};

typedef struct export_args {
    const char *path;
    int json;
    uint64_t layer;
} export_args;

/* cli_own_option_fn of "export". */
static int export_option(void *ctx, int id, const char *val)
{
    export_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->path};
        return cli_take_positional(val, slots, 1, "");
    }
    case O_FORMAT:
        if (strcmp(val, "dot") == 0)
            a->json = 0;
        else if (strcmp(val, "json") == 0)
            a->json = 1;
        else {
            cli_set_error("--format: expected dot or json, got '%s'", val);
            return -1;
        }
        return 0;
    case O_LAYER:
        return cli_parse_u64("--layer", val, 0, HNSWC_MAX_LEVELS - 1, &a->layer);
    }
    return 0;
}

/* Writes the layer; 0, or -1 with the error recorded. */
static int write_layer(FILE *f, const hnswc_index *ix, const hnswc_info *info, int layer,
                       int json)
{
    size_t cap = 2 * (size_t)info->M;
    uint32_t *links = malloc(cap * sizeof *links);
    if (links == NULL) {
        cli_set_error("out of memory");
        return -1;
    }
    hnswc_status st = HNSWC_OK;
    if (json)
        fprintf(f, "{\n  \"layer\": %d,\n  \"max_level\": %d,\n  \"nodes\": [", layer,
                (int)info->max_level);
    else
        fprintf(f, "digraph hnswc_layer_%d {\n  node [shape=circle];\n", layer);
    /* nodes, then links: two passes keep each JSON array in one piece */
    size_t written = 0;
    for (uint64_t id = 0; id < info->count && st == HNSWC_OK; id++) {
        hnswc_node nd;
        if ((st = hnswc_node_info(ix, (uint32_t)id, &nd)) != HNSWC_OK || nd.level < layer)
            continue;
        if (json)
            fprintf(f, "%s\n    {\"label\": %llu, \"level\": %d, \"deleted\": %s}",
                    written++ ? "," : "", (unsigned long long)nd.label, (int)nd.level,
                    nd.deleted ? "true" : "false");
        else
            fprintf(f, "  \"%llu\" [level=%d%s];\n", (unsigned long long)nd.label, (int)nd.level,
                    nd.deleted ? ", deleted=1, style=dashed" : "");
    }
    if (json)
        fprintf(f, "%s],\n  \"links\": [", written ? "\n  " : "");
    written = 0;
    for (uint64_t id = 0; id < info->count && st == HNSWC_OK; id++) {
        hnswc_node nd, to;
        size_t n = 0;
        if ((st = hnswc_node_info(ix, (uint32_t)id, &nd)) != HNSWC_OK || nd.level < layer)
            continue;
        st = hnswc_node_links(ix, (uint32_t)id, layer, links, cap, &n);
        for (size_t j = 0; j < n && st == HNSWC_OK; j++) {
            if ((st = hnswc_node_info(ix, links[j], &to)) != HNSWC_OK)
                break;
            if (json)
                fprintf(f, "%s\n    [%llu, %llu]", written++ ? "," : "",
                        (unsigned long long)nd.label, (unsigned long long)to.label);
            else
                fprintf(f, "  \"%llu\" -> \"%llu\";\n", (unsigned long long)nd.label,
                        (unsigned long long)to.label);
        }
    }
    free(links);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot read the graph", st);
        return -1;
    }
    fputs(json ? (written ? "\n  ]\n}\n" : "]\n}\n") : "}\n", f);
    return 0;
}

int cmd_export(int argc, char **argv)
{
    const char *cmd = "export";
    export_args a = {NULL, 0, 0};
    cli_common_args c;
    cli_common_init(&c, NULL);
    int done = cli_parse_command(cmd, usage_text, argc, argv, options, &c, export_option, &a);
    if (done != CLI_GO_ON)
        return done;
    if (a.path == NULL) {
        cli_set_error("missing the INDEX file");
        return cli_usage_fail(cmd);
    }
    hnswc_index *ix = NULL;
    if (cli_load_index(a.path, c.hnswlib_metric, 0, &ix) != 0)
        return cli_fail(cmd);
    hnswc_info info;
    hnswc_status st = hnswc_get_info(ix, &info);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot read the index", st);
        hnswc_free(ix);
        return cli_fail(cmd);
    }
    if (info.kind == HNSWC_KIND_FLAT) {
        cli_set_error("%s is an exact index: it has no graph to export", a.path);
        hnswc_free(ix);
        return cli_fail(cmd);
    }
    if ((int64_t)a.layer > (info.max_level < 0 ? 0 : (int64_t)info.max_level)) {
        cli_set_error("--layer %llu: the index has layers 0 .. %d",
                      (unsigned long long)a.layer, (int)info.max_level);
        hnswc_free(ix);
        return cli_fail(cmd);
    }
    int rc = write_layer(stdout, ix, &info, (int)a.layer, a.json);
    hnswc_free(ix);
    if (rc != 0)
        return cli_fail(cmd);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_set_error("cannot write to standard output");
        return cli_fail(cmd);
    }
    return CLI_EXIT_OK;
}
