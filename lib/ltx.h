/*
 * ltx: the LTX file codec, format version 3, as Litestream and superfly/ltx write it.
 *
 * An LTX file carries the pages one transaction (or a compacted range of transactions) changed:
 *
 *   offset 0      +--------------------------------------------------------------+
 *                 | header, 100 bytes, big-endian                                |
 *                 |   0 "LTX1"  4 flags  8 page size  12 commit (db pages after) |
 *                 |  16 min TXID  24 max TXID  32 timestamp (ms since epoch)     |
 *                 |  40 pre-apply checksum  48 WAL offset  56 WAL size           |
 *                 |  64 WAL salt1  68 WAL salt2  72 node ID  80..99 zero         |
 *   100           +--------------------------------------------------------------+
 *                 | page frames, ascending pgno, one per page:                   |
 *                 |   pgno u32 | flags u16 | size u32 (if flags & 1) | data      |
 *                 |   flags 0x1: data is one LZ4 block of `size` bytes           |
 *                 |   flags 0x0: data is one LZ4 frame (older writers)           |
 *                 +--------------------------------------------------------------+
 *                 | 6 zero bytes: the end of the page block                      |
 *                 +--------------------------------------------------------------+
 *                 | page index: uvarint (pgno, frame offset, frame size) * N,    |
 *                 |   uvarint 0, then u64 length of the varints and the zero     |
 *                 +--------------------------------------------------------------+
 *   size - 16     | trailer: post-apply checksum u64 | file checksum u64         |
 *                 +--------------------------------------------------------------+
 *
 * Checksums are CRC-64/ISO with bit 63 set (LTX_CHECKSUM_FLAG), so a real one is never zero:
 *   page checksum     = flag | CRC(be32(pgno) || page)
 *   database checksum = flag | XOR of the page checksums of every page but the lock page
 *   file checksum     = flag | CRC(header || per frame: page header, size prefix, *decompressed*
 *                       page || zero page header || page index || post-apply checksum)
 * A file with the NoChecksum header flag has zero pre- and post-apply checksums (Litestream
 * writes these); its file checksum is still there and still checked.
 *
 * The pieces:
 *   - header and trailer: encode, decode, validate with the reference rules;
 *   - random access (what the VFS does with range requests): locate and parse the page index from
 *     the tail of a file, decode one frame from its bytes alone;
 *   - a streaming encoder and decoder over caller-supplied write/read callbacks, buffered, one
 *     page in memory at a time, every checksum verified;
 *   - compaction of contiguous files as a k-way merge (memory: one page per input);
 *   - apply of a file to a database file, with incremental database checksums.
 *
 * Errors: every function returns an lv_err and, on failure, writes into `err` (LV_ERRLEN bytes,
 * may be NULL) what was wrong and where: the file offset, the pgno. No input, however damaged,
 * makes these functions crash, hang, or allocate more than the page size and file size justify.
 *
 * Threads: the functions keep no global state; an encoder or decoder is used by one thread at a
 * time.
 */
#ifndef LV_LTX_H
#define LV_LTX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LTX_MAGIC            "LTX1"
#define LTX_HEADER_SIZE      100
#define LTX_PAGE_HEADER_SIZE 6 /* pgno u32, flags u16 */
#define LTX_SIZE_PREFIX_SIZE 4 /* compressed size u32, present when page flags & 0x1 */
#define LTX_TRAILER_SIZE     16
#define LTX_INDEX_SIZE_FIELD 8 /* the u64 length that ends the page index */

#define LTX_HEADER_FLAG_NO_CHECKSUM 0x00000002u
#define LTX_HEADER_FLAG_MASK        LTX_HEADER_FLAG_NO_CHECKSUM
#define LTX_PAGE_FLAG_SIZE          0x0001u /* an LZ4 block with a size prefix follows */
#define LTX_PAGE_FLAG_MASK          LTX_PAGE_FLAG_SIZE

#define LTX_CHECKSUM_FLAG (1ull << 63)
#define LTX_MIN_PAGE_SIZE 512u
#define LTX_MAX_PAGE_SIZE 65536u
#define LTX_PENDING_BYTE  0x40000000ull /* SQLite's lock byte; its page is never stored */

/*
 * Bytes to fetch from the end of a file to learn where its page index starts: the index's u64
 * length field and the trailer.
 */
#define LTX_TAIL_SIZE (LTX_INDEX_SIZE_FIELD + LTX_TRAILER_SIZE)

