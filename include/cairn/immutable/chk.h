// CHK encoding exactly as Tahoe-LAFS does it (tahoe-protocol.md 5.1-5.4):
// AES-128-CTR over the whole file, one segment at a time through zfec into N
// blocks, the crypttext, block and share hash trees, the URI extension block
// (UEB), and each share's byte layout. One segment is in memory at a time;
// what is kept across segments is 32 bytes per segment per share (the block
// hashes) and per segment (the crypttext segment hashes).
//
// The convergent key needs the whole plaintext before encryption starts:
// callers hash the file first (caps::ConvergentKeyHasher), then encode it in
// a second pass. Self-contained objects: one thread at a time; Encode is
// CPU work (the daemon runs it off the loop).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/status.h"

namespace cairn::immutable {

// Tahoe-LAFS 1.19+'s maximum segment size (the segment size enters the
// convergent key: another default would never deduplicate with stock clients).
inline constexpr std::uint64_t kDefaultMaxSegmentSize = 1 << 20;

struct ChkParams {
  std::uint32_t k = 3;
  std::uint32_t n = 10;
  std::uint64_t max_segment_size = kDefaultMaxSegmentSize;
};

// Sizes that follow from the parameters and the file size.
struct ChkLayout {
  std::uint64_t file_size = 0;
  std::uint64_t segment_size = 0;      // min(max, size) rounded up to a multiple of k
  std::uint64_t num_segments = 0;      // ceil(size / segment_size)
  std::uint64_t tail_size = 0;         // bytes in the last segment
  std::uint64_t padded_tail_size = 0;  // tail rounded up to a multiple of k
  std::uint64_t block_size = 0;        // segment_size / k
  std::uint64_t tail_block_size = 0;   // padded_tail_size / k
  std::uint64_t data_size = 0;         // a share's blocks, in bytes
  std::uint64_t hash_tree_bytes = 0;   // (2 * next_pow2(num_segments) - 1) * 32
  std::uint64_t share_hash_count = 0;  // log2(next_pow2(N)) + 1
  bool v2 = false;                     // 64-bit share header (a field passes 2^32)
  std::uint64_t header_size = 0;       // 36 (v1) or 68 (v2)

  // Offsets in a share.
  std::uint64_t o_plaintext_hash_tree() const { return header_size + data_size; }
  std::uint64_t o_crypttext_hash_tree() const { return o_plaintext_hash_tree() + hash_tree_bytes; }
  std::uint64_t o_block_hashes() const { return o_crypttext_hash_tree() + hash_tree_bytes; }
  std::uint64_t o_share_hashes() const { return o_block_hashes() + hash_tree_bytes; }
  std::uint64_t o_uri_extension() const { return o_share_hashes() + share_hash_count * (2 + 32); }
};
Result<ChkLayout> ComputeChkLayout(const ChkParams& params, std::uint64_t file_size);

class ChkEncoder {
 public:
  // `key` is the 16-byte AES key (convergent or random). InvalidArgument on
  // bad parameters (1 <= k <= n <= 256) or a file of LIT size (<= 55 bytes).
  static Result<ChkEncoder> Create(std::string_view key, const ChkParams& params, std::uint64_t file_size);
  ~ChkEncoder();
  ChkEncoder(ChkEncoder&&) noexcept;
  ChkEncoder& operator=(ChkEncoder&&) noexcept;

  const ChkLayout& layout() const;
  const std::string& storage_index() const;

  // The bytes a share holds before its blocks (the header). Known before
  // encoding: the header holds only sizes and offsets.
  std::string ShareHeader() const;
  // allocated-size for the GBS allocate: the whole share's length.
  std::uint64_t ShareSize() const;

  // Encrypts and encodes the next segment: `plaintext` is segment_size bytes
  // (tail_size for the last one). Returns the N blocks, block i for share i.
  Result<std::vector<std::string>> EncodeSegment(std::string plaintext);

  // After the last segment: builds the trees and the UEB. Then ShareTrailer
  // and Cap are available.
  Status Finish();
  // Everything a share holds after its blocks: plaintext hash tree area
  // (zeros), crypttext hash tree, the share's block hash tree, its share
  // hash chain, the UEB length and the UEB. REQUIRES: Finish() succeeded.
  std::string ShareTrailer(std::uint32_t share) const;
  const std::string& uri_extension() const;
  caps::Cap Cap() const;

 private:
  struct State;
  explicit ChkEncoder(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// The cap of a file of any size held in memory (LIT for 55 bytes or less),
// with the convergent key from `convergence` and `params`: what
// `cairn debug chk-cap` prints. Bounded by the data given, not streaming.
Result<caps::Cap> ChkCapOfBytes(std::string_view data, std::string_view convergence, const ChkParams& params);

}  // namespace cairn::immutable
