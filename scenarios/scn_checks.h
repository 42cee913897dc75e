/*
 * scn_checks: the invariants the scenario runner checks, as pure functions over what a trial left
 * behind: the workloads' logs (parsed here), the rows of a restored database, the listing of
 * level 0, fakes3's request log, the names found in a folder, sampled descriptor and memory
 * figures. Nothing here starts a process or opens a socket, so tests/scn/test_scn_checks.c can
 * feed each check deliberately broken input and see it fail.
 *
 * Every check returns 1 (holds) or 0 (violated) and writes one line saying why into msg (at most
 * cap bytes, always terminated): "412 synced rows present", "row 57 missing: ...".
 *
 * Log formats (one line each, written by scenarios/scn_driver.c with one write(2) and an fsync):
 *   writer: "open PID" | "refused MESSAGE" | "commit ID" | "syncing ID" | "synced ID TXID" |
 *           "syncfail ID" | "stopped MESSAGE" | "closed" | "closefail MESSAGE"
 *   reader: "open PID" | "read TXID ANSWER" | "travel TXID ANSWER" | "readfail MESSAGE"
 * TXIDs are 16 hex digits; IDs decimal. A torn last line (a kill mid-write) is ignored.
 *
 * Threads: none; every function works on its arguments only.
 */
#ifndef SCN_CHECKS_H
#define SCN_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#define SCN_MSGLEN 512

/* ---- writer logs ---- */

typedef struct scn_synced {
    int64_t id;    /* the highest id committed before the litestream_sync() call */
    uint64_t txid; /* what it returned */
} scn_synced;

/* What one writer's log says (every incarnation of the writer appends to the same log). */
typedef struct scn_wlog {
    int64_t last_commit; /* the highest id of a "commit" line, 0 if none */
    int64_t last_synced; /* the highest id of a "synced" line, 0 if none */
    int64_t commits, syncings, syncs, syncfails, refusals, opens, closes, closefails, stops;
    scn_synced *synced; /* every "synced" line in order; owned, scn_wlog_free */
    size_t nsynced;
} scn_wlog;

/* Parses a writer log held in text (len bytes). Returns 0, or -1 when out of memory. */
int scn_wlog_parse(const char *text, size_t len, scn_wlog *out);
void scn_wlog_free(scn_wlog *w);

/* ---- reader logs ---- */

enum { SCN_R_OPEN, SCN_R_READ, SCN_R_TRAVEL, SCN_R_FAIL };

typedef struct scn_read {
    int kind; /* SCN_R_* */
    uint64_t txid;
    char answer[64];
} scn_read;

typedef struct scn_rlog {
    scn_read *reads; /* owned, scn_rlog_free */
    size_t n;
    size_t hydrated; /* "hydrated TXID" lines: the reader saw its hydration copy ready */
} scn_rlog;

int scn_rlog_parse(const char *text, size_t len, scn_rlog *out);
void scn_rlog_free(scn_rlog *r);

/* ---- rows of a restored database ---- */

/* The rows of t, ascending by id, and which of them hold a v the workload never wrote. */
typedef struct scn_rows {
    const int64_t *ids;
    size_t n;
    size_t bad_v;        /* rows whose v is not scn_expected_v(id) */
    int64_t first_bad_v; /* the first such id */
} scn_rows;

/* The v the workload writes in row id: a pure function of id (splitmix64), as vfs_writer's. */
void scn_expected_v(int64_t id, char out[64]);

/* The answer a reader computes over rows 1..M ("count:max:sum"), for comparisons. */
void scn_answer_of(const scn_rows *rows, char out[64]);

/*
 * durable: every row covered by an acknowledged sync ("synced ID": rows 1..ID) of any writer is
 * present. With all_commits, every logged commit must be present too (a writer restarted on the
 * same buffer and stopped cleanly ships everything it committed).
 */
int scn_check_durable(const scn_wlog *w, size_t nw, const scn_rows *rows, int all_commits,
                      char *msg, size_t cap);

/*
 * prefix: the rows are exactly 1..M with the workload's values (the state after one committed
 * transaction, never a mix), and M is at most the last logged commit + 1 (a kill between COMMIT
 * and its log line leaves one such row).
 */
int scn_check_prefix(const scn_wlog *w, size_t nw, const scn_rows *rows, char *msg, size_t cap);

/* ---- the replica ---- */

typedef struct scn_range {
    uint64_t min, max;
} scn_range;

/*
 * Level 0 of a replica, as `ltxctl ls --level 0 --json` prints it ({"files":[{"min_txid":"..",
 * "max_txid":".."}...]}), into *out (owned by the caller, lv_free) and *n. 0, or -1 with msg.
 */
int scn_level0_parse(const char *json, scn_range **out, size_t *n, char *msg, size_t cap);

/* chain (the level-0 half): files sorted by TXID follow each other, no duplicate, no gap. */
int scn_check_level0(const scn_range *files, size_t n, char *msg, size_t cap);

/*
 * single-writer over fakes3's request log (JSON lines, len bytes): every level-0 LTX file
 * (key ".../0000/<16 hex>-<16 hex>.ltx") stored with a 2xx PutObject or CompleteMultipartUpload
 * lands once, and no two stored level-0 files cover the same TXID. refused[i] is the number of
 * refusals logged by the i-th writer that the scenario expects to have been refused (nref of
 * them); each must be at least 1.
 */
int scn_check_single_writer(const char *reqlog, size_t len, const int64_t *refused,
                            const char *const *refused_names, size_t nref, char *msg, size_t cap);

/* monotonic: within each connection ("open" starts one), "read" TXIDs never decrease. */
int scn_check_monotonic(const scn_rlog *r, char *msg, size_t cap);

/* A reference answer: the answer computed from the restored state at txid. */
typedef struct scn_ref {
    uint64_t txid;
    char answer[64];
} scn_ref;

/*
 * answers: every read (and time-travel read) whose TXID has a reference answer gave exactly it;
 * at least one read must have been compared.
 */
int scn_check_answers(const scn_rlog *r, const scn_ref *ref, size_t nref, char *msg, size_t cap);

/*
 * The distinct TXIDs of r's reads and travels (sorted ascending, into *out, lv_free), for the
 * runner to restore at. Returns the count, or -1 when out of memory.
 */
long scn_read_txids(const scn_rlog *r, uint64_t **out);

/* no-leftovers: names found in a workload's folder after clean exits; any is a leftover. */
int scn_check_leftovers(const char *const *names, size_t n, char *msg, size_t cap);

/* bounded: the largest sampled descriptor count and RSS stayed within the bounds (0: no bound). */
int scn_check_bounded(long max_fds, long max_rss_kb, long fd_bound, long rss_bound_kb,
                      size_t samples, char *msg, size_t cap);

/*
 * catch-up: the replica reached the writer's last commit (have >= want) within the bound; the
 * elapsed time is what the runner measured.
 */
int scn_check_catchup(int64_t want, int64_t have, double elapsed_s, double bound_s, char *msg,
                      size_t cap);

#endif