typedef struct ltx_header {
    uint32_t flags;
    uint32_t page_size;
    uint32_t commit; /* database size in pages after applying the file; 0: deleted */
    uint64_t min_txid;
    uint64_t max_txid;
    int64_t timestamp; /* milliseconds since the Unix epoch */
    uint64_t pre_apply_checksum;
    int64_t wal_offset;
    int64_t wal_size;
    uint32_t wal_salt1;
    uint32_t wal_salt2;
    uint64_t node_id;
} ltx_header;

typedef struct ltx_trailer {
    uint64_t post_apply_checksum;
    uint64_t file_checksum;
} ltx_trailer;

/* ---- header, trailer, small rules ---- */

/* 1 when sz is a power of two in 512..65536. */
int ltx_page_size_valid(uint32_t sz);
/* The page that holds SQLite's lock byte for this page size; never stored, never applied. */
uint32_t ltx_lock_pgno(uint32_t page_size);
/* A snapshot holds every page of the database: its min TXID is 1. */
int ltx_header_is_snapshot(const ltx_header *h);
int ltx_header_no_checksum(const ltx_header *h);

void ltx_header_encode(const ltx_header *h, uint8_t out[LTX_HEADER_SIZE]);
/*
 * Decodes and validates the first LTX_HEADER_SIZE bytes of buf (n must be at least that).
 * LV_ECORRUPT for a wrong magic, nonzero reserved bytes, or a header that breaks a rule.
 */
lv_err ltx_header_decode(ltx_header *h, const uint8_t *buf, size_t n, char *err);
/*
 * The reference rules: known flags only, valid page size, 0 < min TXID <= max TXID, WAL fields
 * consistent, snapshot pre-apply zero, non-snapshot pre-apply present and flagged unless
 * NoChecksum, and zero under NoChecksum.
 */
lv_err ltx_header_validate(const ltx_header *h, char *err);

void ltx_trailer_encode(const ltx_trailer *t, uint8_t out[LTX_TRAILER_SIZE]);
void ltx_trailer_decode(ltx_trailer *t, const uint8_t in[LTX_TRAILER_SIZE]);
/* Post-apply present and flagged (zero under NoChecksum); file checksum present and flagged. */
lv_err ltx_trailer_validate(const ltx_trailer *t, const ltx_header *h, char *err);

/* ---- checksums ---- */

/* flag | CRC64(be32(pgno) || page[0..page_size)). */
uint64_t ltx_page_checksum(uint32_t pgno, const void *page, uint32_t page_size);
/*
 * The database checksum after replacing a page whose checksum was old_page (0 if the page did not
 * exist) by one whose checksum is new_page (0 if the page goes away). Start from 0 for an empty
 * database; the result always carries the flag, so it never reads as "no checksum".
 */
uint64_t ltx_db_checksum_update(uint64_t db, uint64_t old_page, uint64_t new_page);
/*
 * The XOR of the page checksums of all-zero pages first..last (the lock page skipped; 0 if
 * first > last), for ltx_db_checksum_update's new_page: what a file extended with zeros adds.
 * Constant time whatever the range (bit 63 of the result is not meaningful).
 */
uint64_t ltx_zero_pages_checksum(uint32_t first, uint32_t last, uint32_t page_size);
/*
 * The database checksum of `page_count` pages of a database file (the lock page skipped), read
 * with pread. LV_EIO if the file is shorter than page_count pages.
 */
lv_err ltx_db_checksum_fd(int fd, uint32_t page_size, uint32_t page_count, uint64_t *out,
                          char *err);

/* ---- random access: page index and single frames ---- */

typedef struct ltx_index_entry {
    uint32_t pgno;
    uint32_t size;   /* the whole frame: page header, size prefix, payload */
    uint64_t offset; /* of the frame, from the start of the file */
} ltx_index_entry;

typedef struct ltx_page_index {
    ltx_index_entry *entries; /* ascending pgno; owned, freed by ltx_index_free */
    size_t n;
    uint64_t offset; /* where the index starts in the file (right after the zero page header) */
    uint64_t size;   /* its bytes, from `offset` up to the trailer (varints, zero, u64 length) */
} ltx_page_index;

/*
 * From the last LTX_TAIL_SIZE bytes of a file of `file_size` bytes, works out where the page
 * index starts and how many bytes it spans (its length field included), so the caller can fetch
 * exactly that range. The trailer itself is also decoded into *t if t is not NULL.
 */
lv_err ltx_index_locate(const uint8_t tail[LTX_TAIL_SIZE], uint64_t file_size,
                        uint64_t *index_offset, uint64_t *index_size, ltx_trailer *t, char *err);

