/*
 * test_faults.c -- allocation failure and I/O failure injected into every
 * call the library makes, for add, search, save and load.
 *
 * How: this program is linked with GNU ld's --wrap for malloc, calloc,
 * realloc, aligned_alloc, strdup, strndup, fopen, fdopen, fwrite, write,
 * fsync, fclose, rename, mkstemp and pthread_create (tests/tests.mk), so every such
 * call in the static library goes through the __wrap_ functions below. A
 * countdown makes exactly the i-th call fail (errno ENOMEM, or EIO/ENOSPC for
 * I/O), or, "sticky", that call and every one after it. Nothing in src/
 * knows about it. The alternative, an allocation hook inside the library,
 * was rejected: it would be a run-time knob in the shipped code for the
 * sake of a test.
 *
 * Each case is a sweep: run the call once to count the calls it makes (N),
 * then N times from the same starting state, failing call 0, 1, ... N-1
 * (then again sticky). After every run the promise is checked:
 *
 *   - the call fails with HNSWC_ERR_NOMEM (or HNSWC_ERR_IO for injected I/O
 *     errors; a save's write calls -- each cut to at most 4 KiB, so that
 *     saving also retries short writes -- are sampled: the first and last
 *     32 and every 61st) and a message, and the index is unchanged: its serialized
 *     bytes (parameters, level generator state, labels, vectors, links,
 *     deleted marks) are identical to before; a retry without faults then
 *     gives exactly the bytes of a run that never failed;
 *   - or the failure hit a best-effort allocation (repair of an updated
 *     node's neighbourhood, the directory fsync after a rename, a worker
 *     thread of a batch) and the call succeeded with a correct result;
 *   - a failed load returns NULL and leaks nothing (LeakSanitizer, under
 *     make test-c-asan); a failed save leaves the previous file byte for
 *     byte and no temporary file.
 *
 * Every sweep asserts it saw at least one clean failure, so it cannot pass
 * by not injecting anything.
 */
#define _GNU_SOURCE /* strndup, pthread in the wrappers */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { DIM = 8, BASE_N = 1024, K = 10 };
/* the largest element count of an index (include/hnswc.h: 2^32 - 2) */
#define HNSWC_MAX_ELEMENTS_PUBLIC ((uint64_t)UINT32_MAX - 1)

/* ========================================================================
 * The injection layer
 * ======================================================================== */

typedef enum fi_kind { FI_ALLOC = 1, FI_IO = 2, FI_THREAD = 4 } fi_kind;

static _Atomic long fi_countdown = -1; /* calls left before one fails; < 0: off */
static _Atomic long fi_calls;          /* calls of the armed kinds since fi_start */
static _Atomic int fi_kinds;           /* which calls count */
static _Atomic int fi_sticky;          /* after the first failure, fail all */
static _Atomic int fi_fired;           /* a failure was injected */
static _Atomic size_t fi_largest;      /* largest allocation asked for while counting */

/* Counts calls of `kinds` from now on, failing none. */
static void fi_count(int kinds) {
    atomic_store(&fi_countdown, -1);
    atomic_store(&fi_calls, 0);
    atomic_store(&fi_fired, 0);
    atomic_store(&fi_largest, 0);
    atomic_store(&fi_kinds, kinds);
}

static void fi_size(size_t n) {
    if (!(atomic_load(&fi_kinds) & FI_ALLOC))
        return;
    size_t cur = atomic_load(&fi_largest);
    while (n > cur && !atomic_compare_exchange_weak(&fi_largest, &cur, n))
        ;
}

/* Fails call number `nth` (0-based) of `kinds`, and every later one if sticky. */
static void fi_arm(int kinds, long nth, bool sticky) {
    fi_count(kinds);
    atomic_store(&fi_sticky, sticky);
    atomic_store(&fi_countdown, nth);
}

static void fi_off(void) { atomic_store(&fi_kinds, 0); }

static bool fi_fail(fi_kind kind) {
    if (!(atomic_load(&fi_kinds) & kind))
        return false;
    atomic_fetch_add(&fi_calls, 1);
    if (atomic_load(&fi_fired) && atomic_load(&fi_sticky))
        return true;
    if (atomic_load(&fi_countdown) < 0)
        return false;
    if (atomic_fetch_sub(&fi_countdown, 1) == 0) {
        atomic_store(&fi_fired, 1);
        return true;
    }
    return false;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
ssize_t __real_write(int fd, const void *p, size_t n);
int __real_fsync(int fd);
int __real_fclose(FILE *f);
int __real_rename(const char *from, const char *to);
int __real_mkstemp(char *tmpl);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

#define FAIL_ALLOC()                                                                    \
    do {                                                                                \
        if (fi_fail(FI_ALLOC)) {                                                        \
            errno = ENOMEM;                                                             \
            return NULL;                                                                \
        }                                                                               \
    } while (0)

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n) { fi_size(n); FAIL_ALLOC(); return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size) {
    fi_size(size && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    FAIL_ALLOC();
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n) { fi_size(n); FAIL_ALLOC(); return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n) {
    fi_size(n);
    FAIL_ALLOC();
    return __real_aligned_alloc(align, n);
}
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s) { FAIL_ALLOC(); return __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n);
char *__wrap_strndup(const char *s, size_t n) { FAIL_ALLOC(); return __real_strndup(s, n); }
/* fopen and fdopen allocate a FILE: they fail as allocations do */
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode) { FAIL_ALLOC(); return __real_fopen(path, mode); }
FILE *__wrap_fdopen(int fd, const char *mode);
FILE *__wrap_fdopen(int fd, const char *mode) { FAIL_ALLOC(); return __real_fdopen(fd, mode); }

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f) {
    if (fi_fail(FI_IO)) {
        errno = ENOSPC;
        return 0;
    }
    return __real_fwrite(p, size, n, f);
}
/* A write takes at most 4 KiB per call (as a pipe or a signal may cut
 * it): the save must retry short writes, and its writes are many sites. */
