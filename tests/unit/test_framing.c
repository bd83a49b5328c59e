/* tests/unit/test_framing.c — the `length` codec (include/netsys/framing.h):
 * frames are delivered whole, in order, however the stream is chunked; limits
 * fire at the header, before allocation, with the exact text; frames inside a
 * chunk are zero-copy slices; the error state sticks until reset; the encoder
 * agrees with the decoder. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netsys/netsys.h>

#include "common/wait.h"

/* ---- helpers ------------------------------------------------------------ */

/* Allocation watch: the largest single allocation made while armed, so a
 * test can prove that a refused header allocated nothing, not merely that
 * nothing was left allocated. Under ASan/TSan the sanitizer owns malloc and
 * reports to a hook; otherwise this program's malloc wraps glibc's. Both see
 * the library's allocations (it is linked statically into this program). */
static _Atomic size_t watched_largest;
static atomic_int watching;

static void note_allocation(size_t size)
{
    if (atomic_load_explicit(&watching, memory_order_relaxed) &&
        size > atomic_load_explicit(&watched_largest, memory_order_relaxed))
        atomic_store_explicit(&watched_largest, size, memory_order_relaxed);
}

#if T_SANITIZED
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void on_malloc(const volatile void *p, size_t size)
{
    (void)p;
    note_allocation(size);
}
static void on_free(const volatile void *p)
{
    (void)p;
}
static void watch_allocations(void)
{
    static int installed;
    if (!installed)
        installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
    cr_assert(installed, "the sanitizer refused the malloc hook");
    atomic_store(&watched_largest, 0);
    atomic_store(&watching, 1);
}
#else
void *__libc_malloc(size_t size);
void *malloc(size_t size);
void *malloc(size_t size)
{
    note_allocation(size);
    return __libc_malloc(size);
}
static void watch_allocations(void)
{
    atomic_store(&watched_largest, 0);
    atomic_store(&watching, 1);
}
#endif

/* Stops watching; returns the largest allocation seen. */
static size_t largest_allocation(void)
{
    atomic_store(&watching, 0);
    return atomic_load(&watched_largest);
}

/* splitmix64: a seeded, reproducible source for lengths and chunk sizes. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static size_t random_between(uint64_t *state, size_t lo, size_t hi)
{
    return lo + (size_t)(next_random(state) % (uint64_t)(hi - lo + 1));
}

/* Byte j of the payload of frame i: differs between neighbouring frames, so a
 * frame delivered out of order or from the wrong offset does not compare
 * equal. */
static uint8_t payload_byte(size_t i, size_t j)
{
    return (uint8_t)(i * 131u + j * 7u + (j >> 8) + 1u);
}

typedef struct bytes {
    uint8_t *data;
    size_t len, cap;
} bytes_t;

static void bytes_append(bytes_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        cr_assert_not_null(b->data);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Appends frame i with a payload of `len` bytes, header made by the encoder. */
static void append_frame(bytes_t *b, size_t i, size_t len)
{
    uint8_t hdr[NSYS_FRAMING_HEADER_SIZE];
    cr_assert_eq(nsys_frame_header(len, NSYS_FRAMING_WIRE_MAX_PAYLOAD, hdr), 0);
    bytes_append(b, hdr, sizeof hdr);
    for (size_t j = 0; j < len; j++) {
        uint8_t c = payload_byte(i, j);
        bytes_append(b, &c, 1);
    }
}

static void append_raw_header(bytes_t *b, uint32_t claim)
{
    uint8_t hdr[4] = {(uint8_t)(claim >> 24), (uint8_t)(claim >> 16), (uint8_t)(claim >> 8),
                      (uint8_t)claim};
    bytes_append(b, hdr, sizeof hdr);
}

/* What the decoder delivered: every frame, kept (so the test also proves a
 * slice outlives the chunk it came from), plus anything the callback found
 * inconsistent. */
typedef struct collector {
    nsys_buf_t **frames;
    size_t n, cap;
    size_t stop_at; /* return `stop_code` when the n-th frame arrives (0: never) */
    int stop_code;
    int mismatches; /* payload/len not matching the frame buffer */
} collector_t;

static int collect(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len)
{
    collector_t *c = ud;
    if (frame == NULL || payload != nsys_buf_data(frame) || len != nsys_buf_len(frame))
        c->mismatches++;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->frames = realloc(c->frames, c->cap * sizeof *c->frames);
        if (c->frames == NULL)
            abort();
    }
    c->frames[c->n++] = frame;
    return c->stop_at != 0 && c->n == c->stop_at ? c->stop_code : 0;
}

