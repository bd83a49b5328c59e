/* tests/integration/test_cli.c — the `netsys` program, run for real: each
 * test spawns the built binary (NETSYS_CLI_PATH, set by tools/netsys's
 * CMakeLists.txt) with pipes on its standard output and error, feeds it
 * documents written to a scratch directory, and checks exit statuses and
 * output byte for byte where the output is deterministic.
 *
 * Every wait is bounded: output is read with poll() until the expected text
 * or end of file, and the exit is awaited until a deadline, after which the
 * child is killed and the test fails. A child still running when a test ends
 * (an assertion failed) is killed by the suite's teardown.
 */
#include "common/net.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <netsys/netsys.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef NETSYS_CLI_PATH
#error "NETSYS_CLI_PATH must name the built netsys program (see tools/netsys/CMakeLists.txt)"
#endif
#ifndef NETSYS_SOURCE_DIR
#error "NETSYS_SOURCE_DIR must name the source tree (see tools/netsys/CMakeLists.txt)"
#endif

extern char **environ;

/* A run ends long before this unless something is wrong (sanitizers are slow). */
#define CLI_WAIT_MS 60000u

/* ---- child processes ------------------------------------------------------ */

typedef struct out_buf {
    char *data; /* NUL-terminated */
    size_t len, cap;
} out_buf_t;

typedef struct proc {
    bool in_use;
    pid_t pid; /* 0 once reaped */
    int fd[2]; /* stdout, stderr read ends; -1 at EOF */
    out_buf_t out, err;
    int status; /* waitpid status, valid once pid == 0 */
} proc_t;

/* Children live in static slots, not on a test's stack: an assertion leaves
 * the test function, and the teardown must still find them to kill them. */
#define MAX_PROCS 4
static proc_t procs[MAX_PROCS];
static char scratch[256];

