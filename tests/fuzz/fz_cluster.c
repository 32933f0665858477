/* fz_cluster: publish and two real tally shards in one process (see
 * fz_cluster.h). */
#include "fz_cluster.h"
#include "audit.h"
#include "cv_err.h"
#include "cv_hash.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_sched.h"
#include "fz_util.h"
#include "shard.h"
#include "shards.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INJECT_MAX 64
#define SHARD_MAP_BYTES (256 * 1024)

const char *const fz_cluster_ids[4] = {"a", "b", "c", "d"};

typedef struct {
    uint8_t *data;
    size_t len;
    int patch;
} inject_t;

typedef struct {
    fz_cluster_t *cl;
    int index;
    inject_t inject[INJECT_MAX]; /* guarded by the cluster's inject_lock */
    int ninject, next_inject;
    char dir[96];
    char endpoint[64];
    cv_shard_t *store; /* NULL while closed for checking; guarded by lock */
    cv_sock_t *sock;   /* the shard thread's own */
    pthread_t thread;
    pthread_mutex_t lock;
} shard_t;

struct fz_cluster {
    cv_bus_t *bus;
    shard_t shards[FZ_SHARDS];
    atomic_int stop;

    pthread_mutex_t inject_lock;

    char pub_dir[96];
    char pub_endpoint[64];
    cv_sched_t sched;
    pub_shards_t *pub_shards;
    cv_sock_t *pub, *sub;
    pub_cycles_t *cycles;
    pub_features_t *features;
};

/* ---- a shard, served like canvass-tally serves it ------------------------------- */

static void send_to(shard_t *sh, const cv_parts_t *req, const uint8_t *buf, size_t len)
{
    const void *data[2] = {req->data[0], buf};
    size_t size[2] = {req->size[0], len};
    cv_sock_send(sh->sock, 2, data, size, 1);
}

static void send_msg(shard_t *sh, const cv_parts_t *req, const Canvass__V1__TallyReply *r)
{
    size_t len;
    uint8_t *buf = cv_codec_pack(&r->base, &len);
    FZ_CHECK(buf != NULL, "out of memory");
    send_to(sh, req, buf, len);
    free(buf);
}

static void send_error(shard_t *sh, const cv_parts_t *req, uint64_t corr, const char *text)
{
    Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
    r.corr = corr;
    r.status = CV_ST_INTERNAL;
    r.error = (char *)text;
    send_msg(sh, req, &r);
}

/* Sends the next queued fuzzed reply, if any, ahead of the shard's own. */
static void send_injected(shard_t *sh, const cv_parts_t *req, uint64_t corr)
{
    fz_cluster_t *c = sh->cl;
    pthread_mutex_lock(&c->inject_lock);
    inject_t *in = sh->next_inject < sh->ninject ? &sh->inject[sh->next_inject++] : NULL;
    pthread_mutex_unlock(&c->inject_lock);
    if (!in)
        return;
    Canvass__V1__TallyReply *r =
        in->patch ? canvass__v1__tally_reply__unpack(NULL, in->len, in->data) : NULL;
    if (r) {
        r->corr = corr;
        send_msg(sh, req, r);
        canvass__v1__tally_reply__free_unpacked(r, NULL);
    } else {
        send_to(sh, req, in->data, in->len);
    }
}

static void serve_one(shard_t *sh, const cv_parts_t *parts)
{
    if (parts->n != 2) {
        send_error(sh, parts, 0, "a TallyRequest is one frame");
        return;
    }
    Canvass__V1__TallyRequest *req =
        canvass__v1__tally_request__unpack(NULL, parts->size[1], parts->data[1]);
    send_injected(sh, parts, req ? req->corr : 0);
    if (!req) {
        send_error(sh, parts, 0, "undecodable TallyRequest");
        return;
    }
    switch (req->op_case) {
    case CANVASS__V1__TALLY_REQUEST__OP_BATCH:
    case CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_OUT:
    case CANVASS__V1__TALLY_REQUEST__OP_MERGE_IN: {
        cv_shard_job_t job = {0};
        if (req->op_case == CANVASS__V1__TALLY_REQUEST__OP_BATCH)
            job.batch = req->batch;
        else
            job.change = req;
        int rc = cv_shard_apply(sh->store, &job, 1);
        FZ_CHECK(rc == 0, "shard %d could not commit: %s", sh->index, cv_strerror(rc));
        if (job.batch) {
            Canvass__V1__AckBatch acks = CANVASS__V1__ACK_BATCH__INIT;
            acks.n_acks = job.batch->n_cmds;
            acks.acks = job.ack_ptrs;
            Canvass__V1__TallyReply r = CANVASS__V1__TALLY_REPLY__INIT;
            r.corr = req->corr;
            r.result_case = CANVASS__V1__TALLY_REPLY__RESULT_ACKS;
            r.acks = &acks;
            send_msg(sh, parts, &r);
        } else {
            send_msg(sh, parts, cv_shard_reply_msg(job.reply));
        }
        cv_shard_job_release(&job);
        break;
    }
    case CANVASS__V1__TALLY_REQUEST__OP__NOT_SET:
        send_error(sh, parts, req->corr, "TallyRequest has no operation");
        break;
    default: { /* a query; CV_EINVAL for one the shard does not serve */
        cv_shard_reply_t *r = NULL;
        int rc = cv_shard_answer(sh->store, req, &r);
        if (rc == CV_EINVAL && !r) {
            send_error(sh, parts, req->corr, "TallyRequest has no operation");
            break;
        }
        FZ_CHECK(rc == 0, "shard %d could not answer op %d: %s", sh->index, (int)req->op_case,
                 cv_strerror(rc));
        send_msg(sh, parts, cv_shard_reply_msg(r));
        cv_shard_reply_destroy(&r);
        break;
    }
    }
    canvass__v1__tally_request__free_unpacked(req, NULL);
}