/*
 * Parses a page index: buf holds exactly the `n` bytes that start at file offset `index_offset`
 * and end where the trailer begins. Checks every entry: pgnos strictly ascending, never the lock
 * page, at most h->commit; frames inside the page block, in file order, not overlapping, each
 * at least a page header plus one byte. h may be NULL to skip the header-dependent checks.
 * On success *out owns an array the caller frees with ltx_index_free; on failure *out is empty.
 */
lv_err ltx_index_parse(const uint8_t *buf, size_t n, uint64_t index_offset, const ltx_header *h,
                       ltx_page_index *out, char *err);
void ltx_index_free(ltx_page_index *idx);
/* The entry for pgno, or NULL; binary search. */
const ltx_index_entry *ltx_index_find(const ltx_page_index *idx, uint32_t pgno);

/*
 * Decodes one page frame from its bytes alone (as fetched by a range request of the index entry's
 * offset and size): either encoding, length-checked in both directions (the frame must be used up
 * exactly and decompress to exactly page_size bytes). If expect_pgno is not 0, the frame must be
 * for that page. page_out receives page_size bytes; *pgno (if not NULL) the frame's pgno.
 */
lv_err ltx_frame_decode(const uint8_t *frame, size_t n, uint32_t page_size, uint32_t expect_pgno,
                        uint8_t *page_out, uint32_t *pgno, char *err);

/* ---- streams ---- */

/* Writes all n bytes or fails. */
typedef lv_err (*ltx_write_fn)(void *ctx, const void *buf, size_t n, char *err);
/* Reads up to n bytes into buf; *got < n only at the end of the stream. */
typedef lv_err (*ltx_read_fn)(void *ctx, void *buf, size_t n, size_t *got, char *err);

/* Callbacks over a file descriptor: ctx points to an int fd. */
lv_err ltx_fd_write(void *ctx, const void *buf, size_t n, char *err);
lv_err ltx_fd_read(void *ctx, void *buf, size_t n, size_t *got, char *err);

/* A read callback over a memory buffer. */
typedef struct ltx_mem_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
} ltx_mem_reader;
lv_err ltx_mem_read(void *ctx, void *buf, size_t n, size_t *got, char *err);

/* ---- streaming encoder ---- */

typedef struct ltx_encoder ltx_encoder;

/*
 * Starts a file: validates h and writes its header. Pages follow with ltx_encoder_page, in
 * strictly ascending pgno, never the lock page, never beyond h->commit; a snapshot must hold
 * every page 1..commit. Output is buffered and handed to `write` in large pieces.
 * On success *out is an encoder the caller frees with ltx_encoder_free.
 */
lv_err ltx_encoder_open(ltx_encoder **out, const ltx_header *h, ltx_write_fn write, void *ctx,
                        char *err);
/* Compresses and writes one page of h->page_size bytes. */
lv_err ltx_encoder_page(ltx_encoder *e, uint32_t pgno, const void *page, char *err);
/*
 * Sets the post-apply checksum. Needed for incremental files that track checksums; a snapshot's
 * is computed from its pages, and one set here must agree with it (else finish fails).
 */
void ltx_encoder_set_post_apply(ltx_encoder *e, uint64_t checksum);
/*
 * The database checksum of the pages written so far, as ltx_db_checksum_update builds it (bit 63
 * set): for a snapshot, the database's checksum once every page is in.
 */
uint64_t ltx_encoder_pages_checksum(const ltx_encoder *e);
/*
 * Ends the page block, writes the page index and trailer, and flushes. *t (if not NULL) receives
 * the trailer. After any failure the encoder is unusable: free it and discard the output.
 */
lv_err ltx_encoder_finish(ltx_encoder *e, ltx_trailer *t, char *err);
/* Bytes produced so far (all of the file after a successful finish). */
uint64_t ltx_encoder_size(const ltx_encoder *e);
void ltx_encoder_free(ltx_encoder *e);

/* ---- streaming decoder ---- */

typedef struct ltx_decoder ltx_decoder;

typedef struct ltx_frame_info {
    uint32_t pgno;            /* 0 once the file has ended and been verified */
    uint16_t flags;           /* page header flags: LTX_PAGE_FLAG_SIZE for an LZ4 block */
    uint32_t size;            /* the frame's bytes in the file */
    uint64_t offset;          /* of the frame in the file */
    uint32_t compressed_size; /* the LZ4 block or frame alone */
} ltx_frame_info;

