/* transport/internal.h — what the files of transport/ share, and the few
 * helpers the network actors (actors/) borrow from the layer below them.
 * Not installed. */
#ifndef NSYS_TRANSPORT_INTERNAL_H
#define NSYS_TRANSPORT_INTERNAL_H

#include <netsys/framing.h>
#include <netsys/transport.h>

#include <stddef.h>
#include <stdint.h>
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

/* The first half of nsys_conn_free: the owner gets no event after this and
 * the socket is closed (as nsys_conn_free would close it), but the memory,
 * and with it nsys_conn_peer's text, stays until nsys_conn_free. For an
 * owner that reports its peer once the connection is closed. NULL is
 * ignored. */
void nsys__conn_detach(nsys_conn_t *c);

/* The codecs (transport/codec.c): set up the top layer of `c` in `storage`
 * (at least NSYS__CODEC_STORAGE bytes, inside the connection). */
#define NSYS__CODEC_STORAGE 64
int nsys__codec_init(nsys_conn_t *c, nsys_layer_t *storage, const nsys_transport_opts_t *o);
void nsys__codec_free(nsys_layer_t *codec);

/* The `length` decoder's state (transport/framing.c): nsys_frame_decoder_t
 * without its 96-byte error text, which a connection never keeps (it
 * formats the text once, when the feed fails, into the connection's end
 * text). Every connection with the length codec embeds one, so it is kept
 * small: the sizes fit 32 bits because a frame header is 32 bits. The
 * public decoder is a wrapper around it. */
typedef struct nsys__frame_reader {
    nsys_buf_t *partial;  /* payload being reassembled, or NULL; the reader's */
    uint32_t max_payload; /* effective limit, after the 0 / wire-limit rules */
    uint32_t need;        /* payload length of `partial`; in the error state,
                             the claim that failed (for the text) */
    uint32_t got;         /* payload bytes already in `partial` */
    int error;            /* sticky error, 0 while healthy */
    uint8_t header[NSYS_FRAMING_HEADER_SIZE];
    uint8_t header_len; /* header bytes held between feeds, 0..4 */
} nsys__frame_reader_t;

/* As nsys_frame_decoder_init / _free / _feed (netsys/framing.h), except
 * that the feed reports the bytes it used in *consumed (as
 * nsys_frame_decoder_consumed would; may be NULL) and keeps no text. */
void nsys__frame_reader_init(nsys__frame_reader_t *r, size_t max_payload);
void nsys__frame_reader_free(nsys__frame_reader_t *r);
int nsys__frame_reader_feed(nsys__frame_reader_t *r, nsys_buf_t *buf, const uint8_t *data,
                            size_t len, size_t *consumed, nsys_frame_cb cb, void *ud);
/* In the error state: the text nsys_frame_decoder_error would give
 * (NSYS_FRAMING_ERROR_SIZE bytes always suffice). */
void nsys__frame_reader_error_text(const nsys__frame_reader_t *r, char *out, size_t outlen);

#endif
