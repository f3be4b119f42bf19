#!/bin/sh
# Builds a whole bootable disk image for a board (what `make image BOARD=x`
# runs after make_image.sh when the board sets IMAGE_DISK): a partition table,
# a FAT boot partition (Debian's kernel, our initramfs, the boot state), two
# root slots A and B (each the same signed squashfs root) and a data
# partition that the box formats on its first boot. Layout: docs/boards.md.
#
# Everything for the board comes from Debian 12 packages fetched with
# `apt-get download PKG:ARCH` and unpacked with `dpkg-deb -x` (never
# installed, never run): the kernel, busybox-static, e2fsprogs and the shared
# libraries cairnd and cairn need. Only host tools run here (readelf, depmod,
# mksquashfs, cpio, mkfs.vfat, mtools, sfdisk, the host's cairn).
#
# The boot partition is what the board's boot firmware reads:
#   --firmware none  (qemu-arm64) the kernel, initramfs and cmdline.txt, which
#                    the test hands to qemu (-kernel, -initrd, -append);
#   --firmware efi   (qemu-arm64 with UEFI firmware) also systemd-boot
#                    (Debian's systemd-boot-efi) as the removable-media loader
#                    EFI/BOOT/BOOTAA64.EFI, with loader/loader.conf and a
#                    loader/entries/cairn.conf entry naming the kernel, the
#                    initramfs and the command line;
#   --firmware rpi4  also Debian's Raspberry Pi GPU firmware (raspi-firmware,
#                    from Debian's non-free-firmware component, fetched with a
#                    private apt sources list and state under DEBS/apt: the
#                    machine's apt sources are not changed), the kernel's
#                    bcm2711-rpi-4-b.dtb and a config.txt naming them.
# The initramfs finds the disk by its MBR disk identifier (cairn.diskid= on
# the kernel command line, random per build), whatever the kernel names it.
#
# Usage: make_disk.sh --board B --version V --bin DIR --tool CAIRN --out DIR
#                     --arch ARCH --triplet T --modules 'M ...' [--key KEY.pem]
#                     [--firmware none|efi|rpi4] [--console TTY] [--watchdog-module M]
#                     [--boot-mb N] [--slot-mb N] [--data-mb N] [--cmdline-extra WORDS]
#                     [--debs DIR]
# DIR/cairn-V-B.img       the disk image, and .img.xz, its compressed copy
# DIR/cairn-V-B.rootfs    the root slot image (an update), with .manifest, .sig
# DIR/disk/               the staged parts and packages.txt (the .debs used)
# --modules: the kernel modules the initramfs loads, in order (a name missing
# from the kernel package, and not built in, is an error); --watchdog-module:
# the watchdog driver it loads with heartbeat=N when cairn.watchdog=N.
# --debs: where downloaded .debs are kept between builds (default DIR/debs;
# boards of one architecture can share it).
# Without --key a development key pair DIR/dev-key.pem, .pub is made and used
# (as make_image.sh does); with it, KEY.pub must lie next to KEY.pem.
set -eu
cd "$(dirname "$0")/../.."
board= version= bin= tool= out= arch= triplet= key= slot_mb=96 data_mb=64 boot_mb=64 extra=
firmware=none console=ttyAMA0 modules= wdmod= debs=
while [ $# -gt 0 ]; do
  case "$1" in
    --board) board=$2 ;;
    --version) version=$2 ;;
    --bin) bin=$2 ;;
    --tool) tool=$2 ;;
    --out) out=$2 ;;
    --arch) arch=$2 ;;
    --triplet) triplet=$2 ;;
    --key) key=$2 ;;
    --firmware) firmware=$2 ;;
    --console) console=$2 ;;
    --modules) modules=$2 ;;
    --watchdog-module) wdmod=$2 ;;
    --boot-mb) boot_mb=$2 ;;
    --debs) debs=$2 ;;
    --slot-mb) slot_mb=$2 ;;
    --data-mb) data_mb=$2 ;;
    --cmdline-extra) extra=$2 ;;
    *) echo "make_disk.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
