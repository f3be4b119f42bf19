// Where shares go on a grid, as Tahoe-LAFS decides it:
//   - the permuted ring: for a storage index, servers are ordered by
//     SHA-1(storage index ‖ server's permutation seed) (tahoe-protocol.md
//     1.2), so each file has its own order and a reader asks the servers a
//     writer would have chosen first;
//   - servers of happiness: the number of distinct servers that hold
//     distinct shares, i.e. the size of a maximum matching between servers
//     and shares; an upload succeeds only if it reaches the configured
//     `happy` value.
// Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::grid {

// Indices into `seeds`, in permuted order for `storage_index`.
std::vector<std::size_t> PermutedOrder(std::string_view storage_index, const std::vector<std::string>& seeds);

// A share -> the servers that hold (or will hold) it.
using SharePlacement = std::map<std::uint32_t, std::set<std::size_t>>;

// The size of a maximum matching between shares and servers.
std::size_t Happiness(const SharePlacement& placement);

struct ServerState {
  bool writable = true;              // may take new shares (has room, not read-only)
  std::set<std::uint32_t> existing;  // shares of this file it already holds
};

struct PlacementPlan {
  SharePlacement existing;                          // shares already on servers, kept
  std::map<std::size_t, std::set<std::uint32_t>> new_shares;  // server -> shares to upload to it
  std::size_t happiness = 0;                        // of existing + new
};

// Plans where shares 0..n-1 go on `servers` (given in permuted order):
// shares already held count as placed; a maximum matching is built from
// them first, then every share still unmatched goes to the next writable
// server in permuted order that holds no matched share, and what remains
// (more shares than servers) round-robin over the writable servers. Each
// share is placed at least once if any server is writable.
PlacementPlan PlanPlacement(const std::vector<ServerState>& servers, std::uint32_t n);

}  // namespace cairn::grid
