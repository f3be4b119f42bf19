// The GBS endpoint table: one row per endpoint of tahoe-protocol.md 1.5-1.7,
// saying everything the server checks before the endpoint's handler runs
// (method, path, X-Tahoe-Authorization secrets, body kind and limit) and
// which StorageServer method handles it. Matching a request against the
// table is a pure function, so the table is tested without a socket.
// The table is constant data; MatchRoute is a pure function: any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "cairn/core/status.h"
#include "cairn/gbs/fields.h"
#include "cairn/gbs/server.h"
#include "cairn/store/store.h"

namespace cairn::gbs {

// What a request body is, and so who reads it.
enum class BodyKind {
  kNone,       // no body is read
  kCbor,       // application/cbor (415 otherwise), read whole before the handler, 413 past the row's limit
  kShareData,  // raw share bytes, streamed into the store by the handler
};

struct Route {
  using Handler = void (StorageServer::*)(const std::shared_ptr<StorageServer::Call>&);

  const char* name;     // the endpoint's name in the metrics: "allocate"
  const char* method;   // "GET", "PUT", "POST" or "PATCH"
  // Slash-separated segments: literals, "{si}" (26 characters of Tahoe's
  // base32, a 16-byte storage index) and "{shnum}" (decimal 0-255, at most
  // three digits).
  const char* pattern;
  SecretSet secrets;  // exactly these kinds, no others (400)
  BodyKind body;
  // kCbor: the field of StorageServerOptions that bounds the body; else null.
  std::uint64_t StorageServerOptions::*limit;
  Handler handler;

  // The whole table, in a fixed order.
  static std::span<const Route> All();
};

// The variable parts of a matched path.
struct RouteArgs {
  store::StorageIndex si{};
  store::ShareNum shnum = 0;
};

struct RouteMatch {
  const Route* route = nullptr;  // a row of Route::All()
  RouteArgs args;
};

// The row for `method` and `path` (the target without its query). NotFound
// (404) when no row's pattern matches the path; UnknownMethod (405) when
// some do, but none with this method.
Result<RouteMatch> MatchRoute(std::string_view method, std::string_view path);

// The HTTP status of an error: error_codes.def's, except UnknownMethod (a
// path with another method) which is 405 here.
int HttpStatusOf(const Status& st);

}  // namespace cairn::gbs
