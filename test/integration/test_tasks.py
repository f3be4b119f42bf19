"""Control tasks over the real socket: serialization by resource, durable
records, cancel, client disconnects, kill -9, and the bound on queued tasks.
Contention is made deterministic with the test-only debug.hold method."""
import json
import os
import signal
import time
import unittest

from pylib.cairntest import Node, run_cli, wait_for


def hold(conn, id, keys, ms, wait=False, **extra):
    req = {"v": 1, "id": id, "method": "debug.hold", "params": {"keys": keys, "ms": ms, **extra}, "wait": wait}
    conn.send(req)


class TasksTest(unittest.TestCase):
    def setUp(self):
        self.node = Node(config_patch={"limits": {"tasks_max_active": 64, "control_inflight": 64}})
        self.node.start(test_hooks=True)
        self.c = self.node.control()

    def tearDown(self):
        self.c.close()
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0)

    def wait_task(self, task):
        reply = self.c.call("tasks.wait", {"id": task}, id=f"w{task}")
        self.assertIn("result", reply, reply)
        return reply["result"]

    def submit(self, keys, ms, **extra):
        hold(self.c, "s", keys, ms, **extra)
        reply = self.c.read_frame()
        self.assertIn("result", reply, reply)
        return reply["result"]["task"]

    def test_tasks_on_one_resource_run_one_after_another_in_order(self):
        ids = [self.submit(["alias/a"], 150) for _ in range(3)]
        records = [self.wait_task(i) for i in ids]
        for r in records:
            self.assertEqual(r["state"], "succeeded")
        for earlier, later in zip(records, records[1:]):
            self.assertGreaterEqual(later["started_ms"], earlier["finished_ms"],
                                    "a task started before the previous holder of its resource finished")

    def test_waiting_request_gets_progress_frames_before_its_result(self):
        hold(self.c, "p", ["alias/p"], 300, wait=True)
        frames = []
        while True:
            f = self.c.read_frame()
            self.assertEqual(f["id"], "p")
            frames.append(f)
            if "result" in f or "error" in f:
                break
        progress = [f["progress"] for f in frames if "progress" in f]
        self.assertGreaterEqual(len(progress), 1, frames)
        self.assertEqual(progress[0], {"phase": "holding", "done": 0, "total": 300})
        self.assertIn("result", frames[-1])

    def test_tasks_on_disjoint_resources_run_concurrently(self):
        a = self.submit(["alias/a"], 600)
        b = self.submit(["alias/b"], 600)
        ra, rb = self.wait_task(a), self.wait_task(b)
        self.assertLess(rb["started_ms"], ra["finished_ms"])

    def test_queued_task_shows_what_it_waits_on_and_can_be_cancelled(self):
        a = self.submit(["alias/x"], 800)
        b = self.submit(["alias/x", "alias/y"], 10)
        shown = self.c.call("tasks.show", {"id": b})["result"]
        self.assertEqual(shown["state"], "queued")
        self.assertEqual(shown["waiting_on"], [{"key": "alias/x", "held_by": a}])
        cancelled = self.c.call("tasks.cancel", {"id": b})["result"]
        self.assertEqual(cancelled["state"], "cancelled")
        self.assertEqual(self.wait_task(b)["error"]["code"], "cancelled")
        self.assertEqual(self.wait_task(a)["state"], "succeeded")

    def test_waiting_request_gets_the_task_result_or_error(self):
        hold(self.c, 1, ["k"], 10, wait=True)
        ok = self.c.read_final()
        self.assertEqual(ok["result"]["held_ms"], 10)
        hold(self.c, 2, ["k"], 10, wait=True, fail="not_found")
        failed = self.c.read_final()
        self.assertEqual(failed["error"]["code"], "not_found")

    def test_client_that_disconnects_does_not_cancel_its_task(self):
        other = self.node.control()
        hold(other, 1, ["alias/gone"], 300, wait=True)
        time.sleep(0.05)  # let the submission reach the daemon before the close
        other.close()

        def finished():
            tasks = self.c.call("tasks.list")["result"]["tasks"]
            return [t for t in tasks if t["kind"] == "debug.hold" and t["state"] == "succeeded"]

        self.assertEqual(len(wait_for(finished, what="the orphaned task to finish")), 1)

    def test_flood_of_tasks_is_bounded_with_busy(self):
        frames = b"".join(
            json.dumps({"id": i, "method": "debug.hold", "params": {"keys": [f"k{i}"], "ms": 3000},
                        "wait": False}).encode() + b"\n" for i in range(1000))
        self.c.send_raw(frames)
        accepted = busy = 0
        for _ in range(1000):
            f = self.c.read_frame()
            if "result" in f:
                accepted += 1
            else:
                self.assertEqual(f["error"]["code"], "busy", f)
                self.assertTrue(f["error"]["retryable"])
                busy += 1
        self.assertEqual(accepted, 64)
        self.assertEqual(busy, 936)
        status = self.c.call("status")["result"]
        self.assertEqual(status["tasks"]["active"], 64)
        self.assertLess(status["rss"]["anon_bytes"], 256 << 20)

    def test_bad_task_requests(self):
        self.assertEqual(self.c.call("tasks.show", {"id": 12345})["error"]["code"], "not_found")
        self.assertEqual(self.c.call("tasks.show", {})["error"]["code"], "invalid_argument")
        self.assertEqual(self.c.call("tasks.show", {"id": "x"})["error"]["code"], "invalid_argument")
        self.assertEqual(self.c.call("tasks.cancel", {"id": 1, "x": 2})["error"]["code"], "invalid_argument")
        self.assertEqual(self.c.call("debug.hold", {"keys": [], "ms": 1})["error"]["code"], "invalid_argument")
        self.c.send({"id": 9, "method": "tasks.list", "wait": "no"})
        self.assertEqual(self.c.read_frame()["error"]["code"], "invalid_argument")

    def test_cli_tasks(self):
        a = self.submit(["c"], 10)
        b = self.submit(["c"], 10, fail="not_found")
        self.wait_task(b)
        lst = run_cli("tasks", "list", node_dir=self.node.dir)
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertIn("debug.hold", lst.stdout)
        self.assertEqual(run_cli("tasks", "wait", str(a), node_dir=self.node.dir).returncode, 0)
        waited = run_cli("tasks", "wait", str(b), node_dir=self.node.dir)
        self.assertEqual(waited.returncode, 3, "exit code follows the task's error (not_found)")
        self.assertIn("not_found", waited.stdout)
        js = run_cli("--json", "tasks", "show", str(a), node_dir=self.node.dir)
        self.assertEqual(json.loads(js.stdout)["state"], "succeeded")
        self.assertEqual(run_cli("tasks", "show", "999", node_dir=self.node.dir).returncode, 3)
        self.assertEqual(run_cli("tasks", "frob", node_dir=self.node.dir).returncode, 2)


