/* cv_id: hybrid-clock stamps and feature ids (DESIGN B1).
 *
 * A stamp orders commands: wall-clock milliseconds in the top 42 bits, the
 * ingest node id (0..1023) in the next 10, a per-millisecond counter in the
 * low 12.  Stamps from one clock strictly increase even if the wall clock
 * steps back or more than 4096 stamps are taken in one millisecond (the clock
 * then runs ahead of the wall until it catches up).
 *
 * A feature id is "F" followed by the stamp in lower-case base 36, so ids are
 * unique across ingest nodes with distinct node ids, need no coordination,
 * and sort roughly by creation time.
 */
#ifndef CV_ID_H
#define CV_ID_H

#include <stdint.h>

#define CV_NODE_MAX 1023
#define CV_FEATURE_ID_CAP 16 /* "F" + up to 13 base-36 digits + NUL */

typedef struct {
    uint64_t last; /* last stamp handed out */
    uint32_t node;
} cv_clock_t;

/* Current wall-clock time in milliseconds since the Unix epoch. */
uint64_t cv_now_ms(void);

void cv_clock_init(cv_clock_t *c, uint32_t node);

/* Returns a stamp greater than every stamp this clock returned before. */
uint64_t cv_clock_stamp(cv_clock_t *c);

/* The wall-clock milliseconds part of a stamp. */
static inline uint64_t cv_stamp_ms(uint64_t stamp)
{
    return stamp >> 22;
}

/* Writes the feature id for a stamp into out (NUL-terminated); returns its
 * length. */
int cv_feature_id_format(uint64_t stamp, char out[CV_FEATURE_ID_CAP]);

#endif