static void collector_free(collector_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        nsys_buf_unref(c->frames[i]);
    free(c->frames);
    memset(c, 0, sizeof *c);
}

/* Asserts that frame k of the collector is frame i of payload_byte(), `len`
 * bytes long. */
static void assert_frame(const collector_t *c, size_t k, size_t i, size_t len)
{
    cr_assert_lt(k, c->n, "frame %zu was not delivered (%zu were)", k, c->n);
    cr_assert_eq(nsys_buf_len(c->frames[k]), len, "frame %zu: length %zu, expected %zu", k,
                 nsys_buf_len(c->frames[k]), len);
    const uint8_t *p = nsys_buf_data(c->frames[k]);
    for (size_t j = 0; j < len; j++)
        cr_assert_eq(p[j], payload_byte(i, j), "frame %zu differs at byte %zu", k, j);
}

/* Feeds bytes [from, to) of `s` as one read: copied into a fresh read buffer
 * that the decoder may slice, released right after (as a session would). */
static int feed_range(nsys_frame_decoder_t *dec, const bytes_t *s, size_t from, size_t to,
                      collector_t *c)
{
    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from(s->data + from, to - from, &rb), 0);
    int rc = nsys_frame_decoder_feed(dec, rb, nsys_buf_data(rb), to - from, collect, c);
    nsys_buf_unref(rb);
    return rc;
}

static int points_inside(const uint8_t *p, const uint8_t *lo, size_t len)
{
    return (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p <= (uintptr_t)lo + len;
}

/* ---- limits ------------------------------------------------------------- */

Test(framing, delivers_a_zero_length_payload)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 0);
    append_frame(&s, 1, 3);
    append_frame(&s, 2, 0);

    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), 0);
    cr_assert_eq(c.n, 3);
    cr_assert_not_null(c.frames[0]);
    assert_frame(&c, 0, 0, 0);
    assert_frame(&c, 1, 1, 3);
    assert_frame(&c, 2, 2, 0);
    cr_assert_eq(c.mismatches, 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, delivers_a_zero_length_frame_with_the_feed_that_completes_its_header)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 0);

    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, 3, &c), 0);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 3);
    cr_assert_eq(feed_range(&dec, &s, 3, 4, &c), 0);
    cr_assert_eq(c.n, 1, "the frame is complete: it must not wait for another read");
    assert_frame(&c, 0, 0, 0);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, accepts_a_payload_of_exactly_the_maximum)
{
    /* A small explicit maximum, whole and split. */
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 16), 0);
    bytes_t s = {0};
    append_frame(&s, 7, 16);
    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), 0);
    cr_assert_eq(feed_range(&dec, &s, 0, 9, &c), 0);
    cr_assert_eq(feed_range(&dec, &s, 9, s.len, &c), 0);
    cr_assert_eq(c.n, 2);
    assert_frame(&c, 0, 7, 16);
    assert_frame(&c, 1, 7, 16);
    cr_assert_null(nsys_frame_decoder_error(&dec));
    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);

    /* The default maximum, 1 MiB, split over two reads. */
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    s = (bytes_t){0};
    append_frame(&s, 3, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD);
    cr_assert_eq(feed_range(&dec, &s, 0, s.len / 2, &c), 0);
    cr_assert_eq(feed_range(&dec, &s, s.len / 2, s.len, &c), 0);
    cr_assert_eq(c.n, 1);
    assert_frame(&c, 0, 3, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD);
    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, rejects_a_payload_one_byte_over_the_maximum_with_the_exact_text)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_raw_header(&s, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD + 1);
    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), NSYS_EMSGSIZE);
    cr_assert_eq(c.n, 0);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec), "payload exceeds maximum (1048577 > 1048576)");
    nsys_frame_decoder_free(&dec);

    cr_assert_eq(nsys_frame_decoder_init(&dec, 16), 0);
    s.len = 0;
    append_raw_header(&s, 17);
    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), NSYS_EMSGSIZE);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec), "payload exceeds maximum (17 > 16)");
    cr_assert_eq(c.n, 0);

    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, refuses_a_4_GiB_claim_at_its_fourth_header_byte_without_allocating)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD), 0);
    const uint8_t claim[4] = {0xff, 0xff, 0xff, 0xff};
    collector_t c = {0};

    watch_allocations();
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, &claim[i], 1, collect, &c), 0);
        cr_assert_null(nsys_frame_decoder_error(&dec));
    }
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, &claim[3], 1, collect, &c), NSYS_EMSGSIZE);
    size_t largest = largest_allocation();

    cr_assert_eq(c.n, 0);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec),
                     "payload exceeds maximum (4294967295 > 1048576)");
    cr_assert_lt(largest, 1024, "the decoder allocated %zu bytes for a refused header", largest);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);

    /* Same claim in one read with payload bytes behind it: only the header
     * is consumed. */
    nsys_frame_decoder_reset(&dec);
    uint8_t more[12] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8};
    watch_allocations();
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, more, sizeof more, collect, &c),
                 NSYS_EMSGSIZE);
    largest = largest_allocation();
    cr_assert_eq(nsys_frame_decoder_consumed(&dec), 4);
    cr_assert_lt(largest, 1024, "the decoder allocated %zu bytes for a refused header", largest);

    /* One byte over a 1 MiB limit: refused before its megabyte exists. */
    nsys_frame_decoder_reset(&dec);
    uint8_t over[4] = {0x00, 0x10, 0x00, 0x01};
    watch_allocations();
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, over, sizeof over, collect, &c),
                 NSYS_EMSGSIZE);
    largest = largest_allocation();
    cr_assert_lt(largest, 1024, "the decoder allocated %zu bytes for a refused header", largest);
    cr_assert_eq(c.n, 0);

    /* The watch does see the decoder allocate: an accepted frame split over
     * reads gets its buffer as soon as its header is known. */
    nsys_frame_decoder_reset(&dec);
    uint8_t accepted[6] = {0x00, 0x10, 0x00, 0x00, 'a', 'b'};
    watch_allocations();
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, accepted, sizeof accepted, collect, &c), 0);
    largest = largest_allocation();
    cr_assert_geq(largest, NSYS_FRAMING_DEFAULT_MAX_PAYLOAD);

    nsys_frame_decoder_free(&dec);
    T_ASSERT_NO_LEAKS();
}

