/* runtime/pool.c — message nodes: per-scheduler free lists with a shared
 * overflow of fixed-size chunks, so steady-state messaging never calls malloc
 * and a node freed on another scheduler finds its way back. Threads outside
 * the runtime use malloc/free directly. Not for: payload memory. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define POOL_CHUNK 256u          /* nodes moved between a scheduler and the overflow */
#define POOL_LOCAL_MAX (4 * POOL_CHUNK)
#define POOL_GLOBAL_MAX 64u      /* chunks kept in the overflow (16 K nodes); more are freed */

static nsys__pool_t *local_pool(nsys_runtime_t *rt)
{
    nsys__sched_t *s = nsys__tls_sched;
    return (s != NULL && s->rt == rt) ? &s->pool : NULL;
}

nsys__node_t *nsys__node_alloc(nsys_runtime_t *rt) { return nsys__node_alloc_in(rt, local_pool(rt)); }

nsys__node_t *nsys__node_alloc_in(nsys_runtime_t *rt, nsys__pool_t *p)
{
    nsys__node_t *n = NULL;
    if (p != NULL) {
        if (p->free == NULL) {
            uv_mutex_lock(&rt->pool.mu);
            n = rt->pool.chunks;
            if (n != NULL) {
                rt->pool.chunks = (nsys__node_t *)n->msg.data;
                rt->pool.nchunks--;
            }
            uv_mutex_unlock(&rt->pool.mu);
            if (n != NULL) {
                p->free = n;
                p->count = POOL_CHUNK;
            }
        }
        if (p->free != NULL) {
            n = p->free;
            p->free = (nsys__node_t *)atomic_load_explicit(&n->hdr.link.next, memory_order_relaxed);
            p->count--;
        }
    }
    if (n == NULL) {
        n = malloc(sizeof *n);
        if (n == NULL)
            return NULL;
    }
    n->hdr.kind = NSYS__NODE_INLINE;
    n->hdr.flags = 0;
    n->msg.reserved_ = 0;
    n->msg.from = NSYS_REF_NONE;
    n->msg.data = NULL;
    n->msg.size = 0;
    n->aux = 0;
    return n;
}

void nsys__node_free(nsys_runtime_t *rt, nsys__node_t *n)
{
    if (n == NULL || n->hdr.kind == NSYS__NODE_STUB)
        return;
    nsys__pool_t *p = local_pool(rt);
    if (p == NULL) {
        free(n);
        return;
    }
    atomic_store_explicit(&n->hdr.link.next, (nsys__mpsc_node_t *)p->free, memory_order_relaxed);
    p->free = n;
    if (++p->count < POOL_LOCAL_MAX)
        return;
    /* Hand one chunk to the overflow; keep the rest hot. */
    nsys__node_t *head = p->free, *last = head;
    for (uint32_t i = 1; i < POOL_CHUNK; i++)
        last = (nsys__node_t *)atomic_load_explicit(&last->hdr.link.next, memory_order_relaxed);
    p->free = (nsys__node_t *)atomic_load_explicit(&last->hdr.link.next, memory_order_relaxed);
    p->count -= POOL_CHUNK;
    atomic_store_explicit(&last->hdr.link.next, NULL, memory_order_relaxed);
    uv_mutex_lock(&rt->pool.mu);
    if (rt->pool.nchunks < POOL_GLOBAL_MAX) {
        head->msg.data = rt->pool.chunks;
        rt->pool.chunks = head;
        rt->pool.nchunks++;
        head = NULL;
    }
    uv_mutex_unlock(&rt->pool.mu);
    while (head != NULL) {
        nsys__node_t *next =
            (nsys__node_t *)atomic_load_explicit(&head->hdr.link.next, memory_order_relaxed);
        free(head);
        head = next;
    }
}

static void free_list(nsys__node_t *n)
{
    while (n != NULL) {
        nsys__node_t *next =
            (nsys__node_t *)atomic_load_explicit(&n->hdr.link.next, memory_order_relaxed);
        free(n);
        n = next;
    }
}

void nsys__pool_local_free(nsys_runtime_t *rt, nsys__pool_t *p)
{
    (void)rt;
    free_list(p->free);
    p->free = NULL;
    p->count = 0;
}

void nsys__pool_global_free(nsys__pool_global_t *g)
{
    nsys__node_t *c = g->chunks;
    while (c != NULL) {
        nsys__node_t *next = (nsys__node_t *)c->msg.data;
        free_list(c);
        c = next;
    }
    g->chunks = NULL;
    g->nchunks = 0;
}

/* Copies a payload into a node: inline when small, one malloc when not. */
int nsys__node_fill_copy(nsys__node_t *n, const void *data, size_t size)
{
    if (size <= NSYS__INLINE_MAX) {
        n->hdr.kind = NSYS__NODE_INLINE;
        if (size > 0)
            memcpy(n->inline_bytes, data, size);
        n->msg.data = n->inline_bytes;
    } else {
        void *heap = malloc(size);
        if (heap == NULL)
            return NSYS_ENOMEM;
        memcpy(heap, data, size);
        n->hdr.kind = NSYS__NODE_HEAP;
        n->msg.data = heap;
    }
    n->msg.size = size;
    return 0;
}

/* Releases what a node's payload owns (not the node). Idempotent per node:
 * a released node becomes an inline node with no payload. */
void nsys__node_release_payload(nsys__node_t *n)
{
    if ((n->hdr.flags & NSYS__NODE_F_TAKEN) == 0) {
        switch (n->hdr.kind) {
        case NSYS__NODE_HEAP:
            free(n->msg.data);
            break;
        case NSYS__NODE_BUF:
            nsys_buf_unref(n->own.buf);
            break;
        case NSYS__NODE_PTR:
            if (n->own.free_fn != NULL)
                n->own.free_fn(n->msg.data);
            break;
        default:
            break;
        }
    }
    n->hdr.kind = NSYS__NODE_INLINE;
    n->hdr.flags = 0;
    n->msg.data = NULL;
    n->msg.size = 0;
}

nsys_buf_t *nsys_msg_take_buf(nsys_msg_t *msg)
{
    if (msg == NULL)
        return NULL;
    nsys__node_t *n = (nsys__node_t *)((char *)msg - offsetof(nsys__node_t, msg));
    if (n->hdr.kind != NSYS__NODE_BUF || (n->hdr.flags & NSYS__NODE_F_TAKEN))
        return NULL;
    n->hdr.flags |= NSYS__NODE_F_TAKEN;
    return n->own.buf;
}

void *nsys_msg_take_ptr(nsys_msg_t *msg)
{
    if (msg == NULL)
        return NULL;
    nsys__node_t *n = (nsys__node_t *)((char *)msg - offsetof(nsys__node_t, msg));
    if (n->hdr.kind != NSYS__NODE_PTR || (n->hdr.flags & NSYS__NODE_F_TAKEN))
        return NULL;
    n->hdr.flags |= NSYS__NODE_F_TAKEN;
    return n->msg.data;
}
