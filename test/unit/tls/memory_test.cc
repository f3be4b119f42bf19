// The memory a waiting TLS connection holds, with cairn's own records and with
// mbedTLS's: what 100 uploads behind a slow disk (test/integration/test_slow_disk.py)
// multiply by the number of connections. Real connections on 127.0.0.1, one
// loop, measured in the process's live heap bytes: the allocator's count
// (glibc's mallinfo2, or ASan's own), so memory a connection gave back is not
// counted, and ASan's quarantine and shadow are not either. (RssAnon, which
// test/integration/test_slow_disk.py measures on the release cairnd, means little
// under ASan: it holds freed memory in quarantine.)
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cairn/tls/client.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"

#if defined(__SANITIZE_ADDRESS__)
#define CAIRN_MEMORY_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAIRN_MEMORY_TEST_ASAN 1
#endif
#endif
#ifdef CAIRN_MEMORY_TEST_ASAN
// From the sanitizer runtime (GCC installs no header declaring it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#else
#include <malloc.h>
#endif

namespace cairn::tls {
namespace {

std::size_t LiveHeapBytes() {
#ifdef CAIRN_MEMORY_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

struct Figures {
  double live_per_conn = 0;
};

// N connections; each client (mbedTLS's records in both runs, so only the
// server's side differs) sends the first 160 KiB of an upload, in 16 KiB
// records; the server's application drops what it receives (the HTTP
// server would keep it, the same either way) and pauses reading after
// 96 KiB, as the HTTP server pauses at its high-water mark while the store
// waits for the disk. Then the loop settles and the heap is counted.
Figures WaitingConnections(bool own_records, int n) {
  Loop loop;
  auto id = GenerateIdentity();
  EXPECT_TRUE(id.ok());
  ServerOptions so;
  so.key_pem = id->key_pem;
  so.cert_pem = id->cert_pem;
  auto server_ctx = *Context::NewServer(so);
  server_ctx->set_own_records(own_records);
  auto client_ctx = *Context::NewClient();
  client_ctx->set_own_records(false);
  Listener listener(loop, server_ctx);
  Dialer dialer(loop, client_ctx);
  struct Server {
    std::shared_ptr<Connection> conn;
    std::size_t got = 0;
    bool paused = false;
  };
  std::vector<std::unique_ptr<Server>> servers;
  int paused = 0;
  EXPECT_TRUE(listener
                  .Start({},
                         [&](std::shared_ptr<Connection> c) {
                           servers.push_back(std::make_unique<Server>());
                           Server* s = servers.back().get();
                           s->conn = c;
                           c->Start(
                               [s, &paused](std::string d) {
                                 s->got += d.size();
                                 if (!s->paused && s->got >= 96 * 1024) {
                                   s->paused = true;
                                   ++paused;
                                   s->conn->PauseReading();
                                 }
                               },
                               [](Status) {});
                         })
                  .ok());
  std::string upload(160 * 1024, 'u');
  // A first connection warms what every connection shares (the kernel
  // choice, the DRBG, libuv's and the allocator's first blocks) and is
  // counted in the baseline.
  std::vector<std::shared_ptr<Connection>> clients;
  auto dial_one = [&]() {
    DialOptions o;
    o.host = "127.0.0.1";
    o.port = listener.port();
    o.spki_pin = *SpkiHashOfCertPem(id->cert_pem);
    dialer.Connect(o, [&](Result<std::shared_ptr<Connection>> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return;
      clients.push_back(*r);
      (*r)->Start([](std::string) {}, [](Status) {});
      (*r)->Write(upload);
    });
  };
  dial_one();
  EXPECT_TRUE(loop.RunUntil([&] { return paused == 1; }, 30000));
  loop.RunUntil([] { return false; }, 200);
  std::size_t live0 = LiveHeapBytes();
  for (int i = 0; i < n; ++i) dial_one();
  EXPECT_TRUE(loop.RunUntil([&] { return paused == n + 1; }, 60000));
  // Whatever was read before the pause is opened by the gate within a
  // few turns; then nothing moves until the application resumes.
  loop.RunUntil([] { return false; }, 300);
  std::size_t live1 = LiveHeapBytes();
  for (auto& s : servers) {
    EXPECT_GE(s->got, 96u * 1024);
    EXPECT_STREQ(s->conn->TEST_record_layer(), own_records ? "cairn" : "mbedtls");
  }
  Figures f;
  f.live_per_conn = (static_cast<double>(live1) - static_cast<double>(live0)) / n;
  for (auto& c : clients) c->Abort(Status::Cancelled("test over"));
  bool a = false, b = false;
  dialer.Close([&] { a = true; });
  listener.Close([&] { b = true; });
  EXPECT_TRUE(loop.RunUntil([&] { return a && b; }, 20000));
  return f;
}

// A connection with cairn's records holds no more than one with mbedTLS's
// while it waits (both ends are in this process; only the server's record
// layer differs between the two runs, so the difference is the server's).
TEST(TlsMemory, AWaitingConnectionHoldsNoMoreWithCairnsRecords) {
  const int n = 40;
  Figures mbed = WaitingConnections(false, n);
  Figures own = WaitingConnections(true, n);
  std::printf("{\"tls_memory\": {\"connections\": %d, \"live_per_conn_mbedtls\": %.0f, \"live_per_conn_cairn\": %.0f}}\n",
              n, mbed.live_per_conn, own.live_per_conn);
  EXPECT_LE(own.live_per_conn, mbed.live_per_conn);
}

}  // namespace
}  // namespace cairn::tls
