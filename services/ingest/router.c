/* router: per-shard batching, the pending table, resends and acks (see
 * router.h).
 *
 * Each accepted command is a cv__cmd_t that owns the decoded client request:
 * its ShardCmd points straight into that request's strings, so nothing is
 * copied between the client frame and the shard batch.  A command sits in
 * three structures at once until it completes:
 *   - by_seq, a hash on seq, to match acks;
 *   - by_age, a list in arrival order, so the deadline walk stops at the
 *     first command still within its deadline;
 *   - by_sent, a list in order of last transmission, so the resend walk
 *     stops at the first command sent less than resend_ms ago.
 * Each shard also has an outbox: the seqs queued for its next TallyRequest.
 * The outbox holds seqs rather than pointers because a queued command may
 * complete (an ack for an earlier transmission, or the deadline) before the
 * flush; the flush skips seqs no longer in by_seq.
 *
 * When to resend.  A shard handles one sender's TallyRequests in order and
 * answers each, so a command unacknowledged after resend_ms is resent only
 * when the shard has answered its request or a later one without acking
 * it (the request was lost, e.g. in a reconnect, or refused), or when the
 * shard has answered nothing at all for resend_ms (down, or unreachable).
 * A shard that is answering, but has not reached the command's request yet,
 * is merely behind: resending to it would only add to its backlog, so the
 * command waits, and the deadline still bounds how long.
 *
 * Times are the loop's monotonic milliseconds (uv_now), so a wall-clock step
 * neither fires nor delays resends and deadlines.  Stamps use the wall clock
 * through cv_clock, which never goes backwards.
 *
 * Redirects.  A vote for a merged feature is acknowledged OK with
 * redirect_to = the merge target and nothing stored.  The command then
 * becomes a new pending entry (new seq, so a late ack for the old one is
 * ignored) for the shard owning the target, with the same stamp, the same
 * deadline and vote.feature_id replaced; after CV__REDIRECT_HOPS such hops
 * it fails.  The client's VoteAck names the feature that finally took the
 * vote.  Redirects are found while draining, possibly during the flush, so
 * the flush goes round again while a redirect has filled an outbox.
 *
 * ZeroMQ's notification fd is edge-triggered and its state is only refreshed
 * when the socket is asked (ZMQ_EVENTS, send, recv).  Any such call can
 * swallow the edge libuv is waiting for, so every send is followed by a drain,
 * and cv_router_flush drains every socket once per loop turn.
 */
#include "router.h"
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_validate.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Out of memory while growing the hash is reported, not fatal. */
static int cv__hash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (cv__hash_oom = 1)
#include <uthash.h>
#include <utlist.h>

/* At most this many commands per TallyRequest: a resend after a shard outage
 * may hold every command of the last seconds, and one multi-megabyte message
 * would stall the shard's other senders for the whole of its commit. */
#define CV__BATCH_MAX 4096

/* The resend/deadline timer period, at most; shorter when resend_ms is. */
#define CV__TICK_MS 100

/* The longest merge chain a vote follows (A merged into B merged into C
 * ... is one hop per merge). */
#define CV__REDIRECT_HOPS 4

typedef struct cv__cmd {
    uint64_t seq;
    uint32_t shard;
    bool queued;       /* in its shard's outbox, awaiting the flush */
    uint64_t first_ms; /* loop time of arrival: the deadline counts from here */
    uint64_t sent_ms;  /* loop time of the last transmission */
    uint64_t sent_corr; /* corr of the TallyRequest that last carried it */
    void *owner;
    Canvass__V1__Request *req;  /* owned; cmd and rec borrow its strings */
    Canvass__V1__ShardCmd cmd;
    Canvass__V1__FeatureRecord rec; /* submit only */
    char feature_id[CV_FEATURE_ID_CAP];
    char *voted;      /* vote redirected: the feature the client voted for, owned */
    unsigned hops;    /* redirects followed so far */
    UT_hash_handle hh;
    struct cv__cmd *age_prev, *age_next;
    struct cv__cmd *sent_prev, *sent_next;
} cv__cmd_t;

