// Response heads. Loop thread only (pure functions).
#include "http/response.h"

namespace cairn::http {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

bool ApplicationMaySend(const Field& f) {
  if (f.name.empty()) return false;
  for (unsigned char c : f.name) {
    bool tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!tchar) return false;
  }
  for (char c : f.value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return !EqualsIgnoreCase(f.name, "Content-Length") && !EqualsIgnoreCase(f.name, "Transfer-Encoding") &&
         !EqualsIgnoreCase(f.name, "Connection");
}

std::string ResponseHead(int status, const std::vector<Field>& fields, std::string_view framing) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out += ReasonPhrase(status);
  out += "\r\n";
  for (const Field& f : fields) {
    out += f.name;
    out += ": ";
    out += f.value;
    out += "\r\n";
  }
  out += framing;
  out += "\r\n";
  return out;
}

}  // namespace cairn::http
