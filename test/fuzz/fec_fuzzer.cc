// libFuzzer target: erasure coding. The first bytes choose k, n and which k
// blocks to decode from; the rest is the segment, padded as Tahoe pads it.
// Every kernel must give the same blocks, and decoding must give the padded
// segment back.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cairn/fec/fec.h"

namespace {

using namespace cairn::fec;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  // k up to 40 keeps each run fast (a codec inverts a k×k matrix); n up to 256.
  const int k = 1 + data[0] % 40;
  const int n = k + data[1] % (kMaxBlocks - k + 1);
  const std::uint8_t pick = data[2];
  data += 3;
  size -= 3;
  const std::size_t len = PieceSize(size, k);
  std::vector<std::uint8_t> padded(data, data + size);
  padded.resize(len * static_cast<std::size_t>(k), 0);
  std::vector<const std::uint8_t*> pieces;
  for (int c = 0; c < k; ++c) pieces.push_back(padded.data() + static_cast<std::size_t>(c) * len);
  std::vector<int> nums;
  for (int i = 0; i < n; ++i) nums.push_back(i);

  std::vector<std::vector<std::uint8_t>> want;
  for (Kernel kernel : AvailableKernels()) {
    auto codec = Codec::Create(k, n, kernel);
    Check(codec.ok());
    std::vector<std::vector<std::uint8_t>> blocks(static_cast<std::size_t>(n), std::vector<std::uint8_t>(len));
    std::vector<std::uint8_t*> outs;
    for (auto& b : blocks) outs.push_back(b.data());
    Check(codec->Encode(pieces, len, nums, outs).ok());
    if (want.empty()) want = blocks;
    Check(blocks == want);

    // k blocks, every pick-th one around the circle from `pick`.
    std::vector<int> given_nums;
    std::vector<bool> used(static_cast<std::size_t>(n), false);
    int at = pick % n;
    const int step = 1 + (pick >> 4);
    while (static_cast<int>(given_nums.size()) < k) {
      while (used[static_cast<std::size_t>(at)]) at = (at + 1) % n;
      used[static_cast<std::size_t>(at)] = true;
      given_nums.push_back(at);
      at = (at + step) % n;
    }
    std::vector<const std::uint8_t*> given;
    for (int num : given_nums) given.push_back(blocks[static_cast<std::size_t>(num)].data());
    std::vector<std::uint8_t> back(padded.size());
    std::vector<std::uint8_t*> back_pieces;
    for (int c = 0; c < k; ++c) back_pieces.push_back(back.data() + static_cast<std::size_t>(c) * len);
    Check(codec->Decode(given, given_nums, len, back_pieces).ok());
    Check(back == padded);
  }
  return 0;
}
