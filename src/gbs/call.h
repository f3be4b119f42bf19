// One GBS request in progress, as the endpoint handlers see it: the
// exchange, what the endpoint table decided about it (storage index, share
// number, secrets, the body of a CBOR endpoint), and the ways to answer it
// exactly once. Shared by server.cc and the handlers_*.cc files. Loop
// thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/gbs/fields.h"
#include "cairn/gbs/server.h"
#include "cairn/http/server.h"
#include "cairn/store/store.h"

namespace cairn::gbs {

struct StorageServer::Call : std::enable_shared_from_this<StorageServer::Call> {
  std::shared_ptr<http::Exchange> ex;
  const char* endpoint = "unmatched";  // the row's name in the metrics
  StorageServer* server = nullptr;
  // False once the server is gone; nothing may touch `server` then.
  std::shared_ptr<bool> alive;
  bool answered = false;

  // From the request, checked against the endpoint's row.
  store::StorageIndex si{};
  store::ShareNum shnum = 0;
  Secrets secrets;
  std::string body;  // a CBOR endpoint's whole body

  StorageServer& srv() { return *server; }
  store::LeaseSecrets lease() const {
    return store::LeaseSecrets{*secrets[SecretKind::kLeaseRenew], *secrets[SecretKind::kLeaseCancel]};
  }

  // Answers, once: later answers are ignored.
  void Respond(int status, std::vector<http::Field> headers, std::string response_body);
  // Starts a streamed answer of `length` bytes (StreamedRead writes them).
  void Start(int status, std::vector<http::Field> headers, std::uint64_t length);
  void Cbor(int status, std::string cbor) { Respond(status, {{"Content-Type", "application/cbor"}}, std::move(cbor)); }
  void Empty(int status) { Respond(status, {}, ""); }
  // A text/plain error body: "code: message".
  void Error(int status, const Status& st);
  // The status from error_codes.def.
  void Error(const Status& st);

  // Wraps a store completion so that it does nothing once the server is
  // gone; it keeps the call alive until it runs.
  template <typename T>
  Callback<void(T)> Guard(Callback<void(T)> fn) {
    return [self = shared_from_this(), fn = std::move(fn)](T v) mutable {
      if (!*self->alive) return;
      fn(std::move(v));
    };
  }

  // The share range of a read's Range header, its length clamped to
  // `max_bytes`; InvalidArgument (416) if it is missing or malformed.
  Result<std::pair<std::uint64_t, std::uint64_t>> ReadRange(std::uint64_t max_bytes) const;
  // The completion of a buffered share read that began at `first`: 206 with
  // the bytes, 204 if there are none, or the store's error.
  Callback<void(Result<std::string>)> ReadDone(std::uint64_t first);
  // The completion of a share listing: 200 with a CBOR set.
  Callback<void(Result<std::vector<store::ShareNum>>)> ListDone();
  // Decodes the corruption report in `body` and hands it to the store:
  // 200, 400 for a malformed report, or the store's error.
  void AdviseCorrupt(bool mutable_share);
};

}  // namespace cairn::gbs
