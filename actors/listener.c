/* actors/listener.c — the listener actor: binds, accepts, spawns and watches
 * one session actor per connection.
 *
 * Accepting. The listening socket is watched with a uv_poll_t and accepted
 * with accept4() directly, so an accepted descriptor can be handed to a
 * session on any scheduler (libuv handles cannot move between loops). Up to
 * ACCEPT_BATCH connections are taken per wake-up.
 *
 * The session table. Every session is spawned monitored; the table holds
 * its ref from spawn until its DOWN, and nothing else removes an entry.
 * Sessions are not linked: terminate, which runs however the listener ends
 * (stop, crash, kill), sends every session in the table a shutdown signal,
 * so a link would only cost each session a link record (docs/BENCHMARKS.md,
 * W6) and the listener an exit message per session. The listener traps
 * exits for its supervisor's signals.
 *
 * Accept errors. EMFILE/ENFILE/ENOBUFS/ENOMEM pause accepting (the poll is
 * stopped, or a level-triggered poll would spin on the pending connection),
 * back off, log once per episode, and resume; the episode ends at the next
 * successful accept. Not for: the connection itself (session.c). */
#include <netsys/backoff.h>
#include <netsys/log.h>
#include <netsys/net.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/internal.h"
#include "transport/internal.h"

#define ACCEPT_BATCH 64
#define MSG_RESUME_ACCEPT 430u /* private: the accept pause is over */
#define MSG_STOP 431u          /* private: nsys_listener_stop (from anyone, sessions included) */
#define ACCEPT_BACKOFF_INITIAL_MS 10u
#define ACCEPT_BACKOFF_MAX_DEFAULT_MS 1000u

typedef struct listener {
    nsys_ctx_t *ctx;
    nsys_runtime_t *rt;
    nsys_listener_opts_t o; /* name and host point at the copies below */
    char *name;
    char *host;
    int fd;
    uv_poll_t *poll; /* freed by its close callback */
    uint8_t polling; /* off while an accept error pauses us */
    uint8_t episode; /* an accept-error episode is going on */
    nsys_backoff_t backoff;
    /* the session table: open addressing, linear probing, cap a power of 2 */
    nsys_ref_t *table;
    uint32_t cap, count;
    uint64_t accepted, refused, accept_errors, accept_pauses;
    uint64_t refused_logged_ns;
    char address[NSYS_NET_PEER_MAX];
    uint16_t port;
} listener_t;

/* The start path binds before spawning and hands over the socket. */
typedef struct bound_args {
    const nsys_listener_opts_t *opts;
    int fd;
    bool has_ref; /* holds the listener's reference on handler_arg */
} bound_args_t;

/* ---- binding --------------------------------------------------------------------------- */

static const char *opt_name(const nsys_listener_opts_t *o) { return o->name ? o->name : "listener"; }
static const char *opt_host(const nsys_listener_opts_t *o) { return o->host ? o->host : "127.0.0.1"; }

/* Formats a bind failure with what most likely fixes it. */
static void bind_error(char *out, size_t outlen, const char *where, int code, uint16_t port)
{
    const char *fix;
    switch (code) {
    case UV_EADDRINUSE:
        fix = "address already in use: another process (or another listener) holds it; stop it, "
              "pick another port, or set reuseport on every listener that shares it";
        break;
    case UV_EACCES:
        fix = port < 1024 ? "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE "
                            "(setcap cap_net_bind_service=+ep PROGRAM), or use a port >= 1024"
                          : "permission denied (a security policy refuses this address)";
        break;
    case UV_EADDRNOTAVAIL:
        fix = "address not available: it is not an address of this machine (use 0.0.0.0 or :: for "
              "every interface)";
        break;
    default:
        fix = uv_strerror(code);
        break;
    }
    snprintf(out, outlen, "%s: %s", where, fix);
}

