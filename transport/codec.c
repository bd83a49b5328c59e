/* transport/codec.c — the top layers of a connection: `length` (frames of
 * netsys/framing.h) and `raw` (bytes as they come). A codec turns the bytes
 * from below into whole messages for the owner, and a message from the owner
 * into bytes for below. Limits are checked here, before anything is queued
 * or allocated. Not for: the socket (conn.c) or the frame format (framing.c). */
#include <netsys/framing.h>

#include <assert.h>

#include "transport/internal.h"

typedef struct length_codec {
    nsys_layer_t base;
    nsys__frame_reader_t in;
} length_codec_t;

typedef struct raw_codec {
    nsys_layer_t base;
    size_t max_payload;
} raw_codec_t;

static_assert(sizeof(length_codec_t) <= NSYS__CODEC_STORAGE, "codec storage too small");
static_assert(sizeof(raw_codec_t) <= NSYS__CODEC_STORAGE, "codec storage too small");

/* Refuses a send over the limit, with the text the receiving side uses. */
static int oversize(size_t len, size_t max_payload)
{
    char text[NSYS_FRAMING_ERROR_SIZE];
    nsys_frame_format_oversize(text, sizeof text, len, max_payload);
    nsys__net_set_error("%s", text);
    return NSYS_EMSGSIZE;
}

/* ---- length ------------------------------------------------------------ */

static int length_frame(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len)
{
    length_codec_t *lc = ud;
    int rc = nsys_layer_up(&lc->base, frame, payload, len);
    nsys_buf_unref(frame);
    return rc;
}

static int length_recv(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    length_codec_t *lc = (length_codec_t *)l;
    /* No resuming a stopped feed: it stops only when the connection ends. */
    int rc = nsys__frame_reader_feed(&lc->in, buf, data, len, NULL, length_frame, lc);
    if (rc != 0 && lc->in.error != 0) {
        char why[NSYS_FRAMING_ERROR_SIZE];
        nsys__frame_reader_error_text(&lc->in, why, sizeof why);
        nsys_conn_fail(l->conn, rc, "%s", why);
    }
    return rc;
}

static int length_send(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    length_codec_t *lc = (length_codec_t *)l;
    uint8_t header[NSYS_FRAMING_HEADER_SIZE];
    if (nsys_frame_header(len, lc->in.max_payload, header) != 0)
        return oversize(len, lc->in.max_payload);
    int rc = nsys_layer_down(l, NULL, header, sizeof header);
    if (rc == 0)
        rc = nsys_layer_down(l, buf, data, len);
    if (rc != 0) /* half a frame may be queued: the stream cannot go on */
        nsys_conn_fail(l->conn, rc, "cannot queue a frame of %zu bytes", len);
    return rc;
}

static void length_destroy(nsys_layer_t *l) { nsys__frame_reader_free(&((length_codec_t *)l)->in); }

static const nsys_layer_vt_t length_vt = {
    .name = "length", .recv = length_recv, .send = length_send, .destroy = length_destroy};

/* ---- raw ----------------------------------------------------------------- */

static int raw_send(nsys_layer_t *l, nsys_buf_t *buf, const uint8_t *data, size_t len)
{
    raw_codec_t *rc = (raw_codec_t *)l;
    if (len > rc->max_payload)
        return oversize(len, rc->max_payload);
    return nsys_layer_down(l, buf, data, len);
}

static const nsys_layer_vt_t raw_vt = {.name = "raw", .recv = nsys_layer_up, /* each read is a message */ .send = raw_send};

/* ---- setup ---------------------------------------------------------------- */

int nsys__codec_init(nsys_conn_t *c, nsys_layer_t *storage, const nsys_transport_opts_t *o)
{
    switch (o->codec) {
    case NSYS_CODEC_LENGTH: {
        length_codec_t *lc = (length_codec_t *)storage;
        lc->base.vt = &length_vt;
        lc->base.conn = c;
        nsys__frame_reader_init(&lc->in, o->max_payload);
        return 0;
    }
    case NSYS_CODEC_RAW: {
        raw_codec_t *rc = (raw_codec_t *)storage;
        rc->base.vt = &raw_vt;
        rc->base.conn = c;
        rc->max_payload = o->max_payload;
        return 0;
    }
    }
    return NSYS_EINVAL;
}

void nsys__codec_free(nsys_layer_t *codec)
{
    if (codec != NULL && codec->vt != NULL && codec->vt->destroy != NULL)
        codec->vt->destroy(codec);
}
