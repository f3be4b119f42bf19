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

Run alone: CAIRN_BUILD=build/host/release /usr/bin/python3 test/bench/mutable_update_bench.py
"""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from put_get_bench import MIB, cli, start  # noqa: E402

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


def main():
    tmp = tempfile.mkdtemp(prefix="cairn-mub-", dir="/tmp")
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
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
