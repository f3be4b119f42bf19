// TaskStore over the store layer's group commit: records durable on a later
// turn and across a reopen, one turn's changes in one commit (latest wins),
// a failing check-and-change rolled back alone.
#include "control/task_store.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>

namespace cairn::control {
namespace {

class TaskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-taskstore-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Opens a TaskStore on the directory and returns its records.
  std::vector<std::pair<std::uint64_t, std::string>> Open(TaskStore& ts) {
    std::vector<std::pair<std::uint64_t, std::string>> rows;
    Status st = ts.Open(dir_ + "/control", &rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return rows;
  }
  void Flush(TaskStore& ts) {
    bool done = false;
    ts.Flush([&] { done = true; });
    ASSERT_TRUE(loop_.RunUntil([&] { return done; }, 20000));
  }

  Loop loop_;
  std::string dir_;
};

TEST_F(TaskStoreTest, APutIsDurableOnALaterTurnAndSurvivesAReopen) {
  {
    TaskStore ts(loop_);
    EXPECT_TRUE(Open(ts).empty());
    int calls = 0;
    Status got = Status::Internal("not yet");
    ts.Put(7, "{\"a\":1}", [&](Status st) {
      ++calls;
      got = st;
    });
    EXPECT_EQ(calls, 0);
    EXPECT_FALSE(ts.idle());
    ASSERT_TRUE(loop_.RunUntil([&] { return calls == 1; }, 20000));
    EXPECT_TRUE(got.ok()) << got.ToString();
    Flush(ts);
    EXPECT_EQ(calls, 1);
  }
  TaskStore again(loop_);
  auto rows = Open(again);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].first, 7u);
  EXPECT_EQ(rows[0].second, "{\"a\":1}");
}

TEST_F(TaskStoreTest, OneTurnsChangesShareOneCommitAndTheLatestWins) {
  {
    TaskStore ts(loop_);
    Open(ts);
    ts.Put(2, "old");
    Flush(ts);
    std::uint64_t before = ts.commits();
    int durable = 0;
    ts.Put(1, "first", [&](Status st) { durable += st.ok(); });
    ts.Put(1, "second", [&](Status st) { durable += st.ok(); });
    ts.Delete(2);
    ts.Put(3, "third");
    Flush(ts);
    EXPECT_EQ(durable, 2);
    EXPECT_EQ(ts.commits() - before, 1u);
  }
  TaskStore again(loop_);
  auto rows = Open(again);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::pair<std::uint64_t, std::string>{1, "second"}));
  EXPECT_EQ(rows[1], (std::pair<std::uint64_t, std::string>{3, "third"}));
}

TEST_F(TaskStoreTest, AFailingTransactIsRolledBackAloneAndTheRestCommits) {
  TaskStore ts(loop_);
  Open(ts);
  auto dbi = ts.OpenTable("t");
  ASSERT_TRUE(dbi.ok());
  MDB_dbi t = *dbi;
  auto put = [t](std::string key, bool fail) {
    return [t, key, fail](MDB_txn* txn) -> Status {
      MDB_val k{key.size(), const_cast<char*>(key.data())}, v{1, const_cast<char*>("v")};
      if (mdb_put(txn, t, &k, &v, 0) != 0) return Status::IoError("put");
      return fail ? Status::Conflict("refused") : Status();
    };
  };
  std::optional<Status> a, b;
  bool record = false;
  ts.Transact(put("a", true), [&](Status st) { a = st; });
  ts.Transact(put("b", false), [&](Status st) { b = st; });
  ts.Put(1, "r", [&](Status st) { record = st.ok(); });
  EXPECT_FALSE(a || b || record);
  ASSERT_TRUE(loop_.RunUntil([&] { return a && b && record; }, 20000));
  EXPECT_EQ(a->code(), Code::kConflict);
  EXPECT_TRUE(b->ok());
  auto has = [&](std::string key) {
    bool found = false;
    EXPECT_TRUE(ts.Read([&](MDB_txn* txn) -> Status {
                    MDB_val k{key.size(), key.data()}, v;
                    found = mdb_get(txn, t, &k, &v) == 0;
                    return Status();
                  })
                    .ok());
    return found;
  };
  EXPECT_FALSE(has("a"));
  EXPECT_TRUE(has("b"));
}

TEST_F(TaskStoreTest, WritesBeforeOpenFailOnALaterTurn) {
  TaskStore ts(loop_);
  int calls = 0;
  Status got;
  ts.Put(1, "x", [&](Status st) {
    ++calls;
    got = st;
  });
  ts.Transact([](MDB_txn*) { return Status(); }, [&](Status st) {
    ++calls;
    got = st;
  });
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop_.RunUntil([&] { return calls == 2; }, 20000));
  EXPECT_EQ(got.code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace cairn::control
