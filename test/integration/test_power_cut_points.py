"""Power cuts at every sync point of one immutable upload's completion
(issue 24, the power-cut test's cut 104). The random power-cut test
(test_power_cut.py) cuts at a random moment, so a window of one FUSE round
trip is hit about once in a few hundred cuts; this test walks the window
deterministically. A cairnd under the "always" sync policy takes an upload's
first half (acknowledged: durable), then powercut_fs is armed to cut the power
at its Nth sync point (an fsync, fdatasync, directory fsync or O_DSYNC write)
and the write that completes the share is sent. For N = 1, 2, ... until that
write is acknowledged without a cut, the node restarts on what the cut left
(a new boot) and the share must be either complete with exactly its bytes or
still an open upload that keeps the acknowledged first half: finishing it
with only the second half completes it and it reads back byte-exact.

Before the fix, the cut at the directory fsync of shares/XX/ (incoming/ was
synced first, so the body's old name was gone and its new one not yet
durable) left the upload with no body: the restart gave it a new, empty one
and the finished share read back zeros where the first half was, the failure
the random test found at cut 104 with seed 1796586228.
"""
import base64
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import free_port, run_cli  # noqa: E402
from pylib.gbs import GbsClient, GbsError  # noqa: E402
from support.powercut import PowerCutFs, require_fuse, start_cairnd, stop_process, wait_answers  # noqa: E402

RENEW, CANCEL, SECRET = b"r" * 32, b"c" * 32, b"u" * 32
SIZE, HALF = 12000, 5000


class PowerCutPointsTest(unittest.TestCase):
    def setUp(self):
        require_fuse()
        self.tmp = tempfile.mkdtemp(prefix="pcp-", dir="/tmp")
        self.backing = os.path.join(self.tmp, "b")
        self.pristine = os.path.join(self.tmp, "pristine")
        self.mnt = os.path.join(self.tmp, "m")
        self.node_dir = os.path.join(self.mnt, "node")
        self.log = os.path.join(self.tmp, "cairnd.log")
        self.fs = None
        self.proc = None

    def tearDown(self):
        stop_process(self.proc)
        if self.fs:
            self.fs.kill_hard()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_node(self, limits):
        """A node made by `cairn init` on powercut_fs, kept aside as it is
        after a clean shutdown: every cut starts from a copy of it."""
        self.fs = PowerCutFs(self.backing, self.mnt).mount()
        run_cli("init", self.node_dir, "--port", str(free_port()), check=True)
        self.nurl = run_cli("nurl", node_dir=self.node_dir, check=True).stdout.strip()
        self.fs.unmount()
        self.fs = None
        path = os.path.join(self.backing, "node", "cairn.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.setdefault("limits", {}).update(limits)
        with open(path, "w") as f:
            json.dump(cfg, f)
        shutil.copytree(self.backing, self.pristine, symlinks=True)

    def start(self, **fs_args):
        self.fs = PowerCutFs(self.backing, self.mnt, **fs_args).mount()
        self.proc = start_cairnd(self.node_dir, self.log)
        wait_answers(self.node_dir, self.proc, self.log)
        return GbsClient(self.nurl, timeout=20)

    def cut_during_completion(self, n, si, data):
        """Runs one point: returns (the cut's line or None, problems)."""
        shutil.rmtree(self.backing)
        shutil.copytree(self.pristine, self.backing, symlinks=True)
        c = self.start(cut_at_sync=n)
        r = c.allocate(si, {0}, SIZE, RENEW, CANCEL, SECRET)
        self.assertEqual(set(r["allocated"]), {0}, r)
        status, _ = c.write(si, 0, 0, data[:HALF], SECRET)
        self.assertEqual(status, 200)
        self.fs.arm()
        answer = {}

        def complete():
            try:
                answer["status"] = c.write(si, 0, HALF, data[HALF:], SECRET)[0]
            except Exception as e:   # the node lost its disk: http.client's, OSError, GbsError
                answer["error"] = repr(e)
        t = threading.Thread(target=complete, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        cut, line = False, None
        while time.monotonic() < deadline:
            cut, line = self.fs.wait_cut(timeout=0.2)
            if cut or not t.is_alive():
                break
        if not cut and not t.is_alive() and answer.get("status") == 201:
            c.close()
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None
            self.fs.unmount()
            self.fs = None
            return None, []
        self.assertTrue(cut, f"sync point {n}: neither a cut nor an acknowledgement within 60 s: {answer}")
        self.fs = None
        stop_process(self.proc)   # the machine is off
        self.proc = None
        t.join(timeout=30)
        c.close()
        self.assertNotEqual(answer.get("status"), 201, f"sync point {n}: acknowledged although the power was cut "
                                                       f"before the commit's last sync: {line}")
        # The machine comes back.
        c = self.start()
        problems = []
        try:
            if 0 in c.list_shares(si):
                got = c.read(si, 0, 0, SIZE)
                if got != data:
                    problems.append(f"{line.splitlines()[0]}: the share is complete with wrong bytes")
            else:
                status, reply = c.write(si, 0, HALF, data[HALF:], SECRET)
                if status != 201:
                    problems.append(f"{line.splitlines()[0]}: the acknowledged first half was lost "
                                    f"(still required: {reply.get('required')})")
                elif c.read(si, 0, 0, SIZE) != data:
                    problems.append(f"{line.splitlines()[0]}: the finished upload reads back wrong bytes")
        except GbsError as e:
            problems.append(f"{line.splitlines()[0]}: {e}")
        finally:
            c.close()
        stop_process(self.proc, signal.SIGTERM)
        self.proc = None
        self.fs.unmount()
        self.fs = None
        return line, problems

    def test_every_sync_point_of_a_completion_keeps_the_acknowledged_half(self):
        self.make_node({"store_sync_every_write": 1, "store_reserved_bytes": 0})
        raw = bytes(range(0xa0, 0xb0))
        si = base64.b32encode(raw).decode().lower().rstrip("=")
        data = random.Random(7).randbytes(SIZE)
        lines, problems = [], []
        for n in range(1, 16):
            line, found = self.cut_during_completion(n, si, data)
            if line is None:
                break
            lines.append(line.splitlines()[0])
            problems += found
        else:
            self.fail(f"the completion was never acknowledged within 15 sync points: {lines}")
        print(f"\npower cut points: {len(lines)} sync points of the completing write cut:\n  " +
              "\n  ".join(lines), flush=True)
        self.assertEqual(problems, [])
        # The walk covered the rename's window: both directories' fsyncs.
        self.assertTrue(any("directory fsync of incoming" in x for x in lines), lines)
        self.assertTrue(any(f"directory fsync of {raw.hex()[:2]}" in x for x in lines), lines)


if __name__ == "__main__":
    unittest.main()
