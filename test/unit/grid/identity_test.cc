// Server identities (grid/identity.h): a cairn node's from its NURL, a
// Tahoe-LAFS node's from its announcement (tub id from the FURL, the
// permutation seed and its fallbacks), and the permuted order of a set of
// announcements against one computed independently with Python's hashlib
// (test/vectors/permuted-order.json).
#include "cairn/grid/identity.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include "cairn/core/base32.h"
#include "cairn/crypto/hash.h"
#include "cairn/gbs/nurl.h"
#include "cairn/grid/placement.h"
#include "support/vectors.h"

namespace cairn::grid {
namespace {

using testing::Str;

const char kNurl[] = "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:4000/swiss#v=1";

TEST(Identity, ANurlAloneIsACairnNodeSeededByItsSpkiHash) {
  auto id = CairnIdentity(kNurl);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->kind, IdentityKind::kCairn);
  EXPECT_EQ(id->tub_id, std::string(20, '\0'));
  EXPECT_EQ(id->permutation_seed, id->tub_id);
  EXPECT_EQ(id->tub_id, *gbs::ServerSeed(*gbs::ParseNurl(kNurl)));
  EXPECT_STREQ(IdentityKindName(id->kind), "cairn");
  EXPECT_FALSE(CairnIdentity("pb://x@h:1/s").ok());
}

TEST(Identity, TheTubIdComesFromTheFurl) {
  auto tub = TubIdOfFurl("pb://rey27xyj6db57olcf56rihhartvhkvd6@tcp:10.0.0.1:1234/secretswissnum");
  ASSERT_TRUE(tub.ok()) << tub.status().ToString();
  EXPECT_EQ(Base32Encode(*tub), "rey27xyj6db57olcf56rihhartvhkvd6");
  EXPECT_TRUE(TubIdOfFurl("pb+tor://rey27xyj6db57olcf56rihhartvhkvd6@tor:x.onion:1/s").ok());
  // Not base32 of 20 bytes, no '@', another scheme: refused, the swissnum never quoted.
  auto bad = TubIdOfFurl("pb://rey27xyj6db57olcf56rihhartvhkvd@tcp:h:1/secretswissnum");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("secretswissnum"), std::string::npos);
  EXPECT_FALSE(TubIdOfFurl("pb://noat/secretswissnum").ok());
  EXPECT_FALSE(TubIdOfFurl("http://rey27xyj6db57olcf56rihhartvhkvd6@h:1/s").ok());
  EXPECT_FALSE(TubIdOfFurl("").ok());
}

TEST(Identity, AnAnnouncementGivesTheTubIdAndThePermutationSeed) {
  const std::string furl = "pb://rey27xyj6db57olcf56rihhartvhkvd6@tcp:h:1/s";
  const std::string key = "7efuo5epthuik2k5rrg7pxiy7woldrbjlpd2ayyctf5dpjr4m4pq";
  auto announced = AnnouncedIdentity(furl, key, "");
  ASSERT_TRUE(announced.ok()) << announced.status().ToString();
  EXPECT_EQ(announced->kind, IdentityKind::kAnnounced);
  EXPECT_EQ(Base32Encode(announced->tub_id), "rey27xyj6db57olcf56rihhartvhkvd6");
  EXPECT_EQ(Base32Encode(announced->permutation_seed), key);
  // No seed announced: the v0- key of the server id, else SHA-256 of the id.
  auto from_key = AnnouncedIdentity(furl, "", "v0-" + key);
  ASSERT_TRUE(from_key.ok());
  EXPECT_EQ(from_key->permutation_seed, announced->permutation_seed);
  auto from_name = AnnouncedIdentity(furl, "", "my-storage");
  ASSERT_TRUE(from_name.ok());
  EXPECT_EQ(from_name->permutation_seed, crypto::Sha256("my-storage"));
  // Nothing to take the seed from, no FURL, a seed that is not base32.
  EXPECT_FALSE(AnnouncedIdentity(furl, "", "").ok());
  EXPECT_FALSE(AnnouncedIdentity("", key, "").ok());
  EXPECT_FALSE(AnnouncedIdentity(furl, "NOT-BASE32", "").ok());
}

TEST(Identity, PermutedOrderOfAnnouncementsIsTahoes) {
  Json doc = testing::LoadVectors("permuted-order.json");
  auto si = Base32Decode(Str(doc.get(), "storage_index"));
  ASSERT_TRUE(si.ok());
  std::vector<std::string> ids, seeds;
  const cJSON* s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(doc.get(), "servers")) {
    const cJSON* ann = cJSON_GetObjectItemCaseSensitive(s, "ann");
    const cJSON* seed = cJSON_GetObjectItemCaseSensitive(ann, "permutation-seed-base32");
    auto id = AnnouncedIdentity(Str(ann, "anonymous-storage-FURL"), cJSON_IsString(seed) ? seed->valuestring : "",
                                Str(s, "server_id"));
    ASSERT_TRUE(id.ok()) << Str(s, "server_id") << ": " << id.status().ToString();
    ids.push_back(Str(s, "server_id"));
    seeds.push_back(id->permutation_seed);
  }
  ASSERT_EQ(ids.size(), 13u);
  std::vector<std::string> order;
  for (std::size_t i : PermutedOrder(*si, seeds)) order.push_back(ids[i]);
  std::vector<std::string> expected;
  cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(doc.get(), "expected_order"))
      expected.push_back(s->valuestring);
  EXPECT_EQ(order, expected);
}

}  // namespace
}  // namespace cairn::grid
