/* netsys/error.h — error codes and exit reasons.
 *
 * Every netsys call that can fail returns 0 or a negative error code. System
 * and libuv errors pass through unchanged (on Unix a libuv code is -errno), so
 * NSYS_EINVAL == UV_EINVAL == -EINVAL. Codes that only netsys produces live in
 * their own range below -30000, far from errno and libuv values.
 *
 * An actor's exit reason is an int of the same space: 0 is a normal exit,
 * anything else is abnormal, and nsys_strerror() describes either.
 */
#ifndef NETSYS_ERROR_H
#define NETSYS_ERROR_H

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Passed through from the system / libuv. */
#define NSYS_EINVAL UV_EINVAL
#define NSYS_ENOMEM UV_ENOMEM
#define NSYS_ENOENT UV_ENOENT
#define NSYS_EEXIST UV_EEXIST
#define NSYS_EBUSY UV_EBUSY
#define NSYS_EAGAIN UV_EAGAIN
#define NSYS_ECANCELED UV_ECANCELED
#define NSYS_ETIMEDOUT UV_ETIMEDOUT
#define NSYS_EMSGSIZE UV_EMSGSIZE
#define NSYS_ENOSPC UV_ENOSPC
#define NSYS_ENOBUFS UV_ENOBUFS
#define NSYS_ERANGE UV_ERANGE

/* netsys's own codes. */
#define NSYS_ENOACTOR (-30001)  /* no live actor behind this ref (Erlang: noproc) */
#define NSYS_ESTOPPED (-30002)  /* the runtime is stopping or stopped */
#define NSYS_ESHUTDOWN (-30003) /* exit reason: asked to shut down (not a crash) */
#define NSYS_EKILLED (-30004)   /* exit reason: killed, could not be trapped */
#define NSYS_ENAMETAKEN (-30005) /* the name is registered to another actor */
#define NSYS_EHASNAME (-30006)  /* the actor already has a registered name */
#define NSYS_ENOTACTOR (-30007) /* the call needs an actor context and has none */
#define NSYS_ECONFIG (-30008)   /* invalid configuration (details in the message) */
#define NSYS_EFAILED (-30009)   /* an actor reported a failure without a code */
#define NSYS_ETOOMANY (-30010)  /* the actor table is full (runtime option max_actors) */
#define NSYS_EGAVEUP (-30100)   /* exit reason: a supervisor exceeded its restart intensity */

/* Exit reasons. Any other negative code is an abnormal exit with that error. */
#define NSYS_REASON_NORMAL 0
#define NSYS_REASON_SHUTDOWN NSYS_ESHUTDOWN
#define NSYS_REASON_KILLED NSYS_EKILLED
#define NSYS_REASON_NOPROC NSYS_ENOACTOR

/* Returns a static, human-readable description of an error code or exit
 * reason. Never returns NULL, never allocates, safe from any thread. */
const char *nsys_strerror(int code);

/* Returns the symbolic name of a code ("NSYS_ENOACTOR", "ECONNREFUSED",
 * "normal", ...), or "UNKNOWN". Never NULL. */
const char *nsys_errname(int code);

/* True for reasons that do not count as a crash: normal and shutdown. */
static inline int nsys_reason_is_clean(int reason)
{
    return reason == NSYS_REASON_NORMAL || reason == NSYS_REASON_SHUTDOWN;
}

#ifdef __cplusplus
}
#endif
#endif
