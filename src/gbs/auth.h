// The front door of the GBS server: everything decided about a request
// before its endpoint's handler runs, from the request head and the endpoint
// table alone, in the order docs/gbs.md gives: the swissnum (401), the route
// (404, 405), the media types (415, 406), the X-Tahoe-Authorization secrets
// (400). A pure function: any thread.
#pragma once

#include <string_view>

#include "cairn/core/status.h"
#include "cairn/gbs/fields.h"
#include "cairn/http/request.h"
#include "gbs/routes.h"

namespace cairn::gbs {

struct Admission {
  // 0: admitted, the handler runs. Otherwise the HTTP status to answer
  // with, and `refusal` the error for the body.
  int http_status = 0;
  Status refusal;
  // The row, once the path and method matched (also when a later check
  // refused the request, so that it is counted under the endpoint's name).
  const Route* route = nullptr;
  RouteArgs args;
  Secrets secrets;  // the route's secrets, when admitted
};

// Decides whether `request` reaches a handler of a server whose swissnum is
// `swissnum`. Nothing else is looked at for a request without the right
// Authorization.
Admission Admit(const http::Request& request, std::string_view swissnum);

}  // namespace cairn::gbs
