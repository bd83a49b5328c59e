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
#define DEMO_MIN_MS 1u /* the range of every demo duration: 1ms..1h */
#define DEMO_MAX_MS 3600000u

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

/* Appends `s` to `out` with JSON string escapes (no surrounding quotes). */
static void put_escaped(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, cap - n, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        else
            out[n++] = (char)c;
        out[n] = '\0';
    }
}

/* `path` + the segment for `key`, written the way config/ writes paths:
 * ".key" for an identifier, "['key']" otherwise. */
static void key_path(char *out, size_t cap, const char *path, const char *key)
{
    bool plain =
        (key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_';
    for (const char *p = key; plain && *p != '\0'; p++)
        plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '_';
    if (plain && strlen(key) <= 64) {
        snprintf(out, cap, "%s.%s", path, key);
        return;
    }
    snprintf(out, cap, "%s['", path);
    char escaped[256] = "";
    put_escaped(escaped, sizeof escaped, key);
    size_t n = strlen(out);
    for (const char *p = escaped; *p != '\0' && n + 3 < cap; p++) {
        if (*p == '\'')
            out[n++] = '\\';
        out[n++] = *p;
    }
    snprintf(out + n, cap - n, "']");
}

/* ", got ..." as config/ writes it: a string's value, other types by name. */
static void got_text(char *out, size_t cap, const cJSON *item)
{
    if (cJSON_IsString(item)) {
        snprintf(out, cap, ", got \"");
        put_escaped(out, cap - 1, item->valuestring);
        strncat(out, "\"", cap - strlen(out) - 1);
        return;
    }
    const char *what = cJSON_IsNumber(item)  ? "a number"
                       : cJSON_IsTrue(item)  ? "true"
                       : cJSON_IsFalse(item) ? "false"
                       : cJSON_IsNull(item)  ? "null"
                       : cJSON_IsArray(item) ? "an array"
                                             : "an object";
    snprintf(out, cap, ", got %s", what);
}

/* Checks that `args` is absent or an object whose only keys are the
 * durations named in `keys` (NULL-terminated), each within 1ms..1h. */
static void validate_duration_args(const cJSON *args, const char *path, nsys_config_diag_t *d,
                                   const char *const *keys)
{
    if (args == NULL)
        return;
    if (!cJSON_IsObject(args)) {
        char got[128];
        got_text(got, sizeof got, args);
        nsys_config_error(d, path, "expected an object%s", got);
        return;
    }
    for (const cJSON *item = args->child; item != NULL; item = item->next) {
        char at[512], got[160];
        bool known = false;

        key_path(at, sizeof at, path, item->string);
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(item->string, keys[i]) == 0;
        if (!known) {
            char expected[128] = "";
            for (size_t i = 0; keys[i] != NULL; i++) {
                size_t used = strlen(expected);
                snprintf(expected + used, sizeof expected - used, "%s\"%s\"", i ? ", " : "",
                         keys[i]);
            }
            nsys_config_error(d, at, "unknown key; expected one of %s", expected);
            continue;
        }
        uint64_t ms = 0;
        int rc =
            cJSON_IsString(item) ? nsys_config_parse_duration(item->valuestring, &ms) : NSYS_EINVAL;
        got_text(got, sizeof got, item);
        if (rc == NSYS_EINVAL)
            nsys_config_error(d, at, "expected a duration such as \"500ms\" or \"5s\"%s", got);
        else if (rc != 0 || ms < DEMO_MIN_MS || ms > DEMO_MAX_MS)
            nsys_config_error(d, at, "expected a duration 1ms..1h%s", got);
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
