// The control handlers (control/commands.cc, files.cc, mutable.cc,
// servers.cc) over a real control socket on the real Loop: parameters are
// checked before anything is queued, tasks hold the lock keys their method
// names, and files travel the one transfer path (announced sizes checked,
// output sent back in data frames). With no servers in the grid only a LIT
// file can be put and read back, which is enough to cross the whole path.
#include "cairn/control/commands.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/grid/grid.h"
#include "unit/control/socket_client.h"

namespace cairn::control {
namespace {

using testing::Frame;
using testing::SocketClient;

class FakeNode final : public NodeView {
 public:
  Json StatusJson() override { return Json::NewObject(); }
  std::string MetricsText() override { return ""; }
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-commands-XXXXXX";
    dir = mkdtemp(tmpl);
    std::filesystem::create_directory(dir + "/private");
    CommandsOptions o;
    o.test_hooks = true;
    o.private_dir = dir + "/private";
    o.spool_dir = dir + "/tmp";
    o.sdmf_max_bytes = 1000;
    commands = std::make_unique<Commands>(loop, limits, node, o);
    Status st = commands->Open(dir + "/control");
    ASSERT_TRUE(st.ok()) << st.ToString();
    server = std::make_unique<Server>(loop, limits, *commands);
    st = server->Start(dir + "/control.sock");
    ASSERT_TRUE(st.ok()) << st.ToString();
    client = std::make_unique<SocketClient>(loop, dir + "/control.sock");
  }
  void TearDown() override {
    client.reset();
    bool closed = false;
    server->Close([&] { closed = true; });
    EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
    closed = false;
    commands->Close([&] { closed = true; });
    EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
    loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
    server.reset();
    commands.reset();
    std::filesystem::remove_all(dir);
  }
  // Sends a request and returns its final frame.
  Frame Call(const char* method, const char* params, bool wait = true) {
    long long id = next_id++;
    client->Request(id, method, params, wait);
    return client->FinalOf(id);
  }
  // Sends a request with `input` as its data frames and returns every frame
  // of its answer.
  std::vector<Frame> CallWithInput(const char* method, const char* params, const std::string& input,
                                   bool wait = true) {
    long long id = next_id++;
    client->Request(id, method, params, wait);
    client->Data(id, 0, input, true);
    return client->AnswerTo(id);
  }
  // The lock keys of task `id` as "key:mode" strings.
  std::vector<std::string> KeysOf(int task) {
    Frame shown = Call("tasks.show", ("{\"id\":" + std::to_string(task) + "}").c_str());
    std::vector<std::string> out;
    const cJSON* keys = shown.result() ? cJSON_GetObjectItemCaseSensitive(shown.result(), "keys") : nullptr;
    const cJSON* k;
    cJSON_ArrayForEach(k, keys) {
      out.push_back(std::string(cJSON_GetObjectItemCaseSensitive(k, "key")->valuestring) + ":" +
                    cJSON_GetObjectItemCaseSensitive(k, "mode")->valuestring);
    }
    return out;
  }
  static int TaskOf(const Frame& f) {
    const cJSON* t = f.result() ? cJSON_GetObjectItemCaseSensitive(f.result(), "task") : nullptr;
    return cJSON_IsNumber(t) ? t->valueint : 0;
  }