/* Reads and validates the header. On success *out is a decoder freed with ltx_decoder_free. */
lv_err ltx_decoder_open(ltx_decoder **out, ltx_read_fn read, void *ctx, char *err);
const ltx_header *ltx_decoder_header(const ltx_decoder *d);
/*
 * Decodes the next page. On success either fi->pgno != 0 and *page points at the page's
 * page_size bytes (valid until the next call), or fi->pgno == 0 and the whole file has been read
 * and verified: page order and bounds, the page index against the frames actually seen, the
 * trailer, the file checksum, for a checksummed snapshot the post-apply checksum against its
 * pages, and nothing after the trailer. Calls after the end keep returning fi->pgno == 0.
 *
 * The page index is checked entry by entry against the frames seen without being kept: the
 * decoder hashes the canonical encoding of the frames it decoded and compares it with the index
 * bytes, so memory stays one page and one read buffer whatever the file's size. (For the entries
 * themselves, parse the tail with ltx_index_locate and ltx_index_parse.)
 */
lv_err ltx_decoder_next(ltx_decoder *d, ltx_frame_info *fi, const uint8_t **page, char *err);
/* After the end: the trailer as read. NULL before. */
const ltx_trailer *ltx_decoder_trailer(const ltx_decoder *d);
/* The database checksum of the pages decoded so far: the XOR of their checksums, bit 63 set. */
uint64_t ltx_decoder_pages_checksum(const ltx_decoder *d);
/* Bytes consumed so far. */
uint64_t ltx_decoder_offset(const ltx_decoder *d);
void ltx_decoder_free(ltx_decoder *d);

/*
 * Reads a whole stream and verifies it; *h and *t (either may be NULL) receive the header and
 * trailer, *pages (may be NULL) the number of pages.
 */
lv_err ltx_verify(ltx_read_fn read, void *ctx, ltx_header *h, ltx_trailer *t, uint32_t *pages,
                  char *err);

/* ---- compaction ---- */

typedef struct ltx_source {
    ltx_read_fn read;
    void *ctx;
    const char *name; /* for error messages; may be NULL */
} ltx_source;

/*
 * Merges n contiguous files (inputs[i+1].min_txid == inputs[i].max_txid + 1, one page size) into
 * one covering min_txid of the first to max_txid of the last. Each page comes from the newest input
 * that has it; pages beyond the last input's commit are dropped. Commit and timestamp come from
 * the last input, pre-apply from the first, post-apply from the last; WAL fields and node ID are
 * zero. If any input has NoChecksum so does the output. Every input is fully verified; on any
 * failure the output written so far must be discarded. Memory: one page per input.
 * *h and *t (may be NULL) receive the output's header and trailer.
 */
lv_err ltx_compact(const ltx_source *inputs, size_t n, ltx_write_fn write, void *ctx, ltx_header *h,
                   ltx_trailer *t, char *err);

/* ---- apply ---- */

/*
 * Applies one LTX stream to the database file open on db_fd (read-write). *db_checksum is the
 * database checksum before (0 for an empty file) and the checksum after on success; it is kept up
 * to date incrementally (old page out, new page in, pages beyond commit out) without rescanning.
 * Unless the file has NoChecksum or is a snapshot, its pre-apply checksum must equal
 * *db_checksum (LV_ECHECKSUM, "pre-apply checksum mismatch: <db> <> <file>") before anything is
 * written; after the pages, the result must equal its post-apply checksum. A snapshot replaces the
 * whole database, whatever its page size, but the target must be empty or a SQLite database: a
 * file that is neither is refused, never overwritten. The file is truncated to commit pages.
 *
 * Pages are written as they are decoded. If the stream turns out to be corrupt part-way, the
 * database is left partly written and the error says so: a caller that needs all-or-nothing
 * verifies the file first (ltxctl apply does). *h (may be NULL) receives the file's header.
 */
lv_err ltx_apply(int db_fd, ltx_read_fn read, void *ctx, uint64_t *db_checksum, ltx_header *h,
                 char *err);

/* ---- database files ---- */

/*
 * Reads a SQLite database file's page size (header offset 16, 1 meaning 65536) and page count
 * (file size / page size). LV_ECORRUPT if it is not a SQLite database, or its size is not a
 * multiple of the page size.
 */
lv_err ltx_db_geometry(int fd, uint32_t *page_size, uint32_t *page_count, char *err);

/*
 * Writes a snapshot (TXID 1..1) of the database on db_fd: every page
 * but the lock page, with its post-apply checksum. `timestamp_ms` stamps the header (the clock is
 * the caller's). *h and *t (may be NULL) receive what was written.
 */
lv_err ltx_encode_db(int db_fd, int64_t timestamp_ms, ltx_write_fn write, void *ctx, ltx_header *h,
                     ltx_trailer *t, char *err);

#endif
