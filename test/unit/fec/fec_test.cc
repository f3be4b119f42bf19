// Erasure coding: the field, zfec's matrix (reference rows from
// tahoe-protocol.md §6), every kernel against a plain reference, encoding a
// choice of blocks, decoding from every k-subset, argument errors, kernel
// selection. Byte-identity with python3-zfec itself is test/interop/test_zfec.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cairn/fec/fec.h"
#include "fec/gf256.h"
#include "fec/kernel.h"
#include "fec/matrix.h"

#ifdef CAIRN_HAVE_ISAL
#include <isa-l/erasure_code.h>
#endif

namespace cairn::fec {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string Hex(std::span<const std::uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (std::uint8_t c : b) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// Parity rows k..n-1 in hex, space-separated (as tahoe-protocol.md prints them).
std::string ParityRows(int k, int n) {
  auto codec = Codec::Create(k, n, Kernel::kPortable);
  EXPECT_TRUE(codec.ok());
  std::string out;
  for (int r = k; r < n; ++r) out += (out.empty() ? "" : " ") + Hex(codec->ParityRow(r));
  return out;
}

std::vector<Bytes> RandomPieces(std::mt19937& rng, int k, std::size_t len) {
  std::vector<Bytes> pieces(static_cast<std::size_t>(k), Bytes(len));
  for (auto& p : pieces) {
    for (auto& b : p) b = static_cast<std::uint8_t>(rng());
  }
  return pieces;
}

std::vector<const std::uint8_t*> Ptrs(const std::vector<Bytes>& v) {
  std::vector<const std::uint8_t*> out;
  for (const auto& b : v) out.push_back(b.data());
  return out;
}

std::vector<std::uint8_t*> MutPtrs(std::vector<Bytes>& v) {
  std::vector<std::uint8_t*> out;
  for (auto& b : v) out.push_back(b.data());
  return out;
}

// Every block, computed the slow way straight from E (`parity`, rows k..n-1):
// Σ_c E[i][c]·piece_c.
std::vector<Bytes> ReferenceEncode(int k, int n, const Bytes& parity, const std::vector<Bytes>& pieces) {
  const std::size_t len = pieces[0].size();
  std::vector<Bytes> blocks(pieces.begin(), pieces.end());
  for (int r = k; r < n; ++r) {
    Bytes b(len, 0);
    for (int c = 0; c < k; ++c) {
      const std::uint8_t e = parity[static_cast<std::size_t>((r - k) * k + c)];
      for (std::size_t i = 0; i < len; ++i) b[i] ^= gf::Mul(e, pieces[static_cast<std::size_t>(c)][i]);
    }
    blocks.push_back(b);
  }
  return blocks;
}

std::vector<Bytes> EncodeAll(const Codec& codec, const std::vector<Bytes>& pieces) {
  const std::size_t len = pieces[0].size();
  std::vector<Bytes> blocks(static_cast<std::size_t>(codec.n()), Bytes(len));
  std::vector<int> nums;
  for (int i = 0; i < codec.n(); ++i) nums.push_back(i);
  auto out = MutPtrs(blocks);
  EXPECT_TRUE(codec.Encode(Ptrs(pieces), len, nums, out).ok());
  return blocks;
}

TEST(FecField, MatchesZfecPolynomial) {
  EXPECT_EQ(gf::Mul(0x80, 2), 0x1D);
  EXPECT_EQ(gf::Exp(8), 0x1D);
  EXPECT_EQ(gf::Exp(255), 1);
  for (int a = 1; a < 256; ++a) {
    const auto x = static_cast<std::uint8_t>(a);
    EXPECT_EQ(gf::Mul(x, gf::Inv(x)), 1) << a;
    EXPECT_EQ(gf::Mul(x, 0), 0);
    EXPECT_EQ(gf::Mul(x, 1), x);
    // Multiplying by 2 is a shift, reduced by 0x11D.
    EXPECT_EQ(gf::Mul(x, 2), static_cast<std::uint8_t>((a << 1) ^ ((a & 0x80) ? 0x11D : 0)));
  }
}

TEST(FecField, NibbleTablesGiveEveryProduct) {
  std::uint8_t t[32];
  for (int c = 0; c < 256; ++c) {
    gf::NibbleTable(static_cast<std::uint8_t>(c), t);
    for (int x = 0; x < 256; ++x) {
      ASSERT_EQ(t[x & 15] ^ t[16 + (x >> 4)], gf::Mul(static_cast<std::uint8_t>(c), static_cast<std::uint8_t>(x)));
    }
  }
}

TEST(FecMatrix, ReferenceRowsFromTheSpec) {
  EXPECT_EQ(ParityRows(3, 10), "0f0806 2d301c 99e078 0be7ed 893bb3 46f1b6 bad962");
  EXPECT_EQ(ParityRows(2, 3), "0302");
  EXPECT_EQ(ParityRows(2, 4), "0302 0504");
  EXPECT_EQ(ParityRows(4, 6), "7740380e c7a70d6c");
  EXPECT_EQ(ParityRows(1, 5), "01 01 01 01");
  EXPECT_EQ(ParityRows(1, 256).size(), 255u * 3 - 1);
  EXPECT_EQ(ParityRows(7, 7), "");
}

TEST(FecMatrix, InvertRefusesSingularAndInvertsBack) {
  std::uint8_t singular[4] = {1, 2, 2, 4};  // row 1 = 2·row 0
  EXPECT_FALSE(Invert(singular, 2));
  std::uint8_t m[9] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
  std::uint8_t inv[9];
  std::copy(m, m + 9, inv);
  ASSERT_TRUE(Invert(inv, 3));
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      std::uint8_t sum = 0;
      for (int j = 0; j < 3; ++j) sum ^= gf::Mul(m[r * 3 + j], inv[j * 3 + c]);
      EXPECT_EQ(sum, r == c ? 1 : 0);
    }
  }
}