  Loop loop;
  Limits limits;
  FakeNode node;
  std::string dir;
  std::unique_ptr<Commands> commands;
  std::unique_ptr<Server> server;
  std::unique_ptr<SocketClient> client;
  long long next_id = 1;
};

TEST_F(CommandsTest, BadParametersAreRefusedBeforeAnythingIsQueued) {
  struct Case {
    const char* method;
    const char* params;
    bool wait;
    const char* code;
    const char* message;  // a part of the message
  };
  const Case cases[] = {
      {"put", R"({"convergence":"%%%"})", true, "invalid_argument", "params.convergence must be base64"},
      {"put", R"({"size":"ten"})", true, "invalid_argument", "params.size"},
      {"put", R"({"colour":1})", true, "invalid_argument", "colour"},
      {"get", R"({"cap":"photos"})", false, "invalid_argument", "cannot answer before it ends"},
      {"get", R"({"cap":"no such/name"})", true, "bad_cap", "is neither a cap nor an alias name"},
      {"get", R"({})", true, "invalid_argument", "params.cap"},
      {"mutable.create", R"({"alias":"-x"})", true, "invalid_argument", "starts with a letter or a digit"},
      {"mutable.create", R"({"size":1001})", true, "invalid_argument", "limited to 1000 bytes"},
      {"mutable.put", R"({"size":1})", true, "invalid_argument", "params.target"},
      {"mutable.put", R"({"target":"doc","size":5000})", true, "invalid_argument", "limits.sdmf_max_bytes"},
      {"mutable.put", R"({"target":"URI:LIT:mfrgg"})", true, "bad_cap", "write cap"},
      {"mutable.get", R"({"target":"doc"})", false, "invalid_argument", "cannot answer before it ends"},
      {"mutable.get", R"({"target":"a b"})", true, "bad_cap", "neither a cap nor an alias name"},
      {"servers.add", R"({"nurl":"http://example"})", true, "", ""},
      {"alias.add", R"({"name":"x","cap":"junk"})", true, "", ""},
  };
  for (const Case& c : cases) {
    Frame f = Call(c.method, c.params, c.wait);
    EXPECT_FALSE(f.error_code().empty()) << c.method << " " << c.params;
    if (*c.code) {
      EXPECT_EQ(f.error_code(), c.code) << c.method << " " << c.params << ": " << f.error_message();
    }
    EXPECT_NE(f.error_message().find(c.message), std::string::npos)
        << c.method << " " << c.params << ": " << f.error_message();
  }
  Frame list = Call("tasks.list", "{}");
  ASSERT_NE(list.result(), nullptr);
  EXPECT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list.result(), "tasks")), 0);
}

TEST_F(CommandsTest, InputLongerOrShorterThanItsAnnouncedSizeIsRefused) {
  std::vector<Frame> longer = CallWithInput("put", R"({"size":3})", "abcde");
  EXPECT_EQ(longer.back().error_message(), "more data than params.size (3 bytes)");
  std::vector<Frame> shorter = CallWithInput("mutable.create", R"({"size":9})", "abcde");
  EXPECT_EQ(shorter.back().error_message(), "the input ended after 5 of params.size 9 bytes");
  std::vector<Frame> over = CallWithInput("mutable.create", "{}", std::string(1001, 'x'));
  EXPECT_EQ(over.back().error_code(), "invalid_argument");
  EXPECT_NE(over.back().error_message().find("limits.sdmf_max_bytes"), std::string::npos);
}

TEST_F(CommandsTest, ALitFileGoesInAndComesBackInDataFrames) {
  const std::string contents = "a small file, stored in its cap";
  std::vector<Frame> put = CallWithInput("put", ("{\"size\":" + std::to_string(contents.size()) + "}").c_str(),
                                         contents);
  ASSERT_NE(put.back().result(), nullptr) << put.back().error_message();
  std::string cap = cJSON_GetObjectItemCaseSensitive(put.back().result(), "cap")->valuestring;
  EXPECT_EQ(cap.rfind("URI:LIT:", 0), 0u) << cap;
  EXPECT_EQ(KeysOf(TaskOf(put.back())), (std::vector<std::string>{"servers:shared"}));

  long long id = next_id++;
  client->Request(id, "get", ("{\"cap\":\"" + cap + "\"}").c_str());
  std::vector<Frame> got = client->AnswerTo(id);
  std::string back;
  std::size_t data_frames = 0;
  for (const Frame& f : got) {
    if (!f.is_data()) continue;
    back += f.data;
    ++data_frames;
  }
  EXPECT_EQ(back, contents);
  EXPECT_EQ(data_frames, 1u);
  ASSERT_NE(got.back().result(), nullptr) << got.back().error_message();
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(got.back().result(), "size")->valueint,
            static_cast<int>(contents.size()));
}