ssize_t __wrap_write(int fd, const void *p, size_t n);
ssize_t __wrap_write(int fd, const void *p, size_t n) {
    if (fi_fail(FI_IO)) {
        errno = ENOSPC;
        return -1;
    }
    return __real_write(fd, p, n < 4096 ? n : 4096);
}
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
    if (fi_fail(FI_IO)) {
        errno = EIO;
        return -1;
    }
    return __real_fsync(fd);
}
/* A failing fclose still closes: only its report of the final flush fails. */
int __wrap_fclose(FILE *f);
int __wrap_fclose(FILE *f) {
    bool fail = fi_fail(FI_IO);
    int r = __real_fclose(f);
    if (fail) {
        errno = ENOSPC;
        return EOF;
    }
    return r;
}
int __wrap_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to) {
    if (fi_fail(FI_IO)) {
        errno = EIO;
        return -1;
    }
    return __real_rename(from, to);
}
int __wrap_mkstemp(char *tmpl);
int __wrap_mkstemp(char *tmpl) {
    if (fi_fail(FI_IO)) {
        errno = ENOSPC;
        return -1;
    }
    return __real_mkstemp(tmpl);
}
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    if (fi_fail(FI_THREAD))
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

/* ========================================================================
 * Helpers
 * ======================================================================== */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

/* The index's serialized form: every observable piece of its state. */
static bytes snapshot(const hnswc_index *ix) {
    bytes b;
    void *buf;
    tu_ok(hnswc_serialize(ix, &buf, &b.n));
    b.p = tu_xmalloc(b.n);
    memcpy(b.p, buf, b.n);
    hnswc_buffer_free(buf);
    return b;
}

static bool same(bytes a, bytes b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* Layer-0 nodes no search can reach (0 for a flat index: it has no graph). */
static uint64_t unreachable_of(const hnswc_index *ix) {
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    if (in.kind == HNSWC_KIND_FLAT)
        return 0;
    hnswc_graph_stats g;
    tu_ok(hnswc_get_graph_stats(ix, &g));
    return g.unreachable;
}

static hnswc_index *from_bytes(bytes b) {
    hnswc_index *ix = NULL;
    tu_ok(hnswc_deserialize(b.p, b.n, &ix));
    return ix;
}

/* A failed call: the expected status and a message. */
static void expect_clean_failure(hnswc_status st, hnswc_status want, const char *what, long nth) {
    if (st != want)
        fail_msg("%s, failure injected at call %ld: returned %s, expected %s (%s)", what, nth,
                 hnswc_status_string(st), hnswc_status_string(want), hnswc_errmsg(NULL));
    assert_true(hnswc_errmsg(NULL)[0] != '\0');
}

typedef struct tally {
    long sites, failed, absorbed;
} tally;

static void report(const char *what, const tally *t) {
    print_message("%-44s %4ld calls: %4ld failed cleanly, %4ld absorbed\n", what, t->sites,
                  t->failed, t->absorbed);
    assert_true(t->sites > 0);
    assert_true(t->failed > 0); /* the sweep did inject something */
}

/* ========================================================================
 * The starting index: BASE_N elements, so the next add needs a new chunk
 * ======================================================================== */

static bytes base;          /* BASE_N elements of DIM, every 9th deleted */
static float *base_data;    /* their vectors, row i under tu_label_of(i) */

static int setup_base(void **s) {
    (void)s;
    tu_rng r = tu_rng_make(7);
    base_data = tu_random_vectors(&r, BASE_N, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 32, 5, 0);
    tu_add_rows(ix, base_data, BASE_N, DIM, 1);
    for (size_t i = 0; i < BASE_N; i += 9)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.count, in.capacity); /* full: an add must grow */
    base = snapshot(ix);
    hnswc_free(ix);
    return 0;
}

static int teardown_base(void **s) {
    (void)s;
    free(base.p);
    free(base_data);
    return 0;
}

/* ========================================================================
 * Adds
 * ======================================================================== */

typedef struct add_case {
    const char *what;
    bytes start;      /* the index before the call */
    uint64_t label;
    float vec[DIM];
    unsigned flags;
    bool must_absorb; /* some failure must hit a best-effort allocation */
    uint64_t unreachable_clean; /* set by add_sweep */
    /* The add that trains an SQ8 quantiser trains it before its own
     * allocations: if one of those fails, the add returns NOMEM with the
     * quantiser trained (docs/RELIABILITY.md, section 5, "Limit (SQ8)").
     * Then only the elements -- counts, labels, marks, vectors -- are
     * checked unchanged; the retry must still give exactly a clean run's
     * bytes. */
    bool trains;
} add_case;

/* The elements of ix (counts, labels, deleted marks, vectors) are those of
 * the index serialized in `start`. */