/* The socket's own address, formatted, and its port. */
static void local_addr(int fd, char address[NSYS_NET_PEER_MAX], uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    nsys__net_format_addr((struct sockaddr *)&ss, address, NSYS_NET_PEER_MAX);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Resolves, binds and listens; on error `err` says what and how to fix it. */
static int listen_socket(const nsys_listener_opts_t *o, int *out_fd, char *address,
                         uint16_t *out_port, char *err, size_t errlen)
{
    const char *host = opt_host(o);
    char where[NSYS_NET_PEER_MAX + 16];
    snprintf(where, sizeof where, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)o->port);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "%s: cannot resolve the host: %s", where, gai_strerror(g));
        return g == EAI_NONAME ? UV_EAI_NONAME : UV_EAI_FAIL;
    }
    int rc = UV_EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        if ((!o->no_reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
            (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
            listen(fd, o->backlog > 0 ? o->backlog : NSYS_LISTENER_BACKLOG_DEFAULT) != 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        local_addr(fd, address, out_port);
        *out_fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    bind_error(err, errlen, where, rc, o->port);
    return rc;
}

/* ---- the session table --------------------------------------------------------------------- */

static uint32_t slot_of(nsys_ref_t r, uint32_t cap)
{
    uint64_t h = r * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) & (cap - 1);
}

/* Makes room for one more entry (kept under 3/4 full). Called before the
 * session is spawned, so a session never exists without its entry. */
static int table_reserve(listener_t *l)
{
    if ((l->count + 1) * 4 > l->cap * 3) {
        uint32_t cap = l->cap ? l->cap * 2 : 64;
        nsys_ref_t *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return NSYS_ENOMEM;
        for (uint32_t i = 0; i < l->cap; i++) {
            if (l->table[i] == NSYS_REF_NONE)
                continue;
            uint32_t j = slot_of(l->table[i], cap);
            while (t[j] != NSYS_REF_NONE)
                j = (j + 1) & (cap - 1);
            t[j] = l->table[i];
        }
        free(l->table);
        l->table = t;
        l->cap = cap;
    }
    return 0;
}

/* After table_reserve. */
static void table_add(listener_t *l, nsys_ref_t r)
{
    uint32_t j = slot_of(r, l->cap);
    while (l->table[j] != NSYS_REF_NONE)
        j = (j + 1) & (l->cap - 1);
    l->table[j] = r;
    l->count++;
}

static bool table_has(const listener_t *l, nsys_ref_t r)
{
    if (l->cap == 0 || r == NSYS_REF_NONE)
        return false;
    for (uint32_t j = slot_of(r, l->cap);; j = (j + 1) & (l->cap - 1)) {
        if (l->table[j] == r)
            return true;
        if (l->table[j] == NSYS_REF_NONE)
            return false;
    }
}

/* Removal with backward shift, so probes never need tombstones. */
static bool table_remove(listener_t *l, nsys_ref_t r)
{
    if (l->cap == 0 || r == NSYS_REF_NONE)
        return false;
    uint32_t mask = l->cap - 1, j = slot_of(r, l->cap);
    while (l->table[j] != r) {
        if (l->table[j] == NSYS_REF_NONE)
            return false;
        j = (j + 1) & mask;
    }
    for (uint32_t k = (j + 1) & mask; l->table[k] != NSYS_REF_NONE; k = (k + 1) & mask) {
        uint32_t home = slot_of(l->table[k], l->cap);
        /* Move k back to j if its home is not in (j, k] cyclically. */
        if (((k - home) & mask) >= ((k - j) & mask)) {
            l->table[j] = l->table[k];
            j = k;
        }
    }
    l->table[j] = NSYS_REF_NONE;
    l->count--;
    return true;
}

/* ---- events ------------------------------------------------------------------------------------ */

static void observe(listener_t *l, int code, const char *peer, const char *text)
{
    if (l->o.observer == NSYS_REF_NONE)
        return;
    nsys_net_event_t ev = {.listener = nsys_self(l->ctx), .code = code};
    snprintf(ev.peer, sizeof ev.peer, "%.*s", (int)sizeof ev.peer - 1, peer);
    snprintf(ev.message, sizeof ev.message, "%.*s", (int)sizeof ev.message - 1, text);
    nsys_send(l->rt, l->o.observer, NSYS_MSG_NET_ERROR, &ev, sizeof ev);
}


/* ---- accepting --------------------------------------------------------------------------------------- */

static void poll_cb(uv_poll_t *p, int status, int events);

static void set_polling(listener_t *l, bool on)
{
    if (on && !l->polling && uv_poll_start(l->poll, UV_READABLE, poll_cb) == 0)
        l->polling = 1;
    else if (!on && l->polling) {
        uv_poll_stop(l->poll);
        l->polling = 0;
    }
}

static void schedule_resume(listener_t *l, uint64_t delay)
{
    int rc = nsys_send_after(l->ctx, nsys_self(l->ctx), delay, MSG_RESUME_ACCEPT, NULL, 0, NULL);
    if (rc != 0)
        NSYS_LOG(NSYS_LOG_ERROR, "listener %s: cannot schedule accepting again: %s", l->o.name,
                 nsys_strerror(rc));
}

static void pause_accepting(listener_t *l, int code)
{
    l->accept_errors++;
    if (!l->episode)
        l->accept_pauses++;
    set_polling(l, false);
    uint64_t delay = nsys_backoff_next(&l->backoff);
    char text[NSYS_NET_MESSAGE_MAX * 2];
    if (code == UV_EMFILE || code == UV_ENFILE) {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        snprintf(text, sizeof text,
                 "%s: accept failed: %s (%s); pausing accepts for %llu ms. Every connection needs "
                 "a file descriptor: raise the limit with `ulimit -n` (now %llu, hard limit %llu)%s",
                 l->address, uv_strerror(code), uv_err_name(code), (unsigned long long)delay,
                 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                 code == UV_ENFILE ? " or the system's fs.file-max" : " or set max_sessions");
    } else {
        snprintf(text, sizeof text, "%s: accept failed: %s (%s); pausing accepts for %llu ms",
                 l->address, uv_strerror(code), uv_err_name(code), (unsigned long long)delay);
    }
    if (!l->episode) {
        l->episode = 1;
        NSYS_LOG(NSYS_LOG_WARN, "listener %s %s", l->o.name, text);
        observe(l, code, "", text);
    } else {
        NSYS_LOG(NSYS_LOG_DEBUG, "listener %s %s", l->o.name, text);
    }
    schedule_resume(l, delay);
}

static void refuse(listener_t *l, int fd)
{
    char peer[NSYS_NET_PEER_MAX] = "?";
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        nsys__net_format_addr((struct sockaddr *)&ss, peer, sizeof peer);
    close(fd);
    l->refused++;
    char text[NSYS_NET_MESSAGE_MAX];
    snprintf(text, sizeof text, "%s: refused: max_sessions (%u) reached", peer,
             (unsigned)l->o.max_sessions);
    uint64_t t = uv_hrtime();
    if (t - l->refused_logged_ns >= 1000000000ull) { /* at most one line a second */
        l->refused_logged_ns = t;
        NSYS_LOG(NSYS_LOG_WARN, "listener %s: %s (%llu refused so far)", l->o.name, text,
                 (unsigned long long)l->refused);
    }
    observe(l, NSYS_ETOOMANY, peer, text);
}

static void start_session(listener_t *l, int fd)
{
    nsys__session_args_t *a = table_reserve(l) == 0 ? malloc(sizeof *a) : NULL;
    if (a == NULL) {
        close(fd);
        l->accept_errors++;
        return;
    }
    *a = (nsys__session_args_t){.fd = fd, .transport = l->o.transport, .handler = l->o.handler,
                                .handler_arg = l->o.handler_arg, .owner = l->o.owner};
    if (l->o.handler_arg_retain != NULL) {
        l->o.handler_arg_retain(l->o.handler_arg);
        a->handler_arg_release = l->o.handler_arg_release;
    }
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.placement = NSYS_PLACE_ANY;
    so.args = a;
    so.args_free = nsys__session_args_free;
    so.monitor = true; /* not linked: see the top of this file */
    nsys_ref_t ref;
    int rc = nsys_spawn(l->rt, &nsys__session_behaviour, &so, &ref);
    if (rc != 0) {
        nsys__session_args_free(a);
        l->accept_errors++;
        NSYS_LOG(NSYS_LOG_WARN, "listener %s: cannot start a session: %s", l->o.name,
                 nsys_strerror(rc));
        return;
    }
    table_add(l, ref);
    l->accepted++;
}

static void accept_some(listener_t *l)
{
    for (int i = 0; i < ACCEPT_BATCH && l->polling; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN ||
                e == EHOSTUNREACH || e == ENETUNREACH || e == ENONET || e == EOPNOTSUPP)
                continue; /* that connection's problem, not ours */
            pause_accepting(l, -e);
            return;
        }
        if (l->episode) {
            l->episode = 0;
            nsys_backoff_reset(&l->backoff);
            NSYS_LOG(NSYS_LOG_INFO, "listener %s %s: accepting again", l->o.name, l->address);
        }
        if (l->o.max_sessions > 0 && l->count >= l->o.max_sessions)
            refuse(l, fd);
        else
            start_session(l, fd);
    }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    (void)events;
    listener_t *l = p->data;
    if (!nsys_io_enter(l->ctx))
        return;
    if (status < 0)
        pause_accepting(l, status);
    else
        accept_some(l);
    nsys_io_leave(l->ctx);
}

