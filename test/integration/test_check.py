"""cairn check through real cairnd nodes on 127.0.0.1 (docs/check.md).

A grid of seven storage nodes and a client encoding 3-of-10 with happiness
7 (Tahoe-LAFS's defaults). Shares are made offline by chk_tool (the same
encoder) and stored on chosen servers with an independent GBS client, so a
test decides exactly which server holds which share: missing shares (below
happy, above k) give exact counts, repair restores health and the file
reads back; a stopped server's shares go elsewhere; a corrupt block passes
a plain check, is named (share and server) by verify, advised, and repaired;
below k is unrecoverable (exit 5) and nothing is written; all ten shares on
two servers are rebalanced to happiness 7. Mutable files: a share deleted,
a stale version left on one server, a corrupt block, each checked and
repaired through the publish engine (seqnum + 1).

Leases: --add-lease sends each server the renew and cancel secrets derived
here, with hashlib alone, from the node's lease secret and the server's
tub id (servers that record them, built on test/pylib/tahoe_like_server.py);
and on servers with a short lease duration and the expiry sweep on, a file
renewed with --add-lease survives the sweep while an un-renewed one is
collected."""
import base64
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import Node, binary, run_cli, stop_grid, wait_for  # noqa: E402
from pylib.gbs import GbsClient  # noqa: E402
from pylib.tahoe_like_server import TahoeLikeServer  # noqa: E402

