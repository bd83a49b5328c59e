/* examples/echo_server.c — a TCP echo server with the callback facade
 * (nsys_tcp_server_start): every message a client sends comes back to it.
 *
 * Its twin is examples/echo_server.json, the same server as a configuration
 * document with no C at all:
 *
 *   netsys run examples/echo_server.json
 *
 * Messages are length-prefixed by default (a 4-byte big-endian length, then
 * the payload; docs/ARCHITECTURE.md, "Framing"); with --raw every read is
 * echoed as it arrives, so `nc 127.0.0.1 7000` works as a client. The server
 * prints the address it bound (with --port 0, a free port the system chose)
 * and runs until SIGINT or SIGTERM, then stops every session in order.
 *
 * It uses only the public API.
 *
 *   netsys-echo-server [--host H] [--port P] [--raw] [--schedulers S]
 */
#include <netsys/net.h>
#include <netsys/netsys.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks count; they run on every scheduler thread at once. */
typedef struct echo_stats {
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t messages;
    atomic_uint_fast64_t bytes;
} echo_stats_t;

static void on_connect(nsys_runtime_t *rt, nsys_ref_t session, const char *peer, void *ud)
{
    echo_stats_t *stats = ud;

    (void)rt;
    atomic_fetch_add(&stats->connections, 1);
    printf("session %" PRIx64 ": %s connected\n", (uint64_t)session, peer);
}

static void on_message(nsys_runtime_t *rt, nsys_ref_t session, const uint8_t *data, size_t len,
                       void *ud)
{
    echo_stats_t *stats = ud;

    atomic_fetch_add(&stats->messages, 1);
    atomic_fetch_add(&stats->bytes, len);
    /* Inside a callback this writes directly (batched with the turn's other
     * sends). It can only fail once the session is closing. */
    int rc = nsys_net_send(rt, session, data, len);
    if (rc != 0)
        fprintf(stderr, "session %" PRIx64 ": echo failed: %s\n", (uint64_t)session,
                nsys_strerror(rc));
}

static void on_disconnect(nsys_runtime_t *rt, nsys_ref_t session, int reason, void *ud)
{
    (void)rt;
    (void)ud;
    /* 0: the client closed; NSYS_ETIMEDOUT: idle; otherwise what went wrong. */
    printf("session %" PRIx64 ": closed (%s)\n", (uint64_t)session,
           reason == 0 ? "by the client" : nsys_strerror(reason));
}

static void on_error(nsys_runtime_t *rt, nsys_ref_t session, int code, const char *message,
                     void *ud)
{
    (void)rt;
    (void)ud;
    fprintf(stderr, "session %" PRIx64 ": %s (%s)\n", (uint64_t)session, message,
            nsys_strerror(code));
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s [--host H] [--port P] [--raw] [--schedulers S]\n"
            "  --host H        address to listen on (default 127.0.0.1; 0.0.0.0: every interface)\n"
            "  --port P        TCP port (default 7000; 0: any free port)\n"
            "  --raw           no framing: echo each read as it arrives\n"
            "  --schedulers S  scheduler threads (default 0: one per CPU)\n",
            argv0);
}

/* Parses a decimal integer in [min, max]; 0 on success. */
static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint64_t port = 7000, schedulers = 0;
    bool raw = false;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(opt, "--raw") == 0) {
            raw = true;
        } else if (strcmp(opt, "--host") == 0 && arg != NULL) {
            host = arg;
            i++;
        } else if (strcmp(opt, "--port") == 0 && parse_u64(arg, 0, 65535, &port) == 0) {
            i++;
        } else if (strcmp(opt, "--schedulers") == 0 && parse_u64(arg, 0, 1024, &schedulers) == 0) {
            i++;
        } else {
            fprintf(stderr, "%s: bad or incomplete option '%s'\n", argv[0], opt);
            usage(stderr, argv[0]);
            return 2;
        }
    }

    nsys_runtime_opts_t ropts = NSYS_RUNTIME_OPTS_DEFAULTS;
    ropts.schedulers = (unsigned)schedulers;
    nsys_runtime_t *rt = NULL;
    int rc = nsys_runtime_new(&ropts, &rt);
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_new: %s\n", nsys_strerror(rc));
        return 1;
    }

    echo_stats_t stats = {0}; /* outlives the server: main returns last */
    nsys_tcp_server_opts_t opts = {
        .listen =
            {
                .name = "echo",
                .host = host,
                .port = (uint16_t)port,
                .transport = NSYS_TRANSPORT_OPTS_DEFAULTS,
            },
        .on_connect = on_connect,
        .on_message = on_message,
        .on_disconnect = on_disconnect,
        .on_error = on_error,
        .user_data = &stats,
    };
    opts.listen.transport.codec = raw ? NSYS_CODEC_RAW : NSYS_CODEC_LENGTH;

    nsys_ref_t listener = NSYS_REF_NONE;
    nsys_listener_info_t info;
    rc = nsys_tcp_server_start(rt, &opts, &listener, &info);
    if (rc != 0) {
        /* The detail says what is wrong and how to fix it ("address already
         * in use: ... pick another port ..."). */
        fprintf(stderr, "cannot listen: %s\n", nsys_net_last_error());
        nsys_runtime_free(rt);
        return 1;
    }
    printf("echo server listening on %s (%s framing); Ctrl-C stops it\n", info.address,
           raw ? "no" : "length-prefixed");
    fflush(stdout);

    nsys_wake_t why = NSYS_WAKE_REQUEST;
    int code = 0;
    rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, 0, &why, &code);
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_wait: %s\n", nsys_strerror(rc));
        status = 1;
    } else if (why == NSYS_WAKE_SIGNAL) {
        printf("signal %d: stopping\n", code);
    }

    /* Orderly: the listener stops accepting and closes its sessions first. */
    rc = nsys_runtime_stop(rt);
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_stop: %s\n", nsys_strerror(rc));
        status = status ? status : 1;
    }
    printf("%" PRIuFAST64 " connections, %" PRIuFAST64 " messages, %" PRIuFAST64 " bytes echoed\n",
           atomic_load(&stats.connections), atomic_load(&stats.messages),
           atomic_load(&stats.bytes));
    nsys_runtime_free(rt);
    return status;
}
