/* tools/bench/baseline/echo_server.c — netsys-baseline-echo-server: the
 * length-framed TCP echo server written by hand over raw libuv, with no netsys
 * runtime, that W4/W5 (docs/BENCHMARKS.md) measure netsys's echo server
 * against. It is the floor a netsys server pays its actors on top of.
 *
 * Wire format: each message is a 4-byte big-endian payload length, then the
 * payload (at most 1 MiB; a larger header closes the connection). Every
 * complete frame is sent back unchanged.
 *
 * One loop, one uv_tcp_t per connection, TCP_NODELAY. Reads land in a
 * reference-counted block; the complete frames of one read are contiguous in
 * it, so they are echoed with one uv_write straight out of the block (no
 * copy), and the block lives until the last write that points into it is
 * done. A partial frame at the end stays for the next read, or moves to a
 * fresh block when the current one is short of room. Reading pauses while more
 * than WRITE_QUEUE_HIGH bytes wait to be sent, so a client that does not read
 * cannot grow the server's memory without bound.
 *
 *   netsys-baseline-echo-server --port P [--host 127.0.0.1] [--duration S]
 *
 * Prints {"port":N} (the bound port; useful with --port 0) as one line on
 * stdout, then runs until SIGINT/SIGTERM or --duration seconds, closes every
 * handle and exits 0.
 *
 * Not for: production use, or anything the netsys library links.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define FRAME_HEADER 4u
#define MAX_PAYLOAD (1u << 20)
#define BLOCK_SIZE (64u * 1024u)
/* Below this much free room at the end of a block, the next read goes to a
 * fresh one: tiny reads would cost a syscall each. */
#define BLOCK_MIN_ROOM (16u * 1024u)
#define WRITE_QUEUE_HIGH (4u * 1024u * 1024u)

/* Received bytes. Owned jointly by the connection reading into it and every
 * write pointing into it; freed when the last of them lets go. */
typedef struct block {
    unsigned refs;
    size_t cap;
    char data[];
} block_t;

typedef struct conn {
    uv_tcp_t tcp; /* first: the close callback gets &tcp and frees the conn */
    struct conn *prev, *next;
    block_t *block; /* the block reads go to; one reference */
    size_t start;   /* first byte of the frame not yet complete */
    size_t len;     /* bytes received into block */
    int reading;
} conn_t;

/* One echo: owned by the write; freed in its callback (which libuv also calls,
 * with UV_ECANCELED, when the connection closes first). */
typedef struct echo_write {
    uv_write_t req;
    block_t *block;
} echo_write_t;

static struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t duration;
    int duration_armed;
    conn_t *conns;
    int stopping;
} server;

static block_t *block_new(size_t cap)
{
    block_t *b = malloc(sizeof *b + cap);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->cap = cap;
    return b;
}

