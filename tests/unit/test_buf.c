/* tests/unit/test_buf.c — reference-counted buffers and zero-copy slices
 * (include/netsys/buf.h). Premature frees show up under ASan/valgrind as a
 * use-after-free when a test reads a slice after dropping its parent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <netsys/netsys.h>

#include "common/wait.h"

/* Huge allocations must fail with NSYS_ENOMEM, not abort the sanitizer. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}

Test(buf, new_gives_an_empty_buffer_with_the_requested_room)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(100, &b), 0);
    cr_assert_not_null(b);
    cr_assert_eq(nsys_buf_len(b), 0);
    cr_assert_geq(nsys_buf_cap(b), 100);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    cr_assert_not_null(nsys_buf_data(b));
    memset(nsys_buf_data(b), 0x5a, 100); /* the room is writable (ASan checks) */
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, new_accepts_zero_capacity)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(0, &b), 0);
    cr_assert_not_null(b);
    cr_assert_eq(nsys_buf_len(b), 0);
    cr_assert_eq(nsys_buf_cap(b), 0);
    cr_assert_eq(nsys_buf_set_len(b, 0), 0);
    cr_assert_neq(nsys_buf_set_len(b, 1), 0);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, new_rejects_a_null_out_pointer)
{
    cr_assert_eq(nsys_buf_new(16, NULL), NSYS_EINVAL);
    T_ASSERT_NO_LEAKS();
}

Test(buf, new_reports_impossible_sizes_as_enomem_without_aborting)
{
    nsys_buf_t *b = (nsys_buf_t *)(uintptr_t)1;
    cr_assert_eq(nsys_buf_new(SIZE_MAX, &b), NSYS_ENOMEM);
    cr_assert_eq(nsys_buf_new(SIZE_MAX - 8, &b), NSYS_ENOMEM);
    /* valgrind counts a real malloc of 8 EiB as an error: not under it */
    if (!t_on_valgrind())
        cr_assert_eq(nsys_buf_new(SIZE_MAX / 2, &b), NSYS_ENOMEM);
    T_ASSERT_NO_LEAKS();
}

Test(buf, from_copies_the_bytes)
{
    char src[] = "hello, world";
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from(src, sizeof(src), &b), 0);
    cr_assert_eq(nsys_buf_len(b), sizeof(src));
    cr_assert_geq(nsys_buf_cap(b), sizeof(src));
    cr_assert_neq((void *)nsys_buf_data(b), (void *)src);
    src[0] = 'J';
    cr_assert_eq(memcmp(nsys_buf_data(b), "hello, world", sizeof(src)), 0);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, from_accepts_zero_bytes)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("x", 0, &b), 0);
    cr_assert_not_null(b);
    cr_assert_eq(nsys_buf_len(b), 0);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, from_rejects_null_data_with_a_size_and_a_null_out)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from(NULL, 5, &b), NSYS_EINVAL);
    cr_assert_null(b);
    cr_assert_eq(nsys_buf_from("abc", 3, NULL), NSYS_EINVAL);
    T_ASSERT_NO_LEAKS();
}

