// CHK encoding (see the header).
#include "cairn/immutable/chk.h"

#include <algorithm>
#include <cstring>

#include "cairn/caps/keys.h"
#include "cairn/core/endian.h"
#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/tags.h"
#include "cairn/fec/fec.h"

namespace cairn::immutable {
namespace {

std::uint64_t NextPow2(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

std::uint64_t Log2(std::uint64_t pow2) {
  std::uint64_t l = 0;
  while ((std::uint64_t{1} << l) < pow2) ++l;
  return l;
}

// One UEB field: key ":" netstring(value).
void UebField(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  out += ':';
  out += crypto::Netstring(value);
}

}  // namespace

Result<ChkLayout> ComputeChkLayout(const ChkParams& p, std::uint64_t file_size) {
  if (p.k < 1 || p.n < p.k || p.n > 256) return Status::InvalidArgument("CHK needs 1 <= k <= N <= 256");
  if (p.max_segment_size < 1) return Status::InvalidArgument("the maximum segment size must be positive");
  if (file_size <= caps::kLiteralMaxSize) {
    return Status::InvalidArgument("files of 55 bytes or less are LIT caps, not CHK");
  }
  ChkLayout l;
  l.file_size = file_size;
  l.segment_size = caps::ChkSegmentSize(file_size, p.max_segment_size, p.k);
  l.num_segments = (file_size + l.segment_size - 1) / l.segment_size;
  l.tail_size = file_size - (l.num_segments - 1) * l.segment_size;
  l.padded_tail_size = (l.tail_size + p.k - 1) / p.k * p.k;
  l.block_size = l.segment_size / p.k;
  l.tail_block_size = l.padded_tail_size / p.k;
  l.data_size = (l.num_segments - 1) * l.block_size + l.tail_block_size;
  l.hash_tree_bytes = (2 * NextPow2(l.num_segments) - 1) * crypto::kHashSize;
  l.share_hash_count = Log2(NextPow2(p.n)) + 1;
  l.header_size = 36;
  // Version 2 headers only when a v1 field (u32) would overflow; the UEB's
  // length field follows the same rule.
  l.v2 = l.o_uri_extension() + 4 + 2000 >= (std::uint64_t{1} << 32) || l.block_size >= (std::uint64_t{1} << 32);
  if (l.v2) l.header_size = 68;
  return l;
}

struct ChkEncoder::State {
  ChkParams params;
  ChkLayout layout;
  std::string key;
  std::string storage_index;
  crypto::AesCtr aes;
  fec::Codec codec;
  crypto::Sha256dHasher crypttext_hasher{crypto::tags::kCrypttext};
  std::vector<std::string> segment_hashes;
  std::vector<std::vector<std::string>> block_hashes;  // [share][segment]
  std::uint64_t segments_done = 0;
  // After Finish.
  bool finished = false;
  std::vector<crypto::HashTree> block_trees;
  std::unique_ptr<crypto::HashTree> share_tree;
  std::string crypttext_tree_flat;
  std::string ueb;
  std::string ueb_hash;

  State(crypto::AesCtr a, fec::Codec c) : aes(std::move(a)), codec(std::move(c)) {}
};

ChkEncoder::ChkEncoder(std::unique_ptr<State> s) : s_(std::move(s)) {}
ChkEncoder::~ChkEncoder() = default;
ChkEncoder::ChkEncoder(ChkEncoder&&) noexcept = default;
ChkEncoder& ChkEncoder::operator=(ChkEncoder&&) noexcept = default;

Result<ChkEncoder> ChkEncoder::Create(std::string_view key, const ChkParams& params, std::uint64_t file_size) {
  CAIRN_TRY_ASSIGN(ChkLayout layout, ComputeChkLayout(params, file_size));
  CAIRN_TRY_ASSIGN(crypto::AesCtr aes, crypto::AesCtr::Create(key));
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(params.k), static_cast<int>(params.n)));
  auto s = std::make_unique<State>(std::move(aes), std::move(codec));
  s->params = params;
  s->layout = layout;
  s->key = std::string(key);
  s->storage_index = caps::ChkStorageIndexOf(key);
  s->block_hashes.resize(params.n);
  return ChkEncoder(std::move(s));
}

const ChkLayout& ChkEncoder::layout() const { return s_->layout; }
const std::string& ChkEncoder::storage_index() const { return s_->storage_index; }

