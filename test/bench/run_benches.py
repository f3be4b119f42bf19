#!/usr/bin/python3
"""Runs every benchmark and prints JSON lines (one object per measurement).

  - every program build/<board>/release/bench/*_bench (built by `make bench`);
  - every script test/bench/*_bench.py (run with Debian's python3); the
    programs' JSON lines are in the file named by $CAIRN_BENCH_RESULTS, so a
    script can report ratios to them (fec_zfec_bench.py does);
  - OpenSSL's AEAD rate beside aead_bench's kernels (python3-cryptography,
    and `openssl speed` where installed), with each kernel's ratio to it;
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


def openssl_aead(results_path):
    """OpenSSL's seal and open MB/s for aead_bench's cases, in CPU time as
    aead_bench counts: `openssl speed -aead` (13 bytes of AAD, as TLS) where
    installed, and python3-cryptography (whose per-call overhead shows at
    small records); then each kernel's ratio to OpenSSL, `openssl speed`'s
    rate where there is one."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    algorithms = {"aes-128-gcm": (AESGCM, 16), "aes-256-gcm": (AESGCM, 32), "chacha20-poly1305": (ChaCha20Poly1305, 32)}
    ref = {}

    def report(name, kernel, record, op, rate):
        print(json.dumps({"bench": "aead", "algorithm": name, "kernel": kernel, "record": record, "op": op,
                          "mb_per_sec": round(rate, 1)}))
    for name, (cls, key_size) in algorithms.items():
        aead, nonce, aad = cls(b"k" * key_size), b"n" * 12, b"a" * 13
        for record in (16384, 1024):
            data = b"p" * record
            sealed = aead.encrypt(nonce, data, aad)
            for op, call, flags in (("seal", lambda: aead.encrypt(nonce, data, aad), []),
                                    ("open", lambda: aead.decrypt(nonce, sealed, aad), ["-decrypt"])):
                n, start = 0, time.thread_time()
                while time.thread_time() - start < 0.5:
                    for _ in range(64):
                        call()
                    n += 64
                ref[name, record, op] = record * n / (time.thread_time() - start) / 1e6
                report(name, "openssl (python3-cryptography)", record, op, ref[name, record, op])
                if shutil.which("openssl"):
                    out = subprocess.run(["openssl", "speed", "-aead", *flags, "-evp", name, "-bytes", str(record),
                                          "-seconds", "1"], capture_output=True, text=True).stdout.split()
                    if out and out[-1].endswith("k"):
                        ref[name, record, op] = float(out[-1][:-1]) / 1000
                        report(name, "openssl speed", record, op, ref[name, record, op])
    with open(results_path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("bench") == "aead" and (r["algorithm"], r["record"], r["op"]) in ref:
                ratio = r["mb_per_sec"] / ref[r["algorithm"], r["record"], r["op"]]
                print(json.dumps({"bench": "aead_ratio", "algorithm": r["algorithm"], "kernel": r["kernel"],
                                  "record": r["record"], "op": r["op"], "ratio_to_openssl": round(ratio, 2)}))
    sys.stdout.flush()


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
    openssl_aead(results.name)
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
