// Body file names: what BodyPaths formats, ParseBodyName reads back, and
// nothing else.
#include "store/body_files.h"

#include <gtest/gtest.h>

namespace cairn::store {
namespace {

StorageIndex TestSi() {
  StorageIndex si{};
  for (std::size_t i = 0; i < si.size(); ++i) si[i] = static_cast<std::uint8_t>(i * 17 + 3);
  return si;
}

TEST(BodyFiles, NamesAndPaths) {
  BodyPaths p{"/d"};
  StorageIndex si = TestSi();
  EXPECT_EQ(p.Name(si, 7, 42), SiHex(si) + "-7-42");
  EXPECT_EQ(p.IncomingPath(si, 7, 42), "/d/incoming/" + SiHex(si) + "-7-42");
  EXPECT_EQ(p.RangesPath(si, 7, 42), "/d/incoming/" + SiHex(si) + "-7-42.ranges");
  EXPECT_EQ(p.FinalPath(si, 7, 42), "/d/shares/" + SiHex(si).substr(0, 2) + "/" + SiHex(si) + "-7-42");
}

TEST(BodyFiles, WhatIsFormattedParsesBack) {
  BodyPaths p{"/d"};
  StorageIndex si = TestSi();
  for (auto [shnum, id] : {std::pair<ShareNum, std::uint64_t>{0, 0}, {255, 1}, {0xffffffffu, ~0ull}}) {
    std::string name = p.Name(si, shnum, id);
    BodyName n;
    ASSERT_TRUE(ParseBodyName(name, &n)) << name;
    EXPECT_EQ(n.si, si);
    EXPECT_EQ(n.shnum, shnum);
    EXPECT_EQ(n.file_id, id);
    EXPECT_FALSE(n.ranges_file);
    ASSERT_TRUE(ParseBodyName(name + ".ranges", &n));
    EXPECT_TRUE(n.ranges_file);
    EXPECT_EQ(n.file_id, id);
  }
}

TEST(BodyFiles, AnythingElseIsRefused) {
  std::string hex = SiHex(TestSi());
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  BodyName n;
  for (const std::string& bad :
       {std::string(), hex, hex + "-", hex + "-1", hex + "-1-", hex + "--1", hex + "-01-2", hex + "-1-02",
        hex + "-+1-2", hex + "-1-2x", hex + "-1-2.tmp", hex + "-4294967296-1", hex + "-1-18446744073709551616",
        upper + "-1-2", hex.substr(1) + "-1-2", "g" + hex.substr(1) + "-1-2", hex + "x-1-2", std::string(".ranges")}) {
    EXPECT_FALSE(ParseBodyName(bad, &n)) << bad;
  }
}

}  // namespace
}  // namespace cairn::store
