"""A full disk and a full LMDB map: cairnd's node directory on a small
powercut_fs (--size-limit), driven by the independent GBS client.

Full disk: the node fills the file system with complete shares until an
allocation gets Tahoe's out-of-space answer (the share is in neither
"already-have" nor "allocated"); the version answer, `cairn status` and the
metrics report the space left; every stored share still reads back
byte-exact; a mutable write that fits succeeds and one that would grow the
slot past the space left is refused (507, no_space) and changes nothing;
after uploads in progress are aborted (their bodies deleted) the node accepts
and completes new uploads, without a restart. While it refuses writes for want
of space, `cairn status` (and --json: store.full with the reason, since when,
the bytes the refused write needed and the bytes available) and the metrics
(cairn_store_full, cairn_store_no_space_refusals_total) say so, and both clear when
space returns: with the next allocation that fits, or, with no write at all,
once the free space (read every 10 s) covers the refused write. When another user of the disk
fills it under an upload, the write that hits ENOSPC from the file system
fails (507), as does an LMDB commit that then finds no room, changing
nothing; this is not a sticky error: once the space is freed the same writes
succeed without a restart.

Map full: with a small LMDB map at its limit, read-test-writes fail with
no_space once the map is full, earlier slots read back whole, and after slots
are deleted (new-length 0) writes succeed again, without a restart.
"""
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import free_port, run_cli, wait_for  # noqa: E402
from pylib.gbs import V1, GbsClient, GbsError  # noqa: E402
from support.powercut import PowerCutFs, require_fuse, start_cairnd, stop_process, wait_answers  # noqa: E402

RENEW, CANCEL = b"r" * 32, b"c" * 32
MiB = 1 << 20


def si_of(rng):
    import base64
    return base64.b32encode(rng.randbytes(16)).decode().lower().rstrip("=")