Test(framing, keeps_its_error_state_until_reset)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 8), 0);
    bytes_t bad = {0}, good = {0};
    append_raw_header(&bad, 9);
    append_frame(&good, 0, 4);
    collector_t c = {0};

    cr_assert_eq(feed_range(&dec, &bad, 0, bad.len, &c), NSYS_EMSGSIZE);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(feed_range(&dec, &good, 0, good.len, &c), NSYS_EMSGSIZE);
        cr_assert_eq(nsys_frame_decoder_consumed(&dec), 0);
        cr_assert_str_eq(nsys_frame_decoder_error(&dec), "payload exceeds maximum (9 > 8)");
    }
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, NULL, 0, collect, &c), NSYS_EMSGSIZE);
    cr_assert_eq(c.n, 0, "no frame may come out of a decoder in the error state");

    nsys_frame_decoder_reset(&dec);
    cr_assert_null(nsys_frame_decoder_error(&dec));
    cr_assert_eq(feed_range(&dec, &good, 0, good.len, &c), 0);
    cr_assert_eq(c.n, 1);
    assert_frame(&c, 0, 0, 4);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(bad.data);
    free(good.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, reads_a_zero_maximum_as_the_default_and_caps_the_maximum_at_the_wire_limit)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    uint8_t over[4] = {0x00, 0x10, 0x00, 0x01};
    collector_t c = {0};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, over, 4, collect, &c), NSYS_EMSGSIZE);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec), "payload exceeds maximum (1048577 > 1048576)");
    nsys_frame_decoder_free(&dec);

    uint8_t hdr[4];
    cr_assert_eq(nsys_frame_header(NSYS_FRAMING_DEFAULT_MAX_PAYLOAD, 0, hdr), 0);
    cr_assert_eq(nsys_frame_header(NSYS_FRAMING_DEFAULT_MAX_PAYLOAD + 1, 0, hdr), NSYS_EMSGSIZE);
    cr_assert_eq(nsys_frame_header(NSYS_FRAMING_WIRE_MAX_PAYLOAD, SIZE_MAX, hdr), 0);
    cr_assert_eq(memcmp(hdr, "\xff\xff\xff\xff", 4), 0);
