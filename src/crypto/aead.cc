// AEAD dispatch (cairn/crypto/aead.h) and the portable kernel, "mbedtls":
// mbedTLS's GCM and ChaCha20-Poly1305 through calls that are the same in
// mbedTLS 2.28 and 3.6. Any thread: an mbedTLS context keeps per-message
// state, so each call keys a context of its own on the stack (AES key
// expansion and GCM's table of H: about a microsecond, against some 70 for a
// 16 KiB record), which lets one Aead object serve several threads.
#include "cairn/crypto/aead.h"

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "crypto/aead_kernels.h"

namespace cairn::crypto {
namespace aead_internal {

bool TagsEqual(const std::uint8_t* a, const std::uint8_t* b) {
  // Every byte is looked at; only the OR of the differences decides.
  volatile std::uint8_t diff = 0;
  for (std::size_t i = 0; i < kAeadTagSize; ++i) diff = static_cast<std::uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace aead_internal

namespace {

// mbedTLS wants a valid pointer even for zero bytes.
const unsigned char* NonNull(const void* p) {
  static const unsigned char kEmpty[1] = {0};
  return p != nullptr ? static_cast<const unsigned char*>(p) : kEmpty;
}

class MbedTlsAead final : public Aead {
 public:
  MbedTlsAead(AeadAlgorithm algorithm, std::string_view key) : algorithm_(algorithm), key_size_(key.size()) {
    std::memcpy(key_, key.data(), key.size());
  }
  ~MbedTlsAead() override { mbedtls_platform_zeroize(key_, sizeof key_); }

  AeadAlgorithm algorithm() const override { return algorithm_; }
  const char* kernel() const override { return "mbedtls"; }

  void Seal(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
            std::uint8_t* out, std::uint8_t* tag) const override {
    unsigned char scratch[1];
    unsigned char* dst = out != nullptr ? out : scratch;
    int rc;
    if (algorithm_ == AeadAlgorithm::kChaCha20Poly1305) {
      mbedtls_chachapoly_context ctx;
      mbedtls_chachapoly_init(&ctx);
      rc = mbedtls_chachapoly_setkey(&ctx, key_);
      if (rc == 0) {
        rc = mbedtls_chachapoly_encrypt_and_tag(&ctx, len, nonce, NonNull(aad.data()), aad.size(), NonNull(in), dst,
                                                tag);
      }
      mbedtls_chachapoly_free(&ctx);
    } else {
      mbedtls_gcm_context ctx;
      mbedtls_gcm_init(&ctx);
      rc = mbedtls_gcm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, key_, static_cast<unsigned>(8 * key_size_));
      if (rc == 0) {
        rc = mbedtls_gcm_crypt_and_tag(&ctx, MBEDTLS_GCM_ENCRYPT, len, nonce, kAeadNonceSize, NonNull(aad.data()),
                                       aad.size(), NonNull(in), dst, kAeadTagSize, tag);
      }
      mbedtls_gcm_free(&ctx);
    }
    CAIRN_CHECK(rc == 0, "mbedTLS failed to seal: " + std::to_string(rc));
  }

  Status Open(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
              const std::uint8_t* tag, std::uint8_t* out) const override {
    unsigned char scratch[1];
    unsigned char* dst = out != nullptr ? out : scratch;
    std::uint8_t computed[kAeadTagSize];
    int rc;
    if (algorithm_ == AeadAlgorithm::kChaCha20Poly1305) {
      mbedtls_chachapoly_context ctx;
      mbedtls_chachapoly_init(&ctx);
      rc = mbedtls_chachapoly_setkey(&ctx, key_);
      if (rc == 0) rc = mbedtls_chachapoly_starts(&ctx, nonce, MBEDTLS_CHACHAPOLY_DECRYPT);
      if (rc == 0) rc = mbedtls_chachapoly_update_aad(&ctx, NonNull(aad.data()), aad.size());
      if (rc == 0) rc = mbedtls_chachapoly_update(&ctx, len, NonNull(in), dst);
      if (rc == 0) rc = mbedtls_chachapoly_finish(&ctx, computed);
      mbedtls_chachapoly_free(&ctx);
    } else {
      mbedtls_gcm_context ctx;
      mbedtls_gcm_init(&ctx);
      rc = mbedtls_gcm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, key_, static_cast<unsigned>(8 * key_size_));
      if (rc == 0) {
        rc = mbedtls_gcm_crypt_and_tag(&ctx, MBEDTLS_GCM_DECRYPT, len, nonce, kAeadNonceSize, NonNull(aad.data()),
                                       aad.size(), NonNull(in), dst, kAeadTagSize, computed);
      }
      mbedtls_gcm_free(&ctx);
    }
    CAIRN_CHECK(rc == 0, "mbedTLS failed to open: " + std::to_string(rc));
    bool good = aead_internal::TagsEqual(computed, tag);
    mbedtls_platform_zeroize(computed, sizeof computed);
    if (!good) {
      if (len > 0) mbedtls_platform_zeroize(out, len);
      return Status::Integrity("AEAD tag mismatch");
    }
    return Status::Ok();
  }

 private:
  AeadAlgorithm algorithm_;
  std::size_t key_size_;
  unsigned char key_[32];
};

// One kernel: its name, whether this CPU runs it, how to make one.
struct Kernel {
  const char* name;
  bool (*applies)(AeadAlgorithm);
  bool (*available)();
  std::unique_ptr<Aead> (*make)(AeadAlgorithm, const std::uint8_t* key);
};

bool Always() { return true; }
bool AnyAlgorithm(AeadAlgorithm) { return true; }
bool IsGcm(AeadAlgorithm algorithm) { return algorithm != AeadAlgorithm::kChaCha20Poly1305; }
bool IsChaCha(AeadAlgorithm algorithm) { return algorithm == AeadAlgorithm::kChaCha20Poly1305; }

// Fastest first within an algorithm; "mbedtls" last.
const Kernel kKernels[] = {
    {"vaes-avx512", IsGcm, aead_internal::AesGcmVaes512Available, aead_internal::NewAesGcmVaes512},
    {"vaes-avx2", IsGcm, aead_internal::AesGcmVaesAvailable, aead_internal::NewAesGcmVaes},
    {"aesni-pclmul", IsGcm, aead_internal::AesGcmX86Available, aead_internal::NewAesGcmX86},
    {"avx512", IsChaCha, aead_internal::Poly1305IfmaAvailable,
     [](AeadAlgorithm, const std::uint8_t* key) {
       return aead_internal::NewChaChaPoly(aead_internal::ChaChaXorAvx512, aead_internal::Poly1305BlocksIfma,
                                           "avx512", key, aead_internal::ChaChaStartAvx512);
     }},
    {"avx2", IsChaCha, aead_internal::ChaChaAvx2Available,
     [](AeadAlgorithm, const std::uint8_t* key) {
       return aead_internal::NewChaChaPoly(aead_internal::ChaChaXorAvx2, aead_internal::Poly1305BlocksAvx2, "avx2",
                                           key);
     }},
    {"neon", IsChaCha, aead_internal::ChaChaNeonAvailable,
     [](AeadAlgorithm, const std::uint8_t* key) {
       return aead_internal::NewChaChaPoly(aead_internal::ChaChaXorNeon, nullptr, "neon", key);
     }},
    {"mbedtls", AnyAlgorithm, Always,
     [](AeadAlgorithm a, const std::uint8_t* key) -> std::unique_ptr<Aead> {
       return std::make_unique<MbedTlsAead>(
           a, std::string_view(reinterpret_cast<const char*>(key), AeadKeySize(a)));
     }},
};

}  // namespace

std::size_t AeadKeySize(AeadAlgorithm algorithm) { return algorithm == AeadAlgorithm::kAes128Gcm ? 16 : 32; }

const char* AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes128Gcm:
      return "aes-128-gcm";
    case AeadAlgorithm::kAes256Gcm:
      return "aes-256-gcm";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "chacha20-poly1305";
  }
  return "unknown";
}

