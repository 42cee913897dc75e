/*
 * test_fakes3_multipart: the pieces of fakes3's batch delete, copy and multipart upload that need
 * no socket: the request bodies (xml.c: Delete and CompleteMultipartUpload, well-formed, malformed,
 * oversized, entity bombs), the checksums (checksum.c: the CRC check values of the catalogue, SHA
 * digests, base64 forms), the multipart ETag, and the store's uploads (store.c), in memory and on
 * disk: parts replaced, listed and paged, completion checks (order, ETags, sizes), the assembled
 * object and its ETag, persistence across a reopen, abort, copies, conditional completions and the
 * 409 after a delete, and that nothing is left behind in the data directory.
 *
 * Like test_fakes3_units, the fakes3 sources under test are compiled into this file (and expat is
 * linked for xml.c). Single-threaded.
 */
#include "../fakes3/checksum.c"
#include "../fakes3/httpsem.c"
#include "../fakes3/s3err.c"
#include "../fakes3/store.c"
#include "../fakes3/xml.c"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <openssl/md5.h>

#include "testutil.h"

/* ---- request bodies -------------------------------------------------------------------------- */

START_TEST(test_delete_body)
{
    char err[LV_ERRLEN];
    fs3_delete_list d;
    const char *ok = "<?xml version=\"1.0\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><Quiet> true </Quiet><Object><Key>a&amp;b&lt;c</Key></Object>"
                     "<Object><Key> spaced </Key><ETag>\"abc\"</ETag></Object>"
                     "<Object><Key>&#x263A;</Key><VersionId>v</VersionId></Object></Delete>";
    ck_assert_int_eq(fs3_xml_parse_delete(ok, strlen(ok), &d, err), FS3_OK);
    ck_assert_int_eq(d.quiet, 1);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_str_eq(d.items[0].key, "a&b<c");
    ck_assert_ptr_null(d.items[0].etag);
    ck_assert_str_eq(d.items[1].key, " spaced "); /* keys are not trimmed */
    ck_assert_str_eq(d.items[1].etag, "abc");
    ck_assert_str_eq(d.items[2].key, "\xe2\x98\xba");
    fs3_delete_list_free(&d);

    static const char *const bad[] = {
        "",
        "<Delete>",
        "<Delete><Object><Key>a</Key></Object>",
        "<Delete></Delete>",
        "<Delete><Quiet>true</Quiet></Delete>",
        "<Other><Object><Key>a</Key></Object></Other>",
        "<Delete><Object><VersionId>a</VersionId></Object></Delete>",
        "<Delete><Object><Key></Key></Object></Delete>",
        "<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>",
        "<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
        "<Delete><Object><Key>a&bogus;</Key></Object></Delete>",
        /* no DOCTYPE at all: neither entity bombs nor external entities can get in */
        ("<!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
         "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"
         "\">]><Delete><Object><Key>&d;&d;&d;&d;&d;&d;&d;&d;</Key></Object></Delete>"),
        ("<!DOCTYPE d SYSTEM "
         "\"file:///etc/passwd\"><Delete><Object><Key>&x;</Key></Object></Delete>"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&d, 0x55, sizeof d);
        ck_assert_msg(fs3_xml_parse_delete(bad[i], strlen(bad[i]), &d, err) == FS3_MALFORMED_XML,
                      "accepted: %s", bad[i]);
        ck_assert_ptr_null(d.items);
        ck_assert_uint_eq(d.n, 0);
    }

    /* 1000 objects are fine, 1001 are not */
    for (int n = 1000; n <= 1001; n++) {
        lv_buf b;
        lv_buf_init(&b);
        lv_buf_puts(&b, "<Delete>");
        for (int i = 0; i < n; i++)
            lv_buf_printf(&b, "<Object><Key>key-%d</Key></Object>", i);
        lv_buf_puts(&b, "</Delete>");
        fs3_code rc = fs3_xml_parse_delete(b.data, b.len, &d, err);
        ck_assert_int_eq(rc, n == 1000 ? FS3_OK : FS3_MALFORMED_XML);
        if (rc == FS3_OK) {
            ck_assert_uint_eq(d.n, 1000);
            ck_assert_str_eq(d.items[999].key, "key-999");
            fs3_delete_list_free(&d);
        }
        lv_buf_free(&b);
    }
    /* nesting deeper than the parser allows */
    lv_buf b;
    lv_buf_init(&b);
    lv_buf_puts(&b, "<Delete>");
    for (int i = 0; i < 100; i++)
        lv_buf_puts(&b, "<x>");
    ck_assert_int_eq(fs3_xml_parse_delete(b.data, b.len, &d, err), FS3_MALFORMED_XML);
    lv_buf_free(&b);
}
END_TEST

