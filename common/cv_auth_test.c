/* cv_auth_test: key-file parsing (every refusal), key checks and user
 * tokens (a fixed vector computed with Python's hmac, expiry, tampering). */
#include "cv_auth.h"
#include "cv_err.h"
#include "cv_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SECRET_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SECRET_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static cv_auth_t *parse_ok(const char *text)
{
    cv_auth_t *a = NULL;
    char err[256] = "";
    int rc = cv_auth_parse("keys", text, strlen(text), &a, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, err);
    assert_non_null(a);
    return a;
}

/* Parses text, which must be refused with exactly `want`. */
static void parse_bad(const char *text, const char *want)
{
    cv_auth_t *a = (cv_auth_t *)1;
    char err[256] = "";
    int rc = cv_auth_parse("keys", text, strlen(text), &a, err, sizeof err);
    if (rc != CV_EINVAL)
        fail_msg("expected CV_EINVAL for %s, got %d", text, rc);
    assert_null(a);
    if (strcmp(err, want) != 0)
        fail_msg("for %s\n  expected: %s\n  got:      %s", text, want, err);
}

/* ---- the key file ------------------------------------------------------------ */

static void test_parse_good(void **state)
{
    (void)state;
    cv_auth_t *a =
        parse_ok("# Canvass app keys\n"
                 "\n"
                 "forum-key-0123456789abcdef " SECRET_A " vote,submit forum\n"
                 "   \t# indented comment\n"
                 "phone-key-0123456789abcdef\t" SECRET_B "\tvote,require_token  # trailing\r\n"
                 "adminkey.0123456789~+/=_ - admin,vote,submit,assert_tier\r\n"
                 "short - vote");
    assert_int_equal(cv_auth_count(a), 4);

    const cv_auth_app_t *f = cv_auth_find(a, "forum-key-0123456789abcdef");
    assert_non_null(f);
    assert_string_equal(cv_auth_app_name(f), "forum");
    assert_int_equal(cv_auth_app_rights(f), CV_AUTH_VOTE | CV_AUTH_SUBMIT);

    const cv_auth_app_t *p = cv_auth_find(a, "phone-key-0123456789abcdef");
    assert_non_null(p);
    assert_string_equal(cv_auth_app_name(p), "phone-...");
    assert_int_equal(cv_auth_app_rights(p), CV_AUTH_VOTE | CV_AUTH_REQUIRE_TOKEN);

    const cv_auth_app_t *m = cv_auth_find(a, "adminkey.0123456789~+/=_");
    assert_non_null(m);
    assert_int_equal(cv_auth_app_rights(m),
                     CV_AUTH_ADMIN | CV_AUTH_VOTE | CV_AUTH_SUBMIT | CV_AUTH_ASSERT_TIER);

    const cv_auth_app_t *s = cv_auth_find(a, "short");
    assert_non_null(s);
    assert_string_equal(cv_auth_app_name(s), "short"); /* short enough to show whole */

    /* Near misses are not keys. */
    assert_null(cv_auth_find(a, "forum-key-0123456789abcde"));
    assert_null(cv_auth_find(a, "forum-key-0123456789abcdef0"));
    assert_null(cv_auth_find(a, "Forum-key-0123456789abcdef"));
    assert_null(cv_auth_find(a, ""));
    assert_null(cv_auth_find(a, "forum"));
    cv_auth_destroy(&a);
    assert_null(a);
    cv_auth_destroy(&a);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *good = "k1-0123456789abcdef " SECRET_A " vote\n";
    char text[1024];

    parse_bad("", "keys: no apps (each line: app_key secret_hex rights [name]); a key file "
                  "without apps would refuse everyone");
    parse_bad("# only a comment\n\n  \n", "keys: no apps (each line: app_key secret_hex rights "
                                          "[name]); a key file without apps would refuse everyone");
    parse_bad("lonely\n", "keys:1: expected 'app_key secret_hex rights [name]', got 1 field");
    parse_bad("# c\nk " SECRET_A "\n",
              "keys:2: expected 'app_key secret_hex rights [name]', got 2 fields");
    parse_bad("k " SECRET_A " vote name extra\n",
              "keys:1: too many fields (5): expected 'app_key secret_hex rights [name]'");
    parse_bad("k " SECRET_A " vote name extra more\n",
              "keys:1: too many fields (6): expected 'app_key secret_hex rights [name]'");
    parse_bad("bad#key " SECRET_A " vote\n", /* '#' starts a comment: 1 field */
              "keys:1: expected 'app_key secret_hex rights [name]', got 1 field");
    parse_bad("bad!key " SECRET_A " vote\n",
              "keys:1: app key may only contain [A-Za-z0-9._~+/=-], found '!'");
    parse_bad("k\xc3\xa9y " SECRET_A " vote\n",
              "keys:1: app key may only contain [A-Za-z0-9._~+/=-], found byte 0xc3");
    char longkey[300];
    memset(longkey, 'k', 257);
    longkey[257] = '\0';
    snprintf(text, sizeof text, "%s - vote\n", longkey);
    parse_bad(text, "keys:1: app key is 257 characters, at most 256 allowed");
    parse_bad("k 0011 vote\n", "keys:1: secret must be 16-64 bytes as 32-128 hex digits (or '-' "
                               "for none), got 4 characters");
    parse_bad("k " SECRET_A "0 vote\n", "keys:1: secret must be 16-64 bytes as 32-128 hex digits "
                                        "(or '-' for none), got 65 characters");
    parse_bad("k " SECRET_A SECRET_A SECRET_A " vote\n",
              "keys:1: secret must be 16-64 bytes as 32-128 hex digits (or '-' for none), got "
              "192 characters");
    parse_bad("k 000102030405060708090a0b0c0d0e0g vote\n",
              "keys:1: secret must be hex digits (0-9, a-f), found 'g'");
    parse_bad("k " SECRET_A " vote,vot\n",
              "keys:1: unknown right 'vot' (vote, submit, assert_tier, admin, require_token)");
    parse_bad("k " SECRET_A " Vote\n",
              "keys:1: unknown right 'Vote' (vote, submit, assert_tier, admin, require_token)");
    parse_bad("k " SECRET_A " vote,,submit\n",
              "keys:1: empty right in 'vote,,submit' (a comma too many?)");
    parse_bad("k " SECRET_A " vote,\n", "keys:1: empty right in 'vote,' (a comma too many?)");
    parse_bad("k " SECRET_A " ,vote\n", "keys:1: empty right in ',vote' (a comma too many?)");
    parse_bad("k - vote,require_token\n",
              "keys:1: require_token needs a secret to check tokens with, not '-'");
    parse_bad("k - vote my/app\n", "keys:1: app name may only contain [A-Za-z0-9._-], found '/'");
    snprintf(text, sizeof text, "k - vote %.*s\n", 65,
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    parse_bad(text, "keys:1: app name is 65 characters, at most 64 allowed");
    snprintf(text, sizeof text, "%s# x\n\nk1-0123456789abcdef - admin\n", good);
    parse_bad(text, "keys:4: duplicate app key (first on line 1)");
    parse_bad("a1-0123456789abcdef - vote forum\na2-0123456789abcdef - vote forum\n",
              "keys:2: duplicate app name 'forum' (first on line 1)");
    snprintf(text, sizeof text, "%sk2 - vote\x01\n", good);
    parse_bad(text, "keys:2: control character 0x01 in the line");
    parse_bad("k - vote\rx\n", "keys:1: control character 0x0d in the line");
}

static void test_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/auth4-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    cv_auth_t *a = NULL;

    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(cv_auth_load(path, &a, err, sizeof err), CV_EIO);
    assert_null(a);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
    assert_string_equal(err, want);

    assert_int_equal(cv_auth_load(dir, &a, err, sizeof err), CV_EIO);
    snprintf(want, sizeof want, "%s: cannot read: not a regular file", dir);
    assert_string_equal(err, want);

    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    fputs("good-0123456789abcdef - vote,submit\nbad-key " SECRET_A " vote,dance\n", f);
    fclose(f);
    assert_int_equal(cv_auth_load(path, &a, err, sizeof err), CV_EINVAL);
    snprintf(want, sizeof want,
             "%s:2: unknown right 'dance' (vote, submit, assert_tier, admin, require_token)", path);
    assert_string_equal(err, want);

    f = fopen(path, "w");
    fwrite("k - vote\n\0", 1, 10, f);
    fclose(f);
    assert_int_equal(cv_auth_load(path, &a, err, sizeof err), CV_EINVAL);
    snprintf(want, sizeof want, "%s: contains a NUL byte; is it a key file?", path);
    assert_string_equal(err, want);

    f = fopen(path, "w");
    fputs("good-0123456789abcdef - vote,submit\n", f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(cv_auth_load(path, &a, err, sizeof err), 0);
    assert_int_equal(cv_auth_count(a), 1);
    assert_non_null(cv_auth_find(a, "good-0123456789abcdef"));
    cv_auth_destroy(&a);

    unlink(path);
    rmdir(dir);
}

/* ---- key checks --------------------------------------------------------------- */

static void test_check_key(void **state)
{
    (void)state;
    cv_auth_t *a = parse_ok("forum-0123456789abcdef - vote,submit forum\n"
                            "voter-0123456789abcdef - vote voter\n"
                            "admin-0123456789abcdef - admin boss\n");
    char err[256];
    const cv_auth_app_t *app = (const cv_auth_app_t *)1;

    assert_int_equal(cv_auth_check_key(NULL, "", CV_AUTH_ADMIN, &app, err, sizeof err), CV_ST_OK);
    assert_null(app);

    assert_int_equal(cv_auth_check_key(a, "", CV_AUTH_VOTE, &app, err, sizeof err),
                     CV_ST_UNAUTHENTICATED);
    assert_string_equal(err, "no app key: this cluster needs one (app keys are in use)");
    assert_int_equal(cv_auth_check_key(a, "nope", CV_AUTH_VOTE, &app, err, sizeof err),
                     CV_ST_UNAUTHENTICATED);
    assert_string_equal(err, "unknown app key");
    assert_null(app);

    assert_int_equal(
        cv_auth_check_key(a, "voter-0123456789abcdef", CV_AUTH_SUBMIT, &app, err, sizeof err),
        CV_ST_FORBIDDEN);
    assert_string_equal(err, "app 'voter' may not submit");
    assert_null(app);
    assert_int_equal(
        cv_auth_check_key(a, "forum-0123456789abcdef", CV_AUTH_ASSERT_TIER, &app, err, sizeof err),
        CV_ST_FORBIDDEN);
    assert_string_equal(err, "app 'forum' may not assert a tier");
    assert_int_equal(
        cv_auth_check_key(a, "forum-0123456789abcdef", CV_AUTH_ADMIN, &app, err, sizeof err),
        CV_ST_FORBIDDEN);
    assert_string_equal(err,
                        "app 'forum' may not use the release-manager API (needs the admin right)");
    assert_int_equal(
        cv_auth_check_key(a, "boss-0123456789abcdef", CV_AUTH_ADMIN, &app, err, sizeof err),
        CV_ST_UNAUTHENTICATED); /* the name is not the key */

    assert_int_equal(
        cv_auth_check_key(a, "admin-0123456789abcdef", CV_AUTH_ADMIN, &app, err, sizeof err),
        CV_ST_OK);
    assert_non_null(app);
    assert_string_equal(cv_auth_app_name(app), "boss");
    assert_int_equal(
        cv_auth_check_key(a, "forum-0123456789abcdef", CV_AUTH_SUBMIT, NULL, err, sizeof err),
        CV_ST_OK);
    assert_int_equal(cv_auth_check_key(a, "voter-0123456789abcdef", 0, &app, err, sizeof err),
                     CV_ST_OK); /* right 0: any app (a Hello) */
    assert_string_equal(cv_auth_app_name(app), "voter");
    assert_string_equal(cv_auth_right_name(CV_AUTH_ASSERT_TIER), "assert_tier");
    assert_string_equal(cv_auth_right_name(0), "?");
    cv_auth_destroy(&a);
}

/* ---- user tokens ---------------------------------------------------------------- */

static void unhex(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static cv_auth_t *token_apps(void)
{
    return parse_ok("app-a-0123456789abcdef " SECRET_A " vote,require_token a\n"
                    "app-b-0123456789abcdef " SECRET_B " vote b\n"
                    "app-c-0123456789abcdef - vote c\n");
}

/* The byte format, pinned by a vector from an independent implementation:
 *   python3: struct.pack(">Q", 1700000000) + hmac.new(bytes(range(32)),
 *            b"alice|core|1700000000", "sha256").digest() */
static void test_token_vector(void **state)
{
    (void)state;
    uint8_t secret[32], want[CV_AUTH_TOKEN_LEN], got[CV_AUTH_TOKEN_LEN];
    unhex(SECRET_A, secret);
    unhex("000000006553f100d478cb6739419db4cf66193c1b9e983bc93d2698081ebb25aa5572977f9967aa", want);
    cv_auth_token_sign(secret, sizeof secret, "alice", "core", 1700000000, got);
    assert_memory_equal(got, want, sizeof want);

    cv_auth_t *a = token_apps();
    const cv_auth_app_t *app = cv_auth_find(a, "app-a-0123456789abcdef");
    char err[256] = "";
    assert_int_equal(
        cv_auth_token_check(app, "alice", "core", want, sizeof want, 1699999999, err, sizeof err),
        CV_ST_OK);
    cv_auth_destroy(&a);
}

static void test_token_checks(void **state)
{
    (void)state;
    cv_auth_t *a = token_apps();
    const cv_auth_app_t *A = cv_auth_find(a, "app-a-0123456789abcdef");
    const cv_auth_app_t *B = cv_auth_find(a, "app-b-0123456789abcdef");
    const cv_auth_app_t *C = cv_auth_find(a, "app-c-0123456789abcdef");
    uint8_t secret[32], tok[CV_AUTH_TOKEN_LEN + 1];
    unhex(SECRET_A, secret);
    const uint64_t now = 1800000000, exp = now + 3600;
    char err[256];
    cv_auth_token_sign(secret, sizeof secret, "bob|x", "member", exp, tok);

#define CHECK(app, user, tier, len, at, want_st, want_err)                                         \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(cv_auth_token_check(app, user, tier, tok, len, at, err, sizeof err),      \
                         want_st);                                                                 \
        if (want_err)                                                                              \
            assert_string_equal(err, (const char *)want_err);                                      \
    } while (0)

    CHECK(A, "bob|x", "member", 40, now, CV_ST_OK, NULL);
    CHECK(A, "bob|x", "member", 40, exp - 1, CV_ST_OK, NULL);
    CHECK(A, "bob|x", "member", 40, exp, CV_ST_UNAUTHENTICATED, "user token expired");
    CHECK(A, "bob|x", "member", 40, exp + 86400, CV_ST_UNAUTHENTICATED, "user token expired");
    CHECK(A, "bob|x", "core", 40, now, CV_ST_UNAUTHENTICATED,
          "user token does not match user or tier");
    CHECK(A, "bob", "member", 40, now, CV_ST_UNAUTHENTICATED,
          "user token does not match user or tier");
    CHECK(A, "bob|x ", "member", 40, now, CV_ST_UNAUTHENTICATED,
          "user token does not match user or tier");
    CHECK(B, "bob|x", "member", 40, now, CV_ST_UNAUTHENTICATED,
          "user token does not match user or tier"); /* another app's secret */
    CHECK(C, "bob|x", "member", 40, now, CV_ST_UNAUTHENTICATED,
          "app 'c' has no secret to check user tokens with");
    CHECK(A, "bob|x", "member", 39, now, CV_ST_UNAUTHENTICATED,
          "user token must be 40 bytes, got 39");
    CHECK(A, "bob|x", "member", 41, now, CV_ST_UNAUTHENTICATED,
          "user token must be 40 bytes, got 41");
    CHECK(A, "bob|x", "member", 0, now, CV_ST_UNAUTHENTICATED,
          "user token must be 40 bytes, got 0");

    /* Any single changed bit anywhere is refused: in the MAC as a mismatch,
     * in the expiry too (the expiry is signed), even one that moves the
     * expiry later. */
    for (int i = 0; i < CV_AUTH_TOKEN_LEN; i++)
        for (int bit = 0; bit < 8; bit++) {
            tok[i] ^= (uint8_t)(1u << bit);
            CHECK(A, "bob|x", "member", 40, now, CV_ST_UNAUTHENTICATED,
                  "user token does not match user or tier");
            tok[i] ^= (uint8_t)(1u << bit);
        }
    CHECK(A, "bob|x", "member", 40, now, CV_ST_OK, NULL);

    /* An expired token re-dated by hand is a forgery. */
    cv_auth_token_sign(secret, sizeof secret, "bob|x", "member", now - 10, tok);
    CHECK(A, "bob|x", "member", 40, now, CV_ST_UNAUTHENTICATED, "user token expired");
    tok[7] = 0xff;
    CHECK(A, "bob|x", "member", 40, now, CV_ST_UNAUTHENTICATED,
          "user token does not match user or tier");
#undef CHECK
    cv_auth_destroy(&a);
}

int main(void)
{
    cv_log_init("auth-test", -1, CV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_load),         cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_token_vector), cmocka_unit_test(test_token_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
