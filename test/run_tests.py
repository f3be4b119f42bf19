#!/usr/bin/python3
"""Runs every cairn test and prints the closing line "N passed, N failed[, N skipped]".

Kinds, in order:
  unit         the GoogleTest binary (test/unit/**), each TEST one count;
  integration  test/integration/test_*.py: real cairnd processes on 127.0.0.1;
  interop      test/interop/test_*.py: against things we did not write
               (Debian's python3-zfec and python3-cbor2, Tahoe-LAFS vectors);
  records-off  the GBS, put/get and mutable suites again (RECORDS_OFF_FILES)
               with CAIRN_TLS_OWN_RECORDS=0, so every connection uses
               mbedTLS's record layer: the field's kill switch
               (limits.tls_own_records = 0) is proven by the same suites;
  fuzz         every libFuzzer target in <fuzz build>/fuzz/, each run for
               CAIRN_FUZZ_SECONDS (default 10) from its seed corpus in
               test/fuzz/corpus/<name>/; a crash, leak or timeout fails it;
  board-unit   the GoogleTest binary of a cross build (--board-build) run
               under its emulator (--board-runner, a board's BOARD_RUN), so
               the host's `make test` also runs the unit suite for one board.

--runner (and --board-runner) is a command prefix for the unit binary, e.g.
"qemu-arm". Under a runner the unit run gets a time limit of CAIRN_UNIT_SECONDS
(default 600) times --timeout-mult (a board's BOARD_TIMEOUT_MULT). Tests listed
in --exclude FILE (one "Suite.Test  reason" a line) are not run; each is printed
with its reason and counted as skipped. The unit binary also gets
CAIRN_TEST_TIMEOUT_MULT set to --timeout-mult (when it is not 1), so fixtures
can scale their own time limits (connect and handshake) under emulation.

Python tests are unittest cases; each test method is one count. A skipped test
prints its reason and is counted as skipped. A missing dependency is a failure.

Usage: run_tests.py --build build/host/asan [--fuzz-build build/host/fuzz] [-k PATTERN] [KIND ...]
       run_tests.py --build build/kirkwood/debug --runner qemu-arm --timeout-mult 20 unit
"""
import argparse
import builtins
import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_excluded(path):
    """The tests a board run leaves out: {"Suite.Test": "reason"}; a line
    without a reason is an error, so no test is left out unexplained."""
    excluded = {}
    if not path:
        return excluded
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{path}:{n}: {name} needs a reason")
            excluded[name] = reason.strip()
    return excluded


def run_unit(build, pattern, counts, runner="", timeout_mult=1.0, exclude_file=None, label="unit", out=None,
             base_env=None):
    """Runs one GoogleTest binary. With `out` (a file), everything it and the
    binary print goes there instead of the terminal (a background run)."""
    print = functools.partial(builtins.print, file=out or sys.stdout, flush=True)
    binary = os.path.join(build, "unit_tests")
    if not os.path.exists(binary):
        print(f"FAIL {label}: {binary} is missing (was it built?)")
        counts["failed"] += 1
        return
    excluded = read_excluded(exclude_file)
    for name, reason in excluded.items():
        print(f"SKIP {label} {name}: excluded ({reason})")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "unit.json")
        cmd = shlex.split(runner) + [binary, f"--gtest_output=json:{report}", "--gtest_brief=1"]
        positive = f"*{pattern}*" if pattern else "*"
        negative = ":".join(excluded)
        if pattern or negative:
            cmd.append(f"--gtest_filter={positive}" + (f"-{negative}" if negative else ""))
        env = dict(base_env or os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if timeout_mult != 1.0:
            env["CAIRN_TEST_TIMEOUT_MULT"] = f"{timeout_mult:g}"
        limit = None
        if runner:
            limit = float(os.environ.get("CAIRN_UNIT_SECONDS", "600")) * timeout_mult
            print(f"{label}: {' '.join(cmd[:len(shlex.split(runner)) + 1])} (time limit {limit:.0f}s)")
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=limit, stdout=out, stderr=out)
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            print(f"FAIL {label}: still running after {limit:.0f}s, killed")
            returncode = "killed"
        elapsed = time.monotonic() - started
        if not os.path.exists(report):
            print(f"FAIL {label}: the test binary exited {returncode} without a report (crash?)")
            counts["failed"] += 1
            return
        with open(report) as f:
            data = json.load(f)
    passed = failed = 0
    skipped = len(excluded)
    times = []
    for suite in data.get("testsuites", []):
        for case in suite.get("testsuite", []):
            name = f"{suite['name']}.{case['name']}"
            times.append((float(case.get("time", "0s").rstrip("s") or 0), name))
            if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                skipped += 1
                msg = "; ".join(f.get("failure", "") for f in case.get("failures", [])) or "skipped"
                print(f"SKIP {label} {name}: {msg}")
            elif case.get("failures"):
                failed += 1
                print(f"FAIL {label} {name}")
            else:
                passed += 1
    if returncode != 0 and failed == 0:
        print(f"FAIL {label}: binary exited {returncode} though no case failed")
        failed += 1
    if runner:  # under emulation the time goes somewhere: say where
        slowest = ", ".join(f"{n} {t:.0f}s" for t, n in sorted(times, reverse=True)[:5])
        print(f"{label}: slowest: {slowest}")
    print(f"{label}: {passed} passed, {failed} failed, {skipped} skipped in {elapsed:.1f}s")
    counts["passed"] += passed
    counts["failed"] += failed
    counts["skipped"] += skipped


