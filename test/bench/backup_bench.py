#!/usr/bin/python3
"""cairn backup through real cairnd nodes on 127.0.0.1: 10 storage nodes,
3-of-10 happiness 7 (issue 20's benchmark). A tree of
CAIRN_BENCH_BACKUP_FILES files of 4 KiB (default 10,000, all in one
directory) plus CAIRN_BENCH_BACKUP_BIG files of 8 MiB (default 10, in a
subdirectory):

  - the first backup: files/s, MiB/s;
  - a re-run with nothing changed: seconds (goal: under 2 s);
  - a re-run with 1% of the small files changed: seconds, uploads;
  - `cairn ls` of the snapshot's 10,000-child directory: seconds;
  - `cairn cp -r` of the snapshot back to disk: files/s, and whether every
    file came back byte for byte with its mode and modification time.

With CAIRN_BENCH_BACKUP_TREE=N (e.g. 100000) it backs up a tree of N
files of CAIRN_BENCH_BACKUP_TREE_BYTES bytes (default 300) instead, 1,000
to a directory in directories of ten (issue 20's "trees of 100,000
files"): the first backup and an unchanged re-run.

Each line carries the client node's peak RSS during that step
(client_peak_rss: VmHWM of its cairnd, which runs the backup, reset before
the step; client_peak_anon: the largest RssAnon sampled every 10 ms, which
leaves out the pages of LMDB's file maps) and so far (client_peak_rss_all;
goal: 48 MiB throughout), and the cairn command's own. JSON lines on stdout;
asserts nothing about speed. For scale, real Tahoe-LAFS
at 3-of-10 backed up 1,000 files of 4 KiB plus 5 of 8 MiB in 185 s with a
118 MB client, re-ran unchanged in 2.7 s and with 10 files changed in 5.8 s.

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/backup_bench.py
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("CAIRN_BUILD", "build/host/release")
os.environ.setdefault("CAIRN_BUILD", BUILD)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from pylib.cairntest import Node, run_cli  # noqa: E402

MIB = 1 << 20


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (proc(5), clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class AnonSampler:
    """The largest RssAnon of a process between start() and stop()."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self.peak = rss_anon(self.pid)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon(self.pid))
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon(self.pid))
        return self.peak


