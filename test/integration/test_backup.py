"""`cairn backup` through real cairnd nodes on 127.0.0.1: four storage
nodes and a client node (2-of-4, happiness 3), as test_dirs.py sets them
up. Tahoe-LAFS's layout (TO/Archives/<UTC time>, TO/Latest), the snapshot
metadata of tahoe-dirnodes.md B.3, the summary lines of backup-runs.json
(../shared/vectors/dirs) on the same five-file tree, the backup database's
rules (one changed file: one upload, the other directories reused; nothing
changed: no upload; --ignore-timestamps: every file uploaded again, every
directory reused, as backup-runs.json's run 4), excludes and skips (exit
code 2), and a kill -9 of cairnd in the middle of a backup: the database
keeps only finished uploads and a second run completes the snapshot.

BackupCheckTest, on a grid of its own (two storage nodes, 1-of-2): Tahoe's
health checks of reused caps. A storage node loses its disk (its store is
put back as it was before any upload), so every file and directory keeps
one share of two; the test makes one file's and one directory's last
check old in the backup database (with LMDB's own mdb_load): the next
backup checks exactly those two, finds them unhealthy and uploads them
again (the file is healthy afterwards; one whose check was not due is
not touched), counting them in "files checked" and "directories checked";
a due check that finds the file healthy reuses it and renews its check
time."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from pylib.cairntest import Node, binary, run_cli, stop_grid, wait_for

K, N, HAPPY = 2, 4, 3
# The restore test's tree: files in all (CAIRN_BACKUP_FILES; the 10,000-file
# tree is test_backup_large.py's).
RESTORE_FILES = int(os.environ.get("CAIRN_BACKUP_FILES", "600"))
MD_KEYS = ["ctime", "mtime", "st_mode", "st_ino", "st_dev", "st_uid", "st_gid"]
ARCHIVE_RE = re.compile(r"^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\dZ$")
SUMMARY_RE = re.compile(r"^ (\d+) files uploaded \((\d+) reused\), (\d+) files skipped, "
                        r"(\d+) directories created \((\d+) reused\), (\d+) directories skipped$")


def vector_runs():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "vectors", "dirs", "backup-runs.json")
    with open(path) as f:
        return json.load(f)


def make_tree(root, variant=b""):
    """The five-file tree of backup-runs.json's run 1 (with a `variant`,
    other contents: the backup database is shared by every target, so an
    identical tree would reuse the first one's directories)."""
    os.makedirs(os.path.join(root, "docs", "deep"))
    files = {
        "small.txt": b"small\n",
        "big.txt": b"".join(b"backup file line %03d\n" % i for i in range(40)),
        "na\u00efve r\u00e9sum\u00e9.txt": b"x" * 65,
        "docs/doc1.txt": b"d" * 66,
        "docs/deep/d.txt": b"deep\n",
    }
    files = {name: data + variant for name, data in files.items()}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return files


def dump_db(node_dir, table):
    """The backup database's table as mdb_dump (LMDB's own tool) prints it:
    key -> value."""
    p = subprocess.run(["mdb_dump", "-p", "-s", table, os.path.join(node_dir, "backupdb")],
                       capture_output=True, text=True, check=True)
    lines = p.stdout.split("\n")
    start = lines.index("HEADER=END") + 1
    rows = {}
    body = [l[1:] for l in lines[start:] if l.startswith(" ")]
    for k, v in zip(body[0::2], body[1::2]):
        rows[unprint(k)] = unprint(v)
    return rows


def load_db(node_dir, table, rows):
    """Writes `rows` ({key: value}, printable text) into the backup
    database's table with mdb_load (LMDB's own tool), replacing rows of the
    same keys."""
    text = "".join(f"{k}\n{v}\n" for k, v in rows.items())
    subprocess.run(["mdb_load", "-T", "-s", table, os.path.join(node_dir, "backupdb")],
                   input=text, text=True, capture_output=True, check=True)


