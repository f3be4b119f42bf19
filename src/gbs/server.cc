// The GBS storage endpoints over http::Server and store::ShareStore (see the
// header and docs/gbs.md). Loop thread only.
#include "cairn/gbs/server.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/base32.h"
#include "cairn/core/log.h"
#include "cairn/gbs/fields.h"
#include "cairn/gbs/messages.h"

namespace cairn::gbs {
namespace {

enum class Endpoint {
  kVersion,
  kLease,
  kAllocate,
  kWrite,
  kAbort,
  kListImmutable,
  kReadImmutable,
  kCorruptImmutable,
  kReadTestWrite,
  kListMutable,
  kReadMutable,
  kCorruptMutable,
};

const char* EndpointName(Endpoint e) {
  switch (e) {
    case Endpoint::kVersion: return "version";
    case Endpoint::kLease: return "lease";
    case Endpoint::kAllocate: return "allocate";
    case Endpoint::kWrite: return "write";
    case Endpoint::kAbort: return "abort";
    case Endpoint::kListImmutable: return "list_immutable";
    case Endpoint::kReadImmutable: return "read_immutable";
    case Endpoint::kCorruptImmutable: return "corrupt_immutable";
    case Endpoint::kReadTestWrite: return "read_test_write";
    case Endpoint::kListMutable: return "list_mutable";
    case Endpoint::kReadMutable: return "read_mutable";
    case Endpoint::kCorruptMutable: return "corrupt_mutable";
  }
  return "unknown";
}

struct Route {
  Endpoint endpoint = Endpoint::kVersion;
  store::StorageIndex si{};
  store::ShareNum shnum = 0;
};

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() != '/') break;
    path.remove_prefix(1);
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

// Exactly 26 characters of [a-z2-7], as the real server's route requires.
bool ParseSi(std::string_view s, store::StorageIndex* si) {
  if (s.size() != 26) return false;
  auto raw = Base32Decode(s);
  if (!raw.ok() || raw->size() != 16) return false;
  std::copy(raw->begin(), raw->end(), si->begin());
  return true;
}

bool ParseShnum(std::string_view s, store::ShareNum* n) {
  if (s.empty() || s.size() > 3) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > kMaxShareNumber) return false;
  *n = v;
  return true;
}

// 404 when no route has this path, 405 when one does but not this method.
Result<Route> Match(std::string_view method, std::string_view path) {
  std::vector<std::string_view> p = Split(path);
  Route r;
  auto want = [&](std::string_view m, Endpoint e) -> Result<Route> {
    if (method != m) return Status::UnknownMethod("method not allowed");
    r.endpoint = e;
    return r;
  };
  if (p.size() < 3 || p[0] != "storage" || p[1] != "v1") return Status::NotFound("no such resource");
  if (p.size() == 3 && p[2] == "version") return want("GET", Endpoint::kVersion);
  if (p.size() < 4 || !ParseSi(p[3], &r.si)) return Status::NotFound("no such resource");
  if (p[2] == "lease" && p.size() == 4) return want("PUT", Endpoint::kLease);
  bool imm = p[2] == "immutable", mut = p[2] == "mutable";
  if (!imm && !mut) return Status::NotFound("no such resource");
  if (p.size() == 4) {
    if (imm) return want("POST", Endpoint::kAllocate);
    return Status::NotFound("no such resource");
  }
  if (p.size() == 5 && p[4] == "shares") return want("GET", imm ? Endpoint::kListImmutable : Endpoint::kListMutable);
  if (p.size() == 5 && mut && p[4] == "read-test-write") return want("POST", Endpoint::kReadTestWrite);
  if (!ParseShnum(p[4], &r.shnum)) return Status::NotFound("no such resource");
  if (p.size() == 5) {
    if (method == "GET") {
      r.endpoint = imm ? Endpoint::kReadImmutable : Endpoint::kReadMutable;
      return r;
    }
    if (imm) return want("PATCH", Endpoint::kWrite);
    return Status::UnknownMethod("method not allowed");
  }
  if (p.size() == 6 && p[5] == "corrupt") return want("POST", imm ? Endpoint::kCorruptImmutable : Endpoint::kCorruptMutable);
  if (p.size() == 6 && imm && p[5] == "abort") return want("PUT", Endpoint::kAbort);
  return Status::NotFound("no such resource");
}

