/* tools/netsys/cmd_run.c — `netsys run [FILE]`: loads a document (or the
 * embedded demo tree), configures a runtime from it, starts the root
 * supervisor with an observer, and runs until SIGINT/SIGTERM, --duration, or
 * the root supervisor exiting on its own; then stops the tree in order and
 * prints a summary.
 *
 * Signals. The runtime keeps its SIGINT/SIGTERM watchers from the first wait
 * that asks for them until nsys_runtime_free, and reports a signal that came
 * between two waits at the next one; so a short wait right after the runtime
 * is created covers the start, the run and the teardown (a second Ctrl-C
 * while the tree stops is held, never fatal).
 *
 * Not for: counting (run_observer.c) or printing (run_report.c).
 */
#include "run.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATUS_REFRESH_MS 250u

/* ---- signals ------------------------------------------------------------------ */

/* Installs the runtime's signal watchers (they stay until nsys_runtime_free);
 * *signum gets a signal that already arrived, else stays 0. */

/* ---- options ------------------------------------------------------------------- */

typedef struct run_opts {
    const char *file;     /* NULL: the embedded default document */
    uint64_t duration_ms; /* 0: until a signal */
    bool json;
    bool have_level;
    nsys_log_level_t level;
} run_opts_t;

static void print_help(FILE *out)
{
    fputs("Usage: netsys run [--duration SECONDS] [--json] [--log-level LEVEL] [FILE]\n"
          "       netsys run --print-default\n"
          "\n"
          "Starts the supervision tree described by FILE (\"-\": standard input; none: the\n"
          "built-in demo tree) and runs it until SIGINT or SIGTERM, until --duration has\n"
          "passed, or until the root supervisor gives up. Then stops the tree in order\n"
          "and prints a summary.\n"
          "\n"
          "On a terminal a status line (children up, restarts, failures, uptime) is\n"
          "redrawn 4 times a second; otherwise every supervisor event is printed as a\n"
          "line (on standard error with --json, else on standard output).\n"
          "\n"
          "Options:\n"
          "  -d, --duration SECONDS  stop after this long: seconds (\"2\", \"0.5\") or a\n"
          "                          duration with a unit (\"500ms\", \"2m\")\n"
          "  -j, --json              print the summary as one JSON line on standard output\n"
          "  -l, --log-level LEVEL   off, error, warn, info, debug or trace; overrides the\n"
          "                          NSYS_LOG environment variable and runtime.log_level\n"
          "      --print-default     print the built-in demo document and exit\n"
          "  -h, --help              show this help and exit\n"
          "\n"
          "Exit status: 0 after a stop by signal or --duration; 1 on bad usage, an invalid\n"
          "document or a tree that failed to start; 2 when the root supervisor gave up.\n",
          out);
}

/* "2", "0.25" (seconds) or "500ms", "2m" (a config duration); > 0. */

static int parse_options(int argc, char **argv, run_opts_t *o, bool *print_default)
{
    enum { OPT_PRINT_DEFAULT = 1000 };
    static const struct option options[] = {
        {"duration", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"log-level", required_argument, NULL, 'l'},
        {"print-default", no_argument, NULL, OPT_PRINT_DEFAULT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:jl:h", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (cli_parse_duration(optarg, &o->duration_ms) != 0) {
                cli_error("run: --duration: expected a number of seconds > 0 or a duration "
                          "such as \"500ms\", got '%s'",
                          optarg);
                return cli_usage_error("run");
            }
            break;
        case 'j':
            o->json = true;
            break;
        case 'l':
            if (nsys_log_level_parse(optarg, &o->level) != 0) {
                cli_error("run: --log-level: expected off, error, warn, info, debug or trace, "
                          "got '%s'",
                          optarg);
                return cli_usage_error("run");
            }
            o->have_level = true;
            break;
        case OPT_PRINT_DEFAULT:
            *print_default = true;
            break;
        case 'h':
            print_help(stdout);
            return -1;
        default:
            return cli_option_error("run", c, argv);
        }
    }
    if (argc - optind > 1) {
        cli_error("run: one FILE at most");
        return cli_usage_error("run");
    }
    if (*print_default && argc - optind > 0) {
        cli_error("run: --print-default takes no FILE");
        return cli_usage_error("run");
    }
    o->file = optind < argc ? argv[optind] : NULL;
    return 0;
}

/* --log-level, else NSYS_LOG, else the document's runtime.log_level. */
static void apply_log_level(const run_opts_t *o, const nsys_config_t *cfg)
{
    nsys_log_level_t level = nsys_config_log_level(cfg);
    const char *env = getenv("NSYS_LOG");
    nsys_log_level_t from_env;

    if (env != NULL && nsys_log_level_parse(env, &from_env) == 0)
        level = from_env;
    if (o->have_level)
        level = o->level;
    nsys_log_set_level(level);
}