static bool same_elements(const hnswc_index *ix, bytes start) {
    hnswc_index *was = NULL;
    tu_ok(hnswc_deserialize(start.p, start.n, &was));
    hnswc_info a, b;
    tu_ok(hnswc_get_info(ix, &a));
    tu_ok(hnswc_get_info(was, &b));
    bool ok = a.count == b.count && a.deleted_count == b.deleted_count;
    size_t n = (size_t)b.count, na = 0, nb = 0;
    uint64_t *la = tu_xmalloc((n + 1) * sizeof *la), *lb = tu_xmalloc((n + 1) * sizeof *lb);
    ok = ok && hnswc_get_labels(ix, la, n, &na) == HNSWC_OK &&
         hnswc_get_labels(was, lb, n, &nb) == HNSWC_OK && na == nb &&
         memcmp(la, lb, n * sizeof *la) == 0;
    float va[DIM], vb[DIM];
    for (size_t i = 0; ok && i < n; i++) {
        int da = 0, db = 0;
        ok = hnswc_get_vector(ix, lb[i], va) == HNSWC_OK &&
             hnswc_get_vector(was, lb[i], vb) == HNSWC_OK && memcmp(va, vb, sizeof va) == 0 &&
             hnswc_is_deleted(ix, lb[i], &da) == HNSWC_OK &&
             hnswc_is_deleted(was, lb[i], &db) == HNSWC_OK && da == db;
    }
    free(la);
    free(lb);
    hnswc_free(was);
    return ok;
}

/* One add on a fresh copy of c->start, failing call `nth` (or counting when
 * nth < 0). Checks the outcome; returns the number of calls counted. */
static long add_run(const add_case *c, const bytes *want, long nth, bool sticky, tally *t) {
    hnswc_index *ix = from_bytes(c->start);
    if (nth < 0)
        fi_count(FI_ALLOC);
    else
        fi_arm(FI_ALLOC, nth, sticky);
    hnswc_status st = hnswc_add(ix, c->label, c->vec, c->flags);
    long calls = atomic_load(&fi_calls);
    bool fired = atomic_load(&fi_fired);
    fi_off();

    if (st == HNSWC_OK) {
        /* where nothing failed, exactly the index of a clean run; where a
         * best-effort allocation failed, the element is there and found */
        t->absorbed += fired;
        if (!fired) {
            bytes now = snapshot(ix);
            assert_true(same(now, *want));
            free(now.p);
        }
        uint64_t l;
        float d;
        size_t found;
        tu_ok(hnswc_search_exact(ix, c->vec, 1, NULL, NULL, &l, &d, &found));
        assert_int_equal(found, 1);
        assert_true(d == 0.0f);
        int del = 1;
        tu_ok(hnswc_is_deleted(ix, c->label, &del));
        assert_int_equal(del, 0);
        /* linked, if with fewer links: no more unreachable nodes than in a
         * clean run */
        uint64_t unreachable = unreachable_of(ix);
        if (unreachable > c->unreachable_clean)
            fail_msg("%s: after a failure absorbed at call %ld, %llu nodes are unreachable "
                     "(%llu in a clean run)", c->what, nth, (unsigned long long)unreachable,
                     (unsigned long long)c->unreachable_clean);
    } else {
        expect_clean_failure(st, HNSWC_ERR_NOMEM, c->what, nth);
        t->failed++;
        bytes now = snapshot(ix);
        if (c->trains ? !same_elements(ix, c->start) : !same(now, c->start))
            fail_msg("%s: failed at call %ld with NOMEM but changed the index", c->what, nth);
        free(now.p);
        /* usable: the retry gives exactly a clean run's index */
        tu_ok(hnswc_add(ix, c->label, c->vec, c->flags));
        now = snapshot(ix);
        if (!same(now, *want))
            fail_msg("%s: the retry after a failure at call %ld differs from a clean run",
                     c->what, nth);
        free(now.p);
    }
    hnswc_free(ix);
    return calls;
}

static void add_sweep(add_case *c) {
    hnswc_index *ix = from_bytes(c->start);
    tu_ok(hnswc_add(ix, c->label, c->vec, c->flags));
    bytes want = snapshot(ix);
    c->unreachable_clean = unreachable_of(ix);
    hnswc_free(ix);

    tally t = {0};
    t.sites = add_run(c, &want, -1, false, &t);
    for (int sticky = 0; sticky <= 1; sticky++)
        for (long i = 0; i < t.sites; i++)
            add_run(c, &want, i, sticky, &t);
    report(c->what, &t);
    if (c->must_absorb)
        assert_true(t.absorbed > 0);
    free(want.p);
}

/* Top layer of the element an add creates (from the level histogram). */
static int level_of_next_add(bytes start, uint64_t label, const float *v) {
    hnswc_index *ix = from_bytes(start);
    hnswc_graph_stats a, b;
    tu_ok(hnswc_get_graph_stats(ix, &a));
    tu_ok(hnswc_add(ix, label, v, 0));
    tu_ok(hnswc_get_graph_stats(ix, &b));
    hnswc_free(ix);
    for (int l = HNSWC_MAX_LEVELS - 1; l >= 0; l--)
        if (b.level_counts[l] != a.level_counts[l])
            return l;
    return -1;
}

