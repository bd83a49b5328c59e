/* netsys/buf.h — reference-counted byte buffers and zero-copy slices.
 *
 * A buffer owns `cap` bytes; `len` of them are in use. A slice is a buffer
 * object that views a range of another buffer's bytes and keeps that storage
 * alive; slicing copies nothing. Reference counts are atomic, so a buffer may
 * be shared between actors, but its bytes are not synchronised: by
 * convention a buffer is written only by its creator before it is shared, and
 * treated as read-only afterwards (messages move it, they do not share it
 * mutably).
 *
 * Ownership: every nsys_buf_t* a function returns carries one reference that
 * the caller releases with nsys_buf_unref().
 */
#ifndef NETSYS_BUF_H
#define NETSYS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nsys_buf nsys_buf_t;

/* Allocates a buffer with room for `cap` bytes (cap may be 0) and len 0. */
int nsys_buf_new(size_t cap, nsys_buf_t **out);

/* Allocates a buffer holding a copy of `size` bytes at `data`. */
int nsys_buf_from(const void *data, size_t size, nsys_buf_t **out);

/* A new buffer object viewing bytes [offset, offset+len) of `buf`'s used
 * bytes; fails with NSYS_ERANGE if the range is out of bounds. The slice holds
 * a reference to the underlying storage, not a copy. */
int nsys_buf_slice(nsys_buf_t *buf, size_t offset, size_t len, nsys_buf_t **out);

/* Adds one reference; returns buf for chaining. NULL is ignored. */
nsys_buf_t *nsys_buf_ref(nsys_buf_t *buf);

/* Drops one reference; the last one frees the buffer. NULL is ignored. */
void nsys_buf_unref(nsys_buf_t *buf);

uint8_t *nsys_buf_data(const nsys_buf_t *buf);
size_t nsys_buf_len(const nsys_buf_t *buf);
size_t nsys_buf_cap(const nsys_buf_t *buf);

/* Sets the used length after writing into nsys_buf_data(); len <= cap, and
 * only on a root buffer (not a slice). */
int nsys_buf_set_len(nsys_buf_t *buf, size_t len);

/* Memory accounting: on_free(arg, cap) is called when the storage of root
 * buffer `buf` is freed (its last reference, slices included, is dropped),
 * on whichever thread drops it. NSYS_EBUSY if a hook is already set (remove
 * it first with on_free NULL); NSYS_EINVAL for a slice. The network layer uses it to count the bytes its
 * readers still hold (receive-side back-pressure). */
typedef void (*nsys_buf_free_fn)(void *arg, size_t cap);
int nsys_buf_track(nsys_buf_t *buf, nsys_buf_free_fn on_free, void *arg);

/* True for a root buffer (one that owns its bytes), false for a slice. */
bool nsys_buf_is_root(const nsys_buf_t *buf);

/* True when [data, data+len) lies inside buf's used bytes. */
bool nsys_buf_within(const nsys_buf_t *buf, const void *data, size_t len);

/* Current reference count. A holder that reads 1 is the only one left and
 * may reuse the bytes (the load synchronises with the others' releases). */
size_t nsys_buf_refcount(const nsys_buf_t *buf);

#ifdef __cplusplus
}
#endif
#endif