for v in board version bin tool out arch triplet modules; do
  eval "test -n \"\$$v\"" || { echo "make_disk.sh: --$v is required" >&2; exit 2; }
done
case "$firmware" in none|efi|rpi4) ;; *) echo "make_disk.sh: --firmware must be none, efi or rpi4" >&2; exit 2 ;; esac
for t in readelf depmod mksquashfs cpio mkfs.vfat mcopy sfdisk xz; do
  command -v $t >/dev/null || { echo "make_disk.sh: $t missing (make image installs it)" >&2; exit 1; }
done

name=cairn-$version-$board
work=$out/disk
mkdir -p "$out"
if [ -z "$key" ]; then
  key=$out/dev-key.pem
  [ -e "$key" ] || "$tool" -q image keygen "$key" "$out/dev-key.pub"
  cat >&2 <<WARN
********************************************************************
* WARNING: signed with a DEVELOPMENT key, $key,
* made on this machine. Anyone with this build directory can sign
* updates the image accepts. For a release: make image IMAGE_KEY=/path/key.pem
********************************************************************
WARN
fi
[ -e "${key%.pem}.pub" ] || { echo "make_disk.sh: ${key%.pem}.pub (the public half of $key) is missing" >&2; exit 1; }
debs=${debs:-$out/debs}   # the downloaded .debs, kept between builds
mkdir -p "$debs"
rm -rf "$work"
mkdir -p "$work/pkg"
say() { echo "image: $*"; }

