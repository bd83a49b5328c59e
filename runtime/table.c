/* runtime/table.c — the actor table: refs to slots, pinning, slot reuse.
 *
 * Slots live in fixed-size chunks that are never moved or freed before the
 * runtime, so a lookup is two loads and a stale ref can always be checked
 * against its slot's generation. Not for: anything about what actors do.
 */
#include "internal.h"

#include <stdlib.h>

int nsys__table_init(nsys__table_t *t, uint32_t capacity)
{
    t->nchunks_max = (capacity + NSYS__CHUNK_SLOTS - 1) / NSYS__CHUNK_SLOTS;
    t->chunks = calloc(t->nchunks_max, sizeof *t->chunks);
    if (t->chunks == NULL)
        return NSYS_ENOMEM;
    if (uv_mutex_init(&t->mu) != 0) {
        free(t->chunks);
        return NSYS_ENOMEM;
    }
    t->free_head = 0;
    t->high = 1; /* slot 0 stays unused */
    t->capacity = capacity;
    return 0;
}

void nsys__table_free(nsys__table_t *t)
{
    if (t->chunks == NULL)
        return;
    for (uint32_t i = 0; i < t->nchunks_max; i++)
        free(atomic_load_explicit(&t->chunks[i], memory_order_relaxed));
    free(t->chunks);
    t->chunks = NULL;
    uv_mutex_destroy(&t->mu);
}

nsys__slot_t *nsys__table_slot(nsys__table_t *t, uint32_t slot)
{
    uint32_t c = slot >> NSYS__CHUNK_BITS;
    if (c >= t->nchunks_max)
        return NULL;
    nsys__slot_t *chunk = atomic_load_explicit(&t->chunks[c], memory_order_acquire);
    if (chunk == NULL)
        return NULL;
    return &chunk[slot & (NSYS__CHUNK_SLOTS - 1)];
}

/* Hands out a free slot; its word keeps generation `*gen` with no pins and
 * not alive until the caller publishes it. */
int nsys__table_alloc(nsys__table_t *t, uint32_t *slot, uint32_t *gen)
{
    uv_mutex_lock(&t->mu);
    uint32_t idx;
    nsys__slot_t *s;
    if (t->free_head != 0) {
        idx = t->free_head;
        s = nsys__table_slot(t, idx);
        t->free_head = (uint32_t)(uintptr_t)atomic_load_explicit(&s->actor, memory_order_relaxed);
    } else {
        if (t->high >= t->capacity) {
            uv_mutex_unlock(&t->mu);
            return NSYS_ETOOMANY;
        }
        idx = t->high;
        uint32_t c = idx >> NSYS__CHUNK_BITS;
        if (atomic_load_explicit(&t->chunks[c], memory_order_relaxed) == NULL) {
            nsys__slot_t *chunk = calloc(NSYS__CHUNK_SLOTS, sizeof *chunk);
            if (chunk == NULL) {
                uv_mutex_unlock(&t->mu);
                return NSYS_ENOMEM;
            }
            for (uint32_t i = 0; i < NSYS__CHUNK_SLOTS; i++)
                atomic_init(&chunk[i].word, (uint64_t)1 << 32); /* generation 1 */
            atomic_store_explicit(&t->chunks[c], chunk, memory_order_release);
        }
        t->high++;
        s = nsys__table_slot(t, idx);
    }
    atomic_store_explicit(&s->actor, NULL, memory_order_relaxed);
    uv_mutex_unlock(&t->mu);
    *slot = idx;
    *gen = (uint32_t)(atomic_load_explicit(&s->word, memory_order_relaxed) >> 32);
    return 0;
}

/* Retires a slot whose actor is freed: the next generation makes every old
 * ref stale before the slot can be handed out again. */
void nsys__table_release(nsys__table_t *t, uint32_t idx)
{
    nsys__slot_t *s = nsys__table_slot(t, idx);
    uint32_t gen = (uint32_t)(atomic_load_explicit(&s->word, memory_order_relaxed) >> 32) + 1;
    if (gen == 0)
        gen = 1;
    atomic_store_explicit(&s->word, (uint64_t)gen << 32, memory_order_release);
    uv_mutex_lock(&t->mu);
    atomic_store_explicit(&s->actor, (nsys__actor_t *)(uintptr_t)t->free_head, memory_order_relaxed);
    t->free_head = idx;
    uv_mutex_unlock(&t->mu);
}

static inline bool word_matches(uint64_t w, nsys_ref_t ref)
{
    return (w >> 32) == NSYS_REF_GEN(ref) && (w & NSYS__ALIVE) != 0;
}

/* For threads outside the runtime: a pin (one CAS) keeps the actor's memory
 * from being reclaimed until nsys__unpin. */
nsys__actor_t *nsys__pin(nsys_runtime_t *rt, nsys_ref_t ref)
{
    if (ref == NSYS_REF_NONE)
        return NULL;
    nsys__slot_t *s = nsys__table_slot(&rt->table, NSYS_REF_SLOT(ref));
    if (s == NULL)
        return NULL;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    for (;;) {
        if (!word_matches(w, ref))
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + 1, memory_order_seq_cst,
                                                  memory_order_acquire))
            return atomic_load_explicit(&s->actor, memory_order_acquire);
    }
}

void nsys__unpin(nsys_runtime_t *rt, nsys__actor_t *a)
{
    nsys__slot_t *s = nsys__table_slot(&rt->table, NSYS_REF_SLOT(a->self));
    atomic_fetch_sub_explicit(&s->word, 1, memory_order_release);
}

/* On a scheduler thread the epoch protects: a live actor found here cannot be
 * reclaimed before this scheduler's next quiescent point. */
static nsys__actor_t *lookup(nsys_runtime_t *rt, nsys_ref_t ref)
{
    nsys__sched_t *self = nsys__tls_sched;
    if (!self->in_epoch)
        nsys__epoch_announce(self);
    nsys__slot_t *s = nsys__table_slot(&rt->table, NSYS_REF_SLOT(ref));
    if (s == NULL)
        return NULL;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (!word_matches(w, ref))
        return NULL;
    return atomic_load_explicit(&s->actor, memory_order_acquire);
}

nsys__actor_t *nsys__acquire(nsys_runtime_t *rt, nsys_ref_t ref, bool internal)
{
    if (ref == NSYS_REF_NONE)
        return NULL;
    return internal ? lookup(rt, ref) : nsys__pin(rt, ref);
}

void nsys__release(nsys_runtime_t *rt, nsys__actor_t *a, bool internal)
{
    if (!internal)
        nsys__unpin(rt, a);
}

bool nsys_is_alive(nsys_runtime_t *rt, nsys_ref_t ref)
{
    if (rt == NULL || ref == NSYS_REF_NONE)
        return false;
    nsys__slot_t *s = nsys__table_slot(&rt->table, NSYS_REF_SLOT(ref));
    if (s == NULL)
        return false;
    uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    return (w >> 32) == NSYS_REF_GEN(ref) && (w & NSYS__ALIVE) != 0;
}
