"""Helpers for tests that run real cairn processes on 127.0.0.1.

Every wait has a deadline; nothing sleeps a fixed time to "let things settle".
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("CAIRN_BUILD", "")
ROOT = os.environ.get("CAIRN_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        raise AssertionError(f"{path} is missing: build it first (CAIRN_BUILD={BUILD!r})")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_cli(*args, node_dir=None, check=False, timeout=60, input=None):
    cmd = [binary("cairn")]
    if node_dir:
        cmd += ["-d", node_dir]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=input is None or isinstance(input, str),
                          timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}: {proc.stderr}")
    return proc


def stop_grid(nodes, tmp):
    """Stops and removes a test grid's nodes and its scratch directory; every
    node must have exited cleanly (or have been stopped already)."""
    codes = []
    for n in nodes:
        codes.append(n.stop())
        n.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
    assert all(c in (0, None) for c in codes), codes


class ControlConn:
    """A raw connection to a node's control socket."""

    def __init__(self, node_dir, timeout=10.0):
        path = os.path.join(node_dir, "control.sock")
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:  # the listen backlog is full for a moment
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_frame(self):
        """The next frame as a dict, or None at EOF. A data frame's raw
        attachment is read too, into frame["_attachment"]."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        frame = json.loads(line)
        if isinstance(frame.get("bytes"), int):
            n = frame["bytes"]
            while len(self.buf) < n:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
                if not chunk:
                    return None
                self.buf += chunk
            frame["_attachment"], self.buf = self.buf[:n], self.buf[n:]
        return frame

    def send_data(self, id, seq, data, eof=False):
        """One data frame of request `id` with `data` as its attachment."""
        head = {"id": id, "data": seq, "bytes": len(data)}
        if eof:
            head["eof"] = True
        self.send_raw(json.dumps(head).encode() + b"\n" + data)

    def read_final(self):
        """The next frame that answers a request (result or error), skipping
        progress events."""
        while True:
            frame = self.read_frame()
            if frame is None or "progress" not in frame:
                return frame

    def call_with_input(self, method, params, data, id=1):
        """A request whose input is `data` in one data frame (the last);
        the final answer."""
        self.send({"v": 1, "id": id, "method": method, "params": params})
        self.send_data(id, 0, data, eof=True)
        return self.read_final()

    def call(self, method, params=None, id=1):
        req = {"v": 1, "id": id, "method": method}
        if params is not None:
            req["params"] = params
        self.send(req)
        return self.read_final()

    def close(self):
        self.sock.close()


class Node:
    """A node directory made by `cairn init` and, once started, its cairnd."""

    def __init__(self, name="node", config_patch=None, init_args=()):
        # Short paths: a UNIX socket path must fit in 108 bytes.
        self.tmp = tempfile.mkdtemp(prefix="cairn-", dir="/tmp")
        self.dir = os.path.join(self.tmp, name)
        self.port = free_port()
        run_cli("init", self.dir, "--port", str(self.port), "--nickname", name, *init_args, check=True)
        if config_patch:
            self.patch_config(config_patch)
        self.proc = None
        self.log_path = os.path.join(self.tmp, f"{name}.log")

    def patch_config(self, patch):
        path = os.path.join(self.dir, "cairn.json")
        with open(path) as f:
            cfg = json.load(f)
        for key, value in patch.items():
            if isinstance(value, dict):
                cfg.setdefault(key, {}).update(value)
            else:
                cfg[key] = value
        with open(path, "w") as f:
            json.dump(cfg, f)

    def start(self, wait=True, test_hooks=False):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        if test_hooks:
            env["CAIRN_TEST_HOOKS"] = "1"
        self.proc = subprocess.Popen([binary("cairnd"), self.dir], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for(self.answers, timeout=20, what=f"cairnd in {self.dir} to answer")
        return self.proc

    def answers(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"cairnd exited {self.proc.returncode}:\n{self.read_log()}")
        try:
            c = ControlConn(self.dir, timeout=2)
            reply = c.call("status")
            c.close()
            return reply is not None and "result" in reply
        except OSError:
            return False

    def control(self):
        return ControlConn(self.dir)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals cairnd and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"cairnd did not exit within {timeout}s of signal {sig}:\n{self.read_log()}")
        self.proc = None
        self.log.close()
        return code

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
