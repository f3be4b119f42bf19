"""cairn's HTTP/1.1 server (test/tools/http_echo) against Python's http.client
over the ssl module, as a Tahoe-LAFS client talks to a storage node:
keep-alive, chunked and large uploads, a large streamed download, and the
limits answered with the right status codes."""
import hashlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary  # noqa: E402


def pattern(n):
    return bytes(i % 251 for i in range(n))


class HttpInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node("http")
        key = os.path.join(cls.node.dir, "private", "node.key")
        cls.cert = os.path.join(cls.node.dir, "private", "node.crt")
        cls.proc = subprocess.Popen(
            [binary("tools/http_echo"), key, cls.cert, "--seconds", "120", "--idle-ms", "2000",
             "--request-ms", "1000", "--header-bytes", "4096", "--max-headers", "16"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cls.port = int(cls.proc.stdout.readline())
        with open(cls.cert) as f:
            cls.cert_der = ssl.PEM_cert_to_DER_cert(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()
        cls.proc.wait()
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        cls.node.cleanup()

    def context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinned below by comparing the certificate
        return ctx

    def conn(self):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20, context=self.context())
        c.connect()
        self.assertEqual(c.sock.getpeercert(binary_form=True), self.cert_der)
        return c

    def raw(self):
        """A TLS socket for requests http.client will not send."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        return self.context().wrap_socket(s)

    def read_all(self, s):
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, ssl.SSLEOFError):
            pass
        return out

    def test_keep_alive_many_requests_one_connection(self):
        c = self.conn()
        sock = c.sock
        for _ in range(50):
            c.request("GET", "/hello", headers={"Accept": "application/cbor"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"hello\n")
            self.assertIs(c.sock, sock, "the connection was kept alive")
        c.close()

    def test_head_has_no_body(self):
        c = self.conn()
        c.request("HEAD", "/hello")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Length"), "6")
        self.assertEqual(r.read(), b"")
        c.request("GET", "/hello")
        self.assertEqual(c.getresponse().read(), b"hello\n")
        c.close()

    def test_content_length_upload(self):
        body = os.urandom(3 * 1000 * 1000)
        c = self.conn()
        c.request("PUT", "/upload?max=4000000&pause=1", body=body)
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.read().decode(), f"{len(body)} {hashlib.sha256(body).hexdigest()}\n")
        c.close()

    def test_chunked_upload(self):
        pieces = [os.urandom(n) for n in (1, 1000, 70000, 5, 300000)]
        c = self.conn()
        c.request("POST", "/upload?max=1000000", body=iter(pieces), encode_chunked=True)
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        whole = b"".join(pieces)
        self.assertEqual(r.read().decode(), f"{len(whole)} {hashlib.sha256(whole).hexdigest()}\n")
        # Still usable afterwards.
        c.request("GET", "/hello")
        self.assertEqual(c.getresponse().read(), b"hello\n")
        c.close()

    def test_large_streamed_download(self):
        n = 20 * 1000 * 1000 + 7
        for length in ("0", "1"):
            # A connection each: reading and hashing 20 MB can take longer
            # than the test server's 2 s keep-alive idle timeout on a loaded
            # machine (keep-alive is covered by the other tests).
            c = self.conn()
            c.request("GET", f"/stream?bytes={n}&length={length}")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            if length == "1":
                self.assertEqual(r.getheader("Content-Length"), str(n))
            else:
                self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
            got = r.read()
            self.assertEqual(len(got), n)
            self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(pattern(n)).digest())
            c.close()

    def test_body_over_the_limit_is_413_before_the_body(self):
        c = self.conn()
        c.putrequest("PUT", "/upload?max=1000")
        c.putheader("Content-Length", "1001")
        c.endheaders()  # the body is never sent: the answer comes first
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(r.getheader("Connection"), "close")
        c.close()

    def test_chunked_body_over_the_limit_is_413(self):
        s = self.raw()
        s.sendall(b"POST /upload?max=1000 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3e8\r\n" + b"a" * 1000 + b"\r\n1\r\nb\r\n0\r\n\r\n")
        self.assertTrue(self.read_all(s).startswith(b"HTTP/1.1 413 "))
        s.close()

    def test_length_required_is_411(self):
        s = self.raw()
        s.sendall(b"PUT /need-length HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(self.read_all(s).startswith(b"HTTP/1.1 411 "))
        s.close()

    def test_bad_requests(self):
        cases = [
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 5000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(20)) + b"\r\n", 431),
        ]
        for request, status in cases:
            with self.subTest(request=request[:60], status=status):
                s = self.raw()
                s.sendall(request)
                reply = self.read_all(s)
                self.assertTrue(reply.startswith(b"HTTP/1.1 %d " % status), reply[:80])
                self.assertIn(b"\r\nConnection: close\r\n", reply)
                s.close()

    def test_slow_head_is_408(self):
        s = self.raw()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        self.assertTrue(self.read_all(s).startswith(b"HTTP/1.1 408 "))
        s.close()

    def test_idle_connection_is_closed_quietly(self):
        s = self.raw()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = self.read_all(s)  # the response, then the close after the idle timeout
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "))
        self.assertTrue(reply.endswith(b"hello\n"), "no 408 on an idle keep-alive connection")
        s.close()

    def test_http10_closes_unless_keep_alive(self):
        s = self.raw()
        s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        reply = self.read_all(s)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "))
        self.assertIn(b"\r\nConnection: close\r\n", reply)
        s.close()

    def test_pipelined_requests_answered_in_order(self):
        s = self.raw()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = self.read_all(s)
        first = reply.find(b"200 OK")
        second = reply.find(b"3 " + hashlib.sha256(b"abc").hexdigest().encode())
        third = reply.find(b"404 Not Found")
        self.assertTrue(0 <= first < second < third, reply)
        s.close()


if __name__ == "__main__":
    unittest.main()
