// Tahoe-LAFS's alias file read and written as Tahoe does (tahoe-dirnodes.md
// D): stripped lines, comments, names not stripped, caps stripped, the last
// of a repeated name wins, a line without ':' refused.
#include <gtest/gtest.h>

#include "cairn/dirnode/aliases.h"

namespace cairn::dirnode {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(AliasesFile, ReadsAsTahoe) {
  auto got = ParseAliasesFile(
      "# a comment\n"
      "\n"
      "tahoe: URI:DIR2:aaa:bbb\n"
      "  x:URI:DIR2-RO:ccc:ddd  \r\n"
      "  fun  : URI:DIR2:eee:fff\n"
      "tahoe: URI:DIR2:ggg:hhh\n"
      "last:URI:DIR2-CHK:iii");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (Pairs{{"tahoe", "URI:DIR2:ggg:hhh"},
                         {"x", "URI:DIR2-RO:ccc:ddd"},
                         {"fun  ", "URI:DIR2:eee:fff"},
                         {"last", "URI:DIR2-CHK:iii"}}));
}

TEST(AliasesFile, RefusesALineWithoutColon) {
  auto got = ParseAliasesFile("a: URI:DIR2:x:y\nbroken\n");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().ToString().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseAliasesFile("a: \xff\n").ok());
}

TEST(AliasesFile, WritesAsAddAlias) {
  const Pairs aliases{{"bk", "URI:DIR2:a:b"}, {"tahoe", "URI:DIR2-RO:c:d"}};
  const std::string text = FormatAliasesFile(aliases);
  EXPECT_EQ(text, "bk: URI:DIR2:a:b\ntahoe: URI:DIR2-RO:c:d\n");
  auto back = ParseAliasesFile(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, aliases);
}

}  // namespace
}  // namespace cairn::dirnode
