/*
 * replica_plan: the restore plan, Litestream's CalcRestorePlan (replica.go) over a listing.
 *
 *   1. snapshot: of the level-9 files in name order, the last one the target allows
 *      (TXID target: max <= txid; time target: created at or before the time);
 *      reached = its max TXID, or 0 without one. A TXID target it already reaches ends the plan.
 *   2. chain: one cursor per level 8..0 walking that level in name order. A cursor consumes
 *      every file with min <= reached+1; files with max <= reached or not allowed by the target
 *      are dropped, the others compete to be its candidate. Among all cursors' candidates the
 *      best (larger max; then smaller min; then higher level; then earlier created) is appended,
 *      reached = its max; repeat until no candidate (or a TXID target is reached).
 *   3. latest mode only: a level whose next unconsumed file starts beyond reached+1 is a gap:
 *      "non-contiguous ltx files: have up to TXID X but the next file starts at Y".
 *   4. an empty plan, or a TXID target not reached: LV_ENOTFOUND.
 *
 * One deliberate difference: Litestream's time filter is CreatedAt.Before(t) (strictly before);
 * ours is created_ms <= time_ms ("the last state created at or before this time", replica.h),
 * so a time equal to a file's header timestamp includes that file.
 *
 * A pure function: no I/O, no state. Threads: any.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replica_private.h"

typedef struct plan_cursor {
    const replica_file **files; /* this level, in name order */
    size_t n, pos;
    const replica_file *current;   /* read but not yet evaluated */
    const replica_file *candidate; /* the best eligible file so far */
    int done;
} plan_cursor;

typedef struct plan_target {
    uint64_t txid;
    int64_t time_ms;
} plan_target;

static int allowed(const plan_target *t, const replica_file *f)
{
    if (t->txid && f->max_txid > t->txid)
        return 0;
    if (t->time_ms && f->created_ms > t->time_ms)
        return 0;
    return 1;
}

/* restoreCandidateBetter: is next better than curr? */
static int better(const replica_file *curr, const replica_file *next)
{
    if (next->max_txid != curr->max_txid)
        return next->max_txid > curr->max_txid;
    if (next->min_txid != curr->min_txid)
        return next->min_txid < curr->min_txid;
    if (next->level != curr->level)
        return next->level > curr->level;
    return next->created_ms < curr->created_ms;
}

static void ensure_current(plan_cursor *c)
{
    if (c->done || c->current)
        return;
    if (c->pos == c->n) {
        c->done = 1;
        return;
    }
    c->current = c->files[c->pos++];
}

static void refresh(plan_cursor *c, uint64_t reached, const plan_target *t)
{
    if (c->done)
        return;
    if (c->candidate && c->candidate->max_txid <= reached)
        c->candidate = NULL;
    for (;;) {
        ensure_current(c);
        if (c->done)
            return;
        const replica_file *f = c->current;
        if (f->min_txid > reached + 1)
            return;
        c->current = NULL;
        if (f->max_txid <= reached || !allowed(t, f))
            continue;
        if (!c->candidate || better(c->candidate, f))
            c->candidate = f;
    }
}

static int cmp_name(const void *pa, const void *pb)
{
    const replica_file *a = *(const replica_file *const *)pa, *b = *(const replica_file *const *)pb;
    if (a->min_txid != b->min_txid)
        return a->min_txid < b->min_txid ? -1 : 1;
    if (a->max_txid != b->max_txid)
        return a->max_txid < b->max_txid ? -1 : 1;
    return 0;
}

