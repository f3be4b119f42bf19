// Reading Tahoe-LAFS server entries on the CLI's side: the YAML subset
// (cli/yaml.h) on what Tahoe operators and `cairn tahoe-entry` write, and
// one entry or a whole servers.yaml (cli/tahoe_servers.h): entries with a
// NURL, entries without one skipped with why, malformed ones refused.
#include "cli/tahoe_servers.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include "cli/yaml.h"

namespace cairn::cli {
namespace {

std::string S(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "<absent>";
}

const char kTahoeEntry[] =
    "# Add under \"storage:\" in the Tahoe-LAFS client's private/servers.yaml.\n"
    "  v0-cairn-abc:\n"
    "    ann:\n"
    "      nickname: \"attic \\\"box\\\"\"\n"
    "      anonymous-storage-FURL: pb://rey27xyj6db57olcf56rihhartvhkvd6@tcp:10.0.0.1:3456/swiss\n"
    "      anonymous-storage-NURLs:\n"
    "        - pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@10.0.0.1:3456/swiss#v=1\n"
    "      permutation-seed-base32: rey27xyj6db57olcf56rihhartvhkvd6\n";

TEST(Yaml, ReadsWhatTahoeEntryPrints) {
  auto doc = ParseYamlSubset(kTahoeEntry);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const cJSON* ann =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc->get(), "v0-cairn-abc"), "ann");
  ASSERT_TRUE(cJSON_IsObject(ann));
  EXPECT_EQ(S(ann, "nickname"), "attic \"box\"");
  // '#' inside a value is not a comment: a NURL ends in "#v=1".
  const cJSON* nurls = cJSON_GetObjectItemCaseSensitive(ann, "anonymous-storage-NURLs");
  ASSERT_EQ(cJSON_GetArraySize(nurls), 1);
  EXPECT_EQ(std::string(cJSON_GetArrayItem(nurls, 0)->valuestring),
            "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@10.0.0.1:3456/swiss#v=1");
  EXPECT_EQ(S(ann, "permutation-seed-base32"), "rey27xyj6db57olcf56rihhartvhkvd6");
}

TEST(Yaml, FlowSequencesQuotesCommentsAndSequencesAtTheKeysIndent) {
  auto doc = ParseYamlSubset(
      "---\n"
      "storage:  # the servers\n"
      "  a:\n"
      "    ann: {}\n"
      "  'b c':\n"
      "    list: [x, 'y z', \"w\"]\n"
      "    seq:\n"
      "    - one\n"
      "    - 'it''s'\n");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const cJSON* st = cJSON_GetObjectItemCaseSensitive(doc->get(), "storage");
  EXPECT_TRUE(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "a"), "ann")));
  const cJSON* bc = cJSON_GetObjectItemCaseSensitive(st, "b c");
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(bc, "list");
  ASSERT_EQ(cJSON_GetArraySize(list), 3);
  EXPECT_STREQ(cJSON_GetArrayItem(list, 1)->valuestring, "y z");
  const cJSON* seq = cJSON_GetObjectItemCaseSensitive(bc, "seq");
  ASSERT_EQ(cJSON_GetArraySize(seq), 2);
  EXPECT_STREQ(cJSON_GetArrayItem(seq, 1)->valuestring, "it's");
}

TEST(Yaml, RefusesWhatItDoesNotReadWithTheLine) {
  for (const char* bad : {"a:\n\tb: c\n", "a: &anchor x\n", "a: |\n  text\n", "a: {b: c}\n", "a: b\na: c\n",
                          "a:\n    b: c\n  d: e\n", "a: \"open\n", "- a: b\n", "just words\n"}) {
    auto doc = ParseYamlSubset(bad);
    ASSERT_FALSE(doc.ok()) << bad;
    EXPECT_NE(doc.status().message().find("line "), std::string::npos) << doc.status().ToString();
  }
}

TEST(TahoeServers, OneEntryInEveryShapeAnOperatorHandsOut) {
  auto yaml = OneServerEntry(kTahoeEntry);
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_EQ(yaml->server_id, "v0-cairn-abc");
  EXPECT_EQ(S(yaml->ann.get(), "anonymous-storage-FURL").substr(0, 38), "pb://rey27xyj6db57olcf56rihhartvhkvd6@");

  auto bare = OneServerEntry("anonymous-storage-FURL: pb://x@h/s\nanonymous-storage-NURLs: [pb://n]\n");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->server_id, "");

  auto json = OneServerEntry(R"({"server_id": "v0-x", "ann": {"anonymous-storage-FURL": "pb://t@h/s"}})");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->server_id, "v0-x");

  auto file = OneServerEntry("storage:\n  v0-y:\n    ann:\n      anonymous-storage-NURLs: [pb://n]\n");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->server_id, "v0-y");

  EXPECT_FALSE(OneServerEntry("hello: world\nother: thing\n").ok());
  EXPECT_FALSE(OneServerEntry("{\"ann\": 3}").ok());
  auto two = OneServerEntry(
      "storage:\n  a:\n    ann:\n      anonymous-storage-NURLs: [pb://n]\n  b:\n    ann:\n"
      "      anonymous-storage-NURLs: [pb://m]\n");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("servers import"), std::string::npos);
}

TEST(TahoeServers, AServersYamlSkipsServersWithoutANurlAndRefusesMalformedOnes) {
  const char ok[] =
      "storage:\n"
      "  v0-cairn:\n"
      "    ann:\n"
      "      anonymous-storage-FURL: pb://a@h/s\n"
      "      anonymous-storage-NURLs: [pb://n1]\n"
      "  v0-foolscap-only:\n"
      "    ann:\n"
      "      anonymous-storage-FURL: pb://b@h/s\n"
      "  v0-tahoe:\n"
      "    ann:\n"
      "      anonymous-storage-FURL: pb://c@h/s\n"
      "      anonymous-storage-NURLs:\n"
      "        - pb://n2\n";
  auto all = ReadServersYaml(ok);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->entries.size(), 2u);
  EXPECT_EQ(all->entries[0].server_id, "v0-cairn");
  EXPECT_EQ(all->entries[1].server_id, "v0-tahoe");
  ASSERT_EQ(all->skipped.size(), 1u);
  EXPECT_EQ(all->skipped[0].first, "v0-foolscap-only");
  EXPECT_NE(all->skipped[0].second.find("NURL"), std::string::npos);

  auto malformed = ReadServersYaml(std::string(ok) + "  v0-broken:\n    nickname: no ann here\n");
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.status().message().find("v0-broken"), std::string::npos);
  EXPECT_FALSE(ReadServersYaml("servers: []\n").ok());
}

}  // namespace
}  // namespace cairn::cli