TEST(FecKernels, PortableIsAlwaysAvailableAndLast) {
  auto kernels = AvailableKernels();
  ASSERT_FALSE(kernels.empty());
  EXPECT_EQ(kernels.back(), Kernel::kPortable);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2");
  EXPECT_EQ(FindKernel(Kernel::kAvx2) != nullptr, avx2);
#endif
#if defined(__aarch64__)
  EXPECT_NE(FindKernel(Kernel::kNeon), nullptr);
#endif
#ifdef CAIRN_HAVE_ISAL
  EXPECT_EQ(kernels.front(), Kernel::kIsal);
#else
  EXPECT_EQ(FindKernel(Kernel::kIsal), nullptr);
#endif
  for (Kernel k : kernels) {
    auto parsed = ParseKernel(KernelName(k));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, k);
  }
  EXPECT_EQ(ParseKernel("sse9").status().code(), Code::kInvalidArgument);
}

// Restores CAIRN_FEC_KERNEL as it was.
class KernelEnv {
 public:
  KernelEnv() {
    if (const char* v = std::getenv("CAIRN_FEC_KERNEL")) saved_ = v, had_ = true;
  }
  ~KernelEnv() {
    if (had_) {
      setenv("CAIRN_FEC_KERNEL", saved_.c_str(), 1);
    } else {
      unsetenv("CAIRN_FEC_KERNEL");
    }
  }

 private:
  std::string saved_;
  bool had_ = false;
};

TEST(FecKernels, EnvironmentChoosesTheKernel) {
  KernelEnv restore;
  unsetenv("CAIRN_FEC_KERNEL");
  ASSERT_TRUE(SelectedKernel().ok());
  EXPECT_EQ(*SelectedKernel(), AvailableKernels().front());
  for (Kernel k : AvailableKernels()) {
    setenv("CAIRN_FEC_KERNEL", std::string(KernelName(k)).c_str(), 1);
    ASSERT_TRUE(SelectedKernel().ok());
    EXPECT_EQ(*SelectedKernel(), k);
    auto codec = Codec::Create(3, 10);
    ASSERT_TRUE(codec.ok());
    EXPECT_EQ(codec->kernel(), k);
  }
  setenv("CAIRN_FEC_KERNEL", "bogus", 1);
  EXPECT_EQ(SelectedKernel().status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Codec::Create(3, 10).status().code(), Code::kInvalidArgument);
  for (Kernel k : {Kernel::kSsse3, Kernel::kAvx2, Kernel::kNeon, Kernel::kIsal}) {
    if (FindKernel(k)) continue;
    setenv("CAIRN_FEC_KERNEL", std::string(KernelName(k)).c_str(), 1);
    auto sel = SelectedKernel();
    EXPECT_EQ(sel.status().code(), Code::kInvalidArgument);
    EXPECT_NE(sel.status().message().find("not available"), std::string_view::npos);
    EXPECT_EQ(Codec::Create(3, 10, k).status().code(), Code::kInvalidArgument);
  }
}