def run_fuzz(fuzz_build, pattern, counts):
    import glob
    import shutil
    if not fuzz_build:
        print("FAIL fuzz: no --fuzz-build given")
        counts["failed"] += 1
        return
    targets = sorted(glob.glob(os.path.join(fuzz_build, "fuzz", "*_fuzzer")))
    if not targets:
        print(f"FAIL fuzz: no fuzz targets in {fuzz_build}/fuzz (was `make fuzz` run?)")
        counts["failed"] += 1
        return
    seconds = int(os.environ.get("CAIRN_FUZZ_SECONDS", "10"))
    passed = failed = 0
    for target in targets:
        name = os.path.basename(target)
        if pattern and pattern not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            corpus = os.path.join(tmp, "corpus")
            seeds = os.path.join(ROOT, "test", "fuzz", "corpus", name)
            if os.path.isdir(seeds):
                shutil.copytree(seeds, corpus)
            else:
                os.mkdir(corpus)
            artifacts = os.path.join(tmp, "artifacts") + os.sep
            os.mkdir(artifacts)
            cmd = [target, f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
                   f"-artifact_prefix={artifacts}", "-print_final_stats=0", corpus]
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
            if proc.returncode == 0:
                passed += 1
            else:
                failed += 1
                print(f"FAIL fuzz {name}: exit {proc.returncode}")
                print(proc.stderr[-4000:])
                for f in os.listdir(artifacts):
                    with open(os.path.join(artifacts, f), "rb") as art:
                        print(f"  crashing input {f}: {art.read()[:512]!r}")
    print(f"fuzz: {passed} passed, {failed} failed, 0 skipped ({seconds}s each)")
    counts["passed"] += passed
    counts["failed"] += failed


class CountingResult(unittest.TextTestResult):
    pass


# The suites run a second time with mbedTLS's records (the records-off kind).
RECORDS_OFF_FILES = ["interop/test_gbs.py", "interop/test_gbs_messages.py", "integration/test_put_get.py",
                     "integration/test_mutable.py"]


def records_off_suite(loader):
    """The RECORDS_OFF_FILES' tests, each file loaded as a module of its own
    directory (so its imports resolve as they do in its own kind)."""
    suite = unittest.TestSuite()
    for rel in RECORDS_OFF_FILES:
        directory, name = os.path.split(os.path.join(ROOT, "test", rel))
        found = loader.discover(directory, pattern=name, top_level_dir=directory)
        if found.countTestCases() == 0 and not loader.testNamePatterns:
            raise SystemExit(f"records-off: no tests in {rel}")
        suite.addTests(found)
    return suite


def run_python(kind, build, pattern, counts):
    directory = os.path.join(ROOT, "test", kind)
    if kind != "records-off" and not os.path.isdir(directory):
        return
    os.environ["CAIRN_BUILD"] = os.path.abspath(build)
    os.environ["CAIRN_ROOT"] = ROOT
    sys.path.insert(0, os.path.join(ROOT, "test"))
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [f"*{pattern}*"]
    saved = os.environ.get("CAIRN_TLS_OWN_RECORDS")
    if kind == "records-off":
        suite = records_off_suite(loader)
        os.environ["CAIRN_TLS_OWN_RECORDS"] = "0"
    else:
        suite = loader.discover(directory, pattern="test_*.py", top_level_dir=directory)
    started = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1, resultclass=CountingResult)
    try:
        result = runner.run(suite)
    finally:
        if kind == "records-off":
            if saved is None:
                os.environ.pop("CAIRN_TLS_OWN_RECORDS", None)
            else:
                os.environ["CAIRN_TLS_OWN_RECORDS"] = saved
    elapsed = time.monotonic() - started
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    for test, reason in result.skipped:
        print(f"SKIP {kind} {test.id()}: {reason}")
    for test, _ in result.failures + result.errors:
        print(f"FAIL {kind} {test.id()}")
    print(f"{kind}: {passed} passed, {failed} failed, {skipped} skipped in {elapsed:.1f}s")
    counts["passed"] += passed
    counts["failed"] += failed
    counts["skipped"] += skipped


