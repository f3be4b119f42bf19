// Tahoe-LAFS's own vectors (test/vectors/): every SSK cap from its key, the
// CHK key field from the convergent-key derivation, every cap string parsed
// and printed back unchanged, and the lease renewal secrets.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "support/vectors.h"

namespace cairn::caps {
namespace {

using testing::Base64Decode;
using testing::LoadVectors;
using testing::Str;

std::string Sample(const cJSON* v) {
  std::string seed = Base64Decode(Str(v, "sample_seed_b64"));
  std::size_t length = static_cast<std::size_t>(testing::Num(v, "sample_length"));
  std::string data;
  data.reserve(length);
  while (data.size() < length) data += seed;
  data.resize(length);
  return data;
}

TEST(CapVectors, EverySskCapFromItsKey) {
  Json doc = LoadVectors("caps.json");
  const cJSON* vectors = cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors");
  int checked = 0;
  const cJSON* v;
  cJSON_ArrayForEach(v, vectors) {
    if (Str(v, "kind") != "ssk") continue;
    auto key = crypto::RsaKey::ParsePrivate(Str(v, "key_pem"));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    MutableKeys keys = DeriveMutableKeys(key->PrivatePkcs8Der(), key->PublicSpkiDer());
    MutableFormat format = Str(v, "format") == "mdmf" ? MutableFormat::kMdmf : MutableFormat::kSdmf;
    EXPECT_EQ(FormatCap(MutableWriteCap(keys, format)), Str(v, "expected"));
    ++checked;
  }
  EXPECT_EQ(checked, 120);
}

TEST(CapVectors, ChkKeyFieldFromTheConvergentKey) {
  Json doc = LoadVectors("caps.json");
  const cJSON* v;
  int checked = 0;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    if (Str(v, "kind") != "chk") continue;
    std::string data = Sample(v);
    auto k = static_cast<std::uint32_t>(testing::Num(v, "required"));
    auto n = static_cast<std::uint32_t>(testing::Num(v, "total"));
    std::uint64_t segsize = ChkSegmentSize(data.size(), testing::Num(v, "segment_size"), k);
    ConvergentKeyHasher hasher(Base64Decode(Str(v, "convergence_b64")), k, n, segsize);
    hasher.Update(data);
    auto cap = ParseCap(Str(v, "expected"));
    ASSERT_TRUE(cap.ok()) << cap.status().ToString();
    EXPECT_EQ(cap->kind, CapKind::kChk);
    EXPECT_EQ(Base32Encode(hasher.Finish()), Base32Encode(cap->key)) << Str(v, "expected");
    EXPECT_EQ(cap->k, k);
    EXPECT_EQ(cap->n, n);
    EXPECT_EQ(cap->size, data.size());
    ++checked;
  }
  EXPECT_EQ(checked, 60);
}

TEST(CapVectors, EveryCapRoundTripsAndDerivesConsistently) {
  Json doc = LoadVectors("caps.json");
  const cJSON* v;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    std::string text = Str(v, "expected");
    auto cap = ParseCap(text);
    ASSERT_TRUE(cap.ok()) << text << ": " << cap.status().ToString();
    EXPECT_EQ(FormatCap(*cap), text);
    auto read = ToReadCap(*cap);
    auto verify = ToVerifyCap(*cap);
    ASSERT_TRUE(read.ok() && verify.ok());
    // Every form of a file names the same storage index.
    EXPECT_EQ(*StorageIndexOf(*cap), *StorageIndexOf(*read));
    EXPECT_EQ(*StorageIndexOf(*cap), *StorageIndexOf(*verify));
    auto reparsed = ParseCap(FormatCap(*verify));
    ASSERT_TRUE(reparsed.ok());
    EXPECT_EQ(reparsed->kind, verify->kind);
  }
}

TEST(CapVectors, ExampleFromTheSpecification) {
  // tahoe-protocol.md 5.2: convergence "aaaaaaaaaaaaaaaa", 1-of-1, 56 bytes of 'a'.
  ConvergentKeyHasher hasher("aaaaaaaaaaaaaaaa", 1, 1, 56);
  hasher.Update(std::string(56, 'a'));
  std::string key = hasher.Finish();
  EXPECT_EQ(Base32Encode(key), "yzxcoagbetwet65ltjpbqyli3m");
  EXPECT_EQ(Base32Encode(ChkStorageIndexOf(key)), "i5nhq74zw2crkop634ra4hrvzm");
}

TEST(LeaseVectors, BucketRenewalSecrets) {
  Json doc = LoadVectors("lease-renewal.json");
  const cJSON* v;
  int checked = 0;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    auto secret = Base32Decode(Str(v, "lease_secret"));
    auto si = Base32Decode(Str(v, "storage_index"));
    auto tubid = Base32Decode(Str(v, "tubid"));
    ASSERT_TRUE(secret.ok() && si.ok() && tubid.ok());
    LeaseSecrets s = LeaseSecretsFor(*secret, *si, *tubid);
    EXPECT_EQ(Base32Encode(s.renew), Str(v, "expected"));
    EXPECT_NE(s.cancel, s.renew);
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

// The chain recorded on a real Tahoe-LAFS grid (test/vectors/lease-chain.json):
// every intermediate secret, and the renew and cancel secrets the server
// recorded for the share, from the client's private/secret and the server's
// tub id.
TEST(LeaseVectors, TheWholeChainOfARealGrid) {
  Json doc = LoadVectors("lease-chain.json");
  const cJSON* v = doc.get();
  auto secret = Base32Decode(Str(v, "client_lease_secret"));
  auto si = Base32Decode(Str(v, "storage_index"));
  auto tubid = Base32Decode(Str(v, "tubid"));
  ASSERT_TRUE(secret.ok() && si.ok() && tubid.ok());
  ASSERT_EQ(secret->size(), 32u);
  ASSERT_EQ(tubid->size(), 20u);
  std::string client_renew = crypto::TaggedHash(*secret, crypto::tags::kClientRenewal);
  std::string client_cancel = crypto::TaggedHash(*secret, crypto::tags::kClientCancel);
  EXPECT_EQ(testing::Hex(client_renew), Str(v, "client_renewal_secret_hex"));
  EXPECT_EQ(testing::Hex(client_cancel), Str(v, "client_cancel_secret_hex"));
  EXPECT_EQ(testing::Hex(crypto::TaggedPairHash(crypto::tags::kFileRenewal, client_renew, *si)),
            Str(v, "file_renewal_secret_hex"));
  EXPECT_EQ(testing::Hex(crypto::TaggedPairHash(crypto::tags::kFileCancel, client_cancel, *si)),
            Str(v, "file_cancel_secret_hex"));
  LeaseSecrets s = LeaseSecretsFor(*secret, *si, *tubid);
  EXPECT_EQ(testing::Hex(s.renew), Str(v, "renew_secret_hex"));
  EXPECT_EQ(testing::Hex(s.cancel), Str(v, "cancel_secret_hex"));
}

}  // namespace
}  // namespace cairn::caps
