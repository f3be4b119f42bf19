"""cairnd and the control socket, against real processes on this machine."""
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import time
import unittest

from pylib.cairntest import ControlConn, Node, binary, run_cli, wait_for


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.node = Node(config_patch={"limits": {"control_frame_bytes": 4096, "control_max_clients": 4,
                                                  "control_idle_ms": 500}})
        self.node.start()

    def tearDown(self):
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0, "cairnd did not exit 0 (ASan/LSan report or unclean shutdown?)")

    def test_status_over_socket(self):
        c = self.node.control()
        hello = c.call("hello", {"client": "test"}, id="h")
        self.assertEqual(hello["id"], "h")
        self.assertIn(1, hello["result"]["protocol"])
        self.assertIn("status", hello["result"]["methods"])
        reply = c.call("status", id=2)
        self.assertEqual(reply["id"], 2)
        r = reply["result"]
        for key in ("version", "node_id", "nickname", "board", "uptime_s", "store_path", "listening", "rss", "pid"):
            self.assertIn(key, r)
        self.assertEqual(r["nickname"], "node")
        self.assertEqual(r["board"], "host")
        self.assertEqual(r["pid"], self.node.proc.pid)
        self.assertEqual(len(r["node_id"]), 43)
        self.assertTrue(r["store_path"].endswith("/store"))
        self.assertGreater(r["rss"]["anon_bytes"], 0)
        self.assertGreater(r["rss"]["file_bytes"], 0)
        self.assertTrue(any(l["kind"] == "control" for l in r["listening"]))
        c.close()

    def test_node_id_is_the_certificate_spki_hash(self):
        # Independent check with the openssl tool: SHA-256 over the DER SubjectPublicKeyInfo.
        import base64
        import hashlib
        cert = os.path.join(self.node.dir, "private", "node.crt")
        pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True, check=True)
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.stdout,
                             capture_output=True, check=True).stdout
        expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
        c = self.node.control()
        self.assertEqual(c.call("status")["result"]["node_id"], expected)
        c.close()

    def test_cli_status_human_and_json(self):
        human = run_cli("status", node_dir=self.node.dir)
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("cairnd ", human.stdout)
        self.assertIn("control", human.stdout)
        nurl = run_cli("nurl", node_dir=self.node.dir).stdout.strip()
        self.assertTrue(nurl.startswith("pb://"), nurl)
        self.assertIn("  nurl       " + nurl + "\n", human.stdout)
        js = run_cli("--json", "status", node_dir=self.node.dir)
        self.assertEqual(js.returncode, 0, js.stderr)
        self.assertEqual(json.loads(js.stdout)["nickname"], "node")
        self.assertEqual(json.loads(js.stdout)["nurl"], nurl)

    def test_metrics_are_valid_openmetrics(self):
        import re
        out = run_cli("metrics", node_dir=self.node.dir)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[-1], "# EOF")
        sample = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$')
        types = {}
        for line in lines[:-1]:
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                self.assertNotIn(name, types, "a family is declared once")
                types[name] = kind
            elif line.startswith("# HELP "):
                continue
            else:
                m = sample.match(line)
                self.assertIsNotNone(m, line)
                name = m.group(1)
                family = name[:-6] if name.endswith("_total") else name
                self.assertIn(family, types, line)
                self.assertEqual(types[family] == "counter", name.endswith("_total"), line)
        for family in ("cairn_loop_max_busy_seconds", "cairn_resident_bytes", "cairn_control_requests",
                       "cairn_tasks"):
            self.assertIn(family, types)

    def test_socket_and_private_permissions(self):
        sock = os.path.join(self.node.dir, "control.sock")
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.node.dir, "private")).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.node.dir, "private", "node.key")).st_mode), 0o600)

    def test_another_users_connection_is_refused(self):
        # The socket's mode keeps other users out; past it (made 0666 here),
        # the daemon's SO_PEERCRED check refuses any uid but its own and
        # root's: it sends a permission_denied error frame at once and closes.
        self.assertEqual(os.geteuid(), 0, "this test runs as root to act as another user")
        sock = os.path.join(self.node.dir, "control.sock")
        probe = (
            "import json, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(sys.argv[1])\n"
            "except PermissionError:\n"
            "    print('EACCES'); sys.exit(0)\n"
            "data = b''\n"
            "while True:\n"
            "    chunk = s.recv(65536)\n"
            "    if not chunk: break\n"
            "    data += chunk\n"
            "print(data.decode())\n")

        def as_nobody():
            return subprocess.run(["/usr/bin/python3", "-c", probe, sock], capture_output=True, text=True,
                                  timeout=30, preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))

        # Let uid 65534 reach the socket's directory; the socket stays 0600.
        path, opened = self.node.dir, []
        while path not in ("/", "/tmp"):
            opened.append((path, stat.S_IMODE(os.stat(path).st_mode)))
            os.chmod(path, opened[-1][1] | 0o011)
            path = os.path.dirname(path)
        try:
            out = as_nobody()
            self.assertEqual(out.stdout.strip(), "EACCES", out.stderr)
            os.chmod(sock, 0o666)
            out = as_nobody()
            self.assertEqual(out.returncode, 0, out.stderr)
            frames = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            self.assertEqual(len(frames), 1, out.stdout)
            self.assertEqual(frames[0]["error"]["code"], "permission_denied", frames[0])
            self.assertIn("uid 65534", frames[0]["error"]["message"])
        finally:
            os.chmod(sock, 0o600)
            for path, mode in opened:
                os.chmod(path, mode)
        # The owner still gets in.
        self.assertIn("result", self.node.control().call("status"))

    def test_malformed_frames_get_errors_and_the_connection_goes_on(self):
        c = self.node.control()
        cases = [
            (b"{not json\n", None, "bad_frame"),
            (b"[1,2,3]\n", None, "bad_frame"),
            (b'{"id":1}\n', 1, "invalid_argument"),
            (b'{"method":"status"}\n', None, "invalid_argument"),
            (b'{"id":{"x":1},"method":"status"}\n', None, "invalid_argument"),
            (b'{"id":2,"method":"nope"}\n', 2, "unknown_method"),
            (b'{"id":3,"v":9,"method":"status"}\n', 3, "unsupported_version"),
            (b'{"id":4,"method":"status","extra":1}\n', 4, "invalid_argument"),
            (b'{"id":5,"method":"status","params":{"x":1}}\n', 5, "invalid_argument"),
            (b'{"id":6,"method":"status","params":[1]}\n', 6, "invalid_argument"),
            (b'{"id":7,"method":"status"} trailing\n', None, "bad_frame"),
            (b'{"id":8,"method":"status","method":"hello"}\n', None, "invalid_argument"),
            (b'{"id":9,"method":"hello","params":{"client":"a","client":"b"}}\n', 9, "invalid_argument"),
        ]
        for raw, want_id, code in cases:
            c.send_raw(raw)
            frame = c.read_frame()
            self.assertIsNotNone(frame, raw)
            self.assertEqual(frame.get("id"), want_id, raw)
            self.assertEqual(frame["error"]["code"], code, raw)
            self.assertIsInstance(frame["error"]["message"], str)
            self.assertFalse(frame["error"]["retryable"])
        self.assertIn("result", c.call("status", id=99))
        c.close()

    def test_pipelined_requests_are_answered_in_order(self):
        c = self.node.control()
        c.send_raw(b"".join(json.dumps({"id": i, "method": "status"}).encode() + b"\n" for i in range(50)))
        ids = [c.read_frame()["id"] for _ in range(50)]
        self.assertEqual(ids, list(range(50)))
        c.close()

    def test_oversized_line_is_refused_and_closed(self):
        c = self.node.control()
        c.send_raw(b'{"id":1,"method":"status","pad":"' + b"x" * 10000)
        frame = c.read_frame()
        self.assertEqual(frame["error"]["code"], "frame_too_large")
        self.assertIsNone(frame["id"])
        self.assertIsNone(c.read_frame(), "connection should be closed after an oversized frame")
        c.close()
        self.assertTrue(self.node.answers())

    def test_client_disconnects_mid_request(self):
        for _ in range(20):
            c = self.node.control()
            c.send_raw(b'{"id":1,"meth')
            c.close()
            c = self.node.control()
            c.send_raw(b'{"id":1,"method":"status"}\n')  # goes away before the answer
            c.close()
        # The limit is 4 connections: slots free as the daemon sees each close.
        wait_for(self.node.answers, what="cairnd to answer after abandoned requests")
        self.assertIsNone(self.node.proc.poll())

    def test_idle_mid_frame_connection_is_closed(self):
        c = self.node.control()
        c.send_raw(b'{"id":1,')
        start = time.monotonic()
        self.assertIsNone(c.read_frame())
        self.assertLess(time.monotonic() - start, 5)
        c.close()

    def test_connection_limit(self):
        def admitted():
            # Earlier probes' closes may not have reached the daemon yet.
            c = self.node.control()
            try:
                if "result" in c.call("status"):
                    return c
            except OSError:
                pass
            c.close()
            return None

        conns = [wait_for(admitted, what="a control connection slot") for _ in range(4)]
        extra = self.node.control()
        frame = extra.read_frame()
        self.assertEqual(frame["error"]["code"], "busy")
        self.assertTrue(frame["error"]["retryable"])
        extra.close()
        for c in conns:
            c.close()
        wait_for(self.node.answers, what="a free connection slot")

    def test_second_daemon_on_the_same_directory_exits_at_once(self):
        start = time.monotonic()
        proc = subprocess.run([binary("cairnd"), self.node.dir], capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 4)
        self.assertIn("in use by another cairnd", proc.stderr)
        self.assertIn(str(self.node.proc.pid), proc.stderr)
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(self.node.answers(), "the first cairnd must be unaffected")


