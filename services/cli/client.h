/* client: one blocking connection that speaks the client protocol (A4).
 *
 * The command-line tool sends a request or two and waits for each reply, so a
 * plain blocking socket with poll() deadlines is all it needs: no event loop.
 * Every function that can fail writes a one-line, human-readable reason into
 * the caller's err buffer (NUL-terminated, truncated to errlen), suitable for
 * printing after "canvass: ".
 */
#ifndef CV_CLIENT_H
#define CV_CLIENT_H

#include "cv_codec.h"

#include <stddef.h>

typedef struct cv_client cv_client_t;

/* Splits an address into host and port.  Accepted forms: "host:port",
 * "[v6addr]:port" and either of those behind "tcp://".  Returns 0, or
 * CV_EINVAL when there is no port, the port is not 1-65535, or a part does
 * not fit its buffer. */
int cv_client_addr_split(const char *addr, char *host, size_t hostcap, char *port, size_t portcap);

/* Resolves `server` (see cv_client_addr_split) and connects, giving up after
 * timeout_ms.  On success returns 0 and sets *out to a new client (the
 * caller's, freed with cv_client_destroy).  Returns CV_EINVAL (bad address),
 * CV_EIO (refused, unreachable, unresolvable) or CV_ETIMEOUT. */
int cv_client_open(cv_client_t **out, const char *server, long timeout_ms, char *err,
                   size_t errlen);

/* Sends req as one frame and waits up to timeout_ms for the reply carrying
 * req->request_id (or request_id 0, which a server uses when it could not
 * read the frame).  Replies to other ids are skipped.  On success returns 0
 * and sets *reply (the caller's: canvass__v1__reply__free_unpacked(r, NULL)).
 * Returns CV_ENOMEM, CV_EIO (the connection failed or the server closed it),
 * CV_ETIMEOUT, CV_EFRAME (a reply frame with a bad length) or CV_EDECODE
 * (a reply that is not a Reply).  After a failure the connection is unusable.
 * A reply with a non-OK status is a success of this call. */
int cv_client_call(cv_client_t *c, const Canvass__V1__Request *req, Canvass__V1__Reply **reply,
                   long timeout_ms, char *err, size_t errlen);

/* The address the client was opened with (borrowed, lives as long as c). */
const char *cv_client_server(const cv_client_t *c);

/* Closes the connection and frees the client.  Safe on NULL and twice;
 * nulls *c_p. */
void cv_client_destroy(cv_client_t **c_p);

#endif