def unprint(text):
    """mdb_dump -p's text: a byte it cannot print is a backslash and two hex
    digits, a backslash is doubled."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\":
            if text[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(text[i + 1:i + 3], 16))
                i += 3
        else:
            out += text[i].encode()
            i += 1
    return out.decode()


class BackupTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Uploads a killed client left unfinished are aborted by the servers
        # after store_upload_idle_ms (30 minutes by default); short here, so
        # that the rerun after a kill -9 can place those files again.
        cls.servers = [Node(f"s{i}", config_patch={
            "limits": {"store_upload_idle_ms": 2000, "store_sweep_interval_ms": 300}}) for i in range(4)]
        for s in cls.servers:
            s.start()
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        cls.client = Node("c0", config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY}})
        cls.client.start()
        for i, nurl in enumerate(cls.nurls):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-backup-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    # --- helpers -------------------------------------------------------------

    def cli(self, *args, json_out=True):
        pre = ("--json", "-q") if json_out else ()
        return run_cli(*pre, *args, node_dir=self.client.dir, timeout=600)

    def ok(self, *args):
        p = self.cli(*args)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def backup(self, src, to, *extra, code=0):
        p = self.cli("backup", src, to, *extra)
        self.assertEqual(p.returncode, code, f"{p.stdout} {p.stderr}")
        return json.loads(p.stdout)

    def ls(self, target):
        listing = self.ok("ls", target)
        self.assertEqual(listing[0], "dirnode", listing)
        return listing[1]["children"]

    def get(self, target):
        out = os.path.join(self.tmp, "got")
        self.ok("get", target, "-o", out)
        with open(out, "rb") as f:
            return f.read()

    def alias(self, name):
        p = run_cli("alias", "create", name, node_dir=self.client.dir, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    def counts(self, r):
        return (r["files_uploaded"], r["files_reused"], r["files_skipped"],
                r["directories_created"], r["directories_reused"], r["directories_skipped"])

    def check_layout(self, target, result):
        """TO holds Archives and Latest; Latest is the run's snapshot, an
        immutable directory also linked under the run's Archives name."""
        top = self.ls(target)
        self.assertEqual(sorted(top), ["Archives", "Latest"])
        self.assertEqual(top["Archives"][0], "dirnode")
        self.assertIn("rw_uri", top["Archives"][1])  # a mutable directory
        latest = top["Latest"][1]
        self.assertNotIn("rw_uri", latest)
        self.assertEqual(latest["ro_uri"], result["snapshot"])
        self.assertTrue(result["snapshot"].startswith(("URI:DIR2-CHK:", "URI:DIR2-LIT:")), result)
        self.assertEqual(sorted(latest["metadata"]["tahoe"]), ["linkcrtime", "linkmotime"])
        archives = self.ls(target + "/Archives")
        self.assertTrue(ARCHIVE_RE.match(result["archive"]), result["archive"])
        self.assertEqual(archives[result["archive"]][1]["ro_uri"], result["snapshot"])
        for name in archives:
            self.assertTrue(ARCHIVE_RE.match(name), name)
        return archives

    def check_snapshot(self, target, local_root, files):
        """Every file of `files` is in the snapshot with Tahoe's backup
        metadata (the local stat's values, no tahoe key) and its bytes."""
        dirs = {""}
        for rel in files:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs):
            children = self.ls(target + ("/" + d if d else ""))
            want = {rel.split("/")[-1] for rel in files if rel.rsplit("/", 1)[0] == d and "/" in rel} if d else \
                {rel for rel in files if "/" not in rel}
            want |= {x.split("/")[-1] for x in dirs if x and x.rsplit("/", 1)[0] == d and "/" in x} if d else \
                {x for x in dirs if x and "/" not in x}
            self.assertEqual(set(children), want, d)
            for name, (kind, props) in children.items():
                path = os.path.join(local_root, d, name)
                st = os.stat(path)
                md = props["metadata"]
                self.assertEqual(list(md), MD_KEYS, (d, name, md))
                self.assertEqual(md["mtime"], st.st_mtime)
                self.assertEqual(md["ctime"], st.st_ctime)
                self.assertEqual(md["st_mode"], st.st_mode)
                self.assertEqual(md["st_ino"], st.st_ino)
                self.assertEqual(md["st_dev"], st.st_dev)
                self.assertEqual(md["st_uid"], st.st_uid)
                self.assertEqual(md["st_gid"], st.st_gid)
                self.assertNotIn("rw_uri", props)
                if kind == "dirnode":
                    self.assertTrue(props["ro_uri"].startswith(("URI:DIR2-CHK:", "URI:DIR2-LIT:")), props)
                else:
                    self.assertTrue(props["ro_uri"].startswith(("URI:CHK:", "URI:LIT:")), props)
        for rel, data in files.items():
            self.assertEqual(self.get(target + "/" + rel), data, rel)

    # --- the three runs of backup-runs.json -----------------------------------

    def test_runs(self):
        vectors = vector_runs()
        src = os.path.join(self.tmp, "bsrc")
        files = make_tree(src)
        self.alias("bk")
        # Run 1, in text form with -v: Tahoe's summary lines and per-item lines.
        p = self.cli("backup", "-v", src, "bk:mybackup", json_out=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.split("\n")
        want = vectors["outputs"]["run1"]["stdout"].split("\n")
        want_summary = [l for l in want if l.startswith(" ") and "->" not in l and "directory for" not in l]
        got_summary = [l for l in out if l.startswith(" ") and "->" not in l and "directory for" not in l]
        self.assertEqual(got_summary[:2], want_summary[:2])
        self.assertTrue(got_summary[2].startswith(" backup done, elapsed time: "), got_summary)
        # The per-item lines: the same lines (the CHK caps differ: another
        # convergence secret and encoding), LIT caps exactly as Tahoe's.
        mask = lambda l: re.sub(r"URI:CHK:\S+", "URI:CHK:*", l.replace("SRCROOT/bsrc", src))
        item = lambda l: l.startswith(("uploading ", "skipping ", " creating ", " re-using ")) or "->" in l
        self.assertEqual(sorted(mask(l) for l in out if item(l)), sorted(mask(l) for l in want if item(l)))
        self.assertIn(f" {src}/small.txt -> URI:LIT:onwwc3dmbi", out)
        self.assertIn(f" {src}/docs/deep/d.txt -> URI:LIT:mrswk4ak", out)
        self.assertIn("Backing up 8/8...", p.stderr)

        first = self.ls("bk:mybackup/Latest")
        archives1 = self.ls("bk:mybackup/Archives")
        self.assertEqual(len(archives1), 1)
        self.assertEqual(list(archives1.values())[0][1]["ro_uri"], self.ls("bk:mybackup")["Latest"][1]["ro_uri"])
        self.check_snapshot("bk:mybackup/Latest", src, files)
        docs1 = self.ls("bk:mybackup/Latest/docs")

        # Run 2: one file changed (size 66 -> 72): one upload, docs/deep reused.
        with open(os.path.join(src, "docs", "doc1.txt"), "wb") as f:
            f.write(b"e" * 72)
        files["docs/doc1.txt"] = b"e" * 72
        r2 = self.backup(src, "bk:mybackup")
        self.assertEqual(self.counts(r2), (1, 4, 0, 2, 1, 0))
        self.check_layout("bk:mybackup", r2)
        latest2 = self.ls("bk:mybackup/Latest")
        docs2 = self.ls("bk:mybackup/Latest/docs")
        self.assertEqual(docs2["deep"][1]["ro_uri"], docs1["deep"][1]["ro_uri"])
        self.assertNotEqual(docs2["doc1.txt"][1]["ro_uri"], docs1["doc1.txt"][1]["ro_uri"])
        for name in ("small.txt", "big.txt", "na\u00efve r\u00e9sum\u00e9.txt"):
            self.assertEqual(latest2[name][1]["ro_uri"], first[name][1]["ro_uri"], name)
        self.assertNotEqual(latest2["docs"][1]["ro_uri"], first["docs"][1]["ro_uri"])
        self.check_snapshot("bk:mybackup/Latest", src, files)

        # Run 3: nothing changed: no upload, every directory reused, the
        # same snapshot linked again.
        r3 = self.backup(src, "bk:mybackup")
        self.assertEqual(self.counts(r3), (0, 5, 0, 0, 3, 0))
        self.assertEqual(r3["snapshot"], r2["snapshot"])
        archives = self.check_layout("bk:mybackup", r3)
        self.assertIn(r2["archive"], archives)
        # The database: one row per file (its current size, integer times
        # and cap) and one per snapshot directory made.
        rows = dump_db(self.client.dir, "files")
        for rel, data in files.items():
            path = os.path.join(src, rel)
            st = os.stat(path)
            size, mtime, ctime, cap = rows[path].split(" ")
            self.assertEqual((int(size), int(mtime), int(ctime)), (len(data), int(st.st_mtime), int(st.st_ctime)))
            self.assertEqual(cap, latest2[rel][1]["ro_uri"] if "/" not in rel else cap)
        made = {list(archives1.values())[0][1]["ro_uri"], first["docs"][1]["ro_uri"], docs1["deep"][1]["ro_uri"],
                r2["snapshot"], latest2["docs"][1]["ro_uri"]}
        self.assertEqual(len(made), 5)
        self.assertTrue(made <= set(dump_db(self.client.dir, "dirs").values()))
        # Every cap made has a check time: its upload's.
        checked = dump_db(self.client.dir, "checked")
        for cap in made | {v.split(" ")[3] for p, v in rows.items() if p.startswith(src + "/")}:
            self.assertLessEqual(abs(int(checked[cap]) - time.time()), 600, cap)

        # Run 4, --ignore-timestamps (backup-runs.json's extra run 4): every
        # file uploaded again, to the same caps, so every directory is reused.
        p = self.cli("backup", "--ignore-timestamps", src, "bk:mybackup", json_out=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        want4 = vectors["extra_runs"]["run4"]["stdout_tail"].split("\n")[0]
        self.assertIn(want4, p.stdout.split("\n"))
        r4 = self.backup(src, "bk:mybackup", "--ignore-timestamps")
        self.assertEqual(self.counts(r4), (5, 0, 0, 0, 3, 0))
        self.assertEqual(r4["snapshot"], r2["snapshot"])
        self.assertEqual((r4["files_checked"], r4["directories_checked"]), (0, 0))
        # Without it, the files are known again: nothing uploaded.
        r5 = self.backup(src, "bk:mybackup")
        self.assertEqual(self.counts(r5), (0, 5, 0, 0, 3, 0))

    # --- excludes and skips -----------------------------------------------------

    def test_help(self):
        p = run_cli("backup", "--help", node_dir=self.client.dir, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("usage: cairn", p.stdout)
        self.assertIn("--exclude-vcs", p.stdout)
        self.assertIn("--ignore-timestamps", p.stdout)
        self.assertIn("cairn backup schedule --help", p.stdout)
        self.assertIn("checked first", p.stdout)
        self.assertNotIn("Not built yet", p.stdout)

    def test_excludes_and_skips(self):
        src = os.path.join(self.tmp, "xsrc")
        files = make_tree(src, b"x")
        os.makedirs(os.path.join(src, ".git"))
        with open(os.path.join(src, ".git", "config"), "wb") as f:
            f.write(b"[core]\n")
        for name in ("skip.tmp", "docs/also.tmp", "docs/deep/keep.bak"):
            with open(os.path.join(src, name), "wb") as f:
                f.write(b"excluded")
        os.symlink("big.txt", os.path.join(src, "link-to-big"))
        os.mkfifo(os.path.join(src, "docs", "fifo"))
        patterns = os.path.join(self.tmp, "patterns")
        with open(patterns, "w") as f:
            f.write("\n  *.bak  \n\n")
        self.alias("ex")
        # Text form: the warnings on stderr, exit code 2, the snapshot made.
        p = self.cli("backup", src, "ex:b", "--exclude", "*.tmp", "--exclude-vcs", "--exclude-from", patterns,
                     json_out=False)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn(f"WARNING: cannot backup symlink '{src}/link-to-big'", p.stderr)
        self.assertIn(f"WARNING: cannot backup special file '{src}/docs/fifo'", p.stderr)
        self.assertIn(" 5 files uploaded (0 reused), 2 files skipped, 3 directories created (0 reused), "
                      "0 directories skipped", p.stdout)
        self.check_snapshot("ex:b/Latest", src, files)
        # Without the excludes the excluded names are backed up; the
        # skips stay skips.
        r = self.backup(src, "ex:b", code=2)
        self.assertEqual(self.counts(r), (4, 5, 2, 4, 0, 0))
        root = self.ls("ex:b/Latest")
        self.assertIn(".git", root)
        self.assertIn("skip.tmp", root)
        self.assertNotIn("link-to-big", root)
        self.assertIn("keep.bak", self.ls("ex:b/Latest/docs/deep"))
        self.assertNotIn("fifo", self.ls("ex:b/Latest/docs"))
        # A FROM that is not a directory, an unknown alias: errors, nothing linked.
        p = self.cli("backup", os.path.join(src, "big.txt"), "ex:c")
        self.assertNotEqual(p.returncode, 0)
        p = self.cli("backup", src, "nosuchalias:c")
        self.assertEqual(p.returncode, 3, p.stdout)

    # --- interrupted backups ------------------------------------------------------

    def many_files(self, name, dirs=4, per_dir=100):
        src = os.path.join(self.tmp, name)
        files = {}
        for d in range(dirs):
            os.makedirs(os.path.join(src, f"d{d}"))
            for i in range(per_dir):
                rel = f"d{d}/f{i:03d}"
                data = os.urandom(3000)
                with open(os.path.join(src, rel), "wb") as f:
                    f.write(data)
                files[rel] = data
        return src, files

    def backup_task(self):
        """The running "backup" task's record, if any."""
        c = self.client.control()
        try:
            tasks = c.call("tasks.list")["result"]["tasks"]
        finally:
            c.close()
        for t in tasks:
            if t["kind"] == "backup" and t["state"] == "running":
                return t
        return None

    def wait_progress(self, at_least):
        def far_enough():
            t = self.backup_task()
            return t is not None and t.get("progress", {}).get("done", 0) >= at_least
        wait_for(far_enough, timeout=300, what=f"a backup {at_least} items in")

    def check_db_rows(self, src, files, sample=40):
        """Every file row names a finished upload: its cap reads back as the
        file's bytes (a sample, spread evenly) and its size is the file's."""
        rows = {p: v for p, v in dump_db(self.client.dir, "files").items() if p.startswith(src + "/")}
        items = sorted(rows.items())
        step = max(1, len(items) // sample)
        for path, value in items[::step]:
            size, _, _, cap = value.split(" ")
            rel = path[len(src) + 1:]
            self.assertEqual(int(size), len(files[rel]), path)
            self.assertEqual(self.get(cap), files[rel], path)
        return rows

    def test_cancel_keeps_finished_uploads(self):
        src, files = self.many_files("csrc", dirs=2, per_dir=60)
        self.alias("cn")
        proc = subprocess.Popen([binary("cairn"), "-d", self.client.dir, "--json", "-q", "backup", src, "cn:b"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_progress(20)
        task = self.backup_task()
        self.assertIsNotNone(task)
        self.ok("tasks", "cancel", str(task["id"]))
        out, err = proc.communicate(timeout=300)
        self.assertNotEqual(proc.returncode, 0, out)
        self.assertEqual(json.loads(out)["error"]["code"], "cancelled", out)
        rows = self.check_db_rows(src, files)
        self.assertGreater(len(rows), 0)
        self.assertLess(len(rows), len(files))
        # Nothing was linked; the next run reuses what the cancelled one uploaded.
        self.assertEqual(self.ls("cn:"), {})
        r = self.backup(src, "cn:b")
        self.assertEqual(r["files_uploaded"] + r["files_reused"], len(files))
        self.assertGreaterEqual(r["files_reused"], len(rows))
        self.assertEqual(self.get("cn:b/Latest/d1/f059"), files["d1/f059"])

    def test_two_backups_of_one_target_never_overlap(self):
        # Long enough that the first is still running when the second is
        # submitted (80 files were done in well under a second once small
        # uploads took two requests per server).
        src, files = self.many_files("osrc", dirs=1, per_dir=400)
        self.alias("ov")
        cmd = [binary("cairn"), "-d", self.client.dir, "--json", "-q", "backup", src, "ov:b"]
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_progress(5)
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def second_waits():
            c = self.client.control()
            try:
                tasks = c.call("tasks.list")["result"]["tasks"]
            finally:
                c.close()
            queued = [t for t in tasks if t["kind"] == "backup" and t["state"] == "queued"]
            return any(w["key"] == "backup/ov:b" for t in queued for w in t.get("waiting_on", []))
        wait_for(second_waits, timeout=60, what="the second backup waiting on backup/ov:b")
        out1, _ = first.communicate(timeout=600)
        out2, _ = second.communicate(timeout=600)
        self.assertEqual(first.returncode, 0, out1)
        self.assertEqual(second.returncode, 0, out2)
        r1, r2 = json.loads(out1), json.loads(out2)
        # The second ran after the first: everything it needed was recorded.
        self.assertEqual(self.counts(r2), (0, len(files), 0, 0, 2, 0))
        self.assertEqual(r2["snapshot"], r1["snapshot"])

    def test_kill9_midway_then_rerun(self):
        src, files = self.many_files("ksrc")
        self.alias("kl")
        proc = subprocess.Popen([binary("cairn"), "-d", self.client.dir, "--json", "-q", "backup", src, "kl:b"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.wait_progress(150)
        finally:
            self.client.stop(sig=signal.SIGKILL)
        proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.client.start()
        # The database holds only finished uploads.
        rows = self.check_db_rows(src, files)
        self.assertLess(len(rows), len(files))
        # The interrupted task is recorded as such.
        c = self.client.control()
        tasks = c.call("tasks.list")["result"]["tasks"]
        c.close()
        self.assertTrue(any(t["kind"] == "backup" and t["state"] == "failed" for t in tasks), tasks)
        # A second run finishes the snapshot, reusing every recorded file.
        # The files whose uploads the kill cut short can be placed again
        # once the servers abort those uploads (store_upload_idle_ms):
        # until then the run fails not_enough_servers; bounded tries.
        for attempt in range(30):
            p = self.cli("backup", src, "kl:b")
            if p.returncode == 0 or json.loads(p.stdout)["error"]["code"] != "not_enough_servers":
                break
            time.sleep(1)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["files_uploaded"] + r["files_reused"], len(files))
        self.assertGreaterEqual(r["files_reused"], len(rows))
        self.assertEqual(r["directories_created"] + r["directories_reused"], 5)
        self.check_layout("kl:b", r)
        for d in range(4):
            self.assertEqual(len(self.ls(f"kl:b/Latest/d{d}")), 100)
        for rel in ("d0/f000", "d1/f050", "d3/f099"):
            self.assertEqual(self.get("kl:b/Latest/" + rel), files[rel])
        # Consistent: a third run uploads nothing and makes the same snapshot.
        self.check_db_rows(src, files)
        r3 = self.backup(src, "kl:b")
        self.assertEqual(self.counts(r3), (0, len(files), 0, 0, 5, 0))
        self.assertEqual(r3["snapshot"], r["snapshot"])

    # --- restore ---------------------------------------------------------------

    def test_backup_then_restore_with_times_and_modes(self):
        src = os.path.join(self.tmp, "rsrc")
        files = {}
        dirs = ["", "a", "a/b", "a/b/c", "d", "empty"]
        for d in dirs:
            os.makedirs(os.path.join(src, d), exist_ok=True)
        modes = [0o644, 0o600, 0o755, 0o444, 0o640]
        for i in range(RESTORE_FILES):
            d = dirs[i % 5]  # "empty" stays empty
            rel = os.path.join(d, f"f{i:05d}.bin") if d else f"f{i:05d}.bin"
            data = os.urandom(i % 200) + b"%d" % i if i % 97 else os.urandom(100000 + i)
            path = os.path.join(src, rel)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, modes[i % len(modes)])
            os.utime(path, ns=(1_600_000_000_123_456_789 + i * 1_000_000_007,) * 2)
            files[rel] = data
        os.chmod(os.path.join(src, "a", "b"), 0o750)
        os.utime(os.path.join(src, "a", "b"), ns=(1_500_000_000_987_654_321,) * 2)
        os.utime(os.path.join(src, "empty"), ns=(1_400_000_000_000_000_000,) * 2)
        self.alias("rs")
        # Into the alias's own directory: TO exists, Archives is made in it.
        r = self.backup(src, "rs:")
        top = self.ls("rs:")
        self.assertEqual(sorted(top), ["Archives", "Latest"])
        self.assertEqual(top["Latest"][1]["ro_uri"], r["snapshot"])
        self.assertEqual(self.ls("rs:Archives")[r["archive"]][1]["ro_uri"], r["snapshot"])
        self.assertEqual(r["files_uploaded"], len(files))
        self.assertEqual(r["directories_created"], len(dirs))

        parent = os.path.join(self.tmp, "restored")
        os.mkdir(parent)
        out = os.path.join(parent, "Latest")  # cp into a directory: under SRC's name
        self.ok("cp", "-r", "rs:Latest", parent)
        got = {}
        for root, subdirs, names in os.walk(out):
            for name in names:
                got[os.path.relpath(os.path.join(root, name), out)] = None
        self.assertEqual(set(got), set(files))
        for rel, data in files.items():
            a, b = os.path.join(src, rel), os.path.join(out, rel)
            with open(b, "rb") as f:
                self.assertEqual(f.read(), data, rel)
            self.check_same_times_and_mode(a, b)
        for d in dirs[1:]:
            self.check_same_times_and_mode(os.path.join(src, d), os.path.join(out, d))

        # A second restore into the same place refuses to overwrite files;
        # --overwrite replaces them.
        victim = os.path.join(out, "a", "f00001.bin")
        os.chmod(victim, 0o644)
        with open(victim, "wb") as f:
            f.write(b"changed")
        p = self.cli("cp", "-r", "rs:Latest", parent)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["error"]["code"], "conflict")
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"changed")
        p = self.cli("cp", "rs:Latest/a/f00001.bin", victim)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.ok("cp", "--overwrite", "rs:Latest/a/f00001.bin", victim)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), files["a/f00001.bin"])
        self.check_same_times_and_mode(os.path.join(src, "a", "f00001.bin"), victim)

    def check_same_times_and_mode(self, a, b):
        sa, sb = os.stat(a), os.stat(b)
        self.assertEqual(oct(sa.st_mode), oct(sb.st_mode), b)
        # The metadata holds Python's float seconds: whole seconds exact,
        # the fraction to within the float's precision.
        self.assertEqual(int(sa.st_mtime), int(sb.st_mtime), b)
        self.assertLess(abs(sa.st_mtime_ns - sb.st_mtime_ns), 1000, b)



class BackupCheckTest(unittest.TestCase):
    """Tahoe's health checks of reused caps (the module's docstring)."""

    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"h{i}") for i in range(2)]
        # The second node's empty store, to put back as a lost disk.
        cls.pristine = os.path.join(cls.servers[1].tmp, "pristine-store")
        shutil.copytree(os.path.join(cls.servers[1].dir, "store"), cls.pristine)
        for s in cls.servers:
            s.start()
        cls.client = Node("hc", config_patch={"client": {"shares_needed": 1, "shares_total": 2, "shares_happy": 2}})
        cls.client.start()
        for i, s in enumerate(cls.servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"h{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-backup-check-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def cli(self, *args):
        p = run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=600)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def healthy(self, cap):
        """`cairn check`'s verdict (it exits non-zero when not healthy)."""
        p = run_cli("--json", "-q", "check", cap, node_dir=self.client.dir, timeout=600)
        healthy = json.loads(p.stdout)["results"]["healthy"]
        self.assertEqual(p.returncode == 0, healthy, p.stdout)
        return healthy

    def counts(self, r):
        return (r["files_uploaded"], r["files_reused"], r["directories_created"], r["directories_reused"],
                r["files_checked"], r["directories_checked"])

    def test_old_caps_are_checked_and_unhealthy_ones_uploaded_again(self):
        src = os.path.join(self.tmp, "src")
        files = {"a/one.txt": os.urandom(2000), "a/two.txt": os.urandom(3000), "b/three.txt": os.urandom(1500),
                 "lit.txt": b"a LIT file"}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "wb") as f:
                f.write(data)
        run_cli("alias", "create", "hc", node_dir=self.client.dir, check=True, timeout=120)
        r1 = self.cli("backup", src, "hc:b")
        self.assertEqual(self.counts(r1), (4, 0, 3, 0, 0, 0))
        latest = lambda path: self.cli("ls", "hc:b/Latest" + path)[1]["children"]
        caps = {rel: latest("/" + os.path.dirname(rel) if "/" in rel else "")[os.path.basename(rel)][1]["ro_uri"]
                for rel in files}
        dir_a = latest("")["a"][1]["ro_uri"]
        for cap in (caps["a/one.txt"], caps["a/two.txt"], dir_a):
            self.assertTrue(self.healthy(cap), cap)
        # Checked at upload: nothing is due, nothing is checked.
        r2 = self.cli("backup", src, "hc:b")
        self.assertEqual(self.counts(r2), (0, 4, 0, 3, 0, 0))

        # The second node loses its disk: every object keeps one share of two.
        self.servers[1].stop()
        store = os.path.join(self.servers[1].dir, "store")
        shutil.rmtree(store)
        shutil.copytree(self.pristine, store)
        self.servers[1].start()
        for cap in (caps["a/one.txt"], caps["a/two.txt"], dir_a):
            self.assertFalse(self.healthy(cap), cap)
        # one.txt and directory a were last checked long ago (due for
        # sure); two.txt ten days ago (never due before 30).
        load_db(self.client.dir, "checked", {caps["a/one.txt"]: "0", dir_a: "0",
                                             caps["a/two.txt"]: str(int(time.time()) - 10 * 86400)})
        before = int(time.time())
        r3 = self.cli("backup", "-v", src, "hc:b")
        self.assertEqual(self.counts(r3), (1, 3, 1, 2, 1, 1))
        self.assertIn("checking " + caps["a/one.txt"], r3["lines"])
        self.assertIn("checking " + dir_a, r3["lines"])
        self.assertIn(f" {src}/a/one.txt -> {caps['a/one.txt']}", r3["lines"])  # the same cap again
        self.assertIn(f" creating directory for '{src}/a'", r3["lines"])
        self.assertEqual(r3["snapshot"], r1["snapshot"])
        self.assertTrue(self.healthy(caps["a/one.txt"]))
        self.assertTrue(self.healthy(dir_a))
        self.assertFalse(self.healthy(caps["a/two.txt"]))  # not due: not checked, not uploaded
        checked = dump_db(self.client.dir, "checked")
        self.assertGreaterEqual(int(checked[caps["a/one.txt"]]), before)
        self.assertGreaterEqual(int(checked[dir_a]), before)
        # The text summary counts them with -v, as Tahoe's does.
        load_db(self.client.dir, "checked", {caps["b/three.txt"]: "0"})
        p = run_cli("-q", "backup", "-v", src, "hc:b", node_dir=self.client.dir, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" 1 files checked, 0 directories checked", p.stdout.split("\n"))
        self.assertIn(" 1 files uploaded (3 reused), 0 files skipped, 0 directories created (3 reused), "
                      "0 directories skipped", p.stdout.split("\n"))

        # A due check that finds the file healthy reuses it and renews its
        # check time.
        load_db(self.client.dir, "checked", {caps["a/one.txt"]: "0"})
        before = int(time.time())
        r4 = self.cli("backup", src, "hc:b")
        self.assertEqual(self.counts(r4), (0, 4, 0, 3, 1, 0))
        self.assertGreaterEqual(int(dump_db(self.client.dir, "checked")[caps["a/one.txt"]]), before)
        # The restored snapshot reads back.
        out = os.path.join(self.tmp, "out")
        os.mkdir(out)
        self.cli("cp", "-r", "hc:b/Latest", out)
        for rel, data in files.items():
            with open(os.path.join(out, "Latest", rel), "rb") as f:
                self.assertEqual(f.read(), data, rel)


if __name__ == "__main__":
    unittest.main()
