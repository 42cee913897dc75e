// The litestream VFS from Node.js with better-sqlite3.
//
//   node litestream_example.cjs writer AUTHOR   write mode: add notes, ship them, print TXIDs
//   node litestream_example.cjs reader          read mode: the TXID, the notes, and each writer's
//                                               mark revisited with time travel
//
// The replica is LITESTREAM_REPLICA_URL (s3://bucket/prefix?endpoint=... or file:///dir), with
// the AWS_* variables for credentials; the extension is LTXVFS_EXTENSION (default
// "litestream-vfs", found by the dynamic loader).
//
// better-sqlite3 is built without URI filenames and has no VFS option, so a filename cannot say
// vfs=litestream or write=1. Instead the extension is loaded with LITESTREAM_VFS_DEFAULT=1, which
// makes "litestream" the default VFS of the process (every database opened afterwards is the
// replica, the file name a label), and write mode comes from LITESTREAM_WRITE_ENABLED. Both are
// read from the environment, which this script sets for itself before it loads or opens.
//
// The same tables and the same output as the C, Python and Go examples (see examples/c).
"use strict";
const Database = require("better-sqlite3");

function loadExtension() {
  process.env.LITESTREAM_VFS_DEFAULT = "1"; // read when the extension loads
  const loader = new Database(":memory:");
  loader.loadExtension(process.env.LTXVFS_EXTENSION || "litestream-vfs");
  loader.close(); // the VFS stays registered
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function writer(author) {
  process.env.LITESTREAM_WRITE_ENABLED = "true"; // read when a database is opened
  // Fails with SQLITE_BUSY "database is locked" while another process holds the lease.
  const db = new Database("app.db", { timeout: 5000 });
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, author TEXT NOT NULL,
                                              body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS marks(author TEXT NOT NULL, at TEXT NOT NULL,
                                              notes INTEGER NOT NULL);`);
    const note = db.prepare("INSERT INTO notes(author, body) VALUES (?, ?)");
    const mark = db.prepare(
      "INSERT INTO marks(author, at, notes) VALUES (?, ?, (SELECT count(*) FROM notes) - ?)");
    // one transaction per batch (local; durable at the next sync); the mark counts the notes
    // before its batch
    const addNotes = db.transaction((first, n, at) => {
      for (let i = first; i < first + n; i++) note.run(author, `note ${i} from ${author}`);
      if (at !== undefined) mark.run(author, at, n);
    });
    const sync = db.prepare("SELECT litestream_sync()").pluck(); // waits until in the bucket
    addNotes(1, 3);
    console.log(`${author}: 3 notes durable at TXID ${sync.get()}`);
    const at = db.prepare("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')").pluck().get();
    sleep(20); // the next file's timestamp (milliseconds) is strictly after the mark
    addNotes(4, 2, at);
    console.log(`${author}: 5 notes durable at TXID ${sync.get()}`);
  } finally {
    db.close(); // a clean close ships anything left and gives the lease back
  }
}

function reader() {
  delete process.env.LITESTREAM_WRITE_ENABLED;
  const db = new Database("app.db", { readonly: true });
  try {
    console.log("txid " + db.pragma("litestream_txid", { simple: true }));
    for (const r of db.prepare("SELECT id, author, body FROM notes ORDER BY id").raw().all())
      console.log(r.join("|"));
    const marks = db.prepare("SELECT author, at, notes FROM marks ORDER BY rowid").all();
    for (const m of marks) console.log(`mark ${m.author} ${m.at}: ${m.notes} notes`);
    const count = db.prepare("SELECT count(*) FROM notes").pluck();
    for (const m of marks) {
      // time travel: this connection now reads the database as it was at the mark
      db.pragma(`litestream_time = '${m.at.replace(/'/g, "''")}'`);
      console.log(`time travel to ${m.at}: ${count.get()} notes`);
    }
    db.pragma("litestream_time = 'latest'");
  } finally {
    db.close();
  }
}

const [cmd, author] = process.argv.slice(2);
try {
  if (cmd === "writer" && author && process.argv.length === 4) {
    loadExtension();
    writer(author);
  } else if (cmd === "reader" && process.argv.length === 3) {
    loadExtension();
    reader();
  } else {
    console.error("usage: node litestream_example.cjs writer AUTHOR | node litestream_example.cjs reader");
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`litestream_example.cjs: ${e.code || ""} ${e.message}`);
  process.exitCode = 1;
}
