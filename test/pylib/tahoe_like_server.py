"""A storage server for tests that behaves like a Tahoe-LAFS 1.20 node where
a cairn client can tell: written from the protocol description
(tahoe-protocol.md 1.4, 1.5, 2.2, 2.3) with the standard library, Debian's
python3-cryptography (its TLS key) and python3-cbor2; it shares no code with
cairn.

Its identity is a Tahoe node's: a Foolscap tub id (20 random bytes, in the
FURL of its announcement) unrelated to its TLS key's SPKI hash, and a
32-byte permutation seed (as a Tahoe node announces its ed25519 key). It
serves the endpoints a client uses for files (version; immutable allocate,
write, list and ranged read; mutable list, ranged read, read-test-write); it answers 401 to a wrong swissnum and,
as Tahoe does, to a read-test-write whose write enabler differs from the one
stored with any existing share of the slot (empty body). It records each
share's write enabler and the lease renew and cancel secrets it was given,
and the lease secrets of each immutable share, so a test can check them
against Tahoe's derivations from the tub id."""
import base64
import datetime
import hashlib
import os
import re
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


SI_RE = r"([a-z2-7]{26})"


class Slot:
    def __init__(self):
        self.shares = {}   # shnum -> {"we": bytes, "data": bytearray, "leases": [(renew, cancel)]}


