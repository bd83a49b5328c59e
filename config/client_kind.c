/* config/client_kind.c — the behaviour kind "client" for documents: a
 * resilient TCP client (actors/connection.c, <netsys/client.h>) whose args
 * say where to connect and how to ride out failures: transport, reconnect
 * backoff and attempts, outbox and heartbeat. nsys_config_client_args reads
 * them for the validator, the init, and other kinds that embed a client
 * (netsys run's demo pinger). docs/CONFIG.md lists every key.
 *
 * The supervisor sees the client actor itself: link failures are handled
 * inside it and never reach the supervisor; it exits (and counts against
 * the restart intensity) only when it gives up after max_attempts, on a
 * stop_on error, or when it fails.
 *
 * Not for: the client itself, or registering kinds (registry.c). */
#include "config/internal.h"

#include <netsys/client.h>

#include <string.h>

#define HOST_DEFAULT "127.0.0.1"
#define MS_HOUR UINT64_C(3600000)
#define OUTBOX_MESSAGES_MAX 1000000
#define OUTBOX_BYTES_MAX (UINT64_C(1) << 30) /* 1GiB */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const client_keys[] = {"host",      "port",   "connect_timeout",
                                          "transport", "reconnect", "outbox",
                                          "heartbeat", "register",  "owner"};
static const char *const outbox_keys[] = {"max_messages", "max_bytes", "overflow"};
static const char *const heartbeat_keys[] = {"interval", "timeout"};
static const char *const overflow_names[] = {"reject", "drop_oldest"}; /* nsys_outbox_policy_t */

/* The names stop_on accepts and the errors each stands for (the dial's
 * statuses, <netsys/transport.h>, plus a lost link's reset). */
static const struct {
    const char *name;
    int codes[2];
    size_t ncodes;
} stop_on_names[] = {
    {"resolve", {UV_EAI_NONAME, 0}, 1},
    {"refused", {UV_ECONNREFUSED, 0}, 1},
    {"unreachable", {UV_ENETUNREACH, UV_EHOSTUNREACH}, 2},
    {"timeout", {UV_ETIMEDOUT, 0}, 1},
    {"reset", {UV_ECONNRESET, 0}, 1},
};

/* Runs `read` on the object at key `key` of `obj` (if present and an
 * object), with that object's path. */
static void nested(const cJSON *obj, const char *path, const char *key, nsys_config_diag_t *d,
                   void (*read)(const cJSON *, const char *, nsys_config_diag_t *, void *),
                   void *out)
{
    const cJSON *it = NULL;
    if (nsys_config_arg_object(obj, path, key, &it, d) != 0)
        return;
    char *at = nsys_config_path_key(path, key);
    read(it, at != NULL ? at : path, d, out);
    nsys_free(at);
}

static void read_transport(const cJSON *t, const char *path, nsys_config_diag_t *d, void *out)
{
    nsys__config_read_transport(t, path, d, &((nsys_config_client_t *)out)->opts.transport);
}

/* "stop_on": an array of distinct names from stop_on_names. */
static void read_stop_on(const cJSON *r, const char *path, nsys_config_diag_t *d,
                         nsys_config_client_t *c)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "stop_on");
    if (arr == NULL)
        return;
    char *at = nsys_config_path_key(path, "stop_on");
    const char *where = at != NULL ? at : path;
    const char *names[COUNT(stop_on_names)];
    for (size_t k = 0; k < COUNT(stop_on_names); k++)
        names[k] = stop_on_names[k].name;
    if (!cJSON_IsArray(arr)) {
        nsys_config_expected(d, where, arr, "an array of error names");
        nsys_free(at);
        return;
    }
    bool seen[COUNT(stop_on_names)] = {false};
    size_t i = 0;
    for (const cJSON *it = arr->child; it != NULL; it = it->next, i++) {
        char *ip = nsys_config_path_index(where, i);
        const char *ipath = ip != NULL ? ip : where;
        size_t k = 0;
        while (k < COUNT(stop_on_names) &&
               !(cJSON_IsString(it) && strcmp(it->valuestring, names[k]) == 0))
            k++;
        if (k == COUNT(stop_on_names)) {
            /* Worded as nsys_config_arg_enum words it: a wrong name is
             * quoted, a wrong type is named ("got a number"). */
            nsys__text_t m;
            nsys__text_init(&m);
            nsys__text_puts(&m, "expected one of ");
            nsys__text_quoted_list(&m, names, COUNT(names));
            nsys__text_got(&m, it, cJSON_IsString(it));
            nsys_config_error(d, ipath, "%s", m.buf != NULL ? m.buf : "expected an error name");
            nsys__text_free(&m);
        } else if (seen[k]) {
            nsys_config_error(d, ipath, "\"%s\" is listed twice", names[k]);
        } else {
            seen[k] = true;
            for (size_t j = 0; j < stop_on_names[k].ncodes; j++)
                c->stop_on[c->opts.nstop_on++] = stop_on_names[k].codes[j];
        }
        nsys_free(ip);
    }
    nsys_free(at);
}

