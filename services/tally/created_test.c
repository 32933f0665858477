/* Unit tests for the created index of a tally shard (created.c): pages of
 * created features in commit order, the cursor (`last`, `more`), index
 * stamps raised past older ones so that a late create is never skipped,
 * resends, limits, and --check of the index.  Real LMDB stores in
 * temporary directories; the fixture is shard_test.h.
 *
 * Built as $(BUILD)/unit/tally_created_test.  Run all, or only those
 * matching a pattern: tally_created_test 'test_created_pages'. */
#include "shard_test.h"

/* One CreatedQuery through cv_shard_answer; the caller destroys the reply. */
static cv_shard_reply_t *created1(fx_t *fx, uint64_t after, uint32_t limit)
{
    Canvass__V1__CreatedQuery q = CANVASS__V1__CREATED_QUERY__INIT;
    q.after = after;
    q.limit = limit;
    Canvass__V1__TallyRequest req = CANVASS__V1__TALLY_REQUEST__INIT;
    req.corr = 82;
    req.op_case = CANVASS__V1__TALLY_REQUEST__OP_CREATED;
    req.created = &q;
    cv_shard_reply_t *r = NULL;
    assert_int_equal(cv_shard_answer(fx->shard, &req, &r), 0);
    const Canvass__V1__TallyReply *m = cv_shard_reply_msg(r);
    assert_true(m->corr == 82);
    assert_int_equal(m->status, CV_ST_OK);
    assert_int_equal(m->result_case, CANVASS__V1__TALLY_REPLY__RESULT_CREATED);
    return r;
}

/* The page's feature ids joined with ',' into out. */
static const Canvass__V1__CreatedPage *page_of(cv_shard_reply_t *r, char *out, size_t cap)
{
    const Canvass__V1__CreatedPage *p = cv_shard_reply_msg(r)->created;
    out[0] = '\0';
    for (size_t i = 0; i < p->n_features; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "",
                 p->features[i]->feature_id);
    return p;
}

static void create_at(fx_t *fx, uint64_t stamp, const char *id)
{
    batch_t b;
    cv_shard_job_t job;
    batch_init(&b);
    add_create(&b, stamp, id, "", "");
    apply(fx, &job, &b, 1);
    assert_int_equal(job.ack_ptrs[0]->status, CV_ST_OK);
    cv_shard_job_release(&job);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_created_pages(void **state)
{
    fx_t *fx = *state;
    create_at(fx, stamp_at(1000, 1), "FA");
    create_at(fx, stamp_at(1001, 1), "FB");
    create_at(fx, stamp_at(1002, 1), "FC");
    create_at(fx, stamp_at(1003, 1), "FD");
    create_at(fx, stamp_at(1004, 1), "FE");
    char ids[256];

    cv_shard_reply_t *r = created1(fx, 0, 2);
    const Canvass__V1__CreatedPage *p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FA,FB");
    assert_true(p->last == stamp_at(1001, 1));
    assert_true(p->more);
    /* The whole record, as stored. */
    const Canvass__V1__FeatureRecord *f = p->features[0];
    assert_string_equal(f->title, "a title");
    assert_string_equal(f->status, "open");
    assert_int_equal(f->created_ms, 1000);
    assert_int_equal(f->n_history, 1);
    cv_shard_reply_destroy(&r);

    r = created1(fx, stamp_at(1001, 1), 2);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FC,FD");
    assert_true(p->last == stamp_at(1003, 1));
    assert_true(p->more);
    cv_shard_reply_destroy(&r);

    r = created1(fx, stamp_at(1003, 1), 2);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FE");
    assert_true(p->last == stamp_at(1004, 1));
    assert_false(p->more);
    cv_shard_reply_destroy(&r);

    r = created1(fx, stamp_at(1004, 1), 2);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "");
    assert_true(p->last == stamp_at(1004, 1)); /* `after` when nothing is new */
    assert_false(p->more);
    cv_shard_reply_destroy(&r);

    /* In between two stamps, and from the very top. */
    r = created1(fx, stamp_at(1002, 0), 0);
    assert_string_equal((page_of(r, ids, sizeof ids), ids), "FC,FD,FE");
    cv_shard_reply_destroy(&r);
    r = created1(fx, UINT64_MAX, 0);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "");
    assert_true(p->last == UINT64_MAX);
    cv_shard_reply_destroy(&r);

    /* A status change does not list a feature again; a new one follows. */
    cv_shard_reply_t *ss = set_status1(fx, "FE", "declined", "", 0);
    assert_reply(ss, CV_ST_OK, "");
    cv_shard_reply_destroy(&ss);
    create_at(fx, stamp_at(1010, 1), "FF");
    r = created1(fx, stamp_at(1004, 1), 0);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FF");
    assert_true(p->last == stamp_at(1010, 1));
    cv_shard_reply_destroy(&r);
}

/* A create committed after a newer one (another ingest's clock, a late
 * resend) is listed after it, under a raised stamp, so a reader that has
 * already moved past the newer one still gets it.  A resend of a created
 * feature adds nothing. */
