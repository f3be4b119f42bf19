// AES-128-CTR with a zero initial counter, over mbedTLS's AES (the same call
// in 2.28 and 3.6).
#include "cairn/crypto/aes_ctr.h"

#include <mbedtls/aes.h>

#include <cstring>

namespace cairn::crypto {

struct AesCtr::State {
  mbedtls_aes_context aes;
  unsigned char counter[16];
  unsigned char stream_block[16];
  std::size_t block_offset;  // bytes of stream_block already used, 0..15
  State() { mbedtls_aes_init(&aes); }
  ~State() { mbedtls_aes_free(&aes); }
};

Result<AesCtr> AesCtr::Create(std::string_view key) {
  if (key.size() != kAesKeySize) {
    return Status::InvalidArgument("an AES key is 16 bytes, not " + std::to_string(key.size()));
  }
  auto state = std::make_unique<State>();
  if (mbedtls_aes_setkey_enc(&state->aes, reinterpret_cast<const unsigned char*>(key.data()), 128) != 0) {
    return Status::Internal("mbedtls_aes_setkey_enc failed");
  }
  AesCtr ctr(std::move(state));
  ctr.Seek(0);
  return ctr;
}

AesCtr::AesCtr(std::unique_ptr<State> state) : state_(std::move(state)) {}
AesCtr::~AesCtr() = default;
AesCtr::AesCtr(AesCtr&&) noexcept = default;
AesCtr& AesCtr::operator=(AesCtr&&) noexcept = default;

void AesCtr::Seek(std::uint64_t offset) {
  std::uint64_t block = offset / 16;
  std::memset(state_->counter, 0, sizeof state_->counter);
  for (int i = 15; i >= 8; --i) {
    state_->counter[i] = static_cast<unsigned char>(block & 0xff);
    block >>= 8;
  }
  state_->block_offset = static_cast<std::size_t>(offset % 16);
  if (state_->block_offset != 0) {
    // Produce this block's key stream now; mbedTLS continues from it.
    unsigned char zero[16] = {};
    unsigned char out[16];
    std::size_t nc_off = 0;
    mbedtls_aes_crypt_ctr(&state_->aes, 16, &nc_off, state_->counter, state_->stream_block, zero, out);
    // crypt_ctr advanced the counter past this block; the remaining bytes of
    // stream_block are used first because block_offset is non-zero.
  }
}

void AesCtr::Apply(char* data, std::size_t len) {
  auto* p = reinterpret_cast<unsigned char*>(data);
  // mbedTLS keeps the offset inside the current block in nc_off.
  mbedtls_aes_crypt_ctr(&state_->aes, len, &state_->block_offset, state_->counter, state_->stream_block, p, p);
}

Result<std::string> AesCtrTransform(std::string_view key, std::string_view data) {
  CAIRN_TRY_ASSIGN(AesCtr ctr, AesCtr::Create(key));
  std::string out(data);
  ctr.Apply(out);
  return out;
}

}  // namespace cairn::crypto
