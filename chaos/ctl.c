/*
 * ctl: `fakes3 ctl` (see ctl.h): argument parsing, one signed libcurl request per command, and the
 * human rendering of the server's JSON (a small JSON reader below: the answers are fakes3's own,
 * a few objects and arrays of numbers and strings).
 *
 * Threads: single-threaded, one request at a time. Memory: lv_malloc, everything freed before
 * returning.
 */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "alloc.h"
#include "buf.h"

#define DEFAULT_ENDPOINT   "http://127.0.0.1:9000"
#define DEFAULT_REGION     "us-east-1"
#define DEFAULT_ACCESS_KEY "fakes3"
#define DEFAULT_SECRET_KEY "fakes3secret"

static void usage(FILE *f)
{
    fputs(
        "usage: fakes3 ctl [options] COMMAND\n"
        "\n"
        "Controls a running fakes3 through its admin API (/_fakes3/...).\n"
        "\n"
        "commands:\n"
        "  faults list             the fault rules, in order, with their counts (matched,\n"
        "                          fired)\n"
        "  faults add RULE...      adds the rules (one per argument), all or none; prints the\n"
        "                          new ids\n"
        "  faults add -f FILE      adds the rules of FILE (one per line; - for stdin)\n"
        "  faults clear [ID]       removes rule ID, or every rule\n"
        "  health                  whether the server answers, and its object count\n"
        "  stats                   requests answered by operation and status, faults carried\n"
        "                          out by action\n"
        "\n"
        "options (before or after the command):\n"
        "  --endpoint URL          the server (default $FAKES3_ENDPOINT, else " DEFAULT_ENDPOINT
        ")\n"
        "  --region REGION         the region requests are signed for (default " DEFAULT_REGION
        ")\n"
        "  --access-key KEY        (default $FAKES3_ACCESS_KEY, else \"" DEFAULT_ACCESS_KEY "\")\n"
        "  --secret-key SECRET     (default $FAKES3_SECRET_KEY, else \"" DEFAULT_SECRET_KEY "\")\n"
        "  --anonymous             send unsigned requests (a fakes3 run with --anonymous)\n"
        "  --json                  print the server's JSON answer as it is\n"
        "  --help                  this text\n"
        "\n"
        "The rule syntax is in docs/chaos.md. Exit status: 0 done, 1 the server refused or\n"
        "could not be reached, 2 a bad command line.\n",
        f);
}

/* ---- a small JSON reader --------------------------------------------------------------------- */

typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jnode {
    jtype type;
    double num;          /* J_NUM, J_BOOL (0/1) */
    char *str;           /* J_STR (NUL-terminated) */
    char *key;           /* a member of an object: its name */
    struct jnode *child; /* J_ARR, J_OBJ: the first element or member */
    struct jnode *next;  /* the next sibling */
} jnode;

static void jfree(jnode *n)
{
    while (n) {
        jnode *next = n->next;
        jfree(n->child);
        lv_free(n->str);
        lv_free(n->key);
        lv_free(n);
        n = next;
    }
}

