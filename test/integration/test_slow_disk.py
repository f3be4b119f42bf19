"""A slow disk: cairnd's node directory on powercut_fs with every fsync,
fdatasync, directory fsync and O_DSYNC write taking 200 ms more. 100
concurrent immutable uploads (the independent GBS client over TLS) run while
another client keeps asking for the version and reading a stored share.
Asserted, as issue 24 gives them, for two memory classes:

  * the host's: cairnd with the host's limits, one connection per upload;
    its peak anonymous memory stays within 32 MiB;
  * kirkwood's: the same cairnd started with kirkwood's limits (`cairn init
    --board kirkwood`: every LIMIT_ line of boards/kirkwood.mk, among them
    24 connections, one thread-pool thread, a 2.5 MiB upload buffer and the
    64 KiB malloc mmap threshold). Those 24 connections are the board's
    bound, so the 100 uploads, all open at once, share 20 connections
    (each carries 5, allocated together and written piece by piece in
    turn); its peak anonymous memory stays within 16 MiB;

and in both:

  * version requests and reads keep being answered while the uploads wait
    for the disk (every one answered, none slower than 5 s);
  * the loop's longest busy iteration stays under 10 ms: asserted on the
    CPU time the loop thread used in it (status loop.max_busy_cpu_us), which
    preemption on a loaded machine does not inflate; the wall-clock figure
    (loop.max_busy_us, since cairnd started) is reported beside it.

Memory is RssAnon from /proc/PID/status sampled every 20 ms (the figure
gbs_bench reports); at each new peak /proc/PID/smaps splits it into the
heap (brk) and the other anonymous mappings (thread stacks, the buffers
malloc maps on their own), reported with the figures. Memory is a property
of the release build: under AddressSanitizer the shadow memory and
quarantine multiply it (docs/store.md gives both). So this test runs the
release cairnd (CAIRN_RELEASE_BUILD, default build/host/release beside
CAIRN_BUILD; `make MODE=release build/host/release/cairnd`); a missing one is
a failure. The kirkwood case measures the host's build with kirkwood's
limits, not the armel binary: docs/store.md compares the two. The figures
are printed (one JSON line, "slow disk: {...}").
"""
import base64
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import ControlConn, free_port, run_cli  # noqa: E402
from pylib.gbs import GbsClient  # noqa: E402
from support.powercut import PowerCutFs, require_fuse, start_cairnd, stop_process, wait_answers  # noqa: E402

RENEW, CANCEL = b"r" * 32, b"c" * 32
UPLOADS = 100
SHARE_BYTES = 512 * 1024
PIECE_BYTES = 128 * 1024
LOOP_BUSY_US = 10_000


def release_cairnd():
    build = os.environ.get("CAIRN_RELEASE_BUILD") or os.path.join(
        os.path.dirname(os.path.abspath(os.environ.get("CAIRN_BUILD", "build/host/asan"))), "release")
    path = os.path.join(build, "cairnd")
    if not os.path.exists(path):
        raise AssertionError(f"{path} is missing: the slow-disk test measures memory on the release build "
                             f"(make MODE=release build/host/release/cairnd)")
    return path


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def anon_split(pid):
    """The process's anonymous memory from /proc/PID/smaps: the brk heap's
    and the other mappings' (thread stacks, malloc's own mappings), bytes."""
    heap = other = 0
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Anonymous:":
                kib = int(line.split()[1]) * 1024
                if name == "[heap]":
                    heap += kib
                else:
                    other += kib
    return heap, other


