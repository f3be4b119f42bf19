// Tahoe-LAFS's SPKI hash vectors (test/vectors/spki-hash.json): RSA-2048,
// RSA-4096 and Ed25519 certificates, the SPKI DER and the hash a Tahoe client
// pins in a NURL.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "cairn/tls/identity.h"
#include "support/vectors.h"

namespace cairn::tls {
namespace {

TEST(SpkiVectors, EveryCertificateGivesTahoesHash) {
  Json doc = testing::LoadVectors("spki-hash.json");
  int checked = 0;
  const cJSON* v;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    std::string pem = testing::Str(v, "certificate_pem");
    auto spki = SpkiDerOfCertPem(pem);
    ASSERT_TRUE(spki.ok()) << spki.status().ToString();
    EXPECT_EQ(*spki, testing::Base64Decode(testing::Str(v, "expected_spki_b64")));
    auto hash = SpkiHashOfCertPem(pem);
    ASSERT_TRUE(hash.ok()) << hash.status().ToString();
    EXPECT_EQ(*hash, testing::Str(v, "expected_hash"));
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(SpkiVectors, OurOwnCertificateAgreesWithMbedTls) {
  auto id = GenerateIdentity();
  ASSERT_TRUE(id.ok());
  auto spki = SpkiDerOfCertPem(id->cert_pem);
  ASSERT_TRUE(spki.ok());
  EXPECT_EQ(*SpkiHashOfCertPem(id->cert_pem),
            SpkiHashOfSpkiDer(reinterpret_cast<const unsigned char*>(spki->data()), spki->size()));
  EXPECT_EQ(SpkiHashOfCertPem("garbage").status().code(), Code::kInvalidArgument);
  std::string truncated = id->cert_pem.substr(0, 200) + "\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE(SpkiHashOfCertPem(truncated).ok());
}

}  // namespace
}  // namespace cairn::tls
