/* run: the benchmark driver (see run.h): phases, the vote and retry queues,
 * the watchdog and the progress line (progress.c), on one libuv loop.
 *
 * Every request (a setup submit or a vote) is a req_t from a slab pool.  A
 * request is "outstanding" from the moment it is first handed to a
 * connection until its final reply; in between it is in flight on a
 * connection, on the ready queue (its connection was lost: resend at once),
 * or on the delayed queue (UNAVAILABLE: resend after RETRY_DELAY).  Every
 * delayed request waits the same time, so the delayed queue stays in due
 * order and one timer armed for its head is enough.  The run is over when
 * no new request may start and nothing is outstanding.
 */
#include "run.h"
#include "cv_err.h"
#include "cv_log.h"
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define RETRY_DELAY_NS (100ULL * 1000000)
#define TICK_MS 250
#define REQ_SLAB 4096

typedef enum { KIND_SUBMIT, KIND_VOTE } kind_t;
typedef enum { PHASE_SETUP, PHASE_VOTES, PHASE_DRAIN, PHASE_DONE } phase_t;

typedef struct req {
    struct req *next; /* queue or free list */
    kind_t kind;
    bool lost;        /* its last send went down with a connection */
    uint32_t sends;
    uint32_t index;   /* submit: the workload feature it creates */
    cv_vote_t vote;
    uint64_t first_ns, due_ns;
} req_t;

typedef struct {
    req_t *head, *tail;
} queue_t;

typedef struct slab {
    struct slab *next;
    req_t reqs[REQ_SLAB];
} slab_t;

typedef struct {
    const cv_run_opts_t *o;
    const cv_backend_t *be;
    cv_workload_t *w;
    cv_report_t *rep;
    uv_loop_t loop;
    uv_timer_t tick, deadline, retry, pace;
    uint64_t tenth_ns[11]; /* when the OK count reached each tenth of --votes */
    uint64_t oks;
    uv_signal_t sigint;
    bool handles_closed;
    void **conns; /* the back end's connections */
    bool *was_up, *up_now;
    unsigned nconns;

    phase_t phase;
    int rc;
    unsigned interrupts;
    char last_error[200];
    queue_t ready, delayed;
    req_t *free_reqs;
    slab_t *slabs;
    uint64_t outstanding;
    bool starved; /* the workload had only busy keys to offer */
    size_t setup_next, setup_done;
    uint64_t start_ns, votes_start_ns, last_final_ns, last_vote_ns;
    uint64_t run_id; /* wall-clock seconds at the start, to tell runs' features apart */

    /* What next() hands a connection; valid until the next call. */
    Canvass__V1__Vote vote_msg;
    Canvass__V1__Submit submit_msg;
    char user[32], title[96];
    char *tags[1];

    cv_progress_t progress;
} run_t;

/* ---- requests and queues ------------------------------------------------------ */

static req_t *req_new(run_t *r)
{
    if (!r->free_reqs) {
        slab_t *s = malloc(sizeof *s);
        if (!s)
            return NULL;
        s->next = r->slabs;
        r->slabs = s;
        for (size_t i = 0; i < REQ_SLAB; i++) {
            s->reqs[i].next = r->free_reqs;
            r->free_reqs = &s->reqs[i];
        }
    }
    req_t *q = r->free_reqs;
    r->free_reqs = q->next;
    memset(q, 0, sizeof *q);
    return q;
}

static void req_free(run_t *r, req_t *q)
{
    q->next = r->free_reqs;
    r->free_reqs = q;
}

static void queue_push(queue_t *qu, req_t *q)
{
    q->next = NULL;
    if (qu->tail)
        qu->tail->next = q;
    else
        qu->head = q;
    qu->tail = q;
}

static req_t *queue_pop(queue_t *qu)
{
    req_t *q = qu->head;
    if (q) {
        qu->head = q->next;
        if (!qu->head)
            qu->tail = NULL;
    }
    return q;
}

/* ---- ending the run ------------------------------------------------------------- */

static void stop_all(run_t *r)
{
    cv_progress_clear(&r->progress, stderr);
    for (unsigned i = 0; i < r->nconns; i++)
        if (r->conns[i])
            r->be->stop(r->conns[i]);
    if (!r->handles_closed) {
        r->handles_closed = true;
        uv_close((uv_handle_t *)&r->tick, NULL);
        uv_close((uv_handle_t *)&r->deadline, NULL);
        uv_close((uv_handle_t *)&r->retry, NULL);
        uv_close((uv_handle_t *)&r->pace, NULL);
        uv_close((uv_handle_t *)&r->sigint, NULL);
    }
}

