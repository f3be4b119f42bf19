// How a client knows a storage server: the identity a Tahoe-LAFS client
// takes from a server's announcement, and cairn's own default for a server
// known only by its NURL.
//
// A Tahoe-LAFS client derives two things from a server's announcement
// (tahoe-protocol.md 1.2, tahoe-dirnodes.md C.8):
//   - the lease seed: the 20-byte Foolscap tub id in the announcement's
//     FURL (`pb://TUBID@...`), also for servers it reaches over GBS; each
//     write enabler and each lease renew and cancel secret is derived from
//     it;
//   - the permutation seed: `permutation-seed-base32` decoded, else the
//     server id's `v0-` key decoded, else SHA-256 of the server id; shares
//     are placed in the order of SHA-1(storage index ‖ seed).
// A cairn node announces the first 20 bytes of its SPKI hash as both
// (`cairn tahoe-entry`), so a server known from its NURL alone is taken to be
// a cairn node and gets exactly that: kCairn. A Tahoe-LAFS node's tub id is
// unrelated to its TLS key, so it must be configured from its announcement:
// kAnnounced.
//
// Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::grid {

enum class IdentityKind {
  kCairn,      // from the NURL alone: tub id and permutation seed = SPKI-derived seed
  kAnnounced,  // from an announcement: tub id from its FURL, its permutation seed
};

// "cairn" or "announced", as the servers table and `servers list` show it.
const char* IdentityKindName(IdentityKind kind);

struct ServerIdentity {
  IdentityKind kind = IdentityKind::kCairn;
  std::string tub_id;            // 20 raw bytes: the lease and write-enabler seed
  std::string permutation_seed;  // raw (20 or 32 bytes in practice): the placement seed
};

// The identity of a server known by its NURL alone (a cairn node): both
// seeds are gbs::ServerSeed of the NURL. InvalidArgument if it does not parse.
Result<ServerIdentity> CairnIdentity(std::string_view nurl);

// The 20-byte tub id of a Foolscap FURL `pb://TUBID@HINTS/SWISSNUM`.
// InvalidArgument (naming the FURL's start, never its swissnum) unless the
// tub id is Tahoe base32 of exactly 20 bytes.
Result<std::string> TubIdOfFurl(std::string_view furl);

// The identity in an announcement, as a Tahoe-LAFS client derives it from
// `anonymous-storage-FURL` (required), `permutation-seed-base32` (optional)
// and the server id (the key of its servers.yaml entry; may be empty).
// InvalidArgument if the FURL is missing or bad, the seed is not base32, or
// neither a seed nor a server id is given.
Result<ServerIdentity> AnnouncedIdentity(std::string_view furl, std::string_view permutation_seed_base32,
                                         std::string_view server_id);

}  // namespace cairn::grid