START_TEST(test_complete_body)
{
    char err[LV_ERRLEN];
    fs3_complete_list c;
    const char *ok = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<Part><ETag>\"e1\"</ETag><PartNumber> 1 </PartNumber></Part>"
                     "<Part><PartNumber>3</PartNumber><ETag>&quot;e3&quot;</ETag>"
                     "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>"
                     "<Part><PartNumber>2</PartNumber><ETag>e2</ETag></Part>"
                     "</CompleteMultipartUpload>";
    ck_assert_int_eq(fs3_xml_parse_complete(ok, strlen(ok), &c, err), FS3_OK);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_int_eq(c.parts[0].number, 1);
    ck_assert_str_eq(c.parts[0].etag, "e1");
    ck_assert_int_eq(c.parts[1].number, 3); /* document order: the store checks the order */
    ck_assert_str_eq(c.parts[1].etag, "e3");
    ck_assert_str_eq(c.parts[2].etag, "e2");
    fs3_complete_list_free(&c);

    static const char *const bad[] = {
        "<CompleteMultipartUpload></CompleteMultipartUpload>",
        ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
         "</CompleteMultipartUpload>"),
        "<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
        ("<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
         "</CompleteMultipartUpload>"),
        ("<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>x</ETag></Part>"
         "</CompleteMultipartUpload>"),
        ("<CompleteMultipartUpload><Part><PartNumber></PartNumber><ETag>x</ETag></Part>"
         "</CompleteMultipartUpload>"),
        "<Complete><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Complete>",
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(fs3_xml_parse_complete(bad[i], strlen(bad[i]), &c, err) == FS3_MALFORMED_XML,
                      "accepted: %s", bad[i]);
    /* a part number too large for any part is refused, not overflowed */
    const char *huge =
        "<CompleteMultipartUpload><Part><PartNumber>99999999999999999999</PartNumber>"
        "<ETag>x</ETag></Part></CompleteMultipartUpload>";
    ck_assert_int_eq(fs3_xml_parse_complete(huge, strlen(huge), &c, err), FS3_MALFORMED_XML);
    for (int n = 10000; n <= 10001; n++) {
        lv_buf b;
        lv_buf_init(&b);
        lv_buf_puts(&b, "<CompleteMultipartUpload>");
        for (int i = 1; i <= n; i++)
            lv_buf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>e</ETag></Part>", i);
        lv_buf_puts(&b, "</CompleteMultipartUpload>");
        fs3_code rc = fs3_xml_parse_complete(b.data, b.len, &c, err);
        ck_assert_int_eq(rc, n == 10000 ? FS3_OK : FS3_MALFORMED_XML);
        if (rc == FS3_OK)
            fs3_complete_list_free(&c);
        lv_buf_free(&b);
    }
}
END_TEST

/* ---- checksums and ETags --------------------------------------------------------------------- */

