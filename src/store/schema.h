// THE store's on-disk layout: named LMDB databases, key layouts and value
// encodings (big-endian integers, so keys sort numerically). docs/store.md
// mirrors this file; change both together and bump kFormat on any change an
// older cairn could misread. Any thread (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/store/store.h"

namespace cairn::store::schema {

inline constexpr std::uint32_t kFormat = 1;

// Mutable share data is kept in chunks of this many bytes (key: slot, chunk
// index), so a write or a ranged read touches only the chunks involved. One
// chunk plus LMDB's page header fills exactly four 4 KiB overflow pages.
inline constexpr std::uint64_t kMutableChunk = 16384 - 16;
// Written ranges an upload may have before its writes are refused (a client
// writes contiguous chunks, which merge into one range).
inline constexpr std::size_t kMaxRanges = 1024;
// Corruption advisories kept per share.
inline constexpr std::uint8_t kMaxAdvisories = 16;

// Database names (mdb_dbi_open).
inline constexpr const char* kMetaDb = "meta";            // "format", "totals"
inline constexpr const char* kSharesDb = "shares";        // ShareKey -> ShareRecord
inline constexpr const char* kLeasesDb = "leases";        // ShareKey + H(renew) -> LeaseValue
inline constexpr const char* kDataDb = "mdata";           // ShareKey + be32 chunk -> bytes
inline constexpr const char* kLeaseExpiryDb = "lease_expiry";    // be64 time + ShareKey -> ""
inline constexpr const char* kUploadExpiryDb = "upload_expiry";  // be64 time + ShareKey -> ""
inline constexpr const char* kDoomedDb = "doomed";        // be64 file id -> ShareKey (bodies to unlink)
inline constexpr const char* kCorruptDb = "corrupt";      // ShareKey + u8 seq -> reason text

enum class Kind : std::uint8_t { kImmutable = 'I', kMutable = 'M' };

// kind(1) | storage index(16) | be32 share number: 21 bytes.
inline constexpr std::size_t kShareKeyLen = 21;
std::string ShareKey(Kind kind, const StorageIndex& si, ShareNum shnum);
// The 17-byte prefix of every ShareKey of one storage index and kind.
std::string SiPrefix(Kind kind, const StorageIndex& si);
// Parses a ShareKey (the first 21 bytes of `key`); false if malformed.
bool ParseShareKey(std::string_view key, Kind* kind, StorageIndex* si, ShareNum* shnum);

std::string TimeKey(std::uint64_t t, std::string_view share_key);
std::uint64_t TimeOf(std::string_view time_key);
std::string ChunkKey(const StorageIndex& si, ShareNum shnum, std::uint32_t chunk);

enum class State : std::uint8_t { kIncoming = 1, kComplete = 2, kMutable = 3 };

struct ShareRecord {
  State state = State::kIncoming;
  std::uint64_t size = 0;          // immutable: allocated size; mutable: data length
  std::uint64_t file_id = 0;       // immutable: names the body file
  std::uint64_t expiry_time = 0;   // its entry in lease_expiry (complete, mutable) or upload_expiry (incoming)
  std::string secret;              // immutable incoming: H(upload secret); mutable: write enabler
  std::vector<Range> written;      // immutable incoming: merged written ranges, ascending
};
std::string EncodeRecord(const ShareRecord& r);
bool DecodeRecord(std::string_view v, ShareRecord* r);

struct LeaseValue {
  std::string cancel_hash;  // 32 bytes
  std::uint64_t expiry = 0;
};
std::string EncodeLease(const LeaseValue& l);
bool DecodeLease(std::string_view v, LeaseValue* l);

// Totals kept in meta "totals", updated in the transaction that changes
// them, so start-up reads one value instead of walking the shares.
struct Totals {
  std::uint64_t used_bytes = 0;      // complete immutable sizes + mutable lengths
  std::uint64_t incoming_bytes = 0;  // allocated sizes of uploads in progress
  std::uint64_t shares = 0;          // complete immutable + mutable shares
  std::uint64_t next_file_id = 1;
};
std::string EncodeTotals(const Totals& t);
bool DecodeTotals(std::string_view v, Totals* t);

// SHA-256 of a secret: lease and upload secrets are stored hashed, as Tahoe
// (container v2) does, and compared by hashing the candidate.
std::string HashSecret(std::string_view secret);
// Constant-time equality of two byte strings (length is not secret).
bool SecretEquals(std::string_view a, std::string_view b);

void PutBe32(std::string* out, std::uint32_t v);
void PutBe64(std::string* out, std::uint64_t v);
std::uint32_t GetBe32(const unsigned char* p);
std::uint64_t GetBe64(const unsigned char* p);

}  // namespace cairn::store::schema
