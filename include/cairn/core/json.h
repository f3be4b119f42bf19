// Json: RAII ownership of a cJSON tree, strict parsing, and a strict object
// reader that reports the first unknown or mistyped key by its full path.
// Used for cairn.json and the control protocol. Any thread; one object per
// thread at a time.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

struct cJSON;

namespace cairn {

class Json {
 public:
  Json() = default;
  explicit Json(cJSON* owned) : root_(owned) {}
  ~Json();
  Json(Json&& other) noexcept : root_(other.root_) { other.root_ = nullptr; }
  Json& operator=(Json&& other) noexcept;
  Json(const Json&) = delete;
  Json& operator=(const Json&) = delete;

  // Parses exactly `text`: trailing bytes other than white space are an error.
  // InvalidArgument with the byte offset on malformed input.
  static Result<Json> Parse(std::string_view text);
  static Json NewObject();
  static Json NewArray();

  cJSON* get() const { return root_; }
  // Gives up ownership (for adding the tree into another).
  cJSON* release() {
    cJSON* r = root_;
    root_ = nullptr;
    return r;
  }
  // One line, no raw newlines (cJSON escapes control characters).
  std::string Print() const;
  // Indented, for files people read.
  std::string PrintPretty() const;

 private:
  cJSON* root_ = nullptr;
};

// Reads an object's members by key, strictly: Finish() fails on the first key
// that no getter asked for. `path` prefixes key names in errors ("limits.").
// The cJSON object must outlive the reader.
class JsonObjectReader {
 public:
  // InvalidArgument if `obj` is not an object.
  static Result<JsonObjectReader> Open(const cJSON* obj, std::string path);

  Status String(const char* key, std::string* out, bool required = false);
  Status Uint(const char* key, std::uint64_t* out, bool required = false, std::uint64_t max = UINT64_MAX);
  Status Bool(const char* key, bool* out, bool required = false);
  // `*out` is nullptr when absent and not required.
  Status Object(const char* key, const cJSON** out, bool required = false);
  // Marks `key` as known without reading it.
  void Accept(const char* key) { seen_.insert(key); }
  // InvalidArgument "unknown key \"<path><key>\"" for the first unread key.
  Status Finish() const;

 private:
  JsonObjectReader(const cJSON* obj, std::string path) : obj_(obj), path_(std::move(path)) {}
  const cJSON* Find(const char* key);
  Status Missing(const char* key) const;
  Status Wrong(const char* key, const char* want) const;

  const cJSON* obj_;
  std::string path_;
  std::set<std::string> seen_;
};

}  // namespace cairn
