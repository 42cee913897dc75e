/*
 * timeexpr: the times a user may type where a point in time is asked for (PRAGMA litestream_time,
 * ltxctl restore --timestamp), turned into milliseconds since the epoch, and RFC 3339 out.
 *
 * Accepted (case-insensitive, surrounding white space ignored):
 *
 *   2026-01-02T03:04:05Z             RFC 3339: 'T', 't' or one space between date and time;
 *   2026-01-02T03:04:05.678+02:00    fractional seconds of any length (kept to the millisecond,
 *   2026-01-02 03:04:05-0530         truncated); Z or an offset +HH:MM, +HHMM or +HH
 *   2026-01-02                       a date alone: its midnight, UTC
 *   now                              now_ms
 *   yesterday                        now_ms minus 24 hours
 *   N UNIT ago, NUNIT ago            N a whole or decimal number; UNIT one of
 *                                    ms msec millisecond(s), s sec secs second(s),
 *                                    m min mins minute(s), h hr hrs hour(s), d day(s),
 *                                    w wk wks week(s)
 *
 * "latest" is not a time: callers that accept it check for it first (lv_time_is_latest).
 * Pure functions: the current time is an argument; no locale, no time zone database, no globals.
 */
#ifndef LV_TIMEEXPR_H
#define LV_TIMEEXPR_H

#include <stdint.h>

#include "error.h"

/* Parses s (see above) into *ms. LV_EINVAL with err saying what was expected. */
lv_err lv_time_parse(const char *s, int64_t now_ms, int64_t *ms, char *err);

/* 1 when s is "latest" (any case, white space around it ignored). */
int lv_time_is_latest(const char *s);

#define LV_TIME_RFC3339_LEN 80 /* generous: years beyond 9999 print more digits */
/* "2026-01-02T03:04:05.678Z" (with_ms) or "2026-01-02T03:04:05Z", UTC. */
void lv_time_format(int64_t ms, int with_ms, char out[LV_TIME_RFC3339_LEN]);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12), negative before it. */
int64_t lv_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
