/*
 * error: the one result enum every module outside the VFS returns, and the side channel for detail.
 *
 * Functions return an lv_err: 0 (LV_OK) for success, a category otherwise. The category says what
 * kind of failure it was (a caller decides on it: retry, report, give up); the human detail, which
 * names what failed and where (file offset, pgno, key, HTTP status), goes into a caller-supplied
 * buffer of LV_ERRLEN bytes, as Redis's anet does. The buffer may be NULL when the caller does not
 * want the detail. Thread-safe: no globals.
 */
#ifndef LV_ERROR_H
#define LV_ERROR_H

#include <stdarg.h>

#define LV_ERRLEN 256

typedef enum lv_err {
    LV_OK = 0,
    LV_EINVAL,       /* a bad argument or a call out of order: the caller's mistake */
    LV_ECORRUPT,     /* input that is not what it claims to be (bad magic, bad sizes, bad order) */
    LV_ECHECKSUM,    /* well-formed input whose checksum does not match */
    LV_EIO,          /* the operating system refused a read, write, open or sync */
    LV_ENOMEM,       /* an allocation failed */
    LV_ENOTFOUND,    /* the thing asked for does not exist */
    LV_EUNSUPPORTED, /* valid, but a version or feature we do not handle */
    LV_ENET,         /* a remote store failed or could not be reached (after any retries) */
    LV_ECONFLICT,    /* a conditional write lost: the object exists or changed (HTTP 412/409) */
    LV_EACCESS       /* the remote store refused the credentials or the request (HTTP 403) */
} lv_err;

/* A static, human-readable name for a category ("corrupt input"); never NULL. */
const char *lv_strerror(lv_err code);

/*
 * Formats the detail into err (if not NULL, truncating to LV_ERRLEN) and returns code, so that a
 * failure is one line: `return lv_fail(err, LV_ECORRUPT, "frame at offset %llu: ...", off);`
 */
lv_err lv_fail(char *err, lv_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Prefixes the detail already in err with context ("snapshot.ltx: "), so that a caller can say
 * which file or request an inner error belongs to. Returns code.
 */
lv_err lv_wrap(char *err, lv_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
