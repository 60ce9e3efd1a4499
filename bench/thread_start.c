/*
 * thread_start.c -- what it costs a batch call to get a second thread
 * running: pthread_create (hnswc 0.1 started its threads per call, as
 * hnswlib's Python binding still does) against waking a thread parked on a
 * condition variable (src/threads.c's pool since 0.2).
 *
 * For each way, `--calls` times: record the time, start (or wake) the other
 * thread, and spin until it has recorded that it runs; the median and the
 * 90th percentile of those latencies are printed, once with the calls back
 * to back and once with the calling thread asleep for `--gap-us` before
 * each call (an idle virtual CPU may halt, and waking it is slower). These
 * are the fixed costs that a batch of 500 queries on two threads (about
 * 8 ms with SQ8 on Fashion-MNIST) pays once per call.
 *
 *   make bench-thread-start            (build/bench/thread_start)
 *   build/bench/thread_start --calls 2000 --gap-us 1000
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static void sleep_us(long us) {
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&t, NULL);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *lat, int n) {
    qsort(lat, (size_t)n, sizeof *lat, by_value);
    printf("  %-34s median %8.1f us   p90 %8.1f us\n", what, lat[n / 2], lat[n * 9 / 10]);
}

/* ---- per-call threads ---- */

static _Atomic double started_at;

static void *note_start(void *arg) {
    (void)arg;
    atomic_store(&started_at, now_us());
    return NULL;
}

static void measure_create(int calls, long gap_us, double *lat) {
    for (int i = 0; i < calls; i++) {
        if (gap_us)
            sleep_us(gap_us);
        atomic_store(&started_at, 0.0);
        pthread_t t;
        double t0 = now_us();
        if (pthread_create(&t, NULL, note_start, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
        double s;
        while ((s = atomic_load(&started_at)) == 0.0)
            ;
        lat[i] = s - t0;
        pthread_join(t, NULL);
    }
}

/* ---- a parked worker ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static unsigned long generation;
static int quit;

static void *parked_worker(void *arg) {
    (void)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!quit && generation == seen)
            pthread_cond_wait(&wake, &lock);
        if (quit)
            break;
        seen = generation;
        pthread_mutex_unlock(&lock);
        atomic_store(&started_at, now_us());
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void measure_wake(int calls, long gap_us, double *lat) {
    pthread_t t;
    if (pthread_create(&t, NULL, parked_worker, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    sleep_us(10000); /* let it park */
    for (int i = 0; i < calls; i++) {
        sleep_us(gap_us ? gap_us : 50); /* it must be parked again */
        atomic_store(&started_at, 0.0);
        double t0 = now_us();
        pthread_mutex_lock(&lock);
        generation++;
        pthread_cond_signal(&wake);
        pthread_mutex_unlock(&lock);
        double s;
        while ((s = atomic_load(&started_at)) == 0.0)
            ;
        lat[i] = s - t0;
    }
    pthread_mutex_lock(&lock);
    quit = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    quit = 0;
}

int main(int argc, char **argv) {
    int calls = 2000;
    long gap_us = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gap-us") && i + 1 < argc)
            gap_us = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--calls N] [--gap-us US]\n", argv[0]);
            return 2;
        }
    }
    if (calls < 1 || calls > 1000000 || gap_us < 0 || gap_us > 1000000) {
        fprintf(stderr, "--calls must be 1..1000000 and --gap-us 0..1000000\n");
        return 2;
    }
    double *lat = malloc((size_t)calls * sizeof *lat);
    if (!lat)
        return 1;
    printf("thread start latency, %d calls each\n", calls);
    measure_create(calls, 0, lat);
    report("pthread_create, back to back", lat, calls);
    measure_create(calls, gap_us, lat);
    printf("  (after sleeping %ld us:)\n", gap_us);
    report("pthread_create", lat, calls);
    measure_wake(calls, 0, lat);
    report("wake a parked thread, 50 us apart", lat, calls);
    measure_wake(calls, gap_us, lat);
    printf("  (after sleeping %ld us:)\n", gap_us);
    report("wake a parked thread", lat, calls);
    free(lat);
    return 0;
}
