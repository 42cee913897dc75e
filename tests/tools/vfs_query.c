/*
 * vfs_query: a C program that loads the litestream VFS extension the way an application does
 * (sqlite3_load_extension on one connection, then sqlite3_open_v2 with vfs=litestream) and runs
 * SQL on the database, printing each row as values joined by '|'. For the command-line tests.
 *
 *   vfs_query EXTENSION URI SQL...        exit 0, or 1 with SQLite's message on stderr
 */
#include <sqlite3.h>
#include <stdio.h>

static int print_row(void *ctx, int n, char **values, char **names)
{
    (void)ctx, (void)names;
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? "|" : "", values[i] ? values[i] : "");
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: vfs_query EXTENSION URI SQL...\n");
        return 2;
    }
    sqlite3 *loader = NULL, *db = NULL;
    char *err = NULL;
    int rc = 1;
    if (sqlite3_open(":memory:", &loader) != SQLITE_OK ||
        sqlite3_enable_load_extension(loader, 1) != SQLITE_OK ||
        sqlite3_load_extension(loader, argv[1], NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "vfs_query: load %s: %s\n", argv[1], err ? err : sqlite3_errmsg(loader));
        goto done;
    }
    if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        fprintf(stderr, "vfs_query: open %s: %s\n", argv[2], db ? sqlite3_errmsg(db) : "?");
        goto done;
    }
    for (int i = 3; i < argc; i++) {
        if (sqlite3_exec(db, argv[i], print_row, NULL, &err) != SQLITE_OK) {
            fprintf(stderr, "vfs_query: %s: %s\n", argv[i], err ? err : sqlite3_errmsg(db));
            goto done;
        }
    }
    rc = 0;
done:
    sqlite3_free(err);
    sqlite3_close(db);
    sqlite3_close(loader);
    return rc;
}
