// AES-128 in CTR mode as Tahoe-LAFS uses it everywhere (the encrypted
// private key, SDMF and MDMF data, CHK files): the initial counter block is
// sixteen zero bytes and the whole block counts up big-endian. Encryption and
// decryption are the same operation. One object is one key stream; it may
// move, not be shared between threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::crypto {

inline constexpr std::size_t kAesKeySize = 16;

class AesCtr {
 public:
  // `key` must be 16 bytes (InvalidArgument otherwise). AES-NI is used where
  // the CPU has it unless `allow_aesni` is false (mbedTLS's AES, as on CPUs
  // without it: for tests and comparisons).
  static Result<AesCtr> Create(std::string_view key, bool allow_aesni = true);
  ~AesCtr();
  AesCtr(AesCtr&&) noexcept;
  AesCtr& operator=(AesCtr&&) noexcept;

  // Moves the key stream to byte `offset` of the stream (for ranged reads).
  void Seek(std::uint64_t offset);
  // XORs the next `len` bytes of the key stream into `data`.
  void Apply(char* data, std::size_t len);
  void Apply(std::string& data) { Apply(data.data(), data.size()); }

 private:
  struct State;
  explicit AesCtr(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// One-shot: the whole of `data` through a fresh key stream from offset 0.
Result<std::string> AesCtrTransform(std::string_view key, std::string_view data);

}  // namespace cairn::crypto
