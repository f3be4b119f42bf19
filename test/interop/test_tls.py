"""cairn's TLS server against Python's ssl module (OpenSSL), as a Tahoe-LAFS
client would connect: no CA, no hostname, the certificate accepted only if
its SPKI hash equals the pin."""
import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary  # noqa: E402


def der_items(data, offset, end):
    """Yields (tag, header_start, content_start, content_end) of DER items."""
    while offset < end:
        tag = data[offset]
        length = data[offset + 1]
        start = offset + 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[start:start + n], "big")
            start += n
        yield tag, offset, start, start + length
        offset = start + length


def spki_of(cert_der):
    """The DER SubjectPublicKeyInfo of an X.509 certificate, by walking its DER."""
    _, _, c0, c1 = next(der_items(cert_der, 0, len(cert_der)))          # Certificate
    _, _, t0, t1 = next(der_items(cert_der, c0, c1))                     # TBSCertificate
    fields = list(der_items(cert_der, t0, t1))
    if fields[0][0] == 0xA0:                                              # [0] version
        fields = fields[1:]
    # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    _, h, _, e = fields[5]
    return cert_der[h:e]


def spki_hash(cert_der):
    return base64.urlsafe_b64encode(hashlib.sha256(spki_of(cert_der)).digest()).decode().rstrip("=")


class TlsInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node("tls")
        cls.key = os.path.join(cls.node.dir, "private", "node.key")
        cls.cert = os.path.join(cls.node.dir, "private", "node.crt")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def run_echo(self, *extra):
        proc = subprocess.Popen([binary("tools/tls_echo"), self.key, self.cert, "--seconds", "20", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        port = int(proc.stdout.readline())
        return proc, port

    def connect(self, port, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinning is checked below, as Tahoe's client does
        if ciphers:
            ctx.set_ciphers(ciphers)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        return ctx.wrap_socket(raw)

    def test_python_ssl_client_pins_and_echoes(self):
        proc, port = self.run_echo()
        try:
            with self.connect(port) as s:
                cert = s.getpeercert(binary_form=True)
                with open(self.cert) as f:
                    self.assertEqual(cert, ssl.PEM_cert_to_DER_cert(f.read()), "exactly our one certificate")
                self.assertEqual(len(spki_hash(cert)), 43)
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertIn("AES128-GCM", s.cipher()[0])
                payload = os.urandom(200000)
                s.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "server closed early")
                    got += chunk
                self.assertEqual(got, payload)
                s.unwrap()
            self.assertEqual(proc.wait(timeout=20), 0, proc.stderr.read())
        finally:
            proc.kill()
            proc.wait()

    def test_chacha_preference(self):
        proc, port = self.run_echo("--chacha")
        try:
            with self.connect(port) as s:
                self.assertIn("CHACHA20", s.cipher()[0])
                s.sendall(b"x")
                self.assertEqual(s.recv(1), b"x")
        finally:
            proc.kill()
            proc.wait()

    def test_spki_hash_matches_cairns_node_id(self):
        # cairn init printed the node id, which is the SPKI hash cairn computed.
        node = Node("tls2")
        try:
            out = subprocess.run([binary("cairn"), "--json", "init", os.path.join(node.tmp, "n")],
                                 capture_output=True, text=True, check=True)
            node_id = json.loads(out.stdout)["node_id"]
            with open(os.path.join(node.tmp, "n", "private", "node.crt")) as f:
                der = ssl.PEM_cert_to_DER_cert(f.read())
            self.assertEqual(spki_hash(der), node_id)
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
