// gbs::Client: one Great Black Swamp storage server, as the mutable and
// immutable file code sees it (tahoe-protocol.md 1.4-1.8). Constructed from
// the server's NURL; it pins the server's certificate, sends the swissnum
// and the X-Tahoe-Authorization secrets each endpoint needs, and turns HTTP
// answers into typed results and cairn Status codes:
//
//   401 Unauthenticated, 404 NotFound, 405 FailedPrecondition (abort of a
//   complete share), 409 Conflict, 400/406/415/416 InvalidArgument,
//   413 FrameTooLarge, 507 NoSpace, other 5xx Unavailable; a refused or lost
//   connection Unavailable; a certificate not matching the pin
//   Unauthenticated; no answer in time Timeout; a malformed answer Integrity.
//
// Every completion runs exactly once, from a fresh loop turn (Loop::Post),
// never inside the call that started it, also when it fails at once (a dead
// server, a closed client, a bad argument): Tahoe-LAFS ticket #877. Each
// call holds a ReentryGuard, so debug builds abort if one ever completes in
// the turn it started, and a second completion aborts every build. Each Client has its own connections, so
// one server's failures never touch another Client. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/gbs/messages.h"
#include "cairn/gbs/nurl.h"
#include "cairn/http/client.h"

namespace cairn::tls {
class Context;
}

namespace cairn::gbs {

using StorageIndex = std::array<std::uint8_t, 16>;  // the same type as store::StorageIndex

struct LeaseSecrets {
  std::string renew;   // 32 bytes
  std::string cancel;  // 32 bytes
};

// What a test's fault hook may do to one call (see ClientOptions::TEST_fault).
enum class Fault {
  kNone,
  kFailAtOnce,      // fail with Unavailable without sending anything
  kDropConnection,  // send the request, then drop the connection before the answer
  kAnswerLate,      // deliver the answer TEST_late_ms later
  kAnswerTwice,     // the answer arrives twice (the second must be ignored)
};

struct ClientOptions {
  std::size_t max_connections = 10;  // Tahoe's pool per server
  std::size_t max_idle = 4;
  std::size_t max_queued = 4096;
  std::uint64_t connect_ms = 10000;
  std::uint64_t head_ms = 60000;
  std::uint64_t body_idle_ms = 60000;
  std::uint64_t keep_idle_ms = 30000;
  std::uint64_t cbor_response_bytes = 30ull << 20;  // as Tahoe's client
  std::uint64_t read_response_bytes = 64ull << 20;  // a ranged read's body (bounded by the range too)
  // GetVersion answers from the last answer for this long after it came
  // (0: every call asks the server). Tahoe-LAFS's client asks once per
  // connection; a server's room changes slowly, and an allocation it cannot
  // take is refused whatever its version said.
  std::uint64_t version_cache_ms = 0;
  // Fault injection for tests: asked once per call with the endpoint name
  // ("version", "allocate", "write", ...).
  Callback<Fault(std::string_view endpoint)> TEST_fault;
  std::uint64_t TEST_late_ms = 50;
};

// PATCH result: 201 completed the share; 200 lists what is still missing.
struct WriteResult {
  bool complete = false;
  std::vector<Range> required;
};

struct ClientStats {
  std::uint64_t calls = 0;
  std::uint64_t duplicate_answers = 0;  // answers after the first, dropped
  std::uint64_t versions_cached = 0;    // GetVersion calls answered from the cache, not counted in calls
};

class Client {
 public:
  // `ctx` from tls::Context::NewClient() (one may be shared by many clients).
  Client(Loop& loop, std::shared_ptr<tls::Context> ctx, const Nurl& nurl, ClientOptions options = {});
  ~Client();  // REQUIRES: Close() completed, or no call made.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Nurl& nurl() const { return nurl_; }

  // GET /storage/v1/version, or the last answer while it is younger than
  // options.version_cache_ms (then no request is sent; `done` still runs on
  // a later turn).
  void GetVersion(Callback<void(Result<Version>)> done);
  // PUT /lease/<si>: NotFound if the server holds no share of `si`.
  void AddLease(const StorageIndex& si, const LeaseSecrets& lease, Callback<void(Status)> done);
  void Allocate(const StorageIndex& si, const std::string& upload_secret, const LeaseSecrets& lease,
                const AllocateRequest& request, Callback<void(Result<AllocateResponse>)> done);
  // PATCH bytes [offset, offset + data.size()) of an allocated share.
  // REQUIRES: data non-empty.
  void WriteChunk(const StorageIndex& si, std::uint32_t shnum, const std::string& upload_secret,
                  std::uint64_t offset, std::string data, Callback<void(Result<WriteResult>)> done);
  void Abort(const StorageIndex& si, std::uint32_t shnum, const std::string& upload_secret,
             Callback<void(Status)> done);
  void ListImmutable(const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done);
  void ListMutable(const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done);
  // Up to `length` bytes from `offset` (fewer at the share's end, empty past
  // it). REQUIRES: length > 0.
  void ReadImmutable(const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset, std::uint64_t length,
                     Callback<void(Result<std::string>)> done);
  void ReadMutable(const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset, std::uint64_t length,
                   Callback<void(Result<std::string>)> done);
  // NotFound if the server has no such share.
  void AdviseCorrupt(bool mutable_share, const StorageIndex& si, std::uint32_t shnum, std::string_view reason,
                     Callback<void(Status)> done);
  // A failed test vector is not an error: success == false.
  void ReadTestWrite(const StorageIndex& si, const std::string& write_enabler, const LeaseSecrets& lease,
                     const RtwRequest& request, Callback<void(Result<RtwResponse>)> done);
  // The same with the request already encoded (EncodeRtwRequest), so that
  // a large one can be encoded off the loop.
  void ReadTestWriteEncoded(const StorageIndex& si, const std::string& write_enabler, const LeaseSecrets& lease,
                            std::string body, Callback<void(Result<RtwResponse>)> done);

  // Fails every call in flight with ShuttingDown; `done` on a later turn.
  // Calls made after Close fail with ShuttingDown, on a later turn.
  void Close(Task done);

  const ClientStats& stats() const { return stats_; }
  const http::ClientStats& http_stats() const;
  std::size_t open_connections() const;

  struct Call;

 private:
  void Send(std::string_view endpoint, http::ClientRequest request,
            Callback<void(Result<http::ClientResponse>)> on_answer);
  void Read(bool mutable_share, const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset,
            std::uint64_t length, Callback<void(Result<std::string>)> done);
  void List(bool mutable_share, const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done);

  Loop& loop_;
  Nurl nurl_;
  ClientOptions options_;
  std::string authorization_;
  std::unique_ptr<http::Client> http_;
  ClientStats stats_;
  std::shared_ptr<bool> alive_;
  // The last version answer and when it came (clock::MonotonicMs), for
  // options_.version_cache_ms.
  std::optional<Version> version_;
  double version_at_ms_ = 0;
  // Fault::kAnswerLate only: the timers holding late answers, and their calls.
  struct LateAnswer {
    std::unique_ptr<Timer> timer;
    std::shared_ptr<Call> call;
  };
  std::vector<LateAnswer> late_timers_;
};

// The Status for an HTTP answer that is not the endpoint's success.
Status StatusOfHttp(int http_status, std::string_view body);

}  // namespace cairn::gbs
