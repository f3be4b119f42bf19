#!/usr/bin/python3
"""Writes permuted-order.json: the order in which a Tahoe-LAFS client asks
servers for one storage index, computed here with hashlib alone (not with
cairn's code), as Tahoe-LAFS's storage_client does it:
  permutation seed = base32 decode of permutation-seed-base32 if announced,
                     else of the server id's v0- key, else SHA-256(server id);
  order            = servers sorted by SHA-1(storage index + seed).
The servers are ten real Tahoe-LAFS 1.20 nodes' ids (from
../shared/vectors/dirs/check-examples.json), some announcing their seed and
some not, two servers whose ids are not v0- keys, and a cairn node
(`cairn tahoe-entry`: tub id = seed = the first 20 bytes of its SPKI hash)."""
import base64
import hashlib
import json


def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def a2b(text):
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


SI = "k4ark2ugdhddnazxklsusrigo4"
V0 = ["7efuo5epthuik2k5rrg7pxiy7woldrbjlpd2ayyctf5dpjr4m4pq", "dhze6uqpiunfst3fw2mgsvj7u7bgin2ajqbfbkqklqeqi5ltpr5q",
      "vi7rhg2pi7erufj6kdowzkcx36ev6v6y3wl6w2tsd6zu4eaitqma", "xngai7lzupfth6mbsen5tas6tkto5q5cufvfrynt5bsruxoogmsq",
      "jwwtcpaedidwpqihs4jh4w224kabqnzrywptnvtbtarnnsdjsm4q", "vkfaom3uwv5qwpapmayhu6tk3zuldyrg5y6bvvxdhuf4jc7rbzha",
      "wmfffqwkqvsw6bah3kfo7hsq3mzlwsemhc7pb5hs3s4lb6cjt7qq", "mxmvhlot2tl4m4vzl3c37znphbzwbey5pjzxuagshpufwydo3whq",
      "heym4szbdevo3rt57fu2e3gj4r672ha2xjrxzfvjealthe2ffdla", "o2rzwijvr4e6b2nzujypepa5x6zwcr3dojojvhjxxtak2hh3k5nq"]


def main():
    servers = []
    for i, key in enumerate(V0):
        tub = b32(hashlib.sha1(b"tub" + bytes([i])).digest())
        ann = {"anonymous-storage-FURL": "pb://%s@tcp:10.0.0.%d:4000/swiss%d" % (tub, i, i)}
        if i % 2 == 0:
            ann["permutation-seed-base32"] = key
        servers.append({"server_id": "v0-" + key, "ann": ann})
    for name in ("my-storage-1", "tahoe-at-home"):
        tub = b32(hashlib.sha1(name.encode()).digest())
        servers.append({"server_id": name, "ann": {"anonymous-storage-FURL": "pb://%s@tcp:h:1/s" % tub}})
    cairn_seed = b32(hashlib.sha256(b"a cairn node's SPKI").digest()[:20])
    servers.append({"server_id": "v0-cairn-" + cairn_seed,
                    "ann": {"anonymous-storage-FURL": "pb://%s@tcp:c:2/s" % cairn_seed,
                            "permutation-seed-base32": cairn_seed}})

    def seed(s):
        ann = s["ann"]
        if "permutation-seed-base32" in ann:
            return a2b(ann["permutation-seed-base32"])
        if s["server_id"].startswith("v0-"):
            return a2b(s["server_id"][3:])
        return hashlib.sha256(s["server_id"].encode()).digest()

    si = a2b(SI)
    order = sorted(servers, key=lambda s: hashlib.sha1(si + seed(s)).digest())
    doc = {"about": __doc__.strip().replace("\n", " "), "storage_index": SI, "servers": servers,
           "expected_order": [s["server_id"] for s in order]}
    with open("permuted-order.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


main()
