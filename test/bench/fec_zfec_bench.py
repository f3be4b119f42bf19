#!/usr/bin/python3
"""Benchmark: Debian's python3-zfec, measured as test/bench/fec_bench.cc measures
cairn's kernels (a 1 MiB segment with Tahoe's padding, 3-of-10 and 2-of-4,
decoding from the last k blocks; MB/s = 10^6 bytes of input data a second),
then, from the programs' results in $CAIRN_BENCH_RESULTS (run_benches.py),
the ratio of each cairn kernel to zfec. Prints JSON lines."""
import json
import os
import random
import time

import zfec

SEGMENT = 1 << 20
MIN_SECONDS = 0.4


def per_run(fn):
    """Seconds per call of fn, over at least MIN_SECONDS."""
    fn()
    runs = 0
    start = time.perf_counter()
    while True:
        fn()
        runs += 1
        secs = time.perf_counter() - start
        if secs >= MIN_SECONDS:
            return secs / runs


def measure(k, n):
    rng = random.Random(1)
    size = -(-SEGMENT // k)
    pieces = tuple(rng.randbytes(size) for _ in range(k))
    encoder, decoder = zfec.Encoder(k, n), zfec.Decoder(k, n)
    blocks = encoder.encode(pieces)
    nums = tuple(range(n - k, n))
    given = tuple(blocks[i] for i in nums)
    assert b"".join(decoder.decode(given, nums)) == b"".join(pieces)
    data = size * k
    return {"encode": data / per_run(lambda: encoder.encode(pieces)) / 1e6,
            "decode": data / per_run(lambda: decoder.decode(given, nums)) / 1e6}


def ours():
    path = os.environ.get("CAIRN_BENCH_RESULTS")
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.startswith("{")]
    return [line for line in lines if line.get("bench") == "fec"]


def main():
    zfec_speed = {}
    for k, n in ((3, 10), (2, 4)):
        for op, mbps in measure(k, n).items():
            zfec_speed[(op, k, n)] = mbps
            print(json.dumps({"bench": "fec", "kernel": "zfec", "op": op, "k": k, "n": n, "segment_bytes": SEGMENT,
                              "mb_per_s": round(mbps, 1)}), flush=True)
    for line in ours():
        key = (line["op"], line["k"], line["n"])
        if key in zfec_speed:
            print(json.dumps({"bench": "fec_vs_zfec", "kernel": line["kernel"], "op": line["op"], "k": line["k"],
                              "n": line["n"], "ratio": round(line["mb_per_s"] / zfec_speed[key], 2)}), flush=True)


if __name__ == "__main__":
    main()
