/* fz_util: what the libFuzzer targets of tests/fuzz/ share.
 *
 * A target checks invariants beyond "no sanitizer report"; a broken one is
 * reported with fz_fail(), which prints one line naming the invariant and
 * aborts, so libFuzzer keeps the input as a crash like any other.  The line
 * goes to stdout because run.sh starts the targets with -close_fd_mask=2,
 * which sends the services' own log lines (stderr) to /dev/null while
 * libFuzzer and the sanitizers keep their report stream.
 */
#ifndef FZ_UTIL_H
#define FZ_UTIL_H

#include "cv_codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Prints "FUZZ INVARIANT: <text>" and aborts. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define FZ_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond))                                                           \
            fz_fail(__VA_ARGS__);                                              \
    } while (0)

/* Sets up logging for a target: cv_log at the level named by FUZZ_LOG_LEVEL
 * (debug, info, warn, error; default debug, so that every log line a
 * service formats from hostile input is formatted under the sanitizers). */
void fz_init_log(const char *ident);

/* Creates a fresh directory fuzz-<name>-<pid>-XXXXXX in $FUZZ_TMPDIR, else
 * in /dev/shm when writable, else in /tmp; it is removed with all its
 * contents at exit, on fz_fail() and on a sanitizer report, and directories
 * of processes that are gone are swept on the first call.  name must not
 * contain '-'.  Returns its path (static storage per call). */
const char *fz_tmpdir(const char *name);

/* Removes everything inside dir (not dir itself). */
void fz_empty_dir(const char *dir);

/* UTF-8 well-formedness, written independently of cv_utf8_valid(): decodes
 * each sequence to its code point and then checks the code point's range
 * against the sequence length (shortest form), surrogates and U+10FFFF. */
bool fz_utf8_ok(const char *s, size_t len);

/* Checks the text a service sends back as an error: NUL-terminated within
 * cap bytes (cap 0: no bound), non-empty when required, and valid UTF-8 (it
 * travels in a proto3 string, which strict decoders refuse otherwise).
 * `what` (a string literal) names it in the failure. */
void fz_check_text(const char *what, const char *text, size_t cap, bool nonempty);

/* Round trip: unpacks data as desc's message.  When it decodes, packs it,
 * unpacks that (which must work), packs again, and checks that both packings
 * are the same bytes.  Returns the first unpacked message (the caller frees
 * it with protobuf_c_message_free_unpacked), or NULL when data does not
 * decode, and also (as if it did not decode) under fz_known_field0(). */
ProtobufCMessage *fz_roundtrip(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                               size_t len);

/* Packs msg, unpacks the bytes as the same type (which must work) and
 * checks that packing that gives the same bytes again. */
void fz_check_packs(const ProtobufCMessage *msg);

/* Known bugs that would stop every fuzzing run at the same place.  With
 * FUZZ_SKIP_KNOWN=1 in the environment (for hunting further bugs while
 * those wait for their fix; run.sh never sets it), an error text that is
 * empty or not UTF-8 is reported once per kind on stdout ("FUZZ KNOWN:
 * ...") instead of failing, and fz_known_field0() is true when m holds an unknown field
 * numbered 0 (protobuf-c keeps it and packs it as bytes nothing decodes;
 * see fz_util.c), so that a target can skip such a message.  Always false
 * otherwise. */
bool fz_known_field0(const ProtobufCMessage *m);

/* The same for bytes: true (only under FUZZ_SKIP_KNOWN=1) when data
 * decodes as desc's message and holds an unknown field numbered 0. */
bool fz_known_field0_bytes(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                           size_t len);

/* True when status is one of the canvass.v1.Status values. */
bool fz_status_known(int status);

/* Renders r with cv_json as the CLI and the HTTP API do (its result, or
 * the error object when it has none; a ranked list also as CSV) and checks
 * that every rendering exists (NULL means out of memory, nothing else) and
 * that every JSON one parses back as one JSON object. */
void fz_check_json_reply(const Canvass__V1__AdminReply *r);

/* Hex of the first max bytes of data, for failure texts (static buffer). */
const char *fz_hex(const void *data, size_t len, size_t max);

#endif
