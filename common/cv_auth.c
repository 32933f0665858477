/* cv_auth: the key file, key lookup and user tokens (see cv_auth.h).
 *
 * The table is an array of apps in file order.  Each app keeps a BLAKE2b
 * hash of its key, never the key itself: a lookup hashes the presented key
 * once and compares it with every app's hash using sodium_memcmp, which
 * takes the same time whatever the bytes, and goes through the whole array
 * whether or not an earlier app matched.  So neither the timing of an
 * answer nor the position of the app in the file tells a guesser how close
 * a guess was.  Secrets are wiped when the table is freed.
 */
#include "cv_auth.h"
#include "cv_err.h"
#include "cv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CV__FILE_MAX (1u << 20)
#define CV__HASH_LEN 32
#define CV__KEY_WARN_LEN 16
#define CV__NAME_PREFIX 6

struct cv_auth_app {
    uint8_t key_hash[CV__HASH_LEN];
    uint8_t secret[CV_AUTH_SECRET_MAX];
    size_t secret_len; /* 0: none ("-") */
    unsigned rights;
    int line;
    char name[CV_AUTH_NAME_MAX + 4]; /* room for a key prefix and "..." */
};

struct cv_auth {
    cv_auth_app_t *apps;
    size_t n;
};

static const struct {
    const char *word;
    unsigned bit;
} rights_table[] = {
    {"vote", CV_AUTH_VOTE},
    {"submit", CV_AUTH_SUBMIT},
    {"assert_tier", CV_AUTH_ASSERT_TIER},
    {"admin", CV_AUTH_ADMIN},
    {"require_token", CV_AUTH_REQUIRE_TOKEN},
};
#define CV__NRIGHTS (sizeof rights_table / sizeof rights_table[0])

const char *cv_auth_right_name(unsigned right)
{
    for (size_t i = 0; i < CV__NRIGHTS; i++)
        if (rights_table[i].bit == right)
            return rights_table[i].word;
    return "?";
}

/* ---- parsing ----------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static bool key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("._~+/=-", c) != NULL;
}

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A byte for an error text: 'c' when printable ASCII, else byte 0xNN (the
 * file may hold anything, the message must stay one readable line). */
static const char *shown(char c, char buf[16])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", u);
    return buf;
}

static void hash_key(const char *key, size_t len, uint8_t out[CV__HASH_LEN])
{
    crypto_generichash(out, CV__HASH_LEN, (const unsigned char *)key, len, NULL, 0);
}

/* A field: its start and length within the line. */
typedef struct {
    const char *p;
    size_t len;
} field_t;

/* Parses one line's fields into app.  Returns 0 or CV_EINVAL with the
 * reason (without the "FILE:LINE: " prefix) in why. */
