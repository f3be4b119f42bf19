"""cairn's GBS message codec against Debian's python3-cbor2: each message
built the way Tahoe-LAFS's Python client and server build it (dicts in their
key order, Python sets, which cbor2 writes as tag 258) must decode in cairn
and re-encode to exactly cbor2's bytes; malformed variants must be refused."""
import os
import random
import subprocess
import sys
import unittest

import cbor2

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary  # noqa: E402

V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"


def S(members):
    """A set as cbor2 writes a Python set (tag 258 around an array), with
    the members sorted: cairn keeps share numbers sorted, and a Python set's
    iteration order is arbitrary."""
    return cbor2.CBORTag(258, sorted(members))


def roundtrip(kind, body):
    proc = subprocess.run([binary("tools/gbs_tool"), "roundtrip", kind], input=body, capture_output=True,
                          timeout=30)
    return proc.returncode, proc.stdout, proc.stderr.decode()


class GbsMessages(unittest.TestCase):
    def same(self, kind, obj):
        body = cbor2.dumps(obj)
        code, out, err = roundtrip(kind, body)
        self.assertEqual(code, 0, f"{kind}: {err}")
        self.assertEqual(out.hex(), body.hex(), kind)
        return out

    def test_python_sets_in_any_order_decode_to_the_same_set(self):
        shares = {200, 3, 77, 12, 255, 0}
        code, out, err = roundtrip("allocate", cbor2.dumps({"share-numbers": shares, "allocated-size": 5}))
        self.assertEqual(code, 0, err)
        self.assertEqual(cbor2.loads(out), {"share-numbers": shares, "allocated-size": 5})

    def refused(self, kind, obj):
        code, _, err = roundtrip(kind, cbor2.dumps(obj))
        self.assertEqual(code, 1, f"{kind} accepted {obj!r}")
        self.assertIn("invalid_argument", err)

    def test_messages_as_tahoe_builds_them(self):
        rng = random.Random(258)
        self.same("version", {V1: {b"maximum-immutable-share-size": 2**40, b"maximum-mutable-share-size": 69105 * 10**12,
                                   b"available-space": 2**40}, b"application-version": b"tahoe-lafs/1.20.0"})
        for _ in range(20):
            shares = set(rng.sample(range(256), rng.randrange(0, 12)))
            self.same("allocate", {"share-numbers": S(shares), "allocated-size": rng.randrange(0, 2**40)})
            self.same("allocate-response", {"already-have": S(rng.sample(range(256), 3)), "allocated": S(shares)})
            self.same("shares", S(shares))
        self.same("required", {"required": [{"begin": 0, "end": 10}, {"begin": 1000000, "end": 2**33}]})
        self.same("required", {"required": []})
        self.same("corrupt", {"reason": "block hash mismatch in share 3"})
        rtw = {"test-write-vectors": {
                   0: {"test": [{"offset": 0, "size": 1, "specimen": b"\x00"}],
                       "write": [{"offset": 0, "data": os.urandom(5000)}, {"offset": 9000, "data": b"tail"}],
                       "new-length": None},
                   7: {"test": [], "write": [], "new-length": 0}},
               "read-vector": [{"offset": 0, "size": 4000}]}
        self.same("rtw", rtw)
        self.same("rtw", {"test-write-vectors": {}, "read-vector": []})
        self.same("rtw-response", {"success": False, "data": {0: [b"abc"], 7: [b""]}})
        self.same("rtw-response", {"success": True, "data": {}})

    def test_malformed_messages_are_refused(self):
        self.refused("allocate", {"share-numbers": [1, 2], "allocated-size": 1})        # no tag 258
        self.refused("allocate", {"share-numbers": {1}, "allocated-size": 1, "x": 1})   # extra key
        self.refused("allocate", {"share-numbers": {1}})                                # missing key
        self.refused("allocate", {"share-numbers": {256}, "allocated-size": 1})         # share 256
        self.refused("allocate", {"share-numbers": {1}, "allocated-size": -1})
        self.refused("corrupt", {"reason": ""})
        self.refused("corrupt", {"reason": b"bytes"})
        self.refused("rtw", {"test-write-vectors": {0: {"test": [], "write": []}}, "read-vector": []})
        self.refused("rtw", {"test-write-vectors": {0: {"test": [], "write": [], "new-length": "x"}},
                             "read-vector": []})
        self.refused("rtw", {"test-write-vectors": {}, "read-vector": [{"offset": 0, "size": 1}] * 31})
        self.refused("version", {"protocols": {}, "application-version": b"x"})       # text keys
        code, _, _ = roundtrip("shares", cbor2.dumps({1}) + b"\x00")
        self.assertEqual(code, 1)


if __name__ == "__main__":
    unittest.main()
