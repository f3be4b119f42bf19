// The backup database (control/backup_db.h): Tahoe's file rule (size,
// mtime and ctime all equal), directory rows, check times, Tahoe's re-check
// probability, paths longer than an LMDB key, rows surviving a reopen, and
// one environment per directory in a process. (A control-layer class; its
// tests live beside the backup rules'.)
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

std::optional<std::string> CapOf(const std::optional<BackupKnown>& k) {
  if (!k) return std::nullopt;
  return k->cap;
}

TEST(BackupDb, FileRowsFollowTahoesRule) {
  const std::string dir = TempDir();
  const std::string long_path = "/" + std::string(3000, 'p');
  {
    auto db = BackupDb::Open(dir);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)->Record({{"/a/x", 10, 100, 200, "URI:CHK:x"}, {long_path, 1, 2, 3, "URI:LIT:y"}},
                              {{"dirhash1", "URI:DIR2-CHK:z"}}, {{"URI:CHK:x", 1700000000}, {"URI:DIR2-CHK:z", 5}})
                    .ok());
    auto again = BackupDb::Open(dir);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->get(), db->get());  // one environment per directory
  }
  auto db = BackupDb::Open(dir);  // reopened: the rows are there
  ASSERT_TRUE(db.ok());
  std::vector<std::optional<BackupKnown>> got;
  ASSERT_TRUE((*db)->LookupFiles({{"/a/x", 10, 100, 200, {}},
                                  {"/a/x", 11, 100, 200, {}},
                                  {"/a/x", 10, 101, 200, {}},
                                  {"/a/x", 10, 100, 201, {}},
                                  {"/a/other", 10, 100, 200, {}},
                                  {long_path, 1, 2, 3, {}}},
                                 &got)
                  .ok());
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(CapOf(got[0]), std::optional<std::string>("URI:CHK:x"));
  EXPECT_EQ(got[0]->checked_s, std::optional<std::int64_t>(1700000000));
  EXPECT_FALSE(got[1] || got[2] || got[3] || got[4]);
  EXPECT_EQ(CapOf(got[5]), std::optional<std::string>("URI:LIT:y"));
  EXPECT_FALSE(got[5]->checked_s);  // no check time recorded
  auto dircap = (*db)->LookupDir("dirhash1");
  ASSERT_TRUE(dircap.ok());
  EXPECT_EQ(CapOf(*dircap), std::optional<std::string>("URI:DIR2-CHK:z"));
  EXPECT_EQ((*dircap)->checked_s, std::optional<std::int64_t>(5));
  auto none = (*db)->LookupDir("dirhash2");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // A newer row replaces the old one; a check time is kept by cap, so two
  // paths with one cap share it (Tahoe keys last_checked by the file id).
  ASSERT_TRUE((*db)->Record({{"/a/x", 12, 100, 200, "URI:CHK:x2"}, {"/b/same", 1, 1, 1, "URI:CHK:x"}}, {},
                            {{"URI:CHK:x", 1800000000}})
                  .ok());
  ASSERT_TRUE((*db)->LookupFiles({{"/a/x", 12, 100, 200, {}}, {"/b/same", 1, 1, 1, {}}}, &got).ok());
  EXPECT_EQ(CapOf(got[0]), std::optional<std::string>("URI:CHK:x2"));
  EXPECT_FALSE(got[0]->checked_s);
  EXPECT_EQ(got[1]->checked_s, std::optional<std::int64_t>(1800000000));
  db = Status::Cancelled("closed");  // the last holder closes the environment
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST(BackupDb, RecheckProbabilityIsTahoes) {
  const std::int64_t now = 1800000000, day = 86400;
  // Never within 30 days, always after 60, linear between.
  EXPECT_EQ(BackupCheckProbability(now, now), 0.0);
  EXPECT_EQ(BackupCheckProbability(now - 30 * day, now), 0.0);
  EXPECT_DOUBLE_EQ(BackupCheckProbability(now - 45 * day, now), 0.5);
  EXPECT_EQ(BackupCheckProbability(now - 60 * day, now), 1.0);
  EXPECT_EQ(BackupCheckProbability(now - 600 * day, now), 1.0);
  EXPECT_EQ(BackupCheckProbability(now + day, now), 0.0);  // a clock set back
  EXPECT_EQ(BackupCheckProbability(std::nullopt, now), 1.0);
  // random() < p.
  EXPECT_FALSE(BackupShouldCheck(now - 10 * day, now, 0.0));
  EXPECT_TRUE(BackupShouldCheck(now - 45 * day, now, 0.49));
  EXPECT_FALSE(BackupShouldCheck(now - 45 * day, now, 0.5));
  EXPECT_TRUE(BackupShouldCheck(now - 61 * day, now, 0.999999));
}

}  // namespace
}  // namespace cairn::control