#if SIZE_MAX > 0xFFFFFFFFu
    cr_assert_eq(nsys_frame_header((size_t)NSYS_FRAMING_WIRE_MAX_PAYLOAD + 1, SIZE_MAX, hdr),
                 NSYS_EMSGSIZE, "4 GiB does not fit in the header, whatever the maximum");
    char text[NSYS_FRAMING_ERROR_SIZE];
    cr_assert_eq(nsys_frame_format_oversize(text, sizeof text, (size_t)1 << 32, SIZE_MAX), 0);
    cr_assert_str_eq(text, "payload exceeds maximum (4294967296 > 4294967295)");
#endif
    T_ASSERT_NO_LEAKS();
}

Test(framing, refuses_bytes_that_are_not_inside_the_given_buffer)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from("\0\0\0\2ab", 6, &rb), 0);
    uint8_t elsewhere[6] = {0, 0, 0, 2, 'a', 'b'};
    collector_t c = {0};

    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, elsewhere, 6, collect, &c), NSYS_EINVAL);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb) + 1, 6, collect, &c),
                 NSYS_EINVAL, "one byte past the used length");
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, NULL, 6, collect, &c), NSYS_EINVAL);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb), 6, NULL, &c), NSYS_EINVAL);
    cr_assert_eq(nsys_frame_decoder_feed(NULL, rb, nsys_buf_data(rb), 6, collect, &c), NSYS_EINVAL);
    cr_assert_null(nsys_frame_decoder_error(&dec), "bad arguments are not a stream error");
    cr_assert_eq(c.n, 0);

    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb), 6, collect, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(memcmp(nsys_buf_data(c.frames[0]), "ab", 2), 0);

    collector_free(&c);
    nsys_buf_unref(rb);
    nsys_frame_decoder_free(&dec);
    T_ASSERT_NO_LEAKS();
}

/* ---- chunking ----------------------------------------------------------- */

static const size_t varied_lengths[] = {0,   1,   2,    3,    4, 5,     0, 0, 255,
                                        256, 257, 1000, 4096, 1, 70000, 3, 0};
#define VARIED_COUNT (sizeof varied_lengths / sizeof varied_lengths[0])

