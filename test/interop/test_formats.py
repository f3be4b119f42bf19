"""cairn's format primitives against implementations we did not write:
tagged hashes and Merkle trees against a hashlib computation written here
from the specification (tahoe-protocol.md 0 and 0.1); AES-128-CTR, PKCS#8
and RSASSA-PSS against the openssl command; SSK caps and cap parsing through
the `cairn debug` commands against Tahoe-LAFS's vectors."""
import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary, run_cli  # noqa: E402

ROOT = os.environ.get("CAIRN_ROOT", ".")
VECTORS = os.path.join(ROOT, "test", "vectors")


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def tagged_hash(tag, value, size=32):
    return sha256d(netstring(tag) + value)[:size]


def tagged_pair_hash(tag, a, b, size=32):
    return sha256d(netstring(tag) + netstring(a) + netstring(b))[:size]


def merkle_nodes(leaves):
    """Every node of Tahoe's hash tree, breadth-first, by the rules in 0.1."""
    width = 1
    while width < len(leaves):
        width *= 2
    row = list(leaves) + [tagged_hash(b"Merkle tree empty leaf", str(i).encode())
                          for i in range(len(leaves), width)]
    rows = [row]
    while len(row) > 1:
        row = [tagged_pair_hash(b"Merkle tree internal node", row[i], row[i + 1])
               for i in range(0, len(row), 2)]
        rows.insert(0, row)
    return [h for r in rows for h in r]


def tool(*args, data=b""):
    proc = subprocess.run([binary("tools/formats_tool"), *map(str, args)], input=data,
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"formats_tool {args}: {proc.stderr.decode()}")
    return proc.stdout


def openssl(*args, data=None, check=True):
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {args}: {proc.stderr.decode()}")
    return proc


def ssk_vectors():
    with open(os.path.join(VECTORS, "caps.json")) as f:
        return [v for v in json.load(f)["vectors"] if v["kind"] == "ssk"]


class TaggedHashes(unittest.TestCase):
    def test_random_tags_values_and_sizes(self):
        rng = random.Random(877)
        for _ in range(40):
            tag = bytes(rng.choice(b"abcxyz_0123") for _ in range(rng.randrange(0, 60)))
            value = rng.randbytes(rng.choice([0, 1, 31, 32, 33, 1000, 70000]))
            size = rng.choice([16, 32])
            got = tool("tagged-hash", tag.decode(), size, data=value).decode().strip()
            self.assertEqual(got, tagged_hash(tag, value, size).hex())
            a, b = rng.randbytes(rng.randrange(0, 40)), rng.randbytes(32)
            got = tool("pair-hash", tag.decode(), size, a.hex() or "", b.hex()).decode().strip()
            self.assertEqual(got, tagged_pair_hash(tag, a, b, size).hex())


class MerkleTrees(unittest.TestCase):
    def test_every_size_up_to_33_leaves(self):
        rng = random.Random(12)
        for n in range(0, 34):
            leaves = [rng.randbytes(32) for _ in range(n)]
            out = tool("merkle", data="".join(l.hex() + "\n" for l in leaves).encode())
            self.assertEqual(out.decode().split(), [h.hex() for h in merkle_nodes(leaves)], n)

    def test_needed_hashes_are_the_siblings_up_to_the_root(self):
        for n in (1, 2, 5, 8, 10, 256):
            width = 1
            while width < n:
                width *= 2
            for leaf in range(n):
                i = width - 1 + leaf
                expect = []
                while i > 0:
                    expect.append(i + 1 if i % 2 == 1 else i - 1)
                    i = (i - 1) // 2
                got = [int(x) for x in tool("needed", n, leaf, 0).split()]
                self.assertEqual(got, expect, (n, leaf))
                with_leaf = [int(x) for x in tool("needed", n, leaf, 1).split()]
                self.assertEqual(with_leaf, [width - 1 + leaf] + expect)


class AesCtr(unittest.TestCase):
    def test_against_openssl_with_a_zero_counter(self):
        rng = random.Random(5)
        for size in (0, 1, 15, 16, 17, 4095, 100003):
            key = rng.randbytes(16)
            data = rng.randbytes(size)
            ours = tool("aes-ctr", key.hex(), 0, data=data)
            theirs = openssl("enc", "-aes-128-ctr", "-K", key.hex(), "-iv", "00" * 16, data=data).stdout
            self.assertEqual(ours, theirs, size)
            if size > 40:
                # A stream entered at an offset continues the same key stream.
                self.assertEqual(tool("aes-ctr", key.hex(), 37, data=data[37:]), theirs[37:])


