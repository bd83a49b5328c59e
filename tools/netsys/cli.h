/* tools/netsys/cli.h — what the files of the `netsys` program share: exit
 * statuses, the subcommands' entry points, loading a document from a file,
 * stdin or the embedded default, and the demo behaviour kinds.
 *
 * Not for: anything a library user needs. The program uses only the public
 * API (<netsys/netsys.h>); this header is private to tools/netsys/.
 */
#ifndef NETSYS_TOOLS_CLI_H
#define NETSYS_TOOLS_CLI_H

#include <netsys/netsys.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit statuses (docs/CLI.md lists them). */
#define CLI_EXIT_OK 0      /* clean stop, valid documents, help, version */
#define CLI_EXIT_FAIL 1    /* bad usage, invalid document, the tree failed to start */
#define CLI_EXIT_GAVE_UP 2 /* `run`: the root supervisor exited on its own (it gave up) */

/* One subcommand: argv[0] is the subcommand's name. Returns an exit status. */
int cli_cmd_run(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_graph(int argc, char **argv);
int cli_cmd_proxy(int argc, char **argv);

/* Prints "netsys: " + message + newline to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Reports an unknown option or a missing argument for `cmd` and points at
 * its --help; returns CLI_EXIT_FAIL. */
int cli_usage_error(const char *cmd);

/* Reports what getopt_long (with opterr = 0 and a leading ':' in its option
 * string) rejected: `c` is the '?' or ':' it returned. Returns CLI_EXIT_FAIL. */
int cli_option_error(const char *cmd, int c, char **argv);

/* A --duration value: seconds ("2.5") or a config duration ("250ms", "2m");
 * > 0. Returns 0, NSYS_EINVAL or NSYS_ERANGE. */
int cli_parse_duration(const char *text, uint64_t *ms);

/* Installs the runtime's SIGINT/SIGTERM watchers (they stay for the whole
 * run) and reports a signal already caught: *signum is set to it, else left
 * alone. Returns what nsys_runtime_wait returned. */
int cli_watch_signals(nsys_runtime_t *rt, int *signum);

/* The document `netsys run` uses when no FILE is given (examples/demo_tree.json
 * holds the same bytes; a test keeps them equal). */
extern const char cli_default_document[];
#define CLI_DEFAULT_SOURCE "<default>"

/* Loads `path` ("-": standard input, NULL: the embedded default document).
 * On failure prints every error to `diag_out` (as "SOURCE: PATH: MESSAGE")
 * and returns the load error; *cfg is then NULL. */
int cli_load(const char *path, FILE *diag_out, nsys_config_t **cfg);

/* The name a document is reported under: the path, "<stdin>" or "<default>". */
const char *cli_source_name(const char *path);

/* Registers demo_worker, flaky_worker and pinger (demo_kinds.c); idempotent. */
int cli_register_demo_kinds(void);

/* ---- the pinger's traffic (demo_pinger.c) ----------------------------------- */

/* What every pinger of the process counts: X(ID, JSON_KEY, LABEL). The
 * JSON keys are in `netsys run --json`'s summary (docs/CLI.md). */
#define CLI_TRAFFIC(X)                                                                             \
    X(PINGERS, "pingers", "pingers started")                                                       \
    X(SENT, "sent", "messages sent")                                                               \
    X(ECHOED, "echoed", "echoed")                                                                  \
    X(FAILED, "failed", "failed (reported)")                                                       \
    X(LOST, "lost", "lost")                                                                        \
    X(DUPLICATES, "duplicates", "duplicate echoes")                                                \
    X(BAD, "bad_echoes", "bad echoes")                                                             \
    X(RECONNECTS, "reconnects", "reconnects")                                                      \
    X(IN_FLIGHT, "in_flight", "in flight")

typedef enum cli_traffic_counter {
#define CLI_TRAFFIC_ENUM(id, json, label) CLI_TRAFFIC_##id,
    CLI_TRAFFIC(CLI_TRAFFIC_ENUM)
#undef CLI_TRAFFIC_ENUM
        CLI_NTRAFFIC
} cli_traffic_counter_t;

/* Written by pinger actors on scheduler threads, read by the main thread. */
typedef struct cli_traffic {
    _Atomic uint64_t n[CLI_NTRAFFIC];
    atomic_int state;             /* nsys_client_state_t of the latest pinger's link */
    _Atomic uint64_t backoff_ms;  /* its reconnect delay, stored before state BACKOFF and
                                     read after it (only meaningful then) */
} cli_traffic_t;

extern cli_traffic_t cli_traffic;
extern const nsys_config_kind_t cli_pinger_kind;

/* The kind name a behaviour was registered under ("demo_worker"), or the
 * behaviour's own name when no kind uses it. */
const char *cli_kind_name(const nsys_behaviour_t *behaviour);

#endif
