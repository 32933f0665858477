/* fuzz_tally_reply: publish reading what tally shards answer, when a shard
 * answers garbage, a stale or foreign reply, an error, or a well-formed
 * reply with hostile contents (fz_cluster).
 *
 * Input: one control byte, then a sequence of 4-byte big-endian lengths
 * each followed by that many bytes of a TallyReply (at most 8; bytes left
 * after the last whole one are one more).
 *   ctl bits 0-2  the release-manager action publish runs: ranked live,
 *                 close, feature show, status change, merge across shards,
 *                 voters, feature list, or close then ranked by trending
 *   ctl bit 3     which shard answers with the first reply; the replies
 *                 then go to the shards in turn, each shard using its
 *                 share in the order of the requests it receives
 *   ctl bit 7     send the replies as they are; otherwise each one that
 *                 decodes is re-packed with the corr of the request it
 *                 answers, so that publish takes it instead of dropping it
 * Each shard answers publish's requests with its replies first (each
 * followed by the real one, which publish then drops as stale), so
 * the standings, acks, feature standings, voter pages and merge results
 * publish works with are the fuzzer's.
 *
 * Checked, beyond the sanitizers: every TallyReply (and the same bytes as
 * Standings and RankedList) round-trips; publish answers the action with
 * one AdminReply that decodes, has a known status and a valid UTF-8 error
 * text when not OK, ranks 1..n, and renders as valid JSON; everything it
 * broadcasts decodes; and the shards' own stores stay consistent (counters
 * equal a recount), whatever publish was told.
 */
#include "fz_cluster.h"
#include "fz_util.h"
#include "api.h"

#include <stdlib.h>

#define MAX_REPLIES 8

static fz_cluster_t *cl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_tally_reply");
    cl = fz_cluster_new("reply");
    return 0;
}

static void run_admin(const Canvass__V1__AdminRequest *req)
{
    size_t len, olen = 0;
    uint8_t *buf = cv_codec_pack(&req->base, &len);
    FZ_CHECK(buf != NULL, "out of memory");
    uint8_t *out = pub_api_handle(fz_cluster_cycles(cl), fz_cluster_features(cl), buf, len, &olen);
    Canvass__V1__AdminReply *rep = fz_check_admin_reply(out, olen);
    fz_check_json_reply(rep);
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    free(out);
    free(buf);
    fz_cluster_check_events(cl);
}

static void run_action(unsigned action)
{
    Canvass__V1__AdminRequest r = CANVASS__V1__ADMIN_REQUEST__INIT;
    Canvass__V1__RankedQuery ranked = CANVASS__V1__RANKED_QUERY__INIT;
    Canvass__V1__CloseNow close = CANVASS__V1__CLOSE_NOW__INIT;
    Canvass__V1__FeatureShow show = CANVASS__V1__FEATURE_SHOW__INIT;
    Canvass__V1__FeatureStatus status = CANVASS__V1__FEATURE_STATUS__INIT;
    Canvass__V1__FeatureMerge merge = CANVASS__V1__FEATURE_MERGE__INIT;
    Canvass__V1__VotersQuery voters = CANVASS__V1__VOTERS_QUERY__INIT;
    Canvass__V1__FeatureList list = CANVASS__V1__FEATURE_LIST__INIT;
    switch (action) {
    case 0:
        ranked.cycle = (char *)"live";
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
        r.ranked = &ranked;
        break;
    case 1:
    case 7:
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_CLOSE;
        r.close = &close;
        break;
    case 2:
        show.feature_id = (char *)"a";
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_SHOW;
        r.feature_show = &show;
        break;
    case 3:
        status.feature_id = (char *)"b";
        status.status = (char *)"shipped";
        status.release = (char *)"2026.1";
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_STATUS;
        r.feature_status = &status;
        break;
    case 4:
        merge.src = (char *)"c";
        merge.dst = (char *)"a";
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_MERGE;
        r.feature_merge = &merge;
        break;
    case 5:
        voters.feature_id = (char *)"d";
        voters.limit = 2;
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURE_VOTERS;
        r.feature_voters = &voters;
        break;
    default:
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_FEATURES;
        r.features = &list;
        break;
    }
    run_admin(&r);
    if (action == 7) {
        ranked.cycle = (char *)"1";
        ranked.order = (char *)"trending";
        r.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
        r.ranked = &ranked;
        run_admin(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned action = data[0] & 7;
    int patch = !(data[0] & 0x80);
    int first_shard = (data[0] >> 3) & 1;
    fz_cluster_reset(cl);
    size_t off = 1;
    for (int n = 0; n < MAX_REPLIES && off < size; n++) {
        size_t len = size - off;
        if (len >= 4) {
            uint32_t l = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                         (uint32_t)data[off + 2] << 8 | data[off + 3];
            if (l <= len - 4) {
                off += 4;
                len = l;
            }
        }
        static const ProtobufCMessageDescriptor *const types[] = {
            &canvass__v1__tally_reply__descriptor, &canvass__v1__standings__descriptor,
            &canvass__v1__ranked_list__descriptor};
        for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
            ProtobufCMessage *m = fz_roundtrip(types[t], data + off, len);
            if (m)
                protobuf_c_message_free_unpacked(m, NULL);
        }
        if (!fz_known_field0_bytes(&canvass__v1__tally_reply__descriptor, data + off, len))
            fz_cluster_inject(cl, first_shard + n, data + off, len, patch);
        off += len;
    }
    run_action(action);
    fz_cluster_inject_clear(cl);
    fz_cluster_check_stores(cl);
    return 0;
}
