/* transport/framing.c — the `length` codec (include/netsys/framing.h): the
 * 4-byte big-endian length prefix, the decoder's state machine (header bytes,
 * then payload bytes, then deliver), the limit check that comes before any
 * allocation, and the header encoder. Not for: sockets, loops or actors
 * (transport/codec.c drives it for connections), nor other codecs. */
#include <netsys/framing.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

/* ---- decoder ------------------------------------------------------------ */

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

/* Enters the sticky error state. What is held is released now: the stream
 * cannot continue, so nothing partial will ever be delivered. */
static int fail(nsys_frame_decoder_t *dec, int code, uint32_t claim)
{
    nsys_frame_decoder_free(dec);
    dec->error = code;
    if (code == NSYS_EMSGSIZE)
        format_oversize(dec->message, sizeof dec->message, claim, dec->max_payload);
    else
        snprintf(dec->message, sizeof dec->message,
                 "out of memory for a frame of %" PRIu32 " bytes", claim);
    return code;
}

int nsys_frame_decoder_feed(nsys_frame_decoder_t *dec, nsys_buf_t *buf, const uint8_t *data,
                            size_t len, nsys_frame_cb cb, void *ud)
{
    if (dec == NULL || cb == NULL || (data == NULL && len > 0))
        return NSYS_EINVAL;
    if (buf != NULL && len > 0 && !nsys_buf_within(buf, data, len))
        return NSYS_EINVAL;
    dec->consumed = 0;
    if (dec->error != 0)
        return dec->error;

    /* Where the chunk starts inside buf, for slicing. */
    size_t offset = 0;
    if (buf != NULL && len > 0)
        offset = (size_t)((uintptr_t)data - (uintptr_t)nsys_buf_data(buf));
    size_t pos = 0;
    for (;;) {
        if (dec->partial == NULL) {
            /* Between frames, or inside a header. */
            uint32_t claim;
            if (dec->header_len == 0 && len - pos >= NSYS_FRAMING_HEADER_SIZE) {
                claim = read_be32(data + pos);
                pos += NSYS_FRAMING_HEADER_SIZE;
            } else {
                if (dec->header_len < NSYS_FRAMING_HEADER_SIZE) {
                    if (pos == len)
                        break;
                    size_t n = NSYS_FRAMING_HEADER_SIZE - dec->header_len;
                    if (n > len - pos)
                        n = len - pos;
                    memcpy(dec->header + dec->header_len, data + pos, n);
                    dec->header_len = (uint8_t)(dec->header_len + n);
                    pos += n;
                    if (dec->header_len < NSYS_FRAMING_HEADER_SIZE)
                        break;
                }
                claim = read_be32(dec->header);
            }
            dec->consumed = pos;

            if ((uint64_t)claim > (uint64_t)dec->max_payload)
                return fail(dec, NSYS_EMSGSIZE, claim);

            if (claim > 0 && pos == len) {
                /* A whole header and none of its payload: hold the header.
                 * The next read may carry the whole payload (then it is a
                 * slice), and no memory is tied up before a byte arrives. */
                if (dec->header_len == 0)
                    memcpy(dec->header, data + pos - NSYS_FRAMING_HEADER_SIZE,
                           NSYS_FRAMING_HEADER_SIZE);
                dec->header_len = NSYS_FRAMING_HEADER_SIZE;
                break;
            }
            dec->header_len = 0;

            if (len - pos >= claim) {
                /* The whole payload is in this chunk: slice it, or copy it
                 * when the caller has no buffer to share. */
                nsys_buf_t *frame = NULL;
                int rc = buf != NULL ? nsys_buf_slice(buf, offset + pos, claim, &frame)
                                     : nsys_buf_from(data + pos, claim, &frame);
                if (rc != 0)
                    return fail(dec, rc, claim);
                pos += claim;
                dec->consumed = pos;
                rc = cb(ud, frame, nsys_buf_data(frame), claim);
                if (rc != 0)
                    return rc;
                continue;
            }

            /* Split over reads: the one allocation, now that the size is
             * known and allowed and part of the payload is here. */
            int rc = nsys_buf_new(claim, &dec->partial);
            if (rc != 0) {
                dec->partial = NULL;
                return fail(dec, rc, claim);
            }
            dec->need = claim;
            dec->got = 0;
        }

        if (pos == len)
            break;
        size_t n = dec->need - dec->got;
        if (n > len - pos)
            n = len - pos;
        memcpy(nsys_buf_data(dec->partial) + dec->got, data + pos, n);
        dec->got += n;
        pos += n;
        dec->consumed = pos;
        if (dec->got < dec->need)
            break;

        nsys_buf_t *frame = dec->partial;
        size_t flen = dec->need;
        dec->partial = NULL;
        dec->need = 0;
        dec->got = 0;
        nsys_buf_set_len(frame, flen); /* cannot fail: a root buffer of exactly flen */
        int rc = cb(ud, frame, nsys_buf_data(frame), flen);
        if (rc != 0)
            return rc;
    }
    dec->consumed = len;
    return 0;
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
