// The group commit machinery on its own, over a scratch LMDB environment on
// the real Loop: one turn's writes in one transaction, completions only after
// the commit, an op rolled back alone, a failed batch reaching every op,
// sticky errors, bounds, the map grown on MDB_MAP_FULL.
#include "cairn/store/group_commit.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/loop.h"

namespace cairn::store {
namespace {

// What the test batches saw, shared with the work item (atomics: it runs on
// the thread pool).
struct Probe {
  std::atomic<int> batches_made{0};
  std::atomic<int> durable{0};
  std::atomic<int> ops_kept{0};
  std::atomic<int> ops_rolled_back{0};
  std::atomic<bool> fail_before_commit{false};
};

class ProbeBatch final : public CommitBatch {
 public:
  explicit ProbeBatch(Probe& p) : probe_(p) { probe_.batches_made++; }
  void OpEnd(bool kept) override { (kept ? probe_.ops_kept : probe_.ops_rolled_back)++; }
  Status BeforeCommit() override {
    if (probe_.fail_before_commit) return Status::IoError("test: fsync failed");
    return Status();
  }
  void Durable() override { probe_.durable++; }

 private:
  Probe& probe_;
};

// Writes `value` at `key`; fails after writing if `fail`. Records, when it
// completes, whether the batch was already durable and the key readable.
class PutOp final : public CommitOp {
 public:
  PutOp(Loop& loop, MDB_dbi dbi, std::string key, std::string value, Callback<void(Status)> done, bool fail = false)
      : CommitOp(loop, "PutOp", value.size()),
        dbi_(dbi),
        key_(std::move(key)),
        value_(std::move(value)),
        fail_(fail),
        done_(std::move(done)) {}
  Status Apply(CommitBatch& b) override {
    MDB_val k{key_.size(), key_.data()}, v{value_.size(), value_.data()};
    result_ = LmdbError("test", "put", mdb_put(b.txn(), dbi_, &k, &v, 0), b.map_full_flag());
    if (result_.ok() && fail_) result_ = Status::Conflict("test: this op fails");
    return result_;
  }
  void Done(Status batch) override { done_(batch.ok() ? result_ : batch); }

 private:
  MDB_dbi dbi_;
  std::string key_, value_;
  bool fail_;
  Callback<void(Status)> done_;
  Status result_ = Status::Internal("never applied");
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-commit-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ASSERT_EQ(mdb_env_create(&env_), 0);
    ASSERT_EQ(mdb_env_set_mapsize(env_, 1 << 20), 0);
    ASSERT_EQ(mdb_env_open(env_, dir_.c_str(), MDB_NOTLS, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi_), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  void TearDown() override {
    if (commit_) {
      EXPECT_TRUE(loop_.RunUntil([&] { return commit_->idle(); }, 20000));
      commit_.reset();
    }
    mdb_env_close(env_);
    std::filesystem::remove_all(dir_);
  }
  void Make(GroupCommitOptions o = {}) {
    o.name = "test";
    o.env = env_;
    o.new_batch = [p = &probe_] { return std::make_unique<ProbeBatch>(*p); };
    commit_ = std::make_unique<GroupCommit>(loop_, std::move(o));
  }
  // Queues a PutOp whose status lands in `results[i]`.
  void Put(std::string key, std::string value, std::vector<std::optional<Status>>* results, bool fail = false,
           bool unbounded = false) {
    std::size_t i = results->size();
    results->emplace_back();
    commit_->Submit(std::make_unique<PutOp>(loop_, dbi_, std::move(key), std::move(value),
                                            [this, results, i](Status st) {
                                              (*results)[i] = std::move(st);
                                              seen_durable_.push_back(probe_.durable.load());
                                            },
                                            fail),
                    unbounded);
  }
  bool AllDone(const std::vector<std::optional<Status>>& results) {
    for (const auto& r : results) {
      if (!r) return false;
    }
    return true;
  }
  std::optional<std::string> Get(const std::string& key) {
    std::optional<std::string> out;
    Status st = commit_->Read([&](MDB_txn* txn) -> Status {
      MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
      if (mdb_get(txn, dbi_, &k, &v) == 0) out.emplace(static_cast<const char*>(v.mv_data), v.mv_size);
      return Status();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  Loop loop_;
  std::string dir_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  Probe probe_;
  std::unique_ptr<GroupCommit> commit_;
  std::vector<int> seen_durable_;  // probe_.durable when each completion ran
};

TEST_F(GroupCommitTest, OneTurnsWritesGoIntoOneTransaction) {
  Make();
  std::vector<std::optional<Status>> results;
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), "v" + std::to_string(i), &results);
  EXPECT_FALSE(commit_->idle());
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  for (const auto& r : results) EXPECT_TRUE(r->ok()) << r->ToString();
  EXPECT_EQ(probe_.batches_made.load(), 1);
  EXPECT_EQ(commit_->stats().commits, 1u);
  EXPECT_EQ(commit_->stats().largest_batch, 10u);
  EXPECT_EQ(commit_->stats().ops_committed, 10u);
  EXPECT_EQ(Get("k7"), "v7");
}

TEST_F(GroupCommitTest, WritesArrivingDuringACommitFormTheNextBatch) {
  Make();
  std::vector<std::optional<Status>> first, second;
  Put("a", "1", &first);
  // Let the first batch start (it is posted to the next turn), then queue more.
  ASSERT_TRUE(loop_.RunUntil([&] { return probe_.batches_made.load() == 1; }, 20000));
  for (int i = 0; i < 5; ++i) Put("b" + std::to_string(i), "2", &second);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(first) && AllDone(second); }, 20000));
  EXPECT_EQ(commit_->stats().commits, 2u);
  EXPECT_EQ(commit_->stats().largest_batch, 5u);
}

TEST_F(GroupCommitTest, BatchBoundsSplitATurnsWrites) {
  GroupCommitOptions o;
  o.batch_ops = 4;
  Make(std::move(o));
  std::vector<std::optional<Status>> results;
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), "v", &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  EXPECT_EQ(commit_->stats().commits, 3u);
  EXPECT_EQ(commit_->stats().largest_batch, 4u);
}

