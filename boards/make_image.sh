#!/bin/sh
# Builds a board image from built binaries (what `make image BOARD=x` runs):
#   OUT/root/                          the staged overlay
#   OUT/cairn-VERSION-BOARD.squashfs   that overlay, for unsquashfs on the board
#   OUT/cairn-VERSION-BOARD.manifest   every file's SHA-256, and the squashfs's
#   OUT/cairn-VERSION-BOARD.sig        RSA-2048 PSS signature of the manifest
# TOOL is a cairn that runs here (it writes the default config and signs).
# Without --key a development key pair OUT/dev-key.pem, .pub is made and used.
# --uncompressed stores the squashfs without compression (fast, for tests).
# Usage: make_image.sh --board B --version V --bin DIR --tool CAIRN --out DIR [--key KEY.pem] [--uncompressed]
set -eu
cd "$(dirname "$0")/.."
board= version= bin= tool= out= key= comp=
while [ $# -gt 0 ]; do
  case "$1" in
    --uncompressed) comp="-noI -noD -noF -noX"; shift; continue ;;
    --board) board=$2 ;;
    --version) version=$2 ;;
    --bin) bin=$2 ;;
    --tool) tool=$2 ;;
    --out) out=$2 ;;
    --key) key=$2 ;;
    *) echo "make_image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
for v in board version bin tool out; do
  eval "test -n \"\$$v\"" || { echo "make_image.sh: --$v is required" >&2; exit 2; }
done
command -v mksquashfs >/dev/null || { echo "make_image.sh: mksquashfs missing (Debian package squashfs-tools)" >&2; exit 1; }

name=cairn-$version-$board
root=$out/root
rm -rf "$root"
mkdir -p "$out"
mkdir -p "$root/usr/bin" "$root/etc/cairn" "$root/etc/init.d" "$root/lib/systemd/system"
install -m 0755 "$bin/cairnd" "$bin/cairn" "$root/usr/bin/"
install -m 0644 boards/image/cairnd.service "$root/lib/systemd/system/cairnd.service"
install -m 0755 boards/image/cairnd.init "$root/etc/init.d/cairnd"
# The board's default configuration, as `cairn init --board B` writes it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$tool" -q init "$tmp/node" --board "$board" --nickname cairn >/dev/null
install -m 0644 "$tmp/node/cairn.json" "$root/etc/cairn/cairn-default.json"

if [ -z "$key" ]; then
  key=$out/dev-key.pem
  [ -e "$key" ] || "$tool" -q image keygen "$key" "$out/dev-key.pub"
  cat >&2 <<WARN
********************************************************************
* WARNING: signed with a DEVELOPMENT key, $key,
* made on this machine. Anyone with this build directory can sign
* images it accepts. For a release: make image IMAGE_KEY=/path/key.pem
********************************************************************
WARN
fi

rm -f "$out/$name.squashfs" "$out/$name.manifest" "$out/$name.sig"
mksquashfs "$root" "$out/$name.squashfs" -noappend -all-root -quiet -no-progress $comp >/dev/null
"$tool" -q image sign "$out/$name.squashfs" --root "$root" --board "$board" --version "$version" --key "$key"
echo "image: $out/$name.squashfs (+ .manifest, .sig)"
