/* fuzz_admin_request: the release-manager API (DESIGN A7) as publish serves
 * it on its REP socket, in front of two real tally shards (fz_cluster).
 *
 * Input: a sequence of 4-byte big-endian lengths, each followed by that
 * many bytes of an AdminRequest (at most 16); bytes left over after the
 * last whole one are one more request.  Every input starts from the same
 * cluster: four open features a..d with votes on two shards, cycle 1 open.
 *
 * Each request goes through pub_api_handle() exactly as a frame received
 * on the REP socket does (ranked, cycles, close, feature show / status /
 * merge / voters, features), so a merge or a status change really runs its
 * TallyRequests against the shards.  Checked, beyond the sanitizers:
 *   - a request that decodes packs back to the same bytes after a round
 *     trip;
 *   - every request gets one AdminReply that decodes and round-trips, with
 *     a known status, a non-empty valid UTF-8 error text when not OK, and
 *     ranks 1..n in a ranked list;
 *   - the reply renders with cv_json (as `canvass --format json` and the
 *     HTTP API show it) into valid JSON, and CSV for a ranked list;
 *   - every broadcast (ranked lists, feature events) decodes;
 *   - afterwards both shards' counters equal a recount of their votes, so
 *     merges and status changes never count a vote twice or lose one.
 * The same bytes are also decoded as an AdminReply, the CLI's input, and
 * rendered the same way.
 */
#include "fz_cluster.h"
#include "fz_util.h"
#include "api.h"

#include <stdlib.h>

#define MAX_REQUESTS 16

static fz_cluster_t *cl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init_log("fuzz_admin_request");
    cl = fz_cluster_new("admin");
    return 0;
}

static void one_request(const uint8_t *data, size_t len)
{
    if (fz_known_field0_bytes(&canvass__v1__admin_request__descriptor, data, len))
        return;
    ProtobufCMessage *req = fz_roundtrip(&canvass__v1__admin_request__descriptor, data, len);
    if (req)
        protobuf_c_message_free_unpacked(req, NULL);

    size_t olen = 0;
    uint8_t *out = pub_api_handle(fz_cluster_cycles(cl), fz_cluster_features(cl), data, len, &olen);
    Canvass__V1__AdminReply *rep = fz_check_admin_reply(out, olen);
    fz_check_json_reply(rep);
    canvass__v1__admin_reply__free_unpacked(rep, NULL);
    free(out);

    /* The CLI's side: whatever publish might send, rendered. */
    Canvass__V1__AdminReply *any =
        (Canvass__V1__AdminReply *)fz_roundtrip(&canvass__v1__admin_reply__descriptor, data, len);
    if (any) {
        fz_check_json_reply(any);
        canvass__v1__admin_reply__free_unpacked(any, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_cluster_reset(cl);
    size_t off = 0;
    for (int n = 0; n < MAX_REQUESTS && off < size; n++) {
        size_t len = size - off;
        if (len >= 4) {
            uint32_t l = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                         (uint32_t)data[off + 2] << 8 | data[off + 3];
            if (l <= len - 4) {
                off += 4;
                len = l;
            }
        }
        one_request(data + off, len);
        off += len;
        fz_cluster_check_events(cl);
    }
    fz_cluster_check_stores(cl);
    return 0;
}
