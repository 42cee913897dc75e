/*
 * httpsem: the pieces of HTTP semantics S3 relies on, as pure functions: entity-tag lists,
 * byte ranges, HTTP and ISO-8601 dates, and the evaluation of conditional GET/HEAD headers.
 * Kept apart from the server so the rules are in one place and can be tested on their own.
 *
 * No state, no allocation, no clock (times are inputs); safe from any thread.
 */
#ifndef FS3_HTTPSEM_H
#define FS3_HTTPSEM_H

#include <stddef.h>
#include <stdint.h>

#include "s3err.h"

/*
 * 1 if etag (as stored, without quotes) is named by list, the value of an If-Match or
 * If-None-Match header: "*" (matches any existing object), or entity tags separated by commas,
 * quoted or not, with any "W/" weakness prefix ignored (S3 compares them strongly).
 */
int fs3_etag_list_matches(const char *list, const char *etag);

typedef enum fs3_range_kind {
    FS3_RANGE_NONE,         /* no Range, or one S3 ignores (not bytes=, several ranges, a > b) */
    FS3_RANGE_OK,           /* serve [first, last] with 206 */
    FS3_RANGE_UNSATISFIABLE /* 416 InvalidRange */
} fs3_range_kind;

/*
 * Interprets a Range header (NULL: none) against an object of size bytes: "bytes=a-b" (b clamped
 * to the end), "bytes=a-", "bytes=-n" (the last n bytes; all of them if n > size).
 */
fs3_range_kind fs3_parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Parses an HTTP date (RFC 1123 "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850, asctime) or an ISO-8601
 * UTC time ("1994-11-06T08:49:37Z", optional fraction) into seconds. 0 on success, -1 otherwise.
 */
int fs3_parse_http_date(const char *s, int64_t *unix_seconds);
/* "Sun, 06 Nov 1994 08:49:37 GMT" into out (at least 30 bytes). */
void fs3_format_http_date(int64_t unix_seconds, char *out, size_t cap);
/* "1994-11-06T08:49:37.000Z" into out (at least 25 bytes). */
void fs3_format_iso8601(int64_t unix_ms, char *out, size_t cap);

/* The conditional headers of a GET or HEAD (NULL: absent). */
typedef struct fs3_read_cond {
    const char *if_match;
    const char *if_none_match;
    const char *if_modified_since;
    const char *if_unmodified_since;
} fs3_read_cond;

/*
 * Evaluates c against an object with etag and mtime as S3 does (RFC 7232 section 6): a failing
 * If-Match, or else a failing If-Unmodified-Since, is FS3_PRECONDITION_FAILED (412); then a
 * matching If-None-Match, or else an unmet If-Modified-Since, is FS3_NOT_MODIFIED (304).
 * Unparseable dates are ignored. FS3_OK otherwise.
 */
fs3_code fs3_check_read_cond(const fs3_read_cond *c, const char *etag, int64_t mtime_ms);

#endif
