// The control transfer path (control/transfer.h) over a real control
// socket: input received into memory and into a spool file against its
// announced size, output sent back in chunks, submit-and-answer, and the
// lock keys. Real Loop: the server and the spool use libuv and the pool.
#include "control/transfer.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "control/locks.h"
#include "unit/control/socket_client.h"

namespace cairn::control {
namespace {

using testing::Frame;
using testing::SocketClient;

// Hands every request to the test's function.
class FnDispatcher final : public Dispatcher {
 public:
  std::function<void(Request, Reply)> fn;
  void Handle(Request request, Reply reply) override { fn(std::move(request), std::move(reply)); }
};

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-transfer-XXXXXX";
    dir = mkdtemp(tmpl);
    server = std::make_unique<Server>(loop, server_limits, dispatcher);
    Status st = server->Start(dir + "/control.sock");
    ASSERT_TRUE(st.ok()) << st.ToString();
    client = std::make_unique<SocketClient>(loop, dir + "/control.sock");
  }
  void TearDown() override {
    client.reset();
    if (tasks) {
      bool closed = false;
      tasks->Close([&] { closed = true; });
      EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
    }
    bool closed = false;
    server->Close([&] { closed = true; });
    EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
    loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
    server.reset();
    tasks.reset();
    std::filesystem::remove_all(dir);
  }
  void OpenTasks() {
    tasks = std::make_unique<TaskTable>(loop, TaskLimits{});
    Status st = tasks->Open(dir + "/control");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // Sends `chunks` as the input of request `id`, the last marked eof.
  void SendInput(long long id, const std::vector<std::string>& chunks) {
    for (std::size_t i = 0; i < chunks.size(); ++i) client->Data(id, i, chunks[i], i + 1 == chunks.size());
  }

  Loop loop;
  Limits server_limits;
  std::string dir;
  FnDispatcher dispatcher;
  std::unique_ptr<Server> server;
  std::unique_ptr<SocketClient> client;
  std::unique_ptr<TaskTable> tasks;
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Answers with the bytes received (and their count), or the error.
struct Received {
  int calls = 0;
  bool in_call = false;
  bool called_inside = false;
  Result<std::uint64_t> outcome = Status::Internal("not yet");
};

TEST_F(TransferTest, InputIntoMemoryMatchesItsAnnouncedSizeAndEndsOnceOnALaterTurn) {
  auto into = std::make_shared<std::string>();
  Received got;
  dispatcher.fn = [&](Request req, Reply reply) {
    ReceiveLimits limits;
    limits.announced = 10;
    got.in_call = true;
    ReceiveInput(loop, std::move(req.input), limits, nullptr, ToMemory(into),
                 [&, reply = std::move(reply)](Result<std::uint64_t> outcome) mutable {
                   got.calls++;
                   got.called_inside = got.in_call;
                   got.outcome = outcome;
                   if (!outcome.ok()) return reply.Error(outcome.status());
                   reply.Result(Json::NewObject());
                 });
    got.in_call = false;
  };
  client->Request(1, "m", "{}");
  SendInput(1, {"0123", "4567", "89"});
  Frame f = client->FinalOf(1);
  EXPECT_EQ(f.error_code(), "");
  EXPECT_EQ(got.calls, 1);
  EXPECT_FALSE(got.called_inside);
  ASSERT_TRUE(got.outcome.ok());
  EXPECT_EQ(*got.outcome, 10u);
  EXPECT_EQ(*into, "0123456789");
}

TEST_F(TransferTest, InputLongerOrShorterThanAnnouncedOrOverTheLimitIsRefused) {
  struct Case {
    std::optional<std::uint64_t> announced;
    std::uint64_t max;
    std::vector<std::string> chunks;
    const char* message;
  };
  const Case cases[] = {
      {5, 100, {"abc", "def"}, "more data than params.size (5 bytes)"},
      {8, 100, {"abc", "def"}, "the input ended after 6 of params.size 8 bytes"},
      {std::nullopt, 4, {"abc", "def"}, "over the limit"},
  };
  long long id = 1;
  for (const Case& c : cases) {
    dispatcher.fn = [&](Request req, Reply reply) {
      ReceiveLimits limits;
      limits.announced = c.announced;
      limits.max = c.max;
      limits.over_max = "over the limit";
      ReceiveInput(loop, std::move(req.input), limits, nullptr, ToMemory(std::make_shared<std::string>()),
                   [reply = std::move(reply)](Result<std::uint64_t> outcome) mutable {
                     if (!outcome.ok()) return reply.Error(outcome.status());
                     reply.Result(Json::NewObject());
                   });
    };
    client->Request(id, "m", "{}");
    SendInput(id, c.chunks);
    Frame f = client->FinalOf(id);
    EXPECT_EQ(f.error_code(), "invalid_argument") << c.message;
    EXPECT_EQ(f.error_message(), c.message);
    ++id;
  }
}

TEST_F(TransferTest, InputStopsWithShuttingDownOnceStoppingSaysSo) {
  bool stopping = false;
  dispatcher.fn = [&](Request req, Reply reply) {
    ReceiveInput(loop, std::move(req.input), ReceiveLimits{}, [&] { return stopping; },
                 ToMemory(std::make_shared<std::string>()),
                 [reply = std::move(reply)](Result<std::uint64_t> outcome) mutable {
                   if (!outcome.ok()) return reply.Error(outcome.status());
                   reply.Result(Json::NewObject());
                 });
    stopping = true;
  };
  client->Request(1, "m", "{}");
  SendInput(1, {"abc"});
  EXPECT_EQ(client->FinalOf(1).error_code(), "shutting_down");
}

TEST_F(TransferTest, InputIntoASpoolFileIsWrittenAtItsOffsetsAndSeenChunkByChunkOnThePool) {
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  auto seen = std::make_shared<std::string>();  // touched only by the pool, one chunk at a time
  std::string spooled;
  dispatcher.fn = [&](Request req, Reply reply) {
    auto pending = std::make_shared<std::pair<Request, Reply>>(std::move(req), std::move(reply));
    MakeSpool(loop, dir, "put", [&, pending](Result<std::shared_ptr<Spool>> made) {
      ASSERT_TRUE(made.ok()) << made.status().ToString();
      *spool = *made;
      ReceiveLimits limits;
      limits.announced = 7;
      ReceiveInput(loop, std::move(pending->first.input), limits, nullptr,
                   ToSpool(loop, *spool, [seen](const std::string& data) { *seen += "[" + data + "]"; }),
                   [&, pending](Result<std::uint64_t> outcome) {
                     if (!outcome.ok()) return pending->second.Error(outcome.status());
                     spooled = ReadFile((*spool)->path);
                     pending->second.Result(Json::NewObject());
                   });
    });
  };
  client->Request(1, "m", "{}");
  SendInput(1, {"abc", "de", "fg"});
  EXPECT_EQ(client->FinalOf(1).error_code(), "");
  EXPECT_EQ(spooled, "abcdefg");
  EXPECT_EQ(*seen, "[abc][de][fg]");
  // The file goes with its last holder.
  std::string path = (*spool)->path;
  EXPECT_EQ(path.rfind(dir + "/put-", 0), 0u) << path;
  spool->reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(TransferTest, OpenSpoolRemovesWhatAnEarlierRunLeft) {
  std::string spool_dir = dir + "/tmp";
  ASSERT_TRUE(OpenSpool(spool_dir).ok());
  std::ofstream(spool_dir + "/put-abc") << "x";
  std::ofstream(spool_dir + "/get-abc") << "x";
  std::ofstream(spool_dir + "/other") << "x";
  ASSERT_TRUE(OpenSpool(spool_dir).ok());
  EXPECT_FALSE(std::filesystem::exists(spool_dir + "/put-abc"));
  EXPECT_FALSE(std::filesystem::exists(spool_dir + "/get-abc"));
  EXPECT_TRUE(std::filesystem::exists(spool_dir + "/other"));
}

// The data frames of an answer, then its result.
void ExpectChunks(const std::vector<Frame>& frames, const std::vector<std::string>& chunks) {
  ASSERT_EQ(frames.size(), chunks.size() + 1);
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    ASSERT_TRUE(frames[i].is_data()) << i;
    EXPECT_EQ(frames[i].data, chunks[i]) << i;
    const cJSON* eof = cJSON_GetObjectItemCaseSensitive(frames[i].head.get(), "eof");
    EXPECT_EQ(cJSON_IsTrue(eof), i + 1 == chunks.size()) << i;
  }
  ASSERT_NE(frames.back().result(), nullptr);
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(frames.back().result(), "n")->valueint, 7);
}

Json ResultN() {
  Json r = Json::NewObject();
  cJSON_AddNumberToObject(r.get(), "n", 7);
  return r;
}

TEST_F(TransferTest, OutputFromMemoryGoesBackInChunksThenTheResult) {
  auto bytes = std::make_shared<const std::string>("0123456789");
  dispatcher.fn = [&](Request, Reply reply) {
    SendOutput(loop, std::make_shared<Reply>(std::move(reply)), Output::Memory(bytes), ResultN(), 4);
  };
  client->Request(1, "m", "{}");
  ExpectChunks(client->AnswerTo(1), {"0123", "4567", "89"});
}

TEST_F(TransferTest, EmptyOutputIsOneEmptyEofFrame) {
  dispatcher.fn = [&](Request, Reply reply) {
    SendOutput(loop, std::make_shared<Reply>(std::move(reply)), Output::Memory(std::make_shared<std::string>()),
               ResultN());
  };
  client->Request(1, "m", "{}");
  ExpectChunks(client->AnswerTo(1), {""});
}

TEST_F(TransferTest, OutputFromASpoolFileIsReadOnThePoolInChunks) {
  auto spool = std::make_shared<Spool>();
  ASSERT_TRUE(CreateSpool(dir, "get", spool.get()).ok());
  std::ofstream(spool->path, std::ios::binary) << "abcdefghij";
  dispatcher.fn = [&](Request, Reply reply) {
    SendOutput(loop, std::make_shared<Reply>(std::move(reply)), Output::Spooled(spool, 10), ResultN(), 3);
  };
  client->Request(1, "m", "{}");
  ExpectChunks(client->AnswerTo(1), {"abc", "def", "ghi", "j"});
}

TEST_F(TransferTest, OutputFromASpoolShorterThanAnnouncedIsAnIoError) {
  auto spool = std::make_shared<Spool>();
  ASSERT_TRUE(CreateSpool(dir, "get", spool.get()).ok());
  std::ofstream(spool->path, std::ios::binary) << "abc";
  dispatcher.fn = [&](Request, Reply reply) {
    SendOutput(loop, std::make_shared<Reply>(std::move(reply)), Output::Spooled(spool, 10), ResultN(), 8);
  };
  client->Request(1, "m", "{}");
  EXPECT_EQ(client->FinalOf(1).error_code(), "io_error");
}

TaskSpec Spec(const char* key, TaskBody body) {
  TaskSpec s;
  s.kind = "test";
  s.params = Json::NewObject();
  s.keys = {LockKey{key, LockMode::kExclusive}};
  s.body = std::move(body);
  return s;
}

TEST_F(TransferTest, SubmitAndAnswerWaitsForTheResultWithProgressAndTheTaskId) {
  OpenTasks();
  dispatcher.fn = [&](Request req, Reply reply) {
    SubmitAndAnswer(*tasks, req.wait, std::move(reply), Spec("k", [](TaskRun& run) {
                      run.Progress("working", 1, 2);
                      Json r = Json::NewObject();
                      cJSON_AddStringToObject(r.get(), "made", "yes");
                      run.Succeed(std::move(r));
                    }));
  };
  client->Request(1, "m", "{}");
  std::vector<Frame> frames = client->AnswerTo(1);
  ASSERT_FALSE(frames.empty());
  const cJSON* result = frames.back().result();
  ASSERT_NE(result, nullptr);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(result, "made")->valuestring, "yes");
  EXPECT_GE(cJSON_GetObjectItemCaseSensitive(result, "task")->valueint, 1);
}