static void finish(run_t *r)
{
    r->phase = PHASE_DONE;
    if (r->votes_start_ns && r->last_vote_ns > r->votes_start_ns)
        r->rep->wall_s = (double)(r->last_vote_ns - r->votes_start_ns) / 1e9;
    stop_all(r);
}

static void fail(run_t *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(run_t *r, int rc, const char *fmt, ...)
{
    if (r->phase == PHASE_DONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->rep->failure, sizeof r->rep->failure, fmt, ap);
    va_end(ap);
    r->rc = rc;
    finish(r);
}

static bool votes_mode(const run_t *r)
{
    return r->o->duration_s <= 0;
}

static void check_done(run_t *r)
{
    bool no_new = r->phase == PHASE_DRAIN ||
                  (r->phase == PHASE_VOTES && votes_mode(r) &&
                   r->rep->sent >= (uint64_t)r->o->votes);
    if (no_new && r->outstanding == 0)
        finish(r);
}

static void fill_all(run_t *r)
{
    for (unsigned i = 0; i < r->nconns && r->phase != PHASE_DONE; i++)
        r->be->fill(r->conns[i]);
}

static void enter_drain(run_t *r)
{
    if (r->phase != PHASE_VOTES)
        return;
    r->phase = PHASE_DRAIN;
    uv_timer_stop(&r->deadline);
    check_done(r);
}

static void on_deadline(uv_timer_t *t)
{
    enter_drain(t->data);
}

static void enter_votes(run_t *r)
{
    r->phase = PHASE_VOTES;
    if (!votes_mode(r))
        uv_timer_start(&r->deadline, on_deadline, (uint64_t)(r->o->duration_s * 1000), 0);
    fill_all(r);
}

/* ---- what the connections send ------------------------------------------------- */

static void arm_retry(run_t *r);

/* The next request to send: a lost one, a due retry, or a new one. */
static req_t *take_request(run_t *r, uint64_t now)
{
    req_t *q = queue_pop(&r->ready);
    if (q)
        return q;
    if (r->delayed.head && r->delayed.head->due_ns <= now)
        return queue_pop(&r->delayed);
    if (r->phase == PHASE_SETUP && r->setup_next < cv_workload_features(r->w)) {
        if (!(q = req_new(r)))
            goto nomem;
        q->kind = KIND_SUBMIT;
        q->index = (uint32_t)r->setup_next++;
        r->outstanding++;
        return q;
    }
    if (r->phase != PHASE_VOTES || (votes_mode(r) && r->rep->sent >= (uint64_t)r->o->votes))
        return NULL;
    if (r->o->rate > 0 && r->votes_start_ns &&
        (double)r->rep->sent >= 1.0 + (double)(now - r->votes_start_ns) * r->o->rate / 1e9)
        return NULL; /* not due yet: the pace timer fills again */
    if (!(q = req_new(r)))
        goto nomem;
    int got = cv_workload_next(r->w, &q->vote);
    if (got <= 0) {
        req_free(r, q);
        if (got < 0)
            goto nomem;
        r->starved = true;
        return NULL;
    }
    q->kind = KIND_VOTE;
    r->rep->sent++;
    r->outstanding++;
    if (!r->votes_start_ns)
        r->votes_start_ns = now;
    return q;
nomem:
    fail(r, CV_ENOMEM, "out of memory");
    return NULL;
}

static void *on_next(void *ctx, unsigned conn, Canvass__V1__Request *msg)
{
    run_t *r = ctx;
    if (r->phase == PHASE_DONE)
        return NULL;
    uint64_t now = uv_hrtime();
    req_t *q = take_request(r, now);
    if (!q)
        return NULL;
    if (q->sends++ == 0) {
        q->first_ns = now;
    } else if (q->kind == KIND_VOTE) {
        r->rep->retries++;
        if (q->lost)
            r->rep->retries_reconnect++;
        else
            r->rep->retries_unavailable++;
    }
    q->lost = false;
    if (q->kind == KIND_VOTE) {
        canvass__v1__vote__init(&r->vote_msg);
        snprintf(r->user, sizeof r->user, "lg-u%u", q->vote.user);
        r->vote_msg.user_id = r->user;
        r->vote_msg.feature_id = (char *)cv_workload_feature_id(r->w, q->vote.feature);
        r->vote_msg.value = q->vote.value;
        msg->op_case = CANVASS__V1__REQUEST__OP_VOTE;
        msg->vote = &r->vote_msg;
    } else {
        canvass__v1__submit__init(&r->submit_msg);
        snprintf(r->title, sizeof r->title, "loadgen feature %u (run %llu)", q->index,
                 (unsigned long long)r->run_id);
        r->tags[0] = "loadgen";
        r->submit_msg.user_id = "lg-author";
        r->submit_msg.title = r->title;
        r->submit_msg.tags = r->tags;
        r->submit_msg.n_tags = 1;
        msg->op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
        msg->submit = &r->submit_msg;
    }
    return q;
}

/* ---- replies --------------------------------------------------------------------- */

static void delay(run_t *r, req_t *q, uint64_t now)
{
    q->due_ns = now + RETRY_DELAY_NS;
    queue_push(&r->delayed, q);
    if (!uv_is_active((uv_handle_t *)&r->retry))
        arm_retry(r);
}

static void on_submit_reply(run_t *r, req_t *q, const Canvass__V1__Reply *rep, uint64_t now)
{
    if (rep->status == CV_ST_UNAVAILABLE) {
        /* A retried submit may create the feature twice; the spare one gets
         * no votes and is not compared. */
        delay(r, q, now);
        return;
    }
    if (rep->status != CV_ST_OK || rep->result_case != CANVASS__V1__REPLY__RESULT_SUBMITTED) {
        fail(r, CV_EIO, "setup: submit refused: %s: %s", cv_status_name(rep->status),
             rep->error);
        return;
    }
    if (cv_workload_set_feature_id(r->w, q->index, rep->submitted->feature_id) < 0) {
        fail(r, CV_EIO, "setup: the server returned a bad feature id '%.80s'",
             rep->submitted->feature_id);
        return;
    }
    req_free(r, q);
    r->outstanding--;
    r->last_final_ns = now;
    if (++r->setup_done == cv_workload_features(r->w)) {
        r->rep->features_created = r->setup_done;
        r->rep->setup_s = (double)(now - r->start_ns) / 1e9;
        cv_log(CV_LOG_INFO, "msg=\"setup done\" features=%zu seconds=%.3f", r->setup_done,
               r->rep->setup_s);
        enter_votes(r);
    }
}

/* What a final status says about whether the vote was stored. */
static cv_vote_fate_t fate_of(int status)
{
    switch (status) {
    case CV_ST_OK:
        return CV_VOTE_STORED;
    case CV_ST_INVALID:
    case CV_ST_BAD_FRAME:
    case CV_ST_UNAUTHENTICATED:
    case CV_ST_FORBIDDEN:
    case CV_ST_NOT_FOUND:
    case CV_ST_CLOSED:
    case CV_ST_RATE_LIMITED:
        return CV_VOTE_REJECTED;
    default:
        return CV_VOTE_UNKNOWN;
    }
}

/* Notes when the OK count crosses each tenth of --votes, and at the last
 * one computes each tenth's rate into the report. */
static void record_tenth(run_t *r, uint64_t now)
{
    if (!votes_mode(r) || r->o->votes < 10)
        return;
    r->oks++;
    uint64_t tenth = (uint64_t)r->o->votes / 10;
    if (r->oks % tenth || r->oks / tenth > 10)
        return;
    unsigned k = (unsigned)(r->oks / tenth);
    r->tenth_ns[0] = r->votes_start_ns;
    r->tenth_ns[k] = now;
    if (k == 10)
        for (int i = 0; i < 10; i++)
            if (r->tenth_ns[i + 1] > r->tenth_ns[i])
                r->rep->tenth_rate[i] = (double)tenth * 1e9 / (double)(r->tenth_ns[i + 1] -
                                                                         r->tenth_ns[i]);
}

static void on_vote_reply(run_t *r, req_t *q, const Canvass__V1__Reply *rep, uint64_t now)
{
    if (rep->status == CV_ST_UNAVAILABLE) {
        delay(r, q, now);
        return;
    }
    cv_report_t *out = r->rep;
    int st = rep->status >= 0 && rep->status < CV_REPORT_STATUSES - 1 ? (int)rep->status
                                                                       : CV_REPORT_STATUSES - 1;
    out->by_status[st]++;
    out->finished++;
    if (rep->status == CV_ST_OK) {
        cv_hist_add(&out->latency, (now - q->first_ns) / 1000);
        record_tenth(r, now);
        if (rep->result_case == CANVASS__V1__REPLY__RESULT_VOTE_ACK && rep->vote_ack->changed)
            out->changed++;
    } else if (fate_of(rep->status) == CV_VOTE_UNKNOWN || out->by_status[st] == 1) {
        cv_log(CV_LOG_WARN, "msg=\"vote not accepted\" status=%s error=\"%s\" feature=%s",
               cv_status_name(rep->status), rep->error,
               cv_workload_feature_id(r->w, q->vote.feature));
    }
    cv_workload_done(r->w, &q->vote, fate_of(rep->status));
    req_free(r, q);
    r->outstanding--;
    r->last_final_ns = r->last_vote_ns = now;
    if (r->starved) {
        r->starved = false;
        fill_all(r);
    }
    check_done(r);
}

static void on_reply(void *ctx, unsigned conn, void *req, const Canvass__V1__Reply *rep)
{
    run_t *r = ctx;
    req_t *q = req;
    if (r->phase == PHASE_DONE)
        return;
    uint64_t now = uv_hrtime();
    if (q->kind == KIND_SUBMIT)
        on_submit_reply(r, q, rep, now);
    else
        on_vote_reply(r, q, rep, now);
}

static void on_lost(void *ctx, unsigned conn, void *req)
{
    run_t *r = ctx;
    req_t *q = req;
    q->lost = true;
    queue_push(&r->ready, q);
}

static void on_event(void *ctx, unsigned i, cv_conn_event_t ev, const char *why)
{
    run_t *r = ctx;
    switch (ev) {
    case CV_CONN_UP:
        if (r->was_up[i])
            r->rep->reconnects++;
        r->was_up[i] = r->up_now[i] = true;
        break;
    case CV_CONN_DOWN:
        r->rep->conn_errors++;
        snprintf(r->last_error, sizeof r->last_error, "%s", why);
        if (r->up_now[i])
            cv_log(CV_LOG_WARN, "msg=\"connection lost\" conn=%u why=\"%s\"", i, why);
        else
            cv_log(CV_LOG_DEBUG, "msg=\"connection failed\" conn=%u why=\"%s\"", i, why);
        r->up_now[i] = false;
        fill_all(r); /* its requests go out on the others */
        break;
    case CV_CONN_REFUSED:
        fail(r, CV_EIO, "the server refused the Hello: %s", why);
        break;
    case CV_CONN_STRAY:
        r->rep->stray_replies++;
        break;
    }
}

/* ---- timers and signals ------------------------------------------------------------ */

static void on_retry(uv_timer_t *t)
{
    run_t *r = t->data;
    fill_all(r);
    arm_retry(r);
}

/* Arms the retry timer for the delayed queue's head if it is not due yet.
 * A head already due is taken by the next fill: every connection with room
 * fills at once, the others when a reply or a reconnect frees room. */
static void arm_retry(run_t *r)
{
    if (!r->delayed.head || r->phase == PHASE_DONE)
        return;
    uint64_t now = uv_hrtime(), due = r->delayed.head->due_ns;
    if (due > now)
        uv_timer_start(&r->retry, on_retry, (due - now + 999999) / 1000000, 0);
}

static void draw_progress(run_t *r, uint64_t now)
{
    cv_progress_state_t st = {
        .setup = r->phase == PHASE_SETUP,
        .features_done = r->setup_done,
        .features = cv_workload_features(r->w),
        .ok = r->rep->by_status[CV_ST_OK],
        .target = votes_mode(r) ? r->o->votes : 0,
        .duration_s = r->o->duration_s,
        .elapsed_s = (double)(now - r->start_ns) / 1e9,
        .voting_s = r->votes_start_ns ? (double)(now - r->votes_start_ns) / 1e9 : 0,
        .draining = r->phase == PHASE_DRAIN ? r->outstanding : 0,
    };
    cv_progress_draw(&r->progress, stderr, now, &st);
}

static void on_tick(uv_timer_t *t)
{
    run_t *r = t->data;
    uint64_t now = uv_hrtime();
    if (now - r->last_final_ns > (uint64_t)(r->o->stall_s * 1e9)) {
        fail(r, CV_ETIMEOUT, "no answer from %s for %.0f s (%llu requests outstanding%s%s)",
             r->o->server, r->o->stall_s, (unsigned long long)r->outstanding,
             r->last_error[0] ? "; last connection error: " : "", r->last_error);
        return;
    }
    if (r->o->progress)
        draw_progress(r, now);
}

static void on_pace(uv_timer_t *t)
{
    run_t *r = t->data;
    if (r->phase == PHASE_VOTES)
        fill_all(r);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    run_t *r = s->data;
    r->rep->interrupted = true;
    if (++r->interrupts > 1 || r->phase == PHASE_SETUP) {
        fail(r, CV_EIO, "interrupted with %llu requests outstanding",
             (unsigned long long)r->outstanding);
        return;
    }
    cv_log(CV_LOG_INFO, "msg=\"interrupted: draining; interrupt again to stop at once\" "
                        "outstanding=%llu",
           (unsigned long long)r->outstanding);
    enter_drain(r);
}

/* ---- the run ------------------------------------------------------------------------- */

int cv_run(const cv_run_opts_t *opts, cv_workload_t *w, cv_report_t *rep)
{
    static const cv_link_ops_t ops = {on_next, on_reply, on_lost, on_event};
    run_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(rep->failure, sizeof rep->failure, "out of memory");
        return CV_ENOMEM;
    }
    r->o = opts;
    r->be = opts->backend ? opts->backend : cv_backend_find("canvass");
    r->w = w;
    r->rep = rep;
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        snprintf(rep->failure, sizeof rep->failure, "cannot start an event loop: %s",
                 uv_strerror(rc));
        free(r);
        return CV_EIO;
    }
    r->nconns = opts->connections;
    r->conns = calloc(r->nconns, sizeof *r->conns);
    r->was_up = calloc(r->nconns, sizeof *r->was_up);
    r->up_now = calloc(r->nconns, sizeof *r->up_now);
    for (unsigned i = 0; r->conns && i < r->nconns; i++) {
        cv_link_opts_t lo = {opts->server, opts->depth, i, opts->app_key, &ops, r};
        if (!(r->conns[i] = r->be->conn_new(&r->loop, &lo))) {
            if (i == 0) {
                snprintf(rep->failure, sizeof rep->failure,
                         "cannot use the %s server '%s' (see the log above)", r->be->name,
                         opts->server);
                r->rc = CV_EINVAL;
                goto out;
            }
            break;
        }
    }
    if (!r->conns || !r->was_up || !r->up_now || !r->conns[r->nconns - 1]) {
        snprintf(rep->failure, sizeof rep->failure, "out of memory");
        r->rc = CV_ENOMEM;
        r->handles_closed = true; /* none of them was initialised */
        for (unsigned i = 0; r->conns && i < r->nconns; i++)
            if (r->conns[i])
                r->be->stop(r->conns[i]);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        goto out;
    }

    uv_timer_init(&r->loop, &r->tick);
    uv_timer_init(&r->loop, &r->deadline);
    uv_timer_init(&r->loop, &r->retry);
    uv_timer_init(&r->loop, &r->pace);
    uv_signal_init(&r->loop, &r->sigint);
    r->tick.data = r->deadline.data = r->retry.data = r->pace.data = r->sigint.data = r;
    uv_signal_start(&r->sigint, on_sigint, SIGINT);
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    if (opts->rate > 0)
        uv_timer_start(&r->pace, on_pace, 1, 1);
    r->start_ns = r->last_final_ns = uv_hrtime();
    r->run_id = (uint64_t)time(NULL);
    if (opts->setup)
        r->phase = PHASE_SETUP;
    else
        enter_votes(r);
    for (unsigned i = 0; i < r->nconns; i++)
        r->be->start(r->conns[i]);
    uv_run(&r->loop, UV_RUN_DEFAULT);

out:
    for (unsigned i = 0; r->conns && i < r->nconns; i++)
        r->be->destroy(&r->conns[i]);
    if (uv_loop_close(&r->loop) != 0)
        cv_log(CV_LOG_ERROR, "msg=\"event loop closed with handles open\"");
    rc = r->rc;
    while (r->slabs) {
        slab_t *s = r->slabs;
        r->slabs = s->next;
        free(s);
    }
    free(r->conns);
    free(r->was_up);
    free(r->up_now);
    free(r);
    return rc;
}
