#!/bin/sh
# Installs the Debian 12 packages cairn's build and tests need, with no prompt,
# only when one is missing (a quick no-op otherwise). Extra arguments are more
# packages (a board's cross toolchain and :arch libraries).
set -eu
pkgs="g++ make clang libclang-rt-14-dev openssl libuv1-dev liblmdb-dev libmbedtls-dev libcjson-dev libgtest-dev \
python3 python3-zfec python3-cbor2 python3-cryptography lmdb-utils procps libfuse3-dev fuse3 $*"
missing=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# A board's libraries come as Debian multiarch packages (libuv1-dev:armel).
for p in $missing; do
  case "$p" in
    *:*)
      arch=${p#*:}
      if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        $SUDO dpkg --add-architecture "$arch"
      fi
      ;;
  esac
done
export DEBIAN_FRONTEND=noninteractive
# A mirror in the middle of a sync fails an update now and then: try again,
# and let the install itself decide (it fails if a package really is missing).
for try in 1 2 3; do
  if $SUDO apt-get update -q -o DPkg::Lock::Timeout=600; then break; fi
  echo "apt-get update failed (try $try of 3)"
  sleep $((try * 5))
done
# shellcheck disable=SC2086
$SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing
