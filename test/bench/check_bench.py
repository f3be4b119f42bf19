#!/usr/bin/python3
"""cairn check through real cairnd nodes on 127.0.0.1: 10 storage nodes,
3-of-10 happiness 7. CAIRN_BENCH_CHECK_FILES small files (default 1000) are
put, then each is checked, and verified, through the control socket (up to
WINDOW requests in flight on one connection, as a deep-check walker would
keep several checks going): objects per second. Then one
CAIRN_BENCH_CHECK_BIG_MIB file (default 256): get MB/s and verify MB/s of
the same file (file bytes per second), and the client node's peak RSS
(VmHWM). Then deep-check: the same small files as the children of one
immutable directory (a DIR2-CHK body built here, uploaded with put, named
by an alias), walked by `deep-check` and `deep-check --verify` (one task,
objects in Tahoe's order, up to 8 at once): objects per second and the
client's peak RSS during each walk (VmHWM, reset before the walk through
/proc/PID/clear_refs) next to its RSS before it. Then a walk of
CAIRN_BENCH_CHECK_MANY (default 20000) CHK caps whose shares exist nowhere
(each unrecoverable), to show the walk's memory does not grow with each
object. JSON lines on stdout; asserts nothing about speed.

Goals (issue 21): check >= 330 objects/s (10x real Tahoe-LAFS, which
deep-checked 1,071 objects in 32 s at 3-of-10); verify >= 80% of the get
speed.

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/check_bench.py
"""
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CAIRN_BUILD", "build/host/release")
os.environ.setdefault("CAIRN_BUILD", BUILD)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from pylib.cairntest import ControlConn, Node, run_cli  # noqa: E402

MIB = 1 << 20
WINDOW = 8
TAHOE_CHECK_OBJECTS_S = 1071 / 32


