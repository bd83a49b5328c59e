/* transport/dial.c — outbound TCP connects: resolve, try every address in
 * order, one deadline for the whole dial.
 *
 * Sockets are connected with plain non-blocking connect() watched by a
 * uv_poll_t, so the result is a descriptor that any loop can adopt
 * (nsys_conn_open_fd), like an accepted one. The connect timeout is a real
 * uv_timer_t, default 30 s: a SYN that is never answered ends the dial at the
 * configured time. Not for: the connection after it is up (conn.c). */
#include <netsys/transport.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/internal.h"

struct nsys_dial {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;
    uv_poll_t *poll; /* the attempt in progress, or NULL */
    struct addrinfo *res, *next;
    int fd;
    int last_err;
    uint64_t timeout_ms;
    nsys_dial_cb cb;
    void *ud;
    uint8_t resolving;
    uint8_t timer_open;
    uint8_t over; /* finished or cancelled: no callback any more */
    char host[256];
    char where[224]; /* "host:port" for messages (host cut at 200) */
    char at[320];        /* the attempt in progress: "host:port (address)" */
    char last_text[400]; /* what the last failure was */
};

static void maybe_free(nsys_dial_t *d)
{
    if (!d->over || d->resolving || d->timer_open)
        return;
    if (d->res != NULL)
        uv_freeaddrinfo(d->res);
    free(d);
}

static void timer_closed(uv_handle_t *h)
{
    nsys_dial_t *d = h->data;
    d->timer_open = 0;
    maybe_free(d);
}

static void poll_closed(uv_handle_t *h) { free(h); }

/* Abandons the attempt in progress: its poll handle and its socket. */
static void drop_attempt(nsys_dial_t *d)
{
    if (d->poll != NULL) {
        uv_close((uv_handle_t *)d->poll, poll_closed);
        d->poll = NULL;
    }
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
}

/* Reports the outcome once and starts releasing everything. */
static void finish(nsys_dial_t *d, int status, int fd, const char *text)
{
    d->over = 1;
    uv_close((uv_handle_t *)&d->timer, timer_closed); /* stops it too */
    nsys_dial_cb cb = d->cb;
    void *ud = d->ud;
    cb(ud, status, fd, text);
    maybe_free(d);
}

static const char *explain(int err)
{
    switch (err) {
    case UV_ECONNREFUSED:
        return "connection refused (nothing listens there)";
    case UV_EHOSTUNREACH:
        return "no route to host (host unreachable)";
    case UV_ENETUNREACH:
        return "network unreachable";
    case UV_ETIMEDOUT:
        return "timed out";
    default:
        return uv_strerror(err);
    }
}

static void try_next(nsys_dial_t *d);

/* Records why the attempt at d->at failed. */
static void attempt_failed(nsys_dial_t *d, int err)
{
    d->last_err = err;
    snprintf(d->last_text, sizeof d->last_text, "%.300s: %s", d->at, explain(err));
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    (void)events;
    nsys_dial_t *d = p->data;
    /* libuv reports a socket error (POLLERR) as UV_EBADF: the socket's own
     * error says what really happened. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    err = -err;
    if (err == 0 && status < 0)
        err = status;
    if (err == 0) {
        int fd = d->fd;
        d->fd = -1; /* the callback owns it now */
        uv_close((uv_handle_t *)d->poll, poll_closed);
        d->poll = NULL;
        char peer[64];
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
            nsys__net_format_addr((struct sockaddr *)&ss, peer, sizeof peer);
        else
            snprintf(peer, sizeof peer, "%.63s", d->where);
        finish(d, 0, fd, peer);
        return;
    }
    drop_attempt(d);
    attempt_failed(d, err);
    try_next(d);
}

