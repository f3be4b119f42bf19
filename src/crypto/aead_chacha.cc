// ChaCha20-Poly1305 (RFC 8439 §2.8) around a vector ChaCha20 (see
// aead_kernels.h). Any thread: the object holds only the key.
//
// A message is done in chunks of kChunk bytes: each chunk is encrypted and
// then authenticated (sealing), or authenticated and then decrypted
// (opening, so in == out works), while it is still in the L1 cache, with
// the kernel's vector Poly1305 where it has one; a kernel with a
// ChaChaStartFn does the first 1 KiB and block 0 (the Poly1305 key) in one
// call, the rest in chunks. 4 KiB chunks measured
// best with "avx512" (16 KiB records: about 10 % faster than 1 KiB chunks,
// whose every call paid the vector Poly1305's set-up and final sum; 8 and
// 16 KiB no faster) and no worse with "avx2".
// Poly1305 here uses two 64-bit limbs and a small third one with 128-bit
// products where the compiler has unsigned __int128 (64-bit CPUs), and
// mbedTLS's Poly1305 elsewhere.
#include <mbedtls/platform_util.h>
#include <mbedtls/poly1305.h>

#include <cstring>

#include "crypto/aead_kernels.h"
#include "crypto/aead_poly1305.h"

namespace cairn::crypto::aead_internal {
namespace {

constexpr std::size_t kChunk = 4096;  // a multiple of the 64-byte ChaCha20 block

std::uint32_t Load32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
void Store32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t Rotl(std::uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }

// On four words held in locals, so that the whole block stays in registers
// (through an array indexed by the word numbers the compiler kept it in
// memory, and this block cost as much as 16 vector blocks of a 1 KiB
// record).
inline __attribute__((always_inline)) void QuarterRound(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c,
                                                        std::uint32_t& d) {
  a += b;
  d = Rotl(d ^ a, 16);
  c += d;
  b = Rotl(b ^ c, 12);
  a += b;
  d = Rotl(d ^ a, 8);
  c += d;
  b = Rotl(b ^ c, 7);
}

// One ChaCha20 block (RFC 8439 §2.3), for the Poly1305 key.
void ChaChaBlock(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                 std::uint8_t out[64]) {
  const std::uint32_t state[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key[0],   key[1],
                                   key[2],     key[3],     key[4],     key[5],     key[6],   key[7],
                                   counter,    nonce[0],   nonce[1],   nonce[2]};
  std::uint32_t x0 = state[0], x1 = state[1], x2 = state[2], x3 = state[3], x4 = state[4], x5 = state[5],
                x6 = state[6], x7 = state[7], x8 = state[8], x9 = state[9], x10 = state[10], x11 = state[11],
                x12 = state[12], x13 = state[13], x14 = state[14], x15 = state[15];
  for (int i = 0; i < 10; ++i) {
    QuarterRound(x0, x4, x8, x12);
    QuarterRound(x1, x5, x9, x13);
    QuarterRound(x2, x6, x10, x14);
    QuarterRound(x3, x7, x11, x15);
    QuarterRound(x0, x5, x10, x15);
    QuarterRound(x1, x6, x11, x12);
    QuarterRound(x2, x7, x8, x13);
    QuarterRound(x3, x4, x9, x14);
  }
  std::uint32_t x[16] = {x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15};
  for (int i = 0; i < 16; ++i) Store32(out + 4 * i, x[i] + state[i]);
  mbedtls_platform_zeroize(x, sizeof x);
}

#if defined(__SIZEOF_INT128__)

// Ours (crypto/aead_poly1305.h).
class Poly1305 {
 public:
  // `blocks`: a vector Poly1305BlocksFn, or null for the scalar code.
  explicit Poly1305(const std::uint8_t key[32], Poly1305BlocksFn blocks = nullptr) : blocks_(blocks) {
    Poly1305Init(&state_, key);
  }
  ~Poly1305() { mbedtls_platform_zeroize(&state_, sizeof state_); }
  void Blocks(const std::uint8_t* p, std::size_t blocks) {
    if (blocks_ != nullptr) {
      blocks_(&state_, p, blocks);
    } else {
      Poly1305Blocks(&state_, p, blocks);
    }
  }
  void Finish(std::uint8_t tag[16]) { Poly1305Finish(&state_, tag); }

 private:
  Poly1305BlocksFn blocks_;
  Poly1305State state_;
};

#else

// mbedTLS's Poly1305 (the same calls in 2.28 and 3.6).
class Poly1305 {
 public:
  explicit Poly1305(const std::uint8_t key[32], Poly1305BlocksFn = nullptr) {
    mbedtls_poly1305_init(&ctx_);
    mbedtls_poly1305_starts(&ctx_, key);
  }
  ~Poly1305() { mbedtls_poly1305_free(&ctx_); }
  void Blocks(const std::uint8_t* p, std::size_t blocks) { mbedtls_poly1305_update(&ctx_, p, 16 * blocks); }
  void Finish(std::uint8_t tag[16]) { mbedtls_poly1305_finish(&ctx_, tag); }

