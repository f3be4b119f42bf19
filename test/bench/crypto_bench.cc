// Benchmark: the formats core's cryptography. Prints JSON lines:
//   RSA-2048 key generation, PSS signing and verification per second;
//   AES-128-CTR and SHA-256d MB/s over 1 MiB buffers;
//   tagged-hash trees (the block hash tree of a 1 MiB-segment share);
//   the TLS record ciphers (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305)
//   sealing and opening 16 KiB records through mbedtls_cipher_auth_*_ext,
//   the calls mbedTLS's record layer makes: one TLS stream is decrypted on
//   cairnd's single loop thread, so `open` is the ceiling of one upload.
// Each case runs for about a second of wall-clock time.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"

// The record ciphers are measured through mbedTLS itself (the same cipher
// layer its TLS code uses); these calls are identical in 2.28 and 3.6.
#include <mbedtls/cipher.h>

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

// Seals (or opens) one 16 KiB TLS record per op with `type`, as the record
// layer does: 12-byte nonce, 13 bytes of additional data, 16-byte tag.
// Prints two JSON lines (seal, open); false if the cipher is unavailable or
// a record fails to open.
bool RecordCipher(const char* name, mbedtls_cipher_type_t type, std::size_t key_bytes) {
  const std::size_t kRecord = 16384, kTag = 16;
  const mbedtls_cipher_info_t* info = mbedtls_cipher_info_from_type(type);
  if (!info) {
    std::fprintf(stderr, "crypto_bench: mbedTLS lacks %s\n", name);
    return false;
  }
  mbedtls_cipher_context_t ctx;
  mbedtls_cipher_init(&ctx);
  std::vector<unsigned char> key(key_bytes, 0x4b), nonce(12, 0x17), ad(13, 0x23);
  std::vector<unsigned char> plain(kRecord, 'p'), sealed(kRecord + kTag), opened(kRecord);
  bool ok = mbedtls_cipher_setup(&ctx, info) == 0 &&
            mbedtls_cipher_setkey(&ctx, key.data(), static_cast<int>(key_bytes * 8), MBEDTLS_ENCRYPT) == 0;
  std::size_t olen = 0;
  auto seal = [&] {
    ++nonce[11];
    if (mbedtls_cipher_auth_encrypt_ext(&ctx, nonce.data(), nonce.size(), ad.data(), ad.size(), plain.data(),
                                        kRecord, sealed.data(), sealed.size(), &olen, kTag) != 0) {
      std::abort();
    }
  };
  if (ok) {
    std::string seal_name = std::string("tls_record_seal_16k_") + name;
    ReportBytes(seal_name.c_str(), Repeat(1.0, 10, seal), kRecord);
  }
  // Opening needs the decryption key schedule: a second context.
  mbedtls_cipher_context_t dec;
  mbedtls_cipher_init(&dec);
  ok = ok && mbedtls_cipher_setup(&dec, info) == 0 &&
       mbedtls_cipher_setkey(&dec, key.data(), static_cast<int>(key_bytes * 8), MBEDTLS_DECRYPT) == 0;
  if (ok) {
    seal();  // one record, opened again and again under its nonce
    std::string open_name = std::string("tls_record_open_16k_") + name;
    ReportBytes(open_name.c_str(), Repeat(1.0, 10, [&] {
                  std::size_t n = 0;
                  if (mbedtls_cipher_auth_decrypt_ext(&dec, nonce.data(), nonce.size(), ad.data(), ad.size(),
                                                      sealed.data(), sealed.size(), opened.data(), opened.size(),
                                                      &n, kTag) != 0 ||
                      n != kRecord) {
                    std::abort();
                  }
                }),
                kRecord);
  }
  mbedtls_cipher_free(&ctx);
  mbedtls_cipher_free(&dec);
  if (!ok) std::fprintf(stderr, "crypto_bench: setting up %s failed\n", name);
  return ok;
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
  // Two 512 KiB blocks hashed together (TaggedHashes: SHA-NI's two-message
  // function interleaves them); bytes are both blocks' together.
  std::string_view half(buf.data(), kMiB / 2);
  std::string_view other(buf.data() + kMiB / 2, kMiB / 2);
  ReportBytes("tagged_hash_two_blocks", Repeat(1.0, 10, [&] {
                buf[2] = TaggedHashes("allmydata_encoded_subshare_v1", {half, other})[0][0];
              }),
              kMiB);

  // A share's block hash tree for a 1 GiB file in 1 MiB segments: 1024 leaves.
  std::vector<std::string> leaves(1024, std::string(32, 'l'));
  ReportOps("hash_tree_1024_leaves", Repeat(1.0, 5, [&] {
              HashTree t(leaves);
              buf[2] = t.Root()[0];
            }));

  bool ciphers = RecordCipher("aes128_gcm", MBEDTLS_CIPHER_AES_128_GCM, 16) &&
                 RecordCipher("aes256_gcm", MBEDTLS_CIPHER_AES_256_GCM, 32) &&
                 RecordCipher("chacha20_poly1305", MBEDTLS_CIPHER_CHACHA20_POLY1305, 32);
  return ciphers ? 0 : 1;
}
