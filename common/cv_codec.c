/* cv_codec: status and tier names, packing. */
#include "cv_codec.h"

#include <stdbool.h>
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

/* True when m or any message inside it holds an unknown field numbered 0. */
static bool has_field0(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_field0(v[k]))
                    return true;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
            if (sub && has_field0(sub))
                return true;
        }
    }
    return false;
}

ProtobufCMessage *cv_codec_unpack(const ProtobufCMessageDescriptor *desc, size_t len,
                                  const uint8_t *data)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (m && has_field0(m)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}