static void test_add_new_label(void **s) {
    (void)s;
    add_case c = {"add: new label, storage grows, layer 0", base, 999, {0}, 0, false, 0, false};
    for (int d = 0; d < DIM; d++)
        c.vec[d] = 0.01f * (float)d;
    /* find a start whose next add is a layer-0 node, and one whose next add
     * reaches upper layers (its upper link lists are one more allocation):
     * adding elements first advances the seeded level generator */
    bytes starts[2] = {{0}, {0}};
    bytes cur = {tu_xmalloc(base.n), base.n};
    memcpy(cur.p, base.p, base.n);
    for (int tries = 0; tries < 64 && (!starts[0].p || !starts[1].p); tries++) {
        int lv = level_of_next_add(cur, c.label, c.vec);
        int which = lv > 0;
        if (!starts[which].p) {
            starts[which].p = tu_xmalloc(cur.n);
            starts[which].n = cur.n;
            memcpy(starts[which].p, cur.p, cur.n);
        }
        hnswc_index *ix = from_bytes(cur);
        float v[DIM];
        for (int d = 0; d < DIM; d++)
            v[d] = (float)tries * 0.1f + (float)d;
        tu_ok(hnswc_add(ix, 5000000 + (uint64_t)tries, v, 0));
        free(cur.p);
        cur = snapshot(ix);
        hnswc_free(ix);
    }
    assert_non_null(starts[0].p);
    assert_non_null(starts[1].p);
    c.start = starts[0];
    add_sweep(&c);
    c.start = starts[1];
    c.what = "add: new label on upper layers";
    add_sweep(&c);
    free(starts[0].p);
    free(starts[1].p);
    free(cur.p);
}

static void test_add_update(void **s) {
    (void)s;
    add_case c = {"add: update of an existing label (relink)", base, tu_label_of(100), {0}, 0, false, 0, false};
    for (int d = 0; d < DIM; d++)
        c.vec[d] = base_data[200 * DIM + d] + 0.001f;
    add_sweep(&c);
    c.label = tu_label_of(9); /* deleted: becomes live again */
    c.what = "add: update of a deleted label";
    add_sweep(&c);
}

static void test_add_replace_deleted(void **s) {
    (void)s;
    add_case c = {"add: replace_deleted takes over a slot", base, 777, {0}, HNSWC_ADD_REPLACE_DELETED,
                  false, 0, false};
    for (int d = 0; d < DIM; d++)
        c.vec[d] = -0.5f + 0.1f * (float)d;
    add_sweep(&c);
}

/*
 * An insert whose candidate queue must grow mid-search (M 64: a node has up
 * to 128 neighbours on layer 0; a beam of 62 starts with a queue of 64, and
 * expanding the first node alone queues most of its neighbours). The
 * element is already stored then: the failure is absorbed, the element
 * linked to what the search had found, and the add succeeds.
 */
static void test_add_queue_grows(void **s) {
    (void)s;
    enum { N = 600 };
    tu_rng r = tu_rng_make(21);
    float *v = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 64, 62, 9, 0);
    tu_add_rows(ix, v, N, DIM, 1);
    add_case c = {"add: M 64, the queue grows mid-insert", snapshot(ix), 4242, {0}, 0, true, 0, false};
    hnswc_free(ix);
    for (int d = 0; d < DIM; d++)
        c.vec[d] = 0.05f * (float)d - 0.2f;
    add_sweep(&c);
    free(c.start.p);
    free(v);
}

/* A batch that fails midway keeps what it added: the first n_added of the
 * batch (one thread), each searchable; nothing else changed. */
static void test_add_batch(void **s) {
    (void)s;
    enum { B = 5 };
    float vecs[B * DIM];
    uint64_t labels[B];
    for (int i = 0; i < B; i++) {
        labels[i] = 900 + (uint64_t)i;
        for (int d = 0; d < DIM; d++)
            vecs[i * DIM + d] = 0.3f * (float)i - 0.05f * (float)d;
    }
    tally t = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        hnswc_index *ix = from_bytes(base);
        if (nth < 0)
            fi_count(FI_ALLOC);
        else
            fi_arm(FI_ALLOC, nth, false);
        size_t added = 99;
        hnswc_status st = hnswc_add_batch(ix, vecs, labels, B, 0, 1, &added);
        if (nth < 0)
            t.sites = atomic_load(&fi_calls);
        fi_off();
        if (st == HNSWC_OK) {
            assert_int_equal(added, B);
        } else {
            expect_clean_failure(st, HNSWC_ERR_NOMEM, "add_batch", nth);
            t.failed++;
            assert_true(added < B);
            assert_int_equal(tu_count(ix), BASE_N + added);
        }
        for (size_t i = 0; i < B; i++) {
            int del;
            hnswc_status f = hnswc_is_deleted(ix, labels[i], &del);
            assert_int_equal(f, i < added ? HNSWC_OK : HNSWC_ERR_NOT_FOUND);
        }
        hnswc_free(ix);
    }
    report("add_batch: 5 new labels, one thread", &t);

    /* worker threads that cannot start: the batch runs on fewer */
    hnswc_index *ix = from_bytes(base);
    fi_arm(FI_THREAD, 0, true);
    size_t added = 0;
    tu_ok(hnswc_add_batch(ix, vecs, labels, B, 0, 4, &added));
    assert_true(atomic_load(&fi_fired));
    fi_off();
    assert_int_equal(added, B);
    hnswc_free(ix);
}

/* ========================================================================
 * Searches
 * ======================================================================== */

