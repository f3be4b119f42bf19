// NFC against Python's unicodedata (test/vectors/dirs/nfc.json: mixtures of
// combining marks, Hangul, singletons and composition exclusions, and every
// code point below U+30000 that NFC or NFD changes).
#include <gtest/gtest.h>
#include <cjson/cJSON.h>

#include "cairn/dirnode/nfc.h"
#include "support/vectors.h"

namespace cairn::dirnode {
namespace {

TEST(Nfc, MatchesPythonUnicodedata) {
  Json v = testing::LoadVectors("dirs/nfc.json");
  EXPECT_EQ(testing::Str(v.get(), "unicode"), NfcUnicodeVersion());
  const cJSON* cases = cJSON_GetObjectItemCaseSensitive(v.get(), "cases");
  ASSERT_GT(cJSON_GetArraySize(cases), 10000);
  int failures = 0;
  const cJSON* c;
  cJSON_ArrayForEach(c, cases) {
    std::string in = cJSON_GetArrayItem(c, 0)->valuestring;
    std::string want = cJSON_GetArrayItem(c, 1)->valuestring;
    auto got = NormalizeNfc(in);
    ASSERT_TRUE(got.ok());
    if (*got != want && ++failures <= 10) ADD_FAILURE() << testing::Hex(in) << " -> " << testing::Hex(*got) << ", want " << testing::Hex(want);
  }
  EXPECT_EQ(failures, 0);
}

TEST(Nfc, AsciiAndBadUtf8) {
  EXPECT_EQ(*NormalizeNfc("plain name.txt"), "plain name.txt");
  EXPECT_EQ(*NormalizeNfc("e\xcc\x81-nfd.txt"), "\xc3\xa9-nfd.txt");
  const char* bad[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"};
  for (const char* b : bad) EXPECT_EQ(NormalizeNfc(b).status().code(), Code::kInvalidArgument) << b;
}

}  // namespace
}  // namespace cairn::dirnode
