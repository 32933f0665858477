/* cv_id: hybrid-clock stamps and feature ids (see cv_id.h). */
#include "cv_id.h"

#include <string.h>
#include <time.h>

uint64_t cv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cv_clock_init(cv_clock_t *c, uint32_t node)
{
    c->last = 0;
    c->node = node & CV_NODE_MAX;
}

uint64_t cv_clock_stamp(cv_clock_t *c)
{
    uint64_t s = cv_now_ms() << 22 | (uint64_t)c->node << 12;
    if (s <= c->last) {
        /* Same millisecond (or the wall clock stepped back): count on.  When
         * the 12-bit counter wraps, the stamp moves into the next ms. */
        uint64_t next = c->last + 1;
        if ((next >> 12 & CV_NODE_MAX) != c->node) /* counter overflowed into node */
            next = ((c->last >> 22) + 1) << 22 | (uint64_t)c->node << 12;
        s = next;
    }
    c->last = s;
    return s;
}

int cv_feature_id_format(uint64_t stamp, char out[CV_FEATURE_ID_CAP])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char tmp[14];
    int n = 0;
    do {
        tmp[n++] = digits[stamp % 36];
        stamp /= 36;
    } while (stamp);
    out[0] = 'F';
    for (int i = 0; i < n; i++)
        out[1 + i] = tmp[n - 1 - i];
    out[1 + n] = '\0';
    return 1 + n;
}
