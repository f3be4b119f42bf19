"""Checks a board's whole disk image without running it (`make image-test`,
before any boot): what can be known about an image from its bytes.

- the partition table (sfdisk's reading, and the MBR's bytes read here):
  four primary partitions, 1 MiB aligned, boot FAT (type c, active), root
  slots A and B, data; the disk identifier the kernel command line names;
- the boot partition: fsck.vfat finds no error; the kernel, the initramfs,
  cmdline.txt, the boot state and both slots' manifests and signatures are
  there; the kernel and (rpi4) the firmware and device tree are byte for byte
  the files of the Debian packages the build used, by the MD5 sums those
  packages carry (DEBIAN/md5sums);
- rpi4: start4.elf and fixup4.dat are there; config.txt boots 64-bit and
  names a kernel, an initramfs and a device tree that are on the partition;
  fdtget reads the device tree as the Raspberry Pi 4 model B's; every device
  the boot needs (SD card, its regulators, Ethernet, random numbers, watchdog,
  LEDs, USB's PCIe reset) has its driver built into the kernel or loaded by
  the initramfs, by the kernel's own module aliases;
- the initramfs: its /init is boards/image/initramfs-init; every module the
  board names is in it (for the kernel's version) or built in; its module
  list is the board's; cmdline.txt has no root= (the initramfs picks the
  slot) and the disk identifier of the MBR;
- the boot's watchdog and LED: the initramfs and the root carry
  boards/image/boot-lib.sh; cmdline.txt has the board's words (whole
  seconds for cairn.watchdog= and cairn.bootpet=); the LED trigger the boot
  pattern uses (ledtrig-timer) is in the initramfs; rpi4: the watchdog's
  period is at most bcm2835-wdt's 15 s and the boot pets it; cairn.led=
  names an LED of the device tree (its label), the one cairnd takes over;
- both root slots: their first bytes are the root image; `cairn image verify`
  and openssl accept the manifest and signature on the boot partition with
  the build's public key; the slot holds an aarch64 cairnd and init.

Exit 0 when every check passed; each check prints one line.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20

# The Raspberry Pi 4 model B's devices the boot and the node need, by the
# compatible string of their device tree node (bcm2711-rpi-4-b.dts), and one
# platform device a built-in driver makes (the watchdog, under the PM block).
RPI4_NEEDED = [
    ("brcm,bcm2711-emmc2", "the SD card's controller"),
    ("regulator-fixed", "the SD card's power"),
    ("regulator-gpio", "the SD card's I/O voltage"),
    ("brcm,bcm2711-genet-v5", "Ethernet"),
    ("brcm,genet-mdio-v5", "Ethernet's MDIO bus"),
    ("brcm,bcm2711-rng200", "the hardware random number generator"),
    ("brcm,bcm2835-pm-wdt", "the power management block (makes the watchdog)"),
    ("gpio-leds", "the LEDs"),
    ("brcm,bcm2835-aux-uart", "the serial console (ttyS1)"),
    ("brcm,bcm2711-gpio", "GPIO"),
    ("brcm,bcm2835-mbox", "the firmware mailbox"),
    ("raspberrypi,firmware-clocks", "the firmware's clocks"),
    ("raspberrypi,firmware-gpio", "the firmware's GPIO expander (SD power)"),
    ("brcm,bcm2711-pcie", "PCIe (USB's VL805)"),
    ("raspberrypi,firmware-reset", "the VL805's reset"),
]
RPI4_PLATFORM_NEEDED = [("platform:bcm2835-wdt", "the watchdog (/dev/watchdog)")]


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}{': ' + detail if detail else ''}")
        return ok


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw).stdout


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MIB), b""):
            h.update(b)
    return h.hexdigest()


def package_md5sums(deb, tmp):
    """{path without leading /: md5} from the package's own DEBIAN/md5sums."""
    d = tempfile.mkdtemp(dir=tmp)
    run("dpkg-deb", "-e", deb, d)
    sums = {}
    with open(os.path.join(d, "md5sums")) as f:
        for line in f:
            md5, path = line.rstrip("\n").split(None, 1)
            sums[path] = md5
    return sums


