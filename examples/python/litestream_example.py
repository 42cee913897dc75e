#!/usr/bin/python3
"""The litestream VFS from Python's standard sqlite3 module.

    python3 litestream_example.py writer AUTHOR   write mode: add notes, ship them, print TXIDs
    python3 litestream_example.py reader          read mode: the TXID, the notes, and each
                                                  writer's mark revisited with time travel

The replica is LITESTREAM_REPLICA_URL (s3://bucket/prefix?endpoint=... or file:///dir), with the
AWS_* variables for credentials; the extension is LTXVFS_EXTENSION (default "litestream-vfs",
found by the dynamic loader; give a path such as ./build/litestream-vfs otherwise).

The same tables and the same output as the C, Node and Go examples (see examples/c): the writer
adds 3 notes, litestream_sync(), records a mark (the time right after), adds 2 notes and the mark,
and syncs again; the reader moves its view to each mark with PRAGMA litestream_time.

Needs a Python whose sqlite3 module can load extensions: Debian's /usr/bin/python3 can; pyenv's
default build cannot (see docs/troubleshooting.md).
"""
import os
import sqlite3
import sys
import time

DB_WRITE = "file:app.db?vfs=litestream&write=1"  # the name is a label
DB_READ = "file:app.db?vfs=litestream"


def load_extension():
    """Registers the VFS "litestream" for the whole process (the loading connection may go)."""
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(os.environ.get("LTXVFS_EXTENSION") or "litestream-vfs")
    loader.close()


def add_notes(db, author, first, n, at=None):
    with db:  # one transaction: BEGIN ... COMMIT (local; durable at the next sync)
        db.executemany("INSERT INTO notes(author, body) VALUES (?, ?)",
                       [(author, f"note {i} from {author}") for i in range(first, first + n)])
        if at is not None:  # the count at the mark: before this batch
            db.execute("INSERT INTO marks(author, at, notes) "
                       "VALUES (?, ?, (SELECT count(*) FROM notes) - ?)", (author, at, n))


def writer(author):
    # isolation_level=None: we say where transactions are (add_notes); timeout: SQLite's busy
    # timeout between connections of this process. Another process holding the replica's lease
    # makes connect fail with "database is locked".
    db = sqlite3.connect(DB_WRITE, uri=True, isolation_level=None, timeout=5.0)
    try:
        db.executescript("""
            CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, author TEXT NOT NULL,
                                             body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS marks(author TEXT NOT NULL, at TEXT NOT NULL,
                                             notes INTEGER NOT NULL);
        """)
        add_notes(db, author, 1, 3)
        txid = db.execute("SELECT litestream_sync()").fetchone()[0]  # waits until in the bucket
        print(f"{author}: 3 notes durable at TXID {txid}", flush=True)
        at = db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')").fetchone()[0]
        time.sleep(0.02)  # the next file's timestamp (milliseconds) is strictly after the mark
        add_notes(db, author, 4, 2, at)
        txid = db.execute("SELECT litestream_sync()").fetchone()[0]
        print(f"{author}: 5 notes durable at TXID {txid}", flush=True)
    finally:
        db.close()  # a clean close ships anything left and gives the lease back


def reader():
    db = sqlite3.connect(DB_READ, uri=True, isolation_level=None)
    try:
        print("txid " + db.execute("PRAGMA litestream_txid").fetchone()[0])
        for row in db.execute("SELECT id, author, body FROM notes ORDER BY id"):
            print("|".join(str(v) for v in row))
        marks = db.execute("SELECT author, at, notes FROM marks ORDER BY rowid").fetchall()
        for author, at, notes in marks:
            print(f"mark {author} {at}: {notes} notes")
        for _, at, _ in marks:
            # time travel: this connection now reads the database as it was at the mark
            db.execute("PRAGMA litestream_time = '%s'" % at.replace("'", "''")).fetchall()
            count = db.execute("SELECT count(*) FROM notes").fetchone()[0]
            print(f"time travel to {at}: {count} notes")
        db.execute("PRAGMA litestream_time = 'latest'").fetchall()
    finally:
        db.close()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "writer":
        load_extension()
        writer(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "reader":
        load_extension()
        reader()
    else:
        sys.stderr.write("usage: litestream_example.py writer AUTHOR | litestream_example.py reader\n")
        sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except sqlite3.Error as e:
        sys.stderr.write(f"litestream_example.py: {e}\n")
        sys.exit(1)
