/* transport/framing.c — the `length` codec (include/netsys/framing.h): the
 * 4-byte big-endian length prefix, the decoder's state machine (header bytes,
 * then payload bytes, then deliver), the limit check that comes before any
 * allocation, and the header encoder. The state machine works on the
 * compact nsys__frame_reader_t (transport/internal.h), which connections
 * embed; the public nsys_frame_decoder_t wraps it and adds the error text.
 * Not for: sockets, loops or actors (transport/codec.c drives it for
 * connections), nor other codecs. */
#include <netsys/framing.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Relative, not "transport/internal.h": the fuzz target compiles this file
 * with only include/ on its path. */
#include "internal.h"

static size_t effective_max(size_t max_payload)
{
    if (max_payload == 0)
        return NSYS_FRAMING_DEFAULT_MAX_PAYLOAD;
    if ((uint64_t)max_payload > NSYS_FRAMING_WIRE_MAX_PAYLOAD)
        return (size_t)NSYS_FRAMING_WIRE_MAX_PAYLOAD;
    return max_payload;
}

/* Each byte is widened before shifting: a uint8_t promotes to int, and
 * 0x80 << 24 does not fit in one. */
static uint32_t read_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void write_be32(uint32_t v, uint8_t *p)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int format_oversize(char *out, size_t outlen, uint64_t len, uint64_t max)
{
    int n = snprintf(out, outlen, "payload exceeds maximum (%" PRIu64 " > %" PRIu64 ")", len, max);
    if (n < 0)
        return NSYS_EINVAL;
    return (size_t)n >= outlen ? NSYS_ENOSPC : 0;
}

/* ---- reader: the decoder's state machine, without its error text ---------- */

void nsys__frame_reader_init(nsys__frame_reader_t *r, size_t max_payload)
{
    memset(r, 0, sizeof *r);
    r->max_payload = (uint32_t)effective_max(max_payload);
}

void nsys__frame_reader_free(nsys__frame_reader_t *r)
{
    nsys_buf_unref(r->partial);
    r->partial = NULL;
    r->need = 0;
    r->got = 0;
    r->header_len = 0;
}

void nsys__frame_reader_error_text(const nsys__frame_reader_t *r, char *out, size_t outlen)
{
    if (r->error == NSYS_EMSGSIZE)
        format_oversize(out, outlen, r->need, r->max_payload);
    else
        snprintf(out, outlen, "out of memory for a frame of %" PRIu32 " bytes", r->need);
}

/* Enters the sticky error state. What is held is released now: the stream
 * cannot continue, so nothing partial will ever be delivered. The claim is
 * kept in `need` for the error text. */
static int fail(nsys__frame_reader_t *r, int code, uint32_t claim)
{
    nsys__frame_reader_free(r);
    r->error = code;
    r->need = claim;
    return code;
}