class LifecycleTest(unittest.TestCase):
    def test_sigterm_exits_zero_and_the_node_reopens(self):
        node = Node()
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
                node.start()
                c = node.control()
                c.send_raw(b'{"id":1,"method":"sta')  # a client mid-frame must not block shutdown
                start = time.monotonic()
                self.assertEqual(node.stop(sig), 0, node.read_log())
                self.assertLess(time.monotonic() - start, 5)
                c.close()
            self.assertIn("stopped cleanly", node.read_log())
        finally:
            node.cleanup()

    def test_tls_own_records_limit_is_the_switch(self):
        """limits.tls_own_records picks who protects the storage listener's
        records (the field's kill switch); CAIRN_TLS_OWN_RECORDS overrides
        it, so the expectation follows the environment the suite runs in."""
        forced = os.environ.get("CAIRN_TLS_OWN_RECORDS")
        for limit in (1, 0):
            node = Node(config_patch={"limits": {"tls_own_records": limit}})
            try:
                node.start()
                c = node.control()
                status = c.call("status")["result"]
                c.close()
                storage = [l for l in status["listening"] if l["kind"] == "storage"]
                self.assertEqual(len(storage), 1, status["listening"])
                on = forced == "1" if forced in ("0", "1") else limit == 1
                self.assertEqual(storage[0]["tls_records"], "cairn" if on else "mbedtls", (limit, forced))
                self.assertEqual(node.stop(), 0, node.read_log())
            finally:
                node.cleanup()

    def test_tls_suite_preference_limit_and_measurement(self):
        """limits.tls_prefer_chacha: 0 offers AES-128-GCM first, 1
        ChaCha20-Poly1305, 2 (the host's default) whichever sealed faster in
        the measurement at start, which status reports. A client offering
        ChaCha20-Poly1305 first gets the server's choice (the server's order
        decides), so limit 0 shows that the order is the server's."""
        ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
        for limit in (0, 1, 2):
            node = Node(config_patch={"limits": {"tls_prefer_chacha": limit}})
            try:
                node.start()
                c = node.control()
                status = c.call("status")["result"]
                c.close()
                storage = [l for l in status["listening"] if l["kind"] == "storage"][0]
                if limit == 2:
                    self.assertEqual(storage["tls_first_suite_by"], "measured", storage)
                    aes = storage["tls_aes_128_gcm_ns_per_byte"]
                    chacha = storage["tls_chacha20_poly1305_ns_per_byte"]
                    self.assertGreater(aes, 0, storage)
                    self.assertGreater(chacha, 0, storage)
                    want = "chacha20-poly1305" if chacha < aes else "aes-128-gcm"
                else:
                    self.assertEqual(storage["tls_first_suite_by"], "limit", storage)
                    want = "chacha20-poly1305" if limit == 1 else "aes-128-gcm"
                self.assertEqual(storage["tls_first_suite"], want, storage)
                host, port = storage["address"].rsplit(":", 1)
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ciphers(ciphers)
                with socket.create_connection((host, int(port)), timeout=10) as raw:
                    with ctx.wrap_socket(raw) as s:
                        got = s.cipher()[0]
                self.assertIn("CHACHA20" if want == "chacha20-poly1305" else "AES128-GCM", got, (limit, storage))
                self.assertEqual(node.stop(), 0, node.read_log())
            finally:
                node.cleanup()

    def test_unopenable_store_stops_the_start(self):
        node = Node()
        try:
            os.chmod(os.path.join(node.dir, "store"), 0o000) if os.geteuid() else \
                os.rename(os.path.join(node.dir, "store"), os.path.join(node.tmp, "moved"))
            proc = subprocess.run([binary("cairnd"), node.dir], capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("store", proc.stderr, f"rc={proc.returncode} stdout={proc.stdout!r}")
            self.assertFalse(os.path.exists(os.path.join(node.dir, "control.sock")))
        finally:
            node.cleanup()

    def test_syslog_sink_takes_the_log_off_stderr(self):
        node = Node(config_patch={"log_sink": "syslog"})
        try:
            node.start()
            self.assertEqual(node.stop(), 0)
            self.assertNotIn("stopped cleanly", node.read_log())
        finally:
            node.cleanup()

    def test_unknown_config_key_is_rejected_with_its_name(self):
        node = Node(config_patch={"storage": {"prot": 1}})
        try:
            proc = subprocess.run([binary("cairnd"), node.dir], capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 78)
            self.assertIn('"storage.prot"', proc.stderr)
        finally:
            node.cleanup()

    def test_not_a_node_directory(self):
        proc = subprocess.run([binary("cairnd"), "/nonexistent-cairn-dir"], capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 78)
        self.assertIn("cairn init", proc.stderr)

    def test_cli_without_daemon_says_unreachable(self):
        node = Node()
        try:
            proc = run_cli("status", node_dir=node.dir)
            self.assertEqual(proc.returncode, 69)
            self.assertIn("no cairnd is answering", proc.stderr)
        finally:
            node.cleanup()


class InitTest(unittest.TestCase):
    def test_init_refuses_an_existing_node_directory(self):
        node = Node()
        try:
            with open(os.path.join(node.dir, "cairn.json"), "rb") as f:
                before = f.read()
            proc = run_cli("init", node.dir)
            self.assertEqual(proc.returncode, 4)
            self.assertIn("not empty", proc.stderr)
            with open(os.path.join(node.dir, "cairn.json"), "rb") as f:
                self.assertEqual(f.read(), before)
            # A plain file is refused too, and an empty directory is accepted.
            path = os.path.join(node.tmp, "file")
            open(path, "w").close()
            self.assertEqual(run_cli("init", path).returncode, 4)
            empty = os.path.join(node.tmp, "empty")
            os.mkdir(empty)
            self.assertEqual(run_cli("init", empty).returncode, 0)
            self.assertTrue(os.path.exists(os.path.join(empty, "cairn.json")))
            self.assertFalse([n for n in os.listdir(node.tmp) if ".init-" in n], "temporary directory left behind")
        finally:
            node.cleanup()

    def test_init_options_and_errors(self):
        node = Node(init_args=("--board", "host", "--listen", "127.0.0.1", "--host", "nas.example"))
        try:
            with open(os.path.join(node.dir, "cairn.json")) as f:
                cfg = json.load(f)
            self.assertEqual(cfg["storage"]["host"], "nas.example")
            self.assertEqual(cfg["storage"]["port"], node.port)
            bad = run_cli("init", os.path.join(node.tmp, "x"), "--board", "toaster")
            self.assertEqual(bad.returncode, 2)
            self.assertIn("unknown board", bad.stderr)
            self.assertEqual(run_cli("init", os.path.join(node.tmp, "y"), "--port", "0").returncode, 2)
            self.assertEqual(run_cli("init").returncode, 2)
            nested = os.path.join(node.tmp, "a", "b", "c")
            self.assertEqual(run_cli("init", nested).returncode, 0)
            self.assertTrue(os.path.exists(os.path.join(nested, "cairn.json")))
            js = run_cli("--json", "init", os.path.join(node.tmp, "z"))
            self.assertEqual(js.returncode, 0)
            self.assertEqual(len(json.loads(js.stdout)["node_id"]), 43)
        finally:
            node.cleanup()

    def test_nurl(self):
        node = Node()
        try:
            out = run_cli("nurl", node_dir=node.dir)
            self.assertEqual(out.returncode, 0, out.stderr)
            nurl = out.stdout.strip()
            with open(os.path.join(node.dir, "private", "swissnum")) as f:
                swissnum = f.read().strip()
            import re
            m = re.fullmatch(r"pb://([A-Za-z0-9_-]{43})@127\.0\.0\.1:(\d+)/([A-Za-z0-9_-]+)#v=1", nurl)
            self.assertIsNotNone(m, nurl)
            self.assertEqual(int(m.group(2)), node.port)
            self.assertEqual(m.group(3), swissnum)
            js = json.loads(run_cli("--json", "nurl", node_dir=node.dir).stdout)
            self.assertEqual(js["nurl"], nurl)
            self.assertEqual(js["spki_hash"], m.group(1))
            self.assertEqual(run_cli("nurl", node_dir=os.path.join(node.tmp, "nope")).returncode, 3)
        finally:
            node.cleanup()

    def test_help(self):
        top = run_cli("--help")
        self.assertEqual(top.returncode, 0)
        self.assertIn("init", top.stdout)
        self.assertIn("status", top.stdout)
        self.assertEqual(run_cli("init", "--help").returncode, 0)
        self.assertEqual(run_cli("frobnicate").returncode, 2)


if __name__ == "__main__":
    unittest.main()