// The X-Tahoe-Authorization kinds each endpoint requires, exactly.
std::vector<SecretKind> RequiredSecrets(Endpoint e) {
  switch (e) {
    case Endpoint::kLease: return {SecretKind::kLeaseRenew, SecretKind::kLeaseCancel};
    case Endpoint::kAllocate: return {SecretKind::kLeaseRenew, SecretKind::kLeaseCancel, SecretKind::kUpload};
    case Endpoint::kWrite:
    case Endpoint::kAbort: return {SecretKind::kUpload};
    case Endpoint::kReadTestWrite:
      return {SecretKind::kLeaseRenew, SecretKind::kLeaseCancel, SecretKind::kWriteEnabler};
    default: return {};
  }
}

bool TakesCborBody(Endpoint e) {
  return e == Endpoint::kAllocate || e == Endpoint::kReadTestWrite || e == Endpoint::kCorruptImmutable ||
         e == Endpoint::kCorruptMutable;
}

// The media type without parameters, lower case.
std::string MediaType(std::string_view v) {
  std::size_t semi = v.find(';');
  std::string_view t = v.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Accept: absent, or naming application/cbor (or a wildcard that covers it).
bool AcceptsCbor(const http::Request& req) {
  const std::string* accept = req.Header("Accept");
  if (!accept) return true;
  std::string_view v = *accept;
  while (!v.empty()) {
    std::size_t comma = v.find(',');
    std::string t = MediaType(v.substr(0, comma));
    if (t == "application/cbor" || t == "application/*" || t == "*/*") return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

int HttpStatusOf(const Status& st) {
  if (st.code() == Code::kUnknownMethod) return 405;  // a route with another method
  return CodeHttpStatus(st.code());
}

}  // namespace

// One request in progress: the exchange, what it is, and the shared parts.
struct StorageServer::Call {
  std::shared_ptr<http::Exchange> ex;
  const char* endpoint = "unmatched";
  StorageServer* server = nullptr;
  std::shared_ptr<bool> alive;
  bool answered = false;

  void Respond(int status, std::vector<http::Field> headers, std::string body) {
    if (answered) return;
    answered = true;
    if (*alive) {
      server->stats_.requests[endpoint][status]++;
      server->stats_.bytes_out += body.size();
    }
    http::Response r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = std::move(body);
    ex->Respond(std::move(r));
  }
  // Starts a streamed answer of `length` bytes (StreamedRead writes them).
  void Start(int status, std::vector<http::Field> headers, std::uint64_t length) {
    if (answered) return;
    answered = true;
    if (*alive) server->stats_.requests[endpoint][status]++;
    ex->StartResponse(status, std::move(headers), length);
  }
  void Cbor(int status, std::string body) { Respond(status, {{"Content-Type", "application/cbor"}}, std::move(body)); }
  void Empty(int status) { Respond(status, {}, ""); }
  void Error(int status, const Status& st) {
    Respond(status, {{"Content-Type", "text/plain; charset=utf-8"}}, st.ToString() + "\n");
  }
  void Error(const Status& st) { Error(HttpStatusOf(st), st); }
};

// A PATCH in progress. Memory is bounded in two steps:
//  - admission: at most `upload_slots` uploads read their bodies at once;
//    the others wait, in arrival order, without a body reader, so the HTTP
//    layer holds at most its input high-water mark for each of them and
//    stops reading their sockets;
//  - per admitted upload: the body is cut into pieces of write_piece_bytes
//    handed to the store in order while more arrives, and the socket is
//    paused while writes_in_flight pieces are outstanding or the store's
//    queue has no room, so an upload holds under (writes_in_flight + 1)
//    pieces.
// Writes are always whole pieces except the last, so a batch of the store's
// group commit touches few files. The answer waits for the last write's
// durable completion; the slot is given up when the upload ends, however
// it ends.
struct StorageServer::Upload : std::enable_shared_from_this<StorageServer::Upload> {
  std::shared_ptr<Call> call;
  store::StorageIndex si{};
  store::ShareNum shnum = 0;
  std::string secret;
  std::uint64_t next_offset = 0;  // share offset of the first byte not yet handed to the store
  std::uint64_t expected = 0;     // Content-Range length
  std::uint64_t received = 0;
  // The body not yet handed to the store: whole pieces, then the piece
  // being filled. Each piece is its own buffer of write_piece_bytes
  // capacity, filled by one copy from the HTTP layer's pieces and moved to
  // the store as it is. (Cutting pieces out of one growing buffer copied
  // every byte twice more, by substr and by erase's shift, and regrew the
  // buffer: about a sixth of the loop's time in a single-stream upload.)
  std::deque<std::string> full;
  std::string filling;
  std::uint64_t in_flight = 0;
  bool admitted = false;  // holds one of the server's upload slots
  bool body_done = false;
  bool paused = false;
  bool waiting_for_room = false;
  std::optional<store::WriteResult> last;

  ~Upload() { Leave(); }

  StorageServer& server() { return *call->server; }
  bool room() {
    return in_flight < server().options_.writes_in_flight &&
           server().store_.has_room(static_cast<std::size_t>(server().options_.write_piece_bytes));
  }

  // Called for every new PATCH: admitted now, or queued until a slot frees.
  static void Arrive(const std::shared_ptr<Upload>& up) {
    StorageServer& s = up->server();
    if (s.uploads_active_ < s.upload_slots_ && s.upload_queue_.empty()) return Admit(up);
    s.stats_.uploads_queued++;
    s.upload_queue_.push_back(up);
  }

  static void Admit(const std::shared_ptr<Upload>& up) {
    up->admitted = true;
    up->server().uploads_active_++;
    http::BodyOptions opts;
    opts.max_bytes = up->expected;
    opts.length_required = false;
    up->call->ex->ReadBody(
        opts,
        [up](std::string piece) -> http::Flow {
          if (!*up->call->alive || up->call->answered) return http::Flow::kMore;  // drain quietly
          up->received += piece.size();
          up->server().stats_.bytes_in += piece.size();
          up->Append(piece);
          up->Pump();
          if (up->room()) return http::Flow::kMore;
          up->paused = true;
          up->WaitForRoom();
          return http::Flow::kPause;
        },
        [up](Status st) {
          if (!*up->call->alive) return;
          if (up->call->answered) return up->Leave();
          if (!st.ok()) {
            up->call->answered = true;  // the HTTP server answered, or the peer left
            return up->Leave();
          }
          if (up->received != up->expected) {
            up->call->Error(400, Status::InvalidArgument("the body length differs from the Content-Range"));
            return up->Leave();
          }
          up->body_done = true;
          up->Pump();
          up->MaybeFinish();
        });
  }

  // Gives the slot back (once) and lets the next queued upload in.
  void Leave() {
    if (!admitted) return;
    admitted = false;
    if (!*call->alive) return;
    server().uploads_active_--;
    server().AdmitWaitingUploads();
  }

  bool pending() const { return !full.empty() || !filling.empty(); }

  // Cuts the body into write pieces as it arrives.
  void Append(std::string_view data) {
    const std::size_t piece = static_cast<std::size_t>(std::max<std::uint64_t>(server().options_.write_piece_bytes, 1));
    while (!data.empty()) {
      if (filling.capacity() < piece) filling.reserve(piece);
      std::size_t n = std::min(piece - filling.size(), data.size());
      filling.append(data.substr(0, n));
      data.remove_prefix(n);
      if (filling.size() == piece) {
        full.push_back(std::move(filling));
        filling = std::string();
      }
    }
  }

  // Hands whole pieces (and, at the end of the body, the remainder) to the
  // store while there is room.
  void Pump() {
    while (!call->answered && room() && (!full.empty() || (body_done && !filling.empty()))) {
      std::string data;
      if (!full.empty()) {
        data = std::move(full.front());
        full.pop_front();
      } else {
        data = std::move(filling);
        filling = std::string();
      }
      std::size_t n = data.size();
      std::uint64_t offset = next_offset;
      next_offset += n;
      ++in_flight;
      auto self = shared_from_this();
      server().store_.WriteChunk(si, shnum, secret, offset, std::move(data), [self](Result<store::WriteResult> r) {
        if (!*self->call->alive) return;
        --self->in_flight;
        if (!r.ok()) {
          self->call->Error(r.status());
          return self->Leave();
        }
        self->last = std::move(r).value();
        self->Resume();
      });
    }
    if (body_done && pending() && !call->answered) WaitForRoom();
  }

  // Every stop has a wake-up on the way: a write in flight (its completion
  // resumes) or the store's room callback.
  void WaitForRoom() {
    if (waiting_for_room || in_flight > 0) return;
    waiting_for_room = true;
    auto self = shared_from_this();
    server().store_.WhenRoom([self] {
      if (!*self->call->alive) return;
      self->waiting_for_room = false;
      self->Resume();
    });
  }

  void Resume() {
    if (call->answered) return Leave();
    Pump();
    if (paused && room()) {
      paused = false;
      call->ex->ResumeBody();
    } else if (paused || (body_done && pending())) {
      WaitForRoom();
    }
    MaybeFinish();
  }

  void MaybeFinish() {
    if (call->answered || !body_done || in_flight > 0 || pending() || !last) return;
    std::vector<Range> required;
    for (const store::Range& g : last->required) required.push_back({g.begin, g.end});
    call->Cbor(last->complete ? 201 : 200, EncodeRequired(required));
    Leave();
  }
};

// An immutable read longer than read_piece_bytes. Its headers go first (the
// share's size gives the clamped Content-Range), then one piece at a time:
// each is read from the store only when the connection's write queue has
// room, so the read holds one piece whatever its range; sixteen 16 MiB reads
// would otherwise hold 256 MiB. A complete immutable share never changes, so
// the pieces form one consistent answer. If a piece cannot be read (the share
// was deleted meanwhile, a disk error), the response is left unended and the
// connection aborted: the client sees a broken answer, never a short one.
struct StorageServer::StreamedRead : std::enable_shared_from_this<StorageServer::StreamedRead> {
  std::shared_ptr<Call> call;
  store::StorageIndex si{};
  store::ShareNum shnum = 0;
  std::uint64_t next = 0;  // share offset of the next piece
  std::uint64_t end = 0;   // one past the last byte of the answer

  StorageServer& server() { return *call->server; }

  void Next() {
    if (next == end) return call->ex->EndResponse();
    const std::uint64_t n = std::min(end - next, server().options_.read_piece_bytes);
    auto self = shared_from_this();
    server().store_.ReadImmutable(si, shnum, next, n, [self, n](Result<std::string> data) {
      if (!*self->call->alive) return;
      if (!data.ok() || data->size() != n) {
        CAIRN_LOG(Warn, "gbs: streamed read of %s share %u stopped at offset %llu: %s", store::SiHex(self->si).c_str(),
                  self->shnum, static_cast<unsigned long long>(self->next),
                  data.ok() ? "the share is shorter than its size" : data.status().ToString().c_str());
        return;  // unended: dropping the exchange aborts the connection
      }
      self->next += n;
      self->server().stats_.bytes_out += n;
      self->call->ex->WriteBody(std::move(data).value(), [self](Status st) {
        if (!*self->call->alive || !st.ok()) return;  // the connection ended
        self->Next();
      });
    });
  }
};

void StorageServer::AdmitWaitingUploads() {
  if (upload_queue_.empty() || admit_posted_) return;
  admit_posted_ = true;
  // Admitted from a fresh turn: Leave runs inside other uploads' completions.
  loop_.Post([this, alive = alive_] {
    if (!*alive) return;
    admit_posted_ = false;
    while (uploads_active_ < upload_slots_ && !upload_queue_.empty()) {
      std::shared_ptr<Upload> up = std::move(upload_queue_.front());
      upload_queue_.pop_front();
      if (up->call->answered) continue;
      Upload::Admit(up);
    }
  });
}

StorageServer::StorageServer(Loop& loop, store::ShareStore& store, StorageServerOptions options)
    : loop_(loop), store_(store), options_(std::move(options)), alive_(std::make_shared<bool>(true)) {
  const std::uint64_t per_upload = (options_.writes_in_flight + 1) * options_.write_piece_bytes;
  upload_slots_ = std::max<std::uint64_t>(2, options_.upload_buffer_bytes / std::max<std::uint64_t>(1, per_upload));
}

StorageServer::~StorageServer() { *alive_ = false; }

namespace {

using CallPtr = std::shared_ptr<StorageServer::Call>;

// Wraps a store completion so that it does nothing once the server is gone.
template <typename T>
Callback<void(T)> Guard(const CallPtr& call, Callback<void(T)> fn) {
  return [call, fn = std::move(fn)](T v) mutable {
    if (!*call->alive) return;
    fn(std::move(v));
  };
}

store::LeaseSecrets LeaseOf(const Secrets& s) {
  return store::LeaseSecrets{*s[SecretKind::kLeaseRenew], *s[SecretKind::kLeaseCancel]};
}

}  // namespace

void StorageServer::Handle(std::shared_ptr<http::Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->ex = std::move(exchange);
  call->server = this;
  call->alive = alive_;
  const http::Request& req = call->ex->request();
  // The swissnum first: nothing else is looked at for a stranger.
  const std::string* auth = req.Header("Authorization");
  if (!auth || !AuthorizationMatches(*auth, options_.swissnum)) {
    return call->Error(401, Status::Unauthenticated("missing or wrong Authorization"));
  }
  auto route = Match(req.method, req.path());
  if (!route.ok()) return call->Error(route.status());
  call->endpoint = EndpointName(route->endpoint);
  const Endpoint ep = route->endpoint;
  if (TakesCborBody(ep)) {
    const std::string* ct = req.Header("Content-Type");
    if (ct && MediaType(*ct) != "application/cbor") {
      return call->Error(415, Status::InvalidArgument("request bodies are application/cbor"));
    }
  }
  if (!AcceptsCbor(req)) return call->Error(406, Status::InvalidArgument("responses are application/cbor"));
  std::vector<SecretKind> required = RequiredSecrets(ep);
  std::vector<std::string_view> secret_values = req.HeaderValues("X-Tahoe-Authorization");
  Result<Secrets> secrets = Status::Internal("unset");
  switch (required.size()) {
    case 0: secrets = ParseSecrets(secret_values, {}); break;
    case 1: secrets = ParseSecrets(secret_values, {required[0]}); break;
    case 2: secrets = ParseSecrets(secret_values, {required[0], required[1]}); break;
    default: secrets = ParseSecrets(secret_values, {required[0], required[1], required[2]}); break;
  }
  if (!secrets.ok()) return call->Error(400, secrets.status());
  const store::StorageIndex si = route->si;
  const store::ShareNum shnum = route->shnum;
  Secrets sec = std::move(secrets).value();

  switch (ep) {
    case Endpoint::kVersion:
      store_.Space(Guard<Result<store::SpaceInfo>>(call, [call](Result<store::SpaceInfo> space) {
        if (!space.ok()) return call->Error(space.status());
        Version v;
        v.available_space = space->available_bytes;
        // As the real server: the largest immutable share is what fits.
        v.maximum_immutable_share_size =
            std::min(space->available_bytes, call->server->store_.options().max_immutable_share_bytes);
        v.maximum_mutable_share_size = call->server->store_.options().max_mutable_share_bytes;
        v.application_version = call->server->options_.application_version;
        call->Cbor(200, EncodeVersion(v));
      }));
      return;

    case Endpoint::kLease:
      store_.AddLease(si, LeaseOf(sec), Guard<Status>(call, [call](Status st) {
                        if (!st.ok()) return call->Error(st);
                        call->Empty(204);
                      }));
      return;

    case Endpoint::kAllocate:
      call->ex->ReadWholeBody(options_.allocate_body_bytes, Guard<Result<std::string>>(call, [call, si, sec](
                                                                                              Result<std::string> body) {
        if (!body.ok()) return;  // the HTTP server answered (413, 400, 408) or the peer left
        call->server->stats_.bytes_in += body->size();
        auto a = DecodeAllocateRequest(*body);
        if (!a.ok()) return call->Error(400, a.status());
        std::vector<store::ShareNum> shnums(a->share_numbers.begin(), a->share_numbers.end());
        call->server->store_.Allocate(
            si, std::move(shnums), a->allocated_size, *sec[SecretKind::kUpload], LeaseOf(sec),
            Guard<Result<store::AllocateResult>>(call, [call, si](Result<store::AllocateResult> r) {
              if (r.ok()) return call->Cbor(200, EncodeAllocateResponse({r->already_have, r->allocated}));
              if (r.status().code() != Code::kReadOnly) return call->Error(r.status());
              // A read-only node still says what it holds, and allocates nothing.
              call->server->store_.ListImmutable(
                  si, Guard<Result<std::vector<store::ShareNum>>>(call, [call](Result<std::vector<store::ShareNum>> have) {
                    if (!have.ok()) return call->Error(have.status());
                    call->Cbor(200, EncodeAllocateResponse({*have, {}}));
                  }));
            }));
      }));
      return;

    case Endpoint::kWrite: {
      const std::string* cr = req.Header("Content-Range");
      auto range = cr ? ParseContentRange(*cr) : Result<ContentRange>(Status::InvalidArgument("no Content-Range"));
      if (!range.ok()) return call->Error(416, range.status());
      auto up = std::make_shared<Upload>();
      up->call = call;
      up->si = si;
      up->shnum = shnum;
      up->secret = *sec[SecretKind::kUpload];
      up->next_offset = range->first;
      up->expected = range->length();
      Upload::Arrive(up);
      return;
    }

    case Endpoint::kAbort:
      store_.Abort(si, shnum, *sec[SecretKind::kUpload], Guard<Status>(call, [call](Status st) {
                     if (st.code() == Code::kFailedPrecondition) return call->Error(405, st);  // complete share
                     if (!st.ok()) return call->Error(st);
                     call->Empty(200);
                   }));
      return;

    case Endpoint::kListImmutable:
    case Endpoint::kListMutable: {
      auto done = Guard<Result<std::vector<store::ShareNum>>>(call, [call](Result<std::vector<store::ShareNum>> s) {
        if (!s.ok()) return call->Error(s.status());
        call->Cbor(200, EncodeShareSet(ShareNumbers(s->begin(), s->end())));
      });
      if (ep == Endpoint::kListImmutable) {
        store_.ListImmutable(si, std::move(done));
      } else {
        store_.ListMutable(si, std::move(done));
      }
      return;
    }

    case Endpoint::kReadImmutable:
    case Endpoint::kReadMutable: {
      const std::string* rh = req.Header("Range");
      if (!rh) return call->Error(416, Status::InvalidArgument("a share read needs a Range"));
      auto range = ParseRange(*rh);
      if (!range.ok()) return call->Error(416, range.status());
      std::uint64_t first = range->first;
      std::uint64_t length = std::min(range->length(), options_.read_bytes);
      if (ep == Endpoint::kReadImmutable && length > options_.read_piece_bytes) {
        return store_.ImmutableSize(si, shnum, Guard<Result<std::uint64_t>>(call, [call, si, shnum, first, length](
                                                                               Result<std::uint64_t> size) {
          if (!size.ok()) return call->Error(size.status());
          if (first >= *size) return call->Empty(204);
          auto read = std::make_shared<StreamedRead>();
          read->call = call;
          read->si = si;
          read->shnum = shnum;
          read->next = first;
          read->end = first + std::min(length, *size - first);
          call->Start(206, {{"Content-Type", "application/octet-stream"},
                            {"Content-Range", FormatContentRange(first, read->end - 1)}},
                      read->end - first);
          read->Next();
        }));
      }
      auto done = Guard<Result<std::string>>(call, [call, first](Result<std::string> data) {
        if (!data.ok()) return call->Error(data.status());
        if (data->empty()) return call->Empty(204);
        std::uint64_t last = first + data->size() - 1;
        call->Respond(206, {{"Content-Type", "application/octet-stream"}, {"Content-Range", FormatContentRange(first, last)}},
                      std::move(data).value());
      });
      if (ep == Endpoint::kReadImmutable) {
        store_.ReadImmutable(si, shnum, first, length, std::move(done));
      } else {
        store_.ReadMutable(si, shnum, first, length, std::move(done));
      }
      return;
    }

    case Endpoint::kCorruptImmutable:
    case Endpoint::kCorruptMutable: {
      bool is_mutable = ep == Endpoint::kCorruptMutable;
      call->ex->ReadWholeBody(options_.corrupt_body_bytes, Guard<Result<std::string>>(call, [call, si, shnum, is_mutable](
                                                                                             Result<std::string> body) {
        if (!body.ok()) return;
        call->server->stats_.bytes_in += body->size();
        auto reason = DecodeCorruption(*body);
        if (!reason.ok()) return call->Error(400, reason.status());
        call->server->store_.AdviseCorrupt(is_mutable, si, shnum, std::move(reason).value(),
                                           Guard<Status>(call, [call](Status st) {
                                             if (!st.ok()) return call->Error(st);
                                             call->Empty(200);
                                           }));
      }));
      return;
    }

    case Endpoint::kReadTestWrite:
      call->ex->ReadWholeBody(options_.rtw_body_bytes, Guard<Result<std::string>>(call, [call, si, sec](
                                                                                        Result<std::string> body) {
        if (!body.ok()) return;
        call->server->stats_.bytes_in += body->size();
        auto q = DecodeRtwRequest(*body);
        if (!q.ok()) return call->Error(400, q.status());
        // The store takes owned copies; the views into `body` end here.
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
        call->server->store_.ReadTestWrite(
            si, *sec[SecretKind::kWriteEnabler], LeaseOf(sec), std::move(writes), std::move(reads),
            Guard<Result<store::RtwResult>>(call, [call](Result<store::RtwResult> r) {
              if (!r.ok()) return call->Error(r.status());
              RtwResponse resp;
              resp.success = r->success;
              resp.data = std::move(r->data);
              call->Cbor(200, EncodeRtwResponse(resp));
            }));
      }));
      return;
  }
}

}  // namespace cairn::gbs