static void buf_append(out_buf_t *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        cr_assert_not_null(grown);
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Starts `netsys ARGS...` (argv without the program, NULL-terminated) with
 * standard input from /dev/null and the default action for the signals the
 * tests send, whatever the test runner set. */
static proc_t *proc_start(const char *const *args)
{
    proc_t *p = NULL;
    for (size_t i = 0; i < MAX_PROCS && p == NULL; i++)
        if (!procs[i].in_use)
            p = &procs[i];
    cr_assert_not_null(p, "more than %d children at once", MAX_PROCS);

    const char *argv[32] = {NETSYS_CLI_PATH};
    size_t n = 1;
    for (; args[n - 1] != NULL; n++) {
        cr_assert_lt(n, 31);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;

    int out[2], err[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    memset(p, 0, sizeof *p);
    p->in_use = true;
    int rc = posix_spawn(&p->pid, NETSYS_CLI_PATH, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    p->fd[0] = out[0];
    p->fd[1] = err[0];
    if (rc != 0)
        p->pid = 0;
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", NETSYS_CLI_PATH, strerror(rc));
    return p;
}

/* Reads what the child wrote until `done(p)` holds, both pipes reach end of
 * file, or the deadline passes. Returns done(p) (or true at EOF without a
 * predicate). */
static bool proc_read_until(proc_t *p, bool (*done)(const proc_t *), uint64_t deadline_ms)
{
    for (;;) {
        if (done != NULL && done(p))
            return true;
        struct pollfd pfd[2];
        nfds_t n = 0;
        out_buf_t *bufs[2];
        for (int i = 0; i < 2; i++) {
            if (p->fd[i] >= 0) {
                pfd[n] = (struct pollfd){.fd = p->fd[i], .events = POLLIN};
                bufs[n] = i == 0 ? &p->out : &p->err;
                n++;
            }
        }
        if (n == 0)
            return done == NULL;
        uint64_t now = t_now_ms();
        if (now >= deadline_ms)
            return false;
        int ready = poll(pfd, n, (int)(deadline_ms - now));
        if (ready < 0 && errno == EINTR)
            continue;
        cr_assert_geq(ready, 0, "poll: %s", strerror(errno));
        for (nfds_t i = 0; i < n; i++) {
            if (pfd[i].revents == 0)
                continue;
            char chunk[4096];
            ssize_t got = read(pfd[i].fd, chunk, sizeof chunk);
            if (got > 0) {
                buf_append(bufs[i], chunk, (size_t)got);
            } else if (got == 0 || errno != EINTR) {
                int which = bufs[i] == &p->out ? 0 : 1;
                close(p->fd[which]);
                p->fd[which] = -1;
            }
        }
    }
}

/* Reads to the end of both pipes and reaps the child, all within
 * `timeout_ms`; kills it and fails the test if it does not end in time. */
static void proc_finish(proc_t *p, uint64_t timeout_ms)
{
    uint64_t deadline = t_now_ms() + timeout_ms;
    bool eof = proc_read_until(p, NULL, deadline);
    uint64_t now = t_now_ms();
    int status = 0;
    pid_t got = 0;
    t_poll_t poll_state = t_poll_begin(eof && now < deadline ? deadline - now : 0);
    do
        got = waitpid(p->pid, &status, WNOHANG);
    while (got == 0 && t_poll_continue(&poll_state));
    if (got != p->pid)
        cr_assert_fail("netsys did not exit within %llu ms; stdout:\n%s\nstderr:\n%s",
                       (unsigned long long)timeout_ms, p->out.data ? p->out.data : "",
                       p->err.data ? p->err.data : "");
    p->status = status;
    p->pid = 0;
}

/* Kills the child if it still runs, and releases its slot. */
static void proc_free(proc_t *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    free(p->out.data);
    free(p->err.data);
    memset(p, 0, sizeof *p);
}

static const char *out_of(const proc_t *p)
{
    return p->out.data != NULL ? p->out.data : "";
}

static const char *err_of(const proc_t *p)
{
    return p->err.data != NULL ? p->err.data : "";
}

/* The exit status; fails the test if the child died of a signal. */
static int exit_code(const proc_t *p)
{
    cr_assert(WIFEXITED(p->status), "netsys did not exit normally (wait status %#x); stderr:\n%s",
              p->status, err_of(p));
    return WEXITSTATUS(p->status);
}

/* Runs `netsys ARGS...` to completion. */
#define RUN(p, ...)                                                                                \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        (p) = proc_start(args_);                                                                   \
        proc_finish((p), CLI_WAIT_MS);                                                             \
    } while (0)

/* ---- scratch files --------------------------------------------------------- */

static void setup(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/netsys-test-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    for (size_t i = 0; i < MAX_PROCS; i++)
        if (procs[i].in_use)
            proc_free(&procs[i]);
    /* The scratch directory holds only files the test wrote. */
    DIR *dir = scratch[0] != '\0' ? opendir(scratch) : NULL;
    if (dir != NULL) {
        struct dirent *e;
        char path[600];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", scratch, e->d_name);
            unlink(path);
        }
        closedir(dir);
        rmdir(scratch);
    }
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 180);

/* Writes `text` to a file named `name` in the scratch directory and puts its
 * path in `path`. */
static void write_doc(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", scratch, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    out_buf_t b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, got);
    fclose(f);
    *len = b.len;
    return b.data != NULL ? b.data : calloc(1, 1);
}

/* ---- documents ----------------------------------------------------------- */

/* clang-format off */

/* Two workers and a nested supervisor with one more: 4 children start. */
static const char valid_tree[] =
    "{\n"
    "  \"name\": \"small\",\n"
    "  \"runtime\": { \"schedulers\": 2, \"log_level\": \"warn\" },\n"
    "  \"supervisor\": {\n"
    "    \"strategy\": \"one_for_one\",\n"
    "    \"children\": [\n"
    "      { \"id\": \"a\", \"behaviour\": \"demo_worker\", \"args\": { \"interval\": \"100ms\" } },\n"
    "      { \"id\": \"b\", \"behaviour\": \"demo_worker\" },\n"
    "      { \"id\": \"inner\", \"type\": \"supervisor\",\n"
    "        \"supervisor\": { \"strategy\": \"one_for_all\", \"children\": [\n"
    "          { \"id\": \"c\", \"behaviour\": \"demo_worker\", \"restart\": \"transient\" }\n"
    "        ] } }\n"
    "    ]\n"
    "  }\n"
    "}\n";

/* A flaky worker that fails every 10 ms under a root that allows 1 restart:
 * the root gives up within moments. */
static const char doomed_tree[] =
    "{\n"
    "  \"name\": \"doomed\",\n"
    "  \"runtime\": { \"log_level\": \"error\" },\n"
    "  \"supervisor\": {\n"
    "    \"intensity\": 1,\n"
    "    \"period\": \"1m\",\n"
    "    \"children\": [\n"
    "      { \"id\": \"steady\", \"behaviour\": \"demo_worker\" },\n"
    "      { \"id\": \"flaky\", \"behaviour\": \"flaky_worker\", \"args\": { \"fail_every\": \"10ms\" } }\n"
    "    ]\n"
    "  }\n"
    "}\n";

static const char invalid_tree[] =
    "{\n"
    "  \"supervisor\": {\n"
    "    \"strategy\": \"one_for_some\",\n"
    "    \"children\": [\n"
    "      { \"id\": \"a\", \"behaviour\": \"demo_worker\",\n"
    "        \"args\": { \"interval\": \"soon\", \"colour\": \"red\" } },\n"
    "      { \"id\": \"b\", \"behaviour\": \"flaky_worker\", \"restart\": \"always\",\n"
    "        \"args\": { \"fail_every\": \"0ms\" } }\n"
    "    ]\n"
    "  }\n"
    "}\n";

/* Every node shape: root, worker, nested simple_one_for_one with a template. */
static const char graph_tree[] =
    "{\n"
    "  \"name\": \"shop\",\n"
    "  \"supervisor\": {\n"
    "    \"strategy\": \"one_for_all\",\n"
    "    \"children\": [\n"
    "      { \"id\": \"clock\", \"behaviour\": \"demo_worker\", \"args\": { \"interval\": \"100ms\" } },\n"
    "      { \"id\": \"orders\", \"type\": \"supervisor\", \"restart\": \"transient\",\n"
    "        \"supervisor\": { \"strategy\": \"simple_one_for_one\",\n"
    "          \"template\": { \"id\": \"order\", \"behaviour\": \"flaky_worker\", \"restart\": \"temporary\" } } },\n"
    "      { \"id\": \"audit\", \"behaviour\": \"demo_worker\", \"restart\": \"temporary\" }\n"
    "    ]\n"
    "  }\n"
    "}\n";

/* clang-format on */

/* ---- help, version, usage ---------------------------------------------------- */

Test(cli, help_exits_zero_at_top_level_and_for_every_command)
{
    static const char *const cmds[] = {"run", "check", "graph", "proxy"};
    proc_t *p;
    RUN(p, "--help");
    cr_expect_eq(exit_code(p), 0);
    cr_expect(strncmp(out_of(p), "Usage: netsys", 13) == 0, "stdout: %s", out_of(p));
    proc_free(p);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        RUN(p, cmds[i], "--help");
        cr_expect_eq(exit_code(p), 0, "netsys %s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "Usage: netsys %s", cmds[i]);
        cr_expect(strncmp(out_of(p), want, strlen(want)) == 0, "stdout: %s", out_of(p));
        cr_expect_str_empty(err_of(p));
        proc_free(p);
    }
}

Test(cli, version_prints_the_library_version)
{
    proc_t *p;
    RUN(p, "--version");
    cr_expect_eq(exit_code(p), 0);
    cr_expect_str_eq(out_of(p), "netsys " NSYS_VERSION_STRING "\n");
    proc_free(p);
}

Test(cli, unknown_options_and_commands_are_usage_errors)
{
    proc_t *p;
    RUN(p, "--bogus");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: unknown option '--bogus'\nTry 'netsys --help'.\n");
    proc_free(p);

    RUN(p, "frobnicate");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: unknown command 'frobnicate'\nTry 'netsys --help'.\n");
    proc_free(p);

    RUN(p, "run", "--bogus");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: run: unknown option '--bogus'\n"
                                "Try 'netsys run --help'.\n");
    cr_expect_str_empty(out_of(p));
    proc_free(p);

    RUN(p, "check", "-x", "file.json");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: check: unknown option '-x'\n"
                                "Try 'netsys check --help'.\n");
    proc_free(p);

    RUN(p, "graph", "--format", "svg");
    cr_expect_eq(exit_code(p), 1);
    proc_free(p);

    RUN(p, "run", "--duration");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: run: option '--duration' needs a value\n"
                                "Try 'netsys run --help'.\n");
    proc_free(p);

    RUN(p, "run", "--duration", "soon");
    cr_expect_eq(exit_code(p), 1);
    proc_free(p);

    RUN(p, "check");
    cr_expect_eq(exit_code(p), 1);
    proc_free(p);
}