static void poll_closed(uv_handle_t *h) { free(h); }

/* ---- the actor ------------------------------------------------------------------------------------------ */

static void listener_free_copy(listener_t *l)
{
    free(l->name);
    free(l->host);
    free(l->table);
    l->name = l->host = NULL;
    l->table = NULL;
}

/* `has_ref`: the caller already took the listener's reference on
 * handler_arg (the start path); otherwise serve takes it on success. */
static int serve(nsys_ctx_t *ctx, listener_t *l, const nsys_listener_opts_t *o, int fd,
                 bool has_ref)
{
    l->ctx = ctx;
    l->rt = nsys_ctx_runtime(ctx);
    l->fd = -1;
    l->o = *o;
    l->name = strdup(opt_name(o));
    l->host = strdup(opt_host(o));
    if (l->name == NULL || l->host == NULL) {
        if (fd >= 0)
            close(fd);
        listener_free_copy(l);
        return NSYS_ENOMEM;
    }
    l->o.name = l->name;
    l->o.host = l->host;
    if (o->handler == NULL && o->owner == NSYS_REF_NONE) {
        NSYS_LOG(NSYS_LOG_ERROR, "listener %s: needs a handler or an owner", l->name);
        if (fd >= 0)
            close(fd);
        listener_free_copy(l);
        return NSYS_EINVAL;
    }
    nsys_backoff_opts_t bo = NSYS_BACKOFF_OPTS_DEFAULTS;
    bo.initial_ms = ACCEPT_BACKOFF_INITIAL_MS;
    bo.max_ms = o->accept_backoff_max_ms ? o->accept_backoff_max_ms : ACCEPT_BACKOFF_MAX_DEFAULT_MS;
    if (bo.max_ms < bo.initial_ms)
        bo.initial_ms = bo.max_ms;
    nsys_backoff_init(&l->backoff, &bo, NULL);

    int rc = 0;
    if (fd < 0) {
        char err[256];
        rc = listen_socket(o, &fd, l->address, &l->port, err, sizeof err);
        if (rc != 0) {
            NSYS_LOG(NSYS_LOG_ERROR, "listener %s: cannot listen on %s", l->name, err);
            nsys__net_set_error("%s", err);
            listener_free_copy(l);
            return rc;
        }
    } else {
        local_addr(fd, l->address, &l->port);
    }
    l->poll = malloc(sizeof *l->poll);
    if (l->poll == NULL || (rc = uv_poll_init(nsys_ctx_loop(ctx), l->poll, fd)) != 0) {
        free(l->poll);
        l->poll = NULL;
        close(fd);
        listener_free_copy(l);
        return rc != 0 ? rc : NSYS_ENOMEM;
    }
    l->fd = fd;
    l->poll->data = l;
    if (!has_ref && l->o.handler_arg_retain != NULL)
        l->o.handler_arg_retain(l->o.handler_arg); /* the listener's own reference */
    nsys_trap_exit(ctx, true);
    set_polling(l, true);
    NSYS_LOG(NSYS_LOG_INFO, "listener %s: listening on %s", l->name, l->address);
    return 0;
}

