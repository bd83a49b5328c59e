/* tools/netsys/demo_kinds.c — the behaviour kinds `netsys run`'s demo tree is
 * made of, registered with the config registry so documents can name them:
 *
 *   demo_worker   ticks every `interval` (default "1s") and logs each tick at
 *                 debug level; never fails.
 *   flaky_worker  fails with NSYS_EFAILED `fail_every` (default "3s") after it
 *                 started, so a supervisor has something to restart.
 *
 * Their args validators (config.h's helpers) accept only their own keys, so
 * a typo in a document is an error with a path like any other.
 *
 *   pinger        (demo_pinger.c) a client that sends numbered messages and
 *                 checks every echo; the default tree's traffic.
 *
 * Not for: real services.
 */
#include "cli.h"

#include <inttypes.h>

enum {
    MSG_DEMO_TICK = NSYS_MSG_USER + 1, /* demo_worker: its interval timer */
    MSG_DEMO_FAIL                      /* flaky_worker: time to fail */
};

#define DEMO_INTERVAL_DEFAULT "1s"
#define FLAKY_FAIL_EVERY_DEFAULT "3s"
#define DEMO_MIN_MS 1u /* the range of every demo duration: 1ms..1h */
#define DEMO_MAX_MS 3600000u

/* ---- args ----------------------------------------------------------------- */

/* A duration arg: absent (or, for args nobody validated, wrong) gives
 * `fallback`. */
static uint64_t duration_arg(const cJSON *args, const char *key, const char *fallback)
{
    uint64_t ms = 0;

    if (nsys_config_arg_duration(args, NULL, key, DEMO_MIN_MS, DEMO_MAX_MS, &ms, NULL) != 0)
        nsys_config_parse_duration(fallback, &ms);
    return ms;
}

/* Checks that `args` is absent or an object whose only keys are the
 * durations named in `keys`, each within 1ms..1h. */
static void validate_duration_args(const cJSON *args, const char *path, nsys_config_diag_t *d,
                                   const char *const *keys, size_t n)
{
    if (nsys_config_check_object(args, path, d) != 0)
        return;
    nsys_config_check_keys(args, path, keys, n, d);
    for (size_t i = 0; i < n; i++)
        nsys_config_arg_duration(args, path, keys[i], DEMO_MIN_MS, DEMO_MAX_MS, NULL, d);
}

/* ---- demo_worker ---------------------------------------------------------- */

typedef struct demo_worker {
    uint64_t interval_ms;
    uint64_t ticks;
} demo_worker_t;

static int demo_worker_init(nsys_ctx_t *ctx, void *state, void *args)
{
    demo_worker_t *w = state;

    w->interval_ms = duration_arg(args, "interval", DEMO_INTERVAL_DEFAULT);
    return nsys_send_interval(ctx, NSYS_REF_NONE, w->interval_ms, MSG_DEMO_TICK, NULL, 0, NULL);
}

static int demo_worker_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    demo_worker_t *w = state;

    (void)ctx;
    if (msg->type == MSG_DEMO_TICK) {
        w->ticks++;
        NSYS_LOG(NSYS_LOG_DEBUG, "demo_worker: tick %" PRIu64 " (every %" PRIu64 " ms)", w->ticks,
                 w->interval_ms);
    }
    return 0;
}

static const nsys_behaviour_t demo_worker_behaviour = {
    .name = "demo_worker",
    .state_size = sizeof(demo_worker_t),
    .init = demo_worker_init,
    .handle = demo_worker_handle,
};

static void demo_worker_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    static const char *const keys[] = {"interval"};
    validate_duration_args(args, path, d, keys, 1);
}

/* ---- flaky_worker --------------------------------------------------------- */

typedef struct flaky_worker {
    uint64_t fail_every_ms;
} flaky_worker_t;

static int flaky_worker_init(nsys_ctx_t *ctx, void *state, void *args)
{
    flaky_worker_t *w = state;

    w->fail_every_ms = duration_arg(args, "fail_every", FLAKY_FAIL_EVERY_DEFAULT);
    return nsys_send_after(ctx, NSYS_REF_NONE, w->fail_every_ms, MSG_DEMO_FAIL, NULL, 0, NULL);
}

static int flaky_worker_handle(nsys_ctx_t *ctx, void *state, nsys_msg_t *msg)
{
    flaky_worker_t *w = state;

    (void)ctx;
    if (msg->type != MSG_DEMO_FAIL)
        return 0;
    NSYS_LOG(NSYS_LOG_DEBUG, "flaky_worker: failing on purpose after %" PRIu64 " ms",
             w->fail_every_ms);
    return NSYS_EFAILED;
}

static const nsys_behaviour_t flaky_worker_behaviour = {
    .name = "flaky_worker",
    .state_size = sizeof(flaky_worker_t),
    .init = flaky_worker_init,
    .handle = flaky_worker_handle,
};

static void flaky_worker_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    static const char *const keys[] = {"fail_every"};
    validate_duration_args(args, path, d, keys, 1);
}

/* ---- registration --------------------------------------------------------- */

static const nsys_config_kind_t demo_kinds[] = {
    {"demo_worker", &demo_worker_behaviour, demo_worker_validate,
     "demo: ticks every `interval` (default \"1s\") and logs at debug level"},
    {"flaky_worker", &flaky_worker_behaviour, flaky_worker_validate,
     "demo: fails every `fail_every` (default \"3s\") so that it gets restarted"},
};

int cli_register_demo_kinds(void)
{
    const nsys_config_kind_t *kinds[] = {&demo_kinds[0], &demo_kinds[1], &cli_pinger_kind};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const nsys_config_kind_t *have = nsys_config_find_kind(kinds[i]->name);
        if (have != NULL && have->behaviour == kinds[i]->behaviour)
            continue;
        int rc = nsys_config_register(kinds[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