TEST_F(CommandsTest, DebugEmitSendsItsBytesInChunksOfTheAskedSize) {
  long long id = next_id++;
  client->Request(id, "debug.emit", R"({"bytes":10,"chunk":4})");
  std::vector<Frame> frames = client->AnswerTo(id);
  ASSERT_EQ(frames.size(), 4u);
  std::string all;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(frames[i].is_data());
    EXPECT_EQ(frames[i].data.size(), i < 2 ? 4u : 2u);
    all += frames[i].data;
  }
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(static_cast<unsigned char>(all[i]), (i * 7) % 251) << i;
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(frames.back().result(), "bytes")->valueint, 10);
}

TEST_F(CommandsTest, DebugDigestReadsEveryFrameOfTheInput) {
  long long id = next_id++;
  client->Request(id, "debug.digest", R"({"delay_ms":1})");
  client->Data(id, 0, "abc", false);
  client->Data(id, 1, "de", true);
  Frame f = client->FinalOf(id);
  ASSERT_NE(f.result(), nullptr) << f.error_message();
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(f.result(), "frames")->valueint, 2);
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(f.result(), "bytes")->valueint, 5);
}

TEST_F(CommandsTest, TasksHoldTheLockKeysOfTheirMethod) {
  // A get by alias waits behind a task holding that alias; it takes the
  // servers table shared and the alias shared.
  Frame hold = Call("debug.hold", R"({"ms":300,"keys":["alias/photos"]})", false);
  int hold_task = TaskOf(hold);
  ASSERT_GT(hold_task, 0);
  EXPECT_EQ(KeysOf(hold_task), (std::vector<std::string>{"alias/photos:exclusive"}));
  long long get_id = next_id++;
  client->Request(get_id, "get", R"({"cap":"photos"})");
  Frame got = client->FinalOf(get_id);
  EXPECT_EQ(got.error_code(), "not_found") << got.error_message();
  EXPECT_EQ(KeysOf(hold_task + 1), (std::vector<std::string>{"servers:shared", "alias/photos:shared"}));

  // mutable.put by an alias that names no file yet: the alias shared, no slot.
  std::vector<Frame> put = CallWithInput("mutable.put", R"({"target":"doc"})", "new contents", false);
  int put_task = TaskOf(put.back());
  ASSERT_GT(put_task, 0) << put.back().error_message();
  EXPECT_EQ(KeysOf(put_task), (std::vector<std::string>{"servers:shared", "alias/doc:shared"}));

  // mutable.create with an alias takes the name exclusive. (With no
  // servers it fails once its key is made; it is waited for, so that no key
  // generation outlives the test.)
  std::vector<Frame> create = CallWithInput("mutable.create", R"({"alias":"fresh"})", "x", false);
  int create_task = TaskOf(create.back());
  ASSERT_GT(create_task, 0) << create.back().error_message();
  EXPECT_EQ(KeysOf(create_task), (std::vector<std::string>{"servers:shared", "alias/fresh:exclusive"}));
  long long wait_id = next_id++;
  client->Request(wait_id, "tasks.wait", ("{\"id\":" + std::to_string(create_task) + "}").c_str());
  std::vector<Frame> waited = client->AnswerTo(wait_id, 120000);
  ASSERT_FALSE(waited.empty());
  ASSERT_NE(waited.back().result(), nullptr);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(waited.back().result(), "state")->valuestring, "failed");

  // Alias methods: one key per name, exclusive; servers.* the table exclusive.
  Frame rename = Call("alias.rename", R"({"from":"a1","to":"a2"})");
  EXPECT_EQ(rename.error_code(), "not_found") << rename.error_message();
  EXPECT_EQ(KeysOf(create_task + 1), (std::vector<std::string>{"alias/a1:exclusive", "alias/a2:exclusive"}));
  Frame remove = Call("servers.remove", R"({"server":"nobody"})");
  EXPECT_EQ(remove.error_code(), "not_found") << remove.error_message();
  EXPECT_EQ(KeysOf(create_task + 2), (std::vector<std::string>{"servers:exclusive"}));
}

TEST_F(CommandsTest, TheGridIsTheDaemonsToo) {
  grid::Grid& grid = commands->grid();
  EXPECT_FALSE(grid.stopping());
  EXPECT_EQ(grid.active(), 0u);
}

}  // namespace
}  // namespace cairn::control