static void *shard_main(void *p)
{
    shard_t *sh = p;
    while (!atomic_load(&sh->cl->stop)) {
        cv_parts_t parts;
        int rc = cv_sock_recv(sh->sock, &parts, 20);
        if (rc == CV_EAGAIN || rc == CV_EDECODE)
            continue;
        FZ_CHECK(rc == 0, "shard %d: receive failed: %s", sh->index, cv_strerror(rc));
        pthread_mutex_lock(&sh->lock);
        if (sh->store) /* else closed for checking: the request is dropped */
            serve_one(sh, &parts);
        pthread_mutex_unlock(&sh->lock);
        cv_parts_free(&parts);
    }
    return NULL;
}

/* ---- seeding --------------------------------------------------------------------- */

static uint32_t owner_of(const char *id)
{
    return cv_shard_for_feature(id, strlen(id), FZ_SHARDS);
}

/* Opens a fresh store for sh and gives it its share of the seeded
 * features, with votes.  Called with sh->lock held. */
static void seed_shard(shard_t *sh)
{
    cv_shard_close(&sh->store);
    fz_empty_dir(sh->dir);
    char why[256] = "";
    int rc = cv_shard_open(sh->dir, (uint32_t)sh->index, FZ_SHARDS, CV_DURABLE_OS,
                           SHARD_MAP_BYTES, &sh->store, why, sizeof why);
    FZ_CHECK(rc == 0, "cannot open shard %d in %s: %s %s", sh->index, sh->dir, cv_strerror(rc),
             why);

    static const char *users[] = {"u1", "u2", "u3"};
    static const char *tiers[] = {"member", "core", "honorary"};
    Canvass__V1__FeatureRecord recs[4];
    Canvass__V1__Vote votes[4][3];
    Canvass__V1__ShardCmd cmds[16], *ptrs[16];
    size_t n = 0;
    uint64_t now = cv_now_ms();
    for (int f = 0; f < 4; f++) {
        if (owner_of(fz_cluster_ids[f]) != (uint32_t)sh->index)
            continue;
        canvass__v1__feature_record__init(&recs[f]);
        recs[f].feature_id = (char *)fz_cluster_ids[f];
        recs[f].title = (char *)"seeded feature";
        recs[f].author = (char *)"u1";
        recs[f].status = (char *)"open";
        canvass__v1__shard_cmd__init(&cmds[n]);
        cmds[n].seq = n + 1;
        cmds[n].stamp = (now - 60000) << 22 | n;
        cmds[n].op_case = CANVASS__V1__SHARD_CMD__OP_CREATE;
        cmds[n].create = &recs[f];
        n++;
        for (int u = 0; u <= f && u < 3; u++) {
            Canvass__V1__Vote *v = &votes[f][u];
            canvass__v1__vote__init(v);
            v->user_id = (char *)users[u];
            v->feature_id = (char *)fz_cluster_ids[f];
            v->value = (f + u) % 3 == 2 ? -1 : 1;
            v->tier = (char *)tiers[u];
            canvass__v1__shard_cmd__init(&cmds[n]);
            cmds[n].seq = n + 1;
            cmds[n].stamp = (now - 50000) << 22 | n;
            cmds[n].op_case = CANVASS__V1__SHARD_CMD__OP_VOTE;
            cmds[n].vote = v;
            n++;
        }
    }
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &cmds[i];
    Canvass__V1__CmdBatch batch = CANVASS__V1__CMD_BATCH__INIT;
    batch.n_cmds = n;
    batch.cmds = ptrs;
    cv_shard_job_t job = {.batch = &batch};
    rc = cv_shard_apply(sh->store, &job, 1);
    FZ_CHECK(rc == 0, "seeding shard %d failed: %s", sh->index, cv_strerror(rc));
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(job.acks[i].status == CV_ST_OK, "seeding shard %d: command %zu: %s", sh->index,
                 i, job.acks[i].error);
    cv_shard_job_release(&job);
}

