// The CBOR messages of Great Black Swamp (tahoe-protocol.md 1.3, 1.5), both
// directions: the server decodes requests and encodes responses, the client
// (and tests) the reverse. Encodings are byte-identical to what Tahoe's
// Python side produces with cbor2 (keys in Tahoe's order, shortest forms,
// sets as tag 258). Decoders treat maps as closed (an unknown, duplicate or
// missing key is InvalidArgument, a 400) and enforce the real server's
// bounds. Decoded byte strings are views into the input, which must outlive
// the result. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::gbs {

inline constexpr std::string_view kStorageProtocolV1 = "http://allmydata.org/tahoe/protocols/storage/v1";
inline constexpr std::uint32_t kMaxShareNumber = 255;
inline constexpr std::size_t kMaxTestVectors = 30;  // per share
inline constexpr std::size_t kMaxReadVectors = 30;
// Tahoe's advertised maximum mutable share size (69105 * 10^12).
inline constexpr std::uint64_t kMaxMutableShareSize = 69105000000000000ull;

using ShareNumbers = std::vector<std::uint32_t>;  // sorted, distinct

// GET /storage/v1/version. Every key a CBOR *byte* string, as Tahoe sends.
struct Version {
  std::uint64_t maximum_immutable_share_size = 0;
  std::uint64_t maximum_mutable_share_size = kMaxMutableShareSize;
  std::uint64_t available_space = 0;
  std::string application_version;
};
std::string EncodeVersion(const Version& v);
Result<Version> DecodeVersion(std::string_view body);

// POST /storage/v1/immutable/<si>
struct AllocateRequest {
  ShareNumbers share_numbers;
  std::uint64_t allocated_size = 0;
};
std::string EncodeAllocateRequest(const AllocateRequest& r);
Result<AllocateRequest> DecodeAllocateRequest(std::string_view body);

struct AllocateResponse {
  ShareNumbers already_have;
  ShareNumbers allocated;
};
std::string EncodeAllocateResponse(const AllocateResponse& r);
Result<AllocateResponse> DecodeAllocateResponse(std::string_view body);

// The ranges of an immutable share still to be written (PATCH responses);
// `end` is exclusive.
struct Range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool operator==(const Range&) const = default;
};
std::string EncodeRequired(const std::vector<Range>& required);
Result<std::vector<Range>> DecodeRequired(std::string_view body);

// GET .../shares: a tag-258 set.
std::string EncodeShareSet(const ShareNumbers& shares);
Result<ShareNumbers> DecodeShareSet(std::string_view body);

// POST .../<shnum>/corrupt: {"reason": text of 1..32765 bytes}.
std::string EncodeCorruption(std::string_view reason);
Result<std::string> DecodeCorruption(std::string_view body);

// POST /storage/v1/mutable/<si>/read-test-write
struct TestVector {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::string_view specimen;
};
struct WriteVector {
  std::uint64_t offset = 0;
  std::string_view data;
};
struct ShareTestWrite {
  std::vector<TestVector> test;
  std::vector<WriteVector> write;
  std::optional<std::uint64_t> new_length;
};
struct ReadVector {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};
struct RtwRequest {
  std::map<std::uint32_t, ShareTestWrite> shares;
  std::vector<ReadVector> read;
};
std::string EncodeRtwRequest(const RtwRequest& r);
Result<RtwRequest> DecodeRtwRequest(std::string_view body);

struct RtwResponse {
  bool success = false;
  std::map<std::uint32_t, std::vector<std::string>> data;  // share -> one result per read vector
};
std::string EncodeRtwResponse(const RtwResponse& r);
Result<RtwResponse> DecodeRtwResponse(std::string_view body);

}  // namespace cairn::gbs
