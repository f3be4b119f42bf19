#!/bin/sh
# Installs the Debian 12 packages cairn's build and tests need, with no prompt,
# only when one is missing (a quick no-op otherwise). Extra arguments are more
# packages (a board's cross toolchain and :arch libraries).
set -eu
pkgs="g++ make clang libclang-rt-14-dev openssl libuv1-dev liblmdb-dev libmbedtls-dev libcjson-dev libgtest-dev \
python3 python3-zfec python3-cbor2 lmdb-utils procps $*"
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
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
