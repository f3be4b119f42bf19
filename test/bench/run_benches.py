#!/usr/bin/python3
"""Runs every benchmark and prints JSON lines (one object per measurement).

  - every program build/<board>/release/bench/*_bench (built by `make bench`);
  - every script test/bench/*_bench.py (run with Debian's python3); the
    programs' JSON lines are in the file named by $CAIRN_BENCH_RESULTS, so a
    script can report ratios to them (fec_zfec_bench.py does);
  - cairnd's idle RSS: a fresh node, a few seconds after start, anonymous and
    file-backed memory reported separately (LMDB's pages are file-backed).

Benchmarks are not tests: they assert nothing about speed. Compare ratios
measured in one run; these machines are noisy.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_of(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


def idle_rss(build, settle_s):
    tmp = tempfile.mkdtemp(prefix="cairn-bench-", dir="/tmp")
    try:
        node = os.path.join(tmp, "node")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([os.path.join(build, "cairn"), "init", node, "--port", str(port)], check=True,
                       capture_output=True)
        proc = subprocess.Popen([os.path.join(build, "cairnd"), node], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(node, "control.sock")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("cairnd did not start")
            time.sleep(0.02)
        time.sleep(settle_s)  # idle RSS is by definition measured after a quiet period
        mem = rss_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        return {"bench": "cairnd_idle_rss", "settle_s": settle_s, "rss_bytes": mem.get("VmRSS"),
                "anon_bytes": mem.get("RssAnon"), "file_bytes": mem.get("RssFile"),
                "shmem_bytes": mem.get("RssShmem")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()
    failed = 0
    results = tempfile.NamedTemporaryFile("w+", prefix="cairn-bench-", suffix=".jsonl", dir="/tmp")
    for prog in sorted(glob.glob(os.path.join(args.build, "bench", "*_bench"))):
        proc = subprocess.run([prog], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        sys.stdout.flush()
        results.write(proc.stdout)
        failed += proc.returncode != 0
    results.flush()
    env = dict(os.environ, CAIRN_BUILD=os.path.abspath(args.build), CAIRN_ROOT=ROOT,
               CAIRN_BENCH_RESULTS=results.name)
    for script in sorted(glob.glob(os.path.join(ROOT, "test", "bench", "*_bench.py"))):
        proc = subprocess.run([sys.executable, script], cwd=ROOT, env=env)
        failed += proc.returncode != 0
    results.close()
    print(json.dumps(idle_rss(args.build, args.settle)), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
