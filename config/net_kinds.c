/* config/net_kinds.c — netsys's own network behaviour kinds for documents:
 * "listener", a TCP listener (actors/listener.c, <netsys/net.h>) whose args
 * say where to listen, which session handler to run and the transport
 * options. One function reads the args into nsys_listener_opts_t for both
 * the validator (reporting every error with its path) and the init (which
 * gets args the validator has already seen, or, for children started at run
 * time, args nobody has checked yet). docs/CONFIG.md lists every key.
 * Not for: the listener itself, or registering kinds (registry.c adds these
 * before any other). */
#include "config/internal.h"

#include <netsys/framing.h>
#include <netsys/net.h>

#include <string.h>

/* ---- the args ------------------------------------------------------------------ */

#define LISTENER_HOST_DEFAULT "127.0.0.1"
#define LISTENER_ACCEPT_BACKOFF_DEFAULT_MS 1000u

#define MS_HOUR UINT64_C(3600000)

/* Bounds of the values (docs/CONFIG.md, "listener"). */
#define PAYLOAD_MAX UINT64_C(4294967295)  /* what a 4-byte length header can say */
#define WATERMARK_MAX (UINT64_C(1) << 30) /* 1GiB */
#define IDLE_MAX_MS (24u * MS_HOUR)
#define KEEPALIVE_MIN_MS UINT64_C(1000)
#define KEEPALIVE_MAX_MS (2u * MS_HOUR)

static const char *const listener_keys[] = {"host",      "port",      "backlog",
                                            "reuseaddr", "reuseport", "max_sessions",
                                            "handler",   "transport", "accept_backoff_max"};
static const char *const transport_keys[] = {"codec",     "max_payload", "write_high",
                                             "write_low", "write_limit", "read_high",
                                             "read_low",  "idle_timeout", "nodelay",
                                             "keepalive"};
/* Indexed by nsys_codec_t. */
static const char *const codec_names[] = {"length", "raw"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* "handler": a string naming a registered session handler. (Here and below,
 * a nested path that cannot be allocated puts the error one level up.) */
static void read_handler(const cJSON *args, const char *path, nsys_config_diag_t *d,
                         nsys_listener_opts_t *o)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(args, "handler");
    char *at = nsys_config_path_key(path, "handler");
    const char *where = at != NULL ? at : path;
    if (!cJSON_IsString(it)) {
        nsys_config_expected(d, where, it, "a handler name");
    } else if ((o->handler = nsys_net_find_handler(it->valuestring)) == NULL) {
        const char **known = NULL;
        size_t n = 0;
        if (nsys_net_handler_names(&known, &n) != 0)
            n = 0;
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_puts(&m, "unknown handler ");
        nsys__text_quote(&m, it->valuestring, strlen(it->valuestring), 64);
        const char *hint = nsys__config_suggest(it->valuestring, known, n);
        if (hint != NULL) {
            nsys__text_puts(&m, "; did you mean ");
            nsys__text_quote(&m, hint, strlen(hint), 64);
            nsys__text_puts(&m, "?");
        }
        if (n > 0) {
            nsys__text_puts(&m, hint != NULL ? " known: " : "; known: ");
            nsys__text_quoted_list(&m, known, n);
        }
        nsys_config_error(d, where, "%s", m.buf != NULL ? m.buf : "unknown handler");
        nsys__text_free(&m);
        nsys_free(known);
    }
    nsys_free(at);
}

/* A low watermark must stay below its high one, the default high standing in
 * when only the low one is given (so the transport cannot be handed a pair
 * that never resumes). */
static void check_watermarks(const cJSON *t, const char *path, nsys_config_diag_t *d,
                             const char *low_key, int low_rc, uint64_t low, const char *high_key,
                             int high_rc, uint64_t high, uint64_t high_default)
{
    if (low_rc != 0 || high_rc == NSYS_EINVAL)
        return;
    uint64_t eff_high = high_rc == 0 ? high : high_default;
    if (low < eff_high)
        return;
    nsys__text_t m;
    nsys__text_init(&m);
    if (high_rc == 0)
        nsys__text_printf(&m, "a size below \"%s\" (", high_key);
    else
        nsys__text_printf(&m, "a size below the default %s (", high_key);
    nsys__text_size(&m, eff_high);
    nsys__text_puts(&m, ")");
    char *at = nsys_config_path_key(path, low_key);
    nsys_config_expected(d, at != NULL ? at : path, cJSON_GetObjectItemCaseSensitive(t, low_key),
                         "%s", m.buf != NULL ? m.buf : "a smaller size");
    nsys_free(at);
    nsys__text_free(&m);
}

