// GBS messages and header fields: cbor2's bytes for Tahoe's messages (from
// tahoe-protocol.md 1.3), round trips, closed maps, bounds; secrets and
// ranges parsed as the real server parses them.
#include <gtest/gtest.h>

#include "cairn/gbs/fields.h"
#include "cairn/gbs/messages.h"
#include "support/vectors.h"

namespace cairn::gbs {
namespace {

using testing::Hex;
using testing::Unhex;

TEST(GbsMessages, AllocateRequestIsCbor2sEncoding) {
  // {"share-numbers": {1, 7}, "allocated-size": 48}
  std::string cbor2 = "a2" "6d" + Hex("share-numbers") + "d9010282" "0107" "6e" + Hex("allocated-size") + "1830";
  EXPECT_EQ(Hex(EncodeAllocateRequest({{1, 7}, 48})), cbor2);
  auto back = DecodeAllocateRequest(Unhex(cbor2));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->share_numbers, (ShareNumbers{1, 7}));
  EXPECT_EQ(back->allocated_size, 48u);
}

TEST(GbsMessages, RtwResponseDataIsAMap) {
  // {"success": True, "data": {3: [b"ab"]}}
  RtwResponse p;
  p.success = true;
  p.data[3] = {"ab"};
  std::string cbor2 = "a2" "67" + Hex("success") + "f5" "64" + Hex("data") + "a1" "03" "81" "42" "6162";
  EXPECT_EQ(Hex(EncodeRtwResponse(p)), cbor2);
  auto back = DecodeRtwResponse(Unhex(cbor2));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->success);
  EXPECT_EQ(back->data.at(3), std::vector<std::string>{"ab"});
}

TEST(GbsMessages, VersionKeysAreByteStrings) {
  Version v;
  v.maximum_immutable_share_size = 1000;
  v.available_space = 1000;
  v.application_version = "cairn/0.1";
  std::string enc = EncodeVersion(v);
  EXPECT_EQ(static_cast<unsigned char>(enc[1]), 0x58);  // bstr with a one-byte length: the protocol URL
  auto back = DecodeVersion(enc);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->maximum_mutable_share_size, kMaxMutableShareSize);
  EXPECT_EQ(back->application_version, "cairn/0.1");
}

TEST(GbsMessages, RtwRequestRoundTripsWithViewsIntoTheBody) {
  RtwRequest q;
  q.shares[0].test.push_back({0, 2, "hi"});
  q.shares[0].write.push_back({0, "hello"});
  q.shares[5].new_length = 0;
  q.read.push_back({0, 4000});
  std::string body = EncodeRtwRequest(q);
  auto back = DecodeRtwRequest(body);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->shares.size(), 2u);
  EXPECT_EQ(back->shares.at(0).test[0].specimen, "hi");
  EXPECT_EQ(back->shares.at(0).write[0].data, "hello");
  EXPECT_FALSE(back->shares.at(0).new_length.has_value());
  EXPECT_EQ(back->shares.at(5).new_length, 0u);
  EXPECT_EQ(back->read[0].size, 4000u);
  EXPECT_EQ(EncodeRtwRequest(*back), body);
}

