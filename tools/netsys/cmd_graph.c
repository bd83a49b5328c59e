/* tools/netsys/cmd_graph.c — `netsys graph [FILE]`: prints a document's
 * supervision tree as Graphviz DOT (default) or a Mermaid flowchart.
 *
 * One node per supervisor and worker, numbered n0, n1, ... in depth-first
 * start order (the root is n0), labelled with its id, its strategy (for
 * supervisors) or behaviour kind (for workers), and its restart type (every
 * node but the root). Edges go parent -> child, in start order, labelled with
 * the child's position. A simple_one_for_one supervisor's child template is a
 * dashed node behind a dashed edge labelled "*". The output depends on the
 * document only, so tests compare it byte for byte.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

typedef enum graph_format { GRAPH_DOT, GRAPH_MERMAID } graph_format_t;

typedef struct graph_edge {
    unsigned from, to, position; /* position 0: the template edge */
} graph_edge_t;

typedef struct graph {
    graph_format_t format;
    FILE *out;
    unsigned next_id; /* the next node's number */
    /* Edges are printed after every node, in the order they were found. */
    graph_edge_t *edges;
    size_t nedges, cap;
    bool oom;
} graph_t;

static const char *strategy_name(nsys_strategy_t s)
{
    switch (s) {
    case NSYS_ONE_FOR_ONE:
        return "one_for_one";
    case NSYS_ONE_FOR_ALL:
        return "one_for_all";
    case NSYS_REST_FOR_ONE:
        return "rest_for_one";
    case NSYS_SIMPLE_ONE_FOR_ONE:
        return "simple_one_for_one";
    }
    return "?";
}

static const char *restart_name(nsys_restart_t r)
{
    switch (r) {
    case NSYS_PERMANENT:
        return "permanent";
    case NSYS_TRANSIENT:
        return "transient";
    case NSYS_TEMPORARY:
        return "temporary";
    }
    return "?";
}

/* Writes one label line, escaped for the format. */
static void put_text(graph_t *g, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (g->format == GRAPH_DOT) {
            if (*p == '"' || *p == '\\')
                fputc('\\', g->out);
            fputc(*p, g->out);
        } else if (*p == '"') {
            fputs("#quot;", g->out);
        } else if (*p == '<') {
            fputs("#lt;", g->out);
        } else if (*p == '>') {
            fputs("#gt;", g->out);
        } else {
            fputc(*p, g->out);
        }
    }
}

static void put_break(graph_t *g)
{
    fputs(g->format == GRAPH_DOT ? "\\n" : "<br/>", g->out);
}

typedef enum node_style { NODE_ROOT, NODE_SUPERVISOR, NODE_WORKER, NODE_TEMPLATE } node_style_t;

/* Prints node `id`; `restart` is NULL for the root. */
static void put_node(graph_t *g, unsigned id, node_style_t style, const char *name,
                     const char *what, const char *restart)
{
    bool sup = style == NODE_ROOT || style == NODE_SUPERVISOR;

    if (g->format == GRAPH_DOT)
        fprintf(g->out, "    n%u [label=\"", id);
    else
        fprintf(g->out, "    n%u%s\"", id, sup ? "([" : "[");
    put_text(g, name);
    if (style == NODE_TEMPLATE)
        put_text(g, " (template)");
    put_break(g);
    put_text(g, what);
    if (restart != NULL) {
        put_break(g);
        put_text(g, restart);
    }
    if (g->format == GRAPH_MERMAID) {
        fputs(sup ? "\"])\n" : "\"]\n", g->out);
        return;
    }
    static const char *const dot_style[] = {
        [NODE_ROOT] = ", style=\"rounded,bold\"",
        [NODE_SUPERVISOR] = ", style=rounded",
        [NODE_WORKER] = "",
        [NODE_TEMPLATE] = ", style=dashed",
    };
    fprintf(g->out, "\"%s];\n", dot_style[style]);
}

static void add_edge(graph_t *g, unsigned from, unsigned to, unsigned position)
{
    if (g->nedges == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        graph_edge_t *e = realloc(g->edges, cap * sizeof *e);
        if (e == NULL) {
            g->oom = true;
            return;
        }
        g->edges = e;
        g->cap = cap;
    }
    g->edges[g->nedges++] = (graph_edge_t){from, to, position};
}

static void put_supervisor(graph_t *g, const nsys_sup_spec_t *spec, unsigned self);

