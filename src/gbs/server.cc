// The GBS storage server: Handle runs a request through the endpoint table
// (routes.cc, auth.cc) and hands it to its endpoint's method
// (handlers_*.cc); the answering helpers every handler shares. See the
// header and docs/gbs.md. Loop thread only.
#include "cairn/gbs/server.h"

#include <algorithm>
#include <utility>

#include "cairn/gbs/messages.h"
#include "gbs/auth.h"
#include "gbs/call.h"
#include "gbs/routes.h"

namespace cairn::gbs {

void StorageServer::Call::Respond(int status, std::vector<http::Field> headers, std::string response_body) {
  if (answered) return;
  answered = true;
  if (*alive) {
    server->stats_.requests[endpoint][status]++;
    server->stats_.bytes_out += response_body.size();
  }
  http::Response r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(response_body);
  ex->Respond(std::move(r));
}

void StorageServer::Call::Start(int status, std::vector<http::Field> headers, std::uint64_t length) {
  if (answered) return;
  answered = true;
  if (*alive) server->stats_.requests[endpoint][status]++;
  ex->StartResponse(status, std::move(headers), length);
}

void StorageServer::Call::Error(int status, const Status& st) {
  Respond(status, {{"Content-Type", "text/plain; charset=utf-8"}}, st.ToString() + "\n");
}

void StorageServer::Call::Error(const Status& st) { Error(HttpStatusOf(st), st); }

Result<std::pair<std::uint64_t, std::uint64_t>> StorageServer::Call::ReadRange(std::uint64_t max_bytes) const {
  const std::string* rh = ex->request().Header("Range");
  if (!rh) return Status::InvalidArgument("a share read needs a Range");
  CAIRN_TRY_ASSIGN(ContentRange range, ParseRange(*rh));
  return std::make_pair(range.first, std::min(range.length(), max_bytes));
}

Callback<void(Result<std::string>)> StorageServer::Call::ReadDone(std::uint64_t first) {
  return Guard<Result<std::string>>([self = shared_from_this(), first](Result<std::string> data) {
    if (!data.ok()) return self->Error(data.status());
    if (data->empty()) return self->Empty(204);
    std::uint64_t last = first + data->size() - 1;
    self->Respond(206, {{"Content-Type", "application/octet-stream"}, {"Content-Range", FormatContentRange(first, last)}},
                  std::move(data).value());
  });
}

Callback<void(Result<std::vector<store::ShareNum>>)> StorageServer::Call::ListDone() {
  return Guard<Result<std::vector<store::ShareNum>>>([self = shared_from_this()](Result<std::vector<store::ShareNum>> s) {
    if (!s.ok()) return self->Error(s.status());
    self->Cbor(200, EncodeShareSet(ShareNumbers(s->begin(), s->end())));
  });
}

void StorageServer::Call::AdviseCorrupt(bool mutable_share) {
  auto reason = DecodeCorruption(body);
  if (!reason.ok()) return Error(400, reason.status());
  srv().store_.AdviseCorrupt(mutable_share, si, shnum, std::move(reason).value(),
                             Guard<Status>([self = shared_from_this()](Status st) {
                               if (!st.ok()) return self->Error(st);
                               self->Empty(200);
                             }));
}

StorageServer::StorageServer(Loop& loop, store::ShareStore& store, StorageServerOptions options)
    : loop_(loop), store_(store), options_(std::move(options)), alive_(std::make_shared<bool>(true)) {
  const std::uint64_t per_upload = (options_.writes_in_flight + 1) * options_.write_piece_bytes;
  upload_slots_ = std::max<std::uint64_t>(2, options_.upload_buffer_bytes / std::max<std::uint64_t>(1, per_upload));
}

StorageServer::~StorageServer() { *alive_ = false; }

void StorageServer::Handle(std::shared_ptr<http::Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->ex = std::move(exchange);
  call->server = this;
  call->alive = alive_;
  Admission a = Admit(call->ex->request(), options_.swissnum);
  if (a.route) call->endpoint = a.route->name;
  if (a.http_status != 0) return call->Error(a.http_status, a.refusal);
  call->si = a.args.si;
  call->shnum = a.args.shnum;
  call->secrets = std::move(a.secrets);
  const Route::Handler handler = a.route->handler;
  if (a.route->body != BodyKind::kCbor) return (this->*handler)(call);
  call->ex->ReadWholeBody(options_.*(a.route->limit),
                          call->Guard<Result<std::string>>([call, handler](Result<std::string> body) {
                            if (!body.ok()) return;  // the HTTP server answered (413, 400, 408) or the peer left
                            call->srv().stats_.bytes_in += body->size();
                            call->body = std::move(body).value();
                            (call->srv().*handler)(call);
                          }));
}

}  // namespace cairn::gbs
