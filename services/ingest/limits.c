/* limits: deadlines and the process-wide budget of ingest's connections
 * (see limits.h). */
#include "limits.h"

#include <assert.h>

#define CV__NS_PER_MS 1000000ULL
#define CV__SWEEP_MIN_MS 10
#define CV__SWEEP_MAX_MS 1000

void cv_limits_init(cv_limits_t *l, const cv_limits_opts_t *opts)
{
    l->opts = *opts;
    l->charged = 0;
    l->over = false;
}

uint64_t cv_limits_sweep_ms(const cv_limits_t *l)
{
    uint64_t every = CV__SWEEP_MAX_MS;
    uint64_t d[3] = {l->opts.idle_ms, l->opts.read_ms, l->opts.write_ms};
    for (int i = 0; i < 3; i++)
        if (d[i] && d[i] / 4 < every)
            every = d[i] / 4;
    return every < CV__SWEEP_MIN_MS ? CV__SWEEP_MIN_MS : every;
}

bool cv_limits_charge(cv_limits_t *l, size_t n)
{
    l->charged += n;
    if (l->over || !l->opts.max_buffered || l->charged <= l->opts.max_buffered)
        return false;
    l->over = true;
    return true;
}

bool cv_limits_refund(cv_limits_t *l, size_t n)
{
    assert(n <= l->charged);
    l->charged -= n;
    /* The gap between the marks keeps a server near its budget from pausing
     * and resuming every connection on every reply. */
    if (!l->over || l->charged > l->opts.max_buffered / 4 * 3)
        return false;
    l->over = false;
    return true;
}

void cv_limits_conn_init(cv_limits_conn_t *lc, uint64_t now)
{
    lc->frame_ns = now;
    lc->partial_ns = 0;
    lc->write_ns = 0;
    lc->socket_seen = 0;
}

void cv_limits_conn_read(cv_limits_conn_t *lc, uint64_t now, bool completed, bool partial)
{
    if (completed)
        lc->frame_ns = now;
    if (!partial)
        lc->partial_ns = 0;
    else if (completed || lc->partial_ns == 0)
        lc->partial_ns = now; /* a new frame began in these bytes */
}

void cv_limits_conn_resumed(cv_limits_conn_t *lc, uint64_t now)
{
    lc->frame_ns = now;
    if (lc->partial_ns)
        lc->partial_ns = now;
}

void cv_limits_conn_owed(cv_limits_conn_t *lc, uint64_t now)
{
    lc->write_ns = now;
}

void cv_limits_conn_wrote(cv_limits_conn_t *lc, uint64_t now)
{
    lc->write_ns = now;
}

static bool past(uint64_t since_ns, uint64_t limit_ms, uint64_t now)
{
    return limit_ms && now > since_ns && now - since_ns > limit_ms * CV__NS_PER_MS;
}

cv_limits_verdict_t cv_limits_check(const cv_limits_t *l, cv_limits_conn_t *lc,
                                    const cv_limits_state_t *st, uint64_t now)
{
    /* A large write completes (and calls back) only when its last byte is
     * taken; a client reading slowly but steadily shows progress here. */
    if (st->socket_unsent < lc->socket_seen)
        lc->write_ns = now;
    lc->socket_seen = st->socket_unsent;

    if (st->unsent && past(lc->write_ns, l->opts.write_ms, now))
        return CV_LIMITS_WRITE;
    if (!st->open || !st->reading)
        return CV_LIMITS_OK;
    if (lc->partial_ns)
        return past(lc->partial_ns, l->opts.read_ms, now) ? CV_LIMITS_READ : CV_LIMITS_OK;
    if (!st->owed && !st->unsent && past(lc->frame_ns, l->opts.idle_ms, now))
        return CV_LIMITS_IDLE;
    return CV_LIMITS_OK;
}
