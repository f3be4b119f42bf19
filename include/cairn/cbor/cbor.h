// CBOR (RFC 8949) as GBS uses it: a writer producing the encodings Python's
// cbor2 produces (shortest integer and length forms, definite lengths, maps
// in the order written), and a bounded pull reader.
//
// The reader refuses indefinite lengths, floats and simple values other than
// false/true/null/undefined (GBS messages use none of them), nesting deeper
// than the limit, more items than the limit, and strings longer than the
// limit; every error is InvalidArgument naming the byte offset. It never
// allocates per item: strings are views into the input. Any thread; one
// object per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::cbor {

inline constexpr std::uint64_t kTagSet = 258;  // a set: tag 258 around an array

class Writer {
 public:
  void Uint(std::uint64_t v) { Head(0, v); }
  // Negative or positive.
  void Int(std::int64_t v);
  // The negative integer -1 - arg (reaches -2^64, beyond int64_t).
  void Negative(std::uint64_t arg) { Head(1, arg); }
  void Bytes(std::string_view b);
  void Text(std::string_view t);
  void Array(std::uint64_t count) { Head(4, count); }
  void Map(std::uint64_t pairs) { Head(5, pairs); }
  void Tag(std::uint64_t tag) { Head(6, tag); }
  void Bool(bool b) { out_.push_back(b ? '\xf5' : '\xf4'); }
  void Null() { out_.push_back('\xf6'); }

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Head(int major, std::uint64_t v);
  std::string out_;
};

enum class Type { kUint, kNegInt, kBytes, kText, kArray, kMap, kTag, kFalse, kTrue, kNull, kUndefined };
const char* TypeName(Type t);

struct Item {
  Type type = Type::kNull;
  // kUint: the value. kNegInt: the CBOR argument n (the value is -1 - n).
  // kArray: element count. kMap: pair count. kTag: the tag number.
  // kBytes/kText: the length.
  std::uint64_t arg = 0;
  std::string_view str;  // kBytes/kText: the content (a view into the input)
  std::size_t offset = 0;
};

struct Limits {
  std::size_t max_depth = 16;
  std::size_t max_items = 1 << 20;
  std::size_t max_string = 64 << 20;
};

class Reader {
 public:
  // `data` must outlive the reader and every view it hands out.
  explicit Reader(std::string_view data, Limits limits = {}) : data_(data), limits_(limits) {}

  // Reads the next item's head (and, for strings, its content). Arrays and
  // maps are entered: their elements follow as further items.
  Status Next(Item* item);
  // Reads and discards one whole item, nested contents included.
  Status Skip();
  // True when every byte was consumed and no container is open.
  bool AtEnd() const;
  std::size_t offset() const { return pos_; }

  // Typed helpers: read the next item, which must be of the named type.
  Result<std::uint64_t> ReadUint();
  Result<std::string_view> ReadBytes();
  Result<std::string_view> ReadText();
  Result<std::uint64_t> ReadArray();
  Result<std::uint64_t> ReadMap();
  // A tag-258 set of unsigned integers (share numbers), e.g. d9 0102 82 01 07.
  // Duplicate members are refused.
  Result<std::vector<std::uint64_t>> ReadUintSet();
  // OK if the input holds nothing more.
  Status ExpectEnd() const;

 private:
  Status Error(const std::string& what) const;
  Status Expect(Type want, Item* item);

  std::string_view data_;
  Limits limits_;
  std::size_t pos_ = 0;
  std::size_t items_ = 0;
  std::vector<std::uint64_t> open_;  // items still to read in each open container
};

}  // namespace cairn::cbor
