// Reading CHK shares as Tahoe-LAFS writes them (tahoe-protocol.md 5.3-5.5):
// the share header, the URI extension block checked against the cap, each
// share's block hash tree and share hash chain checked against the UEB's
// share root, each block against its share's tree, the crypttext hash tree
// against the UEB, and segments decoded from any k verified blocks, checked
// against their crypttext hash, and decrypted. Nothing unverified reaches the
// caller. Self-contained values: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/status.h"

namespace cairn::immutable {

// The offsets of a share, from its first 36 (v1) or 68 (v2) bytes.
struct ChkShareHeader {
  std::uint32_t version = 0;
  std::uint64_t block_size = 0;
  std::uint64_t data_size = 0;
  std::uint64_t o_data = 0;
  std::uint64_t o_plaintext_hash_tree = 0;
  std::uint64_t o_crypttext_hash_tree = 0;
  std::uint64_t o_block_hashes = 0;
  std::uint64_t o_share_hashes = 0;
  std::uint64_t o_uri_extension = 0;
  std::uint64_t ueb_length_size() const { return version == 1 ? 4 : 8; }
};
inline constexpr std::size_t kChkHeaderMaxSize = 68;
// InvalidArgument on an unknown version, a short header or offsets out of order.
Result<ChkShareHeader> ParseChkShareHeader(std::string_view bytes);

// The fields of a URI extension block.
struct ChkUeb {
  std::uint64_t segment_size = 0;
  std::uint64_t num_segments = 0;
  std::uint64_t size = 0;
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t tail_padded_size = 0;
  std::string crypttext_hash;
  std::string crypttext_root_hash;
  std::string share_root_hash;
};
// Integrity if the UEB's hash is not the cap's or it disagrees with the
// cap's k, N and size; InvalidArgument if it is malformed.
Result<ChkUeb> ParseChkUeb(std::string_view ueb, const caps::Cap& cap);

class ChkReader {
 public:
  // `ueb` is the URI extension block as read from any share.
  static Result<ChkReader> Create(const caps::Cap& cap, std::string_view ueb);
  ~ChkReader();
  ChkReader(ChkReader&&) noexcept;
  ChkReader& operator=(ChkReader&&) noexcept;

  const ChkUeb& ueb() const;
  // Bytes of share `shnum`'s block for segment `seg` (the tail is shorter).
  std::uint64_t BlockSize(std::uint64_t seg) const;

  // Checks a share's hash areas: its block hash tree (flattened) and its
  // share hash chain (the bytes between o_share_hashes and o_uri_extension)
  // against the UEB's share root. Integrity if they do not verify.
  Status AcceptShareHashes(std::uint32_t shnum, std::string_view block_hash_tree, std::string_view share_hashes);
  // Checks the crypttext hash tree (from any share) against the UEB.
  Status AcceptCrypttextTree(std::string_view crypttext_hash_tree);
  // Integrity unless `block` is share `shnum`'s block `seg` (its share's
  // hashes must have been accepted).
  Status VerifyBlock(std::uint32_t shnum, std::uint64_t seg, std::string_view block) const;
  // VerifyBlock of each of segment `seg`'s blocks (share number -> block),
  // hashed two at a time. On failure, *bad is the first bad block's share.
  Status VerifyBlocks(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks, std::uint32_t* bad) const;
  // The plaintext of segment `seg` from k verified blocks (share number ->
  // block). REQUIRES: AcceptCrypttextTree succeeded. Integrity if the decoded
  // ciphertext does not match its segment hash.
  Result<std::string> DecodeSegment(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks) const;

 private:
  struct State;
  explicit ChkReader(std::unique_ptr<State> s);
  // The block hash share `shnum`'s block `seg` must have, once its size is
  // checked. FailedPrecondition or Integrity as VerifyBlock.
  Result<const std::string*> ExpectedBlockHash(std::uint32_t shnum, std::uint64_t seg, std::string_view block) const;
  std::unique_ptr<State> s_;
};

}  // namespace cairn::immutable