TEST(FecCodec, RejectsBadParameters) {
  EXPECT_EQ(Codec::Create(0, 1, Kernel::kPortable).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Codec::Create(3, 2, Kernel::kPortable).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Codec::Create(1, 257, Kernel::kPortable).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Codec::Create(256, 256, Kernel::kPortable).ok());
  EXPECT_TRUE(Codec::Create(1, 1, Kernel::kPortable).ok());

  auto codec = Codec::Create(2, 4, Kernel::kPortable);
  ASSERT_TRUE(codec.ok());
  Bytes a(8, 1), b(8, 2), out(8);
  const std::uint8_t* pieces[] = {a.data(), b.data()};
  std::uint8_t* outs[] = {out.data()};
  int bad_num[] = {4};
  EXPECT_EQ(codec->Encode(pieces, 8, bad_num, outs).code(), Code::kInvalidArgument);
  int neg_num[] = {-1};
  EXPECT_EQ(codec->Encode(pieces, 8, neg_num, outs).code(), Code::kInvalidArgument);
  int two_nums[] = {2, 3};
  EXPECT_EQ(codec->Encode(pieces, 8, two_nums, outs).code(), Code::kInvalidArgument);
  EXPECT_EQ(codec->Encode(std::span(pieces, 1), 8, bad_num, outs).code(), Code::kInvalidArgument);

  Bytes p0(8), p1(8);
  std::uint8_t* dec[] = {p0.data(), p1.data()};
  int twice[] = {3, 3};
  EXPECT_EQ(codec->Decode(pieces, twice, 8, dec).code(), Code::kInvalidArgument);
  int beyond[] = {0, 9};
  EXPECT_EQ(codec->Decode(pieces, beyond, 8, dec).code(), Code::kInvalidArgument);
  int one[] = {0};
  EXPECT_EQ(codec->Decode(std::span(pieces, 1), one, 8, std::span(dec, 1)).code(), Code::kInvalidArgument);
}

// Lengths around every kernel's vector width and the portable strip.
const std::size_t kLengths[] = {0, 1, 2, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1001, 4095, 4097, 8199};

TEST(FecCodec, EveryKernelMatchesTheReference) {
  const int kParams[][2] = {{1, 1}, {1, 3}, {2, 3}, {2, 4}, {3, 10}, {4, 6}, {5, 13}, {9, 20}, {71, 255},
                            {101, 256}, {255, 256}};
  std::mt19937 rng(42);
  for (const auto& p : kParams) {
    const int k = p[0], n = p[1];
    const Bytes parity = ParityMatrix(k, n);
    std::vector<Codec> codecs;
    for (Kernel kernel : AvailableKernels()) {
      auto codec = Codec::Create(k, n, kernel);
      ASSERT_TRUE(codec.ok());
      codecs.push_back(std::move(*codec));
    }
    for (std::size_t len : kLengths) {
      if (k > 20 && len > 127) continue;  // the reference is slow; long data is checked below
      auto pieces = RandomPieces(rng, k, len);
      const auto want = ReferenceEncode(k, n, parity, pieces);
      for (const Codec& codec : codecs) {
        ASSERT_EQ(EncodeAll(codec, pieces), want)
            << KernelName(codec.kernel()) << " " << k << "-of-" << n << " len " << len;
      }
    }
  }
}

TEST(FecCodec, EveryKernelMatchesPortableOnLongOddData) {
  std::mt19937 rng(7);
  const int kParams[][3] = {{3, 10, 100003}, {2, 4, 100003}, {13, 40, 20011}, {101, 256, 4099}};
  for (const auto& p : kParams) {
    auto pieces = RandomPieces(rng, p[0], static_cast<std::size_t>(p[2]));
    auto portable = Codec::Create(p[0], p[1], Kernel::kPortable);
    ASSERT_TRUE(portable.ok());
    const auto want = EncodeAll(*portable, pieces);
    for (Kernel kernel : AvailableKernels()) {
      auto codec = Codec::Create(p[0], p[1], kernel);
      ASSERT_TRUE(codec.ok());
      EXPECT_EQ(EncodeAll(*codec, pieces), want) << KernelName(kernel) << " " << p[0] << "-of-" << p[1];
    }
  }
}

TEST(FecCodec, EncodesAChoiceOfBlocksInAnyOrder) {
  std::mt19937 rng(3);
  auto pieces = RandomPieces(rng, 3, 333);
  for (Kernel kernel : AvailableKernels()) {
    auto codec = Codec::Create(3, 10, kernel);
    ASSERT_TRUE(codec.ok());
    const auto all = EncodeAll(*codec, pieces);
    const std::vector<int> nums = {9, 1, 4, 5, 6, 4, 0, 8};
    std::vector<Bytes> some(nums.size(), Bytes(333));
    auto outs = MutPtrs(some);
    ASSERT_TRUE(codec->Encode(Ptrs(pieces), 333, nums, outs).ok());
    for (std::size_t i = 0; i < nums.size(); ++i) {
      EXPECT_EQ(some[i], all[static_cast<std::size_t>(nums[i])]) << KernelName(kernel) << " block " << nums[i];
    }
    // A systematic block may be written over its own piece.
    auto copy = pieces;
    std::uint8_t* own[] = {copy[1].data()};
    int one[] = {1};
    ASSERT_TRUE(codec->Encode(Ptrs(copy), 333, one, own).ok());
    EXPECT_EQ(copy[1], pieces[1]);
  }
}

