// --add-lease on every server (include/cairn/grid/lease.h). Loop thread only.
#include "cairn/grid/lease.h"

#include <algorithm>
#include <memory>

#include "cairn/caps/keys.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"

namespace cairn::grid {

void AddLeases(Loop& loop, const std::vector<GridServer>& servers, const std::string& storage_index,
               const std::string& lease_secret, Callback<void(LeaseReport)> done) {
  struct State {
    LeaseReport report;
    std::size_t outstanding = 0;
  };
  auto state = std::make_shared<State>();
  // Never an error: every answer is in the report.
  Operation<LeaseReport> op(loop, "add lease", [done = std::move(done)](Result<LeaseReport> r) mutable {
    done(r.ok() ? std::move(*r) : LeaseReport{});
  });
  if (servers.empty() || storage_index.size() != 16) return op.FinishSoon(LeaseReport{});
  gbs::StorageIndex si{};
  std::copy(storage_index.begin(), storage_index.end(), si.begin());
  state->outstanding = servers.size();
  for (const GridServer& server : servers) {
    caps::LeaseSecrets l = caps::LeaseSecretsFor(lease_secret, storage_index, server.lease_seed);
    std::string name = server.name;
    server.client->AddLease(si, gbs::LeaseSecrets{l.renew, l.cancel}, [state, op, name](Status st) {
      if (st.ok()) {
        state->report.renewed.push_back(name);
      } else if (st.code() == Code::kNotFound) {
        state->report.no_shares.push_back(name);
      } else {
        state->report.failed.push_back(name + ": " + st.ToString());
      }
      if (--state->outstanding == 0) op.Finish(std::move(state->report));
    });
  }
}

}  // namespace cairn::grid
