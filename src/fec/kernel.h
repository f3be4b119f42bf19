// The one small interface behind which each erasure-coding kernel sits, and
// the kernels themselves (kernel_*.cc). Any thread: kernels keep no state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cairn/fec/fec.h"

namespace cairn::fec {

// Writes the multiply tables of a rows×k coefficient matrix (row-major) to
// `tables`: 32 bytes a coefficient, coefficient (r, c) at 32·(r·k + c), in
// the layout of gf::NibbleTable (which is ISA-L's).
using InitTablesFn = void (*)(int k, int rows, const std::uint8_t* coefs, std::uint8_t* tables);

// out[r][i] = Σ_c coef(r, c) · in[c][i] for r < rows, i < len, from tables
// made by the kernel's InitTablesFn. Overwrites `out`. REQUIRES: k >= 1,
// rows >= 1, no out[r] overlaps an input or another output.
using DotFn = void (*)(std::size_t len, int k, int rows, const std::uint8_t* tables,
                       const std::uint8_t* const* in, std::uint8_t* const* out);

struct KernelOps {
  InitTablesFn init_tables;
  DotFn dot;
};

// The ops of `kernel`, or nullptr when this build or CPU lacks it.
const KernelOps* FindKernel(Kernel kernel);

// Our own table builder (gf::NibbleTable for each coefficient).
void InitTablesNibble(int k, int rows, const std::uint8_t* coefs, std::uint8_t* tables);
// The dot product on bytes [begin, end) one byte at a time from the nibble
// tables: what the SIMD kernels use for the tail that is shorter than a vector.
void DotNibbleRange(std::size_t begin, std::size_t end, int k, int rows, const std::uint8_t* tables,
                    const std::uint8_t* const* in, std::uint8_t* const* out);

void DotPortable(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
                 std::uint8_t* const* out);
#if defined(__x86_64__) || defined(__i386__)
void DotSsse3(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
              std::uint8_t* const* out);
void DotAvx2(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out);
#endif
#if defined(__aarch64__) || defined(__ARM_NEON) || defined(CAIRN_ARM_NEON_KERNELS)
// Built with NEON in kernel_neon.cc; on 32-bit ARM called only where the
// CPU has NEON (kernels.cc checks AT_HWCAP).
void DotNeon(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out);
#endif
#ifdef CAIRN_HAVE_ISAL
void InitTablesIsal(int k, int rows, const std::uint8_t* coefs, std::uint8_t* tables);
void DotIsal(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out);
#endif

}  // namespace cairn::fec