/* ---- check ------------------------------------------------------------------------ */

Test(cli, check_prints_ok_for_a_valid_document)
{
    char path[512];
    write_doc(path, sizeof path, "valid.json", valid_tree);
    proc_t *p;
    RUN(p, "check", path);
    cr_expect_eq(exit_code(p), 0);
    char want[600];
    snprintf(want, sizeof want, "%s: ok\n", path);
    cr_expect_str_eq(out_of(p), want);
    cr_expect_str_empty(err_of(p));
    proc_free(p);
}

Test(cli, check_prints_every_error_with_its_path_and_exits_one)
{
    char good[512], bad[512];
    write_doc(good, sizeof good, "good.json", valid_tree);
    write_doc(bad, sizeof bad, "bad.json", invalid_tree);
    proc_t *p;
    RUN(p, "check", good, bad);
    cr_expect_eq(exit_code(p), 1);
    char want_out[600], want_err[4096];
    snprintf(want_out, sizeof want_out, "%s: ok\n", good);
    snprintf(want_err, sizeof want_err,
             "%s: $.supervisor.strategy: expected one of \"one_for_one\", \"one_for_all\", "
             "\"rest_for_one\", \"simple_one_for_one\", got \"one_for_some\"\n"
             "%s: $.supervisor.children[0].args.colour: unknown key; expected one of "
             "\"interval\"\n"
             "%s: $.supervisor.children[0].args.interval: expected a duration such as "
             "\"500ms\" or \"5s\", got \"soon\"\n"
             "%s: $.supervisor.children[1].args.fail_every: expected a duration 1ms..1h, "
             "got \"0ms\"\n"
             "%s: $.supervisor.children[1].restart: expected one of \"permanent\", "
             "\"transient\", \"temporary\", got \"always\"\n",
             bad, bad, bad, bad, bad);
    cr_expect_str_eq(out_of(p), want_out);
    cr_expect_str_eq(err_of(p), want_err);
    proc_free(p);
}

