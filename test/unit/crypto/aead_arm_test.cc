// Which ChaCha20-Poly1305 kernel a build chooses: "neon" wherever the build
// has the NEON kernel (arm64; 32-bit ARM built with -mfpu=neon or with the
// board's BOARD_NEON_CFLAGS for the NEON files alone) and the CPU has NEON
// (always on arm64; AT_HWCAP on 32-bit ARM), and never elsewhere. The ARM
// check of `make test` (the Makefile's aead-arm-check) runs the crypto unit
// tests under qemu-aarch64 and qemu-arm with CAIRN_AEAD_EXPECT_KERNEL set to
// "neon", so a build that silently lost its NEON kernel fails there instead of
// passing on the portable one, and on a 32-bit CPU without NEON set to
// "mbedtls". Single-threaded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#if defined(__arm__)
#include <sys/auxv.h>
#endif

#include "cairn/crypto/aead.h"

namespace cairn::crypto {
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

bool Contains(const std::vector<const char*>& kernels, const char* name) {
  for (const char* k : kernels) {
    if (std::strcmp(k, name) == 0) return true;
  }
  return false;
}

TEST(AeadArm, NeonIsTheChaChaDefaultExactlyWhereTheBuildAndTheCpuHaveNeon) {
  auto chacha = AeadKernels(AeadAlgorithm::kChaCha20Poly1305);
  ASSERT_FALSE(chacha.empty());
  const bool neon = kBuildHasNeon && CpuHasNeon();
  EXPECT_EQ(Contains(chacha, "neon"), neon);
  if (neon) {
    EXPECT_STREQ(chacha.front(), "neon");
  } else {
    EXPECT_STRNE(chacha.front(), "neon");
    auto aead = NewAead(AeadAlgorithm::kChaCha20Poly1305, std::string(32, 'k'), "neon");
    EXPECT_FALSE(aead.ok());
  }
  // NEON here is a ChaCha20 kernel only: GCM never lists it.
  EXPECT_FALSE(Contains(AeadKernels(AeadAlgorithm::kAes128Gcm), "neon"));
  EXPECT_FALSE(Contains(AeadKernels(AeadAlgorithm::kAes256Gcm), "neon"));
}

TEST(AeadArm, TheExpectedKernelIsTheDefault) {
  const char* expected = std::getenv("CAIRN_AEAD_EXPECT_KERNEL");
  if (expected == nullptr || *expected == '\0') {
    // Outside the ARM check nothing is expected beyond the test above.
    SUCCEED();
    return;
  }
  auto aead = NewAead(AeadAlgorithm::kChaCha20Poly1305, std::string(32, 'k'));
  ASSERT_TRUE(aead.ok()) << aead.status().ToString();
  EXPECT_STREQ((*aead)->kernel(), expected);
  EXPECT_STREQ(AeadKernels(AeadAlgorithm::kChaCha20Poly1305).front(), expected);
}

}  // namespace
}  // namespace cairn::crypto
