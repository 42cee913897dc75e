/*
 * mkreplica: lays out a replica directory (Litestream's file layout, DIR/ltx/<level>/...) from a
 * sequence of SQLite database files, the states of one database after successive transactions,
 * the way a replicating writer would: the first state becomes a snapshot (TXID 1) at level 9
 * (or 0 with --snapshot-level 0), each later state k a level-0 file k-k holding the pages that
 * differ from state k-1 (and the new commit size), with database checksums chained. Timestamps:
 * --time T0 (ms since the epoch) for the first, plus --step MS for each next one.
 *
 *   mkreplica [--time MS] [--step MS] [--start TXID] [--snapshot-level L] DIR DB1 [DB2 ...]
 *
 * --start N numbers the first state N instead of 1 (a level-0 file N-N holding every page: for
 * appending states to an existing replica, whose state N-1 is the previous DB given first with
 * --base). For the command-line tests only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltx.h"

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mkreplica: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "mkreplica: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static uint32_t page_size_of(const uint8_t *db, size_t n, const char *path)
{
    if (n < 100 || memcmp(db, "SQLite format 3", 16) != 0) {
        fprintf(stderr, "mkreplica: %s is not a SQLite database\n", path);
        exit(1);
    }
    uint32_t ps = (uint32_t)db[16] << 8 | db[17];
    return ps == 1 ? 65536 : ps;
}

static uint64_t db_checksum(const uint8_t *db, uint32_t pages, uint32_t ps)
{
    uint64_t c = LTX_CHECKSUM_FLAG;
    for (uint32_t p = 1; p <= pages; p++)
        if (p != ltx_lock_pgno(ps))
            c = ltx_db_checksum_update(c, 0, ltx_page_checksum(p, db + (size_t)(p - 1) * ps, ps));
    return c;
}

static void write_file(const char *dir, int level, const ltx_header *h, const uint8_t *db,
                       const uint8_t *prev, uint32_t prev_pages, uint64_t post)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/ltx/%d", dir, level);
    char mk[4200];
    snprintf(mk, sizeof mk, "%s/ltx", dir);
    mkdir(dir, 0755);
    mkdir(mk, 0755);
    mkdir(path, 0755);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%016llx-%016llx.ltx",
             (unsigned long long)h->min_txid, (unsigned long long)h->max_txid);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char err[LV_ERRLEN] = "";
    ltx_encoder *e = NULL;
    if (fd < 0 || ltx_encoder_open(&e, h, ltx_fd_write, &fd, err) != LV_OK)
        goto fail;
    uint32_t ps = h->page_size;
    for (uint32_t p = 1; p <= h->commit; p++) {
        if (p == ltx_lock_pgno(ps))
            continue;
        const uint8_t *page = db + (size_t)(p - 1) * ps;
        if (prev && p <= prev_pages && memcmp(page, prev + (size_t)(p - 1) * ps, ps) == 0)
            continue;
        if (ltx_encoder_page(e, p, page, err) != LV_OK)
            goto fail;
    }
    ltx_encoder_set_post_apply(e, post);
    if (ltx_encoder_finish(e, NULL, err) != LV_OK || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, path) != 0)
        goto fail;
    ltx_encoder_free(e);
    struct timespec ts[2] = {{h->timestamp / 1000, (h->timestamp % 1000) * 1000000},
                             {h->timestamp / 1000, (h->timestamp % 1000) * 1000000}};
    utimensat(AT_FDCWD, path, ts, 0);
    return;
fail:
    fprintf(stderr, "mkreplica: %s: %s\n", path, err[0] ? err : strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    int64_t t = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    int64_t step = 1000;
    uint64_t txid = 1;
    int snap_level = 9;
    const char *base = NULL;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--time") == 0)
            t = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--step") == 0)
            step = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--start") == 0)
            txid = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--snapshot-level") == 0)
            snap_level = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--base") == 0)
            base = argv[i + 1];
        else
            break;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: mkreplica [--time MS] [--step MS] [--start TXID [--base DB]] "
                        "[--snapshot-level L] DIR DB1 [DB2 ...]\n");
        return 2;
    }
    const char *dir = argv[i++];
    uint8_t *prev = NULL;
    size_t prev_n = 0;
    uint32_t ps = 0;
    if (base) {
        prev = read_all(base, &prev_n);
        ps = page_size_of(prev, prev_n, base);
    }
    for (; i < argc; i++, txid++, t += step) {
        size_t n;
        uint8_t *db = read_all(argv[i], &n);
        uint32_t dps = page_size_of(db, n, argv[i]);
        if (ps && dps != ps) {
            fprintf(stderr, "mkreplica: %s: page size %u, not %u\n", argv[i], dps, ps);
            return 1;
        }
        ps = dps;
        uint32_t pages = (uint32_t)(n / ps), prev_pages = (uint32_t)(prev_n / ps);
        ltx_header h = {0};
        h.page_size = ps;
        h.commit = pages;
        h.min_txid = h.max_txid = txid;
        h.timestamp = t;
        h.pre_apply_checksum = txid == 1 ? 0 : db_checksum(prev, prev_pages, ps);
        uint64_t post = db_checksum(db, pages, ps);
        write_file(dir, txid == 1 ? snap_level : 0, &h, db, txid == 1 ? NULL : prev, prev_pages,
                   post);
        free(prev);
        prev = db;
        prev_n = n;
    }
    free(prev);
    return 0;
}