TEST_F(GroupCommitTest, CompletionsRunOnlyAfterTheCommitIsDurable) {
  Make();
  std::vector<std::optional<Status>> results;
  Put("x", "y", &results);
  Put("z", "w", &results);
  // Nothing completes inside the call, nor in the turn the batch starts.
  EXPECT_FALSE(results[0] || results[1]);
  loop_.RunOnce();
  EXPECT_FALSE(results[0] || results[1]);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  // Each completion saw the batch's Durable hook already run, and the
  // committed value is visible to a fresh read transaction.
  ASSERT_EQ(seen_durable_.size(), 2u);
  EXPECT_EQ(seen_durable_[0], 1);
  EXPECT_EQ(seen_durable_[1], 1);
  EXPECT_EQ(Get("x"), "y");
}

TEST_F(GroupCommitTest, AFailingOpIsRolledBackAloneAndTheRestCommit) {
  Make();
  std::vector<std::optional<Status>> results;
  Put("a", "1", &results);
  Put("b", "2", &results, /*fail=*/true);
  Put("c", "3", &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  EXPECT_TRUE(results[0]->ok());
  EXPECT_EQ(results[1]->code(), Code::kConflict);
  EXPECT_TRUE(results[2]->ok());
  EXPECT_EQ(probe_.ops_kept.load(), 2);
  EXPECT_EQ(probe_.ops_rolled_back.load(), 1);
  EXPECT_EQ(Get("a"), "1");
  EXPECT_EQ(Get("b"), std::nullopt);
  EXPECT_EQ(Get("c"), "3");
  EXPECT_EQ(commit_->stats().commits, 1u);
}

TEST_F(GroupCommitTest, AFailedBatchReachesEveryOpAndIsSticky) {
  Make();
  probe_.fail_before_commit = true;
  std::vector<std::optional<Status>> results;
  for (int i = 0; i < 4; ++i) Put("k" + std::to_string(i), "v", &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  for (const auto& r : results) {
    EXPECT_EQ(r->code(), Code::kIoError);
    EXPECT_NE(r->message().find("fsync failed"), std::string::npos) << r->ToString();
  }
  EXPECT_EQ(probe_.durable.load(), 0);
  EXPECT_EQ(Get("k0"), std::nullopt);
  EXPECT_EQ(commit_->stats().failed_batches, 1u);
  ASSERT_FALSE(commit_->sticky_error().empty());
  // Sticky: later writes are refused, on a later turn, without a batch.
  probe_.fail_before_commit = false;
  std::vector<std::optional<Status>> later;
  Put("late", "v", &later);
  EXPECT_FALSE(later[0]);
  loop_.RunOnce();
  ASSERT_TRUE(later[0]);
  EXPECT_EQ(later[0]->code(), Code::kIoError);
  EXPECT_NE(later[0]->message().find("writes stopped after an earlier failure"), std::string::npos);
  EXPECT_EQ(probe_.batches_made.load(), 1);
}

TEST_F(GroupCommitTest, WithoutStickyErrorsTheNextBatchTriesAgain) {
  GroupCommitOptions o;
  o.sticky_errors = false;
  Make(std::move(o));
  probe_.fail_before_commit = true;
  std::vector<std::optional<Status>> results;
  Put("a", "1", &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  EXPECT_EQ(results[0]->code(), Code::kIoError);
  probe_.fail_before_commit = false;
  Put("a", "2", &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  EXPECT_TRUE(results[1]->ok());
  EXPECT_EQ(Get("a"), "2");
}

TEST_F(GroupCommitTest, AFullQueueRefusesOnALaterTurnAndWhenRoomFires) {
  GroupCommitOptions o;
  o.queue_ops = 2;
  Make(std::move(o));
  std::vector<std::optional<Status>> results;
  Put("a", "1", &results);
  Put("b", "2", &results);
  EXPECT_TRUE(commit_->Full(0));
  Put("c", "3", &results);
  Put("d", "4", &results, false, /*unbounded=*/true);  // internal writes pass
  bool room = false;
  commit_->WhenRoom([&] { room = true; });
  EXPECT_FALSE(results[2]);
  loop_.RunOnce();
  ASSERT_TRUE(results[2]);
  EXPECT_EQ(results[2]->code(), Code::kResourceExhausted);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results) && room; }, 20000));
  EXPECT_TRUE(results[3]->ok());
  EXPECT_EQ(Get("c"), std::nullopt);
}