static int listener_init(nsys_ctx_t *ctx, void *state, void *args)
{
    if (args == NULL)
        return NSYS_EINVAL;
    return serve(ctx, state, args, -1, false);
}

static int listener_bound_init(nsys_ctx_t *ctx, void *state, void *args)
{
    bound_args_t *b = args;
    int rc = serve(ctx, state, b->opts, b->fd, b->has_ref);
    b->fd = -1; /* served, or closed by serve on failure */
    if (rc == 0)
        b->has_ref = false; /* the listener holds it now */
    return rc;
}

static void info_fill(const listener_t *l, nsys_listener_info_t *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->address, sizeof info->address, "%s", l->address);
    info->port = l->port;
    info->sessions = l->count;
    info->accepted = l->accepted;
    info->refused = l->refused;
    info->accept_errors = l->accept_errors;
    info->accept_pauses = l->accept_pauses;
    info->accepting = l->polling != 0;
}

static int listener_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    listener_t *l = state;
    switch (msg->type) {
    case NSYS_MSG_DOWN: {
        const nsys_down_t *d = msg->data;
        table_remove(l, d->ref);
        return 0;
    }
    case NSYS_MSG_EXIT: {
        const nsys_exit_t *e = msg->data;
        if (table_has(l, e->from))
            return 0; /* a session's own exit signal (nsys_exit_signal) never stops us */
        /* From the parent (a supervisor stopping us) or anyone else linked. */
        nsys_exit(ctx, e->reason != NSYS_REASON_NORMAL ? e->reason : NSYS_REASON_SHUTDOWN);
        return 0;
    }
    case MSG_RESUME_ACCEPT:
        set_polling(l, true);
        if (!l->polling) /* libuv refused: try again later rather than go deaf */
            schedule_resume(l, nsys_backoff_next(&l->backoff));
        return 0;
    case MSG_STOP:
        nsys_exit(ctx, NSYS_REASON_SHUTDOWN);
        return 0;
    case NSYS_MSG_NET_LISTENER_INFO: {
        nsys_listener_info_t info;
        info_fill(l, &info);
        nsys_send(l->rt, msg->from, NSYS_MSG_NET_LISTENER_INFO, &info, sizeof info);
        return 0;
    }
    default:
        return 0;
    }
}

