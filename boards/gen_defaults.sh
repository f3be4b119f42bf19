#!/bin/sh
# Turns boards/*.mk into the C++ table the build embeds (one row per LIMIT_ line):
#   {"board", "key", "value"},
# Included only by src/core/limits.cc. Usage: gen_defaults.sh boards/a.mk boards/b.mk ...
set -eu
echo "// Generated from boards/*.mk by boards/gen_defaults.sh. Do not edit."
for f in "$@"; do
  board=$(basename "$f" .mk)
  sed -n 's/^LIMIT_\([a-z0-9_]*\)[ \t]*=[ \t]*\([^ \t#]*\).*$/{"'"$board"'", "\1", "\2"},/p' "$f"
done
