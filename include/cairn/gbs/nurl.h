// NURLs: how a GBS storage server is named (docs/tahoe.md).
//
//   pb://<spki-hash>@<host>:<port>/<swissnum>#v=1
//
// No "tcp:" before the host: a real Tahoe-LAFS client fails to parse one.
// IPv6 hosts are bracketed. Any thread (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::gbs {

struct Nurl {
  std::string spki_hash;  // 43 characters, URL-safe base64 without '='
  std::string host;       // without brackets
  std::uint16_t port = 0;
  std::string swissnum;   // URL-safe ASCII
  bool tor = false;       // scheme pb+tor
};

std::string FormatNurl(const Nurl& nurl);
// InvalidArgument naming what is wrong.
Result<Nurl> ParseNurl(std::string_view text);

}  // namespace cairn::gbs
