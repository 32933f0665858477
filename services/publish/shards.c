/* shards: publish's DEALER sockets to the tally shards and the gather of
 * their standings (see shards.h).  Everything a shard sends is outside input:
 * a reply that does not decode, has extra frames or a stale correlation id
 * is logged and dropped, never trusted.
 *
 * A reply is routed on its envelope alone (wire.h), then decoded the way
 * its taker needs it: for ranking (closes, live standings for a ranked
 * list) by wire.h, whose cost is a few allocations for a whole shard; for
 * everything else by protobuf-c, whole. */
#include "shards.h"
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers to a close.  A shard that closed cycle N and answered has moved on
 * to N+1: asked to close N again it answers with its standings of now,
 * votes of N+1 included.  So the first answer of each shard to the close of
 * N is kept (held) until the close succeeds, across failed attempts and
 * including answers that arrive late, after their attempt gave up; a retry
 * only asks the shards that have not answered yet.  Every attempt to close
 * N carries the same correlation id, close_corr(N), which is how a late
 * answer is recognised; other exchanges count corr up from 1 and never
 * reach CLOSE_CORR_FLAG. */
#define CLOSE_CORR_FLAG (1ULL << 63)

/* Where an exchange puts shard i's answer: one of the two, by the
 * exchange's kind. */
typedef struct {
    Canvass__V1__TallyReply **full;   /* decoded whole (protobuf-c) */
    pub_wire_standings_t **standings; /* decoded for ranking (wire.h) */
} slot_t;

struct pub_shards {
    int n;
    cv_sock_t *socks[PUB_SHARDS_MAX];
    uint64_t corr;       /* the last correlation id used (other than closes) */
    uint64_t held_cycle; /* the close whose answers are held; 0: none */
    pub_wire_standings_t *held[PUB_SHARDS_MAX];
};

static uint64_t close_corr(uint64_t cycle)
{
    return CLOSE_CORR_FLAG | cycle;
}

/* Drops the held answers (and what they were for). */
static void held_clear(pub_shards_t *sh)
{
    pub_shards_standings_free(sh->held, sh->n);
    sh->held_cycle = 0;
}

pub_shards_t *pub_shards_new(cv_bus_t *bus, const char *endpoints, char *err, size_t errlen)
{
    pub_shards_t *sh = calloc(1, sizeof *sh);
    char *list = strdup(endpoints);
    if (!sh || !list) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Walk the list by hand: strtok would silently skip empty entries. */
    char *p = list;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p) {
            snprintf(err, errlen, "empty endpoint in --tally '%s'", endpoints);
            goto fail;
        }
        if (sh->n == PUB_SHARDS_MAX) {
            snprintf(err, errlen, "--tally lists more than %d shards, at most %d are supported",
                     PUB_SHARDS_MAX, PUB_SHARDS_MAX);
            goto fail;
        }
        cv_sock_t *s = cv_sock_new(bus, CV_SOCK_DEALER);
        if (!s) {
            snprintf(err, errlen, "cannot create a socket for shard %d", sh->n);
            goto fail;
        }
        sh->socks[sh->n++] = s;
        if (cv_sock_connect(s, p) < 0) {
            snprintf(err, errlen, "cannot connect to shard %d at '%s'", sh->n - 1, p);
            goto fail;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    free(list);
    return sh;

fail:
    free(list);
    pub_shards_destroy(&sh);
    return NULL;
}

void pub_shards_destroy(pub_shards_t **sh_p)
{
    if (!sh_p || !*sh_p)
        return;
    held_clear(*sh_p);
    for (int i = 0; i < (*sh_p)->n; i++)
        cv_sock_destroy(&(*sh_p)->socks[i]);
    free(*sh_p);
    *sh_p = NULL;
}

int pub_shards_count(const pub_shards_t *sh)
{
    return sh->n;
}

cv_sock_t *pub_shards_sock(pub_shards_t *sh, int i)
{
    return sh->socks[i];
}

