// The result of checking one file (tahoe-dirnodes.md C.1-C.10): which
// servers answered, which good shares they hold, which shares failed
// verification, and the verdicts Tahoe-LAFS derives from them (healthy,
// recoverable), with Tahoe's check-result JSON field names. The immutable
// and mutable checkers fill a CheckResults; Finish*() computes the counts
// and the summary the same way for both. Pure values: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cairn/core/json.h"

namespace cairn::grid {

// A share that failed verification, and why.
struct CorruptShare {
  std::string server;  // the server's name
  std::uint32_t shnum = 0;
  std::string reason;
};

// One version of a mutable file seen on the servers.
struct VersionSeen {
  std::uint64_t seqnum = 0;
  std::string root_hash;  // raw, 32 bytes
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::set<std::uint32_t> shares;  // distinct good share numbers
  bool recoverable() const { return shares.size() >= k && k > 0; }
};

struct CheckResults {
  std::string storage_index;  // raw (16 bytes); empty for a LIT file
  bool literal = false;       // LIT: nothing on the servers, always healthy
  bool is_mutable = false;
  bool verified = false;                        // every share was read in full and checked
  std::uint32_t k = 3;                          // count-shares-needed (Tahoe's default when nothing was found)
  std::uint32_t n = 10;                         // count-shares-expected
  std::uint32_t happy = 7;                      // the configured servers of happiness, for needs-rebalancing
  std::vector<std::string> servers_responding;  // names of the servers that answered the listing
  std::vector<std::string> servers_failed;      // names of those that did not, and why ("name: why")
  // Good shares of the file (immutable) or of its best version (mutable):
  // share number -> names of the servers holding it.
  std::map<std::uint32_t, std::set<std::string>> good;
  std::vector<CorruptShare> corrupt;
  // Mutable only: every version seen, newest first, and the share map
  // keyed "seq<N>-<4 base32 chars of the root hash>-sh<N>" as Tahoe's.
  std::vector<VersionSeen> versions;
  std::map<std::string, std::set<std::string>> mutable_sharemap;
  std::size_t wrong_shares = 0;  // shares of versions other than the best one

  // Computed by Finish(): the verdicts and counts.
  std::size_t shares_good = 0;       // distinct good share numbers
  std::size_t good_share_hosts = 0;  // servers holding at least one good share
  std::size_t happiness = 0;         // maximum matching of good shares and servers
  std::size_t recoverable_versions = 0;
  std::size_t unrecoverable_versions = 0;
  bool healthy = false;
  bool recoverable = false;
  bool needs_rebalancing = false;  // recoverable, and happiness < happy while enough servers answered
  std::string summary;             // Tahoe's words: "Healthy", "Not Healthy: ..." /
                                   // "Unhealthy: ..."

  // Fills the counts and verdicts of an immutable file (C.1): healthy iff
  // the distinct good shares number N; recoverable iff at least k.
  void FinishImmutable();
  // Of a mutable file (C.4): healthy iff no unrecoverable version, exactly
  // one recoverable one, it has N distinct good shares and none is corrupt.
  // `good` must hold the best version's shares, `versions` every version.
  void FinishMutable();
  // A LIT file: healthy, recoverable, nothing to count.
  void FinishLiteral();
};

// Tahoe's single-object check JSON (C.10): {"storage-index", "summary",
// "results": {count-happiness, count-shares-good, count-shares-needed,
// count-shares-expected, count-good-share-hosts, count-corrupt-shares,
// list-corrupt-shares, servers-responding, sharemap, count-wrong-shares,
// count-recoverable-versions, count-unrecoverable-versions, healthy,
// recoverable, needs-rebalancing}}, plus cairn's own "versions" (mutable)
// and "servers-failed". Server ids are the servers' names.
Json CheckResultsJson(const CheckResults& r);

// The first `chars` characters of the Tahoe base32 of `raw`.
std::string Base32Prefix(const std::string& raw, std::size_t chars);

}  // namespace cairn::grid
