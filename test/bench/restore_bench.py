#!/usr/bin/python3
"""Restore of a backed-up tree with `cairn cp -r ALIAS:path/Latest DEST`,
through real cairnd nodes on 127.0.0.1: test_backup_large.py's tree
(CAIRN_BENCH_RESTORE_FILES files, default 10,000: 500 empty, 2,500 LIT,
6,990 small CHK, 10 of 64 to 191 KiB, in 114 directories), backed up to
CAIRN_BENCH_RESTORE_SERVERS storage nodes (default 2) at
CAIRN_BENCH_RESTORE_K-of-the-servers (default 1), then restored.

Lines (JSON, stdout):
  - "backup": seconds, files/s, the client cairnd's peak RSS;
  - "restore": seconds, files/s, the client cairnd's peak RSS during the
    restore alone (it is restarted before it, so VmHWM counts only the
    restore), the `cairn` command's peak RSS, and whether every file came
    back byte for byte with its mode and mtime (and every directory's).

Asserts nothing about speed. The storage nodes sync as a real node does
(no test-only limits).

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/restore_bench.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CAIRN_BUILD", "build/host/release")
os.environ.setdefault("CAIRN_BUILD", BUILD)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from pylib.cairntest import Node, binary, run_cli  # noqa: E402
from test_backup_large import make_tree  # noqa: E402


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def same(a, b):
    sa, sb = os.stat(a), os.stat(b)
    return sa.st_mode == sb.st_mode and abs(sa.st_mtime_ns - sb.st_mtime_ns) < 1000


def main():
    files_wanted = int(os.environ.get("CAIRN_BENCH_RESTORE_FILES", "10000"))
    n = int(os.environ.get("CAIRN_BENCH_RESTORE_SERVERS", "2"))
    k = int(os.environ.get("CAIRN_BENCH_RESTORE_K", "1"))
    servers = [Node(f"s{i}") for i in range(n)]
    client = Node("client", config_patch={"client": {"shares_needed": k, "shares_total": n, "shares_happy": n}})
    tmp = tempfile.mkdtemp(prefix="cairn-restore-bench-", dir="/tmp")
    try:
        for s in servers:
            s.start()
        client.start()
        for i, s in enumerate(servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=client.dir, check=True)
        run_cli("alias", "create", "bench", node_dir=client.dir, check=True, timeout=600)
        src = os.path.join(tmp, "src")
        files, dirs = make_tree(src, 20261207, files_wanted)
        grid = {"servers": n, "k": k, "n": n, "files": len(files), "directories": len(dirs) + 1, "build": BUILD}

        t0 = time.monotonic()
        p = run_cli("--json", "-q", "--timeout", "900", "backup", src, "bench:tree", node_dir=client.dir, timeout=7200)
        secs = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"backup exited {p.returncode}: {p.stdout} {p.stderr}")
        print(json.dumps({"bench": "restore", "step": "backup", **grid, "seconds": round(secs, 2),
                          "files_per_s": round(len(files) / secs, 1),
                          "client_peak_rss_bytes": peak_rss(client.proc.pid)}), flush=True)

        # A fresh client process: its VmHWM is the restore's alone.
        client.stop()
        client.start()
        dest = os.path.join(tmp, "restored")
        os.mkdir(dest)
        t0 = time.monotonic()
        proc = subprocess.Popen([binary("cairn"), "-d", client.dir, "--json", "-q", "--timeout", "900", "cp", "-r",
                                 "bench:tree/Latest", dest], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.stdout.read(), proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        secs = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"cp -r exited {proc.returncode}: {out} {err}")
        client_rss = peak_rss(client.proc.pid)
        out_root = os.path.join(dest, "Latest")
        ok = True
        for rel, data in files.items():
            path = os.path.join(out_root, rel)
            try:
                with open(path, "rb") as f:
                    ok = ok and f.read() == data and same(os.path.join(src, rel), path)
            except OSError:
                ok = False
        for d in dirs:
            ok = ok and os.path.isdir(os.path.join(out_root, d)) and same(os.path.join(src, d),
                                                                          os.path.join(out_root, d))
        print(json.dumps({"bench": "restore", "step": "restore", **grid, "seconds": round(secs, 2),
                          "files_per_s": round(len(files) / secs, 1), "client_peak_rss_bytes": client_rss,
                          "cli_peak_rss_bytes": usage.ru_maxrss * 1024, "byte_for_byte_with_modes_and_times": ok,
                          "cp_answer": json.loads(out)}), flush=True)
        if not ok:
            raise SystemExit("the restore did not give the tree back")
    finally:
        for node in servers + [client]:
            node.stop()
            node.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
