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

from pylib.cairntest import Node, run_cli, stop_grid, wait_for

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


def status_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmHWM: peak RSS; RssAnon: the
    anonymous part of the RSS now)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class MdmfTwoWritersTest(unittest.TestCase):
    """Two client nodes of one grid update the same MDMF file in place at
    once: the one that writes second finds the first's version on the
    servers and fails uncoordinated_write, and a read returns one whole
    version. The test hold (CAIRN_TEST_HOOKS) stops the second writer after
    its servermap update, so the first writes in between, every time."""

    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(N)]
        for s in cls.servers:
            s.start()
        patch = {"client": {"shares_needed": K, "shares_total": N, "shares_happy": N}}
        cls.a = Node("a", config_patch=patch)
        cls.b = Node("b", config_patch=patch)
        for c in (cls.a, cls.b):
            c.start(test_hooks=True)
            for i, s in enumerate(cls.servers):
                nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
                run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=c.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-mdmf2-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.a, cls.b], cls.tmp)

    def call(self, node, method, params, data=None, wait=True):
        c = node.control()
        try:
            req = {"v": 1, "id": 1, "method": method, "params": params, "wait": wait}
            if data is None:
                c.send(req)
                return c.read_final()
            req["params"] = {**params, "size": len(data)}
            c.send(req)
            c.send_data(1, 0, data, eof=True)
            return c.read_final()
        finally:
            c.close()

    def task(self, node, id):
        return self.call(node, "tasks.show", {"id": id})["result"]

    def test_two_nodes_update_one_file_at_once(self):
        # B's write: inside a segment, next to A's, and a whole segment (B then
        # reads no old bytes, only tree nodes, and finds the new version by
        # the signed prefix it reads with them).
        for round_, (a_at, b_at, b_len) in enumerate([(SEG - 100, 2 * SEG + 3, 1000), (5, 10, 1000),
                                                       (0, SEG, SEG)]):
            with self.subTest(round=round_):
                old = random.Random(round_).randbytes(3 * SEG)
                path = os.path.join(self.tmp, "in")
                with open(path, "wb") as f:
                    f.write(old)
                made = run_cli("--json", "-q", "mutable", "create", "--format", "mdmf", path, node_dir=self.a.dir,
                               timeout=120, check=True)
                cap = json.loads(made.stdout)["writecap"]
                a_data, b_data = b"A" * 1000, b"B" * b_len
                # B maps the file, then waits before its first write.
                queued = self.call(self.b, "mutable.put", {"target": cap, "offset": b_at, "hold_ms": 3000}, b_data,
                                   wait=False)
                b_task = queued["result"]["task"]
                wait_for(lambda: self.task(self.b, b_task).get("progress", {}).get("phase") == "held",
                         what="B's update to be held after its servermap update")
                # A updates meanwhile (its own map sees seqnum 1 still).
                a = self.call(self.a, "mutable.put", {"target": cap, "offset": a_at}, a_data)
                self.assertIn("result", a, a)
                done = self.call(self.b, "tasks.wait", {"id": b_task})["result"]
                self.assertEqual(done["state"], "failed", done)
                self.assertEqual(done["error"]["code"], "uncoordinated_write", done)
                # Both nodes read A's whole version, never B's bytes in it.
                want = bytearray(old)
                want[a_at:a_at + len(a_data)] = a_data
                for node in (self.a, self.b):
                    out = os.path.join(self.tmp, "out")
                    got = run_cli("--json", "-q", "mutable", "get", cap, "-o", out, node_dir=node.dir, timeout=120,
                                  check=True)
                    with open(out, "rb") as f:
                        self.assertEqual(f.read() == bytes(want), True)
                    self.assertEqual(json.loads(got.stdout)["seqnum"], 2)


class MdmfMemoryTest(unittest.TestCase):
    """The client cairnd's memory while it creates and reads an MDMF file
    of MEMORY_MIB (CAIRN_TEST_MDMF_MEMORY_MIB, default 64): bounded by a few
    segments, not by the file. Its peak RSS (VmHWM) after the create and
    after the reads of the whole file and of a 20 MiB range may grow by at
    most GROWTH_MIB over its peak before them (after a small MDMF file was
    made and read), half the file: holding the file alone would pass it,
    and its N/k shares as well would be 2.3 times the file. ASan's
    quarantine of freed memory is limited for this node so that it does not
    stand in for the heap. Measured (ASan): +17 MiB by the create and +23 to
    +26 MiB by the reads, for files of 48 and 128 MiB alike."""

    MEMORY_MIB = int(os.environ.get("CAIRN_TEST_MDMF_MEMORY_MIB", "64"))
    GROWTH_MIB = 32

    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(N)]
        for s in cls.servers:
            s.patch_config({"limits": {"gbs_rtw_body_bytes": 8 << 20}})
            s.start()
        cls.client = Node("client", config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": N}})
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=4"
        try:
            cls.client.start()
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        for i, s in enumerate(cls.servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-mdmfmem-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def test_create_and_read_hold_a_few_segments(self):
        size = self.MEMORY_MIB << 20
        data = random.Random(48).randbytes(size)
        path = os.path.join(self.tmp, "big")
        with open(path, "wb") as f:
            f.write(data)
        pid = self.client.proc.pid
        # A small MDMF file first, so that the peak before includes what any
        # create and read of MDMF needs (the key, the grid's connections).
        small = os.path.join(self.tmp, "small")
        with open(small, "wb") as f:
            f.write(b"x" * 1000)
        cap = json.loads(run_cli("--json", "-q", "mutable", "create", "--format", "mdmf", small,
                                 node_dir=self.client.dir, timeout=120, check=True).stdout)["writecap"]
        run_cli("-q", "mutable", "get", cap, "-o", os.path.join(self.tmp, "o"), node_dir=self.client.dir,
                timeout=120, check=True)
        before = status_kib(pid, "VmHWM")
        made = run_cli("--json", "-q", "mutable", "create", "--format", "mdmf", path, node_dir=self.client.dir,
                       timeout=600, check=True)
        cap = json.loads(made.stdout)["writecap"]
        after_create = status_kib(pid, "VmHWM")
        out = os.path.join(self.tmp, "out")
        run_cli("-q", "mutable", "get", cap, "-o", out, node_dir=self.client.dir, timeout=600, check=True)
        with open(out, "rb") as f:
            self.assertEqual(f.read() == data, True, "the whole read differs")
        ranged = run_cli("-q", "mutable", "get", cap, "--offset", str(size // 3), "--size", str(20 << 20),
                         "-o", out, node_dir=self.client.dir, timeout=600, check=True)
        self.assertEqual(ranged.returncode, 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read() == data[size // 3:size // 3 + (20 << 20)], True, "the ranged read differs")
        after_read = status_kib(pid, "VmHWM")
        growth = {"create": (after_create - before) >> 10, "read": (after_read - before) >> 10}
        print(f"mdmf memory: {self.MEMORY_MIB} MiB file, client VmHWM {before >> 10} MiB before, "
              f"+{growth['create']} MiB by the create, +{growth['read']} MiB by the reads", flush=True)
        self.assertLessEqual(max(growth.values()), self.GROWTH_MIB, growth)
