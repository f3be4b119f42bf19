#!/usr/bin/python3
"""Regenerates the seed corpora of the share, cap and HTTP response fuzzers.

Usage: test/fuzz/make_seeds.py TOOLS_DIR

TOOLS_DIR holds chk_tool and mutable_tool (test/tools, built in any mode,
e.g. build/host/asan/tools). Seeds are realistic inputs: caps from Tahoe's
own vectors (test/vectors/caps.json) and the read and verify caps derived
from them, CHK and SDMF/MDMF shares as cairn writes them, and HTTP
responses as a GBS server sends them. Existing files of the same names are
overwritten; crash inputs added by hand stay.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "test", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def unb32(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def tagged(tag, value, size=32):
    ns = b"%d:%s," % (len(tag), tag)
    return hashlib.sha256(hashlib.sha256(ns + value).digest()).digest()[:size]


def cap_seeds():
    vectors = json.load(open(os.path.join(ROOT, "test", "vectors", "caps.json")))["vectors"]
    seen = set()
    for v in vectors:
        cap = v["expected"]
        kind = cap.split(":")[1]
        if kind in seen:
            continue
        seen.add(kind)
        fields = cap.split(":")
        write("cap_fuzzer", kind.lower(), cap)
        if kind == "CHK":
            si = tagged(b"allmydata_immutable_key_to_storage_index_v1", unb32(fields[2]), 16)
            write("cap_fuzzer", "chk_verifier", ":".join(["URI", "CHK-Verifier", b32(si)] + fields[3:]))
        elif kind in ("SSK", "MDMF"):
            readkey = tagged(b"allmydata_mutable_writekey_to_readkey_v1", unb32(fields[2]), 16)
            si = tagged(b"allmydata_mutable_readkey_to_storage_index_v1", readkey, 16)
            write("cap_fuzzer", kind.lower() + "_ro", f"URI:{kind}-RO:{b32(readkey)}:{fields[3]}")
            write("cap_fuzzer", kind.lower() + "_verifier", f"URI:{kind}-Verifier:{b32(si)}:{fields[3]}")
    write("cap_fuzzer", "lit", "URI:LIT:" + b32(b"hello, world\n"))
    write("cap_fuzzer", "lit_empty", "URI:LIT:")
    write("cap_fuzzer", "base32_16", b32(bytes(range(16))))


def http_seeds():
    # Byte 0: settings (bit i: response i answers a HEAD; high nibble: the body
    # bound, 0x50 for 1 MiB); bytes 1-3: piece sizes.
    def seed(name, settings, steps, text):
        write("http_response_parser_fuzzer", name, bytes([settings]) + bytes(steps) + text.encode("latin-1"))

    big = 0x50
    seed("fixed", big, [5, 17, 200],
         "HTTP/1.1 200 OK\r\nContent-Type: application/cbor\r\nContent-Length: 5\r\n\r\n\xa1aa\x01x")
    seed("chunked_trailers", big, [3, 3, 40],
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n")
    seed("continue_then_201", big, [1, 64, 9],
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    seed("keepalive_two", big, [30, 30, 30],
         "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
         "Content-Length: 4\r\n\r\nabcd")
    seed("http10_close", big, [7, 11, 13], "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until the close")
    seed("head", 0x01, [50, 50, 50], "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    seed("too_large", 0x20, [90, 90, 90], "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + "x" * 100)
    seed("error_404", big, [2, 96, 4],
         "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 9\r\n\r\nnot found")


def run(cmd, stdin):
    return subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout


def share_seeds(tools):
    with tempfile.TemporaryDirectory() as tmp:
        # CHK: one and several segments, v1 headers, 1-of-1 and 2-of-3.
        for name, k, n, seg, data in [("1of1_one_segment", 1, 1, 131072, b"a" * 100),
                                      ("2of3_three_segments", 2, 3, 64, bytes(range(150))),
                                      ("3of10_tail", 3, 10, 96, b"cairn " * 30)]:
            out = os.path.join(tmp, name)
            os.mkdir(out)
            run([os.path.join(tools, "chk_tool"), "encode", "61" * 16, str(k), str(n), str(seg), out], data)
            for shnum in sorted({0, n - 1}):
                with open(os.path.join(out, f"{shnum}.share"), "rb") as f:
                    write("chk_share_fuzzer", f"{name}_{shnum}", f.read())
        # SDMF and MDMF with the RSA key of Tahoe's first SSK vector.
        vectors = json.load(open(os.path.join(ROOT, "test", "vectors", "caps.json")))["vectors"]
        pem = next(v["key_pem"] for v in vectors if v["kind"] == "ssk")
        key = os.path.join(tmp, "key.pem")
        with open(key, "w") as f:
            f.write(pem)
        for fmt, name, k, n, data in [("sdmf", "sdmf_1of1_empty", 1, 1, b""),
                                      ("sdmf", "sdmf_2of3", 2, 3, b"mutable " * 20),
                                      ("mdmf", "mdmf_1of1_empty", 1, 1, b""),
                                      ("mdmf", "mdmf_2of3", 2, 3, b"mdmf data " * 10)]:
            out = os.path.join(tmp, name)
            os.mkdir(out)
            run([os.path.join(tools, "mutable_tool"), "encode", fmt, key, str(k), str(n), "3", out], data)
            for shnum in sorted({0, n - 1}):
                with open(os.path.join(out, f"{shnum}.share"), "rb") as f:
                    write("sdmf_share_fuzzer", f"{name}_{shnum}", f.read())


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cap_seeds()
    http_seeds()
    share_seeds(sys.argv[1])


if __name__ == "__main__":
    main()
