/* tests/integration/test_tcp_scale.c — many connections at once and many in
 * a row: 1,000 concurrent clients each get their own echo, and 10,000
 * connect/disconnect cycles leave the listener's session table, the live
 * actors, the open descriptors and (outside ASan, whose quarantine keeps
 * freed memory resident) the resident set where they started.
 *
 * The concurrent clients are non-blocking sockets driven by poll() on the
 * test thread; every wait has a deadline.
 */
#include "common/net.h"
#include "common/tcp_fixture.h"
#include "common/wait.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

static void setup(void)
{
    t_tcp_setup(NSYS_LOG_WARN, true);
}

TestSuite(tcp_scale, .init = setup, .fini = t_tcp_teardown, .timeout = 240);

/* ---- 1,000 concurrent clients ------------------------------------------------- */

#define NCLIENTS 1000

enum { C_CONNECTING, C_READING, C_DONE, C_FAILED };

typedef struct client {
    int fd;
    int state;
    int err;
    size_t got;
    uint8_t want[32];
    size_t want_len;
    uint8_t back[32];
} client_t;

static client_t clients[NCLIENTS];

static void client_start(client_t *c, int i, uint16_t port)
{
    memset(c, 0, sizeof(*c));
    char payload[24];
    int n = snprintf(payload, sizeof(payload), "client-%04d", i);
    c->want_len = t_frame_encode(c->want, payload, (uint32_t)n);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->state = C_FAILED;
        c->err = errno;
        return;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        c->state = C_FAILED;
        c->err = errno;
        return;
    }
    c->state = C_CONNECTING;
}

/* One step after poll said fd is ready. */
static void client_step(client_t *c, short revents)
{
    if (c->state == C_CONNECTING) {
        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0) {
            c->state = C_FAILED;
            c->err = soerr;
            return;
        }
        /* 15 bytes always fit an empty socket buffer: one send does it. */
        ssize_t n = send(c->fd, c->want, c->want_len, MSG_NOSIGNAL);
        if (n != (ssize_t)c->want_len) {
            c->state = C_FAILED;
            c->err = n < 0 ? errno : EIO;
            return;
        }
        c->state = C_READING;
        return;
    }
    if (c->state == C_READING && (revents & (POLLIN | POLLERR | POLLHUP))) {
        ssize_t n = recv(c->fd, c->back + c->got, c->want_len - c->got, MSG_DONTWAIT);
        if (n == 0) {
            c->state = C_FAILED;
            c->err = EPIPE;
        } else if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c->state = C_FAILED;
                c->err = errno;
            }
        } else {
            c->got += (size_t)n;
            if (c->got == c->want_len) {
                c->state = memcmp(c->back, c->want, c->want_len) == 0 ? C_DONE : C_FAILED;
                c->err = c->state == C_FAILED ? EBADMSG : 0;
            }
        }
    }
}

Test(tcp_scale, a_thousand_concurrent_clients_each_get_their_echo_and_then_leave_nothing)
{
    long lim = t_nofile_raise();
    cr_assert_geq(lim, 2 * NCLIENTS + 100, "RLIMIT_NOFILE hard limit too low: %ld", lim);

    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    o.backlog = 2048;
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    uint64_t base_actors = actors_alive();

    for (int i = 0; i < NCLIENTS; i++)
        client_start(&clients[i], i, info.port);

    static struct pollfd pfd[NCLIENTS];
    static int idx[NCLIENTS];
    uint64_t deadline = t_now_ms() + 2 * T_WAIT_MS;
    for (;;) {
        int n = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            client_t *c = &clients[i];
            if (c->state != C_CONNECTING && c->state != C_READING)
                continue;
            pfd[n].fd = c->fd;
            pfd[n].events = c->state == C_CONNECTING ? POLLOUT : POLLIN;
            pfd[n].revents = 0;
            idx[n++] = i;
        }
        if (n == 0 || t_now_ms() >= deadline)
            break;
        int r = poll(pfd, (nfds_t)n, 100);
        if (r < 0 && errno != EINTR)
            cr_assert_fail("poll: %s", strerror(errno));
        for (int k = 0; k < n && r > 0; k++) {
            if (pfd[k].revents != 0)
                client_step(&clients[idx[k]], pfd[k].revents);
        }
    }

    int done = 0, failed = 0, pending = 0, first_err = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        done += clients[i].state == C_DONE;
        failed += clients[i].state == C_FAILED;
        pending += clients[i].state == C_CONNECTING || clients[i].state == C_READING;
        if (clients[i].state == C_FAILED && first_err == 0)
            first_err = clients[i].err;
    }
    cr_assert_eq(done, NCLIENTS, "%d echoed, %d failed (first: %s), %d still waiting", done, failed,
                 strerror(first_err), pending);

    T_ASSERT_EVENTUALLY(info_of(l).sessions == NCLIENTS, "sessions %u while %d clients are up",
                        info_of(l).sessions, NCLIENTS);
    T_ASSERT_EVENTUALLY(actors_alive() == base_actors + NCLIENTS,
                        "actors %" PRIu64 ", want %" PRIu64, actors_alive(),
                        base_actors + NCLIENTS);

    for (int i = 0; i < NCLIENTS; i++)
        close(clients[i].fd);

    T_ASSERT_EVENTUALLY(info_of(l).sessions == 0, "%u sessions left after every client closed",
                        info_of(l).sessions);
    nsys_listener_info_t after = info_of(l);
    cr_assert_eq(after.accepted, NCLIENTS, "accepted %" PRIu64, after.accepted);
    cr_assert_eq(after.refused, 0);
    cr_assert_eq(after.accept_errors, 0);
    T_ASSERT_EVENTUALLY(actors_alive() == base_actors, "actors %" PRIu64 ", want %" PRIu64,
                        actors_alive(), base_actors);
    finish();
}