void pub_shards_replies_free(Canvass__V1__TallyReply **replies, int n)
{
    for (int i = 0; i < n; i++) {
        if (replies[i])
            canvass__v1__tally_reply__free_unpacked(replies[i], NULL);
        replies[i] = NULL;
    }
}

void pub_shards_standings_free(pub_wire_standings_t **replies, int n)
{
    for (int i = 0; i < n; i++)
        pub_wire_standings_destroy(&replies[i]);
}

/* True when an answer of shard i with this envelope is one to the held
 * close that is worth holding: the first, and a successful one (a refusal
 * is asked again). */
static int holds(pub_shards_t *sh, int i, const pub_wire_head_t *h)
{
    return sh->held_cycle && h->corr == close_corr(sh->held_cycle) && !sh->held[i] &&
           h->status == CV_ST_OK && h->result == PUB_WIRE_RESULT_STANDINGS;
}

/* Decodes the frame into the slot; 0, or -1 (logged) when it does not
 * decode. */
static int decode_into(int i, const uint8_t *data, size_t len, slot_t slot)
{
    int rc;
    if (slot.standings) {
        rc = pub_wire_standings_decode(data, len, slot.standings);
    } else {
        *slot.full = canvass__v1__tally_reply__unpack(NULL, len, data);
        rc = *slot.full ? 0 : CV_EDECODE;
    }
    if (rc < 0)
        cv_log(CV_LOG_WARN, "msg=\"dropped shard message\" shard=%d reason=\"%s\" bytes=%zu", i,
               cv_strerror(rc), len);
    return rc < 0 ? -1 : 0;
}

/* Reads everything waiting on shard i: the first reply carrying corr goes
 * into `slot` (when it has a place and it is empty), a late answer to the
 * held close is held; the rest is dropped.  Returns how many were
 * dropped. */
static int take_replies(pub_shards_t *sh, int i, uint64_t corr, slot_t slot)
{
    cv_parts_t parts;
    int rc, dropped = 0;
    while ((rc = cv_sock_recv(sh->socks[i], &parts, 0)) != CV_EAGAIN) {
        if (rc < 0) {
            cv_log(CV_LOG_WARN, "msg=\"shard receive failed\" shard=%d err=\"%s\"", i,
                   cv_strerror(rc));
            if (rc == CV_EIO)
                return dropped;
            continue;
        }
        pub_wire_head_t h;
        if (parts.n != 1) {
            cv_log(CV_LOG_WARN, "msg=\"dropped shard message\" shard=%d reason=\"%d frames\"", i,
                   parts.n);
            rc = -1;
        } else if (pub_wire_reply_head(parts.data[0], parts.size[0], &h) < 0) {
            cv_log(CV_LOG_WARN,
                   "msg=\"dropped shard message\" shard=%d reason=undecodable bytes=%zu", i,
                   parts.size[0]);
            rc = -1;
        } else if (h.corr == corr &&
                   (slot.full ? !*slot.full : slot.standings && !*slot.standings)) {
            rc = decode_into(i, parts.data[0], parts.size[0], slot);
        } else if (slot.standings != &sh->held[i] && holds(sh, i, &h)) {
            rc = decode_into(i, parts.data[0], parts.size[0], (slot_t){NULL, &sh->held[i]});
            if (rc == 0)
                cv_log(CV_LOG_INFO, "msg=\"late answer to a close held\" shard=%d cycle=%llu", i,
                       (unsigned long long)sh->held_cycle);
        } else {
            cv_log(CV_LOG_DEBUG, "msg=\"dropped stale shard reply\" shard=%d corr=%llu want=%llu",
                   i, (unsigned long long)h.corr, (unsigned long long)corr);
            rc = -1;
        }
        cv_parts_free(&parts);
        dropped += rc < 0;
    }
    return dropped;
}

int pub_shards_for_feature(const pub_shards_t *sh, const char *feature_id)
{
    return (int)cv_shard_for_feature(feature_id, strlen(feature_id), (uint32_t)sh->n);
}

