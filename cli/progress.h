/*
 * progress.h -- progress reporting on stderr for long steps (building,
 * computing ground truth).
 *
 * On a terminal: one bar redrawn in place with '\r', with the rate and the
 * estimated time left, at most ten times a second. Otherwise (a log file, a
 * pipe, a test): a plain line at every 10% step, so logs stay readable.
 *
 * Not thread safe: one thread owns a progress and calls its functions.
 */
#ifndef HNSWC_CLI_PROGRESS_H
#define HNSWC_CLI_PROGRESS_H

#include <stdint.h>

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
} progress;

/* Starts a progress of `total` units; enabled = 0 makes every call a no-op. */
void progress_start(progress *p, const char *label, const char *unit, uint64_t total,
                    int enabled);

/* Reports that `done` units (cumulative) are finished. */
void progress_update(progress *p, uint64_t done);

/* Ends the display (final line with the elapsed time and the mean rate). */
void progress_finish(progress *p);

/* Ends the display after a failure (ends the bar's line on a terminal). */
void progress_abort(progress *p);

#endif /* HNSWC_CLI_PROGRESS_H */
