// Benchmark: the CPU work of an SDMF publish and retrieve (3-of-10), all
// of it run on the thread pool by the publisher and the retriever: per
// file, encode + sign + lay out the shares (publish) and decode
// (retrieve); per share, parse and verify a whole share (public key,
// RSA-PSS signature, block hash, chain) as the retriever does for each
// share it reads. JSON lines; one line per file size.
//
// Then the whole path end to end: connections made (TLS handshakes, one
// version request per server), then a 1 MiB file created, updated and read
// (3-of-10) across 10 in-process GBS servers (TLS on 127.0.0.1, each with
// its own share store in a temporary directory) that share the one loop
// with the client, as a node serving its own grid would. One JSON line per
// step with its wall time, the most loop-thread CPU one loop iteration
// took during the step (the stall it caused: measured here per iteration),
// and the loop's own LoopStats maxima since it started (most CPU in one
// iteration and in one drain of posted tasks).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/core/loop.h"
#include "cairn/crypto/random.h"
#include "cairn/crypto/rsa.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/server.h"
#include "cairn/grid/server.h"
#include "cairn/http/server.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/mutable/sdmf.h"
#include "cairn/mutable/share_format.h"
#include "cairn/store/store.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"

namespace {

using namespace cairn;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// One in-process storage server and the client that reaches it.
struct Node {
  std::unique_ptr<store::ShareStore> store;
  std::unique_ptr<gbs::StorageServer> server;
  std::unique_ptr<http::Server> http;
  std::unique_ptr<gbs::Client> client;
  gbs::Nurl nurl;
};

Status StartNode(Loop& loop, const std::shared_ptr<tls::Context>& client_ctx, const std::string& dir,
                 std::size_t index, Node& node) {
  std::filesystem::create_directories(dir);
  store::StoreOptions so;
  so.dir = dir;
  so.map_bytes = 64 << 20;
  so.map_max_bytes = 256 << 20;
  CAIRN_TRY_ASSIGN(node.store, store::ShareStore::Open(loop, so));
  CAIRN_TRY_ASSIGN(tls::Identity id, tls::GenerateIdentity());
  gbs::StorageServerOptions go;
  go.swissnum = "bench-swiss-" + std::to_string(index);
  go.application_version = "cairn/bench";
  node.server = std::make_unique<gbs::StorageServer>(loop, *node.store, go);
  tls::ServerOptions to;
  to.key_pem = id.key_pem;
  to.cert_pem = id.cert_pem;
  CAIRN_TRY_ASSIGN(auto server_ctx, tls::Context::NewServer(to));
  node.http = std::make_unique<http::Server>(loop, std::move(server_ctx));
  gbs::StorageServer* handler = node.server.get();
  CAIRN_TRY(node.http->Start(http::ServerOptions{},
                             [handler](std::shared_ptr<http::Exchange> ex) { handler->Handle(std::move(ex)); }));
  CAIRN_TRY_ASSIGN(node.nurl.spki_hash, tls::SpkiHashOfCertPem(id.cert_pem));
  node.nurl.host = "127.0.0.1";
  node.nurl.port = node.http->port();
  node.nurl.swissnum = go.swissnum;
  node.client = std::make_unique<gbs::Client>(loop, client_ctx, node.nurl);
  return Status::Ok();
}

void StopNode(Loop& loop, Node& node) {
  auto close = [&loop](auto& part) {
    if (!part) return;
    bool done = false;
    part->Close([&done] { done = true; });
    loop.RunUntil([&done] { return done; }, 20000);
  };
  close(node.http);
  node.server.reset();
  close(node.client);
  close(node.store);
}

std::uint64_t ThreadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

// The most loop-thread CPU one iteration took in the current step. The
// loop's own maxima cannot be reset, so a step is run one non-blocking
// iteration at a time and each is measured here (the wait spins: a bench
// only).
std::uint64_t step_max_cpu_us = 0;

bool RunMeasured(Loop& loop, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + std::chrono::minutes(5);
  while (!done()) {
    if (Clock::now() > deadline) return false;
    const std::uint64_t before = ThreadCpuUs();
    loop.RunOnce();
    step_max_cpu_us = std::max(step_max_cpu_us, ThreadCpuUs() - before);
  }
  return true;
}

template <typename T>
Result<T> Wait(Loop& loop, std::function<void(Callback<void(Result<T>)>)> start) {
  auto out = std::make_shared<std::optional<Result<T>>>();
  // A copy, not a move: GCC 12 at -O2 takes the destruction of a moved-from
  // Result<RetrieveResult> for freeing a non-heap object (a false positive).
  start([out](const Result<T>& r) { out->emplace(r); });
  if (!RunMeasured(loop, [&out] { return out->has_value(); })) return Status::Timeout("no completion");
  return std::move(**out);
}

int Complain(const std::string& what) {
  std::fprintf(stderr, "mutable_bench: %s\n", what.c_str());
  return 1;
}

void PrintStep(const char* step, double ms, const LoopStats& st) {
  std::printf(
      "{\"bench\":\"mutable_grid\",\"step\":\"%s\",\"bytes\":%zu,\"servers\":10,\"k\":3,\"n\":10,"
      "\"wall_ms\":%.1f,\"step_max_iteration_cpu_us\":%llu,\"loop_max_busy_cpu_us\":%llu,\"loop_max_drain_cpu_us\":%llu,"
      "\"loop_max_drain_tasks\":%llu,\"loop_max_busy_us\":%llu}\n",
      step, std::size_t{1} << 20, ms, static_cast<unsigned long long>(step_max_cpu_us),
      static_cast<unsigned long long>(st.max_busy_cpu_us),
      static_cast<unsigned long long>(st.max_drain_cpu_us), static_cast<unsigned long long>(st.max_drain_tasks),
      static_cast<unsigned long long>(st.max_busy_us));
  std::fflush(stdout);
}

// Create, update and read a 1 MiB file on 10 in-process servers.
int GridRun() {
  char tmpl[] = "/tmp/cairn-mutable-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return Complain("no temporary directory");
  const std::string root = tmpl;
  int rc = 0;
  {
    Loop loop;
    auto ctx = tls::Context::NewClient();
    if (!ctx.ok()) return Complain(ctx.status().ToString());
    std::vector<Node> nodes(10);
    std::vector<grid::GridServer> grid;
    for (std::size_t i = 0; i < nodes.size() && rc == 0; ++i) {
      Status st = StartNode(loop, *ctx, root + "/s" + std::to_string(i), i, nodes[i]);
      if (!st.ok()) rc = Complain("server " + std::to_string(i) + ": " + st.ToString());
      std::string seed = rc == 0 ? *gbs::ServerSeed(nodes[i].nurl) : std::string();
      if (rc == 0) grid.push_back(grid::GridServer{nodes[i].client.get(), seed, seed, "s" + std::to_string(i)});
    }
    mutable_files::MutableOptions o;
    o.k = 3;
    o.n = 10;
    o.happy = 7;
    o.lease_secret = std::string(32, 'L');
    auto key = Wait<mutable_files::NewKey>(loop, [&](auto done) { mutable_files::NewMutableKey(loop, std::move(done)); });
    if (rc == 0 && !key.ok()) rc = Complain("key: " + key.status().ToString());
    const std::string v1(std::size_t{1} << 20, 'a'), v2 = *crypto::RandomBytes(std::size_t{1} << 20);
    auto step = [&](const char* name, auto run) {
      if (rc != 0) return;
      auto t = Clock::now();
      step_max_cpu_us = 0;
      Status st = run();
      if (!st.ok()) {
        rc = Complain(std::string(name) + ": " + st.ToString());
        return;
      }
      PrintStep(name, MsSince(t), loop.stats());
    };
    // The TLS handshakes first, so that the steps after it show the
    // mutable work: every client asks its server for its version.
    step("connect", [&] {
      std::size_t answers = 0;
      Status first = Status::Ok();
      for (Node& node : nodes) {
        node.client->GetVersion([&](Result<gbs::Version> v) {
          if (!v.ok() && first.ok()) first = v.status();
          ++answers;
        });
      }
      if (!RunMeasured(loop, [&] { return answers == nodes.size(); })) return Status::Timeout("no versions");
      return first;
    });
    step("create", [&] {
      return Wait<mutable_files::PublishResult>(loop, [&](auto done) {
               mutable_files::CreateMutable(loop, grid, *key, v1, o, nullptr, nullptr, std::move(done));
             }).status();
    });
    step("publish", [&] {
      return Wait<mutable_files::PublishResult>(loop, [&](auto done) {
               mutable_files::PublishMutable(loop, grid, key->writecap, v2, o, nullptr, nullptr, std::move(done));
             }).status();
    });
    step("retrieve", [&] {
      auto got = Wait<mutable_files::RetrieveResult>(loop, [&](auto done) {
        mutable_files::RetrieveMutable(loop, grid, key->writecap, nullptr, nullptr, std::move(done));
      });
      if (!got.ok()) return got.status();
      return got->contents == v2 ? Status::Ok() : Status::Integrity("retrieve returned other contents");
    });
    for (Node& node : nodes) StopNode(loop, node);
  }
  std::filesystem::remove_all(root);
  return rc;
}

}  // namespace

