/*
 * commands: the entry points of the ltxctl commands, one per command, called by ltxctl.c.
 *
 * Each takes the command's own argv (argv[0] is the command name, then its arguments), parses
 * its flags with cli_parse, and returns the process exit code (CLI_OK, CLI_FAIL, CLI_USAGE).
 * argv may be reordered in place.
 */
#ifndef LTXCTL_COMMANDS_H
#define LTXCTL_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "ltx.h"
#include "replica.h"

/* cmd_inspect.c: reading LTX files. */
int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_list(int argc, char **argv);

/* cmd_db.c: SQLite database files. */
int cmd_checksum(int argc, char **argv);
int cmd_encode_db(int argc, char **argv);
int cmd_apply(int argc, char **argv);

/* cmd_compact.c: merging LTX files. */
int cmd_compact(int argc, char **argv);

/* cmd_replica.c: commands over replicas (s3://bucket/prefix, file:///dir, or a directory that
 * holds ltx/), and what they share. */
int cmd_ls(int argc, char **argv);
int cmd_import(int argc, char **argv);
/* verify and compact: the replica form when an argument names a replica, else the file form. */
int cmd_verify_any(int argc, char **argv);
int cmd_compact_any(int argc, char **argv);
int cmd_replica_verify(int argc, char **argv);

/* cmd_restore.c */
int cmd_restore(int argc, char **argv);

/* cmd_replica_compact.c */
int cmd_replica_compact(int argc, char **argv);

/* ---- what the replica commands share (cmd_replica.c) ---- */

#define RCMD_DEFAULT_TIMEOUT "30s" /* the S3 client's retry_total_ms default */

/* 1 when arg names a replica: a URL with a scheme ("s3://", "file://") or a directory holding
 * an ltx/ folder. */
int rcmd_is_replica(const char *arg);
/*
 * Opens the replica url for command cmd with the S3 settings of the environment (AWS_*), the
 * URL's query, and timeout (a duration, NULL: RCMD_DEFAULT_TIMEOUT) as the bound on retries.
 * Returns CLI_OK and *out (close with replica_close), or reports the problem and returns
 * CLI_USAGE (a bad --timeout) or CLI_FAIL (a bad URL).
 */
int rcmd_open(const char *cmd, const char *url, const char *timeout, replica **out);
/*
 * A snapshot of the database on fd covering TXIDs 1..max_txid, stamped ts, appended to out
 * (ltx_encode_db writes TXID 1..1 only). *h and *t receive its header and trailer. On failure
 * out holds a partial file: the caller discards it.
 */
lv_err rcmd_encode_snapshot(int fd, uint64_t max_txid, int64_t ts, lv_buf *out, ltx_header *h,
                            ltx_trailer *t, char *err);
/* An ltx_write_fn appending to an lv_buf (ctx). */
lv_err rcmd_buf_write(void *ctx, const void *p, size_t n, char *err);
/* "prefix/0000/0000000000000001-0000000000000001.ltx" of f, into a buffer of cap bytes. */
void rcmd_key(replica *r, const replica_file *f, char *out, size_t cap);

#endif