typedef struct {
    cv_router_t *router;
    uint32_t index;
    cv_sock_t *sock;
    int fd; /* ZeroMQ's notification fd, owned by the socket */
    uv_poll_t poll;
    bool poll_init;
    uint64_t *outbox; /* seqs to send at the next flush */
    size_t nout, capout;
    uint64_t reply_corr; /* highest corr the shard has answered */
    uint64_t reply_ms;   /* loop time of its last answer; 0 = never */
    bool silent;         /* reported as not answering (logged once per outage) */
} cv__shard_t;

struct cv_router {
    uv_loop_t *loop;
    cv_router_opts_t opts;
    cv_clock_t clock;
    uint64_t next_seq;
    uint64_t next_corr;
    cv__shard_t *shards;
    cv__cmd_t *by_seq;
    cv__cmd_t *by_age;
    cv__cmd_t *by_sent;
    size_t npending;
    uv_timer_t tick;
    bool tick_init;
    int open_handles; /* initialised handles whose close callback has not run */
    bool closing;
    Canvass__V1__ShardCmd **batch; /* scratch: CV__BATCH_MAX pointers */
};

/* ---- completion ------------------------------------------------------------ */

/* Removes c from the lists (not by_seq), reports res to the owner and
 * frees c. */
static void finish(cv_router_t *r, cv__cmd_t *c, const cv_router_result_t *res)
{
    DL_DELETE2(r->by_age, c, age_prev, age_next);
    DL_DELETE2(r->by_sent, c, sent_prev, sent_next);
    r->npending--;
    r->opts.done(c->owner, c->req->request_id, c->req->op_case, res);
    canvass__v1__request__free_unpacked(c->req, NULL);
    free(c->voted);
    free(c);
}

/* Removes c from every structure, reports res to the owner and frees c. */
static void complete(cv_router_t *r, cv__cmd_t *c, const cv_router_result_t *res)
{
    HASH_DEL(r->by_seq, c);
    finish(r, c, res);
}

static void complete_unavailable(cv_router_t *r, cv__cmd_t *c, const char *why)
{
    cv_router_result_t res = {
        .status = CV_ST_UNAVAILABLE,
        .error = why,
        .feature_id = c->cmd.op_case == CANVASS__V1__SHARD_CMD__OP_CREATE
                          ? c->feature_id
                          : c->req->vote->feature_id,
    };
    complete(r, c, &res);
}

void cv_router_abort(cv_router_t *r, const char *why)
{
    while (r->by_age)
        complete_unavailable(r, r->by_age, why);
}

/* ---- sending --------------------------------------------------------------- */

/* Appends c's seq to its shard's outbox.  Returns 0 or CV_ENOMEM. */
static int enqueue(cv_router_t *r, cv__cmd_t *c)
{
    cv__shard_t *s = &r->shards[c->shard];
    if (c->queued)
        return 0;
    if (s->nout == s->capout) {
        size_t cap = s->capout ? s->capout * 2 : 256;
        uint64_t *o = realloc(s->outbox, cap * sizeof *o);
        if (!o)
            return CV_ENOMEM;
        s->outbox = o;
        s->capout = cap;
    }
    s->outbox[s->nout++] = c->seq;
    c->queued = true;
    return 0;
}

static void drain(cv__shard_t *s);

/* Sends n commands to shard s as one TallyRequest.  A failed send is only
 * logged: the commands stay pending and the resend timer tries again. */
static void send_batch(cv__shard_t *s, uint64_t corr, Canvass__V1__ShardCmd **cmds, size_t n)
{
    Canvass__V1__CmdBatch batch = CANVASS__V1__CMD_BATCH__INIT;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    batch.n_cmds = n;
    batch.cmds = cmds;
    req.corr = corr;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_BATCH;
    req.batch = &batch;

    size_t len;
    uint8_t *buf = cv_codec_pack(&req.base, &len);
    if (!buf) {
        cv_log(CV_LOG_ERROR, "msg=\"out of memory packing a batch\" shard=%" PRIu32 " cmds=%zu",
               s->index, n);
        return;
    }
    const void *parts[1] = {buf};
    int rc = cv_sock_send(s->sock, 1, parts, &len, 1);
    free(buf);
    if (rc < 0)
        cv_log(CV_LOG_WARN, "msg=\"batch not sent; will resend\" shard=%" PRIu32 " cmds=%zu err=\"%s\"",
               s->index, n, cv_strerror(rc));
    else
        cv_log(CV_LOG_DEBUG, "msg=\"batch sent\" shard=%" PRIu32 " corr=%" PRIu64 " cmds=%zu bytes=%zu",
               s->index, req.corr, n, len);
    drain(s);
}

