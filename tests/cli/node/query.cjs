// query.cjs: better-sqlite3 loads the litestream VFS and reads a replica. better-sqlite3 is
// built without URI filenames (SQLITE_USE_URI=0) and opens with no VFS name, so the extension is
// loaded with LITESTREAM_VFS_DEFAULT=1 (set by the test): the VFS becomes the default and every
// database opened afterwards is a replica (LITESTREAM_REPLICA_URL).
//   node query.cjs EXTENSION QUERIES_FILE    prints each row's values joined by '|'
const Database = require("better-sqlite3");
const fs = require("fs");
const [ext, qfile] = process.argv.slice(2);
const loader = new Database(":memory:");
loader.loadExtension(ext);
const db = new Database("app.db", { readonly: true });
const fmt = (v) => (v === null ? "" : typeof v === "number" && !Number.isInteger(v) ? String(v)
  : typeof v === "number" ? String(v) : Buffer.isBuffer(v) ? v.toString("hex").toUpperCase() : String(v));
for (const q of fs.readFileSync(qfile, "utf8").split(";\n")) {
  if (!q.trim()) continue;
  for (const row of db.prepare(q).raw().all()) console.log(row.map(fmt).join("|"));
}
console.log("txid " + db.pragma("litestream_txid", { simple: true }));
try {
  db.exec("insert into items(id) values (100000)");
  console.log("write: accepted");
} catch (e) {
  console.log("write: " + e.code);
}