Test(buf, from_copies_a_large_payload)
{
    size_t n = 1u << 20;
    uint8_t *src = malloc(n);
    cr_assert_not_null(src);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 31u + 7u);
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from(src, n, &b), 0);
    cr_assert_eq(nsys_buf_len(b), n);
    cr_assert_eq(memcmp(nsys_buf_data(b), src, n), 0);
    free(src);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_views_the_parent_bytes_without_copying)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("hello world", 11, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 6, 5, &s), 0);
    cr_assert_not_null(s);
    cr_assert_neq(s, b, "a slice is a new buffer object");
    cr_assert_eq((void *)nsys_buf_data(s), (void *)(nsys_buf_data(b) + 6));
    cr_assert_eq(nsys_buf_len(s), 5);
    cr_assert_eq(memcmp(nsys_buf_data(s), "world", 5), 0);
    cr_assert_eq(nsys_buf_refcount(s), 1);
    nsys_buf_unref(s);
    cr_assert_eq(nsys_buf_refcount(b), 1, "dropping the slice gave back its hold");
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_keeps_the_storage_alive_after_the_parent_is_dropped)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_new(4096, &b), 0);
    memset(nsys_buf_data(b), 'q', 4096);
    memcpy(nsys_buf_data(b) + 1000, "payload", 7);
    cr_assert_eq(nsys_buf_set_len(b, 4096), 0);
    cr_assert_eq(nsys_buf_slice(b, 1000, 7, &s), 0);
    uint8_t *expect = nsys_buf_data(b) + 1000;
    nsys_buf_unref(b); /* the slice's hold keeps the bytes */
    cr_assert_eq((void *)nsys_buf_data(s), (void *)expect);
    cr_assert_eq(memcmp(nsys_buf_data(s), "payload", 7), 0);
    nsys_buf_unref(s);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_of_a_slice_points_into_the_root_storage)
{
    nsys_buf_t *b = NULL, *s1 = NULL, *s2 = NULL;
    cr_assert_eq(nsys_buf_from("0123456789abcdef", 16, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 4, 10, &s1), 0); /* "456789abcd" */
    cr_assert_eq(nsys_buf_slice(s1, 3, 4, &s2), 0); /* "789a" */
    cr_assert_eq((void *)nsys_buf_data(s2), (void *)(nsys_buf_data(b) + 7));
    cr_assert_eq(nsys_buf_len(s2), 4);
    nsys_buf_unref(b);
    nsys_buf_unref(s1);
    cr_assert_eq(memcmp(nsys_buf_data(s2), "789a", 4), 0);
    nsys_buf_unref(s2);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_covers_the_whole_and_the_empty_range)
{
    nsys_buf_t *b = NULL, *all = NULL, *end = NULL, *start = NULL;
    cr_assert_eq(nsys_buf_from("abcdef", 6, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 0, 6, &all), 0);
    cr_assert_eq(nsys_buf_len(all), 6);
    cr_assert_eq(nsys_buf_slice(b, 6, 0, &end), 0);
    cr_assert_eq(nsys_buf_len(end), 0);
    cr_assert_eq(nsys_buf_slice(b, 0, 0, &start), 0);
    cr_assert_eq(nsys_buf_len(start), 0);
    nsys_buf_unref(all);
    nsys_buf_unref(end);
    nsys_buf_unref(start);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_rejects_ranges_outside_the_used_bytes)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_new(64, &b), 0);
    cr_assert_eq(nsys_buf_set_len(b, 10), 0);
    cr_assert_eq(nsys_buf_slice(b, 11, 0, &s), NSYS_ERANGE);
    cr_assert_eq(nsys_buf_slice(b, 5, 6, &s), NSYS_ERANGE);
    cr_assert_eq(nsys_buf_slice(b, 0, 11, &s), NSYS_ERANGE);
    cr_assert_eq(nsys_buf_slice(b, 0, 64, &s), NSYS_ERANGE, "cap is not len: unused room is out of range");
    cr_assert_eq(nsys_buf_slice(b, SIZE_MAX, 2, &s), NSYS_ERANGE, "offset+len overflows");
    cr_assert_eq(nsys_buf_slice(b, 2, SIZE_MAX, &s), NSYS_ERANGE, "offset+len overflows");
    cr_assert_eq(nsys_buf_slice(b, SIZE_MAX, SIZE_MAX, &s), NSYS_ERANGE);
    cr_assert_null(s);
    cr_assert_eq(nsys_buf_refcount(b), 1, "a failed slice takes no reference");
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_rejects_null_arguments)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_slice(NULL, 0, 0, &s), NSYS_EINVAL);
    cr_assert_eq(nsys_buf_from("abc", 3, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 0, 1, NULL), NSYS_EINVAL);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, ref_and_unref_count_references)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(8, &b), 0);
    cr_assert_eq(nsys_buf_ref(b), b);
    cr_assert_eq(nsys_buf_ref(b), b);
    cr_assert_eq(nsys_buf_refcount(b), 3);
    nsys_buf_unref(b);
    cr_assert_eq(nsys_buf_refcount(b), 2);
    nsys_buf_unref(b);
    cr_assert_eq(nsys_buf_refcount(b), 1);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, ref_and_unref_ignore_null)
{
    cr_assert_null(nsys_buf_ref(NULL));
    nsys_buf_unref(NULL);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_refcount_is_its_own)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("abcdef", 6, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 1, 2, &s), 0);
    nsys_buf_ref(s);
    cr_assert_eq(nsys_buf_refcount(s), 2);
    nsys_buf_unref(b);
    nsys_buf_unref(s);
    cr_assert_eq(nsys_buf_refcount(s), 1);
    cr_assert_eq(memcmp(nsys_buf_data(s), "bc", 2), 0);
    nsys_buf_unref(s);
    T_ASSERT_NO_LEAKS();
}

