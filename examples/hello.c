/* examples/hello.c — the runtime demo: a token passed around a ring.
 *
 * A "starter" actor spawns a ring of N "node" actors spread over every
 * scheduler, tells each node who comes next, and hands node 0 a token worth
 * M hops. Each node forwards the token to the next one, so every hop is one
 * nsys_send, most of them to another thread. The node that receives the last
 * hop tells the starter, which asks the runtime to stop; main() wakes from
 * nsys_runtime_wait, prints the rate and the runtime's metrics, and shuts
 * down.
 *
 * It uses only the public API (<netsys/netsys.h>), so it doubles as the
 * program the install checks build against an installed netsys.
 *
 *   netsys-hello [--actors N] [--hops M] [--schedulers S] [--timeout-ms T]
 */
#include <netsys/netsys.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MSG_NEXT = NSYS_MSG_USER, /* starter -> node: payload nsys_ref_t, the node's successor */
    MSG_TOKEN,                /* node -> node: payload uint64_t, hops left including this one */
    MSG_DONE                  /* node -> starter: the last hop arrived */
};

/* ---- node ----------------------------------------------------------------
 *
 * Order is promised only between one sender and one receiver. A node's NEXT
 * comes from the starter but the token from its predecessor, so the token can
 * arrive first; the node then holds it until it knows where to send it. */

typedef struct node {
    nsys_ref_t next;
    bool holding;  /* a token arrived before NEXT */
    uint64_t held; /* its hops left */
} node_t;

static int node_pass(nsys_ctx_t *ctx, node_t *node, uint64_t left)
{
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);

    if (left <= 1)
        return nsys_send(rt, nsys_parent(ctx), MSG_DONE, NULL, 0);
    left--;
    return nsys_send(rt, node->next, MSG_TOKEN, &left, sizeof left);
}

static int node_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    node_t *node = state;
    uint64_t left;

    switch (msg->type) {
    case MSG_NEXT:
        if (msg->size != sizeof node->next)
            return NSYS_EINVAL;
        memcpy(&node->next, msg->data, sizeof node->next);
        if (node->holding) {
            node->holding = false;
            return node_pass(ctx, node, node->held);
        }
        return 0;
    case MSG_TOKEN:
        if (msg->size != sizeof left)
            return NSYS_EINVAL;
        memcpy(&left, msg->data, sizeof left);
        if (node->next == NSYS_REF_NONE) {
            node->holding = true;
            node->held = left;
            return 0;
        }
        return node_pass(ctx, node, left);
    default:
        return 0; /* not ours: ignore */
    }
}

static const nsys_behaviour_t node_behaviour = {
    .name = "hello.node",
    .state_size = sizeof(node_t),
    .handle = node_handle,
};

/* ---- starter ------------------------------------------------------------- */

typedef struct ring_args {
    uint32_t actors;
    uint64_t hops;
} ring_args_t;

typedef struct starter {
    nsys_ref_t *nodes; /* owned: freed in terminate */
    uint32_t count;
} starter_t;

static int starter_init(nsys_ctx_t *ctx, void *state, void *args)
{
    starter_t *st = state;
    const ring_args_t *ring = args;
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    int rc;

    st->nodes = calloc(ring->actors, sizeof *st->nodes);
    if (st->nodes == NULL)
        return NSYS_ENOMEM;

    /* Linked: when the starter goes, its ring goes with it. */
    nsys_spawn_opts_t opts = NSYS_SPAWN_OPTS_DEFAULTS;
    opts.placement = NSYS_PLACE_ANY;
    opts.link = true;
    for (uint32_t i = 0; i < ring->actors; i++) {
        rc = nsys_spawn(rt, &node_behaviour, &opts, &st->nodes[i]);
        if (rc != 0)
            goto fail;
        st->count++;
    }
    for (uint32_t i = 0; i < st->count; i++) {
        nsys_ref_t next = st->nodes[(i + 1) % st->count];
        rc = nsys_send(rt, st->nodes[i], MSG_NEXT, &next, sizeof next);
        if (rc != 0)
            goto fail;
    }
    rc = nsys_send(rt, st->nodes[0], MSG_TOKEN, &ring->hops, sizeof ring->hops);
    if (rc != 0)
        goto fail;
    return 0;

fail:
    /* terminate does not run after a failed init; the linked nodes already
     * spawned receive our exit signal. */
    free(st->nodes);
    st->nodes = NULL;
    return rc;
}

