/*
 * progress.c -- terminal progress bar or plain progress lines, and the
 * estimate of the time left (progress.h).
 */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "platform.h"

#define BAR_WIDTH 30

/* ------------------------------------------------------------------------
 * The estimate
 * ------------------------------------------------------------------------ */

/* The time at which `x` units were done, interpolated linearly between the
 * samples around it (s is sorted by done; x within its range). */
static double time_at(const progress_sample *s, size_t n, double x)
{
    size_t lo = 0, hi = n - 1;
    if (x <= s[0].done)
        return s[0].t;
    if (x >= s[hi].done)
        return s[hi].t;
    while (hi - lo > 1) { /* s[lo].done <= x < s[hi].done */
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].done <= x)
            lo = mid;
        else
            hi = mid;
    }
    double span = s[hi].done - s[lo].done;
    return s[lo].t + (s[hi].t - s[lo].t) * (x - s[lo].done) / span;
}

double progress_recent_rate(const progress_sample *s, size_t n)
{
    if (n < 2)
        return 0;
    double x = s[n - 1].done;
    double dt = s[n - 1].t - time_at(s, n, x / 2);
    return x > 0 && dt > 0 ? (x / 2) / dt : 0;
}

double progress_eta(const progress_sample *s, size_t n, double total)
{
    if (n == 0)
        return -1;
    double x = s[n - 1].done;
    if (x >= total)
        return 0;
    if (n < 4 || x <= 0 || s[n - 1].t <= 0)
        return -1;
    double t0 = time_at(s, n, x / 4), t1 = time_at(s, n, x / 2), t2 = s[n - 1].t;
    double c1 = (t1 - t0) / (x / 4); /* mean cost per unit in [x/4, x/2] */
    double c2 = (t2 - t1) / (x / 2); /* and in [x/2, x]                  */
    if (!(c2 > 0))
        return -1;
    double b = (c2 - c1) / log(2.0);
    if (!(b > 0))
        b = 0;
    /* The integral of c(u) = c2 + b ln(u/m), m = 3x/4, from x to total:
     * c2 (total - x) + b [u ln(u/m) - u] from x to total. */
    double m = 0.75 * x;
    return c2 * (total - x) + b * (total * log(total / m) - total - (x * log(x / m) - x));
}

/* ------------------------------------------------------------------------
 * The history
 * ------------------------------------------------------------------------ */

void progress_record(progress *p, uint64_t done, double t)
{
    size_t n = p->n_hist;
    double x = (double)done;
    if (n > 0 && x <= p->hist[n - 1].done)
        return;
    if (n > 0 && t < p->hist[n - 1].t)
        t = p->hist[n - 1].t; /* keep the times in order */
    /* The newest sample always takes the last slot, so the estimate sees
     * where the work is now; it only becomes a kept point once it is `gap`
     * past the point before it. */
    if (n >= 2 && x - p->hist[n - 2].done < p->gap) {
        p->hist[n - 1] = (progress_sample){x, t};
        return;
    }
    if (n == PROGRESS_HISTORY) {
        /* Keep samples 0, 2, 4, ... (the start stays), and from now on space
         * new ones as far apart as the kept ones, so the history thins out
         * evenly instead of losing its oldest part. */
        size_t k = 0;
        for (size_t i = 0; i < n; i += 2)
            p->hist[k++] = p->hist[i];
        n = p->n_hist = k;
        p->gap = p->hist[n - 1].done / (double)(n - 1);
    }
    p->hist[n] = (progress_sample){x, t};
    p->n_hist = n + 1;
}

/* ------------------------------------------------------------------------
 * The display
 * ------------------------------------------------------------------------ */

/* "1:23:45", "4:05" or "7s" into buf; "--" when unknown. */
static const char *fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "--");
        return buf;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
    else
        snprintf(buf, len, "%lus", t);
    return buf;
}

void progress_start(progress *p, const char *label, const char *unit, uint64_t total,
                    int enabled)
{
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->start = cli_now();
    p->last_draw = 0;
    p->enabled = enabled && total > 0;
    p->tty = isatty(STDERR_FILENO);
    p->next_step = 1;
    p->n_hist = 0;
    p->gap = 0;
    progress_record(p, 0, 0);
}

static void draw_bar(progress *p)
{
    double frac = (double)p->done / (double)p->total;
    double rate = progress_recent_rate(p->hist, p->n_hist);
    double eta = progress_eta(p->hist, p->n_hist, (double)p->total);
    char bar[BAR_WIDTH + 1];
    int fill = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char e[32];
    fprintf(stderr, "\r%s [%s] %3d%%  %llu/%llu  %.0f %s/s  ETA %-8s", p->label, bar,
            (int)(frac * 100), (unsigned long long)p->done, (unsigned long long)p->total, rate,
            p->unit, fmt_duration(eta, e, sizeof e));
    fflush(stderr);
}

void progress_update(progress *p, uint64_t done)
{
    if (!p->enabled)
        return;
    p->done = done > p->total ? p->total : done;
    double now = cli_now();
    progress_record(p, p->done, now - p->start);
    if (p->tty) {
        if (now - p->last_draw >= 0.1 || p->done == p->total) {
            p->last_draw = now;
            draw_bar(p);
        }
        return;
    }
    /* Plain mode: one line per 10% step reached (the last one in finish). */
    int step = (int)(p->done * 10 / p->total);
    if (step >= p->next_step && p->done < p->total) {
        p->next_step = step + 1;
        double rate = progress_recent_rate(p->hist, p->n_hist);
        double eta = progress_eta(p->hist, p->n_hist, (double)p->total);
        char e[32];
        fprintf(stderr, "%s: %3d%% (%llu/%llu), %.0f %s/s, ETA %s\n", p->label, step * 10,
                (unsigned long long)p->done, (unsigned long long)p->total, rate, p->unit,
                fmt_duration(eta, e, sizeof e));
    }
}

void progress_finish(progress *p)
{
    if (!p->enabled)
        return;
    double now = cli_now();
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    if (p->tty) {
        draw_bar(p);
        fputc('\n', stderr);
    }
    fprintf(stderr, "%s: %d%% (%llu/%llu) in %.2f s, %.0f %s/s\n", p->label,
            (int)(p->done * 100 / p->total), (unsigned long long)p->done,
            (unsigned long long)p->total, elapsed, rate, p->unit);
    p->enabled = 0;
}

void progress_abort(progress *p)
{
    if (p->enabled && p->tty)
        fputc('\n', stderr);
    p->enabled = 0;
}
