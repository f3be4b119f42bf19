// The first half of an in-place MDMF update (tahoe-protocol.md 3.7, 3.8):
// what a publish of bytes [offset, offset + size) of an existing version
// writes, built from the servermap of that version without reading or
// rewriting its untouched blocks.
//
//   1. The old plaintext around the write inside its first and last
//      segment (when the write does not cover them), by ranged retrieves.
//   2. Per share number, from one holder of the version: the block hash
//      tree nodes the touched segments need and those segments' stored
//      leaves (the whole tree when the file grows, since the tree then
//      moves and may widen), checked with the share hash chain up to the
//      signed root.
//   3. On the thread pool: the touched segments encrypted under fresh
//      salts and encoded; each share's new block tree; the share hash tree
//      and root; the signed prefix, signed.
//   4. Per share, the write vectors: the touched salts and blocks, the
//      changed block hash tree nodes (or the whole moved tree), the share
//      hash chain, the signature, the offsets table and the signed prefix.
//
// A share number whose holder cannot be read is left out (its holders keep
// the old version). Loop thread only; `done` runs once, on a later turn.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "mutable/servermap.h"

namespace cairn::mutable_files {

// (offset, bytes) write vectors of one share.
using ShareWrites = std::vector<std::pair<std::uint64_t, std::string>>;

struct UpdateRequest {
  caps::Cap writecap;          // URI:MDMF:
  std::string readkey;
  std::string privkey;         // PKCS#8 DER, to sign with
  std::string version;         // the signed prefix of the version updated
  std::uint64_t seqnum = 0;    // of the new version
  std::uint64_t offset = 0;    // REQUIRES: <= the version's data length
  std::string data;            // REQUIRES: not empty
};

struct UpdateWrites {
  std::vector<ShareWrites> shares;  // share number -> its writes (empty: left out)
  std::string checkstring;          // the new version's
  std::uint64_t size = 0;           // the new data length
  std::uint64_t first_segment = 0, last_segment = 0;  // rewritten
  std::size_t bytes_read = 0;       // old plaintext fetched and tree bytes read
};

// Builds the writes of `request` against `map` (a write-mode map that saw
// `request.version`). Errors: InvalidArgument, NotEnoughServers (fewer
// than k share numbers could be read), UncoordinatedWrite (the old
// plaintext read came from another version), Integrity.
void PrepareUpdate(Loop& loop, const Servermap& map, UpdateRequest request, Callback<void(Result<UpdateWrites>)> done);

}  // namespace cairn::mutable_files