std::vector<const char*> AeadKernels(AeadAlgorithm algorithm) {
  std::vector<const char*> names;
  for (const Kernel& k : kKernels) {
    if (k.applies(algorithm) && k.available()) names.push_back(k.name);
  }
  return names;
}

namespace {

// Nanoseconds per byte of `algorithm`'s default kernel sealing 16 KiB
// records: the best of three rounds of eight.
double SealNsPerByte(AeadAlgorithm algorithm) {
  constexpr std::size_t kRecord = 16 * 1024;
  constexpr int kRecords = 8;
  const std::string key(AeadKeySize(algorithm), '\x5a');
  auto aead = NewAead(algorithm, key);
  if (!aead.ok()) return 0;
  std::string buf(kRecord, '\x01');
  auto* p = reinterpret_cast<std::uint8_t*>(buf.data());
  std::uint8_t nonce[12] = {};
  std::uint8_t tag[16];
  const char aad[13] = {};
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRecords; ++i) {
      nonce[11] = static_cast<std::uint8_t>(round * kRecords + i);
      (*aead)->Seal(nonce, std::string_view(aad, sizeof aad), p, kRecord, p, tag);
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    const double per_byte = ns / (static_cast<double>(kRecord) * kRecords);
    if (round == 0 || per_byte < best) best = per_byte;
  }
  return best;
}

}  // namespace

AeadSealCost MeasureAeadSealCost() {
  AeadSealCost cost;
  cost.aes_128_gcm_ns_per_byte = SealNsPerByte(AeadAlgorithm::kAes128Gcm);
  cost.chacha20_poly1305_ns_per_byte = SealNsPerByte(AeadAlgorithm::kChaCha20Poly1305);
  return cost;
}

Result<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm, std::string_view key, std::string_view kernel) {
  if (key.size() != AeadKeySize(algorithm)) {
    return Status::InvalidArgument(std::string("an ") + AeadAlgorithmName(algorithm) + " key is " +
                                   std::to_string(AeadKeySize(algorithm)) + " bytes, not " +
                                   std::to_string(key.size()));
  }
  const auto* k = reinterpret_cast<const std::uint8_t*>(key.data());
  for (const Kernel& candidate : kKernels) {
    if (!candidate.applies(algorithm) || !candidate.available()) continue;
    if (!kernel.empty() && kernel != candidate.name) continue;
    return candidate.make(algorithm, k);
  }
  return Status::InvalidArgument("AEAD kernel \"" + std::string(kernel) + "\" is unknown or unavailable for " +
                                 AeadAlgorithmName(algorithm) + " on this CPU");
}

}  // namespace cairn::crypto
