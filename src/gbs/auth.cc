// The GBS server's checks before a handler runs (see auth.h). Pure
// functions: any thread.
#include "gbs/auth.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace cairn::gbs {
namespace {

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

Admission Refuse(Admission a, int http_status, Status why) {
  a.http_status = http_status;
  a.refusal = std::move(why);
  return a;
}

}  // namespace

Admission Admit(const http::Request& req, std::string_view swissnum) {
  Admission a;
  // The swissnum first: nothing else is looked at for a stranger.
  const std::string* auth = req.Header("Authorization");
  if (!auth || !AuthorizationMatches(*auth, swissnum)) {
    return Refuse(std::move(a), 401, Status::Unauthenticated("missing or wrong Authorization"));
  }
  Result<RouteMatch> match = MatchRoute(req.method, req.path());
  if (!match.ok()) return Refuse(std::move(a), HttpStatusOf(match.status()), match.status());
  a.route = match->route;
  a.args = match->args;
  if (a.route->body == BodyKind::kCbor) {
    const std::string* ct = req.Header("Content-Type");
    if (ct && MediaType(*ct) != "application/cbor") {
      return Refuse(std::move(a), 415, Status::InvalidArgument("request bodies are application/cbor"));
    }
  }
  if (!AcceptsCbor(req)) return Refuse(std::move(a), 406, Status::InvalidArgument("responses are application/cbor"));
  Result<Secrets> secrets = ParseSecrets(req.HeaderValues("X-Tahoe-Authorization"), a.route->secrets);
  if (!secrets.ok()) return Refuse(std::move(a), 400, secrets.status());
  a.secrets = std::move(secrets).value();
  return a;
}

}  // namespace cairn::gbs