/* Sends req with correlation id corr to every shard i with want[i] set and
 * waits until each has answered (its slot filled) or timeout_ms has passed.
 * The slots of wanted shards must be empty on entry; the others are not
 * touched.  Returns 0 or CV_ENOMEM (nothing sent). */
static int exchange(pub_shards_t *sh, Canvass__V1__TallyRequest *req, uint64_t corr,
                    const int *want, long timeout_ms, const slot_t *slots)
{
    req->corr = corr;
    size_t len;
    uint8_t *buf = cv_codec_pack(&req->base, &len);
    if (!buf)
        return CV_ENOMEM;
    for (int i = 0; i < sh->n; i++) {
        if (!want[i])
            continue;
        const void *data[1] = {buf};
        /* dontwait: a shard that cannot take the request is simply one that
         * does not answer in time. */
        int rc = cv_sock_send(sh->socks[i], 1, data, &len, 1);
        if (rc < 0)
            cv_log(CV_LOG_WARN, "msg=\"cannot send to shard\" shard=%d err=\"%s\"", i,
                   cv_strerror(rc));
    }
    free(buf);

    uint64_t deadline = cv_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < sh->n; i++)
            missing += want[i] && (slots[i].full ? !*slots[i].full : !*slots[i].standings);
        uint64_t now = cv_now_ms();
        if (missing == 0 || now >= deadline)
            break;
        int readable[PUB_SHARDS_MAX];
        if (cv_bus_poll(sh->socks, sh->n, readable, (long)(deadline - now)) < 0)
            break;
        /* Every readable socket is read, wanted or not, so that late
         * answers to earlier exchanges do not wake the poll again. */
        for (int i = 0; i < sh->n; i++)
            if (readable[i])
                take_replies(sh, i, corr, want[i] ? slots[i] : (slot_t){NULL, NULL});
    }
    return 0;
}

/* Checks the answer of shard i to a gather (NULL: none came); CV_ST_OK, or
 * the reason in err. */
static cv_status_t check_answer(int i, int answered, int status, const char *error, int result,
                                long timeout_ms, char *err, size_t errlen)
{
    if (!answered) {
        snprintf(err, errlen, "shard %d did not answer within %ld ms", i, timeout_ms);
        return CV_ST_UNAVAILABLE;
    }
    if (status != CV_ST_OK) {
        snprintf(err, errlen, "shard %d answered %s: %s", i, cv_status_name(status), error);
        /* Only "try again later" is worth passing on as such; anything else
         * a shard refuses is publish's or the shard's fault, not the release
         * manager's. */
        return status == CV_ST_UNAVAILABLE ? CV_ST_UNAVAILABLE : CV_ST_INTERNAL;
    }
    if (result != PUB_WIRE_RESULT_STANDINGS) {
        snprintf(err, errlen, "shard %d answered without standings", i);
        return CV_ST_INTERNAL;
    }
    return CV_ST_OK;
}

