/* Unit tests for closing cycles on a tally shard (closing.c): the standings
 * answering a close are frozen in the closing transaction and a repeated
 * close answers them byte for byte, whatever was voted since, across a
 * restart of the shard; only the last CV_SHARD_CLOSED_KEEP are kept; a
 * store without them (older, or pruned) answers the current standings.
 * Real LMDB stores in temporary directories; the fixture is shard_test.h.
 *
 * Built as $(BUILD)/unit/tally_close_test.  Run all, or only those matching
 * a pattern: tally_close_test 'test_close_repeat*'. */
#include "shard_test.h"

/* A packed copy of what a close answered. */
typedef struct {
    uint8_t *buf;
    size_t len;
    uint64_t cycle; /* Standings.cycle */
} answer_t;

/* Sends CloseCycle{cycle, opened_at_ms} through cv_shard_answer and returns
 * the packed Standings it answered (the caller frees buf). */
static answer_t close1(fx_t *fx, uint64_t cycle, uint64_t opened_at_ms)
{
    Canvass__V1__CloseCycle cc = CANVASS__V1__CLOSE_CYCLE__INIT;
    cc.cycle = cycle;
    cc.opened_at_ms = opened_at_ms;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 90 + cycle;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CLOSE;
    req.close = &cc;
    cv_shard_reply_t *r = NULL;
    assert_int_equal(cv_shard_answer(fx->shard, &req, &r), 0);
    const Canvass__V1__TallyReply *msg = cv_shard_reply_msg(r);
    assert_true(msg->corr == 90 + cycle);
    assert_int_equal(msg->status, CV_ST_OK);
    assert_int_equal(msg->result_case, CANVASS__V1__TALLY_REPLY__RESULT_STANDINGS);
    answer_t a = {.cycle = msg->standings->cycle};
    a.buf = cv_codec_pack(&msg->standings->base, &a.len);
    assert_non_null(a.buf);
    cv_shard_reply_destroy(&r);
    return a;
}

/* The counts of feature id in packed standings: up[0] + 10 * voters, or -1
 * when it is not there. */
static long counts_in(const answer_t *a, const char *id)
{
    Canvass__V1__Standings *st = canvass__v1__standings__unpack(NULL, a->len, a->buf);
    assert_non_null(st);
    long v = -1;
    for (size_t i = 0; i < st->n_features; i++)
        if (!strcmp(st->features[i]->feature->feature_id, id))
            v = (long)(st->features[i]->up[0] + 10 * st->features[i]->voters);
    canvass__v1__standings__free_unpacked(st, NULL);
    return v;
}

static void assert_same(const answer_t *a, const answer_t *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->buf, b->buf, a->len);
}

static void reopen(fx_t *fx)
{
    char why[256];
    cv_shard_close(&fx->shard);
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
}

/* The closed table's cycles, read from the store with the shard closed. */
static int closed_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    char *out = arg;
    assert_int_equal(klen, CV_BE64_SIZE);
    snprintf(out + strlen(out), 64, "%llu,", (unsigned long long)cv_be64_decode(key));
    return 0;
}

static void closed_cycles(fx_t *fx, char *out)
{
    out[0] = '\0';
    cv_shard_close(&fx->shard);
    cv_store_t *store = cv_shard_store_open_existing(fx->dir);
    assert_non_null(store);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(store, 1, &t), 0);
    assert_int_equal(cv_store_iter(t, CV_SHARD_CLOSED, NULL, 0, closed_visit, out), 0);
    cv_store_abort(&t);
    cv_store_close(&store);
    reopen(fx);
}

/* ---- tests --------------------------------------------------------------------- */

/* Close 1, vote in cycle 2, close 1 again: the same bytes, without the vote
 * of cycle 2; then close 2 takes it, and a repeat of 2 is frozen too. */
