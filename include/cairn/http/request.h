// An HTTP/1.1 request head as the server parsed it: method, target, version
// and header fields, with the framing facts the parser derived from them.
// Plain data; any thread (one object is used by one thread at a time).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::http {

// One header field line, name as the client spelled it, value without the
// surrounding whitespace.
struct Field {
  std::string name;
  std::string value;
};

// True if `a` and `b` are equal ignoring ASCII case (header names, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // case-sensitive token, e.g. "GET"
  std::string target;  // origin-form as sent: path and optional "?query"
  int version_minor = 1;  // HTTP/1.<minor>: 0 or 1
  std::vector<Field> headers;  // in arrival order, duplicates kept

  // Framing, derived by the parser from the headers.
  std::optional<std::uint64_t> content_length;  // Content-Length, if sent
  bool chunked = false;          // Transfer-Encoding: chunked
  bool keep_alive = true;        // after Connection and the version
  bool expect_continue = false;  // Expect: 100-continue

  // The target before '?', not percent-decoded.
  std::string_view path() const;
  // The target after the first '?', empty if none.
  std::string_view query() const;
  // The value of the first header named `name` (ASCII case-insensitive), or
  // nullptr. The pointer is valid while this Request is unchanged.
  const std::string* Header(std::string_view name) const;
  // Every value of header `name`, in arrival order.
  std::vector<std::string_view> HeaderValues(std::string_view name) const;
  // True if the request carries a body framing (Content-Length or chunked).
  bool has_body() const { return chunked || (content_length && *content_length > 0); }
};

}  // namespace cairn::http