typedef struct search_case {
    const char *what;
    hnswc_index *ix;
    const float *q;
    size_t k, ef;
    int kind; /* 0 search, 1 exact, 2 batch of 3 on 2 threads */
} search_case;

static hnswc_status run_search(const search_case *c, uint64_t *labels, float *dists, size_t *found) {
    switch (c->kind) {
    case 0: return hnswc_search(c->ix, c->q, c->k, c->ef, NULL, NULL, labels, dists, found);
    case 1: return hnswc_search_exact(c->ix, c->q, c->k, NULL, NULL, labels, dists, found);
    default: return hnswc_search_batch(c->ix, c->q, 3, c->k, c->ef, NULL, NULL, 2, labels, dists, found);
    }
}

/* The index is fresh for each run (its scratch pool empty), so the sweep
 * reaches the first-use allocations too; after a failure the same search
 * must give exactly the results of a clean run. */
static void search_sweep(search_case c, bytes start) {
    size_t rows = c.kind == 2 ? 3 : 1;
    uint64_t *want_l = tu_xmalloc(rows * c.k * sizeof *want_l), *l = tu_xmalloc(rows * c.k * sizeof *l);
    float *want_d = tu_xmalloc(rows * c.k * sizeof *want_d), *d = tu_xmalloc(rows * c.k * sizeof *d);
    size_t want_n[3], n[3];
    tally t = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        c.ix = from_bytes(start);
        if (nth < 0)
            fi_count(FI_ALLOC | FI_THREAD);
        else
            fi_arm(FI_ALLOC | FI_THREAD, nth, false);
        hnswc_status st = run_search(&c, nth < 0 ? want_l : l, nth < 0 ? want_d : d,
                                     nth < 0 ? want_n : n);
        bool fired = atomic_load(&fi_fired);
        if (nth < 0)
            t.sites = atomic_load(&fi_calls);
        fi_off();
        if (nth < 0) {
            tu_ok(st);
        } else if (st == HNSWC_OK) {
            t.absorbed += fired;
            assert_memory_equal(l, want_l, rows * c.k * sizeof *l);
            assert_memory_equal(n, want_n, rows * sizeof *n);
        } else {
            expect_clean_failure(st, HNSWC_ERR_NOMEM, c.what, nth);
            t.failed++;
            tu_ok(run_search(&c, l, d, n));
            assert_memory_equal(l, want_l, rows * c.k * sizeof *l);
            assert_memory_equal(d, want_d, rows * c.k * sizeof *d);
        }
        hnswc_free(c.ix);
    }
    report(c.what, &t);
    free(want_l);
    free(want_d);
    free(l);
    free(d);
}

static void test_search(void **s) {
    (void)s;
    float q[3 * DIM];
    for (int i = 0; i < 3 * DIM; i++)
        q[i] = 0.1f * (float)(i % 7) - 0.3f;
    search_sweep((search_case){"search: k 10", NULL, q, K, 64, 0}, base);
    search_sweep((search_case){"search: k 300 (results on the heap)", NULL, q, 300, 0, 0}, base);
    search_sweep((search_case){"search: ef 2^31", NULL, q, K, (size_t)1 << 31, 0}, base);
    search_sweep((search_case){"search_exact: k 300", NULL, q, 300, 0, 1}, base);
    search_sweep((search_case){"search_batch: 3 queries on 2 threads", NULL, q, K, 32, 2}, base);

    /* cosine with a dimension above the query's stack buffer */
    enum { BIG = 3000, N = 40 };
    tu_rng r = tu_rng_make(11);
    float *v = tu_random_vectors(&r, N + 1, BIG, -1.f, 1.f);
    hnswc_index *ix = tu_create(BIG, HNSWC_METRIC_COSINE, 4, 16, 0, 0);
    tu_add_rows(ix, v, N, BIG, 1);
    bytes b = snapshot(ix);
    hnswc_free(ix);
    search_sweep((search_case){"search: cosine, dim 3000 (query on the heap)", NULL, v + N * BIG, 5, 0, 0}, b);
    free(b.p);
    free(v);
}

/* ========================================================================
 * Loads
 * ======================================================================== */

typedef enum load_kind { LOAD_FILE, LOAD_BUFFER, LOAD_HNSWLIB } load_kind;

static hnswc_status run_load(load_kind kind, const char *path, bytes b, hnswc_index **out) {
    switch (kind) {
    case LOAD_FILE: return hnswc_load(path, out);
    case LOAD_BUFFER: return hnswc_deserialize(b.p, b.n, out);
    default: return hnswc_load_hnswlib(path, HNSWC_METRIC_L2, out);
    }
}

static void load_sweep(const char *what, load_kind kind, const char *path, bytes b) {
    tally t = {0};
    bytes want = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        for (int sticky = 0; sticky <= (nth >= 0); sticky++) {
            hnswc_index *ix = (hnswc_index *)&t; /* must be reset */
            if (nth < 0)
                fi_count(FI_ALLOC);
            else
                fi_arm(FI_ALLOC, nth, sticky);
            hnswc_status st = run_load(kind, path, b, &ix);
            if (nth < 0)
                t.sites = atomic_load(&fi_calls);
            fi_off();
            if (st == HNSWC_OK) {
                bytes got = snapshot(ix);
                if (nth < 0)
                    want = got;
                else {
                    assert_true(same(got, want));
                    free(got.p);
                }
                hnswc_free(ix);
                continue;
            }
            expect_clean_failure(st, HNSWC_ERR_NOMEM, what, nth);
            assert_null(ix);
            t.failed++;
        }
    }
    report(what, &t);
    free(want.p);
}

