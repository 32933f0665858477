/* cv_err: the one list of Canvass error codes.
 *
 * Every function that can fail returns 0 on success or a negative CV_E* code.
 * Codes from libraries (LMDB, ZeroMQ, libuv, protobuf-c) are translated into
 * these inside the module that wraps the library, which logs the original.
 */
#ifndef CV_ERR_H
#define CV_ERR_H

#define CV_ERRNO_MAP(X)                                                        \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid argument")                                           \
    X(NOTFOUND, -3, "not found")                                               \
    X(FRAME, -4, "bad frame")                                                  \
    X(DECODE, -5, "undecodable message")                                       \
    X(FULL, -6, "storage map full")                                            \
    X(IO, -7, "input/output error")                                            \
    X(AGAIN, -8, "try again")                                                  \
    X(TIMEOUT, -9, "timed out")                                                \
    X(MISMATCH, -10, "configuration mismatch")                                 \
    X(EXISTS, -11, "already exists")                                           \
    X(CLOSED, -12, "closed")

typedef enum {
#define CV__ERR_ENUM(name, code, text) CV_E##name = (code),
    CV_ERRNO_MAP(CV__ERR_ENUM)
#undef CV__ERR_ENUM
} cv_errno_t;

/* Returns a static, human-readable text for a CV_E* code ("ok" for 0,
 * "unknown error" for anything not in the map). */
const char *cv_strerror(int err);

#endif
