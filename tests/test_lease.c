/*
 * test_lease: the single-writer lease (lib/lease.c), against a real fakes3 (one per test case,
 * auth on) and against a file:// replica in a fresh directory, with an injected clock.
 *
 *   - the protocol, on both stores: acquire on an empty replica (generation 1); a second
 *     acquirer gets LV_ECONFLICT naming the holder, its expiry and generation; renew extends the
 *     expiry (proved by an acquirer refused past the old expiry); after the expiry a takeover
 *     succeeds with generation + 1, and the old holder's renew and release then fail with
 *     LV_ECONFLICT naming the new holder, leaving its object alone; release deletes; acquire
 *     after release starts again at generation 1; lease_free (a crash) leaves the object until
 *     it expires;
 *   - races: 8 threads acquiring at once, on an empty replica and over an expired lease, several
 *     rounds: exactly one wins each round, and every loser's message names the winner;
 *   - the object is Litestream's: parsed with jansson, exactly generation / expires_at / owner in
 *     Go's field order, expires_at RFC 3339 UTC, Content-Type application/json (read with a raw
 *     signed HEAD through libcurl); the key is <prefix>/lock.json, and lock.json at the bucket's
 *     root for an empty prefix; an object written as Go would (a zone offset, nanoseconds) is
 *     read right, and a garbage object is LV_ECORRUPT;
 *   - lost responses (fakes3 `lost-response` on the lock's PutObject): acquire and renew each
 *     succeed exactly once, the object is ours, and fakes3's stats show the 412s of the retries;
 *   - the file store leaves no temp files behind.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "lease.h"
#include "replica.h"
#include "s3.h"
#include "testutil.h"
#include "timeexpr.h"

#define T0 1767323045678LL /* 2026-01-02T03:04:05.678Z */

typedef struct tclock {
    _Atomic int64_t now;
} tclock;

static int64_t tclock_now(void *ctx)
{
    return atomic_load(&((tclock *)ctx)->now);
}

/* One store under test: a fakes3 process or a temporary directory. */
typedef struct store {
    int s3;
    tu_fakes3 fk;
    char dir[1024]; /* file: the parent of the replica directories */
} store;

static void store_start(store *st, int s3, const char *const *fakes3_args)
{
    memset(st, 0, sizeof *st);
    st->s3 = s3;
    if (s3) {
        tu_fakes3_start(&st->fk, fakes3_args);
    } else {
        char *p = tu_tmp_path("x");
        char *slash = strrchr(p, '/');
        *slash = 0;
        snprintf(st->dir, sizeof st->dir, "%s", p);
        *slash = '/';
        free(p);
    }
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void store_stop(store *st)
{
    if (st->s3)
        tu_fakes3_stop(&st->fk);
    else
        rm_rf(st->dir);
}

/* A replica at prefix (s3: s3://bucket/prefix; file: <dir>/prefix). */
static replica *open_replica(store *st, const char *prefix)
{
    char url[8192];
    if (st->s3)
        snprintf(url, sizeof url, "s3://%s%s%s?endpoint=%s", TU_FAKES3_BUCKET, *prefix ? "/" : "",
                 prefix, st->fk.endpoint);
    else
        snprintf(url, sizeof url, "file://%s/%s", st->dir, prefix);
    s3_config c;
    s3_config_init(&c);
    c.access_key = TU_FAKES3_KEY;
    c.secret_key = TU_FAKES3_SECRET;
    c.region = "us-east-1";
    c.retry_total_ms = 15000;
    c.retry_base_ms = 20;
    replica_options o = {.s3 = &c};
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_open(url, &o, &r, err) == LV_OK, "open %s: %s", url, err);
    return r;
}

