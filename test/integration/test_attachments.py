"""Counted attachments on the control socket (docs/control.md): data frames
in both directions, their order and bounds, and back-pressure, against a
real cairnd through its test hooks debug.digest (reads a request's data
frames) and debug.emit (answers with data frames)."""
import hashlib
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import ControlConn, Node  # noqa: E402


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).hexdigest()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class AttachmentsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node()
        cls.node.start(test_hooks=True)

    @classmethod
    def tearDownClass(cls):
        code = cls.node.stop()
        cls.node.cleanup()
        assert code == 0, code

    def conn(self):
        c = ControlConn(self.node.dir)
        self.addCleanup(c.close)
        return c

    def test_upload_in_data_frames_arrives_whole_and_in_order(self):
        c = self.conn()
        data = os.urandom(3 * 1048576 + 12345)
        c.send({"v": 1, "id": "up", "method": "debug.digest"})
        chunks = [data[i:i + 1048576] for i in range(0, len(data), 1048576)]
        for seq, chunk in enumerate(chunks):
            c.send_data("up", seq, chunk, eof=seq == len(chunks) - 1)
        final = c.read_final()
        self.assertEqual(final.get("result"), {"frames": len(chunks), "bytes": len(data),
                                               "sha256d": sha256d(data)}, final)

    def test_empty_input_is_one_eof_frame(self):
        c = self.conn()
        c.send({"v": 1, "id": 3, "method": "debug.digest"})
        c.send_data(3, 0, b"", eof=True)
        self.assertEqual(c.read_final()["result"]["bytes"], 0)

    def test_a_gap_in_the_sequence_fails_the_request_and_the_connection_goes_on(self):
        c = self.conn()
        c.send({"v": 1, "id": 5, "method": "debug.digest"})
        c.send_data(5, 0, b"abc")
        c.send_data(5, 2, b"def", eof=True)
        final = c.read_final()
        self.assertEqual(final["error"]["code"], "invalid_argument", final)
        self.assertIn("out of order", final["error"]["message"])
        self.assertIn("result", c.call("status", id=6))

    def test_data_for_no_request_is_dropped_and_malformed_heads_are_answered(self):
        c = self.conn()
        c.send_data(99, 0, b"x" * 1000, eof=True)        # no such request: dropped
        c.send_raw(b'{"id":7,"bytes":4}\nabcd')          # an attachment outside a data frame
        frame = c.read_frame()
        self.assertEqual(frame["error"]["code"], "invalid_argument", frame)
        self.assertIn("data frames", frame["error"]["message"])
        self.assertIn("result", c.call("status", id=8))   # still in step with the stream

    def test_an_oversized_or_uncountable_attachment_closes_the_connection(self):
        for head in (b'{"id":1,"data":0,"bytes":1048577}\n', b'{"id":1,"data":0,"bytes":-1}\n'):
            c = self.conn()
            c.send({"v": 1, "id": 1, "method": "debug.digest"})
            c.send_raw(head)
            codes = set()
            while True:
                frame = c.read_frame()
                if frame is None:
                    break
                if "error" in frame:
                    codes.add(frame["error"]["code"])
            self.assertTrue(codes & {"frame_too_large", "bad_frame"}, codes)
        self.assertIn("result", self.conn().call("status"))

    def test_download_in_data_frames(self):
        c = self.conn()
        n = 2 * 1048576 + 77
        c.send({"v": 1, "id": "dl", "method": "debug.emit", "params": {"bytes": n, "chunk": 1048576}})
        got, seqs = b"", []
        while True:
            frame = c.read_frame()
            self.assertIsNotNone(frame)
            if "data" in frame:
                seqs.append(frame["data"])
                got += frame["_attachment"]
                continue
            self.assertEqual(frame.get("result"), {"bytes": n}, frame)
            break
        self.assertEqual(seqs, [0, 1, 2])
        self.assertEqual(got, bytes((i * 7) % 251 for i in range(n)))

    def test_a_client_that_does_not_read_is_paced_not_buffered(self):
        # 64 MiB asked for, nothing read for a while: the daemon waits for the
        # socket instead of queueing the answer, so its memory stays flat.
        c = self.conn()
        before = rss_kib(self.node.proc.pid)
        c.send({"v": 1, "id": 1, "method": "debug.emit", "params": {"bytes": 64 << 20, "chunk": 1048576}})
        time.sleep(1.5)
        grown = rss_kib(self.node.proc.pid) - before
        self.assertLess(grown, 24 * 1024, f"cairnd grew {grown} KiB while the client did not read")
        c.close()   # leaving mid-answer: the daemon drops the rest and goes on
        self.assertIn("result", self.conn().call("status"))

    def test_a_slow_consumer_pauses_the_sender(self):
        # The request reads a chunk every 300 ms; the client tries to push
        # 24 MiB without blocking. The daemon stops reading the socket while a
        # chunk is unread, so within a second the client gets rid of at most
        # the socket buffers plus a few chunks, not everything.
        c = self.conn()
        c.send({"v": 1, "id": 2, "method": "debug.digest", "params": {"delay_ms": 300}})
        frames = b""
        data = os.urandom(1048576)
        for seq in range(24):
            head = {"id": 2, "data": seq, "bytes": len(data)}
            if seq == 23:
                head["eof"] = True
            frames += json.dumps(head).encode() + b"\n" + data
        c.sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + 1.0
        while time.monotonic() < deadline and sent < len(frames):
            try:
                sent += c.sock.send(frames[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        self.assertLess(sent, 8 << 20, f"the daemon took {sent} bytes from a client it could not keep up with")
        c.sock.setblocking(True)
        c.sock.settimeout(60)
        c.send_raw(frames[sent:])
        final = c.read_final()
        self.assertEqual(final["result"]["bytes"], 24 << 20, final)
        self.assertEqual(final["result"]["sha256d"], sha256d(data * 24))

if __name__ == "__main__":
    unittest.main()