class FullDiskBase(unittest.TestCase):
    SIZE_LIMIT = 24 * MiB
    LIMITS = {}

    def setUp(self):
        require_fuse()
        self.tmp = tempfile.mkdtemp(prefix="fd-", dir="/tmp")
        self.backing = os.path.join(self.tmp, "b")
        self.mnt = os.path.join(self.tmp, "m")
        self.node_dir = os.path.join(self.mnt, "node")
        self.fs = PowerCutFs(self.backing, self.mnt).mount()
        self.metrics_port = free_port()
        run_cli("init", self.node_dir, "--port", str(free_port()), check=True)
        self.fs.unmount()
        path = os.path.join(self.backing, "node", "cairn.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.setdefault("limits", {}).update(self.LIMITS)
        cfg["metrics"] = {"port": self.metrics_port}
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.fs = PowerCutFs(self.backing, self.mnt, size_limit=self.SIZE_LIMIT).mount()
        self.log = os.path.join(self.tmp, "cairnd.log")
        self.proc = start_cairnd(self.node_dir, self.log)
        wait_answers(self.node_dir, self.proc, self.log)
        self.nurl = run_cli("nurl", node_dir=self.node_dir, check=True).stdout.strip()
        self.c = GbsClient(self.nurl)
        self.rng = random.Random(24)

    def tearDown(self):
        self.c.close()
        code = stop_process(self.proc, signal.SIGTERM)
        log = self.read_log()
        self.fs.kill_hard()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(code, 0, log)

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def status(self):
        return json.loads(run_cli("--json", "status", node_dir=self.node_dir, check=True).stdout)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric(self, name):
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        raise AssertionError(f"no metric {name}")

    def assert_full(self, reason_part, needed=None):
        """`cairn status`, its --json and the metrics say the store is full."""
        st = self.status()["store"]
        self.assertIn("full", st, st)
        self.assertIn(reason_part, st["full"]["reason"])
        self.assertGreater(st["full"]["since_ms"], 1.7e12)
        if needed is not None:
            self.assertEqual(st["full"]["needed_bytes"], needed)
        self.assertGreaterEqual(st["no_space_refusals"], 1)
        human = run_cli("status", node_dir=self.node_dir, check=True).stdout
        self.assertIn("STORE FULL since", human)
        self.assertIn(reason_part, human)
        self.assertEqual(self.metric("cairn_store_full"), 1.0)
        self.assertGreaterEqual(self.metric("cairn_store_no_space_refusals_total"), 1.0)

    def assert_not_full(self):
        st = self.status()["store"]
        self.assertNotIn("full", st, st)
        self.assertNotIn("STORE FULL", run_cli("status", node_dir=self.node_dir, check=True).stdout)
        self.assertEqual(self.metric("cairn_store_full"), 0.0)

    def upload(self, si, data, secret, chunk=128 * 1024, size=None):
        """Allocates `size` (default len(data)) and writes `data` from 0;
        False if the share was not allocated."""
        r = self.c.allocate(si, {0}, size or len(data), RENEW, CANCEL, secret)
        if 0 not in r["allocated"]:
            return False
        for off in range(0, len(data), chunk):
            self.c.write(si, 0, off, data[off:min(off + chunk, len(data))], secret)
        return True

    def read_all(self, si, size, kind="immutable"):
        out = b""
        while len(out) < size:
            piece = self.c.read(si, 0, len(out), min(size - len(out), MiB), kind=kind)
            if not piece:
                break
            out += piece
        return out


class FullDiskTest(FullDiskBase):
    SIZE_LIMIT = 24 * MiB
    LIMITS = {"store_reserved_bytes": 2 * MiB, "lmdb_map_bytes": 8 * MiB, "lmdb_map_max_bytes": 8 * MiB}

    def test_a_full_disk_refuses_uploads_cleanly_and_recovers_without_restart(self):
        # A slot made while there is room, rewritten later when the disk is full.
        we = b"w" * 32
        slot = self.rng.randbytes(30000)
        r = self.c.rtw("a" * 26, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": slot}],
                                                         "new-length": None}})
        self.assertTrue(r["success"])
        # Uploads in progress, all but their last 4 KiB written: their
        # bodies take real space.
        victims = []
        for _ in range(4):
            si, secret = si_of(self.rng), self.rng.randbytes(32)
            data = self.rng.randbytes(MiB)
            self.assertTrue(self.upload(si, data[:MiB - 4096], secret, size=MiB))
            victims.append((si, secret))
        # Fill the disk with complete shares.
        stored = []
        refused = None
        for i in range(64):
            si, data = si_of(self.rng), self.rng.randbytes(MiB)
            if not self.upload(si, data, self.rng.randbytes(32)):
                refused = si
                break
            stored.append((si, data))
        self.assertIsNotNone(refused, "64 MiB of shares fitted on a 24 MiB disk")
        self.assertGreater(len(stored), 3)
        # Tahoe's answer: not allocated, not already here.
        again = self.c.allocate(refused, {0}, MiB, RENEW, CANCEL, b"s" * 32)
        self.assertEqual((set(again["already-have"]), set(again["allocated"])), (set(), set()))
        v = self.c.version()[V1]
        self.assertLess(v[b"available-space"], 6 * MiB)
        # `cairn status` and the metrics say why: the space left after the
        # reservation, less what uploads in progress hold, is less than the
        # share (the space is refreshed every 10 s).
        def short():
            st = self.status()["store"]
            return st.get("available_bytes", MiB) - st.get("incoming_bytes", 0) < MiB
        wait_for(short, timeout=30, what="cairn status to report the disk full")
        st = self.status()["store"]
        self.assertEqual(st["incoming_bytes"], 4 * MiB)
        self.assertNotIn("write_error", st)
        text = self.metrics()
        got = {}
        for line in text.splitlines():
            if line.startswith("cairn_store_bytes{"):
                got[line.split('"')[1]] = float(line.split()[-1])
        self.assertLess(got["available"] - got["incoming"], MiB, text)
        # And the reason: the store says it is full, since the refusal.
        self.assert_full("do not fit", needed=MiB)
        # Nothing stored is damaged.
        for si, data in stored:
            self.assertEqual(self.read_all(si, len(data)), data, si)
        # A mutable write that fits succeeds; one that grows past the space
        # left is refused whole.
        slot2 = self.rng.randbytes(30000)
        r = self.c.rtw("a" * 26, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": slot2}],
                                                         "new-length": None}})
        self.assertTrue(r["success"])
        with self.assertRaises(GbsError) as e:
            self.c.rtw("a" * 26, we, RENEW, CANCEL,
                       {0: {"test": [], "write": [{"offset": 30000, "data": b"g" * (8 * MiB)}], "new-length": None}})
        self.assertEqual(e.exception.status, 507)
        self.assertEqual(self.read_all("a" * 26, 30000 + 10, kind="mutable"), slot2)
        # Space is freed: the uploads in progress are aborted (their bodies
        # deleted). Uploads are accepted again, without a restart.
        for si, secret in victims:
            self.c.abort(si, 0, secret)
        data = self.rng.randbytes(MiB)
        wait_for(lambda: self.upload(refused, data, b"t" * 32), timeout=30, what="an upload accepted again")
        self.assertEqual(self.read_all(refused, MiB), data)
        self.assertIsNone(self.proc.poll())
        self.assertNotIn("write_error", self.status()["store"])
        self.assert_not_full()


