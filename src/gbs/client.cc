// The GBS client: requests built from typed arguments, answers checked and
// decoded. Every public call wraps its completion in Once() at its first
// line, so the #877 tripwire checks all of them. Loop thread only.
#include "cairn/gbs/client.h"

#include "cairn/core/base32.h"
#include "cairn/core/clock.h"
#include "cairn/core/scheduler.h"
#include "cairn/gbs/fields.h"

namespace cairn::gbs {
namespace {

// A call's completion, checked: it runs at most once (a second delivery is
// a broken invariant and aborts), and never in the turn the call started
// (ReentryGuard: debug builds abort). `op` names the call in the abort.
template <typename T>
Callback<void(T)> Once(const Scheduler& scheduler, const char* op, Callback<void(T)> done) {
  return [guard = ReentryGuard(scheduler, op), op, done = std::move(done)](T v) mutable {
    guard.Deliver();
    CAIRN_CHECK(static_cast<bool>(done), std::string(op) + " completed twice");
    Callback<void(T)> run = std::move(done);
    run(std::move(v));
  };
}

Task Once(const Scheduler& scheduler, const char* op, Task done) {
  return [guard = ReentryGuard(scheduler, op), op, done = std::move(done)]() mutable {
    guard.Deliver();
    CAIRN_CHECK(static_cast<bool>(done), std::string(op) + " completed twice");
    Task run = std::move(done);
    run();
  };
}

std::string SiText(const StorageIndex& si) {
  return Base32Encode(std::string_view(reinterpret_cast<const char*>(si.data()), si.size()));
}

std::string Prefix(bool mutable_share) { return mutable_share ? "/storage/v1/mutable/" : "/storage/v1/immutable/"; }

void AddSecret(http::ClientRequest& r, SecretKind kind, std::string_view secret) {
  r.headers.push_back({"X-Tahoe-Authorization", SecretValue(kind, secret)});
}

void AddLeaseSecrets(http::ClientRequest& r, const LeaseSecrets& lease) {
  AddSecret(r, SecretKind::kLeaseRenew, lease.renew);
  AddSecret(r, SecretKind::kLeaseCancel, lease.cancel);
}

// The answer to a call whose success statuses are `ok`: the response, or
// the Status its HTTP status maps to.
Result<http::ClientResponse> Expect(Result<http::ClientResponse> r, std::initializer_list<int> ok) {
  if (!r.ok()) return r;
  for (int s : ok) {
    if (r->status == s) return r;
  }
  return StatusOfHttp(r->status, r->body);
}

http::ClientRequest Request(const char* method, std::string target) {
  http::ClientRequest r;
  r.method = method;
  r.target = std::move(target);
  return r;
}

Status Context(Status st, std::string_view what) { return st.ok() ? st : st.WithContext(what); }

}  // namespace

Status StatusOfHttp(int http_status, std::string_view body) {
  // Error bodies are read up to 10,000 bytes, as Tahoe's client does.
  std::string detail(body.substr(0, 200));
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
  std::string msg = "server answered " + std::to_string(http_status) + (detail.empty() ? "" : ": " + detail);
  switch (http_status) {
    case 400: case 406: case 415: case 416: return Status::InvalidArgument(msg);
    case 401: case 403: return Status::Unauthenticated(msg);
    case 404: return Status::NotFound(msg);
    case 405: return Status::FailedPrecondition(msg);
    case 409: return Status::Conflict(msg);
    case 413: case 431: return Status::FrameTooLarge(msg);
    case 429: return Status::ResourceExhausted(msg);
    case 507: return Status::NoSpace(msg);
    default:
      if (http_status >= 500) return Status::Unavailable(msg);
      return Status::Integrity("unexpected answer: " + msg);
  }
}

// One call's answer path: the first answer wins, any later one is counted
// and dropped, so a duplicated answer can never complete a call twice.
struct Client::Call {
  Callback<void(Result<http::ClientResponse>)> on_answer;
  bool pending() const { return static_cast<bool>(on_answer); }
  void Answer(ClientStats* stats, Result<http::ClientResponse> r) {
    if (!on_answer) {
      ++stats->duplicate_answers;
      return;
    }
    auto cb = std::move(on_answer);
    on_answer = nullptr;
    cb(std::move(r));
  }
};

Client::Client(Loop& loop, std::shared_ptr<tls::Context> ctx, const Nurl& nurl, ClientOptions options)
    : loop_(loop), nurl_(nurl), options_(std::move(options)), authorization_(AuthorizationValue(nurl.swissnum)),
      alive_(std::make_shared<bool>(true)) {
  http::ClientOptions h;
  h.host = nurl.host;
  h.port = nurl.port;
  h.spki_pin = nurl.spki_hash;
  h.max_connections = options_.max_connections;
  h.max_idle = options_.max_idle;
  h.max_queued = options_.max_queued;
  h.connect_ms = options_.connect_ms;
  h.head_ms = options_.head_ms;
  h.body_idle_ms = options_.body_idle_ms;
  h.keep_idle_ms = options_.keep_idle_ms;
  http_ = std::make_unique<http::Client>(loop, std::move(ctx), std::move(h));
}

Client::~Client() { *alive_ = false; }

const http::ClientStats& Client::http_stats() const { return http_->stats(); }
std::size_t Client::open_connections() const { return http_->open_connections(); }

void Client::Close(Task done) {
  done = Once(loop_, "gbs::Client::Close", std::move(done));
  // A late answer still waiting is cancelled; its call completes now with
  // ShuttingDown, as every call in flight does.
  for (LateAnswer& late : late_timers_) {
    late.timer.reset();
    loop_.Post([call = std::move(late.call), stats = &stats_, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired() && call->pending()) call->Answer(stats, Status::ShuttingDown("the GBS client is closing"));
    });
  }
  late_timers_.clear();
  http_->Close(std::move(done));
}

