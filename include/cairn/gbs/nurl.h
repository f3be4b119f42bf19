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

// A GBS server's 20-byte seed: the first 20 bytes of SHA-256 over its SPKI
// (the NURL's spki_hash, decoded). Tahoe-LAFS clients take a server's lease
// and write-enabler seed from the tub id of its Foolscap FURL, even when they
// speak GBS (tahoe-protocol.md 1.2, 2.3); a cairn node announces this seed
// as that tub id (`cairn tahoe-entry`) and as its permutation seed, and a
// cairn client derives the same value from the NURL alone.
Result<std::string> ServerSeed(const Nurl& nurl);
// InvalidArgument naming what is wrong.
Result<Nurl> ParseNurl(std::string_view text);

}  // namespace cairn::gbs