# --- the Debian packages -----------------------------------------------------
# The kernel: linux-image-ARCH is a metapackage naming the current one.
kpkg=$(apt-cache depends "linux-image-$arch:$arch" | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
[ -n "$kpkg" ] || { echo "make_disk.sh: no linux-image-$arch:$arch (apt-get update after dpkg --add-architecture $arch?)" >&2; exit 1; }
libs="libc6 libgcc-s1 libstdc++6 libuv1 liblmdb0 libmbedtls14 libmbedx509-1 libmbedcrypto7 libcjson1 \
libext2fs2 libcom-err2 libblkid1 libuuid1 libss2"
pkgs="$kpkg busybox-static e2fsprogs $libs"
[ "$firmware" = efi ] && pkgs="$pkgs systemd-boot-efi"
# The newest downloaded .deb of package $1 for the board (or architecture all).
deb_of() { ls "$debs/${1}_"*"_$arch.deb" "$debs/${1}_"*"_all.deb" 2>/dev/null | tail -1; }
quiet_apt() { grep -v -e unsandboxed -e '^Get:' -e '^Fetched' -e '^Reading' || true; }
for p in $pkgs; do
  [ -n "$(deb_of "$p")" ] || (cd "$debs" && apt-get download -q "$p:$arch" 2>&1 | quiet_apt)
  deb=$(deb_of "$p")
  [ -n "$deb" ] || { echo "make_disk.sh: could not download $p:$arch" >&2; exit 1; }
  dpkg-deb -x "$deb" "$work/pkg"
  echo "$(basename "$deb")" >> "$work/packages.txt"
done
# Debian 12's non-free-firmware component, for the Raspberry Pi firmware: a
# private sources list and apt state under $debs/apt, so the machine's apt
# configuration is neither needed nor changed. IMAGE_DEBIAN_MIRROR overrides
# the archive.
apt=$(cd "$debs" && pwd)/apt
papt() {
  apt-get -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts="$apt/none" \
    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" "$@"
}
nonfree_download() {
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
    "${IMAGE_DEBIAN_MIRROR:-http://deb.debian.org/debian} bookworm non-free-firmware" > "$apt/sources.list"
  say "fetching $1 from Debian's non-free-firmware component (private apt sources and state: $apt)"
  papt -q update 2>&1 | quiet_apt
  (cd "$debs" && papt -q download "$1" 2>&1 | quiet_apt)
}
if [ "$firmware" = rpi4 ]; then
  [ -n "$(deb_of raspi-firmware)" ] || nonfree_download raspi-firmware
  deb=$(deb_of raspi-firmware)
  [ -n "$deb" ] || { echo "make_disk.sh: could not download raspi-firmware" >&2; exit 1; }
  mkdir -p "$work/fw"
  dpkg-deb -x "$deb" "$work/fw"
  echo "$(basename "$deb")" >> "$work/packages.txt"
fi
kver=${kpkg#linux-image-}
say "Debian packages unpacked (not installed): $(tr '\n' ' ' < "$work/packages.txt")"

# --- the root slot -------------------------------------------------------------
root=$work/root
bbin=$work/pkg/bin/busybox
# The busybox applets the init scripts and an owner at the console use. Hard
# links, not symlinks: the manifest lists regular files only.
applets="sh ash cat chmod cp cut date dd df dmesg du echo env expr false free grep head hostname ip ifconfig kill
ln ls mkdir mknod mount mv nc od ping printf ps readlink reboot poweroff halt rm rmdir route sed seq setsid sleep
sort stat stty sync tail tee test top touch tr true umount uname uptime vi wc wget xargs udhcpc cttyhack switch_root
modprobe insmod lsmod blockdev sha256sum logger less find awk basename dirname mountpoint watchdog"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/etc/cairn" "$root/lib/$triplet" \
  "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" "$root/data" "$root/boot" "$root/root"
install -m 0755 "$bbin" "$root/bin/busybox"
for a in $applets; do ln "$root/bin/busybox" "$root/bin/$a"; done
install -m 0755 "$bin/cairnd" "$bin/cairn" "$root/usr/bin/"
for t in mke2fs e2fsck resize2fs; do install -m 0755 "$work/pkg/sbin/$t" "$root/sbin/$t"; done
install -m 0644 "$work/pkg/etc/mke2fs.conf" "$root/etc/mke2fs.conf"
install -m 0755 boards/image/init "$root/sbin/init"
install -m 0755 boards/image/cairn-reboot "$root/sbin/cairn-reboot"
mkdir -p "$root/lib/cairn"
install -m 0644 boards/image/boot-lib.sh "$root/lib/cairn/boot-lib.sh"
install -m 0755 boards/image/udhcpc.script "$root/etc/udhcpc.script"
"$tool" -q init "$work/defaults" --board "$board" --nickname cairn >/dev/null
install -m 0644 "$work/defaults/cairn.json" "$root/etc/cairn/cairn-default.json"
install -m 0644 "${key%.pem}.pub" "$root/etc/cairn/image-key.pub"
printf 'version=%s\nboard=%s\n' "$version" "$board" > "$root/etc/cairn/release"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'cairn\n' > "$root/etc/hostname"

# The shared libraries: every DT_NEEDED of every ELF file, transitively, copied
# (as regular files under their soname) from the unpacked packages.
find_lib() {
  for d in "$work/pkg/lib/$triplet" "$work/pkg/usr/lib/$triplet"; do
    [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}
needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
todo="$root/usr/bin/cairnd $root/usr/bin/cairn $root/sbin/mke2fs $root/sbin/e2fsck $root/sbin/resize2fs"
while [ -n "$todo" ]; do
  next=
  for f in $todo; do
    for lib in $(needed "$f"); do
      [ -e "$root/lib/$triplet/$lib" ] && continue
      src=$(find_lib "$lib") || { echo "make_disk.sh: $lib (needed by $f) is in none of the packages" >&2; exit 1; }
      cp -L "$src" "$root/lib/$triplet/$lib"
      chmod 0644 "$root/lib/$triplet/$lib"
      next="$next $root/lib/$triplet/$lib"
    done
  done
  todo=$next
done
interp=$(readelf -l "$bin/cairnd" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
mkdir -p "$root$(dirname "$interp")"
[ -e "$root$interp" ] || cp -L "$(find_lib "$(basename "$interp")")" "$root$interp"
chmod 0755 "$root$interp"

rootfs=$out/$name.rootfs
rm -f "$rootfs" "$out/$name.manifest" "$out/$name.sig"
mksquashfs "$root" "$rootfs" -noappend -all-root -comp xz -quiet -no-progress >/dev/null
"$tool" -q image sign "$rootfs" --root "$root" --board "$board" --version "$version" --key "$key"
rsize=$(stat -c %s "$rootfs")
[ "$rsize" -le $((slot_mb * 1048576)) ] || { echo "make_disk.sh: root image $rsize bytes > slot $slot_mb MiB" >&2; exit 1; }
say "root slot image $rootfs: $rsize bytes, $(find "$root" -type f | wc -l) files"

# --- the initramfs -------------------------------------------------------------
ird=$work/initramfs
kmods=$work/pkg/lib/modules/$kver
mkdir -p "$ird/bin" "$ird/sbin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/run" "$ird/newroot" "$ird/boot" \
  "$ird/lib/modules/$kver"
install -m 0755 "$bbin" "$ird/bin/busybox"
for a in sh cat echo mkdir mount umount sleep sed grep mv rm sync switch_root modprobe insmod dd od tr ls reboot blockdev printf \
  kill watchdog; do
  ln "$ird/bin/busybox" "$ird/bin/$a"
done
ln "$ird/bin/busybox" "$ird/sbin/modprobe"
install -m 0755 boards/image/initramfs-init "$ird/init"
mkdir -p "$ird/lib/cairn"
install -m 0644 boards/image/boot-lib.sh "$ird/lib/cairn/boot-lib.sh"
# The board's modules (--modules, then the watchdog driver) and what they
# depend on (depmod reads them here as data; none is run). A module the
# kernel has built in needs no file; one that is neither is an error.
depmod -b "$work/pkg" "$kver"
mods=
for m in $modules $wdmod; do
  f=$(find "$kmods/kernel" -name "$m.ko" | head -1)
  if [ -z "$f" ]; then
    grep -q "/$m.ko\$" "$kmods/modules.builtin" ||
      { echo "make_disk.sh: module $m is neither in $kpkg nor built into it" >&2; exit 1; }
    continue
  fi
  rel=${f#"$kmods"/}
  mods="$mods $rel $(grep "^$rel:" "$kmods/modules.dep" | cut -d: -f2)"
done
for rel in $mods; do
  mkdir -p "$ird/lib/modules/$kver/$(dirname "$rel")"
  cp "$kmods/$rel" "$ird/lib/modules/$kver/$rel"
done
mkdir -p "$ird/etc"
printf 'modules="%s"\nwatchdog_module="%s"\n' "$(echo $modules)" "$wdmod" > "$ird/etc/cairn-boot.conf"
cp "$kmods/modules.order" "$kmods/modules.builtin" "$kmods/modules.builtin.modinfo" "$ird/lib/modules/$kver/"
depmod -b "$ird" "$kver"
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$work/initrd.img"
say "initramfs: $(stat -c %s "$work/initrd.img") bytes, kernel $kver, modules:$(for r in $mods; do printf ' %s' "$(basename "$r" .ko)"; done)"

# --- the boot partition (FAT: what the rpi4 firmware and an owner can read) -----
bootimg=$work/boot.vfat
# The disk identifier the initramfs looks for: random, never 0.
diskid=00000000
while [ "$diskid" = 00000000 ]; do diskid=$(od -An -tx4 -N4 /dev/urandom | tr -d ' \n'); done
cmdline="$console panic=5 cairn.diskid=$diskid${extra:+ $extra}"
rm -f "$bootimg"
mkfs.vfat -C -n CAIRNBOOT "$bootimg" $((boot_mb * 1024)) >/dev/null
printf '%s\n' "$cmdline" > "$work/cmdline.txt"
printf 'good=a\ntry=\ntries=0\n' > "$work/bootstate"
m() { MTOOLS_SKIP_CHECK=1 mcopy -i "$bootimg" "$@"; }
MTOOLS_SKIP_CHECK=1 mmd -i "$bootimg" ::/cairn
m "$work/pkg/boot/vmlinuz-$kver" ::/vmlinuz
m "$work/initrd.img" ::/initrd.img
m "$work/cmdline.txt" ::/cmdline.txt
m "$work/pkg/boot/config-$kver" ::/config-$kver
m "$work/bootstate" ::/cairn/bootstate
for s in a b; do
  m "$out/$name.manifest" "::/cairn/slot-$s.manifest"
  m "$out/$name.sig" "::/cairn/slot-$s.sig"
done
if [ "$firmware" = efi ]; then
  # systemd-boot, started by the UEFI firmware from the removable-media path
  # (no boot variables needed), boots the one entry at once.
  efi=$work/pkg/usr/lib/systemd/boot/efi/systemd-boot$([ "$arch" = arm64 ] && echo aa64 || echo "$arch").efi
  [ -e "$efi" ] || { echo "make_disk.sh: no $efi in systemd-boot-efi" >&2; exit 1; }
  loader_name=BOOT$([ "$arch" = arm64 ] && echo AA64 || echo "$arch").EFI
  for d in EFI EFI/BOOT loader loader/entries; do MTOOLS_SKIP_CHECK=1 mmd -i "$bootimg" "::/$d"; done
  m "$efi" "::/EFI/BOOT/$loader_name"
  printf 'default cairn.conf\ntimeout 0\n' > "$work/loader.conf"
  printf 'title cairn %s (%s)\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$version" "$board" "$cmdline" \
    > "$work/cairn.conf"
  m "$work/loader.conf" ::/loader/loader.conf
  m "$work/cairn.conf" ::/loader/entries/cairn.conf
fi
if [ "$firmware" = rpi4 ]; then
  # The Raspberry Pi 4's GPU firmware (start4*.elf with its fixup4*.dat; the
  # variants are picked by config.txt settings such as gpu_mem), the licence
  # it comes under, the kernel's device tree for the Pi 4 model B, and the
  # config.txt that names them, with the settings Debian's raspi-firmware
  # writes for an arm64 kernel.
  for f in "$work/fw/usr/lib/raspi-firmware/"start4*.elf "$work/fw/usr/lib/raspi-firmware/"fixup4*.dat; do
    m "$f" "::/$(basename "$f")"
  done
  m "$work/fw/usr/share/doc/raspi-firmware/copyright" ::/raspi-firmware.copyright
  dtb=$work/pkg/usr/lib/linux-image-$kver/broadcom/bcm2711-rpi-4-b.dtb
  [ -e "$dtb" ] || { echo "make_disk.sh: $kpkg has no broadcom/bcm2711-rpi-4-b.dtb" >&2; exit 1; }
  m "$dtb" ::/bcm2711-rpi-4-b.dtb
  cat > "$work/config.txt" <<CONFIG
# The Raspberry Pi 4's boot configuration (cairn's make_disk.sh writes it).
# The GPU firmware reads it, switches the CPU to 64 bits and starts the
# kernel with the initramfs and the device tree named here; the kernel
# command line is cmdline.txt. The root slot is picked by the initramfs.
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=vmlinuz
initramfs initrd.img followkernel
device_tree=bcm2711-rpi-4-b.dtb
CONFIG
  m "$work/config.txt" ::/config.txt
fi

# --- the disk ----------------------------------------------------------------
# MBR: 1 boot (FAT32 LBA), 2 root A, 3 root B, 4 data. 1 MiB aligned.
img=$out/$name.img
rm -f "$img" "$img.xz"
total_mb=$((1 + boot_mb + 2 * slot_mb + data_mb))
truncate -s "${total_mb}M" "$img"
sfdisk -q "$img" >/dev/null <<EOF
label: dos
label-id: 0x$diskid
start=1MiB, size=${boot_mb}MiB, type=c, bootable
size=${slot_mb}MiB, type=83
size=${slot_mb}MiB, type=83
type=83
EOF
put() { dd if="$1" of="$img" bs=1M seek="$2" conv=notrunc,sparse status=none; }
put "$bootimg" 1
put "$rootfs" $((1 + boot_mb))
put "$rootfs" $((1 + boot_mb + slot_mb))
xz -T2 -3 -k "$img"
say "disk $img: $total_mb MiB, identifier $diskid (boot $boot_mb, slots 2 x $slot_mb, data $data_mb, formatted on first boot); $img.xz: $(stat -c %s "$img.xz") bytes"