TEST(GbsMessages, ClosedMapsAndBounds) {
  // An extra key, a missing key, a repeated key, trailing bytes.
  EXPECT_FALSE(DecodeCorruption(Unhex("a2" "66" + Hex("reason") + "61" "78" "61" "79" "61" "7a")).ok());
  EXPECT_FALSE(DecodeAllocateRequest(Unhex("a1" "6e" + Hex("allocated-size") + "01")).ok());
  EXPECT_FALSE(DecodeCorruption(Unhex("a2" "66" + Hex("reason") + "6178" "66" + Hex("reason") + "6179")).ok());
  EXPECT_FALSE(DecodeShareSet(EncodeShareSet({1}) + "00").ok());
  // A set without tag 258 is refused.
  EXPECT_FALSE(DecodeShareSet(Unhex("820102")).ok());
  // Share numbers above 255.
  EXPECT_FALSE(DecodeShareSet(Unhex("d90102" "81" "190100")).ok());
  // 31 test vectors for one share.
  RtwRequest q;
  for (int i = 0; i < 31; ++i) q.shares[0].test.push_back({0, 0, ""});
  EXPECT_EQ(DecodeRtwRequest(EncodeRtwRequest(q)).status().code(), Code::kInvalidArgument);
  // An empty reason.
  EXPECT_FALSE(DecodeCorruption(EncodeCorruption("")).ok());
  EXPECT_EQ(*DecodeCorruption(EncodeCorruption("bad hash")), "bad hash");
  EXPECT_EQ(*DecodeRequired(EncodeRequired({{10, 20}})), (std::vector<Range>{{10, 20}}));
  AllocateResponse a{{1, 2}, {3}};
  auto ab = DecodeAllocateResponse(EncodeAllocateResponse(a));
  ASSERT_TRUE(ab.ok());
  EXPECT_EQ(ab->already_have, (ShareNumbers{1, 2}));
  EXPECT_EQ(ab->allocated, (ShareNumbers{3}));
}

TEST(GbsFields, AuthorizationIsStandardBase64OfTheSwissnum) {
  EXPECT_EQ(AuthorizationValue("abc"), "Tahoe-LAFS YWJj");
  EXPECT_TRUE(AuthorizationMatches("Tahoe-LAFS YWJj", "abc"));
  EXPECT_FALSE(AuthorizationMatches("Tahoe-LAFS YWJk", "abc"));
  EXPECT_FALSE(AuthorizationMatches("Tahoe-LAFS YWJj ", "abc"));
  EXPECT_FALSE(AuthorizationMatches("", "abc"));
}

TEST(GbsFields, SecretsMustBeExactlyTheRequiredSet) {
  std::string lease(32, 'L');
  std::string renew = SecretValue(SecretKind::kLeaseRenew, lease);
  std::string cancel = SecretValue(SecretKind::kLeaseCancel, lease);
  std::string upload = SecretValue(SecretKind::kUpload, std::string(20, 'u'));
  auto ok = ParseSecrets({renew, cancel, upload},
                         {SecretKind::kLeaseRenew, SecretKind::kLeaseCancel, SecretKind::kUpload});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*(*ok)[SecretKind::kUpload], std::string(20, 'u'));
  // Missing, extra, unknown, short lease secret, bad base64, empty.
  EXPECT_FALSE(ParseSecrets({renew}, {SecretKind::kLeaseRenew, SecretKind::kLeaseCancel}).ok());
  EXPECT_FALSE(ParseSecrets({upload}, {}).ok());
  EXPECT_FALSE(ParseSecrets({"magic-secret YWJj"}, {}).ok());
  EXPECT_FALSE(ParseSecrets({SecretValue(SecretKind::kLeaseRenew, "short")}, {SecretKind::kLeaseRenew}).ok());
  EXPECT_FALSE(ParseSecrets({"upload-secret ***"}, {SecretKind::kUpload}).ok());
  EXPECT_FALSE(ParseSecrets({"upload-secret "}, {SecretKind::kUpload}).ok());
  EXPECT_TRUE(ParseSecrets({}, {}).ok());
}

TEST(GbsFields, RangesAsTheRealServerParsesThem) {
  auto cr = ParseContentRange("bytes 0-999999/*");
  ASSERT_TRUE(cr.ok());
  EXPECT_EQ(cr->length(), 1000000u);
  EXPECT_TRUE(ParseContentRange("bytes 10-19/48").ok());
  for (const char* bad : {"bytes 10-9/*", "bytes 10-19", "items 0-1/*", "bytes -1/*", "bytes 0-1/1", "bytes 0-x/*"}) {
    EXPECT_FALSE(ParseContentRange(bad).ok()) << bad;
  }
  auto r = ParseRange("bytes=0-3999");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->last, 3999u);
  for (const char* bad : {"bytes=5-", "bytes=-5", "bytes=0-1,5-6", "bytes=9-2", "lines=0-1", "bytes 0-1"}) {
    EXPECT_FALSE(ParseRange(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatContentRange(0, 99), "bytes 0-99/*");
}

}  // namespace
}  // namespace cairn::gbs