static void block_release(block_t *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

static uint32_t read_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

/* ---- connections --------------------------------------------------------- */

static void conn_closed(uv_handle_t *handle)
{
    conn_t *c = (conn_t *)handle;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        server.conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    block_release(c->block);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = (conn_t *)handle;
    /* on_read leaves at least BLOCK_MIN_ROOM, or room for the whole pending
     * frame, free at the end of the block. */
    *buf = uv_buf_init(c->block->data + c->len, (unsigned)(c->block->cap - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_echo_written(uv_write_t *req, int status)
{
    echo_write_t *w = (echo_write_t *)req;
    conn_t *c = (conn_t *)req->handle;
    block_release(w->block);
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(c);
        return;
    }
    if (!c->reading && !uv_is_closing((uv_handle_t *)&c->tcp) &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= WRITE_QUEUE_HIGH / 2) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            conn_close(c);
    }
}

/* Makes sure the next read has room: keeps the block when it has enough left,
 * else moves the partial frame (if any) to a fresh block big enough for it. */
static int conn_make_room(conn_t *c)
{
    block_t *b = c->block;
    size_t tail = c->len - c->start;
    size_t need = BLOCK_MIN_ROOM;
    if (tail >= FRAME_HEADER) {
        size_t frame = FRAME_HEADER + read_be32(b->data + c->start);
        if (frame > tail && frame - tail > need)
            need = frame - tail;
    }
    if (tail == 0 && b->refs == 1) {
        c->start = c->len = 0; /* nobody else looks at it: start over in place */
        if (b->cap >= need)
            return 0;
    }
    if (b->cap - c->len >= need)
        return 0;
    size_t cap = tail + need > BLOCK_SIZE ? tail + need : BLOCK_SIZE;
    block_t *fresh = block_new(cap);
    if (fresh == NULL)
        return UV_ENOMEM;
    memcpy(fresh->data, b->data + c->start, tail);
    block_release(b);
    c->block = fresh;
    c->start = 0;
    c->len = tail;
    return 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = (conn_t *)stream;
    if (nread < 0) {
        conn_close(c); /* EOF or error alike: the client is gone */
        return;
    }
    if (nread == 0)
        return;
    c->len += (size_t)nread;

    block_t *b = c->block;
    size_t from = c->start, end = c->start;
    int oversized = 0;
    while (c->len - end >= FRAME_HEADER) {
        uint32_t payload = read_be32(b->data + end);
        if (payload > MAX_PAYLOAD) {
            oversized = 1;
            break;
        }
        if (c->len - end < FRAME_HEADER + payload)
            break;
        end += FRAME_HEADER + payload;
    }
    if (end > from) {
        echo_write_t *w = malloc(sizeof *w);
        if (w == NULL) {
            conn_close(c);
            return;
        }
        w->block = b;
        b->refs++;
        uv_buf_t out = uv_buf_init(b->data + from, (unsigned)(end - from));
        int rc = uv_write(&w->req, stream, &out, 1, on_echo_written);
        if (rc < 0) {
            block_release(b);
            free(w);
            conn_close(c);
            return;
        }
        c->start = end;
    }
    if (oversized) {
        fprintf(stderr, "netsys-baseline-echo-server: frame over %u bytes, closing\n", MAX_PAYLOAD);
        conn_close(c);
        return;
    }
    if (conn_make_room(c) < 0) {
        conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size(stream) > WRITE_QUEUE_HIGH) {
        uv_read_stop(stream);
        c->reading = 0;
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0) {
        fprintf(stderr, "netsys-baseline-echo-server: accept: %s\n", uv_strerror(status));
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->block = block_new(BLOCK_SIZE)) == NULL) {
        free(c);
        return; /* out of memory: the connection stays unaccepted */
    }
    uv_tcp_init(server.loop, &c->tcp);
    c->next = server.conns;
    if (server.conns != NULL)
        server.conns->prev = c;
    server.conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

/* ---- start and stop ------------------------------------------------------ */

static void stop_server(void)
{
    if (server.stopping)
        return;
    server.stopping = 1;
    uv_close((uv_handle_t *)&server.listener, NULL);
    uv_close((uv_handle_t *)&server.sigint, NULL);
    uv_close((uv_handle_t *)&server.sigterm, NULL);
    if (server.duration_armed)
        uv_close((uv_handle_t *)&server.duration, NULL);
    for (conn_t *c = server.conns; c != NULL; c = c->next)
        conn_close(c);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    (void)handle;
    fprintf(stderr, "netsys-baseline-echo-server: signal %d, stopping\n", signum);
    stop_server();
}

static void on_duration(uv_timer_t *timer)
{
    (void)timer;
    stop_server();
}

static void usage(FILE *f)
{
    fprintf(f, "usage: netsys-baseline-echo-server --port P [--host ADDR] [--duration S]\n"
               "  --port P      TCP port (0: any free port)\n"
               "  --host ADDR   IPv4 address to listen on (default 127.0.0.1)\n"
               "  --duration S  stop after S seconds (default: until SIGINT/SIGTERM)\n"
               "Prints {\"port\":N} on stdout once listening. Length-framed echo\n"
               "(4-byte big-endian length, payload up to 1 MiB).\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = -1;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        char *end = NULL;
        if (strcmp(a, "--port") == 0) {
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "netsys-baseline-echo-server: bad port '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--host") == 0) {
            host = argv[++i];
        } else if (strcmp(a, "--duration") == 0) {
            duration = strtod(argv[++i], &end);
            if (*end != '\0' || !(duration > 0)) {
                fprintf(stderr, "netsys-baseline-echo-server: bad duration '%s'\n", argv[i]);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (port < 0) {
        usage(stderr);
        return 2;
    }

    struct sockaddr_in addr;
    int rc = uv_ip4_addr(host, (int)port, &addr);
    if (rc < 0) {
        fprintf(stderr, "netsys-baseline-echo-server: bad host '%s': %s\n", host, uv_strerror(rc));
        return 2;
    }
    /* A client that leaves with echoes in flight must cost a write error,
     * not the process. */
    signal(SIGPIPE, SIG_IGN);
    server.loop = uv_default_loop();
    uv_tcp_init(server.loop, &server.listener);
    uv_signal_init(server.loop, &server.sigint);
    uv_signal_init(server.loop, &server.sigterm);
    rc = uv_tcp_bind(&server.listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server.listener, 1024, on_connection);
    if (rc < 0) {
        fprintf(stderr, "netsys-baseline-echo-server: listen on %s:%ld: %s\n", host, port,
                uv_strerror(rc));
        stop_server();
        uv_run(server.loop, UV_RUN_DEFAULT);
        uv_loop_close(server.loop);
        return 1;
    }
    uv_signal_start(&server.sigint, on_signal, SIGINT);
    uv_signal_start(&server.sigterm, on_signal, SIGTERM);
    if (duration > 0) {
        uv_timer_init(server.loop, &server.duration);
        server.duration_armed = 1;
        uv_timer_start(&server.duration, on_duration, (uint64_t)(duration * 1000.0), 0);
    }

    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&server.listener, (struct sockaddr *)&bound, &bound_len);
    printf("{\"port\":%d}\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);

    uv_run(server.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(server.loop);
    if (rc < 0)
        fprintf(stderr, "netsys-baseline-echo-server: loop close: %s\n", uv_strerror(rc));
    return 0;
}
