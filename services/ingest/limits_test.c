/* limits_test: ingest's deadlines and budget on a fake clock -- the read
 * deadline runs from a frame's first byte (slowloris), clocks stand still
 * while ingest is not reading, slow progress is not a stuck client, and the
 * budget pauses and resumes at its two marks. */
#include "limits.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MS 1000000ull
#define T0 (1000 * MS) /* a clock that does not start at 0 */

static const cv_limits_opts_t OPTS = {.idle_ms = 1000, .read_ms = 500, .write_ms = 2000,
                                      .max_buffered = 1000};

/* An open connection ingest is reading, owed nothing. */
static cv_limits_state_t quiet(void)
{
    cv_limits_state_t st = {.open = true, .reading = true};
    return st;
}

static void test_idle(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_conn_t c;
    cv_limits_init(&l, &OPTS);
    cv_limits_conn_init(&c, T0);
    cv_limits_state_t st = quiet();
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 1000 * MS), CV_LIMITS_OK);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 1001 * MS), CV_LIMITS_IDLE);
    /* a completed frame restarts the clock */
    cv_limits_conn_read(&c, T0 + 900 * MS, true, false);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 1500 * MS), CV_LIMITS_OK);
    /* owed something: not idle, however long */
    st.owed = true;
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 60000 * MS), CV_LIMITS_OK);
    st.owed = false;
    /* draining or finishing: its own end is near, not the idle deadline's */
    st.open = false;
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 60000 * MS), CV_LIMITS_OK);
    /* 0 turns it off */
    cv_limits_opts_t off = OPTS;
    off.idle_ms = 0;
    cv_limits_init(&l, &off);
    st = quiet();
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 3600000 * MS), CV_LIMITS_OK);
}

static void test_read_from_first_byte(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_conn_t c;
    cv_limits_init(&l, &OPTS);
    cv_limits_conn_init(&c, T0);
    cv_limits_state_t st = quiet();
    /* a byte every 100 ms of one frame */
    for (uint64_t t = 0; t <= 500; t += 100) {
        cv_limits_conn_read(&c, T0 + t * MS, false, true);
        assert_int_equal(cv_limits_check(&l, &c, &st, T0 + t * MS), CV_LIMITS_OK);
    }
    cv_limits_conn_read(&c, T0 + 600 * MS, false, true);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 600 * MS), CV_LIMITS_READ);
    /* a partial frame is never "idle", even past idle_ms */
    cv_limits_opts_t noread = OPTS;
    noread.read_ms = 0;
    cv_limits_init(&l, &noread);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 5000 * MS), CV_LIMITS_OK);
    /* a frame completed with the next one begun in the same bytes: the new
     * frame's clock starts at those bytes */
    cv_limits_init(&l, &OPTS);
    cv_limits_conn_read(&c, T0 + 5000 * MS, true, true);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 5400 * MS), CV_LIMITS_OK);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 5501 * MS), CV_LIMITS_READ);
    /* finished without a new one: no read clock */
    cv_limits_conn_read(&c, T0 + 5600 * MS, true, false);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 5700 * MS), CV_LIMITS_OK);
}

static void test_clocks_stand_while_paused(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_conn_t c;
    cv_limits_init(&l, &OPTS);
    cv_limits_conn_init(&c, T0);
    cv_limits_conn_read(&c, T0, false, true);
    cv_limits_state_t st = quiet();
    st.reading = false; /* ingest paused it (budget, backpressure) */
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 10000 * MS), CV_LIMITS_OK);
    cv_limits_conn_resumed(&c, T0 + 10000 * MS);
    st.reading = true;
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 10400 * MS), CV_LIMITS_OK);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 10501 * MS), CV_LIMITS_READ);
}

static void test_write_progress(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_conn_t c;
    cv_limits_init(&l, &OPTS);
    cv_limits_conn_init(&c, T0);
    cv_limits_state_t st = quiet();
    st.unsent = 5000000;
    st.socket_unsent = 4000000;
    cv_limits_conn_owed(&c, T0);
    /* the socket takes some bytes of one big write every second: no write
     * callback yet, but progress */
    for (uint64_t t = 1000; t <= 6000; t += 1000) {
        st.socket_unsent -= 100000;
        assert_int_equal(cv_limits_check(&l, &c, &st, T0 + t * MS), CV_LIMITS_OK);
    }
    /* then nothing more: stuck */
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 8000 * MS), CV_LIMITS_OK);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 8001 * MS), CV_LIMITS_WRITE);
    /* a write completing is progress too */
    cv_limits_conn_wrote(&c, T0 + 8001 * MS);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 9000 * MS), CV_LIMITS_OK);
    /* the write deadline holds while paused and while draining */
    st.reading = false;
    st.open = false;
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 10002 * MS), CV_LIMITS_WRITE);
    /* nothing unsent: no write deadline; owed replies are not idle */
    st.unsent = st.socket_unsent = 0;
    st.open = st.reading = true;
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 10002 * MS), CV_LIMITS_IDLE);
    st.unsent = 10;
    cv_limits_conn_owed(&c, T0 + 10002 * MS);
    assert_int_equal(cv_limits_check(&l, &c, &st, T0 + 11000 * MS), CV_LIMITS_OK);
}

static void test_budget_marks(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_init(&l, &OPTS); /* 1000 bytes; resume at 750 */
    assert_false(cv_limits_charge(&l, 1000));
    assert_false(l.over);
    assert_true(cv_limits_charge(&l, 1));
    assert_true(l.over);
    assert_false(cv_limits_charge(&l, 500)); /* already over: no second pause */
    assert_false(cv_limits_refund(&l, 700));  /* 801 */
    assert_true(l.over);
    assert_true(cv_limits_refund(&l, 51)); /* 750 */
    assert_false(l.over);
    assert_false(cv_limits_refund(&l, 750));
    assert_int_equal(l.charged, 0);
    /* no budget */
    cv_limits_opts_t none = OPTS;
    none.max_buffered = 0;
    cv_limits_init(&l, &none);
    assert_false(cv_limits_charge(&l, (size_t)1 << 40));
    assert_false(l.over);
}

static void test_sweep_period(void **state)
{
    (void)state;
    cv_limits_t l;
    cv_limits_init(&l, &OPTS);
    assert_int_equal(cv_limits_sweep_ms(&l), 125);
    cv_limits_opts_t o = {0};
    cv_limits_init(&l, &o);
    assert_int_equal(cv_limits_sweep_ms(&l), 1000);
    o.read_ms = 8;
    cv_limits_init(&l, &o);
    assert_int_equal(cv_limits_sweep_ms(&l), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_read_from_first_byte),
        cmocka_unit_test(test_clocks_stand_while_paused),
        cmocka_unit_test(test_write_progress),
        cmocka_unit_test(test_budget_marks),
        cmocka_unit_test(test_sweep_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
