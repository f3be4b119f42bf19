"""`cairn tahoe-entry`: the servers.yaml stanza for Tahoe-LAFS clients. Its
seed (the placeholder FURL's tub id and the permutation seed) must be the
first 20 bytes of SHA-256 over the certificate's SPKI, computed here from the
certificate with the openssl command, independently of cairn."""
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import unittest

from pylib.cairntest import run_cli


class TahoeEntryTest(unittest.TestCase):
    def test_entry_carries_the_nurl_and_the_spki_seed(self):
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            node = os.path.join(tmp, "n")
            run_cli("init", node, "--port", "4567", "--nickname", 'say "hi"', check=True)
            out = json.loads(run_cli("--json", "tahoe-entry", node_dir=node, check=True).stdout)
            nurl = run_cli("nurl", node_dir=node, check=True).stdout.strip()
            ann = out["ann"]
            self.assertEqual(ann["anonymous-storage-NURLs"], [nurl])
            self.assertEqual(ann["nickname"], 'say "hi"')
            spki = subprocess.run(["openssl", "x509", "-in", os.path.join(node, "private", "node.crt"), "-noout",
                                   "-pubkey"], capture_output=True, check=True).stdout
            der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki,
                                 capture_output=True, check=True).stdout
            seed = base64.b32encode(hashlib.sha256(der).digest()[:20]).decode().lower().rstrip("=")
            self.assertEqual(ann["permutation-seed-base32"], seed)
            self.assertTrue(ann["anonymous-storage-FURL"].startswith(f"pb://{seed}@tcp:127.0.0.1:4567/"))
            self.assertEqual(out["server_id"], "v0-cairn-" + seed)
            text = run_cli("tahoe-entry", node_dir=node, check=True).stdout
            self.assertIn(f"        - {nurl}\n", text)
            self.assertIn('nickname: "say \\"hi\\""', text)


if __name__ == "__main__":
    unittest.main()
