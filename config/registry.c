/* config/registry.c — the process-wide registry of behaviour kinds that
 * documents name in "behaviour". Registration order is kept (it is the order
 * `netsys check --kinds` and error messages list them in). Each entry is its
 * own allocation, so a pointer from nsys_config_find_kind stays valid while
 * other kinds come and go; it dies with nsys_config_unregister of that name.
 * netsys's own kinds (net_kinds.c, proxy_kind.c) are added first, once, on
 * first use.
 * Not for: validating documents (validate.c takes a snapshot from here). */
#include "config/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static nsys_config_kind_t **registry; /* `registry_len` entries in order */
static size_t registry_len, registry_cap;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static size_t find_locked(const char *name)
{
    for (size_t i = 0; i < registry_len; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return i;
    return SIZE_MAX;
}

static int add_kind(const nsys_config_kind_t *kind)
{
    if (kind == NULL || kind->name == NULL || kind->behaviour == NULL ||
        !nsys__config_valid_name(kind->name))
        return NSYS_EINVAL;
    nsys_config_kind_t *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return NSYS_ENOMEM;
    *copy = *kind;

    int rc = 0;
    pthread_mutex_lock(&registry_mu);
    if (find_locked(kind->name) != SIZE_MAX) {
        rc = NSYS_EEXIST;
    } else if (registry_len == registry_cap) {
        size_t cap = registry_cap ? registry_cap * 2 : 16;
        nsys_config_kind_t **grown = realloc(registry, cap * sizeof *grown);
        if (grown == NULL) {
            rc = NSYS_ENOMEM;
        } else {
            registry = grown;
            registry_cap = cap;
        }
    }
    if (rc == 0)
        registry[registry_len++] = copy;
    pthread_mutex_unlock(&registry_mu);
    if (rc != 0)
        free(copy);
    return rc;
}

/* netsys's own kinds join first, on first use of the registry rather than
 * from a constructor: a program that never touches configs pays nothing, and
 * no code runs before main. A kind that cannot be added (out of memory) is
 * simply unknown to documents, which then say so. */
static void add_builtins(void)
{
    const nsys_config_kind_t *(*const sources[])(size_t *) = {
        nsys__config_builtin_kinds, nsys__config_proxy_kinds, nsys__config_client_kinds};
    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        size_t n = 0;
        const nsys_config_kind_t *kinds = sources[s](&n);
        for (size_t i = 0; i < n; i++) {
            int rc = add_kind(&kinds[i]);
            if (rc != 0)
                NSYS_LOG(NSYS_LOG_ERROR,
                         "config: cannot register the built-in behaviour kind \"%s\": %s",
                         kinds[i].name, nsys_strerror(rc));
        }
    }
}

static void builtins(void)
{
    pthread_once(&builtins_once, add_builtins);
}

int nsys_config_register(const nsys_config_kind_t *kind)
{
    builtins();
    return add_kind(kind);
}

int nsys_config_unregister(const char *name)
{
    builtins();
    if (name == NULL)
        return NSYS_EINVAL;
    nsys_config_kind_t *gone = NULL;
    pthread_mutex_lock(&registry_mu);
    size_t i = find_locked(name);
    if (i != SIZE_MAX) {
        gone = registry[i];
        memmove(&registry[i], &registry[i + 1], (registry_len - i - 1) * sizeof *registry);
        registry_len--;
    }
    pthread_mutex_unlock(&registry_mu);
    if (gone == NULL)
        return NSYS_ENOENT;
    free(gone);
    return 0;
}

const nsys_config_kind_t *nsys_config_find_kind(const char *name)
{
    builtins();
    if (name == NULL)
        return NULL;
    const nsys_config_kind_t *k = NULL;
    pthread_mutex_lock(&registry_mu);
    size_t i = find_locked(name);
    if (i != SIZE_MAX)
        k = registry[i];
    pthread_mutex_unlock(&registry_mu);
    return k;
}

int nsys_config_kind_names(const char ***names, size_t *n)
{
    builtins();
    if (names == NULL || n == NULL)
        return NSYS_EINVAL;
    int rc = 0;
    const char **out = NULL;
    pthread_mutex_lock(&registry_mu);
    size_t len = registry_len;
    if (len > 0) {
        out = malloc(len * sizeof *out);
        if (out == NULL)
            rc = NSYS_ENOMEM;
        else
            for (size_t i = 0; i < len; i++)
                out[i] = registry[i]->name;
    }
    pthread_mutex_unlock(&registry_mu);
    if (rc != 0)
        return rc;
    *names = out;
    *n = len;
    return 0;
}

int nsys__config_kinds_snapshot(nsys_config_kind_t **kinds, size_t *n)
{
    builtins();
    int rc = 0;
    nsys_config_kind_t *out = NULL;
    pthread_mutex_lock(&registry_mu);
    size_t len = registry_len;
    if (len > 0) {
        out = malloc(len * sizeof *out);
        if (out == NULL)
            rc = NSYS_ENOMEM;
        else
            for (size_t i = 0; i < len; i++)
                out[i] = *registry[i];
    }
    pthread_mutex_unlock(&registry_mu);
    if (rc != 0)
        return rc;
    *kinds = out;
    *n = len;
    return 0;
}
