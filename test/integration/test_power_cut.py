"""Power cuts. First, the power-cut file system itself
(test/tools/powercut_fs): what it keeps and drops, seen through the kernel.
"""
import base64
import json
import os
import random
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import ControlConn, free_port, run_cli, wait_for  # noqa: E402
from pylib.gbs import GbsClient, GbsError  # noqa: E402
from support.powercut import (PowerCutFs, require_fuse, start_cairnd, stop_process,  # noqa: E402
                              wait_answers)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PowerCutFsTest(unittest.TestCase):
    """What powercut_fs keeps and drops, seen through the kernel."""

    def setUp(self):
        require_fuse()
        self.tmp = tempfile.mkdtemp(prefix="pcfs-", dir="/tmp")
        self.backing = os.path.join(self.tmp, "backing")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.fs = PowerCutFs(self.backing, self.mnt).mount()

    def tearDown(self):
        self.fs.kill_hard()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def p(self, *names):
        return os.path.join(self.mnt, *names)

    def b(self, *names):
        return os.path.join(self.backing, *names)

    def remount(self, **kw):
        self.fs = PowerCutFs(self.backing, self.mnt, **kw).mount()

    def write(self, path, data, sync=False, flags=0):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
        os.write(fd, data)
        if sync:
            os.fdatasync(fd)
        os.close(fd)

    def test_unsynced_write_is_lost_synced_write_is_kept(self):
        self.write(self.p("a"), b"durable", sync=True)
        self.write(self.p("b"), b"volatile")
        fsync_path(self.mnt)
        with open(self.p("a"), "r+b") as f:
            f.seek(0, 2)
            f.write(b" and more")   # appended, never synced
        self.assertEqual(open(self.p("a"), "rb").read(), b"durable and more")   # reads see the current state
        self.fs.cut()
        self.assertEqual(open(self.b("a"), "rb").read(), b"durable")
        self.assertEqual(open(self.b("b"), "rb").read(), b"")   # its name was synced, its bytes never

    def test_create_without_directory_fsync_is_lost(self):
        self.write(self.p("f"), b"x", sync=True)
        os.mkdir(self.p("d"))
        self.fs.cut()
        self.assertEqual(os.listdir(self.backing), [])

    def test_rename_without_directory_fsync_keeps_the_old_name(self):
        self.write(self.p("old"), b"content", sync=True)
        fsync_path(self.mnt)
        os.rename(self.p("old"), self.p("new"))
        self.assertEqual(sorted(os.listdir(self.mnt)), ["new"])
        self.fs.cut()
        self.assertEqual(sorted(os.listdir(self.backing)), ["old"])
        self.assertEqual(open(self.b("old"), "rb").read(), b"content")

    def test_rename_across_directories_each_side_durable_with_its_own_fsync(self):
        os.mkdir(self.p("x"))
        os.mkdir(self.p("y"))
        self.write(self.p("x", "f"), b"body", sync=True)
        fsync_path(self.p("x"))
        fsync_path(self.mnt)
        os.rename(self.p("x", "f"), self.p("y", "f"))
        fsync_path(self.p("y"))   # the new name is durable, the old one's removal is not
        self.fs.cut()
        self.assertEqual(open(self.b("x", "f"), "rb").read(), b"body")
        self.assertEqual(open(self.b("y", "f"), "rb").read(), b"body")

    def test_unlink_without_directory_fsync_is_undone(self):
        self.write(self.p("f"), b"keep", sync=True)
        fsync_path(self.mnt)
        os.unlink(self.p("f"))
        self.fs.cut()
        self.assertEqual(open(self.b("f"), "rb").read(), b"keep")

    def test_o_dsync_write_is_durable(self):
        self.write(self.p("s"), b"", sync=True)
        fsync_path(self.mnt)
        self.write(self.p("s"), b"dsync bytes", flags=os.O_DSYNC)
        self.fs.cut()
        self.assertEqual(open(self.b("s"), "rb").read(), b"dsync bytes")

    def test_subdirectory_synced_but_not_its_entry_is_unreachable(self):
        os.mkdir(self.p("d"))
        self.write(self.p("d", "f"), b"x", sync=True)
        fsync_path(self.p("d"))
        self.fs.cut()
        self.assertEqual(os.listdir(self.backing), [])

    def test_truncate_and_shared_mapping_follow_their_syncs(self):
        import mmap
        self.write(self.p("m"), b"\0" * 8192, sync=True)
        fsync_path(self.mnt)
        fd = os.open(self.p("m"), os.O_RDWR)
        m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:5] = b"synced"[:5]
        m.flush()                      # msync(MS_SYNC): an fsync of the file
        m[4096:4101] = b"lost!"         # dirty, never synced
        m.close()
        os.ftruncate(fd, 100)           # never synced either
        os.close(fd)
        self.fs.cut()
        data = open(self.b("m"), "rb").read()
        self.assertEqual(len(data), 8192)
        self.assertEqual(data[:5], b"synce")
        self.assertEqual(data[4096:4101], b"\0" * 5)

    def test_tear_keeps_a_prefix_of_the_last_unsynced_write_at_a_sector_boundary(self):
        seen = set()
        for seed in range(1, 9):
            self.fs.kill_hard()
            shutil.rmtree(self.backing)
            os.makedirs(self.backing)
            with open(self.b("t"), "wb") as f:
                f.write(b"o" * 4096)
            self.remount(seed=seed, tear=True)
            with open(self.p("t"), "r+b") as f:
                f.seek(100)
                f.write(b"n" * 3000)
            out = self.fs.cut()
            data = open(self.b("t"), "rb").read()
            self.assertEqual(len(data), 4096, out)
            kept = data.count(b"n")
            self.assertEqual(data[100:100 + kept], b"n" * kept)
            self.assertEqual(data[100 + kept:], b"o" * (4096 - 100 - kept))
            end = 100 + kept
            self.assertTrue(kept == 0 or end == 3100 or end % 512 == 0, (kept, out))
            seen.add(kept)
        self.assertGreater(len(seen), 1)   # the seed chooses

    def test_size_limit_gives_enospc_and_statfs_reports_it(self):
        self.fs.kill_hard()
        self.remount(size_limit=1 << 20)
        st = os.statvfs(self.mnt)
        self.assertEqual(st.f_blocks * st.f_frsize, 1 << 20)
        self.write(self.p("big"), b"x" * (900 << 10), sync=True)
        with self.assertRaises(OSError) as e:
            self.write(self.p("more"), b"y" * (200 << 10))
        self.assertEqual(e.exception.errno, 28)   # ENOSPC
        os.unlink(self.p("big"))
        self.write(self.p("more"), b"y" * (200 << 10))   # space came back
        st = os.statvfs(self.mnt)
        self.assertLess(st.f_bavail * st.f_frsize, (1 << 20) - (200 << 10) + 4096)

    def test_unsupported_operations_fail_loudly(self):
        self.write(self.p("f"), b"x")
        with self.assertRaises(OSError):
            os.link(self.p("f"), self.p("g"))
        with self.assertRaises(OSError):
            os.symlink("f", self.p("s"))
        self.fs.proc.send_signal(signal.SIGUSR1)
        out, err = self.fs.proc.communicate(timeout=30)
        self.fs.proc = None
        self.assertIn("powercut_fs: unsupported link", err)
        self.assertIn("powercut_fs: unsupported symlink", err)

    def test_cairn_init_on_a_new_disk_survives_a_cut(self):
        # issue 24: `cairn init` renamed its staging directory into place
        # and never synced the parent, nor the store directory.
        port = free_port()
        run_cli("init", self.p("node"), "--port", str(port), check=True)
        self.fs.cut()
        node = self.b("node")
        for name in ("cairn.json", "private/node.key", "private/node.crt", "private/swissnum",
                     "private/convergence", "private/secret", "store/data.mdb"):
            self.assertTrue(os.path.getsize(os.path.join(node, name)) > 0, name)
        json.load(open(os.path.join(node, "cairn.json")))


if __name__ == "__main__":
    unittest.main()
