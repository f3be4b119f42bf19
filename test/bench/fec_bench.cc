// Benchmark: erasure coding, every kernel available here. Prints JSON lines:
// encode and decode speed in MB/s (10^6 bytes of input data a second) of a
// 1 MiB segment (Tahoe's default maximum) for 3-of-10 and 2-of-4. Decoding
// uses the last k blocks (parity only when n-k >= k): the most work.
// test/bench/fec_zfec_bench.py measures python3-zfec the same way.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "cairn/fec/fec.h"

namespace {

using namespace cairn;

constexpr std::size_t kSegment = 1 << 20;
constexpr double kMinSeconds = 0.4;

// Runs `fn` until kMinSeconds have passed; returns seconds per run.
template <typename Fn>
double Time(Fn fn) {
  fn();  // warm caches and page in the buffers
  long runs = 0;
  auto start = std::chrono::steady_clock::now();
  double secs = 0;
  do {
    fn();
    ++runs;
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (secs < kMinSeconds);
  return secs / static_cast<double>(runs);
}

void Report(fec::Kernel kernel, bool selected, const char* op, int k, int n, double bytes, double secs) {
  std::printf(
      "{\"bench\":\"fec\",\"kernel\":\"%s\",\"selected\":%s,\"op\":\"%s\",\"k\":%d,\"n\":%d,"
      "\"segment_bytes\":%zu,\"mb_per_s\":%.1f}\n",
      std::string(fec::KernelName(kernel)).c_str(), selected ? "true" : "false", op, k, n, kSegment,
      bytes / secs / 1e6);
  std::fflush(stdout);
}

int Bench(fec::Kernel kernel, bool selected, int k, int n) {
  auto codec = fec::Codec::Create(k, n, kernel);
  if (!codec.ok()) {
    std::fprintf(stderr, "fec_bench: %s\n", codec.status().ToString().c_str());
    return 1;
  }
  const std::size_t piece = fec::PieceSize(kSegment, k);
  std::vector<std::vector<std::uint8_t>> blocks(static_cast<std::size_t>(n), std::vector<std::uint8_t>(piece));
  std::mt19937 rng(1);
  for (int c = 0; c < k; ++c) {
    for (auto& b : blocks[static_cast<std::size_t>(c)]) b = static_cast<std::uint8_t>(rng());
  }
  std::vector<const std::uint8_t*> pieces;
  std::vector<int> nums;
  std::vector<std::uint8_t*> outs;
  for (int i = 0; i < n; ++i) {
    if (i < k) pieces.push_back(blocks[static_cast<std::size_t>(i)].data());
    nums.push_back(i);
    outs.push_back(blocks[static_cast<std::size_t>(i)].data());
  }
  const double input = static_cast<double>(piece) * k;
  Status st;
  double secs = Time([&] { st = codec->Encode(pieces, piece, nums, outs); });
  if (!st.ok()) return 1;
  Report(kernel, selected, "encode", k, n, input, secs);

  std::vector<const std::uint8_t*> given;
  std::vector<int> given_nums;
  for (int i = n - k; i < n; ++i) {
    given.push_back(blocks[static_cast<std::size_t>(i)].data());
    given_nums.push_back(i);
  }
  std::vector<std::vector<std::uint8_t>> decoded(static_cast<std::size_t>(k), std::vector<std::uint8_t>(piece));
  std::vector<std::uint8_t*> decoded_ptrs;
  for (auto& d : decoded) decoded_ptrs.push_back(d.data());
  secs = Time([&] { st = codec->Decode(given, given_nums, piece, decoded_ptrs); });
  if (!st.ok()) return 1;
  for (int c = 0; c < k; ++c) {
    if (decoded[static_cast<std::size_t>(c)] != blocks[static_cast<std::size_t>(c)]) {
      std::fprintf(stderr, "fec_bench: %s decode gave wrong bytes\n", std::string(fec::KernelName(kernel)).c_str());
      return 1;
    }
  }
  Report(kernel, selected, "decode", k, n, input, secs);
  return 0;
}

}  // namespace

int main() {
  auto selected = fec::SelectedKernel();
  if (!selected.ok()) {
    std::fprintf(stderr, "fec_bench: %s\n", selected.status().ToString().c_str());
    return 1;
  }
  int failed = 0;
  for (fec::Kernel kernel : fec::AvailableKernels()) {
    failed += Bench(kernel, kernel == *selected, 3, 10);
    failed += Bench(kernel, kernel == *selected, 2, 4);
  }
  return failed ? 1 : 0;
}
