"""MDMF mutable files through real cairnd nodes on 127.0.0.1: four storage
nodes and a client node whose grid is those four, encoding 3-of-4 (so the
segment size is 131073 bytes). `cairn mutable create --format mdmf`, put and
get round trips at the sizes that matter (empty, one byte, one segment
exactly, one segment + 1, many segments), the caps (URI:MDMF:, -RO, and the
extension fields Tahoe-LAFS accepts after the fingerprint)."""
import json
import os
import random
import re
import tempfile
import threading
import unittest

from pylib.cairntest import Node, run_cli, stop_grid

K, N = 3, 4
SEG = -(-131072 // K) * K  # Tahoe's MDMF segment size for k = 3


def metric(node, name, endpoint=None):
    """The sum of a storage node's metric `name` (of one endpoint's series)."""
    text = json.loads(run_cli("--json", "metrics", node_dir=node.dir, check=True).stdout)["text"]
    total = 0
    for labels, value in re.findall(r'^' + name + r'(?:_total)?(?:\{([^}]*)\})? (\S+)$', text, re.M):
        if endpoint is None or f'endpoint="{endpoint}"' in (labels or ""):
            total += int(float(value))
    return total


class MdmfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(N)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": N}})
        cls.client.start()
        for i, s in enumerate(cls.servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-mdmf-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    # --- helpers -------------------------------------------------------------

    def file(self, data, name="in"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cli(self, *args):
        return run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=300)

    def ok(self, *args):
        p = self.cli(*args)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout)

    def read(self, target, *extra):
        out = os.path.join(self.tmp, "out")
        r = self.ok("mutable", "get", target, "-o", out, *extra)
        with open(out, "rb") as f:
            return f.read(), r

    def create(self, data):
        made = self.ok("mutable", "create", "--format", "mdmf", self.file(data))
        self.assertTrue(made["writecap"].startswith("URI:MDMF:"), made)
        self.assertTrue(made["readcap"].startswith("URI:MDMF-RO:"), made)
        return made

    # --- round trips ---------------------------------------------------------

    def test_round_trips_at_the_sizes_that_matter(self):
        rng = random.Random(19)
        for size in (0, 1, SEG, SEG + 1, 9 * SEG + 1234):
            with self.subTest(size=size):
                first, second = rng.randbytes(size), rng.randbytes(size + 5)
                made = self.create(first)
                cap = made["writecap"]
                self.assertEqual((made["seqnum"], made["size"]), (1, size))
                got, r = self.read(cap)
                self.assertTrue(got == first, f"size {size}: first version differs")
                self.assertEqual(r["seqnum"], 1)
                put = self.ok("mutable", "put", cap, self.file(second))
                self.assertEqual((put["writecap"], put["seqnum"], put["size"]), (cap, 2, size + 5))
                got, r = self.read(made["readcap"])
                self.assertTrue(got == second, f"size {size}: second version differs")
                self.assertEqual(r["seqnum"], 2)

    def test_ranged_reads_at_every_segment_boundary(self):
        data = random.Random(23).randbytes(6 * SEG + 99)
        cap = self.create(data)["readcap"]
        cases = [(0, 1), (0, SEG), (len(data) - 1, 1), (len(data), 5), (len(data) + 7, 5), (3, 0)]
        for b in range(SEG, len(data), SEG):
            cases += [(b - 1, 1), (b, 1), (b - 1, 2), (b - SEG, SEG), (b, SEG + 1)]
        for offset, size in cases:
            with self.subTest(offset=offset, size=size):
                got, r = self.read(cap, "--offset", str(offset), "--size", str(size))
                self.assertTrue(got == data[offset:offset + size], f"{len(got)} bytes")
                self.assertEqual((r["file_size"], r["offset"]), (len(data), min(offset, len(data))))
        # From an offset to the end; and one byte costs about one block per share.
        got, _ = self.read(cap, "--offset", str(SEG + 5))
        self.assertTrue(got == data[SEG + 5:])
        _, r = self.read(cap, "--offset", str(4 * SEG + 3), "--size", "1")
        self.assertLess(r["bytes_fetched"], K * (SEG // K + 16 + 59 + 1024), r)
        p = self.cli("mutable", "get", cap, "--offset", "-1")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)

    def update(self, cap, offset, data, model):
        r = self.ok("mutable", "put", cap, self.file(data, "patch"), "--offset", str(offset))
        if len(model) < offset + len(data):
            model.extend(bytes(offset + len(data) - len(model)))
        model[offset:offset + len(data)] = data
        self.assertEqual(r["size"], len(model))
        got, _ = self.read(cap)
        self.assertTrue(got == bytes(model), f"after an update at {offset} of {len(data)} bytes")
        return r

    def test_in_place_updates(self):
        rng = random.Random(29)
        model = bytearray(rng.randbytes(4 * SEG + 500))
        cap = self.create(bytes(model))["writecap"]
        seq = 1
        for offset, size in ((0, 10), (2 * SEG + 77, 1000), (SEG - 3, 6), (len(model) - 4, 4),
                             (len(model) - 2, 300), (len(model), SEG + 1)):
            with self.subTest(offset=offset, size=size):
                r = self.update(cap, offset, rng.randbytes(size), model)
                seq += 1
                self.assertEqual(r["seqnum"], seq)
        # --offset on an SDMF file, and past the end.
        sdmf = self.ok("mutable", "create", self.file(b"one segment"))["writecap"]
        p = self.cli("mutable", "put", sdmf, self.file(b"x"), "--offset", "1")
        self.assertEqual((p.returncode, json.loads(p.stdout)["error"]["code"]), (2, "invalid_argument"), p.stdout)
        p = self.cli("mutable", "put", cap, self.file(b"x"), "--offset", str(len(model) + 1))
        self.assertEqual((p.returncode, json.loads(p.stdout)["error"]["code"]), (2, "invalid_argument"), p.stdout)

    def test_one_byte_of_a_64_segment_file_writes_one_segment(self):
        model = bytearray(random.Random(31).randbytes(64 * SEG))
        cap = self.create(bytes(model))["writecap"]
        rtw = [metric(s, "cairn_gbs_requests", "read_test_write") for s in self.servers]
        bytes_in = [metric(s, "cairn_gbs_bytes_in") for s in self.servers]
        r = self.update(cap, 40 * SEG + 99, b"!", model)
        self.assertEqual([metric(s, "cairn_gbs_requests", "read_test_write") - b for s, b in zip(self.servers, rtw)],
                         [1] * N)
        block = SEG // K
        # Per share: one salt and block, 7 tree nodes, the chain, signature, offsets, prefix.
        self.assertEqual(r["bytes_written"], N * (16 + block + 7 * 32 + 2 * 34 + 256 + 64 + 59), r)
        received = sum(metric(s, "cairn_gbs_bytes_in") - b for s, b in zip(self.servers, bytes_in))
        # What the servers received in all (requests of the map, the reads and
        # the writes, with their HTTP and CBOR framing): about one block each,
        # where the whole share is 64 blocks.
        self.assertLess(received, N * (block + 16 * 1024), received)

    def test_concurrent_in_place_updates(self):
        seg_data = random.Random(37).randbytes(3 * SEG)
        cap = self.create(seg_data)["writecap"]
        a, b = b"A" * 500, b"B" * 700
        results = [None, None]

        def run(i, offset, data):
            path = self.file(data, f"c{i}")
            results[i] = self.cli("mutable", "put", cap, path, "--offset", str(offset))

        threads = [threading.Thread(target=run, args=(0, SEG - 100, a)),
                   threading.Thread(target=run, args=(1, 2 * SEG + 3, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The node runs puts of one file one after another (its slot lock):
        # both succeed, in some order, and the file holds both writes.
        for p in results:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got, r = self.read(cap)
        want = bytearray(seg_data)
        want[SEG - 100:SEG + 400] = a
        want[2 * SEG + 3:2 * SEG + 703] = b
        self.assertEqual((got == bytes(want), r["seqnum"]), (True, 3))

    def test_default_format_stays_sdmf(self):
        made = self.ok("mutable", "create", self.file(b"sdmf"))
        self.assertTrue(made["writecap"].startswith("URI:SSK:"), made)
        made = self.ok("mutable", "create", "--format", "sdmf", self.file(b"sdmf"))
        self.assertTrue(made["writecap"].startswith("URI:SSK:"), made)
        p = self.cli("mutable", "create", "--format", "chk", self.file(b"x"))
        self.assertNotEqual(p.returncode, 0)

    def test_caps_with_extension_fields(self):
        data = random.Random(5).randbytes(3 * SEG)
        made = self.create(data)
        # Tahoe-LAFS writes MDMF caps with extension fields (k, segment
        # size) after the fingerprint and ignores them when parsing.
        for cap in (made["writecap"] + f":{K}:{SEG}", made["readcap"] + f":{K}:{SEG}"):
            got, _ = self.read(cap)
            self.assertTrue(got == data, cap)
        put = self.ok("mutable", "put", made["writecap"] + f":{K}:{SEG}", self.file(b"replaced"))
        self.assertEqual(put["seqnum"], 2)
        got, _ = self.read(made["readcap"])
        self.assertEqual(got, b"replaced")
        p = self.cli("mutable", "put", made["readcap"], self.file(b"no"))
        self.assertEqual(p.returncode, 7, p.stdout)
        self.assertEqual(json.loads(p.stdout)["error"]["code"], "bad_cap")


if __name__ == "__main__":
    unittest.main()