static const char *jws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A string at p (at its opening quote) into *out (lv_malloc); the end, or NULL. */
static const char *jstring(const char *p, char **out)
{
    lv_buf b;
    lv_buf_init(&b);
    p++;
    while (*p && *p != '"') {
        if (*p != '\\') {
            lv_buf_putc(&b, *p++);
            continue;
        }
        p++;
        char c = *p++;
        switch (c) {
        case 'n':
            lv_buf_putc(&b, '\n');
            break;
        case 't':
            lv_buf_putc(&b, '\t');
            break;
        case 'r':
            lv_buf_putc(&b, '\r');
            break;
        case 'b':
            lv_buf_putc(&b, '\b');
            break;
        case 'f':
            lv_buf_putc(&b, '\f');
            break;
        case 'u': {
            unsigned v = 0;
            for (int i = 0; i < 4; i++, p++) {
                char h = *p;
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) {
                    lv_buf_free(&b);
                    return NULL;
                }
                v = v * 16 + (unsigned)d;
            }
            /* UTF-8 of a BMP code point (surrogates are kept as they are: display only) */
            if (v < 0x80) {
                lv_buf_putc(&b, (char)v);
            } else if (v < 0x800) {
                lv_buf_putc(&b, (char)(0xC0 | (v >> 6)));
                lv_buf_putc(&b, (char)(0x80 | (v & 0x3F)));
            } else {
                lv_buf_putc(&b, (char)(0xE0 | (v >> 12)));
                lv_buf_putc(&b, (char)(0x80 | ((v >> 6) & 0x3F)));
                lv_buf_putc(&b, (char)(0x80 | (v & 0x3F)));
            }
            break;
        }
        case '\0':
            lv_buf_free(&b);
            return NULL;
        default: /* \" \\ \/ */
            lv_buf_putc(&b, c);
            break;
        }
    }
    if (*p != '"' || b.oom) {
        lv_buf_free(&b);
        return NULL;
    }
    lv_buf_putc(&b, '\0');
    *out = lv_buf_take(&b);
    if (!*out)
        return NULL;
    return p + 1;
}

/* A value at p into *out; the end, or NULL when it is not JSON (or too deep). */
static const char *jvalue(const char *p, jnode **out, int depth)
{
    p = jws(p);
    *out = NULL;
    if (depth > 32)
        return NULL;
    jnode *n = lv_calloc(1, sizeof *n);
    if (!n)
        return NULL;
    *out = n;
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        char close = obj ? '}' : ']';
        n->type = obj ? J_OBJ : J_ARR;
        jnode **tail = &n->child;
        p = jws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            char *key = NULL;
            if (obj) {
                if (*p != '"' || !(p = jstring(p, &key)))
                    return NULL;
                p = jws(p);
                if (*p != ':') {
                    lv_free(key);
                    return NULL;
                }
                p++;
            }
            jnode *c = NULL;
            p = jvalue(p, &c, depth + 1);
            if (c) {
                c->key = key;
                *tail = c;
                tail = &c->next;
            } else {
                lv_free(key);
            }
            if (!p)
                return NULL;
            p = jws(p);
            if (*p == ',') {
                p = jws(p + 1);
                continue;
            }
            if (*p != close)
                return NULL;
            return p + 1;
        }
    }
    if (*p == '"') {
        n->type = J_STR;
        return jstring(p, &n->str);
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        n->type = J_BOOL;
        n->num = *p == 't';
        return p + (*p == 't' ? 4 : 5);
    }
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    char *end = NULL;
    errno = 0;
    n->num = strtod(p, &end);
    if (end == p || errno)
        return NULL;
    n->type = J_NUM;
    return end;
}

static jnode *jparse(const char *text)
{
    jnode *root = NULL;
    const char *end = jvalue(text, &root, 0);
    if (!end || *jws(end)) {
        jfree(root);
        return NULL;
    }
    return root;
}

