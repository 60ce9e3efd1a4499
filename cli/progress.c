/*
 * progress.c -- terminal progress bar or plain progress lines (progress.h).
 */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "platform.h"

#define BAR_WIDTH 30

/* "1:23:45", "4:05" or "7s" into buf. */
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
}

static void draw_bar(progress *p, double now)
{
    double frac = (double)p->done / (double)p->total;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
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
    if (p->tty) {
        if (now - p->last_draw >= 0.1 || p->done == p->total) {
            p->last_draw = now;
            draw_bar(p, now);
        }
        return;
    }
    /* Plain mode: one line per 10% step reached (the last one in finish). */
    int step = (int)(p->done * 10 / p->total);
    if (step >= p->next_step && p->done < p->total) {
        p->next_step = step + 1;
        double elapsed = now - p->start;
        double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
        double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
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
        draw_bar(p, now);
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
