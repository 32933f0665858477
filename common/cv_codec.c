/* cv_codec: status and tier names, packing. */
#include "cv_codec.h"

#include <stdlib.h>
#include <string.h>

const char *cv_status_name(int status)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&canvass__v1__status__descriptor, status);
    return v ? v->name : "UNKNOWN";
}

int cv_tier_parse(const char *name)
{
    if (!name || !*name || !strcmp(name, "member"))
        return CV_TIER_MEMBER;
    if (!strcmp(name, "core"))
        return CV_TIER_CORE;
    if (!strcmp(name, "honorary"))
        return CV_TIER_HONORARY;
    return -1;
}

const char *cv_tier_name(int tier)
{
    static const char *names[] = {"member", "core", "honorary"};
    return tier >= 0 && tier < CV_TIERS ? names[tier] : "member";
}

uint8_t *cv_codec_pack(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = protobuf_c_message_pack(msg, buf);
    return buf;
}