static int starter_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    (void)state;
    if (msg->type == MSG_DONE)
        return nsys_runtime_request_stop(nsys_ctx_runtime(ctx), 0);
    return 0;
}

static void starter_terminate(nsys_ctx_t *ctx, void *state, int reason)
{
    starter_t *st = state;

    (void)ctx;
    (void)reason;
    free(st->nodes);
    st->nodes = NULL;
}

static const nsys_behaviour_t starter_behaviour = {
    .name = "hello.starter",
    .state_size = sizeof(starter_t),
    .init = starter_init,
    .handle = starter_handle,
    .terminate = starter_terminate,
};

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s [--actors N] [--hops M] [--schedulers S] [--timeout-ms T]\n"
            "  --actors N      actors in the ring (default 8)\n"
            "  --hops M        token hops in total (default 100000)\n"
            "  --schedulers S  scheduler threads (default 0: one per CPU)\n"
            "  --timeout-ms T  give up after T ms (default 60000)\n",
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
    ring_args_t ring = {.actors = 8, .hops = 100000};
    uint64_t schedulers = 0, timeout_ms = 60000, value;

    /* Every option takes a value: walk them in pairs. */
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(opt, "--actors") == 0 && parse_u64(arg, 1, 1000000, &value) == 0) {
            ring.actors = (uint32_t)value;
        } else if (strcmp(opt, "--hops") == 0 && parse_u64(arg, 1, UINT64_MAX, &value) == 0) {
            ring.hops = value;
        } else if (strcmp(opt, "--schedulers") == 0 && parse_u64(arg, 0, 1024, &value) == 0) {
            schedulers = value;
        } else if (strcmp(opt, "--timeout-ms") == 0 && parse_u64(arg, 1, UINT64_MAX, &value) == 0) {
            timeout_ms = value;
        } else {
            fprintf(stderr, "%s: bad or incomplete option '%s'\n", argv[0], opt);
            usage(stderr, argv[0]);
            return 2;
        }
    }

    nsys_runtime_opts_t opts = NSYS_RUNTIME_OPTS_DEFAULTS;
    opts.schedulers = (unsigned)schedulers;
    nsys_runtime_t *rt = NULL;
    int rc = nsys_runtime_new(&opts, &rt);
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_new: %s\n", nsys_strerror(rc));
        return 1;
    }

    uint64_t start_ns = uv_hrtime();
    nsys_spawn_opts_t sopts = NSYS_SPAWN_OPTS_DEFAULTS;
    sopts.args = &ring; /* outlives the runtime: no args_free */
    rc = nsys_spawn(rt, &starter_behaviour, &sopts, NULL);
    if (rc != 0) {
        fprintf(stderr, "nsys_spawn: %s\n", nsys_strerror(rc));
        nsys_runtime_free(rt);
        return 1;
    }

    nsys_wake_t why = NSYS_WAKE_REQUEST;
    int code = 0;
    rc = nsys_runtime_wait(rt, NSYS_WAIT_SIGNALS, timeout_ms, &why, &code);
    uint64_t elapsed_ns = uv_hrtime() - start_ns;

    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_wait: %s\n", nsys_strerror(rc));
        status = 1;
    } else if (why == NSYS_WAKE_SIGNAL) {
        fprintf(stderr, "interrupted by signal %d\n", code);
        status = 128 + code;
    } else if (why != NSYS_WAKE_REQUEST) {
        fprintf(stderr, "the token did not finish its %" PRIu64 " hops within %" PRIu64 " ms\n",
                ring.hops, timeout_ms);
        status = 1;
    } else {
        double seconds = (double)elapsed_ns / 1e9;
        unsigned nsched = nsys_runtime_schedulers(rt);
        printf("%" PRIu32 " actors on %u scheduler%s passed a token %" PRIu64
               " hops in %.3f s: %.0f hops/s\n",
               ring.actors, nsched, nsched == 1 ? "" : "s", ring.hops, seconds,
               seconds > 0 ? (double)ring.hops / seconds : 0.0);
    }

    char *json = NULL;
    rc = nsys_metrics_json(rt, &json);
    if (rc == 0) {
        printf("%s\n", json);
        nsys_free(json);
    } else {
        fprintf(stderr, "nsys_metrics_json: %s\n", nsys_strerror(rc));
        status = status ? status : 1;
    }

    rc = nsys_runtime_stop(rt);
    if (rc != 0) {
        fprintf(stderr, "nsys_runtime_stop: %s\n", nsys_strerror(rc));
        status = status ? status : 1;
    }
    nsys_runtime_free(rt);
    return status;
}