def pipelined(conn, requests):
    """Sends (method, params, data) requests with at most WINDOW unanswered;
    returns the final answers in request order."""
    answers = {}
    sent = 0
    while len(answers) < len(requests):
        while sent < len(requests) and sent - len(answers) < WINDOW:
            method, params, data = requests[sent]
            req = {"v": 1, "id": sent, "method": method, "params": params}
            conn.send(req)
            if data is not None:
                conn.send_data(sent, 0, data, eof=True)
            sent += 1
        frame = conn.read_final()
        if frame is None:
            raise SystemExit("the control connection closed")
        answers[frame["id"]] = frame
    return [answers[i] for i in range(len(requests))]


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss(pid):
    """Sets VmHWM to the current RSS (Linux 4.0 and later)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def netstring(b):
    return b"%d:%s," % (len(b), b)


def chk_directory_body(caps):
    """A Tahoe immutable directory body (tahoe-dirnodes.md A.2) holding
    each cap as child fNNNNN, empty rw slots and empty metadata."""
    entries = []
    for i, cap in enumerate(caps):
        entries.append(netstring(netstring(b"f%05d" % i) + netstring(cap.encode()) + netstring(b"") +
                                 netstring(b"{}")))
    return b"".join(entries)


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def deep_check_bench(client, tmp, caps, alias, modes=(False, True), label="deep_check"):
    path = os.path.join(tmp, alias)
    with open(path, "wb") as f:
        f.write(chk_directory_body(caps))
    put = json.loads(run_cli("--json", "-q", "put", path, node_dir=client.dir, timeout=600, check=True).stdout)
    dircap = put["cap"].replace("URI:CHK:", "URI:DIR2-CHK:", 1)
    run_cli("alias", "add", alias, dircap, node_dir=client.dir, check=True)
    for verify in modes:
        rss_before = rss(client.proc.pid)
        reset_peak_rss(client.proc.pid)
        t0, c0 = time.monotonic(), cpu_s(client.proc.pid)
        args = ["--json", "-q", "--timeout", "3600", "deep-check", alias] + (["--verify"] if verify else [])
        p = run_cli(*args, node_dir=client.dir, timeout=7200)
        secs, client_cpu = time.monotonic() - t0, cpu_s(client.proc.pid) - c0
        r = json.loads(p.stdout or "{}")
        if "count-objects-checked" not in r:
            raise SystemExit(f"deep-check {alias} failed: {p.stdout} {p.stderr}")
        objects = r["count-objects-checked"]
        out = {"bench": label, "mode": "verify" if verify else "check", "servers": 10, "k": 3, "n": 10,
               "objects": objects, "healthy": r["count-objects-healthy"], "exit": p.returncode,
               "seconds": round(secs, 3), "objects_s": round(objects / secs, 1),
               "client_cpu_ms_per_object": round(client_cpu * 1000 / objects, 2),
               "client_rss_before": rss_before, "client_peak_rss": peak_rss(client.proc.pid)}
        if verify:
            out["bytes_verified"] = r.get("bytes-verified")
            out["verified_mib_s"] = round(r.get("bytes-verified", 0) / MIB / secs, 2)
        else:
            out["vs_tahoe"] = round(objects / secs / TAHOE_CHECK_OBJECTS_S, 1)
        print(json.dumps(out), flush=True)


def main():
    files = int(os.environ.get("CAIRN_BENCH_CHECK_FILES", "1000"))
    big_mib = int(os.environ.get("CAIRN_BENCH_CHECK_BIG_MIB", "256"))
    servers = [Node(f"s{i}") for i in range(10)]
    client = Node("client", config_patch={"client": {"shares_needed": 3, "shares_total": 10, "shares_happy": 7},
                                          "limits": {"control_inflight": 64}})
    tmp = tempfile.mkdtemp(prefix="cairn-check-bench-", dir="/tmp")
    try:
        for s in servers:
            s.start()
        client.start()
        for i, s in enumerate(servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=client.dir, check=True)
        conn = ControlConn(client.dir, timeout=600)
        # One put first: the client's connections to the ten servers are
        # made (and kept alive) before the pipelined requests share them.
        pipelined(conn, [("put", {"size": 5000}, os.urandom(5000))])
        datas = [os.urandom(1000 + i % 3000) for i in range(files)]
        puts = pipelined(conn, [("put", {"size": len(d)}, d) for d in datas])
        failed = [p for p in puts if "result" not in p]
        if failed:
            raise SystemExit(f"{len(failed)} puts failed, the first: {failed[0]}")
        caps = [p["result"]["cap"] for p in puts]
        # CAIRN_BENCH_CHECK_SINGLE=0 leaves out the checks sent one by one.
        single = (False, True) if os.environ.get("CAIRN_BENCH_CHECK_SINGLE", "1") != "0" else ()
        for verify in single:
            t0, c0 = time.monotonic(), cpu_s(client.proc.pid)
            answers = pipelined(conn, [("check", {"target": c, "verify": verify}, None) for c in caps])
            secs, client_cpu = time.monotonic() - t0, cpu_s(client.proc.pid) - c0
            healthy = sum(1 for a in answers if a.get("result", {}).get("results", {}).get("healthy"))
            out = {"bench": "check", "mode": "verify" if verify else "check", "servers": 10, "k": 3, "n": 10,
                   "objects": files, "healthy": healthy, "seconds": round(secs, 3),
                   "objects_s": round(files / secs, 1),
                   "client_cpu_ms_per_object": round(client_cpu * 1000 / files, 2)}
            if not verify:
                out["vs_tahoe"] = round(files / secs / TAHOE_CHECK_OBJECTS_S, 1)
            print(json.dumps(out), flush=True)
        deep_check_bench(client, tmp, caps, "benchdir")
        many = int(os.environ.get("CAIRN_BENCH_CHECK_MANY", "20000"))
        if many:
            rng = random.Random(21)
            missing = ["URI:CHK:%s:%s:3:10:%d" % (b32(rng.randbytes(16)), b32(rng.randbytes(32)), 1000 + i)
                       for i in range(many)]
            deep_check_bench(client, tmp, missing, "benchmany", modes=(False,), label="deep_check_missing")
        if big_mib:
            src = os.path.join(tmp, "big")
            with open(src, "wb") as f:
                for _ in range(big_mib):
                    f.write(os.urandom(MIB))
            put = json.loads(run_cli("--json", "-q", "--timeout", "600", "put", src, node_dir=client.dir,
                                     timeout=3600, check=True).stdout)
            size = big_mib * MIB
            t0 = time.monotonic()
            run_cli("-q", "--timeout", "600", "get", put["cap"], "-o", os.path.join(tmp, "out"), node_dir=client.dir,
                    timeout=3600, check=True)
            get_s = time.monotonic() - t0
            t0 = time.monotonic()
            v = run_cli("--json", "-q", "--timeout", "600", "check", put["cap"], "--verify", node_dir=client.dir,
                        timeout=3600)
            verify_s = time.monotonic() - t0
            print(json.dumps({"bench": "check_big", "bytes": size, "healthy": v.returncode == 0,
                              "get_mib_s": round(size / MIB / get_s, 1), "verify_mib_s": round(size / MIB / verify_s, 1),
                              "verify_vs_get": round(get_s / verify_s, 2),
                              "client_peak_rss": peak_rss(client.proc.pid)}), flush=True)
        conn.close()
    finally:
        for n in servers + [client]:
            n.stop()
            n.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