def fdt_nodes(dtb):
    """(path, compatible list, enabled) of every node, by fdtget."""
    out = []

    def walk(path, parent_enabled):
        props = run("fdtget", "-p", dtb, path, text=True).split()
        compat = run("fdtget", dtb, path, "compatible", text=True).split() if "compatible" in props else []
        status = run("fdtget", dtb, path, "status", text=True).strip() if "status" in props else "okay"
        enabled = parent_enabled and status in ("okay", "ok")
        out.append((path, compat, enabled))
        for child in run("fdtget", "-l", dtb, path, text=True).split():
            walk(path.rstrip("/") + "/" + child, enabled)

    walk("/", True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--board", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--tool", required=True, help="the host's cairn (image verify)")
    ap.add_argument("--key", required=True, help="the signing key; KEY.pub next to it is checked against")
    ap.add_argument("--debs", required=True, help="where the build kept the .debs it used")
    ap.add_argument("--firmware", required=True, choices=("none", "efi", "rpi4"))
    ap.add_argument("--boot-mb", type=int, required=True)
    ap.add_argument("--slot-mb", type=int, required=True)
    ap.add_argument("--modules", required=True, help="the modules the board's initramfs loads")
    ap.add_argument("--cmdline-extra", default="", help="the board's words for the kernel command line")
    ap.add_argument("--led", default="", help="the board's status LED (HW_led), which cairnd takes over")
    a = ap.parse_args()
    c = Checks()
    name = f"cairn-{a.version}-{a.board}"
    img = os.path.join(a.image_dir, name + ".img")
    pub = a.key[:-len(".pem")] + ".pub" if a.key.endswith(".pem") else a.key + ".pub"
    tmp = tempfile.mkdtemp(prefix="cairn-check-disk-", dir="/tmp")
    try:
        # --- the partition table ---------------------------------------------
        table = json.loads(run("sfdisk", "--json", img))["partitiontable"]
        parts = table["partitions"]
        with open(img, "rb") as f:
            mbr = f.read(512)
        diskid = "%08x" % struct.unpack_from("<I", mbr, 440)[0]
        raw = [struct.unpack_from("<B3sB3sII", mbr, 446 + 16 * i) for i in range(4)]
        c.check(mbr[510:512] == b"\x55\xaa" and table["label"] == "dos", "an MBR partition table")
        c.check(table["id"] == "0x" + diskid and diskid != "00000000",
                f"disk identifier {diskid}", f"sfdisk says {table['id']}")
        c.check(len(parts) == 4 and all(r[4] for r in raw), "four primary partitions", str(parts))
        if len(parts) == 4:
            boot, slot_a, slot_b, data = parts
            sizes = [(p["start"], p["size"]) for p in parts]
            c.check([(r[4], r[5]) for r in raw] == sizes, "sfdisk and the MBR's bytes agree")
            c.check(all(s % 2048 == 0 for s, _ in sizes), "every partition starts on a MiB")
            c.check(all(sizes[i][0] + sizes[i][1] <= sizes[i + 1][0] for i in range(3)), "no overlap")
            c.check(boot["type"] == "c" and boot.get("bootable") and boot["start"] == 2048
                    and boot["size"] == a.boot_mb * 2048, f"1: boot, FAT32 LBA, active, {a.boot_mb} MiB", str(boot))
            for p, s in ((slot_a, "a"), (slot_b, "b")):
                c.check(p["type"] == "83" and p["size"] == a.slot_mb * 2048,
                        f"{p['node'][-1]}: root slot {s}, {a.slot_mb} MiB", str(p))
            c.check(data["type"] == "83" and (data["start"] + data["size"]) * 512 <= os.path.getsize(img),
                    "4: data, inside the image (grown on the first boot)", str(data))

        # --- the boot partition ------------------------------------------------
        bootimg = os.path.join(tmp, "boot.vfat")
        with open(img, "rb") as f, open(bootimg, "wb") as o:
            f.seek(parts[0]["start"] * 512)
            o.write(f.read(parts[0]["size"] * 512))
        fsck = subprocess.run(["fsck.vfat", "-n", bootimg], capture_output=True, text=True)
        c.check(fsck.returncode == 0, "fsck.vfat -n: the boot file system is clean", fsck.stdout + fsck.stderr)
        bootdir = os.path.join(tmp, "boot")
        os.makedirs(bootdir)
        run("mcopy", "-s", "-n", "-i", bootimg, "::/*", bootdir, env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        label = run("mlabel", "-s", "-i", bootimg, "::", text=True, env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        c.check("CAIRNBOOT" in label, "its label is CAIRNBOOT", label.strip())
        files = sorted(os.path.relpath(os.path.join(d, f), bootdir) for d, _, fs in os.walk(bootdir) for f in fs)
        print("      boot partition: " + " ".join(files))
        for f in ("vmlinuz", "initrd.img", "cmdline.txt", "cairn/bootstate", "cairn/slot-a.manifest",
                  "cairn/slot-a.sig", "cairn/slot-b.manifest", "cairn/slot-b.sig"):
            c.check(f in files, f"boot partition has {f}")
        with open(os.path.join(bootdir, "cairn/bootstate")) as f:
            c.check(f.read() == "good=a\ntry=\ntries=0\n", "boot state: slot a good, nothing on trial")

        # The Debian packages the build used, by their own MD5 sums.
        with open(os.path.join(a.image_dir, "disk", "packages.txt")) as f:
            debs = [os.path.join(a.debs, line.strip()) for line in f if line.strip()]
        kdeb = [d for d in debs if re.match(r"linux-image-\d", os.path.basename(d))]
        c.check(len(kdeb) == 1, "one kernel package", str(kdeb))
        kver = re.match(r"linux-image-([^_]+)_", os.path.basename(kdeb[0])).group(1)
        ksums = package_md5sums(kdeb[0], tmp)
        kmd5 = ksums.get(f"boot/vmlinuz-{kver}")
        c.check(kmd5 and md5_file(os.path.join(bootdir, "vmlinuz")) == kmd5,
                f"vmlinuz is {os.path.basename(kdeb[0])}'s boot/vmlinuz-{kver}")
        with open(os.path.join(bootdir, "vmlinuz"), "rb") as f:
            kernel = f.read()
        c.check(kernel[56:60] == b"ARM\x64", "vmlinuz is an arm64 Linux Image (magic ARM\\x64 at byte 56)")

        # --- the initramfs ---------------------------------------------------------
        ird = os.path.join(tmp, "initramfs")
        os.makedirs(ird)
        with open(os.path.join(bootdir, "initrd.img"), "rb") as f:
            cpio_data = subprocess.run(["gzip", "-dc"], stdin=f, capture_output=True, check=True).stdout
        subprocess.run(["cpio", "-id", "--quiet", "--no-absolute-filenames"], input=cpio_data, cwd=ird, check=True)
        with open(os.path.join(ird, "init"), "rb") as f, \
                open(os.path.join(ROOT, "boards", "image", "initramfs-init"), "rb") as g:
            c.check(f.read() == g.read(), "initramfs /init is boards/image/initramfs-init")
        c.check(os.access(os.path.join(ird, "init"), os.X_OK) and os.path.exists(os.path.join(ird, "bin/busybox")),
                "initramfs /init is executable; busybox is there")
        kmods = os.path.join(ird, "lib", "modules", kver)
        c.check(os.path.isdir(kmods) and os.listdir(os.path.join(ird, "lib", "modules")) == [kver],
                f"initramfs modules are for kernel {kver} only")
        with open(os.path.join(ird, "etc", "cairn-boot.conf")) as f:
            conf = f.read()
        listed = re.search(r'^modules="(.*)"$', conf, re.M).group(1).split()
        wanted = a.modules.split()
        c.check(listed + re.findall(r'^watchdog_module="(.+)"$', conf, re.M) == wanted,
                "the initramfs loads the board's modules", f"{listed} vs {wanted}")
        ko = {}
        for d, _, fs in os.walk(kmods):
            for f in fs:
                if f.endswith(".ko"):
                    ko[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(d, f), ird)
        builtin = open(os.path.join(a.image_dir, "disk", "pkg", "lib", "modules", kver, "modules.builtin")).read()
        for m in wanted:
            key = m.replace("-", "_")
            if key in ko:
                c.check(True, f"module {m}: in the initramfs")
            else:
                c.check(re.search(rf"/{re.escape(m)}\.ko$", builtin, re.M) is not None,
                        f"module {m}: built into the kernel", "neither in the initramfs nor built in")
        bad = [p for p in ko.values() if ksums.get(p) != md5_file(os.path.join(ird, p))]
        c.check(not bad, f"the initramfs's {len(ko)} modules are the kernel package's", str(bad))
        with open(os.path.join(ROOT, "boards", "image", "boot-lib.sh"), "rb") as g:
            boot_lib = g.read()
        with open(os.path.join(ird, "lib", "cairn", "boot-lib.sh"), "rb") as f:
            c.check(f.read() == boot_lib, "initramfs /lib/cairn/boot-lib.sh is boards/image/boot-lib.sh")
        c.check(all(os.path.exists(os.path.join(ird, "bin", t)) for t in ("watchdog", "kill", "ls", "sleep", "cat")),
                "initramfs: the tools the watchdog petter uses (busybox watchdog, kill, ls, sleep, cat)")
        c.check("ledtrig_timer" in ko or re.search(r"/ledtrig-timer\.ko$", builtin, re.M) is not None,
                "initramfs: the LED timer trigger (the boot pattern) is there or built in")

        # --- the kernel command line ---------------------------------------------
        with open(os.path.join(bootdir, "cmdline.txt")) as f:
            cmdline_text = f.read()
        words = cmdline_text.split()
        c.check(cmdline_text.count("\n") == 1 and cmdline_text.endswith("\n"), "cmdline.txt is one line")
        c.check(f"cairn.diskid={diskid}" in words, f"cmdline.txt names the disk {diskid}", cmdline_text)
        c.check(not any(w.startswith("root=") for w in words) and not any(w.startswith("init=") for w in words),
                "cmdline.txt has no root= or init=: the kernel runs the initramfs's /init, which picks the slot")
        c.check(any(w.startswith("console=") for w in words), "cmdline.txt names a console", cmdline_text)
        extra = a.cmdline_extra.split()
        c.check(all(w in words for w in extra), "cmdline.txt has the board's words " + " ".join(extra), cmdline_text)
        setting = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if "=" in w}
        for k in ("cairn.watchdog", "cairn.bootpet"):
            if k in setting:
                c.check(setting[k].isdigit() and int(setting[k]) > 0, f"cmdline.txt: {k}={setting[k]} seconds")

        # --- efi: systemd-boot and its entry ------------------------------------------
        if a.firmware == "efi":
            sdeb = [d for d in debs if os.path.basename(d).startswith("systemd-boot-efi_")]
            c.check(len(sdeb) == 1, "one systemd-boot-efi package", str(sdeb))
            ssums = package_md5sums(sdeb[0], tmp)
            loader = os.path.join(bootdir, "EFI/BOOT/BOOTAA64.EFI")
            c.check(os.path.exists(loader) and md5_file(loader) == ssums.get(
                "usr/lib/systemd/boot/efi/systemd-bootaa64.efi"),
                f"EFI/BOOT/BOOTAA64.EFI (the removable-media loader) is {os.path.basename(sdeb[0])}'s systemd-boot")
            with open(os.path.join(bootdir, "loader/loader.conf")) as f:
                lconf = f.read().split("\n")
            c.check("default cairn.conf" in lconf and "timeout 0" in lconf,
                    "loader/loader.conf: default cairn.conf, timeout 0", str(lconf))
            entry = {}
            with open(os.path.join(bootdir, "loader/entries/cairn.conf")) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition(" ")
                    entry[k] = v
            c.check(entry.get("linux", "").lstrip("/") == "vmlinuz" and entry.get("initrd", "").lstrip("/") ==
                    "initrd.img", "the loader entry boots /vmlinuz with /initrd.img", str(entry))
            c.check(entry.get("options") == cmdline_text.strip(), "the loader entry's options are cmdline.txt's",
                    str(entry))

        # --- rpi4: the firmware, config.txt, the device tree -----------------------
        if a.firmware == "rpi4":
            fwdeb = [d for d in debs if os.path.basename(d).startswith("raspi-firmware_")]
            c.check(len(fwdeb) == 1, "one raspi-firmware package", str(fwdeb))
            fsums = package_md5sums(fwdeb[0], tmp)
            for f in ("start4.elf", "fixup4.dat"):
                c.check(f in files, f"firmware {f} is on the boot partition")
            fw = [p for p in fsums if re.match(r"usr/lib/raspi-firmware/(start4.*\.elf|fixup4.*\.dat)$", p)]
            for p in sorted(fw):
                f = os.path.join(bootdir, os.path.basename(p))
                c.check(os.path.exists(f) and md5_file(f) == fsums[p],
                        f"{os.path.basename(p)} is {os.path.basename(fwdeb[0])}'s")
            config = {}
            initramfs = None
            with open(os.path.join(bootdir, "config.txt")) as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line.startswith("["):
                        c.check(False, "config.txt has no conditional sections", line)
                    elif line.startswith("initramfs "):
                        initramfs = line.split()[1:]
                    elif "=" in line:
                        k, v = line.split("=", 1)
                        config[k.strip()] = v.strip()
            c.check(config.get("arm_64bit") == "1", "config.txt: arm_64bit=1 (the CPU starts in 64-bit mode)")
            c.check(config.get("enable_uart") == "1", "config.txt: enable_uart=1 (the serial console)")
            c.check(config.get("kernel") in files and md5_file(os.path.join(bootdir, config["kernel"])) == kmd5,
                    f"config.txt: kernel={config.get('kernel')}, the kernel package's vmlinuz")
            c.check(initramfs is not None and initramfs[0] == "initrd.img" and initramfs[1:] == ["followkernel"],
                    "config.txt: initramfs initrd.img followkernel", str(initramfs))
            dtname = config.get("device_tree")
            dsum = ksums.get(f"usr/lib/linux-image-{kver}/broadcom/bcm2711-rpi-4-b.dtb")
            c.check(dtname in files and md5_file(os.path.join(bootdir, dtname)) == dsum,
                    f"config.txt: device_tree={dtname}, the kernel package's broadcom/bcm2711-rpi-4-b.dtb")
            dtb = os.path.join(bootdir, dtname)
            compat = run("fdtget", dtb, "/", "compatible", text=True).split()
            model = run("fdtget", dtb, "/", "model", text=True).strip()
            c.check("raspberrypi,4-model-b" in compat and "brcm,bcm2711" in compat,
                    f"fdtget: the device tree is the {model}'s ({' '.join(compat)})")
            # Which driver each needed device gets: a module alias of the kernel
            # (modules.alias, depmod's reading of the kernel package) names a
            # module, which must be in the initramfs; a compatible no module
            # claims must be in the kernel image itself (a built-in driver's
            # match table).
            aliases = []
            with open(os.path.join(a.image_dir, "disk", "pkg", "lib", "modules", kver, "modules.alias")) as f:
                for line in f:
                    p = line.split()
                    if len(p) == 3 and p[0] == "alias":
                        aliases.append((p[1], p[2]))
            nodes = fdt_nodes(dtb)
            for comp, what in RPI4_NEEDED:
                found = [(path, cl) for path, cl, en in nodes if en and comp in cl]
                if not c.check(found, f"device tree: {comp} ({what}) is present and enabled"):
                    continue
                path, cl = found[0]
                nodename = path.rsplit("/", 1)[1].split("@")[0]
                modalias = f"of:N{nodename}T<NULL>" + "".join("C" + x for x in cl)
                mods = sorted({m for pat, m in aliases if fnmatch.fnmatchcase(modalias, pat)})
                if mods:
                    c.check(any(m in ko for m in mods), f"  its driver {' or '.join(mods)} is in the initramfs")
                else:
                    c.check(any(x.encode() + b"\0" in kernel for x in cl),
                            "  its driver is built into the kernel (its compatible is in vmlinuz)")
            for modalias, what in RPI4_PLATFORM_NEEDED:
                mods = sorted({m for pat, m in aliases if fnmatch.fnmatchcase(modalias, pat)})
                c.check(mods and any(m in ko for m in mods), f"{modalias} ({what}): {' '.join(mods)} in the initramfs")
            # The boot's watchdog: bcm2835-wdt counts at most 15 s (0xfffff
            # ticks of 65536 Hz), shorter than a boot, so the boot must pet it.
            wd = setting.get("cairn.watchdog", "")
            c.check(wd.isdigit() and 0 < int(wd) <= 15 and setting.get("cairn.bootpet", "").isdigit(),
                    f"rpi4: the boot arms the watchdog for {wd or '?'} s (bcm2835-wdt: at most 15 s) and pets it "
                    f"for at most {setting.get('cairn.bootpet', '?')} s of uptime")
            # The boot's LED: a gpio-leds child whose label (the name under
            # /sys/class/leds) is cairn.led=, the LED cairnd takes over.
            led = setting.get("cairn.led", "")
            labels = []
            for path, cl, en in nodes:
                if en and "gpio-leds" in cl:
                    for child in run("fdtget", "-l", dtb, path, text=True).split():
                        lab = subprocess.run(["fdtget", "-t", "s", dtb, f"{path}/{child}", "label"],
                                             capture_output=True, text=True).stdout.strip()
                        labels.append(lab)
            c.check(led and led in labels and led == a.led,
                    f"rpi4: cairn.led={led} is an LED of the device tree ({' '.join(labels)}) and cairnd's ({a.led})")

        # --- the root slots ---------------------------------------------------------
        rootfs = os.path.join(a.image_dir, name + ".rootfs")
        with open(os.path.join(a.image_dir, name + ".manifest")) as f:
            manifest_text = f.read()
        m = re.search(r"^image (\S+) (\d+) ([0-9a-f]{64})$", manifest_text, re.M)
        c.check(m and m.group(1) == name + ".rootfs", "the manifest names the root image")
        size, sha = int(m.group(2)), m.group(3)
        c.check(f"board {a.board}\n" in manifest_text and f"version {a.version}\n" in manifest_text,
                f"the manifest says board {a.board}, version {a.version}")
        for i, s in ((1, "a"), (2, "b")):
            d = os.path.join(tmp, "slot-" + s)
            os.makedirs(d)
            with open(img, "rb") as f:
                f.seek(parts[i]["start"] * 512)
                data = f.read(size)
            with open(os.path.join(d, name + ".rootfs"), "wb") as o:
                o.write(data)
            for ext in ("manifest", "sig"):
                shutil.copy(os.path.join(bootdir, "cairn", f"slot-{s}.{ext}"), os.path.join(d, f"{name}.{ext}"))
            c.check(hashlib.sha256(data).hexdigest() == sha, f"slot {s}: its first {size} bytes hash as the manifest says")
            with open(rootfs, "rb") as f:
                c.check(f.read() == data, f"slot {s}: holds {name}.rootfs")
            v = subprocess.run([a.tool, "image", "verify", os.path.join(d, name + ".rootfs"), "--pubkey", pub,
                                "--board", a.board], capture_output=True, text=True)
            c.check(v.returncode == 0, f"slot {s}: cairn image verify accepts it with the boot partition's "
                    "manifest and signature", v.stdout + v.stderr)
            o = subprocess.run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt",
                                "rsa_pss_saltlen:32", "-verify", pub, "-signature", os.path.join(d, name + ".sig"),
                                os.path.join(d, name + ".manifest")], capture_output=True, text=True)
            c.check(o.returncode == 0 and "Verified OK" in o.stdout, f"slot {s}: openssl verifies the signature",
                    o.stdout + o.stderr)
        listing = run("unsquashfs", "-l", "-n", rootfs, text=True)
        for f in ("sbin/init", "usr/bin/cairnd", "usr/bin/cairn", "bin/busybox", "etc/cairn/image-key.pub",
                  "etc/cairn/release", "lib/ld-linux-aarch64.so.1"):
            c.check(f"squashfs-root/{f}\n" in listing, f"the root has /{f}")
        x = os.path.join(tmp, "root")
        run("unsquashfs", "-n", "-d", x, rootfs, "usr/bin/cairnd", "etc/cairn/release", "etc/cairn/image-key.pub",
            "lib/cairn/boot-lib.sh")
        with open(os.path.join(x, "lib/cairn/boot-lib.sh"), "rb") as f:
            c.check(f.read() == boot_lib, "the root's /lib/cairn/boot-lib.sh is boards/image/boot-lib.sh")
        hdr = run("readelf", "-h", os.path.join(x, "usr/bin/cairnd"), text=True)
        c.check("AArch64" in hdr, "its cairnd is an AArch64 program")
        with open(os.path.join(x, "etc/cairn/release")) as f:
            c.check(f.read() == f"version={a.version}\nboard={a.board}\n", "its /etc/cairn/release")
        with open(os.path.join(x, "etc/cairn/image-key.pub"), "rb") as f, open(pub, "rb") as g:
            c.check(f.read() == g.read(), "its update key is the build's public key")

        print(f"      sizes: image {os.path.getsize(img) // MIB} MiB, "
              f".img.xz {os.path.getsize(img + '.xz')} bytes, rootfs {size} bytes, "
              f"initrd.img {os.path.getsize(os.path.join(bootdir, 'initrd.img'))} bytes, "
              f"boot files {sum(os.path.getsize(os.path.join(bootdir, f)) for f in files)} bytes")
    except Exception as e:  # noqa: B902 - a check that cannot even run is a failure
        c.check(False, "the checks ran to the end", repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"check_disk: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
