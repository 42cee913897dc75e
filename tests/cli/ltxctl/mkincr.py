#!/usr/bin/env python3
"""mkincr.py: writes an incremental LTX file (format 3) from two states of a SQLite database,
independently of lib/ (its own CRC-64/ISO, LZ4 blocks of literals only), for the ltxctl replica
tests: the pages of NEW that differ from OLD (and those beyond OLD's end), pre-apply checksum of
OLD and post-apply of NEW as given (`ltxctl checksum` prints them), TXID and timestamp as given.

usage: mkincr.py OLD.db NEW.db TXID TIMESTAMP_MS PRE_HEX POST_HEX OUT.ltx
"""
import struct
import sys

POLY = 0xD800000000000000
TABLE = []
for b in range(256):
    c = b
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)
FLAG = 1 << 63


def crc_update(crc, data):
    crc ^= 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


assert crc_update(0, b"123456789") == 0xB90956C775A41001


def lz4_literals(data):
    """One LZ4 block holding data as literals only (valid: the last sequence has no match)."""
    n = len(data)
    out = bytearray()
    if n < 15:
        out.append(n << 4)
    else:
        out.append(0xF0)
        rest = n - 15
        while rest >= 255:
            out.append(255)
            rest -= 255
        out.append(rest)
    out += data
    return bytes(out)


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def main():
    old_path, new_path, txid, ts, pre, post, out_path = sys.argv[1:8]
    txid, ts, pre, post = int(txid), int(ts), int(pre, 16), int(post, 16)
    old = open(old_path, "rb").read()
    new = open(new_path, "rb").read()
    ps = struct.unpack(">H", new[16:18])[0]
    ps = 65536 if ps == 1 else ps
    commit = len(new) // ps
    lock = 0x40000000 // ps + 1
    header = struct.pack(">4sIIIQQqQqqIIQ", b"LTX1", 0, ps, commit, txid, txid, ts, pre,
                         0, 0, 0, 0, 0) + b"\0" * 20
    assert len(header) == 100
    body = bytearray(header)
    crc = crc_update(0, header)
    index = []
    for p in range(1, commit + 1):
        if p == lock:
            continue
        page = new[(p - 1) * ps:p * ps]
        if (p - 1) * ps < len(old) and old[(p - 1) * ps:p * ps] == page:
            continue
        block = lz4_literals(page)
        off = len(body)
        head = struct.pack(">IHI", p, 1, len(block))
        body += head + block
        crc = crc_update(crc, head)
        crc = crc_update(crc, page)
        index.append((p, off, len(body) - off))
    body += b"\0" * 6
    crc = crc_update(crc, b"\0" * 6)
    idx = bytearray()
    for p, off, size in index:
        idx += uvarint(p) + uvarint(off) + uvarint(size)
    idx += uvarint(0)
    idx += struct.pack(">Q", len(idx))
    body += idx
    crc = crc_update(crc, idx)
    body += struct.pack(">Q", post)
    crc = crc_update(crc, struct.pack(">Q", post))
    body += struct.pack(">Q", FLAG | crc)
    open(out_path, "wb").write(body)


main()
