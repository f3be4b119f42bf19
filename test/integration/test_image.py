"""The signed board image and the daemon's watchdog and status LED.

The image is built by boards/make_image.sh, the script `make image` runs, from
the binaries under test (uncompressed, to stay quick). Its signature and
hashes are checked by `cairn image verify` and, independently, by openssl,
hashlib and unsquashfs (Debian's squashfs-tools).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from pylib.cairntest import BUILD, ROOT, Node, binary, run_cli, wait_for


def read_version():
    with open(os.path.join(ROOT, "include", "cairn", "core", "version.h")) as f:
        for line in f:
            if "kVersion[]" in line:
                return line.split('"')[1]
    raise AssertionError("no kVersion in version.h")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cairn-image-", dir="/tmp")
        cls.out = os.path.join(cls.tmp, "out")
        cls.version = read_version()
        proc = subprocess.run(
            ["sh", os.path.join(ROOT, "boards", "make_image.sh"), "--board", "host", "--version", cls.version,
             "--bin", BUILD, "--tool", binary("cairn"), "--out", cls.out, "--uncompressed"],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f"make_image.sh exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        cls.warning = proc.stderr
        name = f"cairn-{cls.version}-host"
        cls.image = os.path.join(cls.out, name + ".squashfs")
        cls.manifest = os.path.join(cls.out, name + ".manifest")
        cls.sig = os.path.join(cls.out, name + ".sig")
        cls.pub = os.path.join(cls.out, "dev-key.pub")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def verify(self, image=None, *extra, pub=None):
        proc = run_cli("--json", "image", "verify", image or self.image, "--pubkey", pub or self.pub, *extra)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
        return proc.returncode, report

    def copy_image(self):
        """A private copy of the image triple, to damage."""
        d = tempfile.mkdtemp(dir=self.tmp)
        for p in (self.image, self.manifest, self.sig):
            shutil.copy(p, d)
        return os.path.join(d, os.path.basename(self.image))

    def kinds(self, report):
        return [(p["kind"], p["file"]) for p in report["problems"]]

    def test_built_image_verifies_and_agrees_with_independent_tools(self):
        self.assertIn("DEVELOPMENT key", self.warning, "an image signed with a throwaway key must say so")
        code, report = self.verify()
        self.assertEqual(code, 0, report)
        self.assertTrue(report["ok"])
        self.assertEqual(report["board"], "host")
        self.assertEqual(report["version"], self.version)
        human = run_cli("image", "verify", self.image, "--pubkey", self.pub)
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("signature good", human.stdout)
        # openssl checks the same RSASSA-PSS signature (SHA-256, 32-byte salt).
        ossl = subprocess.run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt",
                               "rsa_pss_saltlen:32", "-verify", self.pub, "-signature", self.sig, self.manifest],
                              capture_output=True, text=True)
        self.assertEqual(ossl.returncode, 0, ossl.stdout + ossl.stderr)
        # The manifest's image line is the squashfs's real size and SHA-256.
        with open(self.manifest) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "cairn-image 1")
        image_line = [l.split() for l in lines if l.startswith("image ")][0]
        self.assertEqual(image_line[1:], [os.path.basename(self.image), str(os.path.getsize(self.image)),
                                          sha256_of(self.image)])
        files = {l.split(" ", 4)[4]: l.split(" ", 4) for l in lines if l.startswith("file ")}
        self.assertEqual(sorted(files), ["etc/cairn/cairn-default.json", "etc/init.d/cairnd",
                                         "lib/systemd/system/cairnd.service", "usr/bin/cairn", "usr/bin/cairnd"])
        # unsquashfs reads the image back: every file is what the manifest says.
        unpacked = os.path.join(tempfile.mkdtemp(dir=self.tmp), "root")
        subprocess.run(["unsquashfs", "-q", "-d", unpacked, self.image], check=True, capture_output=True)
        for rel, fields in files.items():
            path = os.path.join(unpacked, rel)
            self.assertEqual(sha256_of(path), fields[3], rel)
            self.assertEqual(os.path.getsize(path), int(fields[2]), rel)
        self.assertEqual(sha256_of(os.path.join(unpacked, "usr/bin/cairnd")), sha256_of(binary("cairnd")))
        with open(os.path.join(unpacked, "etc/cairn/cairn-default.json")) as f:
            self.assertEqual(json.load(f)["board"], "host")
        with open(os.path.join(unpacked, "lib/systemd/system/cairnd.service")) as f:
            self.assertIn("ExecStart=/usr/bin/cairnd", f.read())
        code, report = self.verify(None, "--root", unpacked)
        self.assertEqual(code, 0, report)
        self.assertEqual(report["files_checked"], 5)

        # An unpacked file changed or missing is named.
        flip_byte(os.path.join(unpacked, "usr/bin/cairn"), 1000)
        os.unlink(os.path.join(unpacked, "etc/init.d/cairnd"))
        os.chmod(os.path.join(unpacked, "lib/systemd/system/cairnd.service"), 0o666)
        code, report = self.verify(None, "--root", unpacked)
        self.assertEqual(code, 1)
        self.assertFalse(report["ok"])
        self.assertEqual(sorted(self.kinds(report)), [("hash_mismatch", "usr/bin/cairn"),
                                                      ("missing", "etc/init.d/cairnd"),
                                                      ("mode_mismatch", "lib/systemd/system/cairnd.service")])

    def test_one_flipped_byte_in_the_image_is_named(self):
        image = self.copy_image()
        flip_byte(image, os.path.getsize(image) // 2)
        code, report = self.verify(image)
        self.assertEqual(code, 1)
        self.assertEqual(self.kinds(report), [("hash_mismatch", os.path.basename(image))])
        self.assertIn("SHA-256", report["problems"][0]["message"])
        human = run_cli("image", "verify", image, "--pubkey", self.pub)
        self.assertEqual(human.returncode, 1)
        self.assertIn("hash_mismatch", human.stderr)
        self.assertIn(os.path.basename(image), human.stderr)

    def test_one_flipped_byte_in_the_manifest_breaks_the_signature(self):
        image = self.copy_image()
        manifest = image[: -len(".squashfs")] + ".manifest"
        flip_byte(manifest, 30)
        code, report = self.verify(image)
        self.assertEqual(code, 1)
        self.assertEqual([k for k, _ in self.kinds(report)], ["bad_signature"])

    def test_a_truncated_image_fails(self):
        image = self.copy_image()
        size = os.path.getsize(image)
        os.truncate(image, size - 4096)
        code, report = self.verify(image)
        self.assertEqual(code, 1)
        self.assertEqual(self.kinds(report), [("hash_mismatch", os.path.basename(image))])
        self.assertIn("truncated", report["problems"][0]["message"])

    def test_another_key_does_not_verify(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        other_priv, other_pub = os.path.join(d, "other.pem"), os.path.join(d, "other.pub")
        run_cli("-q", "image", "keygen", other_priv, other_pub, check=True)
        self.assertEqual(os.stat(other_priv).st_mode & 0o777, 0o600)
        code, report = self.verify(None, pub=other_pub)
        self.assertEqual(code, 1)
        self.assertEqual([k for k, _ in self.kinds(report)], ["bad_signature"])
        # keygen never overwrites a key.
        again = run_cli("image", "keygen", other_priv, other_pub)
        self.assertEqual(again.returncode, 4, again.stderr)

    def test_wrong_board_and_missing_files(self):
        code, report = self.verify(None, "--board", "rpi4")
        self.assertEqual(code, 1)
        self.assertEqual([k for k, _ in self.kinds(report)], ["wrong_board"])
        self.assertIn("host", report["problems"][0]["message"])
        image = self.copy_image()
        os.unlink(image)
        code, report = self.verify(image)
        self.assertEqual(code, 1)
        self.assertEqual(self.kinds(report), [("missing", os.path.basename(image))])
        # No key, or no manifest: not_found (exit 3).
        self.assertEqual(run_cli("image", "verify", self.image, "--pubkey", "/nonexistent.pub").returncode, 3)
        self.assertEqual(run_cli("image", "verify", "/nonexistent.squashfs", "--pubkey", self.pub).returncode, 3)
        self.assertEqual(run_cli("image", "verify", self.image).returncode, 2)


class DaemonWatchdogTest(unittest.TestCase):
    """cairnd pets a watchdog and drives an LED named in cairn.json."""

    def setUp(self):
        self.hw = tempfile.mkdtemp(prefix="cairn-hw-", dir="/tmp")
        self.wd = os.path.join(self.hw, "watchdog")
        self.led = os.path.join(self.hw, "leds", "status")
        os.makedirs(self.led)
        for name, text in (("trigger", "none [mmc0] timer"), ("brightness", "0"), ("max_brightness", "1")):
            with open(os.path.join(self.led, name), "w") as f:
                f.write(text)
        open(self.wd, "w").close()
        self.node = Node(config_patch={"hardware": {"watchdog": self.wd, "watchdog_interval_ms": 100,
                                                    "led": self.led}})

    def tearDown(self):
        self.node.cleanup()
        shutil.rmtree(self.hw, ignore_errors=True)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_pets_while_running_and_magic_closes_on_sigterm(self):
        self.node.start()
        wait_for(lambda: len(self.read(self.wd)) >= 3, timeout=20, what="three pets")
        self.assertEqual(self.read(os.path.join(self.led, "trigger")), b"none")
        self.assertEqual(self.read(os.path.join(self.led, "brightness")), b"1")
        status = json.loads(run_cli("--json", "status", node_dir=self.node.dir, check=True).stdout)
        self.assertIn(status["watchdog"]["state"], ("healthy", "busy"))
        self.assertGreaterEqual(status["watchdog"]["pets"], 3)
        self.assertEqual(self.node.stop(), 0, self.node.read_log())
        written = self.read(self.wd)
        self.assertEqual(written[-1:], b"V", "a clean stop ends with the magic close")
        self.assertEqual(written[:-1], b"." * (len(written) - 1))
        self.assertEqual(self.read(os.path.join(self.led, "trigger")), b"mmc0")
        self.assertEqual(self.read(os.path.join(self.led, "brightness")), b"0")

    def test_a_killed_daemon_leaves_the_watchdog_armed(self):
        self.node.start()
        wait_for(lambda: len(self.read(self.wd)) >= 2, timeout=20, what="two pets")
        self.node.stop(sig=signal.SIGKILL)
        self.assertNotIn(b"V", self.read(self.wd))

    def test_a_missing_device_is_logged_and_the_node_still_runs(self):
        self.node.patch_config({"hardware": {"watchdog": os.path.join(self.hw, "absent")}})
        self.node.start()
        self.assertEqual(self.node.stop(), 0)
        self.assertIn("running without the watchdog", self.node.read_log())
        self.assertIn("absent", self.node.read_log())


if __name__ == "__main__":
    unittest.main()