lv_err replica_plan_restore(const replica_file *files, size_t n, const replica_target *target,
                            replica_plan *plan, char *err)
{
    memset(plan, 0, sizeof *plan);
    plan_target t = {target ? target->txid : 0, target ? target->time_ms : 0};
    if (t.txid && t.time_ms)
        return lv_fail(err, LV_EINVAL, "restore plan: a TXID and a time target at once");
    lv_err rc = LV_OK;
    const replica_file **byname = NULL;
    replica_file *out = NULL;
    size_t nout = 0;
    plan_cursor cur[REPLICA_SNAPSHOT_LEVEL];
    size_t first[REPLICA_MAX_LEVEL + 2] = {0};

    if (n) {
        byname = lv_malloc(n * sizeof *byname);
        out = lv_malloc(n * sizeof *out);
        if (!byname || !out) {
            rc = lv_fail(err, LV_ENOMEM, "restore plan: out of memory");
            goto done;
        }
    }
    /* group by level (counting sort), then name order within each level */
    size_t count[REPLICA_MAX_LEVEL + 1] = {0};
    for (size_t i = 0; i < n; i++)
        if (files[i].level >= 0 && files[i].level <= REPLICA_MAX_LEVEL)
            count[files[i].level]++;
    for (int l = 0; l <= REPLICA_MAX_LEVEL; l++)
        first[l + 1] = first[l] + count[l];
    size_t fill[REPLICA_MAX_LEVEL + 1];
    memcpy(fill, first, sizeof fill);
    for (size_t i = 0; i < n; i++)
        if (files[i].level >= 0 && files[i].level <= REPLICA_MAX_LEVEL)
            byname[fill[files[i].level]++] = &files[i];
    for (int l = 0; l <= REPLICA_MAX_LEVEL; l++)
        if (count[l] > 1)
            qsort(byname + first[l], count[l], sizeof *byname, cmp_name);

    /* 1. the newest snapshot the target allows */
    const replica_file *snap = NULL;
    for (size_t i = first[REPLICA_SNAPSHOT_LEVEL]; i < first[REPLICA_SNAPSHOT_LEVEL + 1]; i++)
        if (allowed(&t, byname[i]))
            snap = byname[i];
    uint64_t reached = 0;
    if (snap) {
        out[nout++] = *snap;
        reached = snap->max_txid;
    }

    /* 2. the chain over levels 8..0 */
    memset(cur, 0, sizeof cur);
    for (int k = 0; k < REPLICA_SNAPSHOT_LEVEL; k++) {
        int l = REPLICA_SNAPSHOT_LEVEL - 1 - k;
        cur[k].files = byname ? byname + first[l] : NULL;
        cur[k].n = count[l];
    }
    while (!(t.txid && reached >= t.txid)) {
        plan_cursor *next = NULL;
        for (int k = 0; k < REPLICA_SNAPSHOT_LEVEL; k++) {
            refresh(&cur[k], reached, &t);
            if (!cur[k].candidate)
                continue;
            if (!next || better(next->candidate, cur[k].candidate))
                next = &cur[k];
        }
        if (!next)
            break;
        if (next->candidate->max_txid <= reached) {
            next->candidate = NULL; /* stale, from an exhausted cursor */
            continue;
        }
        out[nout++] = *next->candidate;
        reached = next->candidate->max_txid;
        next->candidate = NULL;
    }

    /* 3. a gap, in latest mode */
    if (nout > 0 && !t.txid && !t.time_ms) {
        for (int k = 0; k < REPLICA_SNAPSHOT_LEVEL; k++) {
            ensure_current(&cur[k]);
            if (cur[k].current && cur[k].current->min_txid > reached + 1) {
                /* LV_ECONFLICT, not LV_ECORRUPT: a gap is often the listing racing an upload
                 * or a compaction; listing again may close it (replica.h) */
                rc = lv_fail(err, LV_ECONFLICT,
                             "non-contiguous ltx files: have up to TXID %016llx but the next file "
                             "starts at %016llx",
                             (unsigned long long)reached,
                             (unsigned long long)cur[k].current->min_txid);
                goto done;
            }
        }
    }

    /* 4. nothing, or not far enough */
    if (nout == 0) {
        if (t.txid)
            rc = lv_fail(err, LV_ENOTFOUND, "TXID %016llx is not available: no file reaches it",
                         (unsigned long long)t.txid);
        else if (t.time_ms) {
            char when[40];
            replica_format_time(t.time_ms, when, sizeof when);
            rc = lv_fail(err, LV_ENOTFOUND,
                         "no state at or before %s: nothing that old chains from TXID 1", when);
        } else
            rc = lv_fail(err, LV_ENOTFOUND, "no LTX files to restore from");
        goto done;
    }
    if (t.txid && reached < t.txid) {
        rc = lv_fail(err, LV_ENOTFOUND,
                     "TXID %016llx is not available: the files reach TXID %016llx",
                     (unsigned long long)t.txid, (unsigned long long)reached);
        goto done;
    }
    plan->files = out;
    plan->n = nout;
    plan->max_txid = reached;
    out = NULL;
done:
    lv_free(byname);
    lv_free(out);
    return rc;
}
