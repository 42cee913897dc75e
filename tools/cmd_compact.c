/*
 * cmd_compact: `ltxctl compact`, which merges contiguous LTX files into one with ltx_compact.
 *
 * The inputs are streamed (one page of each in memory) and every one is verified completely on
 * the way; the output appears whole or not at all (cli_out: temp file, fsync, rename).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "commands.h"
#include "ltx.h"

static const char compact_usage[] =
    "Usage: ltxctl compact -o OUT [-v] FILE...\n"
    "\n"
    "Merges LTX files that follow each other (each one's min TXID is the previous one's max\n"
    "TXID + 1, one page size), given oldest first, into one file covering all their TXIDs:\n"
    "each page from the newest file that has it, the commit and timestamp of the last file,\n"
    "the pre-apply checksum of the first and the post-apply checksum of the last. Every input\n"
    "is verified completely. OUT appears complete or not at all. Prints nothing on success\n"
    "unless -v.\n"
    "\n"
    "Flags:\n"
    "  -o OUT       the LTX file to write (required)\n"
    "  -v           say what was written\n"
    "  -h, --help   show this help\n";

int cmd_compact(int argc, char **argv)
{
    static const char cmd[] = "compact";
    const char *out_path = NULL;
    int verbose = 0, npos;
    const cli_flag flags[] = {{"o", NULL, CLI_FLAG_STRING, NULL, &out_path},
                              {"v", NULL, CLI_FLAG_BOOL, &verbose, NULL},
                              CLI_FLAG_END};
    char err[LV_ERRLEN] = "";
    const char *err_file = NULL;
    cli_out out = {-1, NULL, NULL, 0};
    ltx_source *srcs = NULL;
    int *fds = NULL;
    ltx_header h;
    ltx_trailer t;

    int rc = cli_parse(cmd, compact_usage, argc, argv, flags, &npos);
    if (rc != CLI_PARSED)
        return rc == CLI_HELP ? cli_finish(cmd, CLI_OK) : rc;
    if (!out_path || !*out_path)
        return cli_usage_error(cmd, "missing -o OUT");
    if (npos == 0)
        return cli_usage_error(cmd, "missing FILE");
    size_t n = (size_t)npos;

    rc = CLI_FAIL;
    fds = lv_calloc(n, sizeof *fds);
    srcs = lv_calloc(n, sizeof *srcs);
    if (!fds || !srcs) {
        lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        err_file = argv[i];
        /* Renaming the output over an input would destroy the input: refuse. */
        if (cli_same_file(argv[i], out_path)) {
            lv_fail(err, LV_EINVAL, "-o names this input");
            goto done;
        }
        fds[i] = cli_open(argv[i], O_RDONLY, err);
        if (fds[i] < 0)
            goto done;
        srcs[i].read = ltx_fd_read;
        srcs[i].ctx = &fds[i];
        srcs[i].name = argv[i];
    }

    err_file = out_path;
    if (cli_out_open(&out, out_path, err) != LV_OK)
        goto done;
    if (ltx_compact(srcs, n, cli_out_write, &out, &h, &t, err) != LV_OK) {
        /* A read error's message names the input at fault (ltx_source.name). */
        err_file = out.write_failed ? out_path : NULL;
        goto done;
    }
    err_file = out_path;
    if (cli_out_commit(&out, err) != LV_OK)
        goto done;
    if (verbose)
        printf("%s: TXID %016llx-%016llx from %zu files, commit %u, pre-apply %016llx, "
               "post-apply %016llx\n",
               out_path, (unsigned long long)h.min_txid, (unsigned long long)h.max_txid, n,
               h.commit, (unsigned long long)h.pre_apply_checksum,
               (unsigned long long)t.post_apply_checksum);
    rc = CLI_OK;

done:
    if (rc != CLI_OK)
        cli_error(cmd, err_file, "%s", err);
    cli_out_abort(&out);
    for (size_t i = 0; fds && i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    lv_free(fds);
    lv_free(srcs);
    return cli_finish(cmd, rc);
}
