/* tools/bench/bench_idle_client.c — `netsys-bench idle-client`: the client
 * half of W6 (memory per idle session). Opens C TCP connections to a server,
 * sends nothing, holds them until the server has closed every one of them (it
 * exited, or shut its sessions down) or --hold-s seconds passed, then closes
 * what is left and prints one JSON line.
 *
 * Plain sockets and poll(2), no libuv and no netsys: the client must cost the
 * server nothing but the connections. Connects go out in batches of
 * non-blocking connect() + poll(), so the server's accept backlog is not
 * flooded. The soft RLIMIT_NOFILE is raised to the hard limit first.
 *
 * Not for: measuring anything on the client side; the figure is the
 * server's (echo-server --expect-conns).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NOT_GIVEN UINT64_MAX
#define MAX_CONNS 1000000u
#define FD_HEADROOM 32u
#define POLL_SLICE_MS 1000

static const char cmd_name[] = "idle-client";

typedef struct idle {
    struct pollfd *fds; /* [conns]; fd -1 once closed */
    uint64_t conns, batch;
    uint64_t connected, closed_by_peer, bytes_received;
    _Atomic uint64_t progress;
    char error[256];
} idle_t;

static int remaining_ms(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > POLL_SLICE_MS ? POLL_SLICE_MS : (int)ms;
}

/* Opens fds[from, to) and waits until each connect finished. 0, or -1 with
 * idle->error set (the failed ones are closed, the others stay open). */
static int connect_batch(idle_t *s, const struct sockaddr_in *addr, uint64_t from, uint64_t to,
                         uint64_t deadline_ns)
{
    uint64_t pending = 0;
    for (uint64_t i = from; i < to; i++) {
        struct pollfd *p = &s->fds[i];
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        p->events = POLLOUT;
        p->revents = 0;
        if (p->fd < 0) {
            snprintf(s->error, sizeof s->error, "socket (connection %llu): %s",
                     (unsigned long long)i, strerror(errno));
            return -1;
        }
        if (connect(p->fd, (const struct sockaddr *)addr, sizeof *addr) == 0) {
            p->events = POLLIN;
            s->connected++;
        } else if (errno == EINPROGRESS) {
            pending++;
        } else {
            snprintf(s->error, sizeof s->error, "connect (connection %llu): %s",
                     (unsigned long long)i, strerror(errno));
            close(p->fd);
            p->fd = -1;
            return -1;
        }
    }
    while (pending > 0) {
        int ms = remaining_ms(deadline_ns);
        if (ms == 0) {
            snprintf(s->error, sizeof s->error,
                     "%llu connects still in progress at the connect deadline (%llu connected)",
                     (unsigned long long)pending, (unsigned long long)s->connected);
            return -1;
        }
        int n = poll(s->fds + from, (nfds_t)(to - from), ms);
        if (n < 0 && errno != EINTR) {
            snprintf(s->error, sizeof s->error, "poll: %s", strerror(errno));
            return -1;
        }
        for (uint64_t i = from; n > 0 && i < to; i++) {
            struct pollfd *p = &s->fds[i];
            if (p->events != POLLOUT || p->revents == 0)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
            if (err != 0) {
                snprintf(s->error, sizeof s->error, "connect (connection %llu): %s",
                         (unsigned long long)i, strerror(err));
                return -1;
            }
            p->events = POLLIN;
            p->revents = 0;
            pending--;
            s->connected++;
        }
        atomic_store_explicit(&s->progress, s->connected, memory_order_relaxed);
    }
    return 0;
}

/* Waits until the peer has closed every connection or the deadline. Returns
 * true when the peer closed them all. */