TEST_F(GroupCommitTest, AFullMapGrowsAndTheBatchIsRedone) {
  GroupCommitOptions o;
  o.map_max_bytes = 16 << 20;
  Make(std::move(o));
  std::vector<std::optional<Status>> results;
  // 40 × 64 KiB does not fit the 1 MiB map.
  for (int i = 0; i < 40; ++i) Put("k" + std::to_string(i), std::string(64 << 10, 'x'), &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  for (const auto& r : results) EXPECT_TRUE(r->ok()) << r->ToString();
  EXPECT_GT(commit_->stats().map_grows, 0u);
  EXPECT_GT(commit_->map_bytes(), 1u << 20);
  EXPECT_GT(probe_.batches_made.load(), 1);  // redone in the larger map
  EXPECT_EQ(Get("k39")->size(), 64u << 10);
}

TEST_F(GroupCommitTest, AtTheMapsLimitOpsThatDoNotFitFailAlone) {
  Make();  // never grows
  std::vector<std::optional<Status>> results;
  Put("small", "1", &results);
  Put("big", std::string(4 << 20, 'x'), &results);
  ASSERT_TRUE(loop_.RunUntil([&] { return AllDone(results); }, 20000));
  EXPECT_TRUE(results[0]->ok());
  EXPECT_EQ(results[1]->code(), Code::kNoSpace);
  EXPECT_EQ(Get("small"), "1");
  EXPECT_TRUE(commit_->sticky_error().empty());
}

TEST_F(GroupCommitTest, WhenIdleWaitsForEveryQueuedWrite) {
  Make();
  bool idle = false;
  std::vector<std::optional<Status>> results;
  Put("a", "1", &results);
  commit_->WhenIdle([&] {
    idle = true;
    EXPECT_TRUE(AllDone(results));
  });
  ASSERT_TRUE(loop_.RunUntil([&] { return idle; }, 20000));
  EXPECT_TRUE(commit_->idle());
}

}  // namespace
}  // namespace cairn::store
