/* cv_err: texts for the CV_E* codes. */
#include "cv_err.h"

const char *cv_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define CV__ERR_TEXT(name, code, text)                                         \
    case (code):                                                               \
        return text;
        CV_ERRNO_MAP(CV__ERR_TEXT)
#undef CV__ERR_TEXT
    }
    return "unknown error";
}
