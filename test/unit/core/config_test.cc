#include "cairn/core/config.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(ConfigTest, MinimalConfigGetsBoardDefaults) {
  auto c = ParseConfig(R"({"format": 1, "board": "host", "nickname": "n1"})", "cairn.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->nickname, "n1");
  auto def = BoardDefaults("host");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(c->limits.control_frame_bytes, def->control_frame_bytes);
  EXPECT_EQ(c->listen_address, "127.0.0.1");
}

TEST(ConfigTest, OverridesApplyAndRoundTrip) {
  auto c = ParseConfig(
      R"({"format":1,"board":"host","storage":{"port":4000,"listen":"127.0.0.1","host":"nas.local"},
          "limits":{"control_frame_bytes":1024},"log_level":"debug","log_sink":"syslog"})",
      "x");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->port, 4000);
  EXPECT_EQ(c->public_host, "nas.local");
  EXPECT_EQ(c->limits.control_frame_bytes, 1024u);
  EXPECT_EQ(c->log_level, LogLevel::kDebug);
  auto again = ParseConfig(ConfigToJson(*c), "again");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->limits.control_frame_bytes, 1024u);
  EXPECT_EQ(again->port, 4000);
  EXPECT_EQ(again->public_host, "nas.local");
  EXPECT_EQ(again->log_sink, "syslog");
}

TEST(ConfigTest, UnknownKeysAreNamed) {
  struct Case {
    const char* text;
    const char* key;
  } cases[] = {
      {R"({"format":1,"nickame":"typo"})", "\"nickame\""},
      {R"({"format":1,"storage":{"prot":1}})", "\"storage.prot\""},
      {R"({"format":1,"limits":{"max_conections":5}})", "\"limits.max_conections\""},
      {R"({"format":1,"nickname":"a","nickname":"b"})", "duplicate key \"nickname\""},
      {R"({"format":1,"storage":{"port":1,"port":2}})", "duplicate key \"storage.port\""},
  };
  for (const Case& k : cases) {
    auto c = ParseConfig(k.text, "cairn.json");
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_NE(c.status().message().find(k.key), std::string_view::npos) << c.status().ToString();
    EXPECT_NE(c.status().message().find("cairn.json"), std::string_view::npos);
  }
}

TEST(ConfigTest, BadValuesAreRejected) {
  const char* bad[] = {
      R"({"format":2})",
      R"({"nickname":"no format"})",
      R"({"format":1,"board":"toaster"})",
      R"({"format":1,"storage":{"port":70000}})",
      R"({"format":1,"storage":{"port":-1}})",
      R"({"format":1,"log_level":"loud"})",
      R"({"format":1,"log_sink":"file"})",
      R"({"format":1,"limits":{"threadpool":"four"}})",
      R"([1,2])",
      R"({"format":1} trailing)",
      "{\"format\":1,\"nickname\":\"a\x01b\"}",
      "{\"format\":1,\"nickname\":\"\xff\"}",
      "{\"format\":1,\"nickname\":\"\xc0\xaf\"}",
  };
  for (const char* text : bad) EXPECT_FALSE(ParseConfig(text, "x").ok()) << text;
  // A NUL inside a key must not turn "nicknameX" into "nickname".
  std::string nul = std::string("{\"format\":1,\"nickname") + '\0' + "X\":\"a\"}";
  EXPECT_FALSE(ParseConfig(nul, "x").ok());
  EXPECT_TRUE(ParseConfig("{\"format\":1,\"nickname\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", "x").ok());
}

TEST(LimitsTest, EveryBoardFileNamesOnlyKnownLimits) {
  // BoardDefaults aborts on an unknown or malformed LIMIT_ line; load them all.
  auto boards = KnownBoards();
  ASSERT_FALSE(boards.empty());
  for (const std::string& b : boards) EXPECT_TRUE(BoardDefaults(b).ok()) << b;
  EXPECT_FALSE(BoardDefaults("nope").ok());
  // A board changes only what it lists; the rest are the defaults.
  auto host = BoardDefaults("host");
  auto kirkwood = BoardDefaults("kirkwood");
  ASSERT_TRUE(host.ok() && kirkwood.ok());
  EXPECT_EQ(host->threadpool, Limits().threadpool);
  EXPECT_EQ(kirkwood->threadpool, 1u);
  EXPECT_EQ(kirkwood->tls_prefer_chacha, 1u);
  EXPECT_LT(kirkwood->lmdb_map_max_bytes, host->lmdb_map_max_bytes);
  EXPECT_EQ(kirkwood->control_idle_ms, Limits().control_idle_ms);
}

}  // namespace
}  // namespace cairn
