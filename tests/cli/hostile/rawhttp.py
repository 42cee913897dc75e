#!/usr/bin/env python3
"""rawhttp: raw-socket HTTP for the fakes3 hostile-input and shutdown tests: the bytes curl will not
send (NUL bytes, broken request lines, conflicting lengths, stalls), sent exactly as given.
Standard library only.

usage:
  rawhttp.py send PORT [--timeout S] [--keep-open] [--out FILE] [REQUEST]
      Sends REQUEST, a Python bytes expression (b"GET / HTTP/1.1\r\n\r\n", b"a" * 70000; os is
      there for os.urandom, md5(body) gives a Content-MD5 value), or else stdin, as is; then half-closes (unless --keep-open: the server must answer without
      waiting for more), and reads until the server closes or S seconds (default 10) pass.
      Prints "STATUS CODE N": STATUS of the first response ("none" if nothing came back), CODE the
      S3 <Code> of its body, "html" for libmicrohttpd's own error page, "-" otherwise, and N the
      number of responses (status lines) received. --out keeps the raw response.
  rawhttp.py slowloris PORT N IDLE
      Opens N connections that send half a request header and stall, plus one that sends nothing;
      checks that a normal request on another connection is answered within 2 s while they stall,
      and that the server closes every stalled connection after about IDLE seconds (within
      IDLE + 10 s). Exits 1 with the reason otherwise.
  rawhttp.py tree DATA MARK...
      Checks that the data directory holds only what a store makes: no entry resolves outside DATA
      (symlinks included), every name is a plain ASCII name (no key text: no space, '%', unicode),
      no name contains any MARK, object files are named by a 64-digit hex hash, and the temp folder
      is empty. Exits 1 with the offending paths otherwise.
  rawhttp.py upload PORT PATH SIZE SECONDS
      PUTs SIZE bytes (a pattern; Content-Length SIZE) to PATH, spread over about SECONDS. Prints
      "sending" once the first piece is sent, then the status, or "cut" if the server closed the
      connection first.
  rawhttp.py stall-get PORT PATH
      Sends a GET and then never reads (for 60 s): the server's send blocks on a full socket.
"""
import base64
import hashlib
import os
import re
import socket
import sys
import time


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_all(s, deadline):
    out = b""
    while time.monotonic() < deadline:
        try:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError:  # reset: keep what came before it
            break
        if not d:
            break
        out += d
    return out


def responses(resp):
    """Splits what came back into (status, body) pairs, by Content-Length (no HEAD requests here:
    a response without one takes the rest)."""
    out = []
    while resp:
        m = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n", resp)
        if not m:
            out.append(("garbage", resp))
            break
        head, sep, rest = resp.partition(b"\r\n\r\n")
        cl = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        n = int(cl.group(1)) if cl else len(rest)
        out.append((m.group(1).decode(), rest[:n]))
        resp = rest[n:]
    return out


def classify(resp):
    rs = responses(resp)
    if not rs:
        return "none", "-", 0
    status, body = rs[0]
    code = "-"
    c = re.search(rb"<Error><Code>([^<]*)</Code>", body)
    if c:
        code = c.group(1).decode()
    elif b"<html>" in body:
        code = "html"
    return status, code, len(rs)


def content_md5(body):
    """The Content-MD5 header value of body, as bytes."""
    return base64.b64encode(hashlib.md5(body).digest())


def cmd_send(args):
    port = int(args[0])
    timeout, keep_open, out, expr = 10.0, False, None, None
    i = 1
    while i < len(args):
        if args[i] == "--timeout":
            timeout = float(args[i + 1])
            i += 2
        elif args[i] == "--keep-open":
            keep_open = True
            i += 1
        elif args[i] == "--out":
            out = args[i + 1]
            i += 2
        elif expr is None and not args[i].startswith("--"):
            expr = args[i]
            i += 1
        else:
            raise SystemExit("rawhttp send: unknown option " + args[i])
    if expr is not None:
        names = {"os": os, "range": range, "bytes": bytes, "len": len, "md5": content_md5}
        data = eval(expr, names)  # the test's own request
        if not isinstance(data, bytes):
            raise SystemExit("rawhttp send: the request must be a bytes expression")
    else:
        data = sys.stdin.buffer.read()
    s = connect(port, timeout)
    deadline = time.monotonic() + timeout
    try:
        s.sendall(data)
        if not keep_open:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server may answer and close before taking everything
    resp = read_all(s, deadline)
    s.close()
    if out:
        with open(out, "wb") as f:
            f.write(resp)
    status, code, n = classify(resp)
    print(status, code, n)


