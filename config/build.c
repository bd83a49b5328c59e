/* config/build.c — what a document means: walks the parsed JSON once,
 * checking every key and value against the format in docs/CONFIG.md and
 * building the runtime options and the supervisor spec tree as it goes.
 * Every error is collected (with its JSON path); if there is any, the tree
 * built so far is thrown away, so an invalid document never yields a config.
 * Also owns nsys_config_t and its accessors. Not for: syntax, limits and
 * files (load.c), or starting anything (actors/supervisor.c). */
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>

/* Everything a config owns besides the document: spec nodes and child arrays,
 * one allocation each, on one list. */
typedef union alloc_node {
    union alloc_node *next;
    max_align_t align_;
} alloc_node_t;

struct nsys_config {
    cJSON *doc;           /* owned; ids and args point into it */
    alloc_node_t *allocs; /* owned */
    nsys_runtime_opts_t runtime;
    nsys_log_level_t log_level;
    const nsys_sup_spec_t *root;
    char name[64];
};

typedef struct vctx {
    nsys_config_diag_t *d;
    nsys_config_t *cfg;
    nsys__text_t path;         /* the JSON path of the value being checked */
    nsys_config_kind_t *kinds; /* registry snapshot, in registration order */
    const char **kind_names;
    size_t nkinds;
    bool oom;
} vctx_t;

typedef enum vres { V_ABSENT = 0, V_OK = 1, V_BAD = 2 } vres_t;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- memory ------------------------------------------------------------------- */

static void *cfg_calloc(vctx_t *v, size_t n, size_t size)
{
    if (n == 0)
        n = 1;
    if (n > (SIZE_MAX - sizeof(alloc_node_t)) / size) {
        v->oom = true;
        return NULL;
    }
    alloc_node_t *node = calloc(1, sizeof(alloc_node_t) + n * size);
    if (node == NULL) {
        v->oom = true;
        return NULL;
    }
    node->next = v->cfg->allocs;
    v->cfg->allocs = node;
    return node + 1;
}

/* ---- paths and errors ---------------------------------------------------------- */

static const char *path_str(vctx_t *v)
{
    if (v->path.oom) {
        v->oom = true;
        return "$";
    }
    return v->path.buf;
}

static size_t push_key(vctx_t *v, const char *key)
{
    size_t mark = v->path.len;
    nsys__text_key(&v->path, key);
    return mark;
}

static size_t push_index(vctx_t *v, size_t i)
{
    size_t mark = v->path.len;
    nsys__text_printf(&v->path, "[%zu]", i);
    return mark;
}

static void pop(vctx_t *v, size_t mark)
{
    if (v->path.buf != NULL && mark <= v->path.len) {
        v->path.len = mark;
        v->path.buf[mark] = '\0';
    }
}

static void err_text(vctx_t *v, nsys__text_t *msg)
{
    if (msg->oom)
        v->oom = true;
    nsys_config_error(v->d, path_str(v), "%s", msg->buf != NULL ? msg->buf : "invalid value");
    nsys__text_free(msg);
}

