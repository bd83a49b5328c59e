/* transport/internal.h — what the files of transport/ share, and the few
 * helpers the network actors (actors/) borrow from the layer below them.
 * Not installed. */
#ifndef NSYS_TRANSPORT_INTERNAL_H
#define NSYS_TRANSPORT_INTERNAL_H

#include <netsys/transport.h>

#include <stddef.h>
#include <sys/socket.h>

/* Sets this thread's nsys_net_last_error() text. */
void nsys__net_set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* "1.2.3.4:80" or "[::1]:80"; "?" when the family is unknown. */
void nsys__net_format_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* The text of how connection `c` ended ("peer: what happened"), or NULL
 * while it is up; valid until nsys_conn_free. */
const char *nsys__conn_end_text(const nsys_conn_t *c);

/* The codecs (transport/codec.c): set up the top layer of `c` in `storage`
 * (at least NSYS__CODEC_STORAGE bytes, owned by the connection). */
#define NSYS__CODEC_STORAGE 192
int nsys__codec_init(nsys_conn_t *c, nsys_layer_t *storage, const nsys_transport_opts_t *o);
void nsys__codec_free(nsys_layer_t *codec);

#endif