// Calls fn(subset) for every k-subset of 0..n-1, in lexicographic order.
template <typename Fn>
void ForEachSubset(int k, int n, Fn fn) {
  std::vector<int> s(static_cast<std::size_t>(k));
  for (int i = 0; i < k; ++i) s[static_cast<std::size_t>(i)] = i;
  while (true) {
    fn(s);
    int i = k - 1;
    while (i >= 0 && s[static_cast<std::size_t>(i)] == n - k + i) --i;
    if (i < 0) return;
    ++s[static_cast<std::size_t>(i)];
    for (int j = i + 1; j < k; ++j) s[static_cast<std::size_t>(j)] = s[static_cast<std::size_t>(j - 1)] + 1;
  }
}

TEST(FecCodec, DecodesFromEveryKSubset) {
  const int kParams[][2] = {{1, 1}, {1, 3}, {2, 3}, {2, 4}, {3, 5}, {3, 10}, {4, 6}, {5, 9}};
  std::mt19937 rng(11);
  for (const auto& p : kParams) {
    const int k = p[0], n = p[1];
    for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{77}}) {
      auto pieces = RandomPieces(rng, k, len);
      for (Kernel kernel : AvailableKernels()) {
        auto codec = Codec::Create(k, n, kernel);
        ASSERT_TRUE(codec.ok());
        const auto blocks = EncodeAll(*codec, pieces);
        ForEachSubset(k, n, [&](const std::vector<int>& subset) {
          // Give the blocks in reverse order: order must not matter.
          std::vector<int> nums(subset.rbegin(), subset.rend());
          std::vector<const std::uint8_t*> given;
          for (int num : nums) given.push_back(blocks[static_cast<std::size_t>(num)].data());
          std::vector<Bytes> out(static_cast<std::size_t>(k), Bytes(len, 0xEE));
          auto outs = MutPtrs(out);
          ASSERT_TRUE(codec->Decode(given, nums, len, outs).ok());
          EXPECT_EQ(out, pieces) << KernelName(kernel) << " " << k << "-of-" << n << " len " << len
                                 << " from " << ::testing::PrintToString(nums);
        });
      }
    }
  }
}

TEST(FecCodec, DecodesLargeCodesFromParity) {
  std::mt19937 rng(5);
  const int kParams[][2] = {{71, 255}, {101, 256}, {128, 256}};
  for (const auto& p : kParams) {
    const int k = p[0], n = p[1];
    auto pieces = RandomPieces(rng, k, 301);
    for (Kernel kernel : AvailableKernels()) {
      auto codec = Codec::Create(k, n, kernel);
      ASSERT_TRUE(codec.ok());
      const auto blocks = EncodeAll(*codec, pieces);
      // The last k blocks: as much parity as there is, shuffled.
      std::vector<int> nums;
      for (int i = n - k; i < n; ++i) nums.push_back(i);
      std::shuffle(nums.begin(), nums.end(), rng);
      std::vector<const std::uint8_t*> given;
      for (int num : nums) given.push_back(blocks[static_cast<std::size_t>(num)].data());
      std::vector<Bytes> out(static_cast<std::size_t>(k), Bytes(301));
      auto outs = MutPtrs(out);
      ASSERT_TRUE(codec->Decode(given, nums, 301, outs).ok());
      EXPECT_EQ(out, pieces) << KernelName(kernel) << " " << k << "-of-" << n;
    }
  }
}

TEST(FecCodec, PieceSizeIsTahoesPadding) {
  EXPECT_EQ(PieceSize(0, 3), 0u);
  EXPECT_EQ(PieceSize(1, 3), 1u);
  EXPECT_EQ(PieceSize(3, 3), 1u);
  EXPECT_EQ(PieceSize(4, 3), 2u);
  EXPECT_EQ(PieceSize(1 << 20, 3), 349526u);
  EXPECT_EQ(PieceSize(1000, 1), 1000u);
}

#ifdef CAIRN_HAVE_ISAL
TEST(FecKernels, IsalTablesAreOurTables) {
  auto codec = Codec::Create(13, 40, Kernel::kPortable);
  ASSERT_TRUE(codec.ok());
  Bytes coefs;
  for (int r = 13; r < 40; ++r) {
    auto row = codec->ParityRow(r);
    coefs.insert(coefs.end(), row.begin(), row.end());
  }
  Bytes ours(coefs.size() * 32), isal(coefs.size() * 32);
  InitTablesNibble(13, 27, coefs.data(), ours.data());
  ec_init_tables(13, 27, coefs.data(), isal.data());
  EXPECT_EQ(ours, isal);
}
#endif

}  // namespace
}  // namespace cairn::fec
