/*
 * progress.h -- progress reporting on stderr for long steps (building,
 * computing ground truth), and the estimate of the time left.
 *
 * On a terminal: one bar redrawn in place with '\r', with the recent rate
 * and the estimated time left, at most ten times a second. Otherwise (a log
 * file, a pipe, a test): a plain line at every 10% step, so logs stay
 * readable.
 *
 * Not thread safe: one thread owns a progress and calls its functions.
 */
#ifndef HNSWC_CLI_PROGRESS_H
#define HNSWC_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * The estimate of the time left
 *
 * The cost of a unit of work is not constant: an HNSW insert costs more as
 * the graph grows (its searches visit more nodes, and the vectors they touch
 * fall out of the CPU caches). Measured on Fashion-MNIST (60,000 x 784, 2
 * threads, CPU time per 1% of the build), the last inserts cost about 10x
 * the first ones and the growth slows down like a logarithm, so "units
 * left / mean rate so far" was 0.24x to 0.74x of the true time left from 5%
 * to 95% of the way (2 to 4 times too low for most of a build).
 *
 * The model: the cost per unit at position u is c(u) = c2 + b * ln(u / m),
 * measured on the recent past: c1 and c2 are the mean costs over
 * [x/4, x/2] and [x/2, x] (x = units done), whose middles m/2 and m = 3x/4
 * are a factor 2 apart, so b = (c2 - c1) / ln 2. b is clamped at 0: work
 * that seems to get cheaper is taken as constant (a warm-up, or noise), and
 * constant-cost work (ground truth) then gets its recent rate. The time
 * left is the integral of c from x to the total. On the curve above it is
 * 0.67x to 1.09x of the true time left from 5% to 95% (0.93x to 1.09x from
 * 20%). Rejected: a moving-window rate (constant cost, still 2x low early
 * on), and a power law u^p fitted the same way (it keeps the steep early
 * growth: up to 2.6x too high).
 * ------------------------------------------------------------------------ */

/* A point of a progress history: units done, seconds since the start. */
typedef struct progress_sample {
    double done;
    double t;
} progress_sample;

/*
 * Estimated seconds left to reach `total` units, from n samples in order of
 * increasing done and t, the first normally (0, 0). Returns -1 when the
 * history cannot tell yet (fewer than 4 samples, or no time measured), 0 when
 * done >= total. Pure function (the unit tests feed it histories).
 */
double progress_eta(const progress_sample *s, size_t n, double total);

/*
 * The recent rate (units per second) of the same history: over [x/2, x],
 * or 0 when it cannot tell.
 */
double progress_recent_rate(const progress_sample *s, size_t n);

/* ------------------------------------------------------------------------
 * The display
 * ------------------------------------------------------------------------ */

/* Samples kept; when full, every other one is dropped and new ones are
 * spaced as far apart as those kept, so the history covers the whole way at
 * an even resolution (the estimate needs the points from x/4 on). */
#define PROGRESS_HISTORY 256

typedef struct progress {
    const char *label; /* "build", "ground truth"                  */
    const char *unit;  /* "vectors", "queries"                     */
    uint64_t total;
    uint64_t done;
    double start;
    double last_draw;
    int enabled;
    int tty;
    int next_step;     /* next 10% step to print in plain mode     */
    progress_sample hist[PROGRESS_HISTORY];
    size_t n_hist;
    double gap;        /* least spacing (units) of kept samples    */
} progress;

/* Starts a progress of `total` units; enabled = 0 makes every call a no-op. */
void progress_start(progress *p, const char *label, const char *unit, uint64_t total,
                    int enabled);

/* Reports that `done` units (cumulative) are finished. */
void progress_update(progress *p, uint64_t done);

/*
 * Adds (done, t seconds since the start) to the history, if done moved on;
 * progress_update calls it with the clock's time. Exposed for the tests.
 */
void progress_record(progress *p, uint64_t done, double t);

/* Ends the display (final line with the elapsed time and the mean rate). */
void progress_finish(progress *p);

/* Ends the display after a failure (ends the bar's line on a terminal). */
void progress_abort(progress *p);

#endif /* HNSWC_CLI_PROGRESS_H */
