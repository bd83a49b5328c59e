/* tools/netsys/demo_kinds.c — the behaviour kinds `netsys run`'s demo tree is
 * made of, registered with the config registry so documents can name them:
 *
 *   demo_worker   ticks every `interval` (default "1s") and logs each tick at
 *                 debug level; never fails.
 *   flaky_worker  fails with NSYS_EFAILED `fail_every` (default "3s") after it
 *                 started, so a supervisor has something to restart.
 *
 * Their args validators accept only their own keys, so a typo in a document
 * is an error with a path like any other.
 *
 * Not for: real services. Network actors replace the demo tree later.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
    MSG_DEMO_TICK = NSYS_MSG_USER + 1, /* demo_worker: its interval timer */
    MSG_DEMO_FAIL                      /* flaky_worker: time to fail */
};

#define DEMO_INTERVAL_DEFAULT "1s"
#define FLAKY_FAIL_EVERY_DEFAULT "3s"

/* ---- args ----------------------------------------------------------------- */

/* A duration arg: absent gives `fallback`; validators have checked the rest. */
static uint64_t duration_arg(const cJSON *args, const char *key, const char *fallback)
{
    const cJSON *item = cJSON_IsObject(args) ? cJSON_GetObjectItemCaseSensitive(args, key) : NULL;
    const char *text = cJSON_IsString(item) ? item->valuestring : fallback;
    uint64_t ms = 0;

    if (nsys_config_parse_duration(text, &ms) != 0 || ms == 0)
        nsys_config_parse_duration(fallback, &ms);
    return ms;
}

/* Checks that `args` is absent or an object whose only keys are durations
 * named in `keys` (NULL-terminated), each > 0. */
static void validate_duration_args(const cJSON *args, const char *path, nsys_config_diag_t *d,
                                   const char *const *keys)
{
    if (args == NULL || cJSON_IsNull(args))
        return;
    if (!cJSON_IsObject(args)) {
        nsys_config_error(d, path, "expected an object");
        return;
    }
    for (const cJSON *item = args->child; item != NULL; item = item->next) {
        char at[512];
        bool known = false;

        snprintf(at, sizeof at, "%s.%s", path, item->string);
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(item->string, keys[i]) == 0;
        if (!known) {
            char expected[128] = "";
            for (size_t i = 0; keys[i] != NULL; i++) {
                size_t used = strlen(expected);
                snprintf(expected + used, sizeof expected - used, "%s\"%s\"", i ? ", " : "",
                         keys[i]);
            }
            nsys_config_error(d, at, "unknown key (expected %s)", expected);
            continue;
        }
        uint64_t ms = 0;
        if (!cJSON_IsString(item) || nsys_config_parse_duration(item->valuestring, &ms) != 0) {
            nsys_config_error(d, at, "expected a duration such as \"500ms\" or \"2s\"");
        } else if (ms == 0) {
            nsys_config_error(d, at, "expected a duration greater than 0, got \"%s\"",
                              item->valuestring);
        }
    }
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
    static const char *const keys[] = {"interval", NULL};
    validate_duration_args(args, path, d, keys);
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
    static const char *const keys[] = {"fail_every", NULL};
    validate_duration_args(args, path, d, keys);
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
    for (size_t i = 0; i < sizeof demo_kinds / sizeof demo_kinds[0]; i++) {
        const nsys_config_kind_t *have = nsys_config_find_kind(demo_kinds[i].name);
        if (have != NULL && have->behaviour == demo_kinds[i].behaviour)
            continue;
        int rc = nsys_config_register(&demo_kinds[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