std::uint64_t ChkEncoder::ShareSize() const {
  // The UEB's length is known before encoding: every field but the sizes is
  // a fixed-width hash, so encode it with placeholder hashes.
  const ChkLayout& l = s_->layout;
  std::string placeholder(32, '\0');
  std::string ueb;
  const ChkParams& p = s_->params;
  UebField(ueb, "codec_name", "crs");
  UebField(ueb, "codec_params", std::to_string(l.segment_size) + "-" + std::to_string(p.k) + "-" + std::to_string(p.n));
  UebField(ueb, "crypttext_hash", placeholder);
  UebField(ueb, "crypttext_root_hash", placeholder);
  UebField(ueb, "needed_shares", std::to_string(p.k));
  UebField(ueb, "num_segments", std::to_string(l.num_segments));
  UebField(ueb, "segment_size", std::to_string(l.segment_size));
  UebField(ueb, "share_root_hash", placeholder);
  UebField(ueb, "size", std::to_string(l.file_size));
  UebField(ueb, "tail_codec_params",
           std::to_string(l.padded_tail_size) + "-" + std::to_string(p.k) + "-" + std::to_string(p.n));
  UebField(ueb, "total_shares", std::to_string(p.n));
  return l.o_uri_extension() + (l.v2 ? 8 : 4) + ueb.size();
}

std::string ChkEncoder::ShareHeader() const {
  const ChkLayout& l = s_->layout;
  std::string h;
  if (!l.v2) {
    PutBe(h, 1, 4);
    for (std::uint64_t v : {l.block_size, l.data_size, l.header_size, l.o_plaintext_hash_tree(),
                            l.o_crypttext_hash_tree(), l.o_block_hashes(), l.o_share_hashes(), l.o_uri_extension()}) {
      PutBe(h, v, 4);
    }
  } else {
    PutBe(h, 2, 4);
    for (std::uint64_t v : {l.block_size, l.data_size, l.header_size, l.o_plaintext_hash_tree(),
                            l.o_crypttext_hash_tree(), l.o_block_hashes(), l.o_share_hashes(), l.o_uri_extension()}) {
      PutBe(h, v, 8);
    }
  }
  return h;
}

Result<std::vector<std::string>> ChkEncoder::EncodeSegment(std::string plaintext) {
  State& s = *s_;
  const ChkLayout& l = s.layout;
  if (s.segments_done >= l.num_segments) return Status::FailedPrecondition("every segment is already encoded");
  const bool tail = s.segments_done + 1 == l.num_segments;
  const std::uint64_t want = tail ? l.tail_size : l.segment_size;
  if (plaintext.size() != want) {
    return Status::InvalidArgument("segment " + std::to_string(s.segments_done) + " must be " +
                                   std::to_string(want) + " bytes, not " + std::to_string(plaintext.size()));
  }
  s.aes.Apply(plaintext);  // now ciphertext
  s.segment_hashes.push_back(
      crypto::TaggedHashAndUpdate(crypto::tags::kCrypttextSegment, plaintext, s.crypttext_hasher));
  const std::uint64_t piece = tail ? l.tail_block_size : l.block_size;
  plaintext.resize(static_cast<std::size_t>(piece * s.params.k), '\0');  // Tahoe's zero padding
  const int n = static_cast<int>(s.params.n);
  const int k = static_cast<int>(s.params.k);
  std::vector<std::string> blocks(static_cast<std::size_t>(n), std::string(static_cast<std::size_t>(piece), '\0'));
  std::vector<const std::uint8_t*> pieces(static_cast<std::size_t>(k));
  for (int i = 0; i < k; ++i) {
    pieces[static_cast<std::size_t>(i)] = reinterpret_cast<const std::uint8_t*>(plaintext.data()) + i * piece;
  }
  std::vector<int> nums(static_cast<std::size_t>(n));
  std::vector<std::uint8_t*> outs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    nums[static_cast<std::size_t>(i)] = i;
    outs[static_cast<std::size_t>(i)] = reinterpret_cast<std::uint8_t*>(blocks[static_cast<std::size_t>(i)].data());
  }
  CAIRN_TRY(s.codec.Encode(pieces, static_cast<std::size_t>(piece), nums, outs));
  std::vector<std::string> hashes = crypto::TaggedHashes(crypto::tags::kBlock, {blocks.begin(), blocks.end()});
  for (int i = 0; i < n; ++i) {
    s.block_hashes[static_cast<std::size_t>(i)].push_back(std::move(hashes[static_cast<std::size_t>(i)]));
  }
  ++s.segments_done;
  return blocks;
}