Test(cli, check_kinds_lists_netsys_kinds_first_then_the_demo_kinds)
{
    proc_t *p;
    RUN(p, "check", "--kinds");
    cr_expect_eq(exit_code(p), 0);
    cr_expect_str_eq(out_of(p),
                     "listener      TCP listener: accepts on host:port, one session per "
                     "connection running `handler`\n"
                     "proxy         TCP proxy: forwards host:port to upstream_host:upstream_port, "
                     "injecting `faults`\n"
                     "client        resilient TCP client: keeps a connection to host:port, "
                     "reconnecting with backoff\n"
                     "demo_worker   demo: ticks every `interval` (default \"1s\") and logs at "
                     "debug level\n"
                     "flaky_worker  demo: fails every `fail_every` (default \"3s\") so that it "
                     "gets restarted\n"
                     "pinger        demo: a client sending numbered messages every `interval` and "
                     "checking every echo\n");
    cr_expect_str_empty(err_of(p));
    proc_free(p);
}

Test(cli, check_accepts_the_echo_server_example)
{
    proc_t *p;
    RUN(p, "check", NETSYS_SOURCE_DIR "/examples/echo_server.json");
    cr_expect_eq(exit_code(p), 0, "stderr: %s", err_of(p));
    cr_expect_str_eq(out_of(p), NETSYS_SOURCE_DIR "/examples/echo_server.json: ok\n");
    cr_expect_str_empty(err_of(p));
    proc_free(p);
}

/* The pinger's args, its embedded client's included, are checked with
 * paths like every other kind's. */
Test(cli, check_reports_pinger_args_with_their_paths)
{
    static const char doc[] =
        "{\"supervisor\": {\"children\": [{\"id\": \"p\", \"behaviour\": \"pinger\",\n"
        "  \"args\": {\"size\": 4, \"client\": {\"host\": \"127.0.0.1\",\n"
        "    \"reconnect\": {\"initial\": \"5s\", \"max\": \"1s\", \"stop_on\": [\"refused\", \"nope\"]},\n"
        "    \"owner\": \"x\"}}}]}}\n";
    char path[512];
    write_doc(path, sizeof path, "pinger.json", doc);
    proc_t *p;
    RUN(p, "check", path);
    cr_expect_eq(exit_code(p), 1);
    const char *err = err_of(p);
    static const char *const want[] = {
        "$.supervisor.children[0].args.size: expected an integer 8..65536, got 4",
        "$.supervisor.children[0].args.client: missing required key \"port\"",
        "$.supervisor.children[0].args.client.reconnect.initial: expected a duration no longer "
        "than \"max\" (1s), got \"5s\"",
        "$.supervisor.children[0].args.client.reconnect.stop_on[1]: expected one of "
        "\"resolve\", \"refused\", \"unreachable\", \"timeout\", \"reset\", got \"nope\"",
        "$.supervisor.children[0].args.client: a pinger's client takes no \"owner\" or "
        "\"register\": the pinger owns it",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(err, want[i]) != NULL, "missing: %s\nstderr:\n%s", want[i], err);
    proc_free(p);
}