K, N, HAPPY = 3, 10, 7
SEG = 1 << 20
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_UNRECOVERABLE = 0, 11, 5


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def a2b(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def netstring(s):
    return b"%d:%s," % (len(s), s)


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def tagged_hash(tag, value, size=32):
    return sha256d(netstring(tag) + value)[:size]


def tagged_pair_hash(tag, a, b):
    return sha256d(netstring(tag) + netstring(a) + netstring(b))


def lease_secrets(client_secret, si, tub_id):
    """tahoe-protocol.md 2.3: the client's secret is the tag of the first step."""
    renew = tagged_hash(client_secret, b"allmydata_client_renewal_secret_v1")
    cancel = tagged_hash(client_secret, b"allmydata_client_cancel_secret_v1")
    file_renew = tagged_pair_hash(b"allmydata_file_renewal_secret_v1", renew, si)
    file_cancel = tagged_pair_hash(b"allmydata_file_cancel_secret_v1", cancel, si)
    return (tagged_pair_hash(b"allmydata_bucket_renewal_secret_v1", file_renew, tub_id),
            tagged_pair_hash(b"allmydata_bucket_cancel_secret_v1", file_cancel, tub_id))


def cairn_tub_id(nurl):
    """A cairn node's tub id: the first 20 bytes of its NURL's SPKI hash."""
    spki_hash = re.match(r"pb://([^@]+)@", nurl).group(1)
    return base64.urlsafe_b64decode(spki_hash + "=" * (-len(spki_hash) % 4))[:20]


def write_enabler(writekey, tub_id):
    master = tagged_hash(b"allmydata_mutable_writekey_to_write_enabler_master_v1", writekey)
    return tagged_pair_hash(b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1", master, tub_id)


def mutable_keys(writecap):
    writekey = a2b(writecap.split(":")[2])
    readkey = tagged_hash(b"allmydata_mutable_writekey_to_readkey_v1", writekey, 16)
    si = tagged_hash(b"allmydata_mutable_readkey_to_storage_index_v1", readkey, 16)
    return writekey, si


class CheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(7)]
        for s in cls.servers:
            s.start()
        cls.client = Node("client", config_patch={"client": {"shares_needed": K, "shares_total": N,
                                                             "shares_happy": HAPPY}})
        cls.client.start(test_hooks=True)  # debug.hold makes lock contention deterministic
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        for i, nurl in enumerate(cls.nurls):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=cls.client.dir, check=True)
        cls.tmp = tempfile.mkdtemp(prefix="cairn-check-", dir="/tmp")
        cls.seed = 100

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + [cls.client], cls.tmp)

    def ensure_running(self, i):
        if self.servers[i].proc is None:
            self.servers[i].start()

    # --- helpers -----------------------------------------------------------------

    def file(self, data, name="in"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cli(self, *args, timeout=180):
        return run_cli("--json", "-q", *args, node_dir=self.client.dir, timeout=timeout)

    def check(self, target, *flags, want_exit=None):
        p = self.cli("check", target, *flags)
        if want_exit is not None:
            self.assertEqual(p.returncode, want_exit, p.stdout + p.stderr)
        return json.loads(p.stdout)

    def encode(self, data):
        """chk_tool's shares of `data` (3-of-10, 1 MiB segments): cap, SI, shares."""
        conv = os.urandom(16)
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
        return cap, si, shares

    def place(self, server, si, shnum, share):
        c = GbsClient(self.nurls[server])
        try:
            upload = os.urandom(32)
            c.allocate(si, [shnum], len(share), os.urandom(32), os.urandom(32), upload)
            status, _ = c.write(si, shnum, 0, share, upload)
            self.assertEqual(status, 201)
        finally:
            c.close()

    def listing(self, si, kind="immutable"):
        out = []
        for i, nurl in enumerate(self.nurls):
            if self.servers[i].proc is None:
                out.append(None)
                continue
            c = GbsClient(nurl)
            try:
                out.append(sorted(c.list_shares(si, kind)))
            finally:
                c.close()
        return out

    def data(self, size):
        CheckTest.seed += 1
        return random.Random(CheckTest.seed).randbytes(size)

    def reads_back(self, cap, data):
        out = os.path.join(self.tmp, "out")
        g = self.cli("get", cap, "-o", out)
        self.assertEqual(g.returncode, 0, g.stderr)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data, "the file read back differs")

    # --- immutable ---------------------------------------------------------------

    def test_missing_shares_exact_counts_then_repair(self):
        data = self.data(2 * SEG + 1234)
        cap, si, shares = self.encode(data)
        for sh in range(6):  # six shares: above k = 3, below happy = 7
            self.place(sh, si, sh, shares[sh])
        r = self.check(cap, want_exit=EXIT_UNHEALTHY)
        res = r["results"]
        self.assertEqual(r["storage-index"], si)
        self.assertEqual(r["summary"], "Not Healthy: 6 shares (enc 3-of-10)")
        self.assertEqual((res["count-shares-good"], res["count-shares-needed"], res["count-shares-expected"]),
                         (6, 3, 10))
        self.assertEqual(res["count-good-share-hosts"], 6)
        self.assertEqual(res["count-happiness"], 6)
        self.assertEqual(len(res["servers-responding"]), 7)
        self.assertEqual((res["count-recoverable-versions"], res["count-unrecoverable-versions"]), (1, 0))
        self.assertEqual(res["count-corrupt-shares"], 0)
        self.assertEqual(res["sharemap"], {str(sh): [f"s{sh}"] for sh in range(6)})
        self.assertFalse(res["healthy"])
        self.assertTrue(res["recoverable"])
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-attempted"])
        self.assertTrue(rep["repair-successful"], rep)
        self.assertEqual(rep["pre-repair-results"]["results"]["count-shares-good"], 6)
        post = rep["post-repair-results"]["results"]
        self.assertTrue(post["healthy"])
        self.assertEqual(post["count-shares-good"], 10)
        self.assertGreaterEqual(post["count-happiness"], HAPPY)
        self.assertEqual(rep["shares-uploaded"], 4)
        again = self.check(cap, "--verify", want_exit=EXIT_HEALTHY)
        self.assertEqual(again["summary"], "Healthy")
        self.assertEqual(again["results"]["count-shares-good"], 10)
        self.reads_back(cap, data)
        # A repair of a healthy file attempts nothing.
        none = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertFalse(none["repair-attempted"])

    def test_stopped_server(self):
        data = self.data(300000)
        put = json.loads(self.cli("put", self.file(data)).stdout)
        cap = put["cap"]
        self.check(cap, want_exit=EXIT_HEALTHY)
        on_s6 = [int(sh) for sh, names in put["placement"].items() if "s6" in names]
        self.assertTrue(on_s6)
        self.assertEqual(self.servers[6].stop(), 0)
        try:
            r = self.check(cap, want_exit=EXIT_UNHEALTHY)
            res = r["results"]
            self.assertEqual(len(res["servers-responding"]), 6)
            self.assertEqual(len(res["servers-failed"]), 1)
            self.assertEqual(res["count-shares-good"], N - len(on_s6))
            rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
            self.assertTrue(rep["repair-successful"], rep)
            post = rep["post-repair-results"]["results"]
            self.assertEqual(post["count-shares-good"], N)
            for sh in on_s6:  # its shares went elsewhere
                self.assertTrue(post["sharemap"][str(sh)])
                self.assertNotIn("s6", post["sharemap"][str(sh)])
            self.reads_back(cap, data)
        finally:
            self.ensure_running(6)

    def test_corrupt_block(self):
        data = self.data(2 * SEG + 5)
        cap, si, shares = self.encode(data)
        bad = bytearray(shares[0])
        bad[36 + SEG // K + 100] ^= 0x40  # share 0's second block (v1 header: 36 bytes)
        shares[0] = bytes(bad)
        for sh in range(N):
            self.place(sh % 7, si, sh, shares[sh])
        plain = self.check(cap, want_exit=EXIT_HEALTHY)  # a check believes the listing
        self.assertEqual(plain["results"]["count-shares-good"], N)
        self.assertNotIn("corruption advisory for immutable share 0", self.servers[0].read_log())
        v = self.check(cap, "--verify", want_exit=EXIT_UNHEALTHY)
        res = v["results"]
        self.assertEqual(res["count-shares-good"], N - 1)
        self.assertEqual(res["count-corrupt-shares"], 1)
        server, si_listed, shnum = res["list-corrupt-shares"][0][:3]
        self.assertEqual((server, si_listed, shnum), ("s0", si, 0))
        self.assertEqual(v["summary"], "Not Healthy: 9 shares (enc 3-of-10)")
        wait_for(lambda: "corruption advisory for immutable share 0" in self.servers[0].read_log(), timeout=10,
                 what="the corruption advisory in s0's log")
        rep = self.check(cap, "--verify", "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-successful"], rep)
        post = rep["post-repair-results"]["results"]
        self.assertEqual(post["count-shares-good"], N)
        self.assertNotIn("s0", post["sharemap"]["0"])  # a good copy of share 0 elsewhere
        self.assertIn(0, self.listing(si)[0])  # the corrupt one stays: GBS cannot delete it
        self.reads_back(cap, data)

    def test_below_k_is_unrecoverable_and_nothing_is_written(self):
        data = self.data(100000)
        cap, si, shares = self.encode(data)
        self.place(0, si, 0, shares[0])
        self.place(1, si, 1, shares[1])
        before = self.listing(si)
        r = self.check(cap, want_exit=EXIT_UNRECOVERABLE)
        self.assertFalse(r["results"]["recoverable"])
        self.assertEqual(r["results"]["count-unrecoverable-versions"], 1)
        rep = self.check(cap, "--repair", want_exit=EXIT_UNRECOVERABLE)
        self.assertFalse(rep["repair-attempted"])
        self.assertFalse(rep["repair-successful"])
        self.assertEqual(self.listing(si), before)
        p = self.cli("check", cap)
        self.assertEqual(p.returncode, EXIT_UNRECOVERABLE)
        plain = run_cli("check", cap, node_dir=self.client.dir, timeout=120)
        self.assertIn("Not Healthy: 2 shares (enc 3-of-10)", plain.stdout)

    def test_rebalance_crowded_shares(self):
        data = self.data(500000)
        cap, si, shares = self.encode(data)
        for sh in range(N):
            self.place(sh % 2, si, sh, shares[sh])
        r = self.check(cap, want_exit=EXIT_HEALTHY)
        self.assertTrue(r["results"]["healthy"])
        self.assertEqual(r["results"]["count-happiness"], 2)
        self.assertTrue(r["results"]["needs-rebalancing"])
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-attempted"])
        self.assertTrue(rep["repair-successful"], rep)
        post = rep["post-repair-results"]["results"]
        self.assertGreaterEqual(post["count-happiness"], HAPPY)
        self.assertFalse(post["needs-rebalancing"])
        self.reads_back(cap, data)

    def test_verify_cap_checks_but_does_not_repair(self):
        # Tahoe repairs from a URI:CHK-Verifier: cap (it re-encodes the
        # ciphertext); cairn's repairer needs the read cap. The check's
        # results stand, the repair is reported not attempted, nothing is
        # written.
        data = self.data(200000)
        cap, si, shares = self.encode(data)
        for sh in range(6):
            self.place(sh, si, sh, shares[sh])
        verifycap = json.loads(run_cli("--json", "debug", "parse-cap", cap, check=True).stdout)["verify_cap"]
        self.assertTrue(verifycap.startswith("URI:CHK-Verifier:"), verifycap)
        before = self.listing(si)
        v = self.check(verifycap, "--verify", want_exit=EXIT_UNHEALTHY)
        self.assertEqual(v["results"]["count-shares-good"], 6)
        rep = self.check(verifycap, "--repair", want_exit=EXIT_UNHEALTHY)
        self.assertFalse(rep["repair-attempted"])
        self.assertFalse(rep["repair-successful"])
        self.assertIn("read cap", rep["repair-error"])
        self.assertEqual(rep["pre-repair-results"]["results"]["count-shares-good"], 6)
        self.assertEqual(self.listing(si), before)
        # The read cap repairs it.
        self.assertTrue(self.check(cap, "--repair", want_exit=EXIT_HEALTHY)["repair-successful"])
        self.check(verifycap, want_exit=EXIT_HEALTHY)

    def test_literal_and_alias_and_usage(self):
        lit = "URI:LIT:" + b32(b"tiny")
        r = self.check(lit, want_exit=EXIT_HEALTHY)
        self.assertEqual(r["summary"], "Healthy (LIT)")
        plain = run_cli("check", lit, node_dir=self.client.dir)
        self.assertIn("Summary: Healthy (LIT)", plain.stdout)
        data = self.data(70000)
        cap = json.loads(self.cli("put", self.file(data)).stdout)["cap"]
        self.assertEqual(self.cli("alias", "add", "checked", cap).returncode, 0)
        r = self.check("checked", "--verify", want_exit=EXIT_HEALTHY)
        self.assertEqual(r["results"]["count-shares-good"], N)
        self.assertTrue(r["results"]["verified"])
        self.assertEqual(self.cli("check").returncode, 2)
        self.assertEqual(self.cli("check", cap, "--bogus").returncode, 2)
        self.assertEqual(self.cli("check", "no-such-alias").returncode, 3)
        self.assertEqual(self.cli("check", "URI:CHK:garbage").returncode, 7)

    # --- mutable -----------------------------------------------------------------

    def create_mutable(self, data):
        return json.loads(self.cli("mutable", "create", self.file(data)).stdout)["writecap"]

    def mutable_shares(self, si_b32):
        """(server, shnum, bytes) of every share of the slot."""
        out = []
        for i, nurl in enumerate(self.nurls):
            c = GbsClient(nurl)
            try:
                for sh in c.list_shares(si_b32, "mutable"):
                    out.append((i, sh, c.read(si_b32, sh, 0, 1 << 22, kind="mutable")))
            finally:
                c.close()
        return out

    def rtw(self, server, writecap, vectors):
        writekey, si = mutable_keys(writecap)
        c = GbsClient(self.nurls[server])
        try:
            r = c.rtw(b32(si), write_enabler(writekey, cairn_tub_id(self.nurls[server])), os.urandom(32),
                      os.urandom(32), vectors)
        finally:
            c.close()
        return r

    def test_mutable_check_verify_repair(self):
        data = self.data(20000)
        cap = self.create_mutable(data)
        _, si = mutable_keys(cap)
        r = self.check(cap, "--verify", want_exit=EXIT_HEALTHY)
        res = r["results"]
        self.assertEqual(res["count-shares-good"], N)
        self.assertEqual(res["count-recoverable-versions"], 1)
        self.assertEqual(len(res["versions"]), 1)
        self.assertEqual(res["versions"][0]["seqnum"], 1)
        key = next(iter(res["sharemap"]))
        self.assertRegex(key, r"^seq1-[a-z2-7]{4}-sh\d+$")
        # One share deleted (new-length 0): 9 shares, repaired as seqnum 2.
        server, sh, _ = self.mutable_shares(b32(si))[0]
        self.rtw(server, cap, {sh: {"test": [], "write": [], "new-length": 0}})
        r = self.check(cap, want_exit=EXIT_UNHEALTHY)
        self.assertEqual(r["results"]["count-shares-good"], N - 1)
        self.assertEqual(r["summary"], "Unhealthy: 9 shares (enc 3-of-10)")
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-successful"], rep)
        self.assertEqual(rep["seqnum"], 2)
        self.assertEqual(rep["post-repair-results"]["results"]["count-shares-good"], N)
        # A stale version on one server (a partial earlier publish): its seq2
        # share is put back after a publish of seq3.
        stale_server, stale_sh, stale = self.mutable_shares(b32(si))[0]
        newer = self.data(15000)
        self.assertEqual(self.cli("mutable", "put", cap, self.file(newer)).returncode, 0)
        self.rtw(stale_server, cap, {stale_sh: {"test": [], "write": [{"offset": 0, "data": stale}],
                                                "new-length": len(stale)}})
        r = self.check(cap, want_exit=EXIT_UNHEALTHY)
        res = r["results"]
        self.assertEqual(res["count-wrong-shares"], 1)
        self.assertEqual(res["count-unrecoverable-versions"], 1)
        self.assertEqual([v["seqnum"] for v in res["versions"]], [3, 2])
        self.assertTrue(r["summary"].startswith("Unhealthy: some versions are unrecoverable"), r["summary"])
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertEqual(rep["seqnum"], 4)
        post = rep["post-repair-results"]["results"]
        self.assertEqual(post["count-wrong-shares"], 0)
        self.assertEqual([v["seqnum"] for v in post["versions"]], [4])
        # A corrupt block: a plain check (headers and signatures) passes,
        # verify names the share and its server.
        bad_server, bad_sh, share = self.mutable_shares(b32(si))[0]
        corrupt = bytearray(share)
        corrupt[len(share) // 2] ^= 0x01
        self.rtw(bad_server, cap, {bad_sh: {"test": [], "write": [{"offset": 0, "data": bytes(corrupt)}],
                                            "new-length": None}})
        self.check(cap, want_exit=EXIT_HEALTHY)
        v = self.check(cap, "--verify", want_exit=EXIT_UNHEALTHY)
        corrupt_list = v["results"]["list-corrupt-shares"]
        self.assertEqual([(c[0], c[2]) for c in corrupt_list], [(f"s{bad_server}", bad_sh)])
        self.assertIn(f"Corrupt Shares: s{bad_server}-sh{bad_sh}", v["summary"])
        rep = self.check(cap, "--verify", "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-successful"], rep)
        out = os.path.join(self.tmp, "mut")
        self.assertEqual(self.cli("mutable", "get", cap, "-o", out).returncode, 0)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == newer)

    def test_mdmf_check_and_verify_through_the_share_format_interface(self):
        # MDMF shares made offline by mutable_tool (cairn's encoder), stored
        # with read-test-writes under each server's write enabler.
        with open(os.path.join(os.environ.get("CAIRN_ROOT", "."), "test", "vectors", "caps.json")) as f:
            pem = [v for v in json.load(f)["vectors"] if v["kind"] == "ssk"][5]["key_pem"]
        key = os.path.join(self.tmp, "mdmf-key.pem")
        with open(key, "w") as f:
            f.write(pem)
        out = os.path.join(self.tmp, "mdmf-shares")
        os.makedirs(out, exist_ok=True)
        data = self.data(300000)  # three 128 KiB segments
        proc = subprocess.run([binary("tools/mutable_tool"), "encode", "mdmf", key, str(K), str(N), "1", out],
                              input=data, capture_output=True, check=True)
        cap = proc.stdout.decode().strip()
        self.assertTrue(cap.startswith("URI:MDMF:"), cap)
        shares = []
        for sh in range(N):
            with open(os.path.join(out, f"{sh}.share"), "rb") as f:
                shares.append(f.read())
        bad = bytearray(shares[3])
        bad[len(bad) // 2] ^= 0x08  # inside the blocks
        for sh in range(N):
            body = shares[sh] if sh != 3 else bytes(bad)
            r = self.rtw(sh % 7, cap, {sh: {"test": [], "write": [{"offset": 0, "data": body}], "new-length": None}})
            self.assertTrue(r["success"], r)
        r = self.check(cap, want_exit=EXIT_HEALTHY)
        self.assertEqual(r["results"]["count-shares-good"], N)
        self.assertEqual([v["seqnum"] for v in r["results"]["versions"]], [1])
        v = self.check(cap, "--verify", want_exit=EXIT_UNHEALTHY)
        self.assertEqual([(c[0], c[2]) for c in v["results"]["list-corrupt-shares"]], [("s3", 3)])
        self.assertEqual(v["results"]["count-shares-good"], N - 1)

    def test_mdmf_repair_brings_every_server_to_the_newest_version(self):
        # Servers at different seqnums: seq1 shares put back on two servers
        # after seq2 was published (a partial earlier publish), one share
        # of seq2 deleted. Repair republishes the newest as seq3 everywhere.
        first = self.data(300000)  # three 128 KiB segments
        cap = json.loads(self.cli("mutable", "create", self.file(first), "--format", "mdmf").stdout)["writecap"]
        self.assertTrue(cap.startswith("URI:MDMF:"), cap)
        _, si = mutable_keys(cap)
        old = self.mutable_shares(b32(si))
        newer = self.data(280000)
        self.assertEqual(self.cli("mutable", "put", cap, self.file(newer)).returncode, 0)
        for server, sh, share in old[:2]:
            self.rtw(server, cap, {sh: {"test": [], "write": [{"offset": 0, "data": share}],
                                        "new-length": len(share)}})
        server, sh, _ = self.mutable_shares(b32(si))[-1]
        self.rtw(server, cap, {sh: {"test": [], "write": [], "new-length": 0}})
        r = self.check(cap, want_exit=EXIT_UNHEALTHY)
        res = r["results"]
        self.assertEqual([v["seqnum"] for v in res["versions"]], [2, 1])
        self.assertEqual(res["count-shares-good"], N - 3)
        self.assertEqual(res["count-wrong-shares"], 2)
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-attempted"], rep)
        self.assertTrue(rep["repair-successful"], rep)
        self.assertEqual(rep["seqnum"], 3)
        post = rep["post-repair-results"]["results"]
        self.assertEqual([v["seqnum"] for v in post["versions"]], [3])
        self.assertEqual(post["count-shares-good"], N)
        self.assertEqual(post["count-wrong-shares"], 0)
        seqs = set()
        for _, _, share in self.mutable_shares(b32(si)):
            seqs.add(int.from_bytes(share[1:9], "big"))  # MDMF header: version byte, then seqnum
        self.assertEqual(seqs, {3})
        v = self.check(cap, "--verify", want_exit=EXIT_HEALTHY)
        self.assertEqual(v["results"]["count-shares-good"], N)
        out = os.path.join(self.tmp, "mdmf-out")
        self.assertEqual(self.cli("mutable", "get", cap, "-o", out).returncode, 0)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == newer, "the repaired MDMF file read back differs")

    def crowd(self, cap, drop=()):
        """Every share of the mutable file of `cap` moved to s0 (even
        numbers) or s1 (odd), each held once; the shares in `drop` deleted."""
        _, si = mutable_keys(cap)
        shares = self.mutable_shares(b32(si))
        one = {}
        for server, sh, share in shares:
            one.setdefault(sh, share)
        self.assertEqual(sorted(one), list(range(N)))
        for sh, share in one.items():
            if sh in drop:
                continue
            r = self.rtw(sh % 2, cap, {sh: {"test": [], "write": [{"offset": 0, "data": share}],
                                            "new-length": len(share)}})
            self.assertTrue(r["success"], r)
        for server, sh, _ in shares:
            if server != sh % 2 or sh in drop:
                self.rtw(server, cap, {sh: {"test": [], "write": [], "new-length": 0}})
        held = sorted((server, sh) for server, sh, _ in self.mutable_shares(b32(si)))
        self.assertEqual(held, sorted((sh % 2, sh) for sh in range(N) if sh not in drop))
        return si

    def assert_rebalanced(self, cap, si, data, seqnum):
        held = [(server, sh) for server, sh, _ in self.mutable_shares(b32(si))]
        # The surplus copies are gone: each share number once, on 7 servers.
        self.assertEqual(sorted(sh for _, sh in held), list(range(N)), held)
        self.assertEqual(len({server for server, _ in held}), 7, held)
        for _, _, share in self.mutable_shares(b32(si)):
            self.assertEqual(int.from_bytes(share[1:9], "big"), seqnum)
        again = self.check(cap, "--verify", want_exit=EXIT_HEALTHY)
        self.assertEqual(again["summary"], "Healthy")
        self.assertGreaterEqual(again["results"]["count-happiness"], HAPPY)
        self.assertFalse(again["results"]["needs-rebalancing"])
        self.assertEqual(again["results"]["count-shares-good"], N)
        out = os.path.join(self.tmp, "rebalanced")
        self.assertEqual(self.cli("mutable", "get", cap, "-o", out).returncode, 0)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == data, "the rebalanced file read back differs")

    def test_mutable_rebalance_crowded_shares(self):
        # All ten shares on two of the seven servers: Tahoe calls it healthy;
        # cairn reports happiness 2 and needs-rebalancing, and the repair
        # copies shares (the same version, the same seqnum) to the servers
        # holding none, then deletes the copies left on the crowded two.
        for fmt, size in (("sdmf", 30000), ("mdmf", 300000)):
            with self.subTest(fmt=fmt):
                data = self.data(size)
                cap = json.loads(self.cli("mutable", "create", self.file(data), "--format", fmt).stdout)["writecap"]
                si = self.crowd(cap)
                r = self.check(cap, want_exit=EXIT_HEALTHY)
                res = r["results"]
                self.assertTrue(res["healthy"])
                self.assertEqual(res["count-happiness"], 2)
                self.assertEqual(res["count-good-share-hosts"], 2)
                self.assertTrue(res["needs-rebalancing"])
                rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
                self.assertTrue(rep["repair-attempted"], rep)
                self.assertTrue(rep["repair-successful"], rep)
                self.assertEqual(rep["seqnum"], 1)  # no new version
                self.assertEqual(rep["rebalance"]["happiness-before"], 2)
                self.assertEqual(rep["rebalance"]["shares-copied"], 5)
                self.assertEqual(rep["rebalance"]["surplus-deleted"], 5)
                self.assertEqual(rep["rebalance"]["copies-failed"], 0)
                post = rep["post-repair-results"]["results"]
                self.assertGreaterEqual(post["count-happiness"], HAPPY)
                self.assertFalse(post["needs-rebalancing"])
                self.assert_rebalanced(cap, si, data, 1)

    def test_mutable_rebalance_after_republish(self):
        # Crowded and a share missing: the repair republishes (seqnum 2; the
        # publish places copies to reach happiness), then the rebalance step
        # deletes the copies of the old placement that became surplus.
        data = self.data(25000)
        cap = self.create_mutable(data)
        si = self.crowd(cap, drop=(9,))
        r = self.check(cap, want_exit=EXIT_UNHEALTHY)
        self.assertEqual(r["results"]["count-shares-good"], N - 1)
        self.assertTrue(r["results"]["needs-rebalancing"])
        rep = self.check(cap, "--repair", want_exit=EXIT_HEALTHY)
        self.assertTrue(rep["repair-successful"], rep)
        self.assertEqual(rep["seqnum"], 2)
        self.assertGreater(rep["rebalance"]["surplus-deleted"], 0)
        self.assert_rebalanced(cap, si, data, 2)

    def hold(self, keys, ms):
        """A debug.hold task on `keys` (exclusive) for `ms`; its task id."""
        c = self.client.control()
        try:
            c.send({"v": 1, "id": 1, "method": "debug.hold", "params": {"keys": keys, "ms": ms}, "wait": False})
            reply = c.read_frame()
        finally:
            c.close()
        self.assertIn("result", reply, reply)
        return reply["result"]["task"]

    def wait_task(self, task):
        c = self.client.control()
        try:
            reply = c.call("tasks.wait", {"id": task})
        finally:
            c.close()
        self.assertIn("result", reply, reply)
        return reply["result"]

    def submit_async(self, *args):
        p = self.cli(*args, "--async")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)["task"]

    def test_mutable_repair_and_put_are_serialized(self):
        first = self.data(9000)
        cap = self.create_mutable(first)
        _, si = mutable_keys(cap)
        server, sh, _ = self.mutable_shares(b32(si))[0]
        self.rtw(server, cap, {sh: {"test": [], "write": [], "new-length": 0}})
        # Both queue behind a hold on the file's slot: the repair first (it
        # republishes seq 1 as seq 2), then the put (seq 3); neither loses
        # its write, and neither sees the other's write as uncoordinated.
        held = self.hold([f"slot/{b32(si)}"], 1500)
        repair = self.submit_async("check", cap, "--repair")
        second = self.data(12000)
        put = self.submit_async("mutable", "put", cap, self.file(second, "second"))
        shown = json.loads(self.cli("tasks", "show", str(repair)).stdout)
        self.assertEqual(shown["state"], "queued")
        self.assertEqual(shown["waiting_on"][0]["held_by"], held)
        self.assertIn({"key": f"slot/{b32(si)}", "mode": "exclusive"}, shown["keys"])
        r, p = self.wait_task(repair), self.wait_task(put)
        self.assertEqual(r["state"], "succeeded", r)
        self.assertEqual(p["state"], "succeeded", p)
        self.assertLessEqual(r["finished_ms"], p["started_ms"])
        self.assertTrue(r["result"]["repair-successful"], r["result"])
        self.assertEqual(r["result"]["seqnum"], 2)
        self.assertEqual(p["result"]["seqnum"], 3)
        out = os.path.join(self.tmp, "serial")
        self.assertEqual(self.cli("mutable", "get", cap, "-o", out).returncode, 0)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == second)
        self.check(cap, want_exit=EXIT_HEALTHY)

    def test_check_is_a_task_with_progress_and_cancel(self):
        data = self.data(3 * SEG)
        cap = json.loads(self.cli("put", self.file(data)).stdout)["cap"]
        # Queued behind a hold on the servers table, a check can be cancelled.
        self.hold(["servers"], 1500)
        queued = self.submit_async("check", cap, "--verify")
        cancel = self.cli("tasks", "cancel", str(queued))
        self.assertEqual(cancel.returncode, 0, cancel.stdout + cancel.stderr)
        done = self.wait_task(queued)
        self.assertEqual(done["state"], "cancelled")
        self.assertEqual(done["error"]["code"], "cancelled")
        # A verify reports its bytes as it goes, and its record keeps the result.
        task = self.submit_async("check", cap, "--verify")
        done = self.wait_task(task)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["kind"], "check")
        self.assertEqual(done["progress"]["phase"], "verifying")
        self.assertEqual(done["progress"]["done"], done["progress"]["total"])
        self.assertTrue(done["result"]["results"]["healthy"])
        self.assertEqual(run_cli("tasks", "wait", str(task), node_dir=self.client.dir).returncode, 0)

    def test_mutable_read_cap_is_not_repaired(self):
        cap = self.create_mutable(self.data(5000))
        readcap = json.loads(run_cli("--json", "debug", "parse-cap", cap, check=True).stdout).get("read_cap")
        self.assertTrue(readcap)
        _, si = mutable_keys(cap)
        server, sh, _ = self.mutable_shares(b32(si))[0]
        self.rtw(server, cap, {sh: {"test": [], "write": [], "new-length": 0}})
        rep = self.check(readcap, "--repair", want_exit=EXIT_UNHEALTHY)
        self.assertFalse(rep["repair-attempted"])
        self.assertIn("write cap", rep["repair-error"])


