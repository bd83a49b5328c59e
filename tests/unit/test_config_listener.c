/* tests/unit/test_config_listener.c — the built-in "listener" behaviour kind
 * (config/net_kinds.c): it is registered before any other kind, its args
 * are validated with exact paths and messages (every key, type, range,
 * unknown keys with hints, unknown handlers, watermark order, required
 * keys), a valid document builds a child running it, and a tree started
 * from a document serves TCP: a plain blocking client gets its
 * length-prefixed frame echoed back, and the document's payload limit, idle
 * timeout and session limit are the ones enforced. A bind error fails the
 * tree's start, and bad args given at run time fail the child's init.
 *
 * JSON in the tables is written with single quotes, which the tests turn
 * into double quotes before parsing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <netsys/net.h>
#include <netsys/netsys.h>

#include "common/config_fixture.h"
#include "common/wait.h"

static void setup(void)
{
    nsys_log_set_level(NSYS_LOG_WARN); /* supervisors and listeners log at info */
}

/* One timeout for every test of this file (see common/wait.h). */
TestSuite(config_listener, .init = setup, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------- */

/* A listener child with `args` (the inside of the args object). */
#define L(args) W("{'id': 'web', 'behaviour': 'listener', 'args': {" args "}}")

/* ---- registration ----------------------------------------------------------------- */

Test(config_listener, is_registered_first_without_any_call)
{
    const char **names = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_config_kind_names(&names, &n), 0);
    cr_assert_geq(n, 1);
    cr_expect_str_eq(names[0], "listener");
    nsys_free(names);

    const nsys_config_kind_t *k = nsys_config_find_kind("listener");
    cr_assert_not_null(k);
    cr_assert_not_null(k->behaviour);
    cr_expect_not_null(k->validate);
    cr_expect_not_null(k->summary);
    /* The listener's own turn and clean-up, with an init that reads args. */
    cr_expect_eq(k->behaviour->handle, nsys_listener_behaviour.handle);
    cr_expect_eq(k->behaviour->terminate, nsys_listener_behaviour.terminate);
    cr_expect_eq(k->behaviour->state_size, nsys_listener_behaviour.state_size);
    cr_expect_neq(k->behaviour->init, nsys_listener_behaviour.init);
}

Test(config_listener, a_program_kind_cannot_take_its_name)
{
    static const nsys_config_kind_t k = {"listener", &nsys_listener_behaviour, NULL, "mine"};
    cr_expect_eq(nsys_config_register(&k), NSYS_EEXIST);
}

/* ---- valid documents ------------------------------------------------------------- */

Test(config_listener, loads_a_minimal_listener)
{
    nsys_config_t *cfg = load_ok(L("'port': 7000, 'handler': 'echo'"));
    const nsys_sup_spec_t *root = nsys_config_root(cfg);
    cr_assert_eq(root->nchildren, 1);
    cr_expect_eq(root->children[0].behaviour, nsys_config_find_kind("listener")->behaviour);
    cr_expect_not_null(root->children[0].args);
    nsys_config_free(cfg);
}

Test(config_listener, loads_every_key)
{
    nsys_config_t *cfg = load_ok(L("'host': '0.0.0.0', 'port': 0, 'backlog': 1024, "
                                   "'reuseaddr': false, 'reuseport': true, 'max_sessions': 10000, "
                                   "'handler': 'discard', "
                                   "'transport': {'codec': 'raw', 'max_payload': '64KiB', "
                                   "  'write_high': '2MiB', 'write_low': '512KiB', "
                                   "  'write_limit': '16MiB', "
                                   "  'read_high': '8MiB', 'read_low': '1MiB', "
                                   "  'idle_timeout': '30s', 'nodelay': false, 'keepalive': '1m'}, "
                                   "'accept_backoff_max': '5s'"));
    nsys_config_free(cfg);
}

Test(config_listener, accepts_the_bounds)
{
    nsys_config_t *cfg =
        load_ok(L("'port': 65535, 'backlog': 65535, 'max_sessions': 4294967295, 'handler': 'log', "
                  "'transport': {'max_payload': '4294967295B', 'write_high': '1GiB', "
                  "'write_low': '1B', 'idle_timeout': '24h', 'keepalive': '1s'}, "
                  "'accept_backoff_max': '1h'"));
    nsys_config_free(cfg);
    cfg = load_ok(L("'port': 0, 'backlog': 1, 'max_sessions': 0, 'handler': 'echo', "
                    "'transport': {'max_payload': '1B', 'read_low': '4194303B', "
                    "'keepalive': '2h', 'idle_timeout': '1ms'}, 'accept_backoff_max': '1ms'"));
    nsys_config_free(cfg);
}

