"""Boots a board's whole disk image under qemu-system and checks it serves,
updates into the other root slot and rolls back by itself (`make image-test`).

With --bios (qemu-arm64: Debian's UEFI firmware for qemu) qemu boots the
disk itself: the firmware starts systemd-boot from the boot partition, which
starts the kernel and initramfs its entry names. Without it, the kernel,
initramfs and command line are read out of the image's own boot partition
(mtools) and given to qemu with -kernel/-initrd/-append. The disk is a
private sparse copy of the image. Networking is qemu's user mode, with the
guest's storage port forwarded to 127.0.0.1 only; the guest fetches updates
from a web server on the host's 127.0.0.1 (10.0.2.2 inside). The console is
the guest's serial port on qemu's stdio: the test reads what the box prints
and types commands at the root shell init leaves there.

Steps: first boot (data partition formatted, node created, NURL printed);
store a share over GBS from the host with test/pylib/gbs.py and read it
back; install an update with a new version into slot B and reboot: slot B
boots, the same node (SPKI hash) serves the same share; install a broken
update (cairnd exits at once) into slot A and reboot: the trial fails, the
box reboots and comes back on slot B by itself, share intact; install an
update whose boot hangs (its e2fsck never returns) into slot A and reboot:
the boot's petting keeps the box up past the watchdog's period, stops at
BOOTPET_S s of uptime, nothing in the box reboots it, the watchdog the
initramfs armed does (qemu reports the watchdog's reset on its QMP socket),
and the box comes back on slot B, share intact.
The test's command line arms the watchdog for WATCHDOG_S, shorter than a
boot here, as on the rpi4 (its bcm2835-wdt: 15 s): every boot survives it
only because the initramfs and init pet it until cairnd is started
(cairn.bootpet=BOOTPET_S); and it shortens the health limit to HEALTH_S
(the image's own: 180 s without petting, 120 s).
Every process started here ends; the whole run is bounded (--timeout).
"""
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pylib.gbs import GbsClient, parse_nurl  # noqa: E402

RENEW, CANCEL, UPLOAD = b"r" * 32, b"c" * 32, b"u" * 32
SI = "aaaqeayeaudaocajbifqydiob4"   # 16 bytes, base32
SHARE = os.urandom(1000) + b"cairn image test" * 1000
# The boot's watchdog, its petting bound and the trial slot's health limit,
# for this test. The watchdog's period is shorter than a boot (the first
# boot makes the file system and the node's keys): the boot pets it until
# cairnd is started, at most BOOTPET_S s of uptime. The hung boot waits for
# the bound and then the watchdog; the broken cairnd for the health limit,
# which must come (HEALTH_S tries of `cairn status` a second apart, after
# init's health wait starts at about 10 s of uptime here; 30 tries took about
# 40 s) well before the bound: until then init pets the watchdog before each
# restart of cairnd.
WATCHDOG_S, HEALTH_S, BOOTPET_S = 15, 20, 75


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Console:
    """qemu's stdio: a reader thread keeps everything the guest printed."""

    def __init__(self, proc, log_path):
        self.proc = proc
        self.text = ""
        self.lock = threading.Lock()
        self.log = open(log_path, "w")
        self.seq = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            b = self.proc.stdout.read1(4096) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(1)
            if not b:
                return
            s = b.decode("utf-8", "replace").replace("\r", "")
            with self.lock:
                self.text += s
            self.log.write(s)
            self.log.flush()

    def mark(self):
        with self.lock:
            return len(self.text)

    def wait(self, pattern, since, timeout):
        """The first match of pattern printed after offset since."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                m = re.search(pattern, self.text[since:], re.S)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"qemu exited ({self.proc.returncode}) waiting for {pattern!r}")
            time.sleep(0.2)
        raise AssertionError(f"not seen within {timeout} s: {pattern!r}")

    def run(self, command, timeout=120):
        """Types command at the guest's shell; returns (exit code, output)."""
        self.seq += 1
        n = self.seq
        since = self.mark()
        # The markers are split in the typed text, so its echo does not match.
        line = f"echo '@@S''{n}'; {command}; echo \"@@E{n} $?\"\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        m = self.wait(rf"@@S{n}\n(.*?)@@E{n} (\d+)\n", since, timeout)
        return int(m.group(2)), m.group(1)