/* Sends everything in s's outbox, CV__BATCH_MAX commands per message. */
static void send_outbox(cv__shard_t *s)
{
    cv_router_t *r = s->router;
    uint64_t now = uv_now(r->loop);
    uint64_t corr = 0;
    size_t n = 0;
    for (size_t i = 0; i < s->nout; i++) {
        cv__cmd_t *c;
        HASH_FIND(hh, r->by_seq, &s->outbox[i], sizeof(uint64_t), c);
        if (!c || !c->queued)
            continue; /* completed since it was queued */
        if (n == 0)
            corr = ++r->next_corr;
        c->queued = false;
        c->sent_ms = now;
        c->sent_corr = corr;
        DL_DELETE2(r->by_sent, c, sent_prev, sent_next);
        DL_APPEND2(r->by_sent, c, sent_prev, sent_next);
        r->batch[n++] = &c->cmd;
        if (n == CV__BATCH_MAX) {
            send_batch(s, corr, r->batch, n);
            n = 0;
        }
    }
    s->nout = 0;
    if (n)
        send_batch(s, corr, r->batch, n);
}

/* ---- receiving ------------------------------------------------------------- */

static void complete_internal(cv_router_t *r, cv__cmd_t *c, const char *why, bool hashed)
{
    cv_router_result_t res = {
        .status = CV_ST_INTERNAL, .error = why, .feature_id = c->req->vote->feature_id};
    if (hashed)
        complete(r, c, &res);
    else
        finish(r, c, &res);
}

/* Sends vote c, acknowledged with redirect_to = target, on to the shard
 * owning target (see the top of the file), or fails it with INTERNAL. */
static void redirect(cv_router_t *r, cv__cmd_t *c, const char *target)
{
    Canvass__V1__Vote *v = c->req->vote;
    const char *voted = c->voted ? c->voted : v->feature_id;
    char why[192];
    if (c->hops >= CV__REDIRECT_HOPS) {
        cv_log(CV_LOG_WARN, "msg=\"merge chain too long\" feature=%s last=%s hops=%u", voted,
               target, c->hops);
        snprintf(why, sizeof why, "merge chain of '%s' is too long", voted);
        complete_internal(r, c, why, true);
        return;
    }
    size_t tlen = strlen(target);
    char *copy = cv_feature_id_valid(target, tlen) ? strndup(target, tlen) : NULL;
    if (!copy) {
        snprintf(why, sizeof why, "feature '%s' was merged, but its target could not be used",
                 voted);
        cv_log(CV_LOG_WARN, "msg=\"unusable redirect\" feature=%s target_len=%zu", voted, tlen);
        complete_internal(r, c, why, true);
        return;
    }
    /* The request owns vote.feature_id: the first one is kept for error
     * texts, a later intermediate one is freed. */
    if (c->voted)
        free(v->feature_id);
    else
        c->voted = v->feature_id;
    v->feature_id = copy;
    c->hops++;

    HASH_DEL(r->by_seq, c);
    c->seq = c->cmd.seq = ++r->next_seq;
    c->shard = cv_shard_for_feature(copy, tlen, r->opts.nshards);
    c->queued = false; /* an outbox entry under the old seq is skipped */
    cv__hash_oom = 0;
    HASH_ADD(hh, r->by_seq, seq, sizeof(uint64_t), c);
    if (cv__hash_oom) {
        complete_internal(r, c, "ingest is out of memory", false);
        return;
    }
    if (enqueue(r, c) < 0) {
        complete_internal(r, c, "ingest is out of memory", true);
        return;
    }
    cv_log(CV_LOG_DEBUG, "msg=\"vote redirected\" feature=%s to=%s shard=%" PRIu32 " hops=%u",
           voted, copy, c->shard, c->hops);
}