/* The lock object's bytes (malloc'd, NUL-terminated), or NULL when there is none. */
static char *read_lock(store *st, replica *r, const char *prefix)
{
    char key[8192];
    if (st->s3) {
        snprintf(key, sizeof key, "%s%slock.json", prefix, *prefix ? "/" : "");
        lv_buf out;
        lv_buf_init(&out);
        char err[LV_ERRLEN];
        lv_err rc = s3_get(replica_s3(r), TU_FAKES3_BUCKET, key, 0, 0, &out, NULL, err);
        if (rc == LV_ENOTFOUND) {
            lv_buf_free(&out);
            return NULL;
        }
        ck_assert_msg(rc == LV_OK, "GET %s: %s", key, err);
        char *s = malloc(out.len + 1);
        memcpy(s, out.data ? out.data : "", out.len);
        s[out.len] = 0;
        lv_buf_free(&out);
        return s;
    }
    snprintf(key, sizeof key, "%s/%s/lock.json", st->dir, prefix);
    if (access(key, F_OK) != 0)
        return NULL;
    size_t n;
    return (char *)tu_read_file(key, &n);
}

static void write_lock(store *st, replica *r, const char *prefix, const char *body)
{
    char key[8192];
    if (st->s3) {
        snprintf(key, sizeof key, "%s%slock.json", prefix, *prefix ? "/" : "");
        char err[LV_ERRLEN];
        ck_assert_msg(s3_put(replica_s3(r), TU_FAKES3_BUCKET, key, body, strlen(body), NULL, NULL,
                             err) == LV_OK,
                      "%s", err);
        return;
    }
    snprintf(key, sizeof key, "%s/%s", st->dir, prefix);
    mkdir(key, 0755);
    snprintf(key, sizeof key, "%s/%s/lock.json", st->dir, prefix);
    tu_write_file(key, body, strlen(body));
}

/*
 * Checks the object is exactly Litestream's lease: {"generation":G,"expires_at":"...Z",
 * "owner":"O"} in that order and nothing else, expires_at at expires_ms (to the millisecond).
 */
static void check_doc(const char *body, long long gen, int64_t expires_ms, const char *owner)
{
    ck_assert_msg(body != NULL, "no lock object");
    char head[64];
    snprintf(head, sizeof head, "{\"generation\":%lld,\"expires_at\":\"", gen);
    ck_assert_msg(strncmp(body, head, strlen(head)) == 0, "field order: %s", body);
    json_error_t je;
    json_t *doc = json_loads(body, 0, &je);
    ck_assert_msg(doc != NULL, "not JSON: %s: %s", je.text, body);
    ck_assert_int_eq(json_object_size(doc), 3);
    ck_assert_msg(json_is_integer(json_object_get(doc, "generation")), "%s", body);
    ck_assert_int_eq(json_integer_value(json_object_get(doc, "generation")), gen);
    ck_assert_str_eq(tu_jstr(doc, "owner"), owner);
    const char *at = tu_jstr(doc, "expires_at");
    /* RFC 3339 UTC: "YYYY-MM-DDTHH:MM:SS[.fraction]Z", no trailing zeros in the fraction */
    size_t n = strlen(at);
    ck_assert_msg(n >= 20 && at[10] == 'T' && at[n - 1] == 'Z', "expires_at %s", at);
    if (n > 20) {
        ck_assert_msg(at[19] == '.' && n <= 31 && at[n - 2] != '0', "expires_at %s", at);
    }
    int64_t ms = 0;
    char err[LV_ERRLEN];
    ck_assert_msg(lv_time_parse(at, 0, &ms, err) == LV_OK, "%s", err);
    ck_assert_int_eq(ms, expires_ms);
    char want[LV_TIME_RFC3339_LEN];
    lv_time_format(expires_ms, 1, want); /* "...SS.mmmZ": the fraction starts with the ms */
    want[strlen(want) - 1] = 0;
    if (expires_ms % 1000)
        ck_assert_msg(strncmp(at, want, strlen(want)) == 0, "expires_at %s, want %s...", at, want);
    json_decref(doc);
}

static void assert_contains(const char *s, const char *part)
{
    ck_assert_msg(strstr(s, part) != NULL, "\"%s\" does not contain \"%s\"", s, part);
}

/* ---- the protocol, on either store --------------------------------------------------------- */

