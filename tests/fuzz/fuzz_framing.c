/* tests/fuzz/fuzz_framing.c — libFuzzer target for the `length` codec
 * (transport/framing.c). Owns the differential check: the stream is fed to
 * the decoder in chunks chosen by the input, and everything the decoder does
 * is compared with a plain one-pass parse of the same bytes. Not for: unit
 * behaviour with readable expectations (tests/unit/test_framing.c).
 *
 * Input layout: 4 control bytes, then the stream.
 *   byte 0  bits 0-2: maximum payload (see max_choices)
 *           bit 3:    feed with a read buffer (zero-copy slices) or without
 *           bit 4:    the callback stops after every `stop_every` frames and
 *                     the harness resumes from nsys_frame_decoder_consumed()
 *           bits 5-7: stop_every - 1
 *   byte 1  bits 0-2: largest chunk (see chunk_choices); bit 3: interleave
 *                     empty feeds
 *   byte 2-3 seed of the chunk-size generator
 *
 * Invariants (any failure aborts, which libFuzzer reports as a crash):
 * frames arrive in order with exactly the reference's bytes; none exceeds
 * the maximum; the decoder errs exactly where the reference meets an
 * oversized header, with the exact text, and stays in error; what it holds
 * at the end is the reference's unfinished tail; a payload inside one chunk
 * is a slice of that chunk's buffer, any other is a copy; delivered bytes
 * never exceed the input; slices outlive the buffers they came from. */
#include <netsys/framing.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_framing: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CONTROL_BYTES 4u
#define STOP_CODE 12345

static const size_t max_choices[8] = {0 /* default, 1 MiB */, 1, 2, 3, 7, 64, 255, 4096};
static const size_t chunk_choices[8] = {1, 2, 3, 5, 8, 64, 512, SIZE_MAX};

typedef struct expected_frame {
    size_t offset; /* of the payload, in the stream */
    size_t len;
} expected_frame_t;

/* The reference: one pass over the whole stream, no chunking. */
typedef struct reference {
    expected_frame_t *frames;
    size_t count;
    int oversize;   /* the stream hits a header over the maximum */
    uint32_t claim; /* ... claiming this much */
    size_t tail;    /* bytes of an unfinished frame at the end, if no error */
} reference_t;

static void parse_reference(const uint8_t *s, size_t n, size_t max, reference_t *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->frames = malloc((n / NSYS_FRAMING_HEADER_SIZE + 1) * sizeof *ref->frames);
    CHECK(ref->frames != NULL);
    size_t pos = 0;
    while (n - pos >= NSYS_FRAMING_HEADER_SIZE) {
        uint32_t claim = ((uint32_t)s[pos] << 24) | ((uint32_t)s[pos + 1] << 16) |
                         ((uint32_t)s[pos + 2] << 8) | (uint32_t)s[pos + 3];
        if (claim > max) {
            ref->oversize = 1;
            ref->claim = claim;
            return;
        }
        if (n - pos - NSYS_FRAMING_HEADER_SIZE < claim)
            break;
        ref->frames[ref->count].offset = pos + NSYS_FRAMING_HEADER_SIZE;
        ref->frames[ref->count].len = claim;
        ref->count++;
        pos += NSYS_FRAMING_HEADER_SIZE + claim;
    }
    ref->tail = n - pos;
}

typedef struct run {
    const reference_t *ref;
    size_t max;
    nsys_buf_t **got; /* delivered frames, kept until the end */
    size_t ngot;
    size_t delivered_bytes;
    size_t stop_every; /* 0: never stop */
    /* the chunk being fed */
    size_t chunk_start, chunk_len;
    const uint8_t *chunk_data;
    nsys_buf_t *chunk_buf;
} run_t;

static int on_frame(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len)
{
    run_t *r = ud;
    CHECK(frame != NULL);
    CHECK(payload == nsys_buf_data(frame));
    CHECK(len == nsys_buf_len(frame));
    CHECK(len <= r->max);
    CHECK(r->ngot < r->ref->count);
    const expected_frame_t *want = &r->ref->frames[r->ngot];
    CHECK(len == want->len);

    /* Zero copy exactly when the payload is inside this chunk and there is a
     * buffer to slice. */
    int inside_chunk =
        want->offset >= r->chunk_start && want->offset + len <= r->chunk_start + r->chunk_len;
    uintptr_t lo = (uintptr_t)r->chunk_data, at = (uintptr_t)payload;
    int points_into_chunk = at >= lo && at < lo + r->chunk_len;
    if (inside_chunk && r->chunk_buf != NULL) {
        CHECK(payload == r->chunk_data + (want->offset - r->chunk_start));
        CHECK(nsys_buf_refcount(r->chunk_buf) >= 2);
    } else if (len > 0) {
        CHECK(!points_into_chunk);
    }

    r->got[r->ngot++] = frame;
    r->delivered_bytes += len;
    return r->stop_every != 0 && r->ngot % r->stop_every == 0 ? STOP_CODE : 0;
}