/* ---- running ------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* Waits until the run must end; fills out->stop (and signum). */
static void run_until_stop(run_shared_t *sh, int signum, const run_opts_t *o, bool status_line,
                           run_outcome_t *out)
{
    /* Measured from when the tree began to start, like the uptime. */
    uint64_t deadline_ns = o->duration_ms ? sh->start_ns + o->duration_ms * 1000000u : 0;

    for (;;) {
        if (atomic_load(&sh->root_down)) {
            out->stop = RUN_STOP_ROOT_EXIT;
            out->reason = atomic_load(&sh->root_reason);
            return;
        }
        if (signum != 0) {
            out->stop = RUN_STOP_SIGNAL;
            out->signum = signum;
            return;
        }
        uint64_t timeout = STATUS_REFRESH_MS;
        if (deadline_ns != 0) {
            uint64_t now = uv_hrtime();
            if (now >= deadline_ns) {
                out->stop = RUN_STOP_DURATION;
                return;
            }
            uint64_t left_ms = (deadline_ns - now + 999999u) / 1000000u; /* rounded up */
            if (left_ms < timeout)
                timeout = left_ms;
        }
        if (status_line) {
            run_snapshot_t snap;
            run_snapshot_take(sh, &snap);
            run_status_draw(&snap);
        }
        nsys_wake_t why = 0;
        int code = 0;
        int rc = nsys_runtime_wait(sh->rt, NSYS_WAIT_SIGNALS, timeout, &why, &code);
        if (rc != 0) {
            out->stop = RUN_STOP_ERROR;
            out->reason = rc;
            return;
        }
        if (why == NSYS_WAKE_SIGNAL)
            signum = code;
    }
}

/* Asks the root to shut down (it stops its children in reverse start order)
 * and waits, bounded, for the observer to see it go. */
static void stop_root(run_shared_t *sh, nsys_ref_t root, uint64_t bound_ms)
{
    if (root == NSYS_REF_NONE || atomic_load(&sh->root_down))
        return;
    if (nsys_exit_signal(sh->rt, root, NSYS_REASON_SHUTDOWN) != 0)
        return;
    uint64_t deadline = now_ms() + bound_ms;
    while (!atomic_load(&sh->root_down)) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            cli_error("the root supervisor did not stop within %llu ms; stopping the runtime",
                      (unsigned long long)bound_ms);
            return;
        }
        if (nsys_runtime_wait(sh->rt, 0, deadline - now, NULL, NULL) != 0)
            return;
    }
}

static int run_config(const run_opts_t *o, const nsys_config_t *cfg)
{
    const nsys_runtime_opts_t *rt_opts = nsys_config_runtime_opts(cfg);
    run_outcome_t out = {.name = nsys_config_name(cfg)};
    run_shared_t sh;
    int signum = 0;
    nsys_ref_t observer = NSYS_REF_NONE, root = NSYS_REF_NONE;
    bool status_line = isatty(STDOUT_FILENO) == 1;
    char err[512] = "";

    memset(&sh, 0, sizeof sh);
    sh.events = status_line ? NULL : o->json ? stderr : stdout;
    int rc = nsys_runtime_new(rt_opts, &sh.rt);
    if (rc != 0) {
        cli_error("cannot create the runtime: %s", nsys_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    rc = cli_watch_signals(sh.rt, &signum);
    if (rc != 0) {
        cli_error("cannot watch SIGINT/SIGTERM: %s", nsys_strerror(rc));
        nsys_runtime_free(sh.rt);
        return CLI_EXIT_FAIL;
    }
    sh.start_ns = uv_hrtime();
    rc = run_observer_spawn(&sh, &observer);
    if (rc == 0) {
        nsys_sup_spec_t spec = *nsys_config_root(cfg);
        spec.observer = observer;
        rc = nsys_supervisor_start(sh.rt, &spec, &root, err, sizeof err);
        if (rc != 0) {
            root = NSYS_REF_NONE;
            cli_error("cannot start '%s': %s", out.name, err[0] != '\0' ? err : nsys_strerror(rc));
        }
    } else {
        cli_error("cannot start the observer: %s", nsys_strerror(rc));
    }
    if (rc == 0)
        rc = run_observer_watch(&sh, observer, root);

    if (rc == 0) {
        if (status_line)
            run_status_begin(out.name);
        run_until_stop(&sh, signum, o, status_line, &out);
    } else {
        out.stop = RUN_STOP_START_FAILED;
        out.reason = rc;
    }

    /* The summary describes the run, not the teardown. */
    run_snapshot_t snap;
    run_snapshot_take(&sh, &snap);
    uint64_t bound = rt_opts->shutdown_timeout_ms ? rt_opts->shutdown_timeout_ms : 5000u;
    stop_root(&sh, root, bound);
    /* Traffic is counted to the end: a pinger stopped with the tree settles
     * what it still had outstanding (as failed), so in_flight ends at 0. */
    run_snapshot_t after;
    run_snapshot_take(&sh, &after);
    memcpy(snap.traffic, after.traffic, sizeof snap.traffic);
    rc = nsys_runtime_stop(sh.rt);
    if (rc != 0)
        cli_error("stopping the runtime: %s", nsys_strerror(rc));
    if (status_line)
        run_status_end();
    nsys_runtime_free(sh.rt);

    switch (out.stop) {
    case RUN_STOP_SIGNAL:
    case RUN_STOP_DURATION:
        out.exit_status = CLI_EXIT_OK;
        break;
    case RUN_STOP_ROOT_EXIT:
        out.exit_status = CLI_EXIT_GAVE_UP;
        break;
    case RUN_STOP_START_FAILED:
    case RUN_STOP_ERROR:
        out.exit_status = CLI_EXIT_FAIL;
        break;
    }
    run_summary_print(&out, &snap, o->json);
    return out.exit_status;
}

int cli_cmd_run(int argc, char **argv)
{
    run_opts_t o = {0};
    bool print_default = false;
    int rc = parse_options(argc, argv, &o, &print_default);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (print_default) {
        fputs(cli_default_document, stdout);
        return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    nsys_config_t *cfg = NULL;
    if (cli_load(o.file, stderr, &cfg) != 0)
        return CLI_EXIT_FAIL;
    apply_log_level(&o, cfg);
    int status = run_config(&o, cfg);
    nsys_config_free(cfg);
    return status;
}
