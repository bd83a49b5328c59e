/* tests/integration/test_tcp_listener.c — the listener actor as
 * netsys/net.h states it: a port already taken fails with EADDRINUSE and a
 * message that says why (and reuseport lets two listeners share it);
 * max_sessions closes the extra connection at once and counts it; stop
 * shuts every session down and the listener exits; it binds "localhost" and
 * "::1"; and running out of descriptors (EMFILE) pauses accepting instead of
 * killing it, after which it recovers.
 *
 * The EMFILE test lowers RLIMIT_NOFILE, so it runs in a child process of
 * its own (forked before any runtime exists) that reports each failed step
 * with a distinct exit code; the test waits for it with a bound.
 */
#include "common/net.h"
#include "common/probe.h"
#include "common/tcp_fixture.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <signal.h>
#include <sys/wait.h>

/* Each test makes its runtime (t_tcp_new_runtime): the EMFILE test forks
 * before any exists. */
static void setup(void)
{
    t_tcp_setup(NSYS_LOG_ERROR, false); /* refusals and bind errors are logged; expected here */
}

TestSuite(tcp_listener, .init = setup, .fini = t_tcp_teardown, .timeout = 180);

static nsys_ref_t start(const nsys_listener_opts_t *o, nsys_listener_info_t *info)
{
    nsys_ref_t ref = NSYS_REF_NONE;
    memset(info, 0, sizeof(*info));
    int rc = nsys_listener_start(rt, o, &ref, info);
    cr_assert_eq(rc, 0, "nsys_listener_start(%s): %s (%s)", o->host ? o->host : "NULL",
                 nsys_strerror(rc), nsys_net_last_error());
    cr_assert_neq(ref, NSYS_REF_NONE);
    return ref;
}

static int connect_to(const char *ip, uint16_t port)
{
    int fd = t_tcp_connect(ip, port, T_WAIT_MS);
    cr_assert_geq(fd, 0, "connect to %s:%u: %s", ip, port, strerror(-fd));
    return fd;
}

/* ---- EADDRINUSE and reuseport ---------------------------------------------------- */

Test(tcp_listener, a_second_listener_on_a_taken_port_fails_with_eaddrinuse_and_says_why)
{
    t_tcp_new_runtime();
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    nsys_listener_info_t first;
    nsys_ref_t a = start(&o, &first);
    uint64_t actors = actors_alive();

    o.port = first.port;
    nsys_ref_t b = NSYS_REF_NONE;
    nsys_listener_info_t second;
    memset(&second, 0, sizeof(second));
    int rc = nsys_listener_start(rt, &o, &b, &second);
    cr_assert_eq(rc, UV_EADDRINUSE, "second bind: %d (%s), want UV_EADDRINUSE", rc,
                 nsys_errname(rc));
    cr_assert_eq(rc, -EADDRINUSE, "NSYS codes are -errno");
    cr_assert_eq(b, NSYS_REF_NONE, "a ref came back from a failed start");
    const char *err = nsys_net_last_error();
    cr_log_info("EADDRINUSE text: %s", err);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", first.port);
    cr_assert(strstr(err, addr) != NULL, "error should name %s: \"%s\"", addr, err);
    cr_assert(strstr(err, "address already in use") != NULL, "error: \"%s\"", err);
    cr_assert(strstr(err, "another process") != NULL, "error should say who holds it: \"%s\"", err);
    cr_assert_eq(actors_alive(), actors, "a failed start left an actor behind");

    /* The first listener is unharmed. */
    int fd = connect_to("127.0.0.1", first.port);
    cr_assert_eq(t_echo_once(fd, "still", 5, T_WAIT_MS), 0);
    close(fd);
    cr_assert(nsys_is_alive(rt, a));
    finish();
}

Test(tcp_listener, reuseport_lets_two_listeners_share_a_port)
{
    t_tcp_new_runtime();
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.reuseport = true;
    nsys_listener_info_t ia, ib;
    nsys_ref_t a = start(&o, &ia);
    o.port = ia.port;
    nsys_ref_t b = start(&o, &ib);
    cr_assert_eq(ib.port, ia.port);

    /* Every client is served, by one listener or the other. */
    enum { N = 32 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to("127.0.0.1", ia.port);
        cr_assert_eq(t_echo_once(fds[i], "shared", 6, T_WAIT_MS), 0, "client %d", i);
    }
    nsys_listener_info_t na = info_of(a), nb = info_of(b);
    cr_assert_eq(na.accepted + nb.accepted, N, "accepted %" PRIu64 " + %" PRIu64, na.accepted,
                 nb.accepted);
    for (int i = 0; i < N; i++)
        close(fds[i]);

    /* A listener without reuseport still cannot join them. */
    o.reuseport = false;
    nsys_ref_t c = NSYS_REF_NONE;
    int rc = nsys_listener_start(rt, &o, &c, NULL);
    cr_assert_eq(rc, UV_EADDRINUSE, "a non-reuseport bind on a shared port: %d (%s)", rc,
                 nsys_errname(rc));
    T_ASSERT_EVENTUALLY(info_of(a).sessions == 0 && info_of(b).sessions == 0);
    finish();
}

/* ---- max_sessions ---------------------------------------------------------------- */

Test(tcp_listener, max_sessions_closes_the_extra_connection_at_once_and_counts_it)
{
    t_tcp_new_runtime();
    t_tcp_spawn_owner(false);

    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.max_sessions = 2;
    o.observer = t_probe_ref(&owner);
    nsys_listener_info_t info;
    nsys_ref_t l = start(&o, &info);

    int a = connect_to("127.0.0.1", info.port);
    int b = connect_to("127.0.0.1", info.port);
    cr_assert_eq(t_echo_once(a, "a", 1, T_WAIT_MS), 0);
    cr_assert_eq(t_echo_once(b, "b", 1, T_WAIT_MS), 0);
    cr_assert_eq(info_of(l).sessions, 2);

    int c = connect_to("127.0.0.1", info.port);
    (void)t_send_frame(c, "c", 1);
    int rc = t_wait_closed(c, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET, "the third client was not closed: %d (%s)", rc,
              strerror(rc < 0 ? -rc : 0));
    close(c);
    T_ASSERT_EVENTUALLY(info_of(l).refused == 1, "refused = %" PRIu64, info_of(l).refused);
    nsys_listener_info_t now = info_of(l);
    cr_assert_eq(now.sessions, 2);
    cr_assert_eq(now.accepted, 2, "accepted counts sessions started; got %" PRIu64, now.accepted);

    /* The observer hears of the refusal as a listener-level event. */
    cr_assert(t_net_log_wait(&net_log, NSYS_MSG_NET_ERROR, 1, T_WAIT_MS),
              "no NSYS_MSG_NET_ERROR for the refused connection at the observer");
    t_net_entry_t e;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_ERROR, 0, &e));
    cr_assert(e.event_ok);
    cr_assert_eq(e.session, NSYS_REF_NONE, "a listener-level event names no session");
    cr_assert_eq(e.listener, l);
    cr_assert_neq(e.text[0], '\0', "the event has no text");

    /* The two sessions are unharmed, and a freed place is taken again. */
    cr_assert_eq(t_echo_once(a, "a2", 2, T_WAIT_MS), 0);
    close(b);
    T_ASSERT_EVENTUALLY(info_of(l).sessions == 1);
    int d = connect_to("127.0.0.1", info.port);
    cr_assert_eq(t_echo_once(d, "d", 1, T_WAIT_MS), 0, "a client after a place was freed");
    cr_assert_eq(info_of(l).refused, 1);
    close(a);
    close(d);
    T_ASSERT_EVENTUALLY(info_of(l).sessions == 0);
    finish();
}

/* ---- stop ------------------------------------------------------------------------------ */

Test(tcp_listener, stop_shuts_every_session_down_and_the_listener_exits)
{
    t_tcp_new_runtime();
    cr_assert_eq(t_probe_spawn(rt, &owner, NULL, NULL), 0);
    T_ASSERT_EVENTUALLY(atomic_load(&owner.inited) == 1);

    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    nsys_listener_info_t info;
    nsys_ref_t l = start(&o, &info);
    cr_assert_eq(t_monitor(rt, &owner, l, NULL), 0);

    enum { N = 3 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to("127.0.0.1", info.port);
        cr_assert_eq(t_echo_once(fds[i], "up", 2, T_WAIT_MS), 0);
    }
    cr_assert_eq(info_of(l).sessions, N);
    uint64_t t0 = t_now_ms();
    cr_assert_eq(nsys_listener_stop(rt, l), 0);
    for (int i = 0; i < N; i++) {
        int rc = t_wait_closed(fds[i], T_WAIT_MS);
        cr_assert(rc == 0 || rc == -ECONNRESET, "client %d not closed by stop: %d", i, rc);
        if (i == 0)
            cr_log_info("stop: the client saw %s", rc == 0 ? "EOF" : "a reset");
        close(fds[i]);
    }
    nsys_down_t down;
    cr_assert(t_probe_wait_down(&owner, 0, &down, T_WAIT_MS), "the listener never exited");
    cr_assert_eq(down.ref, l);
    cr_assert_eq(down.reason, NSYS_REASON_SHUTDOWN, "listener exit reason %d (%s)", down.reason,
                 nsys_errname(down.reason));
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, l));
    cr_log_info("stop took %" PRIu64 " ms", t_now_ms() - t0);

    nsys_listener_info_t gone;
    cr_assert_eq(nsys_listener_info(rt, l, &gone), NSYS_ENOACTOR);
    cr_assert_eq(nsys_listener_stop(rt, l), NSYS_ENOACTOR);
    /* Only the probe is left, and the port is closed. */
    T_ASSERT_EVENTUALLY(actors_alive() == 1, "live actors %" PRIu64, actors_alive());
    int fd = t_tcp_connect("127.0.0.1", info.port, T_WAIT_MS);
    if (fd >= 0)
        close(fd);
    cr_assert_eq(fd, -ECONNREFUSED, "connect after stop: %d (%s)", fd, strerror(fd < 0 ? -fd : 0));
    finish();
}

