// NURL parsing and printing. Any thread.
#include "cairn/gbs/nurl.h"

#include "cairn/crypto/base64.h"

namespace cairn::gbs {
namespace {

bool UrlSafe(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// A DNS name or IPv4 address: letters, digits, '-', '.', '_'.
bool HostName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

// An IPv6 address as written inside brackets: hex digits, ':' and '.'.
bool Ipv6Text(std::string_view s) {
  if (s.size() < 2 || s.size() > 45 || s.find(':') == std::string_view::npos) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Status Bad(std::string_view text, const std::string& why) {
  return Status::InvalidArgument("not a NURL (" + why + "): " + std::string(text.substr(0, 200)));
}

}  // namespace

std::string FormatNurl(const Nurl& n) {
  std::string host = n.host.find(':') != std::string::npos ? "[" + n.host + "]" : n.host;
  return std::string(n.tor ? "pb+tor://" : "pb://") + n.spki_hash + "@" + host + ":" + std::to_string(n.port) + "/" +
         n.swissnum + "#v=1";
}

Result<Nurl> ParseNurl(std::string_view text) {
  Nurl n;
  std::string_view rest = text;
  if (rest.substr(0, 5) == "pb://") {
    rest.remove_prefix(5);
  } else if (rest.substr(0, 9) == "pb+tor://") {
    n.tor = true;
    rest.remove_prefix(9);
  } else {
    return Bad(text, "the scheme must be pb:// or pb+tor://");
  }
  std::size_t hash = rest.rfind('#');
  if (hash == std::string_view::npos || rest.substr(hash) != "#v=1") {
    return Bad(text, "it must end in #v=1 (a Foolscap FURL has no fragment)");
  }
  rest = rest.substr(0, hash);
  std::size_t at = rest.find('@');
  if (at == std::string_view::npos) return Bad(text, "no '@' after the SPKI hash");
  n.spki_hash = std::string(rest.substr(0, at));
  if (n.spki_hash.size() != 43 || !UrlSafe(n.spki_hash)) {
    return Bad(text, "the SPKI hash must be 43 characters of URL-safe base64");
  }
  rest.remove_prefix(at + 1);
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return Bad(text, "no '/' before the swissnum");
  std::string_view hostport = rest.substr(0, slash);
  n.swissnum = std::string(rest.substr(slash + 1));
  if (!UrlSafe(n.swissnum)) return Bad(text, "the swissnum must be non-empty URL-safe characters");
  if (hostport.substr(0, 4) == "tcp:") return Bad(text, "no \"tcp:\" before the host");
  std::string_view port_text;
  if (!hostport.empty() && hostport[0] == '[') {
    std::size_t close = hostport.find(']');
    if (close == std::string_view::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      return Bad(text, "a bracketed IPv6 host must be followed by :port");
    }
    n.host = std::string(hostport.substr(1, close - 1));
    port_text = hostport.substr(close + 2);
    if (!Ipv6Text(n.host)) return Bad(text, "the bracketed host is not an IPv6 address");
  } else {
    std::size_t colon = hostport.rfind(':');
    if (colon == std::string_view::npos) return Bad(text, "no :port after the host");
    n.host = std::string(hostport.substr(0, colon));
    port_text = hostport.substr(colon + 1);
    if (n.host.find(':') != std::string::npos) return Bad(text, "an IPv6 host must be in brackets");
    if (!HostName(n.host)) return Bad(text, "the host must be a DNS name or an IP address");
  }
  if (port_text.empty() || port_text.size() > 5) return Bad(text, "bad port");
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return Bad(text, "bad port");
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return Bad(text, "port out of range");
  n.port = static_cast<std::uint16_t>(port);
  return n;
}

Result<std::string> ServerSeed(const Nurl& nurl) {
  auto digest = crypto::Base64UrlNoPadDecode(nurl.spki_hash);
  if (!digest.ok() || digest->size() != 32) return Status::InvalidArgument("the SPKI hash is not 43 characters of URL-safe base64");
  return digest->substr(0, 20);
}

}  // namespace cairn::gbs