static void test_load(void **s) {
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "base.hnswc");
    tu_write_file(path, base.p, base.n);
    load_sweep("load: hnswc file of 1024 elements", LOAD_FILE, path, base);
    load_sweep("deserialize: the same bytes", LOAD_BUFFER, NULL, base);

    const char *data = getenv("HNSWC_TEST_DATA");
    if (data == NULL)
        fail_msg("HNSWC_TEST_DATA is not set (make test-c sets it)");
    char *hl = tu_path(data, "hnswlib-l2-d8.bin");
    load_sweep("load_hnswlib: hnswlib fixture", LOAD_HNSWLIB, hl, base);
    free(hl);

    /* serialize: its one buffer */
    hnswc_index *ix = from_bytes(base);
    fi_arm(FI_ALLOC, 0, false);
    void *buf = NULL;
    size_t n = 1;
    hnswc_status st = hnswc_serialize(ix, &buf, &n);
    fi_off();
    expect_clean_failure(st, HNSWC_ERR_NOMEM, "serialize", 0);
    assert_null(buf);
    assert_int_equal(n, 0);
    hnswc_free(ix);

    free(path);
    tu_rmdir(dir);
}

/* ========================================================================
 * The flat kind: adds, removals, searches and loads
 * ======================================================================== */

static bytes flat_base(uint64_t capacity) {
    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = DIM;
    o.capacity = capacity;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    enum { N = 300 };
    uint64_t labels[N];
    for (size_t i = 0; i < N; i++)
        labels[i] = tu_label_of(i);
    size_t added;
    tu_ok(hnswc_add_batch(ix, base_data, labels, N, 0, 1, &added));
    for (size_t i = 0; i < N; i += 7)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    bytes b = snapshot(ix);
    hnswc_free(ix);
    return b;
}

static void test_flat(void **s) {
    (void)s;
    bytes fb = flat_base(0); /* full: the next add grows the rows */
    add_case c = {"flat add: new label, rows grow", fb, 31, {0}, 0, false, 0, false};
    for (int d = 0; d < DIM; d++)
        c.vec[d] = 0.02f * (float)d;
    add_sweep(&c);
    c.label = tu_label_of(5);
    c.what = "flat add: update";
    add_sweep(&c);
    c.label = 32;
    c.flags = HNSWC_ADD_REPLACE_DELETED;
    c.what = "flat add: replace_deleted";
    add_sweep(&c);

    /* removal: a failed one changes nothing; one that succeeds frees the label */
    tally t = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        hnswc_index *ix = from_bytes(fb);
        if (nth < 0)
            fi_count(FI_ALLOC);
        else
            fi_arm(FI_ALLOC, nth, false);
        hnswc_status st = hnswc_remove(ix, tu_label_of(10));
        if (nth < 0)
            t.sites = atomic_load(&fi_calls);
        fi_off();
        if (st == HNSWC_OK) {
            int del;
            tu_expect_err(hnswc_is_deleted(ix, tu_label_of(10), &del), HNSWC_ERR_NOT_FOUND);
            t.absorbed += nth >= 0;
        } else {
            expect_clean_failure(st, HNSWC_ERR_NOMEM, "flat remove", nth);
            t.failed++;
            bytes now = snapshot(ix);
            assert_true(same(now, fb));
            free(now.p);
        }
        hnswc_free(ix);
    }
    print_message("%-44s %4ld calls: %4ld failed cleanly, %4ld absorbed\n", "flat remove",
                  t.sites, t.failed, t.absorbed);

    float q[3 * DIM];
    for (int i = 0; i < 3 * DIM; i++)
        q[i] = 0.07f * (float)(i % 5) - 0.1f;
    search_sweep((search_case){"flat search: k 10", NULL, q, K, 0, 0}, fb);
    search_sweep((search_case){"flat search_batch: 3 queries, 2 threads", NULL, q, K, 0, 2}, fb);

    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "flat.hnswc");
    tu_write_file(path, fb.p, fb.n);
    load_sweep("flat load: 300 rows", LOAD_FILE, path, fb);
    free(path);
    tu_rmdir(dir);
    free(fb.p);
}

/* ========================================================================
 * Removal (hnswc_remove, hnswc_remove_batch, hnswc_compact): a failed call
 * returns HNSWC_ERR_NOMEM and leaves every byte of the index as it was; one
 * that absorbs the failure (a fallback path) or succeeds has removed what it
 * was asked to, and left no node that searches cannot reach.
 * ======================================================================== */

typedef enum remove_op { RM_ONE, RM_BATCH, RM_COMPACT } remove_op;

static hnswc_status run_remove(hnswc_index *ix, remove_op op) {
    static const uint64_t batch[] = {3, 4, 20, 21, 22, 50};
    switch (op) {
    case RM_ONE:
        return hnswc_remove(ix, tu_label_of(10));
    case RM_BATCH: {
        uint64_t labels[sizeof batch / sizeof batch[0]];
        for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++)
            labels[i] = tu_label_of(batch[i]);
        return hnswc_remove_batch(ix, labels, sizeof batch / sizeof batch[0], 2);
    }
    case RM_COMPACT:
    default: {
        size_t n_removed = 0;
        hnswc_status st = hnswc_compact(ix, 2, &n_removed);
        if (st == HNSWC_OK)
            assert_int_equal(n_removed, (BASE_N + 8) / 9); /* every 9th was a tombstone */
        return st;
    }
    }
}

