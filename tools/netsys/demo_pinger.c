/* tools/netsys/demo_pinger.c — the "pinger" demo kind: a resilient client
 * (its "client" args are a client kind's, read by nsys_config_client_args)
 * that sends sequence-numbered messages at a steady rate and checks every
 * echo, so `netsys run` can show a flaky link being ridden out.
 *
 * Wire: each message is `size` bytes; bytes 0..7 hold the sequence number
 * (little-endian u64, from 1), every other byte is the number's low byte.
 *
 * Accounting. Every message the pinger sends ends as exactly one of:
 *   echoed  its echo came back, intact and in order;
 *   failed  reported: the client refused it (outbox full, SEND_FAILED
 *           event), or it was in flight on a link that died (the client
 *           wrote it, the proxy reset the link before the echo came back),
 *           or the pinger stopped with it outstanding;
 *   lost    it vanished silently: a later message's echo came back on the
 *           same link (no disconnect since it was sent) and its did not.
 * TCP keeps order on one link, so `lost` stays 0 unless something is broken.
 * An echo of a message already settled is a `duplicate`: the client sends
 * again what it cannot know the kernel took before a link died (part of a
 * write buffer), so the server may echo it twice; only across a lost link.
 * An echo that is not what was sent counts in `bad_echoes`. Messages not
 * settled yet are in flight, a gauge of its own (sent, less settled), so
 * sent = echoed + failed + lost + in flight is a check, not a definition.
 *
 * The pinger spawns its client linked: a client that gives up (max_attempts,
 * stop_on) takes the pinger with it and the supervisor restarts both; a
 * stopped pinger stops its client.
 *
 * Totals over every pinger of the process are in cli_traffic (cli.h), read
 * by `netsys run`'s status line and summary.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define PINGER_INTERVAL_DEFAULT_MS 50u
#define PINGER_SIZE_DEFAULT 64u
#define PINGER_SIZE_MIN 8u /* the sequence number */
#define PINGER_SIZE_MAX 65536u
/* Messages outstanding at most (a power of 2): more than the client's
 * default outbox (1024) plus what is in flight. While this many are
 * unsettled the pinger skips its ticks instead of sending. */
#define PINGER_WINDOW 8192u
#define PINGER_FAILED_BIT 0x80000000u /* in a window slot: SEND_FAILED reported */

enum { MSG_PINGER_TICK = NSYS_MSG_USER + 20 };

cli_traffic_t cli_traffic;

static void count(cli_traffic_counter_t c, uint64_t n)
{
    atomic_fetch_add_explicit(&cli_traffic.n[c], n, memory_order_relaxed);
}

/* Settles n messages: counted under c, out of the in-flight gauge. */
static void settled(cli_traffic_counter_t c, uint64_t n)
{
    if (n == 0)
        return;
    count(c, n);
    atomic_fetch_sub_explicit(&cli_traffic.n[CLI_TRAFFIC_IN_FLIGHT], n, memory_order_relaxed);
}

typedef struct pinger {
    nsys_ref_t client;
    uint64_t interval_ms;
    size_t size;
    uint64_t next_seq; /* the next to send; from 1 */
    uint64_t lo;       /* the lowest not yet settled */
    uint32_t epoch;    /* links lost so far */
    bool connected;    /* a link came up at least once */
    uint32_t *window;  /* per unsettled seq (seq % PINGER_WINDOW): epoch at send, | FAILED_BIT */
    uint8_t *payload;  /* scratch for the next message */
} pinger_t;

/* ---- args ------------------------------------------------------------------------ */

typedef struct pinger_args {
    uint64_t interval_ms;
    size_t size;
    nsys_config_client_t client;
} pinger_args_t;

static const char *const pinger_keys[] = {"interval", "size", "client"};

