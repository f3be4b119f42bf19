// SHA-256 of our own (crypto/sha256.h): FIPS 180-4 known answers, and the
// SHA-NI and portable compression functions against mbedTLS for every
// length up to a few blocks, whole and in pieces.
#include "crypto/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

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

}  // namespace
}  // namespace cairn::crypto
