// StorageServer: Great Black Swamp's storage endpoints (tahoe-protocol.md
// 1.4-1.7) on top of the HTTP server and the share store. It is the
// http::Handler of the node's storage listener: it checks the swissnum,
// routes, checks the secrets and the media types, streams immutable uploads
// into the store with backpressure, and answers with the status codes and
// bodies a real Tahoe-LAFS client expects. docs/gbs.md lists every endpoint,
// status and limit.
//
// The endpoints are one table (src/gbs/routes.cc): a row per endpoint with
// its method, path pattern, secrets, body kind and handler. Everything a row
// says is checked once, before the handler runs (src/gbs/auth.cc), and each
// endpoint is one method below (src/gbs/handlers_*.cc). Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/http/server.h"
#include "cairn/store/store.h"

namespace cairn::gbs {

struct Route;

struct StorageServerOptions {
  std::string swissnum;               // the secret path segment of the NURL
  std::string application_version;    // "cairn/0.1.0"
  std::uint64_t allocate_body_bytes = 8192;
  std::uint64_t corrupt_body_bytes = 32768;
  std::uint64_t rtw_body_bytes = 64ull << 20;   // held in memory: a board limit
  std::uint64_t read_bytes = 16ull << 20;       // longest answer to one ranged read
  // An immutable read longer than this is streamed, one piece of it in memory
  // at a time, each read from the store once the connection has room for it.
  std::uint64_t read_piece_bytes = 256 << 10;
  std::uint64_t write_piece_bytes = 256 << 10;  // upload bytes per store write
  std::uint64_t writes_in_flight = 4;           // per upload request, then the socket waits
  // Upload bytes held in memory, all uploads together: sets how many
  // uploads read their bodies at once (at least 2); the rest wait in order.
  std::uint64_t upload_buffer_bytes = 8 << 20;
};

// Counters for `cairn metrics`.
struct StorageServerStats {
  std::map<std::string, std::map<int, std::uint64_t>> requests;  // endpoint -> status -> count
  std::uint64_t bytes_in = 0;   // request bodies
  std::uint64_t bytes_out = 0;  // response bodies
  std::uint64_t uploads_queued = 0;  // PATCHes that waited for an upload slot
};

class StorageServer {
 public:
  StorageServer(Loop& loop, store::ShareStore& store, StorageServerOptions options);
  ~StorageServer();
  StorageServer(const StorageServer&) = delete;
  StorageServer& operator=(const StorageServer&) = delete;

  // The http::Handler.
  void Handle(std::shared_ptr<http::Exchange> exchange);
  const StorageServerStats& stats() const { return stats_; }

  struct Call;
  struct Upload;
  struct StreamedRead;

 private:
  // The endpoint table names the handlers below.
  friend struct Route;
  using CallPtr = std::shared_ptr<Call>;

  // One method per endpoint. Each runs once its row's checks passed: the
  // call holds the storage index, share number and secrets from the
  // request, and for a CBOR endpoint its whole body. Each answers exactly
  // once, from a later turn.
  void Version(const CallPtr& call);           // handlers_version.cc
  void AddLease(const CallPtr& call);          // handlers_lease.cc
  void Allocate(const CallPtr& call);          // handlers_immutable.cc
  void Write(const CallPtr& call);
  void Abort(const CallPtr& call);
  void ListImmutable(const CallPtr& call);
  void ReadImmutable(const CallPtr& call);
  void CorruptImmutable(const CallPtr& call);
  void ReadTestWrite(const CallPtr& call);     // handlers_mutable.cc
  void ListMutable(const CallPtr& call);
  void ReadMutable(const CallPtr& call);
  void CorruptMutable(const CallPtr& call);

  // Admits queued uploads into free slots, on a later turn.
  void AdmitWaitingUploads();

  Loop& loop_;
  store::ShareStore& store_;

  StorageServerOptions options_;
  StorageServerStats stats_;
  std::uint64_t upload_slots_ = 2;
  std::uint64_t uploads_active_ = 0;
  std::deque<std::shared_ptr<Upload>> upload_queue_;
  bool admit_posted_ = false;
  // Outstanding calls hold this; callbacks check it so that none runs after
  // the server is gone.
  std::shared_ptr<bool> alive_;
};

}  // namespace cairn::gbs
