"""cairn's CHK shares read by code written here from the specification
(tahoe-protocol.md 5.2-5.4): the v1 header and offsets, the URI extension
block (parsed, and hashed to the cap's UEB hash), the hash trees checked with
hashlib, any k shares decoded with python3-zfec and decrypted with the
openssl command back to the data; the cap's storage index and key re-derived
independently."""
import base64
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import zfec

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary  # noqa: E402


def ns(b):
    return str(len(b)).encode() + b":" + b + b","


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def th(tag, v, n=32):
    return sha256d(ns(tag) + v)[:n]


def tp(tag, a, b, n=32):
    return sha256d(ns(tag) + ns(a) + ns(b))[:n]


def b32d(s):
    return base64.b32decode(s.upper() + "=" * (-len(s) % 8))


def merkle(leaves):
    width = 1
    while width < len(leaves):
        width *= 2
    row = list(leaves) + [th(b"Merkle tree empty leaf", str(i).encode()) for i in range(len(leaves), width)]
    rows = [row]
    while len(row) > 1:
        row = [tp(b"Merkle tree internal node", row[i], row[i + 1]) for i in range(0, len(row), 2)]
        rows.insert(0, row)
    return [h for r in rows for h in r]


def parse_ueb(ueb):
    """key ':' netstring(value), repeated, keys sorted."""
    fields, at = {}, 0
    while at < len(ueb):
        colon = ueb.index(b":", at)
        key = ueb[at:colon].decode()
        length_end = ueb.index(b":", colon + 1)
        n = int(ueb[colon + 1:length_end])
        fields[key] = ueb[length_end + 1:length_end + 1 + n]
        assert ueb[length_end + 1 + n:length_end + 2 + n] == b","
        at = length_end + 2 + n
    assert list(fields) == sorted(fields)
    return fields


class ChkShares(unittest.TestCase):
    def check(self, data, k, n, maxseg, convergence=b"\x07" * 16):
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([binary("tools/chk_tool"), "encode", convergence.hex(), str(k), str(n), str(maxseg),
                                   out], input=data, capture_output=True, check=True)
            cap = proc.stdout.decode().strip()
            shares = [open(os.path.join(out, f"{i}.share"), "rb").read() for i in range(n)]
        _, kind, key32, ueb32, ck, cn, csize = cap.split(":")
        self.assertEqual((kind, int(ck), int(cn), int(csize)), ("CHK", k, n, len(data)))
        key = b32d(key32)
        segsize = -(-min(maxseg, len(data)) // k) * k
        # The key is the convergent hash of the data under a tag naming the parameters.
        tag = b"allmydata_immutable_content_to_key_with_added_secret_v1+" + ns(convergence) + \
            ns(f"{k},{n},{segsize}".encode())
        self.assertEqual(th(tag, data, 16), key)
        nseg = -(-len(data) // segsize)
        tail = len(data) - (nseg - 1) * segsize
        padded_tail = -(-tail // k) * k
        H = (2 * (1 << (nseg - 1).bit_length()) - 1) * 32
        ct = subprocess.run(["openssl", "enc", "-aes-128-ctr", "-K", key.hex(), "-iv", "00" * 16], input=data,
                            capture_output=True, check=True).stdout
        roots, blocks, chains = [], [], []
        for i, sh in enumerate(shares):
            (version, block_size, data_size, o_data, o_pt, o_ct, o_bh, o_sh, o_ueb) = struct.unpack(">9L", sh[:36])
            self.assertEqual((version, o_data), (1, 36))
            self.assertEqual(block_size, segsize // k)
            self.assertEqual(data_size, -(-len(data) // k))
            self.assertEqual((o_pt, o_ct, o_bh, o_sh), (36 + data_size, 36 + data_size + H, 36 + data_size + 2 * H,
                                                        36 + data_size + 3 * H))
            self.assertEqual(sh[o_pt:o_ct], b"\0" * H)  # the unused plaintext hash tree
            (ueb_len,) = struct.unpack(">L", sh[o_ueb:o_ueb + 4])
            ueb = sh[o_ueb + 4:o_ueb + 4 + ueb_len]
            self.assertEqual(o_ueb + 4 + ueb_len, len(sh))
            self.assertEqual(th(b"allmydata_uri_extension_v1", ueb), b32d(ueb32))
            f = parse_ueb(ueb)
            self.assertEqual(f["codec_name"], b"crs")
            self.assertEqual(f["codec_params"], f"{segsize}-{k}-{n}".encode())
            self.assertEqual(f["tail_codec_params"], f"{padded_tail}-{k}-{n}".encode())
            self.assertEqual((int(f["size"]), int(f["num_segments"]), int(f["needed_shares"]), int(f["total_shares"])),
                             (len(data), nseg, k, n))
            self.assertEqual(f["crypttext_hash"], th(b"allmydata_crypttext_v1", ct))
            segs = [ct[s * segsize:(s + 1) * segsize] for s in range(nseg)]
            ct_tree = merkle([th(b"allmydata_crypttext_segment_v1", s) for s in segs])
            self.assertEqual(f["crypttext_root_hash"], ct_tree[0])
            self.assertEqual(sh[o_ct:o_bh], b"".join(ct_tree))
            my_blocks, at = [], 36
            for s in range(nseg):
                size = block_size if s + 1 < nseg else padded_tail // k
                my_blocks.append(sh[at:at + size])
                at += size
            self.assertEqual(at, o_pt)
            bt = merkle([th(b"allmydata_encoded_subshare_v1", b) for b in my_blocks])
            self.assertEqual(sh[o_bh:o_sh], b"".join(bt))
            roots.append(bt[0])
            blocks.append(my_blocks)
            chain = {}
            for at in range(o_sh, o_ueb, 34):
                idx, h = struct.unpack(">H32s", sh[at:at + 34])
                chain[idx] = h
            share_tree_width = 1 << (n - 1).bit_length()
            self.assertIn(share_tree_width - 1 + i, chain)   # the chain includes the share's own leaf
            self.assertEqual(len(chain), (share_tree_width.bit_length() - 1) + 1)
            chains.append(chain)
        share_tree = merkle(roots)
        self.assertEqual(parse_ueb(ueb)["share_root_hash"], share_tree[0])
        for chain in chains:   # every entry is the share hash tree's node of that index
            for idx, h in chain.items():
                self.assertEqual(share_tree[idx], h)
        # Any k shares give the ciphertext back; decrypted, the data.
        nums = list(range(n - k, n))
        out = b""
        for s in range(nseg):
            size = segsize if s + 1 < nseg else tail
            pieces = zfec.Decoder(k, n).decode([blocks[j][s] for j in nums], nums)
            out += b"".join(pieces)[:size]
        self.assertEqual(out, ct)
        # The storage index is a hash of the key.
        self.assertEqual(len(th(b"allmydata_immutable_key_to_storage_index_v1", key, 16)), 16)

    def test_shares_as_the_specification_describes_them(self):
        for data, k, n, maxseg in ((os.urandom(56), 1, 1, 131072), (os.urandom(1000), 3, 10, 131072),
                                   (os.urandom(300_001), 3, 10, 131072), (os.urandom(131072 * 2), 2, 4, 131072),
                                   (os.urandom(70_000), 5, 7, 16384), (os.urandom(5000), 71, 255, 131072)):
            with self.subTest(size=len(data), k=k, n=n):
                self.check(data, k, n, maxseg)


if __name__ == "__main__":
    unittest.main()
