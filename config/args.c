/* config/args.c — the public helpers behaviour kinds validate their `args`
 * with: known keys, required keys, typed values (integers, booleans,
 * strings, enumerations, durations, sizes, nested objects) and paths of
 * nested values, every error worded and placed the way the loader words and
 * places its own. With a NULL diag they only read, so an init can convert
 * args its validator already checked with the same code.
 * Not for: the document format itself (build.c), value syntax (values.c). */
#include "config/internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting ---------------------------------------------------------------- */

/* Reports `msg` (consumed) at `path` + the segment of `key` (none if NULL). */
static void report(nsys_config_diag_t *d, const char *path, const char *key, nsys__text_t *msg)
{
    nsys__text_t at;
    nsys__text_init(&at);
    nsys__text_puts(&at, path != NULL ? path : "$");
    if (key != NULL)
        nsys__text_key(&at, key);
    nsys_config_error(d, at.oom ? (path != NULL ? path : "$") : at.buf, "%s",
                      msg->buf != NULL ? msg->buf : "invalid value");
    nsys__text_free(&at);
    nsys__text_free(msg);
}

static void vexpected(nsys_config_diag_t *d, const char *path, const char *key, const cJSON *value,
                      bool as_value, const char *fmt, va_list ap)
{
    if (d == NULL)
        return;
    nsys__text_t m;
    nsys__text_init(&m);
    nsys__text_puts(&m, "expected ");
    nsys__text_vprintf(&m, fmt, ap);
    nsys__text_got(&m, value, as_value);
    report(d, path, key, &m);
}

/* "expected <fmt>, got <value>" at path.key; `as_value`: see nsys__text_got. */
static void expected(nsys_config_diag_t *d, const char *path, const char *key, const cJSON *value,
                     bool as_value, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

static void expected(nsys_config_diag_t *d, const char *path, const char *key, const cJSON *value,
                     bool as_value, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vexpected(d, path, key, value, as_value, fmt, ap);
    va_end(ap);
}

void nsys_config_expected(nsys_config_diag_t *d, const char *path, const cJSON *value,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vexpected(d, path, NULL, value, true, fmt, ap);
    va_end(ap);
}

/* ---- objects and keys ---------------------------------------------------------- */

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) && key != NULL ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

int nsys_config_check_object(const cJSON *value, const char *path, nsys_config_diag_t *d)
{
    if (value == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsObject(value))
        return 0;
    expected(d, path, NULL, value, false, "an object");
    return NSYS_EINVAL;
}

/* True if a member before `it` has the same key. */
static bool seen_before(const cJSON *obj, const cJSON *it)
{
    for (const cJSON *p = obj->child; p != it; p = p->next)
        if (p->string != NULL && it->string != NULL && strcmp(p->string, it->string) == 0)
            return true;
    return false;
}

void nsys_config_check_keys(const cJSON *obj, const char *path, const char *const *keys, size_t n,
                            nsys_config_diag_t *d)
{
    if (d == NULL || !cJSON_IsObject(obj))
        return;
    for (const cJSON *it = obj->child; it != NULL; it = it->next) {
        const char *key = it->string != NULL ? it->string : "";
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(key, keys[i]) == 0;
        if (known || seen_before(obj, it))
            continue;
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_unknown_key(&m, key, keys, n);
        report(d, path, key, &m);
    }
}

int nsys_config_require(const cJSON *obj, const char *path, const char *key, nsys_config_diag_t *d)
{
    if (member(obj, key) != NULL)
        return 0;
    if (d != NULL)
        nsys_config_error(d, path != NULL ? path : "$", "missing required key \"%s\"",
                          key != NULL ? key : "");
    return NSYS_ENOENT;
}

/* ---- typed values ------------------------------------------------------------ */

int nsys_config_arg_int(const cJSON *obj, const char *path, const char *key, int64_t min,
                        int64_t max, int64_t *out, nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsNumber(it)) {
        double v = it->valuedouble;
        /* 2^63 is the first double past INT64_MAX; (double)max may round up to it. */
        if (v >= (double)min && v <= (double)max && v < 9223372036854775808.0 &&
            (double)(int64_t)v == v && (int64_t)v >= min && (int64_t)v <= max) {
            if (out != NULL)
                *out = (int64_t)v;
            return 0;
        }
    }
    expected(d, path, key, it, cJSON_IsNumber(it), "an integer %" PRId64 "..%" PRId64, min, max);
    return NSYS_EINVAL;
}

int nsys_config_arg_bool(const cJSON *obj, const char *path, const char *key, bool *out,
                         nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsBool(it)) {
        if (out != NULL)
            *out = cJSON_IsTrue(it);
        return 0;
    }
    expected(d, path, key, it, false, "true or false");
    return NSYS_EINVAL;
}

