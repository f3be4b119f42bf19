"""Runs the boot's watchdog and LED functions (boards/image/boot-lib.sh) under
the image's own shell, Debian's busybox (`make image-test`, before the boot
test): plain files stand in for the watchdog device, /proc/uptime, the
kernel command line and an LED's sysfs directory.

- boot_settings reads cairn.watchdog=, cairn.bootpet= and cairn.led= (the
  last of each wins; a value that is not a whole number is ignored);
- the petter (busybox's watchdog applet) writes one zero byte a pet (never
  the magic 'V'), is the one process holding the device, and is ended,
  saying so, once the uptime reaches the bound;
- wd_handover ends the petter, leaves no process holding the device (every
  /proc/*/fd is looked at: cairnd's open will not find it busy) and pets once
  more; past the bound it pets no more;
- led_boot sets the timer trigger at 100 ms on and off on the LED by name or
  directory, and says so when the LED is missing.

An arm64 busybox runs under qemu-user (--run qemu-aarch64). Every wait is
bounded; every process started ends. Exit 0 when every check passed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "boards", "image", "boot-lib.sh")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}{': ' + str(detail) if detail else ''}")
        return ok


def wait_for(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def holders(path):
    """The pids of every process with a descriptor open on path."""
    want = os.path.realpath(path)
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == want:
                        out.append(int(pid))
                except OSError:
                    pass
        except OSError:
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--busybox", required=True, help="the image's busybox (Debian's busybox-static)")
    ap.add_argument("--run", default="", help="how to run it here (qemu-aarch64 for an arm64 one)")
    a = ap.parse_args()
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="cairn-boot-lib-")
    procs = []
    try:
        dev, uptime, cmdline, log = (os.path.join(tmp, n) for n in ("watchdog", "uptime", "cmdline", "log"))
        leds = os.path.join(tmp, "leds")
        # The petter is busybox's watchdog applet. Under qemu-user the shell
        # cannot start an applet in a new process (it would re-execute
        # /proc/self/exe, which is qemu), so it runs through this wrapper:
        # the same busybox, the wrapper's pid (exec). Its name is no
        # applet's: the shell would take "watchdog" for one, path or not.
        tool = os.path.join(tmp, "bb-watchdog")
        with open(tool, "w") as f:
            f.write(f"#!/bin/sh\nexec {a.run} {a.busybox} watchdog \"$@\"\n")
        os.chmod(tool, 0o755)
        env = dict(os.environ, CAIRN_WATCHDOG_DEV=dev, CAIRN_UPTIME=uptime, CAIRN_CMDLINE=cmdline,
                   CAIRN_LED_ROOT=leds, LOG=log, CAIRN_WATCHDOG_TOOL=tool)
        prelude = f'log() {{ echo "$*" >> "$LOG"; }}\n. {LIB}\n'

        def sh(script, **kw):
            return subprocess.Popen(a.run.split() + [a.busybox, "sh", "-c", prelude + script], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)

        def run(script, timeout=60):
            p = sh(script)
            procs.append(p)
            out, _ = p.communicate(timeout=timeout)
            return p.returncode, out.decode()

        def put(path, text):
            with open(path, "w") as f:
                f.write(text)

        def read(path):
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return ""

        # --- settings ----------------------------------------------------------------
        put(cmdline, "console=ttyS1 cairn.watchdog=15 cairn.bootpet=40 cairn.led=ACT cairn.watchdog=12 x\n")
        code, out = run('boot_settings; echo "w=$watchdog b=$bootpet l=$led p=$wd_petter"')
        c.check(code == 0 and out.strip() == "w=12 b=40 l=ACT p=", "boot_settings: the last of each word wins", out)
        put(cmdline, "cairn.watchdog=1x cairn.bootpet=0 cairn.led=\n")
        code, out = run('boot_settings; echo "w=$watchdog b=$bootpet l=$led"')
        c.check(code == 0 and out.strip() == "w= b= l=", "boot_settings: values that are not seconds are ignored",
                out)
        put(uptime, "10.52 3.10\n")
        code, out = run('boot_settings; wd_armed=1; wd_may_pet && echo yes || echo no')
        c.check(out.strip() == "no", "no petting without cairn.watchdog= and cairn.bootpet=", out)

        # --- the petter: pets, one descriptor, stops at the bound ------------------------
        put(cmdline, "cairn.watchdog=5 cairn.bootpet=40\n")
        put(dev, "")
        p = sh('boot_settings; wd_armed=1; wd_pet_start; echo "petter $wd_petter"; wait')
        procs.append(p)
        line = p.stdout.readline().decode()
        c.check(line.startswith("petter "), "wd_pet_start starts a petter", line)
        c.check(wait_for(lambda: len(read(dev)) >= 3), "the petter pets every second (cairn.watchdog=5: 5 / 5)",
                repr(read(dev)))
        held = holders(dev)
        c.check(len(held) == 1, "while petting, one process holds the device",
                [(h, read(f"/proc/{h}/cmdline").replace("\0", " ")[-80:], read(f"/proc/{h}/status")[:60]) for h in held])
        c.check(set(read(dev)) == {"\0"}, "the pets are zero bytes, never the magic 'V' (closing leaves it armed)",
                repr(read(dev)))
        put(uptime, "40.01 20.0\n")
        c.check(wait_for(lambda: p.poll() is not None), "the petter is ended at 40 s of uptime")
        c.check("boot petting stopped at 40 s of uptime without cairnd: the box resets in 5 s" in read(log),
                "the petter says that it stopped and when the box resets", read(log))
        n = len(read(dev))
        time.sleep(2.5)
        c.check(len(read(dev)) == n and not holders(dev), "after the bound nothing pets or holds the device",
                f"{n} -> {len(read(dev))}, {holders(dev)}")

        # --- the hand-over -------------------------------------------------------------------
        put(uptime, "12.0 3.0\n")
        put(dev, "")
        put(log, "")
        p = sh('boot_settings; wd_armed=1; wd_pet_start; echo "petter $wd_petter"; read go; '
               'wd_handover; echo "handover $? petter=$wd_petter"; read go2', stdin=subprocess.PIPE)
        procs.append(p)
        line = p.stdout.readline().decode()
        petter = int(line.split()[1])
        c.check(wait_for(lambda: len(read(dev)) >= 2), "a petter runs before the hand-over", repr(read(dev)))
        n = len(read(dev))
        p.stdin.write(b"\n")
        p.stdin.flush()
        line = p.stdout.readline().decode()
        c.check(line.strip() == "handover 0 petter=", "wd_handover ends the petter and pets once more", line)
        c.check(not holders(dev), "after wd_handover no process holds the device (cairnd's open cannot find it busy)",
                holders(dev))
        gone = not os.path.exists(f"/proc/{petter}") or not os.listdir(f"/proc/{petter}/fd")
        c.check(gone, f"the petter (pid {petter}) has ended")
        c.check(len(read(dev)) == n + 1, "the hand-over's own pet", f"{n} -> {len(read(dev))}")
        time.sleep(2.5)
        c.check(len(read(dev)) == n + 1, "nothing pets after the hand-over", f"{n + 1} -> {len(read(dev))}")
        p.stdin.write(b"\n")
        p.stdin.flush()
        p.communicate(timeout=30)
        put(uptime, "41.0 3.0\n")
        code, out = run('boot_settings; wd_armed=1; wd_handover; echo "handover $?"')
        c.check(out.strip() == "handover 1" and len(read(dev)) == n + 1,
                "past the bound wd_handover does not pet (a cairnd that never starts lets the box reset)", out)

        # --- the LED ---------------------------------------------------------------------------
        act = os.path.join(leds, "ACT")
        os.makedirs(act)
        for f, v in (("trigger", "none [heartbeat] timer\n"), ("delay_on", "500\n"), ("delay_off", "500\n")):
            put(os.path.join(act, f), v)
        put(cmdline, "cairn.led=ACT\n")
        put(log, "")
        code, out = run("boot_settings; led_boot; echo $?")
        got = [read(os.path.join(act, f)).strip() for f in ("trigger", "delay_on", "delay_off")]
        c.check(out.strip() == "0" and got == ["timer", "100", "100"],
                "led_boot: ACT under the LED directory gets the timer trigger, 100 ms on, 100 ms off", (out, got))
        other = os.path.join(tmp, "status-led")
        shutil.copytree(act, other)
        put(os.path.join(other, "trigger"), "none\n")
        put(cmdline, f"cairn.led={other}\n")
        code, out = run("boot_settings; led_boot; echo $?")
        c.check(out.strip() == "0" and read(os.path.join(other, "trigger")).strip() == "timer",
                "led_boot: an LED given as a directory", out)
        put(cmdline, "cairn.led=PWR\n")
        code, out = run("boot_settings; led_boot; echo $?")
        c.check(out.strip() == "1" and "no LED PWR: no boot pattern" in read(log),
                "led_boot: a missing LED is said and the boot goes on", (out, read(log)))
        put(cmdline, "console=ttyS1\n")
        code, out = run("boot_settings; led_boot; echo $?")
        c.check(out.strip() == "0", "led_boot: no cairn.led=, nothing to do", out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"boot_lib_test: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
