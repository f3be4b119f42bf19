// Tahoe's CLI path syntax (see the header). Pure functions: any thread.
#include "cairn/dirnode/path.h"

#include "cairn/dirnode/nfc.h"

namespace cairn::dirnode {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

Status SplitComponents(std::string_view rest, DirPath* out) {
  out->trailing_slash = !rest.empty() && rest.back() == '/';
  while (!rest.empty()) {
    std::size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (!part.empty()) {
      auto nfc = NormalizeNfc(part);
      if (!nfc.ok()) return Status::InvalidArgument("a path component is not UTF-8");
      out->components.push_back(std::move(*nfc));
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Status();
}

}  // namespace

std::string DirPath::ToString() const {
  std::string out = root_cap.empty() ? alias + ":" : root_cap + (components.empty() ? "" : "/");
  for (std::size_t i = 0; i < components.size(); ++i) out += (i ? "/" : "") + components[i];
  if (trailing_slash && !components.empty()) out += "/";
  return out;
}

Result<DirPath> ParseDirPath(std::string_view text, std::string_view default_alias) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  DirPath out;
  if (StartsWith(text, "URI:") || StartsWith(text, "ro.URI:") || StartsWith(text, "imm.URI:")) {
    std::size_t old_form = text.find(":./");
    std::size_t end = old_form != std::string_view::npos ? old_form : text.find('/');
    out.root_cap = std::string(text.substr(0, end));
    if (end != std::string_view::npos) {
      CAIRN_TRY(SplitComponents(text.substr(end + (old_form != std::string_view::npos ? 3 : 1)), &out));
    }
    return out;
  }
  std::size_t colon = text.find(':');
  std::size_t slash = text.find('/');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon)) {
    if (default_alias.empty()) return Status::InvalidArgument("\"" + std::string(text) + "\" names no alias");
    out.alias = std::string(default_alias);
    CAIRN_TRY(SplitComponents(text, &out));
    return out;
  }
  out.alias = std::string(text.substr(0, colon));
  if (out.alias.empty()) return Status::InvalidArgument("\"" + std::string(text) + "\": an empty alias name");
  CAIRN_TRY(SplitComponents(text.substr(colon + 1), &out));
  return out;
}

}  // namespace cairn::dirnode