static void try_next(nsys_dial_t *d)
{
    while (d->next != NULL) {
        struct addrinfo *ai = d->next;
        d->next = ai->ai_next;
        /* "host:port", plus the address tried when the host was a name */
        char addr[64];
        nsys__net_format_addr(ai->ai_addr, addr, sizeof addr);
        if (strcmp(addr, d->where) == 0)
            snprintf(d->at, sizeof d->at, "%s", d->where);
        else
            snprintf(d->at, sizeof d->at, "%s (%.64s)", d->where, addr);
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            attempt_failed(d, -errno);
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            attempt_failed(d, -errno);
            close(fd);
            continue;
        }
        int rc = NSYS_ENOMEM;
        d->poll = malloc(sizeof *d->poll);
        if (d->poll == NULL || (rc = uv_poll_init(d->loop, d->poll, fd)) != 0) {
            free(d->poll);
            d->poll = NULL;
            close(fd);
            attempt_failed(d, rc);
            continue;
        }
        d->poll->data = d;
        d->fd = fd;
        rc = uv_poll_start(d->poll, UV_WRITABLE, poll_cb);
        if (rc != 0) {
            drop_attempt(d);
            attempt_failed(d, rc);
            continue;
        }
        return;
    }
    finish(d, d->last_err != 0 ? d->last_err : UV_EADDRNOTAVAIL, -1, d->last_text);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    nsys_dial_t *d = req->data;
    d->resolving = 0;
    d->res = res;
    if (d->over) {
        maybe_free(d);
        return;
    }
    if (status < 0) {
        char text[800];
        snprintf(text, sizeof text, "%s: cannot resolve %s: %s", d->where, d->host,
                 uv_strerror(status));
        finish(d, status, -1, text);
        return;
    }
    d->next = res;
    snprintf(d->last_text, sizeof d->last_text, "%s: %s", d->where, "no address to try");
    try_next(d);
}

static void timer_cb(uv_timer_t *t)
{
    nsys_dial_t *d = t->data;
    if (d->over)
        return;
    char text[800];
    if (d->resolving) {
        uv_cancel((uv_req_t *)&d->gai); /* its callback sees `over` and frees */
        snprintf(text, sizeof text, "%s: timed out after %llu ms resolving %s", d->where,
                 (unsigned long long)d->timeout_ms, d->host);
    } else {
        snprintf(text, sizeof text, "%s: connect timed out after %llu ms", d->at,
                 (unsigned long long)d->timeout_ms);
    }
    drop_attempt(d);
    finish(d, UV_ETIMEDOUT, -1, text);
}

int nsys_dial(uv_loop_t *loop, const char *host, uint16_t port, uint64_t timeout_ms,
              nsys_dial_cb cb, void *ud, nsys_dial_t **out)
{
    if (loop == NULL || host == NULL || cb == NULL || strlen(host) >= 256)
        return NSYS_EINVAL;
    nsys_dial_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NSYS_ENOMEM;
    d->loop = loop;
    d->fd = -1;
    d->cb = cb;
    d->ud = ud;
    d->timeout_ms = timeout_ms ? timeout_ms : NSYS_DIAL_TIMEOUT_DEFAULT_MS;
    snprintf(d->host, sizeof d->host, "%s", host);
    snprintf(d->where, sizeof d->where, strchr(host, ':') ? "[%.200s]:%u" : "%.200s:%u", host,
             (unsigned)port);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    d->gai.data = d;
    int rc = uv_getaddrinfo(loop, &d->gai, gai_cb, host, service, &hints);
    if (rc != 0) {
        free(d);
        return rc;
    }
    d->resolving = 1;
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->timer_open = 1;
    uv_update_time(loop);
    uv_timer_start(&d->timer, timer_cb, d->timeout_ms, 0);
    if (out != NULL)
        *out = d;
    return 0;
}

void nsys_dial_cancel(nsys_dial_t *d)
{
    if (d == NULL || d->over)
        return;
    d->over = 1;
    if (d->resolving)
        uv_cancel((uv_req_t *)&d->gai);
    drop_attempt(d);
    uv_close((uv_handle_t *)&d->timer, timer_closed);
}
