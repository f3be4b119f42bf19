// PUT /storage/v1/lease/<si>: add or renew a lease on every share of a
// storage index (tahoe-protocol.md 1.5.2, 2.3). Loop thread only.
#include "gbs/call.h"

namespace cairn::gbs {

void StorageServer::AddLease(const CallPtr& call) {
  store_.AddLease(call->si, call->lease(), call->Guard<Status>([call](Status st) {
    if (!st.ok()) return call->Error(st);
    call->Empty(204);
  }));
}

}  // namespace cairn::gbs
