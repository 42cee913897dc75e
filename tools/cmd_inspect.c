/*
 * cmd_inspect: the ltxctl commands that read LTX files and change nothing: dump, verify, list.
 *
 * dump and verify read a file start to end with the streaming decoder, which checks everything
 * (frames, page index, trailer, file checksum). list reads only what it prints: the header, then
 * the tail, then the page index it points at (three preads), and checks those.
 *
 * Output formats follow the reference tool: `ltx dump` (the "# HEADER" block, "Frame #i: pgno=N",
 * "# TRAILER"), `ltx list -tsv` byte for byte, `ltx list` as an aligned table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "commands.h"
#include "ltx.h"

/*
 * Reads an LTX file's trailer and page index from its tail with two preads (the trailer and the
 * index length, then the index), validated against the header h. On success idx owns entries the
 * caller frees with ltx_index_free; on failure idx is empty.
 */
static lv_err read_index(int fd, uint64_t size, const ltx_header *h, ltx_trailer *t,
                         ltx_page_index *idx, char *err)
{
    uint8_t tail[LTX_TAIL_SIZE];
    uint8_t *buf = NULL;
    uint64_t off = 0, len = 0;
    lv_err e;

    memset(idx, 0, sizeof *idx);
    if (size < LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE + LTX_TAIL_SIZE)
        return lv_fail(err, LV_ECORRUPT, "file is %llu bytes, too small for an LTX file",
                       (unsigned long long)size);
    if ((e = cli_pread_full(fd, tail, sizeof tail, size - LTX_TAIL_SIZE, err)) != LV_OK)
        return e;
    if ((e = ltx_index_locate(tail, size, &off, &len, t, err)) != LV_OK)
        return e;
    if ((e = ltx_trailer_validate(t, h, err)) != LV_OK)
        return e;
    if (len > size) /* the codec checks this; a guard before sizing an allocation by it */
        return lv_fail(err, LV_ECORRUPT, "page index of %llu bytes in a file of %llu",
                       (unsigned long long)len, (unsigned long long)size);
    buf = lv_malloc((size_t)len);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "out of memory for a page index of %llu bytes",
                       (unsigned long long)len);
    if ((e = cli_pread_full(fd, buf, (size_t)len, off, err)) == LV_OK)
        e = ltx_index_parse(buf, (size_t)len, off, h, idx, err);
    lv_free(buf);
    return e;
}

