// Tahoe's CLI path syntax (tahoe-dirnodes.md D): aliases, both forms of a
// cap root, the default alias, NFC components.
#include <gtest/gtest.h>

#include "cairn/dirnode/path.h"

namespace cairn::dirnode {
namespace {

const std::string kDir = "URI:DIR2:7agse4zkqnfq7emhrcjjgal67m:2v2dl4mqoqfxjjsslqo4gnojjtrzvylj3w7a7pxhvtoac4q4esca";

TEST(DirPath, AliasesCapsAndDefaults) {
  auto p = ParseDirPath("  tv:a/b/c.txt ");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->alias, "tv");
  EXPECT_EQ(p->components, (std::vector<std::string>{"a", "b", "c.txt"}));
  EXPECT_EQ(p->ToString(), "tv:a/b/c.txt");

  p = ParseDirPath("tv:");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->components.empty());

  p = ParseDirPath(kDir + "/sub/x");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->root_cap, kDir);
  EXPECT_EQ(p->components, (std::vector<std::string>{"sub", "x"}));

  p = ParseDirPath(kDir + ":./sub");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->root_cap, kDir);
  EXPECT_EQ(p->components, (std::vector<std::string>{"sub"}));

  p = ParseDirPath(kDir);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->root_cap, kDir);
  EXPECT_TRUE(p->components.empty());

  p = ParseDirPath("foo/bar:7");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->alias, "tahoe");
  EXPECT_EQ(p->components, (std::vector<std::string>{"foo", "bar:7"}));

  p = ParseDirPath("tv:dir//e\xcc\x81/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->components, (std::vector<std::string>{"dir", "\xc3\xa9"}));
  EXPECT_TRUE(p->trailing_slash);

  EXPECT_FALSE(ParseDirPath(":x").ok());
  EXPECT_FALSE(ParseDirPath("plain", "").ok());
}

}  // namespace
}  // namespace cairn::dirnode