TEST_F(TransferTest, SubmitAndAnswerGivesATaskFailureWithTheTaskAsContext) {
  OpenTasks();
  dispatcher.fn = [&](Request req, Reply reply) {
    SubmitAndAnswer(*tasks, req.wait, std::move(reply),
                    Spec("k", [](TaskRun& run) { run.Fail(Status::Conflict("it clashed")); }));
  };
  client->Request(1, "m", "{}");
  Frame f = client->FinalOf(1);
  EXPECT_EQ(f.error_code(), "conflict");
  EXPECT_EQ(f.error_message(), "task 1: it clashed");
}

TEST_F(TransferTest, SubmitAndAnswerWithoutWaitingAnswersQueuedAndWhatItWaitsOn) {
  OpenTasks();
  std::vector<TaskRun*> held;
  dispatcher.fn = [&](Request req, Reply reply) {
    SubmitAndAnswer(*tasks, req.wait, std::move(reply), Spec("k", [&](TaskRun& run) { held.push_back(&run); }));
  };
  client->Request(1, "m", "{}", false);
  Frame first = client->FinalOf(1);
  ASSERT_NE(first.result(), nullptr);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(first.result(), "state")->valuestring, "queued");
  ASSERT_TRUE(loop.RunUntil([&] { return held.size() == 1; }, 10000));
  client->Request(2, "m", "{}", false);
  Frame second = client->FinalOf(2);
  ASSERT_NE(second.result(), nullptr);
  const cJSON* waiting = cJSON_GetObjectItemCaseSensitive(second.result(), "waiting_on");
  ASSERT_TRUE(cJSON_IsArray(waiting));
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(waiting, 0), "key")->valuestring, "k");
  held[0]->Succeed(Json::NewObject());
  ASSERT_TRUE(loop.RunUntil([&] { return held.size() == 2; }, 10000));
  held[1]->Succeed(Json::NewObject());
}