class RecordingServer(TahoeLikeServer):
    """A Tahoe-like server that also answers PUT /storage/v1/lease/<si> and
    records the secrets it was given."""

    def __init__(self, nickname):
        self.lease_puts = []  # (si b32, renew, cancel)
        super().__init__(nickname)

    def _handler(self):
        base = super()._handler()
        server = self

        class Handler(base):
            def do_PUT(self):
                m = re.fullmatch(r"/storage/v1/lease/([a-z2-7]{26})", self.path)
                if not m:
                    return super().do_PUT() if hasattr(super(), "do_PUT") else self.reply(404)
                if not self.authorized():
                    return
                secrets = self.secrets()
                with server.lock:
                    server.lease_puts.append((m.group(1), secrets.get("lease-renew-secret"),
                                              secrets.get("lease-cancel-secret")))
                    held = m.group(1) in server.buckets or m.group(1) in server.slots
                self.reply(204 if held else 404)

        return Handler


class LeaseTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-lease-", dir="/tmp")
        self.nodes = []
        self.recorders = []

    def tearDown(self):
        for t in self.recorders:
            t.stop()
        stop_grid(self.nodes, self.tmp)

    def node(self, name, patch=None):
        n = Node(name, config_patch=patch)
        n.start()
        self.nodes.append(n)
        return n

    def file(self, data, name):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_add_lease_secrets_match_the_specification(self):
        self.recorders = [RecordingServer(f"tahoe{i}").start() for i in range(2)]
        client = self.node("client", {"client": {"shares_needed": 1, "shares_total": 2, "shares_happy": 2}})
        for t in self.recorders:
            run_cli("servers", "add", "-", node_dir=client.dir, input=t.yaml_entry(), check=True)
        data = os.urandom(4000)
        cap = json.loads(run_cli("--json", "-q", "put", self.file(data, "f"), node_dir=client.dir,
                                 check=True).stdout)["cap"]
        p = run_cli("--json", "-q", "check", cap, "--add-lease", node_dir=client.dir, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(sorted(r["lease"]["renewed"]), ["tahoe0", "tahoe1"])
        si = r["storage-index"]
        with open(os.path.join(client.dir, "private", "secret")) as f:
            client_secret = a2b(f.read().strip())
        for t in self.recorders:
            self.assertEqual(t.lease_puts, [(si, *lease_secrets(client_secret, a2b(si), t.tub_id))])

    def test_renewed_files_survive_the_expiry_sweep(self):
        # Leases of 10 s, swept every 300 ms (limits and storage.lease_expiry).
        patch = {"storage": {"lease_expiry": "age"},
                 "limits": {"store_lease_ms": 10000, "store_sweep_interval_ms": 300}}
        servers = [self.node(f"s{i}", patch) for i in range(3)]
        client = self.node("client", {"client": {"shares_needed": 2, "shares_total": 3, "shares_happy": 3}})
        nurls = []
        for i, s in enumerate(servers):
            nurl = run_cli("nurl", node_dir=s.dir, check=True).stdout.strip()
            nurls.append(nurl)
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=client.dir, check=True)

        def put(data, name):
            p = run_cli("--json", "-q", "put", self.file(data, name), node_dir=client.dir, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout)["cap"]

        kept_data = os.urandom(30000)
        kept = put(kept_data, "kept")
        dropped = put(os.urandom(30000), "dropped")

        def check(cap, *flags):
            return run_cli("--json", "-q", "check", cap, *flags, node_dir=client.dir, timeout=120)

        dropped_si = json.loads(check(dropped).stdout)["storage-index"]

        def dropped_gone():
            # Renew the kept file's leases while waiting for the other's to expire.
            renewed = check(kept, "--add-lease")
            self.assertEqual(renewed.returncode, 0, renewed.stdout + renewed.stderr)
            self.assertEqual(len(json.loads(renewed.stdout)["lease"]["renewed"]), 3)
            for nurl in nurls:
                c = GbsClient(nurl)
                try:
                    if c.list_shares(dropped_si):
                        return False
                finally:
                    c.close()
            return True

        deadline = time.monotonic() + 60
        while not dropped_gone():
            self.assertLess(time.monotonic(), deadline, "the un-renewed file was never collected")
            time.sleep(1)
        self.assertEqual(check(kept).returncode, EXIT_HEALTHY)
        self.assertEqual(check(dropped).returncode, EXIT_UNRECOVERABLE)
        out = os.path.join(self.tmp, "out")
        self.assertEqual(run_cli("-q", "get", kept, "-o", out, node_dir=client.dir, timeout=120).returncode, 0)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == kept_data)


if __name__ == "__main__":
    unittest.main()
