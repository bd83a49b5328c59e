/* config/proxy_kind.c — the behaviour kind "proxy" for documents: a
 * fault-injecting TCP proxy (actors/proxy.c, <netsys/proxy.h>) whose args say
 * where to listen, where to forward, and which faults to inject, now and on a
 * schedule. As in net_kinds.c, one function reads the args into
 * nsys_proxy_opts_t for both the validator (every error with its path) and
 * the init (args nobody may have checked yet). docs/CONFIG.md lists every
 * key. Not for: the proxy itself, or registering kinds (registry.c). */
#include "config/internal.h"

#include <netsys/proxy.h>

#include <stdlib.h>
#include <string.h>

#define HOST_DEFAULT "127.0.0.1"
#define MS_HOUR UINT64_C(3600000) /* connect_timeout's bound */
#define SIZE_TIB (UINT64_C(1) << 40) /* reset_after's bound */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const proxy_keys[] = {"host",
                                         "port",
                                         "upstream_host",
                                         "upstream_port",
                                         "connect_timeout",
                                         "max_connections",
                                         "max_buffered",
                                         "faults",
                                         "schedule",
                                         "repeat"};
static const char *const faults_keys[] = {"latency",     "jitter",    "bandwidth", "reset_every",
                                          "reset_after", "blackhole", "refuse",    "refuse_for"};
static const char *const step_keys[] = {"at", "faults"};

/* The parsed args; strings point into the document. */
typedef struct proxy_args {
    nsys_proxy_opts_t o;
    nsys_proxy_step_t *steps; /* malloc'd, o.schedule points here */
} proxy_args_t;

/* A "faults" object at `path`. */
static void read_faults(const cJSON *f, const char *path, nsys_config_diag_t *d,
                        nsys_proxy_faults_t *out)
{
    memset(out, 0, sizeof *out);
    nsys_config_check_keys(f, path, faults_keys, COUNT(faults_keys), d);
    uint64_t v = 0;
    if (nsys_config_arg_duration(f, path, "latency", 0, NSYS_PROXY_DELAY_MAX_MS, &v, d) == 0)
        out->latency_ms = (uint32_t)v;
    if (nsys_config_arg_duration(f, path, "jitter", 0, NSYS_PROXY_DELAY_MAX_MS, &v, d) == 0)
        out->jitter_ms = (uint32_t)v;
    if (nsys_config_arg_size(f, path, "bandwidth", 0, NSYS_PROXY_BANDWIDTH_MAX, &v, d) == 0)
        out->bandwidth = v;
    if (nsys_config_arg_duration(f, path, "reset_every", 0, NSYS_PROXY_PERIOD_MAX_MS, &v, d) == 0)
        out->reset_every_ms = v;
    if (nsys_config_arg_size(f, path, "reset_after", 0, SIZE_TIB, &v, d) == 0)
        out->reset_after_bytes = v;
    nsys_config_arg_bool(f, path, "blackhole", &out->blackhole, d);
    nsys_config_arg_bool(f, path, "refuse", &out->refuse, d);
    if (nsys_config_arg_duration(f, path, "refuse_for", 0, NSYS_PROXY_PERIOD_MAX_MS, &v, d) == 0)
        out->refuse_for_ms = v;
}

/* The "faults" key of `obj`, if present. */
static void read_faults_key(const cJSON *obj, const char *path, nsys_config_diag_t *d,
                            nsys_proxy_faults_t *out)
{
    const cJSON *f = NULL;
    memset(out, 0, sizeof *out);
    if (nsys_config_arg_object(obj, path, "faults", &f, d) != 0)
        return;
    char *at = nsys_config_path_key(path, "faults");
    read_faults(f, at != NULL ? at : path, d, out);
    nsys_free(at);
}

/* "schedule": an array of {"at": duration, "faults": {...}} in time order. */
static void read_schedule(const cJSON *args, const char *path, nsys_config_diag_t *d,
                          proxy_args_t *pa)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(args, "schedule");
    if (arr == NULL)
        return;
    char *at = nsys_config_path_key(path, "schedule");
    const char *where = at != NULL ? at : path;
    if (!cJSON_IsArray(arr)) {
        nsys_config_expected(d, where, arr, "an array of steps");
        nsys_free(at);
        return;
    }
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > (int)NSYS_PROXY_SCHEDULE_MAX) {
        nsys_config_error(d, where, "expected 1..%u steps, got %d", NSYS_PROXY_SCHEDULE_MAX, n);
        nsys_free(at);
        return;
    }
    pa->steps = calloc((size_t)n, sizeof *pa->steps);
    if (pa->steps == NULL) {
        nsys_config_error(d, where, "out of memory");
        nsys_free(at);
        return;
    }
    uint64_t prev = 0;
    int i = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, arr)
    {
        char *sp = nsys_config_path_index(where, (size_t)i);
        const char *spath = sp != NULL ? sp : where;
        nsys_proxy_step_t *st = &pa->steps[i++];
        if (nsys_config_check_object(step, spath, d) != 0) {
            nsys_free(sp);
            continue;
        }
        nsys_config_check_keys(step, spath, step_keys, COUNT(step_keys), d);
        uint64_t ms = 0;
        if (nsys_config_require(step, spath, "at", d) == 0 &&
            nsys_config_arg_duration(step, spath, "at", 0, NSYS_PROXY_PERIOD_MAX_MS, &ms, d) == 0) {
            if (ms < prev) {
                char *ap = nsys_config_path_key(spath, "at");
                nsys__text_t m;
                nsys__text_init(&m);
                nsys__text_puts(&m, "a duration not below the step before (");
                nsys__text_ms(&m, prev);
                nsys__text_puts(&m, ")");
                nsys_config_expected(d, ap != NULL ? ap : spath,
                                     cJSON_GetObjectItemCaseSensitive(step, "at"), "%s",
                                     m.buf != NULL ? m.buf : "a later time");
                nsys__text_free(&m);
                nsys_free(ap);
            }
            prev = ms;
            st->at_ms = ms;
        }
        read_faults_key(step, spath, d, &st->faults);
        nsys_free(sp);
    }
    pa->o.schedule = pa->steps;
    pa->o.schedule_len = (size_t)n;
    nsys_free(at);
}

