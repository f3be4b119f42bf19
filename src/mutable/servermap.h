// The servermap of a mutable file (tahoe-protocol.md 4.1): which share of
// which version each server holds, found by asking the servers in permuted
// order for their shares of the storage index and reading each share's
// first bytes. Publish and retrieve both start from one.
//
//   write mode  every server is asked and must answer (or fail); the
//               encrypted private key is fetched and accepted only if it
//               decrypts, under the cap's writekey, to a key whose hash is
//               that writekey.
//   read mode   servers are asked in permuted order, at most
//               kReadQueriesInFlight at once; done as soon as 2k servers
//               answered, a version is recoverable and no unrecoverable
//               version is newer (or when every server answered).
//   check mode  every server is asked and must answer (or fail), with no
//               private key: a retrieve's second look when the first map
//               stopped early and its best version then failed.
//
// Write and check mode ask every server at once. That is stricter than
// Tahoe's MODE_WRITE (which stops after a run of k empty servers past the
// last share): it finds every share of every version, so a publish tests
// and replaces all of them and leaves no stale share behind.
//
// Shares are read through the share-format interface (share_format.h) of
// the format the request names; a share of another format is bad.
//
// A share whose header does not verify (public key not the cap's, bad
// signature, unparseable) is recorded as bad and reported to its server
// with a corruption advisory; the map is delivered only after those
// advisories were answered (grid::Operation). Loop thread only; the
// completion runs on a later turn, exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/server.h"
#include "cairn/mutable/share_format.h"

namespace cairn::mutable_files {

// What the map reads of each share at first; the headers, the public key,
// the signature and the hash chain of both formats fit in it, and small
// SDMF files entirely.
inline constexpr std::uint64_t kMapReadSize = 4000;

// Read mode's bound on servers being asked at once. Twice Tahoe's default
// k (3): for the usual 3-of-10 file the 2k answers the early stop needs
// can come from one window, while a large grid is not asked all at once
// (each query costs the server a listing and the node a connection, which
// matters on a small NAS box). A slow server holds one slot, not the map.
inline constexpr std::size_t kReadQueriesInFlight = 6;

gbs::StorageIndex ToStorageIndex(const std::string& si);

// One share on one server as the map saw it.
struct SeenShare {
  std::size_t server = 0;  // index into Servermap::servers
  std::uint32_t shnum = 0;
  bool bad = false;        // failed verification (or is of another format)
  ShareHeader header;      // valid unless bad
  std::string head;        // the bytes read from offset 0 (up to kMapReadSize)
  std::string old_checkstring;  // what a publish must expect there: the header's checkstring, or the first 75 bytes if bad
};

struct Servermap {
  std::vector<grid::GridServer> servers;  // in permuted order
  std::vector<bool> answered;             // gave its whole answer
  std::vector<bool> failed;               // a query failed: not used for the publish
  std::vector<std::string> failures;      // why, per server (for messages)
  std::vector<SeenShare> shares;
  std::string pubkey;                     // SPKI DER, once a share showed it
  std::string encprivkey;                 // write mode: the stored bytes that passed the check
  std::string privkey;                    // write mode: their decryption (PKCS#8 DER)
  std::size_t advisories = 0;             // corruption advisories sent

  // Good shares per version (signed prefix), share number -> servers.
  std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> Versions() const;
  // The header of a good share of `version` (a signed prefix), or nullptr.
  const ShareHeader* HeaderOf(const std::string& version) const;
  // The newest version with at least k distinct good shares, if any.
  std::optional<std::string> BestRecoverable() const;
  // The highest seqnum of any good share (0 if none).
  std::uint64_t HighestSeqnum() const;
};

enum class MapMode { kRead, kWrite, kCheck };

struct MapRequest {
  MapMode mode = MapMode::kRead;
  caps::MutableFormat format = caps::MutableFormat::kSdmf;  // the cap's: how shares are read
  std::string storage_index;  // 16 bytes
  std::string fingerprint;    // 32 bytes
  std::string writekey;       // write mode: 16 bytes
};

// Maps the servers' shares of `request.storage_index`. `done` runs exactly
// once, on a later turn, with the map or Cancelled (when `stop` says so),
// also when there are no servers. `progress` and `stop` are borrowed: they
// must outlive the completion.
void UpdateServermap(Loop& loop, std::vector<grid::GridServer> servers, MapRequest request,
                     grid::ProgressFn* progress, grid::StopFn* stop, Callback<void(Result<Servermap>)> done);

}  // namespace cairn::mutable_files
