/* overlay_test: the vote log and its overlay (overlay.c) and the map under
 * it (kvmap.c).  The overlay must be invisible: the same votes give the same
 * acks, standings (trends included) and stored votes with the log on, with
 * it off, indexed at any point, and after a crash that left votes only in
 * the log. */
#include "kvmap.h"
#include "shard_test.h"

#include <sys/wait.h>
#include <unistd.h>

static uint64_t fixed_now(void)
{
    return 1700000000000ULL;
}

/* ---- kvmap ----------------------------------------------------------------- */

static void test_kvmap(void **state)
{
    (void)state;
    cv_kvmap_t *m = cv_kvmap_new(sizeof(uint64_t));
    assert_non_null(m);
    void *v;
    assert_int_equal(cv_kvmap_put(m, "", 0, &v), CV_EINVAL);
    assert_null(cv_kvmap_find(m, "a", 1));
    enum { N = 50000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(cv_kvmap_put(m, key, (size_t)n, &v), 1);
        assert_int_equal(*(uint64_t *)v, 0); /* starts zeroed */
        *(uint64_t *)v = (uint64_t)i * 3;
    }
    assert_int_equal(cv_kvmap_count(m), N);
    for (int i = 0; i < N; i += 7) {
        int n = snprintf(key, sizeof key, "k%d", i);
        uint64_t *p = cv_kvmap_find(m, key, (size_t)n);
        assert_non_null(p);
        assert_int_equal(*p, (uint64_t)i * 3);
        assert_int_equal(cv_kvmap_put(m, key, (size_t)n, &v), 0); /* there already */
        assert_ptr_equal(v, p);
    }
    assert_null(cv_kvmap_find(m, "k", 1));
    assert_null(cv_kvmap_find(m, "k1\0", 3)); /* lengths count, not NULs */
    const void *k;
    size_t klen;
    cv_kvmap_at(m, 12345, &k, &klen, &v);
    assert_int_equal(klen, 6);
    assert_memory_equal(k, "k12345", 6);
    assert_int_equal(*(uint64_t *)v, 12345 * 3);
    assert_true(cv_kvmap_bytes(m) > N * 8);
    cv_kvmap_clear(m);
    assert_int_equal(cv_kvmap_count(m), 0);
    assert_null(cv_kvmap_find(m, "k1", 2));
    assert_int_equal(cv_kvmap_put(m, "k1", 2, &v), 1);
    assert_int_equal(*(uint64_t *)v, 0);
    cv_kvmap_destroy(&m);
    cv_kvmap_destroy(&m); /* safe twice */
}

/* ---- the same votes, several ways ------------------------------------------ */

#define FEATURES 20
#define USERS 2000
#define GROUPS 30

static char fids[FEATURES][8];
static char users[USERS][16];

/* A deterministic stream of groups: up, down, retract, tiers, and resends
 * of older stamps that must lose.  Fills acks[] with (status, changed). */
static void run_stream(fx_t *fx, int acks[GROUPS][BATCH_MAX][2])
{
    uint32_t x = 12345;
    static const char *const tiers[] = {"member", "core", "honorary"};
    for (int u = 0; u < USERS; u++)
        snprintf(users[u], sizeof users[u], "user-%d", u);
    for (int f = 0; f < FEATURES; f++)
        snprintf(fids[f], sizeof fids[f], "F%02d", f);
    for (int g = 0; g < GROUPS; g++) {
        batch_t b;
        cv_shard_job_t job;
        batch_init(&b);
        for (int k = 0; k < BATCH_MAX; k++) {
            x = x * 1103515245u + 12345u;
            /* Users mostly new, one in eight a repeat of a recent one. */
            int f = (int)(x >> 8) % FEATURES;
            int u = (x >> 5) % 8 ? (int)((x >> 9) % USERS) : (int)((g * BATCH_MAX + k) % 50);
            int value = (int)((x >> 20) % 3) - 1;
            uint64_t stamp = ((x >> 24) % 8 == 0) ? fx->clock - 200 : fx->clock++;
            add_vote(&b, stamp, fids[f], users[u], value, tiers[(x >> 28) % 3]);
        }
        apply(fx, &job, &b, 1);
        for (int k = 0; k < BATCH_MAX; k++) {
            acks[g][k][0] = (int)job.ack_ptrs[k]->status;
            acks[g][k][1] = (int)job.ack_ptrs[k]->changed;
        }
        cv_shard_job_release(&job);
    }
}

