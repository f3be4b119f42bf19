// Tahoe-LAFS's alias file (see aliases.h). Any thread.
#include "cairn/dirnode/aliases.h"

#include <map>

#include "cairn/dirnode/nfc.h"

namespace cairn::dirnode {
namespace {

// Python's str.strip() of ASCII whitespace (the file's names and caps are
// ASCII in practice; other Unicode spaces are kept).
std::string_view Strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ParseAliasesFile(std::string_view text) {
  if (!IsUtf8(text)) return Status::InvalidArgument("the aliases file is not UTF-8");
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, std::size_t> index;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = Strip(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("aliases file line " + std::to_string(line_no) + ": no ':'");
    }
    std::string name(line.substr(0, colon));
    std::string cap(Strip(line.substr(colon + 1)));
    auto it = index.find(name);
    if (it != index.end()) {
      out[it->second].second = std::move(cap);
      continue;
    }
    index[name] = out.size();
    out.emplace_back(std::move(name), std::move(cap));
  }
  return out;
}

std::string FormatAliasesFile(const std::vector<std::pair<std::string, std::string>>& aliases) {
  std::string out;
  for (const auto& a : aliases) out += a.first + ": " + a.second + "\n";
  return out;
}

}  // namespace cairn::dirnode
