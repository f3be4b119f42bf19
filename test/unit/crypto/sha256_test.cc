// SHA-256 of our own (crypto/sha256.h): FIPS 180-4 known answers, and the
// SHA-NI and portable compression functions against mbedTLS for every
// length up to a few blocks, whole and in pieces.
#include "crypto/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/crypto/hash.h"
#include "cairn/crypto/mbedtls_compat.h"
#include "support/vectors.h"

namespace cairn::crypto {
namespace {

std::string Digest(const std::string& data, std::size_t piece) {
  Sha256State s;
  for (std::size_t off = 0; off < data.size(); off += piece) {
    s.Update(data.data() + off, std::min(piece, data.size() - off));
  }
  std::uint8_t out[32];
  s.Finish(out);
  return std::string(reinterpret_cast<char*>(out), 32);
}

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(testing::Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(testing::Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(testing::Hex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(testing::Hex(Digest(std::string(1000000, 'a'), 4097)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EveryImplementationAgreesWithMbedTls) {
  std::string data(700, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  for (std::size_t len = 0; len <= data.size(); ++len) {
    std::string msg = data.substr(0, len);
    unsigned char ref[32];
    ASSERT_EQ(compat::Sha256(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), ref), 0);
    std::string expected(reinterpret_cast<char*>(ref), 32);
    ASSERT_EQ(Digest(msg, len + 1), expected) << "length " << len;
    ASSERT_EQ(Digest(msg, 13), expected) << "length " << len << " in pieces";
  }
  Sha256BlocksFn ni = Sha256BlocksShaNi();
  if (ni == nullptr) {
    std::printf("SHA-NI: not on this CPU; the portable function is the one in use\n");
    EXPECT_STREQ(Sha256Implementation(), "portable");
    return;
  }
  for (std::size_t blocks = 0; blocks <= 10; ++blocks) {
    std::uint32_t a[8], b[8];
    for (int i = 0; i < 8; ++i) a[i] = b[i] = 0x9e3779b9u * static_cast<std::uint32_t>(i + 1);
    Sha256BlocksPortable(a, reinterpret_cast<const std::uint8_t*>(data.data()), blocks);
    ni(b, reinterpret_cast<const std::uint8_t*>(data.data()), blocks);
    EXPECT_EQ(std::memcmp(a, b, sizeof a), 0) << blocks << " blocks";
  }
}

// Two messages hashed together (UpdateTwo) give what each gives alone, from
// any partial-block offsets of the two and at any length; the two-message
// SHA-NI function agrees with the portable one block for block.
TEST(Sha256, TwoAtOnceAgreesWithOneAtATime) {
  std::string data(1500, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + i / 251);
  const std::size_t prefixes[] = {0, 1, 13, 63, 64, 65, 100};
  int checked = 0;
  for (std::size_t pa : prefixes) {
    for (std::size_t pb : prefixes) {
      for (std::size_t len : {0, 1, 55, 64, 127, 128, 129, 640, 1000}) {
        Sha256State a, b, a1, b1;
        a.Update(data.data() + 200, pa);
        a1.Update(data.data() + 200, pa);
        b.Update(data.data() + 300, pb);
        b1.Update(data.data() + 300, pb);
        Sha256State::UpdateTwo(a, data.data() + 7, b, data.data() + 400, len);
        a1.Update(data.data() + 7, len);
        b1.Update(data.data() + 400, len);
        std::uint8_t d[4][32];
        a.Finish(d[0]);
        a1.Finish(d[1]);
        b.Finish(d[2]);
        b1.Finish(d[3]);
        ASSERT_EQ(std::memcmp(d[0], d[1], 32), 0) << "a: prefix " << pa << ", length " << len;
        ASSERT_EQ(std::memcmp(d[2], d[3], 32), 0) << "b: prefix " << pb << ", length " << len;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 7 * 7 * 9);
  Sha256Blocks2Fn ni2 = Sha256Blocks2ShaNi();
  if (ni2 == nullptr) {
    std::printf("SHA-NI: not on this CPU; two messages are hashed one after the other\n");
    return;
  }
  for (std::size_t blocks = 0; blocks <= 10; ++blocks) {
    std::uint32_t a[8], b[8], ra[8], rb[8];
    for (int i = 0; i < 8; ++i) {
      a[i] = ra[i] = 0x9e3779b9u * static_cast<std::uint32_t>(i + 1);
      b[i] = rb[i] = 0x7f4a7c15u * static_cast<std::uint32_t>(i + 3);
    }
    const auto* m = reinterpret_cast<const std::uint8_t*>(data.data());
    Sha256BlocksPortable(ra, m + 3, blocks);
    Sha256BlocksPortable(rb, m + 800, blocks);
    ni2(a, m + 3, b, m + 800, blocks);
    EXPECT_EQ(std::memcmp(a, ra, sizeof a), 0) << blocks << " blocks, first message";
    EXPECT_EQ(std::memcmp(b, rb, sizeof b), 0) << blocks << " blocks, second message";
  }
}

// The tagged-hash helpers built on UpdateTwo give Tahoe's tagged hashes.
TEST(Sha256, TaggedHashesTwoAtATimeMatchOneByOne) {
  std::string data(5000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 91 + 5);
  std::string_view v(data);
  // Equal lengths (paired), an odd one out, unequal neighbours, empty.
  std::vector<std::string_view> values = {v.substr(0, 1000), v.substr(1000, 1000), v.substr(2000, 1000),
                                          v.substr(3000, 999), v.substr(4000, 10),  v.substr(4010, 0),
                                          v.substr(4100, 700)};
  std::vector<std::string> got = TaggedHashes("allmydata_encoded_subshare_v1", values);
  ASSERT_EQ(got.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(got[i], TaggedHash("allmydata_encoded_subshare_v1", values[i])) << "value " << i;
  }
  EXPECT_EQ(TaggedHashes("t", {v.substr(0, 64), v.substr(64, 64)}, 16)[1], TaggedHash("t", v.substr(64, 64), 16));
  // One pass for a segment's hash and the running crypttext hash.
  Sha256dHasher running("allmydata_crypttext_v1"), alone("allmydata_crypttext_v1");
  for (std::size_t off = 0; off < 4000; off += 1300) {
    std::string_view seg = v.substr(off, std::min<std::size_t>(1300, 4000 - off));
    EXPECT_EQ(TaggedHashAndUpdate("allmydata_crypttext_segment_v1", seg, running),
              TaggedHash("allmydata_crypttext_segment_v1", seg));
    alone.Update(seg);
  }
  EXPECT_EQ(running.Finish(), alone.Finish());
}

}  // namespace
}  // namespace cairn::crypto