class SlowDiskTest(unittest.TestCase):
    def setUp(self):
        require_fuse()
        self.cairnd = release_cairnd()
        self.tmp = tempfile.mkdtemp(prefix="sd-", dir="/tmp")
        self.proc = self.fs = None

    def start_node(self, board=None):
        self.backing = os.path.join(self.tmp, "b")
        self.mnt = os.path.join(self.tmp, "m")
        self.node_dir = os.path.join(self.mnt, "node")
        self.fs = PowerCutFs(self.backing, self.mnt).mount()
        run_cli("init", self.node_dir, "--port", str(free_port()), *(["--board", board] if board else []),
                check=True)
        self.fs.unmount()
        path = os.path.join(self.backing, "node", "cairn.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.setdefault("limits", {}).update({"store_reserved_bytes": 0})
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.fs = PowerCutFs(self.backing, self.mnt, fsync_delay_ms=200).mount()
        self.log = os.path.join(self.tmp, "cairnd.log")
        self.proc = start_cairnd(self.node_dir, self.log, cairnd=self.cairnd)
        wait_answers(self.node_dir, self.proc, self.log, timeout=60)
        self.nurl = run_cli("nurl", node_dir=self.node_dir, check=True).stdout.strip()
        self.assertEqual(self.status()["board"], board or "host")

    def tearDown(self):
        code = stop_process(self.proc, signal.SIGTERM, timeout=120) if self.proc else 0
        if self.fs:
            self.fs.kill_hard()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(code, 0)

    def status(self):
        c = ControlConn(self.node_dir, timeout=30)
        r = c.call("status")
        c.close()
        return r["result"]

    def run_load(self, connections):
        """100 uploads, all open at once, over `connections` client
        connections, while a reader asks for the version and reads; returns
        the figures and the errors seen."""
        started = time.monotonic()
        rng = random.Random(24)
        c = GbsClient(self.nurl, timeout=120)
        # A stored share to read while the uploads run.
        read_si = base64.b32encode(b"R" * 16).decode().lower().rstrip("=")
        read_data = rng.randbytes(SHARE_BYTES)
        c.allocate(read_si, {0}, len(read_data), RENEW, CANCEL, b"u" * 32)
        for off in range(0, len(read_data), PIECE_BYTES):
            c.write(read_si, 0, off, read_data[off:off + PIECE_BYTES], b"u" * 32)
        c.close()
        loop_before = self.status()["loop"]

        done = threading.Event()
        errors, peak = [], {"anon": 0, "heap": 0, "other": 0}
        latencies = {"version": [], "read": []}
        finished = [0]
        lock = threading.Lock()

        def sampler():
            while not done.is_set():
                try:
                    anon = rss_anon(self.proc.pid)
                    if anon > peak["anon"]:
                        peak["heap"], peak["other"] = anon_split(self.proc.pid)
                        peak["anon"] = anon
                except OSError:
                    return
                done.wait(0.02)

        def reader():
            r = GbsClient(self.nurl, timeout=60)
            try:
                while not done.is_set():
                    t = time.monotonic()
                    r.version()
                    latencies["version"].append(time.monotonic() - t)
                    t = time.monotonic()
                    off = rng.randrange(0, SHARE_BYTES - 4096)
                    if r.read(read_si, 0, off, 4096) != read_data[off:off + 4096]:
                        errors.append("a read returned wrong bytes")
                    latencies["read"].append(time.monotonic() - t)
            except Exception as e:
                errors.append(f"reader: {e!r}")
            finally:
                r.close()

        def uploader(conn):
            # This connection's uploads: allocated together, then written a
            # piece of each in turn, so all of them stay open at once.
            mine = list(range(conn, UPLOADS, connections))
            u = GbsClient(self.nurl, timeout=300)
            try:
                shares = {}
                for i in mine:
                    si = base64.b32encode(i.to_bytes(2, "big") * 8).decode().lower().rstrip("=")
                    secret = i.to_bytes(4, "big") * 8
                    r = u.allocate(si, {0}, SHARE_BYTES, RENEW, CANCEL, secret)
                    if 0 not in r["allocated"]:
                        errors.append(f"upload {i}: not allocated: {r}")
                        return
                    shares[i] = (si, secret, random.Random(i).randbytes(SHARE_BYTES))
                for off in range(0, SHARE_BYTES, PIECE_BYTES):
                    for i, (si, secret, data) in shares.items():
                        status, _ = u.write(si, 0, off, data[off:off + PIECE_BYTES], secret)
                        if off + PIECE_BYTES >= SHARE_BYTES:
                            if status != 201:
                                errors.append(f"upload {i}: last write answered {status}")
                            else:
                                with lock:
                                    finished[0] += 1
            except Exception as e:
                errors.append(f"uploads of connection {conn}: {e!r}")
            finally:
                u.close()

        threads = [threading.Thread(target=sampler, daemon=True), threading.Thread(target=reader, daemon=True)]
        uploads = [threading.Thread(target=uploader, args=(n,), daemon=True) for n in range(connections)]
        for t in threads + uploads:
            t.start()
        for t in uploads:
            t.join(timeout=600)
        uploads_s = time.monotonic() - started
        done.set()
        for t in threads:
            t.join(timeout=120)
        loop_after = self.status()["loop"]
        figures = {
            "uploads": UPLOADS, "connections": connections, "finished": finished[0], "share_bytes": SHARE_BYTES,
            "fsync_delay_ms": 200, "peak_rss_anon_bytes": peak["anon"],
            "at_peak_heap_bytes": peak["heap"], "at_peak_other_anon_bytes": peak["other"],
            "loop_max_busy_us_before": loop_before["max_busy_us"], "loop_max_busy_us": loop_after["max_busy_us"],
            "loop_max_busy_cpu_us": loop_after["max_busy_cpu_us"],
            "versions_answered": len(latencies["version"]), "reads_answered": len(latencies["read"]),
            "version_max_s": round(max(latencies["version"], default=0), 3),
            "read_max_s": round(max(latencies["read"], default=0), 3),
            "seconds": round(uploads_s, 1),
        }
        return figures, errors

    def check(self, figures, errors, rss_class):
        figures["rss_class_bytes"] = rss_class
        print("\nslow disk: " + json.dumps(figures), flush=True)
        self.assertEqual(errors, [])
        self.assertEqual(figures["finished"], UPLOADS)
        self.assertLessEqual(figures["peak_rss_anon_bytes"], rss_class, figures)
        # The loop's own work per iteration: its CPU time (the wall-clock
        # figure, reported above, also counts the time the thread waited
        # for a core on this shared machine).
        self.assertLess(figures["loop_max_busy_cpu_us"], LOOP_BUSY_US, figures)
        self.assertGreater(figures["versions_answered"], 10, figures)
        self.assertLess(figures["version_max_s"], 5.0, figures)
        self.assertLess(figures["read_max_s"], 5.0, figures)

    def test_slow_fsync_keeps_memory_loop_and_reads_within_bounds(self):
        # The host's class: 32 MiB, one connection per upload.
        self.start_node()
        figures, errors = self.run_load(connections=UPLOADS)
        figures["board"] = "host"
        self.check(figures, errors, 32 << 20)

    def test_slow_fsync_within_kirkwoods_16_mib_class(self):
        # kirkwood's class: 16 MiB with its limits; its 24 connections (less
        # the reader's and room for a control client) carry the uploads.
        self.start_node(board="kirkwood")
        figures, errors = self.run_load(connections=20)
        figures["board"] = "kirkwood limits, host build"
        self.check(figures, errors, 16 << 20)


if __name__ == "__main__":
    unittest.main()
