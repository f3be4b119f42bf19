// The mutable endpoints (tahoe-protocol.md 1.5.6-1.5.9, 2.2): read-test-write,
// list, read, corruption advisory. Loop thread only.
#include <utility>
#include <vector>

#include "cairn/gbs/messages.h"
#include "gbs/call.h"

namespace cairn::gbs {

void StorageServer::ReadTestWrite(const CallPtr& call) {
  auto q = DecodeRtwRequest(call->body);
  if (!q.ok()) return call->Error(400, q.status());
  // The store takes owned copies; the views into the body end here.
  std::vector<store::ShareTestWrite> writes;
  for (const auto& [n, tw] : q->shares) {
    store::ShareTestWrite w;
    w.shnum = n;
    for (const TestVector& t : tw.test) w.tests.push_back({t.offset, t.size, std::string(t.specimen)});
    for (const WriteVector& v : tw.write) w.writes.push_back({v.offset, std::string(v.data)});
    w.new_length = tw.new_length;
    writes.push_back(std::move(w));
  }
  std::vector<store::ReadVector> reads;
  for (const ReadVector& v : q->read) reads.push_back({v.offset, v.size});
  store_.ReadTestWrite(call->si, *call->secrets[SecretKind::kWriteEnabler], call->lease(), std::move(writes),
                       std::move(reads), call->Guard<Result<store::RtwResult>>([call](Result<store::RtwResult> r) {
                         if (!r.ok()) return call->Error(r.status());
                         RtwResponse resp;
                         resp.success = r->success;
                         resp.data = std::move(r->data);
                         call->Cbor(200, EncodeRtwResponse(resp));
                       }));
}

void StorageServer::ListMutable(const CallPtr& call) { store_.ListMutable(call->si, call->ListDone()); }

void StorageServer::ReadMutable(const CallPtr& call) {
  auto range = call->ReadRange(options_.read_bytes);
  if (!range.ok()) return call->Error(416, range.status());
  const auto [first, length] = *range;
  store_.ReadMutable(call->si, call->shnum, first, length, call->ReadDone(first));
}

void StorageServer::CorruptMutable(const CallPtr& call) { call->AdviseCorrupt(true); }

}  // namespace cairn::gbs
