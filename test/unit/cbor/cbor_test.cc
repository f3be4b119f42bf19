// CBOR writer and reader: known encodings (from cbor2, as quoted in the
// protocol notes), integer boundaries, and malformed input.
#include "cairn/cbor/cbor.h"

#include <gtest/gtest.h>

#include <random>

namespace cairn::cbor {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

TEST(CborTest, AllocateRequestAsCbor2EncodesIt) {
  Writer w;
  w.Map(2);
  w.Text("share-numbers");
  w.Tag(kTagSet);
  w.Array(2);
  w.Uint(1);
  w.Uint(7);
  w.Text("allocated-size");
  w.Uint(48);
  EXPECT_EQ(Hex(w.data()), "a26d73686172652d6e756d62657273d9010282010" "76e616c6c6f63617465642d73697a651830");

  Reader r(w.data());
  ASSERT_EQ(*r.ReadMap(), 2u);
  EXPECT_EQ(*r.ReadText(), "share-numbers");
  auto set = r.ReadUintSet();
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(*set, (std::vector<std::uint64_t>{1, 7}));
  EXPECT_EQ(*r.ReadText(), "allocated-size");
  EXPECT_EQ(*r.ReadUint(), 48u);
  EXPECT_TRUE(r.ExpectEnd().ok());
  EXPECT_TRUE(r.AtEnd());
}

TEST(CborTest, ReadTestWriteReplyAsCbor2EncodesIt) {
  Writer w;
  w.Map(2);
  w.Text("success");
  w.Bool(true);
  w.Text("data");
  w.Map(1);
  w.Uint(3);
  w.Array(1);
  w.Bytes("ab");
  EXPECT_EQ(Hex(w.data()), "a26773756363657373f56464617461a10381426162");
}

TEST(CborTest, IntegerBoundariesUseTheShortestForm) {
  struct Case {
    std::int64_t v;
    const char* hex;
  } cases[] = {
      {0, "00"},         {23, "17"},           {24, "1818"},         {255, "18ff"},
      {256, "190100"},   {65535, "19ffff"},    {65536, "1a00010000"}, {4294967295LL, "1affffffff"},
      {4294967296LL, "1b0000000100000000"},     {-1, "20"},           {-24, "37"},
      {-25, "3818"},     {-256, "38ff"},       {-257, "390100"},
      {INT64_MIN, "3b7fffffffffffffff"},
  };
  for (const Case& c : cases) {
    Writer w;
    w.Int(c.v);
    EXPECT_EQ(Hex(w.data()), c.hex) << c.v;
    Reader r(w.data());
    Item it;
    ASSERT_TRUE(r.Next(&it).ok());
    if (c.v >= 0) {
      EXPECT_EQ(it.type, Type::kUint);
      EXPECT_EQ(it.arg, static_cast<std::uint64_t>(c.v));
    } else {
      EXPECT_EQ(it.type, Type::kNegInt);
      EXPECT_EQ(it.arg, static_cast<std::uint64_t>(-(c.v + 1)));
    }
  }
  Writer w;
  w.Uint(UINT64_MAX);
  EXPECT_EQ(Hex(w.data()), "1bffffffffffffffff");
}

TEST(CborTest, SkipPassesOverNestedItems) {
  Writer w;
  w.Array(3);
  w.Map(1);
  w.Text("k");
  w.Array(2);
  w.Tag(kTagSet);
  w.Array(0);
  w.Bytes(std::string(300, 'x'));
  w.Null();
  w.Uint(9);
  Reader r(w.data());
  ASSERT_EQ(*r.ReadArray(), 3u);
  ASSERT_TRUE(r.Skip().ok());
  Item it;
  ASSERT_TRUE(r.Next(&it).ok());
  EXPECT_EQ(it.type, Type::kNull);
  EXPECT_EQ(*r.ReadUint(), 9u);
  EXPECT_TRUE(r.ExpectEnd().ok());
}

TEST(CborTest, MalformedInputIsRefusedWithItsOffset) {
  const char* bad[] = {
      "18",               // truncated integer
      "45616263",         // byte string of 5 with 3 bytes
      "5f4161ff",         // indefinite byte string
      "9f01ff",           // indefinite array
      "1c",               // reserved additional information
      "f93c00",           // half float
      "f8ff",             // simple value 255
      "9b00000000ffffffff",  // array count beyond the input
      "a201",             // map with one of four items
  };
  for (const char* h : bad) {
    std::string bytes = Unhex(h);  // the reader keeps a view: the bytes must outlive it
    Reader r(bytes);
    Status st;
    while (st.ok() && !r.AtEnd()) st = r.Skip();
    if (st.ok()) st = r.ExpectEnd();
    EXPECT_FALSE(st.ok()) << h;
    if (!st.ok()) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument);
      EXPECT_NE(st.message().find("CBOR at byte"), std::string_view::npos);
    }
  }
}

TEST(CborTest, EmptyInputHasNoBody) {
  Reader r("");
  EXPECT_TRUE(r.AtEnd());
  EXPECT_FALSE(r.ReadMap().ok());
}

TEST(CborTest, LimitsAreEnforced) {
  std::string deep(20, '\x81');
  deep.push_back('\x00');
  Reader r(deep, Limits{16, 1000, 100});
  EXPECT_NE(r.Skip().message().find("deeper"), std::string_view::npos);
  Writer w;
  w.Bytes(std::string(200, 'y'));
  Reader r2(w.data(), Limits{16, 1000, 100});
  EXPECT_NE(r2.Skip().message().find("over the limit"), std::string_view::npos);
  std::string many = "\x98\x32" + std::string(50, '\x00');  // an array of 50 zeros
  Reader r3(many, Limits{16, 10, 100});
  EXPECT_NE(r3.Skip().message().find("items"), std::string_view::npos);
  std::string b4 = Unhex("d9010283010101"), b5 = Unhex("d9010380"), b6 = Unhex("6161");
  Reader r4(b4);
  EXPECT_NE(r4.ReadUintSet().status().message().find("repeated"), std::string_view::npos);
  Reader r5(b5);
  EXPECT_NE(r5.ReadUintSet().status().message().find("tag 258"), std::string_view::npos);
  Reader r6(b6);
  EXPECT_NE(r6.ReadBytes().status().message().find("expected a byte string, found a text string"),
            std::string_view::npos);
}

TEST(CborTest, RandomBytesNeverCrashTheReader) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    std::string buf(rng() % 64, '\0');
    for (char& c : buf) c = static_cast<char>(rng());
    Reader r(buf, Limits{8, 256, 64});
    Status st;
    for (int steps = 0; st.ok() && !r.AtEnd() && steps < 1000; ++steps) st = r.Skip();
  }
}

}  // namespace
}  // namespace cairn::cbor
