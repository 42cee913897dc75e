/*
 * cli: what every ltxctl command shares: flag parsing, error and usage messages, the output file
 * that appears whole or not at all (temp file, fsync, rename), full preads, and the hex and time
 * formats the reference `ltx` tool prints.
 *
 * Conventions every command keeps (see ltxctl.c):
 *   exit 0 (CLI_OK)    success;
 *   exit 1 (CLI_FAIL)  the operation failed: a bad file, a mismatch, an I/O error;
 *   exit 2 (CLI_USAGE) the command line was wrong; one line says what, one says to use --help.
 * Errors go to stderr as "ltxctl <cmd>: <file>: <detail>".
 *
 * Threads: ltxctl is single-threaded; the output-file signal cleanup keeps process-wide state.
 */
#ifndef LTXCTL_CLI_H
#define LTXCTL_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---- messages ----------------------------------------------------------------------------------
 */

/* "ltxctl <cmd>: <file>: <detail>\n" to stderr; file may be NULL to leave that part out. */
void cli_error(const char *cmd, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * "ltxctl <cmd>: <what was wrong>\n" and "Run 'ltxctl <cmd> --help' for usage.\n" to stderr.
 * Returns CLI_USAGE so that a command can `return cli_usage_error(...)`.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Flushes stdout and reports a failed write (a full disk, a closed pipe) as an error of cmd.
 * Returns rc unchanged when all output got out, CLI_FAIL otherwise. Every command ends with it.
 */
int cli_finish(const char *cmd, int rc);

/* ---- flags -------------------------------------------------------------------------------------
 */

typedef enum cli_flag_kind {
    CLI_FLAG_BOOL,  /* -name: sets *on to 1 */
    CLI_FLAG_STRING /* -name VALUE or -name=VALUE: sets *value (a pointer into argv) */
} cli_flag_kind;

typedef struct cli_flag {
    const char *name;  /* without dashes; NULL ends a table */
    const char *alias; /* a second name, or NULL */
    cli_flag_kind kind;
    int *on;            /* CLI_FLAG_BOOL */
    const char **value; /* CLI_FLAG_STRING; a later occurrence overrides an earlier one */
} cli_flag;

/* The entry that ends a flag table. */
#define CLI_FLAG_END                                                                               \
    {                                                                                              \
        NULL, NULL, CLI_FLAG_BOOL, NULL, NULL                                                      \
    }

/* cli_parse results besides CLI_USAGE. */
enum { CLI_PARSED = 0, CLI_HELP = 3 };

/*
 * Parses the arguments of command `cmd` (argv[0] is the command name; argv[1..argc) its
 * arguments) the way Go's flag package spells them, so the reference tool's habits work: every
 * flag may be written with one dash or two, values as "-o OUT" or "-o=OUT". Flags and positional
 * arguments may be mixed; "--" ends the flags; a lone "-" is positional. -h, -help and --help
 * anywhere ask for help.
 *
 * The positional arguments are moved to argv[0..*npos) (argv is reordered in place, no
 * allocation). Returns CLI_PARSED, CLI_HELP (usage has been printed to stdout; exit 0), or
 * CLI_USAGE (an unknown flag or a missing value, already reported on stderr).
 */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_flag *flags,
              int *npos);

/* ---- output files ------------------------------------------------------------------------------
 */

/*
 * An output file that appears complete or not at all. Bytes go to "<path>.tmp.XXXXXX" in the
 * same directory; cli_out_commit fsyncs it, renames it over path and fsyncs the directory;
 * cli_out_abort (or a SIGINT, SIGTERM, SIGHUP or SIGPIPE meanwhile) removes it. One at a time
 * per process.
 */
typedef struct cli_out {
    int fd; /* -1 when not open */
    char *path;
    char *tmp;
    int write_failed; /* set by cli_out_write: tells a write error from a read error */
} cli_out;

/* Creates the temp file. On failure nothing exists on disk and err says why. */
lv_err cli_out_open(cli_out *o, const char *path, char *err);
/* An ltx_write_fn over the temp file; ctx is the cli_out. Sets write_failed on failure. */
lv_err cli_out_write(void *ctx, const void *buf, size_t n, char *err);
/* Makes the file visible under its name. On failure the temp file is removed. Frees o either way.
 */
lv_err cli_out_commit(cli_out *o, char *err);
/* Closes and removes the temp file, frees o; harmless on a cli_out that is not open. */
void cli_out_abort(cli_out *o);

/* 1 when paths a and b name the same existing file (same device and inode). */
int cli_same_file(const char *a, const char *b);

/*
 * fsyncs the folder that holds path, so that a file just created or renamed there survives a
 * crash. Best effort: some file systems cannot sync a folder, and the data itself is synced.
 */
void cli_sync_parent_dir(const char *path);

/* ---- reading -----------------------------------------------------------------------------------
 */

/* Reads exactly n bytes at off, or fails: LV_EIO for an error, LV_ECORRUPT for a short file. */
lv_err cli_pread_full(int fd, void *buf, size_t n, uint64_t off, char *err);

/* open(2) with a message in err ("open: No such file or directory") on failure; returns the fd
 * or -1. */
int cli_open(const char *path, int flags, char *err);

/* ---- formats -----------------------------------------------------------------------------------
 */

enum { CLI_TIME_LEN = 48 };

/*
 * Formats milliseconds since the epoch as RFC 3339 in UTC, as Go's time.Format does:
 * with_ms = 0 is time.RFC3339 ("2025-01-01T00:01:00Z"), with_ms = 1 is time.RFC3339Nano for a
 * millisecond clock ("2026-11-21T04:57:54.374Z", trailing zeros of the fraction dropped).
 * Any int64 formats without overflow. out holds CLI_TIME_LEN bytes.
 */
void cli_format_time(int64_t ms, int with_ms, char out[CLI_TIME_LEN]);
/*
 * Parses a timestamp given on the command line: an integer count of milliseconds since the
 * epoch, or what lib/timeexpr.h accepts: RFC 3339 ("2025-01-01T00:00:00Z",
 * "2025-01-01T02:00:00.5+02:00"; fractions beyond milliseconds truncated), a date, now,
 * yesterday, "5 minutes ago". Returns 0 and sets *ms, or -1 for anything else.
 */
int cli_parse_time(const char *s, int64_t *ms);
/* The wall clock in milliseconds since the epoch: the one place ltxctl reads the clock. */
int64_t cli_now_ms(void);
/*
 * Parses a duration as Go's time.ParseDuration spells the common ones: a sequence of decimal
 * numbers, each with a unit ms, s, m, h (and d for days): "30s", "1.5s", "250ms", "1h30m", "24h".
 * A bare "0" is zero. Returns 0 and sets *ms (rounded down to the millisecond), or -1.
 */
int cli_parse_duration(const char *s, int64_t *ms);
/* A monotonic clock in milliseconds, for elapsed times and rates. */
int64_t cli_mono_ms(void);

#endif
