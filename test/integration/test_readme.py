"""The README's "first ten minutes of an owner" run as written: every line
of the block between the `owner-walkthrough` markers, in order, on a grid of
four local storage nodes whose servers.yaml is made from their own
`cairn tahoe-entry` stanzas, as a Tahoe-LAFS grid's operator hands it out.

What the test adds to the lines, and nothing else: `~` is a temporary home
directory; `cairn init` gets a free `--port` (the default port may be taken
on a test machine) and, as the README says a smaller grid needs, the node's
encoding is set to 2-of-4 with happiness 3 before cairnd starts; the line
`cairnd DIR &` is started as a process the test stops at the end. Then the
restored file and tree are compared with the source, modes and times
included, and the other lines' output is checked for what they promise.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import unittest

from pylib.cairntest import Node, binary, free_port, run_cli, stop_grid, wait_for

ROOT = os.environ.get("CAIRN_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def walkthrough_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- owner-walkthrough -->\n```sh\n(.*?)```\n<!-- end owner-walkthrough -->", text, re.S)
    if not m:
        raise AssertionError("README.md has no owner-walkthrough block")
    return [shlex.split(line, comments=True) for line in m.group(1).splitlines() if line.strip()]


class ReadmeWalkthroughTest(unittest.TestCase):
    def setUp(self):
        self.servers = [Node(f"s{i}") for i in range(4)]
        for s in self.servers:
            s.start()
        self.home = tempfile.mkdtemp(prefix="cairn-home-", dir="/tmp")
        entries = [run_cli("tahoe-entry", node_dir=s.dir, check=True).stdout for s in self.servers]
        with open(os.path.join(self.home, "servers.yaml"), "w") as f:
            f.write("storage:\n")
            for e in entries:
                f.write("".join(line + "\n" for line in e.splitlines() if not line.startswith("#")))
        docs = os.path.join(self.home, "Documents")
        os.makedirs(os.path.join(docs, "photos", "2026"))
        self.files = {
            "notes.txt": (b"buy milk\n", 0o644, 1_700_000_000),
            "report.pdf": (os.urandom(300_000), 0o600, 1_700_100_000),
            "photos/2026/beach.jpg": (os.urandom(70_000), 0o640, 1_700_200_000),
        }
        for rel, (data, mode, mtime) in self.files.items():
            path = os.path.join(docs, rel)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
        os.chmod(os.path.join(docs, "photos"), 0o750)
        os.utime(os.path.join(docs, "photos"), (1_690_000_000, 1_690_000_000))
        self.daemon = None
        self.node_dir = None

    def tearDown(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        stop_grid(self.servers, self.home)

    def expand(self, words):
        return [os.path.join(self.home, w[2:]) if w.startswith("~/") else w for w in words]

    def run_line(self, words):
        if words[0] == "cairnd":
            self.assertEqual(words[-1], "&", words)
            self.node_dir = words[1]
            self.log = open(os.path.join(self.home, "cairnd.log"), "ab")
            self.daemon = subprocess.Popen([binary("cairnd"), words[1]], stdout=self.log, stderr=subprocess.STDOUT)
            wait_for(self.answers, timeout=30, what="the README's cairnd to answer")
            return None
        self.assertEqual(words[0], "cairn", words)
        args = words[1:]
        if args[0] == "init":
            args += ["--port", str(free_port())]
        p = subprocess.run([binary("cairn")] + args, cwd=self.home, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, f"{' '.join(words)}\n{p.stdout}\n{p.stderr}")
        if args[0] == "init":
            path = os.path.join(args[1], "cairn.json")
            with open(path) as f:
                cfg = json.load(f)
            cfg.setdefault("client", {}).update({"shares_needed": 2, "shares_total": 4, "shares_happy": 3})
            with open(path, "w") as f:
                json.dump(cfg, f)
        return p

    def answers(self):
        if self.daemon.poll() is not None:
            raise AssertionError(f"the README's cairnd exited {self.daemon.returncode}")
        return run_cli("status", node_dir=self.node_dir).returncode == 0

    def test_the_owners_first_ten_minutes(self):
        lines = [self.expand(w) for w in walkthrough_lines()]
        self.assertGreaterEqual(len(lines), 10)
        out = {}
        for words in lines:
            p = self.run_line(words)
            if p is not None:
                key = " ".join(w for w in words[3:5])
                out[key] = p.stdout + p.stderr
        self.assertIsNotNone(self.daemon, "the walkthrough never starts cairnd")
        # servers list names the four servers of the imported file.
        listed = out["servers list"]
        for i in range(4):
            self.assertIn(f"s{i}", listed)
        # One snapshot, and the newest lists the source's top level.
        self.assertEqual(len([ln for ln in out["ls backups:docs/Archives"].splitlines() if ln.strip()]), 1)
        for name in ("notes.txt", "report.pdf", "photos"):
            self.assertIn(name, out["ls -l"])
        # The one file, and the whole tree with modes and times.
        with open(os.path.join(self.home, "notes.txt"), "rb") as f:
            self.assertEqual(f.read(), self.files["notes.txt"][0])
        restored = os.path.join(self.home, "restored")
        for rel, (data, mode, mtime) in self.files.items():
            path = os.path.join(restored, rel)
            with open(path, "rb") as f:
                self.assertTrue(f.read() == data, rel)
            st = os.stat(path)
            self.assertEqual(st.st_mode & 0o7777, mode, rel)
            self.assertEqual(int(st.st_mtime), mtime, rel)
        st = os.stat(os.path.join(restored, "photos"))
        self.assertEqual((st.st_mode & 0o7777, int(st.st_mtime)), (0o750, 1_690_000_000))
        # deep-check: every object healthy; the schedule shows in status.
        self.assertRegex(out["deep-check --add-lease"], r"done: \d+ objects checked, \d+ healthy, 0 unhealthy")
        self.assertIn("maintenance", out["status"].lower())


if __name__ == "__main__":
    unittest.main()
