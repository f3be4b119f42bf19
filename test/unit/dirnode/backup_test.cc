// The pure rules of `tahoe backup` (cairn/dirnode/backup.h) against what
// Tahoe-LAFS wrote (test/vectors/dirs/backup-*.json): the backup database's
// directory hashes of the run-1 snapshot directories, their metadata key
// order and float text, Archives names, and fnmatch excludes.
#include <gtest/gtest.h>
#include <cjson/cJSON.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "cairn/dirnode/backup.h"
#include "support/vectors.h"

namespace cairn::dirnode {
namespace {

using testing::LoadVectors;

// The directories table of backup-runs.json's database: the dirhash Tahoe
// stored for each snapshot directory's cap.
std::string DirhashOf(const cJSON* runs, const std::string& dircap) {
  const cJSON* rows = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(runs, "backupdb_after_run3"), "directories");
  const cJSON* row;
  cJSON_ArrayForEach(row, rows) {
    if (dircap == cJSON_GetArrayItem(row, 1)->valuestring) return cJSON_GetArrayItem(row, 0)->valuestring;
  }
  return "";
}

TEST(BackupRules, DirhashMatchesTahoesDatabase) {
  Json runs = LoadVectors("dirs/backup-runs.json");
  int checked = 0;
  for (const char* file : {"backup-snapshot-run1-root.json", "backup-snapshot-run1-docs.json",
                           "backup-snapshot-run1-docs-deep.json"}) {
    Json v = LoadVectors(std::string("dirs/") + file);
    const std::string dircap = cJSON_GetObjectItemCaseSensitive(v.get(), "dir_readcap")->valuestring;
    std::vector<std::pair<std::string, std::string>> children;
    const cJSON* kid;
    cJSON_ArrayForEach(kid, cJSON_GetObjectItemCaseSensitive(v.get(), "expected_children")) {
      children.emplace_back(kid->string, cJSON_GetObjectItemCaseSensitive(kid, "ro_uri")->valuestring);
    }
    const std::string want = DirhashOf(runs.get(), dircap);
    ASSERT_FALSE(want.empty()) << file;
    EXPECT_EQ(BackupDirHash(children), want) << file;
    // Order does not matter: the hash sorts by name.
    std::reverse(children.begin(), children.end());
    EXPECT_EQ(BackupDirHash(children), want) << file;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(BackupRules, StatMetadataHasTahoesKeysAndFloats) {
  struct stat st {};
  st.st_ctim = {1796560875, 403196620};
  st.st_mtim = {1796560875, 403196620};
  st.st_mode = 0100644;
  st.st_ino = 10993850;
  st.st_dev = 65024;
  st.st_uid = 0;
  st.st_gid = 0;
  // The bytes Tahoe wrote for docs/doc1.txt (backup-snapshot-run1-docs.json).
  EXPECT_EQ(DumpPyJson(StatMetadata(st)),
            "{\"ctime\": 1796560875.4031966, \"mtime\": 1796560875.4031966, \"st_mode\": 33188, "
            "\"st_ino\": 10993850, \"st_dev\": 65024, \"st_uid\": 0, \"st_gid\": 0}");
}

TEST(BackupRules, ArchiveName) {
  EXPECT_EQ(ArchiveName(1796560879), "2026-12-06_12:41:19Z");
  EXPECT_EQ(ArchiveName(0), "1970-01-01_00:00:00Z");
}

TEST(BackupRules, FnMatchAsPython) {
  EXPECT_TRUE(FnMatch("*.tmp", "skip.tmp"));
  EXPECT_FALSE(FnMatch("*.tmp", "skip.tmpx"));
  EXPECT_FALSE(FnMatch("*.tmp", "skip.TMP"));  // case-sensitive on POSIX
  EXPECT_TRUE(FnMatch("?a", "ba"));
  EXPECT_FALSE(FnMatch("?a", "a"));
  EXPECT_TRUE(FnMatch("[ab]x", "bx"));
  EXPECT_FALSE(FnMatch("[!ab]x", "bx"));
  EXPECT_TRUE(FnMatch("[a-c]*", "cat"));
  EXPECT_TRUE(FnMatch("[]]", "]"));
  EXPECT_TRUE(FnMatch("[x", "[x"));  // no closing ']': a literal '['
  EXPECT_TRUE(FnMatch("*", ""));
  EXPECT_TRUE(FnMatch("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(Excluded(".git", VcsExcludes()));
  EXPECT_TRUE(Excluded("{arch}", VcsExcludes()));
  EXPECT_FALSE(Excluded("git", VcsExcludes()));
}

}  // namespace
}  // namespace cairn::dirnode
