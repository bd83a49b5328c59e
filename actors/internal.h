/* actors/internal.h — what the network actors of actors/ share. Not
 * installed. */
#ifndef NSYS_ACTORS_INTERNAL_H
#define NSYS_ACTORS_INTERNAL_H

#include <netsys/net.h>

/* What a listener hands to each session it spawns (spawn args; freed by
 * nsys__session_args_free, which closes fd unless the session took it and
 * releases handler_arg unless the session took that reference). The
 * listener is the session's parent, so it needs no field here. */
typedef struct nsys__session_args {
    int fd;
    nsys_transport_opts_t transport;
    const nsys_session_handler_t *handler;
    void *handler_arg;
    void (*handler_arg_release)(void *arg);
    nsys_ref_t owner;
} nsys__session_args_t;

extern const nsys_behaviour_t nsys__session_behaviour;
void nsys__session_args_free(void *args);

static inline bool nsys__session_is(const nsys_ctx_t *ctx)
{
    return nsys_ctx_behaviour(ctx) == &nsys__session_behaviour;
}

#endif
