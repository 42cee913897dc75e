/*
 * fuzz_common: what the libFuzzer targets of tests/fuzz share: the check that turns a broken
 * promise of the API into a crash libFuzzer records, and the error-buffer checks.
 *
 * The targets assert "no crash, no hang, no leak" (the sanitizers and libFuzzer's -timeout see to
 * that) plus a few promises ltx.h makes in so many words, checked with FUZZ_CHECK. With the
 * environment variable LTXVFS_FUZZ_STRICT=1 they also run checks of correctness rather than memory
 * safety: every failure wrote its detail into the error buffer, as error.h asks, and whatever each
 * target lists as strict. CTest (and so CI) turns them on; a bare run of a target leaves them
 * off unless asked.
 */
#ifndef LV_FUZZ_COMMON_H
#define LV_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: broken promise: %s: ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* 1 when LTXVFS_FUZZ_STRICT=1; read once. */
static inline int fuzz_strict(void)
{
    static int strict = -1;
    if (strict < 0) {
        const char *s = getenv("LTXVFS_FUZZ_STRICT");
        strict = s && strcmp(s, "1") == 0;
    }
    return strict;
}

/* Marks an error buffer as unwritten, so fuzz_err_check can tell whether a failure filled it. */
static inline void fuzz_err_reset(char err[LV_ERRLEN])
{
    memset(err, 0x7f, LV_ERRLEN);
}

/* After a call: a failure's detail is a NUL-terminated string (and, strict, was written). */
static inline void fuzz_err_check(const char *what, lv_err rc, const char err[LV_ERRLEN])
{
    if (rc == LV_OK)
        return;
    int written = memchr(err, 0, LV_ERRLEN) != NULL;
    if (fuzz_strict())
        FUZZ_CHECK(written && err[0] != 0x7f && err[0] != '\0', "%s failed (%s) with no detail",
                   what, lv_strerror(rc));
}

#endif
