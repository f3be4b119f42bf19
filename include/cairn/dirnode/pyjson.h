// The metadata JSON of directory entries, read and written exactly as
// Tahoe-LAFS's Python does (tahoe-dirnodes.md A.6): json.loads, then
// json.dumps with its defaults — separators ", " and ": ", every character
// outside printable ASCII escaped as \uXXXX (lower-case hex, surrogate
// pairs past U+FFFF), keys in insertion order, ints as written, floats as
// Python's repr (the shortest text that reads back the same double). A
// value keeps whether it was an int or a float, so that Tahoe's bytes
// re-serialize to themselves. Pure values and functions: any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

struct cJSON;

namespace cairn::dirnode {

struct PyJson {
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kArray, kObject };
  // An object's member: `first` the key, `second` the value (a pair of a
  // still-incomplete type would not compile with every standard library).
  struct Member;

  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string integer;  // kInt: the decimal digits (Python ints have no bound), "-" first if negative
  double number = 0;    // kFloat
  std::string text;     // kString: UTF-8
  std::vector<PyJson> items;    // kArray
  std::vector<Member> members;  // kObject, in insertion order

  static PyJson Object();
  static PyJson Float(double d);
  // The member `key` of an object, or nullptr.
  const PyJson* Find(std::string_view key) const;
  PyJson* Find(std::string_view key);
  // Sets `key` (appended if new, replaced in place if present) — a Python
  // dict's assignment.
  void Set(const std::string& key, PyJson value);
  // Removes `key` if present.
  void Erase(std::string_view key);
};

struct PyJson::Member {
  std::string first;
  PyJson second;
};

// json.loads of bytes: InvalidArgument for text that is not UTF-8, and
// with the offset on malformed JSON. Accepts
// NaN, Infinity and -Infinity as Python does; a repeated key keeps its first
// position and its last value. A lone surrogate escape is refused (UTF-8
// cannot hold it).
Result<PyJson> ParsePyJson(std::string_view text);
// json.dumps with its defaults.
std::string DumpPyJson(const PyJson& value);
// Python's repr() of a float: "1796560785.6349854", "1.0", "1e+16", "inf".
std::string PyFloatRepr(double d);
// The value as a new cJSON tree, for JSON answers; the caller owns it.
// Ints and finite floats are raw items holding Python's text (so printing
// keeps every digit); a reader of the printed JSON sees numbers.
cJSON* ToCjson(const PyJson& value);

}  // namespace cairn::dirnode