static int parse_app(const field_t *f, int nf, cv_auth_app_t *app, char *why, size_t whylen)
{
    char sb[16];
    if (nf < 3)
        return fail(why, whylen, CV_EINVAL,
                    "expected 'app_key secret_hex rights [name]', got %d field%s", nf,
                    nf == 1 ? "" : "s");
    if (nf > 4)
        return fail(why, whylen, CV_EINVAL,
                    "too many fields (%d): expected 'app_key secret_hex rights [name]'", nf);

    if (f[0].len > CV_AUTH_KEY_MAX)
        return fail(why, whylen, CV_EINVAL, "app key is %zu characters, at most %d allowed",
                    f[0].len, CV_AUTH_KEY_MAX);
    for (size_t i = 0; i < f[0].len; i++)
        if (!key_char(f[0].p[i]))
            return fail(why, whylen, CV_EINVAL,
                        "app key may only contain [A-Za-z0-9._~+/=-], found %s",
                        shown(f[0].p[i], sb));
    hash_key(f[0].p, f[0].len, app->key_hash);

    if (f[1].len == 1 && f[1].p[0] == '-') {
        app->secret_len = 0;
    } else {
        if (f[1].len % 2 || f[1].len < 2 * CV_AUTH_SECRET_MIN || f[1].len > 2 * CV_AUTH_SECRET_MAX)
            return fail(why, whylen, CV_EINVAL,
                        "secret must be %d-%d bytes as %d-%d hex digits (or '-' for none), got "
                        "%zu characters",
                        CV_AUTH_SECRET_MIN, CV_AUTH_SECRET_MAX, 2 * CV_AUTH_SECRET_MIN,
                        2 * CV_AUTH_SECRET_MAX, f[1].len);
        for (size_t i = 0; i < f[1].len; i += 2) {
            int hi = hex_val(f[1].p[i]), lo = hex_val(f[1].p[i + 1]);
            if (hi < 0 || lo < 0)
                return fail(why, whylen, CV_EINVAL,
                            "secret must be hex digits (0-9, a-f), found %s",
                            shown(hi < 0 ? f[1].p[i] : f[1].p[i + 1], sb));
            app->secret[i / 2] = (uint8_t)(hi << 4 | lo);
        }
        app->secret_len = f[1].len / 2;
    }

    app->rights = 0;
    const char *r = f[2].p, *end = f[2].p + f[2].len;
    while (r <= end) {
        const char *comma = memchr(r, ',', (size_t)(end - r));
        size_t wl = (size_t)((comma ? comma : end) - r);
        if (wl == 0)
            return fail(why, whylen, CV_EINVAL, "empty right in '%.*s' (a comma too many?)",
                        (int)f[2].len, f[2].p);
        size_t k = 0;
        while (k < CV__NRIGHTS &&
               !(strlen(rights_table[k].word) == wl && !memcmp(rights_table[k].word, r, wl)))
            k++;
        if (k == CV__NRIGHTS)
            return fail(why, whylen, CV_EINVAL,
                        "unknown right '%.*s' (vote, submit, assert_tier, admin, require_token)",
                        (int)(wl > 32 ? 32 : wl), r); /* printable: control bytes are refused */
        app->rights |= rights_table[k].bit;
        r += wl + 1;
    }
    if ((app->rights & CV_AUTH_REQUIRE_TOKEN) && app->secret_len == 0)
        return fail(why, whylen, CV_EINVAL,
                    "require_token needs a secret to check tokens with, not '-'");

    if (nf == 4) {
        if (f[3].len > CV_AUTH_NAME_MAX)
            return fail(why, whylen, CV_EINVAL, "app name is %zu characters, at most %d allowed",
                        f[3].len, CV_AUTH_NAME_MAX);
        for (size_t i = 0; i < f[3].len; i++)
            if (!name_char(f[3].p[i]))
                return fail(why, whylen, CV_EINVAL,
                            "app name may only contain [A-Za-z0-9._-], found %s",
                            shown(f[3].p[i], sb));
        memcpy(app->name, f[3].p, f[3].len);
        app->name[f[3].len] = '\0';
    } else if (f[0].len <= CV__NAME_PREFIX) {
        memcpy(app->name, f[0].p, f[0].len);
        app->name[f[0].len] = '\0';
    } else {
        snprintf(app->name, sizeof app->name, "%.*s...", CV__NAME_PREFIX, f[0].p);
    }
    return 0;
}

void cv_auth_destroy(cv_auth_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    cv_auth_t *a = *a_p;
    if (a->apps) {
        sodium_memzero(a->apps, a->n * sizeof *a->apps);
        free(a->apps);
    }
    free(a);
    *a_p = NULL;
}