/* ---- the cluster ----------------------------------------------------------------- */

fz_cluster_t *fz_cluster_new(const char *name)
{
    fz_cluster_t *c = calloc(1, sizeof *c);
    FZ_CHECK(c != NULL, "out of memory");
    const char *root = fz_tmpdir(name);
    c->bus = cv_bus_new();
    FZ_CHECK(c->bus != NULL, "cannot create a ZeroMQ context");
    pthread_mutex_init(&c->inject_lock, NULL);

    char endpoints[256] = "";
    for (int i = 0; i < FZ_SHARDS; i++) {
        shard_t *sh = &c->shards[i];
        sh->cl = c;
        sh->index = i;
        snprintf(sh->dir, sizeof sh->dir, "%s/tally-%d", root, i);
        snprintf(sh->endpoint, sizeof sh->endpoint, "inproc://fz-%.20s-shard-%d", name, i);
        FZ_CHECK(mkdir(sh->dir, 0700) == 0, "cannot create %s", sh->dir);
        sh->sock = cv_sock_new(c->bus, CV_SOCK_ROUTER);
        FZ_CHECK(sh->sock && cv_sock_bind(sh->sock, sh->endpoint) == 0, "cannot bind %s",
                 sh->endpoint);
        pthread_mutex_init(&sh->lock, NULL);
        seed_shard(sh);
        FZ_CHECK(pthread_create(&sh->thread, NULL, shard_main, sh) == 0,
                 "cannot start a thread");
        snprintf(endpoints + strlen(endpoints), sizeof endpoints - strlen(endpoints), "%s%s",
                 i ? "," : "", sh->endpoint);
    }
    char err[256];
    c->pub_shards = pub_shards_new(c->bus, endpoints, err, sizeof err);
    FZ_CHECK(c->pub_shards != NULL, "pub_shards_new: %s", err);

    snprintf(c->pub_endpoint, sizeof c->pub_endpoint, "inproc://fz-%.20s-pub", name);
    c->pub = cv_sock_new(c->bus, CV_SOCK_PUB);
    c->sub = cv_sock_new(c->bus, CV_SOCK_SUB);
    FZ_CHECK(c->pub && c->sub && cv_sock_bind(c->pub, c->pub_endpoint) == 0 &&
                 cv_sock_connect(c->sub, c->pub_endpoint) == 0 &&
                 cv_sock_subscribe(c->sub, "") == 0,
             "cannot set up the PUB and SUB sockets");

    snprintf(c->pub_dir, sizeof c->pub_dir, "%s/publish", root);
    FZ_CHECK(mkdir(c->pub_dir, 0700) == 0, "cannot create %s", c->pub_dir);
    FZ_CHECK(cv_sched_parse("manual", &c->sched, err, sizeof err) == 0, "schedule: %s", err);
    fz_cluster_reset(c);
    return c;
}

void fz_cluster_inject_clear(fz_cluster_t *c)
{
    pthread_mutex_lock(&c->inject_lock);
    for (int s = 0; s < FZ_SHARDS; s++) {
        shard_t *sh = &c->shards[s];
        for (int i = 0; i < sh->ninject; i++)
            free(sh->inject[i].data);
        sh->ninject = sh->next_inject = 0;
    }
    pthread_mutex_unlock(&c->inject_lock);
}

void fz_cluster_inject(fz_cluster_t *c, int shard, const uint8_t *data, size_t len,
                       int patch_corr)
{
    shard_t *sh = &c->shards[shard % FZ_SHARDS];
    pthread_mutex_lock(&c->inject_lock);
    if (sh->ninject < INJECT_MAX) {
        inject_t *in = &sh->inject[sh->ninject++];
        in->data = malloc(len ? len : 1);
        FZ_CHECK(in->data != NULL, "out of memory");
        if (len)
            memcpy(in->data, data, len);
        in->len = len;
        in->patch = patch_corr;
    }
    pthread_mutex_unlock(&c->inject_lock);
}