static uint8_t *packed_standings(fx_t *fx, size_t *len)
{
    cv_standings_t *st = NULL;
    assert_int_equal(cv_shard_standings(fx->shard, &st), 0);
    uint8_t *buf = cv_codec_pack(&cv_standings_msg(st)->base, len);
    assert_non_null(buf);
    cv_standings_destroy(&st);
    return buf;
}

static fx_t *fresh(size_t index_batch)
{
    fx_t *fx = NULL;
    assert_int_equal(setup((void **)&fx), 0);
    cv_shard_set_clock(fx->shard, fixed_now);
    assert_int_equal(cv_shard_set_index_batch(fx->shard, index_batch), 0);
    for (int f = 0; f < FEATURES; f++) {
        snprintf(fids[f], sizeof fids[f], "F%02d", f);
        create1(fx, fids[f], "", "");
    }
    return fx;
}

/* The stream with the log off: its acks, packed standings and dump, which
 * every other way of running it must reproduce. */
static fx_t *reference(int want[GROUPS][BATCH_MAX][2], uint8_t **st, size_t *len, char **dump)
{
    fx_t *direct = fresh(0);
    run_stream(direct, want);
    *st = packed_standings(direct, len);
    *dump = NULL;
    cv_shard_close(&direct->shard);
    assert_int_equal(audit(cv_audit_dump_votes, direct->dir, dump), 0);
    return direct;
}

static void test_log_is_invisible(void **state)
{
    (void)state;
    static int want[GROUPS][BATCH_MAX][2], got[GROUPS][BATCH_MAX][2];
    size_t wlen;
    uint8_t *wst;
    char *wdump;
    fx_t *direct = reference(want, &wst, &wlen, &wdump);
    assert_true(strlen(wdump) > 100);

    /* Indexed at once, every 7 votes, and never during the stream. */
    size_t batches[] = {1, 7, 1700, 1000000};
    for (size_t i = 0; i < sizeof batches / sizeof *batches; i++) {
        fx_t *fx = fresh(batches[i]);
        run_stream(fx, got);
        assert_memory_equal(got, want, sizeof want);
        size_t len;
        uint8_t *st = packed_standings(fx, &len);
        assert_int_equal(len, wlen);
        assert_memory_equal(st, wst, len);
        free(st);
        char *dump = NULL;
        cv_shard_close(&fx->shard);
        assert_int_equal(audit(cv_audit_dump_votes, fx->dir, &dump), 0);
        assert_string_equal(dump, wdump);
        free(dump);
        char *out = NULL;
        assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
        assert_true(!strncmp(out, "ok features=20 ", 15));
        free(out);
        assert_int_equal(teardown((void **)&fx), 0);
    }
    free(wst);
    free(wdump);
    assert_int_equal(teardown((void **)&direct), 0);
}

/* A shard killed with votes only in its log: a restart replays them, and the
 * offline tools replay them too. */
