// Python-compatible JSON for directory metadata (see the header). Pure
// functions: any thread.
#include "cairn/dirnode/pyjson.h"

#include <cjson/cJSON.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cairn/dirnode/nfc.h"

namespace cairn::dirnode {
namespace {

// Nesting deeper than this is refused rather than recursed into.
constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<PyJson> Document() {
    CAIRN_TRY_ASSIGN(PyJson v, Value(0));
    Space();
    if (pos_ != s_.size()) return Error("trailing characters");
    return v;
  }

 private:
  Status Error(const char* what) const {
    return Status::InvalidArgument(std::string("metadata JSON: ") + what + " at offset " + std::to_string(pos_));
  }
  void Space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Take(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Result<PyJson> Value(int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    Space();
    if (pos_ >= s_.size()) return Error("unexpected end");
    PyJson v;
    char c = s_[pos_];
    if (c == '{') return Object(depth);
    if (c == '[') return Array(depth);
    if (c == '"') {
      v.kind = PyJson::Kind::kString;
      CAIRN_TRY_ASSIGN(v.text, String());
      return v;
    }
    if (Take("null")) return v;
    if (Take("true") || Take("false")) {
      v.kind = PyJson::Kind::kBool;
      v.boolean = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
      return v;
    }
    if (Take("NaN")) return PyJson::Float(std::nan(""));
    if (Take("Infinity")) return PyJson::Float(HUGE_VAL);
    if (Take("-Infinity")) return PyJson::Float(-HUGE_VAL);
    return Number();
  }

  Result<PyJson> Number() {
    std::size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    std::size_t digits = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == digits) return Error("expected a value");
    if (s_[digits] == '0' && pos_ - digits > 1) return Error("a number with a leading zero");
    bool is_float = false;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      is_float = true;
      std::size_t frac = ++pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == frac) return Error("a fraction without digits");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      is_float = true;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      std::size_t exp = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == exp) return Error("an exponent without digits");
    }
    PyJson v;
    std::string text(s_.substr(start, pos_ - start));
    if (is_float) {
      v.kind = PyJson::Kind::kFloat;
      v.number = std::strtod(text.c_str(), nullptr);
    } else {
      v.kind = PyJson::Kind::kInt;
      v.integer = text == "-0" ? "0" : text;
    }
    return v;
  }

  Result<unsigned> Hex4() {
    if (pos_ + 4 > s_.size()) return Error("a short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else return Error("a bad \\u escape");
    }
    return v;
  }

  Result<std::string> String() {
    ++pos_;  // the opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) return Error("an unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) return Error("a control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) return Error("an unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          CAIRN_TRY_ASSIGN(unsigned cp, Hex4());
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!Take("\\u")) return Error("a lone surrogate");
            CAIRN_TRY_ASSIGN(unsigned lo, Hex4());
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("a lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("a lone surrogate");
          }
          AppendUtf8(cp, &out);
          break;
        }
        default:
          return Error("a bad escape");
      }
    }
  }

  static void AppendUtf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Result<PyJson> Array(int depth) {
    ++pos_;
    PyJson v;
    v.kind = PyJson::Kind::kArray;
    Space();
    if (Take("]")) return v;
    for (;;) {
      CAIRN_TRY_ASSIGN(PyJson item, Value(depth + 1));
      v.items.push_back(std::move(item));
      Space();
      if (Take("]")) return v;
      if (!Take(",")) return Error("expected ',' or ']'");
    }
  }

  Result<PyJson> Object(int depth) {
    ++pos_;
    PyJson v = PyJson::Object();
    Space();
    if (Take("}")) return v;
    for (;;) {
      Space();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a key");
      CAIRN_TRY_ASSIGN(std::string key, String());
      Space();
      if (!Take(":")) return Error("expected ':'");
      CAIRN_TRY_ASSIGN(PyJson item, Value(depth + 1));
      v.Set(key, std::move(item));
      Space();
      if (Take("}")) return v;
      if (!Take(",")) return Error("expected ',' or '}'");
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

void DumpString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  auto u = [out](unsigned v) {
    *out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(v >> shift) & 15]);
  };
  out->push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': *out += "\\\""; break;
        case '\\': *out += "\\\\"; break;
        case '\n': *out += "\\n"; break;
        case '\r': *out += "\\r"; break;
        case '\t': *out += "\\t"; break;
        case '\b': *out += "\\b"; break;
        case '\f': *out += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f) u(c);
          else out->push_back(static_cast<char>(c));
      }
      continue;
    }
    // Values come from the parser or from NFC-checked names: well-formed.
    std::size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    unsigned cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t j = 1; j < len && i + j < s.size(); ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u(0xD800 + (cp >> 10));
      u(0xDC00 + (cp & 0x3FF));
    } else {
      u(cp);
    }
  }
  out->push_back('"');
}

