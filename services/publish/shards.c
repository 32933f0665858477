/* shards: publish's DEALER sockets to the tally shards and the gather of
 * their standings (see shards.h).  Everything a shard sends is outside input:
 * a reply that does not decode, has extra frames or a stale correlation id
 * is logged and dropped, never trusted. */
#include "shards.h"
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pub_shards {
    int n;
    cv_sock_t *socks[PUB_SHARDS_MAX];
    uint64_t corr; /* the last correlation id used */
};

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

/* Decodes one received message from shard i; NULL (logged) when it is not a
 * single frame holding a TallyReply. */
static Canvass__V1__TallyReply *decode_reply(int i, cv_parts_t *parts)
{
    if (parts->n != 1) {
        cv_log(CV_LOG_WARN, "msg=\"dropped shard message\" shard=%d reason=\"%d frames\"", i,
               parts->n);
        return NULL;
    }
    Canvass__V1__TallyReply *r =
        canvass__v1__tally_reply__unpack(NULL, parts->size[0], parts->data[0]);
    if (!r)
        cv_log(CV_LOG_WARN, "msg=\"dropped shard message\" shard=%d reason=undecodable bytes=%zu",
               i, parts->size[0]);
    return r;
}

/* Reads everything waiting on shard i, keeping the first reply to corr. */
static void take_replies(pub_shards_t *sh, int i, uint64_t corr, Canvass__V1__TallyReply **slot)
{
    cv_parts_t parts;
    int rc;
    while ((rc = cv_sock_recv(sh->socks[i], &parts, 0)) != CV_EAGAIN) {
        if (rc < 0) {
            cv_log(CV_LOG_WARN, "msg=\"shard receive failed\" shard=%d err=\"%s\"", i,
                   cv_strerror(rc));
            if (rc == CV_EIO)
                return;
            continue;
        }
        Canvass__V1__TallyReply *r = decode_reply(i, &parts);
        cv_parts_free(&parts);
        if (!r)
            continue;
        if (r->corr != corr || *slot) {
            cv_log(CV_LOG_DEBUG, "msg=\"dropped stale shard reply\" shard=%d corr=%llu want=%llu",
                   i, (unsigned long long)r->corr, (unsigned long long)corr);
            canvass__v1__tally_reply__free_unpacked(r, NULL);
            continue;
        }
        *slot = r;
    }
}

int pub_shards_for_feature(const pub_shards_t *sh, const char *feature_id)
{
    return (int)cv_shard_for_feature(feature_id, strlen(feature_id), (uint32_t)sh->n);
}

/* Sends req, with a fresh corr, to every shard i with want[i] set and waits
 * until each has answered or timeout_ms has passed.  replies[i] is set for
 * each shard that answered and NULL for every other.  Returns 0 or
 * CV_ENOMEM (nothing sent). */
static int exchange(pub_shards_t *sh, Canvass__V1__TallyRequest *req, const int *want,
                    long timeout_ms, Canvass__V1__TallyReply **replies)
{
    req->corr = ++sh->corr;
    for (int i = 0; i < sh->n; i++)
        replies[i] = NULL;
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
            missing += want[i] && !replies[i];
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
                take_replies(sh, i, req->corr, &replies[i]);
    }
    return 0;
}

cv_status_t pub_shards_gather(pub_shards_t *sh, uint64_t close_cycle, uint64_t opened_at_ms,
                              long timeout_ms, Canvass__V1__TallyReply **replies, char *err,
                              size_t errlen)
{
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    Canvass__V1__CloseCycle close = CANVASS__V1__CLOSE_CYCLE__INIT;
    Canvass__V1__StandingsQuery query = CANVASS__V1__STANDINGS_QUERY__INIT;
    if (close_cycle) {
        close.cycle = close_cycle;
        close.opened_at_ms = opened_at_ms;
        req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CLOSE;
        req.close = &close;
    } else {
        req.op_case = CANVASS__V1__TALLY_REQUEST__OP_STANDINGS;
        req.standings = &query;
    }
    int want[PUB_SHARDS_MAX];
    for (int i = 0; i < sh->n; i++)
        want[i] = 1;
    if (exchange(sh, &req, want, timeout_ms, replies) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }

    cv_status_t st = CV_ST_OK;
    for (int i = 0; i < sh->n && st == CV_ST_OK; i++) {
        Canvass__V1__TallyReply *r = replies[i];
        if (!r) {
            snprintf(err, errlen, "shard %d did not answer within %ld ms", i, timeout_ms);
            st = CV_ST_UNAVAILABLE;
        } else if (r->status != CV_ST_OK) {
            snprintf(err, errlen, "shard %d answered %s: %s", i, cv_status_name(r->status),
                     r->error);
            /* Only "try again later" is worth passing on as such; anything
             * else a shard refuses is publish's or the shard's fault, not
             * the release manager's. */
            st = r->status == CV_ST_UNAVAILABLE ? CV_ST_UNAVAILABLE : CV_ST_INTERNAL;
        } else if (r->result_case != CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS) {
            snprintf(err, errlen, "shard %d answered without standings", i);
            st = CV_ST_INTERNAL;
        }
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
    Canvass__V1__TallyReply *replies[PUB_SHARDS_MAX];
    want[i] = 1;
    *reply = NULL;
    if (exchange(sh, req, want, timeout_ms, replies) < 0) {
        snprintf(err, errlen, "out of memory");
        return CV_ST_INTERNAL;
    }
    *reply = replies[i];
    replies[i] = NULL;
    pub_shards_replies_free(replies, sh->n); /* late answers meant for nobody */
    if (!*reply) {
        snprintf(err, errlen, "shard %d did not answer within %ld ms", i, timeout_ms);
        return CV_ST_UNAVAILABLE;
    }
    return CV_ST_OK;
}

int pub_shards_drain(pub_shards_t *sh, int i)
{
    int dropped = 0;
    cv_parts_t parts;
    int rc;
    while ((rc = cv_sock_recv(sh->socks[i], &parts, 0)) != CV_EAGAIN && rc != CV_EIO) {
        if (rc == 0)
            cv_parts_free(&parts);
        dropped++;
    }
    if (dropped)
        cv_log(CV_LOG_DEBUG, "msg=\"dropped late shard replies\" shard=%d count=%d", i, dropped);
    return dropped;
}
