/* cv_sched: when release cycles close (DESIGN A5).
 *
 * A schedule is one of
 *   manual                          only a release manager closes a cycle
 *   every:<N>s                      N seconds after the previous close
 *                                   (1 <= N <= 31536000, one year)
 *   daily@HH:MM[OFFSET]             every day at that local time
 *   weekly:DAY@HH:MM[OFFSET]        every week, DAY = MON..SUN
 * where OFFSET is Z, +HH:MM or -HH:MM (the local time's UTC offset,
 * -12:00..+14:00; none means Z).  HH is 00-23 and MM 00-59, two digits each.
 * Keywords, day names and Z are case-insensitive:
 *   weekly:FRI@17:00Z (Orange Friday, the default), weekly:fri@17:00+08:00
 *   (Friday 09:00 UTC), daily@09:30-05:00, every:60s.
 *
 * Offsets are fixed: a schedule does not follow a time zone's daylight
 * saving changes, which keeps the next due time a pure function of the text.
 */
#ifndef CV_SCHED_H
#define CV_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define CV_SCHED_EVERY_MAX_S 31536000u

typedef enum { CV_SCHED_MANUAL, CV_SCHED_EVERY, CV_SCHED_DAILY, CV_SCHED_WEEKLY } cv_sched_kind_t;

typedef struct {
    cv_sched_kind_t kind;
    uint32_t every_s; /* EVERY: the period in seconds */
    int weekday;      /* WEEKLY: 0 = Monday .. 6 = Sunday */
    int minute;       /* DAILY, WEEKLY: local time of day, HH * 60 + MM */
    int offset_min;   /* DAILY, WEEKLY: UTC offset of the local time, minutes */
} cv_sched_t;

/* Parses a schedule.  Returns 0 and fills *out, or CV_EINVAL after writing
 * the reason into err (NUL-terminated, truncated to errlen), one of:
 *   "unknown schedule 'x' (manual, every:<N>s, daily@HH:MM, weekly:DAY@HH:MM)"
 *   "every:<N>s needs a whole number of seconds from 1 to 31536000, got '0s'"
 *   "unknown day 'FRX' (MON, TUE, WED, THU, FRI, SAT, SUN)"
 *   "time '9:00' is not HH:MM"
 *   "hour 24 is out of range (00-23)"
 *   "minute 60 is out of range (00-59)"
 *   "offset '+0800' is not Z, +HH:MM or -HH:MM"
 *   "offset +15:00 is out of range (-12:00 to +14:00)"
 * *out is untouched on failure. */
int cv_sched_parse(const char *text, cv_sched_t *out, char *err, size_t errlen);

/* The first time the schedule is due strictly after after_ms (milliseconds
 * since the Unix epoch): 0 for manual, after_ms + N * 1000 for every:Ns,
 * otherwise the next occurrence of the local day and time. */
uint64_t cv_sched_next(const cv_sched_t *s, uint64_t after_ms);

#endif
