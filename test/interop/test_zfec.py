"""cairn's erasure coding against Debian's python3-zfec (which we did not write):
on random data, with Tahoe's zero padding, every kernel this machine has
gives blocks byte-identical to zfec's, decodes zfec's blocks, and zfec decodes
ours. Drives the code of `cairn debug fec` through test/tools/fec_tool.cc, and
checks its framed stream as docs/formats/fec.md specifies it."""
import itertools
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import unittest

import zfec

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary  # noqa: E402

PARAMS = [(1, 1), (1, 3), (2, 3), (2, 4), (3, 10), (4, 6), (7, 13), (71, 255), (101, 256), (256, 256)]
LENGTHS = [0, 1, 2, 31, 97, 1001, 65537]
HEADER = struct.Struct(">4sBBHHHQQ")  # magic, version, reserved, k, n, block number, data length, block length


def tool(args, kernel=None, data=b""):
    env = dict(os.environ)
    env.pop("CAIRN_FEC_KERNEL", None)
    if kernel:
        env["CAIRN_FEC_KERNEL"] = kernel
    return subprocess.run([binary("tools/fec_tool")] + args, input=data, capture_output=True, env=env, timeout=120)


def kernels():
    proc = tool(["--json", "kernels"])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["kernels"]


def tahoe_pieces(data, k):
    """Tahoe's rule: zero-pad to k * ceil(L / k), cut into k pieces."""
    size = -(-len(data) // k)
    padded = data + b"\0" * (size * k - len(data))
    return [padded[i * size:(i + 1) * size] for i in range(k)]


def parse_frames(stream):
    frames = []
    off = 0
    while off < len(stream):
        magic, version, reserved, k, n, num, size, block_size = HEADER.unpack_from(stream, off)
        end = off + HEADER.size + block_size
        frames.append({"magic": magic, "version": version, "reserved": reserved, "k": k, "n": n, "num": num,
                       "size": size, "block": stream[off + HEADER.size:end], "raw": stream[off:end]})
        off = end
    return frames


class ZfecInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kernels = kernels()
        cls.rng = random.Random(20240605)

    def test_kernels_listed(self):
        self.assertEqual(self.kernels[-1], "portable")
        if os.uname().machine == "x86_64":
            self.assertIn("ssse3", self.kernels)

    def check_blocks_identical(self, kernel, k, n, data, tmp=None):
        """Our blocks for `data` against zfec's: as files in a directory when
        `tmp` is given, else from the framed stream on stdout."""
        want = zfec.Encoder(k, n).encode(tahoe_pieces(data, k))
        what = f"{kernel} {k}-of-{n} len {len(data)}"
        if tmp is None:
            proc = tool(["encode", "-k", str(k), "-n", str(n)], kernel, data)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            got = [f["block"] for f in parse_frames(proc.stdout)]
            self.assertEqual(len(got), n)
            for num in range(n):
                self.assertEqual(got[num], want[num], f"{what} block {num}")
            return
        out = os.path.join(tmp, f"{kernel}-{k}-{n}-{len(data)}")
        proc = tool(["encode", "-k", str(k), "-n", str(n), "-o", out], kernel, data)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(out)), sorted(f"{num}.blk" for num in range(n)))
        for num in range(n):
            with open(os.path.join(out, f"{num}.blk"), "rb") as f:
                self.assertEqual(f.read(), want[num], f"{what} block {num}")

    def test_blocks_byte_identical_to_zfec(self):
        for kernel in self.kernels:
            for k, n in PARAMS:
                for length in LENGTHS:
                    if k > 10 and length > 1001:
                        continue
                    data = self.rng.randbytes(length)
                    with self.subTest(kernel=kernel, k=k, n=n, length=length):
                        self.check_blocks_identical(kernel, k, n, data)

    def test_block_files_byte_identical_to_zfec(self):
        with tempfile.TemporaryDirectory() as tmp:
            for kernel in self.kernels:
                for k, n, length in [(3, 10, 1001), (2, 4, 0), (101, 256, 333)]:
                    with self.subTest(kernel=kernel, k=k, n=n, length=length):
                        self.check_blocks_identical(kernel, k, n, self.rng.randbytes(length), tmp)

    def test_large_segment_every_kernel(self):
        # A 1 MiB segment (Tahoe's default maximum) plus an odd tail, 3-of-10.
        data = self.rng.randbytes((1 << 20) + 7)
        for kernel in self.kernels:
            self.check_blocks_identical(kernel, 3, 10, data)

    def test_we_decode_zfec_blocks(self):
        # zfec's blocks framed here in Python (docs/formats/fec.md), k of them at random, on stdin.
        for kernel in self.kernels:
            for k, n in PARAMS:
                for length in (0, 1, 333):
                    data = self.rng.randbytes(length)
                    blocks = zfec.Encoder(k, n).encode(tahoe_pieces(data, k))
                    nums = self.rng.sample(range(n), k)
                    stream = b"".join(HEADER.pack(b"cfec", 1, 0, k, n, num, length, len(blocks[num])) + blocks[num]
                                      for num in nums)
                    proc = tool(["decode", "-k", str(k), "-n", str(n), "-"], kernel, stream)
                    with self.subTest(kernel=kernel, k=k, n=n, length=length, nums=nums):
                        self.assertEqual(proc.returncode, 0, proc.stderr)
                        self.assertEqual(proc.stdout, data)

    def test_we_decode_zfec_block_files(self):
        # Raw blocks named NUM.blk: the length comes from --size, or the padded length without it.
        with tempfile.TemporaryDirectory() as tmp:
            for kernel in self.kernels:
                for k, n in [(2, 4), (3, 10), (101, 256)]:
                    data = self.rng.randbytes(333)
                    blocks = zfec.Encoder(k, n).encode(tahoe_pieces(data, k))
                    files = []
                    for num in self.rng.sample(range(n), k):
                        files.append(os.path.join(tmp, f"{num}.blk"))
                        with open(files[-1], "wb") as f:
                            f.write(blocks[num])
                    with self.subTest(kernel=kernel, k=k, n=n):
                        proc = tool(["decode", "-k", str(k), "-n", str(n), "--size", "333"] + files, kernel)
                        self.assertEqual(proc.returncode, 0, proc.stderr)
                        self.assertEqual(proc.stdout, data)
                        proc = tool(["decode", "-k", str(k), "-n", str(n)] + files, kernel)
                        self.assertEqual(proc.returncode, 0, proc.stderr)
                        self.assertEqual(proc.stdout, b"".join(tahoe_pieces(data, k)))
                    for path in files:
                        os.unlink(path)

    def test_zfec_decodes_our_stream(self):
        for kernel in self.kernels:
            # Debian's zfec 1.5.2 Decoder crashes (SIGSEGV) for k = 256; its Encoder is fine there.
            for k, n in [p for p in PARAMS if p[0] < 256]:
                data = self.rng.randbytes(self.rng.randrange(1, 500))
                proc = tool(["encode", "-k", str(k), "-n", str(n)], kernel, data)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                frames = parse_frames(proc.stdout)
                self.assertEqual([f["num"] for f in frames], list(range(n)))
                piece = -(-len(data) // k)
                for f in frames:
                    self.assertEqual((f["magic"], f["version"], f["reserved"]), (b"cfec", 1, 0))
                    self.assertEqual((f["k"], f["n"], f["size"], len(f["block"])), (k, n, len(data), piece))
                chosen = self.rng.sample(frames, k)
                pieces = zfec.Decoder(k, n).decode([f["block"] for f in chosen], [f["num"] for f in chosen])
                with self.subTest(kernel=kernel, k=k, n=n):
                    self.assertEqual(b"".join(pieces)[:len(data)], data)
                    self.assertEqual(b"".join(pieces), b"".join(tahoe_pieces(data, k)))

    def test_decode_every_subset_of_a_stream(self):
        data = self.rng.randbytes(1234)
        with tempfile.TemporaryDirectory() as tmp:
            proc = tool(["encode", "-k", "3", "-n", "5"], None, data)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            frames = parse_frames(proc.stdout)
            paths = []
            for f in frames:
                # One frame a file: each carries its own block number and the data length.
                path = os.path.join(tmp, f"frame{f['num']}")
                with open(path, "wb") as out:
                    out.write(f["raw"])
                paths.append(path)
            for subset in itertools.combinations(range(5), 3):
                got = tool(["decode", "-k", "3", "-n", "5"] + [paths[i] for i in subset])
                self.assertEqual(got.returncode, 0, got.stderr)
                self.assertEqual(got.stdout, data, subset)
            # The whole stream on stdin works too.
            got = tool(["decode", "-k", "3", "-n", "5", "-"], None, proc.stdout)
            self.assertEqual(got.stdout, data)

    def test_clear_errors(self):
        data = self.rng.randbytes(100)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "b")
            self.assertEqual(tool(["encode", "-k", "3", "-n", "10", "-o", out], None, data).returncode, 0)
            two = [os.path.join(out, "0.blk"), os.path.join(out, "8.blk")]
            proc = tool(["decode", "-k", "3", "-n", "10"] + two)
            self.assertEqual(proc.returncode, 2)
            self.assertIn(b"needs 3 distinct blocks, got 2", proc.stderr)
            # Blocks given under the wrong numbers decode to garbage: the padding shows it.
            wrong = os.path.join(tmp, "5.blk")
            with open(os.path.join(out, "4.blk"), "rb") as src, open(wrong, "wb") as dst:
                dst.write(src.read())
            proc = tool(["decode", "-k", "3", "-n", "10", "--size", "100", two[0], two[1], wrong])
            self.assertEqual(proc.returncode, 1)
            self.assertIn(b"padding is not zero", proc.stderr)
            proc = tool(["encode", "-k", "11", "-n", "10"], None, data)
            self.assertEqual(proc.returncode, 2)
            proc = tool(["encode", "-k", "3", "-n", "257"], None, data)
            self.assertEqual(proc.returncode, 2)
            proc = tool(["kernels"], "no-such-kernel")
            self.assertEqual(proc.returncode, 2)
            self.assertIn(b"CAIRN_FEC_KERNEL", proc.stderr)
            stranger = os.path.join(tmp, "notes.txt")
            with open(stranger, "wb") as f:
                f.write(b"hello")
            proc = tool(["decode", "-k", "1", "-n", "2", stranger])
            self.assertEqual(proc.returncode, 2)
            self.assertIn(b"not a cairn fec frame", proc.stderr)


if __name__ == "__main__":
    unittest.main()
