// The AEAD kernels (cairn/crypto/aead.h): published known answers (RFC 8439
// §2.8.2, the GCM specification's test cases 1-4 and 13-16) through every
// kernel this build and CPU have; every kernel against the "mbedtls" one on
// random keys, nonces, AAD and lengths 0..16 KiB + 1, at every alignment, in
// place and out of place; forged records (wrong tag, flipped bits in the
// ciphertext, AAD, tag or nonce, truncated or extended ciphertext) rejected
// with the output zeroed; one object used from several threads at once;
// our Poly1305 against mbedTLS's where its final reduction and carries are
// decided (h just below, at and just above p = 2^130 - 5); each vector
// ChaCha20 (and the AVX-512 start of a message) and Poly1305 against
// mbedTLS's on its own; the x86-64 kernels present exactly when the CPU has
// what they need.
#include "cairn/crypto/aead.h"

#include <gtest/gtest.h>
#include <mbedtls/chacha20.h>
#include <mbedtls/poly1305.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crypto/aead_kernels.h"
#include "support/vectors.h"

namespace cairn::crypto {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr AeadAlgorithm kAlgorithms[] = {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm,
                                         AeadAlgorithm::kChaCha20Poly1305};

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes FromHex(std::string_view hex) {
  std::string s = testing::Unhex(hex);
  return Bytes(s.begin(), s.end());
}

std::unique_ptr<Aead> Make(AeadAlgorithm algorithm, const Bytes& key, const char* kernel) {
  auto aead = NewAead(algorithm, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), kernel);
  EXPECT_TRUE(aead.ok()) << aead.status().ToString();
  return aead.ok() ? std::move(aead).value() : nullptr;
}

// Ciphertext followed by the tag.
Bytes SealAll(const Aead& aead, const Bytes& nonce, const Bytes& aad, const Bytes& plain) {
  Bytes out(plain.size() + kAeadTagSize);
  aead.Seal(nonce.data(), std::string_view(reinterpret_cast<const char*>(aad.data()), aad.size()), plain.data(),
            plain.size(), out.data(), out.data() + plain.size());
  return out;
}

Status OpenAll(const Aead& aead, const Bytes& nonce, const Bytes& aad, const Bytes& sealed, Bytes* plain) {
  std::size_t len = sealed.size() - kAeadTagSize;
  plain->assign(len, 0xa5);
  return aead.Open(nonce.data(), std::string_view(reinterpret_cast<const char*>(aad.data()), aad.size()),
                   sealed.data(), len, sealed.data() + len, plain->data());
}

