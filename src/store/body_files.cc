// Body file names: formatted and parsed here only. Any thread.
#include "store/body_files.h"

namespace cairn::store {

namespace {

constexpr std::string_view kRangesSuffix = ".ranges";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// A decimal number without sign or leading zeros, up to `max`.
bool ParseNumber(std::string_view s, std::uint64_t max, std::uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

std::string BodyPaths::Name(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return SiHex(si) + "-" + std::to_string(shnum) + "-" + std::to_string(file_id);
}
std::string BodyPaths::IncomingPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return Incoming() + "/" + Name(si, shnum, file_id);
}
std::string BodyPaths::RangesPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return IncomingPath(si, shnum, file_id) + std::string(kRangesSuffix);
}
std::string BodyPaths::FinalDir(const StorageIndex& si) const { return Shares() + "/" + SiHex(si).substr(0, 2); }
std::string BodyPaths::FinalPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return FinalDir(si) + "/" + Name(si, shnum, file_id);
}

bool ParseBodyName(std::string_view name, BodyName* out) {
  BodyName n;
  if (name.size() > kRangesSuffix.size() && name.substr(name.size() - kRangesSuffix.size()) == kRangesSuffix) {
    n.ranges_file = true;
    name.remove_suffix(kRangesSuffix.size());
  }
  // <32 hex>-<shnum>-<file id>
  if (name.size() < 32 + 4 || name[32] != '-') return false;
  for (std::size_t i = 0; i < 16; ++i) {
    int hi = HexDigit(name[2 * i]), lo = HexDigit(name[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    n.si[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  std::string_view rest = name.substr(33);
  std::size_t dash = rest.find('-');
  if (dash == std::string_view::npos) return false;
  std::uint64_t shnum = 0;
  if (!ParseNumber(rest.substr(0, dash), 0xffffffffull, &shnum)) return false;
  if (!ParseNumber(rest.substr(dash + 1), ~0ull, &n.file_id)) return false;
  n.shnum = static_cast<ShareNum>(shnum);
  *out = n;
  return true;
}

}  // namespace cairn::store
