// TLS handshake cost: client and server sessions paired in memory (no
// sockets), the time each side spends inside Session::Handshake, per
// handshake. The server's share is what one new connection costs cairnd's
// loop thread. Also names the ECDHE group the pair agreed on, from the size
// of the server's key exchange. Then the record layer of one established
// session pair: MB/s of application data through Session::Write on the
// sender and Session::Feed + Session::Read on the receiver, each side timed
// alone, for the suite each server preference negotiates: the receive
// figure is what one upload stream costs cairnd's loop thread in TLS alone.
// Each suite's stream is measured through both record layers behind the
// connection's seam: mbedTLS's ("mbedtls") and cairn's own ("cairn",
// src/tls/own_records.cc, with the AEAD kernel it chose). JSON lines.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"
#include "tls/own_records.h"

using namespace cairn;

namespace {

using Clock = std::chrono::steady_clock;

struct Costs {
  double server_s = 0, client_s = 0;
  std::size_t server_first_flight = 0;  // ServerHello..ServerHelloDone bytes
};

// One full handshake; false if it failed.
bool Handshake(const std::shared_ptr<tls::Context>& sctx, const std::shared_ptr<tls::Context>& cctx,
               const std::string& pin, Costs* costs) {
  auto server = tls::Session::NewServer(sctx);
  auto client = tls::Session::NewClient(cctx, pin);
  if (!server.ok() || !client.ok()) return false;
  bool sdone = false, cdone = false;
  bool first = true;
  for (int round = 0; round < 100 && !(sdone && cdone); ++round) {
    auto t0 = Clock::now();
    if (!(*client)->Handshake(&cdone).ok()) return false;
    auto t1 = Clock::now();
    costs->client_s += std::chrono::duration<double>(t1 - t0).count();
    (*server)->Feed((*client)->TakeOutgoing());
    t0 = Clock::now();
    if (!(*server)->Handshake(&sdone).ok()) return false;
    t1 = Clock::now();
    costs->server_s += std::chrono::duration<double>(t1 - t0).count();
    std::string out = (*server)->TakeOutgoing();
    if (first && !out.empty()) {
      costs->server_first_flight = out.size();
      first = false;
    }
    (*client)->Feed(out);
  }
  return sdone && cdone;
}

// Sends `total` bytes of application data from `from` to `to` in 1 MiB
// writes (as a GBS client sends a PATCH body); false on any failure.
bool Stream(tls::RecordLayer& from, tls::RecordLayer& to, std::size_t total, double* send_s, double* recv_s) {
  const std::string chunk(1 << 20, 'd');
  std::string got;
  std::size_t received = 0;
  for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
    auto t0 = Clock::now();
    if (!from.Seal(chunk).ok()) return false;
    std::string wire = from.TakeOutgoing();
    auto t1 = Clock::now();
    to.Feed(wire);
    bool eof = false;
    got.clear();
    if (!to.Open(&got, &eof).ok() || eof) return false;
    auto t2 = Clock::now();
    received += got.size();
    *send_s += std::chrono::duration<double>(t1 - t0).count();
    *recv_s += std::chrono::duration<double>(t2 - t1).count();
  }
  return received == total;
}

}  // namespace

int main() {
  auto id = tls::GenerateIdentity();
  if (!id.ok()) {
    std::fprintf(stderr, "tls_bench: %s\n", id.status().ToString().c_str());
    return 1;
  }
  std::string pin = *tls::SpkiHashOfCertPem(id->cert_pem);
  auto cctx = tls::Context::NewClient();
  if (!cctx.ok()) return 1;
  for (bool chacha : {false, true}) {
    auto sctx = tls::Context::NewServer({id->key_pem, id->cert_pem, chacha});
    if (!sctx.ok()) return 1;
    const int kRounds = 200;
    Costs c;
    Handshake(*sctx, *cctx, pin, &c);  // warm up
    c = Costs{};
    for (int i = 0; i < kRounds; ++i) {
      if (!Handshake(*sctx, *cctx, pin, &c)) {
        std::fprintf(stderr, "tls_bench: a handshake failed\n");
        return 1;
      }
    }
    std::printf("{\"bench\": \"tls_handshake\", \"server_prefers\": \"%s\", \"handshakes\": %d, "
                "\"server_ms_each\": %.3f, \"client_ms_each\": %.3f, \"server_first_flight_bytes\": %zu}\n",
                chacha ? "chacha20-poly1305" : "aes-gcm", kRounds, c.server_s * 1000 / kRounds,
                c.client_s * 1000 / kRounds, c.server_first_flight);

    // The record layer: one session pair, 64 MiB client to server, through
    // mbedTLS's records and then cairn's.
    for (bool own : {false, true}) {
      (*sctx)->set_own_records(own);
      (*cctx)->set_own_records(own);
      auto server = tls::Session::NewServer(*sctx);
      auto client = tls::Session::NewClient(*cctx, pin);
      if (!server.ok() || !client.ok()) return 1;
      bool sdone = false, cdone = false;
      for (int round = 0; round < 100 && !(sdone && cdone); ++round) {
        if (!(*client)->Handshake(&cdone).ok()) return 1;
        (*server)->Feed((*client)->TakeOutgoing());
        if (!(*server)->Handshake(&sdone).ok()) return 1;
        (*client)->Feed((*server)->TakeOutgoing());
      }
      if (!sdone || !cdone) return 1;
      auto server_records = tls::NewRecordLayer(**server);
      auto client_records = tls::NewRecordLayer(**client);
      std::string kernel = "mbedtls";
      tls::RecordKeys keys;
      if (own && (*server)->ExportRecordKeys(&keys).ok()) {
        auto aead = crypto::NewAead(keys.algorithm, keys.write_key);
        if (aead.ok()) kernel = (*aead)->kernel();
      }
      const std::size_t kTotal = 64 << 20;
      double send_s = 0, recv_s = 0;
      if (!Stream(*client_records, *server_records, kTotal, &send_s, &recv_s)) {
        std::fprintf(stderr, "tls_bench: streaming over a session pair failed\n");
        return 1;
      }
      std::printf("{\"bench\": \"tls_record_stream\", \"suite\": \"%s\", \"records\": \"%s\", \"kernel\": \"%s\", "
                  "\"bytes\": %zu, \"write_bytes\": %d, \"send_mb_per_sec\": %.1f, \"receive_mb_per_sec\": %.1f}\n",
                  (*server)->ciphersuite().c_str(), server_records->name(), kernel.c_str(), kTotal, 1 << 20,
                  kTotal / send_s / 1e6, kTotal / recv_s / 1e6);
      std::fflush(stdout);
    }
  }
  return 0;
}
