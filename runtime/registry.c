/* runtime/registry.c — actor names: register, unregister, whereis, and the
 * release of a name when its actor exits. One mutex guards two chained hash
 * indexes (by name, by ref) over the same entries. Not for: anything hot. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255

typedef struct entry {
    struct entry *next_name, *next_ref;
    nsys_ref_t ref;
    char name[];
} entry_t;

struct nsys__registry {
    uv_mutex_t mu;
    entry_t **by_name, **by_ref;
    size_t nbuckets, count;
};

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

static size_t hash_ref(nsys_ref_t r) { return (size_t)((r * 0x9e3779b97f4a7c15u) >> 17); }

int nsys__registry_new(nsys__registry_t **out)
{
    nsys__registry_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NSYS_ENOMEM;
    r->nbuckets = 64;
    r->by_name = calloc(r->nbuckets, sizeof *r->by_name);
    r->by_ref = calloc(r->nbuckets, sizeof *r->by_ref);
    if (r->by_name == NULL || r->by_ref == NULL || uv_mutex_init(&r->mu) != 0) {
        free(r->by_name);
        free(r->by_ref);
        free(r);
        return NSYS_ENOMEM;
    }
    *out = r;
    return 0;
}

void nsys__registry_free(nsys__registry_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        entry_t *e = r->by_name[i];
        while (e != NULL) {
            entry_t *next = e->next_name;
            free(e);
            e = next;
        }
    }
    free(r->by_name);
    free(r->by_ref);
    uv_mutex_destroy(&r->mu);
    free(r);
}

static entry_t **find_name(nsys__registry_t *r, const char *name)
{
    entry_t **p = &r->by_name[hash_str(name) & (r->nbuckets - 1)];
    while (*p != NULL && strcmp((*p)->name, name) != 0)
        p = &(*p)->next_name;
    return p;
}

static entry_t **find_ref(nsys__registry_t *r, nsys_ref_t ref)
{
    entry_t **p = &r->by_ref[hash_ref(ref) & (r->nbuckets - 1)];
    while (*p != NULL && (*p)->ref != ref)
        p = &(*p)->next_ref;
    return p;
}

static void unlink_entry(nsys__registry_t *r, entry_t *e)
{
    entry_t **p = find_name(r, e->name);
    *p = e->next_name;
    p = find_ref(r, e->ref);
    *p = e->next_ref;
    r->count--;
    free(e);
}

static void rehash(nsys__registry_t *r)
{
    size_t nb = r->nbuckets * 2;
    entry_t **bn = calloc(nb, sizeof *bn), **br = calloc(nb, sizeof *br);
    if (bn == NULL || br == NULL) { /* stay at the old size: slower, still correct */
        free(bn);
        free(br);
        return;
    }
    for (size_t i = 0; i < r->nbuckets; i++) {
        entry_t *e = r->by_name[i];
        while (e != NULL) {
            entry_t *next = e->next_name;
            size_t hn = hash_str(e->name) & (nb - 1), hr = hash_ref(e->ref) & (nb - 1);
            e->next_name = bn[hn];
            bn[hn] = e;
            e->next_ref = br[hr];
            br[hr] = e;
            e = next;
        }
    }
    free(r->by_name);
    free(r->by_ref);
    r->by_name = bn;
    r->by_ref = br;
    r->nbuckets = nb;
}

static int check_name(const char *name)
{
    if (name == NULL)
        return NSYS_EINVAL;
    size_t len = strnlen(name, NAME_MAX_LEN + 1);
    return (len == 0 || len > NAME_MAX_LEN) ? NSYS_EINVAL : 0;
}

int nsys_register(nsys_runtime_t *rt, const char *name, nsys_ref_t ref)
{
    if (rt == NULL || check_name(name) != 0 || ref == NSYS_REF_NONE)
        return NSYS_EINVAL;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    nsys__actor_t *a = nsys__acquire(rt, ref, internal);
    if (a == NULL) {
        nsys__gate_leave(rt, internal);
        return NSYS_ENOACTOR;
    }
    nsys__registry_t *r = rt->registry;
    size_t len = strlen(name);
    uv_mutex_lock(&r->mu);
    if (*find_name(r, name) != NULL)
        rc = NSYS_ENAMETAKEN;
    else if (*find_ref(r, ref) != NULL)
        rc = NSYS_EHASNAME;
    else {
        entry_t *e = malloc(sizeof *e + len + 1);
        if (e == NULL) {
            rc = NSYS_ENOMEM;
        } else {
            if (r->count >= r->nbuckets)
                rehash(r);
            memcpy(e->name, name, len + 1);
            e->ref = ref;
            entry_t **pn = find_name(r, name), **pr = find_ref(r, ref);
            e->next_name = *pn;
            *pn = e;
            e->next_ref = *pr;
            *pr = e;
            r->count++;
            atomic_store_explicit(&a->named, 1, memory_order_seq_cst);
        }
    }
    uv_mutex_unlock(&r->mu);
    /* If the actor died meanwhile its exit may have missed our flag: undo. */
    if (rc == 0 && !nsys_is_alive(rt, ref)) {
        nsys__registry_remove_ref(rt, ref);
        rc = NSYS_ENOACTOR;
    }
    nsys__release(rt, a, internal);
    nsys__gate_leave(rt, internal);
    return rc;
}

int nsys_unregister(nsys_runtime_t *rt, const char *name)
{
    if (rt == NULL || check_name(name) != 0)
        return NSYS_EINVAL;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    nsys__registry_t *r = rt->registry;
    uv_mutex_lock(&r->mu);
    entry_t *e = *find_name(r, name);
    if (e == NULL)
        rc = NSYS_ENOENT;
    else
        unlink_entry(r, e);
    uv_mutex_unlock(&r->mu);
    nsys__gate_leave(rt, internal);
    return rc;
}

int nsys_whereis(nsys_runtime_t *rt, const char *name, nsys_ref_t *out)
{
    if (rt == NULL || out == NULL || check_name(name) != 0)
        return NSYS_EINVAL;
    bool internal;
    int rc = nsys__gate_enter(rt, &internal);
    if (rc != 0)
        return rc;
    nsys__registry_t *r = rt->registry;
    uv_mutex_lock(&r->mu);
    entry_t *e = *find_name(r, name);
    if (e != NULL)
        *out = e->ref;
    uv_mutex_unlock(&r->mu);
    nsys__gate_leave(rt, internal);
    return e != NULL ? 0 : NSYS_ENOENT;
}

void nsys__registry_remove_ref(nsys_runtime_t *rt, nsys_ref_t ref)
{
    nsys__registry_t *r = rt->registry;
    uv_mutex_lock(&r->mu);
    entry_t *e = *find_ref(r, ref);
    if (e != NULL)
        unlink_entry(r, e);
    uv_mutex_unlock(&r->mu);
}