static void read_reconnect(const cJSON *r, const char *path, nsys_config_diag_t *d, void *out)
{
    nsys_config_client_t *c = out;
    static const char *const own_keys[] = {"max_attempts", "stop_on"};
    nsys__config_read_backoff(r, path, d, own_keys, COUNT(own_keys), NSYS_BACKOFF_GRPC_INITIAL_MS,
                              NSYS_BACKOFF_GRPC_MAX_MS, &c->opts.backoff);
    int64_t n = 0;
    if (nsys_config_arg_int(r, path, "max_attempts", 0, UINT32_MAX, &n, d) == 0)
        c->opts.max_attempts = (uint32_t)n;
    read_stop_on(r, path, d, c);
}

static void read_outbox(const cJSON *o, const char *path, nsys_config_diag_t *d, void *out)
{
    nsys_client_opts_t *opts = &((nsys_config_client_t *)out)->opts;
    nsys_config_check_keys(o, path, outbox_keys, COUNT(outbox_keys), d);
    int64_t n = 0;
    if (nsys_config_arg_int(o, path, "max_messages", 1, OUTBOX_MESSAGES_MAX, &n, d) == 0)
        opts->outbox_max_messages = (size_t)n;
    uint64_t v = 0;
    if (nsys_config_arg_size(o, path, "max_bytes", 1, OUTBOX_BYTES_MAX, &v, d) == 0)
        opts->outbox_max_bytes = (size_t)v;
    int policy = NSYS_OUTBOX_REJECT;
    if (nsys_config_arg_enum(o, path, "overflow", overflow_names, COUNT(overflow_names), &policy,
                             d) == 0)
        opts->overflow = (nsys_outbox_policy_t)policy;
}

static void read_heartbeat(const cJSON *h, const char *path, nsys_config_diag_t *d, void *out)
{
    nsys_client_opts_t *opts = &((nsys_config_client_t *)out)->opts;
    nsys_config_check_keys(h, path, heartbeat_keys, COUNT(heartbeat_keys), d);
    uint64_t ms = 0;
    if (nsys_config_require(h, path, "interval", d) == 0 &&
        nsys_config_arg_duration(h, path, "interval", 1, MS_HOUR, &ms, d) == 0)
        opts->heartbeat_ms = ms;
    if (nsys_config_arg_duration(h, path, "timeout", 1, MS_HOUR, &ms, d) == 0)
        opts->heartbeat_timeout_ms = ms;
}

/* "register"/"owner": an actor name (1..255 bytes, nsys_register's limit). */
static void read_name(const cJSON *args, const char *path, const char *key, const char **out,
                      nsys_config_diag_t *d)
{
    const char *s = NULL;
    if (nsys_config_arg_string(args, path, key, &s, d) != 0)
        return;
    if (s[0] == '\0' || strlen(s) > 255) {
        char *at = nsys_config_path_key(path, key);
        nsys_config_expected(d, at != NULL ? at : path, cJSON_GetObjectItemCaseSensitive(args, key),
                             "an actor name of 1..255 bytes");
        nsys_free(at);
        return;
    }
    *out = s;
}

