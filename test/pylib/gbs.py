"""An independent Great Black Swamp client for tests, written from the
protocol description with only the standard library (ssl, http.client,
hashlib) and Debian's python3-cbor2: it shares no code with cairn.

It pins the server's certificate by its SPKI hash as Tahoe-LAFS does (no CA,
no hostname check, dates ignored), sends the swissnum and the
X-Tahoe-Authorization secrets, and speaks CBOR with tag-258 sets."""
import base64
import hashlib
import http.client
import re
import socket
import ssl
from urllib.parse import urlsplit

import cbor2

V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"


def _der_item(data, pos):
    """(tag, start of contents, end of item) of the DER item at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def spki_of_certificate(der):
    """The SubjectPublicKeyInfo element of a DER certificate."""
    _, body, _ = _der_item(der, 0)             # Certificate
    _, pos, tbs_end = _der_item(der, body)     # TBSCertificate
    tag, _, end = _der_item(der, pos)
    if tag == 0xA0:                            # [0] version
        pos = end
    for _ in range(5):                         # serial, signature, issuer, validity, subject
        _, _, pos = _der_item(der, pos)
    _, _, end = _der_item(der, pos)
    return der[pos:end]


def spki_hash(der_cert):
    digest = hashlib.sha256(spki_of_certificate(der_cert)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def parse_nurl(nurl):
    m = re.fullmatch(r"pb://([A-Za-z0-9_-]{43})@(\[[0-9a-fA-F:.]+\]|[^:/@]+):(\d+)/([^#/]+)#v=1", nurl)
    if not m:
        raise ValueError(f"not a NURL: {nurl}")
    host = m.group(2).strip("[]")
    return {"spki_hash": m.group(1), "host": host, "port": int(m.group(3)), "swissnum": m.group(4)}


class GbsError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class GbsClient:
    """One keep-alive HTTPS connection to one server, pinned by SPKI hash."""

    def __init__(self, nurl, timeout=30):
        n = parse_nurl(nurl)
        self.expected = n["spki_hash"]
        self.host, self.port, self.swissnum = n["host"], n["port"], n["swissnum"]
        self.timeout = timeout
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE   # pinned below instead
        self.conn = None

    def _connect(self):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        conn.connect()
        got = spki_hash(conn.sock.getpeercert(binary_form=True))
        if got != self.expected:
            conn.close()
            raise ssl.SSLError(f"server SPKI hash {got} is not the NURL's {self.expected}")
        self.conn = conn

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def auth(self):
        return "Tahoe-LAFS " + base64.b64encode(self.swissnum.encode()).decode()

    def request(self, method, path, body=None, headers=None, secrets=(), cbor_body=True, auth=True):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        if self.conn is None:
            self._connect()
        h = [("Accept", "application/cbor")]
        if auth:
            h.append(("Authorization", self.auth()))
        for kind, value in secrets:
            h.append(("X-Tahoe-Authorization", f"{kind} {base64.b64encode(value).decode()}"))
        if body is not None and cbor_body:
            h.append(("Content-Type", "application/cbor"))
        for k, v in (headers or {}).items():
            h = [(name, value) for name, value in h if name.lower() != k.lower()]   # a given header replaces ours
            h.append((k, v))
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h:
            self.conn.putheader(k, v)
        if body is not None:
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        resp = self.conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return resp.status, hdrs, data

    def _cbor(self, method, path, obj=None, secrets=(), ok=(200,)):
        body = cbor2.dumps(obj) if obj is not None else None
        status, hdrs, data = self.request(method, path, body, secrets=secrets)
        if status not in ok:
            raise GbsError(status, data)
        if data:
            if hdrs.get("content-type") != "application/cbor":
                raise GbsError(status, b"response is not application/cbor")
            return status, cbor2.loads(data)
        return status, None

    # --- the endpoints --------------------------------------------------
    def version(self):
        return self._cbor("GET", "/storage/v1/version")[1]

    def allocate(self, si, shares, size, renew, cancel, upload):
        secrets = [("lease-renew-secret", renew), ("lease-cancel-secret", cancel), ("upload-secret", upload)]
        return self._cbor("POST", f"/storage/v1/immutable/{si}", {"share-numbers": set(shares),
                                                                  "allocated-size": size}, secrets)[1]

    def write(self, si, shnum, offset, data, upload):
        headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/*"}
        status, hdrs, body = self.request("PATCH", f"/storage/v1/immutable/{si}/{shnum}", data, headers,
                                          secrets=[("upload-secret", upload)], cbor_body=False)
        if status not in (200, 201):
            raise GbsError(status, body)
        return status, cbor2.loads(body)

    def abort(self, si, shnum, upload):
        status, _, body = self.request("PUT", f"/storage/v1/immutable/{si}/{shnum}/abort",
                                       secrets=[("upload-secret", upload)])
        if status != 200:
            raise GbsError(status, body)

    def list_shares(self, si, kind="immutable"):
        return self._cbor("GET", f"/storage/v1/{kind}/{si}/shares")[1]

    def read(self, si, shnum, offset, size, kind="immutable"):
        """Bytes of the range, b"" on 204; GbsError otherwise (200 is refused, as Tahoe refuses it)."""
        headers = {"Range": f"bytes={offset}-{offset + size - 1}"}
        status, hdrs, body = self.request("GET", f"/storage/v1/{kind}/{si}/{shnum}", headers=headers)
        if status == 204:
            return b""
        if status != 206:
            raise GbsError(status, body)
        m = re.fullmatch(r"bytes (\d+)-(\d+)/\*", hdrs.get("content-range", ""))
        if not m or int(m.group(1)) != offset or int(m.group(2)) - offset + 1 != len(body):
            raise GbsError(status, b"bad Content-Range " + hdrs.get("content-range", "").encode())
        return body

    def corrupt(self, si, shnum, reason, kind="immutable"):
        return self._cbor("POST", f"/storage/v1/{kind}/{si}/{shnum}/corrupt", {"reason": reason})

    def renew_lease(self, si, renew, cancel):
        status, _, body = self.request("PUT", f"/storage/v1/lease/{si}",
                                       secrets=[("lease-renew-secret", renew), ("lease-cancel-secret", cancel)])
        if status != 204:
            raise GbsError(status, body)

    def rtw(self, si, write_enabler, renew, cancel, test_write_vectors, read_vector=()):
        secrets = [("lease-renew-secret", renew), ("lease-cancel-secret", cancel), ("write-enabler", write_enabler)]
        return self._cbor("POST", f"/storage/v1/mutable/{si}/read-test-write",
                          {"test-write-vectors": test_write_vectors, "read-vector": list(read_vector)}, secrets)[1]