Test(framing, reassembles_a_varied_stream_fed_one_byte_per_read)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    for (size_t i = 0; i < VARIED_COUNT; i++)
        append_frame(&s, i, varied_lengths[i]);

    collector_t c = {0};
    for (size_t k = 0; k < s.len; k++) {
        cr_assert_eq(feed_range(&dec, &s, k, k + 1, &c), 0);
        cr_assert_eq(nsys_frame_decoder_consumed(&dec), 1);
    }
    cr_assert_eq(c.n, VARIED_COUNT);
    for (size_t i = 0; i < VARIED_COUNT; i++)
        assert_frame(&c, i, i, varied_lengths[i]);
    cr_assert_eq(c.mismatches, 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, delivers_every_frame_of_one_read_in_order)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    enum { FRAMES = 500 };
    for (size_t i = 0; i < FRAMES; i++)
        append_frame(&s, i, i % 37);

    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), 0);
    cr_assert_eq(nsys_frame_decoder_consumed(&dec), s.len);
    cr_assert_eq(c.n, FRAMES);
    for (size_t i = 0; i < FRAMES; i++)
        assert_frame(&c, i, i, i % 37);
    cr_assert_eq(c.mismatches, 0);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, reassembles_a_stream_split_at_every_offset)
{
    /* Two reads, split everywhere: every offset inside both headers, at both
     * frame boundaries and inside both payloads. */
    bytes_t s = {0};
    append_frame(&s, 0, 5);
    append_frame(&s, 1, 300);
    append_frame(&s, 2, 0);
    for (size_t cut = 0; cut <= s.len; cut++) {
        nsys_frame_decoder_t dec;
        cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
        collector_t c = {0};
        cr_assert_eq(feed_range(&dec, &s, 0, cut, &c), 0);
        cr_assert_eq(feed_range(&dec, &s, cut, s.len, &c), 0);
        cr_assert_eq(c.n, 3, "split at %zu", cut);
        assert_frame(&c, 0, 0, 5);
        assert_frame(&c, 1, 1, 300);
        assert_frame(&c, 2, 2, 0);
        collector_free(&c);
        nsys_frame_decoder_free(&dec);
    }
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, reassembles_a_header_split_three_ways_at_every_pair_of_offsets)
{
    bytes_t s = {0};
    append_frame(&s, 0, 3);
    append_frame(&s, 1, 0);
    append_frame(&s, 2, 9);
    for (size_t a = 0; a <= s.len; a++) {
        for (size_t b = a; b <= s.len; b++) {
            nsys_frame_decoder_t dec;
            cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
            collector_t c = {0};
            cr_assert_eq(feed_range(&dec, &s, 0, a, &c), 0);
            cr_assert_eq(feed_range(&dec, &s, a, b, &c), 0);
            cr_assert_eq(feed_range(&dec, &s, b, s.len, &c), 0);
            cr_assert_eq(c.n, 3, "splits at %zu and %zu", a, b);
            assert_frame(&c, 0, 0, 3);
            assert_frame(&c, 1, 1, 0);
            assert_frame(&c, 2, 2, 9);
            collector_free(&c);
            nsys_frame_decoder_free(&dec);
        }
    }
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

typedef struct checker {
    size_t next; /* index of the frame expected next */
    const size_t *lengths;
    size_t count;
    size_t bad; /* frames that did not match, first one reported */
    size_t first_bad;
} checker_t;

static int check_in_order(void *ud, nsys_buf_t *frame, const uint8_t *payload, size_t len)
{
    checker_t *k = ud;
    int ok = k->next < k->count && len == k->lengths[k->next] && payload == nsys_buf_data(frame);
    for (size_t j = 0; ok && j < len; j++)
        ok = payload[j] == payload_byte(k->next, j);
    if (!ok && k->bad++ == 0)
        k->first_bad = k->next;
    k->next++;
    nsys_buf_unref(frame);
    return 0;
}

Test(framing, delivers_10000_randomly_chunked_frames_intact_and_in_order)
{
    enum { FRAMES = 10000 };
    uint64_t rng = 0x6e65747379730001u; /* fixed seed: a failure reproduces */
    size_t *lengths = calloc(FRAMES, sizeof *lengths);
    cr_assert_not_null(lengths);
    bytes_t s = {0};
    for (size_t i = 0; i < FRAMES; i++) {
        unsigned kind = (unsigned)(next_random(&rng) % 100);
        size_t len = kind < 60   ? random_between(&rng, 0, 64)
                     : kind < 90 ? random_between(&rng, 65, 2048)
                     : kind < 99 ? random_between(&rng, 2049, 16384)
                                 : random_between(&rng, 16385, 200000);
        lengths[i] = len;
        append_frame(&s, i, len);
    }

    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    checker_t k = {.lengths = lengths, .count = FRAMES};
    size_t pos = 0, reads = 0;
    while (pos < s.len) {
        unsigned kind = (unsigned)(next_random(&rng) % 10);
        size_t n = kind < 3   ? random_between(&rng, 1, 16)
                   : kind < 7 ? random_between(&rng, 1, 4096)
                              : random_between(&rng, 1, 65536);
        if (n > s.len - pos)
            n = s.len - pos;
        nsys_buf_t *rb = NULL;
        cr_assert_eq(nsys_buf_from(s.data + pos, n, &rb), 0);
        int rc = nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb), n, check_in_order, &k);
        nsys_buf_unref(rb);
        cr_assert_eq(rc, 0, "read %zu: %s", reads, nsys_strerror(rc));
        pos += n;
        reads++;
    }
    cr_assert_eq(k.bad, 0, "%zu frames wrong, the first is frame %zu", k.bad, k.first_bad);
    cr_assert_eq(k.next, FRAMES, "%zu frames delivered of %d", k.next, FRAMES);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);
    cr_log_info("framing: %d frames, %zu bytes, %zu reads", FRAMES, s.len, reads);

    nsys_frame_decoder_free(&dec);
    free(lengths);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

/* ---- ownership ---------------------------------------------------------- */