TEST_F(TransferTest, SendOutputAfterTheTaskSendsTheFileThenTheResultWithTheTaskId) {
  OpenTasks();
  auto contents = std::make_shared<std::string>();
  dispatcher.fn = [&](Request req, Reply reply) {
    SubmitAndAnswer(*tasks, req.wait, std::move(reply), Spec("k", [contents](TaskRun& run) {
                      *contents = "hello, world";
                      run.Succeed(ResultN());
                    }),
                    [&, contents](std::shared_ptr<Reply> out, Json result) {
                      SendOutput(loop, std::move(out), Output::Memory(contents), std::move(result), 5);
                    });
  };
  client->Request(1, "m", "{}");
  std::vector<Frame> frames = client->AnswerTo(1);
  std::vector<Frame> data;
  for (Frame& f : frames) {
    if (f.is_data() || f.is_final()) data.push_back(std::move(f));
  }
  ExpectChunks(data, {"hello", ", wor", "ld"});
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(data.back().result(), "task")->valueint, 1);
}

TEST(LockKeysTest, KeysAreNamedInOnePlace) {
  EXPECT_EQ(LockKeys::Servers(LockMode::kShared).name, "servers");
  EXPECT_EQ(LockKeys::Servers(LockMode::kShared).mode, LockMode::kShared);
  EXPECT_EQ(LockKeys::Alias("photos", LockMode::kExclusive).name, "alias/photos");
  EXPECT_EQ(LockKeys::Alias("photos", LockMode::kExclusive).mode, LockMode::kExclusive);
  LockKey slot = LockKeys::Slot(std::string(16, '\0'), LockMode::kShared);
  EXPECT_EQ(slot.name, "slot/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_FALSE(slot.refuse_if_busy);
}

}  // namespace
}  // namespace cairn::control
