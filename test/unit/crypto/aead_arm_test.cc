// Which ChaCha20-Poly1305 kernel a build chooses: "neon" wherever the build
// has NEON (arm64, or 32-bit ARM with -mfpu=neon), and never elsewhere. The
// ARM check of `make test` (the Makefile's aead-arm-check) runs the crypto
// unit tests under qemu-aarch64 and qemu-arm with CAIRN_AEAD_EXPECT_KERNEL
// set to "neon", so a build that silently lost its NEON kernel fails there
// instead of passing on the portable one. Single-threaded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cairn/crypto/aead.h"

namespace cairn::crypto {
namespace {

#if defined(__aarch64__) || defined(__ARM_NEON)
constexpr bool kBuildHasNeon = true;
#else
constexpr bool kBuildHasNeon = false;
#endif

bool Contains(const std::vector<const char*>& kernels, const char* name) {
  for (const char* k : kernels) {
    if (std::strcmp(k, name) == 0) return true;
  }
  return false;
}

TEST(AeadArm, NeonIsTheChaChaDefaultExactlyWhereTheBuildHasNeon) {
  auto chacha = AeadKernels(AeadAlgorithm::kChaCha20Poly1305);
  ASSERT_FALSE(chacha.empty());
  EXPECT_EQ(Contains(chacha, "neon"), kBuildHasNeon);
  if (kBuildHasNeon) {
    EXPECT_STREQ(chacha.front(), "neon");
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