/* A session that stops its own listener on its first message: the listener
 * ignores exit signals from its sessions, so the stop must not be one. */
static int stop_own_listener(nsys_session_t *s, void *state, nsys_buf_t *msg)
{
    (void)state, (void)msg;
    return nsys_listener_stop(nsys_ctx_runtime(nsys_session_ctx(s)), nsys_session_listener(s));
}
static const nsys_session_handler_t stopper = {.name = "stopper", .on_message = stop_own_listener};

Test(tcp_listener, a_session_can_stop_its_own_listener)
{
    t_tcp_new_runtime();
    nsys_listener_opts_t o = t_listener_opts(&stopper);
    nsys_listener_info_t info;
    nsys_ref_t l = start(&o, &info);
    int fd = connect_to("127.0.0.1", info.port);
    cr_assert_eq(t_send_frame(fd, "stop", 4), 0);
    T_ASSERT_EVENTUALLY(!nsys_is_alive(rt, l), "the listener ignored a stop from its session");
    int rc = t_wait_closed(fd, T_WAIT_MS);
    cr_assert(rc == 0 || rc == -ECONNRESET, "the session outlived its listener: %d", rc);
    close(fd);
    finish();
}

/* ---- addresses ------------------------------------------------------------------------ */

Test(tcp_listener, binds_localhost)
{
    t_tcp_new_runtime();
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.host = "localhost";
    nsys_listener_info_t info;
    start(&o, &info);
    char ip[64];
    uint16_t port = 0;
    cr_assert(t_parse_addr(info.address, ip, sizeof(ip), &port), "address \"%s\"", info.address);
    cr_assert_eq(port, info.port);
    cr_assert(strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0, "localhost bound to \"%s\"",
              info.address);
    int fd = connect_to(ip, port);
    cr_assert_eq(t_echo_once(fd, "local", 5, T_WAIT_MS), 0);
    close(fd);
    finish();
}