Test(cli, check_reports_listener_args_with_their_paths)
{
    char bad[512];
    write_doc(bad, sizeof bad, "bad_listener.json",
              "{\"supervisor\": {\"children\": [{\"id\": \"web\", \"behaviour\": "
              "\"listener\", \"args\": {\"port\": 70000, \"handler\": \"echoo\"}}]}}");
    proc_t *p;
    RUN(p, "check", bad);
    cr_expect_eq(exit_code(p), 1);
    char want[2048];
    snprintf(want, sizeof want,
             "%s: $.supervisor.children[0].args.port: expected an integer 0..65535, got 70000\n"
             "%s: $.supervisor.children[0].args.handler: unknown handler \"echoo\"; did you "
             "mean \"echo\"? known: \"echo\", \"discard\", \"log\"\n",
             bad, bad);
    cr_expect_str_eq(err_of(p), want);
    cr_expect_str_empty(out_of(p));
    proc_free(p);
}

Test(cli, check_reports_syntax_errors_and_missing_files)
{
    char broken[512], missing[512];
    write_doc(broken, sizeof broken, "broken.json", "{\n  \"name\": \"x\",\n");
    snprintf(missing, sizeof missing, "%s/nowhere.json", scratch);
    proc_t *p;
    RUN(p, "check", "--quiet", broken, missing);
    cr_expect_eq(exit_code(p), 1);
    /* The syntax message itself is config/'s; the CLI's part is the form
     * "FILE:LINE:COLUMN: MESSAGE", one line per error, in argument order. */
    char want_syntax[1024], want_missing[2048];
    snprintf(want_syntax, sizeof want_syntax, "%s:3:1: invalid JSON at line 3, column 1: ", broken);
    snprintf(want_missing, sizeof want_missing,
             "%s: cannot open \"%s\": no such file or directory\n", missing, missing);
    const char *err = err_of(p);
    const char *second = strchr(err, '\n');
    cr_expect(strncmp(err, want_syntax, strlen(want_syntax)) == 0, "stderr:\n%s", err);
    cr_assert_not_null(second, "stderr:\n%s", err);
    cr_expect_str_eq(second + 1, want_missing);
    cr_expect_str_empty(out_of(p));
    proc_free(p);
}

Test(cli, check_reads_standard_input_for_a_dash)
{
    /* Standard input is /dev/null: an empty document. */
    proc_t *p;
    RUN(p, "check", "-");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "<stdin>: $: document is empty\n");
    proc_free(p);
}

/* ---- graph ------------------------------------------------------------------------ */

Test(cli, graph_prints_the_tree_as_dot)
{
    char path[512];
    write_doc(path, sizeof path, "shop.json", graph_tree);
    proc_t *p;
    RUN(p, "graph", path);
    cr_expect_eq(exit_code(p), 0, "stderr: %s", err_of(p));
    cr_expect_str_eq(out_of(p),
                     "digraph \"shop\" {\n"
                     "    node [shape=box, fontname=\"Helvetica\"];\n"
                     "    n0 [label=\"shop\\none_for_all supervisor\", style=\"rounded,bold\"];\n"
                     "    n1 [label=\"clock\\ndemo_worker\\npermanent\"];\n"
                     "    n2 [label=\"orders\\nsimple_one_for_one supervisor\\ntransient\", "
                     "style=rounded];\n"
                     "    n3 [label=\"order (template)\\nflaky_worker\\ntemporary\", "
                     "style=dashed];\n"
                     "    n4 [label=\"audit\\ndemo_worker\\ntemporary\"];\n"
                     "    n0 -> n1 [label=\"1\"];\n"
                     "    n0 -> n2 [label=\"2\"];\n"
                     "    n2 -> n3 [label=\"*\", style=dashed];\n"
                     "    n0 -> n4 [label=\"3\"];\n"
                     "}\n");
    cr_expect_str_empty(err_of(p));
    proc_free(p);
}

Test(cli, graph_prints_the_tree_as_mermaid)
{
    char path[512];
    write_doc(path, sizeof path, "shop.json", graph_tree);
    proc_t *p;
    RUN(p, "graph", "--format", "mermaid", path);
    cr_expect_eq(exit_code(p), 0, "stderr: %s", err_of(p));
    cr_expect_str_eq(out_of(p), "flowchart TD\n"
                                "    n0([\"shop<br/>one_for_all supervisor\"])\n"
                                "    n1[\"clock<br/>demo_worker<br/>permanent\"]\n"
                                "    n2([\"orders<br/>simple_one_for_one supervisor<br/>"
                                "transient\"])\n"
                                "    n3[\"order (template)<br/>flaky_worker<br/>temporary\"]\n"
                                "    n4[\"audit<br/>demo_worker<br/>temporary\"]\n"
                                "    n0 -->|1| n1\n"
                                "    n0 -->|2| n2\n"
                                "    n2 -.->|*| n3\n"
                                "    n0 -->|3| n4\n");
    proc_free(p);
}

