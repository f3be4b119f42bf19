// The backup database (control/backup_db.h): Tahoe's file rule (size,
// mtime and ctime all equal), directory rows, paths longer than an LMDB key,
// rows surviving a reopen, and one environment per directory in a process.
// (A control-layer class; its tests live beside the backup rules'.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "control/backup_db.h"

namespace cairn::control {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/cairn-backupdb-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return std::string(dir) + "/backupdb";
}

TEST(BackupDb, FileRowsFollowTahoesRule) {
  const std::string dir = TempDir();
  const std::string long_path = "/" + std::string(3000, 'p');
  {
    auto db = BackupDb::Open(dir);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)->Record({{"/a/x", 10, 100, 200, "URI:CHK:x"}, {long_path, 1, 2, 3, "URI:LIT:y"}},
                              {{"dirhash1", "URI:DIR2-CHK:z"}})
                    .ok());
    auto again = BackupDb::Open(dir);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->get(), db->get());  // one environment per directory
  }
  auto db = BackupDb::Open(dir);  // reopened: the rows are there
  ASSERT_TRUE(db.ok());
  std::vector<std::optional<std::string>> got;
  ASSERT_TRUE((*db)->LookupFiles({{"/a/x", 10, 100, 200, {}},
                                  {"/a/x", 11, 100, 200, {}},
                                  {"/a/x", 10, 101, 200, {}},
                                  {"/a/x", 10, 100, 201, {}},
                                  {"/a/other", 10, 100, 200, {}},
                                  {long_path, 1, 2, 3, {}}},
                                 &got)
                  .ok());
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0], std::optional<std::string>("URI:CHK:x"));
  EXPECT_FALSE(got[1] || got[2] || got[3] || got[4]);
  EXPECT_EQ(got[5], std::optional<std::string>("URI:LIT:y"));
  auto dircap = (*db)->LookupDir("dirhash1");
  ASSERT_TRUE(dircap.ok());
  EXPECT_EQ(*dircap, std::optional<std::string>("URI:DIR2-CHK:z"));
  auto none = (*db)->LookupDir("dirhash2");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // A newer row replaces the old one.
  ASSERT_TRUE((*db)->Record({{"/a/x", 12, 100, 200, "URI:CHK:x2"}}, {}).ok());
  ASSERT_TRUE((*db)->LookupFiles({{"/a/x", 12, 100, 200, {}}}, &got).ok());
  EXPECT_EQ(got[0], std::optional<std::string>("URI:CHK:x2"));
  db = Status::Cancelled("closed");  // the last holder closes the environment
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

}  // namespace
}  // namespace cairn::control
