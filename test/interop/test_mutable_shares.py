"""cairn's SDMF and MDMF shares read by code written here from the
specification (tahoe-protocol.md 3.3, 3.6-3.8), with tools we did not write:
hashlib for the tagged hashes and trees, python3-zfec to decode the blocks,
and the openssl command for AES-128-CTR, the RSA-PSS signature and the
PKCS#8 key."""
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import zfec

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary, run_cli  # noqa: E402

ROOT = os.environ.get("CAIRN_ROOT", ".")


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


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


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


def parse_mdmf(share):
    """The fields of an MDMF share, by the table in 3.7."""
    (version, seqnum, root, k, n, segsize, datalen) = struct.unpack(">BQ32sBBQQ", share[:59])
    (o_priv, o_chain, o_sig, o_vk, o_vk_end, o_data, o_bht, o_eof) = struct.unpack(">8Q", share[59:123])
    chain = {}
    for at in range(o_chain, o_sig, 34):
        idx, h = struct.unpack(">H32s", share[at:at + 34])
        chain[idx] = h
    return dict(version=version, seqnum=seqnum, root=root, k=k, n=n, segsize=segsize, datalen=datalen,
                o_priv=o_priv, o_data=o_data, pad=share[o_vk_end:o_data], encpriv=share[o_priv:o_chain],
                chain=chain, sig=share[o_sig:o_vk], pubkey=share[o_vk:o_vk_end], data=share[o_data:o_bht],
                bht=[share[i:i + 32] for i in range(o_bht, o_eof, 32)], prefix=share[:59], eof=o_eof,
                length=len(share))


def parse(share):
    """The fields of an SDMF share, by the table in 3.6."""
    (version, seqnum, root, iv, k, n, segsize, datalen, o_sig, o_chain, o_bht, o_data, o_enc, o_eof) = \
        struct.unpack(">BQ32s16sBBQQLLLLQQ", share[:107])
    chain = {}
    for at in range(o_chain, o_bht, 34):
        idx, h = struct.unpack(">H32s", share[at:at + 34])
        chain[idx] = h
    return dict(version=version, seqnum=seqnum, root=root, iv=iv, k=k, n=n, segsize=segsize, datalen=datalen,
                pubkey=share[107:o_sig], sig=share[o_sig:o_chain], chain=chain, bht=share[o_bht:o_data],
                block=share[o_data:o_enc], encpriv=share[o_enc:o_eof], prefix=share[:75], eof=o_eof,
                length=len(share))