void Client::Send(std::string_view endpoint, http::ClientRequest request,
                  Callback<void(Result<http::ClientResponse>)> on_answer) {
  ++stats_.calls;
  request.headers.insert(request.headers.begin(), {{"Authorization", authorization_},
                                                   {"Accept", "application/cbor"}});
  auto call = std::make_shared<Call>();
  call->on_answer = std::move(on_answer);
  Fault fault = options_.TEST_fault ? options_.TEST_fault(endpoint) : Fault::kNone;
  ClientStats* stats = &stats_;
  std::weak_ptr<bool> alive = alive_;
  if (fault == Fault::kFailAtOnce) {
    loop_.Post([call, stats, alive] {
      if (!alive.expired()) call->Answer(stats, Status::Unavailable("test: the call failed at once"));
    });
    return;
  }
  request.TEST_drop_after_send = fault == Fault::kDropConnection;
  std::uint64_t late = options_.TEST_late_ms;
  http_->Send(std::move(request), [this, call, stats, alive, fault, late](Result<http::ClientResponse> r) mutable {
    if (alive.expired()) return;
    if (fault == Fault::kAnswerLate) {
      // The client owns the timer: a client closed first cancels it.
      late_timers_.push_back({loop_.PostAfter(late, [call, stats, r = std::move(r)]() mutable {
                                call->Answer(stats, std::move(r));
                              }),
                              call});
      return;
    }
    if (fault == Fault::kAnswerTwice) {
      Result<http::ClientResponse> copy = r;
      call->Answer(stats, std::move(r));
      call->Answer(stats, std::move(copy));
      return;
    }
    call->Answer(stats, std::move(r));
  });
}

void Client::GetVersion(Callback<void(Result<Version>)> done) {
  done = Once(loop_, "gbs::Client::GetVersion", std::move(done));
  const double now = clock::MonotonicMs();
  if (version_ && options_.version_cache_ms > 0 && now - version_at_ms_ < static_cast<double>(options_.version_cache_ms)) {
    ++stats_.versions_cached;
    // Delivered on a later turn, as an answer from the server would be.
    return loop_.Post([done = std::move(done), v = *version_]() mutable { done(std::move(v)); });
  }
  http::ClientRequest r = Request("GET", "/storage/v1/version");
  r.max_response_bytes = options_.cbor_response_bytes;
  std::weak_ptr<bool> alive = alive_;
  Send("version", std::move(r), [this, alive, now, done = std::move(done)](Result<http::ClientResponse> a) mutable {
    auto resp = Expect(std::move(a), {200});
    if (!resp.ok()) return done(Context(resp.status(), "version"));
    auto v = DecodeVersion(resp->body);
    if (!v.ok()) return done(Status::Integrity("version answer: " + std::string(v.status().message())));
    // Kept from when it was asked: never fresher than it is.
    if (!alive.expired()) {
      version_ = *v;
      version_at_ms_ = now;
    }
    done(std::move(*v));
  });
}