Test(framing, delivers_frames_inside_the_read_as_zero_copy_slices)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 10);
    append_frame(&s, 1, 0);
    append_frame(&s, 2, 20);
    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from(s.data, s.len, &rb), 0);
    const uint8_t *lo = nsys_buf_data(rb);

    collector_t c = {0};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, lo, s.len, collect, &c), 0);
    cr_assert_eq(c.n, 3);
    cr_assert_eq(nsys_buf_refcount(rb), 1 + 3, "each slice holds the read buffer");
    cr_assert_eq(nsys_buf_data(c.frames[0]), lo + 4);
    cr_assert_eq(nsys_buf_data(c.frames[2]), lo + 4 + 10 + 4 + 4);
    for (size_t k = 0; k < c.n; k++)
        cr_assert(points_inside(nsys_buf_data(c.frames[k]), lo, s.len));

    /* The slices outlive the caller's reference. */
    nsys_buf_unref(rb);
    assert_frame(&c, 0, 0, 10);
    assert_frame(&c, 2, 2, 20);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, slices_a_payload_whose_header_came_in_an_earlier_read)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 50);
    collector_t c = {0};
    cr_assert_eq(feed_range(&dec, &s, 0, 2, &c), 0);

    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from(s.data + 2, s.len - 2, &rb), 0);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb), s.len - 2, collect, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(nsys_buf_data(c.frames[0]), nsys_buf_data(rb) + 2);
    cr_assert_eq(nsys_buf_refcount(rb), 2);
    nsys_buf_unref(rb);
    assert_frame(&c, 0, 0, 50);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, holds_a_bare_header_without_allocating_and_slices_the_payload_that_follows)
{
    /* A read that ends exactly after a header: nothing is allocated for the
     * payload yet, and when it arrives whole it is still a slice. */
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 100000);
    collector_t c = {0};

    watch_allocations();
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, s.data, NSYS_FRAMING_HEADER_SIZE, collect, &c),
                 0);
    size_t largest = largest_allocation();
    cr_assert_lt(largest, 1024, "%zu bytes allocated before any payload arrived", largest);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), NSYS_FRAMING_HEADER_SIZE);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, s.data, 0, collect, &c), 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), NSYS_FRAMING_HEADER_SIZE);

    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from(s.data + 4, s.len - 4, &rb), 0);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, nsys_buf_data(rb), s.len - 4, collect, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(nsys_buf_data(c.frames[0]), nsys_buf_data(rb));
    cr_assert_eq(nsys_buf_refcount(rb), 2);
    nsys_buf_unref(rb);
    assert_frame(&c, 0, 0, 100000);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, copies_a_payload_split_over_reads_into_one_buffer_of_its_own)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 100);
    nsys_buf_t *r1 = NULL, *r2 = NULL;
    cr_assert_eq(nsys_buf_from(s.data, 40, &r1), 0);
    cr_assert_eq(nsys_buf_from(s.data + 40, s.len - 40, &r2), 0);

    collector_t c = {0};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, r1, nsys_buf_data(r1), 40, collect, &c), 0);
    cr_assert_eq(nsys_buf_refcount(r1), 1, "a partial frame holds no reference to the read");
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 40);
    cr_assert_eq(nsys_frame_decoder_feed(&dec, r2, nsys_buf_data(r2), s.len - 40, collect, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(nsys_buf_refcount(r2), 1);
    cr_assert_eq(nsys_buf_refcount(c.frames[0]), 1);
    cr_assert_not(points_inside(nsys_buf_data(c.frames[0]), nsys_buf_data(r1), 40));
    cr_assert_not(points_inside(nsys_buf_data(c.frames[0]), nsys_buf_data(r2), s.len - 40));
    nsys_buf_unref(r1);
    nsys_buf_unref(r2);
    assert_frame(&c, 0, 0, 100);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, copies_frames_when_the_caller_has_no_buffer)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 8);
    append_frame(&s, 1, 0);
    collector_t c = {0};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, s.data, s.len, collect, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_not(points_inside(nsys_buf_data(c.frames[0]), s.data, s.len));
    memset(s.data, 0xee, s.len); /* the caller reuses its bytes */
    assert_frame(&c, 0, 0, 8);
    assert_frame(&c, 1, 1, 0);
    cr_assert_eq(c.mismatches, 0);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

/* ---- control ------------------------------------------------------------ */

