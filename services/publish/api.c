/* api: the release-manager REP API (see api.h).  Decodes an AdminRequest,
 * dispatches to cycles.c and packs the AdminReply.  A ranked list is
 * answered by splicing the packed list's bytes (cut to the limit by
 * cycles.c and lists.c, never unpacked) into the reply, which is also what
 * guarantees that a closed cycle's uncut list in score order is
 * byte-for-byte the one stored at its close. */
#include "api.h"
#include "cv_auth.h"
#include "cv_err.h"
#include "cv_log.h"
#include "cv_rank.h"
#include "features.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* AdminReply{status: INTERNAL, error: "out of memory"}, packed by hand so it
 * can be sent when nothing can be allocated. */
static const uint8_t nomem_reply[] = {
    0x08, CV_ST_INTERNAL, 0x12, 13, 'o', 'u', 't', ' ', 'o', 'f', ' ', 'm', 'e', 'm', 'o', 'r',
    'y'};

/* ---- replies ---------------------------------------------------------------- */

/* AdminReply{status OK, ranked: <list bytes>}: status OK is proto3's default
 * and not written, so the reply is field 10 (wire type 2) alone: the tag
 * byte 0x52, the length as a varint, then the list's bytes unchanged (given
 * in three parts). */
static uint8_t *ranked_reply(const pub_ranked_t *r, size_t *len)
{
    size_t n = r->size[0] + r->size[1] + r->size[2];
    uint8_t *out = malloc(1 + 10 + n);
    if (!out)
        return NULL;
    size_t k = 0;
    out[k++] = (10 << 3) | 2;
    for (uint64_t v = n;; v >>= 7) {
        out[k++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        if (v < 0x80)
            break;
    }
    for (int i = 0; i < 3; i++) {
        if (r->size[i])
            memcpy(out + k, r->part[i], r->size[i]);
        k += r->size[i];
    }
    *len = k;
    return out;
}

/* ---- ranked ------------------------------------------------------------------ */

enum { CYCLE_LATEST, CYCLE_LIVE, CYCLE_NUMBER };

/* Parses RankedQuery.cycle; -1 for anything but "", latest, live or a
 * decimal number that fits in 64 bits. */
static int parse_cycle(const char *s, uint64_t *n)
{
    if (!*s || !strcmp(s, "latest"))
        return CYCLE_LATEST;
    if (!strcmp(s, "live"))
        return CYCLE_LIVE;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *n = v;
    return CYCLE_NUMBER;
}

static uint8_t *do_ranked(pub_cycles_t *c, const Canvass__V1__RankedQuery *q, size_t *len)
{
    char err[256];
    cv_rank_order_t order;
    if (cv_rank_order_parse(q->order, &order, err, sizeof err) < 0)
        return pub_reply_error(CV_ST_INVALID, err, len);
    uint64_t cycle = 0;
    int kind = parse_cycle(q->cycle, &cycle);
    if (kind < 0) {
        snprintf(err, sizeof err, "bad cycle '%.64s' (a number, latest or live)", q->cycle);
        return pub_reply_error(CV_ST_INVALID, err, len);
    }
    if (kind == CYCLE_LATEST && (cycle = pub_cycles_open_cycle(c) - 1) == 0)
        return pub_reply_error(CV_ST_NOT_FOUND, "no cycle has closed yet", len);
    if (kind == CYCLE_NUMBER && cycle == 0) /* 0 means live to pub_cycles_ranked */
        return pub_reply_error(CV_ST_NOT_FOUND, "cycle 0 is not closed", len);
    /* Only score lists are stored; any other order is computed from the
     * entries' own fields (cv_rank_reorder), exactly as a close would have
     * built it in that order (lists.h). */
    pub_ranked_t r;
    cv_status_t st =
        pub_cycles_ranked(c, kind == CYCLE_LIVE ? 0 : cycle, order, q->limit, &r, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    uint8_t *out = ranked_reply(&r, len);
    pub_cycles_ranked_release(&r);
    return out;
}

/* ---- cycles and close ------------------------------------------------------------------- */

static uint8_t *do_cycles(pub_cycles_t *c, size_t *len)
{
    char err[256];
    Canvass__V1__CycleInfo *infos = NULL;
    size_t n = 0;
    cv_status_t st = pub_cycles_list(c, &infos, &n, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    Canvass__V1__CycleInfo **ptrs = malloc(n * sizeof *ptrs);
    if (!ptrs) {
        free(infos);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &infos[i];
    Canvass__V1__CycleList list = CANVASS__V1__CYCLE_LIST__INIT;
    list.cycles = ptrs;
    list.n_cycles = n;
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_CYCLES;
    r.cycles = &list;
    uint8_t *out = pub_reply_pack(&r, len);
    free(ptrs);
    free(infos);
    return out;
}

static uint8_t *do_close(pub_cycles_t *c, size_t *len)
{
    char err[256];
    Canvass__V1__CycleInfo info;
    cv_log(CV_LOG_INFO, "msg=\"manual close requested\" cycle=%llu",
           (unsigned long long)pub_cycles_open_cycle(c));
    cv_status_t st = pub_cycles_close(c, 0, &info, err, sizeof err);
    if (st != CV_ST_OK)
        return pub_reply_error(st, err, len);
    Canvass__V1__AdminReply r = CANVASS__V1__ADMIN_REPLY__INIT;
    r.result_case = CANVASS__V1__ADMIN_REPLY__RESULT_CLOSED;
    r.closed = &info;
    return pub_reply_pack(&r, len);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static const cv_auth_t *api_keys; /* NULL: no key file, the API is open */

void pub_api_set_keys(const cv_auth_t *keys)
{
    api_keys = keys;
}

uint8_t *pub_api_handle(pub_cycles_t *c, pub_features_t *f, const uint8_t *req, size_t reqlen,
                        size_t *len)
{
    Canvass__V1__AdminRequest *r = (Canvass__V1__AdminRequest *)cv_codec_unpack(
        &canvass__v1__admin_request__descriptor, reqlen, req);
    if (!r) {
        cv_log(CV_LOG_INFO, "msg=\"undecodable admin request\" bytes=%zu", reqlen);
        return pub_reply_error(CV_ST_INVALID, "undecodable request", len);
    }
    char aerr[256];
    cv_status_t ast =
        cv_auth_check_key(api_keys, r->app_key, CV_AUTH_ADMIN, NULL, aerr, sizeof aerr);
    if (ast != CV_ST_OK) {
        cv_log(CV_LOG_INFO, "msg=\"admin request refused\" status=%s error=\"%s\"",
               cv_status_name(ast), aerr);
        canvass__v1__admin_request__free_unpacked(r, NULL);
        return pub_reply_error(ast, aerr, len);
    }
    uint8_t *out;
    switch (r->op_case) {
    case CANVASS__V1__ADMIN_REQUEST__OP_RANKED:
        out = do_ranked(c, r->ranked, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_CYCLES:
        out = do_cycles(c, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_CLOSE:
        out = do_close(c, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW:
        out = pub_features_show(f, r->feature_show, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_STATUS:
        out = pub_features_status(f, r->feature_status, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_MERGE:
        out = pub_features_merge(f, r->feature_merge, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS:
        out = pub_features_voters(f, r->feature_voters, len);
        break;
    case CANVASS__V1__ADMIN_REQUEST__OP_FEATURES:
        out = pub_features_list(f, len);
        break;
    default:
        out = pub_reply_error(CV_ST_INVALID,
                              "request has no operation (ranked, cycles, close, feature_show, "
                              "feature_status, feature_merge, feature_voters or features)",
                              len);
        break;
    }
    canvass__v1__admin_request__free_unpacked(r, NULL);
    return out;
}

int pub_api_serve(pub_cycles_t *c, pub_features_t *f, cv_sock_t *rep)
{
    cv_parts_t parts;
    int rc = cv_sock_recv(rep, &parts, 0);
    if (rc == CV_EAGAIN || rc == CV_EIO)
        return rc;
    uint8_t *out;
    size_t len = 0;
    if (rc == 0 && parts.n == 1) {
        out = pub_api_handle(c, f, parts.data[0], parts.size[0], &len);
    } else {
        /* Too many frames (the REP socket still owes an answer). */
        cv_log(CV_LOG_INFO, "msg=\"undecodable admin request\" frames=%d", rc == 0 ? parts.n : -1);
        out = pub_reply_error(CV_ST_INVALID, "undecodable request", &len);
    }
    if (rc == 0)
        cv_parts_free(&parts);
    const void *data[1] = {out ? out : nomem_reply};
    size_t size[1] = {out ? len : sizeof nomem_reply};
    rc = cv_sock_send(rep, 1, data, size, 0);
    free(out);
    if (rc < 0)
        cv_log(CV_LOG_WARN, "msg=\"cannot answer admin request\" err=\"%s\"", cv_strerror(rc));
    return rc < 0 ? CV_EIO : 0;
}