int nsys_config_arg_string(const cJSON *obj, const char *path, const char *key, const char **out,
                           nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsString(it)) {
        if (out != NULL)
            *out = it->valuestring;
        return 0;
    }
    expected(d, path, key, it, false, "a string");
    return NSYS_EINVAL;
}

int nsys_config_arg_enum(const cJSON *obj, const char *path, const char *key,
                         const char *const *names, size_t n, int *index, nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsString(it))
        for (size_t i = 0; i < n; i++)
            if (strcmp(it->valuestring, names[i]) == 0) {
                if (index != NULL)
                    *index = (int)i;
                return 0;
            }
    if (d != NULL) {
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_puts(&m, "expected one of ");
        nsys__text_quoted_list(&m, names, n);
        nsys__text_got(&m, it, cJSON_IsString(it));
        report(d, path, key, &m);
    }
    return NSYS_EINVAL;
}

int nsys_config_arg_number(const cJSON *obj, const char *path, const char *key, double min,
                           double max, double *out, nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsNumber(it) && it->valuedouble >= min && it->valuedouble <= max) {
        if (out != NULL)
            *out = it->valuedouble;
        return 0;
    }
    if (d != NULL) {
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_puts(&m, "expected a number ");
        nsys__text_number(&m, min);
        nsys__text_puts(&m, "..");
        nsys__text_number(&m, max);
        nsys__text_got(&m, it, cJSON_IsNumber(it));
        report(d, path, key, &m);
    }
    return NSYS_EINVAL;
}

/* A value of "<integer><unit>" form: duration (ms) or size (bytes). */
typedef struct unit_kind {
    int (*parse)(const char *text, uint64_t *out);
    void (*format)(nsys__text_t *t, uint64_t v);
    const char *what;    /* "a duration" */
    const char *example; /* "\"500ms\" or \"5s\"" */
} unit_kind_t;

static int arg_units(const unit_kind_t *k, const cJSON *obj, const char *path, const char *key,
                     uint64_t min, uint64_t max, uint64_t *out, nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    uint64_t v = 0;
    int rc = cJSON_IsString(it) ? k->parse(it->valuestring, &v) : NSYS_EINVAL;
    if (rc == 0 && v >= min && v <= max) {
        if (out != NULL)
            *out = v;
        return 0;
    }
    if (d != NULL) {
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_printf(&m, "expected %s ", k->what);
        if (rc == NSYS_EINVAL) {
            nsys__text_printf(&m, "such as %s", k->example);
        } else { /* out of range, or too big for 64 bits */
            k->format(&m, min);
            nsys__text_puts(&m, "..");
            k->format(&m, max);
        }
        nsys__text_got(&m, it, cJSON_IsString(it));
        report(d, path, key, &m);
    }
    return NSYS_EINVAL;
}

int nsys_config_arg_duration(const cJSON *obj, const char *path, const char *key, uint64_t min_ms,
                             uint64_t max_ms, uint64_t *ms, nsys_config_diag_t *d)
{
    static const unit_kind_t k = {nsys_config_parse_duration, nsys__text_ms, "a duration",
                                  "\"500ms\" or \"5s\""};
    return arg_units(&k, obj, path, key, min_ms, max_ms, ms, d);
}

int nsys_config_arg_size(const cJSON *obj, const char *path, const char *key, uint64_t min,
                         uint64_t max, uint64_t *bytes, nsys_config_diag_t *d)
{
    static const unit_kind_t k = {nsys_config_parse_size, nsys__text_size, "a size",
                                  "\"64KiB\" or \"1MiB\""};
    return arg_units(&k, obj, path, key, min, max, bytes, d);
}

int nsys_config_arg_object(const cJSON *obj, const char *path, const char *key, const cJSON **out,
                           nsys_config_diag_t *d)
{
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return NSYS_ENOENT;
    if (cJSON_IsObject(it)) {
        if (out != NULL)
            *out = it;
        return 0;
    }
    expected(d, path, key, it, false, "an object");
    return NSYS_EINVAL;
}

/* ---- paths ----------------------------------------------------------------------- */

static char *text_take(nsys__text_t *t)
{
    if (t->oom) {
        nsys__text_free(t);
        return NULL;
    }
    return t->buf; /* malloc'd: nsys_free is free */
}

char *nsys_config_path_key(const char *path, const char *key)
{
    nsys__text_t t;
    nsys__text_init(&t);
    nsys__text_puts(&t, path != NULL ? path : "$");
    nsys__text_key(&t, key != NULL ? key : "");
    return text_take(&t);
}

char *nsys_config_path_index(const char *path, size_t i)
{
    nsys__text_t t;
    nsys__text_init(&t);
    nsys__text_puts(&t, path != NULL ? path : "$");
    nsys__text_printf(&t, "[%zu]", i);
    return text_take(&t);
}

