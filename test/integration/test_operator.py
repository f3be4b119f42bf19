"""The operator's view of a running node: the status summary (space, shares,
tasks) and the optional /metrics listener on 127.0.0.1 for Prometheus."""
import json
import urllib.error
import urllib.request
import unittest

from pylib.cairntest import Node, free_port, run_cli


class OperatorTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.node = Node(config_patch={"metrics": {"port": self.port}})
        self.node.start()

    def tearDown(self):
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0)

    def test_status_summary(self):
        out = json.loads(run_cli("--json", "status", node_dir=self.node.dir, check=True).stdout)
        store = out["store"]
        self.assertEqual(store["shares"], 0)
        self.assertGreater(store["available_bytes"], 0)
        self.assertEqual(store["used_bytes"], 0)
        self.assertIn("by_state", out["tasks"])
        kinds = [l["kind"] for l in out["listening"]]
        self.assertEqual(kinds, ["control", "storage"])
        text = run_cli("status", node_dir=self.node.dir, check=True).stdout
        self.assertIn("available", text)
        self.assertIn("tasks", text)

    def test_metrics_listener(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("application/openmetrics-text"))
            body = r.read().decode()
        self.assertIn("cairn_store_bytes{kind=\"available\"}", body)
        self.assertIn("cairn_loop_max_busy_seconds", body)
        self.assertTrue(body.rstrip().endswith("# EOF"))
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/other", timeout=10)
        self.assertEqual(e.exception.code, 404)
        # The same text as `cairn metrics`, apart from values that move.
        cli = run_cli("metrics", node_dir=self.node.dir, check=True).stdout
        names = lambda t: sorted({l.split()[2] for l in t.splitlines() if l.startswith("# TYPE")})
        self.assertEqual(names(body), names(cli))


if __name__ == "__main__":
    unittest.main()
