/*
 * threads.c -- the parallel-for behind hnswc_add_batch and hnswc_search_batch.
 *
 * Workers are kept between batch calls, parked on a condition variable (no
 * CPU use while parked), and started lazily: the first call that wants t
 * threads starts the t - 1 it lacks; the calling thread is always one of
 * the t. Why not start threads per call, as 0.1 did: on this project's VMs
 * (KVM, 2 vCPUs, bench/thread_start.c, medians of 2,000) a new thread ran
 * 37 us after pthread_create when calls came back to back, but 2.0-2.7 ms
 * after when the caller had slept 1 ms first (presumably queued on the
 * caller's busy CPU until the scheduler moves it), while a parked worker
 * ran 10 us after its wake-up. A search batch of 20 queries on two threads
 * (about 0.6 ms with SQ8 on Fashion-MNIST) ran 5-8% faster on the pool in
 * bench/ab.py; batches of 500 (8 ms) were within the noise (0.98-1.02x).
 * A worker that has just finished a batch spins for the next one for at
 * most WORKER_SPIN_NS before it parks (spin_for_next): about what one
 * wake-up costs here, so a worker never burns more CPU waiting than a
 * wake-up would have lost, and a caller that searches batch after batch
 * (a loop over chunks of queries, the usual way to run many) finds its
 * worker awake. Not longer: a spinning worker holds a CPU that the
 * caller's other work -- or, in a benchmark, another system -- may want
 * (the reason an earlier version parked at once). Measured (2026-12-02,
 * Fashion-MNIST SQ8, ef 12, two threads, calls back to back, against the
 * build that parked at once, two runs; docs/bench-results/
 * back-to-back-r8.txt): batches of 20 / 100 / 500 queries 1.02-1.10x /
 * 1.02-1.04x / 1.00-1.01x queries per second. (bench/ab.py's default, one
 * call per system in turn, cannot show it: there the next call is another
 * system's.)
 *
 * One pool serves one batch at a time. A call that finds it busy (another
 * thread's batch, or a batch started from inside a batch item) starts its
 * own threads for the call, as 0.1 did, so concurrent batches never wait
 * for each other's pool. After fork() the child has none of the parent's
 * threads: a pthread_atfork handler drops the pool in the child, which
 * builds a fresh one if it calls again (the old one's memory is leaked,
 * since its lock may have been held at the fork). At exit or dlclose a
 * destructor stops idle workers.
 *
 * Work is handed out in small blocks from one atomic counter, so a thread
 * that draws expensive items (a high-level node, a filtered query) does not
 * hold up the others; the blocks shrink towards the end of a pass, so that
 * the threads finish together (run_pass).
 *
 * Where the time of a batch on two threads goes that is not items: timed
 * inside an instrumented build (2026-12-02, Fashion-MNIST SQ8, ordered
 * batches of 500 queries at ef 12, about 6.8 ms each on two threads, this
 * project's KVM guest): a parked worker ran 40-65 us after its wake-up, the
 * last thread of a pass of blocks of 15 walks ran on alone for 60-90 us on
 * average, the sort between the passes took about 30 us; in all about 340
 * us of one thread's time a batch (2.5% of the two threads' capacity), and
 * about 160 us since the two passes are one call (parallel_for_passes)
 * and the blocks shrink at the end. (An A/B of the whole search could not
 * separate that 1.3% from this machine's noise: +0-8% at two threads with
 * the old build's index built first, -3 to +3% with the new one's.)
 */
#include "threads.h"

#include "error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256u
#define MESSAGE_COPY 512

/* ========================================================================
 * A batch: items handed out from one counter
 * ======================================================================== */

typedef struct job {
    parallel_fn fn;
    void *ctx;
    size_t n;
    size_t block;   /* items a thread takes at once, away from the end */
    unsigned threads; /* at most this many threads run it */
    _Atomic size_t next;
    _Atomic unsigned next_slot; /* each thread that joins takes the next */
    /* parallel_for_passes: NULL, or the second pass's items (n of them,
     * from next2), run once every item of the first has returned and
     * `between` has run on the thread that saw that */
    parallel_fn fn2;
    void (*between)(void *ctx);
    _Atomic size_t next2;
    _Atomic unsigned in_first; /* threads that may still run a first-pass item */
    _Atomic int second;        /* set when the second pass may start */
    _Atomic int failed; /* set by the first failure: no new blocks start */
    pthread_mutex_t err_lock;
    hnswc_status status;
    char message[MESSAGE_COPY];
} job;

