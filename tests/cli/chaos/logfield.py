#!/usr/bin/env python3
"""logfield: one field of fakes3's request log (JSON lines), one value a line.

usage: logfield.py LOG FIELD [KEY]

Prints FIELD of every line of LOG, or only of the lines whose "key" is KEY, in the order the
requests arrived (by request_id, which fakes3 numbers as requests come in: a line is written when
its request ends, so two requests close together may log in the other order). Every line must be
a JSON object (a line that is not fails the test that reads it: the log is line-atomic).
"""
import json
import sys

path, field = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else None
records = []
with open(path) as f:
    for n, line in enumerate(f, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            sys.exit("%s:%d: not a JSON line: %r" % (path, n, line))
# ids are 16 hex digits of one run: their text order is their order
for rec in sorted(records, key=lambda r: r["request_id"]):
    if key is not None and rec.get("key") != key:
        continue
    v = rec.get(field, "")
    print(json.dumps(v) if isinstance(v, bool) else v)
