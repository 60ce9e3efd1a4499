/*
 * threads.c -- the parallel-for behind hnswc_add_batch and hnswc_search_batch.
 *
 * Threads are started per batch call rather than kept in a pool: a batch is
 * thousands of graph operations, so starting two to a few dozen threads costs
 * nothing measurable, and a library that owns no threads between calls has
 * nothing to shut down, nothing to leak across fork(), and no idle CPU use.
 * Work is handed out in small blocks from one atomic counter, so a thread
 * that draws expensive items (a high-level node, a filtered query) does not
 * hold up the others.
 */
#include "threads.h"

#include "error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 256u
#define MESSAGE_COPY 512

typedef struct job {
    parallel_fn fn;
    void *ctx;
    size_t n;
    size_t block;
    _Atomic size_t next;
    _Atomic int failed; /* set by the first failure: no new blocks start */
    pthread_mutex_t err_lock;
    hnswc_status status;
    char message[MESSAGE_COPY];
} job;

unsigned parallel_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > (long)MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void run_items(job *j) {
    while (!atomic_load_explicit(&j->failed, memory_order_relaxed)) {
        size_t start = atomic_fetch_add_explicit(&j->next, j->block, memory_order_relaxed);
        if (start >= j->n)
            return;
        size_t end = start + j->block < j->n ? start + j->block : j->n;
        for (size_t i = start; i < end; i++) {
            hnswc_status st = j->fn(j->ctx, i);
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

static void *thread_main(void *arg) {
    run_items(arg);
    return NULL;
}

/* block: items a thread takes at once; 0 picks about 16 blocks per thread,
 * at most 64 items a block (few atomic operations for cheap items). */
static hnswc_status run_parallel(size_t n, unsigned num_threads, size_t block, parallel_fn fn,
                                 void *ctx) {
    if (n == 0)
        return HNSWC_OK;
    unsigned t = num_threads ? num_threads : parallel_cpu_count();
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    if (t > n)
        t = (unsigned)n;

    job j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.ctx = ctx;
    j.n = n;
    j.block = block ? block : n / ((size_t)t * 16);
    j.block = j.block < 1 ? 1 : j.block > 64 ? 64 : j.block;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.err_lock, NULL);

    pthread_t threads[MAX_THREADS];
    unsigned started = 0;
    for (unsigned i = 1; i < t; i++) {
        /* a thread that cannot start is not an error: the others, the
         * calling thread included, do its share */
        if (pthread_create(&threads[started], NULL, thread_main, &j) != 0)
            break;
        started++;
    }
    run_items(&j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&j.err_lock);

    if (j.status != HNSWC_OK)
        return hnswc_fail(j.status, "%s", j.message);
    return HNSWC_OK;
}

hnswc_status parallel_for(size_t n, unsigned num_threads, parallel_fn fn, void *ctx) {
    return run_parallel(n, num_threads, 0, fn, ctx);
}

hnswc_status parallel_for_each(size_t n, unsigned num_threads, parallel_fn fn, void *ctx) {
    return run_parallel(n, num_threads, 1, fn, ctx);
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
