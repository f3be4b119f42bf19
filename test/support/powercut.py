"""Test helpers around test/tools/powercut_fs (the power-cut file system) and
cairnd running on it: mount, cut the power, remount, and start cairnd with a
boot id of its own (a power cut is a reboot, and the store trusts its unsynced
upload records only within one boot: docs/store.md).

Every wait has a deadline. Needs root (FUSE mounts, a private mount namespace
for the boot id) and /dev/fuse: a missing one is a failure, never a skip.
"""
import os
import signal
import subprocess
import time
import uuid

from pylib.cairntest import binary, wait_for


def require_fuse():
    """Fails (never skips) when this machine cannot run the FUSE tests."""
    if os.geteuid() != 0:
        raise AssertionError("the power-cut tests need root (FUSE mounts, mount namespaces)")
    if not os.path.exists("/dev/fuse"):
        raise AssertionError("the power-cut tests need /dev/fuse (fuse3; boards/install_deps.sh)")


class PowerCutFs:
    """One mount of powercut_fs: BACKING holds what survived the last cut."""

    def __init__(self, backing, mountpoint, seed=1, tear=False, fsync_delay_ms=0, size_limit=0, cut_at_sync=0):
        self.backing, self.mountpoint = backing, mountpoint
        self.seed, self.tear, self.cut_at_sync = seed, tear, cut_at_sync
        self.fsync_delay_ms, self.size_limit = fsync_delay_ms, size_limit
        self.proc = None
        self.output = ""
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mountpoint, exist_ok=True)

    def mount(self):
        cmd = [binary("tools/powercut_fs"), self.backing, self.mountpoint, "--seed", str(self.seed)]
        if self.tear:
            cmd.append("--tear")
        if self.fsync_delay_ms:
            cmd += ["--fsync-delay-ms", str(self.fsync_delay_ms)]
        if self.size_limit:
            cmd += ["--size-limit", str(self.size_limit)]
        if self.cut_at_sync:
            cmd += ["--cut-at-sync", str(self.cut_at_sync)]
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.proc.kill()
            raise AssertionError(f"powercut_fs did not mount: {line!r} {err}")
        return self

    def _finish(self, sig, timeout=30):
        if self.proc is None:
            return ""
        self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"powercut_fs did not finish within {timeout}s: {err}")
        code = self.proc.returncode
        self.proc = None
        self.output = out + err
        if code != 0:
            raise AssertionError(f"powercut_fs exited {code}: {self.output}")
        if "powercut_fs: unsupported" in err:
            raise AssertionError(f"the code under test used what powercut_fs does not support: {err}")
        return out

    def arm(self):
        """With cut_at_sync=N: from now on, the Nth sync point cuts the power."""
        self.proc.send_signal(signal.SIGUSR2)
        line = self.proc.stdout.readline()
        if line.strip() != "armed":
            raise AssertionError(f"powercut_fs did not arm: {line!r}")

    def wait_cut(self, timeout):
        """True and the cut's line if the armed sync point cut the power
        within `timeout` seconds (the file system is then gone), else False."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, ""
        out, err = self.proc.communicate()
        code = self.proc.returncode
        self.proc = None
        self.output = out + err
        if code != 0 or "powercut_fs: unsupported" in err:
            raise AssertionError(f"powercut_fs exited {code}: {self.output}")
        return True, out

    def cut(self):
        """Cuts the power: only what was durable stays in BACKING."""
        return self._finish(signal.SIGUSR1)

    def unmount(self):
        """A clean shutdown: everything current stays in BACKING."""
        return self._finish(signal.SIGTERM)

    def kill_hard(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)


def start_cairnd(node_dir, log_path, boot_id=None, env=None, cairnd=None):
    """Starts cairnd on `node_dir` in a private mount namespace in which
    /proc/sys/kernel/random/boot_id reads `boot_id` (a fresh one by default):
    each start after a power cut is a new boot of the machine."""
    boot_id = boot_id or str(uuid.uuid4())
    boot_file = log_path + ".boot_id"
    with open(boot_file, "w") as f:
        f.write(boot_id + "\n")
    script = ('mount --bind "$1" /proc/sys/kernel/random/boot_id && shift && exec "$@"')
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    if env:
        e.update(env)
    log = open(log_path, "ab")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", boot_file,
                             cairnd or binary("cairnd"), node_dir], stdout=log, stderr=subprocess.STDOUT, env=e)
    log.close()
    return proc


def wait_answers(node_dir, proc, log_path, timeout=30):
    from pylib.cairntest import ControlConn

    def answers():
        if proc.poll() is not None:
            with open(log_path, "rb") as f:
                raise AssertionError(f"cairnd exited {proc.returncode}:\n{f.read().decode(errors='replace')[-4000:]}")
        try:
            c = ControlConn(node_dir, timeout=2)
            reply = c.call("status")
            c.close()
            return reply is not None and "result" in reply
        except OSError:
            return False
    wait_for(answers, timeout=timeout, what=f"cairnd in {node_dir} to answer")


def read_nurl(node_dir):
    from pylib.cairntest import ControlConn
    c = ControlConn(node_dir)
    r = c.call("status")
    c.close()
    return r["result"]


def stop_process(proc, sig=signal.SIGKILL, timeout=30):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    try:
        return proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
