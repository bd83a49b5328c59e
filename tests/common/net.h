/* tests/common/net.h — the client side of TCP tests: blocking sockets to
 * 127.0.0.1 / ::1 with timeouts, length-prefixed frames (u32 big-endian
 * length + payload, netsys/framing.h), process facts (open descriptors and
 * sockets, the descriptor limit), and a thread-safe log of network events
 * that an owner probe (forwarding mode) or the callback facade fills for the
 * test thread.
 *
 * Every read takes a deadline and every connect a timeout; nothing here
 * blocks without a bound. Writes use MSG_NOSIGNAL, so a server that closes
 * early makes a write fail with EPIPE/ECONNRESET instead of killing the test
 * with SIGPIPE.
 *
 * Return values: 0 or a negative errno (-ETIMEDOUT when a deadline passed),
 * and T_NET_EOF (1) where the peer's orderly close is an answer. Never
 * cr_assert from the callbacks here: they run on scheduler threads.
 *
 * Not for: the server side (that is netsys), or traffic to anything but the
 * loopback addresses.
 */
#ifndef NSYS_TESTS_COMMON_NET_H
#define NSYS_TESTS_COMMON_NET_H

#include "common/probe.h"
#include "common/wait.h"

#include <netsys/net.h>
#include <netsys/netsys.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The peer closed in order (read returned 0). */
#define T_NET_EOF 1

/* ---- process facts --------------------------------------------------------- */

/* How many entries of /proc/self/fd `keep` accepts (every one when NULL;
 * the descriptor the scan itself holds is among them), or -1. */
static inline int t_count_fds_(bool (*keep)(const char *fd_name))
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && (keep == NULL || keep(e->d_name)))
            n++;
    }
    closedir(d);
    return n;
}

/* Open descriptors of this process (entries of /proc/self/fd, without the
 * one the count itself uses), or -1. */
static inline int t_open_fds(void)
{
    int n = t_count_fds_(NULL);
    return n < 0 ? -1 : n - 1;
}

static inline bool t_fd_is_socket_(const char *fd_name)
{
    char path[300], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%.255s", fd_name);
    ssize_t len = readlink(path, target, sizeof(target) - 1);
    if (len <= 0)
        return false;
    target[len] = '\0';
    return strncmp(target, "socket:", 7) == 0;
}

/* Open sockets of this process (entries of /proc/self/fd that are), or -1.
 * Unlike t_open_fds it does not count the descriptor each libuv loop keeps
 * from its first stream on (/dev/null, its reserve for EMFILE). */
static inline int t_open_sockets(void)
{
    return t_count_fds_(t_fd_is_socket_);
}

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
 * limit, or -errno. */
static inline long t_nofile_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    return (long)rl.rlim_cur;
}

/* Sets the soft RLIMIT_NOFILE; 0 or -errno. */
static inline int t_nofile_set(unsigned long soft)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    rl.rlim_cur = soft;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

/* ---- addresses ------------------------------------------------------------- */

/* Splits "127.0.0.1:40211" or "[::1]:40211" into ip and port. */
static inline bool t_parse_addr(const char *address, char *ip, size_t iplen, uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address)
        return false;
    const char *start = address, *end = colon;
    if (address[0] == '[') {
        if (colon[-1] != ']')
            return false;
        start = address + 1;
        end = colon - 1;
    }
    size_t n = (size_t)(end - start);
    if (n == 0 || n >= iplen)
        return false;
    memcpy(ip, start, n);
    ip[n] = '\0';
    char *stop = NULL;
    unsigned long p = strtoul(colon + 1, &stop, 10);
    if (stop == colon + 1 || *stop != '\0' || p > 65535)
        return false;
    *port = (uint16_t)p;
    return true;
}

static inline bool t_fill_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                                   socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof(*a4);
        return true;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return true;
    }
    return false;
}

/* The local port of a connected socket (0 on error). */
static inline uint16_t t_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* True if this host can bind a TCP socket to ::1. */
static inline bool t_have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* ---- sockets ----------------------------------------------------------------- */

/* SO_RCVTIMEO and SO_SNDTIMEO, so a blocking call on fd cannot hang. */
static inline int t_sock_timeouts(int fd, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -errno;
    return 0;
}

static inline int t_set_nonblocking(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) == 0 ? 0 : -errno;
}

