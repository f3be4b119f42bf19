// MDMF mutable-file shares exactly as Tahoe-LAFS lays them out
// (tahoe-protocol.md 3.7, 3.8): segments of next_multiple(131072, k) bytes,
// each encrypted under the data key of its own random salt and zfec-encoded;
// a block's hash covers salt ‖ block; a full block hash tree per share; the
// share hash tree over the N roots; a signed 59-byte prefix; the share data
// at the fixed offset 2167. As with SDMF, the signature is made between
// Encode and Shares, where the caller chooses. Self-contained values: one
// thread at a time. MdmfFormat() (share_format.h) offers the same behind
// the format interface.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/core/status.h"
#include "cairn/mutable/share_format.h"

namespace cairn::mutable_files {

inline constexpr std::uint64_t kMdmfMaxSegmentSize = 131072;
inline constexpr std::size_t kMdmfSignedPrefixSize = 59;
inline constexpr std::size_t kMdmfCheckstringSize = 41;
inline constexpr std::uint64_t kMdmfShareDataOffset = 2167;
inline constexpr std::uint64_t kMdmfPrivateKeyOffset = 123;

// The segment size of every MDMF file with this k (also an empty one).
std::uint64_t MdmfSegmentSize(std::uint32_t k);

// The signed prefix of an MDMF version (kMdmfSignedPrefixSize bytes):
// version 1, `seqnum`, the share hash tree's `root` (32 bytes), k, n, the
// segment size and the file's length; its first kMdmfCheckstringSize bytes
// are the checkstring.
std::string MdmfSignedPrefix(std::uint64_t seqnum, std::string_view root, std::uint32_t k, std::uint32_t n,
                             std::uint64_t segsize, std::uint64_t data_length);

// Where the parts of an MDMF share of a file of `data_length` bytes at k
// lie: segment s is salt ‖ block at SegmentOffset(s); the block hash tree
// (BlockHashTreeNodes() hashes) follows the last block.
struct MdmfGeometry {
  std::uint64_t data_length = 0, segsize = 0, num_segments = 0, tail_size = 0, block_size = 0, tail_block_size = 0;
  std::uint64_t SegmentLength(std::uint64_t s) const;  // plaintext bytes of segment s
  std::uint64_t BlockSize(std::uint64_t s) const;      // block bytes of segment s (without its salt)
  std::uint64_t SegmentOffset(std::uint64_t s) const;  // of its salt, in the share
  std::uint64_t BlockHashTreeOffset() const;
  std::uint64_t BlockHashTreeNodes() const;
};
MdmfGeometry MdmfGeometryOf(std::uint64_t data_length, std::uint32_t k);

// tagged_hash(BLOCK_TAG, salt ‖ block): a block hash tree's leaf.
std::string MdmfBlockHash(std::string_view salt, std::string_view block);

class MdmfEncoding {
 public:
  // As SdmfEncoding::Encode; each segment gets a fresh random salt.
  static Result<MdmfEncoding> Encode(std::string_view readkey, std::string_view pubkey_spki_der,
                                     std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                     std::uint32_t n, std::uint64_t seqnum);
  const std::string& signed_prefix() const { return prefix_; }
  const std::string& root_hash() const { return root_hash_; }
  Result<std::vector<std::string>> Shares(std::string_view signature) const;
  // Share i alone. REQUIRES: i < N.
  Result<std::string> ShareAt(std::uint32_t i, std::string_view signature) const;

 private:
  MdmfEncoding() = default;
  std::uint32_t n_ = 0;
  std::string prefix_;
  std::string root_hash_;
  std::string pubkey_;
  std::string encprivkey_;
  std::vector<std::string> share_data_;                     // per share: salt ‖ block for each segment
  std::vector<std::string> block_trees_;                    // per share: flattened block hash tree
  std::vector<std::map<std::size_t, std::string>> chains_;  // per share
};

struct MdmfShare {
  std::uint64_t seqnum = 0;
  std::string root_hash;
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t segment_size = 0;
  std::uint64_t data_length = 0;
  std::string encprivkey;
  std::map<std::size_t, std::string> share_hash_chain;
  std::string signature;
  std::string pubkey;
  std::vector<std::string> salts;   // per segment
  std::vector<std::string> blocks;  // per segment
  std::vector<std::string> block_hash_tree;  // every node
  std::string signed_prefix;        // bytes [0, 59)

  std::uint64_t num_segments() const;
};

// Parses the 123-byte header (the one place it is parsed: ParseMdmfShare
// and MdmfFormat() use it); `bytes` may end before the share does.
// InvalidArgument (naming the field) on a short or garbled header.
Result<ShareHeader> ParseMdmfHeader(std::string_view bytes);
// Parses a whole share; InvalidArgument as ParseMdmfHeader, or when a part
// lies past the end or the segments do not fit.
Result<MdmfShare> ParseMdmfShare(std::string_view bytes);
// Fingerprint, signature, every block against the block hash tree, and the
// tree's root against the share hash chain and the signed root.
Status VerifyMdmfShare(const MdmfShare& share, std::uint32_t shnum, std::string_view fingerprint);
Result<std::string> DecodeMdmf(const std::map<std::uint32_t, const MdmfShare*>& shares, std::string_view readkey);

}  // namespace cairn::mutable_files