/* ---- 10,000 connect/disconnect cycles -------------------------------------------- */

#define CYCLES 10000
#define WARMUP 500
#define SYNC_EVERY 100 /* an echo round trip: keeps the accept queue short */

static void churn(uint16_t port, int n, int *sync_failures)
{
    for (int i = 0; i < n; i++) {
        int fd = t_tcp_connect("127.0.0.1", port, T_WAIT_MS);
        cr_assert_geq(fd, 0, "cycle %d: connect: %s", i, strerror(-fd));
        if (i % SYNC_EVERY == SYNC_EVERY - 1) {
            /* Connections are accepted in order: once this one answers, the
             * listener has taken every earlier one. */
            if (t_echo_once(fd, "sync", 4, T_WAIT_MS) != 0)
                (*sync_failures)++;
        }
        close(fd);
    }
}

Test(tcp_scale, ten_thousand_connect_disconnect_cycles_leave_nothing_behind)
{
    t_nofile_raise();
    nsys_listener_opts_t o = t_listener_opts(&nsys_handler_echo);
    nsys_ref_t l = NSYS_REF_NONE;
    nsys_listener_info_t info;
    memset(&info, 0, sizeof(info));
    int rc = nsys_listener_start(rt, &o, &l, &info);
    cr_assert_eq(rc, 0, "nsys_listener_start: %s (%s)", nsys_strerror(rc), nsys_net_last_error());
    uint64_t base_actors = actors_alive();

    int sync_failures = 0;
    churn(info.port, WARMUP, &sync_failures);
    T_ASSERT_EVENTUALLY(info_of(l).sessions == 0);
    T_ASSERT_EVENTUALLY(actors_alive() == base_actors);
    int base_fds = t_open_fds();
    size_t base_rss = t_rss_bytes();
    uint64_t t0 = t_now_ms();

    churn(info.port, CYCLES, &sync_failures);
    uint64_t elapsed = t_now_ms() - t0;
    cr_log_info("%d cycles in %" PRIu64 " ms", CYCLES, elapsed);
    cr_assert_eq(sync_failures, 0, "%d echo round trips failed during the churn", sync_failures);

    T_ASSERT_EVENTUALLY(info_of(l).sessions == 0, "%u sessions left", info_of(l).sessions);
    nsys_listener_info_t after = info_of(l);
    cr_assert_eq(after.accepted, WARMUP + CYCLES, "accepted %" PRIu64 ", want %d", after.accepted,
                 WARMUP + CYCLES);
    cr_assert_eq(after.accept_errors, 0);
    T_ASSERT_EVENTUALLY(actors_alive() == base_actors, "live actors %" PRIu64 ", baseline %" PRIu64,
                        actors_alive(), base_actors);
    /* Sessions close their sockets in libuv close callbacks, a little after
     * they leave the table. */
    T_ASSERT_EVENTUALLY(t_open_fds() <= base_fds, "open descriptors %d, baseline %d", t_open_fds(),
                        base_fds);
    size_t rss = t_rss_bytes();
    size_t growth = rss > base_rss ? rss - base_rss : 0;
    cr_log_info("RSS growth over %d cycles: %zu KiB", CYCLES, growth >> 10);
    /* Sanitizers keep freed memory (ASan's quarantine) and per-thread
     * histories (TSan) resident: leaks are LeakSanitizer's job there. */
    if (!T_SANITIZED) {
        cr_assert_lt(growth, 8u << 20, "RSS grew by %zu KiB over %d cycles", growth >> 10, CYCLES);
    }
    finish();
}
