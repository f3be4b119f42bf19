"""servers add / remove / list over a real cairnd: NURLs validated, ids from
the SPKI hash, unique nicknames checked under the servers lock, concurrent
adds of one server (one wins, the others get conflict), durable across a
restart; servers from a Tahoe-LAFS announcement (YAML or JSON) keep its tub
id and permutation seed, a cairn node's entry stays a cairn node, and every
listing says which kind of identity each server has."""
import base64
import json
import threading
import unittest

from pylib.cairntest import ControlConn, Node, run_cli


def nurl(i, port=3456):
    spki = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" + str(i))[-43:]
    return f"pb://{spki}@127.0.0.1:{port}/swissnum{i}#v=1"


class ServersTest(unittest.TestCase):
    def setUp(self):
        self.node = Node()
        self.node.start()
        self.c = self.node.control()

    def tearDown(self):
        self.c.close()
        code = self.node.stop()
        self.node.cleanup()
        self.assertEqual(code, 0)

    def test_add_list_remove(self):
        r = self.c.call("servers.add", {"nurl": nurl(1), "nickname": "nas1"})["result"]
        self.assertEqual(r["id"], nurl(1)[5:48])
        self.assertEqual(r["nickname"], "nas1")
        r2 = self.c.call("servers.add", {"nurl": nurl(2, 4000)})["result"]
        self.assertEqual(r2["nickname"], "127.0.0.1:4000")           # default nickname
        listed = self.c.call("servers.list", {})["result"]["servers"]
        self.assertEqual(sorted(s["nickname"] for s in listed), ["127.0.0.1:4000", "nas1"])
        self.assertEqual(self.c.call("servers.add", {"nurl": nurl(1)})["error"]["code"], "conflict")
        dup = self.c.call("servers.add", {"nurl": nurl(3), "nickname": "nas1"})["error"]
        self.assertEqual(dup["code"], "conflict")
        self.assertIn("nickname", dup["message"])
        self.assertEqual(self.c.call("servers.add", {"nurl": "pb://x@tcp:h:1/s#v=1"})["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.c.call("servers.remove", {"server": "nas1"})["result"]["id"], r["id"])
        self.assertEqual(self.c.call("servers.remove", {"server": r2["id"]})["result"]["nickname"], "127.0.0.1:4000")
        self.assertEqual(self.c.call("servers.remove", {"server": "nas1"})["error"]["code"], "not_found")
        self.assertEqual(self.c.call("servers.list", {})["result"]["servers"], [])

    def test_concurrent_adds_of_one_server(self):
        conns = [ControlConn(self.node.dir) for _ in range(10)]
        barrier = threading.Barrier(10)
        replies = [None] * 10

        def run(i):
            barrier.wait()
            conns[i].send({"v": 1, "id": i, "method": "servers.add", "params": {"nurl": nurl(5), "nickname": f"n{i}"}})
            replies[i] = conns[i].read_final()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for c in conns:
            c.close()
        self.assertEqual(sum("result" in r for r in replies), 1, replies)
        self.assertTrue(all(r["error"]["code"] == "conflict" for r in replies if "error" in r))
        self.assertEqual(len(self.c.call("servers.list", {})["result"]["servers"]), 1)

    def test_cli_and_restart(self):
        d = self.node.dir
        p = run_cli("servers", "add", nurl(7), "--nickname", "attic", node_dir=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.c.close()
        self.assertEqual(self.node.stop(), 0)
        self.node.start()
        self.c = self.node.control()
        out = json.loads(run_cli("--json", "servers", "list", node_dir=d, check=True).stdout)
        self.assertEqual([s["nickname"] for s in out["servers"]], ["attic"])
        self.assertIn("attic", run_cli("servers", "list", node_dir=d, check=True).stdout)
        self.assertEqual(run_cli("servers", "remove", "attic", node_dir=d).returncode, 0)
        self.assertEqual(run_cli("servers", "bogus", node_dir=d).returncode, 2)

    def test_announcement_identity(self):
        d = self.node.dir
        tub = "rey27xyj6db57olcf56rihhartvhkvd6"
        seed = "7efuo5epthuik2k5rrg7pxiy7woldrbjlpd2ayyctf5dpjr4m4pq"
        entry = (f"  v0-{seed}:\n"
                 "    ann:\n"
                 "      nickname: tahoe-nas\n"
                 f"      anonymous-storage-FURL: pb://{tub}@tcp:10.0.0.9:4000/swissnum8\n"
                 "      anonymous-storage-NURLs:\n"
                 f"        - {nurl(8)}\n"
                 f"      permutation-seed-base32: {seed}\n"
                 "      my-version: tahoe-lafs/1.20.0\n")
        p = run_cli("servers", "add", "-", node_dir=d, input=entry)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("identity announced", p.stderr)
        # The swissnum is never echoed back in messages.
        self.assertNotIn("swissnum8", p.stderr)
        # A cairn node's entry (tub id and seed = its SPKI seed) is a cairn node; the NURL alone is too.
        self.c.call("servers.add", {"nurl": nurl(10), "nickname": "cairn-by-nurl"})
        own = run_cli("--json", "servers", "list", node_dir=d, check=True)
        listed = {s["nickname"]: s for s in json.loads(own.stdout)["servers"]}
        cairn_seed = listed["cairn-by-nurl"]["tub_id"]
        self.assertEqual(listed["cairn-by-nurl"]["identity"], "cairn")
        self.assertEqual(listed["cairn-by-nurl"]["permutation_seed"], cairn_seed)
        ann = {"server_id": "v0-cairn-" + cairn_seed,
               "ann": {"nickname": "cairn-entry", "anonymous-storage-FURL": f"pb://{cairn_seed}@tcp:h:1/s",
                       "anonymous-storage-NURLs": [f"pb://{'Z' * 42}A@127.0.0.1:3456/swissnumZ#v=1"],
                       "permutation-seed-base32": cairn_seed}}
        # Same tub id as nurl(10)'s seed but another NURL: it is announced (the seeds are not its own).
        r = self.c.call("servers.add", {"announcement": ann["ann"], "server_id": ann["server_id"]})["result"]
        self.assertEqual(r["identity"], "announced")
        listed = {s["nickname"]: s for s in self.c.call("servers.list", {})["result"]["servers"]}
        self.assertEqual(listed["tahoe-nas"]["identity"], "announced")
        self.assertEqual(listed["tahoe-nas"]["tub_id"], tub)
        self.assertEqual(listed["tahoe-nas"]["permutation_seed"], seed)
        self.assertEqual(listed["tahoe-nas"]["server_id"], "v0-" + seed)
        self.assertEqual(listed["tahoe-nas"]["id"], nurl(8)[5:48])
        text = run_cli("servers", "list", node_dir=d, check=True).stdout
        self.assertIn(f"identity announced: tub id {tub}", text)
        self.assertIn("identity cairn", text)
        # A cairn node's own entry, seeds matching its NURL: kept as a cairn node.
        self.c.call("servers.remove", {"server": "cairn-by-nurl"})
        mine = dict(ann["ann"], **{"anonymous-storage-NURLs": [nurl(10)], "nickname": "cairn-entry2"})
        r = self.c.call("servers.add", {"announcement": mine})["result"]
        self.assertEqual(r["identity"], "cairn")
        self.assertEqual(r["tub_id"], cairn_seed)
        # What is refused, and why.
        bad = [({"anonymous-storage-FURL": f"pb://{tub}@tcp:h:1/s"}, "anonymous-storage-NURLs"),
               ({"anonymous-storage-NURLs": [nurl(11)], "permutation-seed-base32": seed}, "anonymous-storage-FURL"),
               ({"anonymous-storage-NURLs": [nurl(11)], "anonymous-storage-FURL": "pb://short@h/s"}, "tub id"),
               ({"anonymous-storage-NURLs": [nurl(11)], "anonymous-storage-FURL": f"pb://{tub}@h/s"},
                "permutation-seed-base32"),
               ({"anonymous-storage-NURLs": ["pb://x@tcp:h:1/secret#v=1"], "anonymous-storage-FURL": f"pb://{tub}@h/s",
                 "permutation-seed-base32": seed}, "GBS NURL")]
        for a, why in bad:
            e = self.c.call("servers.add", {"announcement": a})["error"]
            self.assertEqual(e["code"], "invalid_argument", a)
            self.assertIn(why, e["message"])
            self.assertNotIn("secret", e["message"])
        e = self.c.call("servers.add", {"nurl": nurl(12), "announcement": ann["ann"]})["error"]
        self.assertEqual(e["code"], "invalid_argument")
        p = run_cli("servers", "add", "-", node_dir=d, input="hello: world\nmore: words\n")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("not a Tahoe-LAFS server entry", p.stderr)

    def test_tahoe_entry_of_a_cairn_node_adds_it_as_a_cairn_node(self):
        other = Node("other")
        try:
            entry = run_cli("tahoe-entry", node_dir=other.dir, check=True).stdout
            other_nurl = run_cli("nurl", node_dir=other.dir, check=True).stdout.strip()
            p = run_cli("--json", "servers", "add", "-", node_dir=self.node.dir, input=entry)
            self.assertEqual(p.returncode, 0, p.stderr)
            r = json.loads(p.stdout)
            self.assertEqual((r["identity"], r["nickname"], r["nurl"]), ("cairn", "other", other_nurl))
            self.assertEqual(r["id"], other_nurl[5:48])
            # The JSON form of the same entry, under another nickname: the same server (conflict).
            as_json = run_cli("--json", "tahoe-entry", node_dir=other.dir, check=True).stdout
            p = run_cli("servers", "add", "-", "--nickname", "again", node_dir=self.node.dir, input=as_json)
            self.assertEqual(p.returncode, 4, p.stderr)
            self.c.call("servers.remove", {"server": "other"})
            p = run_cli("--json", "servers", "add", "-", node_dir=self.node.dir, input=as_json)
            self.assertEqual(json.loads(p.stdout)["identity"], "cairn", p.stdout + p.stderr)
        finally:
            other.cleanup()

    def test_import_servers_yaml(self):
        d = self.node.dir
        tmp = self.node.dir + "/servers.yaml"

        def seed_of(n):
            spki = n[5:48]
            raw = base64.urlsafe_b64decode(spki + "=")[:20]
            return base64.b32encode(raw).decode().lower().rstrip("=")

        tub = "rey27xyj6db57olcf56rihhartvhkvd6"
        seed = "7efuo5epthuik2k5rrg7pxiy7woldrbjlpd2ayyctf5dpjr4m4pq"
        cairn_seed = seed_of(nurl(8))
        good = ("storage:\n"
                f"  v0-cairn-{cairn_seed}:\n"
                "    ann:\n"
                "      nickname: \"attic\"\n"
                f"      anonymous-storage-FURL: pb://{cairn_seed}@tcp:127.0.0.1:3456/swissnum8\n"
                f"      anonymous-storage-NURLs:\n        - {nurl(8)}\n"
                f"      permutation-seed-base32: {cairn_seed}\n"
                "  v0-foolscap-only:\n"
                "    ann:\n"
                "      nickname: old\n"
                f"      anonymous-storage-FURL: pb://{tub}@tcp:10.0.0.2:4000/swissnumF\n"
                f"  v0-{seed}:\n"
                "    ann:\n"
                "      nickname: tahoe-nas\n"
                f"      anonymous-storage-FURL: pb://{tub}@tcp:10.0.0.9:4000/swissnum10\n"
                f"      anonymous-storage-NURLs: [{nurl(10)}]\n")
        # A malformed entry: refused, naming it; nothing imported.
        with open(tmp, "w") as f:
            f.write(good + "  v0-broken:\n    nickname: no announcement\n")
        p = run_cli("servers", "import", tmp, node_dir=d)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("v0-broken", p.stderr)
        self.assertIn("nothing was imported", p.stderr)
        # An entry the daemon refuses (a FURL whose tub id is not 20 bytes): nothing imported either.
        with open(tmp, "w") as f:
            f.write(good + "  v0-badtub:\n    ann:\n      anonymous-storage-FURL: pb://abc@h/s\n"
                           f"      anonymous-storage-NURLs: [{nurl(14)}]\n")
        p = run_cli("servers", "import", tmp, node_dir=d)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("v0-badtub", p.stderr)
        self.assertEqual(self.c.call("servers.list", {})["result"]["servers"], [])
        # A server already in the grid: conflict, nothing imported.
        self.c.call("servers.add", {"nurl": nurl(10), "nickname": "there"})
        with open(tmp, "w") as f:
            f.write(good)
        p = run_cli("servers", "import", tmp, node_dir=d)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("nothing was imported", p.stderr)
        self.assertEqual(len(self.c.call("servers.list", {})["result"]["servers"]), 1)
        self.c.call("servers.remove", {"server": "there"})
        # The good file: the cairn entry stays a cairn node, the Tahoe entry is announced
        # (its seed from its v0- id), the Foolscap-only one is skipped with why.
        out = json.loads(run_cli("--json", "servers", "import", tmp, node_dir=d, check=True).stdout)
        imported = {s["nickname"]: s for s in out["imported"]}
        self.assertEqual(set(imported), {"attic", "tahoe-nas"})
        self.assertEqual(imported["attic"]["identity"], "cairn")
        self.assertEqual(imported["tahoe-nas"]["identity"], "announced")
        self.assertEqual(imported["tahoe-nas"]["permutation_seed"], seed)
        self.assertEqual(imported["tahoe-nas"]["tub_id"], tub)
        self.assertEqual(out["skipped"][0]["server_id"], "v0-foolscap-only")
        self.assertIn("NURL", out["skipped"][0]["why"])
        self.assertEqual(len(self.c.call("servers.list", {})["result"]["servers"]), 2)
        # Text output names what was skipped and never a swissnum.
        for n in ("attic", "tahoe-nas"):
            self.c.call("servers.remove", {"server": n})
        p = run_cli("servers", "import", tmp, node_dir=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("skipped v0-foolscap-only", p.stderr)
        self.assertNotIn("swissnum", p.stderr)


if __name__ == "__main__":
    unittest.main()
