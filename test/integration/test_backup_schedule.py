"""cairn backup schedule: scheduled backups run by cairnd, through real
cairnd nodes on 127.0.0.1 (docs/dirs.md, "Scheduled backups").

Four storage nodes and a client encoding 2-of-4 with happiness 3. A
schedule of one second (the documented minimum) runs the `backup` method's
own tasks ("backup", then "backup.link"): the first run uploads every file,
the next one reuses them all; the runs, the last run and the next run appear
in `backup schedule list`, `cairn status` (a plain line per schedule, and
--json) and the metrics, and survive
a restart of the client. A task holding the target's backup key (the lock
every backup of the target takes) makes a due run wait: no two tasks holding
that key ever run at once, and the scheduled run starts only once the hold
has ended."""
import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, run_cli, stop_grid, wait_for  # noqa: E402

K, N, HAPPY = 2, 4, 3


class BackupScheduleTest(unittest.TestCase):
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
        cls.tmp = tempfile.mkdtemp(prefix="cairn-bsched-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def cli(self, *args, want=0):
        p = run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=180)
        if want is not None:
            self.assertEqual(p.returncode, want, " ".join(args) + "\n" + p.stdout + p.stderr)
        return p

    def jcli(self, *args):
        return json.loads(self.cli(*args).stdout)

    def schedule(self, target):
        for s in self.jcli("backup", "schedule", "list")["schedules"]:
            if s["target"] == target:
                return s
        return None

    def tree(self, name, files):
        root = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(root, "sub"), exist_ok=True)
        for i in range(files):
            with open(os.path.join(root, "sub" if i % 2 else "", f"f{i}.txt"), "wb") as f:
                f.write(b"scheduled backup file %d\n" % i * (i + 1))
        return root

    def metrics(self):
        c = self.client.control()
        try:
            reply = c.call("metrics")
        finally:
            c.close()
        return reply["result"]["text"]

    def target_tasks(self, to):
        return [t for t in self.jcli("tasks", "list")["tasks"]
                if t["kind"] in ("backup", "backup.link") and t["params"].get("to") == to]

    def test_a_schedule_runs_is_visible_and_survives_a_restart(self):
        self.cli("alias", "create", "bs1")
        root = self.tree("one", 3)
        r = self.jcli("backup", "schedule", "add", root, "bs1:docs", "--every", "1s", "--exclude", "*.tmp")
        mine = [s for s in r["schedules"] if s["target"] == "bs1:docs"]
        self.assertEqual(len(mine), 1, r)
        self.assertEqual(mine[0]["every_s"], 1)
        self.assertEqual(mine[0]["from"], root)
        self.assertEqual(mine[0]["exclude"], ["*.tmp"])
        wait_for(lambda: self.schedule("bs1:docs")["runs"] >= 2, timeout=120, what="two scheduled backups")
        # The schedule stops before the checks, so that the last run stays put.
        self.cli("backup", "schedule", "add", root, "bs1:docs", "--every", "1h", "--exclude", "*.tmp")
        wait_for(lambda: not self.schedule("bs1:docs")["running"], timeout=120, what="the run to end")
        s = self.schedule("bs1:docs")
        last = s["last"]
        self.assertEqual(last["state"], "succeeded", last)
        self.assertNotIn("error", last)
        # After the first run every file is known to the backup database.
        self.assertEqual(last["files_uploaded"], 0, last)
        self.assertEqual(last["files_reused"], 3, last)
        self.assertEqual(last["files_skipped"], 0, last)
        self.assertIn("link_task", last)
        walk = self.jcli("tasks", "show", str(last["task"]))
        self.assertEqual(walk["kind"], "backup")
        self.assertEqual(walk["params"]["from"], root)
        link = self.jcli("tasks", "show", str(last["link_task"]))
        self.assertEqual(link["kind"], "backup.link")
        self.assertEqual(link["state"], "succeeded")
        # The first run uploaded the three files: some walk of this target did.
        walks = [t for t in self.target_tasks("bs1:docs") if t["kind"] == "backup"]
        self.assertTrue(any(t.get("result", {}).get("files_uploaded") == 3 for t in walks),
                        [t.get("result") for t in walks])
        listing = self.jcli("ls", "bs1:docs")
        names = json.dumps(listing)
        self.assertIn("Archives", names)
        self.assertIn("Latest", names)
        self.assertIsNotNone(s["next_run_ms"])
        status = self.jcli("status")
        shown = [x for x in status["backup_schedules"]["schedules"] if x["target"] == "bs1:docs"]
        self.assertEqual(len(shown), 1)
        self.assertEqual(shown[0]["runs"], s["runs"])
        self.assertEqual(shown[0]["last"]["task"], last["task"])
        # The plain status: one line per schedule with its target, its last
        # run's result and its next run.
        plain = run_cli("-q", "status", node_dir=self.client.dir, check=True).stdout
        line = [l for l in plain.split("\n") if l.startswith("  backup     bs1:docs <- ")]
        self.assertEqual(len(line), 1, plain)
        self.assertRegex(line[0], r"^  backup     bs1:docs <- " + re.escape(root) +
                         r": last run succeeded at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
                         r"\(0 uploaded, 3 reused, 0 skipped\); next run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        text = self.metrics()
        self.assertIn(f'cairn_backup_schedule_runs_total{{target="bs1:docs"}} {s["runs"]}', text)
        self.assertIn('cairn_backup_schedule_last_succeeded{target="bs1:docs"} 1', text)
        self.assertIn('cairn_backup_schedule_last_files{target="bs1:docs",outcome="reused"} 3', text)
        self.assertRegex(text, r'cairn_backup_schedule_next_run_timestamp_seconds\{target="bs1:docs"\} [1-9]')
        plain = run_cli("-q", "backup", "schedule", "list", node_dir=self.client.dir, check=True).stdout
        self.assertIn("bs1:docs <- " + root + " every 3600 s", plain)
        # The schedule, its runs and its last run survive a restart.
        self.assertEqual(self.client.stop(), 0)
        self.client.start(test_hooks=True)
        after = self.schedule("bs1:docs")
        self.assertEqual(after["every_s"], 3600)
        self.assertEqual(after["runs"], s["runs"])
        self.assertEqual(after["last"], last)
        self.assertEqual(after["exclude"], ["*.tmp"])
        self.assertIsNotNone(after["next_run_ms"])
        self.assertFalse(after["running"])
        # Removed, it is gone, also after a restart.
        r = self.jcli("backup", "schedule", "remove", "bs1:docs")
        self.assertFalse([x for x in r["schedules"] if x["target"] == "bs1:docs"])
        self.assertEqual(self.client.stop(), 0)
        self.client.start(test_hooks=True)
        self.assertIsNone(self.schedule("bs1:docs"))

    def test_a_due_run_waits_for_a_running_backup_of_its_target(self):
        self.cli("alias", "create", "bs2")
        root = self.tree("two", 2)
        # A client backup of the target names the key every backup of it takes.
        first = self.jcli("backup", root, "bs2:docs")
        self.assertEqual(first["files_uploaded"], 2, first)
        key = [k["key"] for k in self.jcli("tasks", "show", str(first["task"]))["keys"]
               if k["key"].startswith("backup/")]
        self.assertEqual(len(key), 1)
        # A task holding that key runs for 3 s; the schedule becomes due meanwhile.
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "debug.hold", "params": {"keys": key, "ms": 3000}, "wait": False})
            hold_task = c.read_frame()["result"]["task"]
        finally:
            c.close()
        self.cli("backup", "schedule", "add", root, "bs2:docs", "--every", "1s")
        seen_waiting = False

        def progressed():
            nonlocal seen_waiting
            s = self.schedule("bs2:docs")
            if s["running"] and self.jcli("tasks", "show", str(hold_task))["state"] == "running":
                t = self.jcli("tasks", "show", str(s["running_task"]))
                if t["state"] == "queued" and [w for w in t.get("waiting_on", []) if w["key"] == key[0]]:
                    seen_waiting = True
            return s["runs"] >= 2
        wait_for(progressed, timeout=120, what="two scheduled backups")
        self.cli("backup", "schedule", "remove", "bs2:docs")
        wait_for(lambda: not [t for t in self.target_tasks("bs2:docs") if t["state"] in ("queued", "running")],
                 timeout=120, what="the last run to end")
        self.assertTrue(seen_waiting, "the due run did not wait for the hold")
        hold = self.jcli("tasks", "show", str(hold_task))
        self.assertEqual(hold["state"], "succeeded")
        # Every task that held the target's key ran alone: the hold, the
        # client's backup and each scheduled run's two tasks.
        spans = [(t["started_ms"], t["finished_ms"], t["id"]) for t in self.target_tasks("bs2:docs")
                 if "started_ms" in t]
        spans.append((hold["started_ms"], hold["finished_ms"], hold_task))
        spans.sort()
        self.assertGreaterEqual(len(spans), 7)  # 1 client backup + 2 runs, 2 tasks each, and the hold
        for a, b in zip(spans, spans[1:]):
            self.assertLessEqual(a[1], b[0], f"tasks {a[2]} and {b[2]} overlapped")
        scheduled = [t for t in self.target_tasks("bs2:docs") if t["kind"] == "backup" and t["id"] > hold_task]
        self.assertTrue(scheduled)
        self.assertGreaterEqual(min(t["started_ms"] for t in scheduled), hold["finished_ms"])
        for t in scheduled:
            self.assertEqual(t["state"], "succeeded", t)

    def test_usage(self):
        root = self.tree("three", 1)
        p = run_cli("backup", "schedule", "add", root, "bs3:x", "--every", "soon", node_dir=self.client.dir)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run_cli("backup", "schedule", "add", root, "bs3:x", node_dir=self.client.dir)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run_cli("backup", "schedule", "frobnicate", node_dir=self.client.dir)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run_cli("--json", "backup", "schedule", "remove", "bs3:nothing", node_dir=self.client.dir)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("no backup schedule", p.stdout + p.stderr)
        c = self.client.control()
        try:
            reply = c.call("backup.schedule.add", {"from": "relative/dir", "to": "bs3:x", "every_s": 60})
            self.assertIn("absolute", json.dumps(reply.get("error")))
            reply = c.call("backup.schedule.add", {"from": root, "to": "bs3:x", "every_s": 0})
            self.assertIn("every_s", json.dumps(reply.get("error")))
        finally:
            c.close()
        self.assertIsNone(self.schedule("bs3:x"))


if __name__ == "__main__":
    unittest.main()
