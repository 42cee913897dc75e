/*
 * lease: the single-writer lease of write mode, one lease object per replica, in Litestream's
 * format (s3/leaser.go), so that tools reading or writing either one agree on who holds it.
 *
 *   s3    <prefix>/lock.json   (lock.json with an empty prefix), Content-Type application/json
 *   file  <dir>/lock.json      replaced atomically under flock(<dir>/lock.json.flock)
 *
 *   {"generation":7,"expires_at":"2026-01-02T03:04:05.678000001Z","owner":"host:1234"}
 *
 *   generation  int64, 1 for a lease made where there was none, +1 at each takeover, unchanged
 *               by a renewal
 *   expires_at  RFC 3339 with nanoseconds (Go's RFC3339Nano: trailing zeros trimmed); judged by
 *               the reader's clock (see docs/lease.md on clock skew)
 *   owner       "host:pid" (omitted when empty, as Go's omitempty)
 *
 * Protocol (what makes exactly one holder): acquire = read the object and its ETag; refuse while
 * it is unexpired; else write it with If-None-Match: * (no object) or If-Match: <ETag> (an
 * expired one: a takeover, generation + 1); of two racing writers the store lets one through
 * and the other gets 412. Renew = write with If-Match: <our ETag> and a new expiry. Release =
 * DELETE with If-Match: <our ETag>. Any 412 means the object is not ours any more: the holder
 * must stop writing.
 *
 * The sub-millisecond digits of expires_at are a per-process sequence number, so that no two
 * bodies this process writes are the same: the S3 client recognises its own write after a lost
 * response by the stored object's ETag (the body's MD5), which must then be unique.
 *
 * Threads: a lease is driven by one thread at a time (lease_renew and lease_release must not
 * overlap); the accessors may be called from any thread at any time (a mutex guards the fields,
 * never held across I/O). Different leases (also on one replica) may be used from different
 * threads at once: that is the race the protocol decides. Memory: lv_malloc.
 */
#ifndef LV_LEASE_H
#define LV_LEASE_H

#include <stdint.h>

#include "error.h"
#include "replica.h"

#define LEASE_DEFAULT_TTL_MS 30000
#define LEASE_KEY_NAME       "lock.json"

/* The wall clock of a lease: ms since the epoch. NULL (or now_ms NULL): the real clock. */
typedef struct lease_clock {
    int64_t (*now_ms)(void *ctx);
    void *ctx;
} lease_clock;

typedef struct lease lease;

/*
 * Takes the lease of replica r for ttl_ms (0: LEASE_DEFAULT_TTL_MS) as owner (NULL: "host:pid").
 * r and clock (if not NULL) must outlive the lease; owner is copied. On LV_OK *out is the
 * caller's, to give back with lease_release (or drop with lease_free).
 * Errors:
 *   LV_ECONFLICT  another unexpired lease exists, or another acquirer won a race for it:
 *                 "lease s3://b/p/lock.json (http://...) is held by host:1234 until
 *                 2026-01-02T03:04:05.678Z (generation 7)"
 *   LV_ECORRUPT   the object exists but is not a lease (not JSON, no expires_at, ...)
 *   LV_ENET, LV_EACCESS, LV_EIO, LV_EINVAL, LV_ENOMEM  as the store reports them
 * On any error *out is left unchanged and nothing was written.
 */
lv_err lease_acquire(replica *r, int64_t ttl_ms, const char *owner, const lease_clock *clock,
                     lease **out, char *err);

/*
 * Pushes the expiry to now + ttl with If-Match on the ETag of our last write. LV_ECONFLICT when
 * the object changed or is gone (taken over, deleted): the lease is lost for good (every later
 * renew fails the same way without I/O) and its holder must stop writing. Any other error (the
 * store unreachable) leaves the lease as it was: renew again before lease_expires_ms.
 */
lv_err lease_renew(lease *l, char *err);

/*
 * Gives the lease back and frees l (always, whatever the result). LV_OK: the object was ours and
 * is deleted, or was already gone. LV_ECONFLICT: it belongs to someone else now (left alone).
 * Other errors: the store failed; the object may remain until it expires.
 */
lv_err lease_release(lease *l, char *err);

/* Frees l without touching the store (a crash, as others see it: the lease expires by itself). */
void lease_free(lease *l);

/* Our owner string ("host:pid"); valid while l lives. */
const char *lease_holder(const lease *l);
/* The expiry of our last successful write, ms since the epoch (by our clock). */
int64_t lease_expires_ms(const lease *l);
/* The generation we hold. */
int64_t lease_generation(const lease *l);
/* 1 once a renew found the lease taken (see lease_renew), else 0. */
int lease_lost(const lease *l);

#endif
