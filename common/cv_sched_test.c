/* cv_sched tests: every schedule form, every rejected input with its error
 * text, and due times across day, week, month and year boundaries with UTC
 * offsets on both sides.  Expected instants were computed independently
 * (Python's datetime) and are noted beside each value. */
#include "cv_err.h"
#include "cv_sched.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define MIN 60000ULL
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static cv_sched_t parse_ok(const char *text)
{
    cv_sched_t s;
    char err[160] = "";
    int rc = cv_sched_parse(text, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", text, err);
    return s;
}

static uint64_t due(const char *text, uint64_t after_ms)
{
    cv_sched_t s = parse_ok(text);
    return cv_sched_next(&s, after_ms);
}

static void assert_rejected(const char *text, const char *want)
{
    cv_sched_t s = {.kind = CV_SCHED_EVERY, .every_s = 42};
    char err[160] = "";
    assert_int_equal(cv_sched_parse(text, &s, err, sizeof err), CV_EINVAL);
    assert_string_equal(err, want);
    assert_int_equal(s.every_s, 42); /* untouched */
}

/* ---- parsing -------------------------------------------------------------------- */

static void test_parse_forms(void **state)
{
    (void)state;
    cv_sched_t s = parse_ok("manual");
    assert_int_equal(s.kind, CV_SCHED_MANUAL);

    s = parse_ok("every:90s");
    assert_int_equal(s.kind, CV_SCHED_EVERY);
    assert_int_equal(s.every_s, 90);
    s = parse_ok("every:31536000s");
    assert_int_equal(s.every_s, 31536000);

    s = parse_ok("daily@09:30");
    assert_int_equal(s.kind, CV_SCHED_DAILY);
    assert_int_equal(s.minute, 9 * 60 + 30);
    assert_int_equal(s.offset_min, 0);
    s = parse_ok("daily@00:00Z");
    assert_int_equal(s.minute, 0);
    s = parse_ok("daily@23:59-05:30");
    assert_int_equal(s.minute, 23 * 60 + 59);
    assert_int_equal(s.offset_min, -(5 * 60 + 30));

    s = parse_ok("weekly:FRI@17:00Z");
    assert_int_equal(s.kind, CV_SCHED_WEEKLY);
    assert_int_equal(s.weekday, 4);
    assert_int_equal(s.minute, 17 * 60);
    assert_int_equal(s.offset_min, 0);
    s = parse_ok("weekly:fri@17:00+08:00");
    assert_int_equal(s.weekday, 4);
    assert_int_equal(s.offset_min, 8 * 60);
    const char *days[] = {"weekly:Mon@01:00", "weekly:tue@01:00", "weekly:WED@01:00",
                          "weekly:thu@01:00", "weekly:Fri@01:00", "weekly:sAt@01:00",
                          "weekly:SUN@01:00"};
    for (int i = 0; i < 7; i++)
        assert_int_equal(parse_ok(days[i]).weekday, i);

    /* offsets at both ends of the range, lower-case keywords and z */
    assert_int_equal(parse_ok("daily@12:00+14:00").offset_min, 14 * 60);
    assert_int_equal(parse_ok("daily@12:00-12:00").offset_min, -12 * 60);
    assert_int_equal(parse_ok("DAILY@12:00z").offset_min, 0);
    assert_int_equal(parse_ok("Manual").kind, CV_SCHED_MANUAL);
    assert_int_equal(parse_ok("EVERY:5S").every_s, 5);
}

static void test_parse_errors(void **state)
{
    (void)state;
    assert_rejected("weekly:FRX@17:00", "unknown day 'FRX' (MON, TUE, WED, THU, FRI, SAT, SUN)");
    assert_rejected("weekly:FRIDAY@17:00",
                    "unknown day 'FRIDAY' (MON, TUE, WED, THU, FRI, SAT, SUN)");
    assert_rejected("weekly:@17:00", "unknown day '' (MON, TUE, WED, THU, FRI, SAT, SUN)");
    assert_rejected("weekly:FRI", "weekly:FRI needs @HH:MM");
    assert_rejected("daily@24:00", "hour 24 is out of range (00-23)");
    assert_rejected("weekly:MON@12:60", "minute 60 is out of range (00-59)");
    assert_rejected("daily@12:00+15:00", "offset +15:00 is out of range (-12:00 to +14:00)");
    assert_rejected("daily@12:00-12:30", "offset -12:30 is out of range (-12:00 to +14:00)");
    assert_rejected("daily@12:00+05:60", "offset +05:60 is out of range (-12:00 to +14:00)");
    assert_rejected("daily@12:00+0800", "offset '+0800' is not Z, +HH:MM or -HH:MM");
    assert_rejected("daily@12:00Zx", "offset 'Zx' is not Z, +HH:MM or -HH:MM");
    assert_rejected("daily@12:00 ", "offset ' ' is not Z, +HH:MM or -HH:MM");
    assert_rejected("daily@9:00", "time '9:00' is not HH:MM");
    assert_rejected("daily@09:5", "time '09:5' is not HH:MM");
    assert_rejected("daily@12:345", "time '12:345' is not HH:MM");
    assert_rejected("daily@", "time '' is not HH:MM");
    assert_rejected("every:0s",
                    "every:<N>s needs a whole number of seconds from 1 to 31536000, got '0s'");
    assert_rejected("every:10",
                    "every:<N>s needs a whole number of seconds from 1 to 31536000, got '10'");
    assert_rejected("every:-5s",
                    "every:<N>s needs a whole number of seconds from 1 to 31536000, got '-5s'");
    assert_rejected("every:31536001s", "every:<N>s needs a whole number of seconds from 1 to "
                                       "31536000, got '31536001s'");
    assert_rejected("every:99999999999999999999999s",
                    "every:<N>s needs a whole number of seconds from 1 to 31536000, got "
                    "'99999999999999999999999s'");
    assert_rejected("every:5s!",
                    "every:<N>s needs a whole number of seconds from 1 to 31536000, got '5s!'");
    assert_rejected("garbage", "unknown schedule 'garbage' (manual, every:<N>s, daily@HH:MM, "
                               "weekly:DAY@HH:MM)");
    assert_rejected("", "unknown schedule '' (manual, every:<N>s, daily@HH:MM, "
                        "weekly:DAY@HH:MM)");
    assert_rejected("manual ", "unknown schedule 'manual ' (manual, every:<N>s, daily@HH:MM, "
                               "weekly:DAY@HH:MM)");
    assert_rejected("hourly@12:00", "unknown schedule 'hourly@12:00' (manual, every:<N>s, "
                                    "daily@HH:MM, weekly:DAY@HH:MM)");
}

static void test_error_truncated(void **state)
{
    (void)state;
    cv_sched_t s;
    char err[8];
    assert_int_equal(cv_sched_parse("daily@24:00", &s, err, sizeof err), CV_EINVAL);
    assert_string_equal(err, "hour 24");
}

/* ---- due times ---------------------------------------------------------------------- */

static void test_next_manual_and_every(void **state)
{
    (void)state;
    assert_int_equal(due("manual", 1704369600000ULL), 0);
    assert_int_equal(due("every:90s", 1000), 91000);
    assert_int_equal(due("every:1s", 1704369600000ULL), 1704369601000ULL);
    /* a year-long period cannot overflow */
    assert_int_equal(due("every:31536000s", 1704369600000ULL), 1704369600000ULL + 31536000000ULL);
}

static void test_next_weekly_utc(void **state)
{
    (void)state;
    /* The epoch was a Thursday: the first Friday 17:00Z is 1 day 17 h later. */
    assert_int_equal(due("weekly:FRI@17:00Z", 0), DAY + 17 * HOUR);
    /* Thu 2024-01-04 12:00Z -> Fri 2024-01-05 17:00Z */
    assert_int_equal(due("weekly:FRI@17:00Z", 1704369600000ULL), 1704474000000ULL);
    /* one ms before the due time -> that due time */
    assert_int_equal(due("weekly:FRI@17:00Z", 1704474000000ULL - 1), 1704474000000ULL);
    /* exactly at the due time -> strictly after: Fri 2024-01-12 17:00Z */
    assert_int_equal(due("weekly:FRI@17:00Z", 1704474000000ULL), 1705078800000ULL);
    /* no suffix means Z */
    assert_int_equal(due("weekly:FRI@17:00", 1704369600000ULL), 1704474000000ULL);
    /* Sat 2024-01-06 00:00Z is past this week's Friday -> next Friday */
    assert_int_equal(due("weekly:FRI@17:00Z", 1704499200000ULL), 1705078800000ULL);
}

static void test_next_weekly_offsets(void **state)
{
    (void)state;
    /* FRI 17:00 at +08:00 is Friday 09:00 UTC.
     * Fri 2024-01-05 08:00Z -> Fri 2024-01-05 09:00Z */
    assert_int_equal(due("weekly:FRI@17:00+08:00", 1704441600000ULL), 1704445200000ULL);
    /* Fri 2024-01-05 10:00Z -> Fri 2024-01-12 09:00Z */
    assert_int_equal(due("weekly:FRI@17:00+08:00", 1704448800000ULL), 1705050000000ULL);
    /* MON 02:00 at +05:00 is Sunday 21:00 UTC: back across the day and the
     * week boundary.  Sat 2024-01-06 00:00Z -> Sun 2024-01-07 21:00Z */
    assert_int_equal(due("weekly:MON@02:00+05:00", 1704499200000ULL), 1704661200000ULL);
    /* SUN 22:00 at -05:00 is Monday 03:00 UTC: forward across both.
     * Sun 2024-01-07 23:00Z -> Mon 2024-01-08 03:00Z */
    assert_int_equal(due("weekly:SUN@22:00-05:00", 1704668400000ULL), 1704682800000ULL);
    /* The same instant written in two offsets is the same schedule. */
    assert_int_equal(due("weekly:SAT@01:00+08:00", 1704369600000ULL),
                     due("weekly:FRI@17:00Z", 1704369600000ULL));
}

static void test_next_daily(void **state)
{
    (void)state;
    /* 2024-01-05 09:29Z -> 09:30Z the same day; at 09:30Z -> the next day */
    assert_int_equal(due("daily@09:30", 1704446940000ULL), 1704447000000ULL);
    assert_int_equal(due("daily@09:30Z", 1704447000000ULL), 1704533400000ULL);
    /* 00:30 at +01:00 is 23:30 UTC the day before.
     * Wed 2024-02-28 23:45Z -> Thu 2024-02-29 23:30Z (a leap day) */
    assert_int_equal(due("daily@00:30+01:00", 1709163900000ULL), 1709249400000ULL);
    /* 23:00 at -02:00 is 01:00 UTC the day after: across the year.
     * 2024-12-31 02:00Z -> 2025-01-01 01:00Z */
    assert_int_equal(due("daily@23:00-02:00", 1735610400000ULL), 1735693200000ULL);
    /* 2024-12-31 23:30Z exactly -> the next day */
    assert_int_equal(due("daily@23:30Z", 1735687800000ULL), 1735687800000ULL + DAY);
    /* successive due times are one day apart */
    uint64_t t = due("daily@06:15+05:30", 1704369600000ULL);
    assert_int_equal(due("daily@06:15+05:30", t), t + DAY);
    assert_int_equal(t % DAY, 45 * MIN); /* 06:15 - 05:30 = 00:45 UTC */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),     cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_error_truncated), cmocka_unit_test(test_next_manual_and_every),
        cmocka_unit_test(test_next_weekly_utc), cmocka_unit_test(test_next_weekly_offsets),
        cmocka_unit_test(test_next_daily),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