Bytes Random(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// memcpy and memcmp that accept the null data() of an empty vector.
void Copy(std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
  if (n > 0) std::memcpy(dst, src, n);
}
bool Same(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

bool AllZero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

struct KnownAnswer {
  AeadAlgorithm algorithm;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* plain;
  const char* sealed;  // ciphertext, then tag
};

const char kGcmPlain[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de65"
    "7ba637b391aafd255";
const char kGcmPlain60[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de65"
    "7ba637b39";

const KnownAnswer kKnownAnswers[] = {
    // RFC 8439 §2.8.2.
    {AeadAlgorithm::kChaCha20Poly1305, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c6420"
     "6f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c"
     "642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e"
     "060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576"
     "d26586cec64b6116"
     "1ae10b594f09e26a7e902ecbd0600691"},
    // The GCM specification (McGrew and Viega), test cases 1-4 (AES-128).
    {AeadAlgorithm::kAes128Gcm, "00000000000000000000000000000000", "000000000000000000000000", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {AeadAlgorithm::kAes128Gcm, "00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"},
    {AeadAlgorithm::kAes128Gcm, "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "", kGcmPlain,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0a"
     "ac973d58e091473f5985"
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {AeadAlgorithm::kAes128Gcm, "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2", kGcmPlain60,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0a"
     "ac973d58e091"
     "5bc94fbc3221a5db94fae95ae7121a47"},
    // Test cases 13-16 (AES-256).
    {AeadAlgorithm::kAes256Gcm, "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {AeadAlgorithm::kAes256Gcm, "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"},
    {AeadAlgorithm::kAes256Gcm, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "", kGcmPlain,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba"
     "7a0abcc9f662898015ad"
     "b094dac5d93471bdec1a502270e3cc6c"},
    {AeadAlgorithm::kAes256Gcm, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", kGcmPlain60,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba"
     "7a0abcc9f662"
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(Aead, NamesAndKeySizes) {
  EXPECT_STREQ(AeadAlgorithmName(AeadAlgorithm::kAes128Gcm), "aes-128-gcm");
  EXPECT_STREQ(AeadAlgorithmName(AeadAlgorithm::kAes256Gcm), "aes-256-gcm");
  EXPECT_STREQ(AeadAlgorithmName(AeadAlgorithm::kChaCha20Poly1305), "chacha20-poly1305");
  EXPECT_EQ(AeadKeySize(AeadAlgorithm::kAes128Gcm), 16u);
  EXPECT_EQ(AeadKeySize(AeadAlgorithm::kAes256Gcm), 32u);
  EXPECT_EQ(AeadKeySize(AeadAlgorithm::kChaCha20Poly1305), 32u);
}

TEST(Aead, KernelListsEndWithMbedTlsAndTheDefaultIsTheFirst) {
  for (AeadAlgorithm algorithm : kAlgorithms) {
    auto kernels = AeadKernels(algorithm);
    ASSERT_FALSE(kernels.empty());
    EXPECT_STREQ(kernels.back(), "mbedtls");
    auto aead = NewAead(algorithm, std::string(AeadKeySize(algorithm), 'k'));
    ASSERT_TRUE(aead.ok()) << aead.status().ToString();
    EXPECT_STREQ((*aead)->kernel(), kernels.front());
    EXPECT_EQ((*aead)->algorithm(), algorithm);
    for (const char* name : kernels) {
      auto named = NewAead(algorithm, std::string(AeadKeySize(algorithm), 'k'), name);
      ASSERT_TRUE(named.ok()) << name;
      EXPECT_STREQ((*named)->kernel(), name);
    }
  }
}

TEST(Aead, RejectsWrongKeySizesAndUnknownKernels) {
  for (AeadAlgorithm algorithm : kAlgorithms) {
    for (std::size_t size : {0, 15, 17, 24, 31, 33}) {
      if (size == AeadKeySize(algorithm)) continue;
      auto aead = NewAead(algorithm, std::string(size, 'k'));
      ASSERT_FALSE(aead.ok());
      EXPECT_EQ(aead.status().code(), Code::kInvalidArgument);
    }
    auto unknown = NewAead(algorithm, std::string(AeadKeySize(algorithm), 'k'), "no-such-kernel");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  }
  // A kernel of the other family is not one of this algorithm's.
  EXPECT_FALSE(NewAead(AeadAlgorithm::kChaCha20Poly1305, std::string(32, 'k'), "aesni-pclmul").ok());
  EXPECT_FALSE(NewAead(AeadAlgorithm::kAes128Gcm, std::string(16, 'k'), "avx2").ok());
}

TEST(Aead, KnownAnswersThroughEveryKernel) {
  for (const KnownAnswer& ka : kKnownAnswers) {
    for (const char* kernel : AeadKernels(ka.algorithm)) {
      SCOPED_TRACE(std::string(AeadAlgorithmName(ka.algorithm)) + " " + kernel + " " + ka.sealed);
      auto aead = Make(ka.algorithm, FromHex(ka.key), kernel);
      ASSERT_NE(aead, nullptr);
      Bytes sealed = SealAll(*aead, FromHex(ka.nonce), FromHex(ka.aad), FromHex(ka.plain));
      EXPECT_EQ(testing::Hex(Str(sealed)), ka.sealed);
      Bytes plain;
      ASSERT_TRUE(OpenAll(*aead, FromHex(ka.nonce), FromHex(ka.aad), FromHex(ka.sealed), &plain).ok());
      EXPECT_EQ(testing::Hex(Str(plain)), ka.plain);
    }
  }
}

// All lengths 0..300, then a spread up to 16 KiB + 1.
std::vector<std::size_t> Lengths() {
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n : {383, 384, 385, 511, 512, 513, 1000, 1023, 1024, 1025, 1535, 2047, 2048, 4095, 4096, 4097,
                        8191, 8192, 8193, 12345, 16383, 16384, 16385}) {
    lengths.push_back(n);
  }
  return lengths;
}

TEST(Aead, EveryKernelAgreesWithMbedTls) {
  std::mt19937_64 rng(8439);
  const auto lengths = Lengths();
  for (AeadAlgorithm algorithm : kAlgorithms) {
    for (const char* kernel : AeadKernels(algorithm)) {
      if (std::strcmp(kernel, "mbedtls") == 0) continue;
      for (std::size_t i = 0; i < lengths.size(); ++i) {
        std::size_t len = lengths[i];
        // AAD of 0..64 bytes, and every seventh case a larger one.
        std::size_t aad_len = i % 7 == 6 ? 65 + rng() % 600 : i % 65;
        Bytes key = Random(rng, AeadKeySize(algorithm)), nonce = Random(rng, kAeadNonceSize);
        Bytes aad = Random(rng, aad_len), plain = Random(rng, len);
        auto ours = Make(algorithm, key, kernel);
        auto ref = Make(algorithm, key, "mbedtls");
        ASSERT_NE(ours, nullptr);
        Bytes sealed = SealAll(*ours, nonce, aad, plain);
        ASSERT_EQ(sealed, SealAll(*ref, nonce, aad, plain))
            << AeadAlgorithmName(algorithm) << " " << kernel << " len " << len << " aad " << aad_len;
        Bytes opened;
        ASSERT_TRUE(OpenAll(*ours, nonce, aad, sealed, &opened).ok()) << kernel << " len " << len;
        ASSERT_EQ(opened, plain) << kernel << " len " << len;
      }
    }
  }
}

TEST(Aead, EveryAlignmentInPlaceAndOutOfPlace) {
  std::mt19937_64 rng(5288);
  for (AeadAlgorithm algorithm : kAlgorithms) {
    Bytes key = Random(rng, AeadKeySize(algorithm));
    auto ref = Make(algorithm, key, "mbedtls");
    for (const char* kernel : AeadKernels(algorithm)) {
      auto aead = Make(algorithm, key, kernel);
      for (std::size_t len : {0, 1, 15, 16, 17, 100, 128, 129, 255, 513, 1500}) {
        Bytes nonce = Random(rng, kAeadNonceSize), aad = Random(rng, len % 29), plain = Random(rng, len);
        const Bytes want = SealAll(*ref, nonce, aad, plain);
        std::string_view aad_view(reinterpret_cast<const char*>(aad.data()), aad.size());
        for (std::size_t in_off = 0; in_off < 16; ++in_off) {
          for (std::size_t out_off = 0; out_off < 16; ++out_off) {
            SCOPED_TRACE(std::string(kernel) + " len " + std::to_string(len) + " in+" + std::to_string(in_off) +
                         " out+" + std::to_string(out_off));
            // Out of place, with guard bytes around the output.
            Bytes in_buf(len + 32), out_buf(len + 48, 0x5c), tag(kAeadTagSize);
            Copy(in_buf.data() + in_off, plain.data(), len);
            aead->Seal(nonce.data(), aad_view, in_buf.data() + in_off, len, out_buf.data() + out_off, tag.data());
            ASSERT_TRUE(Same(out_buf.data() + out_off, want.data(), len));
            ASSERT_TRUE(Same(tag.data(), want.data() + len, kAeadTagSize));
            for (std::size_t g = 0; g < out_off; ++g) ASSERT_EQ(out_buf[g], 0x5c);
            for (std::size_t g = out_off + len; g < out_buf.size(); ++g) ASSERT_EQ(out_buf[g], 0x5c);
            Copy(in_buf.data() + in_off, want.data(), len);
            std::fill(out_buf.begin(), out_buf.end(), 0x5c);
            ASSERT_TRUE(aead->Open(nonce.data(), aad_view, in_buf.data() + in_off, len, tag.data(),
                                   out_buf.data() + out_off)
                            .ok());
            ASSERT_TRUE(Same(out_buf.data() + out_off, plain.data(), len));
            for (std::size_t g = out_off + len; g < out_buf.size(); ++g) ASSERT_EQ(out_buf[g], 0x5c);
            if (in_off != out_off) continue;
            // In place.
            Copy(in_buf.data() + in_off, plain.data(), len);
            aead->Seal(nonce.data(), aad_view, in_buf.data() + in_off, len, in_buf.data() + in_off, tag.data());
            ASSERT_TRUE(Same(in_buf.data() + in_off, want.data(), len));
            ASSERT_TRUE(Same(tag.data(), want.data() + len, kAeadTagSize));
            ASSERT_TRUE(aead->Open(nonce.data(), aad_view, in_buf.data() + in_off, len, tag.data(),
                                   in_buf.data() + in_off)
                            .ok());
            ASSERT_TRUE(Same(in_buf.data() + in_off, plain.data(), len));
          }
        }
      }
    }
  }
}

// Opens `sealed` (ciphertext then tag) out of place and in place, expecting
// Integrity and an all-zero output.
void ExpectRejected(const Aead& aead, const Bytes& nonce, const Bytes& aad, const Bytes& sealed,
                    const std::string& what) {
  SCOPED_TRACE(std::string(aead.kernel()) + ": " + what);
  Bytes plain;
  Status st = OpenAll(aead, nonce, aad, sealed, &plain);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIntegrity);
  EXPECT_TRUE(AllZero(plain.data(), plain.size()));
  Bytes in_place = sealed;
  std::size_t len = sealed.size() - kAeadTagSize;
  st = aead.Open(nonce.data(), std::string_view(reinterpret_cast<const char*>(aad.data()), aad.size()),
                 in_place.data(), len, sealed.data() + len, in_place.data());
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(AllZero(in_place.data(), len));
}

TEST(Aead, ForgeriesAreRejectedWithTheOutputZeroed) {
  std::mt19937_64 rng(7905);
  for (AeadAlgorithm algorithm : kAlgorithms) {
    for (const char* kernel : AeadKernels(algorithm)) {
      for (std::size_t len : {0, 1, 16, 33, 200, 1024, 16385}) {
        Bytes key = Random(rng, AeadKeySize(algorithm)), nonce = Random(rng, kAeadNonceSize);
        Bytes aad = Random(rng, 13), plain = Random(rng, len);
        auto aead = Make(algorithm, key, kernel);
        const Bytes sealed = SealAll(*aead, nonce, aad, plain);
        std::string at = " (len " + std::to_string(len) + ")";
        // Every bit of the tag, and bits spread over the ciphertext.
        for (std::size_t bit = 0; bit < 8 * kAeadTagSize; ++bit) {
          Bytes bad = sealed;
          bad[len + bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
          ExpectRejected(*aead, nonce, aad, bad, "tag bit " + std::to_string(bit) + at);
        }
        for (std::size_t k = 0; k < 24 && len > 0; ++k) {
          Bytes bad = sealed;
          std::size_t pos = k < 8 ? k * len / 8 : rng() % len;
          bad[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          ExpectRejected(*aead, nonce, aad, bad, "ciphertext byte " + std::to_string(pos) + at);
        }
        for (std::size_t pos = 0; pos < aad.size(); ++pos) {
          Bytes bad_aad = aad;
          bad_aad[pos] ^= 0x80;
          ExpectRejected(*aead, nonce, bad_aad, sealed, "AAD byte " + std::to_string(pos) + at);
        }
        ExpectRejected(*aead, nonce, Bytes(aad.begin(), aad.end() - 1), sealed, "AAD shortened" + at);
        for (std::size_t pos = 0; pos < kAeadNonceSize; ++pos) {
          Bytes bad_nonce = nonce;
          bad_nonce[pos] ^= 0x01;
          ExpectRejected(*aead, bad_nonce, aad, sealed, "nonce byte " + std::to_string(pos) + at);
        }
        Bytes wrong_tag = sealed;
        for (std::size_t i = 0; i < kAeadTagSize; ++i) wrong_tag[len + i] = 0;
        ExpectRejected(*aead, nonce, aad, wrong_tag, "zero tag" + at);
        if (len > 0) {
          // The record cut short by a byte: the ciphertext ends early, the tag is the same.
          Bytes truncated(sealed.begin(), sealed.begin() + (len - 1));
          truncated.insert(truncated.end(), sealed.end() - kAeadTagSize, sealed.end());
          ExpectRejected(*aead, nonce, aad, truncated, "truncated" + at);
        }
        Bytes extended(sealed.begin(), sealed.begin() + len);
        extended.push_back(0);
        extended.insert(extended.end(), sealed.end() - kAeadTagSize, sealed.end());
        ExpectRejected(*aead, nonce, aad, extended, "extended" + at);
        Bytes other_key = key;
        other_key[0] ^= 1;
        ExpectRejected(*Make(algorithm, other_key, kernel), nonce, aad, sealed, "other key" + at);
      }
    }
  }
}

TEST(Aead, OneObjectServesSeveralThreads) {
  std::mt19937_64 rng(1);
  for (AeadAlgorithm algorithm : kAlgorithms) {
    for (const char* kernel : AeadKernels(algorithm)) {
      auto aead = Make(algorithm, Random(rng, AeadKeySize(algorithm)), kernel);
      constexpr int kThreads = 4, kRecords = 16;
      std::vector<Bytes> nonces, plains, want;
      for (int i = 0; i < kThreads * kRecords; ++i) {
        nonces.push_back(Random(rng, kAeadNonceSize));
        plains.push_back(Random(rng, 64 + 61 * static_cast<std::size_t>(i)));
        want.push_back(SealAll(*aead, nonces.back(), Bytes(13, 7), plains.back()));
      }
      std::vector<int> failures(kThreads, 0);
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          for (int r = 0; r < 3; ++r) {
            for (int i = t; i < kThreads * kRecords; i += kThreads) {
              Bytes opened;
              if (SealAll(*aead, nonces[i], Bytes(13, 7), plains[i]) != want[i]) ++failures[t];
              if (!OpenAll(*aead, nonces[i], Bytes(13, 7), want[i], &opened).ok() || opened != plains[i]) {
                ++failures[t];
              }
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << kernel << " thread " << t;
    }
  }
}

// Keys with r = 1 or 2 and s = 0 or all ones make h land exactly where the
// final subtraction of p and the carries happen (RFC 8439 Appendix A.3's
// test vectors 5-9 are of this kind); random ones and the largest clamped r
// cover the rest.
TEST(Aead, Poly1305AgreesWithMbedTlsAtTheEdges) {
  std::mt19937_64 rng(1305);
  std::vector<Bytes> keys;
  for (std::uint8_t r : {1, 2, 3}) {
    for (std::uint8_t s : {0x00, 0xff}) {
      Bytes key(32, 0);
      key[0] = r;
      std::fill(key.begin() + 16, key.end(), s);
      keys.push_back(key);
    }
  }
  keys.push_back(Bytes(32, 0xff));  // the largest r after clamping
  for (int i = 0; i < 8; ++i) keys.push_back(Random(rng, 32));
  std::vector<Bytes> messages;
  for (std::size_t blocks : {1, 2, 3, 4, 5, 8, 33}) {
    messages.push_back(Bytes(16 * blocks, 0xff));
    messages.push_back(Bytes(16 * blocks, 0x00));
    Bytes fb(16 * blocks, 0xfe);
    fb[0] = 0xfb;
    messages.push_back(fb);
    Bytes edge(16 * blocks, 0xff);
    edge[0] = 0xfd;  // with r = 2 and one block: h = 2 (2^129 - 3) = 2^130 - 6, just below p
    messages.push_back(edge);
    messages.push_back(Random(rng, 16 * blocks));
  }
  for (const Bytes& key : keys) {
    for (const Bytes& msg : messages) {
      std::uint8_t ours[16], ref[16];
      aead_internal::TEST_Poly1305Blocks(key.data(), msg.data(), msg.size() / 16, ours);
      ASSERT_EQ(mbedtls_poly1305_mac(key.data(), msg.data(), msg.size(), ref), 0);
      ASSERT_EQ(testing::Hex(std::string(ours, ours + 16)), testing::Hex(std::string(ref, ref + 16)))
          << "key " << testing::Hex(Str(key)) << " message " << testing::Hex(Str(msg));
    }
  }
}

// True if this CPU and OS run AVX2 and AVX-512 F, VL and BW (and IFMA if
// `ifma`), as the compiler's runtime decides it from CPUID and XCR0,
// independently of the kernels' own checks.
bool CpuHasAvx512([[maybe_unused]] bool ifma) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         (!ifma || __builtin_cpu_supports("avx512ifma"));
#else
  return false;
#endif
}

bool CpuHasAvx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

bool Listed(AeadAlgorithm algorithm, const char* kernel) {
  for (const char* name : AeadKernels(algorithm)) {
    if (std::strcmp(name, kernel) == 0) return true;
  }
  return false;
}

// The x86-64 ChaCha20-Poly1305 kernels are there exactly when the CPU has
// what they need (none is skipped silently), and the fastest is the
// default: "avx512" (AVX-512 F, VL, BW and IFMA) before "avx2".
TEST(Aead, TheX86ChaChaKernelsAreThereWhenTheCpuHasThem) {
  const bool avx2 = CpuHasAvx2(), avx512 = CpuHasAvx512(true);
  EXPECT_EQ(Listed(AeadAlgorithm::kChaCha20Poly1305, "avx2"), avx2);
  EXPECT_EQ(Listed(AeadAlgorithm::kChaCha20Poly1305, "avx512"), avx512);
  EXPECT_EQ(aead_internal::ChaChaAvx512Available(), CpuHasAvx512(false));
  EXPECT_EQ(aead_internal::Poly1305IfmaAvailable(), avx512);
  auto aead = NewAead(AeadAlgorithm::kChaCha20Poly1305, std::string(32, 'k'));
  ASSERT_TRUE(aead.ok());
  EXPECT_STREQ((*aead)->kernel(), avx512 ? "avx512" : avx2 ? "avx2" : AeadKernels(AeadAlgorithm::kChaCha20Poly1305)[0]);
  // The AES-GCM family's kernel names are not ChaCha20-Poly1305's.
  EXPECT_FALSE(NewAead(AeadAlgorithm::kAes128Gcm, std::string(16, 'k'), "avx512").ok());
}

// Each vector ChaCha20 against mbedTLS's, called directly: every length
// from 0 to 2,100 bytes (every tail of the sixteen- and eight-block steps),
// longer ones, block counters that wrap past 2^32 inside the message (as
// RFC 8439's 32-bit counter does), every alignment of input and output, in
// place, and nothing written past the end.
TEST(Aead, VectorChaCha20AgreesWithMbedTls) {
  struct Impl {
    const char* name;
    bool available;
    aead_internal::ChaChaXorFn fn;
  };
  const Impl impls[] = {{"avx512", aead_internal::ChaChaAvx512Available(), aead_internal::ChaChaXorAvx512},
                        {"avx2", aead_internal::ChaChaAvx2Available(), aead_internal::ChaChaXorAvx2}};
  EXPECT_EQ(impls[0].available, CpuHasAvx512(false));
  EXPECT_EQ(impls[1].available, CpuHasAvx2());
  std::mt19937_64 rng(20);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 2100; ++n) lengths.push_back(n);
  for (std::size_t n : {4095, 4096, 4097, 16383, 16384, 16385, 65536 + 511}) lengths.push_back(n);
  int compared = 0;
  for (const Impl& impl : impls) {
    if (!impl.available) continue;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      const std::size_t len = lengths[i];
      Bytes key = Random(rng, 32), nonce = Random(rng, 12), plain = Random(rng, len);
      std::uint32_t counter = i % 3 == 0 ? static_cast<std::uint32_t>(rng())
                              : i % 3 == 1 ? 0xffffffffu - static_cast<std::uint32_t>(rng() % 40)
                                           : static_cast<std::uint32_t>(i % 5);
      Bytes want(len);
      ASSERT_EQ(mbedtls_chacha20_crypt(key.data(), nonce.data(), counter, len, plain.data(), want.data()), 0);
      std::uint32_t k[8], n[3];
      for (int w = 0; w < 8; ++w) std::memcpy(&k[w], key.data() + 4 * w, 4);  // the test runs little-endian
      for (int w = 0; w < 3; ++w) std::memcpy(&n[w], nonce.data() + 4 * w, 4);
      const std::size_t in_off = i % 64, out_off = (i / 64) % 64;
      Bytes in_buf(len + 64), out_buf(len + 128, 0x5c);
      Copy(in_buf.data() + in_off, plain.data(), len);
      impl.fn(k, n, counter, in_buf.data() + in_off, out_buf.data() + out_off, len);
      ASSERT_TRUE(Same(out_buf.data() + out_off, want.data(), len))
          << impl.name << " len " << len << " counter " << counter;
      for (std::size_t g = 0; g < out_off; ++g) ASSERT_EQ(out_buf[g], 0x5c) << impl.name << " len " << len;
      for (std::size_t g = out_off + len; g < out_buf.size(); ++g) {
        ASSERT_EQ(out_buf[g], 0x5c) << impl.name << " len " << len;
      }
      impl.fn(k, n, counter, in_buf.data() + in_off, in_buf.data() + in_off, len);
      ASSERT_TRUE(Same(in_buf.data() + in_off, want.data(), len)) << impl.name << " in place, len " << len;
      ++compared;
    }
  }
  EXPECT_EQ(compared, static_cast<int>(lengths.size()) * ((impls[0].available ? 1 : 0) + (impls[1].available ? 1 : 0)));
}

// The AVX-512 start of a message (block 0, the Poly1305 key, made beside
// blocks 1-16) against mbedTLS's key stream from counter 0: every length
// 0..1,024, input and output at offsets 0..63, in place, nothing written
// past the end.
TEST(Aead, ChaChaStartAgreesWithMbedTls) {
  const bool available = aead_internal::ChaChaAvx512Available();
  ASSERT_EQ(available, CpuHasAvx512(false));
  if (!available) {
    std::printf("no AVX-512 on this CPU: the AVX-512 start was not compared\n");
    return;
  }
  std::mt19937_64 rng(64);
  for (std::size_t len = 0; len <= aead_internal::kChaChaStartBytes; ++len) {
    Bytes key = Random(rng, 32), nonce = Random(rng, 12), plain = Random(rng, len);
    Bytes padded(64 + len, 0), want(64 + len);
    Copy(padded.data() + 64, plain.data(), len);
    ASSERT_EQ(mbedtls_chacha20_crypt(key.data(), nonce.data(), 0, padded.size(), padded.data(), want.data()), 0);
    std::uint32_t k[8], n[3];
    for (int w = 0; w < 8; ++w) std::memcpy(&k[w], key.data() + 4 * w, 4);
    for (int w = 0; w < 3; ++w) std::memcpy(&n[w], nonce.data() + 4 * w, 4);
    const std::size_t in_off = len % 64, out_off = (len * 7) % 64;
    Bytes in_buf(len + 64), out_buf(len + 128, 0x5c), block0(64);
    Copy(in_buf.data() + in_off, plain.data(), len);
    aead_internal::ChaChaStartAvx512(k, n, block0.data(), in_buf.data() + in_off, out_buf.data() + out_off, len);
    ASSERT_EQ(block0, Bytes(want.begin(), want.begin() + 64)) << "len " << len;
    ASSERT_TRUE(Same(out_buf.data() + out_off, want.data() + 64, len)) << "len " << len;
    for (std::size_t g = 0; g < out_off; ++g) ASSERT_EQ(out_buf[g], 0x5c) << "len " << len;
    for (std::size_t g = out_off + len; g < out_buf.size(); ++g) ASSERT_EQ(out_buf[g], 0x5c) << "len " << len;
    aead_internal::ChaChaStartAvx512(k, n, block0.data(), in_buf.data() + in_off, in_buf.data() + in_off, len);
    ASSERT_TRUE(Same(in_buf.data() + in_off, want.data() + 64, len)) << "in place, len " << len;
  }
}

// The vector Poly1305s give the scalar one's tag (and mbedTLS's) for any
// number of blocks and any split of the message into calls: random keys and
// the edge keys above, messages of random bytes, all ones and all zeros
// (the largest and smallest limbs), 0 to 700 blocks in up to six calls
// (calls of fewer than 16 blocks go to the scalar code, longer ones to the
// vector loop and its scalar tail). On an x86-64 CPU with AVX2 "avx2" must
// be there, and "ifma" on one with AVX-512 F, VL, BW and IFMA.
TEST(Aead, VectorPoly1305AgreesWithTheScalarOneOnSplitUpdates) {
  const bool want_avx2 = CpuHasAvx2(), want_ifma = CpuHasAvx512(true);
  std::uint8_t probe[32] = {}, probe_tag[16];
  const std::size_t one = 0;
  ASSERT_EQ(aead_internal::TEST_Poly1305Split("avx2", probe, probe, &one, 1, probe_tag), want_avx2);
  ASSERT_EQ(aead_internal::TEST_Poly1305Split("ifma", probe, probe, &one, 1, probe_tag), want_ifma);
  ASSERT_FALSE(aead_internal::TEST_Poly1305Split("no-such", probe, probe, &one, 1, probe_tag));
  std::vector<const char*> impls;
  if (want_avx2) impls.push_back("avx2");
  if (want_ifma) impls.push_back("ifma");
  if (impls.empty()) {
    std::printf("no vector Poly1305 on this CPU: only the scalar one was compared\n");
  }
  std::mt19937_64 rng(2605);
  int compared = 0;
  for (int iter = 0; iter < 600; ++iter) {
    Bytes key = Random(rng, 32);
    if (iter % 10 == 1) key = Bytes(32, 0xff);
    if (iter % 10 == 2) {
      key = Bytes(32, 0);
      key[0] = static_cast<std::uint8_t>(1 + iter % 3);
    }
    std::size_t blocks = iter < 100 ? static_cast<std::size_t>(iter) : rng() % 701;
    Bytes msg = Random(rng, 16 * blocks);
    if (iter % 7 == 3) msg.assign(msg.size(), 0xff);
    if (iter % 7 == 4) msg.assign(msg.size(), 0x00);
    std::vector<std::size_t> parts;
    std::size_t left = blocks;
    std::size_t calls = 1 + rng() % 6;
    for (std::size_t c = 1; c < calls && left > 0; ++c) {
      std::size_t n = rng() % (left + 1);
      parts.push_back(n);
      left -= n;
    }
    parts.push_back(left);
    std::uint8_t scalar[16], vec[16], whole[16], ref[16];
    ASSERT_TRUE(aead_internal::TEST_Poly1305Split("scalar", key.data(), msg.data(), parts.data(), parts.size(),
                                                  scalar));
    aead_internal::TEST_Poly1305Blocks(key.data(), msg.data(), blocks, whole);
    ASSERT_EQ(mbedtls_poly1305_mac(key.data(), msg.data(), msg.size(), ref), 0);
    ASSERT_EQ(testing::Hex(std::string(scalar, scalar + 16)), testing::Hex(std::string(ref, ref + 16)));
    ASSERT_EQ(testing::Hex(std::string(whole, whole + 16)), testing::Hex(std::string(ref, ref + 16)));
    for (const char* impl : impls) {
      ASSERT_TRUE(aead_internal::TEST_Poly1305Split(impl, key.data(), msg.data(), parts.data(), parts.size(), vec));
      ASSERT_EQ(testing::Hex(std::string(vec, vec + 16)), testing::Hex(std::string(ref, ref + 16)))
          << impl << ": key " << testing::Hex(Str(key)) << ", " << blocks << " blocks in " << parts.size()
          << " calls";
      ++compared;
    }
  }
  EXPECT_EQ(compared, 600 * static_cast<int>(impls.size()));
}

// The vector Poly1305s where their limbs are largest: every block all ones
// under the largest clamped r, the message ending with one vector step or
// many, so that every carry and the final reduction run at their bounds.
TEST(Aead, VectorPoly1305AtTheLargestLimbs) {
  std::vector<const char*> impls;
  if (CpuHasAvx2()) impls.push_back("avx2");
  if (CpuHasAvx512(true)) impls.push_back("ifma");
  int compared = 0;
  for (const char* impl : impls) {
    for (std::uint8_t s : {0x00, 0xff}) {
      Bytes key(32, 0xff);
      std::fill(key.begin() + 16, key.end(), s);
      for (std::size_t blocks : {16, 17, 31, 32, 33, 48, 64, 1024, 1025}) {
        for (std::uint8_t fill : {0xff, 0xfe, 0x00}) {
          Bytes msg(16 * blocks, fill);
          std::uint8_t vec[16], ref[16];
          ASSERT_TRUE(aead_internal::TEST_Poly1305Split(impl, key.data(), msg.data(), &blocks, 1, vec));
          ASSERT_EQ(mbedtls_poly1305_mac(key.data(), msg.data(), msg.size(), ref), 0);
          ASSERT_EQ(testing::Hex(std::string(vec, vec + 16)), testing::Hex(std::string(ref, ref + 16)))
              << impl << ": " << blocks << " blocks of " << int{fill};
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 54 * static_cast<int>(impls.size()));
}

}  // namespace
}  // namespace cairn::crypto