unsigned parallel_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > (long)MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* Runs fn's items from the counter *next until none are left or the batch
 * has failed. */
static void run_pass(job *j, parallel_fn fn, _Atomic size_t *next, unsigned slot) {
    while (!atomic_load_explicit(&j->failed, memory_order_relaxed)) {
        /* blocks shrink at the end (a half of each thread's share of what is
         * left, down to one item), so that no thread runs a whole block
         * alone while the others have finished: with blocks of 15 walks the
         * last thread of an ordered batch of 500 ran on alone for 60-90 us
         * on average at ef 12 (a batch takes about 6.6 ms on two threads) */
        size_t seen = atomic_load_explicit(next, memory_order_relaxed);
        size_t left = seen < j->n ? j->n - seen : 0;
        size_t share = left / (2 * (size_t)j->threads);
        size_t block = share < j->block ? (share ? share : 1) : j->block;
        size_t start = atomic_fetch_add_explicit(next, block, memory_order_relaxed);
        if (start >= j->n)
            return;
        size_t end = start + block < j->n ? start + block : j->n;
        for (size_t i = start; i < end; i++) {
            hnswc_status st = fn(j->ctx, i, slot);
            if (st != HNSWC_OK) {
                /* the message is in this thread's buffer: copy it for the caller */
                pthread_mutex_lock(&j->err_lock);
                if (j->status == HNSWC_OK) {
                    j->status = st;
                    strncpy(j->message, hnswc_last_message(), sizeof j->message - 1);
                }
                pthread_mutex_unlock(&j->err_lock);
                atomic_store(&j->failed, 1);
                return;
            }
        }
    }
}

/* A spin-wait's hint to the CPU that this thread is only waiting. */
static void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of a short wait for another thread of the same batch: a pause
 * hint, and after the first few thousand a yield, so that a wait on a
 * thread that lost its CPU gives the CPU up. */
static void wait_step(unsigned *spins) {
    if (++*spins < 4096)
        cpu_pause();
    else
        sched_yield();
}

/*
 * A thread's part in a batch. The calling thread passes `caller`: in a
 * two-pass batch it is the one that ends the first pass -- the batch's
 * other threads registered themselves in in_first before taking items,
 * so once the caller has found the first counter exhausted and in_first
 * at zero, every first-pass item has returned (a thread that registers
 * later finds nothing to take) -- runs `between` and opens the second.
 * The others wait for that, briefly: the wait is the rest of the first
 * pass's last items and `between`, not idle time between batches.
 */
static void run_items(job *j, bool caller) {
    unsigned slot = atomic_fetch_add_explicit(&j->next_slot, 1, memory_order_relaxed);
    if (!j->fn2) {
        run_pass(j, j->fn, &j->next, slot);
        return;
    }
    if (!caller)
        atomic_fetch_add(&j->in_first, 1);
    run_pass(j, j->fn, &j->next, slot);
    unsigned spins = 0;
    if (caller) {
        while (atomic_load(&j->in_first) != 0)
            wait_step(&spins);
        if (!atomic_load(&j->failed))
            j->between(j->ctx);
        atomic_store_explicit(&j->second, 1, memory_order_release);
    } else {
        atomic_fetch_sub(&j->in_first, 1);
        while (!atomic_load_explicit(&j->second, memory_order_acquire))
            wait_step(&spins);
    }
    run_pass(j, j->fn2, &j->next2, slot);
}

/* ========================================================================
 * The worker pool
 * ======================================================================== */

/*
 * Everything below `lock` is read and written under it. A batch is
 * published by setting `current` and bumping `generation`; a worker joins a
 * generation at most once, and only while `joined < wanted`. When the caller
 * has run out of items it closes the batch (wanted = joined), so a worker
 * that wakes late finds nothing to join and parks again -- the caller never
 * waits for a slow wake-up, only for workers already inside the batch.
 */
