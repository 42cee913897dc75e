/*
 * ctl: `fakes3 ctl`, the command-line client of a running fakes3's admin API: its fault rules
 * (/_fakes3/faults: list with hit counts, add, clear one or all), health and stats. Scripts and
 * humans use it: human output by default, the server's JSON as it is with --json.
 *
 *   fakes3 ctl [--endpoint URL] [--region R] [--access-key K --secret-key S | --anonymous]
 *              [--json] COMMAND
 *     faults list | faults add RULE... | faults add -f FILE | faults clear [ID] | health | stats
 *
 * Requests are signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4, "aws:amz:<region>:s3") with the
 * key pair of --access-key/--secret-key, else $FAKES3_ACCESS_KEY/$FAKES3_SECRET_KEY, else fakes3's
 * defaults. The endpoint is --endpoint, else $FAKES3_ENDPOINT, else http://127.0.0.1:9000.
 *
 * Exit status: 0 done; 1 the server refused (the S3 error's code and message are printed) or
 * could not be reached; 2 a bad command line.
 *
 * Threads: one call at a time per process (it uses libcurl's global init). Memory: lv_malloc.
 */
#ifndef CHAOS_CTL_H
#define CHAOS_CTL_H

/* Runs `fakes3 ctl ...`; argv[0] is "ctl". Returns the exit status. Prints to stdout/stderr. */
int chaos_ctl_main(int argc, char **argv);

#endif
