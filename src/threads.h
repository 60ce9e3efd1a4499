/*
 * threads.h -- the parallel-for behind the batch calls (threads.c).
 *
 * Prefix: parallel_. Included by index.c (add and search batches), flat.c
 * (batch searches) and storage.c (the update lock).
 * Depends on error.h only (a worker's message is copied to the caller).
 */
#ifndef HNSWC_THREADS_H
#define HNSWC_THREADS_H

#include "hnswc.h"

#include <pthread.h>
#include <stddef.h>

/*
 * Runs fn(ctx, i, slot) for i in [0, n) on up to num_threads threads (0 =
 * all cores), the calling thread included; the others are the process's
 * worker pool, kept between calls (threads.c: spinning briefly, then
 * parked), or threads started for the call when another batch has the pool. fn returns HNSWC_OK or an error;
 * after the first error no new items start, and the first error's status is
 * returned with its message copied to the calling thread. fn must be safe to
 * run concurrently with itself.
 *
 * slot says which of the call's threads runs the item: each thread that
 * takes part has its own, 0 <= slot < parallel_threads(n, num_threads), so
 * items with the same slot never run at the same time, and fn may keep
 * per-thread scratch in ctx indexed by it without a lock.
 */
typedef hnswc_status (*parallel_fn)(void *ctx, size_t i, unsigned slot);
hnswc_status parallel_for(size_t n, unsigned num_threads, parallel_fn fn, void *ctx);

/*
 * Two parallel_for passes over the same n items in one call: first(ctx, i,
 * slot) for every i, then between(ctx) once, on one thread, after every
 * first-pass item has returned, then second(ctx, i, slot) for every i. A
 * thread keeps its slot through both. After a first-pass error neither
 * `between` nor any second-pass item runs. Why one call rather than two
 * parallel_fors: the pool's workers would park after the first and be
 * woken again for the second -- on this project's KVM guests 40-60 us
 * before a woken worker runs, with the caller working alone meanwhile; here
 * they wait, spinning briefly, for the first pass's last items and
 * `between`. For the ordered search batch (index.c): descents, the sort,
 * walks.
 */
hnswc_status parallel_for_passes(size_t n, unsigned num_threads, parallel_fn first,
                                 void (*between)(void *ctx), parallel_fn second, void *ctx);

/* The most threads (and so slots) a parallel_for over n items on
 * num_threads runs: between 1 and n (1 for n = 0). */
unsigned parallel_threads(size_t n, unsigned num_threads);

/*
 * The same, but items start one at a time in index order (one atomic
 * increment each, nothing beside an insert or a search), for two callers:
 *
 * Add batches, whose result (the graph) depends on the order of the
 * inserts: the items running at once are neighbours in the order. With
 * blocks of 64, two threads inserted rows i and i + 64 side by side, an
 * order far from the caller's that single-threaded builds and hnswlib (one
 * row at a time) do not use; on some data sets that order lost a true
 * neighbour at ef 400 in about half of the builds (an outlier whose nearest
 * neighbour's list filled up with 32 closer ones; hnswlib loses it too given
 * that order).
 *
 * Search batches of fewer than 32 queries (larger ones are ordered, see
 * index.c, and use parallel_for_passes): for so few items the blocks of
 * parallel_for would be one item each anyway, near the end of the batch.
 */
hnswc_status parallel_for_each(size_t n, unsigned num_threads, parallel_fn fn, void *ctx);

/* Online CPUs, between 1 and the most threads parallel_for starts. */
unsigned parallel_cpu_count(void);

/*
 * Initialises a reader/writer lock that prefers writers where the C library
 * lets us choose (glibc prefers readers by default, which would let a steady
 * stream of searches starve a writer forever). For the indexes' update locks.
 */
void parallel_rwlock_init(pthread_rwlock_t *lock);

#endif /* HNSWC_THREADS_H */
