// A YAML subset for Tahoe-LAFS configuration files (cli/yaml.h). Pure
// functions: any thread.
#include "cli/yaml.h"

#include <cjson/cJSON.h>

#include <string>
#include <vector>

namespace cairn::cli {
namespace {

struct Line {
  std::size_t number;  // 1-based
  std::size_t indent;
  std::string text;  // without indentation, comment and trailing space
};

Status Bad(std::size_t line, const std::string& why) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + why);
}

// Cuts a comment: '#' at the start or after white space, outside quotes.
std::string StripComment(std::string_view s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if ((c == '"' || c == '\'') && (i == 0 || s[i - 1] == ' ' || s[i - 1] == ':' || s[i - 1] == '-' ||
                                           s[i - 1] == '[' || s[i - 1] == ',')) {
      quote = c;
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
      s = s.substr(0, i);
      break;
    }
  }
  std::string out(s);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\r')) out.pop_back();
  return out;
}

Result<std::vector<Line>> SplitLines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t number = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    std::size_t indent = 0;
    while (indent < raw.size() && raw[indent] == ' ') ++indent;
    if (indent < raw.size() && raw[indent] == '\t') return Bad(number, "a tab in the indentation");
    std::string body = StripComment(raw.substr(indent));
    if (body.empty()) continue;
    if (lines.empty() && indent == 0 && body == "---") continue;
    lines.push_back(Line{number, indent, std::move(body)});
  }
  return lines;
}

// A scalar as written after "key: " or "- ": plain or quoted.
Result<std::string> Scalar(std::size_t line, std::string_view s) {
  if (s.empty()) return std::string();
  if (s.front() == '"') {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        if (i + 1 != s.size()) return Bad(line, "text after a quoted scalar");
        return out;
      }
      if (c == '\\') {
        if (++i == s.size()) break;
        switch (s[i]) {
          case 'n':
            out.push_back('\n');
            break;
          case 't':
            out.push_back('\t');
            break;
          case '"':
          case '\\':
          case '/':
            out.push_back(s[i]);
            break;
          default:
            return Bad(line, std::string("an escape cairn does not read: \\") + s[i]);
        }
      } else {
        out.push_back(c);
      }
    }
    return Bad(line, "an unterminated double-quoted scalar");
  }
  if (s.front() == '\'') {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
      if (s[i] == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          out.push_back('\'');
          ++i;
          continue;
        }
        if (i + 1 != s.size()) return Bad(line, "text after a quoted scalar");
        return out;
      }
      out.push_back(s[i]);
    }
    return Bad(line, "an unterminated single-quoted scalar");
  }
  char c = s.front();
  if (c == '&' || c == '*' || c == '!' || c == '|' || c == '>' || c == '%' || c == '@' || c == '`') {
    return Bad(line, std::string("'") + c + "' starts YAML that cairn does not read");
  }
  if (c == '{') return Bad(line, "flow mappings are not read; write the mapping in block style");
  return std::string(s);
}

// A value written on the line itself: a scalar, [] / {} or [a, b].
Result<Json> InlineValue(std::size_t line, std::string_view s) {
  if (s == "{}") return Json::NewObject();
  if (!s.empty() && s.front() == '[') {
    if (s.back() != ']') return Bad(line, "a flow sequence must end on its line with ']'");
    Json arr = Json::NewArray();
    std::string_view inner = s.substr(1, s.size() - 2);
    while (!inner.empty()) {
      std::size_t comma = inner.find(',');
      std::string_view item = inner.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item.empty()) {
        if (comma == std::string_view::npos) break;
        return Bad(line, "an empty item in a flow sequence");
      }
      CAIRN_TRY_ASSIGN(std::string v, Scalar(line, item));
      cJSON_AddItemToArray(arr.get(), cJSON_CreateString(v.c_str()));
      inner = comma == std::string_view::npos ? std::string_view() : inner.substr(comma + 1);
    }
    return arr;
  }
  CAIRN_TRY_ASSIGN(std::string v, Scalar(line, s));
  return Json(cJSON_CreateString(v.c_str()));
}