def cmd_slowloris(args):
    port, n, idle = int(args[0]), int(args[1]), float(args[2])
    stalled = []
    for i in range(n):
        s = connect(port, 5)
        s.sendall(b"GET /_fakes3/health HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)
        stalled.append(s)
    silent = connect(port, 5)  # connects and never sends a byte
    stalled.append(silent)
    started = time.monotonic()
    time.sleep(0.3)
    # another client is served while they stall
    t0 = time.monotonic()
    c = connect(port, 5)
    c.sendall(b"GET /_fakes3/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = read_all(c, t0 + 5)
    c.close()
    took = time.monotonic() - t0
    status, _, _ = classify(resp)
    if status != "200" or took > 2:
        raise SystemExit("a request during the stall got %s after %.2f s" % (status, took))
    # the stalled connections are closed by the server, not by us
    open_ = list(stalled)
    limit = started + idle + 10
    closed_at = []
    while open_ and time.monotonic() < limit:
        for s in list(open_):
            s.setblocking(False)
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:  # EOF (or reset): the server gave up on it
                open_.remove(s)
                closed_at.append(time.monotonic() - started)
                s.close()
        time.sleep(0.05)
    if open_:
        raise SystemExit("%d of %d stalled connections still open after %.0f s"
                         % (len(open_), len(stalled), idle + 10))
    first = min(closed_at)
    if first < idle - 1:
        raise SystemExit("a stalled connection was closed after %.1f s, before the idle timeout"
                         % first)
    print("served in %.2f s while %d stalled; all closed by %.1f s (idle timeout %.0f s)"
          % (took, len(stalled), max(closed_at), idle))


def cmd_tree(args):
    data = os.path.realpath(args[0])
    marks = args[1:]
    bad = []
    name_ok = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
    for root, dirs, files in os.walk(data, followlinks=False):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, data)
            real = os.path.realpath(p)
            if real != data and not real.startswith(data + os.sep):
                bad.append("%s resolves outside the data dir, to %s" % (rel, real))
            if os.path.islink(p):
                bad.append("%s is a symlink" % rel)
            if not name_ok.match(name):
                bad.append("%s: a name a store would not make" % rel)
            for m in marks:
                if m in name:
                    bad.append("%s: carries key text %r" % (rel, m))
            parts = rel.split(os.sep)
            if name in files:
                if len(parts) == 1 and name not in ("fakes3-store", ".lock"):
                    bad.append("%s: unexpected file at the top" % rel)
                if "objects" in parts[:-1] and not re.match(r"^[0-9a-f]{64}$", name):
                    bad.append("%s: object file not named by a hash" % rel)
                if parts[0] == "tmp":
                    bad.append("%s: left in the temp folder" % rel)
    if bad:
        raise SystemExit("data dir %s:\n  %s" % (data, "\n  ".join(bad)))
    print("data dir holds only the store's layout")


def cmd_upload(args):
    port, path, size, seconds = int(args[0]), args[1], int(args[2]), float(args[3])
    s = connect(port, 60)
    s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, size)).encode())
    piece = 65536
    pattern = bytes(range(256)) * (piece // 256)
    pieces = max(1, size // piece)
    pause = seconds / pieces
    sent = 0
    try:
        while sent < size:
            n = min(piece, size - sent)
            s.sendall(pattern[:n])
            sent += n
            if sent == n:
                print("sending", flush=True)
            time.sleep(pause)
    except OSError:
        print("cut")
        return
    resp = read_all(s, time.monotonic() + 60)
    status, _, _ = classify(resp)
    print("cut" if status == "none" else status)


def cmd_stall_get(args):
    port, path = int(args[0]), args[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills quickly
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    time.sleep(60)  # never read; the test ends this process
    s.close()


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    {"send": cmd_send, "slowloris": cmd_slowloris, "tree": cmd_tree, "upload": cmd_upload,
     "stall-get": cmd_stall_get}[cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
