#!/usr/bin/python3
"""orders.py: an example application for a scenario of your own (docs/scenarios.md).

It stands for your application: it loads the litestream extension and opens the replica with
the URI the scenario runner hands it in the environment (SCN_EXT, SCN_URI), and keeps its own
invariant: every order is written in ONE transaction together with its lines, and the order's
total equals the sum of its lines.

    orders.py write     commit orders until SIGTERM (a clean close ships the rest)
    orders.py verify    open the replica (read mode) and check the invariant; exit 1 if broken
"""
import os, signal, sqlite3, sys

EXT, URI = os.environ["SCN_EXT"], os.environ["SCN_URI"]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(EXT)

if sys.argv[1] == "write":
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    db = sqlite3.connect(URI, uri=True, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, total INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS lines(order_id INTEGER, amount INTEGER)")
    n = db.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]
    while not stop:
        n += 1
        amounts = [n % 7 + 1, n % 5 + 1, n % 3 + 1]
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO orders VALUES (?, ?)", (n, sum(amounts)))
        db.executemany("INSERT INTO lines VALUES (?, ?)", [(n, a) for a in amounts])
        db.execute("COMMIT")
        if n % 20 == 0:
            try:  # a store that fails is something to ride out: the commits stay buffered
                db.execute("SELECT litestream_sync()").fetchone()
            except sqlite3.OperationalError as e:
                print("sync failed:", e, file=sys.stderr)
    db.close()
else:
    uri = URI.replace("&write=1", "")
    db = sqlite3.connect(uri, uri=True)
    bad = db.execute(
        "SELECT count(*) FROM orders o LEFT JOIN "
        "(SELECT order_id, sum(amount) AS s FROM lines GROUP BY order_id) l "
        "ON l.order_id = o.id WHERE l.s IS NULL OR l.s != o.total").fetchone()[0]
    orphans = db.execute(
        "SELECT count(*) FROM lines WHERE order_id NOT IN (SELECT id FROM orders)").fetchone()[0]
    orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    print(f"{orders} orders, {bad} with a wrong total, {orphans} orphan lines")
    sys.exit(1 if bad or orphans or orders == 0 else 0)