/* The size of the regular file open on fd. */
static lv_err file_size(int fd, uint64_t *size, char *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return lv_fail(err, LV_EIO, "stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return lv_fail(err, LV_EINVAL, "not a regular file");
    *size = (uint64_t)st.st_size;
    return LV_OK;
}

/* ---- dump --------------------------------------------------------------------------------------
 */

static const char dump_usage[] =
    "Usage: ltxctl dump FILE\n"
    "\n"
    "Prints everything in an LTX file: the header; each page frame with its pgno, offset and\n"
    "size in the file, page flags, compressed size, encoding and page checksum; the page index;\n"
    "and the trailer. The file is verified as it is read: a damaged file is printed up to the\n"
    "damage, then the error is reported and the exit status is 1.\n"
    "\n"
    "Flags:\n"
    "  -h, --help   show this help\n";

static void dump_header(const ltx_header *h)
{
    char ts[CLI_TIME_LEN];
    cli_format_time(h->timestamp, 1, ts);
    printf("# HEADER\n");
    printf("Version:   3\n");
    printf("Flags:     0x%08x\n", h->flags);
    printf("Page size: %u\n", h->page_size);
    printf("Commit:    %u\n", h->commit);
    printf("Min TXID:  %016llx (%llu)\n", (unsigned long long)h->min_txid,
           (unsigned long long)h->min_txid);
    printf("Max TXID:  %016llx (%llu)\n", (unsigned long long)h->max_txid,
           (unsigned long long)h->max_txid);
    printf("Timestamp: %s (%lld)\n", ts, (long long)h->timestamp);
    printf("Pre-apply: %016llx\n", (unsigned long long)h->pre_apply_checksum);
    printf("WAL offset: %lld\n", (long long)h->wal_offset);
    printf("WAL size:   %lld\n", (long long)h->wal_size);
    printf("WAL salt:   %08x %08x\n", h->wal_salt1, h->wal_salt2);
    printf("Node ID:    %016llx\n", (unsigned long long)h->node_id);
    printf("\n");
}

static void dump_index_and_trailer(const ltx_page_index *idx, const ltx_trailer *t)
{
    printf("# PAGE INDEX\n");
    printf("Offset:  %llu\n", (unsigned long long)idx->offset);
    printf("Size:    %llu\n", (unsigned long long)idx->size);
    printf("Entries: %zu\n", idx->n);
    for (size_t i = 0; i < idx->n; i++)
        printf("Entry #%zu: pgno=%u offset=%llu size=%u\n", i, idx->entries[i].pgno,
               (unsigned long long)idx->entries[i].offset, idx->entries[i].size);
    printf("\n");
    printf("# TRAILER\n");
    printf("Post-apply:    %016llx\n", (unsigned long long)t->post_apply_checksum);
    printf("File Checksum: %016llx\n", (unsigned long long)t->file_checksum);
    printf("\n");
}

int cmd_dump(int argc, char **argv)
{
    static const char cmd[] = "dump";
    char err[LV_ERRLEN] = "";
    ltx_decoder *d = NULL;
    ltx_page_index idx;
    ltx_trailer t;
    uint64_t size = 0;
    int fd = -1, npos, rc;

    memset(&idx, 0, sizeof idx);

    rc = cli_parse(cmd, dump_usage, argc, argv, NULL, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing FILE" : "too many arguments");
    const char *path = argv[0];

    rc = CLI_FAIL;
    fd = cli_open(path, O_RDONLY, err);
    if (fd < 0)
        goto done;
    if (ltx_decoder_open(&d, ltx_fd_read, &fd, err) != LV_OK)
        goto done;
    const ltx_header *h = ltx_decoder_header(d);
    dump_header(h);

    printf("# PAGE DATA\n");
    for (size_t i = 0;; i++) {
        ltx_frame_info fi;
        const uint8_t *page = NULL;
        if (ltx_decoder_next(d, &fi, &page, err) != LV_OK)
            goto done;
        if (fi.pgno == 0)
            break;
        printf("Frame #%zu: pgno=%u\n", i, fi.pgno);
        printf("  offset=%llu size=%u flags=0x%04x compressed_size=%u encoding=%s "
               "checksum=%016llx\n",
               (unsigned long long)fi.offset, fi.size, fi.flags, fi.compressed_size,
               (fi.flags & LTX_PAGE_FLAG_SIZE) ? "lz4-block" : "lz4-frame",
               (unsigned long long)ltx_page_checksum(fi.pgno, page, h->page_size));
    }
    printf("\n");
    /* The decoder checked the index against the frames without keeping it: read it again. */
    if (file_size(fd, &size, err) != LV_OK || read_index(fd, size, h, &t, &idx, err) != LV_OK)
        goto done;
    dump_index_and_trailer(&idx, ltx_decoder_trailer(d));
    rc = CLI_OK;

done:
    if (rc != CLI_OK)
        cli_error(cmd, path, "%s", err);
    ltx_index_free(&idx);
    ltx_decoder_free(d);
    if (fd >= 0)
        close(fd);
    return cli_finish(cmd, rc);
}

/* ---- verify ------------------------------------------------------------------------------------
 */

static const char verify_usage[] =
    "Usage: ltxctl verify FILE...\n"
    "\n"
    "Reads each LTX file completely and checks it: the header rules, every frame (order,\n"
    "bounds, decompression), the page index against the frames, the trailer, the file\n"
    "checksum, and for a snapshot the post-apply checksum against its pages. Prints\n"
    "\"FILE: ok\" for a good file and an error on stderr for a bad one; the exit status is 1\n"
    "if any file is bad.\n"
    "\n"
    "Flags:\n"
    "  -h, --help   show this help\n";

int cmd_verify(int argc, char **argv)
{
    static const char cmd[] = "verify";
    int npos, rc = cli_parse(cmd, verify_usage, argc, argv, NULL, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos == 0)
        return cli_usage_error(cmd, "missing FILE");

    for (int i = 0; i < npos; i++) {
        char err[LV_ERRLEN] = "";
        int fd = cli_open(argv[i], O_RDONLY, err);
        lv_err e = fd < 0 ? LV_EIO : ltx_verify(ltx_fd_read, &fd, NULL, NULL, NULL, err);
        if (fd >= 0)
            close(fd);
        if (e != LV_OK) {
            cli_error(cmd, argv[i], "%s", err);
            rc = CLI_FAIL;
            continue;
        }
        printf("%s: ok\n", argv[i]);
    }
    return cli_finish(cmd, rc);
}

/* ---- list --------------------------------------------------------------------------------------
 */

static const char list_usage[] =
    "Usage: ltxctl list [-tsv] FILE...\n"
    "\n"
    "Prints one line per LTX file: min_txid, max_txid, commit (database pages after the file),\n"
    "pages (in the file), preapply and postapply (database checksums), timestamp (RFC 3339, UTC,\n"
    "seconds; empty when zero), wal_offset, wal_size, wal_salt. Only the header, the page index\n"
    "and the trailer are read and checked; use verify to check a whole file. A bad file is\n"
    "reported on stderr, the others are still listed, and the exit status is 1.\n"
    "\n"
    "Flags:\n"
    "  -tsv         tab-separated values, exactly as `ltx list -tsv` prints them\n"
    "  -h, --help   show this help\n";

enum { LIST_COLS = 10, LIST_CELL = CLI_TIME_LEN };

static const char *const list_titles[LIST_COLS] = {
    "min_txid",  "max_txid",  "commit",     "pages",    "preapply",
    "postapply", "timestamp", "wal_offset", "wal_size", "wal_salt"};

typedef struct list_row {
    char cell[LIST_COLS][LIST_CELL];
} list_row;

/*
 * Reads what list prints about one file: the header, the trailer and the number of pages (the
 * page index entries). Three preads; every piece is validated by the codec.
 */
static lv_err list_read(const char *path, ltx_header *h, ltx_trailer *t, size_t *pages, char *err)
{
    uint8_t head[LTX_HEADER_SIZE];
    ltx_page_index idx;
    uint64_t size = 0;
    lv_err e;

    memset(&idx, 0, sizeof idx);
    int fd = cli_open(path, O_RDONLY, err);
    if (fd < 0)
        return LV_EIO;
    if ((e = file_size(fd, &size, err)) != LV_OK)
        goto done;
    if (size < LTX_HEADER_SIZE) {
        e = lv_fail(err, LV_ECORRUPT, "file is %llu bytes, too small for an LTX file",
                    (unsigned long long)size);
        goto done;
    }
    if ((e = cli_pread_full(fd, head, sizeof head, 0, err)) != LV_OK)
        goto done;
    if ((e = ltx_header_decode(h, head, sizeof head, err)) != LV_OK)
        goto done;
    if ((e = read_index(fd, size, h, t, &idx, err)) != LV_OK)
        goto done;
    *pages = idx.n;

done:
    ltx_index_free(&idx);
    close(fd);
    return e;
}

static void list_format(list_row *r, const ltx_header *h, const ltx_trailer *t, size_t pages)
{
    char ts[CLI_TIME_LEN] = "";
    if (h->timestamp != 0) /* as the reference: a zero timestamp is "not set" */
        cli_format_time(h->timestamp, 0, ts);
    snprintf(r->cell[0], LIST_CELL, "%016llx", (unsigned long long)h->min_txid);
    snprintf(r->cell[1], LIST_CELL, "%016llx", (unsigned long long)h->max_txid);
    snprintf(r->cell[2], LIST_CELL, "%u", h->commit);
    snprintf(r->cell[3], LIST_CELL, "%zu", pages);
    snprintf(r->cell[4], LIST_CELL, "%016llx", (unsigned long long)h->pre_apply_checksum);
    snprintf(r->cell[5], LIST_CELL, "%016llx", (unsigned long long)t->post_apply_checksum);
    snprintf(r->cell[6], LIST_CELL, "%s", ts);
    snprintf(r->cell[7], LIST_CELL, "%lld", (long long)h->wal_offset);
    snprintf(r->cell[8], LIST_CELL, "%lld", (long long)h->wal_size);
    snprintf(r->cell[9], LIST_CELL, "%08x %08x", h->wal_salt1, h->wal_salt2);
}

static void list_print_tsv(const list_row *r)
{
    for (int c = 0; c < LIST_COLS; c++)
        printf("%s%c", r->cell[c], c + 1 < LIST_COLS ? '\t' : '\n');
}

/* Columns as wide as their widest cell plus two spaces (Go's tabwriter with padding 2). */
static void list_print_table(const list_row *rows, size_t n)
{
    int width[LIST_COLS];
    for (int c = 0; c < LIST_COLS; c++) {
        width[c] = (int)strlen(list_titles[c]);
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(rows[i].cell[c]) > width[c])
                width[c] = (int)strlen(rows[i].cell[c]);
    }
    for (int c = 0; c < LIST_COLS; c++)
        if (c + 1 < LIST_COLS)
            printf("%-*s", width[c] + 2, list_titles[c]);
        else
            printf("%s\n", list_titles[c]);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < LIST_COLS; c++)
            if (c + 1 < LIST_COLS)
                printf("%-*s", width[c] + 2, rows[i].cell[c]);
            else
                printf("%s\n", rows[i].cell[c]);
}

