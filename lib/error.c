/* error: lv_err names and the detail buffer helpers (see error.h). */
#include "error.h"

#include <stdio.h>
#include <string.h>

const char *lv_strerror(lv_err code)
{
    switch (code) {
    case LV_OK:
        return "success";
    case LV_EINVAL:
        return "invalid argument";
    case LV_ECORRUPT:
        return "corrupt input";
    case LV_ECHECKSUM:
        return "checksum mismatch";
    case LV_EIO:
        return "I/O error";
    case LV_ENOMEM:
        return "out of memory";
    case LV_ENOTFOUND:
        return "not found";
    case LV_EUNSUPPORTED:
        return "unsupported";
    case LV_ENET:
        return "remote store failed";
    case LV_ECONFLICT:
        return "conditional write conflict";
    case LV_EACCESS:
        return "access denied";
    }
    return "unknown error";
}

lv_err lv_fail(char *err, lv_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, LV_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

lv_err lv_wrap(char *err, lv_err code, const char *fmt, ...)
{
    if (err) {
        char prefix[LV_ERRLEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        size_t p = strlen(prefix), e = strnlen(err, LV_ERRLEN - 1);
        if (p > LV_ERRLEN - 1)
            p = LV_ERRLEN - 1;
        if (p + e > LV_ERRLEN - 1)
            e = LV_ERRLEN - 1 - p; /* keep the prefix, cut the tail of the old detail */
        memmove(err + p, err, e);
        memcpy(err, prefix, p);
        err[p + e] = '\0';
    }
    return code;
}