static const jnode *jget(const jnode *obj, const char *key)
{
    if (!obj || obj->type != J_OBJ)
        return NULL;
    for (const jnode *c = obj->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

static double jnum(const jnode *obj, const char *key)
{
    const jnode *n = jget(obj, key);
    return n && (n->type == J_NUM || n->type == J_BOOL) ? n->num : 0;
}

/* ---- requests -------------------------------------------------------------------------------- */

typedef struct ctl_opts {
    const char *endpoint;
    const char *region;
    const char *access_key;
    const char *secret_key;
    int anonymous;
    int json;
} ctl_opts;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    lv_buf_append(arg, data, size * n);
    return size * n;
}

/* The text of <Name>...</Name> in an S3 error document, or "". */
static void xml_field(const char *doc, const char *name, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", name);
    snprintf(close, sizeof close, "</%s>", name);
    out[0] = '\0';
    const char *a = doc ? strstr(doc, open) : NULL;
    const char *b = a ? strstr(a, close) : NULL;
    if (!a || !b)
        return;
    static const struct {
        const char *entity;
        char c;
    } entities[] = {
        {"&quot;", '"'}, {"&apos;", '\''}, {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}};
    size_t o = 0;
    for (a += strlen(open); a < b && o + 1 < cap;) {
        size_t i = 0;
        while (i < sizeof entities / sizeof entities[0] &&
               strncmp(a, entities[i].entity, strlen(entities[i].entity)) != 0)
            i++;
        if (i < sizeof entities / sizeof entities[0]) {
            out[o++] = entities[i].c;
            a += strlen(entities[i].entity);
        } else {
            out[o++] = *a++;
        }
    }
    out[o] = '\0';
}

/*
 * One request: method on endpoint + path, with body (may be NULL). On a 2xx answer 0 and the body
 * (NUL-terminated) in *out, the caller's to free; otherwise 1, with what went wrong on stderr.
 */
static int call(const ctl_opts *o, const char *what, const char *method, const char *path,
                const char *body, size_t body_len, lv_buf *out)
{
    int rc = 1;
    char sigv4[128], userpwd[512], errbuf[CURL_ERROR_SIZE] = "";
    lv_buf url;
    lv_buf_init(&url);
    lv_buf_init(out);
    struct curl_slist *headers = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "fakes3 ctl: %s: cannot start libcurl\n", what);
        goto done;
    }
    size_t elen = strlen(o->endpoint);
    while (elen > 0 && o->endpoint[elen - 1] == '/')
        elen--;
    lv_buf_append(&url, o->endpoint, elen);
    lv_buf_puts(&url, path);
    lv_buf_putc(&url, '\0');
    if (url.oom) {
        fprintf(stderr, "fakes3 ctl: out of memory\n");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        /* no "Expect:" override: curl would sign the empty header it then leaves out */
        headers = curl_slist_append(headers, "Content-Type: text/plain");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    }
    if (!o->anonymous) {
        snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", o->region);
        snprintf(userpwd, sizeof userpwd, "%s:%s", o->access_key, o->secret_key);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "fakes3 ctl: %s: %s %.*s: %s\n", what, method, (int)(url.len - 1), url.data,
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    lv_buf_putc(out, '\0');
    out->len--;
    if (out->oom) {
        fprintf(stderr, "fakes3 ctl: out of memory\n");
        goto done;
    }
    if (status < 200 || status > 299) {
        char code[128], msg[1024];
        xml_field(out->data, "Code", code, sizeof code);
        xml_field(out->data, "Message", msg, sizeof msg);
        fprintf(stderr, "fakes3 ctl: %s: HTTP %ld%s%s%s%s\n", what, status, code[0] ? " " : "",
                code, msg[0] ? ": " : "", msg);
        goto done;
    }
    rc = 0;
done:
    if (rc)
        lv_buf_free(out);
    curl_slist_free_all(headers);
    if (c)
        curl_easy_cleanup(c);
    lv_buf_free(&url);
    return rc;
}

/* ---- commands -------------------------------------------------------------------------------- */

/* The server's JSON with --json; otherwise render(root), or the text as it is if it does not
 * parse. */
static int show(const ctl_opts *o, const lv_buf *body, void (*render)(const jnode *root))
{
    if (o->json) {
        fputs(body->data, stdout);
        if (body->len && body->data[body->len - 1] != '\n')
            putchar('\n');
        return 0;
    }
    jnode *root = jparse(body->data);
    if (!root) {
        fprintf(stderr, "fakes3 ctl: the server's answer is not JSON: %s\n", body->data);
        return 1;
    }
    render(root);
    jfree(root);
    return 0;
}

static void render_list(const jnode *root)
{
    const jnode *rules = jget(root, "rules");
    const jnode *first = rules && rules->type == J_ARR ? rules->child : NULL;
    printf("seed %.0f\n", jnum(root, "seed"));
    if (!first) {
        printf("no fault rules\n");
        return;
    }
    printf("%-5s %9s %9s  %s\n", "ID", "MATCHED", "FIRED", "RULE");
    for (const jnode *r = first; r; r = r->next) {
        const jnode *text = jget(r, "rule");
        printf("%-5.0f %9.0f %9.0f  %s%s\n", jnum(r, "id"), jnum(r, "matched"), jnum(r, "fired"),
               text && text->str ? text->str : "", jnum(r, "expired") ? "  (expired)" : "");
    }
}

