/* cv_codec: the canvass.v1 messages (proto/canvass.proto) and helpers.
 *
 * The message types are the protobuf-c ones generated from the .proto by the
 * Makefile into $(BUILD)/gen; this header is the one place that includes
 * them.  Short aliases keep service code readable.
 */
#ifndef CV_CODEC_H
#define CV_CODEC_H

#include "canvass.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef Canvass__V1__Status cv_status_t;
#define CV_ST_OK CANVASS__V1__STATUS__OK
#define CV_ST_INVALID CANVASS__V1__STATUS__INVALID
#define CV_ST_BAD_FRAME CANVASS__V1__STATUS__BAD_FRAME
#define CV_ST_UNAUTHENTICATED CANVASS__V1__STATUS__UNAUTHENTICATED
#define CV_ST_FORBIDDEN CANVASS__V1__STATUS__FORBIDDEN
#define CV_ST_NOT_FOUND CANVASS__V1__STATUS__NOT_FOUND
#define CV_ST_CLOSED CANVASS__V1__STATUS__CLOSED
#define CV_ST_RATE_LIMITED CANVASS__V1__STATUS__RATE_LIMITED
#define CV_ST_UNAVAILABLE CANVASS__V1__STATUS__UNAVAILABLE
#define CV_ST_INTERNAL CANVASS__V1__STATUS__INTERNAL

/* Tiers, as indexes into FeatureStanding.up/down and the weight table. */
enum { CV_TIER_MEMBER = 0, CV_TIER_CORE = 1, CV_TIER_HONORARY = 2, CV_TIERS = 3 };

/* "OK", "INVALID", ... for a status; "UNKNOWN" otherwise.  Static. */
const char *cv_status_name(int status);

/* Maps "" or "member" / "core" / "honorary" to a CV_TIER_*; -1 otherwise. */
int cv_tier_parse(const char *name);

/* "member" / "core" / "honorary".  Static. */
const char *cv_tier_name(int tier);

/* Unpacks bytes from the network as a message of type desc.  Returns the
 * message (free it with protobuf_c_message_free_unpacked), or NULL when the
 * bytes do not decode -- including when any (sub)message carries field
 * number 0, which protobuf forbids but protobuf-c 1.4 keeps as an unknown
 * field and then packs into bytes nothing can read: a message forwarded with
 * it would poison every batch it joins. */
ProtobufCMessage *cv_codec_unpack(const ProtobufCMessageDescriptor *desc, size_t len,
                                  const uint8_t *data);

/* Packs any protobuf-c message into a new malloc'd buffer (the caller's);
 * sets *len.  Returns NULL when out of memory. */
uint8_t *cv_codec_pack(const ProtobufCMessage *msg, size_t *len);

#endif