static void on_ack(cv__shard_t *s, const Canvass__V1__ShardAck *ack)
{
    cv_router_t *r = s->router;
    cv__cmd_t *c;
    HASH_FIND(hh, r->by_seq, &ack->seq, sizeof(uint64_t), c);
    if (!c) {
        /* Already acknowledged (a resend was acked twice) or past its
         * deadline: the client has had its answer. */
        cv_log(CV_LOG_DEBUG, "msg=\"ack for no pending command\" shard=%" PRIu32 " seq=%" PRIu64,
               s->index, ack->seq);
        return;
    }
    if (c->shard != s->index) {
        cv_log(CV_LOG_WARN, "msg=\"ack from the wrong shard ignored\" shard=%" PRIu32
               " seq=%" PRIu64 " owner=%" PRIu32, s->index, ack->seq, c->shard);
        return;
    }
    if (c->cmd.op_case == CANVASS__V1__SHARD_CMD__OP_VOTE && ack->status == CV_ST_OK &&
        ack->redirect_to && *ack->redirect_to) {
        redirect(r, c, ack->redirect_to);
        return;
    }
    /* A shard's texts go on to clients: never with bytes a strict decoder
     * would refuse the whole reply for. */
    char *clean = cv_utf8_sanitized(ack->error);
    cv_router_result_t res = {.status = ack->status,
                              .error = clean ? clean : ack->error ? ack->error : ""};
    if ((unsigned)ack->status > CV_ST_INTERNAL) {
        /* A status this build does not know: never forward it blind. */
        res.status = CV_ST_INTERNAL;
        res.error = "shard answered with an unknown status";
    } else if (res.status != CV_ST_OK && !*res.error) {
        res.error = cv_status_name(res.status);
    }
    if (c->cmd.op_case == CANVASS__V1__SHARD_CMD__OP_CREATE) {
        res.feature_id = c->feature_id;
    } else {
        const char *fid = ack->feature_id;
        res.feature_id = fid && cv_feature_id_valid(fid, strlen(fid)) ? fid
                                                                     : c->req->vote->feature_id;
        res.changed = ack->changed;
        res.cycle = ack->cycle;
    }
    complete(r, c, &res);
    free(clean);
}

static void on_reply(cv__shard_t *s, const uint8_t *data, size_t len)
{
    Canvass__V1__TallyReply *rep = canvass__v1__tally_reply__unpack(NULL, len, data);
    if (!rep) {
        cv_log(CV_LOG_WARN, "msg=\"undecodable reply from shard\" shard=%" PRIu32 " bytes=%zu",
               s->index, len);
        return;
    }
    if (rep->corr > s->reply_corr && rep->corr <= s->router->next_corr)
        s->reply_corr = rep->corr;
    s->reply_ms = uv_now(s->router->loop);
    if (s->silent) {
        s->silent = false;
        cv_log(CV_LOG_INFO, "msg=\"shard answering again\" shard=%" PRIu32, s->index);
    }
    if (rep->status != CV_ST_OK)
        cv_log(CV_LOG_WARN, "msg=\"shard refused a batch; will resend\" shard=%" PRIu32
               " corr=%" PRIu64 " status=%s error=\"%s\"", s->index, rep->corr,
               cv_status_name(rep->status), rep->error ? rep->error : "");
    if (rep->result_case == CANVASS__V1__TALLY_REPLY__RESULT_ACKS && rep->acks) {
        for (size_t i = 0; i < rep->acks->n_acks; i++)
            on_ack(s, rep->acks->acks[i]);
    }
    canvass__v1__tally_reply__free_unpacked(rep, NULL);
}

/* Reads every message the socket holds.  Looping until ZMQ_EVENTS says
 * "nothing readable" is what re-arms the edge-triggered fd. */
