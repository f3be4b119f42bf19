// The immutable endpoints (tahoe-protocol.md 1.5.3-1.5.8, 2.1): allocate,
// upload in streamed pieces with backpressure, abort, list, read (streamed
// when long), corruption advisory. Loop thread only.
#include <algorithm>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>

#include "cairn/core/log.h"
#include "cairn/gbs/messages.h"
#include "gbs/call.h"

namespace cairn::gbs {

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

void StorageServer::Allocate(const CallPtr& call) {
  auto a = DecodeAllocateRequest(call->body);
  if (!a.ok()) return call->Error(400, a.status());
  std::vector<store::ShareNum> shnums(a->share_numbers.begin(), a->share_numbers.end());
  const store::StorageIndex si = call->si;
  store_.Allocate(si, std::move(shnums), a->allocated_size, *call->secrets[SecretKind::kUpload], call->lease(),
                  call->Guard<Result<store::AllocateResult>>([call, si](Result<store::AllocateResult> r) {
                    if (r.ok()) return call->Cbor(200, EncodeAllocateResponse({r->already_have, r->allocated}));
                    if (r.status().code() != Code::kReadOnly) return call->Error(r.status());
                    // A read-only node still says what it holds, and allocates nothing.
                    call->srv().store_.ListImmutable(si, call->Guard<Result<std::vector<store::ShareNum>>>(
                                                             [call](Result<std::vector<store::ShareNum>> have) {
                                                               if (!have.ok()) return call->Error(have.status());
                                                               call->Cbor(200, EncodeAllocateResponse({*have, {}}));
                                                             }));
                  }));
}

void StorageServer::Write(const CallPtr& call) {
  const std::string* cr = call->ex->request().Header("Content-Range");
  auto range = cr ? ParseContentRange(*cr) : Result<ContentRange>(Status::InvalidArgument("no Content-Range"));
  if (!range.ok()) return call->Error(416, range.status());
  auto up = std::make_shared<Upload>();
  up->call = call;
  up->si = call->si;
  up->shnum = call->shnum;
  up->secret = *call->secrets[SecretKind::kUpload];
  up->next_offset = range->first;
  up->expected = range->length();
  Upload::Arrive(up);
}

void StorageServer::Abort(const CallPtr& call) {
  store_.Abort(call->si, call->shnum, *call->secrets[SecretKind::kUpload], call->Guard<Status>([call](Status st) {
    if (st.code() == Code::kFailedPrecondition) return call->Error(405, st);  // complete share
    if (!st.ok()) return call->Error(st);
    call->Empty(200);
  }));
}

void StorageServer::ListImmutable(const CallPtr& call) { store_.ListImmutable(call->si, call->ListDone()); }

void StorageServer::ReadImmutable(const CallPtr& call) {
  auto range = call->ReadRange(options_.read_bytes);
  if (!range.ok()) return call->Error(416, range.status());
  // Plain variables, not a structured binding: clang 14 (the fuzz build)
  // cannot capture a binding in the lambda below.
  const std::uint64_t first = range->first;
  const std::uint64_t length = range->second;
  if (length <= options_.read_piece_bytes) {
    return store_.ReadImmutable(call->si, call->shnum, first, length, call->ReadDone(first));
  }
  store_.ImmutableSize(call->si, call->shnum, call->Guard<Result<std::uint64_t>>([call, first, length](
                                                                                     Result<std::uint64_t> size) {
    if (!size.ok()) return call->Error(size.status());
    if (first >= *size) return call->Empty(204);
    auto read = std::make_shared<StreamedRead>();
    read->call = call;
    read->si = call->si;
    read->shnum = call->shnum;
    read->next = first;
    read->end = first + std::min(length, *size - first);
    call->Start(206,
                {{"Content-Type", "application/octet-stream"}, {"Content-Range", FormatContentRange(first, read->end - 1)}},
                read->end - first);
    read->Next();
  }));
}

void StorageServer::CorruptImmutable(const CallPtr& call) { call->AdviseCorrupt(false); }

}  // namespace cairn::gbs
