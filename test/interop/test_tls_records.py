"""cairn's own TLS 1.2 record layer (src/tls/own_records.cc) against Python's
ssl module (OpenSSL, which we did not write), in both roles and in each
AEAD suite: a cairn server (test/tools/tls_peer) and an OpenSSL client, an
OpenSSL server and a cairn client. Transfers from 0 bytes to 64 MiB; each
side checks every byte; close_notify both ways (OpenSSL is told not to
accept a bare TCP close as the end)."""
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary  # noqa: E402
from test_tls import spki_hash  # noqa: E402

MIB = 1024 * 1024
SUITES = {
    "aes-128-gcm": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "aes-256-gcm": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "chacha20-poly1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}


def pattern(n):
    """What tls_peer's client sends: byte i is i % 251 (a period that no
    record boundary shares, so a lost, doubled or reordered record shows)."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def recv_exactly(sock, n):
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(min(1 << 20, n - got))
        if not chunk:
            raise AssertionError(f"the peer closed after {got} of {n} bytes")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class TlsRecordsInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node("tlsrec")
        cls.key = os.path.join(cls.node.dir, "private", "node.key")
        cls.cert = os.path.join(cls.node.dir, "private", "node.crt")
        with open(cls.cert) as f:
            cls.pin = spki_hash(ssl.PEM_cert_to_DER_cert(f.read()))

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    # --- cairn server, OpenSSL client ----------------------------------------------

    def start_cairn_server(self, *extra):
        proc = subprocess.Popen([binary("tools/tls_peer"), "server", self.key, self.cert, "--echo", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line.strip():
            proc.kill()
            self.fail("tls_peer server did not start: " + proc.stderr.read())
        return proc, int(line)

    def finish(self, proc):
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        return json.loads(out.strip().splitlines()[-1])

    def python_client(self, port, suite):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the pin is checked below
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(SUITES[suite])
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        s = ctx.wrap_socket(raw, suppress_ragged_eofs=False)
        self.assertEqual(spki_hash(s.getpeercert(binary_form=True)), self.pin)
        self.assertEqual(s.cipher()[0], SUITES[suite])
        return s

    def echo_through_cairn(self, suite, size, own="1"):
        proc, port = self.start_cairn_server("--own", own)
        try:
            data = os.urandom(size)
            with self.python_client(port, suite) as s:
                # A slice at a time, each read back before the next is sent
                # (one SSL object must not be read and written from two
                # threads at once).
                parts = []
                try:
                    for at in range(0, size, MIB):
                        s.sendall(data[at:at + MIB])
                        parts.append(recv_exactly(s, len(data[at:at + MIB])))
                except (OSError, AssertionError) as e:
                    out, err = proc.communicate(timeout=60)
                    raise AssertionError(f"{suite}, {size} bytes: {e!r}; tls_peer said: {out} {err}") from e
                got = b"".join(parts)
                self.assertTrue(got == data, f"{suite}: the echo of {size} bytes differs")
                # close_notify from OpenSSL; unwrap() returns only once
                # cairn's close_notify came back (a bare close would raise).
                s.unwrap()
            result = self.finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(result["layer"], "cairn" if own == "1" else "mbedtls")
        self.assertEqual(result["bytes"], size)
        self.assertEqual(result["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(result["end"], "ok")

    def test_cairn_server_small_transfers_each_suite(self):
        for suite in SUITES:
            for size in (0, 1, 16384, 16385, MIB + 1):
                with self.subTest(suite=suite, size=size):
                    self.echo_through_cairn(suite, size)

    def test_cairn_server_64_mib_each_suite(self):
        for suite in SUITES:
            with self.subTest(suite=suite):
                self.echo_through_cairn(suite, 64 * MIB)

    def test_cairn_server_with_own_records_off(self):
        self.echo_through_cairn("aes-128-gcm", MIB, own="0")

    # --- OpenSSL server, cairn client ----------------------------------------------

    def python_server(self, suite, expect, answer, close_first):
        """Serves one connection on a thread: reads `expect` bytes of the
        pattern, sends `answer`, and ends with close_notify (or, when the
        client closes first, reads to its close_notify)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(SUITES[suite])
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(60)
        outcome = {}

        def serve():
            try:
                raw, _ = listener.accept()
                raw.settimeout(60)
                with ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False) as s:
                    outcome["cipher"] = s.cipher()[0]
                    if close_first:
                        got = bytearray()
                        while True:
                            chunk = s.recv(1 << 20)  # b"" only at close_notify here
                            if not chunk:
                                break
                            got += chunk
                        outcome["received_ok"] = bytes(got) == pattern(expect)
                        outcome["received"] = len(got)
                        return
                    got = recv_exactly(s, expect)
                    outcome["received_ok"] = got == pattern(expect)
                    outcome["received"] = len(got)
                    s.sendall(answer)
                    s.unwrap()  # returns once cairn answered the close_notify
                    outcome["closed"] = True
            except Exception as e:  # reported by the test below
                outcome["error"] = repr(e)
            finally:
                listener.close()

        thread = threading.Thread(target=serve)
        thread.start()
        return listener.getsockname()[1], thread, outcome

    def cairn_client(self, suite, send, answer_size, close_first=False, own="1"):
        answer = os.urandom(answer_size)
        port, thread, outcome = self.python_server(suite, send, answer, close_first)
        args = [binary("tools/tls_peer"), "client", str(port), self.pin, "--own", own, "--send", str(send)]
        if close_first:
            args.append("--close-first")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        thread.join(60)
        self.assertNotIn("error", outcome, outcome.get("error"))
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(outcome["cipher"], SUITES[suite])
        self.assertEqual(outcome["received"], send)
        self.assertTrue(outcome["received_ok"], f"{suite}: OpenSSL received other bytes than cairn sent")
        self.assertEqual(result["layer"], "cairn" if own == "1" else "mbedtls")
        self.assertEqual(result["end"], "ok")
        if not close_first:
            self.assertTrue(outcome.get("closed"))
            self.assertEqual(result["bytes"], answer_size)
            self.assertEqual(result["sha256"], hashlib.sha256(answer).hexdigest())

    def test_cairn_client_each_suite(self):
        for suite in SUITES:
            for send, answer in ((0, 0), (1, 16385), (MIB + 3, 17)):
                with self.subTest(suite=suite, send=send, answer=answer):
                    self.cairn_client(suite, send, answer)

    def test_cairn_client_64_mib_each_way(self):
        for suite in SUITES:
            with self.subTest(suite=suite):
                self.cairn_client(suite, 64 * MIB, 64 * MIB)

    def test_cairn_client_closes_first(self):
        for suite in SUITES:
            with self.subTest(suite=suite):
                self.cairn_client(suite, 3 * MIB, 0, close_first=True)

    def test_cairn_client_with_own_records_off(self):
        self.cairn_client("chacha20-poly1305", MIB, MIB, own="0")


if __name__ == "__main__":
    unittest.main()
