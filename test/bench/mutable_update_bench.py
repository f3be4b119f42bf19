#!/usr/bin/python3
"""SDMF updates through the daemon (release build): a 1 MiB mutable file on
10 local cairnd storage nodes at 3-of-10, happiness 7, updated 30 times
(`mutable.put` with a new 1 MiB each time) over one control connection;
the latency of each update from the request's first byte to its final
frame, p50 and p99 in ms, and the same for reads (`mutable.get`). Also the
wall clock of the `cairn mutable put` command (which adds a process start
and a connection), the CPU time per update of the client cairnd and of the
ten servers together, and the load average (wall clock on a loaded machine
means little). Each put's result carries "timing_ms" (where the daemon
spent the update: receiving the file, queueing, the grid, the servermap,
the encoding on the pool, sending, the servers' answers); the bench adds
"outside" (wall clock minus the daemon's total: the request's bytes on the
socket and the final frame) and reports the p50 of each phase. JSON lines
on stdout; asserts nothing about speed.

Then MDMF (`mdmf_*` lines): a CAIRN_BENCH_MDMF_MIB (default 256) MiB MDMF
file created on the same 10 nodes at 3-of-10 (MiB/s, and the client
cairnd's peak RSS, VmHWM, right after it), CAIRN_BENCH_MDMF_UPDATES
(default 20) 4 KiB in-place updates at random offsets (p50, p95, and the
bytes the ten servers received per update, from their cairn_gbs_bytes_in
counters, besides the share bytes the update's result counts), as many
1 MiB ranged reads (p50), then one read of the whole file (MiB/s, and the
client's peak RSS once more). The create and the whole read stream (the
client holds a few segments, docs/mutable.md): no limit is raised.

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/mutable_update_bench.py [--mdmf-only]
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from put_get_bench import BUILD, MIB, cli, peak_rss, start  # noqa: E402

UPDATES = int(os.environ.get("CAIRN_BENCH_MUTABLE_UPDATES", "30"))
SERVERS, K, N, HAPPY = 10, 3, 10, 7
CHUNK = 262144


class Conn:
    def __init__(self, node):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(os.path.join(node, "control.sock"))
        self.buf = b""

    def send_request(self, id, method, params, data=None):
        out = [json.dumps({"v": 1, "id": id, "method": method, "params": params}).encode() + b"\n"]
        if data is not None:
            frames = max(1, -(-len(data) // CHUNK))
            for seq in range(frames):
                part = data[seq * CHUNK:(seq + 1) * CHUNK]
                head = {"id": id, "data": seq, "bytes": len(part)}
                if seq == frames - 1:
                    head["eof"] = True
                out.append(json.dumps(head).encode() + b"\n" + part)
        self.sock.sendall(b"".join(out))

    def final(self):
        """The final frame; the data frames' bytes, joined."""
        data = []
        while True:
            while b"\n" not in self.buf:
                self.buf += self.sock.recv(1 << 20)
            line, self.buf = self.buf.split(b"\n", 1)
            frame = json.loads(line)
            if isinstance(frame.get("bytes"), int):
                n = frame["bytes"]
                while len(self.buf) < n:
                    self.buf += self.sock.recv(1 << 20)
                data.append(self.buf[:n])
                self.buf = self.buf[n:]
                continue
            if "progress" in frame:
                continue
            if "error" in frame:
                raise SystemExit(f"{frame['error']}")
            return frame["result"], b"".join(data)


