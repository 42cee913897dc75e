/*
 * rule: one fault rule of the chaos engine in memory (private to chaos/): its parser from the
 * text syntax in chaos.h, its canonical text (the rule as it would be written back), and its
 * match test. engine.c keeps the ordered list, the counters and the draws.
 *
 * A parsed rule is immutable apart from the counters, which engine.c guards with its mutex; the
 * match test reads only immutable fields and allocates nothing, so that a scan of many rules that
 * do not match stays cheap (an integer compare per operation name, see chaos_rule_matches).
 *
 * Memory: every string a rule holds comes from lv_malloc and is freed by chaos_rule_free.
 */
#ifndef CHAOS_RULE_H
#define CHAOS_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "chaos.h"

#define CHAOS_MAX_OPS     16 /* op=A,B,...: names in one rule */
#define CHAOS_MAX_HEADERS 8  /* header= keys in one rule */
#define CHAOS_MAX_PCTS    16 /* latency percentile points, p0 and p100 included */
#define CHAOS_MAX_RULELEN 4096

typedef struct chaos_header_match {
    char *name;  /* compared case-insensitively (the request's header callback does that) */
    char *value; /* NULL: the header only has to be present */
} chaos_header_match;

typedef struct chaos_rule {
    /*
     * What a scan reads for every rule it passes, first and together (one cache line), so that a
     * long list of rules for other requests costs little.
     */
    int expired;                         /* seen expired by a decision or a listing (state) */
    int range;                           /* -1 any, 0 no Range header, 1 has one */
    int64_t for_us;                      /* -1: never expires */
    int64_t added_us;                    /* the engine clock when the rule was added (for=) */
    uint64_t op_mask;                    /* 0: any; bit i: known operation i (chaos_op_bit) */
    unsigned method_mask;                /* 0: any method; bits from chaos_method_bit */
    unsigned char bucket_kind, key_kind; /* how to match the glob quickly (rule.c: glob_kind) */
    int nheaders;
    char *bucket_glob;          /* NULL: any */
    char *key_glob;             /* NULL: any (a request without a key does not match) */
    size_t bucket_len, key_len; /* of the globs */

    /* state, guarded by the engine's mutex */
    uint64_t matched, fired;

    uint64_t id; /* set by the engine when the rule is added */
    chaos_action action;

    /* match (the rest) */
    int nops;
    const char *op_name[CHAOS_MAX_OPS]; /* static strings from the table of known operations */
    chaos_header_match headers[CHAOS_MAX_HEADERS];

    /* modifiers and limits */
    int64_t delay_us, jitter_us; /* 0 when not given */
    int has_p;
    double p;
    uint64_t nth;   /* 0 when not given; sets after = nth - 1 and times = 1 */
    uint64_t times; /* 0: unlimited */
    uint64_t after;

    /* action arguments */
    int64_t latency_us;             /* latency DUR; -1 when drawn from percentiles */
    int npct;                       /* percentile points, sorted by q, p0 and p100 filled in */
    double pct_q[CHAOS_MAX_PCTS];   /* 0..100 */
    int64_t pct_us[CHAOS_MAX_PCTS]; /* the duration at pct_q[i] */
    unsigned char pct_given[CHAOS_MAX_PCTS]; /* written by the user (not a default), for canon */
    int status;                              /* error */
    char code[64];                           /* error */
    char message[256];                       /* error */
    uint64_t bytes;                          /* truncate: body bytes; bandwidth: bytes per second */
    int64_t duration_us;                     /* stall (-1: forever), down */
    int after_apply;                         /* crash */
    int crash_given;                         /* crash before|after was written */
    int code_given, message_given;           /* error CODE / MESSAGE were written */

    char *canon; /* the canonical text, made by chaos_rule_parse */
} chaos_rule;

/*
 * Parses text[0..len) (one rule, no newline) into a new rule that the caller frees with
 * chaos_rule_free. On error *out is NULL and err holds `bad rule "TEXT": what is wrong`, naming
 * the bad word. LV_EINVAL for bad text, LV_ENOMEM. A blank line or a comment alone is LV_EINVAL
 * ("empty rule") unless allow_empty, in which case LV_OK with *out NULL.
 */
lv_err chaos_rule_parse(const char *text, size_t len, int allow_empty, chaos_rule **out, char *err);
void chaos_rule_free(chaos_rule *r);

/* Appends the canonical text of r to out (parsing it again gives the same rule and text). */
void chaos_rule_canon(const chaos_rule *r, lv_buf *out);

/*
 * The bit of a known S3 operation name (exact spelling, as fakes3 logs it) for op_mask, 0 for a
 * name outside the table (it then matches only rules without op=). A hash and a short scan of
 * integers, no allocation; thread-safe.
 */
uint64_t chaos_op_bit(const char *op);
/* The bit of an HTTP method for method_mask, 0 for a method we do not know. */
unsigned chaos_method_bit(const char *m);

/* What a scan of the rules works out about a request once, the first time a rule needs it. */
typedef struct chaos_req_facts {
    uint64_t op_bit;     /* chaos_op_bit(req->op), set before the scan */
    unsigned method_bit; /* chaos_method_bit(req->method); -1u until needed */
    size_t bucket_len;   /* strlen(req->bucket); SIZE_MAX until needed */
    size_t key_len;      /* strlen(req->key); SIZE_MAX until needed */
} chaos_req_facts;

/* Facts about req with op_bit set and the rest left for chaos_rule_matches to fill in. */
void chaos_req_facts_init(chaos_req_facts *f, const chaos_request *req);

/*
 * Whether the request satisfies r's match (not its limits); f is the request's facts (filled in
 * as needed). No allocation, no lock.
 */
int chaos_rule_matches(const chaos_rule *r, const chaos_request *req, chaos_req_facts *f);

/* Appends a duration the way the canonical text writes it ("40ms", "1500ms", "2m", "250us"). */
void chaos_canon_duration(lv_buf *b, int64_t us);
/* Writes a duration for people into out[n], with a decimal ("41.2ms", "1.5s", "250us"). */
void chaos_human_duration(char *out, size_t n, int64_t us);
/* Appends a byte count or rate the way the canonical text writes it ("64k", "1M", "1000"). */
void chaos_canon_size(lv_buf *b, uint64_t v);

#endif