/* ---- invalid args ------------------------------------------------------------------ */

Test(config_listener, rejects_a_port_out_of_range)
{
    EXPECT_ERRORS(L("'port': 70000, 'handler': 'echo'"),
                  {ARGS ".port", "expected an integer 0..65535, got 70000"});
    EXPECT_ERRORS(L("'port': -1, 'handler': 'echo'"),
                  {ARGS ".port", "expected an integer 0..65535, got -1"});
    EXPECT_ERRORS(L("'port': 80.5, 'handler': 'echo'"),
                  {ARGS ".port", "expected an integer 0..65535, got 80.5"});
    EXPECT_ERRORS(L("'port': '7000', 'handler': 'echo'"),
                  {ARGS ".port", "expected an integer 0..65535, got a string"});
}

Test(config_listener, rejects_a_missing_port)
{
    EXPECT_ERRORS(L("'handler': 'echo'"), {ARGS, "missing required key \"port\""});
}

Test(config_listener, rejects_absent_args)
{
    EXPECT_ERRORS(W("{'id': 'web', 'behaviour': 'listener'}"),
                  {ARGS, "missing required key \"port\""},
                  {ARGS, "missing required key \"handler\""});
}

Test(config_listener, rejects_an_unknown_codec)
{
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'codec': 'lenght'}"),
                  {ARGS ".transport.codec", "expected one of \"length\", \"raw\", got \"lenght\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'codec': 1}"),
                  {ARGS ".transport.codec", "expected one of \"length\", \"raw\", got a number"});
}

Test(config_listener, rejects_unknown_keys_with_a_hint)
{
    EXPECT_ERRORS(L("'prot': 7000, 'handler': 'echo'"),
                  {ARGS ".prot", "unknown key; did you mean \"port\"?"},
                  {ARGS, "missing required key \"port\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'colour': 'red'"),
                  {ARGS ".colour",
                   "unknown key; expected one of \"host\", \"port\", \"backlog\", \"reuseaddr\", "
                   "\"reuseport\", \"max_sessions\", \"handler\", \"transport\", "
                   "\"accept_backoff_max\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'NoDelay': true}"),
                  {ARGS ".transport.NoDelay", "unknown key; did you mean \"nodelay\"?"});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'tls': true}"),
                  {ARGS ".transport.tls",
                   "unknown key; expected one of \"codec\", \"max_payload\", \"write_high\", "
                   "\"write_low\", \"write_limit\", \"read_high\", \"read_low\", "
                   "\"idle_timeout\", \"nodelay\", \"keepalive\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'max session': 1"),
                  {ARGS "['max session']", "unknown key; did you mean \"max_sessions\"?"});
}

Test(config_listener, rejects_an_unknown_handler)
{
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echoo'"),
                  {ARGS ".handler", "unknown handler \"echoo\"; did you mean \"echo\"? known: "
                                    "\"echo\", \"discard\", \"log\""});
    EXPECT_ERRORS(
        L("'port': 7000, 'handler': 'http'"),
        {ARGS ".handler", "unknown handler \"http\"; known: \"echo\", \"discard\", \"log\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': ['echo']"),
                  {ARGS ".handler", "expected a handler name, got an array"});
    EXPECT_ERRORS(L("'port': 7000"), {ARGS, "missing required key \"handler\""});
}

Test(config_listener, rejects_a_write_limit_below_twice_write_high)
{
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', "
                    "'transport': {'write_high': '1MiB', 'write_limit': '1536KiB'}"),
                  {ARGS ".transport.write_limit",
                   "expected a size of at least twice \"write_high\" (2MiB), got \"1536KiB\""});
    /* Only the limit given: the default write_high (1 MiB) stands in. */
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'write_limit': '1MiB'}"),
                  {ARGS ".transport.write_limit", "expected a size of at least twice the default "
                                                  "write_high (2MiB), got \"1MiB\""});
    nsys_config_free(
        load_ok(L("'port': 0, 'handler': 'echo', 'transport': {'write_limit': '2MiB'}")));
}

