// Capability parsing: clear refusals of malformed caps, and the forms Tahoe
// accepts that are easy to get wrong.
#include <gtest/gtest.h>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"

namespace cairn::caps {
namespace {

const std::string kKey = "fs6ul2fju2fvb2cfx7gt6ngycm";
const std::string kHash = "hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2mzehxq";

TEST(Cap, ParsesEachKind) {
  struct {
    std::string text;
    std::string kind;
  } cases[] = {
      {"URI:LIT:", "literal"},
      {"URI:LIT:nbswy3dp", "literal"},
      {"URI:CHK:" + kKey + ":" + kHash + ":3:10:1000", "chk"},
      {"URI:CHK-Verifier:" + kKey + ":" + kHash + ":1:1:56", "chk-verifier"},
      {"URI:SSK:" + kKey + ":" + kHash, "sdmf-write"},
      {"URI:SSK-RO:" + kKey + ":" + kHash, "sdmf-read"},
      {"URI:SSK-Verifier:" + kKey + ":" + kHash, "sdmf-verifier"},
      {"URI:MDMF:" + kKey + ":" + kHash, "mdmf-write"},
      {"URI:MDMF-RO:" + kKey + ":" + kHash, "mdmf-read"},
      {"URI:MDMF-Verifier:" + kKey + ":" + kHash, "mdmf-verifier"},
  };
  for (const auto& c : cases) {
    auto cap = ParseCap(c.text);
    ASSERT_TRUE(cap.ok()) << c.text << ": " << cap.status().ToString();
    EXPECT_EQ(CapKindName(*cap), c.kind);
    EXPECT_EQ(FormatCap(*cap), c.text);
  }
  EXPECT_EQ(ParseCap("URI:LIT:nbswy3dp")->literal, "hello");
}

TEST(Cap, MdmfIgnoresExtensionFieldsSdmfDoesNot) {
  auto mdmf = ParseCap("URI:MDMF:" + kKey + ":" + kHash + ":3:131073");
  ASSERT_TRUE(mdmf.ok()) << mdmf.status().ToString();
  EXPECT_EQ(FormatCap(*mdmf), "URI:MDMF:" + kKey + ":" + kHash);
  EXPECT_EQ(ParseCap("URI:SSK:" + kKey + ":" + kHash + ":3").status().code(), Code::kBadCap);
}

TEST(Cap, RefusesMalformedCapsWithAReason) {
  const std::string bad[] = {
      "",
      "URI:",
      "URI:FOO:abc",
      "uri:chk:" + kKey + ":" + kHash + ":3:10:1000",
      "URI:CHK:" + kKey + ":" + kHash + ":3:10",             // missing size
      "URI:CHK:" + kKey + ":" + kHash + ":0:10:1000",        // k = 0
      "URI:CHK:" + kKey + ":" + kHash + ":4:3:1000",         // N < k
      "URI:CHK:" + kKey + ":" + kHash + ":3:257:1000",       // N > 256
      "URI:CHK:" + kKey + ":" + kHash + ":3:10:-1",          // sign
      "URI:CHK:" + kKey + ":" + kHash + ":3:10:18446744073709551616",  // 2^64
      "URI:CHK:" + kKey.substr(1) + ":" + kHash + ":3:10:1000",        // short key
      "URI:SSK:" + kKey + ":" + kHash.substr(0, 51) + "1",   // '1' is not base32
      "URI:SSK:" + kKey,                                      // no fingerprint
      "URI:SSK:" + kKey + "x:" + kHash,                       // long key
      "URI:LIT:nbswy3dp=",                                    // padding
      "URI:SSK:FS6UL2FJU2FVB2CFX7GT6NGYCM:" + kHash,          // upper case
  };
  for (const std::string& text : bad) {
    auto cap = ParseCap(text);
    EXPECT_FALSE(cap.ok()) << text;
    EXPECT_EQ(cap.status().code(), Code::kBadCap) << text;
    EXPECT_FALSE(cap.status().message().empty());
  }
}

TEST(Cap, ReadAndVerifyForms) {
  auto write = ParseCap("URI:SSK:" + kKey + ":" + kHash);
  ASSERT_TRUE(write.ok());
  EXPECT_FALSE(write->is_read_only());
  auto read = ToReadCap(*write);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->kind, CapKind::kMutableRead);
  EXPECT_EQ(read->key, ReadKeyOf(write->key));
  EXPECT_TRUE(read->is_read_only());
  auto verify = ToVerifyCap(*read);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->key, MutableStorageIndexOf(read->key));
  EXPECT_EQ(ToReadCap(*verify).status().code(), Code::kBadCap);
  auto lit = ParseCap("URI:LIT:nbswy3dp");
  EXPECT_EQ(StorageIndexOf(*lit).status().code(), Code::kBadCap);
  EXPECT_EQ(ToVerifyCap(*lit).status().code(), Code::kBadCap);
}

