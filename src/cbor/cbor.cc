// CBOR writer and bounded pull reader. Any thread.
#include "cairn/cbor/cbor.h"

#include <algorithm>

namespace cairn::cbor {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kUint: return "unsigned integer";
    case Type::kNegInt: return "negative integer";
    case Type::kBytes: return "byte string";
    case Type::kText: return "text string";
    case Type::kArray: return "array";
    case Type::kMap: return "map";
    case Type::kTag: return "tag";
    case Type::kFalse: return "false";
    case Type::kTrue: return "true";
    case Type::kNull: return "null";
    case Type::kUndefined: return "undefined";
  }
  return "?";
}

// --- Writer -------------------------------------------------------------------

void Writer::Head(int major, std::uint64_t v) {
  auto m = static_cast<char>(major << 5);
  if (v < 24) {
    out_.push_back(static_cast<char>(m | static_cast<char>(v)));
  } else if (v <= 0xff) {
    out_.push_back(static_cast<char>(m | 24));
    out_.push_back(static_cast<char>(v));
  } else if (v <= 0xffff) {
    out_.push_back(static_cast<char>(m | 25));
    for (int s = 8; s >= 0; s -= 8) out_.push_back(static_cast<char>(v >> s));
  } else if (v <= 0xffffffffULL) {
    out_.push_back(static_cast<char>(m | 26));
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<char>(v >> s));
  } else {
    out_.push_back(static_cast<char>(m | 27));
    for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<char>(v >> s));
  }
}

void Writer::Int(std::int64_t v) {
  if (v >= 0) {
    Head(0, static_cast<std::uint64_t>(v));
  } else {
    Head(1, static_cast<std::uint64_t>(-(v + 1)));
  }
}

void Writer::Bytes(std::string_view b) {
  Head(2, b.size());
  out_.append(b);
}

void Writer::Text(std::string_view t) {
  Head(3, t.size());
  out_.append(t);
}

// --- Reader -------------------------------------------------------------------

Status Reader::Error(const std::string& what) const {
  return Status::InvalidArgument("CBOR at byte " + std::to_string(pos_) + ": " + what);
}

Status Reader::Next(Item* item) {
  // Close containers whose elements have all been read.
  while (!open_.empty() && open_.back() == 0) open_.pop_back();
  if (pos_ >= data_.size()) return Error(open_.empty() ? "no more data" : "truncated inside an array or map");
  if (++items_ > limits_.max_items) return Error("more than " + std::to_string(limits_.max_items) + " items");
  if (!open_.empty()) --open_.back();
  item->offset = pos_;
  auto ib = static_cast<unsigned char>(data_[pos_++]);
  int major = ib >> 5;
  int info = ib & 0x1f;
  std::uint64_t arg = 0;
  if (info < 24) {
    arg = static_cast<std::uint64_t>(info);
  } else if (info <= 27) {
    std::size_t n = std::size_t{1} << (info - 24);
    if (data_.size() - pos_ < n) return Error("truncated integer");
    for (std::size_t i = 0; i < n; ++i) arg = (arg << 8) | static_cast<unsigned char>(data_[pos_++]);
  } else if (info == 31) {
    return Error("indefinite lengths are not accepted");
  } else {
    return Error("reserved additional information " + std::to_string(info));
  }
  item->arg = arg;
  item->str = {};
  switch (major) {
    case 0: item->type = Type::kUint; break;
    case 1: item->type = Type::kNegInt; break;
    case 2:
    case 3:
      item->type = major == 2 ? Type::kBytes : Type::kText;
      if (arg > limits_.max_string) return Error("string of " + std::to_string(arg) + " bytes is over the limit");
      if (arg > data_.size() - pos_) return Error("truncated string");
      item->str = data_.substr(pos_, static_cast<std::size_t>(arg));
      pos_ += static_cast<std::size_t>(arg);
      break;
    case 4:
    case 5:
    case 6: {
      item->type = major == 4 ? Type::kArray : major == 5 ? Type::kMap : Type::kTag;
      if (open_.size() >= limits_.max_depth) return Error("nested deeper than " + std::to_string(limits_.max_depth));
      std::uint64_t children = major == 6 ? 1 : arg;
      if (major == 5) {
        if (arg > (UINT64_MAX >> 1)) return Error("map too large");
        children = arg * 2;
      }
      // Every child takes at least one byte: a count beyond the input is a lie.
      if (children > data_.size() - pos_) return Error("count larger than the remaining input");
      open_.push_back(children);
      break;
    }
    case 7:
      if (info == 20) {
        item->type = Type::kFalse;
      } else if (info == 21) {
        item->type = Type::kTrue;
      } else if (info == 22) {
        item->type = Type::kNull;
      } else if (info == 23) {
        item->type = Type::kUndefined;
      } else {
        return Error("floats and other simple values are not accepted");
      }
      break;
  }
  return Status();
}

Status Reader::Skip() {
  std::size_t depth = open_.size();
  Item item;
  CAIRN_TRY(Next(&item));
  // Read until every container the item opened has been consumed.
  for (;;) {
    while (open_.size() > depth && open_.back() == 0) open_.pop_back();
    if (open_.size() <= depth) return Status();
    CAIRN_TRY(Next(&item));
  }
}

Status Reader::Expect(Type want, Item* item) {
  std::size_t at = pos_;
  CAIRN_TRY(Next(item));
  if (item->type != want) {
    pos_ = at;
    return Error(std::string("expected a ") + TypeName(want) + ", found a " + TypeName(item->type));
  }
  return Status();
}

Result<std::uint64_t> Reader::ReadUint() {
  Item it;
  CAIRN_TRY(Expect(Type::kUint, &it));
  return it.arg;
}

Result<std::string_view> Reader::ReadBytes() {
  Item it;
  CAIRN_TRY(Expect(Type::kBytes, &it));
  return it.str;
}

Result<std::string_view> Reader::ReadText() {
  Item it;
  CAIRN_TRY(Expect(Type::kText, &it));
  return it.str;
}

Result<std::uint64_t> Reader::ReadArray() {
  Item it;
  CAIRN_TRY(Expect(Type::kArray, &it));
  return it.arg;
}

Result<std::uint64_t> Reader::ReadMap() {
  Item it;
  CAIRN_TRY(Expect(Type::kMap, &it));
  return it.arg;
}

Result<std::vector<std::uint64_t>> Reader::ReadUintSet() {
  Item it;
  CAIRN_TRY(Expect(Type::kTag, &it));
  if (it.arg != kTagSet) return Error("expected tag 258 (a set), found tag " + std::to_string(it.arg));
  CAIRN_TRY_ASSIGN(std::uint64_t n, ReadArray());
  std::vector<std::uint64_t> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    CAIRN_TRY_ASSIGN(std::uint64_t v, ReadUint());
    out.push_back(v);
  }
  std::vector<std::uint64_t> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return Error("a set with a repeated member");
  return out;
}

bool Reader::AtEnd() const {
  if (pos_ != data_.size()) return false;
  for (std::uint64_t left : open_) {
    if (left != 0) return false;
  }
  return true;
}

Status Reader::ExpectEnd() const {
  for (std::uint64_t left : open_) {
    if (left != 0) return Error("an array or map is missing items");
  }
  if (pos_ != data_.size()) return Error(std::to_string(data_.size() - pos_) + " bytes after the end");
  return Status();
}

}  // namespace cairn::cbor