int main() {
  auto key = crypto::RsaKey::Generate();
  if (!key.ok()) return std::fprintf(stderr, "mutable_bench: %s\n", key.status().ToString().c_str()), 1;
  const std::string priv = key->PrivatePkcs8Der(), pub = key->PublicSpkiDer();
  const caps::MutableKeys keys = caps::DeriveMutableKeys(priv, pub);
  const std::string encpriv = caps::CryptPrivateKey(keys.writekey, priv);
  const std::uint32_t k = 3, n = 10;
  for (std::size_t size : {std::size_t{1000}, std::size_t{100000}, std::size_t{1} << 20, std::size_t{8} << 20}) {
    std::string data(size, 'd');
    const int rounds = size > (1u << 20) ? 2 : 5;
    double publish_ms = 0, verify_ms = 0, decode_ms = 0;
    for (int r = 0; r < rounds; ++r) {
      auto start = Clock::now();
      auto enc = mutable_files::SdmfEncoding::Encode(keys.readkey, pub, encpriv, data, k, n, 1, *crypto::RandomBytes(16));
      auto sig = key->Sign(enc->signed_prefix());
      auto shares = enc->Shares(*sig);
      publish_ms += MsSince(start);
      // Read back through the format interface, as a retrieve does.
      const mutable_files::ShareFormat& format = mutable_files::SdmfFormat();
      std::map<std::uint32_t, mutable_files::MutableShare> parsed;
      for (std::uint32_t i = 0; i < k; ++i) {
        start = Clock::now();
        auto s = format.ParseShare((*shares)[i]);
        if (!s.ok() || !format.VerifyShare(*s, i, keys.fingerprint).ok()) return 1;
        verify_ms += MsSince(start);
        parsed.emplace(i, std::move(*s));
      }
      std::map<std::uint32_t, const mutable_files::MutableShare*> view;
      for (const auto& [i, s] : parsed) view[i] = &s;
      start = Clock::now();
      auto plain = format.Decode(view, keys.readkey);
      decode_ms += MsSince(start);
      if (!plain.ok() || *plain != data) return std::fprintf(stderr, "mutable_bench: round trip failed\n"), 1;
    }
    std::printf(
        "{\"bench\":\"mutable_sdmf\",\"bytes\":%zu,\"k\":%u,\"n\":%u,\"publish_ms\":%.2f,"
        "\"verify_share_ms\":%.3f,\"decode_ms\":%.2f}\n",
        size, k, n, publish_ms / rounds, verify_ms / (rounds * k), decode_ms / rounds);
    std::fflush(stdout);
  }
  return GridRun();
}