Test(framing, stops_when_the_callback_says_so_and_resumes_from_what_was_consumed)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    bytes_t s = {0};
    for (size_t i = 0; i < 5; i++)
        append_frame(&s, i, 10 + i);
    nsys_buf_t *rb = NULL;
    cr_assert_eq(nsys_buf_from(s.data, s.len, &rb), 0);
    const uint8_t *p = nsys_buf_data(rb);

    collector_t c = {.stop_at = 2, .stop_code = 42};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, p, s.len, collect, &c), 42);
    cr_assert_eq(c.n, 2, "nothing after the refusing frame");
    size_t used = nsys_frame_decoder_consumed(&dec);
    cr_assert_eq(used, (4 + 10) + (4 + 11));
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);
    cr_assert_null(nsys_frame_decoder_error(&dec), "a stop is not an error");

    c.stop_at = 0;
    cr_assert_eq(nsys_frame_decoder_feed(&dec, rb, p + used, s.len - used, collect, &c), 0);
    cr_assert_eq(c.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_frame(&c, i, i, 10 + i);
    collector_free(&c);
    nsys_buf_unref(rb);

    /* A stop on a frame that was reassembled across reads. */
    nsys_frame_decoder_reset(&dec);
    c = (collector_t){.stop_at = 1, .stop_code = -7};
    cr_assert_eq(feed_range(&dec, &s, 0, 6, &c), 0);
    cr_assert_eq(feed_range(&dec, &s, 6, s.len, &c), -7);
    cr_assert_eq(nsys_frame_decoder_consumed(&dec), 4 + 10 - 6);
    cr_assert_eq(c.n, 1);
    assert_frame(&c, 0, 0, 10);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    free(s.data);
    T_ASSERT_NO_LEAKS();
}

Test(framing, reset_drops_a_partial_frame_and_keeps_the_maximum)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 64), 0);
    bytes_t s = {0};
    append_frame(&s, 0, 40);
    collector_t c = {0};

    cr_assert_eq(feed_range(&dec, &s, 0, 2, &c), 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 2);
    nsys_frame_decoder_reset(&dec);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);

    cr_assert_eq(feed_range(&dec, &s, 0, 20, &c), 0);
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 20);
    nsys_frame_decoder_reset(&dec); /* frees the 40-byte partial: LSan checks */
    cr_assert_eq(nsys_frame_decoder_buffered(&dec), 0);

    cr_assert_eq(feed_range(&dec, &s, 0, s.len, &c), 0);
    cr_assert_eq(c.n, 1);
    assert_frame(&c, 0, 0, 40);

    bytes_t big = {0};
    append_raw_header(&big, 65);
    cr_assert_eq(feed_range(&dec, &big, 0, big.len, &c), NSYS_EMSGSIZE);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec), "payload exceeds maximum (65 > 64)");

    /* free is idempotent and leaves a decoder that reset/free accept. */
    nsys_frame_decoder_free(&dec);
    nsys_frame_decoder_free(&dec);
    nsys_frame_decoder_reset(NULL);
    nsys_frame_decoder_free(NULL);

    collector_free(&c);
    free(s.data);
    free(big.data);
    T_ASSERT_NO_LEAKS();
}

/* ---- encoder ------------------------------------------------------------ */

Test(framing, encoder_writes_the_length_big_endian)
{
    uint8_t hdr[4];
    cr_assert_eq(nsys_frame_header(0x01020304u, NSYS_FRAMING_WIRE_MAX_PAYLOAD, hdr), 0);
    cr_assert_eq(memcmp(hdr, "\x01\x02\x03\x04", 4), 0);
    cr_assert_eq(nsys_frame_header(0, 0, hdr), 0);
    cr_assert_eq(memcmp(hdr, "\0\0\0\0", 4), 0);
    cr_assert_eq(nsys_frame_header(1, 0, NULL), NSYS_EINVAL);
}

