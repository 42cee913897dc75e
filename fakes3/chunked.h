/*
 * chunked: decodes an aws-chunked request body (Content-Encoding: aws-chunked), the framing of
 * streaming uploads, and verifies its chunk signatures with lib/sigv4:
 *
 *   <hex size>;chunk-signature=<64 hex>\r\n <size bytes> \r\n      (signed, one per chunk)
 *   <hex size>\r\n <size bytes> \r\n                              (unsigned trailer variant)
 *   ... a final chunk of size 0, then either \r\n, or trailer lines
 *   (x-amz-checksum-crc32:<base64>\r\n ... [x-amz-trailer-signature:<sig>\r\n]) and \r\n
 *
 * Chunk i's signature is HMAC(signing key, "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n"
 * signature i-1 "\n" hex(SHA-256("")) "\n" hex(SHA-256(data i))), the request's own signature
 * being signature 0 (sigv4_chunk_signature). The trailer lines are kept (fakes3 stores checksum
 * trailers like the headers); the x-amz-trailer-signature line is not verified yet.
 *
 * The body arrives in pieces of any size, split anywhere; decoded data goes to a sink callback as
 * it is found. Lines are bounded (4 KiB), so no input makes the decoder hold more than that.
 *
 * Threads: a decoder belongs to one request.
 */
#ifndef FS3_CHUNKED_H
#define FS3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "s3err.h"
#include "sigv4.h"
#include "store.h"

typedef struct fs3_chunked fs3_chunked;

/* Receives decoded data; a code other than FS3_OK stops decoding with that code. */
typedef fs3_code (*fs3_chunk_sink)(void *ctx, const char *data, size_t n);

typedef struct fs3_chunked_params {
    int signed_chunks; /* every chunk carries a chunk-signature to verify */
    int trailer;       /* trailer lines follow the final chunk */
    /* for signed chunks: what the request's signature was computed with */
    const uint8_t *signing_key; /* SIGV4_KEY_LEN bytes */
    const char *amz_date;
    const char *scope;
    const char *seed_signature;
} fs3_chunked_params;

/* A new decoder (copies what it needs from p); NULL when out of memory. */
fs3_chunked *fs3_chunked_new(const fs3_chunked_params *p);
void fs3_chunked_free(fs3_chunked *d);

/*
 * Decodes the next n bytes of the body. Errors: FS3_INVALID_REQUEST (bad framing),
 * FS3_SIGNATURE_DOES_NOT_MATCH (a chunk signature), or what the sink returned; detail in err.
 * After an error the decoder accepts nothing more.
 */
fs3_code fs3_chunked_feed(fs3_chunked *d, const char *data, size_t n, fs3_chunk_sink sink,
                          void *ctx, char *err);

/* FS3_OK if the body ended exactly after the final chunk (and trailer); else IncompleteBody. */
fs3_code fs3_chunked_finish(const fs3_chunked *d, char *err);

/* Decoded bytes so far. */
uint64_t fs3_chunked_decoded(const fs3_chunked *d);

/* The trailer lines (names lower-case), valid until fs3_chunked_free. */
const fs3_kv *fs3_chunked_trailers(const fs3_chunked *d, size_t *n);

#endif