static bool hold(idle_t *s, uint64_t deadline_ns)
{
    char scratch[4096];
    uint64_t open = s->connected;
    while (s->closed_by_peer < open) {
        int ms = remaining_ms(deadline_ns);
        if (ms == 0)
            return false;
        int n = poll(s->fds, (nfds_t)s->conns, ms);
        if (n < 0 && errno != EINTR) {
            snprintf(s->error, sizeof s->error, "poll: %s", strerror(errno));
            return false;
        }
        for (uint64_t i = 0; n > 0 && i < s->conns; i++) {
            struct pollfd *p = &s->fds[i];
            if (p->fd < 0 || p->revents == 0)
                continue;
            n--;
            ssize_t got = recv(p->fd, scratch, sizeof scratch, MSG_DONTWAIT);
            if (got > 0) {
                s->bytes_received += (uint64_t)got; /* an idle server sends nothing */
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            close(p->fd); /* EOF, reset or error: the server let go */
            p->fd = -1;
            s->closed_by_peer++;
        }
    }
    return true;
}

static const char usage[] =
    "usage: netsys-bench idle-client --port P --conns C [--host H] [--hold-s S]\n"
    "                                [--batch B] [--connect-s S]\n"
    "\n"
    "W6's client: opens C TCP connections to H:P (default 127.0.0.1), B connects\n"
    "in flight at a time (default 256), sends nothing, and holds them until the\n"
    "server has closed all of them or S seconds passed (default 60), then closes\n"
    "the rest. Raises the soft RLIMIT_NOFILE to the hard limit. Prints one line:\n"
    "metric conns (connections established); ok when all C connected.\n"
    "\n"
    "Watchdog: by default connect-s + hold-s + 30 s.\n";

static int run(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint64_t port = NOT_GIVEN, conns = NOT_GIVEN, batch = 256;
    double hold_s = 60.0, connect_s = 60.0;
    bench_common_t common;
    const bench_opt_t opts[] = {
        {"host", BENCH_OPT_STRING, &host, "server IPv4 address (default 127.0.0.1)"},
        {"port", BENCH_OPT_U64, &port, "server port (required)"},
        {"conns", BENCH_OPT_U64, &conns, "connections to open (required)"},
        {"hold-s", BENCH_OPT_DOUBLE, &hold_s, "hold them at most S seconds (default 60)"},
        {"batch", BENCH_OPT_U64, &batch, "connects in flight at a time (default 256)"},
        {"connect-s", BENCH_OPT_DOUBLE, &connect_s,
         "fail if the connects take longer than S seconds (default 60)"},
        {NULL, BENCH_OPT_U64, NULL, NULL},
    };
    int prc = bench_parse_timeout(argc, argv, usage, opts, &common, 0);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (port == NOT_GIVEN || port == 0 || port > 65535 || conns == NOT_GIVEN || conns == 0 ||
        conns > MAX_CONNS) {
        bench_err(cmd_name, "--port 1..65535 and --conns 1..1000000 are required");
        return 2;
    }
    if (!(hold_s > 0) || hold_s > 3600 || !(connect_s > 0) || connect_s > 3600 || batch == 0 ||
        batch > 65536) {
        bench_err(cmd_name, "need 0 < --hold-s <= 3600, 0 < --connect-s <= 3600, "
                            "1 <= --batch <= 65536");
        return 2;
    }
    if (common.timeout_s == 0)
        bench_watchdog_start(cmd_name, connect_s + hold_s + 30.0);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        bench_err(cmd_name, "bad --host '%s' (an IPv4 address)", host);
        return 2;
    }

    static idle_t s; /* the watchdog reads s.progress until exit */
    s.conns = conns;
    s.batch = batch;
    uint64_t nofile = 0;
    if (bench_raise_nofile(&nofile) != 0) {
        snprintf(s.error, sizeof s.error, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    } else if (nofile < conns + FD_HEADROOM) {
        snprintf(s.error, sizeof s.error,
                 "RLIMIT_NOFILE allows %llu descriptors, %llu connections need %llu; raise the "
                 "hard limit (ulimit -Hn)",
                 (unsigned long long)nofile, (unsigned long long)conns,
                 (unsigned long long)(conns + FD_HEADROOM));
    } else if ((s.fds = malloc((size_t)conns * sizeof *s.fds)) == NULL) {
        snprintf(s.error, sizeof s.error, "out of memory for %llu connections",
                 (unsigned long long)conns);
    }
    bench_watchdog_progress(&s.progress, conns);

    bool all_closed = false;
    double connect_took = 0, held = 0;
    uint64_t opened = 0;
    if (s.fds != NULL) {
        for (uint64_t i = 0; i < conns; i++)
            s.fds[i].fd = -1;
        uint64_t t0 = bench_now_ns();
        uint64_t connect_deadline = t0 + (uint64_t)(connect_s * 1e9);
        int rc = 0;
        for (uint64_t from = 0; rc == 0 && from < conns; from += batch) {
            uint64_t to = from + batch < conns ? from + batch : conns;
            rc = connect_batch(&s, &addr, from, to, connect_deadline);
            opened = to;
        }
        uint64_t t1 = bench_now_ns();
        connect_took = (double)(t1 - t0) / 1e9;
        if (rc == 0) {
            bench_err(cmd_name, "%llu connections open in %.2f s; holding them (at most %g s)",
                      (unsigned long long)s.connected, connect_took, hold_s);
            all_closed = hold(&s, t1 + (uint64_t)(hold_s * 1e9));
            held = (double)(bench_now_ns() - t1) / 1e9;
        }
        for (uint64_t i = 0; i < opened; i++) {
            if (s.fds[i].fd >= 0)
                close(s.fds[i].fd);
        }
    }

    bool ok = s.error[0] == '\0' && s.connected == conns;
    bench_json_t j;
    bench_json_begin(&j, "idle_client", "conns", (double)s.connected, "1");
    bench_json_bool(&j, "ok", ok);
    if (s.error[0] != '\0') {
        bench_err(cmd_name, "%s", s.error);
        bench_json_str(&j, "error", s.error);
    }
    bench_json_u64(&j, "conns", conns);
    bench_json_u64(&j, "connected", s.connected);
    bench_json_f64(&j, "connect_s", connect_took);
    bench_json_f64(&j, "held_s", held);
    bench_json_str(&j, "end", !ok ? "failed" : all_closed ? "peer_closed" : "hold_expired");
    bench_json_u64(&j, "closed_by_peer", s.closed_by_peer);
    bench_json_u64(&j, "bytes_received", s.bytes_received);
    bench_json_u64(&j, "batch", batch);
    bench_json_str(&j, "host", host);
    bench_json_u64(&j, "port", port);
    bench_json_print(&j);
    free(s.fds);
    return ok ? 0 : 1;
}

const bench_cmd_t bench_cmd_idle_client = {
    .name = "idle-client",
    .summary = "W6 client: opens C idle TCP connections and holds them",
    .run = run,
};
