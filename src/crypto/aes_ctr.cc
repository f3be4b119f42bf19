// AES-128-CTR with a zero initial counter: AES-NI eight blocks at a time
// where the CPU has it (crypto/aes_ni.h), else mbedTLS's AES one block at a
// time (the same call in 2.28 and 3.6). The object tracks the next counter
// block and the unused tail of the last key-stream block.
#include "cairn/crypto/aes_ctr.h"

#include <mbedtls/aes.h>
#include <mbedtls/platform_util.h>

#include <cstring>

#include "crypto/aes_ni.h"

namespace cairn::crypto {
namespace {

bool UseAesNi() {
  static const bool ni = AesNiAvailable();
  return ni;
}

}  // namespace

struct AesCtr::State {
  mbedtls_aes_context aes;
  bool ni = false;
  std::uint8_t round_keys[176];      // AES-NI's expanded key
  std::uint64_t next_block = 0;      // counter of the next key-stream block
  std::uint8_t stream[16];           // the last key-stream block made
  std::size_t stream_used = 16;      // its bytes already used (16: none left)
  State() { mbedtls_aes_init(&aes); }
  ~State() {
    mbedtls_aes_free(&aes);
    mbedtls_platform_zeroize(round_keys, sizeof round_keys);
    mbedtls_platform_zeroize(stream, sizeof stream);
  }

  // XORs the key stream of `blocks` whole blocks from next_block into `p`.
  void XorBlocks(std::uint8_t* p, std::size_t blocks) {
    if (ni) {
      AesNiCtrXor(round_keys, next_block, p, blocks);
      next_block += blocks;
      return;
    }
    for (; blocks > 0; --blocks, p += 16) {
      std::uint8_t counter[16] = {};
      for (int i = 0; i < 8; ++i) counter[15 - i] = static_cast<std::uint8_t>(next_block >> (8 * i));
      ++next_block;
      std::uint8_t ks[16];
      mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, counter, ks);
      for (int i = 0; i < 16; ++i) p[i] ^= ks[i];
    }
  }
  // Makes the key-stream block of next_block into `stream`, none of it used.
  void NextStreamBlock() {
    std::memset(stream, 0, sizeof stream);
    XorBlocks(stream, 1);
    stream_used = 0;
  }
};

Result<AesCtr> AesCtr::Create(std::string_view key, bool allow_aesni) {
  if (key.size() != kAesKeySize) {
    return Status::InvalidArgument("an AES key is 16 bytes, not " + std::to_string(key.size()));
  }
  auto state = std::make_unique<State>();
  const auto* k = reinterpret_cast<const unsigned char*>(key.data());
  if (mbedtls_aes_setkey_enc(&state->aes, k, 128) != 0) return Status::Internal("mbedtls_aes_setkey_enc failed");
  state->ni = allow_aesni && UseAesNi();
  if (state->ni) AesNiExpandKey128(k, state->round_keys);
  return AesCtr(std::move(state));
}

AesCtr::AesCtr(std::unique_ptr<State> state) : state_(std::move(state)) {}
AesCtr::~AesCtr() = default;
AesCtr::AesCtr(AesCtr&&) noexcept = default;
AesCtr& AesCtr::operator=(AesCtr&&) noexcept = default;

void AesCtr::Seek(std::uint64_t offset) {
  state_->next_block = offset / 16;
  state_->stream_used = 16;
  if (offset % 16 != 0) {
    state_->NextStreamBlock();
    state_->stream_used = static_cast<std::size_t>(offset % 16);
  }
}

void AesCtr::Apply(char* data, std::size_t len) {
  State& s = *state_;
  auto* p = reinterpret_cast<std::uint8_t*>(data);
  while (len > 0 && s.stream_used < 16) {
    *p++ ^= s.stream[s.stream_used++];
    --len;
  }
  if (len >= 16) {
    s.XorBlocks(p, len / 16);
    p += len / 16 * 16;
    len %= 16;
  }
  if (len > 0) {
    s.NextStreamBlock();
    for (std::size_t i = 0; i < len; ++i) p[i] ^= s.stream[s.stream_used++];
  }
}

Result<std::string> AesCtrTransform(std::string_view key, std::string_view data) {
  CAIRN_TRY_ASSIGN(AesCtr ctr, AesCtr::Create(key));
  std::string out(data);
  ctr.Apply(out);
  return out;
}

}  // namespace cairn::crypto