int cmd_list(int argc, char **argv)
{
    static const char cmd[] = "list";
    int tsv = 0, npos;
    const cli_flag flags[] = {{"tsv", NULL, CLI_FLAG_BOOL, &tsv, NULL}, CLI_FLAG_END};
    list_row *rows = NULL;
    size_t nrows = 0;

    int rc = cli_parse(cmd, list_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos == 0)
        return cli_usage_error(cmd, "missing FILE");

    if (tsv) {
        for (int c = 0; c < LIST_COLS; c++)
            printf("%s%c", list_titles[c], c + 1 < LIST_COLS ? '\t' : '\n');
    } else {
        /* The table is aligned to its widest cell, so it is printed after every file is read. */
        rows = lv_calloc((size_t)npos, sizeof *rows);
        if (!rows) {
            cli_error(cmd, NULL, "out of memory");
            return CLI_FAIL;
        }
    }
    for (int i = 0; i < npos; i++) {
        char err[LV_ERRLEN] = "";
        ltx_header h;
        ltx_trailer t;
        size_t pages = 0;
        list_row row;
        if (list_read(argv[i], &h, &t, &pages, err) != LV_OK) {
            cli_error(cmd, argv[i], "%s", err);
            rc = CLI_FAIL;
            continue;
        }
        list_format(tsv ? &row : &rows[nrows++], &h, &t, pages);
        if (tsv)
            list_print_tsv(&row);
    }
    if (!tsv)
        list_print_table(rows, nrows);
    lv_free(rows);
    return cli_finish(cmd, rc);
}
