/* reply: what publish sends back and out -- packed AdminReplies for the REP
 * API, "feature" events on the PUB socket, and the translation of a tally
 * shard's answer about one feature into the status and text a release
 * manager sees.  Shared by api.c, features.c and merges.c.
 */
#ifndef PUB_REPLY_H
#define PUB_REPLY_H

#include "cv_bus.h"
#include "cv_codec.h"
#include "shards.h"

#include <stddef.h>
#include <stdint.h>

/* Packs r into a new buffer the caller frees and sets *len; NULL when out
 * of memory. */
uint8_t *pub_reply_pack(Canvass__V1__AdminReply *r, size_t *len);

/* AdminReply{status, error}, packed as above. */
uint8_t *pub_reply_error(cv_status_t st, const char *err, size_t *len);

/* Broadcasts "feature" + the packed event on pub without blocking.  A
 * failure is logged, not returned: the change it announces is committed and
 * can be read back with feature show. */
void pub_reply_event(cv_sock_t *pub, const Canvass__V1__FeatureEvent *ev);

/* Checks that feature_id is 1-64 bytes of [A-Za-z0-9_-]; otherwise writes
 * "bad feature id 'x' (1-64 bytes of [A-Za-z0-9_-])" into err and returns
 * CV_ST_INVALID. */
cv_status_t pub_reply_check_id(const char *feature_id, char *err, size_t errlen);

/* Sends req to the shard owning feature_id (see pub_shards_call) and
 * checks its answer.  Returns CV_ST_OK with *reply set (the caller's, free
 * with canvass__v1__tally_reply__free_unpacked) when the shard answered OK
 * with the result `want`.  Otherwise *reply is NULL and err holds:
 *   UNAVAILABLE "shard 1 did not answer within 5000 ms"
 *   NOT_FOUND, INVALID or CLOSED: the shard's own status and error text
 *     (e.g. NOT_FOUND "no feature 'F1'")
 *   UNAVAILABLE "shard 1 answered UNAVAILABLE: <its error>"
 *   INTERNAL "shard 1 answered <STATUS>: <its error>" for any other status
 *   INTERNAL "shard 1 answered OK without the expected result" */
cv_status_t pub_reply_ask(pub_shards_t *sh, const char *feature_id, Canvass__V1__TallyRequest *req,
                          Canvass__V1__TallyReply__ResultCase want, long timeout_ms,
                          Canvass__V1__TallyReply **reply, char *err, size_t errlen);

#endif
