/* runtime/buf.c — reference-counted byte buffers and zero-copy slices.
 * A root buffer carries its bytes after the header; a slice points into its
 * root and holds one reference on it. Not for: growing buffers in place. */
#include <netsys/buf.h>
#include <netsys/error.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct nsys_buf {
    atomic_size_t refs;
    struct nsys_buf *root; /* NULL for a root buffer */
    nsys_buf_free_fn on_free; /* root only: told when the storage goes */
    void *on_free_arg;
    uint8_t *data;
    size_t len;
    size_t cap;
    _Alignas(16) uint8_t bytes[];
};

int nsys_buf_new(size_t cap, nsys_buf_t **out)
{
    if (out == NULL)
        return NSYS_EINVAL;
    if (cap > SIZE_MAX - sizeof(nsys_buf_t))
        return NSYS_ENOMEM;
    nsys_buf_t *b = malloc(sizeof *b + cap);
    if (b == NULL)
        return NSYS_ENOMEM;
    atomic_init(&b->refs, 1);
    b->root = NULL;
    b->on_free = NULL;
    b->on_free_arg = NULL;
    b->data = b->bytes;
    b->len = 0;
    b->cap = cap;
    *out = b;
    return 0;
}

int nsys_buf_from(const void *data, size_t size, nsys_buf_t **out)
{
    if (data == NULL && size > 0)
        return NSYS_EINVAL;
    int rc = nsys_buf_new(size, out);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy((*out)->data, data, size);
    (*out)->len = size;
    return 0;
}

int nsys_buf_slice(nsys_buf_t *buf, size_t offset, size_t len, nsys_buf_t **out)
{
    if (buf == NULL || out == NULL)
        return NSYS_EINVAL;
    if (offset > buf->len || len > buf->len - offset)
        return NSYS_ERANGE;
    nsys_buf_t *s = malloc(sizeof *s);
    if (s == NULL)
        return NSYS_ENOMEM;
    nsys_buf_t *root = buf->root != NULL ? buf->root : buf;
    nsys_buf_ref(root);
    atomic_init(&s->refs, 1);
    s->root = root;
    s->on_free = NULL;
    s->on_free_arg = NULL;
    s->data = buf->data + offset;
    s->len = len;
    s->cap = len;
    *out = s;
    return 0;
}

nsys_buf_t *nsys_buf_ref(nsys_buf_t *buf)
{
    if (buf != NULL)
        atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
    return buf;
}

void nsys_buf_unref(nsys_buf_t *buf)
{
    while (buf != NULL) {
        if (atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_acq_rel) != 1)
            return;
        nsys_buf_t *root = buf->root;
        if (buf->on_free != NULL)
            buf->on_free(buf->on_free_arg, buf->cap);
        free(buf);
        buf = root;
    }
}

uint8_t *nsys_buf_data(const nsys_buf_t *buf) { return buf != NULL ? buf->data : NULL; }
size_t nsys_buf_len(const nsys_buf_t *buf) { return buf != NULL ? buf->len : 0; }
size_t nsys_buf_cap(const nsys_buf_t *buf) { return buf != NULL ? buf->cap : 0; }

int nsys_buf_set_len(nsys_buf_t *buf, size_t len)
{
    if (buf == NULL || buf->root != NULL)
        return NSYS_EINVAL;
    if (len > buf->cap)
        return NSYS_ERANGE;
    buf->len = len;
    return 0;
}

size_t nsys_buf_refcount(const nsys_buf_t *buf)
{
    /* Acquire: a holder that sees 1 may reuse the bytes, so the other
     * holders' last reads (before their release decrement) must be done. */
    return buf != NULL ? atomic_load_explicit(&buf->refs, memory_order_acquire) : 0;
}

int nsys_buf_track(nsys_buf_t *buf, nsys_buf_free_fn on_free, void *arg)
{
    if (buf == NULL || buf->root != NULL)
        return NSYS_EINVAL;
    if (on_free != NULL && buf->on_free != NULL)
        return NSYS_EBUSY;
    buf->on_free = on_free;
    buf->on_free_arg = on_free != NULL ? arg : NULL;
    return 0;
}

bool nsys_buf_is_root(const nsys_buf_t *buf) { return buf != NULL && buf->root == NULL; }

/* Compared as integers: relational operators on pointers into different
 * objects are undefined, and the point is to find out whether they are the
 * same object. */
bool nsys_buf_within(const nsys_buf_t *buf, const void *data, size_t len)
{
    if (buf == NULL || data == NULL)
        return false;
    uintptr_t lo = (uintptr_t)buf->data;
    uintptr_t at = (uintptr_t)data;
    return at >= lo && at - lo <= buf->len && len <= buf->len - (size_t)(at - lo);
}