typedef struct t_connect_opts {
    int rcvbuf;   /* > 0: SO_RCVBUF before connecting (a small window) */
    bool nodelay; /* TCP_NODELAY */
} t_connect_opts_t;

/* Connects a blocking TCP socket to ip:port within timeout_ms and gives it
 * SO_RCVTIMEO/SO_SNDTIMEO of T_WAIT_MS. Returns the descriptor, or -errno
 * (-ETIMEDOUT if the connect did not finish in time). */
static inline int t_tcp_connect_ex(const char *ip, uint16_t port, uint64_t timeout_ms,
                                   const t_connect_opts_t *o)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!t_fill_sockaddr(ip, port, &ss, &len))
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (o != NULL && o->rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf)) != 0)
        err = -errno;
    int one = 1;
    if (err == 0 && o != NULL && o->nodelay &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        err = -errno;
    if (err == 0 && connect(fd, (struct sockaddr *)&ss, len) != 0) {
        if (errno != EINPROGRESS) {
            err = -errno;
        } else {
            struct pollfd p = {fd, POLLOUT, 0};
            int n;
            do {
                n = poll(&p, 1, (int)timeout_ms);
            } while (n < 0 && errno == EINTR);
            if (n == 0) {
                err = -ETIMEDOUT;
            } else if (n < 0) {
                err = -errno;
            } else {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                    err = -errno;
                else if (soerr != 0)
                    err = -soerr;
            }
        }
    }
    if (err == 0)
        err = t_set_nonblocking(fd, false);
    if (err == 0)
        err = t_sock_timeouts(fd, T_WAIT_MS);
    if (err != 0) {
        close(fd);
        return err;
    }
    return fd;
}

static inline int t_tcp_connect(const char *ip, uint16_t port, uint64_t timeout_ms)
{
    return t_tcp_connect_ex(ip, port, timeout_ms, NULL);
}

/* Writes all of data (blocking, bounded by SO_SNDTIMEO: -EAGAIN when it
 * expired). 0 or -errno. */