def start_board_unit(args):
    """Starts the board-unit kind on a thread, its output in a file."""
    label = "unit[" + os.path.basename(os.path.dirname(os.path.normpath(args.board_build))) + "]"
    log = tempfile.TemporaryFile(mode="w+")
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if not args.board_runner:
        log.write("FAIL board-unit: needs --board-build and --board-runner\n")
        counts["failed"] += 1
        return None, log, counts, label
    print(f"{label}: started under {args.board_runner}, alongside the host suites; its report comes last", flush=True)
    thread = threading.Thread(target=run_unit, args=(args.board_build, args.pattern, counts, args.board_runner,
                                                     args.board_timeout_mult, args.board_exclude, label, log,
                                                     dict(os.environ)))
    thread.start()
    return thread, log, counts, label


def finish_board_unit(board, counts):
    """Waits for the background board run, then prints its report: the
    summary lines, and when anything failed, the tail of everything."""
    thread, log, board_counts, label = board
    if thread:
        print(f"{label}: waiting for the board run to end", flush=True)
        thread.join()
    log.seek(0)
    lines = log.read().splitlines()
    ours = [l for l in lines if l.startswith((f"{label}", "FAIL", "SKIP"))]
    if board_counts["failed"]:
        print(f"{label}: the last 150 lines of its output:")
        for l in lines[-150:]:
            print("  " + l)
    for l in ours:
        print(l)
    for k in counts:
        counts[k] += board_counts[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory holding cairnd, cairn, unit_tests")
    ap.add_argument("--fuzz-build", help="build directory holding fuzz/*_fuzzer (MODE=fuzz)")
    ap.add_argument("-k", dest="pattern", help="only tests whose name contains PATTERN")
    ap.add_argument("--runner", default="", help="command prefix for unit_tests (a board's BOARD_RUN)")
    ap.add_argument("--timeout-mult", type=float, default=1.0, help="a board's BOARD_TIMEOUT_MULT")
    ap.add_argument("--exclude", help="file of unit tests not run here, each with its reason")
    ap.add_argument("--board-build", help="a cross build directory for the board-unit kind")
    ap.add_argument("--board-runner", default="", help="command prefix for the board's unit_tests")
    ap.add_argument("--board-timeout-mult", type=float, default=1.0)
    ap.add_argument("--board-exclude", help="file of unit tests the board run leaves out")
    ap.add_argument("kinds", nargs="*", help="unit integration interop records-off fuzz [board-unit] (default: all of them, "
                    "board-unit when --board-build is given)")
    args = ap.parse_args()
    if not args.kinds:
        args.kinds = ["unit", "integration", "interop", "records-off", "fuzz"] + (["board-unit"] if args.board_build else [])
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    # The board's unit suite runs under its emulator in the background while
    # the host suites run: they mostly wait on sockets and child processes,
    # and the emulator keeps a core busy, so the two overlap well.
    board = None
    if "board-unit" in args.kinds and len(args.kinds) > 1:
        args.kinds.remove("board-unit")
        board = start_board_unit(args)
    for kind in args.kinds:
        if kind == "unit":
            run_unit(args.build, args.pattern, counts, args.runner, args.timeout_mult, args.exclude)
        elif kind == "board-unit":
            if not args.board_build or not args.board_runner:
                print("FAIL board-unit: needs --board-build and --board-runner")
                counts["failed"] += 1
                continue
            label = "unit[" + os.path.basename(os.path.dirname(os.path.normpath(args.board_build))) + "]"
            run_unit(args.board_build, args.pattern, counts, args.board_runner,
                     args.board_timeout_mult, args.board_exclude, label)
        elif kind in ("integration", "interop", "records-off"):
            run_python(kind, args.build, args.pattern, counts)
        elif kind == "fuzz":
            run_fuzz(args.fuzz_build, args.pattern, counts)
        else:
            print(f"unknown test kind {kind!r}")
            counts["failed"] += 1
    if board:
        finish_board_unit(board, counts)
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    sys.exit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    main()
