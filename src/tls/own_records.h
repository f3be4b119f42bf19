// cairn's own TLS 1.2 record layer for application data: once mbedTLS has
// finished a handshake, the connection's records are sealed and opened here
// with the negotiated keys (RFC 5246 6.2.3.3, RFC 5288 for AES-GCM, RFC 7905
// for ChaCha20-Poly1305) through the AEAD kernels of crypto/aead.h. mbedTLS
// keeps everything up to and including the Finished messages. Private to
// src/tls. Loop thread only (an OwnRecords is used by one thread; the
// record functions at the end are pure and run on any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/status.h"
#include "cairn/crypto/aead.h"
#include "tls/record_layer.h"

namespace cairn::tls {

class Session;

// One side's view of the negotiated record protection.
struct RecordKeys {
  crypto::AeadAlgorithm algorithm = crypto::AeadAlgorithm::kAes128Gcm;
  std::string write_key, read_key;
  // GCM: the 4-byte implicit salt; ChaCha20-Poly1305: the 12-byte IV.
  std::string write_iv, read_iv;
  // The sequence numbers the next record in each direction carries.
  std::uint64_t write_seq = 0, read_seq = 0;
};

// Record layout constants (RFC 5246 6.2).
inline constexpr std::size_t kRecordHeader = 5;
inline constexpr std::size_t kMaxRecordPlaintext = 16384;
// TLSCiphertext.length may not exceed 2^14 + 2048.
inline constexpr std::size_t kMaxRecordCiphertext = 16384 + 2048;
inline constexpr std::uint8_t kTypeChangeCipherSpec = 20;
inline constexpr std::uint8_t kTypeAlert = 21;
inline constexpr std::uint8_t kTypeHandshake = 22;
inline constexpr std::uint8_t kTypeApplicationData = 23;

// A record layer over `keys`. `unconsumed` is what the peer sent after its
// last handshake message (application data that came with that flight),
// opened first. InvalidArgument for keys of the wrong size.
Result<std::unique_ptr<RecordLayer>> NewOwnRecords(const RecordKeys& keys, std::string_view unconsumed);

// The record layer for a session whose handshake has finished: cairn's own
// when its context wants it (limits.tls_own_records) and the session's keys
// can be exported, else the session's own records (TLS 1.3, another suite).
// Takes over the bytes the handshake did not consume. `session` must
// outlive the result.
std::unique_ptr<RecordLayer> NewRecordLayer(Session& session);

// How many times, in this process, a record layer of cairn's fixed the
// sequence numbers of records to be sealed elsewhere (ReserveSeal): how the
// tests see that large writes were sealed off the loop. Any thread.
std::uint64_t TEST_reserved_seals();
// How many times a record layer of cairn's handed out large incoming records
// to be opened elsewhere (ReserveOpen). Any thread.
std::uint64_t TEST_reserved_opens();

// The protection of one direction: the AEAD with its key, and the IV.
// Sealing or opening one record at a given sequence number is a pure
// function of this, so records can be sealed on several threads at once.
class RecordCipher {
 public:
  static Result<RecordCipher> New(crypto::AeadAlgorithm algorithm, std::string_view key, std::string_view iv);
  // The bytes a record adds to its plaintext: the header, GCM's explicit
  // nonce, the tag.
  std::size_t overhead() const { return kRecordHeader + explicit_nonce_ + crypto::kAeadTagSize; }
  std::size_t explicit_nonce() const { return explicit_nonce_; }
  // Writes the whole record (header, explicit nonce, ciphertext, tag) of
  // `len` plaintext bytes (at most kMaxRecordPlaintext) at `out`, which
  // has room for len + overhead() bytes. `in` may not overlap `out`.
  void Seal(std::uint64_t seq, std::uint8_t type, const std::uint8_t* in, std::size_t len, std::uint8_t* out) const;
  // Opens the body of a record (what follows its header: `body_len` bytes,
  // at least explicit_nonce() + the tag) of type `type` with sequence
  // number `seq`, writing its plaintext (body_len - explicit_nonce() - tag
  // bytes) to `out`. Integrity when the tag does not match; nothing is
  // then left in `out`.
  Status Open(std::uint64_t seq, std::uint8_t type, const std::uint8_t* body, std::size_t body_len,
              std::uint8_t* out) const;
  // Seals `plaintext` into records of at most kMaxRecordPlaintext bytes
  // numbered from `first_seq`, appended to `out`; returns the number of
  // records.
  std::uint64_t SealAll(std::uint64_t first_seq, std::string_view plaintext, std::string* out) const;
  static std::uint64_t RecordsFor(std::size_t len) { return (len + kMaxRecordPlaintext - 1) / kMaxRecordPlaintext; }
  const crypto::Aead& aead() const { return *aead_; }

 private:
  void Nonce(std::uint64_t seq, std::uint8_t nonce[crypto::kAeadNonceSize]) const;
  std::shared_ptr<crypto::Aead> aead_;
  std::uint8_t iv_[crypto::kAeadNonceSize] = {};
  std::size_t explicit_nonce_ = 0;  // 8 for GCM, 0 for ChaCha20-Poly1305
};

}  // namespace cairn::tls