class TaskRestartTest(unittest.TestCase):
    def test_kill_9_marks_the_running_task_interrupted(self):
        node = Node()
        try:
            node.start(test_hooks=True)
            c = node.control()
            hold(c, 1, ["alias/a"], 60000)
            task = c.read_frame()["result"]["task"]
            wait_for(lambda: c.call("tasks.show", {"id": task}, id=2)["result"]["state"] == "running",
                     what="the task to run")
            c.close()
            node.stop(signal.SIGKILL)
            node.start()
            c = node.control()
            record = c.call("tasks.show", {"id": task})["result"]
            self.assertEqual(record["state"], "failed")
            self.assertEqual(record["error"]["code"], "interrupted")
            # "running" is recorded without waiting for the disk, so the last
            # durable state may still be "queued"; either way it was interrupted.
            self.assertRegex(record["error"]["message"], "while the task was (queued|running)")
            c.close()
            self.assertEqual(node.stop(), 0)
        finally:
            node.cleanup()

    def test_debug_hold_needs_the_test_hook(self):
        node = Node()
        try:
            node.start()
            c = node.control()
            self.assertEqual(c.call("debug.hold", {"keys": ["a"], "ms": 1})["error"]["code"], "unknown_method")
            c.close()
            self.assertEqual(node.stop(), 0)
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