void nsys__config_read_transport(const cJSON *t, const char *path, nsys_config_diag_t *d,
                                 nsys_transport_opts_t *o)
{
    nsys_config_check_keys(t, path, transport_keys, COUNT(transport_keys), d);

    int codec = NSYS_CODEC_LENGTH;
    nsys_config_arg_enum(t, path, "codec", codec_names, COUNT(codec_names), &codec, d);
    o->codec = (nsys_codec_t)codec;

    uint64_t v = NSYS_FRAMING_DEFAULT_MAX_PAYLOAD;
    nsys_config_arg_size(t, path, "max_payload", 1, PAYLOAD_MAX, &v, d);
    o->max_payload = (size_t)v;

    uint64_t wh = 0, wl = 0, rh = 0, rl = 0;
    int whrc = nsys_config_arg_size(t, path, "write_high", 1, WATERMARK_MAX, &wh, d);
    int wlrc = nsys_config_arg_size(t, path, "write_low", 1, WATERMARK_MAX, &wl, d);
    int rhrc = nsys_config_arg_size(t, path, "read_high", 1, WATERMARK_MAX, &rh, d);
    int rlrc = nsys_config_arg_size(t, path, "read_low", 1, WATERMARK_MAX, &rl, d);
    check_watermarks(t, path, d, "write_low", wlrc, wl, "write_high", whrc, wh,
                     NSYS_TRANSPORT_WRITE_HIGH_DEFAULT);
    check_watermarks(t, path, d, "read_low", rlrc, rl, "read_high", rhrc, rh,
                     NSYS_TRANSPORT_READ_HIGH_DEFAULT);
    o->write_high = (size_t)wh;
    o->write_low = (size_t)wl;

    /* The hard cap must leave room to pause reading first: at least twice
     * the (effective) write_high. */
    uint64_t lim = 0;
    if (nsys_config_arg_size(t, path, "write_limit", 1, WATERMARK_MAX, &lim, d) == 0) {
        uint64_t eff_high = whrc == 0 ? wh : NSYS_TRANSPORT_WRITE_HIGH_DEFAULT;
        if (whrc != NSYS_EINVAL && lim < 2 * eff_high) {
            nsys__text_t m;
            nsys__text_init(&m);
            nsys__text_puts(&m, whrc == 0 ? "a size of at least twice \"write_high\" ("
                                           : "a size of at least twice the default write_high (");
            nsys__text_size(&m, 2 * eff_high);
            nsys__text_puts(&m, ")");
            char *at = nsys_config_path_key(path, "write_limit");
            nsys_config_expected(d, at != NULL ? at : path,
                                 cJSON_GetObjectItemCaseSensitive(t, "write_limit"), "%s",
                                 m.buf != NULL ? m.buf : "a larger size");
            nsys_free(at);
            nsys__text_free(&m);
        } else {
            o->write_limit = (size_t)lim;
        }
    }
    o->read_high = (size_t)rh;
    o->read_low = (size_t)rl;

    uint64_t ms = 0;
    if (nsys_config_arg_duration(t, path, "idle_timeout", 1, IDLE_MAX_MS, &ms, d) == 0)
        o->idle_timeout_ms = ms;

    bool nodelay = true;
    nsys_config_arg_bool(t, path, "nodelay", &nodelay, d);
    o->nagle = !nodelay;

    ms = 0;
    if (nsys_config_arg_duration(t, path, "keepalive", KEEPALIVE_MIN_MS, KEEPALIVE_MAX_MS, &ms,
                                 d) == 0)
        o->keepalive_s = (unsigned)((ms + 999u) / 1000u); /* whole seconds, rounded up */
}