/* Prints a child node (and, for a supervisor, its subtree) under `parent`. */
static void put_child(graph_t *g, const nsys_child_spec_t *child, unsigned parent,
                      unsigned position)
{
    unsigned id = g->next_id++;
    const char *restart = restart_name(child->restart);

    add_edge(g, parent, id, position);
    if (child->type == NSYS_SUPERVISOR_CHILD && child->supervisor != NULL) {
        char what[64];
        snprintf(what, sizeof what, "%s supervisor", strategy_name(child->supervisor->strategy));
        put_node(g, id, position ? NODE_SUPERVISOR : NODE_TEMPLATE, child->id, what, restart);
        put_supervisor(g, child->supervisor, id);
    } else {
        put_node(g, id, position ? NODE_WORKER : NODE_TEMPLATE, child->id,
                 cli_kind_name(child->behaviour), restart);
    }
}

static void put_supervisor(graph_t *g, const nsys_sup_spec_t *spec, unsigned self)
{
    for (size_t i = 0; i < spec->nchildren; i++)
        put_child(g, &spec->children[i], self, (unsigned)i + 1);
    if (spec->strategy == NSYS_SIMPLE_ONE_FOR_ONE && spec->child_template != NULL)
        put_child(g, spec->child_template, self, 0);
}

static int print_graph(const nsys_config_t *cfg, graph_format_t format)
{
    graph_t g = {.format = format, .out = stdout};
    const nsys_sup_spec_t *root = nsys_config_root(cfg);
    const char *name = nsys_config_name(cfg);
    char what[64];

    if (format == GRAPH_DOT) {
        fputs("digraph \"", stdout);
        put_text(&g, name);
        fputs("\" {\n    node [shape=box, fontname=\"Helvetica\"];\n", stdout);
    } else {
        fputs("flowchart TD\n", stdout);
    }
    snprintf(what, sizeof what, "%s supervisor", strategy_name(root->strategy));
    put_node(&g, g.next_id++, NODE_ROOT, name, what, NULL);
    put_supervisor(&g, root, 0);
    for (size_t i = 0; i < g.nedges && !g.oom; i++) {
        const graph_edge_t *e = &g.edges[i];
        if (format == GRAPH_DOT && e->position == 0)
            printf("    n%u -> n%u [label=\"*\", style=dashed];\n", e->from, e->to);
        else if (format == GRAPH_DOT)
            printf("    n%u -> n%u [label=\"%u\"];\n", e->from, e->to, e->position);
        else if (e->position == 0)
            printf("    n%u -.->|*| n%u\n", e->from, e->to);
        else
            printf("    n%u -->|%u| n%u\n", e->from, e->position, e->to);
    }
    if (format == GRAPH_DOT)
        fputs("}\n", stdout);
    free(g.edges);
    if (g.oom) {
        cli_error("graph: out of memory");
        return CLI_EXIT_FAIL;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static void print_help(FILE *out)
{
    fputs("Usage: netsys graph [--format dot|mermaid] [FILE]\n"
          "\n"
          "Prints the supervision tree of FILE (\"-\": standard input; none: the built-in\n"
          "demo tree) as a Graphviz DOT digraph or a Mermaid flowchart: one node per\n"
          "supervisor and worker, labelled with its id, its strategy or behaviour kind and\n"
          "its restart type; edges go from parent to child in start order.\n"
          "An invalid document prints its errors on standard error instead.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT  dot (default) or mermaid\n"
          "  -h, --help        show this help and exit\n"
          "\n"
          "Example: netsys graph tree.json | dot -Tsvg > tree.svg\n"
          "\n"
          "Exit status: 0 on success, 1 on bad usage or an invalid document.\n",
          out);
}

int cli_cmd_graph(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    graph_format_t format = GRAPH_DOT;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:h", options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "dot") == 0) {
                format = GRAPH_DOT;
            } else if (strcmp(optarg, "mermaid") == 0) {
                format = GRAPH_MERMAID;
            } else {
                cli_error("graph: unknown format '%s' (expected dot or mermaid)", optarg);
                return cli_usage_error("graph");
            }
            break;
        case 'h':
            print_help(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_option_error("graph", c, argv);
        }
    }
    if (argc - optind > 1) {
        cli_error("graph: one FILE at most");
        return cli_usage_error("graph");
    }
    nsys_config_t *cfg = NULL;
    if (cli_load(optind < argc ? argv[optind] : NULL, stderr, &cfg) != 0)
        return CLI_EXIT_FAIL;
    int status = print_graph(cfg, format);
    nsys_config_free(cfg);
    return status;
}