void Client::AddLease(const StorageIndex& si, const LeaseSecrets& lease, Callback<void(Status)> done) {
  done = Once(loop_, "gbs::Client::AddLease", std::move(done));
  http::ClientRequest r = Request("PUT", "/storage/v1/lease/" + SiText(si));
  AddLeaseSecrets(r, lease);
  Send("lease", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    done(Context(Expect(std::move(a), {204}).status(), "add lease"));
  });
}

void Client::Allocate(const StorageIndex& si, const std::string& upload_secret, const LeaseSecrets& lease,
                      const AllocateRequest& request, Callback<void(Result<AllocateResponse>)> done) {
  done = Once(loop_, "gbs::Client::Allocate", std::move(done));
  http::ClientRequest r = Request("POST", Prefix(false) + SiText(si));
  AddLeaseSecrets(r, lease);
  AddSecret(r, SecretKind::kUpload, upload_secret);
  r.headers.push_back({"Content-Type", "application/cbor"});
  r.body = EncodeAllocateRequest(request);
  r.max_response_bytes = options_.cbor_response_bytes;
  Send("allocate", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    auto resp = Expect(std::move(a), {200});
    if (!resp.ok()) return done(Context(resp.status(), "allocate"));
    auto v = DecodeAllocateResponse(resp->body);
    if (!v.ok()) return done(Status::Integrity("allocate answer: " + std::string(v.status().message())));
    done(std::move(*v));
  });
}

void Client::WriteChunk(const StorageIndex& si, std::uint32_t shnum, const std::string& upload_secret,
                        std::uint64_t offset, std::string data, Callback<void(Result<WriteResult>)> done) {
  done = Once(loop_, "gbs::Client::WriteChunk", std::move(done));
  if (data.empty()) {
    loop_.Post([done = std::move(done)]() mutable { done(Status::InvalidArgument("write: an empty chunk")); });
    return;
  }
  http::ClientRequest r = Request("PATCH", Prefix(false) + SiText(si) + "/" + std::to_string(shnum));
  AddSecret(r, SecretKind::kUpload, upload_secret);
  r.headers.push_back({"Content-Range", FormatContentRange(offset, offset + data.size() - 1)});
  r.body = std::move(data);
  r.max_response_bytes = options_.cbor_response_bytes;
  Send("write", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    auto resp = Expect(std::move(a), {200, 201});
    if (!resp.ok()) return done(Context(resp.status(), "write"));
    auto req = DecodeRequired(resp->body);
    if (!req.ok()) return done(Status::Integrity("write answer: " + std::string(req.status().message())));
    WriteResult w;
    w.complete = resp->status == 201;
    w.required = std::move(*req);
    done(std::move(w));
  });
}

void Client::Abort(const StorageIndex& si, std::uint32_t shnum, const std::string& upload_secret,
                   Callback<void(Status)> done) {
  done = Once(loop_, "gbs::Client::Abort", std::move(done));
  http::ClientRequest r = Request("PUT", Prefix(false) + SiText(si) + "/" + std::to_string(shnum) + "/abort");
  AddSecret(r, SecretKind::kUpload, upload_secret);
  Send("abort", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    done(Context(Expect(std::move(a), {200}).status(), "abort"));
  });
}

void Client::List(bool mutable_share, const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done) {
  http::ClientRequest r = Request("GET", Prefix(mutable_share) + SiText(si) + "/shares");
  r.max_response_bytes = options_.cbor_response_bytes;
  Send("list", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    auto resp = Expect(std::move(a), {200});
    if (!resp.ok()) return done(Context(resp.status(), "list shares"));
    auto v = DecodeShareSet(resp->body);
    if (!v.ok()) return done(Status::Integrity("share list: " + std::string(v.status().message())));
    done(std::move(*v));
  });
}

void Client::ListImmutable(const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done) {
  done = Once(loop_, "gbs::Client::ListImmutable", std::move(done));
  List(false, si, std::move(done));
}
void Client::ListMutable(const StorageIndex& si, Callback<void(Result<ShareNumbers>)> done) {
  done = Once(loop_, "gbs::Client::ListMutable", std::move(done));
  List(true, si, std::move(done));
}

