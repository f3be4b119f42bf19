#!/bin/sh
# Turns boards/*.mk into the C++ table the build embeds: one row naming each
# board, then one row per LIMIT_ line (a board lists only what it changes):
#   {"board", "key", "value"},
# Included only by src/core/limits.cc. Usage: gen_defaults.sh boards/a.mk boards/b.mk ...
set -eu
echo "// Generated from boards/*.mk by boards/gen_defaults.sh. Do not edit."
for f in "$@"; do
  board=$(basename "$f" .mk)
  echo "{\"$board\", \"\", \"\"},"  # the board exists even if it changes no limit
  sed -n 's/^LIMIT_\([a-z0-9_]*\)[ \t]*=[ \t]*\([^ \t#]*\).*$/{"'"$board"'", "\1", "\2"},/p' "$f"
done