def cpu_ms(pid):
    """User plus system CPU time a process has used, ms (less sensitive to a
    loaded machine than wall clock)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bytes_in(node):
    text = cli("--json", "metrics", node=node).stdout.decode()
    m = re.search(r'^cairn_gbs_bytes_in(?:_total)? (\S+)$', json.loads(text)["text"], re.M)
    return int(float(m.group(1))) if m else 0


def mdmf(tmp):
    size = int(os.environ.get("CAIRN_BENCH_MDMF_MIB", "256")) * MIB
    updates = int(os.environ.get("CAIRN_BENCH_MDMF_UPDATES", "20"))
    nodes = []
    try:
        for i in range(SERVERS + 1):
            name = f"m{i}" if i < SERVERS else "mclient"
            client = {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY} if i == SERVERS else None
            nodes.append(start(tmp, name, client))
        client = nodes[SERVERS]
        for i, (node, _, _) in enumerate(nodes[:SERVERS]):
            nurl = cli("nurl", node=node).stdout.decode().strip()
            cli("servers", "add", nurl, "--nickname", f"m{i}", node=client[0])
        conn = Conn(client[0])
        data = bytearray(os.urandom(size))
        t0 = time.perf_counter()
        conn.send_request("c", "mutable.create", {"size": size, "format": "mdmf"}, bytes(data))
        made, _ = conn.final()
        create_s = time.perf_counter() - t0
        create_rss = peak_rss(client[1].pid)
        cap = made["writecap"]
        rng = random.Random(19)
        lat, sent, written, phases = [], [], [], {}
        for i in range(updates):
            offset = rng.randrange(0, size - 4096)
            patch = os.urandom(4096)
            before = sum(bytes_in(n) for n, _, _ in nodes[:SERVERS])
            t0 = time.perf_counter()
            conn.send_request(f"u{i}", "mutable.put", {"target": cap, "size": 4096, "offset": offset}, patch)
            put, _ = conn.final()
            lat.append((time.perf_counter() - t0) * 1000)
            sent.append(sum(bytes_in(n) for n, _, _ in nodes[:SERVERS]) - before)
            written.append(put["bytes_written"])
            for name, ms in put.get("timing_ms", {}).items():
                phases.setdefault(name, []).append(ms)
            data[offset:offset + 4096] = patch
        reads = []
        for i in range(updates):
            offset = rng.randrange(0, size - MIB)
            t0 = time.perf_counter()
            conn.send_request(f"r{i}", "mutable.get", {"target": cap, "offset": offset, "size": MIB})
            _, body = conn.final()
            reads.append((time.perf_counter() - t0) * 1000)
            if body != bytes(data[offset:offset + MIB]):
                raise SystemExit(f"ranged read {i} differs")
        t0 = time.perf_counter()
        conn.send_request("w", "mutable.get", {"target": cap})
        _, body = conn.final()
        whole_s = time.perf_counter() - t0
        if body != bytes(data):
            raise SystemExit("the whole read differs")
        del body
        common = {"servers": SERVERS, "k": K, "n": N, "happy": HAPPY, "file_bytes": size,
                  "build": os.path.basename(os.path.normpath(BUILD))}
        print(json.dumps({"bench": "mdmf_create", **common, "seconds": round(create_s, 2),
                          "mib_per_s": round(size / MIB / create_s, 1),
                          "client_peak_rss_mib": round(create_rss / MIB, 1), "goal_rss_mib": 32}), flush=True)
        print(json.dumps({"bench": "mdmf_update_4k", **common, "updates": updates,
                          "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
                          "servers_bytes_in_p50": percentile(sent, 50), "share_bytes_written_p50": percentile(written, 50),
                          "goal_p50_ms": 30, "goal_bytes": MIB,
                          "phases_p50_ms": {k: round(percentile(v, 50), 1) for k, v in phases.items()}}), flush=True)
        print(json.dumps({"bench": "mdmf_ranged_read_1m", **common, "reads": updates,
                          "p50_ms": round(percentile(reads, 50), 1), "p95_ms": round(percentile(reads, 95), 1),
                          "goal_p50_ms": 20}), flush=True)
        print(json.dumps({"bench": "mdmf_read_whole", **common, "seconds": round(whole_s, 2),
                          "mib_per_s": round(size / MIB / whole_s, 1),
                          "client_peak_rss_mib": round(peak_rss(client[1].pid) / MIB, 1), "goal_rss_mib": 32}),
              flush=True)
    finally:
        for _, proc, log in nodes:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            log.close()


def main():
    tmp = tempfile.mkdtemp(prefix="cairn-mub-", dir="/tmp")
    if "--mdmf-only" in sys.argv:
        try:
            mdmf(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    nodes = []
    try:
        nodes = [start(tmp, f"s{i}") for i in range(SERVERS)]
        client = start(tmp, "client", {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY})
        nodes.append(client)
        for i, (node, _, _) in enumerate(nodes[:SERVERS]):
            nurl = cli("nurl", node=node).stdout.decode().strip()
            cli("servers", "add", nurl, "--nickname", f"s{i}", node=client[0])
        conn = Conn(client[0])
        conn.send_request(0, "mutable.create", {"size": MIB}, os.urandom(MIB))
        made, _ = conn.final()
        cap = made["writecap"]
        puts, gets, phases = [], [], {}
        put_cpu = {"client": 0.0, "servers": 0.0}
        for i in range(UPDATES):
            before = (cpu_ms(client[1].pid), sum(cpu_ms(p.pid) for _, p, _ in nodes[:SERVERS]))
            data = os.urandom(MIB)
            t0 = time.perf_counter()
            conn.send_request(f"p{i}", "mutable.put", {"target": cap, "size": MIB}, data)
            put, _ = conn.final()
            puts.append((time.perf_counter() - t0) * 1000)
            timing = dict(put.get("timing_ms", {}))
            if "total" in timing:
                timing["outside"] = puts[-1] - timing["total"]
            for name, ms in timing.items():
                phases.setdefault(name, []).append(ms)
            put_cpu["client"] += cpu_ms(client[1].pid) - before[0]
            put_cpu["servers"] += sum(cpu_ms(p.pid) for _, p, _ in nodes[:SERVERS]) - before[1]
            if put["seqnum"] != i + 2:
                raise SystemExit(f"update {i}: seqnum {put['seqnum']}")
            t0 = time.perf_counter()
            conn.send_request(f"g{i}", "mutable.get", {"target": cap})
            got, body = conn.final()
            gets.append((time.perf_counter() - t0) * 1000)
            if body != data:
                raise SystemExit(f"update {i}: the read differs")
        src = os.path.join(tmp, "in")
        with open(src, "wb") as f:
            f.write(os.urandom(MIB))
        cmd = []
        for _ in range(5):
            t0 = time.perf_counter()
            cli("-q", "mutable", "put", cap, src, node=client[0])
            cmd.append((time.perf_counter() - t0) * 1000)
        common = {"servers": SERVERS, "k": K, "n": N, "happy": HAPPY, "bytes": MIB}
        print(json.dumps({"bench": "mutable_put", **common, "updates": UPDATES,
                          "p50_ms": round(percentile(puts, 50), 1), "p95_ms": round(percentile(puts, 95), 1),
                          "p99_ms": round(percentile(puts, 99), 1), "goal_p50_ms": 20, "client_cpu_ms_per_update": round(put_cpu["client"] / UPDATES, 1),
                          "servers_cpu_ms_per_update": round(put_cpu["servers"] / UPDATES, 1),
                          "load_average": os.getloadavg()[0]}), flush=True)
        print(json.dumps({"bench": "mutable_put_phases", **common, "updates": UPDATES,
                          "p50_ms": {name: round(percentile(v, 50), 1) for name, v in phases.items()}}), flush=True)
        print(json.dumps({"bench": "mutable_get", **common, "reads": UPDATES,
                          "p50_ms": round(percentile(gets, 50), 1), "p95_ms": round(percentile(gets, 95), 1),
                          "p99_ms": round(percentile(gets, 99), 1)}), flush=True)
        print(json.dumps({"bench": "mutable_put_cli", **common, "runs": len(cmd),
                          "p50_ms": round(percentile(cmd, 50), 1)}), flush=True)
    finally:
        for _, proc, log in nodes:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
    try:
        mdmf(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
