"""Crash test for the share store: a child process (test/tools/store_crash_child)
does acknowledged mutable and immutable writes, printing each acknowledgement;
it is killed with SIGKILL at random moments; each restart first checks that
every acknowledged write is present and that no write is partly applied.

CAIRN_CRASH_KILLS sets the number of kills (default 200; `make soak` runs more).
The random seed is printed so a failing run can be repeated (CAIRN_CRASH_SEED).
"""
import os
import random
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from pylib.cairntest import binary


class StoreCrashTest(unittest.TestCase):
    def test_acknowledged_writes_survive_sigkill(self):
        kills = int(os.environ.get("CAIRN_CRASH_KILLS", "200"))
        seed = int(os.environ.get("CAIRN_CRASH_SEED", str(int(time.time()))))
        rng = random.Random(seed)
        tool = binary("tools/store_crash_child")
        tmp = tempfile.mkdtemp(prefix="cairn-crash-", dir="/tmp")
        store = os.path.join(tmp, "store")
        os.mkdir(store)
        expect = os.path.join(tmp, "expect.txt")
        slots = {}          # slot -> highest acknowledged version
        chunks = []         # acknowledged immutable lines ("I ..." and "C ...")
        fresh = []          # those acknowledged by the last run
        acks = 0
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")  # SIGKILLed: nothing to report
        try:
            for run in range(kills + 1):
                last = run == kills
                # Each restart checks every slot, every write of the run just
                # killed and a sample of older ones; the last checks them all.
                older = chunks[:len(chunks) - len(fresh)]
                check = chunks if last else fresh + rng.sample(older, min(20, len(older)))
                with open(expect, "w") as f:
                    for slot, v in sorted(slots.items()):
                        f.write(f"M {slot} {v}\n")
                    for line in check:
                        f.write(line + "\n")
                fresh = []
                cmd = [tool, store, expect, str(run)] + (["verify-only"] if last else [])
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                buf = b""
                ready = False
                deadline = time.monotonic() + 60
                kill_at = None
                while True:
                    now = time.monotonic()
                    if now > deadline:
                        proc.kill()
                        self.fail(f"seed {seed} run {run}: the child did not get ready")
                    if kill_at is not None and now >= kill_at:
                        proc.send_signal(signal.SIGKILL)
                        break
                    wait = 0.5 if kill_at is None else max(0.0, kill_at - now)
                    r, _, _ = select.select([proc.stdout], [], [], wait)
                    if not r:
                        continue
                    data = os.read(proc.stdout.fileno(), 65536)
                    if not data:
                        break
                    buf += data
                    if not ready and b"READY\n" in buf:
                        ready = True
                        if not last:
                            kill_at = time.monotonic() + rng.uniform(0.0, 0.12)
                    if b"FAIL" in buf:
                        break
                # Whatever the child printed before it died was acknowledged.
                rest = proc.stdout.read()
                buf += rest or b""
                proc.wait()
                err = proc.stderr.read().decode(errors="replace")
                proc.stdout.close()
                proc.stderr.close()
                lines = buf.decode().split("\n")[:-1]  # a cut last line is dropped
                for line in lines:
                    if line.startswith("FAIL"):
                        self.fail(f"seed {seed} run {run}: {line}\n{err[-2000:]}")
                    parts = line.split()
                    if parts[0] == "M":
                        acks += 1
                        slots[int(parts[1])] = max(slots.get(int(parts[1]), 0), int(parts[2]))
                    elif parts[0] in ("I", "C"):
                        acks += 1
                        chunks.append(line)
                        fresh.append(line)
                self.assertTrue(ready, f"seed {seed} run {run}: no READY (exit {proc.returncode}): {err[-2000:]}")
                if last:
                    self.assertEqual(proc.returncode, 0, err[-2000:])
            print(f"store crash test: {kills} kills, {acks} acknowledged writes checked, seed {seed}")
            self.assertGreater(acks, kills)  # the kills landed among real writes
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