/* Reads `args` (NULL: absent) at `path` into `o`, reporting every problem to
 * `d`. `o` is complete only when nothing was reported; its strings point into
 * `args`. */
static void read_listener_args(const cJSON *args, const char *path, nsys_config_diag_t *d,
                               nsys_listener_opts_t *o)
{
    *o = (nsys_listener_opts_t){
        .host = LISTENER_HOST_DEFAULT,
        .backlog = NSYS_LISTENER_BACKLOG_DEFAULT,
        .transport = NSYS_TRANSPORT_OPTS_DEFAULTS,
        .owner = NSYS_REF_NONE,
        .observer = NSYS_REF_NONE,
        .accept_backoff_max_ms = LISTENER_ACCEPT_BACKOFF_DEFAULT_MS,
    };
    if (nsys_config_check_object(args, path, d) == NSYS_EINVAL)
        return;
    nsys_config_check_keys(args, path, listener_keys, COUNT(listener_keys), d);

    nsys__config_arg_host(args, path, "host", &o->host, d);

    int64_t n = 0;
    if (nsys_config_require(args, path, "port", d) == 0 &&
        nsys_config_arg_int(args, path, "port", 0, 65535, &n, d) == 0)
        o->port = (uint16_t)n;
    if (nsys_config_arg_int(args, path, "backlog", 1, 65535, &n, d) == 0)
        o->backlog = (int)n;
    bool reuseaddr = true;
    nsys_config_arg_bool(args, path, "reuseaddr", &reuseaddr, d);
    o->no_reuseaddr = !reuseaddr;
    nsys_config_arg_bool(args, path, "reuseport", &o->reuseport, d);
    if (nsys_config_arg_int(args, path, "max_sessions", 0, UINT32_MAX, &n, d) == 0)
        o->max_sessions = (uint32_t)n;

    if (nsys_config_require(args, path, "handler", d) == 0)
        read_handler(args, path, d, o);

    const cJSON *t = NULL;
    if (nsys_config_arg_object(args, path, "transport", &t, d) == 0) {
        char *at = nsys_config_path_key(path, "transport");
        nsys__config_read_transport(t, at != NULL ? at : path, d, &o->transport);
        nsys_free(at);
    }

    uint64_t ms = 0;
    if (nsys_config_arg_duration(args, path, "accept_backoff_max", 1, MS_HOUR, &ms, d) == 0)
        o->accept_backoff_max_ms = ms;
}

static void listener_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    nsys_listener_opts_t scratch;
    read_listener_args(args, path, d, &scratch);
}

/* ---- the behaviour --------------------------------------------------------------- */

/* Filled by nsys__config_builtin_kinds from nsys_listener_behaviour (C cannot
 * initialise a static from another object's fields); read-only afterwards. */
static nsys_behaviour_t listener_kind_behaviour;

/* The child's args (a cJSON copy the supervisor frees after init) become
 * listener options; the listener's init copies what it keeps. Args of a
 * child started at run time were never validated, so they are checked here
 * too, and a bad one fails the start with every problem logged. */
static int listener_kind_init(nsys_ctx_t *ctx, void *state, void *args)
{
    nsys_config_diag_t *d = nsys__diag_new(NULL);
    if (d == NULL)
        return NSYS_ENOMEM;
    nsys_listener_opts_t opts;
    read_listener_args(args, "args", d, &opts);
    int rc = nsys__config_kind_args_done("listener", d);
    if (rc != 0)
        return rc;
    return nsys_listener_behaviour.init(ctx, state, &opts);
}

static const nsys_config_kind_t net_kinds[] = {
    {"listener", &listener_kind_behaviour, listener_validate,
     "TCP listener: accepts on host:port, one session per connection running `handler`"},
};

const nsys_config_kind_t *nsys__config_builtin_kinds(size_t *n)
{
    listener_kind_behaviour = (nsys_behaviour_t){
        .name = "listener",
        .state_size = nsys_listener_behaviour.state_size,
        .init = listener_kind_init,
        .handle = nsys_listener_behaviour.handle,
        .terminate = nsys_listener_behaviour.terminate,
    };
    *n = COUNT(net_kinds);
    return net_kinds;
}