int nsys__frame_reader_feed(nsys__frame_reader_t *r, nsys_buf_t *buf, const uint8_t *data,
                            size_t len, size_t *consumed, nsys_frame_cb cb, void *ud)
{
    if (r == NULL || cb == NULL || (data == NULL && len > 0))
        return NSYS_EINVAL;
    if (buf != NULL && len > 0 && !nsys_buf_within(buf, data, len))
        return NSYS_EINVAL;
    size_t unused;
    if (consumed == NULL)
        consumed = &unused;
    *consumed = 0;
    if (r->error != 0)
        return r->error;

    /* Where the chunk starts inside buf, for slicing. */
    size_t offset = 0;
    if (buf != NULL && len > 0)
        offset = (size_t)((uintptr_t)data - (uintptr_t)nsys_buf_data(buf));
    size_t pos = 0;
    for (;;) {
        if (r->partial == NULL) {
            /* Between frames, or inside a header. */
            uint32_t claim;
            if (r->header_len == 0 && len - pos >= NSYS_FRAMING_HEADER_SIZE) {
                claim = read_be32(data + pos);
                pos += NSYS_FRAMING_HEADER_SIZE;
            } else {
                if (r->header_len < NSYS_FRAMING_HEADER_SIZE) {
                    if (pos == len)
                        break;
                    size_t n = NSYS_FRAMING_HEADER_SIZE - r->header_len;
                    if (n > len - pos)
                        n = len - pos;
                    memcpy(r->header + r->header_len, data + pos, n);
                    r->header_len = (uint8_t)(r->header_len + n);
                    pos += n;
                    if (r->header_len < NSYS_FRAMING_HEADER_SIZE)
                        break;
                }
                claim = read_be32(r->header);
            }
            *consumed = pos;

            if (claim > r->max_payload)
                return fail(r, NSYS_EMSGSIZE, claim);

            if (claim > 0 && pos == len) {
                /* A whole header and none of its payload: hold the header.
                 * The next read may carry the whole payload (then it is a
                 * slice), and no memory is tied up before a byte arrives. */
                if (r->header_len == 0)
                    memcpy(r->header, data + pos - NSYS_FRAMING_HEADER_SIZE,
                           NSYS_FRAMING_HEADER_SIZE);
                r->header_len = NSYS_FRAMING_HEADER_SIZE;
                break;
            }
            r->header_len = 0;

            if (len - pos >= claim) {
                /* The whole payload is in this chunk: slice it, or copy it
                 * when the caller has no buffer to share. */
                nsys_buf_t *frame = NULL;
                int rc = buf != NULL ? nsys_buf_slice(buf, offset + pos, claim, &frame)
                                     : nsys_buf_from(data + pos, claim, &frame);
                if (rc != 0)
                    return fail(r, rc, claim);
                pos += claim;
                *consumed = pos;
                rc = cb(ud, frame, nsys_buf_data(frame), claim);
                if (rc != 0)
                    return rc;
                continue;
            }

            /* Split over reads: the one allocation, now that the size is
             * known and allowed and part of the payload is here. */
            int rc = nsys_buf_new(claim, &r->partial);
            if (rc != 0) {
                r->partial = NULL;
                return fail(r, rc, claim);
            }
            r->need = claim;
            r->got = 0;
        }

        if (pos == len)
            break;
        size_t n = r->need - r->got;
        if (n > len - pos)
            n = len - pos;
        memcpy(nsys_buf_data(r->partial) + r->got, data + pos, n);
        r->got += (uint32_t)n;
        pos += n;
        *consumed = pos;
        if (r->got < r->need)
            break;

        nsys_buf_t *frame = r->partial;
        size_t flen = r->need;
        r->partial = NULL;
        r->need = 0;
        r->got = 0;
        nsys_buf_set_len(frame, flen); /* cannot fail: a root buffer of exactly flen */
        int rc = cb(ud, frame, nsys_buf_data(frame), flen);
        if (rc != 0)
            return rc;
    }
    *consumed = len;
    return 0;
}

/* ---- decoder: the reader plus its error text ------------------------------ */

static void reader_load(const nsys_frame_decoder_t *dec, nsys__frame_reader_t *r)
{
    r->partial = dec->partial;
    r->max_payload = (uint32_t)dec->max_payload; /* effective: fits */
    r->need = (uint32_t)dec->need;
    r->got = (uint32_t)dec->got;
    r->error = dec->error;
    memcpy(r->header, dec->header, sizeof r->header);
    r->header_len = dec->header_len;
}

static void reader_store(nsys_frame_decoder_t *dec, const nsys__frame_reader_t *r)
{
    dec->partial = r->partial;
    dec->need = r->need;
    dec->got = r->got;
    dec->error = r->error;
    memcpy(dec->header, r->header, sizeof dec->header);
    dec->header_len = r->header_len;
}

/* Runs the caller's callback with the decoder's fields brought up to date,
 * so that it sees the decoder as if the feed had worked on it directly. */
typedef struct relay {
    nsys_frame_decoder_t *dec;
    const nsys__frame_reader_t *r;
    nsys_frame_cb cb;
    void *ud;
} relay_t;