Test(config_listener, rejects_low_watermarks_not_below_high)
{
    EXPECT_ERRORS(
        L("'port': 7000, 'handler': 'echo', "
          "'transport': {'write_high': '1MiB', 'write_low': '1MiB'}"),
        {ARGS ".transport.write_low", "expected a size below \"write_high\" (1MiB), got \"1MiB\""});
    EXPECT_ERRORS(
        L("'port': 7000, 'handler': 'echo', "
          "'transport': {'read_high': '64KiB', 'read_low': '1MiB'}"),
        {ARGS ".transport.read_low", "expected a size below \"read_high\" (64KiB), got \"1MiB\""});
    /* Only the low one given: the default high stands in. */
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'read_low': '4MiB'}"),
                  {ARGS ".transport.read_low",
                   "expected a size below the default read_high (4MiB), got \"4MiB\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'write_low': '2MiB'}"),
                  {ARGS ".transport.write_low",
                   "expected a size below the default write_high (1MiB), got \"2MiB\""});
}

Test(config_listener, rejects_wrong_values_with_their_paths)
{
    EXPECT_ERRORS(L("'host': '', 'port': 7000, 'backlog': 0, 'reuseaddr': 'yes', 'reuseport': 1, "
                    "'max_sessions': -1, 'handler': 'echo', 'transport': [], "
                    "'accept_backoff_max': '2h'"),
                  {ARGS ".host", "expected a host name or address of 1..255 characters, got \"\""},
                  {ARGS ".backlog", "expected an integer 1..65535, got 0"},
                  {ARGS ".reuseaddr", "expected true or false, got a string"},
                  {ARGS ".reuseport", "expected true or false, got a number"},
                  {ARGS ".max_sessions", "expected an integer 0..4294967295, got -1"},
                  {ARGS ".transport", "expected an object, got an array"},
                  {ARGS ".accept_backoff_max", "expected a duration 1ms..1h, got \"2h\""});
    EXPECT_ERRORS(L("'host': 7, 'port': 7000, 'handler': 'echo'"),
                  {ARGS ".host", "expected a string, got a number"});
}

Test(config_listener, rejects_wrong_transport_values_with_their_paths)
{
    EXPECT_ERRORS(
        L("'port': 7000, 'handler': 'echo', 'transport': {'max_payload': '4GiB', "
          "'write_high': '64KB', 'write_low': 1024, 'read_high': '2GiB', 'read_low': '0B', "
          "'idle_timeout': 30, 'nodelay': null, 'keepalive': '500ms'}"),
        {ARGS ".transport.max_payload", "expected a size 1B..4294967295B, got \"4GiB\""},
        {ARGS ".transport.write_high",
         "expected a size such as \"64KiB\" or \"1MiB\", got \"64KB\""},
        {ARGS ".transport.write_low",
         "expected a size such as \"64KiB\" or \"1MiB\", got a number"},
        {ARGS ".transport.read_high", "expected a size 1B..1GiB, got \"2GiB\""},
        {ARGS ".transport.read_low", "expected a size 1B..1GiB, got \"0B\""},
        {ARGS ".transport.idle_timeout",
         "expected a duration such as \"500ms\" or \"5s\", got a number"},
        {ARGS ".transport.nodelay", "expected true or false, got null"},
        {ARGS ".transport.keepalive", "expected a duration 1s..2h, got \"500ms\""});
    EXPECT_ERRORS(L("'port': 7000, 'handler': 'echo', 'transport': {'idle_timeout': '25h'}"),
                  {ARGS ".transport.idle_timeout", "expected a duration 1ms..24h, got \"25h\""});
}

Test(config_listener, checks_templates_too)
{
    EXPECT_ERRORS("{'supervisor': {'strategy': 'simple_one_for_one', 'template': "
                  "{'behaviour': 'listener', 'args': {'port': 70000, 'handler': 'echo'}}}}",
                  {"$.supervisor.template.args.port", "expected an integer 0..65535, got 70000"});
}

/* ---- running trees ------------------------------------------------------------------ */

/* Starts the tree of `json_sq` on a fresh runtime. */
static nsys_runtime_t *start_tree(const char *json_sq, nsys_ref_t *root, int *rc_out, char *err,
                                  size_t errlen)
{
    nsys_config_t *cfg = load_ok(json_sq);
    nsys_runtime_opts_t o = NSYS_RUNTIME_OPTS_DEFAULTS;
    o.schedulers = 2;
    nsys_runtime_t *rt = NULL;
    cr_assert_eq(nsys_runtime_new(&o, &rt), 0);
    *rc_out = nsys_supervisor_start(rt, nsys_config_root(cfg), root, err, errlen);
    nsys_config_free(cfg); /* the supervisor copied the spec */
    return rt;
}

