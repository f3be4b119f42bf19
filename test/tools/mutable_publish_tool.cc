// mutable_publish_tool KEYFILE K N HAPPY OUTDIR NURL... < plaintext
//
// Publishes an SDMF file with cairn's publisher to the GBS servers of the
// NURLs: first a create (seqnum 1, other contents), then an update to the
// standard input (seqnum 2). Then reads every share back from a server that
// holds it and writes it to OUTDIR/<num>.share, and prints the write cap, so
// an interop test can check what the publisher really stored with code of
// its own. Exit 1 with a message on failure.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/file.h"
#include "cairn/core/loop.h"
#include "cairn/crypto/rsa.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/nurl.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/tls/session.h"

namespace {

using namespace cairn;

int Fail(const Status& st) {
  std::fprintf(stderr, "mutable_publish_tool: %s\n", st.ToString().c_str());
  return 1;
}

template <typename T>
Result<T> Wait(Loop& loop, std::optional<Result<T>>& out) {
  if (!loop.RunUntil([&] { return out.has_value(); }, 120000)) return Status::Timeout("no answer in 120 s");
  return std::move(*out);
}

int Run(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: mutable_publish_tool KEYFILE K N HAPPY OUTDIR NURL... < plaintext\n");
    return 2;
  }
  auto pem = ReadWholeFile(argv[1]);
  if (!pem.ok()) return Fail(pem.status());
  auto rsa = crypto::RsaKey::ParsePrivate(*pem);
  if (!rsa.ok()) return Fail(rsa.status());
  mutable_files::NewKey key;
  key.privkey_pkcs8 = rsa->PrivatePkcs8Der();
  key.pubkey_spki = rsa->PublicSpkiDer();
  caps::MutableKeys keys = caps::DeriveMutableKeys(key.privkey_pkcs8, key.pubkey_spki);
  key.writecap = caps::MutableWriteCap(keys, caps::MutableFormat::kSdmf);
  mutable_files::MutableOptions options;
  options.k = static_cast<std::uint32_t>(std::stoul(argv[2]));
  options.n = static_cast<std::uint32_t>(std::stoul(argv[3]));
  options.happy = static_cast<std::uint32_t>(std::stoul(argv[4]));
  options.lease_secret = std::string(32, 'T');
  const std::string outdir = argv[5];
  std::string plaintext(std::istreambuf_iterator<char>(std::cin), {});

  Loop loop;
  auto ctx = tls::Context::NewClient();
  if (!ctx.ok()) return Fail(ctx.status());
  std::vector<std::unique_ptr<gbs::Client>> clients;
  std::vector<grid::GridServer> grid;
  for (int i = 6; i < argc; ++i) {
    auto nurl = gbs::ParseNurl(argv[i]);
    if (!nurl.ok()) return Fail(nurl.status());
    auto seed = gbs::ServerSeed(*nurl);
    if (!seed.ok()) return Fail(seed.status());
    clients.push_back(std::make_unique<gbs::Client>(loop, *ctx, *nurl));
    grid.push_back(grid::GridServer{clients.back().get(), *seed, *seed, "server" + std::to_string(i - 6)});
  }
  auto close_all = [&] {
    for (auto& c : clients) {
      bool closed = false;
      c->Close([&] { closed = true; });
      (void)loop.RunUntil([&] { return closed; }, 20000);
    }
  };

  std::optional<Result<mutable_files::PublishResult>> created, updated;
  mutable_files::CreateMutable(loop, grid, key, "the first version", options, nullptr, nullptr,
                               [&](Result<mutable_files::PublishResult> r) { created.emplace(std::move(r)); });
  auto c = Wait(loop, created);
  if (!c.ok()) return close_all(), Fail(c.status().WithContext("create"));
  mutable_files::PublishMutable(loop, grid, key.writecap, plaintext, options, nullptr, nullptr,
                                [&](Result<mutable_files::PublishResult> r) { updated.emplace(std::move(r)); });
  auto u = Wait(loop, updated);
  if (!u.ok()) return close_all(), Fail(u.status().WithContext("update"));

  gbs::StorageIndex si{};
  std::copy(keys.storage_index.begin(), keys.storage_index.end(), si.begin());
  for (const auto& [shnum, names] : u->placement) {
    std::size_t server = static_cast<std::size_t>(std::stoul(names.front().substr(6)));
    std::optional<Result<std::string>> bytes;
    clients[server]->ReadMutable(si, shnum, 0, 16ull << 20, [&](Result<std::string> r) { bytes.emplace(std::move(r)); });
    auto share = Wait(loop, bytes);
    if (!share.ok()) return close_all(), Fail(share.status().WithContext("reading share " + std::to_string(shnum)));
    std::ofstream f(outdir + "/" + std::to_string(shnum) + ".share", std::ios::binary);
    f.write(share->data(), static_cast<std::streamsize>(share->size()));
    if (!f) return close_all(), Fail(Status::IoError("cannot write " + outdir));
  }
  close_all();
  std::printf("%s\n", caps::FormatCap(key.writecap).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