START_TEST(test_checksums)
{
    /* the check values of the CRC catalogue for "123456789" */
    const char *cv = "123456789";
    ck_assert_uint_eq(fs3_crc32(0, cv, 9), 0xCBF43926u);
    ck_assert_uint_eq(fs3_crc32c(0, cv, 9), 0xE3069283u);
    ck_assert(fs3_crc64nvme(0, cv, 9) == 0xAE8B14860A799888ull);
    /* in pieces, across the 8-byte stride, as bodies arrive */
    char big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + 3);
    for (size_t cut = 0; cut <= 20; cut++) {
        ck_assert_uint_eq(fs3_crc32(fs3_crc32(0, big, cut), big + cut, sizeof big - cut),
                          fs3_crc32(0, big, sizeof big));
        ck_assert_uint_eq(fs3_crc32c(fs3_crc32c(0, big, cut), big + cut, sizeof big - cut),
                          fs3_crc32c(0, big, sizeof big));
        ck_assert(fs3_crc64nvme(fs3_crc64nvme(0, big, cut), big + cut, sizeof big - cut) ==
                  fs3_crc64nvme(0, big, sizeof big));
    }
    char out[FS3_CK_B64_MAX];
    ck_assert_int_eq(fs3_ck_compute(FS3_CK_CRC32, cv, 9, out), 0);
    ck_assert_str_eq(out, "y/Q5Jg=="); /* CB F4 39 26 */
    ck_assert_int_eq(fs3_ck_compute(FS3_CK_CRC32C, cv, 9, out), 0);
    ck_assert_str_eq(out, "4waSgw==");
    ck_assert_int_eq(fs3_ck_compute(FS3_CK_CRC64NVME, cv, 9, out), 0);
    ck_assert_str_eq(out, "rosUhgp5mIg=");
    ck_assert_int_eq(fs3_ck_compute(FS3_CK_SHA1, "abc", 3, out), 0);
    ck_assert_str_eq(out, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    ck_assert_int_eq(fs3_ck_compute(FS3_CK_SHA256, "abc", 3, out), 0);
    ck_assert_str_eq(out, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    /* streaming equals one shot */
    fs3_ck c;
    ck_assert_int_eq(fs3_ck_init(&c, FS3_CK_SHA256), 0);
    fs3_ck_update(&c, "a", 1);
    fs3_ck_update(&c, "bc", 2);
    fs3_ck_final(&c, out);
    fs3_ck_free(&c);
    ck_assert_str_eq(out, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");

    ck_assert(fs3_ck_value_valid(FS3_CK_CRC32, "y/Q5Jg=="));
    ck_assert(!fs3_ck_value_valid(FS3_CK_CRC32, "y/Q5Jg"));
    ck_assert(!fs3_ck_value_valid(FS3_CK_CRC32, "rosUhgp5mIg="));
    ck_assert(!fs3_ck_value_valid(FS3_CK_SHA1, "!!!!"));
    ck_assert(!fs3_ck_value_valid(FS3_CK_NONE, "y/Q5Jg=="));
    ck_assert(fs3_ck_equal(FS3_CK_CRC32, "y/Q5Jg==", "y/Q5Jg=="));
    ck_assert(!fs3_ck_equal(FS3_CK_CRC32, "y/Q5Jg==", "AAAAAA=="));
    ck_assert_int_eq(fs3_ck_from_header("X-Amz-Checksum-CRC32C"), FS3_CK_CRC32C);
    ck_assert_int_eq(fs3_ck_from_header("x-amz-checksum-algorithm"), FS3_CK_NONE);
    ck_assert_int_eq(fs3_ck_from_name("sha256"), FS3_CK_SHA256);
    ck_assert_str_eq(fs3_ck_element(FS3_CK_CRC64NVME), "ChecksumCRC64NVME");
}
END_TEST

/* hex MD5 of s */
static void md5_hex(const void *s, size_t n, char out[33])
{
    unsigned char md[16];
    unsigned int len = 16;
    ck_assert(EVP_Digest(s, n, md, &len, EVP_md5(), NULL));
    lv_hex_encode(md, 16, out);
}

START_TEST(test_multipart_etag)
{
    /* independently: MD5 over the 16-byte binary digests, then "-N" */
    char a[33], b[33], c[33], out[FS3_ETAG_MAX], want[FS3_ETAG_MAX];
    md5_hex("a", 1, a);
    md5_hex("b", 1, b);
    md5_hex("c", 1, c);
    unsigned char cat[48], md[16];
    lv_hex_decode(a, cat, 16);
    lv_hex_decode(b, cat + 16, 16);
    lv_hex_decode(c, cat + 32, 16);
    unsigned int len = 16;
    ck_assert(EVP_Digest(cat, 48, md, &len, EVP_md5(), NULL));
    lv_hex_encode(md, 16, want);
    strcat(want, "-3");
    const char *three[] = {a, b, c};
    ck_assert_int_eq(fs3_multipart_etag(three, 3, out), 0);
    ck_assert_str_eq(out, want);
    /* a single part: still "-1", and not the part's own MD5 */
    ck_assert_int_eq(fs3_multipart_etag(three, 1, out), 0);
    ck_assert_str_ne(out, a);
    ck_assert_ptr_nonnull(strstr(out, "-1"));
    const char *bad[] = {a, "not-hex"};
    ck_assert_int_eq(fs3_multipart_etag(bad, 2, out), -1);
}
END_TEST

/* ---- the store's uploads --------------------------------------------------------------------- */

static char *g_dir;

static char *fresh_dir(void)
{
    char tmpl[] = "/tmp/test_fakes3_mp_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char *d = malloc(strlen(tmpl) + 8);
    sprintf(d, "%s/data", tmpl);
    return d;
}

static void remove_tree(const char *d)
{
    char cmd[600];
    char *parent = strdup(d);
    *strrchr(parent, '/') = '\0';
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", parent);
    ck_assert_int_eq(system(cmd), 0);
    free(parent);
}

static fs3_store *open_store(int memory)
{
    fs3_store_options o = {.dir = g_dir, .memory = memory};
    fs3_store *st = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(fs3_store_open(&o, &st, err) == FS3_OK, "open: %s", err);
    return st;
}

/* Uploads part number of id with n bytes of byte c; its ETag (MD5) into etag. */
static fs3_code put_part(fs3_store *st, const char *key, const char *id, int number, size_t n,
                         int c, char etag[33])
{
    char err[LV_ERRLEN];
    fs3_put *p = NULL;
    fs3_code rc = fs3_store_part_begin(st, "bkt", key, strlen(key), id, number, &p, err);
    if (rc != FS3_OK)
        return rc;
    char *data = malloc(n ? n : 1);
    memset(data, c, n);
    ck_assert_int_eq(fs3_put_hash(p, 1, FS3_CK_NONE, err), FS3_OK);
    ck_assert_int_eq(fs3_put_write(p, data, n, err), FS3_OK);
    uint8_t md[16];
    ck_assert_int_eq(fs3_put_md5(p, md), 0);
    lv_hex_encode(md, 16, etag);
    char want[33];
    md5_hex(data, n, want);
    ck_assert_str_eq(etag, want);
    free(data);
    return fs3_store_part_commit(st, p, etag, NULL, 0, 1000 + number, NULL, err);
}

/* Reads key whole (caller frees); *size gets its length. NULL if absent. */
static uint8_t *read_object(fs3_store *st, const char *key, uint64_t *size, char etag[FS3_ETAG_MAX])
{
    fs3_object *o = NULL;
    fs3_body b;
    char err[LV_ERRLEN];
    if (fs3_store_get(st, "bkt", key, strlen(key), &o, &b, err) != FS3_OK)
        return NULL;
    uint8_t *d = malloc(o->size + 1);
    if (b.fd >= 0) {
        ck_assert_int_eq(pread(b.fd, d, o->size, 0), (ssize_t)o->size);
        close(b.fd);
    } else {
        memcpy(d, b.data, o->size);
    }
    *size = o->size;
    if (etag)
        snprintf(etag, FS3_ETAG_MAX, "%s", o->etag);
    fs3_object_unref(o);
    return d;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        ck_assert_int_eq(lstat(p, &sb), 0);
        n += S_ISDIR(sb.st_mode) ? count_files(p) : 1;
    }
    closedir(d);
    return n;
}

#define MIB (1024 * 1024)

static void uploads_flow(int memory)
{
    char err[LV_ERRLEN], id[FS3_UPLOAD_ID_LEN + 1], id2[FS3_UPLOAD_ID_LEN + 1];
    char e1[33], e2[33], e3[33], ex[33];
    fs3_store *st = open_store(memory);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bkt", 1, err), FS3_OK);
    fs3_kv h[] = {{"content-type", "video/x-test"}, {"x-amz-meta-a", "1"}};
    ck_assert_int_eq(fs3_store_create_upload(st, "nope", "k", 1, h, 2, 5, id, err),
                     FS3_NO_SUCH_BUCKET);
    ck_assert_int_eq(fs3_store_create_upload(st, "bkt", "k", 1, h, 2, 5, id, err), FS3_OK);
    ck_assert_int_eq(fs3_store_create_upload(st, "bkt", "k", 1, NULL, 0, 6, id2, err), FS3_OK);
    ck_assert(fs3_upload_id_valid(id));
    ck_assert_str_ne(id, id2);
    ck_assert_int_lt(strcmp(id, id2), 0); /* ids sort in creation order */

    ck_assert_int_eq(put_part(st, "k", id, 1, 5 * MIB, 'a', e1), FS3_OK);
    ck_assert_int_eq(put_part(st, "k", id, 2, 7, 'x', ex), FS3_OK);
    ck_assert_int_eq(put_part(st, "k", id, 2, 5 * MIB, 'b', e2), FS3_OK); /* replaces */
    ck_assert_int_eq(put_part(st, "k", id, 3, 1, 'c', e3), FS3_OK);
    ck_assert_int_eq(put_part(st, "other", id, 4, 1, 'c', ex), FS3_NO_SUCH_UPLOAD);
    ck_assert_int_eq(put_part(st, "k", "0123", 4, 1, 'c', ex), FS3_NO_SUCH_UPLOAD);

    if (!memory) { /* everything survives a restart */
        fs3_store_close(st);
        st = open_store(0);
    }
    fs3_parts_page pg;
    ck_assert_int_eq(fs3_store_list_parts(st, "bkt", "k", 1, id, 0, 2, &pg, err), FS3_OK);
    ck_assert_uint_eq(pg.n, 2);
    ck_assert_int_eq(pg.truncated, 1);
    ck_assert_int_eq(pg.parts[1].number, 2);
    ck_assert_str_eq(pg.parts[1].etag, e2);
    ck_assert_uint_eq(pg.parts[1].size, 5 * MIB);
    ck_assert_int_eq(pg.initiated_ms, 5);
    fs3_parts_page_free(&pg);
    ck_assert_int_eq(fs3_store_list_parts(st, "bkt", "k", 1, id, 2, 2, &pg, err), FS3_OK);
    ck_assert_uint_eq(pg.n, 1);
    ck_assert_int_eq(pg.truncated, 0);
    ck_assert_int_eq(pg.parts[0].number, 3);
    fs3_parts_page_free(&pg);

    fs3_uploads_page up;
    fs3_uploads_params lp = {.prefix = "", .max = 1};
    ck_assert_int_eq(fs3_store_list_uploads(st, "bkt", &lp, &up, err), FS3_OK);
    ck_assert_uint_eq(up.n, 1);
    ck_assert_int_eq(up.truncated, 1);
    ck_assert_str_eq(up.entries[0].id, id);
    fs3_uploads_page_free(&up);
    lp = (fs3_uploads_params){
        .prefix = "", .key_marker = "k", .key_marker_len = 1, .id_marker = id, .max = 10};
    ck_assert_int_eq(fs3_store_list_uploads(st, "bkt", &lp, &up, err), FS3_OK);
    ck_assert_uint_eq(up.n, 1);
    ck_assert_str_eq(up.entries[0].id, id2);
    fs3_uploads_page_free(&up);

    /* completion checks */
    fs3_complete_fail f;
    fs3_part_ref order[] = {{2, e2}, {1, e1}};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, order, 2, NULL, 9, NULL, &f, err),
        FS3_INVALID_PART_ORDER);
    ck_assert_uint_eq(f.index, 1);
    fs3_part_ref wrong[] = {{1, e1}, {2, e3}};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, wrong, 2, NULL, 9, NULL, &f, err),
        FS3_INVALID_PART);
    ck_assert_uint_eq(f.index, 1);
    fs3_part_ref missing[] = {{1, e1}, {0, e1}};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, missing, 2, NULL, 9, NULL, &f, err),
        FS3_INVALID_PART_ORDER);
    fs3_part_ref small[] = {{3, e3}, {4, e3}};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, small, 2, NULL, 9, NULL, &f, err),
        FS3_INVALID_PART);
    ck_assert_int_eq(put_part(st, "k", id, 4, 1, 'c', ex), FS3_OK);
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, small, 2, NULL, 9, NULL, &f, err),
        FS3_ENTITY_TOO_SMALL);
    ck_assert_uint_eq(f.index, 0);
    ck_assert_uint_eq(f.size, 1);
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k2", 2, id, order, 2, NULL, 9, NULL, &f, err),
        FS3_NO_SUCH_UPLOAD);

    /* the object: parts 1-3 in order (4 is not listed), the multipart ETag, the upload's headers */
    fs3_part_ref all[] = {{1, e1}, {2, e2}, {3, e3}};
    fs3_object *o = NULL;
    ck_assert_int_eq(fs3_store_complete_upload(st, "bkt", "k", 1, id, all, 3, NULL, 9, &o, &f, err),
                     FS3_OK);
    const char *md5s[] = {e1, e2, e3};
    char want[FS3_ETAG_MAX];
    fs3_multipart_etag(md5s, 3, want);
    ck_assert_str_eq(o->etag, want);
    ck_assert_uint_eq(o->size, 10 * MIB + 1);
    ck_assert_str_eq(fs3_object_header(o, "content-type"), "video/x-test");
    ck_assert_int_eq(o->mtime_ms, 9);
    /* the part boundaries stay with the object, for GET ?partNumber=N */
    ck_assert_uint_eq(o->n_parts, 3);
    ck_assert_uint_eq(o->part_sizes[0], 5 * MIB);
    ck_assert_uint_eq(o->part_sizes[1], 5 * MIB);
    ck_assert_uint_eq(o->part_sizes[2], 1);
    fs3_object_unref(o);
    uint64_t size;
    char etag[FS3_ETAG_MAX];
    uint8_t *d = read_object(st, "k", &size, etag);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(size, 10 * MIB + 1);
    ck_assert(d[0] == 'a' && d[5 * MIB - 1] == 'a' && d[5 * MIB] == 'b' && d[10 * MIB - 1] == 'b' &&
              d[10 * MIB] == 'c');
    free(d);
    ck_assert_int_eq(fs3_store_list_parts(st, "bkt", "k", 1, id, 0, 10, &pg, err),
                     FS3_NO_SUCH_UPLOAD);
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id, all, 3, NULL, 9, NULL, &f, err),
        FS3_NO_SUCH_UPLOAD);

    /* conditional completion: 412 keeps the upload; a delete since its start is a 409 */
    ck_assert_int_eq(put_part(st, "k", id2, 1, 3, 'q', e1), FS3_OK);
    fs3_part_ref one[] = {{1, e1}};
    fs3_write_cond inm = {NULL, "*"};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id2, one, 1, &inm, 9, NULL, &f, err),
        FS3_PRECONDITION_FAILED);
    ck_assert_int_eq(fs3_store_delete(st, "bkt", "k", 1, err), FS3_OK);
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "k", 1, id2, one, 1, &inm, 9, NULL, &f, err),
        FS3_CONDITIONAL_REQUEST_CONFLICT);
    ck_assert_int_eq(fs3_store_abort_upload(st, "bkt", "k", 1, id2, err), FS3_NO_SUCH_UPLOAD);
    ck_assert_ptr_null(read_object(st, "k", &size, NULL));

    /* the same for a conditional put in flight */
    fs3_put *p = NULL;
    ck_assert_int_eq(fs3_store_put_begin(st, "bkt", "c", 1, &p, err), FS3_OK);
    fs3_put_conditional(p);
    ck_assert_int_eq(fs3_store_delete(st, "bkt", "c", 1, err), FS3_OK); /* nothing deleted */
    ck_assert_int_eq(fs3_store_put_commit(st, p, "e", NULL, 0, &inm, 9, NULL, err), FS3_OK);
    ck_assert_int_eq(fs3_store_put_begin(st, "bkt", "c", 1, &p, err), FS3_OK);
    fs3_put_conditional(p);
    ck_assert_int_eq(fs3_store_delete(st, "bkt", "c", 1, err), FS3_OK); /* "c" was there */
    ck_assert_int_eq(fs3_store_put_commit(st, p, "e", NULL, 0, &inm, 9, NULL, err),
                     FS3_CONDITIONAL_REQUEST_CONFLICT);

    /* abort; delete_if */
    ck_assert_int_eq(fs3_store_create_upload(st, "bkt", "gone", 4, NULL, 0, 7, id, err), FS3_OK);
    ck_assert_int_eq(put_part(st, "gone", id, 1, 10, 'g', e1), FS3_OK);
    ck_assert_int_eq(fs3_store_abort_upload(st, "bkt", "other", 5, id, err), FS3_NO_SUCH_UPLOAD);
    ck_assert_int_eq(fs3_store_abort_upload(st, "bkt", "gone", 4, id, err), FS3_OK);
    ck_assert_int_eq(fs3_store_abort_upload(st, "bkt", "gone", 4, id, err), FS3_NO_SUCH_UPLOAD);
    ck_assert_int_eq(put_part(st, "gone", id, 2, 10, 'g', e1), FS3_NO_SUCH_UPLOAD);
    int deleted = 0;
    ck_assert_int_eq(fs3_store_delete_if(st, "bkt", "missing", 7, "x", &deleted, err),
                     FS3_NO_SUCH_KEY);

    /* copies: a whole object and a range, through fs3_put_copy */
    char ce[FS3_ETAG_MAX];
    ck_assert_int_eq(fs3_store_create_upload(st, "bkt", "cp", 2, NULL, 0, 7, id, err), FS3_OK);
    ck_assert_int_eq(put_part(st, "cp", id, 1, 5 * MIB, 'm', e1), FS3_OK);
    ck_assert_int_eq(put_part(st, "cp", id, 2, 100, 'n', e2), FS3_OK);
    fs3_part_ref cps[] = {{1, e1}, {2, e2}};
    ck_assert_int_eq(
        fs3_store_complete_upload(st, "bkt", "cp", 2, id, cps, 2, NULL, 9, NULL, &f, err), FS3_OK);
    fs3_object *src = NULL;
    fs3_body body;
    ck_assert_int_eq(fs3_store_get(st, "bkt", "cp", 2, &src, &body, err), FS3_OK);
    ck_assert_int_eq(fs3_store_put_begin(st, "bkt", "cp-copy", 7, &p, err), FS3_OK);
    ck_assert_int_eq(fs3_put_copy(p, &body, 5 * MIB - 2, 4, err), FS3_OK);
    ck_assert_int_eq(fs3_put_copy(p, &body, 5 * MIB + 100, 1, err), FS3_INTERNAL_ERROR);
    ck_assert_int_eq(fs3_store_put_commit(st, p, "e", NULL, 0, NULL, 9, NULL, err), FS3_OK);
    if (body.fd >= 0)
        close(body.fd);
    fs3_object_unref(src);
    ck_assert_int_eq(fs3_store_get(st, "bkt", "cp-copy", 7, &src, NULL, err), FS3_OK);
    ck_assert_uint_eq(src->n_parts, 0); /* a copy is a single-part object, as in S3 */
    fs3_object_unref(src);
    d = read_object(st, "cp-copy", &size, ce);
    ck_assert_uint_eq(size, 4);
    ck_assert_int_eq(memcmp(d, "mmnn", 4), 0);
    free(d);

    if (!memory) {
        /* the disk holds: marker, lock, bucket file, objects cp and cp-copy; no upload, no temp */
        ck_assert_int_eq(count_files(g_dir), 3 + 2);
        /* an upload left at a restart comes back, whole */
        ck_assert_int_eq(fs3_store_create_upload(st, "bkt", "later", 5, h, 2, 8, id, err), FS3_OK);
        ck_assert_int_eq(put_part(st, "later", id, 1, 10, 'l', e1), FS3_OK);
        fs3_store_close(st);
        /* a damaged part file is skipped; the upload loads without it */
        char pp[PATH_MAX];
        snprintf(pp, sizeof pp, "%s/buckets/bkt/uploads/%s/00002", g_dir, id);
        tu_write_file(pp, "junk", 4);
        /* a temp file a crash left beside the objects is removed at the start */
        snprintf(pp, sizeof pp, "%s/buckets/bkt/objects/00/t-1-1", g_dir);
        tu_write_file(pp, "half an upload", 14);
        st = open_store(0);
        ck_assert_int_eq(access(pp, F_OK), -1);
        /* the part boundaries survive the restart */
        ck_assert_int_eq(fs3_store_get(st, "bkt", "cp", 2, &src, NULL, err), FS3_OK);
        ck_assert_uint_eq(src->n_parts, 2);
        ck_assert_uint_eq(src->part_sizes[0], 5 * MIB);
        ck_assert_uint_eq(src->part_sizes[1], 100);
        fs3_object_unref(src);
        ck_assert_int_eq(fs3_store_list_parts(st, "bkt", "later", 5, id, 0, 10, &pg, err), FS3_OK);
        ck_assert_uint_eq(pg.n, 1);
        fs3_parts_page_free(&pg);
        /* deleting the bucket takes its uploads along */
        ck_assert_int_eq(fs3_store_delete(st, "bkt", "cp", 2, err), FS3_OK);
        ck_assert_int_eq(fs3_store_delete(st, "bkt", "cp-copy", 7, err), FS3_OK);
        ck_assert_int_eq(fs3_store_delete_bucket(st, "bkt", err), FS3_OK);
        ck_assert_int_eq(count_files(g_dir), 2);
    }
    /* DeleteBucket aborts the uploads in progress (as S3: only objects make a bucket not
     * empty); a bucket made again under the name has none, and the old id is gone */
    ck_assert_int_eq(fs3_store_create_bucket(st, "bk2", 1, err), FS3_OK);
    ck_assert_int_eq(fs3_store_create_upload(st, "bk2", "u", 1, NULL, 0, 7, id, err), FS3_OK);
    fs3_put *pp2 = NULL;
    ck_assert_int_eq(fs3_store_part_begin(st, "bk2", "u", 1, id, 1, &pp2, err), FS3_OK);
    ck_assert_int_eq(fs3_put_write(pp2, "x", 1, err), FS3_OK);
    ck_assert_int_eq(fs3_store_delete_bucket(st, "bk2", err), FS3_OK);
    /* the part in flight cannot land anywhere */
    ck_assert_int_ne(fs3_store_part_commit(st, pp2, "e", NULL, 0, 9, NULL, err), FS3_OK);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bk2", 2, err), FS3_OK);
    fs3_uploads_params up2 = {.prefix = "", .max = 10};
    fs3_uploads_page upg;
    ck_assert_int_eq(fs3_store_list_uploads(st, "bk2", &up2, &upg, err), FS3_OK);
    ck_assert_uint_eq(upg.n, 0);
    fs3_uploads_page_free(&upg);
    ck_assert_int_eq(fs3_store_abort_upload(st, "bk2", "u", 1, id, err), FS3_NO_SUCH_UPLOAD);
    /* PUTs in flight when the bucket goes, small (still buffered) and large (in its temp file
     * beside the objects): neither lands, and nothing is left behind */
    fs3_put *put_small = NULL, *put_large = NULL;
    ck_assert_int_eq(fs3_store_put_begin(st, "bk2", "s", 1, &put_small, err), FS3_OK);
    ck_assert_int_eq(fs3_put_write(put_small, "tiny", 4, err), FS3_OK);
    ck_assert_int_eq(fs3_store_put_begin(st, "bk2", "l", 1, &put_large, err), FS3_OK);
    char *big = calloc(1, 200 * 1024);
    ck_assert_int_eq(fs3_put_write(put_large, big, 200 * 1024, err), FS3_OK);
    free(big);
    ck_assert_int_eq(fs3_store_delete_bucket(st, "bk2", err), FS3_OK);
    ck_assert_int_eq(fs3_store_put_commit(st, put_small, "e", NULL, 0, NULL, 9, NULL, err),
                     FS3_NO_SUCH_BUCKET);
    ck_assert_int_eq(fs3_store_put_commit(st, put_large, "e", NULL, 0, NULL, 9, NULL, err),
                     FS3_NO_SUCH_BUCKET);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bk2", 3, err), FS3_OK);
    ck_assert_int_eq(fs3_store_get(st, "bk2", "l", 1, &src, NULL, err), FS3_NO_SUCH_KEY);
    ck_assert_int_eq(fs3_store_delete_bucket(st, "bk2", err), FS3_OK);
    if (!memory)
        ck_assert_int_eq(count_files(g_dir), 2);
    fs3_store_close(st);
}

START_TEST(test_uploads_memory)
{
    uploads_flow(1);
}
END_TEST

START_TEST(test_uploads_disk)
{
    g_dir = fresh_dir();
    uploads_flow(0);
    remove_tree(g_dir);
    free(g_dir);
}
END_TEST

static Suite *multipart_suite(void)
{
    Suite *s = suite_create("fakes3_multipart");
    TCase *tc = tcase_create("bodies");
    tcase_add_test(tc, test_delete_body);
    tcase_add_test(tc, test_complete_body);
    suite_add_tcase(s, tc);
    tc = tcase_create("digests");
    tcase_add_test(tc, test_checksums);
    tcase_add_test(tc, test_multipart_etag);
    suite_add_tcase(s, tc);
    tc = tcase_create("store");
    tcase_add_test(tc, test_uploads_memory);
    tcase_add_test(tc, test_uploads_disk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(multipart_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
