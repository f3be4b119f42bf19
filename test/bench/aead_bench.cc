// Benchmark: the AEAD kernels (cairn/crypto/aead.h). For each algorithm and
// each kernel this CPU runs, seals and opens TLS-sized records (16 KiB, the
// largest TLS record, and 1 KiB) with 13 bytes of AAD as TLS 1.2 has, and
// prints one JSON line per case:
//   {"bench":"aead","algorithm":...,"kernel":...,"record":16384,"op":"seal",
//    "bytes":...,"cpu_seconds":...,"wall_seconds":...,"mb_per_sec":...}
// MB is 10^6 bytes and the time is this thread's CPU time, as `openssl
// speed` counts both (it divides by CPU user time unless given -elapsed):
// the machines running this are shared, and wall-clock rates there measure
// the neighbours as much as the code. run_benches.py prints
// OpenSSL's rate for the same cases (through python3-cryptography and
// `openssl speed`) in the same run. Each case runs for about half a second.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cairn/crypto/aead.h"

namespace {

using Clock = std::chrono::steady_clock;
using cairn::crypto::Aead;
using cairn::crypto::AeadAlgorithm;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

template <typename F>
void Measure(const Aead& aead, std::size_t record, const char* op, F f) {
  long n = 0;
  for (int i = 0; i < 20; ++i) f();  // warm the caches and the clock
  auto start = Clock::now();
  double cpu_start = ThreadCpuSeconds();
  while (n < 50 || ThreadCpuSeconds() - cpu_start < 0.5) {
    for (int i = 0; i < 16; ++i) f();
    n += 16;
  }
  double cpu_seconds = ThreadCpuSeconds() - cpu_start;
  double wall_seconds = Since(start);
  double bytes = static_cast<double>(record) * static_cast<double>(n);
  std::printf(
      "{\"bench\":\"aead\",\"algorithm\":\"%s\",\"kernel\":\"%s\",\"record\":%zu,\"op\":\"%s\",\"bytes\":%.0f,"
      "\"cpu_seconds\":%.3f,\"wall_seconds\":%.3f,\"mb_per_sec\":%.1f}\n",
      cairn::crypto::AeadAlgorithmName(aead.algorithm()), aead.kernel(), record, op, bytes, cpu_seconds,
      wall_seconds, bytes / cpu_seconds / 1e6);
  std::fflush(stdout);
}

}  // namespace

int main() {
  using namespace cairn::crypto;
  for (AeadAlgorithm algorithm :
       {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    for (const char* kernel : AeadKernels(algorithm)) {
      auto aead = NewAead(algorithm, std::string(AeadKeySize(algorithm), 'k'), kernel);
      if (!aead.ok()) {
        std::fprintf(stderr, "aead_bench: %s\n", aead.status().ToString().c_str());
        return 1;
      }
      for (std::size_t record : {std::size_t{16384}, std::size_t{1024}}) {
        std::vector<std::uint8_t> nonce(kAeadNonceSize, 0x17), plain(record, 'p'), sealed(record), opened(record);
        std::uint8_t tag[kAeadTagSize];
        const std::string aad(13, 'a');
        Measure(**aead, record, "seal", [&] {
          ++nonce[11];
          (*aead)->Seal(nonce.data(), aad, plain.data(), record, sealed.data(), tag);
        });
        Measure(**aead, record, "open", [&] {
          if (!(*aead)->Open(nonce.data(), aad, sealed.data(), record, tag, opened.data()).ok()) std::abort();
        });
      }
    }
  }
  return 0;
}
