/* fz_util: helpers shared by the fuzz targets (see fz_util.h). */
#include "fz_util.h"
#include "cv_json.h"
#include "cv_log.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void remove_tmpdirs(void);

void fz_fail(const char *fmt, ...)
{
    remove_tmpdirs();
    va_list ap;
    va_start(ap, fmt);
    fputs("FUZZ INVARIANT: ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    abort();
}

void fz_init_log(const char *ident)
{
    const char *name = getenv("FUZZ_LOG_LEVEL");
    int level = name ? cv_log_level_parse(name) : CV_LOG_DEBUG;
    cv_log_init(ident, -1, level < 0 ? CV_LOG_DEBUG : level);
}

/* ---- temporary directories ----------------------------------------------- */

#define FZ_TMPDIRS_MAX 8
static char tmpdirs[FZ_TMPDIRS_MAX][128];
static int ntmpdirs;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static int remove_inner(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level > 0)
        remove(path);
    return 0;
}

static void remove_tmpdirs(void)
{
    for (int i = 0; i < ntmpdirs; i++)
        nftw(tmpdirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes the directories that processes which no longer run left in
 * base: a target killed by a timeout, an out-of-memory or kill -9 never
 * gets to its own cleanup. */
static void sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[32];
        int pid;
        if (sscanf(e->d_name, "fuzz-%31[^-]-%d-", name, &pid) != 2 || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

const char *fz_tmpdir(const char *name)
{
    if (ntmpdirs == FZ_TMPDIRS_MAX)
        fz_fail("more than %d temporary directories", FZ_TMPDIRS_MAX);
    /* tmpfs when there is one: the stores sync on close, and a disk would
     * make that most of the time an input takes. */
    const char *base = getenv("FUZZ_TMPDIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (ntmpdirs == 0)
        sweep_stale(base);
    char *d = tmpdirs[ntmpdirs];
    snprintf(d, sizeof tmpdirs[0], "%.30s/fuzz-%.20s-%d-XXXXXX", base, name, (int)getpid());
    if (!mkdtemp(d))
        fz_fail("cannot create a temporary directory for %s", name);
    if (ntmpdirs++ == 0) {
        atexit(remove_tmpdirs);
        /* A sanitizer report ends the process without atexit. */
        __sanitizer_set_death_callback(remove_tmpdirs);
    }
    return d;
}

void fz_empty_dir(const char *dir)
{
    nftw(dir, remove_inner, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- text ------------------------------------------------------------------ */

static bool skip_known(void)
{
    static int skip = -1;
    if (skip < 0) {
        const char *e = getenv("FUZZ_SKIP_KNOWN");
        skip = e && *e && strcmp(e, "0");
    }
    return skip;
}


bool fz_utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* Under FUZZ_SKIP_KNOWN, reports a broken text once per (what, problem)
 * and returns true; otherwise returns false. */
static bool known_text(const char *what, const char *problem, const char *text, size_t len)
{
    if (!skip_known())
        return false;
    static const char *seen[64][2];
    for (int i = 0; i < 64; i++) {
        if (seen[i][0] == what && seen[i][1] == problem)
            return true;
        if (!seen[i][0]) {
            seen[i][0] = what;
            seen[i][1] = problem;
            printf("FUZZ KNOWN: %s %s: %s\n", what, problem, fz_hex(text, len, 96));
            return true;
        }
    }
    return true;
}

void fz_check_text(const char *what, const char *text, size_t cap, bool nonempty)
{
    FZ_CHECK(text != NULL, "%s is NULL", what);
    size_t len = cap ? strnlen(text, cap) : strlen(text);
    FZ_CHECK(!cap || len < cap, "%s is not NUL-terminated within %zu bytes", what, cap);
    if (nonempty && len == 0 && !known_text(what, "is empty", text, len))
        fz_fail("%s is empty", what);
    if (!fz_utf8_ok(text, len) && !known_text(what, "is not valid UTF-8", text, len))
        fz_fail("%s is not valid UTF-8: %s", what, fz_hex(text, len, 96));
}

const char *fz_hex(const void *data, size_t len, size_t max)
{
    static char out[2 * 512 + 8];
    const unsigned char *p = data;
    if (max > 512)
        max = 512;
    size_t n = len < max ? len : max, o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%02x", p[i]);
    if (n < len)
        snprintf(out + o, sizeof out - o, "...");
    return out;
}

/* ---- messages -------------------------------------------------------------- */

bool fz_status_known(int status)
{
    return status >= CV_ST_OK && status <= CV_ST_INTERNAL;
}

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    uint8_t *buf = cv_codec_pack(msg, len);
    FZ_CHECK(buf != NULL, "out of memory packing %s", msg->descriptor->name);
    /* The size protobuf-c predicts is the size it writes; a mismatch would
     * mean a short or overrunning buffer somewhere else. */
    FZ_CHECK(*len == protobuf_c_message_get_packed_size(msg), "%s packed to %zu bytes, not %zu",
             msg->descriptor->name, *len, protobuf_c_message_get_packed_size(msg));
    return buf;
}

/* True when m or a message inside it holds an unknown field numbered 0.
 * protobuf-c 1.4 reads a multi-byte tag varint that decodes to 0 (e.g.
 * 80 00) as unknown field 0 instead of refusing the message, keeps it, and
 * packs it back as 00 00, which nothing can decode. */
static bool has_field0(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
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

bool fz_known_field0(const ProtobufCMessage *m)
{
    return skip_known() && has_field0(m);
}

bool fz_known_field0_bytes(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                           size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    bool known = m && fz_known_field0(m);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return known;
}

/* orig: the bytes msg was unpacked from (NULL when built here), for the
 * failure text. */
static void check_packs(const ProtobufCMessage *msg, const uint8_t *orig, size_t origlen)
{
    size_t len1, len2;
    uint8_t *p1 = pack(msg, &len1);
    ProtobufCMessage *again = protobuf_c_message_unpack(msg->descriptor, NULL, len1, p1);
    if (!again) {
        char in[2 * 256 + 8];
        snprintf(in, sizeof in, "%s", orig ? fz_hex(orig, origlen, 256) : "-");
        fz_fail("%s packed by protobuf-c does not unpack: %s (unpacked from %s)",
                msg->descriptor->name, fz_hex(p1, len1, 256), in);
    }
    uint8_t *p2 = pack(again, &len2);
    if (len1 != len2 || memcmp(p1, p2, len1)) {
        char in[2 * 256 + 8];
        snprintf(in, sizeof in, "%s", fz_hex(p1, len1, 256));
        fz_fail("%s packs differently after a round trip: %s then %s", msg->descriptor->name, in,
                fz_hex(p2, len2, 256));
    }
    protobuf_c_message_free_unpacked(again, NULL);
    free(p1);
    free(p2);
}

void fz_check_packs(const ProtobufCMessage *msg)
{
    check_packs(msg, NULL, 0);
}

ProtobufCMessage *fz_roundtrip(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                               size_t len)
{
    /* The services' own decode: it refuses field number 0 (see cv_codec.h). */
    ProtobufCMessage *m = cv_codec_unpack(desc, len, data);
    if (m)
        check_packs(m, data, len);
    return m;
}

/* ---- JSON ------------------------------------------------------------------ */

static void check_json(const char *what, char *text)
{
    FZ_CHECK(text != NULL, "%s: cv_json returned NULL (it may only for out of memory)", what);
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    FZ_CHECK(j != NULL, "%s: cv_json printed invalid JSON (%s): %.300s", what, err.text, text);
    FZ_CHECK(json_is_object(j), "%s: cv_json printed a JSON %d, not an object", what,
             (int)json_typeof(j));
    json_decref(j);
    free(text);
}

void fz_check_json_reply(const Canvass__V1__AdminReply *r)
{
    switch (r->result_case) {
    case CANVASS__V1__ADMIN_REPLY__RESULT_RANKED: {
        check_json("ranked", cv_json_ranked(r->ranked));
        char *csv = cv_json_ranked_csv(r->ranked);
        FZ_CHECK(csv != NULL, "ranked csv: cv_json returned NULL");
        FZ_CHECK(!strncmp(csv, "rank,feature_id,", 16), "ranked csv starts '%.40s'", csv);
        free(csv);
        break;
    }
    case CANVASS__V1__ADMIN_REPLY__RESULT_CYCLES:
        check_json("cycles", cv_json_cycles(r->cycles));
        break;
    case CANVASS__V1__ADMIN_REPLY__RESULT_CLOSED:
        check_json("closed", cv_json_cycle(r->closed));
        break;
    case CANVASS__V1__ADMIN_REPLY__RESULT_FEATURE:
        check_json("feature", cv_json_feature(r->feature));
        break;
    case CANVASS__V1__ADMIN_REPLY__RESULT_MERGE:
        check_json("merge", cv_json_merge(r->merge));
        break;
    case CANVASS__V1__ADMIN_REPLY__RESULT_VOTERS:
        check_json("voters", cv_json_voters(r->voters));
        break;
    case CANVASS__V1__ADMIN_REPLY__RESULT_FEATURES:
        check_json("features", cv_json_features(r->features));
        break;
    default:
        check_json("error", cv_json_error(r->status, r->error));
    }
}