int cv_auth_parse(const char *name, const char *text, size_t len, cv_auth_t **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0)
        return fail(err, errlen, CV_ENOMEM, "%s: libsodium failed to initialise", name);
    cv_auth_t *a = calloc(1, sizeof *a);
    if (!a)
        return fail(err, errlen, CV_ENOMEM, "%s: out of memory", name);
    size_t cap = 0;
    int lineno = 0, rc = 0;
    char why[256];
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        lineno++;
        const char *hash = memchr(p, '#', (size_t)(eol - p));
        const char *stop = hash ? hash : eol;
        if (stop > p && !hash && stop[-1] == '\r')
            stop--;
        field_t f[5];
        int nf = 0;
        for (const char *q = p; q < stop;) {
            if (*q == ' ' || *q == '\t') {
                q++;
                continue;
            }
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                rc = fail(err, errlen, CV_EINVAL, "%s:%d: control character 0x%02x in the line",
                          name, lineno, (unsigned char)*q);
                goto out;
            }
            const char *s = q;
            while (q < stop && *q != ' ' && *q != '\t' && (unsigned char)*q >= 0x20 && *q != 0x7f)
                q++;
            if (nf < 5)
                f[nf] = (field_t){s, (size_t)(q - s)};
            nf++;
        }
        p = nl ? nl + 1 : end;
        if (nf == 0)
            continue;
        if (a->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            cv_auth_app_t *apps = calloc(ncap, sizeof *apps);
            if (!apps) {
                rc = fail(err, errlen, CV_ENOMEM, "%s: out of memory", name);
                goto out;
            }
            if (a->apps) {
                memcpy(apps, a->apps, a->n * sizeof *apps);
                sodium_memzero(a->apps, a->n * sizeof *apps);
                free(a->apps);
            }
            a->apps = apps;
            cap = ncap;
        }
        cv_auth_app_t *app = &a->apps[a->n];
        memset(app, 0, sizeof *app);
        if (parse_app(f, nf > 5 ? 5 : nf, app, why, sizeof why) < 0) {
            if (nf > 5)
                snprintf(why, sizeof why,
                         "too many fields (%d): expected 'app_key secret_hex rights [name]'", nf);
            rc = fail(err, errlen, CV_EINVAL, "%s:%d: %s", name, lineno, why);
            goto out;
        }
        app->line = lineno;
        for (size_t i = 0; i < a->n; i++) {
            if (sodium_memcmp(a->apps[i].key_hash, app->key_hash, CV__HASH_LEN) == 0) {
                rc = fail(err, errlen, CV_EINVAL, "%s:%d: duplicate app key (first on line %d)",
                          name, lineno, a->apps[i].line);
                goto out;
            }
            if (nf == 4 && !strcmp(a->apps[i].name, app->name)) {
                rc = fail(err, errlen, CV_EINVAL,
                          "%s:%d: duplicate app name '%s' (first on line %d)", name, lineno,
                          app->name, a->apps[i].line);
                goto out;
            }
        }
        if (f[0].len < CV__KEY_WARN_LEN)
            cv_log(CV_LOG_WARN,
                   "msg=\"short app key: use 16 or more random characters\" file=\"%s\""
                   " line=%d app=\"%s\"",
                   name, lineno, app->name);
        a->n++;
    }
    if (a->n == 0)
        rc = fail(err, errlen, CV_EINVAL,
                  "%s: no apps (each line: app_key secret_hex rights [name]); a key file "
                  "without apps would refuse everyone",
                  name);
out:
    if (rc < 0)
        cv_auth_destroy(&a);
    *out = a;
    return rc;
}

int cv_auth_load(const char *path, cv_auth_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, CV_EIO, "%s: cannot read: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, CV_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, CV_EIO, "%s: cannot read: not a regular file", path);
    }
    if (st.st_size > (off_t)CV__FILE_MAX) {
        close(fd);
        return fail(err, errlen, CV_EINVAL, "%s: larger than %u bytes; is it a key file?", path,
                    CV__FILE_MAX);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, CV_ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            close(fd);
            free(buf);
            return fail(err, errlen, CV_EIO, "%s: cannot read: %s", path,
                        e ? strerror(e) : "file shrank while read");
        }
        got += (size_t)n;
    }
    close(fd);
    int rc = 0;
    if (memchr(buf, '\0', got))
        rc = fail(err, errlen, CV_EINVAL, "%s: contains a NUL byte; is it a key file?", path);
    else
        rc = cv_auth_parse(path, buf, got, out, err, errlen);
    sodium_memzero(buf, got);
    free(buf);
    if (rc == 0 && (st.st_mode & 077))
        cv_log(CV_LOG_WARN,
               "msg=\"key file is readable by others than its owner: chmod 600 it\""
               " file=\"%s\" mode=%04o",
               path, (unsigned)(st.st_mode & 07777));
    return rc;
}

/* ---- lookups ------------------------------------------------------------------- */

size_t cv_auth_count(const cv_auth_t *a)
{
    return a->n;
}