static void protocol(int s3)
{
    store st;
    store_start(&st, s3, NULL);
    const char *prefix = "db1";
    replica *r = open_replica(&st, prefix);
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    char err[LV_ERRLEN] = "";
    lease *a = NULL, *b = NULL, *c = NULL, *d = NULL;

    /* acquire on empty */
    ck_assert_ptr_null(read_lock(&st, r, prefix));
    ck_assert_msg(lease_acquire(r, 30000, "hostA:1", &lc, &a, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(a), 1);
    ck_assert_int_eq(lease_expires_ms(a), T0 + 30000);
    ck_assert_str_eq(lease_holder(a), "hostA:1");
    ck_assert_int_eq(lease_lost(a), 0);
    char *body = read_lock(&st, r, prefix);
    check_doc(body, 1, T0 + 30000, "hostA:1");
    free(body);

    /* a second acquirer is refused, the holder named */
    err[0] = 0;
    ck_assert_int_eq(lease_acquire(r, 30000, "hostB:2", &lc, &b, err), LV_ECONFLICT);
    ck_assert_ptr_null(b);
    assert_contains(err, "held by hostA:1 until 2026-01-02T03:04:35.678Z (generation 1)");
    assert_contains(err, "lock.json");

    /* renew extends the expiry */
    atomic_store(&clk.now, T0 + 10000);
    ck_assert_msg(lease_renew(a, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_expires_ms(a), T0 + 40000);
    ck_assert_int_eq(lease_generation(a), 1);
    body = read_lock(&st, r, prefix);
    check_doc(body, 1, T0 + 40000, "hostA:1");
    free(body);
    /* past the old expiry, before the new one: still refused */
    atomic_store(&clk.now, T0 + 35000);
    ck_assert_int_eq(lease_acquire(r, 30000, "hostB:2", &lc, &b, err), LV_ECONFLICT);
    assert_contains(err, "held by hostA:1 until 2026-01-02T03:04:45.678Z (generation 1)");
    /* at the expiry itself the lease is over: takeover with generation + 1 */
    atomic_store(&clk.now, T0 + 40000);
    ck_assert_msg(lease_acquire(r, 20000, "hostB:2", &lc, &b, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(b), 2);
    ck_assert_int_eq(lease_expires_ms(b), T0 + 60000);
    body = read_lock(&st, r, prefix);
    check_doc(body, 2, T0 + 60000, "hostB:2");
    free(body);

    /* the old holder's renew fails, naming the new holder, and keeps failing */
    ck_assert_int_eq(lease_renew(a, err), LV_ECONFLICT);
    assert_contains(err, "hostB:2");
    assert_contains(err, "generation 2");
    ck_assert_int_eq(lease_lost(a), 1);
    ck_assert_int_eq(lease_renew(a, err), LV_ECONFLICT);
    /* and its release leaves the new holder's object alone */
    ck_assert_int_eq(lease_release(a, err), LV_ECONFLICT);
    a = NULL;
    body = read_lock(&st, r, prefix);
    check_doc(body, 2, T0 + 60000, "hostB:2");
    free(body);

    /* the new holder renews; release deletes; acquire starts again at generation 1 */
    ck_assert_msg(lease_renew(b, err) == LV_OK, "%s", err);
    ck_assert_msg(lease_release(b, err) == LV_OK, "%s", err);
    ck_assert_ptr_null(read_lock(&st, r, prefix));
    ck_assert_msg(lease_acquire(r, 30000, "hostC:3", &lc, &c, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(c), 1);

    /* a crash (lease_free): the object stays until it expires, then is taken over */
    lease_free(c);
    body = read_lock(&st, r, prefix);
    check_doc(body, 1, T0 + 70000, "hostC:3");
    free(body);
    atomic_store(&clk.now, T0 + 69999);
    ck_assert_int_eq(lease_acquire(r, 30000, "hostD:4", &lc, &d, err), LV_ECONFLICT);
    assert_contains(err, "held by hostC:3");
    atomic_store(&clk.now, T0 + 70000);
    ck_assert_msg(lease_acquire(r, 0, NULL, &lc, &d, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(d), 2);
    ck_assert_int_eq(lease_expires_ms(d), T0 + 70000 + LEASE_DEFAULT_TTL_MS);
    /* the default owner is host:pid */
    char host[256], want[300];
    ck_assert_int_eq(gethostname(host, sizeof host), 0);
    snprintf(want, sizeof want, "%s:%ld", host, (long)getpid());
    ck_assert_str_eq(lease_holder(d), want);
    body = read_lock(&st, r, prefix);
    check_doc(body, 2, T0 + 70000 + LEASE_DEFAULT_TTL_MS, want);
    free(body);
    ck_assert_msg(lease_release(d, err) == LV_OK, "%s", err);
    ck_assert_ptr_null(read_lock(&st, r, prefix));

    if (!s3) {
        /* only lock.json.flock is left in the replica directory: no temp files */
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", st.dir, prefix);
        DIR *dir = opendir(path);
        ck_assert_ptr_nonnull(dir);
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            ck_assert_msg(strcmp(e->d_name, "lock.json.flock") == 0, "left behind: %s", e->d_name);
        }
        closedir(dir);
    }
    replica_close(r);
    store_stop(&st);
}

START_TEST(test_protocol_s3)
{
    protocol(1);
}
END_TEST

START_TEST(test_protocol_file)
{
    protocol(0);
}
END_TEST

/* ---- races --------------------------------------------------------------------------------- */

#define RACERS 8

typedef struct racer {
    replica *r;
    lease_clock *lc;
    pthread_barrier_t *bar;
    int id;
    lv_err rc;
    lease *l;
    char err[LV_ERRLEN];
} racer;

static void *race_main(void *arg)
{
    racer *x = arg;
    char owner[32];
    snprintf(owner, sizeof owner, "racer:%d", x->id);
    x->l = NULL;
    x->err[0] = 0;
    pthread_barrier_wait(x->bar);
    x->rc = lease_acquire(x->r, 30000, owner, x->lc, &x->l, x->err);
    return NULL;
}

static void races(int s3)
{
    store st;
    store_start(&st, s3, NULL);
    const char *prefix = "race";
    replica *r = open_replica(&st, prefix);
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, RACERS);
    racer x[RACERS];
    long long gen = 0;
    for (int round = 0; round < 6; round++) {
        /* even rounds: on an empty replica (the last winner released); odd rounds: over an
         * expired lease (the last winner crashed) */
        for (int i = 0; i < RACERS; i++) {
            x[i] = (racer){.r = r, .lc = &lc, .bar = &bar, .id = round * 100 + i};
        }
        pthread_t th[RACERS];
        for (int i = 0; i < RACERS; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, race_main, &x[i]), 0);
        for (int i = 0; i < RACERS; i++)
            pthread_join(th[i], NULL);
        int winner = -1, wins = 0;
        for (int i = 0; i < RACERS; i++) {
            if (x[i].rc == LV_OK) {
                wins++;
                winner = i;
            } else {
                ck_assert_msg(x[i].rc == LV_ECONFLICT, "racer %d: %s", i, x[i].err);
                ck_assert_ptr_null(x[i].l);
            }
        }
        ck_assert_msg(wins == 1, "round %d: %d winners", round, wins);
        gen = round % 2 == 0 ? 1 : gen + 1;
        ck_assert_int_eq(lease_generation(x[winner].l), gen);
        char owner[64], held[96];
        snprintf(owner, sizeof owner, "racer:%d", x[winner].id);
        snprintf(held, sizeof held, "held by %s until", owner);
        for (int i = 0; i < RACERS; i++)
            if (i != winner)
                assert_contains(x[i].err, held);
        char *body = read_lock(&st, r, prefix);
        check_doc(body, gen, atomic_load(&clk.now) + 30000, owner);
        free(body);
        if (round % 2 == 0) {
            lease_free(x[winner].l); /* crash: the next round takes over once it expired */
            atomic_fetch_add(&clk.now, 30000);
        } else {
            char err[LV_ERRLEN];
            ck_assert_msg(lease_release(x[winner].l, err) == LV_OK, "%s", err);
            atomic_fetch_add(&clk.now, 1000);
            gen = 0;
        }
    }
    pthread_barrier_destroy(&bar);
    replica_close(r);
    store_stop(&st);
}

START_TEST(test_race_s3)
{
    races(1);
}
END_TEST

START_TEST(test_race_file)
{
    races(0);
}
END_TEST

/* ---- the object as other tools write it ---------------------------------------------------- */

static void foreign_objects(int s3)
{
    store st;
    store_start(&st, s3, NULL);
    const char *prefix = "foreign";
    replica *r = open_replica(&st, prefix);
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    char err[LV_ERRLEN] = "";
    lease *l = NULL;

    /* as Go writes it from a local time: an offset, nanoseconds; 05:04:35.5+02:00 is
     * 03:04:35.5Z, after now (03:04:05.678Z) */
    write_lock(&st, r, prefix,
               "{\"generation\":41,\"expires_at\":\"2026-01-02T05:04:35.500000009+02:00\","
               "\"owner\":\"go\\u003chost\\u003e:77\"}");
    ck_assert_int_eq(lease_acquire(r, 30000, "me:1", &lc, &l, err), LV_ECONFLICT);
    assert_contains(err, "held by go<host>:77 until 2026-01-02T03:04:35.500Z (generation 41)");
    /* expired: taken over with generation 42 */
    atomic_store(&clk.now, T0 + 60000);
    ck_assert_msg(lease_acquire(r, 30000, "me:1", &lc, &l, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(l), 42);
    ck_assert_msg(lease_release(l, err) == LV_OK, "%s", err);

    /* no owner (Go's omitempty), white space, an unknown member */
    write_lock(&st, r, prefix,
               "{ \"generation\": 3, \"x\": [1, {\"y\": null}], \"expires_at\": "
               "\"2026-01-02T03:05:05Z\" }\n");
    atomic_store(&clk.now, T0);
    ck_assert_int_eq(lease_acquire(r, 30000, "me:1", &lc, &l, err), LV_ECONFLICT);
    assert_contains(err, "held by (no owner) until 2026-01-02T03:05:05.000Z (generation 3)");

    /* not a lease: refused, and left alone */
    const char *bad[] = {"garbage", "{\"generation\":1}",
                         "{\"expires_at\":\"2026-01-02T03:05:05Z\"}",
                         "{\"generation\":\"1\",\"expires_at\":\"2026-01-02T03:05:05Z\"}",
                         "{\"generation\":1,\"expires_at\":\"now\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_lock(&st, r, prefix, bad[i]);
        atomic_store(&clk.now, T0 + 3600 * 1000);
        ck_assert_msg(lease_acquire(r, 30000, "me:1", &lc, &l, err) == LV_ECORRUPT, "%s: %s",
                      bad[i], err);
        assert_contains(err, "not a lease");
        char *body = read_lock(&st, r, prefix);
        ck_assert_str_eq(body, bad[i]);
        free(body);
    }
    replica_close(r);
    store_stop(&st);
}

START_TEST(test_foreign_s3)
{
    foreign_objects(1);
}
END_TEST

START_TEST(test_foreign_file)
{
    foreign_objects(0);
}
END_TEST

/* ---- S3 only: keys, Content-Type, lost responses ------------------------------------------- */

static size_t header_cb(char *buf, size_t size, size_t n, void *ctx)
{
    char *ct = ctx;
    size_t len = size * n;
    if (len > 13 && strncasecmp(buf, "Content-Type:", 13) == 0) {
        size_t k = len - 13;
        const char *v = buf + 13;
        while (k && (*v == ' '))
            v++, k--;
        while (k && (v[k - 1] == '\r' || v[k - 1] == '\n'))
            k--;
        if (k > 127)
            k = 127;
        memcpy(ct, v, k);
        ct[k] = 0;
    }
    return len;
}

/* A raw signed request through libcurl (no lib/ code): the status and Content-Type. */
static long raw_request(const char *endpoint, const char *method, const char *path, char ct[128],
                        char *body_out, size_t body_cap)
{
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    char url[4096];
    snprintf(url, sizeof url, "%s%s", endpoint, path);
    FILE *sink = body_out ? fmemopen(body_out, body_cap, "w") : fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(sink);
    ct[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(h, CURLOPT_USERPWD, TU_FAKES3_KEY ":" TU_FAKES3_SECRET);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, ct);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    CURLcode cc = curl_easy_perform(h);
    ck_assert_msg(cc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(cc));
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    fclose(sink);
    return status;
}

static void expect_count(store *st, const char *op, const char *status, long long want);

START_TEST(test_s3_keys_and_content_type)
{
    store st;
    store_start(&st, 1, NULL);
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    char err[LV_ERRLEN] = "", ct[128];
    const char *prefixes[] = {"", "a/b/c"};
    const char *paths[] = {"/" TU_FAKES3_BUCKET "/lock.json",
                           "/" TU_FAKES3_BUCKET "/a/b/c/lock.json"};
    for (int i = 0; i < 2; i++) {
        replica *r = open_replica(&st, prefixes[i]);
        lease *l = NULL;
        ck_assert_msg(lease_acquire(r, 30000, "kt:1", &lc, &l, err) == LV_OK, "%s", err);
        /* round trips: acquire on empty is one GET (404) and one PUT */
        expect_count(&st, "GetObject", "404", i + 1);
        expect_count(&st, "PutObject", "200", i + 1);
        ck_assert_int_eq(raw_request(st.fk.endpoint, "HEAD", paths[i], ct, NULL, 0), 200);
        ck_assert_str_eq(ct, "application/json");
        char *body = read_lock(&st, r, prefixes[i]);
        check_doc(body, 1, T0 + 30000, "kt:1");
        free(body);
        ck_assert_msg(lease_release(l, err) == LV_OK, "%s", err);
        /* release is one DELETE with If-Match, and no PUT */
        expect_count(&st, "DeleteObject", "204", i + 1);
        expect_count(&st, "PutObject", "200", i + 1);
        ck_assert_int_eq(raw_request(st.fk.endpoint, "HEAD", paths[i], ct, NULL, 0), 404);
        replica_close(r);
    }
    store_stop(&st);
}
END_TEST

/* fakes3's count of answers to operation op with status `status`. */
static long long op_count(store *st, const char *op, const char *status)
{
    static char body[65536];
    char ct[128];
    memset(body, 0, sizeof body);
    ck_assert_int_eq(
        raw_request(st->fk.endpoint, "GET", "/_fakes3/stats", ct, body, sizeof body - 1), 200);
    json_error_t je;
    json_t *doc = json_loads(body, 0, &je);
    ck_assert_msg(doc != NULL, "stats: %s: %s", je.text, body);
    json_t *v = json_object_get(json_object_get(json_object_get(doc, "operations"), op), status);
    long long n = v ? json_integer_value(v) : 0;
    json_decref(doc);
    return n;
}

/* fakes3 counts an answer after sending it: wait (up to 10 s) for the count to reach want. */
static void expect_count(store *st, const char *op, const char *status, long long want)
{
    long long n = 0;
    for (int i = 0; i < 200 && (n = op_count(st, op, status)) < want; i++)
        usleep(50 * 1000);
    ck_assert_msg(n == want, "%s %s: %lld answers, want %lld", op, status, n, want);
}

START_TEST(test_s3_lost_response)
{
    /* the acquire's PUT (If-None-Match) is applied and its answer lost, its retry gets 412;
     * then the same for the first renewal (If-Match) */
    const char *args[] = {
        "--fault", "lost-response op=PutObject key=*lock.json header=If-None-Match nth=1",
        "--fault", "lost-response op=PutObject key=*lock.json header=If-Match nth=1", NULL};
    store st;
    store_start(&st, 1, args);
    replica *r = open_replica(&st, "lost");
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    char err[LV_ERRLEN] = "";
    lease *a = NULL, *b = NULL;
    ck_assert_msg(lease_acquire(r, 30000, "lost:1", &lc, &a, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_generation(a), 1);
    char *body = read_lock(&st, r, "lost");
    check_doc(body, 1, T0 + 30000, "lost:1");
    free(body);
    expect_count(&st, "PutObject", "412", 1); /* the fault fired: the retry was refused */
    /* acquired exactly once: another acquirer is refused */
    ck_assert_int_eq(lease_acquire(r, 30000, "other:2", &lc, &b, err), LV_ECONFLICT);
    assert_contains(err, "held by lost:1");

    atomic_store(&clk.now, T0 + 5000);
    ck_assert_msg(lease_renew(a, err) == LV_OK, "%s", err);
    ck_assert_int_eq(lease_expires_ms(a), T0 + 35000);
    expect_count(&st, "PutObject", "412", 2);
    body = read_lock(&st, r, "lost");
    check_doc(body, 1, T0 + 35000, "lost:1");
    free(body);
    /* the ETag we hold is the stored one: renew and release go on working */
    ck_assert_msg(lease_renew(a, err) == LV_OK, "%s", err);
    ck_assert_msg(lease_release(a, err) == LV_OK, "%s", err);
    ck_assert_ptr_null(read_lock(&st, r, "lost"));
    replica_close(r);
    store_stop(&st);
}
END_TEST

START_TEST(test_bad_args)
{
    store st;
    store_start(&st, 0, NULL);
    replica *r = open_replica(&st, "args");
    lease *l = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(lease_acquire(r, -1, "x:1", NULL, &l, err), LV_EINVAL);
    ck_assert_ptr_null(l);
    /* the real clock: a fresh lease expires about a TTL from now */
    ck_assert_msg(lease_acquire(r, 5000, "x:1", NULL, &l, err) == LV_OK, "%s", err);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ck_assert_int_le(lease_expires_ms(l), now + 5000);
    ck_assert_int_gt(lease_expires_ms(l), now + 5000 - 60000);
    ck_assert_msg(lease_release(l, err) == LV_OK, "%s", err);
    replica_close(r);
    store_stop(&st);
}
END_TEST

START_TEST(test_allocation_failures)
{
    /* every allocation of acquire, renew and release failed in turn (file store): each call
     * fails cleanly with LV_ENOMEM or succeeds; ASan finds any leak */
    store st;
    store_start(&st, 0, NULL);
    replica *r = open_replica(&st, "oom");
    tclock clk = {T0};
    lease_clock lc = {tclock_now, &clk};
    int done = 0, failures = 0;
    for (long nth = 0; nth < 500 && !done; nth++) {
        char err[LV_ERRLEN] = "";
        /* whatever an earlier round left behind has expired */
        atomic_fetch_add(&clk.now, 3600 * 1000);
        lease *l = NULL;
        lv_alloc_fail_after(nth);
        lv_err a = lease_acquire(r, 30000, "oom:1", &lc, &l, err);
        lv_err b = LV_ENOMEM, c = LV_ENOMEM;
        if (a == LV_OK) {
            b = lease_renew(l, err);
            c = lease_release(l, err);
        }
        lv_alloc_fail_after(-1);
        ck_assert_msg(a == LV_OK || a == LV_ENOMEM, "nth %ld: acquire: %s", nth, err);
        ck_assert_msg(b == LV_OK || b == LV_ENOMEM, "nth %ld: renew: %s", nth, err);
        ck_assert_msg(c == LV_OK || c == LV_ENOMEM, "nth %ld: release: %s", nth, err);
        done = a == LV_OK && b == LV_OK && c == LV_OK;
        failures += (a == LV_ENOMEM) + (b == LV_ENOMEM) + (c == LV_ENOMEM);
        if (nth == 0)
            ck_assert_int_eq(a, LV_ENOMEM);
    }
    ck_assert_msg(done, "never got through without a failure");
    ck_assert_int_ge(failures, 10);
    replica_close(r);
    store_stop(&st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("protocol");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_protocol_s3);
    tcase_add_test(tc, test_protocol_file);
    tcase_add_test(tc, test_foreign_s3);
    tcase_add_test(tc, test_foreign_file);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("race");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_race_s3);
    tcase_add_test(tc, test_race_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("s3");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_s3_keys_and_content_type);
    tcase_add_test(tc, test_s3_lost_response);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