 private:
  mbedtls_poly1305_context ctx_;
};

#endif

// Authenticates `len` bytes padded with zeros to a whole block.
void PolyPadded(Poly1305& poly, const std::uint8_t* p, std::size_t len) {
  poly.Blocks(p, len / 16);
  if (len % 16 != 0) {
    std::uint8_t last[16] = {};
    std::memcpy(last, p + (len & ~std::size_t{15}), len % 16);
    poly.Blocks(last, 1);
  }
}

class ChaChaPoly final : public Aead {
 public:
  ChaChaPoly(ChaChaXorFn chacha, Poly1305BlocksFn poly, ChaChaStartFn start, const char* kernel,
             const std::uint8_t* key)
      : chacha_(chacha), poly_(poly), start_(start), kernel_(kernel) {
    for (int i = 0; i < 8; ++i) key_[i] = Load32(key + 4 * i);
  }
  ~ChaChaPoly() override { mbedtls_platform_zeroize(key_, sizeof key_); }

  AeadAlgorithm algorithm() const override { return AeadAlgorithm::kChaCha20Poly1305; }
  const char* kernel() const override { return kernel_; }

  void Seal(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
            std::uint8_t* out, std::uint8_t* tag) const override {
    Crypt<true>(nonce, aad, in, len, out, tag);
  }

  Status Open(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
              const std::uint8_t* tag, std::uint8_t* out) const override {
    std::uint8_t computed[kAeadTagSize];
    Crypt<false>(nonce, aad, in, len, out, computed);
    if (!TagsEqual(computed, tag)) {
      if (len > 0) mbedtls_platform_zeroize(out, len);
      return Status::Integrity("AEAD tag mismatch");
    }
    return Status::Ok();
  }

 private:
  template <bool kSeal>
  void Crypt(const std::uint8_t* nonce_bytes, std::string_view aad, const std::uint8_t* in, std::size_t len,
             std::uint8_t* out, std::uint8_t* tag) const {
    const std::uint32_t nonce[3] = {Load32(nonce_bytes), Load32(nonce_bytes + 4), Load32(nonce_bytes + 8)};
    std::uint8_t block0[64];
    std::uint8_t first[kSeal ? 1 : kChaChaStartBytes];  // opening: the start's plaintext
    std::size_t off = 0;  // how much of the message is done
    if (start_ == nullptr) {
      ChaChaBlock(key_, nonce, 0, block0);
    } else if (kSeal) {
      off = len < kChaChaStartBytes ? len : kChaChaStartBytes;
      start_(key_, nonce, block0, in, out, off);
    } else {
      // Opening authenticates the ciphertext before it is decrypted (in
      // may be out): the start decrypts into `first` until then.
      off = len < kChaChaStartBytes ? len : kChaChaStartBytes;
      start_(key_, nonce, block0, in, first, off);
    }
    Poly1305 poly(block0, poly_);  // the first 32 bytes of block 0 are the one-time key
    mbedtls_platform_zeroize(block0, sizeof block0);
    PolyPadded(poly, reinterpret_cast<const std::uint8_t*>(aad.data()), aad.size());
    if (off > 0) {
      PolyPadded(poly, kSeal ? out : in, off);
      if (!kSeal) {
        std::memcpy(out, first, off);
        mbedtls_platform_zeroize(first, off);
      }
    }
    for (; off < len; off += kChunk) {
      std::size_t n = len - off < kChunk ? len - off : kChunk;
      auto counter = static_cast<std::uint32_t>(1 + off / 64);
      if (kSeal) {
        chacha_(key_, nonce, counter, in + off, out + off, n);
        PolyPadded(poly, out + off, n);
      } else {
        PolyPadded(poly, in + off, n);
        chacha_(key_, nonce, counter, in + off, out + off, n);
      }
    }
    std::uint8_t lengths[16];
    for (int i = 0; i < 8; ++i) {
      lengths[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(aad.size()) >> (8 * i));
      lengths[8 + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(len) >> (8 * i));
    }
    poly.Blocks(lengths, 1);
    poly.Finish(tag);
  }

  ChaChaXorFn chacha_;
  Poly1305BlocksFn poly_;
  ChaChaStartFn start_;
  const char* kernel_;
  std::uint32_t key_[8];
};

}  // namespace

void TEST_Poly1305Blocks(const std::uint8_t key[32], const std::uint8_t* blocks, std::size_t n, std::uint8_t tag[16]) {
  Poly1305 poly(key);
  poly.Blocks(blocks, n);
  poly.Finish(tag);
}

bool TEST_Poly1305Split(const char* impl, const std::uint8_t key[32], const std::uint8_t* blocks,
                        const std::size_t* parts, std::size_t nparts, std::uint8_t tag[16]) {
  Poly1305BlocksFn fn = nullptr;
  if (std::strcmp(impl, "avx2") == 0) {
#if defined(__SIZEOF_INT128__)
    if (!Poly1305Avx2Available()) return false;
    fn = Poly1305BlocksAvx2;
#else
    return false;
#endif
  } else if (std::strcmp(impl, "ifma") == 0) {
#if defined(__SIZEOF_INT128__)
    if (!Poly1305IfmaAvailable()) return false;
    fn = Poly1305BlocksIfma;
#else
    return false;
#endif
  } else if (std::strcmp(impl, "scalar") != 0) {
    return false;
  }
  Poly1305 poly(key, fn);
  for (std::size_t i = 0; i < nparts; ++i) {
    poly.Blocks(blocks, parts[i]);
    blocks += 16 * parts[i];
  }
  poly.Finish(tag);
  return true;
}

std::unique_ptr<Aead> NewChaChaPoly(ChaChaXorFn chacha, Poly1305BlocksFn poly, const char* kernel,
                                    const std::uint8_t* key, ChaChaStartFn start) {
  return std::make_unique<ChaChaPoly>(chacha, poly, start, kernel, key);
}

}  // namespace cairn::crypto::aead_internal