static inline int t_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Waits until fd is readable or the deadline passes; 0, -ETIMEDOUT or -errno. */
static inline int t_wait_readable(int fd, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = t_now_ms();
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        uint64_t left = deadline_ms - now;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, left > 1000000u ? 1000000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* Reads exactly n bytes before timeout_ms passes. Returns 0, T_NET_EOF if
 * the peer closed first (*got, may be NULL, says how much came), or -errno
 * (-ETIMEDOUT, -ECONNRESET, ...). */
static inline int t_read_exact(int fd, void *buf, size_t n, uint64_t timeout_ms, size_t *got)
{
    uint64_t deadline = t_now_ms() + timeout_ms;
    uint8_t *p = buf;
    size_t have = 0;
    int rc = 0;
    while (have < n) {
        rc = t_wait_readable(fd, deadline);
        if (rc != 0)
            break;
        ssize_t r = recv(fd, p + have, n - have, MSG_DONTWAIT);
        if (r == 0) {
            rc = T_NET_EOF;
            break;
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            rc = -errno;
            break;
        }
        have += (size_t)r;
    }
    if (got != NULL)
        *got = have;
    return rc;
}

static inline void t_put_u32be(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static inline uint32_t t_get_u32be(const uint8_t in[4])
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | (uint32_t)in[3];
}

/* Appends one frame (header + payload) to out, which has room for len + 4
 * bytes; returns the bytes written. */
static inline size_t t_frame_encode(uint8_t *out, const void *payload, uint32_t len)
{
    t_put_u32be(out, len);
    if (len > 0)
        memcpy(out + 4, payload, len);
    return (size_t)len + 4u;
}

/* Sends one frame with a single write when it is small. 0 or -errno. */
static inline int t_send_frame(int fd, const void *payload, uint32_t len)
{
    uint8_t small[4 + 1024];
    if (len <= 1024) {
        size_t n = t_frame_encode(small, payload, len);
        return t_write_all(fd, small, n);
    }
    uint8_t hdr[4];
    t_put_u32be(hdr, len);
    int rc = t_write_all(fd, hdr, 4);
    return rc != 0 ? rc : t_write_all(fd, payload, len);
}

/* Reads one frame into buf (cap bytes); *len gets its payload length.
 * Returns 0, T_NET_EOF, -EMSGSIZE if the payload does not fit (its header
 * was consumed), or -errno. */
static inline int t_read_frame(int fd, void *buf, size_t cap, size_t *len, uint64_t timeout_ms)
{
    uint64_t deadline = t_now_ms() + timeout_ms;
    uint8_t hdr[4];
    int rc = t_read_exact(fd, hdr, 4, timeout_ms, NULL);
    if (rc != 0)
        return rc;
    uint32_t n = t_get_u32be(hdr);
    *len = n;
    if (n > cap)
        return -EMSGSIZE;
    uint64_t now = t_now_ms();
    return t_read_exact(fd, buf, n, deadline > now ? deadline - now : 0, NULL);
}

/* Sends payload as one frame and expects the same bytes back as one frame.
 * 0 on success, -EBADMSG if different bytes came back, else as
 * t_read_frame. */
static inline int t_echo_once(int fd, const void *payload, uint32_t len, uint64_t timeout_ms)
{
    int rc = t_send_frame(fd, payload, len);
    if (rc != 0)
        return rc;
    uint8_t *back = malloc(len > 0 ? len : 1);
    if (back == NULL)
        return -ENOMEM;
    size_t got = 0;
    rc = t_read_frame(fd, back, len, &got, timeout_ms);
    if (rc == 0 && (got != len || (len > 0 && memcmp(back, payload, len) != 0)))
        rc = -EBADMSG;
    free(back);
    return rc;
}

/* Waits for the peer to close fd, discarding what it sends: 0 on EOF,
 * -ECONNRESET (or another -errno) on an abortive close, -ETIMEDOUT if it
 * was still open at the deadline. */
static inline int t_wait_closed(int fd, uint64_t timeout_ms)
{
    uint64_t deadline = t_now_ms() + timeout_ms;
    uint8_t sink[16384];
    for (;;) {
        int rc = t_wait_readable(fd, deadline);
        if (rc != 0)
            return rc;
        ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (r == 0)
            return 0;
        if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
    }
}

/* True for the ways a server may close a connection on us. */
static inline bool t_closed_by_peer(int rc)
{
    return rc == 0 || rc == T_NET_EOF || rc == -ECONNRESET || rc == -EPIPE;
}

/* ---- listener options --------------------------------------------------------- */

/* Listener options with every field at its default (net.h has no
 * *_DEFAULTS macro for them; zero means default throughout). */
static inline nsys_listener_opts_t t_listener_opts(const nsys_session_handler_t *handler)
{
    nsys_listener_opts_t o;
    memset(&o, 0, sizeof(o));
    o.name = "test.listener";
    o.host = "127.0.0.1";
    o.handler = handler;
    return o;
}

/* ---- counters ------------------------------------------------------------------- */

/* T_ASSERT_STATS(stats_fn, rt, ref, st): reads the counters of `ref` into
 * `st` with `stats_fn` (nsys_client_stats, nsys_proxy_stats, ...) and fails
 * the test if it cannot. From the test thread only. */
#define T_ASSERT_STATS(stats_fn, rt, ref, st)                                                      \
    do {                                                                                           \
        memset(&(st), 0, sizeof(st));                                                              \
        int t_stats_rc_ = stats_fn((rt), (ref), &(st));                                            \
        cr_assert_eq(t_stats_rc_, 0, #stats_fn ": %s", nsys_strerror(t_stats_rc_));                \
    } while (0)

/* ---- the network event log ----------------------------------------------------- */

/* One event, as an owner actor (forwarding mode) or a facade callback saw
 * it. Facade callbacks map onto the same types: on_connect -> OPEN,
 * on_message -> MESSAGE, on_disconnect -> CLOSED (code = reason),
 * on_error -> ERROR. */
typedef struct t_net_entry {
    uint32_t type;       /* NSYS_MSG_NET_* */
    nsys_ref_t from;     /* msg->from (owner mode), or the session (facade) */
    nsys_ref_t session;  /* event.session, or the session (facade) */
    nsys_ref_t listener; /* event.listener (owner mode) */
    int code;            /* event.code / reason / error code */
    size_t size;         /* msg->size or the message length */
    bool event_ok;       /* OPEN/CLOSED/ERROR: the payload was an nsys_net_event_t */
    char peer[NSYS_NET_PEER_MAX];
    char text[NSYS_NET_MESSAGE_MAX + 64];
    uint8_t data[256];                     /* MESSAGE: first bytes */
    int reply_rc;                          /* MESSAGE with echo: the reply's result */
    int over_rc;                           /* MESSAGE with over_len: the oversized send's result */
    char over_error[NSYS_NET_MESSAGE_MAX]; /* ... and nsys_net_last_error() right after */
    uint64_t t_ns;
} t_net_entry_t;

typedef struct t_net_log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    t_net_entry_t *v;
    size_t n, cap;
    bool oom;
    nsys_runtime_t *rt; /* for the facade and owner replies */
    bool echo;          /* send every MESSAGE back to its session */
    size_t over_len;    /* > 0: first try a send of this many bytes, record the result */
} t_net_log_t;

static inline void t_net_log_init(t_net_log_t *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    t_cond_init(&l->cv);
}

static inline void t_net_log_destroy(t_net_log_t *l)
{
    free(l->v);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    memset(l, 0, sizeof(*l));
}

static inline void t_net_log_push(t_net_log_t *l, const t_net_entry_t *e)
{
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        t_net_entry_t *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->oom = true;
            pthread_mutex_unlock(&l->mu);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static inline size_t t_net_log_count_locked(t_net_log_t *l, uint32_t type)
{
    size_t c = 0;
    for (size_t i = 0; i < l->n; i++)
        c += l->v[i].type == type;
    return c;
}

static inline size_t t_net_log_count(t_net_log_t *l, uint32_t type)
{
    pthread_mutex_lock(&l->mu);
    size_t c = t_net_log_count_locked(l, type);
    pthread_mutex_unlock(&l->mu);
    return c;
}

/* Waits until at least n events of `type` were logged; true if they were. */
static inline bool t_net_log_wait(t_net_log_t *l, uint32_t type, size_t n, uint64_t timeout_ms)
{
    struct timespec dl = t_abs_deadline(timeout_ms);
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    while (t_net_log_count_locked(l, type) < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&l->cv, &l->mu, &dl);
    bool ok = t_net_log_count_locked(l, type) >= n;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

/* Copies the k-th (0-based) event of `type` into *out; false if none. */
static inline bool t_net_log_nth(t_net_log_t *l, uint32_t type, size_t k, t_net_entry_t *out)
{
    bool found = false;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].type == type && k-- == 0) {
            *out = l->v[i];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (!found)
        memset(out, 0, sizeof(*out));
    return found;
}

/* True if an ERROR or CLOSED event's text contains `needle`; *code (may be
 * NULL) gets that event's code. */
static inline bool t_net_log_has_text(t_net_log_t *l, const char *needle, int *code)
{
    bool found = false;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && !found; i++) {
        const t_net_entry_t *e = &l->v[i];
        if ((e->type == NSYS_MSG_NET_ERROR || e->type == NSYS_MSG_NET_CLOSED) &&
            strstr(e->text, needle) != NULL) {
            found = true;
            if (code != NULL)
                *code = e->code;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

/* Texts of every ERROR and CLOSED event, joined, for failure messages. */
static inline void t_net_log_texts(t_net_log_t *l, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && used + 1 < outlen; i++) {
        const t_net_entry_t *e = &l->v[i];
        if (e->type != NSYS_MSG_NET_ERROR && e->type != NSYS_MSG_NET_CLOSED)
            continue;
        int w = snprintf(out + used, outlen - used, "%s[%s %d: \"%s\"]", used ? " " : "",
                         e->type == NSYS_MSG_NET_ERROR ? "ERROR" : "CLOSED", e->code, e->text);
        if (w < 0)
            break;
        used += (size_t)w < outlen - used ? (size_t)w : outlen - used - 1;
    }
    pthread_mutex_unlock(&l->mu);
}

static inline void t_copy_text(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        src = "(null)";
    snprintf(dst, cap, "%s", src);
}

/* The body the owner probe and the facade share for one message: optionally
 * an oversized send first, then optionally the echo. */
static inline void t_net_log_on_message(t_net_log_t *l, nsys_ref_t session, const void *data,
                                        size_t size, t_net_entry_t *e)
{
    e->type = NSYS_MSG_NET_MESSAGE;
    e->size = size;
    memcpy(e->data, data, size < sizeof(e->data) ? size : sizeof(e->data));
    if (l->over_len > 0) {
        uint8_t *big = calloc(1, l->over_len);
        e->over_rc = big != NULL ? nsys_net_send(l->rt, session, big, l->over_len) : NSYS_ENOMEM;
        t_copy_text(e->over_error, sizeof(e->over_error), nsys_net_last_error());
        free(big);
    }
    if (l->echo)
        e->reply_rc = nsys_net_send(l->rt, session, data, size);
}

/* Probe hook for forwarding mode (probe.user is the t_net_log_t). */
static inline int t_net_owner_hook(nsys_ctx_t *ctx, t_probe_t *p, nsys_msg_t *msg)
{
    (void)ctx;
    t_net_log_t *l = p->user;
    if (msg->type < NSYS_MSG_NET_OPEN || msg->type > NSYS_MSG_NET_ERROR)
        return 0;
    t_net_entry_t e;
    memset(&e, 0, sizeof(e));
    e.type = msg->type;
    e.from = msg->from;
    e.t_ns = t_now_ns();
    if (msg->type == NSYS_MSG_NET_MESSAGE) {
        e.session = msg->from;
        t_net_log_on_message(l, msg->from, msg->data, msg->size, &e);
    } else {
        e.size = msg->size;
        if (msg->size == sizeof(nsys_net_event_t)) {
            nsys_net_event_t ev;
            memcpy(&ev, msg->data, sizeof(ev));
            e.event_ok = true;
            e.session = ev.session;
            e.listener = ev.listener;
            e.code = ev.code;
            ev.peer[sizeof(ev.peer) - 1] = '\0';
            ev.message[sizeof(ev.message) - 1] = '\0';
            t_copy_text(e.peer, sizeof(e.peer), ev.peer);
            t_copy_text(e.text, sizeof(e.text), ev.message);
        }
    }
    t_net_log_push(l, &e);
    return 0;
}

/* ---- the callback facade, logging into a t_net_log_t (user_data) ---------------- */

static inline void t_facade_connect(nsys_runtime_t *rt, nsys_ref_t session, const char *peer,
                                    void *ud)
{
    (void)rt;
    t_net_entry_t e;
    memset(&e, 0, sizeof(e));
    e.type = NSYS_MSG_NET_OPEN;
    e.from = e.session = session;
    e.t_ns = t_now_ns();
    t_copy_text(e.peer, sizeof(e.peer), peer);
    t_net_log_push(ud, &e);
}

static inline void t_facade_message(nsys_runtime_t *rt, nsys_ref_t session, const uint8_t *data,
                                    size_t len, void *ud)
{
    t_net_log_t *l = ud;
    t_net_entry_t e;
    memset(&e, 0, sizeof(e));
    e.from = e.session = session;
    e.t_ns = t_now_ns();
    (void)rt;
    t_net_log_on_message(l, session, data, len, &e);
    t_net_log_push(l, &e);
}

static inline void t_facade_disconnect(nsys_runtime_t *rt, nsys_ref_t session, int reason, void *ud)
{
    (void)rt;
    t_net_entry_t e;
    memset(&e, 0, sizeof(e));
    e.type = NSYS_MSG_NET_CLOSED;
    e.from = e.session = session;
    e.code = reason;
    e.t_ns = t_now_ns();
    t_net_log_push(ud, &e);
}

static inline void t_facade_error(nsys_runtime_t *rt, nsys_ref_t session, int code,
                                  const char *message, void *ud)
{
    (void)rt;
    t_net_entry_t e;
    memset(&e, 0, sizeof(e));
    e.type = NSYS_MSG_NET_ERROR;
    e.from = e.session = session;
    e.code = code;
    e.t_ns = t_now_ns();
    t_copy_text(e.text, sizeof(e.text), message);
    t_net_log_push(ud, &e);
}

/* Server options whose four callbacks log into `l` (and echo if l->echo). */
static inline nsys_tcp_server_opts_t t_facade_opts(t_net_log_t *l)
{
    nsys_tcp_server_opts_t o;
    memset(&o, 0, sizeof(o));
    o.listen = t_listener_opts(NULL);
    o.on_connect = t_facade_connect;
    o.on_message = t_facade_message;
    o.on_disconnect = t_facade_disconnect;
    o.on_error = t_facade_error;
    o.user_data = l;
    return o;
}

#endif
