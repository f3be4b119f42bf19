"""cairn's CBOR codec against Debian's python3-cbor2 (which we did not write):
what cbor2 encodes, cairn decodes to the same values; what cairn encodes is
byte-for-byte what cbor2 encodes, and cbor2 decodes it back."""
import json
import os
import random
import subprocess
import sys
import unittest

import cbor2

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary  # noqa: E402


def diag(obj):
    """The cbor_tool diagnostic form of a Python value."""
    if obj is True or obj is False or obj is None:
        return obj
    if isinstance(obj, int):
        return {"uint": str(obj)} if obj >= 0 else {"neg": str(obj)}
    if isinstance(obj, bytes):
        return {"bytes": obj.hex()}
    if isinstance(obj, str):
        return {"text": obj}
    if isinstance(obj, list):
        return {"array": [diag(x) for x in obj]}
    if isinstance(obj, dict):
        return {"map": [[diag(k), diag(v)] for k, v in obj.items()]}
    if isinstance(obj, (set, frozenset)):
        return {"tag": "258", "value": {"array": [diag(x) for x in obj]}}
    raise TypeError(obj)


def random_value(rng, depth=0):
    kinds = ["uint", "neg", "bytes", "text", "bool", "none"]
    if depth < 4:
        kinds += ["list", "dict", "set"]
    kind = rng.choice(kinds)
    if kind == "uint":
        return rng.choice([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, rng.randrange(2**64)])
    if kind == "neg":
        return -rng.choice([1, 24, 25, 256, 257, 2**32, 2**63, 2**64, rng.randrange(1, 2**64)])
    if kind == "bytes":
        return rng.randbytes(rng.choice([0, 1, 23, 24, 300]))
    if kind == "text":
        return "".join(rng.choice("abc é✓") for _ in range(rng.randrange(30)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == "dict":
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(5))}
    return {rng.randrange(256) for _ in range(rng.randrange(5))}


def tool(mode, data):
    proc = subprocess.run([binary("tools/cbor_tool"), mode], input=data, capture_output=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


class CborInteropTest(unittest.TestCase):
    def test_gbs_shapes(self):
        samples = [
            {"share-numbers": {1, 7}, "allocated-size": 48},
            {"already-have": set(), "allocated": {0, 1, 2}},
            {"success": True, "data": {3: [b"ab"]}},
            {"secrets": {"write-enabler": b"\x00" * 32, "lease-renew-secret": b"r" * 32,
                         "lease-cancel-secret": b"c" * 32},
             "test-write-vectors": {0: {"test": [{"offset": 0, "size": 2, "specimen": b"hi"}],
                                        "write": [{"offset": 10, "data": b"x" * 100}],
                                        "new-length": None}},
             "read-vector": [{"offset": 0, "size": 100}]},
            {b"http://allmydata.org/tahoe/protocols/storage/v1": {b"maximum-immutable-share-size": 2**40}},
        ]
        for obj in samples:
            data = cbor2.dumps(obj)
            code, out, err = tool("decode", data)
            self.assertEqual(code, 0, err)
            self.assertEqual(json.loads(out), diag(obj), obj)
            code, enc, err = tool("encode", json.dumps(diag(obj)).encode())
            self.assertEqual(code, 0, err)
            self.assertEqual(enc.hex(), data.hex(), f"cairn's encoding differs from cbor2's for {obj!r}")
            self.assertEqual(cbor2.loads(enc), obj)

    def test_random_values_both_ways(self):
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        for _ in range(60):
            obj = random_value(rng)
            data = cbor2.dumps(obj)
            code, out, err = tool("decode", data)
            self.assertEqual(code, 0, f"seed {seed}: {err!r}")
            self.assertEqual(json.loads(out), diag(obj), f"seed {seed}")
            code, enc, err = tool("encode", json.dumps(diag(obj)).encode())
            self.assertEqual(code, 0, f"seed {seed}: {err!r}")
            self.assertEqual(enc, data, f"seed {seed}: encodings differ for {obj!r}")

    def test_cbor2_indefinite_and_float_are_refused(self):
        for data in (cbor2.dumps(1.5), bytes.fromhex("9f01ff"), bytes.fromhex("5f4161ff"), b"\x18"):
            code, _, err = tool("decode", data)
            self.assertEqual(code, 1, data.hex())
            self.assertIn(b"CBOR at byte", err)


if __name__ == "__main__":
    unittest.main()
