/*
 * memfile: an sqlite3_file held in memory, for write mode's rollback journal. The write buffer
 * (vfs/wbuf) already makes every commit atomic across a crash (a transaction without its commit
 * record is dropped at recovery), so SQLite's journal only has to serve a ROLLBACK inside the
 * process: it never needs to outlive the connection's handle, and a journal on disk next to a
 * database that is only a name would be a stray file (the default VFS cannot even make one: it
 * takes the journal's permissions from a database file that does not exist).
 *
 * The file grows as SQLite writes, reads past the end are short reads (zeros), xSync does nothing,
 * xClose frees it. Locks are not needed (a journal belongs to one connection).
 *
 * Threads: one connection's, as SQLite serialises calls on it. Memory: lv_malloc.
 */
#ifndef VFS_MEMFILE_H
#define VFS_MEMFILE_H

#include <sqlite3.h>
#include <stddef.h>

typedef struct memfile {
    sqlite3_file base; /* first: SQLite sees this */
    unsigned char *data;
    size_t size, cap;
} memfile;

/* Opens f (at least sizeof(memfile) bytes) as an empty memory file. Never fails. */
void memfile_open(sqlite3_file *f);

#endif