void Client::Read(bool mutable_share, const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset,
                  std::uint64_t length, Callback<void(Result<std::string>)> done) {
  if (length == 0 || length > options_.read_response_bytes || offset + length < offset) {
    loop_.Post([done = std::move(done)]() mutable { done(Status::InvalidArgument("read: bad range length")); });
    return;
  }
  http::ClientRequest r = Request("GET", Prefix(mutable_share) + SiText(si) + "/" + std::to_string(shnum));
  std::uint64_t last = offset + length - 1;
  r.headers.push_back({"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(last)});
  r.max_response_bytes = length;
  Send("read", std::move(r), [done = std::move(done), offset, length](Result<http::ClientResponse> a) mutable {
    // Tahoe's client takes only 204 (nothing there) or 206; a 200 to a
    // ranged read is an error.
    auto resp = Expect(std::move(a), {204, 206});
    if (!resp.ok()) return done(Context(resp.status(), "read"));
    if (resp->status == 204) return done(std::string());
    const std::string* cr = resp->Header("Content-Range");
    if (!cr) return done(Status::Integrity("read: 206 without Content-Range"));
    auto range = ParseContentRange(*cr);
    if (!range.ok() || range->first != offset || range->length() != resp->body.size() ||
        resp->body.size() > length) {
      return done(Status::Integrity("read: Content-Range does not match the body or the request"));
    }
    done(std::move(resp->body));
  });
}

void Client::ReadImmutable(const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset, std::uint64_t length,
                           Callback<void(Result<std::string>)> done) {
  done = Once(loop_, "gbs::Client::ReadImmutable", std::move(done));
  Read(false, si, shnum, offset, length, std::move(done));
}
void Client::ReadMutable(const StorageIndex& si, std::uint32_t shnum, std::uint64_t offset, std::uint64_t length,
                         Callback<void(Result<std::string>)> done) {
  done = Once(loop_, "gbs::Client::ReadMutable", std::move(done));
  Read(true, si, shnum, offset, length, std::move(done));
}

void Client::AdviseCorrupt(bool mutable_share, const StorageIndex& si, std::uint32_t shnum, std::string_view reason,
                           Callback<void(Status)> done) {
  done = Once(loop_, "gbs::Client::AdviseCorrupt", std::move(done));
  http::ClientRequest r = Request("POST", Prefix(mutable_share) + SiText(si) + "/" + std::to_string(shnum) + "/corrupt");
  r.headers.push_back({"Content-Type", "application/cbor"});
  r.body = EncodeCorruption(reason);
  Send("corrupt", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    done(Context(Expect(std::move(a), {200}).status(), "corruption advisory"));
  });
}

void Client::ReadTestWrite(const StorageIndex& si, const std::string& write_enabler, const LeaseSecrets& lease,
                           const RtwRequest& request, Callback<void(Result<RtwResponse>)> done) {
  ReadTestWriteEncoded(si, write_enabler, lease, EncodeRtwRequest(request), std::move(done));
}

void Client::ReadTestWriteEncoded(const StorageIndex& si, const std::string& write_enabler, const LeaseSecrets& lease,
                                  std::string body, Callback<void(Result<RtwResponse>)> done) {
  done = Once(loop_, "gbs::Client::ReadTestWrite", std::move(done));
  http::ClientRequest r = Request("POST", Prefix(true) + SiText(si) + "/read-test-write");
  AddLeaseSecrets(r, lease);
  AddSecret(r, SecretKind::kWriteEnabler, write_enabler);
  r.headers.push_back({"Content-Type", "application/cbor"});
  r.body = std::move(body);
  r.max_response_bytes = options_.cbor_response_bytes;
  Send("read-test-write", std::move(r), [done = std::move(done)](Result<http::ClientResponse> a) mutable {
    auto resp = Expect(std::move(a), {200});
    if (!resp.ok()) return done(Context(resp.status(), "read-test-write"));
    auto v = DecodeRtwResponse(resp->body);
    if (!v.ok()) return done(Status::Integrity("read-test-write answer: " + std::string(v.status().message())));
    done(std::move(*v));
  });
}

}  // namespace cairn::gbs
