// Which kernels this build and this CPU have, and which one a codec uses:
// $CAIRN_FEC_KERNEL when set, else the fastest. Any thread.
#include <cstdlib>
#include <string>
#if defined(__arm__)
#include <sys/auxv.h>
#endif

#include "fec/kernel.h"

// The NEON kernel is built on arm64, and on 32-bit ARM when the whole build
// has NEON or kernel_neon.cc alone is compiled with it (CAIRN_ARM_NEON_KERNELS:
// the board's BOARD_NEON_CFLAGS). On 32-bit ARM it is used only when the CPU
// has NEON, which Debian's armhf baseline (VFPv3-D16) does not promise.
#if defined(__aarch64__) || defined(__ARM_NEON) || defined(CAIRN_ARM_NEON_KERNELS)
#define CAIRN_FEC_HAVE_NEON 1
#endif

namespace cairn::fec {

namespace {

// Fastest first, as measured by test/bench/fec_bench.cc (docs/formats/fec.md).
constexpr Kernel kPreference[] = {Kernel::kIsal, Kernel::kAvx2, Kernel::kSsse3, Kernel::kNeon, Kernel::kPortable};

constexpr KernelOps kPortableOps = {InitTablesNibble, DotPortable};
#if defined(__x86_64__) || defined(__i386__)
constexpr KernelOps kSsse3Ops = {InitTablesNibble, DotSsse3};
constexpr KernelOps kAvx2Ops = {InitTablesNibble, DotAvx2};
#endif
#ifdef CAIRN_FEC_HAVE_NEON
constexpr KernelOps kNeonOps = {InitTablesNibble, DotNeon};
#endif
#ifdef CAIRN_HAVE_ISAL
constexpr KernelOps kIsalOps = {InitTablesIsal, DotIsal};
#endif

}  // namespace

const KernelOps* FindKernel(Kernel kernel) {
  switch (kernel) {
    case Kernel::kPortable:
      return &kPortableOps;
#if defined(__x86_64__) || defined(__i386__)
    case Kernel::kSsse3:
      __builtin_cpu_init();
      return __builtin_cpu_supports("ssse3") ? &kSsse3Ops : nullptr;
    case Kernel::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") ? &kAvx2Ops : nullptr;
#endif
#ifdef CAIRN_FEC_HAVE_NEON
    case Kernel::kNeon:
#if defined(__aarch64__)
      return &kNeonOps;
#else
      return (getauxval(AT_HWCAP) & HWCAP_ARM_NEON) != 0 ? &kNeonOps : nullptr;
#endif
#endif
#ifdef CAIRN_HAVE_ISAL
    case Kernel::kIsal:
      return &kIsalOps;
#endif
    default:
      return nullptr;
  }
}

std::string_view KernelName(Kernel kernel) {
  switch (kernel) {
    case Kernel::kPortable: return "portable";
    case Kernel::kSsse3: return "ssse3";
    case Kernel::kAvx2: return "avx2";
    case Kernel::kNeon: return "neon";
    case Kernel::kIsal: return "isal";
  }
  return "?";
}

Result<Kernel> ParseKernel(std::string_view name) {
  for (Kernel k : kPreference) {
    if (KernelName(k) == name) return k;
  }
  return Status::InvalidArgument("unknown erasure-coding kernel \"" + std::string(name) +
                                 "\" (kernels: isal, avx2, ssse3, neon, portable)");
}

std::vector<Kernel> AvailableKernels() {
  std::vector<Kernel> out;
  for (Kernel k : kPreference) {
    if (FindKernel(k)) out.push_back(k);
  }
  return out;
}

Result<Kernel> SelectedKernel() {
  const char* env = std::getenv("CAIRN_FEC_KERNEL");
  if (env == nullptr || *env == '\0') return AvailableKernels().front();
  auto kernel = ParseKernel(env);
  if (!kernel.ok()) return kernel.status().WithContext("CAIRN_FEC_KERNEL");
  if (!FindKernel(*kernel)) {
    std::string have;
    for (Kernel k : AvailableKernels()) have += (have.empty() ? "" : ", ") + std::string(KernelName(k));
    return Status::InvalidArgument("CAIRN_FEC_KERNEL=" + std::string(env) +
                                   ": not available in this build on this CPU (available: " + have + ")");
  }
  return *kernel;
}

}  // namespace cairn::fec
