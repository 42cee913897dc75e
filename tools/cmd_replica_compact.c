/*
 * cmd_replica_compact: `ltxctl compact URL`, one pass of what Litestream's Store does to a
 * replica over time: compactions L0->L1->L2->L3, a snapshot, retention. The pass itself is
 * lib/compact.c (compact_pass), which the write-mode VFS also runs; this is its command line:
 * flags to compact_options, each step's line to stdout, an error to stderr (exit 1).
 *
 * --dry-run prints the same lines without writing or deleting (and without downloading). --now
 * pretends the clock reads T. A compaction another compactor wrote first ends the command with
 * an error, as it always did (compact_options.stop_on_conflict).
 *
 * Threads: single-threaded (restore.c's threads live inside compact_pass's snapshot step).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "compact.h"

static const char compact_usage[] =
    "Usage: ltxctl compact URL [--level N] [--snapshot] [--retention DUR] [--l0-retention DUR]\n"
    "                          [--l1-interval DUR] [--l2-interval DUR] [--l3-interval DUR]\n"
    "                          [--snapshot-interval DUR] [--now T] [--dry-run] [--timeout DUR]\n"
    "\n"
    "One pass of Litestream's compaction over a replica: L0->L1, L1->L2, L2->L3 (each merges\n"
    "the files of the level below that are newer than the level's newest TXID, when the level\n"
    "is due), then a snapshot at level 9 when the newest is older than the snapshot interval,\n"
    "then retention. Prints a line per step.\n"
    "\n"
    "Flags:\n"
    "  --level N               only compact into level N (1..3), due or not; no snapshot,\n"
    "                          no retention\n"
    "  --snapshot              write a snapshot whatever its interval\n"
    "  --retention DUR         delete snapshots older than DUR, keeping the newest, and\n"
    "                          compactions below them (default 24h; 0: keep everything)\n"
    "  --l0-retention DUR      delete L0 files covered by L1 once older than DUR (default 5m;\n"
    "                          0: keep them)\n"
    "  --l1-interval DUR       how often L1 is due (default 30s; 0: always)\n"
    "  --l2-interval DUR       how often L2 is due (default 5m)\n"
    "  --l3-interval DUR       how often L3 is due (default 1h)\n"
    "  --snapshot-interval DUR how often a snapshot is due (default 24h)\n"
    "  --now T                 the time to decide with (RFC 3339 or ms since the epoch;\n"
    "                          default: the clock)\n"
    "  --dry-run               say what would be done, do nothing\n"
    "  --timeout DUR           give up on a failing store after DUR of retries "
    "(default " RCMD_DEFAULT_TIMEOUT ")\n"
    "  -h, --help              show this help\n";

/* Prints each line of the pass as it comes. */
static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
}

static int parse_dur_flag(const char *cmd, const char *name, const char *arg, int64_t *ms)
{
    if (!arg)
        return CLI_OK;
    if (cli_parse_duration(arg, ms) != 0)
        return cli_usage_error(cmd, "bad --%s \"%s\": want a duration such as 30s, 5m or 24h", name,
                               arg);
    return CLI_OK;
}

int cmd_replica_compact(int argc, char **argv)
{
    static const char cmd[] = "compact";
    const char *level_arg = NULL, *ret_arg = NULL, *l0_arg = NULL, *i1 = NULL, *i2 = NULL,
               *i3 = NULL, *snap_arg = NULL, *now_arg = NULL, *timeout = NULL;
    int snapshot = 0, dry_run = 0, npos, level = 0;
    const cli_flag flags[] = {{"level", NULL, CLI_FLAG_STRING, NULL, &level_arg},
                              {"snapshot", NULL, CLI_FLAG_BOOL, &snapshot, NULL},
                              {"retention", NULL, CLI_FLAG_STRING, NULL, &ret_arg},
                              {"l0-retention", NULL, CLI_FLAG_STRING, NULL, &l0_arg},
                              {"l1-interval", NULL, CLI_FLAG_STRING, NULL, &i1},
                              {"l2-interval", NULL, CLI_FLAG_STRING, NULL, &i2},
                              {"l3-interval", NULL, CLI_FLAG_STRING, NULL, &i3},
                              {"snapshot-interval", NULL, CLI_FLAG_STRING, NULL, &snap_arg},
                              {"now", NULL, CLI_FLAG_STRING, NULL, &now_arg},
                              {"dry-run", NULL, CLI_FLAG_BOOL, &dry_run, NULL},
                              {"timeout", NULL, CLI_FLAG_STRING, NULL, &timeout},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "";
    replica *r = NULL;
    compact_options cfg;
    compact_options_default(&cfg);

    int rc = cli_parse(cmd, compact_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (npos != 1)
        return cli_usage_error(cmd, npos == 0 ? "missing URL" : "too many arguments");
    if (level_arg) {
        char *end;
        long v = strtol(level_arg, &end, 10);
        if (*end || v < 1 || v > 3)
            return cli_usage_error(cmd, "bad --level \"%s\": want 1..3", level_arg);
        level = (int)v;
    }
    if ((rc = parse_dur_flag(cmd, "retention", ret_arg, &cfg.retention_ms)) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l0-retention", l0_arg, &cfg.l0_retention_ms)) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l1-interval", i1, &cfg.interval_ms[1])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l2-interval", i2, &cfg.interval_ms[2])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "l3-interval", i3, &cfg.interval_ms[3])) != CLI_OK ||
        (rc = parse_dur_flag(cmd, "snapshot-interval", snap_arg, &cfg.snapshot_interval_ms)) !=
            CLI_OK)
        return rc;
    cfg.only_level = level;
    cfg.force_snapshot = snapshot;
    cfg.dry_run = dry_run;
    cfg.stop_on_conflict = 1;
    cfg.tmp_dir = getenv("TMPDIR");
    cfg.now_ms = cli_now_ms();
    if (now_arg && cli_parse_time(now_arg, &cfg.now_ms) != 0)
        return cli_usage_error(cmd, "bad --now \"%s\": want RFC 3339 or ms since the epoch",
                               now_arg);
    if ((rc = rcmd_open(cmd, argv[0], timeout, &r)) != CLI_OK)
        return rc;
    rc = CLI_OK;
    if (compact_pass(r, &cfg, print_line, NULL, NULL, err) != LV_OK) {
        cli_error(cmd, NULL, "%s", err);
        rc = CLI_FAIL;
    }
    replica_close(r);
    return cli_finish(cmd, rc);
}
