"""Tahoe-LAFS directories through real cairnd nodes on 127.0.0.1: four
storage nodes and client nodes whose grid is those four (2-of-4, happiness
3). Trees built with mkdir/put/ln/mv/rm and read back with ls/get; NFD names
stored as NFC; read caps that show no write cap; an unknown cap's entry kept
byte for byte through a change of another child; and no lost updates:
twenty concurrent changes to one directory on one node, then two and eight
client nodes adding children to one directory at the same moment, round
after round (CAIRN_DIR_ROUNDS rounds, default 50, as the issue asks)."""
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import unicodedata
import unittest

from pylib.cairntest import Node, binary, run_cli, stop_grid

K, N, HAPPY = 2, 4, 3
ROUNDS = int(os.environ.get("CAIRN_DIR_ROUNDS", "50"))


def ns(data):
    return str(len(data)).encode() + b":" + data + b","


def tagged_hash(tag, value, size=32):
    return hashlib.sha256(hashlib.sha256(ns(tag) + value).digest()).digest()[:size]


def b32decode(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def file_cap_of(dircap):
    """The cap of the file behind a directory cap (tahoe-dirnodes.md A.1)."""
    return dircap.replace("URI:DIR2:", "URI:SSK:", 1)


class DirsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = [Node(f"s{i}") for i in range(4)]
        for s in cls.servers:
            s.start()
        cls.nurls = [run_cli("nurl", node_dir=s.dir, check=True).stdout.strip() for s in cls.servers]
        cls.clients = []
        cls.client = cls.new_client("c0")
        cls.tmp = tempfile.mkdtemp(prefix="cairn-dirs-", dir="/tmp")

    @classmethod
    def new_client(cls, name):
        node = Node(name, config_patch={
            "client": {"shares_needed": K, "shares_total": N, "shares_happy": HAPPY},
            "limits": {"control_inflight": 64}})
        node.start()
        for i, nurl in enumerate(cls.nurls):
            run_cli("servers", "add", nurl, "--nickname", f"s{i}", node_dir=node.dir, check=True)
        cls.clients.append(node)
        return node

    @classmethod
    def tearDownClass(cls):
        stop_grid(cls.servers + cls.clients, cls.tmp)

    # --- helpers -------------------------------------------------------------

    def cli(self, *args, node=None, input=None):
        return run_cli("--json", "-q", *args, node_dir=(node or self.client).dir, timeout=180, input=input)

    def ok(self, *args, node=None, input=None):
        p = self.cli(*args, node=node, input=input)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stdout} {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def error(self, code, exit_code, *args, node=None):
        p = self.cli(*args, node=node)
        self.assertEqual(p.returncode, exit_code, f"{args}: {p.stdout} {p.stderr}")
        self.assertEqual(json.loads(p.stdout)["error"]["code"], code, p.stdout)

    def file(self, data, name="in"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def ls(self, target, node=None):
        listing = self.ok("ls", target, node=node)
        self.assertEqual(listing[0], "dirnode", listing)
        return listing[1]

    def get(self, target, node=None):
        out = os.path.join(self.tmp, "out")
        self.ok("get", target, "-o", out, node=node)
        with open(out, "rb") as f:
            return f.read()

    def alias(self, name):
        p = run_cli("alias", "create", name, node_dir=self.client.dir, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        cap = p.stdout.strip()
        self.assertTrue(cap.startswith("URI:DIR2:"), cap)
        return cap

    # --- round trips ---------------------------------------------------------

    def test_tree_round_trip(self):
        root = self.alias("tree")
        self.assertEqual(self.ls("tree:")["children"], {})  # an empty directory
        sub = self.ok("mkdir", "tree:docs")["cap"]
        self.ok("mkdir", "tree:docs/deep")
        self.ok("mkdir", "tree:empty")
        big = os.urandom(70000)
        self.ok("put", self.file(big, "big"), "tree:docs/deep/big.bin")
        self.ok("put", self.file(b"tiny", "tiny"), "tree:docs/tiny.txt")
        self.assertEqual(self.get("tree:docs/deep/big.bin"), big)
        self.assertEqual(self.get("tree:docs/tiny.txt"), b"tiny")
        # A cap root with a path, in both of Tahoe's forms.
        self.assertEqual(self.get(root + "/docs/tiny.txt"), b"tiny")
        self.assertEqual(self.get(root + ":./docs/tiny.txt"), b"tiny")

        top = self.ls("tree:")
        self.assertEqual(sorted(top["children"]), ["docs", "empty"])
        kind, props = top["children"]["docs"]
        self.assertEqual(kind, "dirnode")
        self.assertEqual(props["rw_uri"], sub)
        self.assertEqual(set(props["metadata"]["tahoe"]), {"linkcrtime", "linkmotime"})
        self.assertEqual(top["rw_uri"], root)
        # A directory's cap is not a mutable file's: neither read nor
        # overwritten as one (its children would be lost).
        self.error("bad_cap", 7, "mutable", "put", root, self.file(b"not a directory", "nd"))
        self.error("bad_cap", 7, "mutable", "get", root)
        self.assertEqual(sorted(self.ls("tree:")["children"]), ["docs", "empty"])
        self.assertEqual(self.ls("tree:empty")["children"], {})
        docs = self.ls("tree:docs")
        self.assertEqual(docs["children"]["tiny.txt"][1]["format"], "CHK")
        self.assertEqual(docs["children"]["tiny.txt"][1]["size"], 4)
        self.assertEqual(self.ls("tree:docs/deep")["children"]["big.bin"][1]["size"], 70000)

        # The read cap lists the same tree and shows no write cap anywhere.
        ro = top["ro_uri"]
        self.assertTrue(ro.startswith("URI:DIR2-RO:"))
        ro_top = self.ls(ro)
        self.assertNotIn("rw_uri", ro_top)
        for name, (kind, props) in ro_top["children"].items():
            self.assertNotIn("rw_uri", props, name)
        deep_ro = self.ls(ro + "/docs")
        for name, (kind, props) in deep_ro["children"].items():
            self.assertNotIn("rw_uri", props, name)
        self.assertEqual(self.get(ro + "/docs/tiny.txt"), b"tiny")
        # ... and cannot change it.
        p = self.cli("mkdir", ro + "/nope")
        self.assertEqual(p.returncode, 77, p.stdout)

        # mkdir over an existing name: conflict (exit 4); a missing parent: not found (3).
        self.error("conflict", 4, "mkdir", "tree:docs")
        self.error("not_found", 3, "mkdir", "tree:missing/x")
        self.error("not_found", 3, "get", "tree:docs/none.txt")
        self.error("not_found", 3, "ls", "nosuchalias:")

        # ln, mv within one directory and across two, rm.
        tiny_cap = docs["children"]["tiny.txt"][1]["ro_uri"]
        self.ok("ln", tiny_cap, "tree:empty/linked.txt")
        self.ok("ln", "tree:docs/tiny.txt", "tree:empty/")
        self.assertEqual(sorted(self.ls("tree:empty")["children"]), ["linked.txt", "tiny.txt"])
        self.ok("mv", "tree:empty/linked.txt", "tree:empty/renamed.txt")
        self.ok("mv", "tree:empty/renamed.txt", "tree:docs/moved.txt")
        self.assertEqual(sorted(self.ls("tree:empty")["children"]), ["tiny.txt"])
        self.assertIn("moved.txt", self.ls("tree:docs")["children"])
        self.assertEqual(self.get("tree:docs/moved.txt"), b"tiny")
        self.ok("rm", "tree:empty/tiny.txt")
        self.assertEqual(self.ls("tree:empty")["children"], {})
        self.error("not_found", 3, "rm", "tree:empty/tiny.txt")
        # mv never replaces a directory (replace=only-files).
        self.error("conflict", 4, "mv", "tree:docs/moved.txt", "tree:docs/deep")

        # Plain output: names, and -l lines.
        p = run_cli("ls", "tree:docs", node_dir=self.client.dir, check=True)
        self.assertEqual(p.stdout.split(), ["deep", "moved.txt", "tiny.txt"])
        p = run_cli("ls", "-l", "tree:docs", node_dir=self.client.dir, check=True)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("drw") and lines[0].endswith(" deep"), lines)
        self.assertTrue(lines[2].startswith("-r-") and lines[2].endswith(" tiny.txt"), lines)

    def test_nfd_names_are_stored_as_nfc(self):
        self.alias("names")
        nfd = unicodedata.normalize("NFD", "caf\u00e9 \u2615 \u00c5ngstr\u00f6m")
        self.assertNotEqual(nfd, unicodedata.normalize("NFC", nfd))
        self.ok("put", self.file(b"x" * 100, "nfd"), "names:" + nfd)
        nfc = unicodedata.normalize("NFC", nfd)
        self.assertEqual(list(self.ls("names:")["children"]), [nfc])
        # Looked up by either form.
        self.assertEqual(self.get("names:" + nfd), b"x" * 100)
        self.assertEqual(self.get("names:" + nfc), b"x" * 100)
        # The stored bytes are NFC.
        cap = self.ls("names:")["rw_uri"]
        out = os.path.join(self.tmp, "body")
        self.ok("mutable", "get", file_cap_of(cap), "-o", out)
        with open(out, "rb") as f:
            body = f.read()
        self.assertIn(ns(nfc.encode()), body)
        self.assertNotIn(nfd.encode(), body)

    def test_unknown_cap_kept_through_another_change(self):
        cap = self.alias("future")
        self.ok("put", self.file(b"a" * 80, "a"), "future:a.txt")
        out = os.path.join(self.tmp, "body")
        self.ok("mutable", "get", file_cap_of(cap), "-o", out)
        with open(out, "rb") as f:
            body = f.read()
        # A child of a kind cairn does not know, written as Tahoe writes one:
        # its ro slot as given, a 48-byte rw slot for "no write cap".
        writekey = b32decode(cap.split(":")[2])
        salt = tagged_hash(b"allmydata_dirnode_child_rwcap_to_salt_v1", b"", 16)
        key = hashlib.sha256(hashlib.sha256(
            ns(b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1") + ns(salt) + ns(writekey)).digest()
        ).digest()[:16]
        ikey = bytes(b ^ 0x36 for b in key)
        okey = bytes(b ^ 0x5c for b in key)
        mac = hashlib.sha256(okey + hashlib.sha256(ikey + salt).digest()).digest()
        unknown = ns(ns(b"future") + ns(b"x-tahoe-future:abc") + ns(salt + mac) + ns(b'{"odd": [1, 2.5, "\\u00fc"]}'))
        self.ok("mutable", "put", file_cap_of(cap), self.file(body + unknown, "newbody"))
        listed = self.ls("future:")["children"]
        self.assertEqual(listed["future"][0], "unknown")
        self.assertEqual(listed["future"][1]["ro_uri"], "ro.x-tahoe-future:abc")
        # Another child changes; the unknown entry's bytes stay as they were.
        self.ok("put", self.file(b"b" * 80, "b"), "future:b.txt")
        self.ok("rm", "future:a.txt")
        self.ok("mutable", "get", file_cap_of(cap), "-o", out)
        with open(out, "rb") as f:
            after = f.read()
        self.assertIn(unknown, after)
        self.assertEqual(sorted(self.ls("future:")["children"]), ["b.txt", "future"])

    def test_debug_dirnode_reads_a_body_offline(self):
        cap = self.alias("offline")
        self.ok("put", self.file(b"z" * 90, "z"), "offline:z.txt")
        out = os.path.join(self.tmp, "body")
        self.ok("mutable", "get", file_cap_of(cap), "-o", out)
        with open(out, "rb") as f:
            body = f.read()
        p = run_cli("--json", "debug", "dirnode", cap, input=body)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), self.ok("ls", "offline:"))

    def vector(self, name):
        with open(os.path.join(os.environ.get("CAIRN_ROOT", "."), "test/vectors/dirs", name)) as f:
            return json.load(f)

    def test_tahoe_immutable_directories_list_as_tahoe_did(self):
        # A DIR2-LIT directory holds its body in the cap: no grid read.
        v = self.vector("lit-dir-unknown-child.json")
        self.assertEqual(self.ok("ls", v["dir_readcap"]), v["web_tjson"])
        # A DIR2-CHK directory: Tahoe's body stored here as a CHK file (its
        # cap then differs from Tahoe's, whose key came from Tahoe's
        # convergence secret), read through the directory prefix.
        v = self.vector("chk-dir-mkdir-immutable.json")
        body = base64.b64decode(v["body_b64"])
        cap = self.ok("put", self.file(body, "chkdir"))["cap"]
        dircap = cap.replace("URI:CHK:", "URI:DIR2-CHK:", 1)
        listing = self.ok("ls", dircap)
        self.assertEqual(listing[1]["children"], v["web_tjson"][1]["children"])
        self.assertEqual(listing[1]["ro_uri"], dircap)
        self.assertFalse(listing[1]["mutable"])
        lit = v["web_tjson"][1]["children"]["lit.txt"][1]["ro_uri"]
        self.assertEqual(self.get(dircap + "/lit.txt"), b32decode(lit[len("URI:LIT:"):]))
        # An immutable directory cannot be changed.
        p = self.cli("mkdir", dircap + "/new")
        self.assertEqual(p.returncode, 77, p.stdout)
        # A directory cap is not a file: `get` refuses it rather than
        # writing out the directory's encrypted body.
        self.error("bad_cap", 7, "get", dircap)

    def test_an_mdmf_directory_is_read_and_changed(self):
        # An empty MDMF file is an empty directory's body; its cap under
        # the DIR2-MDMF prefix names that directory, as Tahoe's
        # `mkdir --format=MDMF` would make it.
        filecap = self.ok("mutable", "create", "--format", "mdmf", self.file(b"", "empty"))["writecap"]
        self.assertTrue(filecap.startswith("URI:MDMF:"), filecap)
        dircap = filecap.replace("URI:MDMF:", "URI:DIR2-MDMF:", 1)
        self.assertEqual(self.ls(dircap)["children"], {})
        data = os.urandom(5000)
        self.ok("put", self.file(data, "m"), dircap + "/m.bin")
        self.ok("mkdir", dircap + "/sub")
        self.assertEqual(sorted(self.ls(dircap)["children"]), ["m.bin", "sub"])
        self.assertEqual(self.get(dircap + "/m.bin"), data)
        self.ok("rm", dircap + "/sub")
        self.assertEqual(sorted(self.ls(dircap)["children"]), ["m.bin"])

    def test_mkdir_format_mdmf(self):
        # A new MDMF directory, alone and linked at a path: a DIR2-MDMF cap
        # whose backing file is an MDMF file (read as such), changed like
        # any directory.
        alone = self.ok("mkdir", "--format", "mdmf")["cap"]
        self.assertTrue(alone.startswith("URI:DIR2-MDMF:"), alone)
        self.assertEqual(self.ls(alone)["children"], {})
        self.alias("mdmfdirs")
        linked = self.ok("mkdir", "--format=MDMF", "mdmfdirs:m")["cap"]
        self.assertTrue(linked.startswith("URI:DIR2-MDMF:"), linked)
        self.assertEqual(self.ls("mdmfdirs:")["children"]["m"][1]["rw_uri"], linked)
        data = os.urandom(3000)
        self.ok("put", self.file(data, "md"), "mdmfdirs:m/f.bin")
        self.ok("mkdir", "mdmfdirs:m/sub")
        self.assertEqual(sorted(self.ls("mdmfdirs:m")["children"]), ["f.bin", "sub"])
        self.assertEqual(self.get("mdmfdirs:m/f.bin"), data)
        # The backing file is MDMF: the mutable reader of MDMF files reads the body.
        filecap = linked.replace("URI:DIR2-MDMF:", "URI:MDMF:", 1)
        out = os.path.join(self.tmp, "mdmf-body")
        self.ok("mutable", "get", filecap, "-o", out)
        with open(out, "rb") as f:
            self.assertIn(b"f.bin", f.read())
        # The default stays SDMF; an unknown format is refused.
        self.assertTrue(self.ok("mkdir")["cap"].startswith("URI:DIR2:"))
        self.error("invalid_argument", 2, "mkdir", "--format", "chk")

    def test_alias_import_and_export(self):
        d1 = self.alias("exp1")
        d2 = self.ok("mkdir")["cap"]
        lit = self.ok("put", self.file(b"tiny", "tiny"))["cap"]
        self.ok("alias", "add", "afile", lit)
        # Export: Tahoe's "NAME: CAP" lines, directories only.
        out = os.path.join(self.tmp, "aliases-out")
        p = run_cli("alias", "export", out, node_dir=self.client.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("left out alias 'afile'", p.stderr)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertIn(f"exp1: {d1}", lines)
        self.assertFalse(any(l.startswith("afile:") for l in lines))
        for line in lines:
            self.assertRegex(line, r"^[A-Za-z0-9][A-Za-z0-9._-]*: URI:DIR2")
        self.assertEqual(run_cli("alias", "export", node_dir=self.client.dir).stdout.splitlines(), lines)
        # Import, in Tahoe's reading: comments, blank lines, "x:URI" with no space.
        src = self.file(("# exported by tahoe\n\n"
                         f"imp1: {d2}\n"
                         f"imp2:{d1.replace('URI:DIR2:', 'URI:DIR2:', 1)}  \n").encode(), "aliases-in")
        self.ok("alias", "import", src)
        self.assertEqual(self.ok("alias", "get", "imp1")["cap"], d2)
        self.assertEqual(self.ok("alias", "get", "imp2")["cap"], d1)
        self.assertEqual(self.ls("imp2:"), self.ls("exp1:"))
        # All or nothing: one existing name, a file cap or a bad name adds none.
        for text, code, exit_code in ((f"imp3: {d2}\nimp1: {d2}\n", "conflict", 4),
                                      (f"imp3: {d2}\nimp4: {lit}\n", "bad_cap", 7),
                                      (f"imp3: {d2}\n  sp ace : {d2}\n", "invalid_argument", 2)):
            self.error(code, exit_code, "alias", "import", self.file(text.encode(), "aliases-bad"))
            self.error("not_found", 3, "alias", "get", "imp3")
        # A file another node exported imports there whole.
        other = self.new_client("c_alias")
        p = run_cli("--json", "alias", "import", out, node_dir=other.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["imported"], len(lines))
        self.assertEqual(run_cli("alias", "export", node_dir=other.dir).stdout.splitlines(), sorted(lines))

    def test_ls_of_a_file(self):
        self.alias("onefile")
        self.ok("put", self.file(b"q" * 60, "q"), "onefile:q.txt")
        kind, props = self.ok("ls", "onefile:q.txt")
        self.assertEqual(kind, "filenode")
        self.assertEqual(props["size"], 60)
        self.assertIn("tahoe", props["metadata"])

    def test_cp_trees_both_ways(self):
        self.alias("cp")
        src = os.path.join(self.tmp, "tree-src")
        os.makedirs(os.path.join(src, "sub", "deeper"))
        os.makedirs(os.path.join(src, "empty"))
        files = {"a.txt": b"a" * 10, "sub/b.bin": os.urandom(5000), "sub/deeper/c": b"",
                 unicodedata.normalize("NFD", "sub/\u00e9t\u00e9.txt"): b"summer"}
        for rel, data in files.items():
            with open(os.path.join(src, rel), "wb") as f:
                f.write(data)
        os.symlink("a.txt", os.path.join(src, "link"))
        p = run_cli("-q", "cp", "-r", src, "cp:backup", node_dir=self.client.dir, timeout=300)
        self.assertEqual(p.returncode, 2, p.stderr)  # the symlink was skipped
        self.assertIn("link", p.stderr)
        self.assertEqual(sorted(self.ls("cp:backup")["children"]), ["a.txt", "empty", "sub"])
        dst = os.path.join(self.tmp, "tree-dst")
        p = run_cli("-q", "cp", "-r", "cp:backup", dst, node_dir=self.client.dir, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        for rel, data in files.items():
            with open(os.path.join(dst, unicodedata.normalize("NFC", rel)), "rb") as f:
                self.assertEqual(f.read(), data, rel)
        self.assertTrue(os.path.isdir(os.path.join(dst, "empty")))
        # One file each way, and grid to grid (a link).
        self.ok("cp", os.path.join(src, "a.txt"), "cp:")
        self.ok("cp", "cp:a.txt", "cp:backup/sub/")
        out = os.path.join(self.tmp, "one")
        self.ok("cp", "cp:backup/sub/a.txt", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"a" * 10)

    # --- no lost updates ------------------------------------------------------

    def run_all(self, commands):
        """Runs (node, args) commands at once; returns their CompletedProcesses."""
        results = [None] * len(commands)

        def one(i, node, args):
            results[i] = run_cli("--json", "-q", *args, node_dir=node.dir, timeout=300)

        threads = [threading.Thread(target=one, args=(i, n, a)) for i, (n, a) in enumerate(commands)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_twenty_concurrent_changes_on_one_node(self):
        self.alias("busy")
        lit = "URI:LIT:" + base64.b32encode(b"hello").decode().lower().rstrip("=")
        commands = []
        for i in range(20):
            if i % 2:
                commands.append((self.client, ["mkdir", f"busy:d{i}"]))
            else:
                commands.append((self.client, ["ln", lit, f"busy:l{i}"]))
        for p in self.run_all(commands):
            self.assertEqual(p.returncode, 0, f"{p.stdout} {p.stderr}")
        names = set(self.ls("busy:")["children"])
        self.assertEqual(names, {f"d{i}" if i % 2 else f"l{i}" for i in range(20)})

    def concurrent_clients(self, count, rounds):
        while len(self.clients) < count:
            self.new_client(f"c{len(self.clients)}")
        clients = self.clients[:count]
        alias = f"shared{count}"
        cap = self.alias(alias)
        for c in clients[1:]:
            run_cli("alias", "add", alias, cap, node_dir=c.dir, check=True)
        lit = "URI:LIT:" + base64.b32encode(b"child").decode().lower().rstrip("=")
        expected = set()
        for r in range(rounds):
            names = [f"r{r}-c{i}" for i in range(count)]
            results = self.run_all([(c, ["ln", lit, f"{alias}:{n}"]) for c, n in zip(clients, names)])
            for name, p in zip(names, results):
                # Every command succeeded: the names differ, so no change can
                # stop applying, and a silent loss would show below.
                self.assertEqual(p.returncode, 0, f"round {r} {name}: {p.stdout} {p.stderr}")
            expected.update(names)
            listed = set(self.ls(f"{alias}:")["children"])
            self.assertEqual(expected - listed, set(), f"round {r}: lost {sorted(expected - listed)}")
            self.assertEqual(listed, expected)

    def test_two_clients_at_once(self):
        self.concurrent_clients(2, ROUNDS)

    def test_eight_clients_at_once(self):
        self.concurrent_clients(8, ROUNDS)


if __name__ == "__main__":
    unittest.main()
