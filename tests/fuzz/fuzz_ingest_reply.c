/* fuzz_ingest_reply: ingest's router (services/ingest/router.c) reading what
 * a tally shard answers -- acks for unknown, duplicate or foreign seqs,
 * refusals, unknown statuses, redirects, garbage -- and turning it into the
 * clients' replies.
 *
 * Input: one control byte, then a sequence of 4-byte big-endian lengths
 * each followed by that many bytes of a TallyReply (at most 8; bytes left
 * after the last whole one are one more).
 *   ctl bit 7  send the replies as they are; otherwise each one that decodes
 *              is re-packed with the corr of the request it answers and
 *              with each ack's seq below 64 replaced by the seq of command
 *              (seq mod n) of that request, so that the router takes them
 * The router (one shard, on a libuv loop driven here turn by turn, as
 * ingest's check handle drives it) is given the same four commands every
 * input: three votes and a submit.  A stand-in shard on an inproc ROUTER
 * socket answers each TallyRequest with the next fuzzed reply, then with a
 * correct one acknowledging every command, so that every command completes
 * quickly whatever the fuzzed reply did.
 *
 * Checked, beyond the sanitizers: every command is completed exactly once
 * (A4: never a silently dropped request, never two answers); its status is
 * a known one, with a non-empty UTF-8 error text when not OK (it becomes
 * the client's Reply.error), and an OK vote names its feature; the client
 * Reply built from it packs and round-trips; nothing is left pending.
 */
#include "cv_bus.h"
#include "cv_err.h"
#include "fz_util.h"
#include "router.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define ENDPOINT "inproc://fz-ingest-shard-0"
#define NCMDS 4
#define MAX_REPLIES 8
#define WAIT_MS 5000

typedef struct {
    int calls;
    cv_status_t status;
} result_t;

static uv_loop_t loop;
static cv_bus_t *bus;
static cv_sock_t *shard;
static cv_router_t *router;
static result_t results[NCMDS];

static struct {
    const uint8_t *data[MAX_REPLIES];
    size_t len[MAX_REPLIES];
    int n, next, patch;
} inject;