Test(cli, graph_of_an_invalid_document_prints_its_errors)
{
    char path[512];
    write_doc(path, sizeof path, "bad.json", invalid_tree);
    proc_t *p;
    RUN(p, "graph", path);
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_empty(out_of(p));
    cr_expect(strstr(err_of(p), "$.supervisor.strategy: expected one of") != NULL, "stderr: %s",
              err_of(p));
    proc_free(p);
}

/* ---- run ------------------------------------------------------------------------- */

/* Parses stdout as exactly one JSON line and checks the summary's keys. */
static cJSON *summary_json(const proc_t *p)
{
    const char *out = out_of(p);
    size_t len = strlen(out);
    cr_assert_gt(len, 0, "no summary; stderr:\n%s", err_of(p));
    cr_assert_eq(out[len - 1], '\n', "stdout: %s", out);
    cr_assert_null(memchr(out, '\n', len - 1), "more than one line on stdout:\n%s", out);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(out, &end, true);
    cr_assert_not_null(j, "not JSON: %s", out);
    static const char *const numbers[] = {"uptime_s", "children_started", "restarts", "exits",
                                          "exit_status", "sent", "echoed", "failed", "lost",
                                          "reconnects", "in_flight"};
    cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "name")), "%s", out);
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, numbers[i])), "%s: %s",
                  numbers[i], out);
    cr_assert(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "gave_up")), "%s", out);
    return j;
}

static double num(const cJSON *j, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(j, key)->valuedouble;
}

Test(cli, run_with_duration_prints_one_json_summary_and_exits_zero)
{
    char path[512];
    write_doc(path, sizeof path, "small.json", valid_tree);
    proc_t *p;
    uint64_t t0 = t_now_ms();
    RUN(p, "run", "--duration", "1", "--json", path);
    uint64_t took = t_now_ms() - t0;
    cr_expect_eq(exit_code(p), 0, "stderr:\n%s", err_of(p));
    cJSON *j = summary_json(p);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, "small");
    cr_expect_eq(num(j, "children_started"), 4);
    cr_expect_eq(num(j, "restarts"), 0);
    cr_expect_eq(num(j, "exits"), 0);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "gave_up")));
    cr_expect_eq(num(j, "exit_status"), 0);
    cr_expect_geq(num(j, "uptime_s"), 1.0);
    cr_expect_geq(took, 1000u);
    /* Not a terminal: the events went to standard error as lines. */
    cr_expect(strstr(err_of(p), "child 'c' started as a") != NULL, "stderr:\n%s", err_of(p));
    cJSON_Delete(j);
    proc_free(p);
}

Test(cli, run_exits_two_when_the_root_supervisor_gives_up)
{
    char path[512];
    write_doc(path, sizeof path, "doomed.json", doomed_tree);
    proc_t *p;
    RUN(p, "run", "--json", "--duration", "60", path);
    cr_expect_eq(exit_code(p), 2, "stdout:\n%s\nstderr:\n%s", out_of(p), err_of(p));
    cJSON *j = summary_json(p);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "gave_up")), "%s", out_of(p));
    cr_expect_eq(num(j, "exit_status"), 2);
    cr_expect_geq(num(j, "restarts"), 1);
    cr_expect_lt(num(j, "uptime_s"), 60.0);
    cJSON_Delete(j);
    proc_free(p);
}

Test(cli, run_of_an_invalid_document_exits_one_without_starting)
{
    char path[512];
    write_doc(path, sizeof path, "bad.json", invalid_tree);
    proc_t *p;
    RUN(p, "run", "--json", path);
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_empty(out_of(p));
    cr_expect(strstr(err_of(p), "$.supervisor.children[1].restart") != NULL, "%s", err_of(p));
    proc_free(p);
}