static void test_created_commit_order(void **state)
{
    fx_t *fx = *state;
    create_at(fx, stamp_at(5000, 1), "FNEW");
    char ids[256];
    cv_shard_reply_t *r = created1(fx, 0, 0);
    const Canvass__V1__CreatedPage *p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FNEW");
    uint64_t seen = p->last;
    assert_true(seen == stamp_at(5000, 1));
    cv_shard_reply_destroy(&r);

    create_at(fx, stamp_at(4000, 1), "FOLD");
    create_at(fx, stamp_at(4000, 1), "FOLD");  /* a resend */
    create_at(fx, stamp_at(5000, 1), "FSAME"); /* the same stamp as FNEW */
    r = created1(fx, seen, 0);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FOLD,FSAME");
    assert_true(p->last == stamp_at(5000, 1) + 2);
    assert_int_equal(p->features[0]->created_ms, 4000); /* the record keeps its time */
    cv_shard_reply_destroy(&r);

    /* The raised stamps survive a restart: the next is raised past them. */
    cv_shard_close(&fx->shard);
    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    create_at(fx, stamp_at(5000, 2), "FNEXT");
    r = created1(fx, stamp_at(5000, 1) + 2, 0);
    p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "FNEXT");
    assert_true(p->last == stamp_at(5000, 1) + 3);
    cv_shard_reply_destroy(&r);

    r = created1(fx, 0, 0);
    assert_string_equal((page_of(r, ids, sizeof ids), ids), "FNEW,FOLD,FSAME,FNEXT");
    cv_shard_reply_destroy(&r);
}

/* limit 0 is 100, more than 1000 is 1000; creates of one group are listed
 * in the order they were applied. */
static void test_created_limits(void **state)
{
    fx_t *fx = *state;
    enum { JOBS = 17 }; /* 1088 features */
    static batch_t b[JOBS];
    static char ids[JOBS][BATCH_MAX][16];
    cv_shard_job_t jobs[JOBS];
    for (int j = 0; j < JOBS; j++) {
        batch_init(&b[j]);
        for (int k = 0; k < BATCH_MAX; k++) {
            snprintf(ids[j][k], sizeof ids[j][k], "F%04d", j * BATCH_MAX + k);
            add_create(&b[j], fx->clock++, ids[j][k], "", "");
        }
    }
    apply(fx, jobs, b, JOBS);
    for (int j = 0; j < JOBS; j++)
        cv_shard_job_release(&jobs[j]);

    cv_shard_reply_t *r = created1(fx, 0, 0);
    const Canvass__V1__CreatedPage *p = cv_shard_reply_msg(r)->created;
    assert_int_equal(p->n_features, CV_SHARD_CREATED_LIMIT);
    assert_true(p->more);
    for (size_t i = 0; i < p->n_features; i++) {
        char want[32];
        snprintf(want, sizeof want, "F%04zu", i);
        assert_string_equal(p->features[i]->feature_id, want);
    }
    cv_shard_reply_destroy(&r);

    r = created1(fx, 0, 100000);
    p = cv_shard_reply_msg(r)->created;
    assert_int_equal(p->n_features, CV_SHARD_CREATED_MAX);
    assert_true(p->more);
    assert_string_equal(p->features[999]->feature_id, "F0999");
    uint64_t last = p->last;
    cv_shard_reply_destroy(&r);

    r = created1(fx, last, 100000);
    p = cv_shard_reply_msg(r)->created;
    assert_int_equal(p->n_features, JOBS * BATCH_MAX - CV_SHARD_CREATED_MAX);
    assert_false(p->more);
    assert_string_equal(p->features[0]->feature_id, "F1000");
    cv_shard_reply_destroy(&r);

    r = created1(fx, last, 88);
    p = cv_shard_reply_msg(r)->created;
    assert_int_equal(p->n_features, 88);
    assert_false(p->more); /* exactly the rest */
    cv_shard_reply_destroy(&r);
}

/* --check accepts the index and reports an entry whose feature is gone. */
static void test_created_check(void **state)
{
    fx_t *fx = *state;
    create_at(fx, stamp_at(1000, 1), "F1");
    create_at(fx, stamp_at(1001, 1), "F2");
    char *out = NULL;
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 0);
    assert_string_equal(out, "ok features=2 votes=0\n");
    free(out);

    cv_shard_close(&fx->shard);
    cv_store_t *store = cv_shard_store_open_existing(fx->dir);
    assert_non_null(store);
    cv_txn_t *t;
    assert_int_equal(cv_store_begin(store, 0, &t), 0);
    assert_int_equal(cv_store_del(t, CV_SHARD_FEATURES, "F2", 2), 0);
    assert_int_equal(cv_store_del(t, CV_SHARD_TALLIES, "F2", 2), 0);
    assert_int_equal(cv_store_commit(&t), 0);
    cv_store_close(&store);
    assert_int_equal(audit(cv_audit_check, fx->dir, &out), 1);
    assert_string_equal(out, "mismatch feature=F2 reason=\"created index entry for a feature "
                             "that does not exist\"\n");
    free(out);

    /* The query skips the entry whose record is gone, and moves past it. */
    char why[256];
    assert_int_equal(cv_shard_open(fx->dir, 0, 1, CV_DURABLE_OS, 0, &fx->shard, why, sizeof why),
                     0);
    char ids[64];
    cv_shard_reply_t *r = created1(fx, 0, 0);
    const Canvass__V1__CreatedPage *p = page_of(r, ids, sizeof ids);
    assert_string_equal(ids, "F1");
    assert_true(p->last == stamp_at(1001, 1));
    cv_shard_reply_destroy(&r);
}

int main(int argc, char **argv)
{
    cv_log_init("tally-test", 0, CV_LOG_ERROR);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_created_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_check, setup, teardown),
    };
    return cmocka_run_group_tests_name("tally_created", tests, NULL, NULL);
}