/* Reads `args` at `path` into `pa` (free pa->steps after), reporting every
 * problem to `d`; the options are complete only when nothing was reported. */
static void read_proxy_args(const cJSON *args, const char *path, nsys_config_diag_t *d,
                            proxy_args_t *pa)
{
    memset(pa, 0, sizeof *pa);
    pa->o.listen_host = HOST_DEFAULT;
    pa->o.upstream_host = HOST_DEFAULT;
    if (nsys_config_check_object(args, path, d) == NSYS_EINVAL)
        return;
    nsys_config_check_keys(args, path, proxy_keys, COUNT(proxy_keys), d);

    nsys__config_arg_host(args, path, "host", &pa->o.listen_host, d);
    int64_t n = 0;
    if (nsys_config_require(args, path, "port", d) == 0 &&
        nsys_config_arg_int(args, path, "port", 0, 65535, &n, d) == 0)
        pa->o.listen_port = (uint16_t)n;
    nsys__config_arg_host(args, path, "upstream_host", &pa->o.upstream_host, d);
    if (nsys_config_require(args, path, "upstream_port", d) == 0 &&
        nsys_config_arg_int(args, path, "upstream_port", 1, 65535, &n, d) == 0)
        pa->o.upstream_port = (uint16_t)n;
    uint64_t v = 0;
    if (nsys_config_arg_duration(args, path, "connect_timeout", 1, MS_HOUR, &v, d) == 0)
        pa->o.connect_timeout_ms = v;
    if (nsys_config_arg_int(args, path, "max_connections", 0, UINT32_MAX, &n, d) == 0)
        pa->o.max_connections = (uint32_t)n;
    if (nsys_config_arg_size(args, path, "max_buffered", 1024, NSYS_PROXY_MAX_BUFFERED_MAX, &v,
                             d) == 0)
        pa->o.max_buffered = (size_t)v;
    read_faults_key(args, path, d, &pa->o.faults);
    read_schedule(args, path, d, pa);
    if (nsys_config_arg_duration(args, path, "repeat", 1, NSYS_PROXY_PERIOD_MAX_MS, &v, d) == 0) {
        char *at = nsys_config_path_key(path, "repeat");
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(args, "repeat");
        if (pa->o.schedule_len == 0 && cJSON_GetObjectItemCaseSensitive(args, "schedule") == NULL) {
            nsys_config_error(d, at != NULL ? at : path, "repeats nothing: add a \"schedule\"");
        } else if (pa->o.schedule_len > 0 && v <= pa->steps[pa->o.schedule_len - 1].at_ms) {
            nsys__text_t m;
            nsys__text_init(&m);
            nsys__text_puts(&m, "a duration above the last step's \"at\" (");
            nsys__text_ms(&m, pa->steps[pa->o.schedule_len - 1].at_ms);
            nsys__text_puts(&m, ")");
            nsys_config_expected(d, at != NULL ? at : path, it, "%s",
                                 m.buf != NULL ? m.buf : "a longer duration");
            nsys__text_free(&m);
        } else {
            pa->o.repeat_ms = v;
        }
        nsys_free(at);
    }
}

static void proxy_validate(const cJSON *args, const char *path, nsys_config_diag_t *d)
{
    proxy_args_t pa;
    read_proxy_args(args, path, d, &pa);
    free(pa.steps);
}

/* ---- the behaviour --------------------------------------------------------------- */

/* Filled by nsys__config_proxy_kinds from nsys_proxy_behaviour; read-only
 * afterwards. */
static nsys_behaviour_t proxy_kind_behaviour;

/* As the listener kind: args (the supervisor's copy, valid during init)
 * become options, checked again here for children started at run time. */
static int proxy_kind_init(nsys_ctx_t *ctx, void *state, void *args)
{
    nsys_config_diag_t *d = nsys__diag_new(NULL);
    if (d == NULL)
        return NSYS_ENOMEM;
    proxy_args_t pa;
    read_proxy_args(args, "args", d, &pa);
    int rc = nsys__config_kind_args_done("proxy", d);
    if (rc == 0)
        rc = nsys_proxy_behaviour.init(ctx, state, &pa.o);
    free(pa.steps);
    return rc;
}

static const nsys_config_kind_t proxy_kinds[] = {
    {"proxy", &proxy_kind_behaviour, proxy_validate,
     "TCP proxy: forwards host:port to upstream_host:upstream_port, injecting `faults`"},
};

const nsys_config_kind_t *nsys__config_proxy_kinds(size_t *n)
{
    proxy_kind_behaviour = (nsys_behaviour_t){
        .name = "proxy",
        .state_size = nsys_proxy_behaviour.state_size,
        .init = proxy_kind_init,
        .handle = nsys_proxy_behaviour.handle,
        .terminate = nsys_proxy_behaviour.terminate,
    };
    *n = COUNT(proxy_kinds);
    return proxy_kinds;
}
