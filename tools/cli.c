/*
 * cli: the pieces every ltxctl command shares (see cli.h): flag parsing in the style of Go's flag
 * package, messages, the all-or-nothing output file, full preads, RFC 3339 time.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "ltx.h"
#include "timeexpr.h"

/* ---- messages ----------------------------------------------------------------------------------
 */

void cli_error(const char *cmd, const char *file, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* keep stdout and stderr in order when both go to one terminal or file */
    fprintf(stderr, "ltxctl %s: ", cmd);
    if (file)
        fprintf(stderr, "%s: ", file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "ltxctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'ltxctl %s --help' for usage.\n", cmd);
    return CLI_USAGE;
}

int cli_finish(const char *cmd, int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(cmd, NULL, "writing to standard output: %s", strerror(errno));
        return CLI_FAIL;
    }
    return rc;
}

/* ---- flags -------------------------------------------------------------------------------------
 */

static int name_is(const char *name, size_t len, const char *want)
{
    return want && strlen(want) == len && memcmp(name, want, len) == 0;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_flag *flags,
              int *npos)
{
    int n = 0, only_positional = 0;

    /* Positional arguments move down to argv[n]; n <= i always, so nothing unread is lost. */
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            argv[n++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        const char *name = a[1] == '-' ? a + 2 : a + 1;
        if (*name == '\0' || *name == '-' || *name == '=')
            return cli_usage_error(cmd, "bad flag syntax: %s", a);
        size_t len = strcspn(name, "=");
        const char *eq = name[len] == '=' ? name + len + 1 : NULL;

        if (name_is(name, len, "h") || name_is(name, len, "help")) {
            fputs(usage, stdout);
            return CLI_HELP;
        }
        const cli_flag *f = flags;
        while (f && f->name && !name_is(name, len, f->name) && !name_is(name, len, f->alias))
            f++;
        if (!f || !f->name)
            return cli_usage_error(cmd, "unknown flag: -%.*s", (int)len, name);

        if (f->kind == CLI_FLAG_BOOL) {
            if (eq)
                return cli_usage_error(cmd, "flag -%s takes no value", f->name);
            *f->on = 1;
        } else if (eq) {
            *f->value = eq;
        } else if (i + 1 < argc) {
            *f->value = argv[++i];
        } else {
            return cli_usage_error(cmd, "flag -%s needs a value", f->name);
        }
    }
    *npos = n;
    return CLI_PARSED;
}

/* ---- output files ------------------------------------------------------------------------------
 */

/*
 * A signal that ends the process while an output is open removes its temp file first. The
 * handler touches only these two, set before arming and disarmed before the path is freed.
 */
static volatile sig_atomic_t out_armed;
static const char *volatile out_tmp_path;