static void err(vctx_t *v, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void err(vctx_t *v, const char *fmt, ...)
{
    nsys__text_t m;
    nsys__text_init(&m);
    va_list ap;
    va_start(ap, fmt);
    nsys__text_vprintf(&m, fmt, ap);
    va_end(ap);
    err_text(v, &m);
}

static void err_expected(vctx_t *v, const cJSON *item, bool as_value, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void err_expected(vctx_t *v, const cJSON *item, bool as_value, const char *fmt, ...)
{
    nsys__text_t m;
    nsys__text_init(&m);
    nsys__text_puts(&m, "expected ");
    va_list ap;
    va_start(ap, fmt);
    nsys__text_vprintf(&m, fmt, ap);
    va_end(ap);
    nsys__text_got(&m, item, as_value);
    err_text(v, &m);
}

/* ---- string sets (duplicate keys and ids) ------------------------------------ */

typedef struct strset {
    const char **keys;
    size_t *vals;
    size_t mask;
} strset_t;

static bool strset_init(vctx_t *v, strset_t *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    s->keys = calloc(cap, sizeof *s->keys);
    s->vals = calloc(cap, sizeof *s->vals);
    s->mask = cap - 1;
    if (s->keys == NULL || s->vals == NULL) {
        free(s->keys);
        free(s->vals);
        s->keys = NULL;
        s->vals = NULL;
        v->oom = true;
        return false;
    }
    return true;
}

static void strset_free(strset_t *s)
{
    free(s->keys);
    free(s->vals);
}

/* Adds key -> val; if the key is already there, leaves it and returns true
 * with its value in *first. */
static bool strset_add(strset_t *s, const char *key, size_t val, size_t *first)
{
    uint64_t h = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211u;
    for (size_t i = (size_t)h & s->mask;; i = (i + 1) & s->mask) {
        if (s->keys[i] == NULL) {
            s->keys[i] = key;
            s->vals[i] = val;
            return false;
        }
        if (strcmp(s->keys[i], key) == 0) {
            *first = s->vals[i];
            return true;
        }
    }
}

static const char *member_key(const cJSON *item)
{
    return item->string != NULL ? item->string : "";
}

/* Reports every repeated key of `obj` (cJSON keeps all of them; lookups see
 * the first) and returns per-member flags for them (NULL: none, or no
 * memory). Freed with free(). */
static bool *check_duplicate_keys(vctx_t *v, const cJSON *obj)
{
    size_t n = 0;
    for (const cJSON *it = obj->child; it != NULL; it = it->next)
        n++;
    if (n < 2)
        return NULL;
    strset_t set;
    if (!strset_init(v, &set, n))
        return NULL;
    bool *dup = NULL;
    size_t i = 0, first;
    for (const cJSON *it = obj->child; it != NULL; it = it->next, i++) {
        if (!strset_add(&set, member_key(it), i, &first))
            continue;
        if (dup == NULL && (dup = calloc(n, sizeof *dup)) == NULL)
            v->oom = true;
        if (dup != NULL)
            dup[i] = true;
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_puts(&m, "duplicate key ");
        nsys__text_quote(&m, member_key(it), strlen(member_key(it)), 64);
        err_text(v, &m);
    }
    strset_free(&set);
    return dup;
}

/* Unknown and repeated keys of an object of the format. */
static void check_keys(vctx_t *v, const cJSON *obj, const char *const *allowed, size_t nallowed)
{
    bool *dup = check_duplicate_keys(v, obj);
    size_t i = 0;
    for (const cJSON *it = obj->child; it != NULL; it = it->next, i++) {
        if (dup != NULL && dup[i])
            continue;
        const char *key = member_key(it);
        bool known = false;
        for (size_t k = 0; k < nallowed && !known; k++)
            known = strcmp(key, allowed[k]) == 0;
        if (known)
            continue;
        size_t mark = push_key(v, key);
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_unknown_key(&m, key, allowed, nallowed);
        err_text(v, &m);
        pop(v, mark);
    }
    free(dup);
}

/* Repeated keys anywhere inside an open value (args). */
static void check_duplicates_deep(vctx_t *v, const cJSON *item)
{
    if (cJSON_IsObject(item)) {
        free(check_duplicate_keys(v, item));
        for (const cJSON *it = item->child; it != NULL; it = it->next) {
            if (!cJSON_IsObject(it) && !cJSON_IsArray(it))
                continue;
            size_t mark = push_key(v, member_key(it));
            check_duplicates_deep(v, it);
            pop(v, mark);
        }
    } else if (cJSON_IsArray(item)) {
        size_t i = 0;
        for (const cJSON *it = item->child; it != NULL; it = it->next, i++) {
            if (!cJSON_IsObject(it) && !cJSON_IsArray(it))
                continue;
            size_t mark = push_index(v, i);
            check_duplicates_deep(v, it);
            pop(v, mark);
        }
    }
}

/* ---- typed fields ------------------------------------------------------------- */

static const cJSON *field(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static void missing(vctx_t *v, const char *key, const char *why)
{
    err(v, "missing required key \"%s\"%s", key, why != NULL ? why : "");
}

static vres_t get_int(vctx_t *v, const cJSON *obj, const char *key, long long min, long long max,
                      long long *out)
{
    const cJSON *it = field(obj, key);
    if (it == NULL)
        return V_ABSENT;
    size_t mark = push_key(v, key);
    vres_t r = V_BAD;
    if (!cJSON_IsNumber(it)) {
        err_expected(v, it, false, "an integer %lld..%lld", min, max);
    } else {
        double d = it->valuedouble;
        if (d >= (double)min && d <= (double)max && (double)(long long)d == d) {
            *out = (long long)d;
            r = V_OK;
        } else {
            err_expected(v, it, true, "an integer %lld..%lld", min, max);
        }
    }
    pop(v, mark);
    return r;
}

static vres_t get_enum(vctx_t *v, const cJSON *obj, const char *key, const char *const *names,
                       size_t n, int *out)
{
    const cJSON *it = field(obj, key);
    if (it == NULL)
        return V_ABSENT;
    if (cJSON_IsString(it))
        for (size_t i = 0; i < n; i++)
            if (strcmp(it->valuestring, names[i]) == 0) {
                *out = (int)i;
                return V_OK;
            }
    size_t mark = push_key(v, key);
    nsys__text_t m;
    nsys__text_init(&m);
    nsys__text_puts(&m, "expected one of ");
    nsys__text_quoted_list(&m, names, n);
    nsys__text_got(&m, it, cJSON_IsString(it));
    err_text(v, &m);
    pop(v, mark);
    return V_BAD;
}

#define DURATION_EXAMPLE "a duration such as \"500ms\" or \"5s\""

/* A duration in ms (or us when `micro`) within [min, max]; `range` spells the
 * bounds for messages ("1ms..1h"). */
static vres_t get_duration(vctx_t *v, const cJSON *obj, const char *key, bool micro, uint64_t min,
                           uint64_t max, const char *range, uint64_t *out)
{
    const cJSON *it = field(obj, key);
    if (it == NULL)
        return V_ABSENT;
    size_t mark = push_key(v, key);
    vres_t r = V_BAD;
    uint64_t val = 0;
    int rc = NSYS_EINVAL;
    if (cJSON_IsString(it))
        rc = micro ? nsys_config_parse_duration_us(it->valuestring, &val)
                   : nsys_config_parse_duration(it->valuestring, &val);
    if (rc == NSYS_EINVAL) {
        err_expected(v, it, cJSON_IsString(it), DURATION_EXAMPLE);
    } else if (rc != 0 || val < min || val > max) {
        err_expected(v, it, true, "a duration %s", range);
    } else {
        *out = val;
        r = V_OK;
    }
    pop(v, mark);
    return r;
}

static vres_t get_name(vctx_t *v, const cJSON *obj, const char *key, const char *what,
                       const char **out)
{
    const cJSON *it = field(obj, key);
    if (it == NULL)
        return V_ABSENT;
    if (cJSON_IsString(it) && nsys__config_valid_name(it->valuestring)) {
        *out = it->valuestring;
        return V_OK;
    }
    size_t mark = push_key(v, key);
    err_expected(v, it, cJSON_IsString(it), "%s of 1..63 characters from A-Z a-z 0-9 _ . -", what);
    pop(v, mark);
    return V_BAD;
}

/* An object or array value; reports any other type. */
static vres_t get_typed(vctx_t *v, const cJSON *obj, const char *key, int type, const cJSON **out)
{
    const cJSON *it = field(obj, key);
    if (it == NULL)
        return V_ABSENT;
    if ((it->type & 0xFF) == type) {
        *out = it;
        return V_OK;
    }
    size_t mark = push_key(v, key);
    err_expected(v, it, false, "%s", type == cJSON_Object ? "an object" : "an array");
    pop(v, mark);
    return V_BAD;
}

/* A key that must not be there; true if it was (and was reported). */
static bool forbid(vctx_t *v, const cJSON *obj, const char *key, const char *why)
{
    if (field(obj, key) == NULL)
        return false;
    size_t mark = push_key(v, key);
    err(v, "%s", why);
    pop(v, mark);
    return true;
}

/* ---- the tree ------------------------------------------------------------------ */

static const char *const top_keys[] = {"name", "runtime", "supervisor"};
static const char *const runtime_keys[] = {"schedulers",       "batch",      "spin",
                                           "shutdown_timeout", "max_actors", "log_level"};
static const char *const sup_keys[] = {"strategy", "intensity", "period",
                                       "backoff",  "children",  "template"};
static const char *const child_keys[] = {"id",      "type",     "behaviour", "args",
                                         "restart", "shutdown", "supervisor"};

/* Indexed by nsys_strategy_t, nsys_restart_t, nsys_child_type_t and
 * nsys_log_level_t. */
static const char *const strategy_names[] = {"one_for_one", "one_for_all", "rest_for_one",
                                             "simple_one_for_one"};
static const char *const restart_names[] = {"permanent", "transient", "temporary"};
static const char *const type_names[] = {"worker", "supervisor"};
static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

#define MS_MIN 1u
#define MS_MAX 3600000u /* 1h */
#define MS_RANGE "1ms..1h"

static const nsys_sup_spec_t *build_sup(vctx_t *v, const cJSON *obj);

static const nsys_config_kind_t *find_kind(vctx_t *v, const char *name)
{
    for (size_t i = 0; i < v->nkinds; i++)
        if (strcmp(v->kinds[i].name, name) == 0)
            return &v->kinds[i];
    return NULL;
}

/* "behaviour": a registered kind; NULL (reported) if it is not one. */
static const nsys_config_kind_t *check_behaviour(vctx_t *v, const cJSON *it)
{
    size_t mark = push_key(v, "behaviour");
    const nsys_config_kind_t *kind = NULL;
    if (!cJSON_IsString(it)) {
        err_expected(v, it, false, "a behaviour name");
    } else if ((kind = find_kind(v, it->valuestring)) == NULL) {
        nsys__text_t m;
        nsys__text_init(&m);
        nsys__text_puts(&m, "unknown behaviour ");
        nsys__text_quote(&m, it->valuestring, strlen(it->valuestring), 64);
        const char *hint = nsys__config_suggest(it->valuestring, v->kind_names, v->nkinds);
        if (hint != NULL) {
            nsys__text_puts(&m, "; did you mean ");
            nsys__text_quote(&m, hint, strlen(hint), 64);
            nsys__text_puts(&m, "?");
        }
        if (v->nkinds == 0) {
            nsys__text_puts(&m, "; no behaviours are registered");
        } else {
            nsys__text_puts(&m, hint != NULL ? " known: " : "; known: ");
            nsys__text_quoted_list(&m, v->kind_names, v->nkinds);
        }
        err_text(v, &m);
    }
    pop(v, mark);
    return kind;
}

static void check_shutdown(vctx_t *v, const cJSON *obj, nsys_child_spec_t *out)
{
    const cJSON *it = field(obj, "shutdown");
    if (it == NULL)
        return;
    if (cJSON_IsString(it) && strcmp(it->valuestring, "brutal") == 0) {
        out->shutdown_ms = NSYS_SHUTDOWN_BRUTAL;
        return;
    }
    if (cJSON_IsString(it) && strcmp(it->valuestring, "infinity") == 0) {
        out->shutdown_ms = NSYS_SHUTDOWN_INFINITY;
        return;
    }
    size_t mark = push_key(v, "shutdown");
    uint64_t ms = 0;
    int rc = cJSON_IsString(it) ? nsys_config_parse_duration(it->valuestring, &ms) : NSYS_EINVAL;
    if (rc == NSYS_EINVAL)
        err_expected(v, it, cJSON_IsString(it),
                     "a duration such as \"5s\", \"brutal\" or \"infinity\"");
    else if (rc != 0 || ms < MS_MIN || ms > MS_MAX)
        err_expected(v, it, true, "a duration " MS_RANGE ", \"brutal\" or \"infinity\"");
    else
        out->shutdown_ms = (int64_t)ms;
    pop(v, mark);
}

/* One child spec (or the template of a simple_one_for_one supervisor, whose
 * id is optional). The caller has pushed the child's path. */
static void build_child(vctx_t *v, const cJSON *obj, nsys_child_spec_t *out, bool is_template)
{
    if (!cJSON_IsObject(obj)) {
        err_expected(v, obj, false, "an object");
        return;
    }
    check_keys(v, obj, child_keys, COUNT(child_keys));

    if (get_name(v, obj, "id", "an id", &out->id) == V_ABSENT) {
        if (is_template)
            out->id = "child";
        else
            missing(v, "id", NULL);
    }

    int type = NSYS_WORKER;
    bool type_known = get_enum(v, obj, "type", type_names, COUNT(type_names), &type) != V_BAD;
    out->type = (nsys_child_type_t)type;
    bool worker = type_known && type == NSYS_WORKER;
    bool supervisor = type_known && type == NSYS_SUPERVISOR_CHILD;

    /* behaviour and args: workers only. */
    const nsys_config_kind_t *kind = NULL;
    const cJSON *behaviour = field(obj, "behaviour");
    if (supervisor) {
        forbid(v, obj, "behaviour", "not allowed for a supervisor child");
        forbid(v, obj, "args", "not allowed for a supervisor child");
    } else {
        if (behaviour != NULL)
            kind = check_behaviour(v, behaviour);
        else if (worker)
            missing(v, "behaviour", NULL);
        if (kind != NULL)
            out->behaviour = kind->behaviour;

        const cJSON *args = NULL;
        vres_t r = get_typed(v, obj, "args", cJSON_Object, &args);
        if (r == V_OK) {
            size_t mark = push_key(v, "args");
            check_duplicates_deep(v, args);
            pop(v, mark);
            out->args = args;
        }
        if (r != V_BAD && kind != NULL && kind->validate != NULL) {
            size_t mark = push_key(v, "args");
            kind->validate(args, path_str(v), v->d);
            pop(v, mark);
        }
    }

    int restart = NSYS_PERMANENT;
    get_enum(v, obj, "restart", restart_names, COUNT(restart_names), &restart);
    out->restart = (nsys_restart_t)restart;

    check_shutdown(v, obj, out);

    /* supervisor: supervisor children only. */
    if (worker) {
        forbid(v, obj, "supervisor", "only allowed when \"type\" is \"supervisor\"");
    } else {
        const cJSON *sup = NULL;
        vres_t r = get_typed(v, obj, "supervisor", cJSON_Object, &sup);
        if (r == V_ABSENT && supervisor)
            missing(v, "supervisor", " (a child of type \"supervisor\" needs its spec)");
        if (r == V_OK) {
            size_t mark = push_key(v, "supervisor");
            out->supervisor = build_sup(v, sup);
            pop(v, mark);
        }
    }
}

static void build_children(vctx_t *v, const cJSON *arr, nsys_sup_spec_t *spec)
{
    size_t n = 0;
    for (const cJSON *it = arr->child; it != NULL; it = it->next)
        n++;
    if (n == 0)
        return;
    nsys_child_spec_t *children = cfg_calloc(v, n, sizeof *children);
    strset_t ids;
    if (children == NULL || !strset_init(v, &ids, n))
        return;
    size_t list_len = v->path.len; /* "...children" */
    size_t i = 0, first;
    for (const cJSON *it = arr->child; it != NULL; it = it->next, i++) {
        size_t mark = push_index(v, i);
        build_child(v, it, &children[i], false);
        const char *id = children[i].id;
        if (id != NULL && strset_add(&ids, id, i, &first)) {
            size_t m2 = push_key(v, "id");
            err(v, "duplicate id \"%s\" (first used at %.*s[%zu])", id, (int)list_len, path_str(v),
                first);
            pop(v, m2);
        }
        pop(v, mark);
    }
    strset_free(&ids);
    spec->children = children;
    spec->nchildren = n;
}

static void build_backoff(vctx_t *v, const cJSON *obj, nsys_backoff_opts_t *b)
{
    nsys__config_read_backoff(obj, path_str(v), v->d, NULL, 0, NSYS_SUP_BACKOFF_INITIAL_MS,
                              NSYS_SUP_BACKOFF_MAX_MS, b);
}

static const nsys_sup_spec_t *build_sup(vctx_t *v, const cJSON *obj)
{
    nsys_sup_spec_t *spec = cfg_calloc(v, 1, sizeof *spec);
    if (spec == NULL)
        return NULL;
    spec->observer = NSYS_REF_NONE;
    check_keys(v, obj, sup_keys, COUNT(sup_keys));

    int strategy = NSYS_ONE_FOR_ONE;
    bool strategy_known =
        get_enum(v, obj, "strategy", strategy_names, COUNT(strategy_names), &strategy) != V_BAD;
    spec->strategy = (nsys_strategy_t)strategy;
    bool simple = strategy_known && strategy == NSYS_SIMPLE_ONE_FOR_ONE;
    bool static_children = strategy_known && !simple;

    long long intensity = 0;
    if (get_int(v, obj, "intensity", 0, 1000000, &intensity) == V_OK)
        spec->intensity = intensity == 0 ? NSYS_SUP_NO_RESTARTS : (uint32_t)intensity;

    uint64_t period = 0;
    if (get_duration(v, obj, "period", false, MS_MIN, MS_MAX, MS_RANGE, &period) == V_OK)
        spec->period_ms = period;

    const cJSON *backoff = NULL;
    if (get_typed(v, obj, "backoff", cJSON_Object, &backoff) == V_OK) {
        size_t mark = push_key(v, "backoff");
        build_backoff(v, backoff, &spec->backoff);
        pop(v, mark);
    }

    const cJSON *children = NULL;
    vres_t rc = get_typed(v, obj, "children", cJSON_Array, &children);
    if (rc == V_ABSENT && static_children)
        missing(v, "children", NULL);
    if (rc == V_OK) {
        size_t mark = push_key(v, "children");
        if (simple && children->child != NULL)
            err(v, "must be empty for strategy \"simple_one_for_one\" (its children are started "
                   "from \"template\")");
        build_children(v, children, spec);
        pop(v, mark);
    }

    const cJSON *tmpl = field(obj, "template");
    if (static_children) {
        forbid(v, obj, "template", "only allowed when \"strategy\" is \"simple_one_for_one\"");
    } else if (tmpl == NULL) {
        if (simple)
            missing(v, "template",
                    " (strategy \"simple_one_for_one\" starts its children from it)");
    } else {
        nsys_child_spec_t *t = cfg_calloc(v, 1, sizeof *t);
        if (t != NULL) {
            size_t mark = push_key(v, "template");
            build_child(v, tmpl, t, true);
            pop(v, mark);
            spec->child_template = t;
        }
    }
    return spec;
}

static void build_runtime(vctx_t *v, const cJSON *obj, nsys_config_t *cfg)
{
    nsys_runtime_opts_t *o = &cfg->runtime;
    check_keys(v, obj, runtime_keys, COUNT(runtime_keys));
    long long n;
    if (get_int(v, obj, "schedulers", 0, 1024, &n) == V_OK)
        o->schedulers = (unsigned)n;
    if (get_int(v, obj, "batch", 1, 1048576, &n) == V_OK)
        o->batch = (unsigned)n;
    uint64_t us;
    if (get_duration(v, obj, "spin", true, 0, 1000000, "0us..1s", &us) == V_OK)
        o->spin_us = us == 0 ? -1 : (int)us;
    uint64_t ms;
    if (get_duration(v, obj, "shutdown_timeout", false, MS_MIN, MS_MAX, MS_RANGE, &ms) == V_OK)
        o->shutdown_timeout_ms = ms;
    if (get_int(v, obj, "max_actors", 16, 268435456, &n) == V_OK)
        o->max_actors = (uint32_t)n;
    int level;
    if (get_enum(v, obj, "log_level", level_names, COUNT(level_names), &level) == V_OK)
        cfg->log_level = (nsys_log_level_t)level;
}

static void build_root(vctx_t *v, const cJSON *root, nsys_config_t *cfg)
{
    if (!cJSON_IsObject(root)) {
        err_expected(v, root, false, "an object");
        return;
    }
    check_keys(v, root, top_keys, COUNT(top_keys));

    const char *name = "root";
    get_name(v, root, "name", "a name", &name);
    snprintf(cfg->name, sizeof cfg->name, "%s", name);

    const cJSON *rt = NULL;
    if (get_typed(v, root, "runtime", cJSON_Object, &rt) == V_OK) {
        size_t mark = push_key(v, "runtime");
        build_runtime(v, rt, cfg);
        pop(v, mark);
    }

    const cJSON *sup = NULL;
    vres_t r = get_typed(v, root, "supervisor", cJSON_Object, &sup);
    if (r == V_ABSENT) {
        missing(v, "supervisor", NULL);
    } else if (r == V_OK) {
        size_t mark = push_key(v, "supervisor");
        cfg->root = build_sup(v, sup);
        if (cfg->root != NULL)
            ((nsys_sup_spec_t *)cfg->root)->name = cfg->name; /* logs and errors say it */
        pop(v, mark);
    }
}

/* ---- the config object ----------------------------------------------------------- */

void nsys_config_free(nsys_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (alloc_node_t *n = cfg->allocs, *next; n != NULL; n = next) {
        next = n->next;
        free(n);
    }
    cJSON_Delete(cfg->doc);
    free(cfg);
}

int nsys__config_build(cJSON *doc, nsys_config_diag_t *d, nsys_config_t **out)
{
    nsys_config_t *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return NSYS_ENOMEM;
    cfg->log_level = NSYS_LOG_INFO;
    vctx_t v = {.d = d, .cfg = cfg};
    nsys__text_init(&v.path);
    nsys__text_puts(&v.path, "$");
    int rc = nsys__config_kinds_snapshot(&v.kinds, &v.nkinds);
    if (rc == 0 && v.nkinds > 0) {
        v.kind_names = malloc(v.nkinds * sizeof *v.kind_names);
        if (v.kind_names == NULL)
            rc = NSYS_ENOMEM;
        else
            for (size_t i = 0; i < v.nkinds; i++)
                v.kind_names[i] = v.kinds[i].name;
    }
    size_t errors_before = d->count + d->dropped;
    if (rc == 0 && !v.path.oom)
        build_root(&v, doc, cfg);
    if (rc == 0 && (v.oom || v.path.oom))
        rc = NSYS_ENOMEM;
    if (rc == 0 && (d->count + d->dropped > errors_before || d->oom))
        rc = NSYS_ECONFIG;
    free(v.kinds);
    free(v.kind_names);
    nsys__text_free(&v.path);
    if (rc != 0) {
        nsys_config_free(cfg);
        return rc;
    }
    cfg->doc = doc;
    *out = cfg;
    return 0;
}

const nsys_runtime_opts_t *nsys_config_runtime_opts(const nsys_config_t *cfg)
{
    return cfg != NULL ? &cfg->runtime : NULL;
}

nsys_log_level_t nsys_config_log_level(const nsys_config_t *cfg)
{
    return cfg != NULL ? cfg->log_level : NSYS_LOG_INFO;
}

const nsys_sup_spec_t *nsys_config_root(const nsys_config_t *cfg)
{
    return cfg != NULL ? cfg->root : NULL;
}

const char *nsys_config_name(const nsys_config_t *cfg)
{
    return cfg != NULL ? cfg->name : NULL;
}
