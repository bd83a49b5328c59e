/* netsys/framing.h — the `length` codec: frames are a 4-byte big-endian
 * unsigned payload length followed by that many payload bytes (0 is valid).
 *
 * This header owns the wire format and its limits, for both directions: a
 * decoder that turns bytes, fed as they arrive, into whole frames, and an
 * encoder that makes the header of a frame to send. It is pure: no I/O, no
 * loop, no threads, no actors. Not for: reading or writing sockets (the TCP
 * session layer feeds the decoder from its read callback and writes what the
 * encoder gives it), nor for other codecs.
 *
 * Limits are enforced before allocating. A header that claims more than the
 * maximum is refused as soon as its 4 bytes are known, before any payload
 * memory exists, so a peer cannot make the decoder allocate by lying
 * (a 0xFFFFFFFF claim costs nothing). The refusal is NSYS_EMSGSIZE with the
 * text "payload exceeds maximum (N > LIMIT)"; the send side reports an
 * oversized payload with the same code and text.
 *
 * Maximum payload. Every function that takes `max_payload` reads it the same
 * way: 0 means NSYS_FRAMING_DEFAULT_MAX_PAYLOAD, and a value above
 * NSYS_FRAMING_WIRE_MAX_PAYLOAD (the most 4 bytes can say) counts as that.
 *
 * Zero copy. A frame whose payload lies entirely inside the chunk just fed is
 * delivered as an nsys_buf_slice() of the caller's read buffer: no bytes are
 * copied. Only a payload split over reads is copied, once, into one buffer
 * sized from its header.
 */
#ifndef NETSYS_FRAMING_H
#define NETSYS_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of the length prefix. */
#define NSYS_FRAMING_HEADER_SIZE 4u

/* The default largest payload, 1 MiB: big enough for any message an actor
 * should carry in one piece, small enough that a connection cannot pin much
 * memory with a half-sent frame. Raise it per listener/connection for bulk
 * transfer (or split payloads at the application layer). */
#define NSYS_FRAMING_DEFAULT_MAX_PAYLOAD (1024u * 1024u)

/* The largest payload the 4-byte header can describe (4 GiB - 1). */
#define NSYS_FRAMING_WIRE_MAX_PAYLOAD 0xFFFFFFFFu

/* Room for any message nsys_frame_format_oversize() or the decoder writes,
 * terminating NUL included. */
#define NSYS_FRAMING_ERROR_SIZE 96u

/* ------------------------------------------------------------------------ */
/* Decoder                                                                   */

/* Receives one complete frame. `frame` is never NULL and carries one
 * reference that the callback now owns: it releases it with
 * nsys_buf_unref() or keeps it (moves it into a message, ...). `payload` is
 * nsys_buf_data(frame) and `len` is nsys_buf_len(frame), given for
 * convenience; for a zero-length payload `len` is 0.
 *
 * Returning 0 asks for the next frame. Any other value stops the feed, which
 * returns that value unchanged; the decoder stays usable (see
 * nsys_frame_decoder_consumed). The callback must not feed, reset or free the
 * decoder that called it. */
typedef int (*nsys_frame_cb)(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len);

/* Caller-owned, like a libuv handle: embed it or allocate it, then init it.
 * The fields are private; use the functions below. */
typedef struct nsys_frame_decoder {
    size_t max_payload;  /* effective limit, after the 0 / wire-limit rules */
    nsys_buf_t *partial; /* payload being reassembled, or NULL */
    size_t need;         /* payload length of the frame in `partial` */
    size_t got;          /* payload bytes already in `partial` */
    size_t consumed;     /* bytes of the last feed that were used */
    int error;           /* sticky error, 0 while healthy */
    uint8_t header[NSYS_FRAMING_HEADER_SIZE];
    uint8_t header_len; /* header bytes held between feeds, 0..4 */
    char message[NSYS_FRAMING_ERROR_SIZE];
} nsys_frame_decoder_t;

/* Prepares `dec` to read frames of at most `max_payload` bytes (0: default).
 * Allocates nothing. Returns NSYS_EINVAL if dec is NULL. */
int nsys_frame_decoder_init(nsys_frame_decoder_t *dec, size_t max_payload);

/* Drops any partial frame and clears the error state; the maximum is kept.
 * For reusing a decoder on a new stream. NULL is ignored. */
void nsys_frame_decoder_reset(nsys_frame_decoder_t *dec);

/* Releases what the decoder holds (a partial frame). The struct itself is the
 * caller's. Afterwards only init, reset and free may be called. NULL is
 * ignored; calling it twice is harmless. */