/* The running child `id` of `sup`. */
static nsys_ref_t child_ref(nsys_runtime_t *rt, nsys_ref_t sup, const char *id)
{
    nsys_child_info_t *kids = NULL;
    size_t n = 0;
    cr_assert_eq(nsys_supervisor_which_children(rt, sup, &kids, &n), 0);
    nsys_ref_t ref = NSYS_REF_NONE;
    for (size_t i = 0; i < n; i++)
        if (strcmp(kids[i].id, id) == 0 && kids[i].running)
            ref = kids[i].ref;
    nsys_free(kids);
    cr_assert_neq(ref, NSYS_REF_NONE, "no running child '%s'", id);
    return ref;
}

/* A blocking TCP client connected to 127.0.0.1:port, every read and write
 * bounded by T_WAIT_MS. */
static int connect_client(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {.tv_sec = T_WAIT_MS / 1000, .tv_usec = 0};
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect to port %u: %s",
                 (unsigned)port, strerror(errno));
    return fd;
}

/* Reads exactly n bytes; false on EOF, error or the receive timeout. */
static bool read_exactly(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void send_frame(int fd, const char *payload)
{
    size_t n = strlen(payload);
    unsigned char frame[256];
    cr_assert_leq(n + 4, sizeof frame);
    frame[0] = (unsigned char)(n >> 24);
    frame[1] = (unsigned char)(n >> 16);
    frame[2] = (unsigned char)(n >> 8);
    frame[3] = (unsigned char)n;
    memcpy(frame + 4, payload, n);
    cr_assert_eq(send(fd, frame, n + 4, MSG_NOSIGNAL), (ssize_t)(n + 4));
}

static void expect_frame(int fd, const char *payload)
{
    size_t n = strlen(payload);
    unsigned char hdr[4];
    char body[256];
    cr_assert(read_exactly(fd, hdr, 4), "no echo header within the bound: %s", strerror(errno));
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    cr_assert_eq(len, n, "echoed length %u, sent %zu", len, n);
    cr_assert(read_exactly(fd, body, n), "no echo payload within the bound");
    cr_expect_eq(memcmp(body, payload, n), 0);
}

Test(config_listener, a_tree_from_a_document_echoes_frames)
{
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    int rc;
    nsys_runtime_t *rt =
        start_tree("{'name': 'svc', 'supervisor': {'children': [{'id': 'web', 'behaviour': "
                   "'listener', 'args': {'host': '127.0.0.1', 'port': 0, 'handler': 'echo', "
                   "'transport': {'codec': 'length', 'max_payload': '64KiB'}}}]}}",
                   &root, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "start: %s (%s)", nsys_strerror(rc), err);

    /* Port 0 asked for a free port: the listener knows which. */
    nsys_listener_info_t info;
    cr_assert_eq(nsys_listener_info(rt, child_ref(rt, root, "web"), &info), 0);
    cr_assert_neq(info.port, 0);
    cr_expect(info.accepting);

    int fd = connect_client(info.port);
    send_frame(fd, "hello");
    expect_frame(fd, "hello");
    send_frame(fd, "");
    expect_frame(fd, "");
    send_frame(fd, "second frame");
    expect_frame(fd, "second frame");
    close(fd);

    cr_assert_eq(nsys_runtime_stop(rt), 0);
    T_RUNTIME_FREE(rt);
}

/* True when the server closed the connection (EOF or reset) before the
 * receive timeout; anything it sends first is read and dropped. */
static bool closed_by_server(int fd)
{
    char buf[256];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || errno == ECONNRESET;
    }
}

/* The args reach the listener and its sessions: the payload limit, the idle
 * timeout and the session limit of the document are the ones enforced. */
