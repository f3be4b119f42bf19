#!/bin/sh
# Fails if an #include points up or sideways in the layer order
# (docs/architecture.md). Each layer lists the layers it may include.
set -eu
cd "$(dirname "$0")/.."
allowed() {
  case "$1" in
    core)      echo "core" ;;
    platform)  echo "platform core" ;;
    crypto)    echo "crypto core platform" ;;
    caps|fec)  echo "$1 crypto core platform" ;;
    store|tls|cbor) echo "$1 caps fec crypto core platform" ;;
    http)      echo "http tls caps fec crypto core platform" ;;  # HTTP runs over cairn's TLS connections
    gbs)       echo "gbs store http tls cbor caps fec crypto core platform" ;;
    grid)      echo "grid gbs store http tls cbor caps fec crypto core platform" ;;
    mutable|immutable) echo "$1 grid gbs store http tls cbor caps fec crypto core platform" ;;
    dirnode)   echo "dirnode mutable immutable grid gbs store http tls cbor caps fec crypto core platform" ;;
    control)   echo "control dirnode mutable immutable grid gbs store http tls cbor caps fec crypto core platform" ;;
    daemon|cli) echo "$1 control dirnode mutable immutable grid gbs store http tls cbor caps fec crypto core platform" ;;
    *) echo "" ;;
  esac
}
bad=0
for f in $(find src include/cairn platform -name '*.cc' -o -name '*.h' | sort); do
  case "$f" in
    platform/*) layer=platform ;;
    src/*) layer=$(echo "$f" | cut -d/ -f2) ;;
    include/cairn/*) layer=$(echo "$f" | cut -d/ -f3) ;;
  esac
  ok=$(allowed "$layer")
  if [ -z "$ok" ]; then echo "$f: layer '$layer' is not in the layer order"; bad=1; continue; fi
  for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
    case "$inc" in
      */*) ;;
      *) continue ;;  # beside the file, or generated into the build directory
    esac
    case "$inc" in
      cairn/*) target=$(echo "$inc" | cut -d/ -f2) ;;
      *) target=$(echo "$inc" | cut -d/ -f1) ;;
    esac
    case " $ok " in
      *" $target "*) ;;
      *) echo "$f includes $inc: layer '$layer' may not include layer '$target'"; bad=1 ;;
    esac
  done
done
[ "$bad" -eq 0 ] && echo "layers: ok"
exit "$bad"
