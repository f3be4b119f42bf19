// Request accessors. Any thread (plain data).
#include "cairn/http/request.h"

namespace cairn::http {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Request::path() const {
  std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t(target);
  std::size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

const std::string* Request::Header(std::string_view name) const {
  for (const Field& f : headers) {
    if (EqualsIgnoreCase(f.name, name)) return &f.value;
  }
  return nullptr;
}

std::vector<std::string_view> Request::HeaderValues(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Field& f : headers) {
    if (EqualsIgnoreCase(f.name, name)) out.push_back(f.value);
  }
  return out;
}

}  // namespace cairn::http
