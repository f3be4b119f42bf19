"""Power cuts at every sync point of one immutable upload's completion
(issue 24, the power-cut test's cut 104), and of an abort and a slot's
read-test-write. The random power-cut test
(test_power_cut.py) cuts at a random moment, so a window of one FUSE round
trip is hit about once in a few hundred cuts; this test walks the window
deterministically. A cairnd under the "always" sync policy takes an upload's
first half (acknowledged: durable), then powercut_fs is armed to cut the power
at its Nth sync point (an fsync, fdatasync, directory fsync or O_DSYNC write)
and the write that completes the share is sent. For N = 1, 2, ... until that
write is acknowledged without a cut, the node restarts on what the cut left
(a new boot) and the share must be either complete with exactly its bytes or
still an open upload that keeps the acknowledged first half: finishing it
with only the second half completes it and it reads back byte-exact. The
same walk over an abort (the upload is gone, or open with its half kept) and
a slot's read-test-write (the old version or the new one, whole).

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

    def cut_during(self, n, setup, action, check):
        """One point: a node from the pristine copy, setup(c) (acknowledged),
        then powercut_fs armed at its nth sync point and action(c) sent.
        Returns (the cut's line, or None if the action was acknowledged
        without a cut, and the problems check(c, line) found after the
        restart on what the cut left)."""
        shutil.rmtree(self.backing)
        shutil.copytree(self.pristine, self.backing, symlinks=True)
        c = self.start(cut_at_sync=n)
        setup(c)
        self.fs.arm()
        answer = {}

        def act():
            try:
                answer["ok"] = action(c)
            except Exception as e:   # the node lost its disk: http.client's, OSError, GbsError
                answer["error"] = repr(e)
        t = threading.Thread(target=act, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        cut, line = False, None
        while time.monotonic() < deadline:
            cut, line = self.fs.wait_cut(timeout=0.2)
            if cut or not t.is_alive():
                break
        if not cut and not t.is_alive() and answer.get("ok"):
            c.close()
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None
            self.fs.unmount()
            self.fs = None
            return None, []
        self.assertTrue(cut, f"sync point {n}: neither a cut nor an acknowledgement within 60 s: {answer}")
        line = line.splitlines()[0]
        self.fs = None
        stop_process(self.proc)   # the machine is off
        self.proc = None
        t.join(timeout=30)
        c.close()
        self.assertFalse(answer.get("ok"), f"{line}: acknowledged although the power was cut before the "
                                           f"commit's last sync")
        # The machine comes back.
        c = self.start()
        try:
            problems = [f"{line}: {p}" for p in check(c)]
        except GbsError as e:
            problems = [f"{line}: {e}"]
        finally:
            c.close()
        stop_process(self.proc, signal.SIGTERM)
        self.proc = None
        self.fs.unmount()
        self.fs = None
        return line, problems

    def walk(self, what, setup, action, check):
        """Cuts at sync point 1, 2, ... of `action` until it is acknowledged;
        returns the cuts' lines. Every restart must pass `check`."""
        lines, problems = [], []
        for n in range(1, 16):
            line, found = self.cut_during(n, setup, action, check)
            if line is None:
                break
            lines.append(line)
            problems += found
        else:
            self.fail(f"{what} was never acknowledged within 15 sync points: {lines}")
        print(f"\npower cut points, {what}: {len(lines)} sync points cut:\n  " + "\n  ".join(lines), flush=True)
        self.assertEqual(problems, [], what)
        return lines

    def test_every_sync_point_of_a_completion_keeps_the_acknowledged_half(self):
        self.make_node({"store_sync_every_write": 1, "store_reserved_bytes": 0})
        raw = bytes(range(0xa0, 0xb0))
        si = base64.b32encode(raw).decode().lower().rstrip("=")
        data = random.Random(7).randbytes(SIZE)

        def setup(c):
            r = c.allocate(si, {0}, SIZE, RENEW, CANCEL, SECRET)
            self.assertEqual(set(r["allocated"]), {0}, r)
            self.assertEqual(c.write(si, 0, 0, data[:HALF], SECRET)[0], 200)

        def check(c):
            if 0 in c.list_shares(si):
                return [] if c.read(si, 0, 0, SIZE) == data else ["the share is complete with wrong bytes"]
            status, reply = c.write(si, 0, HALF, data[HALF:], SECRET)
            if status != 201:
                return [f"the acknowledged first half was lost (still required: {reply.get('required')})"]
            return [] if c.read(si, 0, 0, SIZE) == data else ["the finished upload reads back wrong bytes"]
        lines = self.walk("completion", setup, lambda c: c.write(si, 0, HALF, data[HALF:], SECRET)[0] == 201, check)
        # The walk covered the rename's window: both directories' fsyncs.
        self.assertTrue(any("directory fsync of incoming" in x for x in lines), lines)
        self.assertTrue(any(f"directory fsync of {raw.hex()[:2]}" in x for x in lines), lines)

    def test_every_sync_point_of_an_abort_and_a_slot_write_leaves_old_or_new(self):
        self.make_node({"store_sync_every_write": 1, "store_reserved_bytes": 0})
        rng = random.Random(8)
        si = base64.b32encode(rng.randbytes(16)).decode().lower().rstrip("=")
        slot_si = base64.b32encode(rng.randbytes(16)).decode().lower().rstrip("=")
        data = rng.randbytes(SIZE)
        we = b"w" * 32
        old, new = rng.randbytes(20000), rng.randbytes(20000)

        def setup(c):
            r = c.allocate(si, {0}, SIZE, RENEW, CANCEL, SECRET)
            self.assertEqual(set(r["allocated"]), {0}, r)
            self.assertEqual(c.write(si, 0, 0, data[:HALF], SECRET)[0], 200)
            r = c.rtw(slot_si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": old}],
                                                       "new-length": None}})
            self.assertTrue(r["success"])

        def abort(c):
            c.abort(si, 0, SECRET)
            return True

        def check_abort(c):
            # Aborted (the upload is gone) or not (it is open, its half kept).
            try:
                status, reply = c.write(si, 0, HALF, data[HALF:], SECRET)
            except GbsError as e:
                return [] if e.status == 404 else [f"after the cut: {e}"]
            if status != 201:
                return [f"the acknowledged first half was lost (still required: {reply.get('required')})"]
            return [] if c.read(si, 0, 0, SIZE) == data else ["the finished upload reads back wrong bytes"]
        self.walk("abort", setup, abort, check_abort)

        def rewrite(c):
            r = c.rtw(slot_si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": new}],
                                                       "new-length": None}})
            return r["success"]

        def check_slot(c):
            got = c.read(slot_si, 0, 0, 30000, kind="mutable")
            return [] if got in (old, new) else [f"the slot is neither version whole ({len(got)} bytes)"]
        self.walk("read-test-write", setup, rewrite, check_slot)

if __name__ == "__main__":
    unittest.main()
