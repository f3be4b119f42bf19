// TaskTable: durable records, serialized tasks, cancel, restart, bounds.
#include "control/tasks.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace cairn::control {
namespace {

std::string StateOf(const Json& record) {
  return cJSON_GetObjectItemCaseSensitive(record.get(), "state")->valuestring;
}

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-tasks-XXXXXX";
    dir = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override {
    CloseTable();
    std::filesystem::remove_all(dir);
  }
  void Reopen(TaskLimits limits = {}) {
    table = std::make_unique<TaskTable>(loop, limits);
    Status st = table->Open(dir + "/control");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void CloseTable() {
    if (!table) return;
    bool closed = false;
    table->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
    loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
    table.reset();
  }
  TaskId SubmitSync(TaskSpec spec) {
    TaskId id = 0;
    bool got = false;
    table->Submit(std::move(spec), [&](Result<TaskId> r) {
      got = true;
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) id = *r;
    });
    EXPECT_FALSE(got) << "queued callback ran inside Submit";
    EXPECT_TRUE(loop.RunUntil([&] { return got; }, 10000));
    return id;
  }
  static TaskSpec Spec(const char* key, TaskBody body) {
    TaskSpec s;
    s.kind = "test";
    s.params = Json::NewObject();
    cJSON_AddStringToObject(s.params.get(), "key", key);
    s.keys = {LockKey{key, LockMode::kExclusive}};
    s.body = std::move(body);
    return s;
  }

  Loop loop;
  std::string dir;
  std::unique_ptr<TaskTable> table;
};

TEST_F(TasksTest, TaskRunsAfterItsRecordIsDurableAndWaitSeesTheResult) {
  bool ran = false;
  TaskId id = SubmitSync(Spec("alias/a", [&](TaskRun& run) {
    ran = true;
    EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(run.params(), "key")->valuestring, "alias/a");
    Json result = Json::NewObject();
    cJSON_AddNumberToObject(result.get(), "answer", 42);
    run.Succeed(std::move(result));
  }));
  ASSERT_GT(id, 0u);
  Json record;
  bool done = false;
  table->Wait(id, [&](Result<Json> r) {
    ASSERT_TRUE(r.ok());
    record = std::move(*r);
    done = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 10000));
  EXPECT_TRUE(ran);
  EXPECT_EQ(StateOf(record), "succeeded");
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(record.get(), "result"), "answer")
                ->valuedouble,
            42);
}

// A result of about 1 MB reaches the two callers waiting when the task
// ends, whole; the record kept (tasks.show, and the task store after a
// restart) holds only a note, so history does not hold listings.
TEST_F(TasksTest, ALargeResultGoesToItsWaitersAndTheRecordKeepsANote) {
  TaskId id = SubmitSync(Spec("dir/big", [&](TaskRun& run) {
    Json result = Json::NewObject();
    cJSON* items = cJSON_AddArrayToObject(result.get(), "items");
    for (int i = 0; i < 10000; ++i) cJSON_AddItemToArray(items, cJSON_CreateString(std::string(100, 'x').c_str()));
    run.Succeed(std::move(result));
  }));
  std::vector<Json> got;
  for (int w = 0; w < 2; ++w) {
    table->Wait(id, [&](Result<Json> r) {
      ASSERT_TRUE(r.ok());
      got.push_back(std::move(*r));
    });
  }
  ASSERT_TRUE(loop.RunUntil([&] { return got.size() == 2; }, 10000));
  for (const Json& record : got) {
    const cJSON* items = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(record.get(), "result"), "items");
    EXPECT_EQ(cJSON_GetArraySize(items), 10000);
  }
  auto shown = table->Show(id);
  ASSERT_TRUE(shown.ok());
  const cJSON* kept = cJSON_GetObjectItemCaseSensitive(shown->get(), "result");
  EXPECT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kept, "omitted")));
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(kept, "items"), nullptr);
  CloseTable();
  Reopen();
  auto again = table->Show(id);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(again->get(), "result"), "omitted")));
}

// A small result is kept whole in the record.
TEST_F(TasksTest, ASmallResultIsKeptInTheRecord) {
  TaskId id = SubmitSync(Spec("dir/small", [&](TaskRun& run) {
    Json result = Json::NewObject();
    cJSON_AddStringToObject(result.get(), "text", std::string(1000, 'y').c_str());
    run.Succeed(std::move(result));
  }));
  bool done = false;
  table->Wait(id, [&](Result<Json>) { done = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 10000));
  auto shown = table->Show(id);
  ASSERT_TRUE(shown.ok());
  const cJSON* text = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(shown->get(), "result"), "text");
  ASSERT_TRUE(cJSON_IsString(text));
  EXPECT_EQ(std::string(text->valuestring).size(), 1000u);
}

