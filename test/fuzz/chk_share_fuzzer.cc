// libFuzzer target: any bytes as one CHK share as a server returns it,
// through the share reader: the header and its offsets, the URI extension
// block found at o_uri_extension (checked against a cap made to match it:
// its hash, and its own k, N and size where a cap could hold them), the
// share's block hash tree and share hash chain, the crypttext hash tree,
// each block of the share, and segment decoding. Checks that an accepted
// header has ordered offsets, that an accepted UEB describes a segment
// geometry that covers the file exactly, and that a decoded segment has
// the segment's length. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cairn/caps/cap.h"
#include "cairn/core/endian.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/tags.h"
#include "cairn/immutable/chk_reader.h"

namespace {

using cairn::immutable::ChkReader;
using cairn::immutable::ChkShareHeader;
using u128 = unsigned __int128;

// A decimal field of the UEB ("name:len:value,"), walked the simple way; 0
// when missing or not a number that fits.
std::uint64_t UebNumber(std::string_view ueb, std::string_view name) {
  while (!ueb.empty()) {
    std::size_t colon = ueb.find(':');
    if (colon == std::string_view::npos) return 0;
    std::string_view key = ueb.substr(0, colon);
    ueb.remove_prefix(colon + 1);
    std::size_t len_end = ueb.find(':');
    if (len_end == std::string_view::npos || len_end == 0 || len_end > 6) return 0;
    std::size_t len = 0;
    for (char c : ueb.substr(0, len_end)) {
      if (c < '0' || c > '9') return 0;
      len = len * 10 + static_cast<std::size_t>(c - '0');
    }
    if (ueb.size() < len_end + 2 + len) return 0;
    std::string_view value = ueb.substr(len_end + 1, len);
    ueb.remove_prefix(len_end + 2 + len);
    if (key != name) continue;
    if (value.empty() || value.size() > 19) return 0;
    std::uint64_t v = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return 0;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
  }
  return 0;
}

// A CHK cap the UEB would belong to; as ParseCap bounds them (1 <= k <= N <= 256).
cairn::caps::Cap CapFor(std::string_view ueb) {
  cairn::caps::Cap cap;
  cap.kind = cairn::caps::CapKind::kChk;
  cap.key = std::string(cairn::caps::kKeySize, '\x5a');
  cap.digest = cairn::crypto::TaggedHash(cairn::crypto::tags::kUriExtension, ueb);
  std::uint64_t k = UebNumber(ueb, "needed_shares"), n = UebNumber(ueb, "total_shares");
  cap.k = k >= 1 && k <= 256 ? static_cast<std::uint32_t>(k) : 1;
  cap.n = n >= cap.k && n <= 256 ? static_cast<std::uint32_t>(n) : cap.k;
  cap.size = UebNumber(ueb, "size");
  return cap;
}

void CheckGeometry(const cairn::immutable::ChkUeb& u, const cairn::caps::Cap& cap) {
  if (u.k != cap.k || u.n != cap.n || u.size != cap.size) __builtin_trap();
  if (u.segment_size == 0 || u.segment_size % u.k != 0) __builtin_trap();
  // The segments cover the file, and the last one holds at least a byte.
  if (static_cast<u128>(u.num_segments) * u.segment_size < u.size) __builtin_trap();
  if (u.num_segments == 0 ? u.size != 0 : static_cast<u128>(u.num_segments - 1) * u.segment_size >= u.size) {
    __builtin_trap();
  }
  if (u.tail_padded_size % u.k != 0 || u.tail_padded_size > u.segment_size) __builtin_trap();
}

// Share number of a share hash chain's own leaf, which immutable chains carry.
std::uint32_t OwnShareNumber(std::string_view chain, std::uint32_t n) {
  const std::size_t first_leaf = cairn::crypto::HashTreeWidth(n) - 1;
  for (std::size_t at = 0; at + 2 + 32 <= chain.size(); at += 2 + 32) {
    std::size_t index = static_cast<std::size_t>(cairn::GetBe(chain, at, 2));
    if (index >= first_leaf && index < first_leaf + n) return static_cast<std::uint32_t>(index - first_leaf);
  }
  return 0;
}

void ReadShare(std::string_view share, const ChkShareHeader& h) {
  if (h.o_uri_extension > share.size()) return;
  const std::size_t length_size = static_cast<std::size_t>(h.ueb_length_size());
  std::string_view after = share.substr(static_cast<std::size_t>(h.o_uri_extension));
  if (after.size() < length_size) return;
  const std::uint64_t ueb_length = cairn::GetBe(after, 0, length_size);
  if (ueb_length > after.size() - length_size) return;
  std::string_view ueb = after.substr(length_size, static_cast<std::size_t>(ueb_length));

  const cairn::caps::Cap cap = CapFor(ueb);
  cairn::Result<ChkReader> reader = ChkReader::Create(cap, ueb);
  if (!reader.ok()) return;
  const cairn::immutable::ChkUeb& u = reader->ueb();
  CheckGeometry(u, cap);

  auto area = [&](std::uint64_t from, std::uint64_t to) {
    return share.substr(static_cast<std::size_t>(from), static_cast<std::size_t>(to - from));
  };
  std::string_view share_hashes = area(h.o_share_hashes, h.o_uri_extension);
  const std::uint32_t shnum = OwnShareNumber(share_hashes, u.n);
  const bool hashes_ok = reader->AcceptShareHashes(shnum, area(h.o_block_hashes, h.o_share_hashes), share_hashes).ok();
  const bool crypttext_ok = reader->AcceptCrypttextTree(area(h.o_crypttext_hash_tree, h.o_block_hashes)).ok();

  // The share's blocks, one after the other from o_data.
  std::uint64_t at = h.o_data;
  for (std::uint64_t seg = 0; seg < u.num_segments && seg < 64; ++seg) {
    const std::uint64_t bs = reader->BlockSize(seg);
    if (bs > h.o_plaintext_hash_tree - at) break;
    std::string_view block = area(at, at + bs);
    at += bs;
    const bool verified = reader->VerifyBlock(shnum, seg, block).ok();
    if (verified && !hashes_ok) __builtin_trap();
    std::map<std::uint32_t, std::string> one{{shnum, std::string(block)}};
    std::uint32_t bad = 0;
    if (reader->VerifyBlocks(seg, one, &bad).ok() != verified) __builtin_trap();
    if (!crypttext_ok) continue;
    // k blocks of the right size: this one, and copies of it under the other numbers.
    std::map<std::uint32_t, std::string> blocks = one;
    for (std::uint32_t i = 0; blocks.size() < u.k && i < u.n; ++i) blocks.emplace(i, std::string(block));
    cairn::Result<std::string> plain = reader->DecodeSegment(seg, blocks);
    if (plain.ok()) {
      const bool tail = seg + 1 == u.num_segments;
      if (plain->size() != (tail ? u.size - seg * u.segment_size : u.segment_size)) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view share(reinterpret_cast<const char*>(data), size);
  cairn::Result<ChkShareHeader> h = cairn::immutable::ParseChkShareHeader(share);
  if (!h.ok()) return 0;
  if (h->version != 1 && h->version != 2) __builtin_trap();
  if (h->o_data != (h->version == 1 ? 36u : 68u) || h->o_data + h->data_size != h->o_plaintext_hash_tree ||
      h->o_plaintext_hash_tree > h->o_crypttext_hash_tree || h->o_crypttext_hash_tree > h->o_block_hashes ||
      h->o_block_hashes > h->o_share_hashes || h->o_share_hashes > h->o_uri_extension) {
    __builtin_trap();
  }
  ReadShare(share, *h);
  return 0;
}