Test(tcp_listener, binds_the_ipv6_loopback)
{
    if (!t_have_ipv6_loopback())
        cr_skip_test("no IPv6 loopback on this host");
    t_tcp_new_runtime();
    net_log.echo = true;
    nsys_tcp_server_opts_t so = t_facade_opts(&net_log);
    so.listen.host = "::1";
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_tcp_server_start(rt, &so, &l, &info);
    cr_assert_eq(rc, 0, "bind ::1: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    char want[40];
    snprintf(want, sizeof(want), "[::1]:%u", info.port);
    cr_assert_str_eq(info.address, want);

    int fd = connect_to("::1", info.port);
    uint16_t local = t_local_port(fd);
    cr_assert_eq(t_echo_once(fd, "six", 3, T_WAIT_MS), 0);
    t_net_entry_t c;
    cr_assert(t_net_log_nth(&net_log, NSYS_MSG_NET_OPEN, 0, &c));
    snprintf(want, sizeof(want), "[::1]:%u", local);
    cr_assert_str_eq(c.peer, want, "peer \"%s\"", c.peer);
    close(fd);
    T_ASSERT_EVENTUALLY(info_of(l).sessions == 0);
    finish();
}

/* ---- EMFILE, in a child process ---------------------------------------------------- */

enum emfile_step {
    EM_OK = 0,
    EM_RUNTIME = 10,
    EM_LIMIT,
    EM_LISTEN,
    EM_NO_FIRST_CLIENT,
    EM_NEVER_EXHAUSTED,
    EM_NO_ACCEPT_ERRORS,
    EM_NO_ACCEPT_PAUSES,
    EM_NEVER_PAUSED,
    EM_RECOVERY_CONNECT,
    EM_RECOVERY_ECHO,
    EM_NOT_DRAINED,
    EM_LISTENER_DIED,
    EM_LEAKS,
    EM_NO_ULIMIT_LOG,
    EM_LOGGED_TOO_OFTEN,
    EM_NO_OBSERVER_EVENT,
    EM_OBSERVER,
};

static const char *emfile_step_name(int code)
{
    switch (code) {
    case EM_RUNTIME:
        return "the child could not create its runtime";
    case EM_LIMIT:
        return "the child could not lower RLIMIT_NOFILE";
    case EM_LISTEN:
        return "the child could not start its listener";
    case EM_NO_FIRST_CLIENT:
        return "the very first client got no echo";
    case EM_NEVER_EXHAUSTED:
        return "descriptors never ran out (no client went unserved)";
    case EM_NO_ACCEPT_ERRORS:
        return "accept_errors stayed 0 while descriptors were exhausted";
    case EM_NO_ACCEPT_PAUSES:
        return "accept_pauses stayed 0 while descriptors were exhausted";
    case EM_NEVER_PAUSED:
        return "nsys_listener_info never showed accepting == false";
    case EM_RECOVERY_CONNECT:
        return "after freeing descriptors a new client could not connect";
    case EM_RECOVERY_ECHO:
        return "after freeing descriptors a new client got no echo";
    case EM_NOT_DRAINED:
        return "the session table did not drain after the clients closed";
    case EM_LISTENER_DIED:
        return "the listener died of EMFILE";
    case EM_LEAKS:
        return "the child's runtime leaked";
    case EM_NO_ULIMIT_LOG:
        return "no log line named `ulimit -n` during descriptor exhaustion";
    case EM_LOGGED_TOO_OFTEN:
        return "the exhaustion was logged more than once in one episode";
    case EM_NO_OBSERVER_EVENT:
        return "the observer got no NSYS_MSG_NET_ERROR (UV_EMFILE, no session) for the pause";
    case EM_OBSERVER:
        return "the child could not start its observer probe";
    default:
        return "unexpected exit";
    }
}

#define EM_MAX_CLIENTS 256
#define EM_SPARES 4

static nsys_listener_info_t em_info(nsys_runtime_t *r, nsys_ref_t l)
{
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    if (nsys_listener_info(r, l, &info) != 0)
        info.sessions = UINT32_MAX;
    return info;
}

static atomic_int ulimit_lines;

static void count_ulimit_lines(void *ud, const nsys_log_record_t *rec)
{
    (void)ud;
    if (strstr(rec->message, "ulimit -n") != NULL) {
        atomic_fetch_add(&ulimit_lines, 1);
        fprintf(stderr, "emfile child: logged: %s\n", rec->message);
    }
}

/* True if the observer got a listener-level UV_EMFILE event. */
static bool observer_saw_emfile(void)
{
    for (size_t k = 0; k < t_net_log_count(&net_log, NSYS_MSG_NET_ERROR); k++) {
        t_net_entry_t e;
        if (t_net_log_nth(&net_log, NSYS_MSG_NET_ERROR, k, &e) && e.event_ok &&
            e.code == UV_EMFILE && e.session == NSYS_REF_NONE)
            return true;
    }
    return false;
}

/* Runs in the child: never returns, never cr_asserts. */
static void emfile_child(void)
{
    nsys_log_set_level(NSYS_LOG_INFO);
    nsys_log_set_sink(count_ulimit_lines, NULL);
    nsys_runtime_t *r = NULL;
    if (t_runtime(2, &r) != 0)
        _exit(EM_RUNTIME);
    net_log.rt = r;
    owner.user = &net_log;
    owner.hook = t_net_owner_hook;
    if (t_probe_spawn(r, &owner, NULL, NULL) != 0)
        _exit(EM_OBSERVER);
    T_WAIT(atomic_load(&owner.inited) == 1, T_WAIT_MS);
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.observer = t_probe_ref(&owner);
    o.accept_backoff_max_ms = 200;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    if (nsys_listener_start(r, &o, &l, &info) != 0) {
        fprintf(stderr, "emfile child: listener: %s\n", nsys_net_last_error());
        _exit(EM_LISTEN);
    }
    /* Spare descriptors: when a client cannot get a socket, one is freed
     * for it, so that it is the server's accept that runs out, not us. */
    int spares[EM_SPARES];
    for (int i = 0; i < EM_SPARES; i++)
        spares[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int nspare = EM_SPARES;
    int base = t_open_fds();
    if (base < 0 || t_nofile_set((unsigned long)base + 20u) != 0)
        _exit(EM_LIMIT);

    static int fds[EM_MAX_CLIENTS];
    int n = 0, served = 0;
    bool exhausted = false, saw_paused = false;
    nsys_listener_info_t worst;
    memset(&worst, 0, sizeof(worst));
    while (n < EM_MAX_CLIENTS && !exhausted) {
        int fd = t_tcp_connect("127.0.0.1", info.port, 5000);
        if (fd == -EMFILE || fd == -ENFILE) {
            if (nspare == 0)
                break;
            close(spares[--nspare]);
            continue;
        }
        if (fd < 0) {
            fprintf(stderr, "emfile child: connect: %s\n", strerror(-fd));
            break;
        }
        fds[n++] = fd;
        int rc = t_echo_once(fd, "m", 1, 1000);
        if (rc == 0) {
            served++;
            continue;
        }
        exhausted = true;
    }
    if (served == 0)
        _exit(EM_NO_FIRST_CLIENT);
    if (!exhausted)
        _exit(EM_NEVER_EXHAUSTED);
    /* While descriptors stay exhausted the listener keeps failing and
     * pausing; watch it for a while. */
    uint64_t until = t_now_ms() + 2000;
    while (t_now_ms() < until) {
        nsys_listener_info_t i = em_info(r, l);
        if (i.sessions == UINT32_MAX)
            _exit(EM_LISTENER_DIED);
        if (!i.accepting)
            saw_paused = true;
        if (i.accept_errors > worst.accept_errors)
            worst.accept_errors = i.accept_errors;
        if (i.accept_pauses > worst.accept_pauses)
            worst.accept_pauses = i.accept_pauses;
        if (saw_paused && worst.accept_errors > 0 && worst.accept_pauses > 0)
            break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr,
            "emfile child: %d clients, %d served, accept_errors %" PRIu64 ", accept_pauses %" PRIu64
            ", paused seen %d\n",
            n, served, worst.accept_errors, worst.accept_pauses, saw_paused);

    for (int i = 0; i < n; i++)
        close(fds[i]);
    int step = EM_OK;
    if (worst.accept_errors == 0)
        step = EM_NO_ACCEPT_ERRORS;
    else if (worst.accept_pauses == 0)
        step = EM_NO_ACCEPT_PAUSES;
    else if (!saw_paused)
        step = EM_NEVER_PAUSED;
    else if (atomic_load(&ulimit_lines) == 0)
        step = EM_NO_ULIMIT_LOG;
    else if (!observer_saw_emfile())
        step = EM_NO_OBSERVER_EVENT;

    if (step == EM_OK) {
        /* Recovery: descriptors are free again; the listener resumes after
         * its backoff and serves a new client. */
        int fd = -1;
        t_poll_t p = t_poll_begin(T_WAIT_MS);
        do {
            fd = t_tcp_connect("127.0.0.1", info.port, 5000);
        } while (fd < 0 && t_poll_continue(&p));
        if (fd < 0) {
            step = EM_RECOVERY_CONNECT;
        } else {
            if (t_echo_once(fd, "back", 4, T_WAIT_MS) != 0)
                step = EM_RECOVERY_ECHO;
            close(fd);
        }
    }
    if (step == EM_OK) {
        T_WAIT(em_info(r, l).sessions == 0, T_WAIT_MS);
        if (em_info(r, l).sessions != 0)
            step = EM_NOT_DRAINED;
    }
    /* One exhaustion, one episode: one line, however many retries. */
    if (step == EM_OK && atomic_load(&ulimit_lines) != 1)
        step = EM_LOGGED_TOO_OFTEN;
    for (int i = 0; i < nspare; i++)
        close(spares[i]);
    nsys_runtime_free(r);
    nsys_log_set_sink(NULL, NULL);
    if (step == EM_OK && t_leaks() != NULL)
        step = EM_LEAKS;
    _exit(step);
}

Test(tcp_listener, running_out_of_descriptors_pauses_accepting_and_recovers)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0)
        emfile_child();

    int status = 0;
    pid_t got = 0;
    uint64_t bound = T_SANITIZED ? 150000u : 90000u;
    t_poll_t p = t_poll_begin(bound);
    do {
        got = waitpid(pid, &status, WNOHANG);
    } while (got == 0 && t_poll_continue(&p));
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        cr_assert_fail("the EMFILE child did not finish within %" PRIu64 " ms (killed)", bound);
    }
    cr_assert_eq(got, pid);
    cr_assert(WIFEXITED(status), "the EMFILE child died of signal %d",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    int code = WEXITSTATUS(status);
    cr_assert_eq(code, 0, "EMFILE child exit %d: %s", code, emfile_step_name(code));
}
