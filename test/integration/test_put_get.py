"""cairn put / get through real cairnd nodes on 127.0.0.1: four storage nodes
and a client node whose grid (`cairn servers add`) is those four, encoding
2-of-4 with happiness 3 (client.* keys in cairn.json) and Tahoe-LAFS's 1 MiB
maximum segment size. Round trips at the sizes that matter, caps equal to
`cairn debug chk-cap`, the node's convergence secret, N-k servers down, an
unhappy upload, a corrupt share (detected, advised, replaced), a server
killed in the middle of an upload, and stored shares byte-identical to the
offline encoder's."""
import base64
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import time
import unittest

from pylib.cairntest import ControlConn, Node, binary, run_cli, stop_grid, wait_for
from pylib.gbs import GbsClient

K, N, HAPPY = 2, 4, 3
SEG = 1 << 20
CONVERGENCE = base64.b64encode(b"integration-test-convergence-32b").decode()


def b32(data):
    return base64.b32encode(data).decode().lower().rstrip("=")


class PutGetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(5)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={"client": {"shares_needed": K, "shares_total": N,
                                                             "shares_happy": HAPPY}})
        cls.client.start()
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        # The fifth server joins the grid only in the tests that need it.
        for i, nurl in enumerate(cls.nurls[:4]):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-pg-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def ensure_running(self, i):
        if self.servers[i].proc is None:
            self.servers[i].start()

    def file(self, data, name="in"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def put(self, path, *extra):
        p = run_cli("--json", "-q", "put", path, *extra, node_dir=self.client.dir, timeout=120)
        return p, (json.loads(p.stdout) if p.returncode == 0 else None)

    @staticmethod
    def send_put(conn, data, id=1):
        """A put request over a raw connection: the file as data frames."""
        conn.send({"v": 1, "id": id, "method": "put", "params": {"size": len(data)}})
        chunk = 262144
        frames = max(1, -(-len(data) // chunk))
        for seq in range(frames):
            conn.send_data(id, seq, data[seq * chunk:(seq + 1) * chunk], eof=seq == frames - 1)

    def get(self, cap, out):
        return run_cli("--json", "-q", "get", cap, "-o", out, node_dir=self.client.dir, timeout=120)

    def expected_cap(self, data):
        p = run_cli("debug", "chk-cap", "--convergence", CONVERGENCE, "-k", str(K), "-n", str(N), input=data,
                    check=True)
        return p.stdout.decode().strip()

    def test_round_trips(self):
        rng = random.Random(1234)
        for size in (0, 1, 55, 56, SEG - 1, SEG, SEG + 1, 8 * SEG + 1):
            with self.subTest(size=size):
                data = rng.randbytes(size)
                p, r = self.put(self.file(data), "--convergence", CONVERGENCE)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(r["cap"], self.expected_cap(data))
                self.assertTrue(r["cap"].startswith("URI:LIT:" if size <= 55 else "URI:CHK:"), r["cap"])
                if size > 55:
                    self.assertGreaterEqual(r["happiness"], HAPPY)
                    self.assertEqual(r["shares_uploaded"] + r["shares_reused"], N)
                out = os.path.join(self.tmp, "out")
                g = self.get(r["cap"], out)
                self.assertEqual(g.returncode, 0, g.stderr)
                self.assertEqual(json.loads(g.stdout)["size"], size)
                with open(out, "rb") as f:
                    self.assertTrue(f.read() == data, f"size {size}: downloaded bytes differ")
        # Without -o the file goes to stdout; an upload again reuses every share.
        data = rng.randbytes(5000)
        _, r = self.put(self.file(data), "--convergence", CONVERGENCE)
        _, again = self.put(self.file(data), "--convergence", CONVERGENCE)
        self.assertEqual(again["cap"], r["cap"])
        self.assertEqual((again["shares_uploaded"], again["shares_reused"]), (0, N))
        out = subprocess.run([binary("cairn"), "-d", self.client.dir, "-q", "get", r["cap"]], capture_output=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout == data)
        # The daemon's spool files are gone once their tasks end.
        spool = os.path.join(self.client.dir, "tmp")
        wait_for(lambda: os.listdir(spool) == [], what="an empty spool directory")

    def test_put_from_a_pipe_gives_the_files_cap(self):
        # Standard input has no announced size: the key is hashed while
        # spooling on the guess of a whole segment, and the upload hashes
        # again only an input whose segment size is another (SEG - K and
        # less: the segment size is the size rounded up to a multiple of K).
        # Either way the cap is the file's, and the bytes come back.
        rng = random.Random(77)
        for size in (55, 56, SEG - K - 1, SEG - K, SEG - 1, SEG, SEG + 1, 3 * SEG + 5):
            with self.subTest(size=size):
                data = rng.randbytes(size)
                p = run_cli("--json", "-q", "put", "-", "--convergence", CONVERGENCE, node_dir=self.client.dir,
                            input=data, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                r = json.loads(p.stdout)
                self.assertEqual(r["cap"], self.expected_cap(data))
                self.assertEqual(r["size"], size)
                out = os.path.join(self.tmp, "pipe-out")
                g = self.get(r["cap"], out)
                self.assertEqual(g.returncode, 0, g.stderr)
                with open(out, "rb") as f:
                    self.assertTrue(f.read() == data, f"size {size}: downloaded bytes differ")

    def test_progress_to_a_pipe_is_at_most_a_line_a_second(self):
        # Progress on a pipe is for logs: the first line after a second of
        # work, then at most one a second, so a command that takes t seconds
        # writes at most t lines (a 3 MiB put sends dozens of progress frames).
        data = random.Random(78).randbytes(3 * SEG)
        start = time.monotonic()
        p = run_cli("put", self.file(data, "progress-in"), node_dir=self.client.dir, timeout=120)
        elapsed = time.monotonic() - start
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [line for line in p.stderr.splitlines() if re.fullmatch(r"[a-z ]+ \d+/\d+", line)]
        self.assertLessEqual(len(lines), int(elapsed), p.stderr)

    def test_input_breaking_its_announced_size_is_refused(self):
        # params.size promises the input's length: more bytes, or an end
        # short of it, is invalid_argument naming both numbers, and the
        # spool file is removed.
        for sent, want in ((1500, "more data than params.size (1000 bytes)"),
                           (600, "the input ended after 600 of params.size 1000 bytes")):
            conn = ControlConn(self.client.dir, timeout=60)
            reply = conn.call_with_input("put", {"size": 1000}, bytes(sent))
            conn.close()
            self.assertEqual(reply["error"], {"code": "invalid_argument", "message": want, "retryable": False}, sent)
        spool = os.path.join(self.client.dir, "tmp")
        wait_for(lambda: os.listdir(spool) == [], what="an empty spool directory")

    def test_stored_shares_are_the_encoders(self):
        # Every share a put stores is byte for byte what chk_tool (the same
        # encoder, run offline) makes, and test/interop/test_chk_shares.py
        # checks chk_tool's shares against the specification with code of its own.
        data = random.Random(5).randbytes(SEG + 12345)
        p, r = self.put(self.file(data), "--convergence", CONVERGENCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        conv = base64.b64decode(CONVERGENCE)
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.run([binary("tools/chk_tool"), "encode", conv.hex(), str(K), str(N), str(SEG), d],
                                  input=data, capture_output=True, check=True)
            self.assertEqual(proc.stdout.decode().strip(), r["cap"])
            expected = {}
            for i in range(N):
                with open(os.path.join(d, f"{i}.share"), "rb") as f:
                    expected[i] = f.read()
        si = json.loads(run_cli("--json", "debug", "chk-cap", "--convergence", CONVERGENCE, "-k", str(K), "-n",
                                str(N), input=data, check=True).stdout)["storage_index"]
        seen = set()
        for nurl in self.nurls[:4]:
            c = GbsClient(nurl)
            try:
                for sh in c.list_shares(si):
                    self.assertEqual(c.read(si, sh, 0, len(expected[sh]) + 100), expected[sh], f"share {sh}")
                    seen.add(sh)
            finally:
                c.close()
        self.assertEqual(seen, set(range(N)))

    def test_node_convergence_secret(self):
        # `cairn init` made it; cairnd makes a new one on first use if it is gone.
        path = os.path.join(self.client.dir, "private", "convergence")
        self.assertTrue(os.path.exists(path))
        self.assertTrue(os.path.exists(os.path.join(self.client.dir, "private", "secret")))
        os.unlink(path)
        data = b"x" * 1000
        p, r = self.put(self.file(data))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(path) as f:
            text = f.read().strip()
        self.assertEqual(len(text), 52)                       # 32 bytes, Tahoe base32
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        secret = base64.b32decode(text.upper() + "====")
        p2 = run_cli("debug", "chk-cap", "--convergence", base64.b64encode(secret).decode(), "-k", str(K), "-n",
                     str(N), input=data, check=True)
        self.assertEqual(r["cap"], p2.stdout.decode().strip())
        _, r2 = self.put(self.file(data))                    # the same secret next time
        self.assertEqual(r2["cap"], r["cap"])

    def test_n_minus_k_down_and_unhappy(self):
        data = random.Random(7).randbytes(3 * SEG + 17)
        p, r = self.put(self.file(data), "--convergence", CONVERGENCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        try:
            self.assertEqual(self.servers[0].stop(), 0)
            self.assertEqual(self.servers[1].stop(), 0)
            out = os.path.join(self.tmp, "down")
            g = self.get(r["cap"], out)
            self.assertEqual(g.returncode, 0, g.stderr)
            with open(out, "rb") as f:
                self.assertTrue(f.read() == data)
            # Two servers cannot make happiness 3: a clear error, exit code 5.
            p2, _ = self.put(self.file(b"another file, long enough for a CHK cap" * 10))
            self.assertEqual(p2.returncode, 5, p2.stderr)
            self.assertIn("not_enough_servers", p2.stdout + p2.stderr)
            # A third down: the file cannot be read, and no output is left.
            self.assertEqual(self.servers[2].stop(), 0)
            g2 = self.get(r["cap"], os.path.join(self.tmp, "lost"))
            self.assertEqual(g2.returncode, 5, g2.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "lost")))
        finally:
            for i in range(3):
                self.ensure_running(i)

    def test_corrupt_share(self):
        # Shares made by chk_tool (the same encoder, run offline), share 0
        # with a flipped byte in its second block, stored on s0; shares 1 and
        # 2 on s1 and s2.
        data = random.Random(3).randbytes(2 * SEG + 5)
        conv = b"corrupt-share-test-convergence!!"
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.run([binary("tools/chk_tool"), "encode", conv.hex(), str(K), str(N), str(SEG), d],
                                  input=data, capture_output=True, check=True)
            cap = proc.stdout.decode().strip()
            shares = []
            for i in range(N):
                with open(os.path.join(d, f"{i}.share"), "rb") as f:
                    shares.append(f.read())
        si = json.loads(run_cli("--json", "debug", "chk-cap", "--convergence", base64.b64encode(conv).decode(),
                                "-k", str(K), "-n", str(N), input=data, check=True).stdout)["storage_index"]
        block_size = SEG // K
        bad = bytearray(shares[0])
        bad[36 + block_size + 100] ^= 0x40
        shares[0] = bytes(bad)
        for i in range(3):
            c = GbsClient(self.nurls[i])
            upload = os.urandom(32)
            c.allocate(si, [i], len(shares[i]), os.urandom(32), os.urandom(32), upload)
            status, _ = c.write(si, i, 0, shares[i], upload)
            self.assertEqual(status, 201)
            c.close()
        # With s1 (share 1) stopped only shares 0 and 2 are there: the corrupt
        # block must be caught, reported to s0, and the download fails.
        self.assertEqual(self.servers[1].stop(), 0)
        try:
            g = self.get(cap, os.path.join(self.tmp, "corrupt"))
            self.assertEqual(g.returncode, 5, g.stderr)
            wait_for(lambda: "corruption advisory for immutable share 0" in self.servers[0].read_log(), timeout=10,
                     what="the corruption advisory in s0's log")
        finally:
            self.ensure_running(1)
        # With share 1 back the file reads, whichever shares are tried first.
        out = os.path.join(self.tmp, "good")
        g = self.get(cap, out)
        self.assertEqual(g.returncode, 0, g.stderr)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data)

    def test_server_killed_mid_upload(self):
        # Five servers: one is killed once the upload is streaming; the other
        # four still give happiness 3.
        run_cli("servers", "add", self.nurls[4], "--nickname", "s4", node_dir=self.client.dir, check=True)
        try:
            data = random.Random(11).randbytes(8 * SEG + 1)
            conn = ControlConn(self.client.dir, timeout=120)
            self.send_put(conn, data)
            killed = False
            while True:
                frame = conn.read_frame()
                self.assertIsNotNone(frame)
                if "progress" in frame:
                    if not killed and frame["progress"].get("phase") == "uploading" and frame["progress"]["done"] > 0:
                        self.servers[4].proc.send_signal(signal.SIGKILL)
                        killed = True
                    continue
                break
            conn.close()
            self.assertTrue(killed, frame)
            self.assertIn("result", frame, frame)
            r = frame["result"]
            self.assertGreaterEqual(r["happiness"], HAPPY)
            out = os.path.join(self.tmp, "big-out")
            g = self.get(r["cap"], out)
            self.assertEqual(g.returncode, 0, g.stderr)
            with open(out, "rb") as f:
                self.assertTrue(f.read() == data)
        finally:
            self.servers[4].proc.wait()
            self.servers[4].proc = None
            self.servers[4].log.close()
            self.servers[4].start()
            run_cli("servers", "remove", "s4", node_dir=self.client.dir, check=True)

    def test_daemon_stops_cleanly_mid_put(self):
        # SIGTERM while a put streams: the task stops, its clients close, and
        # cairnd exits 0 within its shutdown deadline; the task's record says
        # it did not succeed.
        data = random.Random(13).randbytes(8 * SEG + 1)
        conn = ControlConn(self.client.dir, timeout=60)
        self.send_put(conn, data)
        while True:
            frame = conn.read_frame()
            self.assertIsNotNone(frame)
            if "progress" not in frame:
                self.fail(f"the put ended before it could be interrupted: {frame}")
            if frame["progress"].get("phase") == "uploading" and frame["progress"]["done"] > 0:
                break
        conn.close()
        self.assertEqual(self.client.stop(), 0, self.client.read_log())
        self.client.start()
        tasks = json.loads(run_cli("--json", "tasks", "list", node_dir=self.client.dir, check=True).stdout)["tasks"]
        puts = [t for t in tasks if t["kind"] == "put"]
        self.assertTrue(puts)
        self.assertNotEqual(puts[0]["state"], "succeeded", puts[0])

    def test_get_by_alias(self):
        data = random.Random(77).randbytes(70_000)
        _, r = self.put(self.file(data), "--convergence", CONVERGENCE)
        run_cli("alias", "add", "holiday", r["cap"], node_dir=self.client.dir, check=True)
        out = os.path.join(self.tmp, "by-alias")
        g = self.get("holiday", out)
        self.assertEqual(g.returncode, 0, g.stderr)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data)
        missing = self.get("no-such-alias", out)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("not_found", missing.stdout + missing.stderr)
        # An alias naming a mutable cap is refused once read (inside the task).
        ssk = "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq"
        run_cli("alias", "add", "notes", ssk, node_dir=self.client.dir, check=True)
        wrong = self.get("notes", out)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("bad_cap", wrong.stdout + wrong.stderr)

    def test_the_daemon_opens_no_client_path(self):
        # put and get carry the file in data frames; a path is refused.
        conn = ControlConn(self.client.dir)
        try:
            frame = conn.call("put", {"path": "/etc/hostname"}, id=1)
            self.assertEqual(frame["error"]["code"], "invalid_argument", frame)
            frame = conn.call("get", {"cap": "URI:LIT:nbswy3dp", "path": os.path.join(self.tmp, "x")}, id=2)
            self.assertEqual(frame["error"]["code"], "invalid_argument", frame)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))
            # A put whose input is shorter than its declared size fails and
            # leaves no spool file behind.
            conn.send({"v": 1, "id": 3, "method": "put", "params": {"size": 100}})
            conn.send_data(3, 0, b"x" * 10, eof=True)
            frame = conn.read_final()
            self.assertEqual(frame["error"]["code"], "invalid_argument", frame)
        finally:
            conn.close()
        spool = os.path.join(self.client.dir, "tmp")
        wait_for(lambda: os.listdir(spool) == [], what="an empty spool directory")

    def test_usage_errors(self):
        self.assertEqual(run_cli("put", node_dir=self.client.dir).returncode, 2)
        self.assertEqual(run_cli("get", "URI:SSK:aaaa:bbbb", "-o", "/tmp/x", node_dir=self.client.dir).returncode, 7)
        missing = run_cli("put", os.path.join(self.tmp, "no-such-file"), node_dir=self.client.dir)
        self.assertEqual(missing.returncode, 3, missing.stderr)
        self.assertIn("usage", run_cli("put", "--help").stdout)
        self.assertIn("usage", run_cli("get", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
