// k-of-n erasure coding that produces exactly zfec's blocks, as Tahoe-LAFS
// uses them (docs/formats/fec.md): the k input pieces are blocks 0..k-1
// unchanged, blocks k..n-1 are parity, and any k blocks give the pieces back.
//
// The byte work is done by one of several kernels, chosen at run time from
// the CPU's features; every kernel gives the same bytes. A Codec is immutable
// after Create: any thread, and one Codec may be shared by many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::fec {

inline constexpr int kMaxBlocks = 256;

struct KernelOps;  // src/fec/kernel.h

// Tahoe's padding rule: a segment of `size` bytes is zero-padded to k pieces
// of PieceSize(size, k) = ceil(size / k) bytes. REQUIRES: k >= 1.
inline std::size_t PieceSize(std::size_t size, int k) {
  const std::size_t kk = static_cast<std::size_t>(k);
  return size / kk + (size % kk != 0);
}

enum class Kernel : std::uint8_t {
  kPortable,  // plain C++, every target
  kSsse3,     // x86 pshufb on 16 bytes
  kAvx2,      // x86 vpshufb on 32 bytes
  kNeon,      // ARM table lookups (aarch64, or 32-bit ARM whose CPU has NEON)
  kIsal,      // Intel's ISA-L ec_encode_data (builds with CAIRN_HAVE_ISAL)
};

// "portable", "ssse3", "avx2", "neon", "isal".
std::string_view KernelName(Kernel kernel);
// The kernel of that name; InvalidArgument if there is none.
Result<Kernel> ParseKernel(std::string_view name);
// The kernels this build has and this CPU can run, fastest first (the last
// is always kPortable).
std::vector<Kernel> AvailableKernels();
// The kernel named by $CAIRN_FEC_KERNEL when it is set (InvalidArgument when
// it names no kernel or one not available here), else the fastest available.
Result<Kernel> SelectedKernel();

class Codec {
 public:
  // A k-of-n codec on SelectedKernel(). Computes zfec's matrix once:
  // (n-k)·k·33 bytes (under 1 KiB for Tahoe's default 3-of-10, 528 KiB at
  // worst). InvalidArgument unless 1 <= k <= n <= 256.
  static Result<Codec> Create(int k, int n);
  // The same on a given kernel; InvalidArgument when it is not available.
  static Result<Codec> Create(int k, int n, Kernel kernel);

  int k() const { return k_; }
  int n() const { return n_; }
  Kernel kernel() const { return kernel_; }

  // Row `block_num` of zfec's encoding matrix E: the k coefficients that
  // make that parity block from the pieces. REQUIRES: k <= block_num < n.
  std::span<const std::uint8_t> ParityRow(int block_num) const;

  // Writes block block_nums[i] to blocks[i] (each `len` bytes) from the k
  // pieces (each `len` bytes). Blocks below k are copies of their piece.
  // InvalidArgument on a wrong count or a block number out of range.
  // REQUIRES: output buffers do not overlap the pieces or each other
  // (a block's buffer may be its own piece).
  Status Encode(std::span<const std::uint8_t* const> pieces, std::size_t len,
                std::span<const int> block_nums, std::span<std::uint8_t* const> blocks) const;

  // Recovers the k pieces (each `len` bytes) from k distinct blocks given
  // with their numbers, in any order. Inverts a k×k matrix per call (at most
  // k²·(k - systematic blocks given) multiplications). InvalidArgument on a
  // wrong count, a number out of range or a repeated number. REQUIRES:
  // output buffers do not overlap the blocks or each other (a piece's buffer
  // may be the block of the same number).
  Status Decode(std::span<const std::uint8_t* const> blocks, std::span<const int> block_nums,
                std::size_t len, std::span<std::uint8_t* const> pieces) const;

 private:
  Codec() = default;

  int k_ = 0;
  int n_ = 0;
  Kernel kernel_ = Kernel::kPortable;
  const KernelOps* ops_ = nullptr;
  std::vector<std::uint8_t> parity_;  // E rows k..n-1, (n-k)·k bytes
  std::vector<std::uint8_t> tables_;  // the kernel's tables for them, 32 bytes a coefficient
};

}  // namespace cairn::fec
