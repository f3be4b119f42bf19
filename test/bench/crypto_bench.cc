// Benchmark: the formats core's cryptography. Prints JSON lines:
//   RSA-2048 key generation, PSS signing and verification per second;
//   AES-128-CTR and SHA-256d MB/s over 1 MiB buffers;
//   tagged-hash trees (the block hash tree of a 1 MiB-segment share).
// Each case runs for about a second of wall-clock time.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs `op` until `budget_s` has passed (at least `min_ops` times); returns ops and seconds.
template <typename F>
std::pair<long, double> Repeat(double budget_s, long min_ops, F op) {
  long n = 0;
  auto start = Clock::now();
  while (n < min_ops || Since(start) < budget_s) {
    op();
    ++n;
  }
  return {n, Since(start)};
}

void ReportOps(const char* name, std::pair<long, double> r) {
  std::printf("{\"bench\":\"crypto\",\"case\":\"%s\",\"ops\":%ld,\"seconds\":%.3f,\"ops_per_sec\":%.1f}\n", name,
              r.first, r.second, r.first / r.second);
  std::fflush(stdout);
}

void ReportBytes(const char* name, std::pair<long, double> r, std::size_t bytes_per_op) {
  double mb = static_cast<double>(bytes_per_op) * static_cast<double>(r.first) / 1e6;
  std::printf("{\"bench\":\"crypto\",\"case\":\"%s\",\"bytes\":%.0f,\"seconds\":%.3f,\"mb_per_sec\":%.1f}\n", name,
              mb * 1e6, r.second, mb / r.second);
  std::fflush(stdout);
}

}  // namespace

int main() {
  using namespace cairn::crypto;
  auto gen = Repeat(2.0, 3, [] {
    auto k = RsaKey::Generate();
    if (!k.ok()) std::abort();
  });
  ReportOps("rsa2048_generate", gen);

  auto key = RsaKey::Generate();
  if (!key.ok()) return 1;
  std::string message(1000, 'm');
  std::string sig;
  ReportOps("rsa2048_pss_sign", Repeat(1.0, 10, [&] { sig = *key->Sign(message); }));
  ReportOps("rsa2048_pss_verify", Repeat(1.0, 10, [&] {
              if (!key->Verify(message, sig).ok()) std::abort();
            }));

  const std::size_t kMiB = 1 << 20;
  std::string buf(kMiB, 'x');
  auto ctr = AesCtr::Create(std::string(16, 'k'));
  if (!ctr.ok()) return 1;
  ReportBytes("aes128_ctr", Repeat(1.0, 10, [&] { ctr->Apply(buf); }), kMiB);
  ReportBytes("sha256d", Repeat(1.0, 10, [&] { buf[0] = Sha256d(buf)[0]; }), kMiB);
  ReportBytes("tagged_hash_block", Repeat(1.0, 10, [&] { buf[1] = TaggedHash("allmydata_encoded_subshare_v1", buf)[0]; }),
              kMiB);

  // A share's block hash tree for a 1 GiB file in 1 MiB segments: 1024 leaves.
  std::vector<std::string> leaves(1024, std::string(32, 'l'));
  ReportOps("hash_tree_1024_leaves", Repeat(1.0, 5, [&] {
              HashTree t(leaves);
              buf[2] = t.Root()[0];
            }));
  return 0;
}