Test(buf, set_len_accepts_up_to_cap_only)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(32, &b), 0);
    size_t cap = nsys_buf_cap(b);
    cr_assert_eq(nsys_buf_set_len(b, 32), 0);
    cr_assert_eq(nsys_buf_len(b), 32);
    cr_assert_eq(nsys_buf_set_len(b, cap), 0);
    cr_assert_lt(nsys_buf_set_len(b, cap + 1), 0);
    cr_assert_eq(nsys_buf_len(b), cap, "a refused set_len leaves len alone");
    cr_assert_lt(nsys_buf_set_len(b, SIZE_MAX), 0);
    cr_assert_eq(nsys_buf_set_len(b, 0), 0);
    cr_assert_eq(nsys_buf_len(b), 0);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, set_len_is_refused_on_a_slice_and_on_null)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("abcdef", 6, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 0, 4, &s), 0);
    cr_assert_lt(nsys_buf_set_len(s, 2), 0);
    cr_assert_lt(nsys_buf_set_len(s, 4), 0);
    cr_assert_eq(nsys_buf_len(s), 4);
    cr_assert_eq(nsys_buf_set_len(NULL, 0), NSYS_EINVAL);
    nsys_buf_unref(s);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

Test(buf, slice_is_unaffected_by_later_set_len_on_the_parent)
{
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("abcdef", 6, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 2, 3, &s), 0);
    cr_assert_eq(nsys_buf_set_len(b, 1), 0);
    cr_assert_eq(nsys_buf_len(s), 3);
    cr_assert_eq(memcmp(nsys_buf_data(s), "cde", 3), 0);
    nsys_buf_unref(s);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

#define REF_THREADS 4
#define REF_ROUNDS 200000

typedef struct ref_arg {
    nsys_buf_t *b;
    nsys_buf_t *parent;
} ref_arg_t;

static void *ref_worker(void *p)
{
    ref_arg_t *a = p;
    for (int i = 0; i < REF_ROUNDS; i++) {
        nsys_buf_ref(a->b);
        nsys_buf_unref(a->b);
    }
    return NULL;
}

Test(buf, refcounts_are_exact_under_concurrent_ref_and_unref, .timeout = 120)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_new(16, &b), 0);
    nsys_buf_ref(b); /* keep one extra so racing unrefs never reach zero */
    pthread_t th[REF_THREADS];
    ref_arg_t a = {b, NULL};
    for (int i = 0; i < REF_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, ref_worker, &a), 0);
    for (int i = 0; i < REF_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(nsys_buf_refcount(b), 2);
    nsys_buf_unref(b);
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}

static void *slice_drop_worker(void *p)
{
    ref_arg_t *a = p;
    /* Each thread owns one slice; the last drop anywhere frees the storage. */
    int sum = 0;
    for (size_t i = 0; i < nsys_buf_len(a->b); i++)
        sum += nsys_buf_data(a->b)[i];
    nsys_buf_unref(a->b);
    return (void *)(intptr_t)sum;
}

