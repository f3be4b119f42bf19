// Which erasure-coding kernel an ARM build chooses: "neon" wherever the build
// has the NEON kernel (arm64; 32-bit ARM built with -mfpu=neon or with the
// board's BOARD_NEON_CFLAGS for the NEON files alone) and the CPU has NEON
// (always on arm64; AT_HWCAP on 32-bit ARM), never elsewhere. The Makefile's
// aead-arm-check runs this under qemu-arm for helios4 with
// CAIRN_FEC_EXPECT_KERNEL set to "neon" on a Cortex-A9 and to "portable" on
// one without NEON, and checks that the kernel chosen gives zfec's bytes.
// Single-threaded.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>
#if defined(__arm__)
#include <sys/auxv.h>
#endif

#include "cairn/fec/fec.h"
#include "fec/kernel.h"

namespace cairn::fec {
namespace {

#if defined(__aarch64__)
constexpr bool kBuildHasNeon = true;
bool CpuHasNeon() { return true; }
#elif defined(__arm__) && (defined(__ARM_NEON) || defined(CAIRN_ARM_NEON_KERNELS))
constexpr bool kBuildHasNeon = true;
bool CpuHasNeon() { return (getauxval(AT_HWCAP) & HWCAP_ARM_NEON) != 0; }
#else
constexpr bool kBuildHasNeon = false;
bool CpuHasNeon() { return false; }
#endif

bool Listed(Kernel kernel) {
  for (Kernel k : AvailableKernels()) {
    if (k == kernel) return true;
  }
  return false;
}

TEST(FecArm, NeonExactlyWhereTheBuildAndTheCpuHaveIt) {
  const bool neon = kBuildHasNeon && CpuHasNeon();
  EXPECT_EQ(FindKernel(Kernel::kNeon) != nullptr, neon);
  EXPECT_EQ(Listed(Kernel::kNeon), neon);
}

TEST(FecArm, TheExpectedKernelIsChosenAndGivesTheSameBlocks) {
  const char* expected = std::getenv("CAIRN_FEC_EXPECT_KERNEL");
  if (expected == nullptr || *expected == '\0') {
    // Outside the ARM check nothing is expected beyond the test above.
    SUCCEED();
    return;
  }
  ASSERT_EQ(std::getenv("CAIRN_FEC_KERNEL"), nullptr) << "CAIRN_FEC_KERNEL would override the choice";
  auto chosen = SelectedKernel();
  ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
  EXPECT_EQ(KernelName(*chosen), expected);
  // 3-of-10 on 1000 bytes a piece (vector body and a tail): the chosen
  // kernel's parity equals the portable kernel's.
  auto fast = Codec::Create(3, 10);
  auto plain = Codec::Create(3, 10, Kernel::kPortable);
  ASSERT_TRUE(fast.ok() && plain.ok());
  EXPECT_EQ(fast->kernel(), *chosen);
  std::vector<std::vector<std::uint8_t>> pieces(3, std::vector<std::uint8_t>(1000));
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    for (std::size_t i = 0; i < pieces[p].size(); ++i) pieces[p][i] = static_cast<std::uint8_t>(i * 7 + p * 131 + 1);
  }
  std::vector<const std::uint8_t*> in;
  for (const auto& p : pieces) in.push_back(p.data());
  std::vector<std::vector<std::uint8_t>> got(7, std::vector<std::uint8_t>(1000));
  std::vector<std::vector<std::uint8_t>> want(7, std::vector<std::uint8_t>(1000));
  std::vector<std::uint8_t*> got_out;
  std::vector<std::uint8_t*> want_out;
  for (auto& b : got) got_out.push_back(b.data());
  for (auto& b : want) want_out.push_back(b.data());
  const int nums[] = {3, 4, 5, 6, 7, 8, 9};
  ASSERT_TRUE(fast->Encode(in, 1000, nums, got_out).ok());
  ASSERT_TRUE(plain->Encode(in, 1000, nums, want_out).ok());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace cairn::fec
