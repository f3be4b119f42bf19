// cJSON ownership and strict readers. Any thread.
#include "cairn/core/json.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdint>

namespace cairn {

Json::~Json() { cJSON_Delete(root_); }

Json& Json::operator=(Json&& other) noexcept {
  if (this != &other) {
    cJSON_Delete(root_);
    root_ = other.root_;
    other.root_ = nullptr;
  }
  return *this;
}

namespace {

// JSON text is UTF-8 with no raw control characters inside strings; cJSON is
// lenient about both, and a raw NUL would silently cut a key or value short
// ("method\0x" read as "method"). Refuse them before cJSON sees the text.
Status CheckText(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20) {
      if (c != '\t' && c != '\n' && c != '\r') {
        return Status::InvalidArgument("invalid JSON at byte " + std::to_string(i) + ": raw control character");
      }
      ++i;
      continue;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = len != 0 && i + len <= text.size();
    std::uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t j = 1; ok && j < len; ++j) {
      unsigned char cc = static_cast<unsigned char>(text[i + j]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    ok = ok && !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
         !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    if (!ok) return Status::InvalidArgument("invalid JSON at byte " + std::to_string(i) + ": not UTF-8");
    i += len;
  }
  return Status();
}

}  // namespace

Result<Json> Json::Parse(std::string_view text) {
  CAIRN_TRY(CheckText(text));
  const char* end = nullptr;
  cJSON* root = cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false);
  if (!root) {
    const char* err = cJSON_GetErrorPtr();
    size_t offset = (err && err >= text.data() && err <= text.data() + text.size())
                        ? static_cast<size_t>(err - text.data())
                        : 0;
    return Status::InvalidArgument("invalid JSON at byte " + std::to_string(offset));
  }
  Json json(root);
  size_t used = static_cast<size_t>(end - text.data());
  for (size_t i = used; i < text.size(); ++i) {
    char c = text[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0') {
      return Status::InvalidArgument("trailing bytes after JSON value at byte " + std::to_string(i));
    }
  }
  return json;
}

Json Json::NewObject() { return Json(cJSON_CreateObject()); }
Json Json::NewArray() { return Json(cJSON_CreateArray()); }

std::string Json::Print() const {
  if (!root_) return "null";
  char* s = cJSON_PrintUnformatted(root_);
  std::string out(s ? s : "null");
  cJSON_free(s);
  return out;
}

std::string Json::PrintPretty() const {
  if (!root_) return "null";
  char* s = cJSON_Print(root_);
  std::string out(s ? s : "null");
  cJSON_free(s);
  return out;
}

Result<JsonObjectReader> JsonObjectReader::Open(const cJSON* obj, std::string path) {
  if (!obj || !cJSON_IsObject(obj)) {
    return Status::InvalidArgument((path.empty() ? std::string("value") : "\"" + path.substr(0, path.size() - 1) + "\"") +
                                   " must be a JSON object");
  }
  // cJSON keeps duplicate keys and its getter returns the first: refuse them,
  // so that what a reader checked is what everyone else would read.
  std::set<std::string_view> keys;
  for (const cJSON* item = obj->child; item; item = item->next) {
    if (item->string && !keys.insert(item->string).second) {
      return Status::InvalidArgument("duplicate key \"" + path + item->string + "\"");
    }
  }
  return JsonObjectReader(obj, std::move(path));
}

const cJSON* JsonObjectReader::Find(const char* key) {
  seen_.insert(key);
  return cJSON_GetObjectItemCaseSensitive(obj_, key);
}

Status JsonObjectReader::Missing(const char* key) const {
  return Status::InvalidArgument("missing key \"" + path_ + key + "\"");
}

Status JsonObjectReader::Wrong(const char* key, const char* want) const {
  return Status::InvalidArgument("key \"" + path_ + key + "\" must be " + want);
}

Status JsonObjectReader::String(const char* key, std::string* out, bool required) {
  const cJSON* item = Find(key);
  if (!item) return required ? Missing(key) : Status();
  if (!cJSON_IsString(item)) return Wrong(key, "a string");
  *out = item->valuestring;
  return Status();
}

Status JsonObjectReader::Uint(const char* key, std::uint64_t* out, bool required, std::uint64_t max) {
  const cJSON* item = Find(key);
  if (!item) return required ? Missing(key) : Status();
  // cJSON keeps numbers as doubles: integers are exact up to 2^53.
  double d = cJSON_IsNumber(item) ? item->valuedouble : -1;
  if (d < 0 || d != std::floor(d) || d > 9007199254740992.0 || d > static_cast<double>(max)) {
    return Wrong(key, ("a whole number from 0 to " + std::to_string(max < 9007199254740992ULL ? max : 9007199254740992ULL)).c_str());
  }
  *out = static_cast<std::uint64_t>(d);
  return Status();
}

Status JsonObjectReader::Bool(const char* key, bool* out, bool required) {
  const cJSON* item = Find(key);
  if (!item) return required ? Missing(key) : Status();
  if (!cJSON_IsBool(item)) return Wrong(key, "true or false");
  *out = cJSON_IsTrue(item);
  return Status();
}

Status JsonObjectReader::Object(const char* key, const cJSON** out, bool required) {
  const cJSON* item = Find(key);
  *out = nullptr;
  if (!item) return required ? Missing(key) : Status();
  if (!cJSON_IsObject(item)) return Wrong(key, "an object");
  *out = item;
  return Status();
}

Status JsonObjectReader::Finish() const {
  for (const cJSON* item = obj_->child; item; item = item->next) {
    if (item->string && !seen_.count(item->string)) {
      return Status::InvalidArgument("unknown key \"" + path_ + item->string + "\"");
    }
  }
  return Status();
}

}  // namespace cairn