const cv_auth_app_t *cv_auth_find(const cv_auth_t *a, const char *key)
{
    uint8_t h[CV__HASH_LEN];
    hash_key(key, strlen(key), h);
    const cv_auth_app_t *found = NULL;
    for (size_t i = 0; i < a->n; i++) {
        int differs = sodium_memcmp(h, a->apps[i].key_hash, CV__HASH_LEN);
        if (differs == 0)
            found = &a->apps[i];
    }
    return found;
}

const char *cv_auth_app_name(const cv_auth_app_t *app)
{
    return app->name;
}

unsigned cv_auth_app_rights(const cv_auth_app_t *app)
{
    return app->rights;
}

cv_status_t cv_auth_check_key(const cv_auth_t *a, const char *key, unsigned right,
                              const cv_auth_app_t **app, char *err, size_t errlen)
{
    if (app)
        *app = NULL;
    if (!a)
        return CV_ST_OK;
    if (!*key) {
        fail(err, errlen, 0, "no app key: this cluster needs one (app keys are in use)");
        return CV_ST_UNAUTHENTICATED;
    }
    const cv_auth_app_t *found = cv_auth_find(a, key);
    if (!found) {
        fail(err, errlen, 0, "unknown app key");
        return CV_ST_UNAUTHENTICATED;
    }
    if (right && !(found->rights & right)) {
        const char *what = right == CV_AUTH_VOTE          ? "vote"
                           : right == CV_AUTH_SUBMIT      ? "submit"
                           : right == CV_AUTH_ASSERT_TIER ? "assert a tier"
                           : right == CV_AUTH_ADMIN
                               ? "use the release-manager API (needs the admin right)"
                               : cv_auth_right_name(right);
        fail(err, errlen, 0, "app '%s' may not %s", found->name, what);
        return CV_ST_FORBIDDEN;
    }
    if (app)
        *app = found;
    return CV_ST_OK;
}

/* ---- user tokens ----------------------------------------------------------------- */

/* HMAC-SHA256(secret, user_id "|" tier "|" expiry_decimal). */
static void token_mac(const uint8_t *secret, size_t secretlen, const char *user_id,
                      const char *tier, uint64_t expiry, uint8_t mac[32])
{
    char tail[64];
    int n = snprintf(tail, sizeof tail, "|%s|%" PRIu64, tier, expiry);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secretlen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)user_id, strlen(user_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tail, (unsigned long long)n);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

void cv_auth_token_sign(const uint8_t *secret, size_t secretlen, const char *user_id,
                        const char *tier, uint64_t expiry, uint8_t out[CV_AUTH_TOKEN_LEN])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(expiry >> (56 - 8 * i));
    token_mac(secret, secretlen, user_id, tier, expiry, out + 8);
}

cv_status_t cv_auth_token_check(const cv_auth_app_t *app, const char *user_id, const char *tier,
                                const uint8_t *token, size_t len, uint64_t now, char *err,
                                size_t errlen)
{
    if (app->secret_len == 0) {
        fail(err, errlen, 0, "app '%s' has no secret to check user tokens with", app->name);
        return CV_ST_UNAUTHENTICATED;
    }
    if (len != CV_AUTH_TOKEN_LEN) {
        fail(err, errlen, 0, "user token must be %d bytes, got %zu", CV_AUTH_TOKEN_LEN, len);
        return CV_ST_UNAUTHENTICATED;
    }
    uint64_t expiry = 0;
    for (int i = 0; i < 8; i++)
        expiry = expiry << 8 | token[i];
    uint8_t mac[32];
    token_mac(app->secret, app->secret_len, user_id, tier, expiry, mac);
    /* crypto_auth_hmacsha256_verify takes 32-byte keys only, and secrets
     * are 16-64 bytes: the MAC is computed with the multi-part API (plain
     * HMAC for any key length) and compared in constant time here. */
    int bad = sodium_memcmp(mac, token + 8, sizeof mac);
    sodium_memzero(mac, sizeof mac);
    if (bad) {
        fail(err, errlen, 0, "user token does not match user or tier");
        return CV_ST_UNAUTHENTICATED;
    }
    if (now >= expiry) {
        fail(err, errlen, 0, "user token expired");
        return CV_ST_UNAUTHENTICATED;
    }
    return CV_ST_OK;
}