Test(buf, storage_is_freed_once_when_slices_are_dropped_on_many_threads, .timeout = 120)
{
    for (int round = 0; round < 200; round++) {
        nsys_buf_t *b = NULL;
        cr_assert_eq(nsys_buf_from("\x01\x01\x01\x01\x01\x01\x01\x01", 8, &b), 0);
        ref_arg_t a[REF_THREADS];
        pthread_t th[REF_THREADS];
        for (int i = 0; i < REF_THREADS; i++) {
            a[i].parent = b;
            cr_assert_eq(nsys_buf_slice(b, (size_t)i, 4, &a[i].b), 0);
        }
        nsys_buf_unref(b);
        for (int i = 0; i < REF_THREADS; i++)
            cr_assert_eq(pthread_create(&th[i], NULL, slice_drop_worker, &a[i]), 0);
        for (int i = 0; i < REF_THREADS; i++) {
            void *sum = NULL;
            pthread_join(th[i], &sum);
            cr_assert_eq((intptr_t)sum, 4);
        }
    }
    T_ASSERT_NO_LEAKS();
}

/* ---- tracking (nsys_buf_track) ------------------------------------------------ */

typedef struct track_count {
    atomic_int calls;
    atomic_size_t bytes;
} track_count_t;

static void track_hook(void *arg, size_t cap)
{
    track_count_t *t = arg;
    atomic_fetch_add(&t->calls, 1);
    atomic_fetch_add(&t->bytes, cap);
}

Test(buf, track_hook_runs_once_when_the_last_slice_goes, .timeout = 120)
{
    track_count_t t = {0};
    nsys_buf_t *b = NULL, *s1 = NULL, *s2 = NULL;
    cr_assert_eq(nsys_buf_new(100, &b), 0);
    cr_assert_eq(nsys_buf_set_len(b, 50), 0);
    cr_assert_eq(nsys_buf_track(b, track_hook, &t), 0);
    cr_assert_eq(nsys_buf_slice(b, 0, 10, &s1), 0);
    cr_assert_eq(nsys_buf_slice(s1, 2, 5, &s2), 0);
    cr_assert(nsys_buf_is_root(b));
    cr_assert_not(nsys_buf_is_root(s2));
    nsys_buf_unref(b);
    nsys_buf_unref(s1);
    cr_assert_eq(atomic_load(&t.calls), 0, "storage still held by a slice");
    nsys_buf_unref(s2);
    cr_assert_eq(atomic_load(&t.calls), 1);
    cr_assert_eq(atomic_load(&t.bytes), 100, "the hook gets the capacity");
    T_ASSERT_NO_LEAKS();
}

Test(buf, track_refuses_slices_and_a_second_hook, .timeout = 120)
{
    track_count_t t = {0};
    nsys_buf_t *b = NULL, *s = NULL;
    cr_assert_eq(nsys_buf_from("abcd", 4, &b), 0);
    cr_assert_eq(nsys_buf_slice(b, 1, 2, &s), 0);
    cr_assert_eq(nsys_buf_track(s, track_hook, &t), NSYS_EINVAL);
    cr_assert_eq(nsys_buf_track(b, track_hook, &t), 0);
    cr_assert_eq(nsys_buf_track(b, track_hook, &t), NSYS_EBUSY);
    cr_assert_eq(nsys_buf_track(b, NULL, NULL), 0, "removing is always allowed");
    cr_assert_eq(nsys_buf_track(b, track_hook, &t), 0);
    cr_assert_eq(nsys_buf_track(b, NULL, NULL), 0);
    nsys_buf_unref(s);
    nsys_buf_unref(b);
    cr_assert_eq(atomic_load(&t.calls), 0, "a removed hook is not called");
    T_ASSERT_NO_LEAKS();
}

Test(buf, within_checks_ranges_of_used_bytes, .timeout = 120)
{
    nsys_buf_t *b = NULL;
    cr_assert_eq(nsys_buf_from("abcdef", 6, &b), 0);
    const uint8_t *d = nsys_buf_data(b);
    cr_assert(nsys_buf_within(b, d, 6));
    cr_assert(nsys_buf_within(b, d + 6, 0));
    cr_assert(nsys_buf_within(b, d + 2, 3));
    cr_assert_not(nsys_buf_within(b, d + 2, 5));
    cr_assert_not(nsys_buf_within(b, "abcdef", 2));
    cr_assert_not(nsys_buf_within(NULL, d, 1));
    nsys_buf_unref(b);
    T_ASSERT_NO_LEAKS();
}