static void test_close_repeat_frozen(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    create1(fx, "F2", "", "");
    vote1(fx, "F1", "u1", 1, "", NULL, NULL, 0);

    answer_t first = close1(fx, 1, 5000);
    assert_int_equal(first.cycle, 2);
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    assert_int_equal(counts_in(&first, "F1"), 11);
    assert_int_equal(counts_in(&first, "F2"), 0);

    vote1(fx, "F1", "u2", 1, "", NULL, NULL, 0);
    vote1(fx, "F2", "u3", 1, "", NULL, NULL, 0);
    create1(fx, "F3", "", "");
    answer_t again = close1(fx, 1, 9999);
    assert_same(&first, &again);
    assert_int_equal(cv_shard_cycle(fx->shard), 2); /* nothing moved */
    assert_int_equal(cv_shard_opened_ms(fx->shard), 5000);
    assert_counts(fx, "F1", 2, 0, 0, 0, 0, 0, 2); /* the live counts did move */

    answer_t second = close1(fx, 2, 6000);
    assert_int_equal(second.cycle, 3);
    assert_int_equal(counts_in(&second, "F1"), 22);
    assert_int_equal(counts_in(&second, "F2"), 11);
    assert_int_equal(counts_in(&second, "F3"), 0);
    vote1(fx, "F2", "u4", 1, "", NULL, NULL, 0);
    answer_t second_again = close1(fx, 2, 0);
    assert_same(&second, &second_again);
    answer_t first_again = close1(fx, 1, 0);
    assert_same(&first, &first_again);

    free(first.buf);
    free(again.buf);
    free(second.buf);
    free(second_again.buf);
    free(first_again.buf);
}

/* The frozen standings are in the store: a restarted shard (or a close that
 * ZeroMQ delivers to it after the restart) answers the same bytes. */
static void test_close_repeat_after_restart(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    vote1(fx, "F1", "u1", -1, "core", NULL, NULL, 0);
    answer_t first = close1(fx, 1, 0);
    vote1(fx, "F1", "u1", 1, "honorary", NULL, NULL, 0);
    reopen(fx);
    assert_int_equal(cv_shard_cycle(fx->shard), 2);
    answer_t again = close1(fx, 1, 0);
    assert_same(&first, &again);
    free(first.buf);
    free(again.buf);

    /* The public close stores them as well. */
    assert_int_equal(cv_shard_close_cycle(fx->shard, 2, 0), 0);
    vote1(fx, "F1", "u2", 1, "", NULL, NULL, 0);
    answer_t two = close1(fx, 2, 0);
    /* u1's honorary up vote (up[0] 0, one voter), not u2's vote of cycle 3. */
    assert_int_equal(counts_in(&two, "F1"), 10);
    assert_int_equal(two.cycle, 3);
    free(two.buf);
}

/* The trend answered by a close is that of the cycle closed; a repeat
 * keeps it even though the gains now belong to the next cycle. */
static void test_close_repeat_keeps_trend(void **state)
{
    fx_t *fx = *state;
    const uint64_t t0 = 1700000000000ULL;
    create1(fx, "F1", "", "");
    use_test_clock(fx, t0);
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, t0), 0);
    test_now_ms = t0 + 1000;
    assert_true(vote_at(fx, stamp_at(t0 + 500, 1), "F1", "u1", 1, "").changed);
    answer_t first = close1(fx, 2, t0 + 1000);
    Canvass__V1__Standings *st = canvass__v1__standings__unpack(NULL, first.len, first.buf);
    assert_non_null(st);
    assert_int_equal(st->n_features, 1);
    assert_true(st->at_ms == t0 + 1000);
    assert_true(st->features[0]->trend[0] > 0.99 && st->features[0]->trend[0] <= 1.0);
    canvass__v1__standings__free_unpacked(st, NULL);

    test_now_ms = t0 + 2000;
    assert_true(vote_at(fx, stamp_at(t0 + 1500, 1), "F1", "u2", 1, "").changed);
    answer_t again = close1(fx, 2, 0);
    assert_same(&first, &again);
    free(first.buf);
    free(again.buf);
}

/* Only the last CV_SHARD_CLOSED_KEEP closes are kept; an older cycle closed
 * again gets the current standings, as before frozen standings existed. */
static void test_close_keeps_last_few(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    answer_t kept[7];
    char user[16];
    for (uint64_t n = 1; n <= 6; n++) {
        snprintf(user, sizeof user, "u%llu", (unsigned long long)n);
        vote1(fx, "F1", user, 1, "", NULL, NULL, 0);
        kept[n] = close1(fx, n, 0);
        assert_int_equal(counts_in(&kept[n], "F1"), 11 * (long)n);
    }
    char cycles[256];
    closed_cycles(fx, cycles);
    assert_string_equal(cycles, "3,4,5,6,");
    vote1(fx, "F1", "late", 1, "", NULL, NULL, 0);
    for (uint64_t n = 3; n <= 6; n++) {
        answer_t again = close1(fx, n, 0);
        assert_same(&kept[n], &again);
        free(again.buf);
    }
    answer_t old = close1(fx, 2, 0);
    assert_int_equal(counts_in(&old, "F1"), 77); /* now: 7 voters */
    assert_int_equal(old.cycle, 7);
    free(old.buf);
    for (uint64_t n = 1; n <= 6; n++)
        free(kept[n].buf);
}

