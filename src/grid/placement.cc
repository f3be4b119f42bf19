// Permuted ring and servers of happiness (see the header).
#include "cairn/grid/placement.h"

#include <algorithm>
#include <functional>

#include "cairn/crypto/hash.h"

namespace cairn::grid {

std::vector<std::size_t> PermutedOrder(std::string_view storage_index, const std::vector<std::string>& seeds) {
  std::vector<std::pair<std::string, std::size_t>> keyed;
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::string v(storage_index);
    v += seeds[i];
    keyed.emplace_back(crypto::Sha1(v), i);
  }
  std::stable_sort(keyed.begin(), keyed.end());
  std::vector<std::size_t> order;
  for (const auto& kv : keyed) order.push_back(kv.second);
  return order;
}

namespace {

// Maximum bipartite matching by augmenting paths (Kuhn): share -> server.
std::map<std::uint32_t, std::size_t> MaxMatching(const SharePlacement& placement) {
  std::map<std::size_t, std::uint32_t> server_to_share;
  std::map<std::uint32_t, std::size_t> share_to_server;
  for (const auto& [share, servers] : placement) {
    std::set<std::size_t> seen;
    std::function<bool(std::uint32_t)> augment = [&](std::uint32_t sh) -> bool {
      auto it = placement.find(sh);
      if (it == placement.end()) return false;
      for (std::size_t srv : it->second) {
        if (!seen.insert(srv).second) continue;
        auto held = server_to_share.find(srv);
        if (held == server_to_share.end() || augment(held->second)) {
          server_to_share[srv] = sh;
          share_to_server[sh] = srv;
          return true;
        }
      }
      return false;
    };
    augment(share);
  }
  return share_to_server;
}

}  // namespace

std::size_t Happiness(const SharePlacement& placement) { return MaxMatching(placement).size(); }

PlacementPlan PlanPlacement(const std::vector<ServerState>& servers, std::uint32_t n) {
  PlacementPlan plan;
  for (std::size_t s = 0; s < servers.size(); ++s) {
    for (std::uint32_t sh : servers[s].existing) {
      if (sh < n) plan.existing[sh].insert(s);
    }
  }
  std::map<std::uint32_t, std::size_t> matched = MaxMatching(plan.existing);
  std::set<std::size_t> busy;
  for (const auto& [sh, srv] : matched) busy.insert(srv);
  std::vector<std::size_t> writable;
  for (std::size_t s = 0; s < servers.size(); ++s) {
    if (servers[s].writable) writable.push_back(s);
  }
  // Shares not matched go first to writable servers holding no matched share.
  std::vector<std::uint32_t> leftover;
  auto next_free = writable.begin();
  for (std::uint32_t sh = 0; sh < n; ++sh) {
    if (matched.count(sh)) continue;
    while (next_free != writable.end() && busy.count(*next_free)) ++next_free;
    if (next_free != writable.end()) {
      plan.new_shares[*next_free].insert(sh);
      busy.insert(*next_free);
      ++next_free;
    } else if (!plan.existing.count(sh)) {
      leftover.push_back(sh);
    }
  }
  // More shares than servers: the rest round-robin, so every share is stored.
  for (std::size_t i = 0; i < leftover.size() && !writable.empty(); ++i) {
    plan.new_shares[writable[i % writable.size()]].insert(leftover[i]);
  }
  SharePlacement all = plan.existing;
  for (const auto& [srv, shares] : plan.new_shares) {
    for (std::uint32_t sh : shares) all[sh].insert(srv);
  }
  plan.happiness = Happiness(all);
  return plan;
}

}  // namespace cairn::grid