class TahoeLikeServer:
    def __init__(self, nickname="tahoe-like"):
        self.nickname = nickname
        self.tub_id = os.urandom(20)
        self.permutation_seed = os.urandom(32)
        self.swissnum = b32(os.urandom(20))
        self.slots = {}
        self.buckets = {}  # si -> shnum -> {"size", "data", "secret", "done", "leases"}
        self.lock = threading.Lock()
        self.refused = 0   # read-test-writes answered 401 for the write enabler
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tahoe-like")])
        now = datetime.datetime(2020, 1, 1)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=36500)).sign(key, hashes.SHA256()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        self.spki_hash = base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).decode().rstrip("=")
        self.dir = tempfile.mkdtemp(prefix="tahoe-like-", dir="/tmp")
        cert_path, key_path = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_path, key_path)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.socket = self.ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # --- what its operator hands out ------------------------------------------

    @property
    def nurl(self):
        return f"pb://{self.spki_hash}@127.0.0.1:{self.port}/{self.swissnum}#v=1"

    @property
    def server_id(self):
        return "v0-" + b32(self.permutation_seed)

    def announcement(self):
        return {"nickname": self.nickname,
                "anonymous-storage-FURL": f"pb://{b32(self.tub_id)}@tcp:127.0.0.1:{self.port}/{self.swissnum}",
                "anonymous-storage-NURLs": [self.nurl],
                "permutation-seed-base32": b32(self.permutation_seed),
                "my-version": "tahoe-lafs/1.20.0"}

    def yaml_entry(self):
        a = self.announcement()
        return (f"  {self.server_id}:\n    ann:\n      nickname: {a['nickname']}\n"
                f"      anonymous-storage-FURL: {a['anonymous-storage-FURL']}\n"
                f"      anonymous-storage-NURLs:\n        - {self.nurl}\n"
                f"      permutation-seed-base32: {a['permutation-seed-base32']}\n")

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    # --- the HTTP side ----------------------------------------------------------

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", ctype="application/cbor", headers=()):
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", ctype)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def secrets(self):
                out = {}
                for line in self.headers.get_all("X-Tahoe-Authorization") or []:
                    kind, _, value = line.strip().partition(" ")
                    out[kind] = base64.b64decode(value)
                return out

            def authorized(self):
                want = "Tahoe-LAFS " + base64.b64encode(server.swissnum.encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.reply(401)
                    return False
                return True

            def body(self):
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_GET(self):
                if not self.authorized():
                    return
                path = self.path
                if path == "/storage/v1/version":
                    v1 = b"http://allmydata.org/tahoe/protocols/storage/v1"
                    return self.reply(200, cbor2.dumps({v1: {b"maximum-immutable-share-size": 2 ** 40,
                                                             b"maximum-mutable-share-size": 2 ** 40,
                                                             b"available-space": 2 ** 40},
                                                        b"application-version": b"tahoe-lafs/1.20.0"}))
                m = re.fullmatch("/storage/v1/immutable/" + SI_RE + "/shares", path)
                if m:
                    with server.lock:
                        shnums = sorted(sh for sh, b in server.buckets.get(m.group(1), {}).items() if b["done"])
                    return self.reply(200, cbor2.dumps(cbor2.CBORTag(258, shnums)))
                m = re.fullmatch("/storage/v1/immutable/" + SI_RE + r"/(\d+)", path)
                if m:
                    rng = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                    if not rng:
                        return self.reply(416)
                    with server.lock:
                        b = server.buckets.get(m.group(1), {}).get(int(m.group(2)))
                        data = bytes(b["data"]) if b and b["done"] else None
                    if data is None:
                        return self.reply(404)
                    first, last = int(rng.group(1)), min(int(rng.group(2)) + 1, len(data))
                    if first >= last:
                        return self.reply(204)
                    return self.reply(206, data[first:last], "application/octet-stream",
                                      [("Content-Range", f"bytes {first}-{last - 1}/*")])
                m = re.fullmatch("/storage/v1/mutable/" + SI_RE + "/shares", path)
                if m:
                    with server.lock:
                        slot = server.slots.get(m.group(1))
                        shnums = sorted(slot.shares) if slot else []
                    return self.reply(200, cbor2.dumps(cbor2.CBORTag(258, shnums)))
                m = re.fullmatch("/storage/v1/mutable/" + SI_RE + r"/(\d+)", path)
                if m:
                    rng = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                    if not rng:
                        return self.reply(416)
                    with server.lock:
                        slot = server.slots.get(m.group(1))
                        share = slot.shares.get(int(m.group(2))) if slot else None
                        data = bytes(share["data"]) if share else None
                    if data is None:
                        return self.reply(404)
                    first, last = int(rng.group(1)), min(int(rng.group(2)) + 1, len(data))
                    if first >= last:
                        return self.reply(204)
                    return self.reply(206, data[first:last], "application/octet-stream",
                                      [("Content-Range", f"bytes {first}-{last - 1}/*")])
                return self.reply(404)

            def do_PATCH(self):
                body = self.body()
                if not self.authorized():
                    return
                m = re.fullmatch("/storage/v1/immutable/" + SI_RE + r"/(\d+)", self.path)
                rng = re.fullmatch(r"bytes (\d+)-(\d+)/\*", self.headers.get("Content-Range", ""))
                if not m:
                    return self.reply(404)
                if not rng or int(rng.group(2)) - int(rng.group(1)) + 1 != len(body):
                    return self.reply(416)
                status, answer = server.write_chunk(m.group(1), int(m.group(2)), self.secrets().get("upload-secret"),
                                                    int(rng.group(1)), body)
                return self.reply(status, cbor2.dumps(answer) if answer is not None else b"")

            def do_POST(self):
                body = self.body()
                if not self.authorized():
                    return
                m = re.fullmatch("/storage/v1/immutable/" + SI_RE, self.path)
                if m:
                    secrets = self.secrets()
                    if set(secrets) != {"lease-renew-secret", "lease-cancel-secret", "upload-secret"}:
                        return self.reply(400, b"bad secrets", "text/plain")
                    req = cbor2.loads(body)
                    return self.reply(200, cbor2.dumps(server.allocate(m.group(1), secrets, req)))
                m = re.fullmatch("/storage/v1/mutable/" + SI_RE + r"/(\d+)/corrupt", self.path)
                if m:
                    return self.reply(200, cbor2.dumps({}))
                m = re.fullmatch("/storage/v1/mutable/" + SI_RE + "/read-test-write", self.path)
                if not m:
                    return self.reply(404)
                secrets = self.secrets()
                if set(secrets) != {"write-enabler", "lease-renew-secret", "lease-cancel-secret"} or \
                        len(secrets["lease-renew-secret"]) != 32 or len(secrets["lease-cancel-secret"]) != 32:
                    return self.reply(400, b"bad secrets", "text/plain")
                req = cbor2.loads(body)
                status, answer = server.read_test_write(m.group(1), secrets, req)
                return self.reply(status, cbor2.dumps(answer) if answer is not None else b"")

        return Handler

    def allocate(self, si, secrets, req):
        lease = (secrets["lease-renew-secret"], secrets["lease-cancel-secret"])
        with self.lock:
            buckets = self.buckets.setdefault(si, {})
            have = sorted(sh for sh, b in buckets.items() if b["done"])
            allocated = []
            for sh in sorted(req["share-numbers"]):
                if sh not in buckets:
                    buckets[sh] = {"size": req["allocated-size"], "data": bytearray(req["allocated-size"]),
                                   "written": set(), "secret": secrets["upload-secret"], "done": False, "leases": []}
                    allocated.append(sh)
                if lease not in buckets[sh]["leases"]:
                    buckets[sh]["leases"].append(lease)
            return {"already-have": cbor2.CBORTag(258, have), "allocated": cbor2.CBORTag(258, allocated)}

    def write_chunk(self, si, shnum, secret, offset, data):
        with self.lock:
            b = self.buckets.get(si, {}).get(shnum)
            if b is None or b["done"]:
                return 404, None
            if secret != b["secret"]:
                return 401, None
            b["data"][offset:offset + len(data)] = data
            b["written"].update(range(offset, offset + len(data)))
            missing = [i for i in range(b["size"]) if i not in b["written"]]
            if missing:
                return 200, {"required": [{"begin": missing[0], "end": missing[-1] + 1}]}
            b["done"] = True
            return 201, {"required": []}

    def read_test_write(self, si, secrets, req):
        """tahoe-protocol.md 2.2, with Tahoe's 401 for a wrong write enabler."""
        we = secrets["write-enabler"]
        with self.lock:
            slot = self.slots.setdefault(si, Slot())
            for share in slot.shares.values():
                if share["we"] != we:
                    self.refused += 1
                    if not slot.shares:
                        del self.slots[si]
                    return 401, None
            tw = req["test-write-vectors"]

            def read(shnum, offset, size):
                share = slot.shares.get(shnum)
                return bytes(share["data"][offset:offset + size]) if share else b""

            ok = all(read(sh, t["offset"], t["size"]) == t["specimen"] for sh, v in tw.items() for t in v["test"])
            data = {sh: [read(sh, r["offset"], r["size"]) for r in req["read-vector"]] for sh in slot.shares}
            if ok:
                for sh, v in tw.items():
                    if v.get("new-length") == 0:
                        slot.shares.pop(sh, None)
                        continue
                    share = slot.shares.setdefault(sh, {"we": we, "data": bytearray(), "leases": []})
                    for w in v["write"]:
                        end = w["offset"] + len(w["data"])
                        if end > len(share["data"]):
                            share["data"].extend(b"\0" * (end - len(share["data"])))
                        share["data"][w["offset"]:end] = w["data"]
                    if v.get("new-length") is not None and v["new-length"] < len(share["data"]):
                        del share["data"][v["new-length"]:]
                    lease = (secrets["lease-renew-secret"], secrets["lease-cancel-secret"])
                    if lease not in share["leases"]:
                        share["leases"].append(lease)
            if not slot.shares:
                del self.slots[si]
            return 200, {"success": ok, "data": data}
