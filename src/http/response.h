// Response heads: status lines, reason phrases and the checks on the
// application's header fields. Loop thread only (pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/http/request.h"

namespace cairn::http {

// "Not Found" for 404; "Unknown" for codes without a phrase here.
std::string_view ReasonPhrase(int status);
// True if `f` may be sent: a token name, a value without CR, LF or NUL, and
// not a header the server writes itself (Content-Length, Transfer-Encoding,
// Connection).
bool ApplicationMaySend(const Field& f);
// "HTTP/1.1 <status> <reason>\r\n", the fields, `framing` (complete lines),
// and the empty line.
std::string ResponseHead(int status, const std::vector<Field>& fields, std::string_view framing);

}  // namespace cairn::http