class Parser {
 public:
  explicit Parser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  Result<Json> Document() {
    if (lines_.empty()) return Json::NewObject();
    CAIRN_TRY_ASSIGN(Json root, Block(lines_[0].indent));
    if (next_ != lines_.size()) return Bad(lines_[next_].number, "indented less than the document's first line");
    return root;
  }

 private:
  static bool IsItem(const std::string& t) { return t == "-" || t.rfind("- ", 0) == 0; }

  // The block whose lines start at next_ with exactly `indent`.
  Result<Json> Block(std::size_t indent) { return IsItem(lines_[next_].text) ? Sequence(indent) : Mapping(indent); }

  Result<Json> Sequence(std::size_t indent) {
    Json arr = Json::NewArray();
    while (next_ < lines_.size() && lines_[next_].indent == indent && IsItem(lines_[next_].text)) {
      const Line& l = lines_[next_++];
      std::string_view rest = std::string_view(l.text).substr(1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      if (rest.empty()) return Bad(l.number, "an empty or nested sequence item");
      if (rest.find(": ") != std::string_view::npos || rest.back() == ':') {
        if (rest.front() != '"' && rest.front() != '\'') return Bad(l.number, "mappings inside sequences are not read");
      }
      CAIRN_TRY_ASSIGN(Json v, InlineValue(l.number, rest));
      cJSON_AddItemToArray(arr.get(), v.release());
    }
    if (next_ < lines_.size() && lines_[next_].indent > indent) {
      return Bad(lines_[next_].number, "indented more than the sequence it follows");
    }
    return arr;
  }

  Result<Json> Mapping(std::size_t indent) {
    Json obj = Json::NewObject();
    while (next_ < lines_.size() && lines_[next_].indent == indent) {
      const Line& l = lines_[next_++];
      if (IsItem(l.text)) return Bad(l.number, "a sequence item where a mapping key was expected");
      std::string key;
      std::string_view rest;
      CAIRN_TRY(SplitKey(l, &key, &rest));
      if (cJSON_GetObjectItemCaseSensitive(obj.get(), key.c_str()))
        return Bad(l.number, "the key \"" + key + "\" twice");
      Json value;
      if (!rest.empty()) {
        CAIRN_TRY_ASSIGN(value, InlineValue(l.number, rest));
      } else if (next_ < lines_.size() &&
                 (lines_[next_].indent > indent || (lines_[next_].indent == indent && IsItem(lines_[next_].text)))) {
        CAIRN_TRY_ASSIGN(value, Block(lines_[next_].indent));
      } else {
        value = Json(cJSON_CreateString(""));
      }
      cJSON_AddItemToObject(obj.get(), key.c_str(), value.release());
    }
    if (next_ < lines_.size() && lines_[next_].indent > indent) {
      return Bad(lines_[next_].number, "indented more than the mapping it follows");
    }
    return obj;
  }

  static Status SplitKey(const Line& l, std::string* key, std::string_view* rest) {
    std::string_view t = l.text;
    std::size_t colon;
    if (t.front() == '"' || t.front() == '\'') {
      std::size_t close = t.find(t.front(), 1);
      if (close == std::string_view::npos) return Bad(l.number, "an unterminated quoted key");
      CAIRN_TRY_ASSIGN(*key, Scalar(l.number, t.substr(0, close + 1)));
      colon = close + 1;
      if (colon >= t.size() || t[colon] != ':') return Bad(l.number, "no ':' after the quoted key");
    } else {
      colon = t.find(": ");
      if (colon == std::string_view::npos) {
        if (t.back() != ':') return Bad(l.number, "not a \"key: value\" line");
        colon = t.size() - 1;
      }
      *key = std::string(t.substr(0, colon));
      if (key->empty()) return Bad(l.number, "an empty key");
    }
    *rest = t.substr(colon + 1);
    while (!rest->empty() && rest->front() == ' ') rest->remove_prefix(1);
    return Status();
  }

  std::vector<Line> lines_;
  std::size_t next_ = 0;
};

}  // namespace

Result<Json> ParseYamlSubset(std::string_view text) {
  CAIRN_TRY_ASSIGN(std::vector<Line> lines, SplitLines(text));
  Parser p(std::move(lines));
  return p.Document();
}

}  // namespace cairn::cli
