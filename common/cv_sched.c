/* cv_sched: parsing schedules and computing due times (see cv_sched.h).
 *
 * Daily and weekly schedules are periodic in UTC once the offset is applied:
 * the due instants are base + k * period for every integer k, where base is
 * the first instant at or after the epoch (1970-01-01, a Thursday) and the
 * period one day or one week.  The next due time is then one division, with
 * no calendar arithmetic and no dependence on the process's time zone.
 */
#include "cv_sched.h"
#include "cv_err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MS_PER_MIN 60000ULL
#define MIN_PER_DAY 1440
#define MIN_PER_WEEK (7 * MIN_PER_DAY)
#define OFFSET_MIN_LOW (-12 * 60)
#define OFFSET_MIN_HIGH (14 * 60)
/* 1970-01-01 was a Thursday: Monday-based weekday 3. */
#define EPOCH_WEEKDAY 3

static const char *const day_names[7] = {"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"};

/* Two decimal digits at p; -1 when they are not. */
static int two_digits(const char *p)
{
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Parses "HH:MM" then an optional offset, to the end of the text. */
static int parse_time(const char *p, cv_sched_t *s, char *err, size_t errlen)
{
    int hh = two_digits(p), mm = hh < 0 || p[2] != ':' ? -1 : two_digits(p + 3);
    if (hh < 0 || mm < 0 || isdigit((unsigned char)p[5])) {
        /* Show the time part only: up to the offset sign or Z. */
        size_t n = strcspn(p, "+-Zz");
        snprintf(err, errlen, "time '%.*s' is not HH:MM", (int)(n > 16 ? 16 : n), p);
        return CV_EINVAL;
    }
    if (hh > 23) {
        snprintf(err, errlen, "hour %02d is out of range (00-23)", hh);
        return CV_EINVAL;
    }
    if (mm > 59) {
        snprintf(err, errlen, "minute %02d is out of range (00-59)", mm);
        return CV_EINVAL;
    }
    const char *o = p + 5;
    int offset = 0;
    if (*o == '\0' || ((*o == 'Z' || *o == 'z') && o[1] == '\0')) {
        offset = 0;
    } else {
        int oh = -1, om = -1;
        if ((*o == '+' || *o == '-') && strlen(o) == 6 && o[3] == ':') {
            oh = two_digits(o + 1);
            om = two_digits(o + 4);
        }
        if (oh < 0 || om < 0) {
            snprintf(err, errlen, "offset '%.16s' is not Z, +HH:MM or -HH:MM", o);
            return CV_EINVAL;
        }
        offset = (*o == '-' ? -1 : 1) * (oh * 60 + om);
        if (om > 59 || offset < OFFSET_MIN_LOW || offset > OFFSET_MIN_HIGH) {
            snprintf(err, errlen, "offset %s is out of range (-12:00 to +14:00)", o);
            return CV_EINVAL;
        }
    }
    s->minute = hh * 60 + mm;
    s->offset_min = offset;
    return 0;
}

static int parse_every(const char *p, cv_sched_t *s, char *err, size_t errlen)
{
    uint64_t n = 0;
    const char *q = p;
    while (isdigit((unsigned char)*q) && n <= CV_SCHED_EVERY_MAX_S)
        n = n * 10 + (uint64_t)(*q++ - '0');
    if (q == p || n < 1 || n > CV_SCHED_EVERY_MAX_S || (*q != 's' && *q != 'S') || q[1]) {
        snprintf(err, errlen,
                 "every:<N>s needs a whole number of seconds from 1 to %u, got '%.24s'",
                 CV_SCHED_EVERY_MAX_S, p);
        return CV_EINVAL;
    }
    s->every_s = (uint32_t)n;
    return 0;
}

int cv_sched_parse(const char *text, cv_sched_t *out, char *err, size_t errlen)
{
    cv_sched_t s = {0};
    int rc = 0;
    if (!strcasecmp(text, "manual")) {
        s.kind = CV_SCHED_MANUAL;
    } else if (!strncasecmp(text, "every:", 6)) {
        s.kind = CV_SCHED_EVERY;
        rc = parse_every(text + 6, &s, err, errlen);
    } else if (!strncasecmp(text, "daily@", 6)) {
        s.kind = CV_SCHED_DAILY;
        rc = parse_time(text + 6, &s, err, errlen);
    } else if (!strncasecmp(text, "weekly:", 7)) {
        s.kind = CV_SCHED_WEEKLY;
        const char *day = text + 7, *at = strchr(day, '@');
        size_t dlen = at ? (size_t)(at - day) : strlen(day);
        s.weekday = -1;
        for (int i = 0; i < 7 && dlen == 3; i++)
            if (!strncasecmp(day, day_names[i], 3))
                s.weekday = i;
        if (s.weekday < 0) {
            snprintf(err, errlen, "unknown day '%.*s' (MON, TUE, WED, THU, FRI, SAT, SUN)",
                     (int)(dlen > 16 ? 16 : dlen), day);
            return CV_EINVAL;
        }
        if (!at) {
            snprintf(err, errlen, "weekly:%.3s needs @HH:MM", day);
            return CV_EINVAL;
        }
        rc = parse_time(at + 1, &s, err, errlen);
    } else {
        snprintf(err, errlen,
                 "unknown schedule '%.40s' (manual, every:<N>s, daily@HH:MM, weekly:DAY@HH:MM)",
                 text);
        return CV_EINVAL;
    }
    if (rc == 0)
        *out = s;
    return rc;
}

/* The first of base + k * period (k >= 0) strictly after after_ms. */
static uint64_t next_periodic(uint64_t base, uint64_t period, uint64_t after_ms)
{
    if (after_ms < base)
        return base;
    return base + ((after_ms - base) / period + 1) * period;
}

uint64_t cv_sched_next(const cv_sched_t *s, uint64_t after_ms)
{
    switch (s->kind) {
    case CV_SCHED_MANUAL:
        return 0;
    case CV_SCHED_EVERY:
        return after_ms + (uint64_t)s->every_s * 1000;
    case CV_SCHED_DAILY: {
        int utc = ((s->minute - s->offset_min) % MIN_PER_DAY + MIN_PER_DAY) % MIN_PER_DAY;
        return next_periodic((uint64_t)utc * MS_PER_MIN, MIN_PER_DAY * MS_PER_MIN, after_ms);
    }
    case CV_SCHED_WEEKLY: {
        /* Minutes from the epoch's Thursday 00:00 UTC to the first due time. */
        int m = (s->weekday - EPOCH_WEEKDAY) * MIN_PER_DAY + s->minute - s->offset_min;
        int utc = (m % MIN_PER_WEEK + MIN_PER_WEEK) % MIN_PER_WEEK;
        return next_periodic((uint64_t)utc * MS_PER_MIN, MIN_PER_WEEK * MS_PER_MIN, after_ms);
    }
    }
    return 0;
}