Test(framing, encoder_output_round_trips_through_the_decoder)
{
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 0), 0);
    collector_t c = {0};
    for (size_t i = 0; i < VARIED_COUNT; i++) {
        size_t len = varied_lengths[i];
        uint8_t *payload = malloc(len + 1);
        cr_assert_not_null(payload);
        for (size_t j = 0; j < len; j++)
            payload[j] = payload_byte(i, j);

        uint8_t hdr[NSYS_FRAMING_HEADER_SIZE];
        uv_buf_t bufs[2];
        cr_assert_eq(nsys_frame_bufs(payload, len, 0, hdr, bufs), 0);
        cr_assert_eq((void *)bufs[0].base, (void *)hdr);
        cr_assert_eq(bufs[0].len, NSYS_FRAMING_HEADER_SIZE);
        cr_assert_eq((void *)bufs[1].base, (void *)payload, "the payload is not copied");
        cr_assert_eq(bufs[1].len, len);

        /* What writev would put on the wire, read back in two reads. */
        cr_assert_eq(
            nsys_frame_decoder_feed(&dec, NULL, (uint8_t *)bufs[0].base, bufs[0].len, collect, &c),
            0);
        cr_assert_eq(
            nsys_frame_decoder_feed(&dec, NULL, (uint8_t *)bufs[1].base, bufs[1].len, collect, &c),
            0);
        free(payload);
    }
    cr_assert_eq(c.n, VARIED_COUNT);
    for (size_t i = 0; i < VARIED_COUNT; i++)
        assert_frame(&c, i, i, varied_lengths[i]);

    uint8_t hdr[4];
    uv_buf_t bufs[2];
    cr_assert_eq(nsys_frame_bufs(NULL, 0, 0, hdr, bufs), 0);
    cr_assert_eq(bufs[1].len, 0);
    cr_assert_eq(nsys_frame_bufs(NULL, 1, 0, hdr, bufs), NSYS_EINVAL);
    cr_assert_eq(nsys_frame_bufs("x", 1, 0, NULL, bufs), NSYS_EINVAL);

    collector_free(&c);
    nsys_frame_decoder_free(&dec);
    T_ASSERT_NO_LEAKS();
}

Test(framing, encoder_refuses_an_oversized_payload_with_the_decoders_text)
{
    uint8_t hdr[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    cr_assert_eq(nsys_frame_header(17, 16, hdr), NSYS_EMSGSIZE);
    cr_assert_eq(memcmp(hdr, "\xaa\xaa\xaa\xaa", 4), 0, "nothing written on refusal");
    cr_assert_eq(nsys_frame_header(16, 16, hdr), 0);

    char sent[NSYS_FRAMING_ERROR_SIZE];
    cr_assert_eq(nsys_frame_format_oversize(sent, sizeof sent, 17, 16), 0);
    cr_assert_str_eq(sent, "payload exceeds maximum (17 > 16)");
    cr_assert_eq(nsys_frame_format_oversize(sent, sizeof sent, 1048577, 0), 0);
    cr_assert_str_eq(sent, "payload exceeds maximum (1048577 > 1048576)");

    /* The receiving side says the same about the same frame. */
    nsys_frame_decoder_t dec;
    cr_assert_eq(nsys_frame_decoder_init(&dec, 16), 0);
    uint8_t claim[4] = {0, 0, 0, 17};
    collector_t c = {0};
    cr_assert_eq(nsys_frame_decoder_feed(&dec, NULL, claim, 4, collect, &c), NSYS_EMSGSIZE);
    cr_assert_eq(nsys_frame_format_oversize(sent, sizeof sent, 17, 16), 0);
    cr_assert_str_eq(nsys_frame_decoder_error(&dec), sent);
    nsys_frame_decoder_free(&dec);

    uv_buf_t bufs[2];
    cr_assert_eq(nsys_frame_bufs("0123456789abcdefg", 17, 16, hdr, bufs), NSYS_EMSGSIZE);

    /* Too small a buffer: truncated, terminated, and said so. */
    char tiny[10];
    cr_assert_eq(nsys_frame_format_oversize(tiny, sizeof tiny, 17, 16), NSYS_ENOSPC);
    cr_assert_str_eq(tiny, "payload e");
    cr_assert_eq(nsys_frame_format_oversize(NULL, 10, 17, 16), NSYS_EINVAL);
    cr_assert_eq(nsys_frame_format_oversize(tiny, 0, 17, 16), NSYS_EINVAL);

    /* The largest numbers fit in NSYS_FRAMING_ERROR_SIZE. */
    cr_assert_eq(nsys_frame_format_oversize(sent, sizeof sent, SIZE_MAX, SIZE_MAX), 0);
    T_ASSERT_NO_LEAKS();
}
