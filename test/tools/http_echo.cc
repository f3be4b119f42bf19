// Test tool: cairn's HTTP/1.1 server on 127.0.0.1 with a few routes, for
// interop tests with other HTTP clients (Python's http.client over ssl).
// Prints its port on stdout and exits after `--seconds S` (default 30).
//
//   http_echo KEY.pem CERT.pem [--seconds S] [--idle-ms N] [--request-ms N]
//             [--header-bytes N] [--max-headers N] [--max-connections N]
//
// Routes:
//   GET  /hello                 200 "hello\n"
//   PUT|POST /upload[?max=N][&pause=1]
//                               reads the body (limit N, default 1 MiB; with
//                               pause=1 it pauses after every piece and
//                               resumes a turn later) and answers
//                               "<bytes> <sha256 hex>\n"
//   PUT  /need-length           411 unless the body has a declared length
//   GET  /stream?bytes=N[&length=1]
//                               N bytes of (i % 251), streamed (chunked, or
//                               with Content-Length when length=1)
//   anything else               404
#include <mbedtls/sha256.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/http/server.h"
#include "cairn/tls/session.h"

namespace {

using namespace cairn;
using http::Exchange;

std::string ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The value of `key` in a query string "a=1&b=2", or "".
std::string QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

void Text(const std::shared_ptr<Exchange>& ex, int status, std::string body) {
  ex->Respond({status, {{"Content-Type", "text/plain"}}, std::move(body)});
}

struct Upload {
  mbedtls_sha256_context sha;
  std::uint64_t bytes = 0;
  Upload() {
    mbedtls_sha256_init(&sha);
    mbedtls_sha256_starts_ret(&sha, 0);
  }
  ~Upload() { mbedtls_sha256_free(&sha); }
};

void HandleUpload(Loop& loop, const std::shared_ptr<Exchange>& ex) {
  std::string max = QueryValue(ex->request().query(), "max");
  bool pause = QueryValue(ex->request().query(), "pause") == "1";
  http::BodyOptions options;
  options.max_bytes = max.empty() ? 1048576 : std::strtoull(max.c_str(), nullptr, 10);
  auto up = std::make_shared<Upload>();
  std::weak_ptr<Exchange> weak = ex;
  ex->ReadBody(
      options,
      [&loop, up, pause, weak](std::string piece) {
        up->bytes += piece.size();
        mbedtls_sha256_update_ret(&up->sha, reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
        if (!pause) return http::Flow::kMore;
        loop.Post([weak] {
          if (auto e = weak.lock()) e->ResumeBody();
        });
        return http::Flow::kPause;
      },
      [up, ex](Status st) {
        if (!st.ok()) return;  // the server answered already (413, 400, 408) or the client left
        unsigned char digest[32];
        mbedtls_sha256_finish_ret(&up->sha, digest);
        char hex[65];
        for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        Text(ex, 200, std::to_string(up->bytes) + " " + hex + "\n");
      });
}

// Writes `left` more pattern bytes from offset `at`, one 64 KiB piece per ready.
void StreamFrom(std::shared_ptr<Exchange> ex, std::uint64_t at, std::uint64_t left) {
  if (left == 0) {
    ex->EndResponse();
    return;
  }
  std::size_t n = left < 65536 ? static_cast<std::size_t>(left) : 65536;
  std::string piece(n, '\0');
  for (std::size_t i = 0; i < n; ++i) piece[i] = static_cast<char>((at + i) % 251);
  ex->WriteBody(std::move(piece), [ex, at, n, left](Status st) mutable {
    if (st.ok()) StreamFrom(std::move(ex), at + n, left - n);
  });
}

void Handle(Loop& loop, std::shared_ptr<Exchange> ex) {
  const http::Request& r = ex->request();
  std::string_view path = r.path();
  if (path == "/hello" && (r.method == "GET" || r.method == "HEAD")) {
    Text(ex, 200, "hello\n");
  } else if (path == "/upload" && (r.method == "PUT" || r.method == "POST")) {
    HandleUpload(loop, ex);
  } else if (path == "/need-length" && r.method == "PUT") {
    http::BodyOptions options;
    options.length_required = true;
    ex->ReadBody(
        options, [](std::string) { return http::Flow::kMore; },
        [ex](Status st) {
          if (st.ok()) Text(ex, 200, "ok\n");
        });
  } else if (path == "/stream" && r.method == "GET") {
    std::uint64_t bytes = std::strtoull(QueryValue(r.query(), "bytes").c_str(), nullptr, 10);
    std::optional<std::uint64_t> length;
    if (QueryValue(r.query(), "length") == "1") length = bytes;
    ex->StartResponse(200, {{"Content-Type", "application/octet-stream"}}, length);
    StreamFrom(std::move(ex), 0, bytes);
  } else {
    Text(ex, 404, "no such route\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: http_echo KEY.pem CERT.pem [--seconds S] [--idle-ms N] [--request-ms N] "
                         "[--header-bytes N] [--max-headers N] [--max-connections N]\n");
    return 2;
  }
  http::ServerOptions options;
  options.address = "127.0.0.1";
  int seconds = 30;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    std::uint64_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--seconds") seconds = static_cast<int>(v);
    else if (a == "--idle-ms") options.idle_ms = v;
    else if (a == "--request-ms") options.request_ms = v;
    else if (a == "--header-bytes") options.header_bytes = v;
    else if (a == "--max-headers") options.max_headers = v;
    else if (a == "--max-connections") options.max_connections = v;
    else {
      std::fprintf(stderr, "http_echo: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  auto ctx = tls::Context::NewServer({ReadFile(argv[1]), ReadFile(argv[2]), false});
  if (!ctx.ok()) {
    std::fprintf(stderr, "http_echo: %s\n", ctx.status().ToString().c_str());
    return 1;
  }
  Loop loop;
  http::Server server(loop, *ctx);
  Status st = server.Start(options, [&loop](std::shared_ptr<Exchange> ex) { Handle(loop, std::move(ex)); });
  int rc = 0;
  if (!st.ok()) {
    std::fprintf(stderr, "http_echo: %s\n", st.ToString().c_str());
    rc = 1;
  } else {
    std::printf("%u\n", server.port());
    std::fflush(stdout);
    loop.RunUntil([] { return false; }, static_cast<std::uint64_t>(seconds) * 1000);
  }
  bool closed = false;
  server.Close([&] { closed = true; });
  loop.RunUntil([&] { return closed; }, 5000);
  return rc;
}
