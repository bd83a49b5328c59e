/* tools/netsys/cmd_check.c — `netsys check FILE...`: validates documents
 * without starting anything. Valid ones get "FILE: ok" on standard output;
 * every error of an invalid one goes to standard error, one per line, in
 * nsys_config_diag_print's form ("FILE: PATH: MESSAGE"). `--kinds` lists the
 * behaviour kinds a document may name.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void print_help(FILE *out)
{
    fputs("Usage: netsys check [--quiet] FILE...\n"
          "       netsys check --kinds\n"
          "\n"
          "Validates each document (\"-\" reads standard input) without starting anything.\n"
          "A valid one prints \"FILE: ok\" on standard output. An invalid one prints every\n"
          "error on standard error, one per line:\n"
          "  FILE: PATH: MESSAGE          e.g. t.json: $.supervisor.intensity: expected ...\n"
          "  FILE:LINE:COLUMN: MESSAGE    JSON syntax errors\n"
          "\n"
          "Options:\n"
          "  -k, --kinds      list the behaviour kinds a document may name, and exit\n"
          "  -q, --quiet      print nothing for valid documents\n"
          "  -h, --help       show this help and exit\n"
          "\n"
          "Exit status: 0 if every document is valid, 1 if any is not (or on bad usage).\n",
          out);
}

static int list_kinds(void)
{
    const char **names = NULL;
    size_t n = 0;
    int rc = nsys_config_kind_names(&names, &n);

    if (rc != 0) {
        cli_error("check: cannot list the behaviour kinds: %s", nsys_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    size_t width = 0;
    for (size_t i = 0; i < n; i++)
        width = strlen(names[i]) > width ? strlen(names[i]) : width;
    for (size_t i = 0; i < n; i++) {
        const nsys_config_kind_t *kind = nsys_config_find_kind(names[i]);
        const char *summary = kind != NULL && kind->summary != NULL ? kind->summary : "";
        printf("%-*s  %s\n", (int)width, names[i], summary);
    }
    nsys_free(names);
    return CLI_EXIT_OK;
}

int cli_cmd_check(int argc, char **argv)
{
    static const struct option options[] = {
        {"kinds", no_argument, NULL, 'k'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool kinds = false, quiet = false;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":kqh", options, NULL)) != -1) {
        switch (c) {
        case 'k':
            kinds = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            print_help(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_option_error("check", c, argv);
        }
    }
    if (kinds) {
        if (optind != argc) {
            cli_error("check: --kinds takes no FILE");
            return cli_usage_error("check");
        }
        return list_kinds();
    }
    if (optind == argc) {
        cli_error("check: no FILE given");
        return cli_usage_error("check");
    }

    int status = CLI_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        nsys_config_t *cfg = NULL;
        if (cli_load(argv[i], stderr, &cfg) != 0) {
            status = CLI_EXIT_FAIL;
            continue;
        }
        nsys_config_free(cfg);
        if (!quiet) {
            printf("%s: ok\n", cli_source_name(argv[i]));
            fflush(stdout);
        }
    }
    return status;
}