class Qmp:
    """qemu's QMP socket: a reader thread keeps every event qemu sends."""

    def __init__(self, path, proc):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("qemu's QMP socket did not open")
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        json.loads(self.file.readline())   # the greeting
        self.file.write(b'{"execute": "qmp_capabilities"}\n')
        self.file.flush()
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for line in self.file:
                msg = json.loads(line)
                if "event" in msg:
                    with self.lock:
                        self.events.append(msg)
        except (OSError, ValueError):
            return   # closed at the end of the run

    def seen(self, name):
        with self.lock:
            return [e for e in self.events if e["event"] == name]

    def close(self):
        self.sock.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def step(what, t0):
    print(f"[{time.monotonic() - t0:7.1f} s] {what}", flush=True)


def make_update(tool, key, rootfs, out_dir, version, board, broken=False, hang=False):
    """A signed root slot image: the built one with a new version, or with a
    cairnd that exits at once (broken), or with an e2fsck that never returns,
    so init hangs before it starts cairnd (hang)."""
    root = os.path.join(out_dir, f"root-{version}")
    subprocess.run(["unsquashfs", "-q", "-n", "-d", root, rootfs], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(root, "etc/cairn/release"), "w") as f:
        f.write(f"version={version}\nboard={board}\n")
    if broken:
        cairnd = os.path.join(root, "usr/bin/cairnd")
        os.unlink(cairnd)
        with open(cairnd, "w") as f:
            f.write("#!/bin/sh\necho 'cairnd: a deliberately broken update' >&2\nexit 1\n")
        os.chmod(cairnd, 0o755)
    if hang:
        fsck = os.path.join(root, "sbin/e2fsck")
        os.unlink(fsck)
        with open(fsck, "w") as f:
            f.write("#!/bin/sh\necho 'cairn-test: this e2fsck hangs' > /dev/console\n"
                    "while :; do sleep 3600; done\n")
        os.chmod(fsck, 0o755)
    name = os.path.join(out_dir, f"cairn-{version}-{board}.rootfs")
    # gzip, not the build's xz: a third of the time here, and the kernel reads both.
    subprocess.run(["mksquashfs", root, name, "-noappend", "-all-root", "-comp", "gzip", "-quiet", "-no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([tool, "-q", "image", "sign", name, "--root", root, "--board", board, "--version", version,
                    "--key", key], check=True)
    shutil.rmtree(root)
    return os.path.basename(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--board", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--tool", required=True, help="the host's cairn (signs the test updates)")
    ap.add_argument("--key", help="the image's signing key (default: the build's dev-key.pem)")
    ap.add_argument("--qemu", required=True, help="qemu-system command and machine options")
    ap.add_argument("--bios", help="UEFI firmware to boot the disk's loader with (else qemu is given the "
                    "boot partition's kernel, initramfs and cmdline.txt)")
    ap.add_argument("--timeout", type=float, default=1800, help="the whole run's limit, seconds")
    ap.add_argument("--boot-timeout", type=float, default=420)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--disk-mb", type=int, default=2048, help="the disk's size (a sparse file)")
    a = ap.parse_args()
    t0 = time.monotonic()
    name = f"cairn-{a.version}-{a.board}"
    tmp = tempfile.mkdtemp(prefix="cairn-image-test-", dir="/tmp")
    proc = None
    qmp = None
    httpd = None
    ok = False
    # The whole run's bound: SIGALRM ends it (and finally: ends qemu).
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"over {a.timeout} s")))
    signal.alarm(int(a.timeout))
    # SIGTERM and SIGINT (also when started in the background) end the run
    # through the same cleanup.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda n, _: (_ for _ in ()).throw(KeyboardInterrupt(f"signal {n}")))
    try:
        disk = os.path.join(tmp, "disk.img")
        subprocess.run(["cp", "--sparse=always", os.path.join(a.image_dir, name + ".img"), disk], check=True)
        # The "SD card" is larger than the image: the first boot grows the
        # data partition to its end (the node keeps 1 GiB free by default).
        os.truncate(disk, a.disk_mb << 20)
        mtools_env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        test_words = f" cairn.health={HEALTH_S} cairn.watchdog={WATCHDOG_S} cairn.bootpet={BOOTPET_S}"
        if a.bios:
            # UEFI firmware starts the loader on the boot partition; the test's
            # words go into the loader entry's options line of this copy.
            entry = os.path.join(tmp, "cairn.conf")
            subprocess.run(["mcopy", "-n", "-i", disk + "@@1M", "::/loader/entries/cairn.conf", entry],
                           check=True, env=mtools_env)
            with open(entry) as f:
                text = f.read()
            m = re.search(r"^options (.*)$", text, re.M)
            assert m, text
            cmdline = m.group(1).strip() + test_words
            with open(entry, "w") as f:
                f.write(text[:m.start()] + "options " + cmdline + text[m.end():])
            subprocess.run(["mcopy", "-o", "-i", disk + "@@1M", entry, "::/loader/entries/cairn.conf"],
                           check=True, env=mtools_env)
            boot_args = ["-bios", a.bios]
        else:
            boot = {}
            for f in ("vmlinuz", "initrd.img", "cmdline.txt"):
                boot[f] = os.path.join(tmp, f)
                subprocess.run(["mcopy", "-n", "-i", disk + "@@1M", "::/" + f, boot[f]], check=True,
                               env=mtools_env)
            with open(boot["cmdline.txt"]) as f:
                cmdline = f.read().strip() + test_words
            boot_args = ["-kernel", boot["vmlinuz"], "-initrd", boot["initrd.img"], "-append", cmdline]

        # The update server: the guest reaches the host's 127.0.0.1 as 10.0.2.2.
        updates = os.path.join(tmp, "updates")
        os.makedirs(updates)
        key = a.key or os.path.join(a.image_dir, "dev-key.pem")
        rootfs = os.path.join(a.image_dir, name + ".rootfs")
        v2, v3, v4 = a.version + "+update", a.version + "+broken", a.version + "+hangs"
        good = make_update(a.tool, key, rootfs, updates, v2, a.board)
        broken = make_update(a.tool, key, rootfs, updates, v3, a.board, broken=True)
        hangs = make_update(a.tool, key, rootfs, updates, v4, a.board, hang=True)
        handler = functools.partial(QuietHandler, directory=updates)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        http_port = httpd.server_address[1]
        gbs_port = free_port()

        cmd = a.qemu.split() + [
            "-smp", "2", "-nographic", "-monitor", "none", "-serial", "stdio", "-no-user-config", "-nodefaults",
            *boot_args,
            "-drive", f"file={disk},format=raw,if=none,id=disk0", "-device", "virtio-blk-pci,drive=disk0",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{gbs_port}-:3456",
            "-device", "virtio-net-pci,netdev=net0,romfile=", "-device", "virtio-rng-pci",
            "-action", "watchdog=reset", "-qmp", f"unix:{os.path.join(tmp, 'qmp.sock')},server=on,wait=off"]
        step(f"booting: {' '.join(cmd)}", t0)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        con = Console(proc, os.path.join(tmp, "console.log"))
        qmp = Qmp(os.path.join(tmp, "qmp.sock"), proc)

        handovers = []

        def wait_node(since, what, resets=0):
            start = time.monotonic()
            m = con.wait(r"cairn-init: NURL (pb://\S+)", since, a.boot_timeout)
            # The boot that came up petted the watchdog until it started cairnd.
            with con.lock:
                h = re.findall(r"cairn-init: watchdog: handed over to cairnd at (\d+) s of uptime",
                               con.text[since:since + m.start()])
            assert h, "no hand-over of the watchdog to cairnd"
            handovers.append(int(h[-1]))
            assert len(qmp.seen("WATCHDOG")) == resets, qmp.events
            step(f"{what}: serving after {time.monotonic() - start:.1f} s (watchdog handed to cairnd at "
                 f"{h[-1]} s of uptime): {m.group(1)[:40]}...", t0)
            time.sleep(2)   # let the shell reach its prompt
            return m.group(1)

        def client(nurl):
            n = parse_nurl(nurl)
            return GbsClient(nurl.replace(f"@{n['host']}:{n['port']}/", f"@127.0.0.1:{gbs_port}/"), timeout=60)

        def status():
            code, out = con.run("cairn --json image status")
            assert code == 0, out
            return json.loads(out[out.index("{"):])

        nurl = wait_node(0, "first boot")
        con.wait(r"cairn-boot: data partition grown from \d+ MiB to \d+ MiB", 0, 1)
        c = client(nurl)
        c.allocate(SI, {0}, len(SHARE), RENEW, CANCEL, UPLOAD)
        c.write(SI, 0, 0, SHARE, UPLOAD)
        assert c.read(SI, 0, 0, len(SHARE)) == SHARE
        c.close()
        step(f"stored and read back {len(SHARE)} bytes over GBS", t0)
        st = status()
        assert st["booted"] == "a" and st["good"] == "a", st
        if "cairn.watchdog=" in cmdline:
            # The initramfs armed the hardware watchdog; cairnd took it over.
            con.wait(rf"cairn-boot: watchdog armed: {WATCHDOG_S} s, petted by the boot until cairnd takes it over",
                     0, 1)
            code, out = con.run("cairn -d /data/node --json status")
            assert code == 0, out
            wd = json.loads(out[out.index("{"):])["watchdog"]
            assert wd["state"] in ("healthy", "busy") and wd["pets"] >= 1, wd
            step(f"cairnd pets the watchdog ({wd['pets']} pets)", t0)

        def install(update, expect_slot):
            base = update[:-len(".rootfs")]
            fetch = " && ".join(f"wget -q -O /tmp/{base}.{e} http://10.0.2.2:{http_port}/{base}.{e}"
                                for e in ("rootfs", "manifest", "sig"))
            code, out = con.run(f"{fetch} && cairn image install /tmp/{update}", timeout=300)
            assert code == 0, out
            assert f"into slot {expect_slot}" in out, out
            step(f"installed {update} into slot {expect_slot}", t0)
            since = con.mark()
            proc.stdin.write(b"cairn-reboot\n")
            proc.stdin.flush()
            return since

        since = install(good, "b")
        con.wait(r"cairn-boot: trying slot b", since, a.boot_timeout)
        nurl2 = wait_node(since, f"update {v2}")
        assert parse_nurl(nurl2)["spki_hash"] == parse_nurl(nurl)["spki_hash"], (nurl, nurl2)
        c = client(nurl2)
        assert c.read(SI, 0, 0, len(SHARE)) == SHARE
        c.close()
        st = status()
        assert st["booted"] == "b" and st["good"] == "b" and st["slots"]["b"]["version"] == v2, st
        step(f"slot b good, version {v2}, same node, share intact", t0)

        since = install(broken, "a")
        con.wait(r"cairn-boot: trying slot a", since, a.boot_timeout)
        con.wait(r"cairn-init: slot a on trial: cairnd did not answer", since, a.boot_timeout)
        step("the broken slot a did not come up: rebooting", t0)
        con.wait(r"cairn-boot: slot a did not come up: abandoned, back to slot b", since, a.boot_timeout)
        nurl3 = wait_node(since, "rolled back")
        assert parse_nurl(nurl3)["spki_hash"] == parse_nurl(nurl)["spki_hash"]
        c = client(nurl3)
        assert c.read(SI, 0, 0, len(SHARE)) == SHARE
        c.close()
        st = status()
        assert st["booted"] == "b" and st["good"] == "b" and st["try"] == "", st
        step(f"rolled back to slot b ({v2}) by itself, share intact", t0)

        # A hung boot: the trial slot's init hangs before it starts cairnd
        # (its e2fsck never returns). The boot's petting keeps the box up
        # past the watchdog's period until the bound; then only the watchdog
        # the initramfs armed can reset the box.
        assert not qmp.seen("WATCHDOG"), qmp.events
        since = install(hangs, "a")
        con.wait(r"cairn-boot: trying slot a", since, a.boot_timeout)
        hung = con.wait(r"cairn-test: this e2fsck hangs", since, a.boot_timeout)
        hung_at = time.monotonic()
        step(f"slot a's boot hangs in e2fsck; the boot pets the watchdog until {BOOTPET_S} s of uptime", t0)
        stop = con.wait(rf"cairn-init: watchdog: boot petting stopped at {BOOTPET_S} s of uptime without cairnd",
                        since, a.boot_timeout)
        stop_at, stop_wall = time.monotonic(), time.time()
        assert not qmp.seen("WATCHDOG"), qmp.events
        assert stop_at - hung_at > WATCHDOG_S + 5, (stop_at - hung_at)
        step(f"hung for {stop_at - hung_at:.0f} s with a {WATCHDOG_S} s watchdog, kept up by the boot's petting, "
             f"which stopped at the bound; waiting for the watchdog", t0)
        m = con.wait(r"cairn-boot: slot a did not come up: abandoned, back to slot b", since, a.boot_timeout)
        between = con.text[since + hung.end():since + m.start()]
        for bad in ("Kernel panic", "cairn-reboot: rebooting", "cairn-init: slot a on trial", "cairn-init: node up"):
            assert bad not in between, (bad, between[-2000:])
        resets = qmp.seen("WATCHDOG")
        assert len(resets) == 1 and resets[0]["data"]["action"] == "reset", qmp.events
        ts = resets[0]["timestamp"]
        fired = ts["seconds"] + ts["microseconds"] / 1e6 - stop_wall
        assert -1 < fired < WATCHDOG_S + 10, fired
        assert stop.start() < m.start()
        step(f"the watchdog reset the box {fired:.1f} s after the petting stopped (qemu's WATCHDOG event, "
             "action reset); slot a abandoned", t0)
        nurl4 = wait_node(since, "after the hung boot", resets=1)
        assert parse_nurl(nurl4)["spki_hash"] == parse_nurl(nurl)["spki_hash"]
        c = client(nurl4)
        assert c.read(SI, 0, 0, len(SHARE)) == SHARE
        c.close()
        st = status()
        assert st["booted"] == "b" and st["good"] == "b" and st["try"] == "", st
        step(f"back on slot b ({v2}) after the watchdog's reset, share intact", t0)
        step(f"the watchdog ({WATCHDOG_S} s) was handed to cairnd at {handovers} s of uptime in the healthy boots",
             t0)
        ok = True
    except BaseException as e:  # noqa: B902 - report, then clean up
        print(f"FAILED: {e!r}", flush=True)
        log = os.path.join(tmp, "console.log")
        if os.path.exists(log):
            with open(log) as f:
                tail = f.read()[-6000:]
            print("--- the console's last lines ---\n" + tail, flush=True)
    finally:
        signal.alarm(0)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if qmp is not None:
            qmp.close()
        if httpd is not None:
            httpd.shutdown()
        if a.keep or not ok:
            print(f"work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    step("passed" if ok else "failed", t0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
