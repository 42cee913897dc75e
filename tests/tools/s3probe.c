/*
 * s3probe: a tiny command-line program over lib/s3.h, for the shell tests (botocore proxy,
 * s3rver) that drive our S3 client against other servers.
 *
 *   s3probe [OPTIONS] COMMAND ARGS...
 *     put KEY FILE [--if-none-match V] [--if-match V] [--meta NAME=VALUE]... [--md5]
 *                  [--header NAME=VALUE]...        FILE "-" is stdin
 *     get KEY [OFF [LEN]]                          body to stdout (LEN "end": to the end)
 *     head KEY                                     size, etag, meta-NAME=VALUE lines
 *     delete KEY
 *     list PREFIX [START_AFTER]                    "key<TAB>size<TAB>etag" lines
 *     list-many PREFIX...                          "which<TAB>key<TAB>size" lines
 *     delete-keys KEY...                           DeleteObjects
 *     put-many PREFIX N                            one batch of N PUTs: PREFIX00000.. (body =
 *                                                  the key)
 *   options (else the AWS_* environment, s3_config_from_env):
 *     --endpoint URL --region R --bucket B --access-key K --secret-key S --session-token T
 *     --virtual-host  --unsigned-payload  --part-size BYTES  --max-attempts N
 *     --retry-total-ms N  --max-inflight N  --skip-verify  --ca-bundle FILE
 *
 * On failure: exit status 1 (2 for usage), the client's message on stderr, and "err=NAME" as
 * the last line of stderr. Every request's result line ("status=... attempts=...") goes to stderr.
 * Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

static void usage(void)
{
    fprintf(stderr, "usage: s3probe [--endpoint URL] [--bucket B] ... "
                    "put|get|head|delete|list|list-many|delete-keys ARGS\n");
    exit(2);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (f != stdin)
        fclose(f);
    *n = len;
    return buf;
}

static const char *err_name(lv_err e)
{
    switch (e) {
    case LV_OK:
        return "OK";
    case LV_ENOTFOUND:
        return "ENOTFOUND";
    case LV_ECONFLICT:
        return "ECONFLICT";
    case LV_EACCESS:
        return "EACCESS";
    case LV_ENET:
        return "ENET";
    case LV_EINVAL:
        return "EINVAL";
    default:
        return lv_strerror(e);
    }
}

static void show(const s3_result *r)
{
    fprintf(stderr, "status=%d attempts=%u code=%s etag=%s size=%llu recovered=%d\n", r->status,
            r->attempts, r->code, r->etag, (unsigned long long)r->size, r->recovered);
}

static int finish(lv_err rc, const char *err)
{
    if (rc != LV_OK) {
        fprintf(stderr, "s3probe: %s\nerr=%s\n", err, err_name(rc));
        return 1;
    }
    return 0;
}

static int print_entry(void *ctx, const s3_entry *e)
{
    (void)ctx;
    printf("%s\t%llu\t%s\n", e->key, (unsigned long long)e->size, e->etag);
    return 0;
}

static int print_many(void *ctx, size_t which, const s3_entry *e)
{
    (void)ctx;
    printf("%zu\t%s\t%llu\n", which, e->key, (unsigned long long)e->size);
    return 0;
}

int main(int argc, char **argv)
{
    s3_config cfg;
    s3_config_init(&cfg);
    s3_config_from_env(&cfg);
    const char *bucket = getenv("S3PROBE_BUCKET");
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--virtual-host") == 0) {
            cfg.path_style = 0;
            continue;
        }
        if (strcmp(o, "--unsigned-payload") == 0) {
            cfg.unsigned_payload = 1;
            continue;
        }
        if (strcmp(o, "--skip-verify") == 0) {
            cfg.skip_verify = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(o, "--endpoint") == 0) {
            cfg.endpoint = v;
            cfg.path_style = 1;
        } else if (strcmp(o, "--region") == 0)
            cfg.region = v;
        else if (strcmp(o, "--bucket") == 0)
            bucket = v;
        else if (strcmp(o, "--access-key") == 0)
            cfg.access_key = v;
        else if (strcmp(o, "--secret-key") == 0)
            cfg.secret_key = v;
        else if (strcmp(o, "--session-token") == 0)
            cfg.session_token = v;
        else if (strcmp(o, "--ca-bundle") == 0)
            cfg.ca_bundle = v;
        else if (strcmp(o, "--part-size") == 0)
            cfg.part_size = strtoull(v, NULL, 10);
        else if (strcmp(o, "--max-attempts") == 0)
            cfg.max_attempts = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(o, "--retry-total-ms") == 0)
            cfg.retry_total_ms = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(o, "--max-inflight") == 0)
            cfg.max_inflight = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
    }
    if (i >= argc || !bucket)
        usage();
    const char *cmd = argv[i++];
    char err[LV_ERRLEN] = "";
    s3_client *c = NULL;
    lv_err rc = s3_client_new(&cfg, &c, err);
    if (rc != LV_OK)
        return finish(rc, err);
    int status = 0;
    s3_result res;
    memset(&res, 0, sizeof res);

    if (strcmp(cmd, "put") == 0) {
        if (argc - i < 2)
            usage();
        const char *key = argv[i], *file = argv[i + 1];
        s3_op opts;
        s3_op_init(&opts);
        s3_header hdrs[32];
        char *owned[32];
        size_t nh = 0;
        for (i += 2; i < argc; i++) {
            const char *o = argv[i];
            if (strcmp(o, "--md5") == 0) {
                opts.content_md5 = 1;
                continue;
            }
            if (i + 1 >= argc)
                usage();
            const char *v = argv[++i];
            if (strcmp(o, "--if-none-match") == 0)
                opts.if_none_match = v;
            else if (strcmp(o, "--if-match") == 0)
                opts.if_match = v;
            else if ((strcmp(o, "--meta") == 0 || strcmp(o, "--header") == 0) && nh < 32) {
                const char *eq = strchr(v, '=');
                if (!eq)
                    usage();
                size_t nlen = (size_t)(eq - v);
                char *name = malloc(nlen + 16);
                sprintf(name, "%s%.*s", o[2] == 'm' ? "x-amz-meta-" : "", (int)nlen, v);
                owned[nh] = name;
                hdrs[nh++] = (s3_header){name, eq + 1};
            } else
                usage();
        }
        opts.headers = hdrs;
        opts.n_headers = nh;
        size_t n;
        unsigned char *body = read_all(file, &n);
        rc = s3_put(c, bucket, key, body, n, &opts, &res, err);
        show(&res);
        if (rc == LV_OK)
            printf("%s\n", res.etag);
        free(body);
        for (size_t k = 0; k < nh; k++)
            free(owned[k]);
        s3_op_free(&opts);
    } else if (strcmp(cmd, "get") == 0) {
        if (argc - i < 1)
            usage();
        uint64_t off = argc - i > 1 ? strtoull(argv[i + 1], NULL, 10) : 0;
        uint64_t len = S3_TO_END;
        if (argc - i > 2 && strcmp(argv[i + 2], "end") != 0)
            len = strtoull(argv[i + 2], NULL, 10);
        lv_buf out;
        lv_buf_init(&out);
        rc = s3_get(c, bucket, argv[i], off, len, &out, &res, err);
        show(&res);
        if (rc == LV_OK && out.len)
            fwrite(out.data, 1, out.len, stdout);
        lv_buf_free(&out);
    } else if (strcmp(cmd, "head") == 0) {
        if (argc - i < 1)
            usage();
        s3_op op;
        s3_op_init(&op);
        op.kind = S3_HEAD;
        op.key = argv[i];
        rc = s3_run(c, bucket, &op, 1, err);
        show(&op.res);
        if (rc == LV_OK) {
            printf("size=%llu\netag=%s\n", (unsigned long long)op.res.size, op.res.etag);
            for (size_t off = 0; off < op.meta.len;) {
                const char *name = op.meta.data + off;
                off += strlen(name) + 1;
                const char *value = op.meta.data + off;
                off += strlen(value) + 1;
                printf("meta-%s=%s\n", name, value);
            }
        }
        s3_op_free(&op);
    } else if (strcmp(cmd, "delete") == 0) {
        if (argc - i < 1)
            usage();
        s3_op op;
        s3_op_init(&op);
        op.kind = S3_DELETE;
        op.key = argv[i];
        rc = s3_run(c, bucket, &op, 1, err);
        show(&op.res);
        s3_op_free(&op);
    } else if (strcmp(cmd, "list") == 0) {
        const char *prefix = argc - i > 0 ? argv[i] : "";
        const char *after = argc - i > 1 ? argv[i + 1] : NULL;
        rc = s3_list(c, bucket, prefix, after, print_entry, NULL, err);
    } else if (strcmp(cmd, "list-many") == 0) {
        rc = s3_list_many(c, bucket, (const char *const *)(argv + i), (size_t)(argc - i),
                          print_many, NULL, err);
    } else if (strcmp(cmd, "put-many") == 0) {
        if (argc - i < 2)
            usage();
        size_t n = strtoul(argv[i + 1], NULL, 10);
        s3_op *ops = calloc(n ? n : 1, sizeof *ops);
        char **names = calloc(n ? n : 1, sizeof *names);
        for (size_t k = 0; k < n; k++) {
            names[k] = malloc(strlen(argv[i]) + 24);
            sprintf(names[k], "%s%05zu", argv[i], k);
            s3_op_init(&ops[k]);
            ops[k].kind = S3_PUT;
            ops[k].key = names[k];
            ops[k].body = names[k];
            ops[k].body_len = strlen(names[k]);
        }
        rc = s3_run(c, bucket, ops, n, err);
        for (size_t k = 0; k < n; k++) {
            s3_op_free(&ops[k]);
            free(names[k]);
        }
        free(ops);
        free(names);
    } else if (strcmp(cmd, "delete-keys") == 0) {
        rc = s3_delete_keys(c, bucket, (const char *const *)(argv + i), (size_t)(argc - i), err);
    } else {
        usage();
    }
    status = finish(rc, err);
    s3_client_free(c);
    return status;
}