static void drain(cv__shard_t *s)
{
    while (cv_sock_readable(s->sock)) {
        cv_parts_t parts;
        int rc = cv_sock_recv(s->sock, &parts, 0);
        if (rc == CV_EAGAIN)
            break;
        if (rc < 0) {
            cv_log(CV_LOG_WARN, "msg=\"receive from shard failed\" shard=%" PRIu32 " err=\"%s\"",
                   s->index, cv_strerror(rc));
            if (rc == CV_EIO)
                break;
            continue;
        }
        if (parts.n == 1)
            on_reply(s, parts.data[0], parts.size[0]);
        else
            cv_log(CV_LOG_WARN, "msg=\"shard reply with unexpected parts ignored\" shard=%" PRIu32
                   " parts=%d", s->index, parts.n);
        cv_parts_free(&parts);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    cv__shard_t *s = h->data;
    if (status < 0)
        cv_log(CV_LOG_WARN, "msg=\"poll on shard socket failed\" shard=%" PRIu32 " err=\"%s\"",
               s->index, uv_strerror(status));
    drain(s);
}

/* ---- timer: deadlines and resends ------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    cv_router_t *r = t->data;
    uint64_t now = uv_now(r->loop);
    char why[128];

    while (r->by_age && now - r->by_age->first_ms >= r->opts.deadline_ms) {
        cv__cmd_t *c = r->by_age;
        snprintf(why, sizeof why, "shard %" PRIu32 " did not commit within %" PRIu64
                 " ms; safe to retry", c->shard, r->opts.deadline_ms);
        cv_log(CV_LOG_DEBUG, "msg=\"command past its deadline\" shard=%" PRIu32 " seq=%" PRIu64,
               c->shard, c->seq);
        complete_unavailable(r, c, why);
    }

    size_t resent = 0;
    for (cv__cmd_t *c = r->by_sent; c && now - c->sent_ms >= r->opts.resend_ms; c = c->sent_next) {
        cv__shard_t *s = &r->shards[c->shard];
        bool overtaken = s->reply_corr >= c->sent_corr;
        bool silent = now - s->reply_ms >= r->opts.resend_ms;
        if (silent && !s->silent) {
            s->silent = true;
            cv_log(CV_LOG_WARN, "msg=\"shard not answering; resending\" shard=%" PRIu32
                   " pending=%zu", s->index, r->npending);
        }
        if ((overtaken || silent) && !c->queued && enqueue(r, c) == 0)
            resent++;
    }
    if (resent)
        cv_log(CV_LOG_DEBUG, "msg=\"resending unacknowledged commands\" cmds=%zu", resent);
    /* The outboxes go out in this turn's flush (the check phase). */
}

/* ---- public ---------------------------------------------------------------- */

int cv_router_send(cv_router_t *r, Canvass__V1__Request **req_p, void *owner)
{
    Canvass__V1__Request *req = *req_p;
    if (r->closing)
        return CV_ECLOSED;
    if (req->op_case != CANVASS__V1__REQUEST__OP_VOTE &&
        req->op_case != CANVASS__V1__REQUEST__OP_SUBMIT)
        return CV_EINVAL;

    cv__cmd_t *c = calloc(1, sizeof *c);
    if (!c)
        return CV_ENOMEM;
    canvass__v1__shard_cmd__init(&c->cmd);
    c->seq = c->cmd.seq = ++r->next_seq;
    c->cmd.stamp = cv_clock_stamp(&r->clock);
    c->owner = owner;
    c->req = req;

    const char *fid;
    if (req->op_case == CANVASS__V1__REQUEST__OP_VOTE) {
        c->cmd.op_case = CANVASS__V1__SHARD_CMD__OP_VOTE;
        c->cmd.vote = req->vote;
        fid = req->vote->feature_id;
    } else {
        const Canvass__V1__Submit *sub = req->submit;
        cv_feature_id_format(c->cmd.stamp, c->feature_id);
        canvass__v1__feature_record__init(&c->rec);
        c->rec.feature_id = c->feature_id;
        c->rec.title = sub->title;
        c->rec.body = sub->body;
        c->rec.n_tags = sub->n_tags;
        c->rec.tags = sub->tags;
        c->rec.author = sub->user_id;
        c->rec.created_ms = cv_stamp_ms(c->cmd.stamp);
        c->rec.status = (char *)"open"; /* packing only reads it */
        c->cmd.op_case = CANVASS__V1__SHARD_CMD__OP_CREATE;
        c->cmd.create = &c->rec;
        fid = c->feature_id;
    }
    c->shard = cv_shard_for_feature(fid, strlen(fid), r->opts.nshards);

    cv__hash_oom = 0;
    HASH_ADD(hh, r->by_seq, seq, sizeof(uint64_t), c);
    if (cv__hash_oom || enqueue(r, c) < 0) {
        if (!cv__hash_oom)
            HASH_DEL(r->by_seq, c);
        free(c);
        return CV_ENOMEM;
    }
    c->first_ms = c->sent_ms = uv_now(r->loop);
    DL_APPEND2(r->by_age, c, age_prev, age_next);
    DL_APPEND2(r->by_sent, c, sent_prev, sent_next);
    r->npending++;
    *req_p = NULL;
    return 0;
}