TEST(Keys, SegmentSizeFollowsTahoe) {
  EXPECT_EQ(ChkSegmentSize(56, 131072, 3), 57u);
  EXPECT_EQ(ChkSegmentSize(1000000, 131072, 3), 131073u);
  EXPECT_EQ(ChkSegmentSize(131072, 131072, 1), 131072u);
  EXPECT_EQ(ChkSegmentSize(0, 1048576, 3), 0u);
}

}  // namespace
}  // namespace cairn::caps

namespace cairn::caps {
namespace {

// Directory caps (tahoe-dirnodes.md A.1): the file cap's fields under a
// URI:DIR2 prefix; read and verify caps keep the directory prefix.
TEST(Cap, DirectoryCapsWrapTheirFileCaps) {
  struct {
    std::string dir, file, kind;
  } cases[] = {
      {"URI:DIR2:" + kKey + ":" + kHash, "URI:SSK:" + kKey + ":" + kHash, "dir-sdmf-write"},
      {"URI:DIR2-RO:" + kKey + ":" + kHash, "URI:SSK-RO:" + kKey + ":" + kHash, "dir-sdmf-read"},
      {"URI:DIR2-Verifier:" + kKey + ":" + kHash, "URI:SSK-Verifier:" + kKey + ":" + kHash, "dir-sdmf-verifier"},
      {"URI:DIR2-MDMF:" + kKey + ":" + kHash, "URI:MDMF:" + kKey + ":" + kHash, "dir-mdmf-write"},
      {"URI:DIR2-MDMF-RO:" + kKey + ":" + kHash, "URI:MDMF-RO:" + kKey + ":" + kHash, "dir-mdmf-read"},
      {"URI:DIR2-MDMF-Verifier:" + kKey + ":" + kHash, "URI:MDMF-Verifier:" + kKey + ":" + kHash, "dir-mdmf-verifier"},
      {"URI:DIR2-CHK:" + kKey + ":" + kHash + ":1:1:984", "URI:CHK:" + kKey + ":" + kHash + ":1:1:984", "dir-chk"},
      {"URI:DIR2-CHK-Verifier:" + kKey + ":" + kHash + ":3:10:9", "URI:CHK-Verifier:" + kKey + ":" + kHash + ":3:10:9",
       "dir-chk-verifier"},
      {"URI:DIR2-LIT:", "URI:LIT:", "dir-literal"},
      {"URI:DIR2-LIT:nbswy3dp", "URI:LIT:nbswy3dp", "dir-literal"},
  };
  for (const auto& c : cases) {
    auto cap = ParseCap(c.dir);
    ASSERT_TRUE(cap.ok()) << c.dir << ": " << cap.status().ToString();
    EXPECT_TRUE(cap->directory);
    EXPECT_EQ(CapKindName(*cap), c.kind);
    EXPECT_EQ(FormatCap(*cap), c.dir);
    Cap file = *cap;
    file.directory = false;
    EXPECT_EQ(FormatCap(file), c.file);
    EXPECT_FALSE(ParseCap(c.file)->directory);
  }
  auto rw = ParseCap("URI:DIR2:" + kKey + ":" + kHash);
  EXPECT_EQ(FormatCap(*ToReadCap(*rw)).rfind("URI:DIR2-RO:", 0), 0u);
  EXPECT_EQ(FormatCap(*ToVerifyCap(*rw)).rfind("URI:DIR2-Verifier:", 0), 0u);
  EXPECT_EQ(ToVerifyCap(*ParseCap("URI:DIR2-LIT:")).status().code(), Code::kBadCap);
  EXPECT_EQ(ParseCap("URI:DIR2-FOO:abc").status().code(), Code::kBadCap);
}

}  // namespace
}  // namespace cairn::caps