void nsys_frame_decoder_free(nsys_frame_decoder_t *dec);

/* Feeds the next `len` bytes of the stream and calls `cb` for every frame they
 * complete, in order, before returning.
 *
 * `buf` is the reference-counted read buffer the bytes live in, or NULL.
 * With a buffer, `data .. data+len` must lie inside its used bytes
 * (nsys_buf_data .. + nsys_buf_len; set the length after a read), and a frame
 * whose payload is entirely inside them is delivered as a zero-copy slice of
 * `buf` (which keeps its storage alive; the caller keeps its own reference).
 * (The header may have come in earlier feeds.) Without a buffer such frames
 * are copied into new buffers. A payload that continues past the chunk is
 * reassembled into one buffer, allocated only once its header is complete
 * and within the limit and its first bytes are here; it is delivered by the
 * feed that brings its last byte. Frames are delivered as soon as they are
 * complete: a zero-length frame by the feed that completes its header.
 *
 * Returns 0 once every byte is used, or:
 *   NSYS_EINVAL   dec or cb is NULL, data is NULL with len > 0, or the bytes
 *                 are not inside buf; nothing was read, the state is unchanged.
 *   NSYS_EMSGSIZE a header claimed more than the maximum. Nothing was
 *                 allocated for it. The decoder is now in the error state:
 *                 every later feed returns the same code without reading, and
 *                 nsys_frame_decoder_error() says
 *                 "payload exceeds maximum (N > LIMIT)". The stream cannot be
 *                 resynchronised: close the connection (or reset for a new one).
 *   NSYS_ENOMEM   no memory for a frame; the error state as above, with a
 *                 message naming the frame size.
 *   other         the callback's non-zero return value, unchanged. Frames up
 *                 to and including the one it refused were delivered; the
 *                 decoder is positioned right after it, and
 *                 nsys_frame_decoder_consumed() bytes of this chunk were used.
 *                 Feed the rest (data + consumed) to carry on. */
int nsys_frame_decoder_feed(nsys_frame_decoder_t *dec, nsys_buf_t *buf, const uint8_t *data,
                            size_t len, nsys_frame_cb cb, void *ud);

/* How many bytes of the last feed were used (all of them after a 0 return). */
size_t nsys_frame_decoder_consumed(const nsys_frame_decoder_t *dec);

/* Bytes of an unfinished frame held between feeds (header and payload
 * bytes). Non-zero at end of stream means the peer stopped mid-frame. */
size_t nsys_frame_decoder_buffered(const nsys_frame_decoder_t *dec);

/* The error state's human-readable message, or NULL while the decoder is
 * healthy. Valid until the next init/reset of `dec`. */
const char *nsys_frame_decoder_error(const nsys_frame_decoder_t *dec);

/* ------------------------------------------------------------------------ */
/* Encoder                                                                   */

/* Writes the header of a frame carrying `payload_len` bytes into `out`.
 * Returns NSYS_EMSGSIZE (and writes nothing) if payload_len exceeds
 * `max_payload` (0: default), NSYS_EINVAL if out is NULL. */
int nsys_frame_header(size_t payload_len, size_t max_payload,
                      uint8_t out[NSYS_FRAMING_HEADER_SIZE]);

/* Formats the oversize message, "payload exceeds maximum (LEN > MAX)", with
 * MAX read as every max_payload here (0: default), so the send side reports
 * exactly what the decoder would. Always NUL-terminates when outlen > 0.
 * Returns 0, NSYS_EINVAL if out is NULL or outlen is 0, or NSYS_ENOSPC if the
 * text was truncated (NSYS_FRAMING_ERROR_SIZE bytes always suffice). */
int nsys_frame_format_oversize(char *out, size_t outlen, size_t len, size_t max_payload);

/* Prepares a frame for uv_write() without copying the payload: writes the
 * header into `header` and points bufs[0] at it and bufs[1] at the payload.
 * `header` and `payload` must stay alive and unchanged until the write
 * completes. payload may be NULL when payload_len is 0 (bufs[1] is then
 * empty). Returns 0, NSYS_EMSGSIZE as nsys_frame_header, or NSYS_EINVAL. */
int nsys_frame_bufs(const void *payload, size_t payload_len, size_t max_payload,
                    uint8_t header[NSYS_FRAMING_HEADER_SIZE], uv_buf_t bufs[2]);

#ifdef __cplusplus
}
#endif
#endif