void Dump(const PyJson& v, std::string* out) {
  switch (v.kind) {
    case PyJson::Kind::kNull: *out += "null"; return;
    case PyJson::Kind::kBool: *out += v.boolean ? "true" : "false"; return;
    case PyJson::Kind::kInt: *out += v.integer; return;
    case PyJson::Kind::kFloat:
      // json.dumps spells the non-finite floats as JavaScript does.
      if (std::isnan(v.number)) *out += "NaN";
      else if (std::isinf(v.number)) *out += v.number > 0 ? "Infinity" : "-Infinity";
      else *out += PyFloatRepr(v.number);
      return;
    case PyJson::Kind::kString: DumpString(v.text, out); return;
    case PyJson::Kind::kArray:
      out->push_back('[');
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (i) *out += ", ";
        Dump(v.items[i], out);
      }
      out->push_back(']');
      return;
    case PyJson::Kind::kObject:
      out->push_back('{');
      for (std::size_t i = 0; i < v.members.size(); ++i) {
        if (i) *out += ", ";
        DumpString(v.members[i].first, out);
        *out += ": ";
        Dump(v.members[i].second, out);
      }
      out->push_back('}');
      return;
  }
}

}  // namespace

PyJson PyJson::Object() {
  PyJson v;
  v.kind = Kind::kObject;
  return v;
}

PyJson PyJson::Float(double d) {
  PyJson v;
  v.kind = Kind::kFloat;
  v.number = d;
  return v;
}

const PyJson* PyJson::Find(std::string_view key) const {
  for (const auto& m : members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

PyJson* PyJson::Find(std::string_view key) {
  for (auto& m : members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

void PyJson::Set(const std::string& key, PyJson value) {
  if (PyJson* v = Find(key)) {
    *v = std::move(value);
    return;
  }
  members.push_back(Member{key, std::move(value)});
}

void PyJson::Erase(std::string_view key) {
  for (auto it = members.begin(); it != members.end(); ++it) {
    if (it->first == key) {
      members.erase(it);
      return;
    }
  }
}

Result<PyJson> ParsePyJson(std::string_view text) {
  // Python decodes the bytes as UTF-8 first (json.loads of bytes).
  if (!IsUtf8(text)) return Status::InvalidArgument("metadata JSON: not UTF-8");
  return Parser(text).Document();
}

std::string DumpPyJson(const PyJson& value) {
  std::string out;
  Dump(value, &out);
  return out;
}

std::string PyFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // The shortest round-trip digits, as Python's repr finds them, in
  // scientific form: "d.ddde[+-]x".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  std::size_t e = sci.find('e');
  std::string digits = sci.substr(0, 1) + (e > 2 ? sci.substr(2, e - 2) : "");
  int exp = std::atoi(sci.c_str() + e + 1);
  // repr: positional for -4 <= exponent < 16, else scientific.
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<std::size_t>(exp) + 1) + "." + digits.substr(static_cast<std::size_t>(exp) + 1);
    }
    return sign + out;
  }
  std::string mant = digits.size() > 1 ? digits.substr(0, 1) + "." + digits.substr(1) : digits;
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return sign + mant + ebuf;
}

cJSON* ToCjson(const PyJson& v) {
  switch (v.kind) {
    case PyJson::Kind::kNull: return cJSON_CreateNull();
    case PyJson::Kind::kBool: return cJSON_CreateBool(v.boolean);
    // Numbers are written as Python wrote them (cJSON's own printing drops
    // the last digits of a float such as 1796592503.9225001, and of ints
    // past 2^53): raw text, which any JSON reader parses as the number.
    case PyJson::Kind::kInt: return cJSON_CreateRaw(v.integer.c_str());
    case PyJson::Kind::kFloat:
      if (!std::isfinite(v.number)) return cJSON_CreateNumber(v.number);
      return cJSON_CreateRaw(PyFloatRepr(v.number).c_str());
    case PyJson::Kind::kString: return cJSON_CreateString(v.text.c_str());
    case PyJson::Kind::kArray: {
      cJSON* a = cJSON_CreateArray();
      for (const PyJson& item : v.items) cJSON_AddItemToArray(a, ToCjson(item));
      return a;
    }
    case PyJson::Kind::kObject: {
      cJSON* o = cJSON_CreateObject();
      for (const auto& m : v.members) cJSON_AddItemToObject(o, m.first.c_str(), ToCjson(m.second));
      return o;
    }
  }
  return cJSON_CreateNull();
}

}  // namespace cairn::dirnode