static void render_added(const jnode *root)
{
    const jnode *ids = jget(root, "ids");
    int n = 0;
    for (const jnode *i = ids ? ids->child : NULL; i; i = i->next)
        printf("%s%.0f", n++ ? ", " : "added rule ", i->num);
    printf(n ? "\n" : "added no rule\n");
}

static void render_cleared(const jnode *root)
{
    if (jget(root, "removed"))
        printf("removed rule %.0f\n", jnum(root, "removed"));
    else
        printf("cleared %.0f rule%s\n", jnum(root, "cleared"),
               jnum(root, "cleared") == 1 ? "" : "s");
}

static void render_health(const jnode *root)
{
    const jnode *st = jget(root, "status");
    printf("%s: %.0f buckets, %.0f objects\n", st && st->str ? st->str : "?", jnum(root, "buckets"),
           jnum(root, "objects"));
}

static void render_stats(const jnode *root)
{
    printf("requests: %.0f\n", jnum(root, "requests"));
    const jnode *ops = jget(root, "operations");
    for (const jnode *op = ops ? ops->child : NULL; op; op = op->next) {
        printf("  %-28s", op->key ? op->key : "?");
        for (const jnode *st = op->child; st; st = st->next)
            printf(" %s:%.0f", st->key ? st->key : "?", st->num);
        putchar('\n');
    }
    const jnode *faults = jget(root, "faults");
    if (faults && faults->child) {
        printf("faults:");
        for (const jnode *a = faults->child; a; a = a->next)
            printf(" %s:%.0f", a->key ? a->key : "?", a->num);
        putchar('\n');
    }
}

/* Reads a whole file (- for stdin) into b. 0, or 1 after saying why not. */
static int read_all(const char *path, lv_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fakes3 ctl: faults add -f %s: %s\n", path, strerror(errno));
        return 1;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        lv_buf_append(b, chunk, n);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad || b->oom) {
        fprintf(stderr, "fakes3 ctl: faults add -f %s: cannot read it\n", path);
        return 1;
    }
    return 0;
}

static int cmd_faults(const ctl_opts *o, int n, char **args)
{
    lv_buf body, text;
    lv_buf_init(&body);
    lv_buf_init(&text);
    int rc = 2;
    if (n < 1) {
        fprintf(stderr, "fakes3 ctl: faults: want list, add or clear (fakes3 ctl --help)\n");
        return 2;
    }
    if (strcmp(args[0], "list") == 0 && n == 1) {
        rc = call(o, "faults list", "GET", "/_fakes3/faults", NULL, 0, &body);
        if (!rc)
            rc = show(o, &body, render_list);
    } else if (strcmp(args[0], "add") == 0 && n >= 2) {
        if (strcmp(args[1], "-f") == 0) {
            if (n != 3) {
                fprintf(stderr, "fakes3 ctl: faults add -f FILE: one file\n");
                goto done;
            }
            if (read_all(args[2], &text)) {
                rc = 1;
                goto done;
            }
        } else {
            for (int i = 1; i < n; i++) {
                if (strchr(args[i], '\n')) {
                    fprintf(stderr, "fakes3 ctl: faults add: one rule per argument, without "
                                    "newlines (or use -f FILE)\n");
                    goto done;
                }
                lv_buf_puts(&text, args[i]);
                lv_buf_putc(&text, '\n');
            }
        }
        if (text.oom) {
            fprintf(stderr, "fakes3 ctl: out of memory\n");
            rc = 1;
            goto done;
        }
        rc = call(o, "faults add", "POST", "/_fakes3/faults", text.data ? text.data : "", text.len,
                  &body);
        if (!rc)
            rc = show(o, &body, render_added);
    } else if (strcmp(args[0], "clear") == 0 && n <= 2) {
        char path[64];
        if (n == 2) {
            if (!*args[1] || strspn(args[1], "0123456789") != strlen(args[1]) ||
                strlen(args[1]) > 19) {
                fprintf(stderr, "fakes3 ctl: faults clear %s: want a rule id (a number)\n",
                        args[1]);
                goto done;
            }
            snprintf(path, sizeof path, "/_fakes3/faults/%s", args[1]);
        } else {
            snprintf(path, sizeof path, "/_fakes3/faults");
        }
        rc = call(o, "faults clear", "DELETE", path, NULL, 0, &body);
        if (!rc)
            rc = show(o, &body, render_cleared);
    } else {
        fprintf(stderr,
                "fakes3 ctl: faults %s: want faults list, faults add RULE..., faults add -f FILE "
                "or faults clear [ID]\n",
                args[0]);
    }
done:
    lv_buf_free(&body);
    lv_buf_free(&text);
    return rc;
}