void cv_router_flush(cv_router_t *r)
{
    /* A drain may redirect votes into an outbox this pass has already sent:
     * go round again for those (bounded: a shard answering without end
     * must not hold the loop). */
    for (int pass = 0; pass <= CV__REDIRECT_HOPS; pass++) {
        for (uint32_t i = 0; i < r->opts.nshards; i++) {
            cv__shard_t *s = &r->shards[i];
            if (s->nout)
                send_outbox(s);
            drain(s);
        }
        bool queued = false;
        for (uint32_t i = 0; i < r->opts.nshards; i++)
            queued = queued || r->shards[i].nout > 0;
        if (!queued)
            break;
    }
}

size_t cv_router_pending(const cv_router_t *r)
{
    return r->npending;
}

static void on_poll_closed(uv_handle_t *h)
{
    cv__shard_t *s = h->data;
    s->router->open_handles--;
}

static void on_tick_closed(uv_handle_t *h)
{
    cv_router_t *r = h->data;
    r->open_handles--;
}

void cv_router_close(cv_router_t *r)
{
    if (r->closing)
        return;
    cv_router_abort(r, "ingest is shutting down; safe to retry");
    r->closing = true;
    for (uint32_t i = 0; i < r->opts.nshards; i++) {
        if (r->shards[i].poll_init)
            uv_close((uv_handle_t *)&r->shards[i].poll, on_poll_closed);
    }
    if (r->tick_init)
        uv_close((uv_handle_t *)&r->tick, on_tick_closed);
}

static void free_router(cv_router_t *r)
{
    for (uint32_t i = 0; r->shards && i < r->opts.nshards; i++) {
        cv_sock_destroy(&r->shards[i].sock);
        free(r->shards[i].outbox);
    }
    free(r->shards);
    free(r->batch);
    free(r);
}

void cv_router_destroy(cv_router_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    cv_router_t *r = *r_p;
    /* A handle still open would be freed under libuv's feet: a bug. */
    assert(r->open_handles == 0 && r->npending == 0);
    free_router(r);
    *r_p = NULL;
}

cv_router_t *cv_router_new(uv_loop_t *loop, cv_bus_t *bus, const cv_router_opts_t *opts)
{
    assert(opts->nshards >= 1 && opts->done);
    cv_router_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->opts = *opts;
    r->opts.endpoints = NULL; /* borrowed; only needed here */
    cv_clock_init(&r->clock, opts->node);
    r->shards = calloc(opts->nshards, sizeof *r->shards);
    r->batch = malloc(CV__BATCH_MAX * sizeof *r->batch);
    if (!r->shards || !r->batch) {
        free_router(r);
        return NULL;
    }

    for (uint32_t i = 0; i < opts->nshards; i++) {
        cv__shard_t *s = &r->shards[i];
        s->router = r;
        s->index = i;
        s->sock = cv_sock_new(bus, CV_SOCK_DEALER);
        if (!s->sock || cv_sock_connect(s->sock, opts->endpoints[i]) < 0 ||
            (s->fd = cv_sock_fd(s->sock)) < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"cannot set up the shard socket\" shard=%" PRIu32
                   " endpoint=\"%s\"", i, opts->endpoints[i]);
            free_router(r);
            return NULL;
        }
    }

    /* From here on, handles exist: failures close them and let the loop
     * finish the close before the memory goes. */
    for (uint32_t i = 0; i < opts->nshards; i++) {
        cv__shard_t *s = &r->shards[i];
        int rc = uv_poll_init(loop, &s->poll, s->fd);
        if (rc == 0) {
            s->poll_init = true;
            r->open_handles++;
            s->poll.data = s;
            rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
        }
        if (rc < 0) {
            cv_log(CV_LOG_ERROR, "msg=\"cannot poll the shard socket\" shard=%" PRIu32 " err=\"%s\"",
                   i, uv_strerror(rc));
            cv_router_close(r);
            while (r->open_handles > 0 && uv_run(loop, UV_RUN_ONCE))
                ;
            free_router(r);
            return NULL;
        }
    }
    uv_timer_init(loop, &r->tick);
    r->tick_init = true;
    r->open_handles++;
    r->tick.data = r;
    uint64_t period = opts->resend_ms < CV__TICK_MS ? opts->resend_ms : CV__TICK_MS;
    if (opts->deadline_ms < period)
        period = opts->deadline_ms;
    uv_timer_start(&r->tick, on_tick, period ? period : 1, period ? period : 1);
    return r;
}