def cli_peak_rss():
    """The largest cairn command run so far (ru_maxrss of waited children, KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


SAMPLER = None


def timed(client, *args):
    reset_peak_rss(client.proc.pid)
    SAMPLER.start()
    t0 = time.monotonic()
    p = run_cli("--json", "-q", "--timeout", "7200", *args, node_dir=client.dir, timeout=7200)
    secs = time.monotonic() - t0
    SAMPLER.stop()
    if p.returncode != 0:
        raise SystemExit(f"{args} exited {p.returncode}: {p.stdout} {p.stderr}")
    return json.loads(p.stdout) if p.stdout.strip() else None, secs


def tree(client, tmp, count, size):
    """The CAIRN_BENCH_BACKUP_TREE run: `count` files of `size` bytes, 1,000
    to a directory, ten directories to a parent."""
    global SAMPLER
    src = os.path.join(tmp, "tree")
    for i in range(count):
        d = os.path.join(src, f"p{i // 10000:03d}", f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(d)
        with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
            f.write(os.urandom(size))
    dirs = (count + 999) // 1000 + (count + 9999) // 10000 + 1
    common = {"bench": "backup_tree", "servers": 10, "k": 3, "n": 10, "files": count, "file_bytes": size,
              "directories": dirs}
    for run in ("first", "unchanged"):
        r, secs = timed(client, "backup", src, "bench:tree")
        line = dict(common, run=run, seconds=round(secs, 3), files_s=round(count / secs, 1))
        line.update({k: r[k] for k in ("files_uploaded", "files_reused", "directories_created",
                                       "directories_reused")})
        line["client_peak_rss"] = peak_rss(client.proc.pid)
        line["client_peak_anon"] = SAMPLER.peak
        line["cli_peak_rss"] = cli_peak_rss()
        print(json.dumps(line), flush=True)


def main():
    global SAMPLER
    files = int(os.environ.get("CAIRN_BENCH_BACKUP_FILES", "10000"))
    big = int(os.environ.get("CAIRN_BENCH_BACKUP_BIG", "10"))
    tree_files = int(os.environ.get("CAIRN_BENCH_BACKUP_TREE", "0"))
    tree_bytes = int(os.environ.get("CAIRN_BENCH_BACKUP_TREE_BYTES", "300"))
    servers = [Node(f"s{i}") for i in range(10)]
    client = Node("client", config_patch={"client": {"shares_needed": 3, "shares_total": 10, "shares_happy": 7}})
    tmp = tempfile.mkdtemp(prefix="cairn-backup-bench-", dir="/tmp")
    try:
        for s in servers:
            s.start()
        client.start()
        SAMPLER = AnonSampler(client.proc.pid)
        all_peak = [0]
        for i, s in enumerate(servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=client.dir, check=True)
        run_cli("alias", "create", "bench", node_dir=client.dir, check=True, timeout=600)
        if tree_files:
            return tree(client, tmp, tree_files, tree_bytes)
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "big"))
        for i in range(files):
            path = os.path.join(src, f"f{i:05d}")
            with open(path, "wb") as f:
                f.write(os.urandom(4096))
            os.chmod(path, 0o600 if i % 3 else 0o644)
        for i in range(big):
            with open(os.path.join(src, "big", f"b{i}"), "wb") as f:
                for _ in range(8):
                    f.write(os.urandom(MIB))
        total_bytes = files * 4096 + big * 8 * MIB
        common = {"bench": "backup", "servers": 10, "k": 3, "n": 10, "small_files": files, "big_files": big}

        def report(run, result, secs, **extra):
            line = dict(common, run=run, seconds=round(secs, 3), **extra)
            if result is not None:
                line.update({k: result[k] for k in ("files_uploaded", "files_reused", "directories_created",
                                                    "directories_reused")})
            line["client_peak_rss"] = peak_rss(client.proc.pid)
            all_peak[0] = max(all_peak[0], line["client_peak_rss"])
            line["client_peak_rss_all"] = all_peak[0]
            line["client_peak_anon"] = SAMPLER.peak
            line["cli_peak_rss"] = cli_peak_rss()
            print(json.dumps(line), flush=True)

        r, secs = timed(client, "backup", src, "bench:b")
        report("first", r, secs, files_s=round((files + big) / secs, 1),
               mib_s=round(total_bytes / MIB / secs, 2))
        r, secs = timed(client, "backup", src, "bench:b")
        report("unchanged", r, secs)
        changed = max(1, files // 100)
        for i in range(0, files, files // changed):
            with open(os.path.join(src, f"f{i:05d}"), "ab") as f:
                f.write(b"changed")
        r, secs = timed(client, "backup", src, "bench:b")
        report("one_percent_changed", r, secs, changed=changed)
        listing, secs = timed(client, "ls", "bench:b/Latest")
        report("ls", None, secs, children=len(listing[1]["children"]))
        out = os.path.join(tmp, "restore")
        os.mkdir(out)
        _, secs = timed(client, "cp", "-r", "bench:b/Latest", out)
        identical = True
        for root, _, names in os.walk(src):
            for name in names:
                a = os.path.join(root, name)
                b = os.path.join(out, "Latest", os.path.relpath(a, src))
                sa, sb = os.stat(a), os.stat(b)
                with open(a, "rb") as fa, open(b, "rb") as fb:
                    same = fa.read() == fb.read()
                if not same or sa.st_mode != sb.st_mode or int(sa.st_mtime) != int(sb.st_mtime) or \
                        abs(sa.st_mtime_ns - sb.st_mtime_ns) >= 1000:
                    identical = False
        report("restore", None, secs, files_s=round((files + big) / secs, 1), identical=identical)
    finally:
        for n in servers + [client]:
            n.stop()
            n.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
