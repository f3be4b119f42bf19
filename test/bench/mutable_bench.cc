// Benchmark: the CPU work of an SDMF publish and retrieve (3-of-10), all
// of it run on the thread pool by the publisher and the retriever: per
// file, encode + sign + lay out the shares (publish) and decode
// (retrieve); per share, parse and verify a whole share (public key,
// RSA-PSS signature, block hash, chain) as the retriever does for each
// share it reads. JSON lines; one line per file size.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "cairn/caps/keys.h"
#include "cairn/crypto/random.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/sdmf.h"

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

}  // namespace

int main() {
  using namespace cairn;
  auto key = crypto::RsaKey::Generate();
  if (!key.ok()) return std::fprintf(stderr, "mutable_bench: %s\n", key.status().ToString().c_str()), 1;
  const std::string priv = key->PrivatePkcs8Der(), pub = key->PublicSpkiDer();
  const caps::MutableKeys keys = caps::DeriveMutableKeys(priv, pub);
  const std::string encpriv = caps::CryptPrivateKey(keys.writekey, priv);
  const std::uint32_t k = 3, n = 10;
  for (std::size_t size : {std::size_t{1000}, std::size_t{100000}, std::size_t{1} << 20, std::size_t{8} << 20}) {
    std::string data(size, 'd');
    const int rounds = size > (1u << 20) ? 2 : 5;
    double publish_ms = 0, verify_ms = 0, decode_ms = 0;
    for (int r = 0; r < rounds; ++r) {
      auto start = Clock::now();
      auto enc = mutable_files::SdmfEncoding::Encode(keys.readkey, pub, encpriv, data, k, n, 1, *crypto::RandomBytes(16));
      auto sig = key->Sign(enc->signed_prefix());
      auto shares = enc->Shares(*sig);
      publish_ms += MsSince(start);
      std::map<std::uint32_t, mutable_files::SdmfShare> parsed;
      for (std::uint32_t i = 0; i < k; ++i) {
        start = Clock::now();
        auto s = mutable_files::ParseSdmfShare((*shares)[i]);
        if (!s.ok() || !mutable_files::VerifySdmfShare(*s, i, keys.fingerprint).ok()) return 1;
        verify_ms += MsSince(start);
        parsed.emplace(i, std::move(*s));
      }
      std::map<std::uint32_t, const mutable_files::SdmfShare*> view;
      for (const auto& [i, s] : parsed) view[i] = &s;
      start = Clock::now();
      auto plain = mutable_files::DecodeSdmf(view, keys.readkey);
      decode_ms += MsSince(start);
      if (!plain.ok() || *plain != data) return std::fprintf(stderr, "mutable_bench: round trip failed\n"), 1;
    }
    std::printf(
        "{\"bench\":\"mutable_sdmf\",\"bytes\":%zu,\"k\":%u,\"n\":%u,\"publish_ms\":%.2f,"
        "\"verify_share_ms\":%.3f,\"decode_ms\":%.2f}\n",
        size, k, n, publish_ms / rounds, verify_ms / (rounds * k), decode_ms / rounds);
    std::fflush(stdout);
  }
  return 0;
}
