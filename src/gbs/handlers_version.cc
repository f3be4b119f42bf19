// GET /storage/v1/version: the server's limits and application version
// (tahoe-protocol.md 1.5.1). Loop thread only.
#include <algorithm>

#include "cairn/gbs/messages.h"
#include "gbs/call.h"

namespace cairn::gbs {

void StorageServer::Version(const CallPtr& call) {
  store_.Space(call->Guard<Result<store::SpaceInfo>>([call](Result<store::SpaceInfo> space) {
    if (!space.ok()) return call->Error(space.status());
    StorageServer& s = call->srv();
    gbs::Version v;
    v.available_space = space->available_bytes;
    // As the real server: the largest immutable share is what fits.
    v.maximum_immutable_share_size = std::min(space->available_bytes, s.store_.options().max_immutable_share_bytes);
    v.maximum_mutable_share_size = s.store_.options().max_mutable_share_bytes;
    v.application_version = s.options_.application_version;
    call->Cbor(200, EncodeVersion(v));
  }));
}

}  // namespace cairn::gbs
