"""Issue 20's scale check: a 10,000-file tree backs up and restores byte for
byte with times and modes, through real cairnd nodes on 127.0.0.1.

The grid is as small as the test can make it and still be a grid: two
storage nodes and a client node encoding 1-of-2 with happiness 2 (every
file is two shares, one on each server), so the time goes into the 10,000
files rather than into erasure coding. The storage nodes acknowledge share
writes without fsync (limits.test_store_skip_sync, a test-only limit):
durability is test_store_crash.py's and test_power_cut.py's subject, and
the syncs of 14,000 shares were three quarters of the backup's time.

The tree (CAIRN_BACKUP_LARGE_FILES files, default 10,000; the seed is
printed, CAIRN_BACKUP_LARGE_SEED repeats it):

  - 114 directories besides the root: 10 top directories, each with 10
    subdirectories, a chain 3 deep below the first of these, and one empty
    directory; the files are spread evenly over the 100 subdirectories and
    the chain's end; directory modes 0755, 0750 and 0700,
    each directory's mtime set after its files were written;
  - files of four kinds, by their number i: every 20th is empty (500 files,
    URI:LIT: with no data); every 4th from 1 holds 1 to 55 bytes (2,500
    LIT files: their bytes are in the cap, nothing is stored); every
    1,000th from 999 holds 64 to 191 KiB (10 CHK files of one segment);
    the other 6,990 hold 56 to 3,000 bytes (small CHK files);
  - names of ASCII and non-ASCII letters (Latin accents, Greek, CJK, an
    emoji), all in NFC (NFD names and their NFC storage are tested in
    test_dirs.py), no two alike;
  - file modes cycle through 0644, 0600, 0755, 0444, 0640, 0700, 0664;
    mtimes are distinct, with nanoseconds, from 2001 to 2033.

The backup (`cairn backup`) must upload every file and make every
directory; the restore (`cairn cp -r ALIAS:path/Latest DEST`) must give the
same set of paths, every file's bytes, and the mode and mtime of every file
and directory (the mtime to the precision of the metadata's float seconds,
as test_backup.py checks it). A second backup with nothing changed uploads
nothing and makes the same snapshot."""
import json
import os
import random
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, run_cli, stop_grid  # noqa: E402

K, N, HAPPY = 1, 2, 2
FILES = int(os.environ.get("CAIRN_BACKUP_LARGE_FILES", "10000"))
FILE_MODES = [0o644, 0o600, 0o755, 0o444, 0o640, 0o700, 0o664]
DIR_MODES = [0o755, 0o750, 0o700]
# Syllables of the names: each name is unique by its number, and most carry
# a non-ASCII letter.
SYLLABLES = ["a", "\u00e9t\u00e9", "na\u00efve", "\u03b1\u03b2\u03b3", "\u65e5\u672c", "stra\u00dfe",
             "\u00f1o", "\U0001f600", "z\u00fcrich", "x"]


def kind_of(i):
    """"empty", "lit", "big" or "chk": the docstring's rule."""
    if i % 20 == 0:
        return "empty"
    if i % 4 == 1:
        return "lit"
    if i % 1000 == 999:
        return "big"
    return "chk"


def size_of(i, rng):
    kind = kind_of(i)
    if kind == "empty":
        return 0
    if kind == "lit":
        return rng.randint(1, 55)
    if kind == "big":
        return rng.randint(64 << 10, 191 << 10)
    return rng.randint(56, 3000)


def make_tree(root, seed, count=FILES):
    """The docstring's tree of `count` files under `root` (also
    test/bench/restore_bench.py's): {relative path: bytes} of the files and
    the list of relative directory paths (root excluded)."""
    rng = random.Random(seed)
    leaves, dirs = [], []
    for a in range(10):
        top = f"d{a}-{SYLLABLES[a]}"
        dirs.append(top)
        for b in range(10):
            leaf = f"{top}/s{b}-{SYLLABLES[(a + b) % len(SYLLABLES)]}"
            dirs.append(leaf)
            leaves.append(leaf)
    chain = "d0-a/s0-a/deep/\u00e9tage/tr\u00e8s"
    for i in range(1, 4):
        dirs.append("/".join(chain.split("/")[:2 + i]))
    leaves.append(chain)
    dirs.append("vide-\u00e9mpty")
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    files = {}
    for i in range(count):
        leaf = leaves[i % len(leaves)]
        name = f"f{i:05d}-{SYLLABLES[i % len(SYLLABLES)]}{SYLLABLES[(i // 10) % len(SYLLABLES)]}.bin"
        rel = f"{leaf}/{name}"
        data = rng.randbytes(size_of(i, rng))
        path = os.path.join(root, rel)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, FILE_MODES[i % len(FILE_MODES)])
        ns = 1_000_000_000_000_000_000 + i * 100_000_000_123_457
        os.utime(path, ns=(ns, ns))
        files[rel] = data
    # Deepest first, so that setting a directory's time is not undone by
    # a change inside it.
    for j, d in enumerate(sorted(dirs, key=lambda p: -p.count("/"))):
        path = os.path.join(root, d)
        os.chmod(path, DIR_MODES[j % len(DIR_MODES)])
        ns = 1_300_000_000_000_000_000 + j * 86_400_000_000_007
        os.utime(path, ns=(ns, ns))
    return files, dirs


class BackupLargeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}", config_patch={"limits": {"test_store_skip_sync": 1}}) for i in range(N)]
        for s in cls.servers:
            s.start()
        cls.client = Node("c0", config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY}})
        cls.client.start()
        for i, s in enumerate(cls.servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-backup-large-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def cli(self, *args):
        started = time.monotonic()
        p = run_cli("--json", "-q", "--timeout", "900", *args, node_dir=self.client.dir, timeout=1800)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout[-2000:]} {p.stderr[-2000:]}")
        print(f"  {args[0]} {args[1]}: {time.monotonic() - started:.1f} s", file=sys.stderr)
        return json.loads(p.stdout) if p.stdout.strip() else None

    def check_same_times_and_mode(self, a, b):
        sa, sb = os.stat(a), os.stat(b)
        self.assertEqual(oct(sa.st_mode), oct(sb.st_mode), b)
        # The metadata holds Python's float seconds: whole seconds exact,
        # the fraction to within the float's precision.
        self.assertEqual(int(sa.st_mtime), int(sb.st_mtime), b)
        self.assertLess(abs(sa.st_mtime_ns - sb.st_mtime_ns), 1000, b)

    def test_ten_thousand_files_back_up_and_restore(self):
        seed = int(os.environ.get("CAIRN_BACKUP_LARGE_SEED", random.randrange(1 << 32)))
        print(f"\n  test_backup_large seed {seed} (CAIRN_BACKUP_LARGE_SEED)", file=sys.stderr)
        src = os.path.join(self.tmp, "src")
        files, dirs = make_tree(src, seed)
        kinds = [kind_of(i) for i in range(FILES)]
        if FILES == 10000:
            self.assertEqual([kinds.count(k) for k in ("empty", "lit", "big", "chk")], [500, 2500, 10, 6990])
        run_cli("alias", "create", "big", node_dir=self.client.dir, check=True, timeout=120)

        r = self.cli("backup", src, "big:tree")
        self.assertEqual((r["files_uploaded"], r["files_reused"], r["files_skipped"]), (FILES, 0, 0), r)
        self.assertEqual((r["directories_created"], r["directories_skipped"]), (len(dirs) + 1, 0), r)

        dest = os.path.join(self.tmp, "restored")
        os.mkdir(dest)
        self.cli("cp", "-r", "big:tree/Latest", dest)
        out = os.path.join(dest, "Latest")  # cp into a directory: under SRC's name
        got_files, got_dirs = set(), set()
        for here, subdirs, names in os.walk(out):
            rel = os.path.relpath(here, out)
            if rel != ".":
                got_dirs.add(rel)
            for name in names:
                got_files.add(os.path.normpath(os.path.join(rel, name)))
        self.assertEqual(got_dirs, set(dirs))
        self.assertEqual(got_files, set(files))
        for rel, data in files.items():
            a, b = os.path.join(src, rel), os.path.join(out, rel)
            with open(b, "rb") as f:
                self.assertEqual(f.read(), data, rel)
            self.check_same_times_and_mode(a, b)
        for d in dirs:
            self.check_same_times_and_mode(os.path.join(src, d), os.path.join(out, d))

        # Nothing changed: nothing uploaded, every directory reused, the
        # same snapshot.
        again = self.cli("backup", src, "big:tree")
        self.assertEqual((again["files_uploaded"], again["files_reused"], again["directories_created"],
                          again["directories_reused"]), (0, FILES, 0, len(dirs) + 1), again)
        self.assertEqual(again["snapshot"], r["snapshot"])


if __name__ == "__main__":
    unittest.main()
