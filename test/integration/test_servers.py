"""servers add / remove / list over a real cairnd: NURLs validated, ids from
the SPKI hash, unique nicknames checked under the servers lock, concurrent
adds of one server (one wins, the others get conflict), durable across a
restart."""
import json
import threading
import unittest

from pylib.cairntest import ControlConn, Node, run_cli


def nurl(i, port=3456):
    spki = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" + str(i))[-43:]
    return f"pb://{spki}@127.0.0.1:{port}/swissnum{i}#v=1"


class ServersTest(unittest.TestCase):
    def setUp(self):
        self.node = Node()
        self.node.start()
        self.c = self.node.control()

    def tearDown(self):
        self.c.close()
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0)

    def test_add_list_remove(self):
        r = self.c.call("servers.add", {"nurl": nurl(1), "nickname": "nas1"})["result"]
        self.assertEqual(r["id"], nurl(1)[5:48])
        self.assertEqual(r["nickname"], "nas1")
        r2 = self.c.call("servers.add", {"nurl": nurl(2, 4000)})["result"]
        self.assertEqual(r2["nickname"], "127.0.0.1:4000")           # default nickname
        listed = self.c.call("servers.list", {})["result"]["servers"]
        self.assertEqual(sorted(s["nickname"] for s in listed), ["127.0.0.1:4000", "nas1"])
        self.assertEqual(self.c.call("servers.add", {"nurl": nurl(1)})["error"]["code"], "conflict")
        dup = self.c.call("servers.add", {"nurl": nurl(3), "nickname": "nas1"})["error"]
        self.assertEqual(dup["code"], "conflict")
        self.assertIn("nickname", dup["message"])
        self.assertEqual(self.c.call("servers.add", {"nurl": "pb://x@tcp:h:1/s#v=1"})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.c.call("servers.remove", {"server": "nas1"})["result"]["id"], r["id"])
        self.assertEqual(self.c.call("servers.remove", {"server": r2["id"]})["result"]["nickname"], "127.0.0.1:4000")
        self.assertEqual(self.c.call("servers.remove", {"server": "nas1"})["error"]["code"], "not_found")
        self.assertEqual(self.c.call("servers.list", {})["result"]["servers"], [])

    def test_concurrent_adds_of_one_server(self):
        conns = [ControlConn(self.node.dir) for _ in range(10)]
        barrier = threading.Barrier(10)
        replies = [None] * 10

        def run(i):
            barrier.wait()
            conns[i].send({"v": 1, "id": i, "method": "servers.add", "params": {"nurl": nurl(5), "nickname": f"n{i}"}})
            replies[i] = conns[i].read_final()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for c in conns:
            c.close()
        self.assertEqual(sum("result" in r for r in replies), 1, replies)
        self.assertTrue(all(r["error"]["code"] == "conflict" for r in replies if "error" in r))
        self.assertEqual(len(self.c.call("servers.list", {})["result"]["servers"]), 1)

    def test_cli_and_restart(self):
        d = self.node.dir
        p = run_cli("servers", "add", nurl(7), "--nickname", "attic", node_dir=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.c.close()
        self.assertEqual(self.node.stop(), 0)
        self.node.start()
        self.c = self.node.control()
        out = json.loads(run_cli("--json", "servers", "list", node_dir=d, check=True).stdout)
        self.assertEqual([s["nickname"] for s in out["servers"]], ["attic"])
        self.assertIn("attic", run_cli("servers", "list", node_dir=d, check=True).stdout)
        self.assertEqual(run_cli("servers", "remove", "attic", node_dir=d).returncode, 0)
        self.assertEqual(run_cli("servers", "bogus", node_dir=d).returncode, 2)


if __name__ == "__main__":
    unittest.main()
