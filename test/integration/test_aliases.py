"""Aliases over the real socket against a real cairnd: the race tests of the
control-plane issue (concurrent adds of one name, crossing renames, rename
and remove against a task that holds the name, a kill -9), plus validation.
A task holding a name is made with the test-only debug.hold method, which
takes the same lock a publish to that alias takes."""
import json
import os
import signal
import threading
import unittest

from pylib.cairntest import ControlConn, Node, run_cli, wait_for

KEY = "fs6ul2fju2fvb2cfx7gt6ngycm"
HASH = "hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2mzehxq"


def chk_cap(i):
    """A distinct, well-formed CHK cap per i."""
    return f"URI:CHK:{KEY}:{HASH}:3:10:{1000 + i}"


def concurrently(node_dir, requests):
    """Sends each (method, params) on its own connection, all released at
    once by a barrier; returns the replies in request order."""
    conns = [ControlConn(node_dir) for _ in requests]
    barrier = threading.Barrier(len(requests))
    replies = [None] * len(requests)

    def run(i):
        method, params = requests[i]
        barrier.wait()
        conns[i].send({"v": 1, "id": i, "method": method, "params": params})
        replies[i] = conns[i].read_final()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for c in conns:
        c.close()
    return replies


class AliasTest(unittest.TestCase):
    def setUp(self):
        self.node = Node()
        self.node.start(test_hooks=True)
        self.c = self.node.control()

    def tearDown(self):
        self.c.close()
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0)

    def call(self, method, params=None):
        return self.c.call(method, params or {})

    def aliases(self):
        return {a["name"]: a["cap"] for a in self.call("alias.list")["result"]["aliases"]}

    def test_race1_twenty_concurrent_adds_of_one_name(self):
        n = 20
        replies = concurrently(self.node.dir, [("alias.add", {"name": "x", "cap": chk_cap(i)}) for i in range(n)])
        winners = [i for i, r in enumerate(replies) if "result" in r]
        self.assertEqual(len(winners), 1, replies)
        for i, r in enumerate(replies):
            if i != winners[0]:
                self.assertEqual(r["error"]["code"], "conflict", r)
        self.assertEqual(self.aliases(), {"x": chk_cap(winners[0])})

    def test_race2_crossing_renames_to_one_name(self):
        self.call("alias.add", {"name": "a", "cap": chk_cap(1)})
        self.call("alias.add", {"name": "b", "cap": chk_cap(2)})
        replies = concurrently(self.node.dir, [("alias.rename", {"from": "a", "to": "c"}),
                                               ("alias.rename", {"from": "b", "to": "c"})])
        ok = [i for i, r in enumerate(replies) if "result" in r]
        self.assertEqual(len(ok), 1, replies)
        loser = 1 - ok[0]
        self.assertEqual(replies[loser]["error"]["code"], "conflict")
        expect = {"c": chk_cap(ok[0] + 1), "ab"[loser]: chk_cap(loser + 1)}
        self.assertEqual(self.aliases(), expect)  # nothing lost: the loser keeps its name

    def test_race3_rename_waits_for_the_task_holding_the_name(self):
        self.call("alias.add", {"name": "docs", "cap": chk_cap(3)})
        self.c.send({"v": 1, "id": "h", "method": "debug.hold",
                     "params": {"keys": ["alias/docs"], "ms": 700}, "wait": False})
        hold = self.c.read_frame()["result"]["task"]
        rename = self.call("alias.rename", {"from": "docs", "to": "papers"})
        self.assertIn("result", rename, rename)
        held = self.call("tasks.show", {"id": hold})["result"]
        renamed = self.call("tasks.show", {"id": rename["result"]["task"]})["result"]
        self.assertEqual(held["state"], "succeeded")
        self.assertGreaterEqual(renamed["started_ms"], held["finished_ms"])
        self.assertEqual(self.aliases(), {"papers": chk_cap(3)})

    def test_race4_remove_is_refused_while_a_task_uses_the_name(self):
        self.call("alias.add", {"name": "busy", "cap": chk_cap(4)})
        self.c.send({"v": 1, "id": "h", "method": "debug.hold",
                     "params": {"keys": ["alias/busy"], "ms": 600}, "wait": False})
        hold = self.c.read_frame()["result"]["task"]
        refused = self.call("alias.remove", {"name": "busy"})
        self.assertEqual(refused["error"]["code"], "in_use", refused)
        self.assertIn(f"task {hold}", refused["error"]["message"])
        self.assertEqual(self.call("tasks.wait", {"id": hold})["result"]["state"], "succeeded")
        removed = self.call("alias.remove", {"name": "busy"})
        self.assertEqual(removed["result"]["cap"], chk_cap(4))
        self.assertEqual(self.aliases(), {})

    def test_add_rename_remove_errors(self):
        self.assertEqual(self.call("alias.add", {"name": "ok", "cap": "URI:NOPE"})["error"]["code"], "bad_cap")
        self.assertEqual(self.call("alias.add", {"name": "-x", "cap": chk_cap(0)})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.call("alias.add", {"name": "a/b", "cap": chk_cap(0)})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.call("alias.add", {"name": "x" * 65, "cap": chk_cap(0)})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.call("alias.add", {"name": "a"})["error"]["code"], "invalid_argument")
        self.assertEqual(self.call("alias.add", {"name": "a", "cap": chk_cap(0), "x": 1})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.call("alias.rename", {"from": "none", "to": "b"})["error"]["code"], "not_found")
        self.assertEqual(self.call("alias.remove", {"name": "none"})["error"]["code"], "not_found")
        self.assertEqual(self.call("alias.get", {"name": "none"})["error"]["code"], "not_found")
        self.assertEqual(self.aliases(), {})
        # A cap is stored in its canonical form, whatever extension fields it carried.
        mdmf = f"URI:MDMF:{KEY}:{HASH}"
        self.assertIn("result", self.call("alias.add", {"name": "m", "cap": mdmf + ":3:131073"}))
        self.assertEqual(self.call("alias.get", {"name": "m"})["result"]["cap"], mdmf)

    def test_cli(self):
        d = self.node.dir
        p = run_cli("alias", "add", "photos", chk_cap(7), node_dir=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_cli("alias", "add", "photos", chk_cap(8), node_dir=d)
        self.assertEqual(p.returncode, 4)
        self.assertIn("already exists", p.stderr)
        p = run_cli("--json", "alias", "rename", "photos", "pics", "--async", node_dir=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        task = json.loads(p.stdout)["task"]
        self.assertEqual(run_cli("tasks", "wait", str(task), node_dir=d).returncode, 0)
        p = run_cli("alias", "list", node_dir=d)
        self.assertEqual(p.stdout.split(), ["pics", chk_cap(7)])
        self.assertEqual(run_cli("alias", "get", "pics", node_dir=d).stdout.strip(), chk_cap(7))
        self.assertEqual(run_cli("alias", "remove", "pics", node_dir=d).returncode, 0)
        self.assertEqual(run_cli("alias", "remove", "pics", node_dir=d).returncode, 3)
        self.assertEqual(run_cli("alias", "frobnicate", node_dir=d).returncode, 2)


class AliasDurabilityTest(unittest.TestCase):
    def test_race7_kill_9_during_a_task_keeps_every_acknowledged_alias(self):
        node = Node()
        try:
            node.start(test_hooks=True)
            c = node.control()
            for i in range(30):
                self.assertIn("result", c.call("alias.add", {"name": f"n{i}", "cap": chk_cap(i)}))
            c.send({"v": 1, "id": "h", "method": "debug.hold", "params": {"keys": ["alias/n1"], "ms": 60000},
                    "wait": False})
            hold = c.read_frame()["result"]["task"]
            wait_for(lambda: c.call("tasks.show", {"id": hold})["result"]["state"] == "running", what="hold running")
            c.close()
            node.stop(sig=signal.SIGKILL)
            node.start()
            c = node.control()
            names = {a["name"]: a["cap"] for a in c.call("alias.list")["result"]["aliases"]}
            self.assertEqual(names, {f"n{i}": chk_cap(i) for i in range(30)})
            shown = c.call("tasks.show", {"id": hold})["result"]
            self.assertEqual(shown["state"], "failed")
            self.assertEqual(shown["error"]["code"], "interrupted")
            c.close()
            self.assertEqual(node.stop(), 0)
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