Test(config_listener, transport_args_and_limits_from_the_document_apply)
{
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    int rc;
    nsys_runtime_t *rt =
        start_tree("{'supervisor': {'children': [{'id': 'web', 'behaviour': 'listener', 'args': {"
                   "'port': 0, 'handler': 'echo', 'max_sessions': 1, "
                   "'transport': {'max_payload': '16B', 'idle_timeout': '300ms'}}}]}}",
                   &root, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "start: %s (%s)", nsys_strerror(rc), err);
    nsys_ref_t web = child_ref(rt, root, "web");
    nsys_listener_info_t info;
    cr_assert_eq(nsys_listener_info(rt, web, &info), 0);

    /* 16 bytes pass, 17 close the connection. */
    int fd = connect_client(info.port);
    send_frame(fd, "sixteen bytes ok");
    expect_frame(fd, "sixteen bytes ok");
    send_frame(fd, "seventeen bytes!!");
    cr_expect(closed_by_server(fd), "a frame over max_payload did not close the connection: %s",
              strerror(errno));
    close(fd);

    /* The session is gone once its DOWN reached the listener. */
    T_WAIT(nsys_listener_info(rt, web, &info) == 0 && info.sessions == 0, T_WAIT_MS);
    cr_assert_eq(info.sessions, 0, "the first session is still in the table");

    /* One session at a time: a second connection is refused. */
    fd = connect_client(info.port);
    send_frame(fd, "first");
    expect_frame(fd, "first");
    uint64_t t0 = t_now_ms(); /* the idle clock started at about this point */
    int second = connect_client(info.port);
    cr_expect(closed_by_server(second), "a session over max_sessions was not closed");
    close(second);

    /* A silent connection is closed after idle_timeout, well within the bound. */
    cr_expect(closed_by_server(fd), "the idle session was not closed: %s", strerror(errno));
    cr_expect_geq(t_now_ms() - t0, 200, "closed before the idle timeout");
    close(fd);

    cr_assert_eq(nsys_listener_info(rt, web, &info), 0);
    cr_expect_eq(info.accepted, 2, "accepted %" PRIu64, info.accepted);
    cr_expect_eq(info.refused, 1, "refused %" PRIu64, info.refused);

    cr_assert_eq(nsys_runtime_stop(rt), 0);
    T_RUNTIME_FREE(rt);
}

Test(config_listener, a_bind_error_fails_the_start_of_the_tree)
{
    /* A plain socket holds a port (listening, so SO_REUSEADDR cannot share it). */
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(holder, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(holder, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(holder, 1), 0);
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(holder, (struct sockaddr *)&a, &alen), 0);
    unsigned port = ntohs(a.sin_port);

    char doc[512];
    snprintf(doc, sizeof doc,
             "{'supervisor': {'children': [{'id': 'web', 'behaviour': 'listener', "
             "'args': {'port': %u, 'handler': 'echo'}}]}}",
             port);
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    int rc;
    nsys_runtime_t *rt = start_tree(doc, &root, &rc, err, sizeof err);
    cr_expect_eq(rc, UV_EADDRINUSE, "start returned %s (%s)", nsys_strerror(rc), err);
    cr_expect_not_null(strstr(err, "'web'"), "the error names the child: %s", err);
    close(holder);
    cr_assert_eq(nsys_runtime_stop(rt), 0);
    T_RUNTIME_FREE(rt);
}

Test(config_listener, bad_args_given_at_run_time_fail_the_init)
{
    nsys_ref_t root = NSYS_REF_NONE;
    char err[512] = "";
    int rc;
    nsys_runtime_t *rt = start_tree("{'supervisor': {'strategy': 'simple_one_for_one', "
                                    "'template': {'behaviour': 'listener', "
                                    "'args': {'port': 0, 'handler': 'echo'}}}}",
                                    &root, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "start: %s (%s)", nsys_strerror(rc), err);

    /* Nobody validates these: the init does, and refuses them. */
    cJSON *bad = cJSON_Parse("{\"port\": 70000, \"handler\": \"echo\"}");
    cr_assert_not_null(bad);
    nsys_ref_t child = NSYS_REF_NONE;
    rc = nsys_supervisor_start_child(rt, root, bad, &child);
    cJSON_Delete(bad);
    cr_expect_eq(rc, NSYS_ECONFIG, "start_child returned %s", nsys_strerror(rc));

    /* The template's own args still work. */
    rc = nsys_supervisor_start_child(rt, root, NULL, &child);
    cr_assert_eq(rc, 0, "start_child: %s", nsys_strerror(rc));
    nsys_listener_info_t info;
    cr_assert_eq(nsys_listener_info(rt, child, &info), 0);
    int fd = connect_client(info.port);
    send_frame(fd, "again");
    expect_frame(fd, "again");
    close(fd);

    cr_assert_eq(nsys_runtime_stop(rt), 0);
    T_RUNTIME_FREE(rt);
}