cv_status_t pub_shards_gather_standings(pub_shards_t *sh, uint64_t close_cycle,
                                        uint64_t opened_at_ms, long timeout_ms,
                                        pub_wire_standings_t **replies, char *err, size_t errlen)
{
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    Canvass__V1__CloseCycle close = CANVASS__V1__CLOSE_CYCLE__INIT;
    Canvass__V1__StandingsQuery query = CANVASS__V1__STANDINGS_QUERY__INIT;
    int want[PUB_SHARDS_MAX];
    slot_t slots[PUB_SHARDS_MAX];
    pub_wire_standings_t **answers = replies; /* where the answers land */
    uint64_t corr;
    for (int i = 0; i < sh->n; i++)
        replies[i] = NULL;
    if (close_cycle) {
        close.cycle = close_cycle;
        close.opened_at_ms = opened_at_ms;
        req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CLOSE;
        req.close = &close;
        if (sh->held_cycle != close_cycle) {
            held_clear(sh);
            sh->held_cycle = close_cycle;
        }
        answers = sh->held;
        corr = close_corr(close_cycle);
    } else {
        req.op_case = CANVASS__V1__TALLY_REQUEST__OP_STANDINGS;
        req.standings = &query;
        corr = ++sh->corr;
    }
    for (int i = 0; i < sh->n; i++) {
        want[i] = answers[i] == NULL;
        slots[i] = (slot_t){NULL, &answers[i]};
    }
    if (exchange(sh, &req, corr, want, timeout_ms, slots) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }

    cv_status_t st = CV_ST_OK;
    for (int i = 0; i < sh->n && st == CV_ST_OK; i++) {
        const pub_wire_standings_t *a = answers[i];
        st = check_answer(i, a != NULL, a ? a->head.status : 0, a ? a->error : "",
                          a ? a->head.result : 0, timeout_ms, err, errlen);
    }
    if (st != CV_ST_OK) {
        /* A close keeps the good answers it has for the next attempt. */
        for (int i = 0; i < sh->n; i++) {
            const pub_wire_standings_t *a = answers[i];
            if (a && (answers == replies || a->head.status != CV_ST_OK ||
                      a->head.result != PUB_WIRE_RESULT_STANDINGS))
                pub_wire_standings_destroy(&answers[i]);
        }
        return st;
    }
    if (answers != replies) { /* the close is complete: the caller owns them */
        for (int i = 0; i < sh->n; i++) {
            replies[i] = answers[i];
            answers[i] = NULL;
        }
        sh->held_cycle = 0;
    }
    return CV_ST_OK;
}

cv_status_t pub_shards_gather(pub_shards_t *sh, long timeout_ms, Canvass__V1__TallyReply **replies,
                              char *err, size_t errlen)
{
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    Canvass__V1__StandingsQuery query = CANVASS__V1__STANDINGS_QUERY__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_STANDINGS;
    req.standings = &query;
    int want[PUB_SHARDS_MAX];
    slot_t slots[PUB_SHARDS_MAX];
    for (int i = 0; i < sh->n; i++) {
        replies[i] = NULL;
        want[i] = 1;
        slots[i] = (slot_t){&replies[i], NULL};
    }
    if (exchange(sh, &req, ++sh->corr, want, timeout_ms, slots) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    cv_status_t st = CV_ST_OK;
    for (int i = 0; i < sh->n && st == CV_ST_OK; i++) {
        const Canvass__V1__TallyReply *r = replies[i];
        st = check_answer(i, r != NULL, r ? (int)r->status : 0, r ? r->error : "",
                          r ? (int)r->result_case : 0, timeout_ms, err, errlen);
    }
    if (st != CV_ST_OK)
        pub_shards_replies_free(replies, sh->n);
    return st;
}

cv_status_t pub_shards_call(pub_shards_t *sh, int i, Canvass__V1__TallyRequest *req,
                            long timeout_ms, Canvass__V1__TallyReply **reply, char *err,
                            size_t errlen)
{
    int want[PUB_SHARDS_MAX] = {0};
    slot_t slots[PUB_SHARDS_MAX] = {{0}};
    want[i] = 1;
    *reply = NULL;
    slots[i].full = reply;
    if (exchange(sh, req, ++sh->corr, want, timeout_ms, slots) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    if (!*reply) {
        snprintf(err, errlen, "shard %d did not answer within %ld ms", i, timeout_ms);
        return CV_ST_UNAVAILABLE;
    }
    return CV_ST_OK;
}

int pub_shards_drain(pub_shards_t *sh, int i)
{
    /* No exchange is waiting: every answer is late; take_replies holds those
     * to a pending close and drops the rest. */
    int dropped = take_replies(sh, i, 0, (slot_t){NULL, NULL});
    if (dropped)
        cv_log(CV_LOG_DEBUG, "msg=\"dropped late shard replies\" shard=%d count=%d", i, dropped);
    return dropped;
}
