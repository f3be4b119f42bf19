// Tahoe's deep-stats size buckets (control/deep_check.h SizeBucket). The
// expected buckets were computed with CPython from Tahoe's own algorithm
// (dirnode.py DeepStats.which_bucket and mathutil.next_power_of_k, in
// floats), up to 10^16, where float rounding shows (1000000000000002).
// The integration test test_size_histogram_matches_tahoe compares the
// histogram with one real Tahoe-LAFS reported. Any thread.
#include "control/deep_check.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace cairn::control {
namespace {

TEST(DeepCheckSizeBucket, MatchesTahoesFloatingPointBuckets) {
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets = {
      {0u, 0u},
      {1u, 3u},
      {4u, 10u},
      {11u, 31u},
      {32u, 100u},
      {101u, 316u},
      {317u, 1000u},
      {1001u, 3162u},
      {3163u, 10000u},
      {10001u, 31622u},
      {31623u, 100000u},
      {100001u, 316227u},
      {316228u, 1000000u},
      {1000001u, 3162277u},
      {3162278u, 10000000u},
      {10000001u, 31622776u},
      {31622777u, 100000000u},
      {100000001u, 316227766u},
      {316227767u, 1000000000u},
      {1000000001u, 3162277660u},
      {3162277661u, 10000000000u},
      {10000000001u, 31622776601u},
      {31622776602u, 100000000000u},
      {100000000001u, 316227766016u},
      {316227766017u, 1000000000000u},
      {1000000000001u, 3162277660168u},
      {3162277660169u, 10000000000000u},
      {10000000000001u, 31622776601683u},
      {31622776601684u, 100000000000000u},
      {100000000000001u, 316227766016838u},
      {316227766016839u, 1000000000000001u},
      {1000000000000002u, 3162277660168385u},
      {3162277660168386u, 10000000000000020u}};
  for (const auto& b : buckets) {
    EXPECT_EQ(SizeBucket(b.first), b) << b.first;
    EXPECT_EQ(SizeBucket(b.second), b) << b.second;
    if (b.second > b.first + 1) {
      EXPECT_EQ(SizeBucket((b.first + b.second) / 2), b);
    }
  }
}

}  // namespace
}  // namespace cairn::control