/* An option's value: "--name VALUE" or "--name=VALUE". NULL when argv[*i] is not --name. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int chaos_ctl_main(int argc, char **argv)
{
    ctl_opts o = {
        .endpoint = env_or("FAKES3_ENDPOINT", DEFAULT_ENDPOINT),
        .region = DEFAULT_REGION,
        .access_key = env_or("FAKES3_ACCESS_KEY", DEFAULT_ACCESS_KEY),
        .secret_key = env_or("FAKES3_SECRET_KEY", DEFAULT_SECRET_KEY),
    };
    char **args = lv_calloc((size_t)argc + 1, sizeof *args);
    int n = 0, rc = 2;
    if (!args) {
        fprintf(stderr, "fakes3 ctl: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (n > 0 && strcmp(args[0], "faults") == 0 && n >= 2 && strcmp(args[1], "add") == 0 &&
            a[0] != '-') {
            args[n++] = argv[i]; /* a rule: never an option */
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "--anonymous") == 0) {
            o.anonymous = 1;
        } else if ((v = opt_value(argc, argv, &i, "--endpoint", &missing))) {
            o.endpoint = v;
        } else if ((v = opt_value(argc, argv, &i, "--region", &missing))) {
            o.region = v;
        } else if ((v = opt_value(argc, argv, &i, "--access-key", &missing))) {
            o.access_key = v;
        } else if ((v = opt_value(argc, argv, &i, "--secret-key", &missing))) {
            o.secret_key = v;
        } else if (missing) {
            fprintf(stderr, "fakes3 ctl: %s needs a value\n", a);
            goto done;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "fakes3 ctl: unknown option %s (fakes3 ctl --help)\n", a);
            goto done;
        } else {
            args[n++] = argv[i];
        }
    }
    if (n == 0) {
        usage(stderr);
        goto done;
    }
    if (!*o.endpoint || !*o.region || (!o.anonymous && (!*o.access_key || !*o.secret_key))) {
        fprintf(stderr, "fakes3 ctl: --endpoint, --region and the keys must not be empty\n");
        goto done;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "fakes3 ctl: cannot start libcurl\n");
        rc = 1;
        goto done;
    }
    lv_buf body;
    lv_buf_init(&body);
    if (strcmp(args[0], "faults") == 0) {
        rc = cmd_faults(&o, n - 1, args + 1);
    } else if (strcmp(args[0], "health") == 0 && n == 1) {
        rc = call(&o, "health", "GET", "/_fakes3/health", NULL, 0, &body);
        if (!rc)
            rc = show(&o, &body, render_health);
    } else if (strcmp(args[0], "stats") == 0 && n == 1) {
        rc = call(&o, "stats", "GET", "/_fakes3/stats", NULL, 0, &body);
        if (!rc)
            rc = show(&o, &body, render_stats);
    } else {
        fprintf(stderr, "fakes3 ctl: unknown command \"%s\" (fakes3 ctl --help)\n", args[0]);
        rc = 2;
    }
    lv_buf_free(&body);
    curl_global_cleanup();
done:
    lv_free(args);
    return rc;
}
