// Test tool: a TLS echo server on 127.0.0.1 built from cairn's tls layer, for
// interop tests with other TLS stacks (Python's ssl). Prints its port on
// stdout, echoes every byte back, and exits after serving `--connections N`
// connections or after `--seconds S` (default 30), whichever comes first.
//
//   tls_echo KEY.pem CERT.pem [--chacha] [--connections N] [--seconds S]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/tls/server.h"

namespace {

std::string ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn;
  if (argc < 3) {
    std::fprintf(stderr, "usage: tls_echo KEY.pem CERT.pem [--chacha] [--connections N] [--seconds S]\n");
    return 2;
  }
  tls::ServerOptions opts{ReadFile(argv[1]), ReadFile(argv[2]), false};
  int max_connections = 1, seconds = 30;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--chacha") opts.prefer_chacha = true;
    else if (a == "--connections" && i + 1 < argc) max_connections = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atoi(argv[++i]);
  }
  auto ctx = tls::Context::NewServer(opts);
  if (!ctx.ok()) {
    std::fprintf(stderr, "tls_echo: %s\n", ctx.status().ToString().c_str());
    return 1;
  }
  Loop loop;
  tls::Listener listener(loop, *ctx);
  int ended = 0;
  Status st = listener.Start({"127.0.0.1", 0, 5000, 16}, [&](std::shared_ptr<tls::Connection> c) {
    std::weak_ptr<tls::Connection> weak = c;
    c->Start(
        [weak](std::string data) {
          if (auto conn = weak.lock()) conn->Write(std::move(data));
        },
        [&ended, c](Status why) {
          if (!why.ok()) std::fprintf(stderr, "tls_echo: connection ended: %s\n", why.ToString().c_str());
          ++ended;
        });
  });
  if (!st.ok()) {
    std::fprintf(stderr, "tls_echo: %s\n", st.ToString().c_str());
    bool closed = false;
    listener.Close([&] { closed = true; });
    loop.RunUntil([&] { return closed; }, 5000);
    return 1;
  }
  std::printf("%u\n", listener.port());
  std::fflush(stdout);
  loop.RunUntil([&] { return ended >= max_connections; }, static_cast<std::uint64_t>(seconds) * 1000);
  bool closed = false;
  listener.Close([&] { closed = true; });
  loop.RunUntil([&] { return closed; }, 5000);
  return ended >= max_connections ? 0 : 1;
}
