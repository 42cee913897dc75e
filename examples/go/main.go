// The litestream VFS from Go with database/sql and github.com/mattn/go-sqlite3 (cgo).
//
//	litestream-example writer AUTHOR   write mode: add notes, ship them, print TXIDs
//	litestream-example reader          read mode: the TXID, the notes, and each writer's mark
//	                                   revisited with time travel
//
// The replica is LITESTREAM_REPLICA_URL (s3://bucket/prefix?endpoint=... or file:///dir), with
// the AWS_* variables for credentials; the extension is LTXVFS_EXTENSION (default
// "litestream-vfs", found by the dynamic loader).
//
// The extension is loaded through a driver registered with Extensions (mattn/go-sqlite3 calls
// sqlite3_load_extension on each new connection): one connection of it, to :memory:, registers
// the VFS for the whole process; then the replica is opened with a URI filename that names
// vfs=litestream, which go-sqlite3 passes to sqlite3_open_v2 with SQLITE_OPEN_URI.
//
// database/sql keeps a pool of connections, but time travel and transactions belong to one
// connection: the reader and the writer each work on a single *sql.Conn.
//
// The same tables and the same output as the C, Python and Node examples (see examples/c).
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

const (
	dbWrite = "file:app.db?vfs=litestream&write=1" // the name is a label
	dbRead  = "file:app.db?vfs=litestream&mode=ro"
)

func loadExtension(ctx context.Context) error {
	ext := os.Getenv("LTXVFS_EXTENSION")
	if ext == "" {
		ext = "litestream-vfs"
	}
	sql.Register("sqlite3_litestream_loader", &sqlite3.SQLiteDriver{Extensions: []string{ext}})
	loader, err := sql.Open("sqlite3_litestream_loader", ":memory:")
	if err != nil {
		return err
	}
	defer loader.Close() // the VFS stays registered
	return loader.PingContext(ctx)
}

func one(ctx context.Context, c *sql.Conn, q string, args ...any) (string, error) {
	var v string
	err := c.QueryRowContext(ctx, q, args...).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", q, err)
	}
	return v, nil
}

// addNotes: n notes by author in one transaction (local; durable at the next sync), and the
// mark if at is not empty (the count at the mark: before this batch).
func addNotes(ctx context.Context, c *sql.Conn, author string, first, n int, at string) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // nothing after a Commit
	for i := first; i < first+n; i++ {
		if _, err := tx.ExecContext(ctx, "INSERT INTO notes(author, body) VALUES (?, ?)", author,
			fmt.Sprintf("note %d from %s", i, author)); err != nil {
			return err
		}
	}
	if at != "" {
		if _, err := tx.ExecContext(ctx, "INSERT INTO marks(author, at, notes) "+
			"VALUES (?, ?, (SELECT count(*) FROM notes) - ?)", author, at, n); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func writer(ctx context.Context, author string) error {
	// _busy_timeout: between connections of this process. Another process holding the
	// replica's lease makes the first use fail with "database is locked".
	db, err := sql.Open("sqlite3", dbWrite+"&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close() // a clean close ships anything left and gives the lease back
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, author TEXT NOT NULL,
		                                 body TEXT NOT NULL);
		CREATE TABLE IF NOT EXISTS marks(author TEXT NOT NULL, at TEXT NOT NULL,
		                                 notes INTEGER NOT NULL)`); err != nil {
		return err
	}
	if err := addNotes(ctx, c, author, 1, 3, ""); err != nil {
		return err
	}
	txid, err := one(ctx, c, "SELECT litestream_sync()") // waits until in the bucket
	if err != nil {
		return err
	}
	fmt.Printf("%s: 3 notes durable at TXID %s\n", author, txid)
	at, err := one(ctx, c, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond) // the next file's timestamp (ms) is strictly after the mark
	if err := addNotes(ctx, c, author, 4, 2, at); err != nil {
		return err
	}
	if txid, err = one(ctx, c, "SELECT litestream_sync()"); err != nil {
		return err
	}
	fmt.Printf("%s: 5 notes durable at TXID %s\n", author, txid)
	return nil
}

func reader(ctx context.Context) error {
	db, err := sql.Open("sqlite3", dbRead)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx) // time travel is per connection
	if err != nil {
		return err
	}
	defer c.Close()
	txid, err := one(ctx, c, "PRAGMA litestream_txid")
	if err != nil {
		return err
	}
	fmt.Printf("txid %s\n", txid)
	rows, err := c.QueryContext(ctx, "SELECT id, author, body FROM notes ORDER BY id")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var author, body string
		if err := rows.Scan(&id, &author, &body); err != nil {
			rows.Close()
			return err
		}
		fmt.Printf("%d|%s|%s\n", id, author, body)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	type mark struct {
		author, at string
		notes      int64
	}
	var marks []mark
	rows, err = c.QueryContext(ctx, "SELECT author, at, notes FROM marks ORDER BY rowid")
	if err != nil {
		return err
	}
	for rows.Next() {
		var m mark
		if err := rows.Scan(&m.author, &m.at, &m.notes); err != nil {
			rows.Close()
			return err
		}
		marks = append(marks, m)
		fmt.Printf("mark %s %s: %d notes\n", m.author, m.at, m.notes)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, m := range marks {
		// time travel: this connection now reads the database as it was at the mark
		q := fmt.Sprintf("PRAGMA litestream_time = '%s'", strings.ReplaceAll(m.at, "'", "''"))
		if _, err := one(ctx, c, q); err != nil {
			return err
		}
		count, err := one(ctx, c, "SELECT count(*) FROM notes")
		if err != nil {
			return err
		}
		fmt.Printf("time travel to %s: %s notes\n", m.at, count)
	}
	_, err = one(ctx, c, "PRAGMA litestream_time = 'latest'")
	return err
}

func main() {
	ctx := context.Background()
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "writer":
		if err = loadExtension(ctx); err == nil {
			err = writer(ctx, os.Args[2])
		}
	case len(os.Args) == 2 && os.Args[1] == "reader":
		if err = loadExtension(ctx); err == nil {
			err = reader(ctx)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: litestream-example writer AUTHOR | litestream-example reader")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "litestream-example: %v\n", err)
		os.Exit(1)
	}
}