Test(cli, run_exits_one_with_the_error_when_the_tree_fails_to_start)
{
    /* 40 workers in an actor table of 16: a spawn fails while starting. */
    char doc[8192], path[512];
    size_t n = (size_t)snprintf(doc, sizeof doc,
                                "{ \"name\": \"crowded\", \"runtime\": { "
                                "\"max_actors\": 16, \"log_level\": \"off\" },"
                                " \"supervisor\": { \"children\": [");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n,
                              "%s{ \"id\": \"w%d\", \"behaviour\": \"demo_worker\" }",
                              i ? ", " : "", i);
    snprintf(doc + n, sizeof doc - n, "] } }\n");
    write_doc(path, sizeof path, "crowded.json", doc);
    proc_t *p;
    RUN(p, "run", "--json", "--duration", "60", path);
    cr_expect_eq(exit_code(p), 1, "stdout:\n%s\nstderr:\n%s", out_of(p), err_of(p));
    cr_expect(strstr(err_of(p), "netsys: cannot start 'crowded': child 'w") != NULL, "stderr:\n%s",
              err_of(p));
    cJSON *j = summary_json(p);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "gave_up")), "%s", out_of(p));
    cr_expect_eq(num(j, "exit_status"), 1);
    cJSON_Delete(j);
    proc_free(p);
}

static bool has_event_line(const proc_t *p)
{
    return p->out.data != NULL && strstr(p->out.data, " started as a") != NULL &&
           strchr(strstr(p->out.data, " started as a"), '\n') != NULL;
}

/* Starts `run FILE`, waits for its first event line, sends `sig`, and checks
 * that it stops cleanly with a summary naming the signal. */
static void stop_with_signal(int sig, const char *name)
{
    char path[512];
    write_doc(path, sizeof path, "small.json", valid_tree);
    proc_t *p;
    const char *const args[] = {"run", path, NULL};
    p = proc_start(args);
    bool seen = proc_read_until(p, has_event_line, t_now_ms() + CLI_WAIT_MS);
    cr_assert(seen, "no event line; stdout:\n%s\nstderr:\n%s", out_of(p), err_of(p));
    cr_assert_eq(kill(p->pid, sig), 0);
    proc_finish(p, CLI_WAIT_MS);
    cr_expect_eq(exit_code(p), 0, "stdout:\n%s\nstderr:\n%s", out_of(p), err_of(p));
    char want[64];
    snprintf(want, sizeof want, "small: stopped by %s after ", name);
    cr_expect(strstr(out_of(p), want) != NULL, "stdout:\n%s", out_of(p));
    cr_expect(strstr(out_of(p), "  exit status        0\n") != NULL, "stdout:\n%s", out_of(p));
    /* The tree was stopped in order: the last child exits first. */
    const char *c = strstr(out_of(p), "child 'c' exited: shut down");
    const char *a = strstr(out_of(p), "child 'a' exited: shut down");
    cr_expect(c != NULL && a != NULL && c < a, "stdout:\n%s", out_of(p));
    proc_free(p);
}

Test(cli, sigterm_stops_a_running_tree_cleanly)
{
    stop_with_signal(SIGTERM, "SIGTERM");
}

Test(cli, sigint_stops_a_running_tree_cleanly)
{
    stop_with_signal(SIGINT, "SIGINT");
}

Test(cli, embedded_default_document_matches_examples_demo_tree)
{
    size_t len = 0;
    char *file = read_file(NETSYS_SOURCE_DIR "/examples/demo_tree.json", &len);
    proc_t *p;
    RUN(p, "run", "--print-default");
    cr_expect_eq(exit_code(p), 0);
    cr_expect_eq(p->out.len, len);
    cr_expect(p->out.len == len && memcmp(out_of(p), file, len) == 0,
              "netsys run --print-default differs from examples/demo_tree.json:\n%s", out_of(p));
    free(file);
    proc_free(p);
}

/* The built-in tree: an echo listener behind a proxy that resets every
 * connection 3 s after it started, and a pinger. In 8 s the link is cut at
 * least once and ridden out: traffic keeps flowing, nothing vanishes, and
 * once the tree stopped nothing is left in flight. */
Test(cli, run_without_a_file_rides_out_the_demo_link_resets)
{
    proc_t *p;
    RUN(p, "run", "--duration", "8", "--json");
    cr_expect_eq(exit_code(p), 0, "stderr:\n%s", err_of(p));
    cJSON *j = summary_json(p);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, "demo");
    cr_expect_eq(num(j, "children_started"), 3, "%s", out_of(p));
    cr_expect_eq(num(j, "restarts"), 0, "%s", out_of(p));
    cr_expect_eq(num(j, "pingers"), 1, "%s", out_of(p));
    /* One message every 50 ms for 8 s. */
    cr_expect_geq(num(j, "sent"), 100, "%s", out_of(p));
    cr_expect_geq(num(j, "echoed"), 60, "%s", out_of(p));
    cr_expect_geq(num(j, "reconnects"), 1, "%s", out_of(p));
    cr_expect_eq(num(j, "lost"), 0, "%s", out_of(p));
    cr_expect_eq(num(j, "bad_echoes"), 0, "%s", out_of(p));
    cr_expect_eq(num(j, "in_flight"), 0, "%s", out_of(p));
    cr_expect_eq(num(j, "sent"), num(j, "echoed") + num(j, "failed") + num(j, "lost"), "%s",
                 out_of(p));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "gave_up")));
    cJSON_Delete(j);
    proc_free(p);
}