static void on_done(void *owner, uint64_t request_id, int op, const cv_router_result_t *res)
{
    result_t *r = owner;
    FZ_CHECK(r >= results && r < results + NCMDS, "done called with a foreign owner");
    FZ_CHECK(request_id == (uint64_t)(r - results) + 1, "done for request %llu, owner of %d",
             (unsigned long long)request_id, (int)(r - results) + 1);
    r->calls++;
    FZ_CHECK(r->calls == 1, "request %llu completed %d times", (unsigned long long)request_id,
             r->calls);
    r->status = res->status;
    FZ_CHECK(fz_status_known(res->status), "request %llu completed with status %d",
             (unsigned long long)request_id, (int)res->status);
    fz_check_text("the error text ingest sends a client", res->error, 0,
                  res->status != CV_ST_OK);

    /* The client's Reply, as ingest's server builds it. */
    Canvass__V1__Reply rep = CANVASS__V1__REPLY__INIT;
    Canvass__V1__VoteAck ack = CANVASS__V1__VOTE_ACK__INIT;
    Canvass__V1__Submitted sub = CANVASS__V1__SUBMITTED__INIT;
    rep.request_id = request_id;
    rep.status = res->status;
    rep.error = (char *)res->error;
    if (res->status == CV_ST_OK) {
        FZ_CHECK(res->feature_id && *res->feature_id, "OK for request %llu names no feature",
                 (unsigned long long)request_id);
        fz_check_text("the feature id ingest sends a client", res->feature_id, 0, true);
        if (op == CANVASS__V1__REQUEST__OP_VOTE) {
            ack.feature_id = (char *)res->feature_id;
            ack.changed = res->changed;
            ack.cycle = res->cycle;
            rep.result_case = CANVASS__V1__REPLY__RESULT_VOTE_ACK;
            rep.vote_ack = &ack;
        } else {
            sub.feature_id = (char *)res->feature_id;
            rep.result_case = CANVASS__V1__REPLY__RESULT_SUBMITTED;
            rep.submitted = &sub;
        }
    }
    fz_check_packs(&rep.base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_ingest_reply");
    FZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    bus = cv_bus_new();
    shard = bus ? cv_sock_new(bus, CV_SOCK_ROUTER) : NULL;
    FZ_CHECK(shard && cv_sock_bind(shard, ENDPOINT) == 0, "cannot bind %s", ENDPOINT);
    static const char *const endpoints[] = {ENDPOINT};
    cv_router_opts_t o = {.endpoints = endpoints,
                          .nshards = 1,
                          .node = 7,
                          .resend_ms = 100,
                          .deadline_ms = 1000,
                          .done = on_done};
    router = cv_router_new(&loop, bus, &o);
    FZ_CHECK(router != NULL, "cv_router_new failed");
    return 0;
}

/* ---- the stand-in shard --------------------------------------------------------- */

static void send_reply(const cv_parts_t *req, const Canvass__V1__TallyReply *r)
{
    size_t len;
    uint8_t *buf = cv_codec_pack(&r->base, &len);
    FZ_CHECK(buf != NULL, "out of memory");
    const void *data[2] = {req->data[0], buf};
    size_t size[2] = {req->size[0], len};
    cv_sock_send(shard, 2, data, size, 1);
    free(buf);
}

static void send_injected(const cv_parts_t *req, const Canvass__V1__TallyRequest *tr)
{
    if (inject.next >= inject.n)
        return;
    const uint8_t *data = inject.data[inject.next];
    size_t len = inject.len[inject.next++];
    Canvass__V1__TallyReply *r =
        inject.patch && tr ? canvass__v1__tally_reply__unpack(NULL, len, data) : NULL;
    if (!r) {
        const void *d[2] = {req->data[0], data};
        size_t s[2] = {req->size[0], len};
        cv_sock_send(shard, 2, d, s, 1);
        return;
    }
    r->corr = tr->corr;
    size_t n = tr->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH ? tr->batch->n_cmds : 0;
    if (r->result_case == CANVASS__V1__TALLY_REPLY__RESULT_ACKS && n)
        for (size_t i = 0; i < r->acks->n_acks; i++)
            if (r->acks->acks[i]->seq < 64)
                r->acks->acks[i]->seq = tr->batch->cmds[r->acks->acks[i]->seq % n]->seq;
    send_reply(req, r);
    canvass__v1__tally_reply__free_unpacked(r, NULL);
}

/* Answers every request waiting on the shard's socket. */
static void serve_shard(void)
{
    cv_parts_t parts;
    while (cv_sock_recv(shard, &parts, 0) == 0) {
        FZ_CHECK(parts.n == 2, "ingest sent a message of %d frames", parts.n - 1);
        Canvass__V1__TallyRequest *tr =
            canvass__v1__tally_request__unpack(NULL, parts.size[1], parts.data[1]);
        FZ_CHECK(tr != NULL, "ingest sent an undecodable TallyRequest: %s",
                 fz_hex(parts.data[1], parts.size[1], 128));
        FZ_CHECK(tr->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH,
                 "ingest sent a TallyRequest with op %d", (int)tr->op_case);
        send_injected(&parts, tr);

        Canvass__V1__AckBatch acks = CANVASS__V1__ACK_BATCH__INIT;
        Canvass__V1__ShardAck a[64], *ap[64];
        size_t n = tr->batch->n_cmds < 64 ? tr->batch->n_cmds : 64;
        for (size_t i = 0; i < n; i++) {
            const Canvass__V1__ShardCmd *c = tr->batch->cmds[i];
            canvass__v1__shard_ack__init(&a[i]);
            a[i].seq = c->seq;
            a[i].feature_id = c->op_case == CANVASS__V1__SHARD_CMD__OP_VOTE ? c->vote->feature_id
                              : c->op_case == CANVASS__V1__SHARD_CMD__OP_CREATE
                                  ? c->create->feature_id
                                  : (char *)"";
            a[i].changed = 1;
            a[i].cycle = 1;
            ap[i] = &a[i];
        }
        acks.n_acks = n;
        acks.acks = ap;
        Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
        r.corr = tr->corr;
        r.result_case = CANVASS__V1__TALLY_REPLY__RESULT_ACKS;
        r.acks = &acks;
        send_reply(&parts, &r);
        canvass__v1__tally_request__free_unpacked(tr, NULL);
        cv_parts_free(&parts);
    }
}

/* ---- the input ------------------------------------------------------------------ */

static Canvass__V1__Request *request(uint64_t id, int i)
{
    static const char *users[] = {"u1", "u2", "u3"};
    static const char *tiers[] = {"", "core", "honorary"};
    Canvass__V1__Request r = CANVASS__V1__REQUEST__INIT;
    Canvass__V1__Vote v = CANVASS__V1__VOTE__INIT;
    Canvass__V1__Submit s = CANVASS__V1__SUBMIT__INIT;
    r.request_id = id;
    if (i < 3) {
        v.user_id = (char *)users[i];
        v.feature_id = (char *)(i < 2 ? "a" : "b");
        v.value = i == 1 ? -1 : 1;
        v.tier = (char *)tiers[i];
        r.op_case = CANVASS__V1__REQUEST__OP_VOTE;
        r.vote = &v;
    } else {
        s.user_id = (char *)"u1";
        s.title = (char *)"Dark mode";
        r.op_case = CANVASS__V1__REQUEST__OP_SUBMIT;
        r.submit = &s;
    }
    size_t len;
    uint8_t *buf = cv_codec_pack(&r.base, &len);
    FZ_CHECK(buf != NULL, "out of memory");
    Canvass__V1__Request *out = canvass__v1__request__unpack(NULL, len, buf);
    FZ_CHECK(out != NULL, "out of memory");
    free(buf);
    return out;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    inject.patch = !(data[0] & 0x80);
    inject.n = inject.next = 0;
    size_t off = 1;
    while (inject.n < MAX_REPLIES && off < size) {
        size_t len = size - off;
        if (len >= 4) {
            uint32_t l = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                         (uint32_t)data[off + 2] << 8 | data[off + 3];
            if (l <= len - 4) {
                off += 4;
                len = l;
            }
        }
        ProtobufCMessage *m = fz_roundtrip(&canvass__v1__tally_reply__descriptor, data + off, len);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        if (!fz_known_field0_bytes(&canvass__v1__tally_reply__descriptor, data + off, len)) {
            inject.data[inject.n] = data + off;
            inject.len[inject.n++] = len;
        }
        off += len;
    }

    memset(results, 0, sizeof results);
    /* In ingest, requests arrive in a read callback, when the loop's time is
     * fresh; here the loop may have been idle since the last input. */
    uv_update_time(&loop);
    for (int i = 0; i < NCMDS; i++) {
        Canvass__V1__Request *req = request((uint64_t)i + 1, i);
        int rc = cv_router_send(router, &req, &results[i]);
        FZ_CHECK(rc == 0 && req == NULL, "cv_router_send refused command %d: %s", i,
                 cv_strerror(rc));
    }
    long deadline = now_ms() + WAIT_MS;
    for (;;) {
        cv_router_flush(router); /* ingest's check handle, once per loop turn */
        uv_run(&loop, UV_RUN_NOWAIT);
        serve_shard();
        int done = 1;
        for (int i = 0; i < NCMDS; i++)
            done &= results[i].calls > 0;
        if (done && cv_router_pending(router) == 0)
            break;
        FZ_CHECK(now_ms() < deadline, "commands still pending after %d ms (%zu)", WAIT_MS,
                 cv_router_pending(router));
        cv_sock_t *socks[1] = {shard};
        int readable[1];
        cv_bus_poll(socks, 1, readable, 1);
    }
    /* Late answers (the real replies after the fuzzed ones) are drained and
     * ignored before the next input. */
    serve_shard();
    cv_router_flush(router);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
