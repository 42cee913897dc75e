/*
 * ltxctl: the command-line tool over the LTX codec (lib/ltx.h). This file is the entry point:
 * it picks the command, prints the overall usage and the version. The commands live in
 * cmd_inspect.c (dump, verify, list), cmd_db.c (checksum, encode-db, apply) and cmd_compact.c;
 * over replicas (URLs), cmd_replica.c (ls, import, verify URL), cmd_restore.c and
 * cmd_replica_compact.c (compact URL). verify and compact pick their form by their arguments.
 *
 * The command names, flags and output formats follow the reference Go tool `ltx` (superfly/ltx)
 * wherever it has the same command, so that its users feel at home. Exit codes: 0 success,
 * 1 the operation failed, 2 a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

#ifndef LTXCTL_VERSION
#define LTXCTL_VERSION "dev"
#endif

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"apply", "apply LTX files, in order, to a database file", cmd_apply},
    {"checksum", "print the LTX database checksum of a SQLite database file", cmd_checksum},
    {"compact", "merge contiguous LTX files into one, or compact a replica", cmd_compact_any},
    {"dump", "print the header, frames, page index and trailer of an LTX file", cmd_dump},
    {"encode-db", "write a snapshot LTX file of a SQLite database file", cmd_encode_db},
    {"import", "make a SQLite database the snapshot of a replica", cmd_import},
    {"list", "print the header and trailer fields of LTX files as a table", cmd_list},
    {"ls", "list the LTX files of a replica, level by level", cmd_ls},
    {"restore", "rebuild a database from a replica (latest, a TXID or a time)", cmd_restore},
    {"verify", "check LTX files, or every file and the chain of a replica", cmd_verify_any},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fputs("ltxctl is a command-line tool for LTX files, the format Litestream replicates SQLite\n"
          "databases in, and for the SQLite databases they describe.\n"
          "\n"
          "Usage:\n"
          "\n"
          "  ltxctl <command> [arguments]\n"
          "  ltxctl --help | --version\n"
          "\n"
          "The commands are:\n"
          "\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s  %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s  %s\n", "help", "print this help, or a command's: ltxctl help <command>");
    fprintf(f, "  %-10s  %s\n", "version", "print the version");
    fputs("\n"
          "Run 'ltxctl <command> --help' for the flags of a command.\n"
          "Exit status: 0 success, 1 the operation failed, 2 a usage error.\n",
          f);
}

static int version(void)
{
    printf("ltxctl %s (LTX format 3)\n", LTXCTL_VERSION);
    return cli_finish("version", CLI_OK);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];

    if (strcmp(name, "help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "-help") == 0 ||
        strcmp(name, "--help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0 && argv[2][0] != '-') {
            const command *c = find_command(argv[2]);
            if (!c) {
                fprintf(stderr,
                        "ltxctl help: unknown command \"%s\"\n"
                        "Run 'ltxctl --help' for the list of commands.\n",
                        argv[2]);
                return CLI_USAGE;
            }
            static char help_flag[] = "--help";
            char *help_argv[] = {argv[2], help_flag, NULL};
            return c->run(2, help_argv);
        }
        usage(stdout);
        return cli_finish("help", CLI_OK);
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0 ||
        strcmp(name, "-version") == 0)
        return version();

    const command *c = find_command(name);
    if (!c) {
        if (name[0] == '-')
            fprintf(stderr, "ltxctl: unknown flag %s\n", name);
        else
            fprintf(stderr, "ltxctl: unknown command \"%s\"\n", name);
        fputs("Run 'ltxctl --help' for the list of commands.\n", stderr);
        return CLI_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
