/* fail: the one way `canvass` reports an error, "canvass: reason" on one
 * line of stderr.  Its own file so that every module and its unit test can
 * link it without main(). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

void cv_cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("canvass: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
