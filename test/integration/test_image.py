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


class SlotInstallTest(unittest.TestCase):
    """`cairn image install|status|mark-good` on a box with A/B root slots,
    the slots and the boot partition played by files (docs/boards.md)."""

    @classmethod
    def setUpClass(cls):
        ImageTest.setUpClass.__func__(cls)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.box = tempfile.mkdtemp(dir=self.tmp)
        self.boot = os.path.join(self.box, "boot")
        os.makedirs(os.path.join(self.boot, "cairn"))
        self.dev = {s: os.path.join(self.box, f"slot-{s}") for s in "ab"}
        for path in self.dev.values():
            with open(path, "wb") as f:
                f.truncate(os.path.getsize(self.image) + 65536)
        self.write_state("good=a\ntry=\ntries=0\n")
        self.slots = os.path.join(self.box, "slots")
        self.set_booted("a")
        # The build puts each slot's manifest on the boot partition.
        shutil.copy(self.manifest, os.path.join(self.boot, "cairn", "slot-a.manifest"))

    def set_booted(self, slot):
        with open(self.slots, "w") as f:
            f.write(f"booted={slot}\na={self.dev['a']}\nb={self.dev['b']}\nboot={self.boot}\n")

    def write_state(self, text):
        with open(os.path.join(self.boot, "cairn", "bootstate"), "w") as f:
            f.write(text)

    def state(self):
        with open(os.path.join(self.boot, "cairn", "bootstate")) as f:
            return dict(line.split("=", 1) for line in f.read().splitlines())

    def cli(self, *args):
        return run_cli("--json", "image", *args, "--slots", self.slots)

    def install(self, image=None, pub=None):
        return run_cli("--json", "image", "install", image or self.image, "--pubkey", pub or self.pub,
                       "--slots", self.slots)

    def status(self):
        proc = self.cli("status")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def test_install_writes_the_other_slot_and_marks_it_for_one_try(self):
        proc = self.install()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = json.loads(proc.stdout)
        self.assertEqual((out["slot"], out["device"], out["version"]), ("b", self.dev["b"], self.version))
        size = os.path.getsize(self.image)
        with open(self.dev["b"], "rb") as f:
            written = f.read()
        self.assertEqual(hashlib.sha256(written[:size]).hexdigest(), sha256_of(self.image))
        self.assertEqual(written[size:], b"\0" * 65536, "nothing past the image is written")
        with open(self.dev["a"], "rb") as f:
            self.assertEqual(f.read(), b"\0" * (size + 65536), "the booted slot is never written")
        self.assertEqual(self.state(), {"good": "a", "try": "b", "tries": "1"})
        with open(os.path.join(self.boot, "cairn", "slot-b.manifest"), "rb") as f, open(self.manifest, "rb") as g:
            self.assertEqual(f.read(), g.read())
        with open(os.path.join(self.boot, "cairn", "slot-b.sig"), "rb") as f, open(self.sig, "rb") as g:
            self.assertEqual(f.read(), g.read())
        st = self.status()
        self.assertEqual((st["booted"], st["good"], st["try"], st["tries"]), ("a", "a", "b", 1))
        self.assertEqual(st["slots"]["b"], {"device": self.dev["b"], "version": self.version})
        self.assertEqual(st["slots"]["a"]["version"], self.version)
        human = run_cli("image", "status", "--slots", self.slots)
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertRegex(human.stdout, r"slot a .* booted good")
        self.assertRegex(human.stdout, r"slot b .* try\(1 left\)")

    def test_mark_good_takes_the_trial_slot_only_when_it_booted(self):
        self.assertEqual(self.install().returncode, 0)
        # Still on slot a (the trial has not booted): nothing changes.
        proc = self.cli("mark-good")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(json.loads(proc.stdout)["marked"])
        self.assertEqual(self.state(), {"good": "a", "try": "b", "tries": "1"})
        # The initramfs counted the try down and booted slot b; cairnd answered.
        self.write_state("good=a\ntry=b\ntries=0\n")
        self.set_booted("b")
        proc = self.cli("mark-good")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(json.loads(proc.stdout)["marked"])
        self.assertEqual(self.state(), {"good": "b", "try": "", "tries": "0"})
        # The next install goes to slot a, the one not booted.
        proc = self.install()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["slot"], "a")
        self.assertEqual(self.state(), {"good": "b", "try": "a", "tries": "1"})

    def test_an_update_that_does_not_verify_changes_nothing(self):
        image = ImageTest.copy_image(self)
        flip_byte(image, os.path.getsize(image) // 3)
        proc = self.install(image)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("hash_mismatch", proc.stderr)
        d = tempfile.mkdtemp(dir=self.tmp)
        run_cli("-q", "image", "keygen", os.path.join(d, "k.pem"), os.path.join(d, "k.pub"), check=True)
        proc = self.install(pub=os.path.join(d, "k.pub"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("bad_signature", proc.stderr)
        proc = run_cli("image", "install", self.image, "--pubkey", self.pub, "--slots", self.slots,
                       "--board", "rpi4")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("wrong_board", proc.stderr)
        with open(self.dev["b"], "rb") as f:
            self.assertEqual(f.read().count(b"\0"), os.path.getsize(self.dev["b"]))
        self.assertEqual(self.state(), {"good": "a", "try": "", "tries": "0"})

    def test_a_slot_too_small_is_refused_and_not_marked(self):
        os.truncate(self.dev["b"], 4096)
        proc = self.install()
        self.assertEqual(proc.returncode, 10, proc.stderr)
        self.assertIn("no_space", proc.stdout + proc.stderr)
        self.assertEqual(self.state(), {"good": "a", "try": "", "tries": "0"})

    def test_without_slots_it_says_so(self):
        proc = run_cli("image", "status", "--slots", os.path.join(self.box, "absent"))
        self.assertEqual(proc.returncode, 3)
        self.assertIn("not booted from a cairn disk image", proc.stderr)


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
