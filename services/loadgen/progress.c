/* progress: draws the loadgen's progress line (see progress.h).
 *
 * The rate is the acknowledgements between two draws over the time between
 * them, halved into the previous value so a single slow interval does not
 * make the number jump about.
 */
#include "progress.h"

#define BAR_WIDTH 24

static void fmt_rate(double rate, char *out, size_t cap)
{
    if (rate >= 1e6)
        snprintf(out, cap, "%.2fM", rate / 1e6);
    else if (rate >= 1e3)
        snprintf(out, cap, "%.1fk", rate / 1e3);
    else
        snprintf(out, cap, "%.0f", rate);
}

void cv_progress_draw(cv_progress_t *p, FILE *f, uint64_t now_ns, const cv_progress_state_t *s)
{
    p->drawn = true;
    if (s->setup) {
        fprintf(f, "\r\033[Ksetup: %zu/%zu features  %.1f s", s->features_done, s->features,
                s->elapsed_s);
        fflush(f);
        return;
    }
    if (p->last_ns && now_ns > p->last_ns) {
        double rate = (double)(s->ok - p->last_ok) / ((double)(now_ns - p->last_ns) / 1e9);
        p->rate = p->rate > 0 ? 0.5 * p->rate + 0.5 * rate : rate;
    } else if (s->voting_s > 0) {
        p->rate = (double)s->ok / s->voting_s;
    }
    p->last_ok = s->ok;
    p->last_ns = now_ns;

    double frac = s->target > 0 ? (double)s->ok / (double)s->target
                                : s->duration_s > 0 ? s->voting_s / s->duration_s : 0;
    if (frac > 1)
        frac = 1;
    char bar[BAR_WIDTH + 1], rate[32];
    int full = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < full ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    fmt_rate(p->rate, rate, sizeof rate);
    if (s->target > 0)
        fprintf(f, "\r\033[K[%s] %llu/%ld votes acked  %s votes/s  %.1f s", bar,
                (unsigned long long)s->ok, s->target, rate, s->elapsed_s);
    else
        fprintf(f, "\r\033[K[%s] %llu votes acked  %s votes/s  %.1f/%.0f s", bar,
                (unsigned long long)s->ok, rate, s->voting_s, s->duration_s);
    if (s->draining)
        fprintf(f, "  draining %llu", (unsigned long long)s->draining);
    fflush(f);
}

void cv_progress_clear(cv_progress_t *p, FILE *f)
{
    if (p->drawn) {
        fputs("\r\033[K", f);
        fflush(f);
        p->drawn = false;
    }
}