/* The labels the operation removes: none of them is known afterwards. */
static void expect_removed(const hnswc_index *ix, remove_op op) {
    int del;
    if (op == RM_ONE)
        tu_expect_err(hnswc_is_deleted(ix, tu_label_of(10), &del), HNSWC_ERR_NOT_FOUND);
    else if (op == RM_BATCH)
        tu_expect_err(hnswc_is_deleted(ix, tu_label_of(21), &del), HNSWC_ERR_NOT_FOUND);
    else
        tu_expect_err(hnswc_is_deleted(ix, tu_label_of(9), &del), HNSWC_ERR_NOT_FOUND);
}

static void remove_sweep(const char *what, remove_op op) {
    tally t = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        hnswc_index *ix = from_bytes(base);
        if (nth < 0)
            fi_count(FI_ALLOC);
        else
            fi_arm(FI_ALLOC, nth, false);
        hnswc_status st = run_remove(ix, op);
        if (nth < 0)
            t.sites = atomic_load(&fi_calls);
        fi_off();
        if (nth < 0)
            tu_ok(st);
        if (st == HNSWC_OK) {
            expect_removed(ix, op);
            assert_int_equal(unreachable_of(ix), 0);
            t.absorbed += nth >= 0;
        } else {
            expect_clean_failure(st, HNSWC_ERR_NOMEM, what, nth);
            t.failed++;
            bytes now = snapshot(ix);
            assert_true(same(now, base));
            free(now.p);
        }
        hnswc_free(ix);
    }
    report(what, &t);
}

static void test_remove(void **s) {
    (void)s;
    remove_sweep("remove: one label", RM_ONE);
    remove_sweep("remove_batch: 6 labels, 2 threads", RM_BATCH);
    remove_sweep("compact: every tombstone, 2 threads", RM_COMPACT);
}

/*
 * hnswc_relayout: everything it needs (the order, the map, the bitmap, a
 * spare record and vector) is allocated before any id moves, so a failure
 * leaves the index byte for byte as it was -- including the element order,
 * which the serialized form records. The base index (tombstones) and an
 * SQ8 one (whose vectors live apart from the records) are both swept.
 */
static void relayout_sweep(const char *what, bytes start) {
    tally t = {0};
    bytes clean = {0};
    for (long nth = -1; nth < t.sites; nth++) {
        hnswc_index *ix = from_bytes(start);
        if (nth < 0)
            fi_count(FI_ALLOC);
        else
            fi_arm(FI_ALLOC, nth, false);
        hnswc_status st = hnswc_relayout(ix);
        if (nth < 0)
            t.sites = atomic_load(&fi_calls);
        fi_off();
        if (nth < 0) {
            tu_ok(st);
            clean = snapshot(ix);
            assert_false(same(clean, start)); /* the order did change */
        } else {
            expect_clean_failure(st, HNSWC_ERR_NOMEM, what, nth);
            t.failed++;
            bytes now = snapshot(ix);
            assert_true(same(now, start));
            free(now.p);
            tu_ok(hnswc_relayout(ix)); /* and a retry gives the clean result */
            now = snapshot(ix);
            assert_true(same(now, clean));
            free(now.p);
        }
        hnswc_free(ix);
    }
    free(clean.p);
    report(what, &t);
}

static void test_relayout(void **s) {
    (void)s;
    relayout_sweep("relayout: f32, tombstones", base);
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 4;
    o.ef_construction = 32;
    o.storage = HNSWC_STORAGE_SQ8;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, base_data, BASE_N, DIM, 1);
    bytes sq8 = snapshot(ix);
    hnswc_free(ix);
    relayout_sweep("relayout: sq8", sq8);
    free(sq8.p);
}

/*
 * SQ8 storage: the add that trains the quantiser (the index reaches
 * HNSWC_SQ8_TRAIN_MIN elements: a pass over every vector, new code rows)
 * and a search on the codes (the query's code row in the scratch).
 */
static void test_sq8(void **s) {
    (void)s;
    enum { N = HNSWC_SQ8_TRAIN_MIN - 1 };
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 8;
    o.ef_construction = 32;
    o.storage = HNSWC_STORAGE_SQ8;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, base_data, N, DIM, 1);
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.codes_trained, 0);
    bytes start = snapshot(ix);
    hnswc_free(ix);

    add_case c = {"sq8 add: the one that trains the quantiser", start, 5555, {0}, 0, false, 0, true};
    for (int d = 0; d < DIM; d++)
        c.vec[d] = 0.03f * (float)d - 0.1f;
    add_sweep(&c);

    ix = from_bytes(start);
    tu_ok(hnswc_add(ix, 5555, c.vec, 0));
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.codes_trained, 1);
    bytes trained = snapshot(ix);
    hnswc_free(ix);
    c.start = trained;
    c.label = 5556;
    c.trains = false;
    c.what = "sq8 add: new label, trained";
    add_sweep(&c);
    float q[3 * DIM];
    for (int i = 0; i < 3 * DIM; i++)
        q[i] = 0.05f * (float)(i % 9) - 0.2f;
    search_sweep((search_case){"sq8 search: k 10 on codes, re-ranked", NULL, q, K, 64, 0}, trained);
    search_sweep((search_case){"sq8 search: ef 2^31", NULL, q, K, (size_t)1 << 31, 0}, trained);
    free(start.p);
    free(trained.p);
}

