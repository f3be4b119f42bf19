"""cairn deep-check (and check of a directory or a path) through real cairnd
nodes on 127.0.0.1 (docs/check.md).

Five storage nodes and a client encoding 2-of-5 with happiness 4. The tree:

    top/                 SDMF directory (the alias)
      a.txt              CHK
      lit.txt            LIT
      mut                SDMF mutable file
      sub/               SDMF directory
        b.txt            CHK
        shared           a second link to a.txt (checked once)
        deeper/          SDMF directory
          c.txt          CHK
      sub-link           a second link to sub/ (walked once)

Counts are exact: 7 objects checked (LIT files excluded, as Tahoe's JSON
counts), 8 in the plain output (Tahoe's CLI counts LIT files), in Tahoe's
depth-first order. Shares are then taken away below happiness (a CHK file
whose shares are placed by hand with an independent GBS client, a mutable
file whose share is truncated with a read-test-write): deep-check reports
them, --repair restores them, a second pass is healthy and the files read
back. A file with fewer than k shares is unrecoverable (exit 5). A mutable
object's check runs in a task holding its slot (exclusive to repair), so a
hold on the slot makes it wait; the walk is a task with progress that
`tasks cancel` stops. A repair of a directory and a `mkdir` in it, queued
together behind a hold on its slot, both land. The stats' size histogram
matches one real Tahoe-LAFS reported; --stream gives Tahoe's
stream-deep-check lines; the plain output has a progress line every 100
objects."""
import base64
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary, run_cli, stop_grid, wait_for  # noqa: E402
from pylib.gbs import GbsClient  # noqa: E402