/* Reads `args` at `path` into `a`; 0 or NSYS_ECONFIG (reported to d). */
static int read_args(const cJSON *args, const char *path, nsys_config_diag_t *d, pinger_args_t *a)
{
    size_t before = nsys_config_diag_count(d);
    a->interval_ms = PINGER_INTERVAL_DEFAULT_MS;
    a->size = PINGER_SIZE_DEFAULT;
    if (nsys_config_check_object(args, path, d) == NSYS_EINVAL)
        return NSYS_ECONFIG;
    nsys_config_check_keys(args, path, pinger_keys, sizeof pinger_keys / sizeof pinger_keys[0],
                           d);
    nsys_config_arg_duration(args, path, "interval", 1, 3600000u, &a->interval_ms, d);
    int64_t n = 0;
    if (nsys_config_arg_int(args, path, "size", PINGER_SIZE_MIN, PINGER_SIZE_MAX, &n, d) == 0)
        a->size = (size_t)n;
    const cJSON *client = NULL;
    if (nsys_config_require(args, path, "client", d) == 0 &&
        nsys_config_arg_object(args, path, "client", &client, d) == 0) {
        char *at = nsys_config_path_key(path, "client");
        if (nsys_config_client_args(client, at != NULL ? at : path, &a->client, d) == 0) {
            /* A message the client can never take would make every tick fail. */
            size_t max = a->client.opts.transport.max_payload;
            size_t box = a->client.opts.outbox_max_bytes;
            if ((max != 0 && a->size > max) || (box != 0 && a->size > box)) {
                char *sp = nsys_config_path_key(path, "size");
                nsys_config_expected(d, sp != NULL ? sp : path,
                                     cJSON_GetObjectItemCaseSensitive(args, "size"),
                                     "a size the client can send (its max_payload %zu, outbox "
                                     "max_bytes %zu)",
                                     max, box);
                nsys_free(sp);
            }
        }
        if (a->client.owner_name != NULL || a->client.register_name != NULL) {
            nsys_config_error(d, at != NULL ? at : path,
                              "a pinger's client takes no \"owner\" or \"register\": the pinger "
                              "owns it");
        }
        nsys_free(at);
    }
    return nsys_config_diag_count(d) > before ? NSYS_ECONFIG : 0;
}

static void pinger_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    pinger_args_t scratch;
    read_args(args, path, d, &scratch);
}

/* ---- settling ------------------------------------------------------------------- */

static uint32_t *slot(pinger_t *p, uint64_t seq)
{
    return &p->window[seq & (PINGER_WINDOW - 1u)];
}

/* Settles every message below `upto` that nothing settled yet: failed when
 * a link died since it was sent (or when `all_failed`), else lost. */
static void settle_below(pinger_t *p, uint64_t upto, bool all_failed)
{
    uint64_t failed = 0, lost = 0;
    for (; p->lo < upto; p->lo++) {
        uint32_t s = *slot(p, p->lo);
        if (s & PINGER_FAILED_BIT)
            continue; /* counted when the client reported it */
        if (all_failed || s != p->epoch)
            failed++;
        else
            lost++;
    }
    settled(CLI_TRAFFIC_FAILED, failed);
    settled(CLI_TRAFFIC_LOST, lost);
}

/* The echo's sequence number if it is a message this pinger sent, intact;
 * 0 if not. */
static uint64_t echo_seq(const pinger_t *p, const uint8_t *data, size_t len)
{
    if (len != p->size)
        return 0;
    uint64_t s = 0;
    for (int i = 7; i >= 0; i--)
        s = s << 8 | data[i];
    for (size_t i = 8; i < len; i++)
        if (data[i] != (uint8_t)s)
            return 0;
    return s < p->next_seq ? s : 0;
}

static void on_echo(pinger_t *p, const nsys_msg_t *msg)
{
    uint64_t seq = echo_seq(p, msg->data, msg->size);
    if (seq == 0) {
        count(CLI_TRAFFIC_BAD, 1);
        return;
    }
    if (seq < p->lo || (*slot(p, seq) & PINGER_FAILED_BIT)) {
        count(CLI_TRAFFIC_DUPLICATES, 1); /* settled already */
        return;
    }
    settle_below(p, seq, false);
    p->lo = seq + 1;
    settled(CLI_TRAFFIC_ECHOED, 1);
}

static void on_event(pinger_t *p, const nsys_client_event_t *ev)
{
    switch (ev->kind) {
    case NSYS_CLIENT_EV_CONNECTED:
        if (p->connected)
            count(CLI_TRAFFIC_RECONNECTS, 1);
        p->connected = true;
        atomic_store(&cli_traffic.state, NSYS_CLIENT_UP);
        break;
    case NSYS_CLIENT_EV_DISCONNECTED:
        p->epoch++;
        atomic_store(&cli_traffic.state, NSYS_CLIENT_CONNECTING);
        break;
    case NSYS_CLIENT_EV_RETRYING:
        /* The delay first: a reader that sees BACKOFF then sees its delay. */
        atomic_store(&cli_traffic.backoff_ms, ev->delay_ms);
        atomic_store(&cli_traffic.state, NSYS_CLIENT_BACKOFF);
        break;
    case NSYS_CLIENT_EV_SEND_FAILED:
        /* The pinger is the client's only sender, so the client's message
         * numbers are the sequence numbers. */
        if (ev->msg_id >= p->lo && ev->msg_id < p->next_seq &&
            !(*slot(p, ev->msg_id) & PINGER_FAILED_BIT)) {
            *slot(p, ev->msg_id) |= PINGER_FAILED_BIT;
            settled(CLI_TRAFFIC_FAILED, 1);
        }
        break;
    case NSYS_CLIENT_EV_GAVE_UP:
        break; /* the link takes the pinger down next */
    }
}