/*
 * A flat file's capacity is a number anyone can write: 2^32 - 2 rows in a
 * file of 300 used to make the loader ask for 64 GiB at once (the same
 * defect as issue 13's first, in the flat loader). What it reserves is now
 * bounded (src/persist.c, file_reserve): the wrappers record the largest
 * allocation the load asks for.
 */
static void test_flat_file_capacity(void **s) {
    (void)s;
    bytes fb = flat_base(400);
    tu_section secs[4];
    size_t n = tu_parse_sections(fb.p, fb.n, secs, 4);
    unsigned char *cap = fb.p + tu_find_section(secs, n, "FLAT")->payload + 32;
    uint64_t v;
    memcpy(&v, cap, 8);
    assert_int_equal(v, 400); /* the saved capacity, kept by a load */
    hnswc_index *ix = NULL;
    hnswc_info in;
    tu_ok(hnswc_deserialize(fb.p, fb.n, &ix));
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.capacity, 400);
    hnswc_free(ix);

    v = HNSWC_MAX_ELEMENTS_PUBLIC;
    memcpy(cap, &v, 8);
    tu_fix_crcs(fb.p, secs, n);
    fi_count(FI_ALLOC);
    tu_ok(hnswc_deserialize(fb.p, fb.n, &ix));
    size_t largest = atomic_load(&fi_largest);
    fi_off();
    tu_ok(hnswc_get_info(ix, &in));
    print_message("flat file claiming %llu rows: largest allocation %zu bytes, capacity %llu\n",
                  (unsigned long long)v, largest, (unsigned long long)in.capacity);
    if (largest > ((size_t)300 << 20))
        fail_msg("a 300-row flat file made the loader ask for %zu bytes at once", largest);
    assert_true(in.capacity >= 300);
    hnswc_free(ix);
    free(fb.p);
}

/* ========================================================================
 * Saves: allocations and I/O
 * ======================================================================== */

/* Saves over an existing file with call `nth` of `kinds` failing; checks
 * the outcome. Returns the calls counted. */
static long save_run(hnswc_index *ix, const char *dir, const char *path, bytes old, int kinds,
                     long nth, bool sticky, tally *t) {
    tu_write_file(path, old.p, old.n);
    if (nth < 0)
        fi_count(kinds);
    else
        fi_arm(kinds, nth, sticky);
    hnswc_status st = hnswc_save(ix, path);
    long calls = atomic_load(&fi_calls);
    bool fired = atomic_load(&fi_fired);
    fi_off();

    size_t size;
    unsigned char *got = tu_read_file(path, &size);
    assert_non_null(got);
    bytes now = {got, size};
    if (st == HNSWC_OK) {
        t->absorbed += fired;
        assert_true(same(now, base));
    } else {
        expect_clean_failure(st, kinds == FI_ALLOC ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO, "save", nth);
        t->failed++;
        if (!same(now, old))
            fail_msg("save failed at call %ld but the previous file changed", nth);
    }
    free(got);
    char names[8][256];
    size_t entries = tu_dir_entries(dir, names, 8);
    if (entries != 1)
        fail_msg("save with call %ld failing left %zu files (%s, %s)", nth, entries, names[0],
                 names[1]);
    return calls;
}

/* A fresh directory on tmpfs when there is one: a save fsyncs, which on a
 * disk costs milliseconds, and the sweeps save hundreds of times. */
static char *fast_mkdtemp(void) {
    char tmpl[] = "/dev/shm/hnswc-test-XXXXXX";
    if (mkdtemp(tmpl) != NULL) {
        char *dir = tu_xmalloc(sizeof tmpl);
        memcpy(dir, tmpl, sizeof tmpl);
        return dir;
    }
    return tu_mkdtemp();
}

static void test_save(void **s) {
    (void)s;
    char *dir = fast_mkdtemp();
    char *path = tu_path(dir, "idx.hnswc");
    hnswc_index *ix = from_bytes(base);
    const char old_text[] = "the previous file";
    bytes old = {(unsigned char *)old_text, sizeof old_text};

    tally ta = {0};
    ta.sites = save_run(ix, dir, path, old, FI_ALLOC, -1, false, &ta);
    for (long i = 0; i < ta.sites; i++)
        save_run(ix, dir, path, old, FI_ALLOC, i, false, &ta);
    report("save: allocations", &ta);

    /* I/O: every write, the fsync, the close, the rename, the temp file */
    tally ti = {0};
    ti.sites = save_run(ix, dir, path, old, FI_IO, -1, false, &ti);
    for (long i = 0; i < ti.sites; i++)
        if (i < 32 || i >= ti.sites - 32 || i % 61 == 0) /* hundreds of write calls */
            save_run(ix, dir, path, old, FI_IO, i, false, &ti);
    report("save: I/O (write, fsync, close, rename)", &ti);

    hnswc_free(ix);
    free(path);
    tu_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_new_label),
        cmocka_unit_test(test_add_update),
        cmocka_unit_test(test_add_replace_deleted),
        cmocka_unit_test(test_add_queue_grows),
        cmocka_unit_test(test_add_batch),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_sq8),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_relayout),
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_flat_file_capacity),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_save),
    };
    return cmocka_run_group_tests(tests, setup_base, teardown_base);
}
