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
// The two halves of ChaCha20-Poly1305 are also measured alone, per vector
// implementation, over 16 KiB handed over in 1 KiB calls:
//   {"bench":"aead_part","part":"chacha20","impl":"avx512","bytes":...,
//    "cpu_seconds":...,"mb_per_sec":...}
// Arguments, if any, are the algorithms to measure (by name, or "parts").
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cairn/crypto/aead.h"
#include "crypto/aead_kernels.h"
#include "crypto/aead_poly1305.h"

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

// Runs f about half a second of CPU time; returns the calls and the CPU
// and wall seconds.
template <typename F>
long Run(F f, double* cpu_seconds, double* wall_seconds) {
  long n = 0;
  for (int i = 0; i < 20; ++i) f();  // warm the caches and the clock
  auto start = Clock::now();
  double cpu_start = ThreadCpuSeconds();
  while (n < 50 || ThreadCpuSeconds() - cpu_start < 0.5) {
    for (int i = 0; i < 16; ++i) f();
    n += 16;
  }
  *cpu_seconds = ThreadCpuSeconds() - cpu_start;
  *wall_seconds = Since(start);
  return n;
}

template <typename F>
void Measure(const Aead& aead, std::size_t record, const char* op, F f) {
  double cpu_seconds, wall_seconds;
  long n = Run(f, &cpu_seconds, &wall_seconds);
  double bytes = static_cast<double>(record) * static_cast<double>(n);
  std::printf(
      "{\"bench\":\"aead\",\"algorithm\":\"%s\",\"kernel\":\"%s\",\"record\":%zu,\"op\":\"%s\",\"bytes\":%.0f,"
      "\"cpu_seconds\":%.3f,\"wall_seconds\":%.3f,\"mb_per_sec\":%.1f}\n",
      cairn::crypto::AeadAlgorithmName(aead.algorithm()), aead.kernel(), record, op, bytes, cpu_seconds,
      wall_seconds, bytes / cpu_seconds / 1e6);
  std::fflush(stdout);
}

void ReportPart(const char* part, const char* impl, std::size_t len, long n, double cpu_seconds) {
  double bytes = static_cast<double>(len) * static_cast<double>(n);
  std::printf(
      "{\"bench\":\"aead_part\",\"part\":\"%s\",\"impl\":\"%s\",\"bytes\":%.0f,\"cpu_seconds\":%.3f,"
      "\"mb_per_sec\":%.1f}\n",
      part, impl, bytes, cpu_seconds, bytes / cpu_seconds / 1e6);
  std::fflush(stdout);
}

#if defined(__SIZEOF_INT128__)
// ChaCha20 and Poly1305 alone over 16 KiB, in 1 KiB chunks (our Poly1305
// needs unsigned __int128).
void MeasureParts() {
  namespace ai = cairn::crypto::aead_internal;
  constexpr std::size_t kLen = 16384, kChunk = 1024;
  std::vector<std::uint8_t> buf(kLen, 'p');
  const std::uint32_t key[8] = {1, 2, 3, 4, 5, 6, 7, 8}, nonce[3] = {9, 10, 11};
  struct ChaCha {
    const char* name;
    bool available;
    ai::ChaChaXorFn fn;
  };
  for (const ChaCha& c : {ChaCha{"avx512", ai::ChaChaAvx512Available(), ai::ChaChaXorAvx512},
                          ChaCha{"avx2", ai::ChaChaAvx2Available(), ai::ChaChaXorAvx2}}) {
    if (!c.available) continue;
    double cpu, wall;
    long n = Run(
        [&] {
          for (std::size_t off = 0; off < kLen; off += kChunk) {
            c.fn(key, nonce, static_cast<std::uint32_t>(1 + off / 64), buf.data() + off, buf.data() + off, kChunk);
          }
        },
        &cpu, &wall);
    ReportPart("chacha20", c.name, kLen, n, cpu);
  }
  struct Poly {
    const char* name;
    bool available;
    ai::Poly1305BlocksFn fn;
  };
  for (const Poly& p : {Poly{"ifma", ai::Poly1305IfmaAvailable(), ai::Poly1305BlocksIfma},
                        Poly{"avx2", ai::Poly1305Avx2Available(), ai::Poly1305BlocksAvx2},
                        Poly{"scalar", true, ai::Poly1305Blocks}}) {
    if (!p.available) continue;
    double cpu, wall;
    std::uint8_t one_time_key[32] = {7};
    long n = Run(
        [&] {
          ai::Poly1305State st;
          ai::Poly1305Init(&st, one_time_key);
          for (std::size_t off = 0; off < kLen; off += kChunk) p.fn(&st, buf.data() + off, kChunk / 16);
          ai::Poly1305Finish(&st, one_time_key + 16);
        },
        &cpu, &wall);
    ReportPart("poly1305", p.name, kLen, n, cpu);
  }
}
#endif

bool Wanted(int argc, char** argv, const char* name) {
  if (argc < 2) return true;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == name) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn::crypto;
  for (AeadAlgorithm algorithm :
       {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    if (!Wanted(argc, argv, AeadAlgorithmName(algorithm))) continue;
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
#if defined(__SIZEOF_INT128__)
  if (Wanted(argc, argv, "parts")) MeasureParts();
#endif
  return 0;
}
