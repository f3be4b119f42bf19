#!/usr/bin/python3
"""Writes docs/errors.md from include/cairn/core/error_codes.def (the one table)."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = re.compile(r'^X\((\w+),\s*"(\w+)",\s*(\d+),\s*(\d+),\s*"([^"]*)"\)')


def rows():
    with open(os.path.join(ROOT, "include/cairn/core/error_codes.def")) as f:
        for line in f:
            m = ROW.match(line.strip())
            if m:
                yield m.groups()


def render():
    out = ["# Error codes", "",
           "Generated from `include/cairn/core/error_codes.def` by `docs/gen_errors.py`; do not edit.",
           "Clients switch on `code` (stable, lower-case), never on the message.", "",
           "| code | meaning | HTTP status | `cairn` exit code |", "|---|---|---|---|"]
    for name, wire, http, exit_code, meaning in rows():
        out.append(f"| `{wire}` | {meaning} | {http} | {exit_code} |")
    out += ["", "Other exit codes: 69 means no cairnd answers on the control socket (as `unavailable`);",
            "`cairnd` exits 78 when the node directory or its configuration is invalid.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    text = render()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        with open(os.path.join(ROOT, "docs/errors.md")) as f:
            sys.exit(0 if f.read() == text else 1)
    with open(os.path.join(ROOT, "docs/errors.md"), "w") as f:
        f.write(text)