static void listener_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    (void)ctx;
    listener_t *l = state;
    (void)reason;
    /* The one place sessions are told to go (they are not linked); a
     * shutdown, since a normal exit signal would not stop them. */
    for (uint32_t i = 0; i < l->cap; i++)
        if (l->table[i] != NSYS_REF_NONE)
            nsys_exit_signal(l->rt, l->table[i], NSYS_REASON_SHUTDOWN);
    if (l->poll != NULL) {
        uv_close((uv_handle_t *)l->poll, poll_closed);
        l->poll = NULL;
    }
    if (l->fd >= 0)
        close(l->fd);
    if (l->o.handler_arg_retain != NULL && l->o.handler_arg_release != NULL)
        l->o.handler_arg_release(l->o.handler_arg); /* the reference serve took */
    NSYS_LOG(NSYS_LOG_INFO, "listener %s: closed %s (%llu sessions served)", l->name, l->address,
             (unsigned long long)l->accepted);
    listener_free_copy(l);
}

const nsys_behaviour_t nsys_listener_behaviour = {
    .name = "listener",
    .state_size = sizeof(listener_t),
    .init = listener_init,
    .handle = listener_handle,
    .terminate = listener_terminate,
};

static const nsys_behaviour_t listener_bound_behaviour = {
    .name = "listener",
    .state_size = sizeof(listener_t),
    .init = listener_bound_init,
    .handle = listener_handle,
    .terminate = listener_terminate,
};