class SdmfReader:
    """The independent reader: key setup, parsing, hashing and decoding checks."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        with open(os.path.join(ROOT, "test", "vectors", "caps.json")) as f:
            self.key_pem = [v for v in json.load(f)["vectors"] if v["kind"] == "ssk"][7]["key_pem"]
        self.key = os.path.join(self.tmp.name, "key.pem")
        with open(self.key, "w") as f:
            f.write(self.key_pem)

    def tearDown(self):
        self.tmp.cleanup()

    def encode(self, fmt, plaintext, k, n, seqnum):
        out = os.path.join(self.tmp.name, f"{fmt}{k}-{n}-{len(plaintext)}")
        os.mkdir(out)
        proc = subprocess.run([binary("tools/mutable_tool"), "encode", fmt, self.key, str(k), str(n), str(seqnum),
                               out], input=plaintext, capture_output=True, check=True)
        return out, proc.stdout.decode().strip()

    def verify_signature(self, out, pubkey, prefix_bytes, sig_bytes):
        pub = os.path.join(out, "pub.pem")
        with open(pub, "wb") as f:
            f.write(openssl("pkey", "-pubin", "-inform", "DER", data=pubkey))
        prefix, sig = os.path.join(out, "prefix"), os.path.join(out, "sig")
        open(prefix, "wb").write(prefix_bytes)
        open(sig, "wb").write(sig_bytes)
        openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                "-verify", pub, "-signature", sig, prefix)

    def chain_to_root(self, leaf, i, n, chain, root):
        width = 1
        while width < n:
            width *= 2
        node, h, need = width - 1 + i, leaf, []
        while node > 0:
            sib = node + 1 if node % 2 else node - 1
            need.append(sib)
            pair = (h, chain[sib]) if node % 2 else (chain[sib], h)
            h = tp(b"Merkle tree internal node", *pair)
            node = (node - 1) // 2
        self.assertEqual(sorted(chain), sorted(need))
        self.assertEqual(h, root)

    def check_mdmf(self, plaintext, k, n, seqnum):
        out, cap = self.encode("mdmf", plaintext, k, n, seqnum)
        raw = [open(os.path.join(out, f"{i}.share"), "rb").read() for i in range(n)]
        self.verify_mdmf(out, cap, raw, plaintext, k, n, seqnum, key_pem=True)

    def verify_mdmf(self, out, cap, raw, plaintext, k, n, seqnum, key_pem):
        """Every share of `raw` (share i at i) as 3.7 and 3.8 describe it;
        with `key_pem`, the private key is also self.key's."""
        kind, _, wk, fp = cap.split(":")[:4]
        self.assertEqual(kind + ":" + cap.split(":")[1], "URI:MDMF")
        writekey, fingerprint = b32d(wk), b32d(fp)
        readkey = th(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
        segsize = -(-131072 // k) * k
        nseg = -(-len(plaintext) // segsize)
        shares = [parse_mdmf(r) for r in raw]
        segments = []   # per share: [(salt, block)]
        for i, s in enumerate(shares):
            self.assertEqual((s["version"], s["seqnum"], s["k"], s["n"], s["segsize"], s["datalen"]),
                             (1, seqnum, k, n, segsize, len(plaintext)))
            self.assertEqual((s["o_priv"], s["o_data"], s["eof"]), (123, 2167, s["length"]))
            self.assertEqual(s["pad"], b"\0" * len(s["pad"]))
            self.assertEqual(th(b"allmydata_mutable_pubkey_to_fingerprint_v1", s["pubkey"]), fingerprint)
            self.verify_signature(out, s["pubkey"], s["prefix"], s["sig"])
            segs, at = [], 0
            for seg in range(nseg):
                size = segsize if seg + 1 < nseg else len(plaintext) - seg * segsize
                blen = -(-size // k)
                segs.append((s["data"][at:at + 16], s["data"][at + 16:at + 16 + blen]))
                at += 16 + blen
            self.assertEqual(at, len(s["data"]))
            tree = merkle([th(b"allmydata_encoded_subshare_v1", salt + block) for salt, block in segs])
            self.assertEqual(s["bht"], tree)     # the full tree, salt included in each leaf
            self.chain_to_root(tree[0], i, n, s["chain"], s["root"])
            pkcs8 = openssl("enc", "-d", "-aes-128-ctr", "-K", writekey.hex(), "-iv", "00" * 16, data=s["encpriv"])
            # The writekey check over the stored key bytes (3.3).
            self.assertEqual(th(b"allmydata_mutable_privkey_to_writekey_v1", pkcs8, 16), writekey)
            if key_pem:
                self.assertEqual(pkcs8, openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", self.key))
            segments.append(segs)
        if not plaintext:
            self.assertEqual(shares[0]["eof"], 2199)   # an empty file: one empty-leaf node
            return
        nums = list(range(n - k, n))
        result = b""
        for seg in range(nseg):
            size = segsize if seg + 1 < nseg else len(plaintext) - seg * segsize
            pieces = zfec.Decoder(k, n).decode([segments[j][seg][1] for j in nums], nums)
            salt = segments[0][seg][0]
            datakey = tp(b"allmydata_mutable_readkey_to_datakey_v1", salt, readkey, 16)
            result += openssl("enc", "-d", "-aes-128-ctr", "-K", datakey.hex(), "-iv", "00" * 16,
                              data=b"".join(pieces)[:size])
        self.assertEqual(result, plaintext)

    def check(self, plaintext, k, n, seqnum):
        out, cap = self.encode("sdmf", plaintext, k, n, seqnum)
        self.verify_sdmf(out, cap, plaintext, k, n, seqnum)

    def verify_sdmf(self, out, cap, plaintext, k, n, seqnum):
        _, _, wk, fp = cap.split(":")
        writekey, fingerprint = b32d(wk), b32d(fp)
        readkey = th(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
        shares = [parse(open(os.path.join(out, f"{i}.share"), "rb").read()) for i in range(n)]
        for i, s in enumerate(shares):
            self.assertEqual((s["version"], s["seqnum"], s["k"], s["n"], s["datalen"]), (0, seqnum, k, n, len(plaintext)))
            self.assertEqual(s["segsize"], -(-len(plaintext) // k) * k)
            self.assertEqual(s["eof"], s["length"])
            self.assertEqual(th(b"allmydata_mutable_pubkey_to_fingerprint_v1", s["pubkey"]), fingerprint)
            # The signature over the 75-byte prefix, RSA-PSS with SHA-256 and a 32-byte salt.
            self.verify_signature(out, s["pubkey"], s["prefix"], s["sig"])
            # Block hash tree of one node, then the chain (siblings only) up to the signed root.
            leaf = th(b"allmydata_encoded_subshare_v1", s["block"]) if plaintext else \
                th(b"Merkle tree empty leaf", b"0")
            self.assertEqual(s["bht"], leaf)
            self.chain_to_root(leaf, i, n, s["chain"], s["root"])
            # The private key, decrypted with the writekey, is the key's PKCS#8 DER.
            pkcs8 = openssl("enc", "-d", "-aes-128-ctr", "-K", writekey.hex(), "-iv", "00" * 16, data=s["encpriv"])
            self.assertEqual(pkcs8, openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", self.key))
        if not plaintext:
            return
        # Any k shares decode (zfec) and decrypt (AES-CTR under the data key of the IV).
        for start in (0, n - k):
            nums = list(range(start, start + k))
            pieces = zfec.Decoder(k, n).decode([shares[j]["block"] for j in nums], nums)
            ct = b"".join(pieces)[:len(plaintext)]
            datakey = tp(b"allmydata_mutable_readkey_to_datakey_v1", shares[0]["iv"], readkey, 16)
            pt = openssl("enc", "-d", "-aes-128-ctr", "-K", datakey.hex(), "-iv", "00" * 16, data=ct)
            self.assertEqual(pt, plaintext)


class SdmfShares(SdmfReader, unittest.TestCase):
    """Shares built by cairn's encoders (test/tools/mutable_tool)."""

    def test_mdmf_shares_as_the_specification_describes_them(self):
        for data, k, n, seq in ((b"small mdmf", 3, 10, 1), (os.urandom(3 * 131073 + 5), 3, 10, 4),
                                (os.urandom(131072), 1, 1, 2), (os.urandom(200_000), 2, 3, 3), (b"", 3, 10, 1)):
            with self.subTest(size=len(data), k=k, n=n):
                self.check_mdmf(data, k, n, seq)

    def test_sdmf_shares_as_the_specification_describes_them(self):
        for data, k, n, seq in ((b"hello, tahoe", 3, 10, 1), (os.urandom(100_003), 3, 10, 7), (os.urandom(5000), 1, 1, 2),
                                (os.urandom(777), 2, 3, 3), (b"", 3, 10, 1), (os.urandom(4096), 71, 255, 12)):
            with self.subTest(size=len(data), k=k, n=n):
                self.check(data, k, n, seq)


class PublishedSdmfShares(SdmfReader, unittest.TestCase):
    """The shares cairn's publisher (create, then an update to seqnum 2)
    stored on three running cairnd nodes, read back over GBS, checked by the
    same independent reader."""

    @classmethod
    def setUpClass(cls):
        cls.nodes = []
        try:
            for i in range(3):
                node = Node(name=f"m{i}", config_patch={"limits": {"store_reserved_bytes": 0}})
                cls.nodes.append(node)
                node.start()
            cls.nurls = [run_cli("nurl", node_dir=n.dir, check=True).stdout.strip() for n in cls.nodes]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes:
            node.stop()
            node.cleanup()

    def encode(self, fmt, plaintext, k, n, seqnum):
        self.assertEqual((fmt, seqnum), ("sdmf", 2))
        # A key of its own for each file: a create finds no earlier shares.
        self.used = getattr(self, "used", 0) + 1
        with open(os.path.join(ROOT, "test", "vectors", "caps.json")) as f:
            pem = [v for v in json.load(f)["vectors"] if v["kind"] == "ssk"][self.used]["key_pem"]
        self.key = os.path.join(self.tmp.name, f"key{self.used}.pem")
        with open(self.key, "w") as f:
            f.write(pem)
        out = os.path.join(self.tmp.name, f"published{k}-{n}-{len(plaintext)}")
        os.mkdir(out)
        proc = subprocess.run([binary("tools/mutable_publish_tool"), self.key, str(k), str(n), "2", out, *self.nurls],
                              input=plaintext, capture_output=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
        # An update shorter than the create leaves old bytes past the share's
        # EOF (Tahoe never truncates): the reader stops at the EOF offset.
        for i in range(n):
            path = os.path.join(out, f"{i}.share")
            with open(path, "rb") as f:
                share = f.read()
            eof = struct.unpack(">Q", share[99:107])[0]
            with open(path, "wb") as f:
                f.write(share[:eof])
        return out, proc.stdout.decode().strip()

    def test_sdmf_shares_as_the_specification_describes_them(self):
        for data, k, n in ((b"hello, tahoe", 3, 10), (os.urandom(100_003), 3, 10), (b"", 2, 3),
                           (os.urandom(1 << 20), 2, 5), (b"x", 1, 3)):
            with self.subTest(size=len(data), k=k, n=n):
                self.check(data, k, n, 2)


class PublishedMdmfShares(SdmfReader, unittest.TestCase):
    """MDMF files made with `cairn mutable create --format mdmf` and updated
    with `cairn mutable put` on a client node whose grid is four cairnd
    nodes (3-of-4): every share read back over GBS by the independent client
    (pylib/gbs.py) and checked by the same independent reader: the layout,
    every block hash and the tree, the chain to the signed root, the
    signature, the private key, the plaintext."""

    K, N = 3, 4

    @classmethod
    def setUpClass(cls):
        cls.nodes = []
        try:
            for i in range(cls.N):
                node = Node(name=f"d{i}", config_patch={"limits": {"store_reserved_bytes": 0}})
                cls.nodes.append(node)
                node.start()
            cls.nurls = [run_cli("nurl", node_dir=n.dir, check=True).stdout.strip() for n in cls.nodes]
            cls.client = Node(name="mdmf-client", config_patch={
                "client": {"shares_needed": cls.K, "shares_total": cls.N, "shares_happy": cls.N},
                "limits": {"store_reserved_bytes": 0}})
            cls.nodes.append(cls.client)
            cls.client.start()
            for i, nurl in enumerate(cls.nurls):
                run_cli("servers", "add", nurl, "--nickname", f"d{i}", node_dir=cls.client.dir, check=True)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes:
            node.stop()
            node.cleanup()

    def shares_of(self, cap):
        """Share i at i, read from the servers, cut at its EOF offset."""
        from pylib.gbs import GbsClient
        writekey = b32d(cap.split(":")[2])
        readkey = th(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
        si = base64.b32encode(th(b"allmydata_mutable_readkey_to_storage_index_v1", readkey, 16)).decode()
        si = si.lower().rstrip("=")
        found = {}
        for nurl in self.nurls:
            c = GbsClient(nurl)
            try:
                for sh in c.list_shares(si, "mutable"):
                    head = c.read(si, sh, 0, 123, "mutable")
                    eof = struct.unpack(">Q", head[115:123])[0]
                    found[sh] = c.read(si, sh, 0, eof, "mutable")
            finally:
                c.close()
        self.assertEqual(sorted(found), list(range(self.N)))
        return [found[i] for i in range(self.N)]

    def cli_json(self, *args):
        p = run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)

    def test_mdmf_files_cairn_published_as_the_specification_describes_them(self):
        segsize = -(-131072 // self.K) * self.K
        for size in (0, 1, segsize, segsize + 1, 5 * segsize + 77):
            with self.subTest(size=size):
                first, second = os.urandom(size), os.urandom(size)
                path = os.path.join(self.tmp.name, "in")
                with open(path, "wb") as f:
                    f.write(first)
                made = self.cli_json("mutable", "create", "--format", "mdmf", path)
                cap = made["writecap"]
                self.assertTrue(cap.startswith("URI:MDMF:"), cap)
                self.assertTrue(made["readcap"].startswith("URI:MDMF-RO:"), made)
                self.verify_mdmf(self.tmp.name, cap, self.shares_of(cap), first, self.K, self.N, 1, key_pem=False)
                with open(path, "wb") as f:
                    f.write(second)
                self.cli_json("mutable", "put", cap, path)
                self.verify_mdmf(self.tmp.name, cap, self.shares_of(cap), second, self.K, self.N, 2, key_pem=False)


if __name__ == "__main__":
    unittest.main()
