// RSA-2048 for mutable files: PKCS#8 wrapping, PSS with a 32-byte salt,
// refusal of other key sizes, tampering detected.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include <optional>

#include "cairn/crypto/rsa.h"
#include "cairn/tls/identity.h"
#include "support/vectors.h"

namespace cairn::crypto {
namespace {

// One key for every test: generation is slow under the sanitizers.
const RsaKey& TestKey() {
  static RsaKey* key = [] {
    auto k = RsaKey::Generate();
    CAIRN_CHECK(k.ok(), "RSA key generation failed");
    return new RsaKey(std::move(k).value());
  }();
  return *key;
}

TEST(Rsa, SignVerifyAndTamper) {
  const RsaKey& key = TestKey();
  ASSERT_TRUE(key.has_private());
  auto sig = key.Sign("the signed prefix");
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(sig->size(), 256u);
  EXPECT_TRUE(key.Verify("the signed prefix", *sig).ok());
  EXPECT_EQ(key.Verify("the signed prefiX", *sig).code(), Code::kIntegrity);
  std::string bad = *sig;
  bad[100] ^= 4;
  EXPECT_EQ(key.Verify("the signed prefix", bad).code(), Code::kIntegrity);
  EXPECT_EQ(key.Verify("the signed prefix", sig->substr(1)).code(), Code::kIntegrity);
  // PSS is randomized: two signatures differ, both verify.
  auto again = key.Sign("the signed prefix");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sig);
  // The public half alone verifies.
  auto pub = RsaKey::ParsePublicDer(key.PublicSpkiDer());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_FALSE(pub->has_private());
  EXPECT_TRUE(pub->Verify("the signed prefix", *sig).ok());
}

TEST(Rsa, Pkcs8RoundTripsAndHasTheKnownPrefix) {
  const RsaKey& key = TestKey();
  std::string der = key.PrivatePkcs8Der();
  EXPECT_GE(der.size(), 1210u);
  EXPECT_LE(der.size(), 1220u);
  // SEQUENCE, INTEGER 0, rsaEncryption AlgorithmIdentifier.
  EXPECT_EQ(testing::Hex(der.substr(4, 18)), "020100300d06092a864886f70d0101010500");
  auto back = RsaKey::ParsePrivate(der);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->PrivatePkcs8Der(), der);
  EXPECT_EQ(back->PublicSpkiDer(), key.PublicSpkiDer());
  EXPECT_EQ(key.PublicSpkiDer().size(), 294u);
}

TEST(Rsa, VectorKeysParseFromPkcs1Pem) {
  Json doc = testing::LoadVectors("caps.json");
  const cJSON* v;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    if (testing::Str(v, "kind") != "ssk") continue;
    auto key = RsaKey::ParsePrivate(testing::Str(v, "key_pem"));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    auto sig = key->Sign("x");
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(key->Verify("x", *sig).ok());
    return;  // one is enough here; vectors_test derives caps from all of them
  }
  FAIL() << "no ssk vector";
}

TEST(Rsa, RefusesGarbageAndOtherKeys) {
  EXPECT_EQ(RsaKey::ParsePrivate("not a key").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RsaKey::ParsePublicDer(std::string(294, '\0')).status().code(), Code::kInvalidArgument);
  // A P-256 key (the node's TLS identity) is refused as not RSA.
  auto identity = tls::GenerateIdentity();
  ASSERT_TRUE(identity.ok());
  auto ec = RsaKey::ParsePrivate(identity->key_pem);
  ASSERT_FALSE(ec.ok());
  EXPECT_NE(ec.status().message().find("not an RSA key"), std::string_view::npos) << ec.status().ToString();
  EXPECT_EQ(ec.status().code(), Code::kInvalidArgument);
}

TEST(Rsa, WrapIsDerCorrectForShortAndLongBodies) {
  EXPECT_EQ(testing::Hex(WrapPkcs1InPkcs8(std::string("\x30\x00", 2))),
            "3016020100300d06092a864886f70d010101050004023000");
  // tahoe-protocol.md 3.3 gives the prefix for a 1192-byte (0x4a8) RSAPrivateKey.
  std::string w = WrapPkcs1InPkcs8(std::string(0x4a8, 'x'));
  EXPECT_EQ(testing::Hex(w.substr(0, 26)), "308204be020100300d06092a864886f70d0101010500048204a8");
}

TEST(Rsa, OffLoopOperationsCompleteOnALaterTurn) {
  Loop loop;
  std::optional<Result<RsaKey>> generated;
  GenerateRsaKeyOffLoop(loop, [&](Result<RsaKey> k) { generated.emplace(std::move(k)); });
  EXPECT_FALSE(generated.has_value());  // never inside the call
  ASSERT_TRUE(loop.RunUntil([&] { return generated.has_value(); }, 60000));
  ASSERT_TRUE(generated->ok()) << generated->status().ToString();
  auto key = std::make_shared<const RsaKey>(std::move(*generated).value());
  std::optional<Result<std::string>> sig;
  SignOffLoop(loop, key, "message", [&](Result<std::string> s) { sig.emplace(std::move(s)); });
  EXPECT_FALSE(sig.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return sig.has_value(); }, 60000));
  ASSERT_TRUE(sig->ok());
  EXPECT_TRUE(key->Verify("message", **sig).ok());
}

}  // namespace
}  // namespace cairn::crypto