static void out_on_signal(int sig)
{
    if (out_armed)
        unlink(out_tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void out_install_handlers(void)
{
    static int installed;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    if (installed)
        return;
    installed = 1;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        /* A signal the caller chose to ignore (nohup) stays ignored. */
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = out_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = lv_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void out_release(cli_out *o)
{
    out_armed = 0;
    out_tmp_path = NULL;
    lv_free(o->path);
    lv_free(o->tmp);
    o->path = o->tmp = NULL;
    o->fd = -1;
}

lv_err cli_out_open(cli_out *o, const char *path, char *err)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t n = strlen(path);
    o->fd = -1;
    o->write_failed = 0;
    o->path = str_dup(path);
    o->tmp = lv_malloc(n + sizeof suffix);
    if (!o->path || !o->tmp) {
        out_release(o);
        return lv_fail(err, LV_ENOMEM, "out of memory");
    }
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, suffix, sizeof suffix);

    out_install_handlers();
    o->fd = mkstemp(o->tmp);
    if (o->fd < 0) {
        int e = errno;
        out_release(o);
        return lv_fail(err, LV_EIO, "create temporary file: %s", strerror(e));
    }
    out_tmp_path = o->tmp;
    out_armed = 1;

    /* mkstemp makes the file 0600; give it the mode an ordinary create would have. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(o->fd, 0666 & ~mask) != 0) {
        int e = errno;
        cli_out_abort(o);
        return lv_fail(err, LV_EIO, "chmod temporary file: %s", strerror(e));
    }
    return LV_OK;
}

void cli_sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = str_dup(".");
    else if (slash == path)
        dir = str_dup("/");
    else {
        dir = lv_malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    lv_free(dir);
}

lv_err cli_out_write(void *ctx, const void *buf, size_t n, char *err)
{
    cli_out *o = ctx;
    lv_err rc = ltx_fd_write(&o->fd, buf, n, err);
    if (rc != LV_OK)
        o->write_failed = 1;
    return rc;
}

lv_err cli_out_commit(cli_out *o, char *err)
{
    lv_err rc = LV_OK;
    int fd = o->fd;
    o->fd = -1;

    /* The data is durable before the name points at it: a crash before the rename leaves only a
     * temp file, never a half-written output. */
    if (fsync(fd) != 0) {
        rc = lv_fail(err, LV_EIO, "fsync %s: %s", o->tmp, strerror(errno));
        close(fd);
        goto done;
    }
    if (close(fd) != 0) {
        rc = lv_fail(err, LV_EIO, "close %s: %s", o->tmp, strerror(errno));
        goto done;
    }
    if (rename(o->tmp, o->path) != 0) {
        rc = lv_fail(err, LV_EIO, "rename %s to %s: %s", o->tmp, o->path, strerror(errno));
        goto done;
    }
    out_armed = 0;
    cli_sync_parent_dir(o->path);

done:
    if (rc != LV_OK && out_armed)
        unlink(o->tmp);
    out_release(o);
    return rc;
}

void cli_out_abort(cli_out *o)
{
    if (o->fd >= 0)
        close(o->fd);
    if (o->tmp && out_armed)
        unlink(o->tmp);
    out_release(o);
}

int cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ---- reading -----------------------------------------------------------------------------------
 */

lv_err cli_pread_full(int fd, void *buf, size_t n, uint64_t off, char *err)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, p + done, n - done, (off_t)(off + done));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return lv_fail(err, LV_EIO, "read %zu bytes at offset %llu: %s", n,
                           (unsigned long long)off, strerror(errno));
        }
        if (got == 0)
            return lv_fail(err, LV_ECORRUPT,
                           "file ends at offset %llu, reading %zu bytes at offset %llu",
                           (unsigned long long)(off + done), n, (unsigned long long)off);
        done += (size_t)got;
    }
    return LV_OK;
}

int cli_open(const char *path, int flags, char *err)
{
    int fd = open(path, flags | O_CLOEXEC, 0666);
    if (fd < 0)
        lv_fail(err, LV_EIO, "open: %s", strerror(errno));
    return fd;
}

/* ---- time --------------------------------------------------------------------------------------
 */

/* Howard Hinnant's civil calendar algorithms: exact for every int64 day count used here. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void cli_format_time(int64_t ms, int with_ms, char out[CLI_TIME_LEN])
{
    /* Floor division: -1 ms is 1969-12-31T23:59:59.999Z. */
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);

    char fs[8] = "";
    if (with_ms && frac != 0) {
        snprintf(fs, sizeof fs, ".%03d", (int)frac);
        size_t n = strlen(fs);
        while (fs[n - 1] == '0')
            fs[--n] = '\0';
    }
    snprintf(out, CLI_TIME_LEN, "%04lld-%02u-%02uT%02d:%02d:%02d%sZ", (long long)y, mo, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fs);
}

int cli_parse_time(const char *s, int64_t *ms)
{
    const char *p = s + (*s == '-');
    if (*p >= '0' && *p <= '9' && p[strspn(p, "0123456789")] == '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0')
            return -1;
        *ms = v;
        return 0;
    }
    return lv_time_parse(s, cli_now_ms(), ms, NULL) == LV_OK ? 0 : -1;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_parse_duration(const char *s, int64_t *ms)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    double total = 0;
    const char *p = s;
    if (*p == '\0')
        return -1;
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno != 0 || end == p || v < 0)
            return -1;
        p = end;
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else {
            return -1;
        }
        total += v * unit;
    }
    if (total > 9.2e18)
        return -1;
    *ms = (int64_t)total;
    return 0;
}

int64_t cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
