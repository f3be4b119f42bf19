"""A slow disk: cairnd's node directory on powercut_fs with every fsync,
fdatasync, directory fsync and O_DSYNC write taking 200 ms more. 100
concurrent immutable uploads (the independent GBS client, one TLS connection
each) run while another client keeps asking for the version and reading a
stored share. Asserted, as issue 24 gives them:

  * cairnd's peak anonymous memory (RssAnon, sampled from /proc every 20 ms,
    the figure gbs_bench reports) stays within the host's 32 MiB class;
  * version requests and reads keep being answered while the uploads wait
    for the disk (every one answered, none slower than 5 s);
  * the loop's longest busy iteration stays under 10 ms: asserted on the
    CPU time the loop thread used in it (status loop.max_busy_cpu_us), which
    preemption on a loaded machine does not inflate; the wall-clock figure
    (loop.max_busy_us, since cairnd started) is reported beside it.

Memory is a property of the release build: under AddressSanitizer the
shadow memory and quarantine multiply it. So this test runs the release
cairnd (CAIRN_RELEASE_BUILD, default build/host/release beside CAIRN_BUILD;
`make MODE=release build/host/release/cairnd`); a missing one is a failure.
The figures are printed (one JSON line, "slow disk: {...}").
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
RSS_CLASS_BYTES = 32 << 20
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


class SlowDiskTest(unittest.TestCase):
    def setUp(self):
        require_fuse()
        self.cairnd = release_cairnd()
        self.tmp = tempfile.mkdtemp(prefix="sd-", dir="/tmp")
        self.backing = os.path.join(self.tmp, "b")
        self.mnt = os.path.join(self.tmp, "m")
        self.node_dir = os.path.join(self.mnt, "node")
        self.fs = PowerCutFs(self.backing, self.mnt).mount()
        run_cli("init", self.node_dir, "--port", str(free_port()), check=True)
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

    def tearDown(self):
        code = stop_process(self.proc, signal.SIGTERM, timeout=120)
        self.fs.kill_hard()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(code, 0)

    def loop_stats(self):
        c = ControlConn(self.node_dir, timeout=30)
        r = c.call("status")
        c.close()
        return r["result"]["loop"]

    def test_slow_fsync_keeps_memory_loop_and_reads_within_bounds(self):
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
        loop_before = self.loop_stats()

        done = threading.Event()
        errors, peak = [], [0]
        latencies = {"version": [], "read": []}
        finished = [0]
        lock = threading.Lock()

        def sampler():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_anon(self.proc.pid))
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

        def uploader(i):
            u = GbsClient(self.nurl, timeout=300)
            try:
                si = base64.b32encode(i.to_bytes(2, "big") * 8).decode().lower().rstrip("=")
                data = random.Random(i).randbytes(SHARE_BYTES)
                secret = i.to_bytes(4, "big") * 8
                r = u.allocate(si, {0}, len(data), RENEW, CANCEL, secret)
                if 0 not in r["allocated"]:
                    errors.append(f"upload {i}: not allocated: {r}")
                    return
                status = None
                for off in range(0, len(data), PIECE_BYTES):
                    status, _ = u.write(si, 0, off, data[off:off + PIECE_BYTES], secret)
                if status != 201:
                    errors.append(f"upload {i}: last write answered {status}")
                with lock:
                    finished[0] += 1
            except Exception as e:
                errors.append(f"upload {i}: {e!r}")
            finally:
                u.close()

        threads = [threading.Thread(target=sampler, daemon=True), threading.Thread(target=reader, daemon=True)]
        uploads = [threading.Thread(target=uploader, args=(i,), daemon=True) for i in range(UPLOADS)]
        for t in threads + uploads:
            t.start()
        for t in uploads:
            t.join(timeout=600)
        uploads_s = time.monotonic() - started
        done.set()
        for t in threads:
            t.join(timeout=120)
        loop_after = self.loop_stats()
        figures = {
            "uploads": UPLOADS, "finished": finished[0], "share_bytes": SHARE_BYTES, "fsync_delay_ms": 200,
            "peak_rss_anon_bytes": peak[0], "rss_class_bytes": RSS_CLASS_BYTES,
            "loop_max_busy_us_before": loop_before["max_busy_us"], "loop_max_busy_us": loop_after["max_busy_us"],
            "loop_max_busy_cpu_us": loop_after["max_busy_cpu_us"],
            "versions_answered": len(latencies["version"]), "reads_answered": len(latencies["read"]),
            "version_max_s": round(max(latencies["version"], default=0), 3),
            "read_max_s": round(max(latencies["read"], default=0), 3),
            "seconds": round(uploads_s, 1),
        }
        print("\nslow disk: " + json.dumps(figures), flush=True)
        self.assertEqual(errors, [])
        self.assertEqual(finished[0], UPLOADS)
        self.assertLessEqual(peak[0], RSS_CLASS_BYTES, figures)
        # The loop's own work per iteration: its CPU time (the wall-clock
        # figure, reported above, also counts the time the thread waited
        # for a core on this shared machine).
        self.assertLess(loop_after["max_busy_cpu_us"], LOOP_BUSY_US, figures)
        self.assertGreater(len(latencies["version"]), 10, figures)
        self.assertLess(max(latencies["version"]), 5.0, figures)
        self.assertLess(max(latencies["read"]), 5.0, figures)


if __name__ == "__main__":
    unittest.main()