/* A store closed before frozen standings existed (schema 2): no entry, so a
 * repeated close answers the current standings, and the store is marked
 * schema 3. */
static void test_close_without_frozen(void **state)
{
    fx_t *fx = *state;
    create1(fx, "F1", "", "");
    assert_int_equal(cv_shard_close_cycle(fx->shard, 1, 0), 0);
    cv_shard_close(&fx->shard);

    cv_store_t *store = cv_shard_store_open_existing(fx->dir);
    assert_non_null(store);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(store, 0, &t), 0);
    uint8_t key[CV_BE64_SIZE], two[CV_U64_SIZE];
    cv_be64_encode(1, key);
    assert_int_equal(cv_store_del(t, CV_SHARD_CLOSED, key, sizeof key), 0);
    cv_u64_encode(2, two);
    assert_int_equal(cv_store_put(t, CV_SHARD_META, "schema", 6, two, sizeof two), 0);
    assert_int_equal(cv_store_commit(&t), 0);
    cv_store_close(&store);

    reopen(fx);
    vote1(fx, "F1", "u1", 1, "", NULL, NULL, 0);
    answer_t a = close1(fx, 1, 0);
    assert_int_equal(counts_in(&a, "F1"), 11);
    assert_int_equal(a.cycle, 2);
    free(a.buf);

    cv_shard_close(&fx->shard);
    store = cv_shard_store_open_existing(fx->dir);
    assert_non_null(store);
    assert_int_equal(cv_store_begin(store, 1, &t), 0);
    const void *val;
    size_t vlen;
    uint64_t schema = 0;
    assert_int_equal(cv_store_get(t, CV_SHARD_META, "schema", 6, &val, &vlen), 0);
    assert_int_equal(cv_u64_decode(val, vlen, &schema), 0);
    assert_int_equal(schema, CV_VOTES_SCHEMA);
    cv_store_abort(&t);
    cv_store_close(&store);
    reopen(fx);
}

/* Standings far bigger than the map: the close grows the map, runs again
 * and still stores exactly what it answers. */
static void test_close_map_full(void **state)
{
    fx_t *fx = *state;
    cv_shard_close(&fx->shard);
    char why[256];
    snprintf(fx->dir + strlen(fx->dir), sizeof fx->dir - strlen(fx->dir), "/m");
    assert_int_equal(
        cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 64 << 10, &fx->shard, why, sizeof why), 0);
    enum { JOBS = 12 };
    static batch_t b[JOBS];
    static char ids[JOBS][BATCH_MAX][16];
    static char title[201];
    memset(title, 't', sizeof title - 1);
    cv_shard_job_t jobs[JOBS];
    for (int j = 0; j < JOBS; j++) {
        batch_init(&b[j]);
        for (int k = 0; k < BATCH_MAX; k++) {
            snprintf(ids[j][k], sizeof ids[j][k], "F%02d%02d", j, k);
            add_create(&b[j], fx->clock++, ids[j][k], "", "");
            b[j].recs[k].title = title;
        }
    }
    apply(fx, jobs, b, JOBS);
    for (int j = 0; j < JOBS; j++)
        cv_shard_job_release(&jobs[j]);
    char path[96];
    struct stat before, after;
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    assert_int_equal(stat(path, &before), 0);
    answer_t first = close1(fx, 1, 0);
    assert_int_equal(stat(path, &after), 0);
    /* The file never outgrows the map, and the map only ever doubles from
     * 64 KiB: a file past the first doubling that held the data before is
     * a map the close itself grew. */
    off_t map = 64 << 10;
    while (map < before.st_size)
        map *= 2;
    assert_true(after.st_size > map);
    vote1(fx, "F0000", "u", 1, "", NULL, NULL, 0);
    answer_t again = close1(fx, 1, 0);
    assert_same(&first, &again);
    free(first.buf);
    free(again.buf);
    fx->dir[strlen(fx->dir) - 2] = '\0';
}

int main(int argc, char **argv)
{
    cv_log_init("tally-test", 0, CV_LOG_ERROR);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_close_repeat_frozen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_repeat_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_repeat_keeps_trend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_keeps_last_few, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_without_frozen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_map_full, setup, teardown),
    };
    return cmocka_run_group_tests_name("tally_close", tests, NULL, NULL);
}
