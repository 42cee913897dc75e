/*
 * commands: the entry points of the ltxctl commands, one per command, called by ltxctl.c.
 *
 * Each takes the command's own argv (argv[0] is the command name, then its arguments), parses
 * its flags with cli_parse, and returns the process exit code (CLI_OK, CLI_FAIL, CLI_USAGE).
 * argv may be reordered in place.
 */
#ifndef LTXCTL_COMMANDS_H
#define LTXCTL_COMMANDS_H

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

#endif
