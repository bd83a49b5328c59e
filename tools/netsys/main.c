/* tools/netsys/main.c — the `netsys` program's entry point: top-level options
 * (--help, --version), the table of subcommands, and the error helpers the
 * subcommands share.
 *
 * Not for: a subcommand's own work; each lives in its own cmd_*.c file and is
 * one row of `commands` below.
 */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_command {
    const char *name;
    const char *synopsis; /* the arguments, for the top-level help */
    const char *summary;
    int (*main)(int argc, char **argv);
} cli_command_t;

static const cli_command_t commands[] = {
    {"run", "[FILE]", "start the tree in FILE (default: the built-in demo tree) and run it",
     cli_cmd_run},
    {"check", "FILE...", "validate documents and print every error", cli_cmd_check},
    {"graph", "[FILE]", "print the tree as Graphviz DOT or Mermaid", cli_cmd_graph},
    {"proxy", "[OPTIONS]", "forward TCP to an upstream, injecting faults (latency, resets...)",
     cli_cmd_proxy},
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

void cli_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    /* One write, so that the observer's event lines on the same stream
     * cannot land inside it. */
    int n = snprintf(line, sizeof line, "netsys: ");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fflush(stdout);
    fputs(line, stderr);
}

int cli_usage_error(const char *cmd)
{
    if (cmd != NULL)
        fprintf(stderr, "Try 'netsys %s --help'.\n", cmd);
    else
        fputs("Try 'netsys --help'.\n", stderr);
    return CLI_EXIT_FAIL;
}

int cli_option_error(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";

    if (c == ':')
        cli_error("%s: option '%s' needs a value", cmd, arg);
    else if (optopt != 0)
        cli_error("%s: unknown option '-%c'", cmd, optopt);
    else
        cli_error("%s: unknown option '%s'", cmd, arg);
    return cli_usage_error(cmd);
}

static void print_help(FILE *out)
{
    fputs("Usage: netsys [--help] [--version] COMMAND [ARGS]\n"
          "\n"
          "Runs and inspects netsys services: supervision trees of actors described by a\n"
          "JSON document. Also runs a fault-injecting TCP proxy for testing clients.\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].synopsis);
        fprintf(out, "  %-16s %s\n", head, commands[i].summary);
    }
    fputs("  help [COMMAND]   show this help, or a command's\n"
          "\n"
          "Options:\n"
          "  -h, --help       show this help and exit\n"
          "  -V, --version    print the version and exit\n"
          "\n"
          "Exit status: 0 on success, 1 on bad usage, an invalid document or a tree that\n"
          "failed to start, 2 when `run`'s root supervisor gave up.\n"
          "Run 'netsys COMMAND --help' for a command's options; docs/CLI.md has the rest.\n",
          out);
}

static const cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_FAIL;
    }
    const char *first = argv[1];
    if (strcmp(first, "-h") == 0 || strcmp(first, "--help") == 0) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0) {
        printf("netsys %s\n", NSYS_VERSION_STRING);
        return CLI_EXIT_OK;
    }
    if (first[0] == '-') {
        cli_error("unknown option '%s'", first);
        return cli_usage_error(NULL);
    }

    if (strcmp(first, "help") == 0) {
        if (argc == 2) {
            print_help(stdout);
            return CLI_EXIT_OK;
        }
        const cli_command_t *cmd = find_command(argv[2]);
        if (cmd == NULL || argc > 3) {
            cli_error("help: unknown command '%s'", argv[2]);
            return cli_usage_error(NULL);
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        return cmd->main(2, help_argv);
    }

    const cli_command_t *cmd = find_command(first);
    if (cmd == NULL) {
        cli_error("unknown command '%s'", first);
        return cli_usage_error(NULL);
    }
    /* Every command validates documents, so every one needs the demo kinds. */
    int rc = cli_register_demo_kinds();
    if (rc != 0) {
        cli_error("cannot register the demo behaviours: %s", nsys_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return cmd->main(argc - 1, argv + 1);
}

int cli_parse_duration(const char *text, uint64_t *ms)
{
    char *end = NULL;
    double secs = strtod(text, &end);
    if (end != text && *end == '\0') {
        if (!(secs > 0) || !isfinite(secs) || secs > 1e9)
            return NSYS_ERANGE;
        *ms = (uint64_t)ceil(secs * 1000.0);
        return 0;
    }
    int rc = nsys_config_parse_duration(text, ms);
    if (rc == 0 && *ms == 0)
        rc = NSYS_ERANGE;
    return rc;
}

int cli_watch_signals(nsys_runtime_t *rt, int *signum)
{
    nsys_wake_t why = 0;
    int code = 0;
    int rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, 1, &why, &code);
    if (rc == 0 && why == NSYS_WAKE_SIGNAL)
        *signum = code;
    return rc;
}