/* Feeds one chunk, resuming after every stop; returns 0 or the error. */
static int feed_chunk(nsys_frame_decoder_t *dec, run_t *r, int with_buf)
{
    size_t done = 0;
    for (;;) {
        size_t before = r->ngot;
        const uint8_t *p = r->chunk_data + done;
        int rc = nsys_frame_decoder_feed(dec, with_buf ? r->chunk_buf : NULL, p,
                                         r->chunk_len - done, on_frame, r);
        size_t used = nsys_frame_decoder_consumed(dec);
        CHECK(used <= r->chunk_len - done);
        if (rc != STOP_CODE) {
            CHECK(rc != 0 || used == r->chunk_len - done);
            return rc;
        }
        CHECK(r->ngot > before);
        CHECK(r->ngot % r->stop_every == 0);
        CHECK(used > 0); /* a frame completed, so at least one byte was read */
        CHECK(nsys_frame_decoder_error(dec) == NULL);
        done += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CONTROL_BYTES)
        return 0;
    size_t max = max_choices[data[0] & 7u];
    if (max == 0)
        max = NSYS_FRAMING_DEFAULT_MAX_PAYLOAD;
    int with_buf = (data[0] >> 3) & 1u;
    size_t stop_every = (data[0] >> 4) & 1u ? 1u + (data[0] >> 5) : 0;
    size_t largest_chunk = chunk_choices[data[1] & 7u];
    int empty_feeds = (data[1] >> 3) & 1u;
    uint32_t rng = ((uint32_t)data[2] << 8 | data[3]) * 2654435761u + 1u;
    if (rng == 0)
        rng = 1; /* xorshift's one fixed point */
    const uint8_t *stream = data + CONTROL_BYTES;
    size_t n = size - CONTROL_BYTES;

    reference_t ref;
    parse_reference(stream, n, max, &ref);

    nsys_frame_decoder_t dec;
    CHECK(nsys_frame_decoder_init(&dec, max_choices[data[0] & 7u]) == 0);
    run_t r = {.ref = &ref, .max = max, .stop_every = stop_every};
    r.got = malloc((ref.count + 1) * sizeof *r.got);
    CHECK(r.got != NULL);

    int err = 0;
    size_t pos = 0;
    do { /* at least one feed, so an empty stream is fed too */
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t len = largest_chunk == SIZE_MAX ? n - pos : 1u + rng % largest_chunk;
        if (len > n - pos)
            len = n - pos;
        if (empty_feeds && (rng & 0x300u) == 0)
            len = 0;

        /* An exact-size copy, so ASan sees any read past the chunk. */
        nsys_buf_t *rb = NULL;
        CHECK(nsys_buf_from(stream + pos, len, &rb) == 0);
        r.chunk_buf = with_buf ? rb : NULL;
        r.chunk_data = nsys_buf_data(rb);
        r.chunk_start = pos;
        r.chunk_len = len;
        err = feed_chunk(&dec, &r, with_buf);
        nsys_buf_unref(rb);
        pos += len;
    } while (err == 0 && pos < n);

    if (ref.oversize) {
        char text[NSYS_FRAMING_ERROR_SIZE];
        CHECK(err == NSYS_EMSGSIZE);
        CHECK(nsys_frame_format_oversize(text, sizeof text, ref.claim, max) == 0);
        CHECK(nsys_frame_decoder_error(&dec) != NULL);
        CHECK(strcmp(nsys_frame_decoder_error(&dec), text) == 0);
        CHECK(nsys_frame_decoder_buffered(&dec) == 0);
        /* The error sticks: nothing more is read or delivered. */
        size_t before = r.ngot;
        CHECK(nsys_frame_decoder_feed(&dec, NULL, stream, n, on_frame, &r) == NSYS_EMSGSIZE);
        CHECK(nsys_frame_decoder_consumed(&dec) == 0);
        CHECK(r.ngot == before);
    } else {
        CHECK(err == 0);
        CHECK(nsys_frame_decoder_error(&dec) == NULL);
        CHECK(nsys_frame_decoder_buffered(&dec) == ref.tail);
    }
    CHECK(r.ngot == ref.count);
    CHECK(r.delivered_bytes <= size);

    /* Every chunk buffer is gone by now: the frames still hold their bytes. */
    for (size_t i = 0; i < r.ngot; i++) {
        CHECK(nsys_buf_len(r.got[i]) == ref.frames[i].len);
        CHECK(ref.frames[i].len == 0 ||
              memcmp(nsys_buf_data(r.got[i]), stream + ref.frames[i].offset, ref.frames[i].len) ==
                  0);
        nsys_buf_unref(r.got[i]);
    }

    nsys_frame_decoder_free(&dec);
    free(r.got);
    free(ref.frames);
    return 0;
}