TEST_F(TasksTest, TasksOnOneKeyRunOneAfterAnotherInSubmitOrder) {
  std::vector<int> order;
  std::vector<TaskRun*> running;
  std::vector<TaskId> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(SubmitSync(Spec("alias/x", [&, i](TaskRun& run) {
      order.push_back(i);
      running.push_back(&run);
    })));
  }
  loop.RunUntil([&] { return !running.empty(); }, 5000);
  for (int step = 0; step < 3; ++step) {
    ASSERT_EQ(running.size(), static_cast<std::size_t>(step + 1)) << "two tasks on one key ran at once";
    auto shown = table->Show(ids[step]);
    EXPECT_EQ(StateOf(*shown), "running");
    if (step + 1 < 3) {
      auto waiting = table->Show(ids[step + 1]);
      const cJSON* w = cJSON_GetObjectItemCaseSensitive(waiting->get(), "waiting_on");
      ASSERT_EQ(cJSON_GetArraySize(w), 1);
      EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(w, 0), "held_by")->valuedouble, ids[step]);
    }
    running.back()->Succeed(Json::NewObject());
    loop.RunUntil([&] { return running.size() == static_cast<std::size_t>(step + 2) || step == 2; }, 5000);
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST_F(TasksTest, CancelQueuedTaskNeverRunsIt) {
  TaskRun* first = nullptr;
  bool second_ran = false;
  TaskId a = SubmitSync(Spec("k", [&](TaskRun& run) { first = &run; }));
  TaskId b = SubmitSync(Spec("k", [&](TaskRun& run) {
    second_ran = true;
    run.Succeed(Json::NewObject());
  }));
  loop.RunUntil([&] { return first != nullptr; }, 5000);
  auto st = table->Cancel(b);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, TaskState::kCancelled);
  auto running = table->Cancel(a);
  EXPECT_EQ(*running, TaskState::kRunning);
  first->Fail(Status::Cancelled("stopped on request"));
  bool done = false;
  table->Wait(a, [&](Result<Json> r) {
    EXPECT_EQ(StateOf(*r), "cancelled");
    done = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 5000));
  EXPECT_FALSE(second_ran);
  EXPECT_EQ(StateOf(*table->Show(b)), "cancelled");
  EXPECT_EQ(table->Cancel(999).status().code(), Code::kNotFound);
}

TEST_F(TasksTest, RecordsSurviveARestartAndUnfinishedTasksAreInterrupted) {
  TaskId finished = SubmitSync(Spec("a", [](TaskRun& run) { run.Succeed(Json::NewObject()); }));
  bool done = false;
  table->Wait(finished, [&](Result<Json>) { done = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 5000));
  TaskRun* hung = nullptr;
  TaskId interrupted = SubmitSync(Spec("b", [&](TaskRun& run) { hung = &run; }));
  loop.RunUntil([&] { return hung != nullptr; }, 5000);
  CloseTable();  // the daemon "dies" with task b running
  Reopen();
  auto a = table->Show(finished);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(StateOf(*a), "succeeded");
  auto b = table->Show(interrupted);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(StateOf(*b), "failed");
  const cJSON* err = cJSON_GetObjectItemCaseSensitive(b->get(), "error");
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring, "interrupted");
  EXPECT_NE(std::string(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring).find("running"),
            std::string::npos);
  // New ids continue after the old ones.
  TaskId next = SubmitSync(Spec("c", [](TaskRun& run) { run.Succeed(Json::NewObject()); }));
  EXPECT_GT(next, interrupted);
}

TEST_F(TasksTest, AnIntentIsDurableOnALaterTurnAndSurvivesARestart) {
  TaskRun* hung = nullptr;
  bool durable = false, inside = true;
  TaskId id = SubmitSync(Spec("slot/x", [&](TaskRun& run) {
    hung = &run;
    Json intent = Json::NewObject();
    cJSON_AddStringToObject(intent.get(), "writecap", "URI:SSK:a:b");
    run.RecordIntent(std::move(intent), [&](Status st) {
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_FALSE(inside) << "durable ran inside RecordIntent";
      durable = true;
    });
    inside = false;
  }));
  ASSERT_TRUE(loop.RunUntil([&] { return durable; }, 5000));
  ASSERT_NE(hung, nullptr);
  CloseTable();  // the daemon "dies" with the task running, its intent recorded
  Reopen();
  auto r = table->Show(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(StateOf(*r), "failed");
  const cJSON* intent = cJSON_GetObjectItemCaseSensitive(r->get(), "intent");
  ASSERT_NE(intent, nullptr);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(intent, "writecap")->valuestring, "URI:SSK:a:b");
}

TEST_F(TasksTest, BoundsRefuseWithBusyAndHistoryIsPruned) {
  CloseTable();
  TaskLimits small;
  small.max_active = 2;
  small.history = 3;
  Reopen(small);
  std::vector<TaskRun*> held;
  SubmitSync(Spec("a", [&](TaskRun& run) { held.push_back(&run); }));
  SubmitSync(Spec("b", [&](TaskRun& run) { held.push_back(&run); }));
  bool refused = false;
  table->Submit(Spec("c", [](TaskRun&) { ADD_FAILURE() << "ran past the bound"; }), [&](Result<TaskId> r) {
    EXPECT_EQ(r.status().code(), Code::kBusy);
    refused = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return refused && held.size() == 2; }, 5000));
  for (TaskRun* r : held) r->Succeed(Json::NewObject());
  loop.RunUntil([&] { return table->active() == 0; }, 5000);
  for (int i = 0; i < 5; ++i) {
    TaskId id = SubmitSync(Spec("d", [](TaskRun& run) { run.Succeed(Json::NewObject()); }));
    bool done = false;
    table->Wait(id, [&](Result<Json>) { done = true; });
    loop.RunUntil([&] { return done; }, 5000);
  }
  loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
  EXPECT_EQ(cJSON_GetArraySize(table->List().get()), 3);
}

}  // namespace
}  // namespace cairn::control