class EnospcTest(FullDiskBase):
    # Another user of the disk fills it under an upload in progress: the
    # file system itself answers ENOSPC.
    SIZE_LIMIT = 16 * MiB
    LIMITS = {"store_reserved_bytes": 0, "lmdb_map_bytes": 4 * MiB, "lmdb_map_max_bytes": 4 * MiB}

    def test_enospc_from_the_disk_fails_the_write_alone(self):
        kept_si, kept = si_of(self.rng), self.rng.randbytes(MiB)
        self.assertTrue(self.upload(kept_si, kept, b"k" * 32))
        slot_si, we = si_of(self.rng), b"w" * 32
        r = self.c.rtw(slot_si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": b"before"}],
                                                        "new-length": None}})
        self.assertTrue(r["success"])
        si, data, secret = si_of(self.rng), self.rng.randbytes(2 * MiB), b"e" * 32
        self.assertTrue(self.upload(si, data[:MiB], secret, size=2 * MiB))
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            free = os.statvfs(self.mnt).f_bavail * 4096
            f.write(b"\0" * (free - 256 * 1024))
        with self.assertRaises(GbsError) as e:
            self.c.write(si, 0, MiB, data[MiB:], secret)
        self.assertEqual(e.exception.status, 507)
        self.assert_full("")   # needed: the store write that failed (the PATCH arrives in pieces)
        # The failed write may have taken the last free bytes (FUSE splits
        # it): then even LMDB's commit of a slot rewritten in place (its new
        # pages) gets ENOSPC, says so (507) and changes nothing; if LMDB
        # finds room, the rewrite fits and succeeds. What is stored reads.
        rewrite = {0: {"test": [], "write": [{"offset": 0, "data": b"after!"}], "new-length": None}}
        try:
            self.assertTrue(self.c.rtw(slot_si, we, RENEW, CANCEL, rewrite)["success"])
            self.assertEqual(self.read_all(slot_si, 6, kind="mutable"), b"after!")
        except GbsError as e:
            self.assertEqual(e.status, 507)
            self.assertEqual(self.read_all(slot_si, 6, kind="mutable"), b"before")
        self.assertEqual(self.read_all(kept_si, MiB), kept)
        # Not sticky: no write error, and once space is freed, without a
        # restart, the slot write and the same upload write succeed.
        self.assertNotIn("write_error", self.status()["store"])
        self.assert_full("")
        os.unlink(filler)
        # Space came back: the state clears without any write (the node
        # reads the free space every 10 s).
        wait_for(lambda: "full" not in self.status()["store"], timeout=30, what="cairn status to stop saying full")
        self.assert_not_full()
        self.assertTrue(self.c.rtw(slot_si, we, RENEW, CANCEL, rewrite)["success"])
        self.assertEqual(self.read_all(slot_si, 6, kind="mutable"), b"after!")
        status, _ = self.c.write(si, 0, MiB, data[MiB:], secret)
        self.assertEqual(status, 201)
        self.assertEqual(self.read_all(si, 2 * MiB), data)


class MapFullTest(FullDiskBase):
    SIZE_LIMIT = 64 * MiB
    LIMITS = {"store_reserved_bytes": 0, "lmdb_map_bytes": MiB, "lmdb_map_max_bytes": MiB}

    def test_a_full_lmdb_map_refuses_writes_and_recovers_after_deletions(self):
        we = b"w" * 32
        slots = []
        refused = None
        for i in range(200):
            si, data = si_of(self.rng), self.rng.randbytes(32000)
            try:
                r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": data}],
                                                           "new-length": None}})
                self.assertTrue(r["success"])
                slots.append((si, data))
            except GbsError as e:
                self.assertEqual(e.status, 507, e)
                refused = (si, data)
                break
        self.assertIsNotNone(refused, "200 slots of 32 KB fitted in a 1 MiB map")
        self.assertGreater(len(slots), 3)
        for si, data in slots:
            self.assertEqual(self.read_all(si, len(data) + 10, kind="mutable"), data, si)
        with self.assertRaises(GbsError) as e:   # refused whole: no slot at all
            self.read_all(refused[0], 10, kind="mutable")
        self.assertEqual(e.exception.status, 404)
        self.assertNotIn("write_error", self.status()["store"])
        self.assert_full("MDB_MAP_FULL", needed=32000)
        # Deleting slots frees map pages: the refused write fits now.
        for si, _ in slots[:len(slots) // 2]:
            r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [], "write": [], "new-length": 0}})
            self.assertTrue(r["success"])
        si, data = refused
        r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": data}],
                                                   "new-length": None}})
        self.assertTrue(r["success"])
        self.assertEqual(self.read_all(si, len(data) + 10, kind="mutable"), data)
        self.assert_not_full()   # the refused write fitted


if __name__ == "__main__":
    unittest.main()