Status ChkEncoder::Finish() {
  State& s = *s_;
  const ChkLayout& l = s.layout;
  const ChkParams& p = s.params;
  if (s.segments_done != l.num_segments) {
    return Status::FailedPrecondition(std::to_string(l.num_segments - s.segments_done) + " segments not encoded");
  }
  crypto::HashTree crypttext_tree(std::move(s.segment_hashes));
  s.crypttext_tree_flat = crypttext_tree.Flatten();
  std::vector<std::string> roots;
  for (std::uint32_t i = 0; i < p.n; ++i) {
    s.block_trees.emplace_back(std::move(s.block_hashes[i]));
    roots.push_back(s.block_trees.back().Root());
  }
  s.share_tree = std::make_unique<crypto::HashTree>(std::move(roots));
  // The URI extension block: keys in sorted order, integers in decimal.
  std::string& ueb = s.ueb;
  UebField(ueb, "codec_name", "crs");
  UebField(ueb, "codec_params", std::to_string(l.segment_size) + "-" + std::to_string(p.k) + "-" + std::to_string(p.n));
  UebField(ueb, "crypttext_hash", s.crypttext_hasher.Finish());
  UebField(ueb, "crypttext_root_hash", crypttext_tree.Root());
  UebField(ueb, "needed_shares", std::to_string(p.k));
  UebField(ueb, "num_segments", std::to_string(l.num_segments));
  UebField(ueb, "segment_size", std::to_string(l.segment_size));
  UebField(ueb, "share_root_hash", s.share_tree->Root());
  UebField(ueb, "size", std::to_string(l.file_size));
  UebField(ueb, "tail_codec_params",
           std::to_string(l.padded_tail_size) + "-" + std::to_string(p.k) + "-" + std::to_string(p.n));
  UebField(ueb, "total_shares", std::to_string(p.n));
  s.ueb_hash = crypto::TaggedHash(crypto::tags::kUriExtension, ueb);
  s.finished = true;
  return Status::Ok();
}

std::string ChkEncoder::ShareTrailer(std::uint32_t share) const {
  const State& s = *s_;
  CAIRN_CHECK(s.finished, "ShareTrailer before Finish");
  const ChkLayout& l = s.layout;
  std::string t(static_cast<std::size_t>(l.hash_tree_bytes), '\0');  // plaintext hash tree: unused, zeros
  t += s.crypttext_tree_flat;
  t += s.block_trees[share].Flatten();
  std::vector<std::size_t> chain = s.share_tree->NeededHashes(share, /*include_leaf=*/true);
  std::sort(chain.begin(), chain.end());
  for (std::size_t idx : chain) {
    PutBe(t, idx, 2);
    t += s.share_tree->Node(idx);
  }
  if (l.v2) {
    PutBe(t, s.ueb.size(), 8);
  } else {
    PutBe(t, s.ueb.size(), 4);
  }
  t += s.ueb;
  return t;
}

const std::string& ChkEncoder::uri_extension() const { return s_->ueb; }

caps::Cap ChkEncoder::Cap() const {
  CAIRN_CHECK(s_->finished, "Cap before Finish");
  caps::Cap cap;
  cap.kind = caps::CapKind::kChk;
  cap.key = s_->key;
  cap.digest = s_->ueb_hash;
  cap.k = s_->params.k;
  cap.n = s_->params.n;
  cap.size = s_->layout.file_size;
  return cap;
}

Result<caps::Cap> ChkCapOfBytes(std::string_view data, std::string_view convergence, const ChkParams& params) {
  if (data.size() <= caps::kLiteralMaxSize) {
    caps::Cap cap;
    cap.kind = caps::CapKind::kLiteral;
    cap.literal = std::string(data);
    return cap;
  }
  CAIRN_TRY_ASSIGN(ChkLayout layout, ComputeChkLayout(params, data.size()));
  caps::ConvergentKeyHasher hasher(convergence, params.k, params.n, layout.segment_size);
  hasher.Update(data);
  CAIRN_TRY_ASSIGN(ChkEncoder enc, ChkEncoder::Create(hasher.Finish(), params, data.size()));
  for (std::uint64_t off = 0; off < data.size(); off += layout.segment_size) {
    std::uint64_t len = std::min<std::uint64_t>(layout.segment_size, data.size() - off);
    CAIRN_TRY(enc.EncodeSegment(std::string(data.substr(static_cast<std::size_t>(off), static_cast<std::size_t>(len))))
                  .status());
  }
  CAIRN_TRY(enc.Finish());
  return enc.Cap();
}

}  // namespace cairn::immutable