static void tick(nsys_ctx_t *ctx, pinger_t *p)
{
    if (p->next_seq - p->lo >= PINGER_WINDOW)
        return; /* too much unsettled: skip this beat */
    uint64_t seq = p->next_seq;
    for (int i = 0; i < 8; i++)
        p->payload[i] = (uint8_t)(seq >> (8 * i));
    memset(p->payload + 8, (uint8_t)seq, p->size - 8);
    *slot(p, seq) = p->epoch;
    if (nsys_net_send(nsys_ctx_runtime(ctx), p->client, p->payload, p->size) != 0)
        return; /* the client is gone; its exit signal follows */
    p->next_seq++;
    count(CLI_TRAFFIC_IN_FLIGHT, 1); /* before SENT: a reader never sees sent < settled */
    count(CLI_TRAFFIC_SENT, 1);
}

/* ---- the behaviour ---------------------------------------------------------------- */

static int pinger_init(nsys_ctx_t *ctx, void *state, void *args)
{
    pinger_t *p = state;
    pinger_args_t a;

    /* Args of a child started at run time were never validated. */
    nsys_config_diag_t *d = nsys_config_diag_new();
    if (d == NULL)
        return NSYS_ENOMEM;
    int rc = read_args(args, "args", d, &a);
    for (size_t i = 0; i < nsys_config_diag_count(d); i++)
        NSYS_LOG(NSYS_LOG_ERROR, "pinger: %s: %s", nsys_config_diag_path(d, i),
                 nsys_config_diag_message(d, i));
    nsys_config_diag_free(d);
    if (rc != 0)
        return rc;

    p->interval_ms = a.interval_ms;
    p->size = a.size;
    p->next_seq = p->lo = 1;
    p->window = calloc(PINGER_WINDOW, sizeof *p->window);
    p->payload = malloc(p->size);
    if (p->window == NULL || p->payload == NULL) {
        free(p->window);
        free(p->payload);
        return NSYS_ENOMEM;
    }
    a.client.opts.name = "pinger";
    a.client.opts.owner = nsys_self(ctx);
    rc = nsys_tcp_client_start(nsys_ctx_runtime(ctx), &a.client.opts, &p->client);
    if (rc == 0)
        rc = nsys_link(ctx, p->client);
    if (rc == 0)
        rc = nsys_send_interval(ctx, NSYS_REF_NONE, p->interval_ms, MSG_PINGER_TICK, NULL, 0,
                                NULL);
    if (rc != 0) {
        if (p->client != NSYS_REF_NONE)
            nsys_client_stop(nsys_ctx_runtime(ctx), p->client);
        free(p->window);
        free(p->payload);
        return rc;
    }
    count(CLI_TRAFFIC_PINGERS, 1);
    atomic_store(&cli_traffic.state, NSYS_CLIENT_CONNECTING);
    return 0;
}

static int pinger_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    pinger_t *p = state;

    if (msg->type == MSG_PINGER_TICK)
        tick(ctx, p);
    else if (msg->type == NSYS_MSG_NET_MESSAGE && msg->from == p->client)
        on_echo(p, msg);
    else if (msg->type == NSYS_MSG_CLIENT_EVENT && msg->size == sizeof(nsys_client_event_t))
        on_event(p, msg->data);
    return 0;
}

/* What is still outstanding stops with the pinger: reported as failed. */
static void pinger_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    pinger_t *p = state;

    (void)ctx;
    (void)reason;
    settle_below(p, p->next_seq, true);
    free(p->window);
    free(p->payload);
}

static const nsys_behaviour_t pinger_behaviour = {
    .name = "pinger",
    .state_size = sizeof(pinger_t),
    .init = pinger_init,
    .handle = pinger_handle,
    .terminate = pinger_terminate,
};

const nsys_config_kind_t cli_pinger_kind = {
    "pinger", &pinger_behaviour, pinger_validate,
    "demo: a client sending numbered messages every `interval` and checking every echo"};
