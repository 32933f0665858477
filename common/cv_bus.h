/* cv_bus: the ZeroMQ sockets the services talk over.
 *
 * A thin layer over libzmq so that service code reads as the domain and so
 * that security (CURVE) and socket defaults live in one place.  Messages are
 * multi-part; received parts are copied into malloc'd buffers the caller owns
 * (through cv_parts_free).
 */
#ifndef CV_BUS_H
#define CV_BUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_bus cv_bus_t;   /* one per process: the ZeroMQ context */
typedef struct cv_sock cv_sock_t;

typedef enum {
    CV_SOCK_ROUTER,
    CV_SOCK_DEALER,
    CV_SOCK_PUB,
    CV_SOCK_SUB,
    CV_SOCK_REP,
    CV_SOCK_REQ
} cv_sock_type_t;

#define CV_PARTS_MAX 8
typedef struct {
    int n;
    uint8_t *data[CV_PARTS_MAX]; /* owned, each NUL-terminated for convenience */
    size_t size[CV_PARTS_MAX];
} cv_parts_t;

/* Creates the process's context; NULL on failure. */
cv_bus_t *cv_bus_new(void);

/* ---- CURVE (DESIGN A9 "between hosts") ------------------------------------
 * With keys set, every socket this bus binds is a CURVE server with the
 * process's own key pair, and a ZAP handler (a thread of the bus, domain
 * "canvass") admits only clients whose public key is in the allow list or
 * is the process's own -- any other key, and every NULL or PLAIN peer, is
 * refused (and logged).  Every socket it connects is a CURVE client with
 * the process's own key pair that expects the server key given.  The
 * servers of a cluster (tally shards, publish) share one key pair; each
 * client (ingest, the CLI, subscribers) has its own, listed in the servers'
 * allow file.  Key files are written by `canvass keygen`. */

#define CV_CURVE_KEY_LEN 40 /* Z85 text of a 32-byte key */

/* Writes a new key pair, Z85, NUL-terminated.  Returns 0 or CV_EIO. */
int cv_curve_keypair(char pub[CV_CURVE_KEY_LEN + 1], char sec[CV_CURVE_KEY_LEN + 1]);

/* Reads a key file: "public KEY" and "secret KEY" lines (a .key file; the
 * secret may be absent: a .pub file is "KEY" or "public KEY"), # comments.
 * Returns 0, CV_ENOTFOUND (no such file) or CV_EINVAL (why in err). */
int cv_curve_read(const char *path, char pub[CV_CURVE_KEY_LEN + 1],
                  char sec[CV_CURVE_KEY_LEN + 1], char *err, size_t errlen);

/* Turns CURVE on for every socket bound or connected from now on: own key
 * pair (both Z85), the servers' public key for connections (NULL: own),
 * and the allow file of client public keys for bound sockets (NULL: only
 * the own key).  Starts the ZAP handler, whose socket is bound before this
 * returns, so no socket of the bus is ever without one.  Once per bus.
 * Returns 0, or CV_EINVAL / CV_EIO with the reason in err. */
int cv_bus_curve(cv_bus_t *bus, const char *pub, const char *sec, const char *server_pub,
                 const char *allow_path, char *err, size_t errlen);

/* Configures CURVE from the three settings every service has (--curve-key
 * FILE, --curve-server FILE-or-KEY, --curve-allow FILE); nothing when key
 * is empty.  Logs whether CURVE is on.  Returns 0 or CV_EINVAL (why in
 * err). */
int cv_bus_curve_setup(cv_bus_t *bus, const char *key, const char *server, const char *allow,
                       char *err, size_t errlen);

/* The three rows of a service's config table (cv_config.h) for the above. */
/* clang-format off */
#define CV_BUS_CURVE_OPTS(key, server, allow)                                          \
    {"curve-key", CV_CFG_STR, NULL, 0, 0, &(key),                                      \
     "this process's CURVE key pair file (canvass keygen); empty: unencrypted"},       \
    {"curve-server", CV_CFG_STR, NULL, 0, 0, &(server),                                \
     "public key of the servers it connects to (a .pub file or 40 Z85 characters)"},  \
    {"curve-allow", CV_CFG_STR, NULL, 0, 0, &(allow),                                  \
     "file of client public keys allowed to connect to its sockets, one a line"}
/* clang-format on */

/* Terminates the context.  Every socket must be destroyed first.  Safe on
 * NULL and twice; nulls *bus_p. */
void cv_bus_destroy(cv_bus_t **bus_p);

/* Creates a socket with linger 0 and unlimited high-water marks; NULL on
 * failure (logged). */
cv_sock_t *cv_sock_new(cv_bus_t *bus, cv_sock_type_t type);

/* Closes the socket; safe on NULL and twice; nulls *sock_p. */
void cv_sock_destroy(cv_sock_t **sock_p);

/* Binds / connects to an endpoint such as "tcp://127.0.0.1:7710".
 * Returns 0 or CV_EIO (logged with ZeroMQ's reason). */
int cv_sock_bind(cv_sock_t *s, const char *endpoint);
int cv_sock_connect(cv_sock_t *s, const char *endpoint);

/* SUB only: subscribe to a topic prefix ("" for everything). */
int cv_sock_subscribe(cv_sock_t *s, const char *prefix);

/* Sends n parts as one message.  With dontwait, returns CV_EAGAIN instead of
 * blocking when the message cannot be queued.  Returns 0 or CV_EIO / CV_EAGAIN.
 * On failure nothing was sent. */
int cv_sock_send(cv_sock_t *s, int n, const void *const *data, const size_t *size, int dontwait);

/* Receives one whole message (at most CV_PARTS_MAX parts; extra parts are
 * dropped and the message is reported as CV_EDECODE).  timeout_ms: 0 = do not
 * wait, -1 = wait forever.  Returns 0, CV_EAGAIN (nothing within the
 * timeout), CV_EDECODE or CV_EIO. */
int cv_sock_recv(cv_sock_t *s, cv_parts_t *out, long timeout_ms);

/* Frees the parts' buffers and sets n to 0. */
void cv_parts_free(cv_parts_t *p);

/* The file descriptor that signals (edge-triggered) that the socket's events
 * may have changed, for a libuv poll handle; -1 on failure. */
int cv_sock_fd(cv_sock_t *s);

/* Non-blocking checks of the socket's current state. */
int cv_sock_readable(cv_sock_t *s);
int cv_sock_writable(cv_sock_t *s);

/* Waits until one of n sockets is readable or timeout_ms passes (-1: no
 * limit).  readable[i] is set to 1 for each readable socket.  Returns the
 * number of readable sockets, 0 on timeout, or CV_EIO; an interrupted wait
 * (a signal) returns 0. */
int cv_bus_poll(cv_sock_t **socks, int n, int *readable, long timeout_ms);

#endif