static int relay_frame(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len)
{
    relay_t *rl = ud;
    reader_store(rl->dec, rl->r);
    return rl->cb(rl->ud, frame, payload, len);
}

int nsys_frame_decoder_init(nsys_frame_decoder_t *dec, size_t max_payload)
{
    if (dec == NULL)
        return NSYS_EINVAL;
    memset(dec, 0, sizeof *dec);
    dec->max_payload = effective_max(max_payload);
    return 0;
}

void nsys_frame_decoder_free(nsys_frame_decoder_t *dec)
{
    if (dec == NULL)
        return;
    nsys_buf_unref(dec->partial);
    dec->partial = NULL;
    dec->need = 0;
    dec->got = 0;
    dec->header_len = 0;
}

void nsys_frame_decoder_reset(nsys_frame_decoder_t *dec)
{
    if (dec == NULL)
        return;
    nsys_frame_decoder_free(dec);
    dec->consumed = 0;
    dec->error = 0;
    dec->message[0] = '\0';
}

size_t nsys_frame_decoder_consumed(const nsys_frame_decoder_t *dec)
{
    return dec != NULL ? dec->consumed : 0;
}

size_t nsys_frame_decoder_buffered(const nsys_frame_decoder_t *dec)
{
    if (dec == NULL)
        return 0;
    if (dec->partial != NULL)
        return NSYS_FRAMING_HEADER_SIZE + dec->got;
    return dec->header_len;
}

const char *nsys_frame_decoder_error(const nsys_frame_decoder_t *dec)
{
    return dec != NULL && dec->error != 0 ? dec->message : NULL;
}

int nsys_frame_decoder_feed(nsys_frame_decoder_t *dec, nsys_buf_t *buf, const uint8_t *data,
                            size_t len, nsys_frame_cb cb, void *ud)
{
    if (dec == NULL || cb == NULL)
        return NSYS_EINVAL;
    nsys__frame_reader_t r;
    reader_load(dec, &r);
    relay_t rl = {.dec = dec, .r = &r, .cb = cb, .ud = ud};
    int rc = nsys__frame_reader_feed(&r, buf, data, len, &dec->consumed, relay_frame, &rl);
    bool failed_now = dec->error == 0 && r.error != 0;
    reader_store(dec, &r);
    if (failed_now)
        nsys__frame_reader_error_text(&r, dec->message, sizeof dec->message);
    return rc;
}

/* ---- encoder ------------------------------------------------------------ */

int nsys_frame_header(size_t payload_len, size_t max_payload, uint8_t out[NSYS_FRAMING_HEADER_SIZE])
{
    if (out == NULL)
        return NSYS_EINVAL;
    if (payload_len > effective_max(max_payload))
        return NSYS_EMSGSIZE;
    write_be32((uint32_t)payload_len, out);
    return 0;
}

int nsys_frame_format_oversize(char *out, size_t outlen, size_t len, size_t max_payload)
{
    if (out == NULL || outlen == 0)
        return NSYS_EINVAL;
    return format_oversize(out, outlen, len, effective_max(max_payload));
}

int nsys_frame_bufs(const void *payload, size_t payload_len, size_t max_payload,
                    uint8_t header[NSYS_FRAMING_HEADER_SIZE], uv_buf_t bufs[2])
{
    if (header == NULL || bufs == NULL || (payload == NULL && payload_len > 0))
        return NSYS_EINVAL;
    int rc = nsys_frame_header(payload_len, max_payload, header);
    if (rc != 0)
        return rc;
    /* Fields, not uv_buf_init(): keeps the codec free of libuv's library
     * (only its type), so the fuzz build needs no libuv. uv_write does not
     * modify what base points to; the const is dropped only for its type. */
    bufs[0].base = (char *)header;
    bufs[0].len = NSYS_FRAMING_HEADER_SIZE;
    bufs[1].base = (char *)(uintptr_t)payload;
    bufs[1].len = payload_len;
    return 0;
}