int nsys__config_arg_host(const cJSON *obj, const char *path, const char *key, const char **out,
                          nsys_config_diag_t *d)
{
    const char *host = NULL;
    int rc = nsys_config_arg_string(obj, path, key, &host, d);
    if (rc != 0)
        return rc;
    size_t n = strlen(host);
    if (n == 0 || n > NSYS__CONFIG_HOST_MAX) {
        char *at = nsys_config_path_key(path, key);
        nsys_config_expected(d, at != NULL ? at : path, cJSON_GetObjectItemCaseSensitive(obj, key),
                             "a host name or address of 1..%d characters", NSYS__CONFIG_HOST_MAX);
        nsys_free(at);
        return NSYS_EINVAL;
    }
    *out = host;
    return 0;
}

/* ---- shared readers of the built-in kinds -------------------------------------- */

#define BACKOFF_MS_MIN 1u
#define BACKOFF_MS_MAX UINT64_C(3600000) /* 1h */

static const char *const backoff_keys[] = {"initial", "max", "multiplier", "jitter",
                                           "reset_after"};

void nsys__config_read_backoff(const cJSON *obj, const char *path, nsys_config_diag_t *d,
                               const char *const *extra_keys, size_t nextra,
                               uint64_t default_initial_ms, uint64_t default_max_ms,
                               nsys_backoff_opts_t *b)
{
    enum { NBACKOFF = sizeof backoff_keys / sizeof backoff_keys[0], EXTRA_MAX = 8 };
    const char *keys[NBACKOFF + EXTRA_MAX];
    size_t nkeys = 0;
    for (size_t i = 0; i < NBACKOFF; i++)
        keys[nkeys++] = backoff_keys[i];
    for (size_t i = 0; i < nextra && i < EXTRA_MAX; i++)
        keys[nkeys++] = extra_keys[i];
    nsys_config_check_keys(obj, path, keys, nkeys, d);
    uint64_t initial = 0, max = 0, reset = 0;
    int ri = nsys_config_arg_duration(obj, path, "initial", BACKOFF_MS_MIN, BACKOFF_MS_MAX,
                                      &initial, d);
    int rm = nsys_config_arg_duration(obj, path, "max", BACKOFF_MS_MIN, BACKOFF_MS_MAX, &max, d);
    double multiplier = 0.0, jitter = 0.0;
    if (nsys_config_arg_number(obj, path, "multiplier", 1.0, 100.0, &multiplier, d) == 0)
        b->multiplier = multiplier;
    if (nsys_config_arg_number(obj, path, "jitter", 0.0, 1.0, &jitter, d) == 0)
        b->jitter = jitter == 0.0 ? NSYS_BACKOFF_NO_JITTER : jitter;
    if (nsys_config_arg_duration(obj, path, "reset_after", BACKOFF_MS_MIN, BACKOFF_MS_MAX, &reset,
                                 d) == 0)
        b->reset_after_ms = reset;
    if (ri == 0)
        b->initial_ms = initial;
    if (rm == 0)
        b->max_ms = max;

    /* initial <= max, with the caller's defaults standing in for an absent
     * one, so the policy cannot fail later when its actor starts. */
    if (ri == NSYS_EINVAL || rm == NSYS_EINVAL || (ri == NSYS_ENOENT && rm == NSYS_ENOENT))
        return;
    uint64_t eff_initial = ri == 0 ? initial : default_initial_ms;
    uint64_t eff_max = rm == 0 ? max : default_max_ms;
    if (eff_initial <= eff_max || d == NULL)
        return;
    nsys__text_t m;
    nsys__text_init(&m);
    const char *key;
    if (ri == 0) {
        key = "initial";
        nsys__text_puts(&m, rm == 0 ? "expected a duration no longer than \"max\" ("
                                    : "expected a duration no longer than the default max (");
        nsys__text_ms(&m, eff_max);
    } else {
        key = "max";
        nsys__text_puts(&m, "expected a duration no shorter than the default initial (");
        nsys__text_ms(&m, eff_initial);
    }
    nsys__text_puts(&m, ")");
    nsys__text_got(&m, member(obj, key), true);
    report(d, path, key, &m);
}

int nsys__config_kind_args_done(const char *kind, nsys_config_diag_t *d)
{
    size_t nerr = nsys_config_diag_count(d);
    bool oom = d->oom;
    for (size_t i = 0; i < nerr; i++)
        NSYS_LOG(NSYS_LOG_ERROR, "%s: %s: %s", kind, nsys_config_diag_path(d, i),
                 nsys_config_diag_message(d, i));
    nsys_config_diag_free(d);
    return nerr > 0 ? NSYS_ECONFIG : oom ? NSYS_ENOMEM : 0;
}
