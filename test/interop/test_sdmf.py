"""cairn's SDMF shares read by code written here from the specification
(tahoe-protocol.md 3.3, 3.6, 3.8), with tools we did not write: hashlib for
the tagged hashes and trees, python3-zfec to decode the blocks, and the
openssl command for AES-128-CTR, the RSA-PSS signature and the PKCS#8 key."""
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
from pylib.cairntest import binary  # noqa: E402

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


class SdmfShares(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        with open(os.path.join(ROOT, "test", "vectors", "caps.json")) as f:
            self.key_pem = [v for v in json.load(f)["vectors"] if v["kind"] == "ssk"][7]["key_pem"]
        self.key = os.path.join(self.tmp.name, "key.pem")
        with open(self.key, "w") as f:
            f.write(self.key_pem)

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, plaintext, k, n, seqnum):
        out = os.path.join(self.tmp.name, f"s{k}-{n}-{len(plaintext)}")
        os.mkdir(out)
        proc = subprocess.run([binary("tools/sdmf_tool"), "encode", self.key, str(k), str(n), str(seqnum), out],
                              input=plaintext, capture_output=True, check=True)
        _, _, wk, fp = proc.stdout.decode().strip().split(":")
        writekey, fingerprint = b32d(wk), b32d(fp)
        readkey = th(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
        shares = [parse(open(os.path.join(out, f"{i}.share"), "rb").read()) for i in range(n)]
        width = 1
        while width < n:
            width *= 2
        pub_pem = openssl("pkey", "-pubin", "-inform", "DER", data=shares[0]["pubkey"])
        pub = os.path.join(out, "pub.pem")
        with open(pub, "wb") as f:
            f.write(pub_pem)
        for i, s in enumerate(shares):
            self.assertEqual((s["version"], s["seqnum"], s["k"], s["n"], s["datalen"]), (0, seqnum, k, n, len(plaintext)))
            self.assertEqual(s["segsize"], -(-len(plaintext) // k) * k)
            self.assertEqual(s["eof"], s["length"])
            self.assertEqual(th(b"allmydata_mutable_pubkey_to_fingerprint_v1", s["pubkey"]), fingerprint)
            # The signature over the 75-byte prefix, RSA-PSS with SHA-256 and a 32-byte salt.
            prefix, sig = os.path.join(out, "prefix"), os.path.join(out, "sig")
            open(prefix, "wb").write(s["prefix"])
            open(sig, "wb").write(s["sig"])
            openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                    "-verify", pub, "-signature", sig, prefix)
            # Block hash tree of one node, then the chain (siblings only) up to the signed root.
            leaf = th(b"allmydata_encoded_subshare_v1", s["block"]) if plaintext else \
                th(b"Merkle tree empty leaf", b"0")
            self.assertEqual(s["bht"], leaf)
            node, h = width - 1 + i, leaf
            need = []
            while node > 0:
                sib = node + 1 if node % 2 else node - 1
                need.append(sib)
                pair = (h, s["chain"][sib]) if node % 2 else (s["chain"][sib], h)
                h = tp(b"Merkle tree internal node", *pair)
                node = (node - 1) // 2
            self.assertEqual(sorted(s["chain"]), sorted(need))
            self.assertEqual(h, s["root"])
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

    def test_shares_as_the_specification_describes_them(self):
        for data, k, n, seq in ((b"hello, tahoe", 3, 10, 1), (os.urandom(100_003), 3, 10, 7), (os.urandom(5000), 1, 1, 2),
                                (os.urandom(777), 2, 3, 3), (b"", 3, 10, 1), (os.urandom(4096), 71, 255, 12)):
            with self.subTest(size=len(data), k=k, n=n):
                self.check(data, k, n, seq)


if __name__ == "__main__":
    unittest.main()