class Rsa(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def test_pkcs8_is_what_openssl_writes(self):
        for v in ssk_vectors()[:10]:
            key = self.write("key.pem", v["key_pem"].encode())
            theirs = openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", key).stdout
            self.assertEqual(tool("pkcs8", key), theirs)
            spki = openssl("pkey", "-in", key, "-pubout", "-outform", "DER").stdout
            self.assertEqual(tool("spki", key), spki)

    def test_pss_salt_32_both_ways(self):
        key = self.write("key.pem", ssk_vectors()[3]["key_pem"].encode())
        msg = self.write("msg", os.urandom(5000))
        with open(msg, "rb") as f:
            message = f.read()
        spki = self.write("pub.der", tool("spki", key))
        pub = self.path("pub.pem")
        openssl("pkey", "-pubin", "-inform", "DER", "-in", spki, "-out", pub)
        pss32 = ["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
        # Ours, checked by openssl with the salt length fixed at 32.
        ours = self.write("ours.sig", tool("sign", key, data=message))
        self.assertEqual(len(open(ours, "rb").read()), 256)
        openssl("dgst", *pss32, "-verify", pub, "-signature", ours, msg)
        # openssl's, with salt 32, checked by ours.
        theirs = self.path("theirs.sig")
        openssl("dgst", *pss32, "-sign", key, "-out", theirs, msg)
        tool("verify", spki, theirs, data=message)
        # A signature with another salt length is refused, as Tahoe refuses it.
        maxsalt = self.path("max.sig")
        openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max",
                "-sign", key, "-out", maxsalt, msg)
        proc = subprocess.run([binary("tools/formats_tool"), "verify", spki, maxsalt], input=message,
                              capture_output=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("integrity", proc.stderr.decode())


class DebugCommands(unittest.TestCase):
    def test_every_ssk_vector_through_the_cli(self):
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "key.pem")
            for v in ssk_vectors():
                with open(key, "w") as f:
                    f.write(v["key_pem"])
                proc = run_cli("debug", "ssk-cap", "--key", key, "--format", v["format"])
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout.strip(), v["expected"])

    def test_every_chk_vector_through_the_cli(self):
        with open(os.path.join(VECTORS, "caps.json")) as f:
            vectors = [v for v in json.load(f)["vectors"] if v["kind"] == "chk"]
        self.assertEqual(len(vectors), 60)
        for v in vectors:
            seed = base64.b64decode(v["sample_seed_b64"])
            data = (seed * (v["sample_length"] // len(seed) + 1))[:v["sample_length"]]
            proc = run_cli("debug", "chk-cap", "--convergence", v["convergence_b64"], "-k", str(v["required"]),
                           "-n", str(v["total"]), "--segment-size", str(v["segment_size"]), input=data)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.decode().strip(), v["expected"])

    def test_parse_cap_json_matches_the_cap_text(self):
        with open(os.path.join(VECTORS, "caps.json")) as f:
            vectors = json.load(f)["vectors"]
        for v in vectors[::7]:
            cap = v["expected"]
            proc = run_cli("--json", "debug", "parse-cap", cap)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            out = json.loads(proc.stdout)
            fields = cap.split(":")
            if fields[1] == "CHK":
                self.assertEqual(out["kind"], "chk")
                self.assertEqual((out["key"], out["uri_extension_hash"]), (fields[2], fields[3]))
                self.assertEqual((out["k"], out["n"], out["size"]), tuple(int(x) for x in fields[4:7]))
            else:
                self.assertEqual(out["kind"], ("mdmf" if fields[1] == "MDMF" else "sdmf") + "-write")
                self.assertEqual((out["writekey"], out["fingerprint"]), (fields[2], fields[3]))
                self.assertTrue(out["read_cap"].startswith(f"URI:{fields[1]}-RO:"))

    def test_malformed_cap_exits_7_with_a_reason(self):
        proc = run_cli("debug", "parse-cap", "URI:CHK:abc")
        self.assertEqual(proc.returncode, 7)
        self.assertIn("CHK cap has 5 fields", proc.stderr)
        proc = run_cli("--json", "debug", "parse-cap", "URI:NOPE:")
        self.assertEqual(proc.returncode, 7)
        self.assertEqual(json.loads(proc.stdout)["error"]["code"], "bad_cap")


if __name__ == "__main__":
    unittest.main()
