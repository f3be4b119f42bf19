#!/usr/bin/python3
"""cairn put / get through real cairnd nodes on 127.0.0.1 (release build):
64 MiB to 4 storage nodes at 2-of-4 happiness 3 and to 10 nodes at 3-of-10
happiness 7; MB/s of each (wall clock of the `cairn` command, which waits
for the task), the CPU seconds the client node and the storage nodes spent
on each (steadier than the wall clock on a loaded machine) also as CPU
nanoseconds per file byte, and the client
node's peak RSS (VmHWM of a fresh client cairnd). Also the part of a put
before any server is asked: the same put to a client with no servers (it
fails as soon as it would place shares), i.e. spooling the input in plus
hashing it for the key. With CAIRN_BENCH_BIG_MIB=N (e.g. 1024) also the
client's peak RSS during an N MiB put at 2-of-4. JSON lines on stdout;
asserts nothing about speed.

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/put_get_bench.py
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CAIRN_BUILD", "build/host/release")
MIB = 1 << 20
# Real Tahoe-LAFS on the development machine (issue 9): MiB/s by (k, n).
TAHOE = {(2, 4): {"put": 40.0, "get": 52.0}, (3, 10): {"put": 19.0}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, node=None, **kw):
    cmd = [os.path.join(BUILD, "cairn")] + (["-d", node] if node else []) + list(args)
    return subprocess.run(cmd, capture_output=True, check=True, timeout=3600, **kw)


def start(tmp, name, client=None):
    node = os.path.join(tmp, name)
    cli("init", node, "--port", str(free_port()), "--nickname", name)
    if client:
        path = os.path.join(node, "cairn.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["client"] = client
        with open(path, "w") as f:
            json.dump(cfg, f)
    log = open(os.path.join(tmp, name + ".log"), "wb")
    proc = subprocess.Popen([os.path.join(BUILD, "cairnd"), node], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(node, "control.sock")):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"cairnd {name} did not start")
        time.sleep(0.02)
    return node, proc, log


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def rss_now(pid):
    """Anonymous and file-backed RSS of a process now (bytes)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out.get("RssAnon"), out.get("RssFile")


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ns_per_byte(cpu_seconds, size):
    """CPU nanoseconds per file byte (the cost a faster path must cut)."""
    return round(cpu_seconds * 1e9 / size, 1)


def write_file(path, size):
    with open(path, "wb") as f:
        left = size
        chunk = os.urandom(MIB)
        while left > 0:
            n = min(left, MIB)
            f.write(chunk[:n])
            left -= n
            chunk = chunk[1:] + chunk[:1]  # not all segments equal


def run(tmp, servers, k, n, happy, size, get=True):
    nodes = [start(tmp, f"s{i}") for i in range(servers)]
    client = start(tmp, "client", {"shares_needed": k, "shares_total": n, "shares_happy": happy})
    try:
        for i, (node, _, _) in enumerate(nodes):
            nurl = cli("nurl", node=node).stdout.decode().strip()
            cli("servers", "add", nurl, "--nickname", f"s{i}", node=client[0])
        src = os.path.join(tmp, "in")
        write_file(src, size)
        # CPU seconds of the client node and of all storage nodes: on a
        # loaded machine these vary far less than the wall clock.
        def cpu():
            return cpu_s(client[1].pid), sum(cpu_s(proc.pid) for _, proc, _ in nodes)

        c0 = cpu()
        t0 = time.monotonic()
        put = json.loads(cli("--json", "-q", "--timeout", "600", "put", src, node=client[0]).stdout)
        put_s = time.monotonic() - t0
        c1 = cpu()
        out = {"bench": "put_get", "servers": servers, "k": k, "n": n, "happy": happy, "bytes": size,
               "put_s": round(put_s, 3), "put_mib_s": round(size / MIB / put_s, 1),
               "put_client_cpu_s": round(c1[0] - c0[0], 2), "put_nodes_cpu_s": round(c1[1] - c0[1], 2),
               "put_client_ns_per_byte": ns_per_byte(c1[0] - c0[0], size),
               "put_nodes_ns_per_byte": ns_per_byte(c1[1] - c0[1], size)}
        if get:
            dst = os.path.join(tmp, "out")
            c0 = cpu()
            t0 = time.monotonic()
            cli("--json", "-q", "--timeout", "600", "get", put["cap"], "-o", dst, node=client[0])
            get_s = time.monotonic() - t0
            c1 = cpu()
            out.update({"get_s": round(get_s, 3), "get_mib_s": round(size / MIB / get_s, 1),
                        "get_client_cpu_s": round(c1[0] - c0[0], 2), "get_nodes_cpu_s": round(c1[1] - c0[1], 2),
                        "get_client_ns_per_byte": ns_per_byte(c1[0] - c0[0], size),
                        "get_nodes_ns_per_byte": ns_per_byte(c1[1] - c0[1], size)})
            ok = subprocess.run(["cmp", "-s", src, dst]).returncode == 0
            out["get_matches"] = ok
            os.unlink(dst)
        out["client_peak_rss_bytes"] = peak_rss(client[1].pid)
        # What the client keeps once the work is done and its heap's free
        # memory is trimmed (limits.malloc_trim_ms, 5 s by default).
        time.sleep(6)
        anon, filed = rss_now(client[1].pid)
        out["client_idle_rss_anon_bytes"], out["client_idle_rss_file_bytes"] = anon, filed
        for op, ref in TAHOE.get((k, n), {}).items():
            if f"{op}_mib_s" in out:
                out[f"{op}_vs_tahoe"] = round(out[f"{op}_mib_s"] / ref, 2)
        os.unlink(src)
        return out
    finally:
        for _, proc, log in nodes + [client]:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
        for name in [f"s{i}" for i in range(servers)] + ["client"]:
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


def prepare_only(tmp, size):
    """Seconds of a put that stops where placement starts (no servers)."""
    client = start(tmp, "client", {"shares_needed": 2, "shares_total": 4, "shares_happy": 3})
    try:
        src = os.path.join(tmp, "in")
        write_file(src, size)
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(BUILD, "cairn"), "-d", client[0], "-q", "--timeout", "600", "put", src],
                           capture_output=True, timeout=3600)
        took = time.monotonic() - t0
        if p.returncode == 0 or b"servers" not in p.stderr:
            raise SystemExit("a put without servers did not fail at placement: " + p.stderr.decode())
        os.unlink(src)
        return {"bench": "put_prepare", "bytes": size, "prepare_s": round(took, 3),
                "prepare_mib_s": round(size / MIB / took, 1)}
    finally:
        client[1].send_signal(signal.SIGTERM)
        client[1].wait(timeout=30)
        client[2].close()
        shutil.rmtree(os.path.join(tmp, "client"), ignore_errors=True)


def main():
    tmp = tempfile.mkdtemp(prefix="cairn-pgb-", dir="/tmp")
    try:
        print(json.dumps(prepare_only(tmp, 64 * MIB)), flush=True)
        for servers, k, n, happy in ((4, 2, 4, 3), (10, 3, 10, 7)):
            print(json.dumps(run(tmp, servers, k, n, happy, 64 * MIB)), flush=True)
        big = int(os.environ.get("CAIRN_BENCH_BIG_MIB", "0"))
        if big:
            print(json.dumps(run(tmp, 4, 2, 4, 3, big * MIB, get=False)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
