// The Codec: zfec's matrix computed once per (k, n), arguments checked, the
// byte work handed to the kernel. Any thread (a Codec is immutable).
#include "cairn/fec/fec.h"

#include <cstring>
#include <string>

#include "fec/kernel.h"
#include "fec/matrix.h"

namespace cairn::fec {
namespace {

std::size_t Idx(int i) { return static_cast<std::size_t>(i); }

void CopyIfDistinct(std::uint8_t* to, const std::uint8_t* from, std::size_t len) {
  if (to != from && len > 0) std::memcpy(to, from, len);
}

}  // namespace

Result<Codec> Codec::Create(int k, int n) {
  CAIRN_TRY_ASSIGN(Kernel kernel, SelectedKernel());
  return Create(k, n, kernel);
}

Result<Codec> Codec::Create(int k, int n, Kernel kernel) {
  if (k < 1 || n < k || n > kMaxBlocks) {
    return Status::InvalidArgument("erasure coding needs 1 <= k <= n <= 256, got k=" + std::to_string(k) +
                                   " n=" + std::to_string(n));
  }
  const KernelOps* ops = FindKernel(kernel);
  if (!ops) {
    return Status::InvalidArgument("erasure-coding kernel " + std::string(KernelName(kernel)) +
                                   " is not available in this build on this CPU");
  }
  Codec codec;
  codec.k_ = k;
  codec.n_ = n;
  codec.kernel_ = kernel;
  codec.ops_ = ops;
  codec.parity_ = ParityMatrix(k, n);
  codec.tables_.resize(codec.parity_.size() * 32);
  if (n > k) ops->init_tables(k, n - k, codec.parity_.data(), codec.tables_.data());
  return codec;
}

std::span<const std::uint8_t> Codec::ParityRow(int block_num) const {
  CAIRN_CHECK(block_num >= k_ && block_num < n_, "ParityRow: not a parity block number");
  return std::span<const std::uint8_t>(parity_).subspan(Idx(block_num - k_) * Idx(k_), Idx(k_));
}

Status Codec::Encode(std::span<const std::uint8_t* const> pieces, std::size_t len, std::span<const int> block_nums,
                     std::span<std::uint8_t* const> blocks) const {
  if (pieces.size() != Idx(k_)) {
    return Status::InvalidArgument("encode needs " + std::to_string(k_) + " pieces, got " +
                                   std::to_string(pieces.size()));
  }
  if (blocks.size() != block_nums.size()) {
    return Status::InvalidArgument("encode: " + std::to_string(block_nums.size()) + " block numbers but " +
                                   std::to_string(blocks.size()) + " output buffers");
  }
  for (int num : block_nums) {
    if (num < 0 || num >= n_) {
      return Status::InvalidArgument("block number " + std::to_string(num) + " is not below n=" +
                                     std::to_string(n_));
    }
  }
  std::size_t i = 0;
  while (i < block_nums.size()) {
    if (block_nums[i] < k_) {
      CopyIfDistinct(blocks[i], pieces[Idx(block_nums[i])], len);
      ++i;
      continue;
    }
    // One kernel call for each run of consecutive parity numbers: their
    // tables lie next to each other.
    std::size_t run = 1;
    while (i + run < block_nums.size() && block_nums[i + run] == block_nums[i] + static_cast<int>(run)) ++run;
    if (len > 0) {
      const std::uint8_t* tables = tables_.data() + 32 * Idx(block_nums[i] - k_) * Idx(k_);
      ops_->dot(len, k_, static_cast<int>(run), tables, pieces.data(), blocks.data() + i);
    }
    i += run;
  }
  return Status::Ok();
}

Status Codec::Decode(std::span<const std::uint8_t* const> blocks, std::span<const int> block_nums, std::size_t len,
                     std::span<std::uint8_t* const> pieces) const {
  if (blocks.size() != Idx(k_) || block_nums.size() != Idx(k_) || pieces.size() != Idx(k_)) {
    return Status::InvalidArgument("decode needs " + std::to_string(k_) + " blocks, numbers and pieces, got " +
                                   std::to_string(blocks.size()) + ", " + std::to_string(block_nums.size()) +
                                   " and " + std::to_string(pieces.size()));
  }
  std::vector<bool> seen(Idx(n_), false);
  for (int num : block_nums) {
    if (num < 0 || num >= n_) {
      return Status::InvalidArgument("block number " + std::to_string(num) + " is not below n=" +
                                     std::to_string(n_));
    }
    if (seen[Idx(num)]) return Status::InvalidArgument("block " + std::to_string(num) + " given twice");
    seen[Idx(num)] = true;
  }
  // Pieces whose own block is missing are the ones to compute.
  std::vector<int> missing;
  for (int j = 0; j < k_; ++j) {
    if (!seen[Idx(j)]) missing.push_back(j);
  }
  if (!missing.empty() && len > 0) {
    // m holds the E rows of the given blocks; m⁻¹ maps the blocks back to the
    // pieces, and only the rows of the missing pieces are needed.
    const std::size_t kk = Idx(k_);
    std::vector<std::uint8_t> m(kk * kk, 0);
    for (std::size_t r = 0; r < kk; ++r) {
      if (block_nums[r] < k_) {
        m[r * kk + Idx(block_nums[r])] = 1;
      } else {
        std::memcpy(&m[r * kk], &parity_[Idx(block_nums[r] - k_) * kk], kk);
      }
    }
    if (!Invert(m.data(), k_)) return Status::Internal("decode: zfec's matrix has a singular k-subset");
    std::vector<std::uint8_t> coefs(missing.size() * kk);
    std::vector<std::uint8_t*> outs(missing.size());
    for (std::size_t i = 0; i < missing.size(); ++i) {
      std::memcpy(&coefs[i * kk], &m[Idx(missing[i]) * kk], kk);
      outs[i] = pieces[Idx(missing[i])];
    }
    std::vector<std::uint8_t> tables(coefs.size() * 32);
    ops_->init_tables(k_, static_cast<int>(missing.size()), coefs.data(), tables.data());
    ops_->dot(len, k_, static_cast<int>(missing.size()), tables.data(), blocks.data(), outs.data());
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (block_nums[i] < k_) CopyIfDistinct(pieces[Idx(block_nums[i])], blocks[i], len);
  }
  return Status::Ok();
}

}  // namespace cairn::fec
