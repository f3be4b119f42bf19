// Test tool: either end of a TLS connection built from cairn's tls layer,
// for interop tests with other TLS stacks (Python's ssl, i.e. OpenSSL) in
// both roles. One connection, then it exits. Prints, on stdout, one JSON
// line at the end: the record layer the connection used ("cairn" or
// "mbedtls"), the suite, the bytes received and their SHA-256 (hex), and how
// the connection ended ("ok" for close_notify, else the error).
//
//   tls_peer server KEY.pem CERT.pem [--chacha] [--own 0|1] [--echo]
//       prints its port first (one line); without --echo it only reads.
//   tls_peer client PORT PIN [--own 0|1] [--send N] [--close-first]
//       sends N bytes (byte i is i % 251), then reads until the server's
//       close_notify; with --close-first it closes (close_notify) after
//       sending instead.
// --seconds S bounds the run (default 60). Exit code 0 when the connection
// ended cleanly.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/crypto/hash.h"
#include "cairn/tls/client.h"
#include "cairn/tls/server.h"

namespace {

using namespace cairn;

std::string ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

struct Run {
  std::string received;
  std::string layer;
  bool ended = false;
  Status end;
};

void Report(const Run& r) {
  std::printf(
      "{\"layer\": \"%s\", \"bytes\": %zu, \"sha256\": \"%s\", "
      "\"end\": \"%s\"}\n",
      r.layer.c_str(), r.received.size(), Hex(crypto::Sha256(r.received)).c_str(),
      r.end.ok() ? "ok" : r.end.ToString().c_str());
  std::fflush(stdout);
}

int Usage() {
  std::fprintf(stderr,
               "usage: tls_peer server KEY.pem CERT.pem [--chacha] "
               "[--own 0|1] [--echo] [--seconds S]\n"
               "       tls_peer client PORT PIN [--own 0|1] [--send N] "
               "[--close-first] [--seconds S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Usage();
  std::string role = argv[1];
  bool chacha = false, echo = false, close_first = false;
  int own = -1;
  std::uint64_t seconds = 60, send = 0;
  for (int i = 4; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--chacha") {
      chacha = true;
    } else if (a == "--echo") {
      echo = true;
    } else if (a == "--close-first") {
      close_first = true;
    } else if (a == "--own" && i + 1 < argc) {
      own = std::atoi(argv[++i]);
    } else if (a == "--send" && i + 1 < argc) {
      send = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return Usage();
    }
  }
  Loop loop;
  Run run;
  std::shared_ptr<tls::Connection> conn;
  auto start = [&](std::shared_ptr<tls::Connection> c) {
    conn = c;
    run.layer = c->TEST_record_layer();
    std::weak_ptr<tls::Connection> weak = c;
    c->Start(
        [&run, weak, echo](std::string data) {
          if (echo) {
            if (auto cc = weak.lock()) cc->Write(data);
          }
          run.received += data;
        },
        [&run](Status why) {
          run.end = why;
          run.ended = true;
        });
  };

  if (role == "server") {
    tls::ServerOptions opts{ReadFile(argv[2]), ReadFile(argv[3]), chacha};
    auto ctx = tls::Context::NewServer(opts);
    if (!ctx.ok()) {
      std::fprintf(stderr, "tls_peer: %s\n", ctx.status().ToString().c_str());
      return 1;
    }
    if (own >= 0) (*ctx)->set_own_records(own != 0);
    tls::Listener listener(loop, *ctx);
    Status st = listener.Start({"127.0.0.1", 0, 10000, 4}, [&](std::shared_ptr<tls::Connection> c) {
      if (!conn) start(c);
    });
    if (st.ok()) {
      std::printf("%u\n", listener.port());
      std::fflush(stdout);
      loop.RunUntil([&] { return run.ended; }, seconds * 1000);
    } else {
      std::fprintf(stderr, "tls_peer: %s\n", st.ToString().c_str());
    }
    if (!run.ended) run.end = Status::Timeout("no end");
    conn.reset();
    bool closed = false;
    listener.Close([&] { closed = true; });
    loop.RunUntil([&] { return closed; }, 5000);
    Report(run);
    return st.ok() && run.end.ok() ? 0 : 1;
  }

  if (role != "client") return Usage();
  auto ctx = tls::Context::NewClient();
  if (!ctx.ok()) return 1;
  if (own >= 0) (*ctx)->set_own_records(own != 0);
  tls::Dialer dialer(loop, *ctx);
  tls::DialOptions d;
  d.host = "127.0.0.1";
  d.port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  d.spki_pin = argv[3];
  Status dial;
  bool sent = false;
  dialer.Connect(d, [&](Result<std::shared_ptr<tls::Connection>> r) {
    if (!r.ok()) {
      dial = r.status();
      run.end = r.status();
      run.ended = true;
      return;
    }
    start(*r);
    auto body = std::make_shared<std::string>(send, '\0');
    for (std::uint64_t i = 0; i < send; ++i) (*body)[i] = static_cast<char>(i % 251);
    conn->Write(body, 0, body->size(), [&sent](Status) { sent = true; });
    if (close_first) conn->Close();
  });
  loop.RunUntil([&] { return run.ended; }, seconds * 1000);
  if (!run.ended) run.end = Status::Timeout("no end");
  if (conn && conn->open()) conn->Abort(Status::Cancelled("done"));
  conn.reset();
  bool closed = false;
  dialer.Close([&] { closed = true; });
  loop.RunUntil([&] { return closed; }, 5000);
  Report(run);
  return run.end.ok() ? 0 : 1;
}
