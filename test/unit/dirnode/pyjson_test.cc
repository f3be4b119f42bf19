// Python-compatible metadata JSON: what json.loads accepts and json.dumps
// writes, byte for byte (expected strings are Python 3.11's output).
#include <gtest/gtest.h>

#include "cairn/dirnode/pyjson.h"

namespace cairn::dirnode {
namespace {

TEST(PyJson, DumpsAsPython) {
  const std::pair<const char*, const char*> cases[] = {
      {"{}", "{}"},
      {"[]", "[]"},
      {"{\"a\":1,\"b\":[1,2.5,null,true,false]}", "{\"a\": 1, \"b\": [1, 2.5, null, true, false]}"},
      {"{\"b\": 1, \"a\": 2}", "{\"b\": 1, \"a\": 2}"},                     // insertion order
      {"{\"a\": 1, \"b\": 2, \"a\": 3}", "{\"a\": 3, \"b\": 2}"},           // dict semantics
      {"\"caf\xc3\xa9 \xe2\x98\x95\"", "\"caf\\u00e9 \\u2615\""},
      {"\"\xf0\x9f\x98\x80\"", "\"\\ud83d\\ude00\""},                       // surrogate pair
      {"\"\\ud83d\\ude00\"", "\"\\ud83d\\ude00\""},
      {"\"a\\/b\\\"c\\\\\\n\\t\\u0001\\u007f\"", "\"a/b\\\"c\\\\\\n\\t\\u0001\\u007f\""},
      {"1796560785.6349854", "1796560785.6349854"},
      {"1.0", "1.0"},
      {"-0", "0"},
      {"-0.0", "-0.0"},
      {"1e16", "1e+16"},
      {"1.5e-5", "1.5e-05"},
      {"0.0001", "0.0001"},
      {"123456789012345678901234567890", "123456789012345678901234567890"},
      {"1E2", "100.0"},
      {"0.1", "0.1"},
      {"NaN", "NaN"},
      {"-Infinity", "-Infinity"},
      {" { \"k\" : [ ] } ", "{\"k\": []}"},
  };
  for (const auto& [in, out] : cases) {
    auto v = ParsePyJson(in);
    ASSERT_TRUE(v.ok()) << in << ": " << v.status().ToString();
    EXPECT_EQ(DumpPyJson(*v), out) << in;
  }
}

TEST(PyJson, FloatReprIsPythons) {
  EXPECT_EQ(PyFloatRepr(1796560778.848348), "1796560778.848348");
  EXPECT_EQ(PyFloatRepr(0.5), "0.5");
  EXPECT_EQ(PyFloatRepr(100.0), "100.0");
  EXPECT_EQ(PyFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(1.25e100), "1.25e+100");
  EXPECT_EQ(PyFloatRepr(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(PyFloatRepr(0.00012), "0.00012");
}

TEST(PyJson, RefusesMalformed) {
  const char* bad[] = {"", "{", "{\"a\" 1}", "{\"\x97\x9c\": 1}", "\"\xc3\"", "[1,]", "01", "1.", "1e", "\"\\x\"", "\"\\ud800\"", "nul", "{} x",
                       "\"a\nb\"", "{1: 2}"};
  for (const char* b : bad) EXPECT_EQ(ParsePyJson(b).status().code(), Code::kInvalidArgument) << b;
}

}  // namespace
}  // namespace cairn::dirnode