int nsys_config_client_args(const cJSON *args, const char *path, nsys_config_client_t *out,
                            nsys_config_diag_t *d)
{
    size_t before = nsys_config_diag_count(d);
    memset(out, 0, sizeof *out);
    out->opts = (nsys_client_opts_t)NSYS_CLIENT_OPTS_DEFAULTS;
    out->opts.host = HOST_DEFAULT;
    out->opts.stop_on = out->stop_on;
    if (nsys_config_check_object(args, path, d) == NSYS_EINVAL)
        return NSYS_ECONFIG;
    nsys_config_check_keys(args, path, client_keys, COUNT(client_keys), d);

    nsys__config_arg_host(args, path, "host", &out->opts.host, d);
    int64_t n = 0;
    if (nsys_config_require(args, path, "port", d) == 0 &&
        nsys_config_arg_int(args, path, "port", 1, 65535, &n, d) == 0)
        out->opts.port = (uint16_t)n;
    uint64_t ms = 0;
    if (nsys_config_arg_duration(args, path, "connect_timeout", 1, MS_HOUR, &ms, d) == 0)
        out->opts.connect_timeout_ms = ms;
    nested(args, path, "transport", d, read_transport, out);
    nested(args, path, "reconnect", d, read_reconnect, out);
    nested(args, path, "outbox", d, read_outbox, out);
    nested(args, path, "heartbeat", d, read_heartbeat, out);
    if (out->opts.heartbeat_ms > 0 && out->opts.transport.codec != NSYS_CODEC_LENGTH) {
        char *at = nsys_config_path_key(path, "heartbeat");
        nsys_config_error(d, at != NULL ? at : path,
                          "the heartbeat needs the \"length\" codec (an empty frame is the ping)");
        nsys_free(at);
    }
    read_name(args, path, "register", &out->register_name, d);
    read_name(args, path, "owner", &out->owner_name, d);
    out->opts.name = out->register_name;
    return nsys_config_diag_count(d) > before ? NSYS_ECONFIG : 0;
}

static void client_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    nsys_config_client_t scratch;
    nsys_config_client_args(args, path, &scratch, d);
}

/* ---- the behaviour --------------------------------------------------------------- */

/* Filled by nsys__config_client_kinds from nsys_client_behaviour; read-only
 * afterwards. */
static nsys_behaviour_t client_kind_behaviour;

/* As the listener kind: args (the supervisor's copy, valid during init)
 * become options, checked again here for children started at run time.
 * "owner" is looked up now, so the owner must be registered by an earlier
 * sibling; "register" names the client before it starts connecting, and a
 * taken name fails the start. */
static int client_kind_init(nsys_ctx_t *ctx, void *state, void *args)
{
    nsys_runtime_t *rt = nsys_ctx_runtime(ctx);
    nsys_config_diag_t *d = nsys__diag_new(NULL);
    if (d == NULL)
        return NSYS_ENOMEM;
    nsys_config_client_t c;
    nsys_config_client_args(args, "args", &c, d);
    int rc = nsys__config_kind_args_done("client", d);
    if (rc != 0)
        return rc;
    if (c.owner_name != NULL && nsys_whereis(rt, c.owner_name, &c.opts.owner) != 0) {
        NSYS_LOG(NSYS_LOG_ERROR, "client: owner \"%s\" is not a registered actor", c.owner_name);
        return NSYS_ENOACTOR;
    }
    if (c.register_name != NULL) {
        rc = nsys_register(rt, c.register_name, nsys_self(ctx));
        if (rc != 0) {
            NSYS_LOG(NSYS_LOG_ERROR, "client: cannot register as \"%s\": %s", c.register_name,
                     nsys_strerror(rc));
            return rc;
        }
    }
    rc = nsys_client_behaviour.init(ctx, state, &c.opts);
    if (rc != 0 && c.register_name != NULL)
        nsys_unregister(rt, c.register_name);
    return rc;
}

static const nsys_config_kind_t client_kinds[] = {
    {"client", &client_kind_behaviour, client_validate,
     "resilient TCP client: keeps a connection to host:port, reconnecting with backoff"},
};

const nsys_config_kind_t *nsys__config_client_kinds(size_t *n)
{
    client_kind_behaviour = (nsys_behaviour_t){
        .name = "client",
        .state_size = nsys_client_behaviour.state_size,
        .init = client_kind_init,
        .handle = nsys_client_behaviour.handle,
        .terminate = nsys_client_behaviour.terminate,
    };
    *n = COUNT(client_kinds);
    return client_kinds;
}