/* ---- proxy ----------------------------------------------------------------------- */

static bool has_first_line(const proc_t *p)
{
    return p->out.data != NULL && strchr(p->out.data, '\n') != NULL;
}

/* An echo listener in this process, the proxy in the child: a frame goes
 * through with the latency added, SIGTERM stops it, and the last line of
 * stdout is the counters as JSON. */
Test(cli, proxy_forwards_prints_its_port_and_json_counters)
{
    nsys_log_set_level(NSYS_LOG_ERROR);
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(NULL, &rt), 0);
    nsys_listener_opts_t lo;
    memset(&lo, 0, sizeof lo);
    lo.handler = &nsys_handler_echo;
    nsys_ref_t echo;
    nsys_listener_info_t info;
    cr_assert_eq(nsys_listener_start(rt, &lo, &echo, &info), 0);
    char upstream[64];
    snprintf(upstream, sizeof upstream, "127.0.0.1:%u", (unsigned)info.port);

    const char *const args[] = {"proxy", "--listen", "127.0.0.1:0", "--upstream", upstream,
                                "--latency", "50", "--json", NULL};
    proc_t *p = proc_start(args);
    cr_assert(proc_read_until(p, has_first_line, t_now_ms() + CLI_WAIT_MS),
              "no first line; stdout:\n%s\nstderr:\n%s", out_of(p), err_of(p));
    cJSON *first = cJSON_Parse(out_of(p));
    cr_assert_not_null(first, "not JSON: %s", out_of(p));
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(first, "event")->valuestring, "listening");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(first, "upstream")->valuestring, upstream);
    uint16_t port = (uint16_t)num(first, "port");
    cJSON_Delete(first);
    cr_assert_neq(port, 0);

    int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    uint64_t t0 = t_now_ms();
    cr_expect_eq(t_echo_once(fd, "through", 7, T_WAIT_MS), 0);
    cr_expect_geq(t_now_ms() - t0, 100u, "the latency was not added");
    close(fd);

    cr_assert_eq(kill(p->pid, SIGTERM), 0);
    proc_finish(p, CLI_WAIT_MS);
    cr_expect_eq(exit_code(p), 0, "stderr:\n%s", err_of(p));
    /* Exactly two lines: listening, stopped. */
    const char *last = strchr(out_of(p), '\n') + 1;
    const char *nl = strchr(last, '\n');
    cr_assert(nl != NULL && nl[1] == '\0', "stdout:\n%s", out_of(p));
    cJSON *j = cJSON_Parse(last);
    cr_assert_not_null(j, "not JSON: %s", last);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(j, "event")->valuestring, "stopped");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(j, "stop")->valuestring, "SIGTERM");
    cr_expect_eq(num(j, "accepted"), 1);
    cr_expect_eq(num(j, "bytes_up"), 11);
    cr_expect_eq(num(j, "bytes_down"), 11);
    cJSON_Delete(j);
    proc_free(p);
    nsys_runtime_free(rt);
}

Test(cli, proxy_reports_bad_options_and_bind_errors)
{
    proc_t *p;
    RUN(p, "proxy", "--listen", "127.0.0.1:0");
    cr_expect_eq(exit_code(p), 1);
    cr_expect_str_eq(err_of(p), "netsys: proxy: --upstream HOST:PORT is required\n"
                                "Try 'netsys proxy --help'.\n");
    proc_free(p);

    RUN(p, "proxy", "--upstream", "127.0.0.1:9", "--latency", "soon");
    cr_expect_eq(exit_code(p), 1);
    cr_expect(strstr(err_of(p), "--latency: expected MS or MS+-JITTER") != NULL, "%s", err_of(p));
    proc_free(p);

    RUN(p, "proxy", "--upstream", "nowhere");
    cr_expect_eq(exit_code(p), 1);
    proc_free(p);

    /* A port that is taken: the bind error with its fix, status 1. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    RUN(p, "proxy", "--listen", taken, "--upstream", "127.0.0.1:9", "--log-level", "off");
    close(fd);
    cr_expect_eq(exit_code(p), 1);
    cr_expect(strstr(err_of(p), "address already in use") != NULL, "%s", err_of(p));
    cr_expect_str_empty(out_of(p));
    proc_free(p);
}
