"""cairn maintenance: the daemon's scheduled deep-check passes, through real
cairnd nodes on 127.0.0.1 (docs/check.md, "Maintenance").

Four storage nodes and a client encoding 2-of-4 with happiness 3. A
schedule of one second (the documented minimum) runs a pass over every
alias as a "maintenance" task; its totals appear in `maintenance show`,
`cairn status --json` and the metrics, and survive a restart of the
client. A CHK file with too few shares is repaired by a pass with
--repair. With a test-only hold at the start of each pass (accepted only
with CAIRN_TEST_HOOKS), passes last longer than the interval: no two
maintenance tasks ever exist at once. A pass that is due while another
task runs waits for it (counted as deferred), and a running pass pauses
between objects while client work runs."""
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary, run_cli, stop_grid, wait_for  # noqa: E402
from pylib.gbs import GbsClient  # noqa: E402

K, N, HAPPY = 2, 4, 3
SEG = 1 << 20


class MaintenanceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(4)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={"client": {"shares_needed": K, "shares_total": N,
                                                             "shares_happy": HAPPY}})
        cls.client.start(test_hooks=True)
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        for i, nurl in enumerate(cls.nurls):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-maint-", dir="/tmp")
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def tearDown(self):
        self.cli("maintenance", "off")
        wait_for(lambda: not self.show()["running"], timeout=60, what="the pass to end")

    def cli(self, *args, want=0):
        p = run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=180)
        if want is not None:
            self.assertEqual(p.returncode, want, " ".join(args) + "\n" + p.stdout + p.stderr)
        return p

    def jcli(self, *args):
        return json.loads(self.cli(*args).stdout)

    def show(self):
        return self.jcli("maintenance", "show")

    def file(self, data):
        MaintenanceTest.count += 1
        path = os.path.join(self.tmp, f"in{MaintenanceTest.count}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def maintenance_tasks(self):
        return [t for t in self.jcli("tasks", "list")["tasks"]
                if t["kind"] == "maintenance" and t["state"] in ("queued", "running")]

    def metrics(self):
        c = self.client.control()
        try:
            reply = c.call("metrics")
        finally:
            c.close()
        return reply["result"]["text"]

    def test_a_pass_runs_and_is_visible_in_status_and_metrics(self):
        self.cli("alias", "create", "m1")
        self.cli("put", self.file(random.Random(1).randbytes(4000)), "m1:a.bin")
        self.cli("put", self.file(random.Random(2).randbytes(6000)), "m1:b.bin")
        before = self.show()["passes"]
        r = self.jcli("maintenance", "set", "--every", "1s", "--add-lease")
        self.assertEqual(r["schedule"]["every_s"], 1)
        self.assertTrue(r["schedule"]["add_lease"])
        wait_for(lambda: self.show()["passes"] > before, timeout=60, what="a maintenance pass")
        last = self.show()["last"]
        self.assertEqual(last["state"], "succeeded", last)
        self.assertGreaterEqual(last["objects_checked"], 3)  # m1, a.bin, b.bin (and other tests' aliases)
        self.assertEqual(last["unhealthy"], 0)
        self.assertEqual(last["unrecoverable"], 0)
        self.assertGreaterEqual(last["leases_renewed"], 3 * N)
        status = self.jcli("status")
        self.assertIn("maintenance", status)
        self.assertEqual(status["maintenance"]["schedule"]["every_s"], 1)
        self.assertGreaterEqual(status["maintenance"]["passes"], 1)
        text = self.metrics()
        self.assertIn("cairn_maintenance_passes_total", text)
        self.assertRegex(text, r'cairn_maintenance_last_objects\{outcome="checked"\} [1-9]')
        self.assertIn("cairn_maintenance_last_leases_renewed", text)
        plain = run_cli("-q", "status", node_dir=self.client.dir, check=True).stdout
        self.assertIn("maintenance", plain)
        # The schedule and the last pass survive a restart.
        self.cli("maintenance", "set", "--every", "1h", "--add-lease")
        passes = self.show()["passes"]
        self.assertEqual(self.client.stop(), 0)
        self.client.start(test_hooks=True)
        after = self.show()
        self.assertEqual(after["schedule"]["every_s"], 3600)
        self.assertEqual(after["passes"], passes)
        self.assertEqual(after["last"]["task"], self.show()["last"]["task"])
        self.assertIsNotNone(after["next_run_ms"])

    def test_a_pass_repairs(self):
        self.cli("alias", "create", "m2")
        data = random.Random(3).randbytes(50000)
        conv = os.urandom(16)
        with tempfile.TemporaryDirectory() as d:
            cap = subprocess.run([binary("tools/chk_tool"), "encode", conv.hex(), str(K), str(N), str(SEG), d],
                                 input=data, capture_output=True, check=True).stdout.decode().strip()
            si = json.loads(run_cli("--json", "debug", "chk-cap", "--convergence", base64.b64encode(conv).decode(),
                                    "-k", str(K), "-n", str(N), input=data, check=True).stdout)["storage_index"]
            for sh in range(2):  # k shares: recoverable, not healthy
                with open(os.path.join(d, f"{sh}.share"), "rb") as f:
                    share = f.read()
                c = GbsClient(self.nurls[sh])
                try:
                    upload = os.urandom(32)
                    c.allocate(si, [sh], len(share), os.urandom(32), os.urandom(32), upload)
                    self.assertEqual(c.write(si, sh, 0, share, upload)[0], 201)
                finally:
                    c.close()
        self.cli("ln", cap, "m2:partial")
        before = self.show()["passes"]
        self.cli("maintenance", "set", "--every", "1s", "--repair")
        wait_for(lambda: self.show()["passes"] > before, timeout=60, what="a maintenance pass")
        last = self.show()["last"]
        self.assertEqual(last["state"], "succeeded", last)
        self.assertGreaterEqual(last["unhealthy"], 1)
        self.assertGreaterEqual(last["repaired"], 1)
        self.assertEqual(last["unrecoverable"], 0)
        check = json.loads(self.cli("check", "m2:partial").stdout)
        self.assertTrue(check["results"]["healthy"], check)

    def test_never_two_passes_and_client_work_first(self):
        self.cli("alias", "create", "m3")
        # A hold (client work) runs when the first pass becomes due: the pass waits.
        before = self.show()
        hold_ms = 2500
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "debug.hold", "params": {"keys": ["node"], "ms": hold_ms},
                    "wait": False})
            hold_task = c.read_frame()["result"]["task"]
        finally:
            c.close()
        # Each pass waits 2.5 s before walking: longer than the 1 s interval.
        self.cli("maintenance", "set", "--every", "1s", "--test-hold-ms", "2500")
        seen_running = 0
        most = 0
        target = before["passes"] + 2

        def progressed():
            nonlocal seen_running, most
            running = self.maintenance_tasks()
            most = max(most, len(running))
            if running:
                seen_running += 1
                shown = self.show()
                if shown["running"]:
                    self.assertIsNone(shown["next_run_ms"])
            return self.show()["passes"] >= target
        wait_for(progressed, timeout=90, what="two maintenance passes")
        self.assertEqual(most, 1, "two maintenance passes existed at once")
        self.assertGreater(seen_running, 0)
        after = self.show()
        self.assertGreater(after["deferred"], before["deferred"])
        hold = self.jcli("tasks", "show", str(hold_task))
        passes = [t for t in self.jcli("tasks", "list")["tasks"] if t["kind"] == "maintenance"]
        first = min((t for t in passes if t["id"] > hold_task), key=lambda t: t["id"])
        self.assertGreaterEqual(first["started_ms"], hold["finished_ms"])

    def test_a_running_pass_pauses_for_client_work(self):
        self.cli("alias", "create", "m4")
        self.cli("put", self.file(random.Random(4).randbytes(3000)), "m4:x.bin")
        before = self.show()["passes"]
        # The pass waits 4 s before walking; client work (a 6 s hold)
        # starts meanwhile, so the walk finds it running and pauses.
        self.cli("maintenance", "set", "--every", "1s", "--test-hold-ms", "4000")
        wait_for(lambda: self.show()["running"], timeout=60, what="a pass to start")
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "debug.hold", "params": {"keys": ["node"], "ms": 6000},
                    "wait": False})
            hold_task = c.read_frame()["result"]["task"]
        finally:
            c.close()
        wait_for(lambda: self.show()["passes"] > before, timeout=90, what="the pass to end")
        last = self.show()["last"]
        self.assertEqual(last["state"], "succeeded", last)
        self.assertGreater(last["paused_ms"], 0, last)
        hold = self.jcli("tasks", "show", str(hold_task))
        self.assertEqual(hold["state"], "succeeded")
        self.assertGreaterEqual(last["finished_ms"], hold["finished_ms"])

    def test_usage(self):
        p = run_cli("maintenance", "set", "--every", "soon", node_dir=self.client.dir)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run_cli("maintenance", "set", "--repair", node_dir=self.client.dir)
        self.assertEqual(p.returncode, 2, p.stderr)
        off = self.jcli("maintenance", "off")
        self.assertIsNone(off["schedule"])
        self.assertIsNone(off["next_run_ms"])


if __name__ == "__main__":
    unittest.main()