/* ---- the API ----------------------------------------------------------------------------------------------- */

/* The start path's spawn args: the options (with their strings) live here
 * until the actor's init has copied them. */
typedef struct start_args {
    bound_args_t b;
    nsys_listener_opts_t o;
    char *name;
    char *host;
} start_args_t;

static void start_args_free(void *p)
{
    start_args_t *sa = p;
    if (sa->b.fd >= 0)
        close(sa->b.fd);
    if (sa->b.has_ref && sa->o.handler_arg_release != NULL)
        sa->o.handler_arg_release(sa->o.handler_arg);
    free(sa->name);
    free(sa->host);
    free(sa);
}

int nsys_listener_start(nsys_runtime_t *rt, const nsys_listener_opts_t *opts, nsys_ref_t *out,
                        nsys_listener_info_t *info)
{
    nsys__net_set_error("%s", "");
    if (rt == NULL || opts == NULL) {
        nsys__net_set_error("nsys_listener_start: runtime and options are required");
        return NSYS_EINVAL;
    }
    if (opts->handler == NULL && opts->owner == NSYS_REF_NONE) {
        nsys__net_set_error("listener %s: needs a handler or an owner", opt_name(opts));
        return NSYS_EINVAL;
    }
    start_args_t *sa = calloc(1, sizeof *sa);
    if (sa == NULL || (sa->name = strdup(opt_name(opts))) == NULL ||
        (sa->host = strdup(opt_host(opts))) == NULL) {
        if (sa != NULL)
            free(sa->name);
        free(sa);
        nsys__net_set_error("out of memory");
        return NSYS_ENOMEM;
    }
    sa->o = *opts;
    sa->o.name = sa->name;
    sa->o.host = sa->host;
    sa->b.opts = &sa->o;
    sa->b.fd = -1;
    char err[256], address[NSYS_NET_PEER_MAX];
    uint16_t port = 0;
    int rc = listen_socket(opts, &sa->b.fd, address, &port, err, sizeof err);
    if (rc != 0) {
        NSYS_LOG(NSYS_LOG_DEBUG, "listener %s: cannot listen on %s", sa->name, err);
        nsys__net_set_error("%s", err);
        start_args_free(sa);
        return rc;
    }
    if (opts->handler_arg_retain != NULL) {
        opts->handler_arg_retain(opts->handler_arg); /* the listener's own reference */
        sa->b.has_ref = true;
    }
    nsys_spawn_opts_t so = NSYS_SPAWN_OPTS_DEFAULTS;
    so.args = sa;
    so.args_free = start_args_free;
    nsys_ref_t ref;
    rc = nsys_spawn(rt, &listener_bound_behaviour, &so, &ref);
    if (rc != 0) {
        nsys__net_set_error("listener %s: cannot start its actor: %s", opt_name(opts),
                            nsys_strerror(rc));
        start_args_free(sa);
        return rc;
    }
    if (out != NULL)
        *out = ref;
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        snprintf(info->address, sizeof info->address, "%s", address);
        info->port = port;
        info->accepting = true;
    }
    return 0;
}

int nsys_listener_info(nsys_runtime_t *rt, nsys_ref_t listener, nsys_listener_info_t *info)
{
    return nsys_call_reply(rt, listener, NSYS_MSG_NET_LISTENER_INFO, NULL, 0, info, sizeof *info);
}

/* A message, not an exit signal: the listener ignores exit signals from
 * its own sessions, and one of them may be the caller. */
int nsys_listener_stop(nsys_runtime_t *rt, nsys_ref_t listener)
{
    return nsys_send(rt, listener, MSG_STOP, NULL, 0);
}