K, N, HAPPY = 2, 5, 4
SEG = 1 << 20
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_UNRECOVERABLE = 0, 11, 5


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def a2b(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def netstring(s):
    return b"%d:%s," % (len(s), s)


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def tagged_hash(tag, value, size=32):
    return sha256d(netstring(tag) + value)[:size]


def tagged_pair_hash(tag, a, b):
    return sha256d(netstring(tag) + netstring(a) + netstring(b))


def cairn_tub_id(nurl):
    spki_hash = re.match(r"pb://([^@]+)@", nurl).group(1)
    return base64.urlsafe_b64decode(spki_hash + "=" * (-len(spki_hash) % 4))[:20]


def write_enabler(writekey, tub_id):
    master = tagged_hash(b"allmydata_mutable_writekey_to_write_enabler_master_v1", writekey)
    return tagged_pair_hash(b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1", master, tub_id)


def mutable_keys(writecap):
    writekey = a2b(writecap.split(":")[2])
    readkey = tagged_hash(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
    si = tagged_hash(b"allmydata_mutable_readkey_to_storage_index_v1", readkey, 16)
    return writekey, si


class DeepCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(5)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={"client": {"shares_needed": K, "shares_total": N,
                                                             "shares_happy": HAPPY}})
        cls.client.start(test_hooks=True)
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        for i, nurl in enumerate(cls.nurls):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-deep-", dir="/tmp")
        cls.seed = 500
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    # --- helpers -----------------------------------------------------------------

    def data(self, size):
        DeepCheckTest.seed += 1
        return random.Random(DeepCheckTest.seed).randbytes(size)

    def file(self, data):
        DeepCheckTest.count += 1
        path = os.path.join(self.tmp, f"in{DeepCheckTest.count}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cli(self, *args, want=0, timeout=180):
        p = run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=timeout)
        if want is not None:
            self.assertEqual(p.returncode, want, " ".join(args) + "\n" + p.stdout + p.stderr)
        return p

    def jcli(self, *args, want=0):
        return json.loads(self.cli(*args, want=want).stdout)

    def plain(self, *args, want=0):
        p = run_cli("-q", *args, node_dir=self.client.dir, timeout=180)
        self.assertEqual(p.returncode, want, p.stdout + p.stderr)
        return p.stdout

    def tree(self, alias):
        """Builds the tree of the module's docstring; the caps and data."""
        self.cli("alias", "create", alias)
        a, b, c = self.data(3000), self.data(5000), self.data(7000)
        self.cli("put", self.file(a), f"{alias}:a.txt")
        self.cli("put", self.file(b"tiny literal file"), f"{alias}:lit.txt")
        mut_data = self.data(4000)
        mut = self.jcli("mutable", "create", self.file(mut_data))["writecap"]
        self.cli("ln", mut, f"{alias}:mut")
        self.cli("mkdir", f"{alias}:sub")
        self.cli("put", self.file(b), f"{alias}:sub/b.txt")
        self.cli("ln", f"{alias}:a.txt", f"{alias}:sub/shared")
        self.cli("mkdir", f"{alias}:sub/deeper")
        self.cli("put", self.file(c), f"{alias}:sub/deeper/c.txt")
        self.cli("ln", f"{alias}:sub", f"{alias}:sub-link")
        return {"a": a, "b": b, "c": c, "mut": mut, "mut_data": mut_data}

    def encode(self, data):
        """chk_tool's shares of `data` (2-of-5): cap, SI, shares."""
        conv = os.urandom(16)
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.run([binary("tools/chk_tool"), "encode", conv.hex(), str(K), str(N), str(SEG), d],
                                  input=data, capture_output=True, check=True)
            cap = proc.stdout.decode().strip()
            shares = []
            for i in range(N):
                with open(os.path.join(d, f"{i}.share"), "rb") as f:
                    shares.append(f.read())
        si = json.loads(run_cli("--json", "debug", "chk-cap", "--convergence", base64.b64encode(conv).decode(),
                                "-k", str(K), "-n", str(N), input=data, check=True).stdout)["storage_index"]
        return cap, si, shares

    def place(self, server, si, shnum, share):
        c = GbsClient(self.nurls[server])
        try:
            upload = os.urandom(32)
            c.allocate(si, [shnum], len(share), os.urandom(32), os.urandom(32), upload)
            status, _ = c.write(si, shnum, 0, share, upload)
            self.assertEqual(status, 201)
        finally:
            c.close()

    def truncate_one_mutable_share(self, writecap):
        writekey, si = mutable_keys(writecap)
        for i, nurl in enumerate(self.nurls):
            c = GbsClient(nurl)
            try:
                shares = sorted(c.list_shares(b32(si), "mutable"))
                if shares:
                    r = c.rtw(b32(si), write_enabler(writekey, cairn_tub_id(nurl)), os.urandom(32), os.urandom(32),
                              {shares[0]: {"test": [], "write": [], "new-length": 0}})
                    self.assertTrue(r["success"], r)
                    return
            finally:
                c.close()
        self.fail("no share of the mutable file found")

    def reads_back(self, path, data):
        out = os.path.join(self.tmp, "out")
        self.cli("get", path, "-o", out)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data, f"{path} read back differs")

    def control_call(self, method, params):
        c = self.client.control()
        try:
            reply = c.call(method, params)
        finally:
            c.close()
        self.assertIn("result", reply, reply)
        return reply["result"]

    def hold(self, keys, ms):
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "debug.hold", "params": {"keys": keys, "ms": ms}, "wait": False})
            reply = c.read_frame()
        finally:
            c.close()
        self.assertIn("result", reply, reply)
        return reply["result"]["task"]

    # --- tests -------------------------------------------------------------------

    def test_tree_counts_order_and_dedupe(self):
        self.tree("t1")
        r = self.jcli("deep-check", "t1")
        self.assertEqual(r["count-objects-checked"], 7, r)
        self.assertEqual(r["count-objects-healthy"], 7)
        self.assertEqual(r["count-objects-unhealthy"], 0)
        self.assertEqual(r["count-corrupt-shares"], 0)
        self.assertEqual(r["list-unhealthy-files"], [])
        self.assertEqual(r["count-literal-objects"], 1)
        paths = [o["path"] for o in r["objects"]]
        # Tahoe's order (A.9): the directory, its files in name order, then
        # each subdirectory walked in name order; second links skipped.
        self.assertEqual(paths, [[], ["a.txt"], ["lit.txt"], ["mut"], ["sub"], ["sub", "b.txt"],
                                 ["sub", "deeper"], ["sub", "deeper", "c.txt"]])
        self.assertEqual([o["type"] for o in r["objects"]].count("directory"), 3)
        st = r["stats"]
        self.assertEqual((st["count-immutable-files"], st["count-mutable-files"], st["count-literal-files"],
                          st["count-directories"], st["count-files"]), (3, 1, 1, 3, 5))
        self.assertEqual(st["size-immutable-files"], 3000 + 5000 + 7000)
        self.assertEqual(st["largest-immutable-file"], 7000)
        self.assertEqual(r["root-storage-index"], r["objects"][0]["storage-index"])
        # The plain output: one line per object, Tahoe's totals (LIT counted).
        out = self.plain("deep-check", "t1")
        self.assertIn("'<root>': Healthy", out)
        self.assertIn("'sub/deeper/c.txt': Healthy", out)
        self.assertIn("'lit.txt': Healthy (LIT)", out)
        self.assertTrue(out.rstrip().endswith("done: 8 objects checked, 8 healthy, 0 unhealthy"), out)
        # --verify reads every share: still healthy, and bytes were verified.
        v = self.jcli("deep-check", "t1", "--verify")
        self.assertEqual(v["count-objects-healthy"], 7)
        self.assertGreater(v["bytes-verified"], 0)
        # A subtree from a path, and from the directory's cap.
        sub = self.jcli("deep-check", "t1:sub")  # sub, b.txt, shared (a.txt), deeper, c.txt
        self.assertEqual(sub["count-objects-checked"], 5)
        dircap = self.jcli("alias", "get", "t1")["cap"]
        whole = self.jcli("deep-check", dircap)
        self.assertEqual(whole["count-objects-checked"], 7)
        # check of a directory (its backing file only, C.7) and of a path.
        d = self.jcli("check", "t1")
        self.assertTrue(d["results"]["healthy"])
        self.assertEqual(d["storage-index"], r["root-storage-index"])
        f = self.jcli("check", "t1:sub/deeper/c.txt")
        self.assertEqual(f["results"]["count-shares-good"], N)
        self.assertEqual(f["storage-index"], r["objects"][-1]["storage-index"])
        lit = self.jcli("check", "t1:lit.txt")
        self.assertTrue(lit["results"]["healthy"])
        missing = self.cli("check", "t1:sub/nothing", want=None)
        self.assertEqual(missing.returncode, 3, missing.stdout + missing.stderr)

    def test_missing_shares_repaired_and_counts_exact(self):
        t = self.tree("t2")
        # A CHK file with 3 of 5 shares (above k = 2, below happy = 4).
        partial = self.data(40000)
        cap, si, shares = self.encode(partial)
        for sh in range(3):
            self.place(sh, si, sh, shares[sh])
        self.cli("ln", cap, "t2:sub/deeper/partial")
        # The mutable file loses one share.
        self.truncate_one_mutable_share(t["mut"])
        r = self.jcli("deep-check", "t2", want=EXIT_UNHEALTHY)
        self.assertEqual(r["count-objects-checked"], 8)
        self.assertEqual(r["count-objects-healthy"], 6)
        self.assertEqual(r["count-objects-unhealthy"], 2)
        unhealthy = {tuple(p): res for p, res in r["list-unhealthy-files"]}
        self.assertEqual(set(unhealthy), {("mut",), ("sub", "deeper", "partial")})
        self.assertEqual(unhealthy[("sub", "deeper", "partial")]["results"]["count-shares-good"], 3)
        self.assertEqual(unhealthy[("mut",)]["results"]["count-shares-good"], N - 1)
        rep = self.jcli("deep-check", "t2", "--repair")
        self.assertEqual(rep["count-objects-checked"], 8)
        self.assertEqual(rep["count-objects-healthy-pre-repair"], 6)
        self.assertEqual(rep["count-objects-unhealthy-pre-repair"], 2)
        self.assertEqual(rep["count-repairs-attempted"], 2)
        self.assertEqual(rep["count-repairs-successful"], 2)
        self.assertEqual(rep["count-repairs-unsuccessful"], 0)
        self.assertEqual(rep["count-objects-healthy-post-repair"], 8)
        self.assertEqual(rep["count-objects-unhealthy-post-repair"], 0)
        again = self.jcli("deep-check", "t2")
        self.assertEqual(again["count-objects-healthy"], 8)
        self.reads_back("t2:sub/deeper/partial", partial)
        self.reads_back("t2:sub/b.txt", t["b"])
        out = os.path.join(self.tmp, "mut")
        self.cli("mutable", "get", t["mut"], "-o", out)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == t["mut_data"])
        # Plain output with --repair: Tahoe's four lines.
        out = self.plain("deep-check", "t2", "--repair")
        self.assertIn("done: 9 objects checked\n pre-repair: 9 healthy, 0 unhealthy\n"
                      " 0 repairs attempted, 0 successful, 0 failed\n post-repair: 9 healthy, 0 unhealthy", out)

    def test_below_k_is_unrecoverable(self):
        self.cli("alias", "create", "t3")
        data = self.data(30000)
        cap, si, shares = self.encode(data)
        self.place(0, si, 0, shares[0])
        self.cli("ln", cap, "t3:gone")
        r = self.jcli("deep-check", "t3", "--repair", want=EXIT_UNRECOVERABLE)
        self.assertEqual(r["count-objects-unrecoverable"], 1)
        self.assertEqual(r["count-repairs-attempted"], 0)
        self.assertEqual(r["count-objects-unhealthy-post-repair"], 1)
        c = GbsClient(self.nurls[1])
        try:
            self.assertEqual(set(c.list_shares(si, "immutable")), set())  # nothing was written
        finally:
            c.close()

    def test_object_tasks_hold_the_slot_and_the_walk_is_cancellable(self):
        t = self.tree("t4")
        _, si = mutable_keys(t["mut"])
        # The mutable file's repair waits for a hold on its slot, as a
        # `mutable put` would.
        held = self.hold([f"slot/{b32(si)}"], 1500)
        walk = self.jcli("deep-check", "t4", "--repair", "--async")["task"]

        def object_task():
            # Several objects are checked at once: the mutable file's task
            # is found by its storage index.
            for rec in self.jcli("tasks", "list")["tasks"]:
                params = rec.get("params", {})
                if (rec["kind"] == "check" and params.get("deep_check_task") == walk and
                        params.get("storage_index") == b32(si)):
                    return rec
            return None
        wait_for(lambda: object_task() is not None, timeout=30, what="the mutable object's task")
        shown = self.jcli("tasks", "show", str(object_task()["id"]))
        self.assertIn({"key": f"slot/{b32(si)}", "mode": "exclusive"}, shown["keys"])
        if shown["state"] == "queued":
            self.assertEqual(shown["waiting_on"][0]["held_by"], held)
        done = self.control_call("tasks.wait", {"id": walk})
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["kind"], "deep-check")
        self.assertTrue(done["progress"]["phase"].startswith("deep-check"), done["progress"])
        self.assertEqual(done["progress"]["done"], 8)
        self.assertEqual(done["result"]["count-objects-checked"], 7)
        # Cancelled while its mutable object waits behind a hold: it ends cancelled.
        self.hold([f"slot/{b32(si)}"], 1500)
        walk = self.jcli("deep-check", "t4", "--async")["task"]
        wait_for(lambda: object_task() is not None, timeout=30, what="the mutable object's task")
        self.cli("tasks", "cancel", str(walk))
        done = self.control_call("tasks.wait", {"id": walk})
        self.assertEqual(done["state"], "cancelled", done)

    def test_directory_repair_and_directory_change_are_serialized(self):
        self.cli("alias", "create", "t5")
        self.cli("mkdir", "t5:d")
        dircap = self.jcli("alias", "get", "t5")["cap"]
        si = json.loads(run_cli("--json", "debug", "parse-cap", dircap, check=True).stdout)["storage_index"]
        # The top directory loses a share: the walk repairs it (a publish).
        self.truncate_one_mutable_share(dircap)
        # Both wait behind a hold on the directory's slot: the walk's object
        # task for the directory (exclusive, to repair), then a mkdir in
        # that directory. Neither loses its write.
        self.hold([f"slot/{si}"], 1500)
        walk = self.jcli("deep-check", "t5", "--repair", "--async")["task"]

        def object_task():
            for rec in self.jcli("tasks", "list")["tasks"]:
                if rec["kind"] == "check" and rec.get("params", {}).get("deep_check_task") == walk:
                    return rec
            return None
        wait_for(lambda: object_task() is not None, timeout=30, what="the directory's object task")
        mkdir = subprocess.Popen([binary("cairn"), "-d", self.client.dir, "-q", "mkdir", "t5:e"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        done = self.control_call("tasks.wait", {"id": walk})
        out, err = mkdir.communicate(timeout=180)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(mkdir.returncode, 0, out + err)
        r = done["result"]
        self.assertEqual(r["count-repairs-attempted"], 1, r)
        self.assertEqual(r["count-repairs-successful"], 1, r)
        names = sorted(self.jcli("ls", "--json", "t5:")[1]["children"])
        self.assertEqual(names, ["d", "e"])
        again = self.jcli("deep-check", "t5")
        self.assertEqual(again["count-objects-unhealthy"], 0)
        self.assertEqual(again["count-objects-checked"], 3)


    def test_walk_lists_are_bounded_and_in_order(self):
        # One immutable directory (a DIR2-CHK body built here) holding
        # 1,050 CHK caps whose shares exist nowhere (each unrecoverable) and
        # 10,050 LIT files. The counts are whole; the walk's lists are not:
        # at most 10,000 objects and 1,000 unhealthy files are kept, so the
        # walker's memory does not grow with each object (docs/check.md,
        # "Memory"). The objects are listed in Tahoe's order.
        rng = random.Random(2121)
        entries = []
        for i in range(1050):
            cap = "URI:CHK:%s:%s:%d:%d:%d" % (b32(rng.randbytes(16)), b32(rng.randbytes(32)), K, N, 5000 + i)
            entries.append((b"c%05d" % i, cap.encode()))
        for i in range(10050):
            entries.append((b"l%05d" % i, b"URI:LIT:" + b32(b"x%d" % i).encode()))
        # Metadata as `tahoe backup` writes it, so the listing below is a
        # few MB.
        md = json.dumps({"ctime": 1796000000.1234567, "mtime": 1796000000.1234567, "st_mode": 33188,
                         "st_ino": 11067706, "st_dev": 65024, "st_nlink": 1, "st_uid": 1000, "st_gid": 1000,
                         "st_size": 5000, "tahoe": {"linkcrtime": 1796000001.5, "linkmotime": 1796000001.5}}).encode()
        body = b"".join(netstring(netstring(name) + netstring(cap) + netstring(b"") + netstring(md))
                        for name, cap in entries)
        put = self.jcli("put", self.file(body))
        dircap = put["cap"].replace("URI:CHK:", "URI:DIR2-CHK:", 1)
        self.cli("alias", "add", "t6", dircap)
        r = self.jcli("deep-check", "t6", want=EXIT_UNRECOVERABLE)
        self.assertEqual(r["count-objects-checked"], 1051)  # the directory and the CHK files
        self.assertEqual(r["count-objects-healthy"], 1)
        self.assertEqual(r["count-objects-unhealthy"], 1050)
        self.assertEqual(r["count-objects-unrecoverable"], 1050)
        self.assertEqual(r["count-literal-objects"], 10050)
        self.assertEqual(len(r["list-unhealthy-files"]), 1000)
        self.assertEqual([u[0] for u in r["list-unhealthy-files"]], [["c%05d" % i] for i in range(1000)])
        self.assertTrue(r["lists-truncated"])
        self.assertEqual(len(r["objects"]), 10000)
        self.assertTrue(r["objects-truncated"])
        self.assertEqual([o["path"] for o in r["objects"][:1052]],
                         [[]] + [["c%05d" % i] for i in range(1050)] + [["l00000"]])
        self.assertEqual(r["list-errors"], [])
        # The same directory listed: an answer of a few MB (more than the
        # control socket's write buffer bound) arrives whole.
        listing = self.jcli("ls", "--json", "t6:")
        children = listing[1]["children"]
        self.assertEqual(len(children), 11100)
        self.assertEqual(children["c01049"][1]["ro_uri"], entries[1049][1].decode())
        self.assertEqual(len(self.plain("ls", "t6:").splitlines()), 11100)

    def test_size_histogram_matches_tahoe(self):
        # The files of Tahoe's deep-check vector (vectors/dirs/check-examples.json,
        # "deep_check_start_json_1of1"): a 14-byte LIT file, CHK files of 65
        # and 2,700 bytes, a mutable file (not in the histogram).
        # Its stats, as real Tahoe-LAFS reported them:
        tahoe = {"size-literal-files": 14, "size-immutable-files": 2765, "largest-immutable-file": 2700,
                 "size-files-histogram": [[11, 31, 1], [32, 100, 1], [1001, 3162, 1]]}
        self.cli("alias", "create", "t7")
        self.cli("put", self.file(self.data(tahoe["size-literal-files"])), "t7:lit")
        self.cli("put", self.file(self.data(65)), "t7:small")
        self.cli("put", self.file(self.data(tahoe["largest-immutable-file"])), "t7:big")
        mut = self.jcli("mutable", "create", self.file(self.data(500)))["writecap"]
        self.cli("ln", mut, "t7:mut")
        r = self.jcli("deep-check", "t7")
        self.assertEqual(r["stats"]["size-immutable-files"], tahoe["size-immutable-files"])
        self.assertEqual(r["stats"]["size-files-histogram"], tahoe["size-files-histogram"])
        # Tahoe's buckets, two per decade, computed as its Python does.
        self.cli("alias", "create", "t8")
        sizes = [0, 1, 3, 4, 10, 11, 31, 32, 100, 101, 316, 317, 1000, 1001, 3162, 3163, 10000, 10001, 31622,
                 31623]
        for i, size in enumerate(sizes):
            self.cli("put", self.file(self.data(size)), f"t8:f{i:02d}")
        h = self.jcli("deep-check", "t8")["stats"]["size-files-histogram"]
        self.assertEqual(h, [[0, 0, 1], [1, 3, 2], [4, 10, 2], [11, 31, 2], [32, 100, 2], [101, 316, 2],
                             [317, 1000, 2], [1001, 3162, 2], [3163, 10000, 2], [10001, 31622, 2],
                             [31623, 100000, 1]])

    def test_stream_lines(self):
        t = self.tree("t9")
        p = run_cli("deep-check", "t9", "--stream", node_dir=self.client.dir, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([line["path"] for line in lines[:-1]],
                         [[], ["a.txt"], ["lit.txt"], ["mut"], ["sub"], ["sub", "b.txt"], ["sub", "deeper"],
                          ["sub", "deeper", "c.txt"]])
        self.assertEqual(lines[-1]["type"], "stats")
        self.assertEqual(lines[-1]["stats"]["count-directories"], 3)
        self.assertEqual(lines[-1]["stats"]["size-immutable-files"], 3000 + 5000 + 7000)
        by_path = {"/".join(line["path"]): line for line in lines[:-1]}
        for line in lines[:-1]:
            self.assertEqual(set(line), {"path", "cap", "type", "verifycap", "repaircap", "storage-index",
                                         "check-results"})
            self.assertEqual(line["storage-index"], line["check-results"]["storage-index"])
        root = by_path[""]
        self.assertEqual(root["type"], "directory")
        self.assertEqual(root["cap"], self.jcli("alias", "get", "t9")["cap"])
        self.assertEqual(root["repaircap"], root["cap"])
        self.assertTrue(root["verifycap"].startswith("URI:DIR2-Verifier:"), root)
        a = by_path["a.txt"]
        self.assertEqual(a["type"], "file")
        self.assertTrue(a["verifycap"].startswith("URI:CHK-Verifier:"), a)
        self.assertEqual(a["repaircap"], a["verifycap"])  # Tahoe's repair cap of a CHK file
        self.assertTrue(a["check-results"]["results"]["healthy"])
        mut = by_path["mut"]
        self.assertEqual((mut["cap"], mut["repaircap"]), (t["mut"], t["mut"]))
        self.assertTrue(mut["verifycap"].startswith("URI:SSK-Verifier:"), mut)
        lit = by_path["lit.txt"]
        self.assertEqual((lit["verifycap"], lit["repaircap"], lit["storage-index"]), ("", "", ""))
        # With --repair each line holds the check-and-repair results.
        rep = run_cli("deep-check", "t9:sub", "--stream", "--repair", node_dir=self.client.dir, timeout=180)
        self.assertEqual(rep.returncode, 0, rep.stdout + rep.stderr)
        first = json.loads(rep.stdout.splitlines()[0])
        self.assertFalse(first["check-and-repair-results"]["repair-attempted"])
        self.assertEqual(len(rep.stdout.splitlines()), 5 + 1)  # sub, b.txt, shared (a.txt), deeper, c.txt
        self.assertEqual(self.cli("deep-check", "t9", "--stream", "--async", want=None).returncode, 2)

    def test_progress_line_every_hundred_objects(self):
        # 250 LIT files in an immutable directory: "N objects checked.." on
        # stderr as the walk passes each hundred (Tahoe's words).
        body = b"".join(netstring(netstring(b"l%03d" % i) + netstring(b"URI:LIT:" + b32(b"y%d" % i).encode()) +
                                  netstring(b"") + netstring(b"{}")) for i in range(250))
        put = self.jcli("put", self.file(body))
        self.cli("alias", "add", "t10", put["cap"].replace("URI:CHK:", "URI:DIR2-CHK:", 1))
        p = run_cli("deep-check", "t10", node_dir=self.client.dir, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        progress = [line for line in p.stderr.splitlines() if line.endswith("objects checked..")]
        self.assertEqual(progress[0], "100 objects checked..", p.stderr)
        counts = [int(line.split()[0]) for line in progress]
        self.assertEqual(counts, sorted(set(counts)))
        self.assertTrue(all(c % 100 == 0 and c <= 251 for c in counts), counts)
        self.assertTrue(p.stdout.rstrip().endswith("done: 251 objects checked, 251 healthy, 0 unhealthy"))
        quiet = run_cli("--json", "deep-check", "t10", node_dir=self.client.dir, timeout=180)
        self.assertNotIn("objects checked..", quiet.stderr)


if __name__ == "__main__":
    unittest.main()