typedef struct pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers: a new batch, or quit */
    pthread_cond_t idle; /* the caller: the last worker left the batch */
    pthread_t threads[MAX_THREADS];
    unsigned started;    /* workers running (they never exit before quit) */
    bool busy;           /* a caller owns the pool for a batch */
    bool quit;
    job *current;
    unsigned long generation;
    /* generation's copy for workers that spin for the next batch without
     * the lock (spin_for_next); written under the lock */
    _Atomic unsigned long published;
    unsigned wanted;     /* workers the current batch may take */
    unsigned joined;     /* workers that took it */
    unsigned inside;     /* workers still running its items */
} pool;

/* NULL until the first batch on more than one thread; the child of a fork
 * sets it back to NULL. */
static _Atomic(pool *) the_pool;
static atomic_flag atfork_registered = ATOMIC_FLAG_INIT;

/* Spin time of a worker after a batch (see the top of the file): the
 * median wake-up of a parked worker on this project's KVM guests was about
 * 50 us (an instrumented build, batches of 500 queries on two threads,
 * 2026-12-02). */
#define WORKER_SPIN_NS 50000

static long long elapsed_ns(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - since->tv_sec) * 1000000000LL + (now.tv_nsec - since->tv_nsec);
}

/* Called without the lock by a worker that has just left a batch: returns
 * once a batch after `seen` is published, or after WORKER_SPIN_NS. The
 * worker then looks again under the lock, as after a wake-up. */
static void spin_for_next(pool *p, unsigned long seen) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned i = 1; atomic_load_explicit(&p->published, memory_order_acquire) == seen; i++) {
        cpu_pause();
        if (i % 64 == 0 && elapsed_ns(&start) >= WORKER_SPIN_NS)
            return;
    }
}

static void *worker_main(void *arg) {
    pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && (p->generation == seen || p->joined >= p->wanted)) {
            seen = p->generation; /* a closed batch is not waited for again */
            pthread_cond_wait(&p->wake, &p->lock);
        }
        if (p->quit)
            break;
        seen = p->generation;
        p->joined++;
        p->inside++;
        job *j = p->current;
        pthread_mutex_unlock(&p->lock);
        run_items(j, false);
        pthread_mutex_lock(&p->lock);
        if (--p->inside == 0)
            pthread_cond_signal(&p->idle);
        pthread_mutex_unlock(&p->lock);
        spin_for_next(p, seen); /* before parking: the top of the file */
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_forget_in_child(void) { atomic_store(&the_pool, NULL); }

/* The pool, created on first use; NULL if it cannot be (then the caller
 * starts threads per call). */
static pool *pool_get(void) {
    pool *p = atomic_load(&the_pool);
    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->published, 0);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->idle, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    pool *none = NULL;
    if (!atomic_compare_exchange_strong(&the_pool, &none, p)) {
        /* another thread's pool won the race: use that one */
        pthread_cond_destroy(&p->idle);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return none;
    }
    if (!atomic_flag_test_and_set(&atfork_registered))
        (void)pthread_atfork(NULL, NULL, pool_forget_in_child);
    return p;
}

/* Stops idle workers at exit or dlclose, so none is left parked in code
 * that is being unmapped. A pool in use (exit called during a batch) is left
 * alone: waiting for it could hang the exit. */
#if defined(__GNUC__)
__attribute__((destructor))
#endif
static void pool_shutdown(void) {
    pool *p = atomic_load(&the_pool);
    if (!p || pthread_mutex_trylock(&p->lock) != 0)
        return;
    if (p->busy) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->quit = true;
    p->busy = true; /* no batch may start on it any more */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
}

/*
 * Runs j on the pool's workers (up to extra of them) and the calling
 * thread. Returns false, having run nothing, if the pool is in use or cannot
 * get a single worker.
 */
