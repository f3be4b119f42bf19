"""A real cairnd's GBS storage server, driven by the independent Python
client in test/pylib/gbs.py (ssl + http.client + cbor2, SPKI pinning): every
endpoint, and each trap of tahoe-protocol.md section 8 that a real Tahoe-LAFS
client would trip over."""
import base64
import os
import sys
import threading
import time
import unittest

import cbor2

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, run_cli  # noqa: E402
from pylib.gbs import V1, GbsClient, GbsError  # noqa: E402


def si_of(i):
    return base64.b32encode(bytes([i]) * 16).decode().lower().rstrip("=")


RENEW, CANCEL = b"r" * 32, b"c" * 32


class GbsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node(config_patch={"limits": {"store_reserved_bytes": 0}})
        cls.node.start()
        cls.nurl = run_cli("nurl", node_dir=cls.node.dir, check=True).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        code = cls.node.stop()
        cls.node.cleanup()
        assert code == 0, code

    def setUp(self):
        self.c = GbsClient(self.nurl)

    def tearDown(self):
        self.c.close()

    def upload(self, si, shnum, data, secret=b"u" * 20, chunk=1000000):
        alloc = self.c.allocate(si, {shnum}, len(data), RENEW, CANCEL, secret)
        self.assertIn(shnum, alloc["allocated"])
        statuses = []
        for off in range(0, len(data), chunk):
            status, reply = self.c.write(si, shnum, off, data[off:off + chunk], secret)
            statuses.append(status)
        return statuses, reply

    def test_version_has_byte_string_keys_and_nothing_else(self):
        status, hdrs, body = self.c.request("GET", "/storage/v1/version")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "application/cbor")
        v = cbor2.loads(body)
        self.assertEqual(set(v), {V1, b"application-version"})
        self.assertEqual(set(v[V1]), {b"maximum-immutable-share-size", b"maximum-mutable-share-size",
                                      b"available-space"})
        self.assertIsInstance(v[b"application-version"], bytes)
        self.assertTrue(v[b"application-version"].startswith(b"cairn/"))
        self.assertGreater(v[V1][b"available-space"], 0)

    def test_immutable_upload_read_list_and_the_status_codes(self):
        si = si_of(1)
        data = os.urandom(2_500_000)
        statuses, reply = self.upload(si, 3, data)
        self.assertEqual(statuses, [200, 200, 201])   # 201 when the last chunk completes the share
        self.assertEqual(reply, {"required": []})
        # Sets carry tag 258 on the wire.
        status, _, raw = self.c.request("GET", f"/storage/v1/immutable/{si}/shares")
        self.assertIn(bytes.fromhex("d90102"), raw)
        self.assertEqual(cbor2.loads(raw), {3})
        self.assertEqual(self.c.read(si, 3, 0, 1000), data[:1000])
        self.assertEqual(self.c.read(si, 3, 2_499_000, 5000), data[2_499_000:])   # clamped at the end
        self.assertEqual(self.c.read(si, 3, 2_500_000, 10), b"")                  # 204 past the end
        for bad in ("bytes=5-", "bytes=-5", "bytes=0-1,3-4", "items=0-1", "bytes=9-2"):
            status, _, _ = self.c.request("GET", f"/storage/v1/immutable/{si}/3", headers={"Range": bad})
            self.assertEqual(status, 416, bad)
        status, _, _ = self.c.request("GET", f"/storage/v1/immutable/{si}/3")
        self.assertNotEqual(status, 200)          # never a 200 for a share read
        with self.assertRaises(GbsError) as e:
            self.c.read(si, 4, 0, 10)
        self.assertEqual(e.exception.status, 404)
        # Allocating again reports the complete share in already-have.
        again = self.c.allocate(si, {3, 4}, len(data), RENEW, CANCEL, b"v" * 20)
        self.assertEqual(again["already-have"], {3})
        self.assertEqual(again["allocated"], {4})

    def test_long_reads_are_streamed_exact_and_clamped(self):
        # Reads longer than limits.gbs_read_piece_bytes (256 KiB) are streamed
        # piece by piece; the client must see the same answers as for a
        # buffered read: exact bytes, Content-Range clamped at the end, 204
        # past it, and many at once on one server.
        si = si_of(61)
        data = os.urandom(3_000_001)
        self.upload(si, 0, data)
        for offset, size in ((0, len(data)), (1, 262_145), (100_000, 1_000_000), (2_500_000, 1_000_000),
                             (len(data) - 1, 400_000), (0, 262_144)):
            self.assertEqual(self.c.read(si, 0, offset, size), data[offset:offset + size], (offset, size))
        self.assertEqual(self.c.read(si, 0, len(data), 1_000_000), b"")
        with self.assertRaises(GbsError) as e:
            self.c.read(si, 1, 0, 1_000_000)
        self.assertEqual(e.exception.status, 404)
        errors = []

        def reader(i):
            c = GbsClient(self.nurl)
            try:
                for k in range(3):
                    off = (i * 97_531 + k * 400_000) % len(data)
                    if c.read(si, 0, off, 900_000) != data[off:off + 900_000]:
                        errors.append((i, k))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append((i, repr(exc)))
            finally:
                c.close()
        threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        # The connection stays usable after streamed answers (keep-alive).
        self.assertEqual(self.c.read(si, 0, 5, 5), data[5:10])

    def test_partial_writes_conflicts_and_abort(self):
        si, secret = si_of(2), b"s" * 20
        self.c.allocate(si, {0}, 100, RENEW, CANCEL, secret)
        status, reply = self.c.write(si, 0, 10, b"x" * 20, secret)
        self.assertEqual(status, 200)
        self.assertEqual(reply, {"required": [{"begin": 0, "end": 10}, {"begin": 30, "end": 100}]})
        self.assertEqual(self.c.write(si, 0, 10, b"x" * 20, secret)[0], 200)   # same bytes again: fine
        with self.assertRaises(GbsError) as e:
            self.c.write(si, 0, 25, b"y" * 10, secret)                         # different bytes overlap
        self.assertEqual(e.exception.status, 409)
        with self.assertRaises(GbsError) as e:
            self.c.write(si, 0, 0, b"z", b"wrong secret")
        self.assertEqual(e.exception.status, 401)
        with self.assertRaises(GbsError) as e:
            self.c.abort(si, 0, b"wrong secret")
        self.assertEqual(e.exception.status, 401)
        self.c.abort(si, 0, secret)
        self.assertEqual(self.c.list_shares(si), set())
        with self.assertRaises(GbsError) as e:
            self.c.write(si, 0, 0, b"z", secret)
        self.assertEqual(e.exception.status, 404)
        # Abort of a complete share is 405.
        self.upload(si_of(3), 1, b"q" * 500, secret)
        with self.assertRaises(GbsError) as e:
            self.c.abort(si_of(3), 1, secret)
        self.assertEqual(e.exception.status, 405)

    def test_content_range_as_the_client_sends_it(self):
        si, secret = si_of(4), b"t" * 20
        self.c.allocate(si, {0}, 10, RENEW, CANCEL, secret)
        for bad in ("bytes 0-4", "bytes 4-0/*", "lines 0-4/*"):
            status, _, _ = self.c.request("PATCH", f"/storage/v1/immutable/{si}/0", b"hello",
                                          headers={"Content-Range": bad}, secrets=[("upload-secret", secret)],
                                          cbor_body=False)
            self.assertEqual(status, 416, bad)
        status, _, _ = self.c.request("PATCH", f"/storage/v1/immutable/{si}/0", b"hello",
                                      headers={"Content-Range": "bytes 0-4/10"},
                                      secrets=[("upload-secret", secret)], cbor_body=False)
        self.assertEqual(status, 200)   # a total is accepted too

    def test_secrets_must_be_exactly_the_required_set(self):
        si = si_of(5)
        body = cbor2.dumps({"share-numbers": {0}, "allocated-size": 10})
        base = [("lease-renew-secret", RENEW), ("lease-cancel-secret", CANCEL), ("upload-secret", b"u" * 20)]
        for secrets in (base[:2], base + [("write-enabler", b"w" * 32)], [base[0], base[1], base[2], base[2][:1] +
                        (b"",)], [("lease-renew-secret", b"short"), base[1], base[2]]):
            status, _, _ = self.c.request("POST", f"/storage/v1/immutable/{si}", body, secrets=secrets)
            self.assertEqual(status, 400, secrets)
        status, _, _ = self.c.request("GET", "/storage/v1/version", secrets=[base[0]])
        self.assertEqual(status, 400)   # any secret on GET is an extra one

    def test_swissnum_media_types_routes_and_bodies(self):
        status, _, _ = self.c.request("GET", "/storage/v1/version", auth=False)
        self.assertEqual(status, 401)
        wrong = GbsClient(self.nurl)
        wrong.swissnum = "not-the-swissnum"
        self.assertEqual(wrong.request("GET", "/storage/v1/version")[0], 401)
        wrong.close()
        status, _, _ = self.c.request("GET", "/storage/v1/version", headers={"Accept": "application/json"})
        self.assertEqual(status, 406)
        si = si_of(6)
        secrets = [("lease-renew-secret", RENEW), ("lease-cancel-secret", CANCEL), ("upload-secret", b"u" * 20)]
        status, _, _ = self.c.request("POST", f"/storage/v1/immutable/{si}", b"{}", cbor_body=False,
                                      headers={"Content-Type": "application/json"}, secrets=secrets)
        self.assertEqual(status, 415)
        status, _, _ = self.c.request("POST", f"/storage/v1/immutable/{si}", b"\xa0" * 9000, secrets=secrets)
        self.assertEqual(status, 413)
        status, _, _ = self.c.request("POST", f"/storage/v1/immutable/{si}", cbor2.dumps({"share-numbers": [0],
                                      "allocated-size": 1}), secrets=secrets)
        self.assertEqual(status, 400)   # no tag 258
        self.assertEqual(self.c.request("GET", "/storage/v1/nothing")[0], 404)
        self.assertEqual(self.c.request("GET", f"/storage/v1/immutable/{si.upper()}/shares")[0], 404)
        self.assertEqual(self.c.request("DELETE", "/storage/v1/version")[0], 405)

    def test_mutable_read_test_write(self):
        si, we = si_of(7), b"w" * 32
        r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [], "write": [{"offset": 0, "data": b"hello world"}],
                                                   "new-length": None}}, [{"offset": 0, "size": 5}])
        self.assertEqual(r, {"success": True, "data": {}})    # data is a map (empty: no share existed)
        # A failing test vector: 200, success false, the current data, nothing written.
        r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [{"offset": 0, "size": 5, "specimen": b"HELLO"}],
                                                   "write": [{"offset": 0, "data": b"XXXXX"}], "new-length": None}},
                       [{"offset": 0, "size": 5}])
        self.assertEqual(r, {"success": False, "data": {0: [b"hello"]}})
        r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [{"offset": 0, "size": 5, "specimen": b"hello"}],
                                                   "write": [{"offset": 6, "data": b"there"}], "new-length": 8}},
                       [{"offset": 0, "size": 100}])
        self.assertEqual(r, {"success": True, "data": {0: [b"hello world"]}})   # read before the write
        self.assertEqual(self.c.read(si, 0, 0, 100, kind="mutable"), b"hello th")  # new-length truncated
        self.assertEqual(self.c.list_shares(si, kind="mutable"), {0})
        with self.assertRaises(GbsError) as e:
            self.c.rtw(si, b"x" * 32, RENEW, CANCEL, {0: {"test": [], "write": [], "new-length": None}})
        self.assertEqual(e.exception.status, 401)
        r = self.c.rtw(si, we, RENEW, CANCEL, {0: {"test": [], "write": [], "new-length": 0}})
        self.assertTrue(r["success"])
        self.assertEqual(self.c.list_shares(si, kind="mutable"), set())       # new-length 0 deletes

    def test_leases_and_corruption_advisories(self):
        si = si_of(8)
        with self.assertRaises(GbsError) as e:
            self.c.renew_lease(si, RENEW, CANCEL)
        self.assertEqual(e.exception.status, 404)
        self.upload(si, 2, b"p" * 300)
        self.c.renew_lease(si, b"n" * 32, CANCEL)
        self.c.corrupt(si, 2, "block 0 hash mismatch")
        with self.assertRaises(GbsError) as e:
            self.c.corrupt(si, 9, "nope")
        self.assertEqual(e.exception.status, 404)

    def test_client_vanishing_mid_upload_leaves_nothing_readable(self):
        si, secret = si_of(9), b"v" * 20
        data = os.urandom(1_000_000)
        self.c.allocate(si, {0}, len(data), RENEW, CANCEL, secret)
        raw = GbsClient(self.nurl)
        raw._connect()
        raw.conn.putrequest("PATCH", f"/storage/v1/immutable/{si}/0", skip_accept_encoding=True)
        for k, v in (("Authorization", raw.auth()), ("Content-Range", f"bytes 0-{len(data) - 1}/*"),
                     ("Content-Length", str(len(data))),
                     ("X-Tahoe-Authorization", "upload-secret " + base64.b64encode(secret).decode())):
            raw.conn.putheader(k, v)
        raw.conn.endheaders()
        raw.conn.send(data[:600_000])   # then the client goes away
        raw.conn.sock.close()
        raw.conn = None
        # The share is not complete: not listed, not readable.
        self.assertEqual(self.c.list_shares(si), set())
        with self.assertRaises(GbsError) as e:
            self.c.read(si, 0, 0, 10)
        self.assertEqual(e.exception.status, 404)
        # The upload can be finished: bytes written before are either there
        # (the same bytes again are accepted) or missing.
        status, reply = self.c.write(si, 0, 0, data, secret)
        self.assertEqual(status, 201)
        self.assertEqual(self.c.read(si, 0, 999_990, 10), data[-10:])

    def test_oversized_heads_and_slow_clients(self):
        status, _, _ = self.c.request("GET", "/storage/v1/version", headers={"X-Padding": "p" * 20000})
        self.assertEqual(status, 431)
        self.c.close()
        many = {f"X-H{i}": "v" for i in range(100)}
        status, _, _ = self.c.request("GET", "/storage/v1/version", headers=many)
        self.assertEqual(status, 431)
        self.c.close()
        # A client that sends half a request head and stalls does not stop others.
        slow = GbsClient(self.nurl)
        slow._connect()
        slow.conn.sock.sendall(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\n")
        self.assertIn(V1, self.c.version())
        slow.close()

    def test_keep_alive_across_many_requests(self):
        for _ in range(50):
            self.c.version()
        self.assertIsNotNone(self.c.conn)   # still the first connection


class UploadSlotsTest(unittest.TestCase):
    """A node whose upload buffer allows the minimum of two uploads reading
    their bodies at once: a third waits for a slot, in order, and every
    upload still completes with its bytes intact."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node(config_patch={"limits": {"store_reserved_bytes": 0, "gbs_upload_buffer_bytes": 1}})
        cls.node.start()
        cls.nurl = run_cli("nurl", node_dir=cls.node.dir, check=True).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        code = cls.node.stop()
        cls.node.cleanup()
        assert code == 0, code

    def start_patch(self, si, data, secret):
        """Sends a PATCH's head and the first half of its body, then stalls."""
        raw = GbsClient(self.nurl)
        raw._connect()
        raw.conn.putrequest("PATCH", f"/storage/v1/immutable/{si}/0", skip_accept_encoding=True)
        for k, v in (("Authorization", raw.auth()), ("Content-Range", f"bytes 0-{len(data) - 1}/*"),
                     ("Content-Length", str(len(data))),
                     ("X-Tahoe-Authorization", "upload-secret " + base64.b64encode(secret).decode())):
            raw.conn.putheader(k, v)
        raw.conn.endheaders()
        raw.conn.send(data[:len(data) // 2])
        return raw

    def queued_count(self):
        out = run_cli("metrics", node_dir=self.node.dir, check=True).stdout
        for line in out.splitlines():
            if line.startswith("cairn_gbs_uploads_queued"):
                return float(line.split()[-1])
        raise AssertionError("no cairn_gbs_uploads_queued in:\n" + out)

    def test_a_third_upload_waits_for_a_slot_then_completes(self):
        c = GbsClient(self.nurl)
        secret = b"s" * 20
        datas = {i: os.urandom(300_000) for i in (40, 41, 42)}
        for i, d in datas.items():
            c.allocate(si_of(i), {0}, len(d), RENEW, CANCEL, secret)
        queued_before = self.queued_count()
        stalled = [self.start_patch(si_of(i), datas[i], secret) for i in (40, 41)]
        time.sleep(0.3)  # both are admitted and reading
        result = {}

        def third():
            t = GbsClient(self.nurl)
            result["status"] = t.write(si_of(42), 0, 0, datas[42], secret)[0]
            t.close()

        th = threading.Thread(target=third)
        th.start()
        th.join(1.5)
        self.assertTrue(th.is_alive(), "the third upload finished while both slots were held")
        self.assertEqual(self.queued_count(), queued_before + 1)
        # The first stalled upload finishes: its slot goes to the third.
        first = stalled[0]
        first.conn.send(datas[40][len(datas[40]) // 2:])
        self.assertEqual(first.conn.getresponse().status, 201)
        th.join(20)
        self.assertFalse(th.is_alive(), "the third upload never got the freed slot")
        self.assertEqual(result["status"], 201)
        second = stalled[1]
        second.conn.send(datas[41][len(datas[41]) // 2:])
        self.assertEqual(second.conn.getresponse().status, 201)
        for s in stalled:
            s.close()
        for i, d in datas.items():
            self.assertEqual(c.read(si_of(i), 0, 0, len(d)), d)
        c.close()

    def test_many_concurrent_uploads_through_two_slots(self):
        secret = b"m" * 20
        datas = {i: os.urandom(700_000 + i) for i in range(50, 62)}
        c = GbsClient(self.nurl)
        for i, d in datas.items():
            c.allocate(si_of(i), {0}, len(d), RENEW, CANCEL, secret)
        statuses = {}

        def upload(i):
            u = GbsClient(self.nurl)
            for off in range(0, len(datas[i]), 250_000):
                statuses[i] = u.write(si_of(i), 0, off, datas[i][off:off + 250_000], secret)[0]
            u.close()

        threads = [threading.Thread(target=upload, args=(i,)) for i in datas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(statuses, {i: 201 for i in datas})
        for i, d in datas.items():
            self.assertEqual(c.read(si_of(i), 0, 0, len(d)), d)
        c.close()


if __name__ == "__main__":
    unittest.main()
