"""The client's memory during `cairn backup` is bounded by the directories
on the current path and the upload window, not by the tree (issue 20:
"trees of 100,000 files work, with the client's memory bounded by a few
directories plus the upload window").

A client node and one storage node (1-of-1, 16 KiB segments) on
127.0.0.1. The files are of LIT size (40 bytes: the cap holds them, nothing
is uploaded), so thousands of them back up in seconds, through the same
walk, listing and directory building as any file; each directory's body is
a CHK upload. The client's anonymous RSS (RssAnon of /proc/PID/status,
sampled every few milliseconds by a thread) is compared between a small
and a four times larger backup. The client cairnd runs with ASan's
quarantine off and its free pages released to the system at once, so that
its RSS follows the memory it holds (with the defaults it follows what was
ever allocated):

  - a tree: 4N files in directories of 25 must peak within 1 MiB of N files
    in directories of 25 (what grows with the tree is a bug);
  - one wide directory: 4N entries against N may grow only by what each
    entry of the directory being walked costs, under 2,500 bytes a child.
    The listing's entries and the finished children (each kept as its
    packed body entry and cap) measure about 1,400 bytes a child under
    ASan (about 450 in a release build). Before the children were kept
    packed (a parsed metadata tree each, 1.3 KB in a release build alone),
    this measured 3,200 to 3,700 bytes a child and failed.

No timing is asserted."""
import os
import tempfile
import threading
import time
import unittest

from pylib.cairntest import Node, run_cli, stop_grid

# Files in the smaller run; the larger has four times as many.
SMALL = int(os.environ.get("CAIRN_BACKUP_MEMORY_FILES", "1000"))
PER_DIR = 25
# Allowed growth of the tree's peak from SMALL to 4 * SMALL files, and of
# the wide directory's per extra child.
TREE_GROWTH_BYTES = 1 << 20
WIDE_BYTES_PER_CHILD = 2500


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no RssAnon in /proc/{pid}/status")


class PeakSampler:
    """The largest RssAnon of `pid` while in the `with` block."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon(self.pid))
            time.sleep(0.003)

    def __enter__(self):
        self.peak = rss_anon(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        self.peak = max(self.peak, rss_anon(self.pid))


class BackupMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Node("s0")
        cls.server.start()
        nurl = run_cli("nurl", node_dir=cls.server.dir, check=True).stdout.strip()
        # Segments of 16 KiB: a directory body's upload then holds a few of
        # them whatever the directory's size, so that the peaks compared are
        # the walk's (with 1 MiB segments a body of up to 1 MiB is held whole,
        # several times over, and hides what the walk keeps per child).
        cls.client = Node("c0", config_patch={"client": {
            "shares_needed": 1, "shares_total": 1, "shares_happy": 1, "max_segment_size": 16384}})
        # ASan keeps freed memory in quarantine (256 MB by default): RSS
        # would then follow what was ever allocated, not what is held.
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0:allocator_release_to_os_interval_ms=0"
        try:
            cls.client.start()
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        run_cli("servers", "add", nurl, "--nickname", "s0", node_dir=cls.client.dir, check=True)
        p = run_cli("alias", "create", "mem", node_dir=cls.client.dir, timeout=120)
        assert p.returncode == 0, p.stderr
        cls.tmp = tempfile.mkdtemp(prefix="cairn-backup-mem-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid([cls.server, cls.client], cls.tmp)

    def make_files(self, root, count, per_dir):
        """`count` files of 40 distinct bytes, `per_dir` to a directory
        (all in `root` if per_dir is None), directories two levels deep."""
        for i in range(count):
            if per_dir is None:
                d = root
            else:
                group = i // per_dir
                d = os.path.join(root, f"g{group // 10:03d}", f"d{group:04d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"file-{i:06d}.txt"), "wb") as f:
                f.write(b"%s %06d ........................" % (os.path.basename(root).encode(), i))

    def backup_peak(self, name, count, per_dir):
        src = os.path.join(self.tmp, name)
        os.makedirs(src)
        self.make_files(src, count, per_dir)
        with PeakSampler(self.client.proc.pid) as sampler:
            p = run_cli("--json", "-q", "--timeout", "600", "backup", src, f"mem:{name}",
                        node_dir=self.client.dir, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return sampler.peak

    def test_tree_peak_does_not_grow_with_the_tree(self):
        # A warm-up of the same shape first: the allocator's and the
        # connections' first growth is not the tree's.
        self.backup_peak("tree0", SMALL, PER_DIR)
        small = self.backup_peak("tree1", SMALL, PER_DIR)
        large = self.backup_peak("tree4", 4 * SMALL, PER_DIR)
        print(f"tree: {SMALL} files peak {small} B, {4 * SMALL} files peak {large} B")
        self.assertLess(large - small, TREE_GROWTH_BYTES,
                        f"peak anonymous RSS grew from {small} to {large} bytes with the tree")

    def test_wide_directory_costs_little_per_child(self):
        self.backup_peak("wide0", SMALL, None)
        small = self.backup_peak("wide1", SMALL, None)
        large = self.backup_peak("wide4", 4 * SMALL, None)
        per_child = (large - small) / (3 * SMALL)
        print(f"wide: {SMALL} children peak {small} B, {4 * SMALL} children peak {large} B, "
              f"{per_child:.0f} B per extra child")
        self.assertLess(per_child, WIDE_BYTES_PER_CHILD,
                        f"peak anonymous RSS grew by {per_child:.0f} bytes per child of the directory")


if __name__ == "__main__":
    unittest.main()