static void test_crash_replay(void **state)
{
    (void)state;
    static int want[GROUPS][BATCH_MAX][2], got[GROUPS][BATCH_MAX][2];
    size_t wlen;
    uint8_t *wst;
    char *wdump;
    fx_t *direct = reference(want, &wst, &wlen, &wdump);

    /* Killed with every vote only in the log, killed while a frozen
     * generation was half written (1500: frozen a few groups before the
     * end, written in chunks of about 384 votes), and with many small
     * generations. */
    static const size_t batches[] = {1000000, 1000000, 1500, 7};
    for (int run = 0; run < 4; run++) {
        int tool_first = run == 1 || run == 3;
        fx_t *fx = fresh(batches[run]);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            run_stream(fx, got);
            _exit(memcmp(got, want, sizeof want) ? 3 : 0); /* no close: a crash */
        }
        int wst_status;
        assert_int_equal(waitpid(pid, &wst_status, 0), pid);
        assert_true(WIFEXITED(wst_status) && WEXITSTATUS(wst_status) == 0);
        /* This process's copy of the shard never saw the votes. */
        cv_shard_close(&fx->shard);

        cv_store_t *raw = cv_store_open(fx->dir, cv_shard_tables, CV_SHARD_NTABLES,
                                        CV_DURABLE_OS, 0);
        assert_non_null(raw);
        cv_txn_t *t;
        assert_int_equal(cv_store_begin(raw, 1, &t), 0);
        if (batches[run] > GROUPS * BATCH_MAX) {
            assert_true(cv_store_count(t, CV_SHARD_LOG) >= GROUPS); /* a record or more a group */
            assert_int_equal(cv_store_count(t, CV_SHARD_VOTES), 0);
        } else if (batches[run] == 1500) { /* half written: the log still whole */
            assert_true(cv_store_count(t, CV_SHARD_LOG) >= GROUPS); /* a record or more a group */
            assert_true(cv_store_count(t, CV_SHARD_VOTES) > 0);
            assert_true(cv_store_count(t, CV_SHARD_VOTES) < 1600);
        } else { /* indexed up to the last few groups */
            assert_true(cv_store_count(t, CV_SHARD_LOG) > 0);
            assert_true(cv_store_count(t, CV_SHARD_LOG) < GROUPS);
            assert_true(cv_store_count(t, CV_SHARD_VOTES) > 0);
        }
        cv_store_abort(&t);
        cv_store_close(&raw);

        char *dump = NULL;
        if (tool_first) { /* --dump-votes on the killed shard's store */
            assert_int_equal(audit(cv_audit_dump_votes, fx->dir, &dump), 0);
            assert_string_equal(dump, wdump);
            free(dump);
        }
        char why[256];
        assert_int_equal(
            cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why), 0);
        cv_shard_set_clock(fx->shard, fixed_now);
        size_t len;
        uint8_t *st = packed_standings(fx, &len);
        assert_int_equal(len, wlen);
        assert_memory_equal(st, wst, len);
        free(st);
        cv_shard_close(&fx->shard);
        assert_int_equal(audit(cv_audit_dump_votes, fx->dir, &dump), 0);
        assert_string_equal(dump, wdump);
        free(dump);
        assert_int_equal(
            cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why), 0);
        assert_int_equal(teardown((void **)&fx), 0);
    }
    free(wst);
    free(wdump);
    assert_int_equal(teardown((void **)&direct), 0);
}

/* A status change in the same group as logged votes settles them first. */
static void test_change_after_logged_votes(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    assert_int_equal(vote1(fx, "F1", "alice", 1, "core", NULL, NULL, 0), CV_ST_OK);
    assert_int_equal(vote1(fx, "F1", "bob", -1, "", NULL, NULL, 0), CV_ST_OK);

    Canvass__V1__SetStatus ss = CANVASS__V1__SET_STATUS__INIT;
    ss.feature_id = (char *)"F1";
    ss.status = (char *)"shipped";
    ss.release = (char *)"r1";
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_SET_STATUS;
    req.set_status = &ss;
    batch_t b;
    batch_init(&b);
    add_vote(&b, fx->clock++, "F1", "carol", 1, "");
    cv_shard_job_t jobs[2] = {{.batch = &b.batch}, {.change = &req}};
    assert_int_equal(cv_shard_apply(fx->shard, jobs, 2), 0);
    assert_int_equal(jobs[0].ack_ptrs[0]->status, CV_ST_OK);
    cv_shard_job_release(&jobs[0]);
    cv_shard_job_release(&jobs[1]);
    /* Shipped: the next vote is refused although the gate was cached. */
    assert_int_equal(vote1(fx, "F1", "dave", 1, "", NULL, NULL, 0), CV_ST_CLOSED);
    assert_counts(fx, "F1", 1, 1, 0, 1, 0, 0, 3);
    char *out = NULL;
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
    assert_string_equal(out, "ok features=1 votes=3\n");
    free(out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kvmap),
        cmocka_unit_test(test_log_is_invisible),
        cmocka_unit_test(test_crash_replay),
        cmocka_unit_test_setup_teardown(test_change_after_logged_votes, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    cv_log_init("overlay-test", 0, CV_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
