"""cairn's AEAD kernels against OpenSSL's, through Debian's python3-cryptography
(AESGCM, ChaCha20Poly1305), which we did not write: for every kernel this
machine has, on random keys, nonces, AAD and lengths from 0 to 16 KiB + 1, in
both directions (sealed by one, opened by the other, byte-identical output);
records tampered with after sealing are refused by both, and cairn's Open
leaves its output all zeros. Each Poly1305 implementation (the scalar one and
the vector one where the CPU has it) against OpenSSL's Poly1305 on random
keys and block counts, the message handed over in several calls. Drives
test/tools/aead_tool.cc."""
import json
import os
import random
import subprocess
import sys
import unittest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import poly1305
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

sys.path.insert(0, os.path.join(os.environ.get("CAIRN_ROOT", "."), "test"))
from pylib.cairntest import binary  # noqa: E402

ALGORITHMS = {
    "aes-128-gcm": (16, AESGCM),
    "aes-256-gcm": (32, AESGCM),
    "chacha20-poly1305": (32, ChaCha20Poly1305),
}
LENGTHS = list(range(0, 65)) + [95, 96, 97, 127, 128, 129, 255, 256, 257, 300, 511, 512, 513, 1000, 1024, 4095,
                                4096, 4097, 8191, 16383, 16384, 16385]


# What the "avx512" ChaCha20-Poly1305 kernel and the "ifma" Poly1305 need
# (besides AVX2 and the OS saving the ZMM state).
AVX512_IFMA = {"avx2", "avx512f", "avx512vl", "avx512bw", "avx512ifma"}


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def run_tool(requests):
    """Answers to `requests` (dicts), one aead_tool process for the batch."""
    text = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run([binary("tools/aead_tool")], input=text, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == len(requests), (len(answers), len(requests), proc.stderr)
    return answers


def request(op, algorithm, kernel, key, nonce, aad, data, tag=b""):
    return {"op": op, "algorithm": algorithm, "kernel": kernel, "key": key.hex(), "nonce": nonce.hex(),
            "aad": aad.hex(), "data": data.hex(), "tag": tag.hex()}


def flip(data, rng):
    pos = rng.randrange(len(data))
    return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1:]


class AeadInteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        proc = subprocess.run([binary("tools/aead_tool"), "kernels"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        cls.kernels = json.loads(proc.stdout)

    def test_kernels_listed(self):
        """Every kernel this CPU can run is offered (none is skipped silently)."""
        self.assertEqual(sorted(self.kernels), sorted(ALGORITHMS))
        for algorithm, kernels in self.kernels.items():
            self.assertEqual(kernels[-1], "mbedtls", algorithm)
        if os.uname().machine == "x86_64":
            flags = cpu_flags()
            for algorithm in ("aes-128-gcm", "aes-256-gcm"):
                if {"aes", "pclmulqdq", "sse4_1"} <= flags:
                    self.assertIn("aesni-pclmul", self.kernels[algorithm])
                if {"aes", "pclmulqdq", "avx2", "vaes", "vpclmulqdq"} <= flags:
                    self.assertIn("vaes-avx2", self.kernels[algorithm])
                if {"aes", "pclmulqdq", "avx2", "avx512f", "avx512bw", "vaes", "vpclmulqdq"} <= flags:
                    self.assertIn("vaes-avx512", self.kernels[algorithm])
            if "avx2" in flags:
                self.assertIn("avx2", self.kernels["chacha20-poly1305"])
            if AVX512_IFMA <= flags:
                self.assertIn("avx512", self.kernels["chacha20-poly1305"])

    def check_kernel(self, algorithm, kernel, seed):
        key_size, cls = ALGORITHMS[algorithm]
        rng = random.Random(seed)
        cases = []
        for i, length in enumerate(LENGTHS):
            aad_len = i % 65 if i % 9 else rng.choice([13, 100, 1000, 5000])
            cases.append((rng.randbytes(key_size), rng.randbytes(12), rng.randbytes(aad_len), rng.randbytes(length)))
        # Theirs, for each case: sealed by OpenSSL.
        theirs = [cls(key).encrypt(nonce, plain, aad) for key, nonce, aad, plain in cases]
        requests = []
        for (key, nonce, aad, plain), sealed in zip(cases, theirs):
            requests.append(request("seal", algorithm, kernel, key, nonce, aad, plain))
            body, tag = sealed[:-16], sealed[-16:]
            requests.append(request("open", algorithm, kernel, key, nonce, aad, body, tag))
            bad = flip(sealed, rng)
            requests.append(request("open", algorithm, kernel, key, nonce, aad, bad[:-16], bad[-16:]))
            if aad:
                requests.append(request("open", algorithm, kernel, key, nonce, flip(aad, rng), body, tag))
            if plain:
                requests.append(request("open", algorithm, kernel, key, nonce, aad, body[:-1], tag))
        answers = iter(run_tool(requests))
        for (key, nonce, aad, plain), sealed in zip(cases, theirs):
            what = f"{algorithm} {kernel} len {len(plain)} aad {len(aad)}"
            ours = next(answers)
            self.assertTrue(ours["ok"], (what, ours))
            ours_sealed = bytes.fromhex(ours["ciphertext"]) + bytes.fromhex(ours["tag"])
            self.assertEqual(ours_sealed, sealed, what)
            # OpenSSL opens ours (identical bytes, but through its own Open) ...
            self.assertEqual(cls(key).decrypt(nonce, ours_sealed, aad), plain, what)
            with self.assertRaises(InvalidTag, msg=what):
                cls(key).decrypt(nonce, flip(ours_sealed, rng), aad)
            # ... and we open OpenSSL's.
            opened = next(answers)
            self.assertTrue(opened["ok"], (what, opened))
            self.assertEqual(bytes.fromhex(opened["plaintext"]), plain, what)
            forged = [next(answers)]
            if aad:
                forged.append(next(answers))
            if plain:
                forged.append(next(answers))
            for answer in forged:
                self.assertFalse(answer["ok"], what)
                self.assertEqual(answer["error"], "integrity", what)
                self.assertEqual(set(bytes.fromhex(answer["plaintext"])) - {0}, set(), what + ": output not zeroed")

    def test_every_kernel_against_openssl(self):
        seed = 8439
        for algorithm, kernels in sorted(self.kernels.items()):
            for kernel in kernels:
                with self.subTest(algorithm=algorithm, kernel=kernel):
                    self.check_kernel(algorithm, kernel, seed)
                seed += 1

    def test_unknown_kernel_and_bad_key_refused(self):
        answers = run_tool([request("seal", "aes-128-gcm", "no-such-kernel", bytes(16), bytes(12), b"", b"x"),
                            request("seal", "aes-128-gcm", "", bytes(15), bytes(12), b"", b"x"),
                            request("seal", "chacha20-poly1305", "", bytes(16), bytes(12), b"", b"x")])
        for answer in answers:
            self.assertFalse(answer["ok"])
            self.assertIn("invalid_argument", answer["error"])


    def test_poly1305_against_openssl(self):
        """Whole blocks (what the AEAD hands Poly1305), 0 to 1100 blocks, split
        at random points into up to six calls; "avx2" must be there on an
        x86-64 CPU with AVX2, "ifma" on one with AVX-512 IFMA, and an unknown
        name is refused."""
        impls = ["scalar"]
        if os.uname().machine == "x86_64" and "avx2" in cpu_flags():
            impls.append("avx2")
        if os.uname().machine == "x86_64" and AVX512_IFMA <= cpu_flags():
            impls.append("ifma")
        rng = random.Random(1305)
        cases = []
        for i in range(300):
            blocks = i if i < 80 else rng.randrange(0, 1101)
            key = rng.randbytes(32) if i % 5 else b"\xff" * 32
            data = rng.randbytes(16 * blocks) if i % 7 else b"\xff" * (16 * blocks)
            cuts = sorted(rng.randrange(0, blocks + 1) for _ in range(rng.randrange(0, 6)))
            parts = [b - a for a, b in zip([0] + cuts, cuts + [blocks])]
            cases.append((key, data, parts))
        requests = [{"op": "poly1305", "impl": impl, "key": key.hex(), "data": data.hex(), "parts": parts}
                    for impl in impls for key, data, parts in cases]
        requests.append({"op": "poly1305", "impl": "no-such", "key": "00" * 32, "data": "", "parts": []})
        answers = run_tool(requests)
        refused = answers.pop()
        self.assertFalse(refused["ok"])
        for impl in impls:
            for key, data, parts in cases:
                answer = answers.pop(0)
                what = f"{impl}: {len(data) // 16} blocks in calls of {parts}"
                self.assertTrue(answer["ok"], (what, answer))
                self.assertEqual(bytes.fromhex(answer["tag"]), poly1305.Poly1305.generate_tag(key, data), what)


if __name__ == "__main__":
    unittest.main()
