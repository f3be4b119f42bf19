"""cairn mutable create / put / get through real cairnd nodes on 127.0.0.1:
four storage nodes and a client node whose grid is those four, encoding
2-of-4 with happiness 3. Round trips through the CLI and the socket, read
caps, the exit codes (bad cap 7, not found 3, not enough servers 5,
conflict 4), aliases, the size limit, and the race classes of
control-plane.md section 2 that need mutable files (R1, R2, R4, R5), made
deterministic with the test-only hold_ms parameter and debug.hold."""
import base64
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import unittest

from pylib.cairntest import Node, binary, run_cli, stop_grid, wait_for

K, N, HAPPY = 2, 4, 3
MIB = 1 << 20
LIMIT = MIB + MIB // 2  # limits.sdmf_max_bytes of the client node


def b32(data):
    return base64.b32encode(data).decode().lower().rstrip("=")


def rtw_count(node):
    """Read-test-write requests a storage node has answered (its metrics)."""
    text = json.loads(run_cli("--json", "metrics", node_dir=node.dir, check=True).stdout)["text"]
    total = 0
    for labels, value in re.findall(r'^cairn_gbs_requests(?:_total)?\{([^}]*)\} (\S+)$', text, re.M):
        if 'endpoint="read_test_write"' in labels:
            total += int(float(value))
    return total


def gbs_connections(node):
    """(open now, accepted in all) storage connections of a node (its metrics)."""
    text = json.loads(run_cli("--json", "metrics", node_dir=node.dir, check=True).stdout)["text"]
    open_now = re.search(r'^cairn_gbs_connections (\S+)$', text, re.M)
    accepted = re.search(r'^cairn_gbs_connections_accepted(?:_total)? (\S+)$', text, re.M)
    assert open_now and accepted, "no cairn_gbs_connections{,_accepted} in the metrics"
    return int(float(open_now.group(1))), int(float(accepted.group(1)))


class MutableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(4)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY},
            "limits": {"sdmf_max_bytes": LIMIT, "control_inflight": 64}})
        cls.client.start(test_hooks=True)
        for i, s in enumerate(cls.servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-mu-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    # --- helpers -------------------------------------------------------------

    def file(self, data, name="in"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cli(self, *args, input=None):
        return run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=120, input=input)

    def ok(self, *args, input=None):
        p = self.cli(*args, input=input)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout)

    def error(self, code, exit_code, *args):
        p = self.cli(*args)
        self.assertEqual(p.returncode, exit_code, f"{args}: {p.stdout} {p.stderr}")
        self.assertEqual(json.loads(p.stdout)["error"]["code"], code, p.stdout)

    def read(self, target):
        out = os.path.join(self.tmp, "out")
        r = self.ok("mutable", "get", target, "-o", out)
        with open(out, "rb") as f:
            return f.read(), r

    def total_rtw(self):
        return sum(rtw_count(s) for s in self.servers)

    @staticmethod
    def send_with_data(conn, id, method, params, data, wait=True):
        conn.send({"v": 1, "id": id, "method": method, "params": {**params, "size": len(data)}, "wait": wait})
        chunk = 262144
        frames = max(1, -(-len(data) // chunk))
        for seq in range(frames):
            conn.send_data(id, seq, data[seq * chunk:(seq + 1) * chunk], eof=seq == frames - 1)

    def task(self, id):
        c = self.client.control()
        try:
            return c.call("tasks.show", {"id": id})["result"]
        finally:
            c.close()

    def wait_task(self, id):
        c = self.client.control()
        try:
            reply = c.call("tasks.wait", {"id": id})
            self.assertIn("result", reply, reply)
            return reply["result"]
        finally:
            c.close()

    def submit_put(self, target, data, **params):
        """A mutable.put with "wait": false: its task id once it is queued."""
        c = self.client.control()
        try:
            self.send_with_data(c, 1, "mutable.put", {"target": target, **params}, data, wait=False)
            reply = c.read_final()
            self.assertIn("result", reply, reply)
            return reply["result"]["task"]
        finally:
            c.close()

    def held(self, task):
        """True once a task waits at its test hold (a put: mid-push, after its
        servermap update and before its first write)."""
        return self.task(task).get("progress", {}).get("phase") == "held"

    # --- round trips ---------------------------------------------------------

    def test_round_trips_through_the_cli(self):
        rng = random.Random(99)
        for size in (0, 1, MIB):
            with self.subTest(size=size):
                first, second = rng.randbytes(size), rng.randbytes(size)
                made = self.ok("mutable", "create", self.file(first))
                cap = made["writecap"]
                self.assertTrue(cap.startswith("URI:SSK:"), cap)
                self.assertTrue(made["readcap"].startswith("URI:SSK-RO:"), made)
                self.assertEqual((made["seqnum"], made["size"]), (1, size))
                self.assertGreaterEqual(made["happiness"], HAPPY)
                got, r = self.read(cap)
                self.assertTrue(got == first, f"size {size}: first version differs")
                self.assertEqual(r["seqnum"], 1)
                put = self.ok("mutable", "put", cap, self.file(second))
                self.assertEqual((put["writecap"], put["seqnum"], put["size"]), (cap, 2, size))
                got, r = self.read(cap)
                self.assertTrue(got == second, f"size {size}: second version differs")
                self.assertEqual(r["seqnum"], 2)
                # The read cap reads the same version; it cannot write.
                got, _ = self.read(made["readcap"])
                self.assertTrue(got == second)
                self.error("bad_cap", 7, "mutable", "put", made["readcap"], self.file(first))

    def test_tasks_reuse_the_storage_connections(self):
        # The daemon keeps its GBS clients between tasks: once a task has
        # ended, every server still has the client's connection open, and
        # more tasks reuse those connections instead of opening new ones
        # (each would cost a TLS handshake).
        cap = self.ok("mutable", "create", self.file(b"kept"))["writecap"]
        self.read(cap)
        before = [gbs_connections(s) for s in self.servers]
        self.assertTrue(all(o >= 1 for o, _ in before), f"connections after a task ended: {before}")
        for i in range(4):
            self.ok("mutable", "put", cap, self.file(b"kept %d" % i))
            self.read(cap)
        after = [gbs_connections(s) for s in self.servers]
        # Eight more tasks: a client per task would have made at least eight
        # more handshakes with every server.
        new = [a - b for (_, a), (_, b) in zip(after, before)]
        self.assertTrue(all(n < 4 for n in new), f"new connections per server over 8 tasks: {new}")

    def test_create_without_a_file_stdin_and_stdout(self):
        p = run_cli("-q", "mutable", "create", node_dir=self.client.dir, timeout=120, check=True)
        cap = p.stdout.strip()
        self.assertTrue(cap.startswith("URI:SSK:"), p.stdout)
        out = subprocess.run([binary("cairn"), "-d", self.client.dir, "-q",
                              "mutable", "get", cap], capture_output=True, timeout=60)
        self.assertEqual((out.returncode, out.stdout), (0, b""), out.stderr)
        p = run_cli("-q", "mutable", "put", cap, "-", node_dir=self.client.dir, input=b"from stdin", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = subprocess.run([binary("cairn"), "-d", self.client.dir, "-q",
                              "mutable", "get", cap], capture_output=True, timeout=60)
        self.assertEqual(out.stdout, b"from stdin")
        # --async: the task id once the input is in; tasks wait has the result.
        queued = self.ok("mutable", "put", cap, self.file(b"async"), "--async")
        self.assertEqual(queued["state"], "queued")
        done = self.wait_task(queued["task"])
        self.assertEqual((done["state"], done["result"]["seqnum"]), ("succeeded", 3), done)
        # A get cannot be asynchronous: the file comes back on its connection.
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "mutable.get", "params": {"target": cap}, "wait": False})
            self.assertEqual(c.read_final()["error"]["code"], "invalid_argument")
        finally:
            c.close()

    def test_round_trip_through_the_socket(self):
        data = random.Random(5).randbytes(300000)
        c = self.client.control()
        try:
            self.send_with_data(c, "c", "mutable.create", {}, data)
            made = c.read_final()
            self.assertIn("result", made, made)
            cap = made["result"]["writecap"]
            self.send_with_data(c, "p", "mutable.put", {"target": cap}, data[::-1])
            put = c.read_final()
            self.assertEqual(put["result"]["seqnum"], 2, put)
            c.send({"v": 1, "id": "g", "method": "mutable.get", "params": {"target": made["result"]["readcap"]}})
            chunks = []
            while True:
                f = c.read_frame()
                self.assertEqual(f["id"], "g", f)
                if "data" in f:
                    chunks.append(f["_attachment"])
                elif "progress" not in f:
                    break
            self.assertIn("result", f, f)
            self.assertEqual((f["result"]["size"], f["result"]["seqnum"]), (len(data), 2))
            self.assertTrue(b"".join(chunks) == data[::-1])
            # The write cap was recorded in the create's task record.
            record = self.task(made["result"]["task"])
            self.assertEqual(record["intent"], {"writecap": cap})
        finally:
            c.close()

    # --- errors --------------------------------------------------------------

    def test_usage(self):
        for args in (("mutable",), ("mutable", "frob"), ("mutable", "put", "x"), ("mutable", "get")):
            self.assertEqual(run_cli(*args, node_dir=self.client.dir).returncode, 2, args)
        for sub in ("create", "put", "get"):
            p = run_cli("mutable", sub, "--help", check=True)
            self.assertIn(f"mutable {sub}", p.stdout)

    def test_bad_caps(self):
        self.error("bad_cap", 7, "mutable", "get", "URI:SSK:not-a-cap")
        self.error("bad_cap", 7, "mutable", "get", "URI:LIT:nbswy3dp")   # an immutable cap
        self.error("bad_cap", 7, "mutable", "put", "URI:LIT:nbswy3dp", self.file(b"x"))
        self.error("bad_cap", 7, "mutable", "get", "no such/name")
        self.error("bad_cap", 7, "mutable", "get",
                   "URI:MDMF-Verifier:" + b32(bytes(16)) + ":" + b32(bytes(32)))   # a verify cap reads nothing
        # An alias naming an immutable file.
        self.ok("alias", "add", "immutable-one", "URI:LIT:nbswy3dp")
        self.error("bad_cap", 7, "mutable", "get", "immutable-one")

    def test_not_found(self):
        rng = random.Random(11)
        never = "URI:SSK:" + b32(rng.randbytes(16)) + ":" + b32(rng.randbytes(32))
        before = self.total_rtw()
        self.error("not_found", 3, "mutable", "get", never)
        self.error("not_found", 3, "mutable", "put", never, self.file(b"new"))
        self.error("not_found", 3, "mutable", "get", "no-such-alias")
        self.error("not_found", 3, "mutable", "put", "no-such-alias", self.file(b"new"))
        self.assertEqual(self.total_rtw(), before, "a put to a file that does not exist wrote")

    def test_size_limit(self):
        p = self.cli("mutable", "create", self.file(bytes(LIMIT + 1)))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("sdmf_max_bytes", json.loads(p.stdout)["error"]["message"])
        # Streamed from stdin (no size known in advance): refused as it arrives.
        p = run_cli("--json", "-q", "mutable", "create", "-", node_dir=self.client.dir, input=bytes(LIMIT + 1))
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("sdmf_max_bytes", json.loads(p.stdout)["error"]["message"])
        self.ok("mutable", "create", self.file(bytes(LIMIT)))

    def test_input_breaking_its_announced_size_is_refused(self):
        # As for put: more bytes than params.size, or fewer before the end,
        # is invalid_argument, and nothing is created.
        before = self.total_rtw()
        for sent, want in ((1500, "more data than params.size (1000 bytes)"),
                           (600, "the input ended after 600 of params.size 1000 bytes")):
            c = self.client.control()
            reply = c.call_with_input("mutable.create", {"size": 1000}, bytes(sent))
            c.close()
            self.assertEqual(reply["error"], {"code": "invalid_argument", "message": want, "retryable": False}, sent)
        self.assertEqual(self.total_rtw(), before, "a refused create wrote to a server")

    def test_not_enough_servers(self):
        made = self.ok("mutable", "create", self.file(b"version one"))
        cap = made["writecap"]
        untouched = self.ok("mutable", "create", self.file(b"one share a server"))["readcap"]
        try:
            self.assertEqual(self.servers[0].stop(), 0)
            self.assertEqual(self.servers[1].stop(), 0)
            # Two servers cannot reach happiness 3.
            self.error("not_enough_servers", 5, "mutable", "put", cap, self.file(b"version two"))
            self.error("not_enough_servers", 5, "mutable", "create", self.file(b"another"))
            # k=2 servers still hold a version: the old one, or the failed
            # put's where it reached both (a partial publish, as in Tahoe).
            got, _ = self.read(cap)
            self.assertIn(got, (b"version one", b"version two"))
            self.assertEqual(self.servers[2].stop(), 0)
            self.error("not_enough_servers", 5, "mutable", "get", untouched)
        finally:
            for s in self.servers:
                if s.proc is None:
                    s.start()
        got, _ = self.read(cap)
        self.assertIn(got, (b"version one", b"version two"))
        # After a partial publish the next put succeeds (no uncoordinated
        # write) and is what a read gets.
        self.ok("mutable", "put", cap, self.file(b"version three"))
        got, _ = self.read(cap)
        self.assertEqual(got, b"version three")

    # --- aliases -------------------------------------------------------------

    def test_alias_create_get_put(self):
        made = self.ok("mutable", "create", self.file(b"album v1"), "--alias", "album")
        self.assertEqual(made["alias"], "album")
        self.assertEqual(self.ok("alias", "get", "album")["cap"], made["writecap"])
        got, _ = self.read("album")
        self.assertEqual(got, b"album v1")
        put = self.ok("mutable", "put", "album", self.file(b"album v2"))
        self.assertEqual((put["writecap"], put["seqnum"]), (made["writecap"], 2))
        got, r = self.read("album")
        self.assertEqual((got, r["seqnum"]), (b"album v2", 2))
        # A name that exists: conflict, and nothing was sent to any server.
        before = self.total_rtw()
        self.error("conflict", 4, "mutable", "create", self.file(b"other"), "--alias", "album")
        self.assertEqual(self.total_rtw(), before)
        self.assertEqual(self.ok("alias", "get", "album")["cap"], made["writecap"])
        # Human output: the write cap alone on stdout.
        p = run_cli("-q", "mutable", "create", self.file(b"x"), "--alias", "album2", node_dir=self.client.dir,
                    check=True, timeout=120)
        self.assertEqual(p.stdout.strip(), self.ok("alias", "get", "album2")["cap"])

    # --- races (control-plane.md section 2) ----------------------------------

    def test_r1_two_puts_queued_run_in_order(self):
        made = self.ok("mutable", "create", self.file(b"r1 start"), "--alias", "r1")
        # A holder of the alias keeps both puts queued until both are in.
        c = self.client.control()
        c.send({"v": 1, "id": "h", "method": "debug.hold", "params": {"keys": ["alias/r1"], "ms": 4000},
                "wait": False})
        holder = c.read_final()["result"]["task"]
        c.close()
        first = self.submit_put("r1", b"r1 first")
        second = self.submit_put("r1", b"r1 second")
        self.assertEqual([self.task(first)["state"], self.task(second)["state"]], ["queued", "queued"])
        self.assertEqual(self.task(first)["waiting_on"], [{"key": "alias/r1", "held_by": holder}])
        a, b = self.wait_task(first), self.wait_task(second)
        self.assertEqual((a["state"], b["state"]), ("succeeded", "succeeded"), (a, b))
        self.assertEqual((a["result"]["seqnum"], b["result"]["seqnum"]), (made["seqnum"] + 1, made["seqnum"] + 2))
        self.assertGreaterEqual(b["started_ms"], a["finished_ms"])
        got, r = self.read("r1")
        self.assertEqual((got, r["seqnum"]), (b"r1 second", made["seqnum"] + 2))

    def test_ten_concurrent_puts_to_one_alias(self):
        # Issue 7's race test 5: ten clients put to one alias at once. The
        # puts run one at a time in submission order (task ids are given in
        # that order), each makes the next version, the last submitted is
        # what a read gets, and none is an uncoordinated write.
        made = self.ok("mutable", "create", self.file(b"ten start"), "--alias", "ten")
        tasks = {}

        def put(i):
            tasks[i] = self.submit_put("ten", b"ten put %d" % i)

        threads = [threading.Thread(target=put, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(sorted(tasks), list(range(10)), "every put was submitted")
        by_id = sorted((task, i) for i, task in tasks.items())
        records = [self.wait_task(task) for task, _ in by_id]
        for r in records:
            self.assertEqual(r["state"], "succeeded", r)
        seqnums = [r["result"]["seqnum"] for r in records]
        self.assertEqual(seqnums, list(range(made["seqnum"] + 1, made["seqnum"] + 11)), "one version each, in order")
        for earlier, later in zip(records, records[1:]):
            self.assertGreaterEqual(later["started_ms"], earlier["finished_ms"])
        got, r = self.read("ten")
        self.assertEqual((got, r["seqnum"]), (b"ten put %d" % by_id[-1][1], made["seqnum"] + 10))

    def test_r2_two_creates_of_one_alias(self):
        before = self.total_rtw()
        results = {}

        def create(name, hold):
            c = self.client.control()
            try:
                self.send_with_data(c, 1, "mutable.create", {"alias": "photos", **hold}, name.encode())
                results[name] = c.read_final()
            finally:
                c.close()

        # The first is held after its key is made and recorded; the second
        # queues behind it on alias/photos.
        t1 = threading.Thread(target=create, args=("first", {"hold_ms": 1500}))
        t1.start()
        wait_for(lambda: any(t["kind"] == "mutable.create" and t["state"] == "running"
                             for t in self.ok("tasks", "list")["tasks"]), what="the first create to run")
        t2 = threading.Thread(target=create, args=("second", {}))
        t2.start()
        t1.join(120)
        t2.join(120)
        self.assertIn("result", results["first"], results)
        self.assertEqual(results["second"]["error"]["code"], "conflict", results)
        winner = results["first"]["result"]
        # Every read-test-write the servers saw was the winner's.
        self.assertEqual(self.total_rtw() - before, winner["writes_sent"])
        self.assertEqual(self.ok("alias", "get", "photos")["cap"], winner["writecap"])
        self.assertEqual(self.task(winner["task"])["intent"], {"writecap": winner["writecap"]})
        loser = [t for t in self.ok("tasks", "list")["tasks"] if t["kind"] == "mutable.create" and
                 t.get("error", {}).get("code") == "conflict" and t["params"].get("alias") == "photos"]
        self.assertEqual(len(loser), 1)
        self.assertNotIn("intent", loser[0])   # no key was even made

    def test_r13_kill_after_the_key_keeps_the_write_cap(self):
        c = self.client.control()
        try:
            self.send_with_data(c, 1, "mutable.create", {"alias": "killed", "hold_ms": 60000}, b"lost?", wait=False)
            task = c.read_final()["result"]["task"]
        finally:
            c.close()
        # Held (before the grid is touched) only once its record holding
        # the write cap is durable.
        record = wait_for(lambda: (lambda r: r if r.get("progress", {}).get("phase") == "held" else None)(
            self.task(task)), what="the create to record its write cap and hold")
        cap = record["intent"]["writecap"]
        self.assertTrue(cap.startswith("URI:SSK:"), record)
        self.client.stop(signal.SIGKILL)
        self.client.start(test_hooks=True)
        after = self.task(task)
        self.assertEqual((after["state"], after["error"]["code"]), ("failed", "interrupted"), after)
        self.assertEqual(after["intent"], {"writecap": cap})
        self.error("not_found", 3, "alias", "get", "killed")

    def test_r4_alias_remove_while_a_put_holds_it(self):
        made = self.ok("mutable", "create", self.file(b"r4 v1"), "--alias", "r4")
        put = self.submit_put("r4", b"r4 v2", hold_ms=2000)
        wait_for(lambda: self.held(put), what="the put to be held mid-push")
        # The remove does not wait behind the put: it is refused while the
        # name is in use.
        self.error("in_use", 4, "alias", "remove", "r4")
        self.assertEqual(self.wait_task(put)["state"], "succeeded")
        self.assertEqual(self.ok("alias", "get", "r4")["cap"], made["writecap"])
        self.ok("alias", "remove", "r4")
        # A put after the remove fails, and does not bring the name back.
        self.error("not_found", 3, "mutable", "put", "r4", self.file(b"r4 v3"))
        self.assertNotIn("r4", [a["name"] for a in self.ok("alias", "list")["aliases"]])
        got, r = self.read(made["writecap"])
        self.assertEqual((got, r["seqnum"]), (b"r4 v2", 2))

    def test_r5_rename_waits_for_a_long_put(self):
        made = self.ok("mutable", "create", self.file(b"big v1"), "--alias", "big")
        put = self.submit_put("big", b"big v2", hold_ms=2000)
        wait_for(lambda: self.held(put), what="the put to be held mid-push")
        c = self.client.control()
        try:
            c.send({"v": 1, "id": "r", "method": "alias.rename", "params": {"from": "big", "to": "big2"},
                    "wait": False})
            reply = c.read_final()
        finally:
            c.close()
        self.assertEqual(reply["result"]["state"], "queued", reply)
        self.assertIn({"key": "alias/big", "held_by": put}, reply["result"]["waiting_on"])
        rename = reply["result"]["task"]
        self.assertIn({"key": "alias/big", "held_by": put}, self.task(rename)["waiting_on"])
        p, r = self.wait_task(put), self.wait_task(rename)
        self.assertEqual((p["state"], r["state"]), ("succeeded", "succeeded"), (p, r))
        self.assertGreaterEqual(r["started_ms"], p["finished_ms"])
        self.assertEqual(self.ok("alias", "get", "big2")["cap"], made["writecap"])
        got, g = self.read("big2")
        self.assertEqual((got, g["seqnum"]), (b"big v2", 2))


if __name__ == "__main__":
    unittest.main()