static bool pool_run(job *j, unsigned extra) {
    pool *p = pool_get();
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    if (p->busy) {
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    while (p->started < extra &&
           pthread_create(&p->threads[p->started], NULL, worker_main, p) == 0)
        p->started++;
    if (p->started == 0) {
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    p->busy = true;
    p->current = j;
    p->generation++;
    atomic_store_explicit(&p->published, p->generation, memory_order_release);
    p->wanted = extra < p->started ? extra : p->started;
    p->joined = 0;
    if (p->wanted == p->started)
        pthread_cond_broadcast(&p->wake);
    else
        for (unsigned i = 0; i < p->wanted; i++)
            pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);

    run_items(j, true);

    pthread_mutex_lock(&p->lock);
    p->wanted = p->joined; /* closed: late wakers find nothing to join */
    while (p->inside > 0)
        pthread_cond_wait(&p->idle, &p->lock);
    p->current = NULL;
    p->busy = false;
    pthread_mutex_unlock(&p->lock);
    return true;
}

/* ========================================================================
 * Per-call threads: the fallback when the pool is busy
 * ======================================================================== */

static void *thread_main(void *arg) {
    run_items(arg, false);
    return NULL;
}

static void run_on_new_threads(job *j, unsigned extra) {
    pthread_t threads[MAX_THREADS];
    unsigned started = 0;
    for (unsigned i = 0; i < extra; i++) {
        /* a thread that cannot start is not an error: the others, the
         * calling thread included, do its share */
        if (pthread_create(&threads[started], NULL, thread_main, j) != 0)
            break;
        started++;
    }
    run_items(j, true);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* ========================================================================
 * parallel_for
 * ======================================================================== */

/* At most one thread per item, and at most MAX_THREADS: the caller and
 * the pool's workers (pool_run: no more than extra = t - 1 join a batch) or
 * the per-call threads (run_on_new_threads: t - 1 started) each take one
 * slot in run_items, so slots stay below this. */
unsigned parallel_threads(size_t n, unsigned num_threads) {
    unsigned t = num_threads ? num_threads : parallel_cpu_count();
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    return n < t ? (unsigned)(n ? n : 1) : t;
}

/* block: items a thread takes at once; 0 picks about 16 blocks per thread,
 * at most 64 items a block (few atomic operations for cheap items). */
static hnswc_status run_parallel(size_t n, unsigned num_threads, size_t block, parallel_fn fn,
                                 void (*between)(void *), parallel_fn fn2, void *ctx) {
    if (n == 0)
        return HNSWC_OK;
    unsigned t = parallel_threads(n, num_threads);

    job j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.ctx = ctx;
    j.n = n;
    j.block = block ? block : n / ((size_t)t * 16);
    j.block = j.block < 1 ? 1 : j.block > 64 ? 64 : j.block;
    j.threads = t;
    atomic_init(&j.next, 0);
    atomic_init(&j.next_slot, 0);
    j.fn2 = fn2;
    j.between = between;
    atomic_init(&j.next2, 0);
    atomic_init(&j.in_first, 0);
    atomic_init(&j.second, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.err_lock, NULL);

    if (t == 1)
        run_items(&j, true);
    else if (!pool_run(&j, t - 1))
        run_on_new_threads(&j, t - 1);
    pthread_mutex_destroy(&j.err_lock);

    if (j.status != HNSWC_OK)
        return hnswc_fail(j.status, "%s", j.message);
    return HNSWC_OK;
}

hnswc_status parallel_for(size_t n, unsigned num_threads, parallel_fn fn, void *ctx) {
    return run_parallel(n, num_threads, 0, fn, NULL, NULL, ctx);
}

hnswc_status parallel_for_each(size_t n, unsigned num_threads, parallel_fn fn, void *ctx) {
    return run_parallel(n, num_threads, 1, fn, NULL, NULL, ctx);
}

hnswc_status parallel_for_passes(size_t n, unsigned num_threads, parallel_fn first,
                                 void (*between)(void *ctx), parallel_fn second, void *ctx) {
    return run_parallel(n, num_threads, 0, first, between, second, ctx);
}

void parallel_rwlock_init(pthread_rwlock_t *lock) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}
