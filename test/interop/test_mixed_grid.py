"""A cairn client in a mixed grid: one cairn storage node and two storage
servers that behave like Tahoe-LAFS nodes (test/pylib/tahoe_like_server.py:
a tub id unrelated to the TLS key, a 32-byte permutation seed, 401 for a
wrong write enabler). Configured from their announcements, cairn creates and
updates a mutable file on them with exactly the write enablers and lease
secrets a Tahoe-LAFS client derives from each tub id (checked here with
hashlib alone), and an immutable upload leaves Tahoe's lease secrets there
too. Configured from their NURLs alone (taken for cairn nodes),
the update is refused, and cairn says so: an authorization failure naming
the servers and the shares left stale there, never a success."""
import base64
import hashlib
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, run_cli, stop_grid  # noqa: E402
from pylib.tahoe_like_server import TahoeLikeServer  # noqa: E402


def a2b(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def netstring(s):
    return b"%d:%s," % (len(s), s)


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def tagged_hash(tag, value, size=32):
    return sha256d(netstring(tag) + value)[:size]


def tagged_pair_hash(tag, a, b):
    return sha256d(netstring(tag) + netstring(a) + netstring(b))


def write_enabler(writekey, tub_id):
    master = tagged_hash(b"allmydata_mutable_writekey_to_write_enabler_master_v1", writekey)
    return tagged_pair_hash(b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1", master, tub_id)


def lease_secrets(client_secret, si, tub_id):
    # The client's secret is the tag of the first step (tahoe-protocol.md 2.3).
    renew = tagged_hash(client_secret, b"allmydata_client_renewal_secret_v1")
    cancel = tagged_hash(client_secret, b"allmydata_client_cancel_secret_v1")
    file_renew = tagged_pair_hash(b"allmydata_file_renewal_secret_v1", renew, si)
    file_cancel = tagged_pair_hash(b"allmydata_file_cancel_secret_v1", cancel, si)
    return (tagged_pair_hash(b"allmydata_bucket_renewal_secret_v1", file_renew, tub_id),
            tagged_pair_hash(b"allmydata_bucket_cancel_secret_v1", file_cancel, tub_id))


def keys_of(writecap):
    writekey = a2b(writecap.split(":")[2])
    readkey = tagged_hash(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
    si = tagged_hash(b"allmydata_mutable_readkey_to_storage_index_v1", readkey, 16)
    return writekey, si


class MixedGridTest(unittest.TestCase):
    def setUp(self):
        self.tahoe = [TahoeLikeServer(f"tahoe{i}").start() for i in range(2)]
        self.cairn = Node("cairn-storage")
        self.cairn.start()
        self.client = Node("client", config_patch={"client": {"shares_needed": 2, "shares_total": 3,
                                                              "shares_happy": 3}})
        self.client.start()
        nurl = run_cli("nurl", node_dir=self.cairn.dir, check=True).stdout.strip()
        self.cli_ok("servers", "add", nurl, "--nickname", "cairn0")
        self.tmp = tempfile.mkdtemp(prefix="cairn-mixed-", dir="/tmp")

    def tearDown(self):
        for t in self.tahoe:
            t.stop()
        stop_grid([self.cairn, self.client], self.tmp)

    def cli(self, *args, input=None):
        return run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=120, input=input)

    def cli_ok(self, *args, input=None):
        p = self.cli(*args, input=input)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def file(self, data):
        path = os.path.join(self.tmp, "in")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def add_announced(self):
        for t in self.tahoe:
            self.cli_ok("servers", "add", "-", input=t.yaml_entry())
        listed = {s["nickname"]: s for s in self.cli_ok("servers", "list")["servers"]}
        for t in self.tahoe:
            self.assertEqual(listed[t.nickname]["identity"], "announced")
            self.assertEqual(listed[t.nickname]["tub_id"], b32(t.tub_id))
            self.assertEqual(listed[t.nickname]["permutation_seed"], b32(t.permutation_seed))
        self.assertEqual(listed["cairn0"]["identity"], "cairn")

    def shares_on(self, t, si):
        slot = t.slots.get(b32(si))
        return slot.shares if slot else {}

    def test_announced_servers_get_tahoes_secrets_and_take_updates(self):
        self.add_announced()
        cap = self.cli_ok("mutable", "create", self.file(b"first version " * 100))["writecap"]
        writekey, si = keys_of(cap)
        with open(os.path.join(self.client.dir, "private", "secret")) as f:
            client_secret = a2b(f.read().strip())
        for t in self.tahoe:
            shares = self.shares_on(t, si)
            self.assertEqual(len(shares), 1, f"{t.nickname} holds {sorted(shares)}")
            for share in shares.values():
                self.assertEqual(share["we"], write_enabler(writekey, t.tub_id))
                self.assertIn(lease_secrets(client_secret, si, t.tub_id), share["leases"])
        second = b"second version " * 200
        put = self.cli_ok("mutable", "put", cap, self.file(second))
        self.assertEqual(put["seqnum"], 2)
        for t in self.tahoe:
            for share in self.shares_on(t, si).values():
                self.assertEqual(int.from_bytes(share["data"][1:9], "big"), 2)
            self.assertEqual(t.refused, 0)
        out = os.path.join(self.tmp, "out")
        self.cli_ok("mutable", "get", cap, "-o", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), second)

    def test_an_immutable_upload_gives_announced_servers_tahoes_lease_secrets(self):
        self.add_announced()
        data = os.urandom(5000)
        put = self.cli_ok("put", self.file(data))
        cap = put["cap"]
        with open(os.path.join(self.client.dir, "private", "secret")) as f:
            client_secret = a2b(f.read().strip())
        held = 0
        for t in self.tahoe:
            for si_text, buckets in t.buckets.items():
                for b in buckets.values():
                    self.assertTrue(b["done"])
                    self.assertIn(lease_secrets(client_secret, a2b(si_text), t.tub_id), b["leases"])
                    held += 1
        self.assertEqual(held, 2)
        out = os.path.join(self.tmp, "out")
        self.cli_ok("get", cap, "-o", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_servers_known_by_nurl_alone_get_the_clear_error(self):
        self.add_announced()
        cap = self.cli_ok("mutable", "create", self.file(b"made with the announced identities"))["writecap"]
        _, si = keys_of(cap)
        for t in self.tahoe:
            self.cli_ok("servers", "remove", t.nickname)
            self.cli_ok("servers", "add", t.nurl, "--nickname", t.nickname)
        listed = {s["nickname"]: s for s in self.cli_ok("servers", "list")["servers"]}
        self.assertTrue(all(s["identity"] == "cairn" for s in listed.values()))
        p = self.cli("mutable", "put", cap, self.file(b"an update that cannot reach them"))
        self.assertEqual(p.returncode, 77, p.stdout + p.stderr)
        err = json.loads(p.stdout)["error"]
        self.assertEqual(err["code"], "unauthenticated")
        for t in self.tahoe:
            self.assertIn(t.nickname, err["message"])
            self.assertGreater(t.refused, 0)
            shnum = next(iter(self.shares_on(t, si)))
            self.assertIn(f"share {shnum} on {t.nickname} (seqnum 1)", err["message"])
            # Stale indeed: the Tahoe-like servers kept the old version.
            self.assertEqual(int.from_bytes(self.shares_on(t, si)[shnum]["data"][1:9], "big"), 1)
        self.assertIn("stale shares", err["message"])
        self.assertNotIn(self.tahoe[0].swissnum, err["message"])


if __name__ == "__main__":
    unittest.main()