void fz_cluster_reset(fz_cluster_t *c)
{
    fz_cluster_inject_clear(c);
    pub_features_destroy(&c->features);
    pub_cycles_destroy(&c->cycles);
    for (int i = 0; i < FZ_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        seed_shard(&c->shards[i]);
        pthread_mutex_unlock(&c->shards[i].lock);
        pub_shards_drain(c->pub_shards, i); /* late answers of the previous input */
    }
    fz_empty_dir(c->pub_dir);
    pub_cycles_config_t cfg = {
        .data_dir = c->pub_dir,
        .schedule_text = "manual",
        .sched = c->sched,
        .weights = {1, 3, 10},
        .shard_timeout_ms = FZ_SHARD_TIMEOUT_MS,
    };
    c->cycles = pub_cycles_new(&cfg, c->pub_shards, c->pub);
    FZ_CHECK(c->cycles != NULL, "pub_cycles_new failed in %s", c->pub_dir);
    c->features = pub_features_new(c->cycles, c->pub_shards, c->pub, FZ_SHARD_TIMEOUT_MS);
    FZ_CHECK(c->features != NULL, "pub_features_new failed");
    fz_cluster_check_events(c); /* drop what the previous input left */
}

pub_cycles_t *fz_cluster_cycles(fz_cluster_t *c)
{
    return c->cycles;
}

pub_features_t *fz_cluster_features(fz_cluster_t *c)
{
    return c->features;
}

cv_bus_t *fz_cluster_bus(fz_cluster_t *c)
{
    return c->bus;
}

/* ---- checks ---------------------------------------------------------------------- */

void fz_cluster_check_events(fz_cluster_t *c)
{
    for (;;) {
        cv_parts_t parts;
        int rc = cv_sock_recv(c->sub, &parts, 0);
        if (rc == CV_EAGAIN)
            return;
        FZ_CHECK(rc == 0, "receiving a broadcast failed: %s", cv_strerror(rc));
        FZ_CHECK(parts.n == 2, "a broadcast of %d frames", parts.n);
        const ProtobufCMessageDescriptor *d = NULL;
        if (parts.size[0] == 6 && !memcmp(parts.data[0], "ranked", 6))
            d = &canvass__v1__ranked_list__descriptor;
        else if (parts.size[0] == 7 && !memcmp(parts.data[0], "feature", 7))
            d = &canvass__v1__feature_event__descriptor;
        FZ_CHECK(d != NULL, "a broadcast with topic '%s'", fz_hex(parts.data[0], parts.size[0], 16));
        ProtobufCMessage *m = fz_roundtrip(d, parts.data[1], parts.size[1]);
        FZ_CHECK(m != NULL, "a '%s' broadcast does not decode: %s", (const char *)parts.data[0],
                 fz_hex(parts.data[1], parts.size[1], 128));
        if (d == &canvass__v1__feature_event__descriptor) {
            const Canvass__V1__FeatureEvent *ev = (const Canvass__V1__FeatureEvent *)m;
            fz_check_text("FeatureEvent.kind", ev->kind, 0, true);
            fz_check_text("FeatureEvent.feature_id", ev->feature_id, 0, true);
            fz_check_text("FeatureEvent.title", ev->title, 0, false);
        } else {
            const Canvass__V1__RankedList *l = (const Canvass__V1__RankedList *)m;
            for (size_t i = 0; i < l->n_entries; i++)
                FZ_CHECK(l->entries[i]->rank == i + 1, "broadcast list: entry %zu has rank %u", i,
                         l->entries[i]->rank);
        }
        protobuf_c_message_free_unpacked(m, NULL);
        cv_parts_free(&parts);
    }
}

void fz_cluster_check_stores(fz_cluster_t *c)
{
    for (int i = 0; i < FZ_SHARDS; i++) {
        shard_t *sh = &c->shards[i];
        pthread_mutex_lock(&sh->lock);
        cv_shard_close(&sh->store);
        char *report = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&report, &len);
        FZ_CHECK(out != NULL, "out of memory");
        int rc = cv_audit_check(sh->dir, out);
        fclose(out);
        FZ_CHECK(rc == 0 && !strncmp(report, "ok ", 3),
                 "shard %d: the counters differ from a recount (--check returned %d):\n%s", i, rc,
                 report);
        free(report);
        pthread_mutex_unlock(&sh->lock);
    }
}

Canvass__V1__AdminReply *fz_check_admin_reply(const uint8_t *buf, size_t len)
{
    FZ_CHECK(buf != NULL, "publish returned no reply");
    Canvass__V1__AdminReply *r =
        (Canvass__V1__AdminReply *)fz_roundtrip(&canvass__v1__admin_reply__descriptor, buf, len);
    FZ_CHECK(r != NULL, "publish's AdminReply does not decode: %s", fz_hex(buf, len, 128));
    FZ_CHECK(fz_status_known(r->status), "AdminReply status %d", (int)r->status);
    fz_check_text("AdminReply.error", r->error, 0, r->status != CV_ST_OK);
    if (r->result_case == CANVASS__V1__ADMIN_REPLY__RESULT_RANKED)
        for (size_t i = 0; i < r->ranked->n_entries; i++)
            FZ_CHECK(r->ranked->entries[i]->rank == i + 1, "ranked reply: entry %zu has rank %u",
                     i, r->ranked->entries[i]->rank);
    return r;
}
