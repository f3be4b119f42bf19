// The fixture of the mutable-file operation tests (publish_test.cc,
// retrieve_test.cc, servermap_test.cc): several in-process GBS servers on
// one loop (test/support/grid_fixture.h), and helpers that create, publish
// and retrieve a file and check that each completion ran exactly once and
// never inside the call that started it; and one that runs a servermap
// update alone. Loop thread only.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/core/endian.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/placement.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/mutable/sdmf.h"
#include "mutable/servermap.h"
#include "support/grid_fixture.h"

namespace cairn::mutable_files {

using testing::Pattern;

// Not in an anonymous namespace: the three test files share one fixture
// type, so their tests stay in one suite, MutableTest.
class MutableTest : public testing::GridFixture {
 protected:
  // Runs the loop until `out` is set; checks the completion came once and
  // not inside the call that started it (`out` still empty right after it).
  template <typename T>
  Result<T> Await(std::optional<Result<T>>& out, const int& completions) {
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 120000));
    // A later turn must not bring a second completion.
    for (int i = 0; i < 5; ++i) loop.RunOnce();
    EXPECT_EQ(completions, 1);
    if (!out) return Status::Timeout("no completion");
    return std::move(*out);
  }

  NewKey Key() {
    std::optional<Result<NewKey>> out;
    int completions = 0;
    NewMutableKey(loop, format, [&](Result<NewKey> k) {
      ++completions;
      out.emplace(std::move(k));
    });
    auto key = Await(out, completions);
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return std::move(*key);
  }

  // The grid as Create, Put and Get use it: Grid(), with the lease seed of
  // each server in `tub_ids` replaced, as a server known by its
  // announcement (a Tahoe-LAFS node's tub id) would have it.
  std::vector<grid::GridServer> Servers() {
    std::vector<grid::GridServer> g = Grid();
    for (const auto& [i, tub] : tub_ids) g[i].lease_seed = tub;
    return g;
  }
  std::map<std::size_t, std::string> tub_ids;

  MutableOptions Options(std::uint32_t k, std::uint32_t n, std::uint32_t happy) {
    MutableOptions o;
    o.k = k;
    o.n = n;
    o.happy = happy;
    o.lease_secret = std::string(32, 'L');
    return o;
  }

  Result<PublishResult> Create(const NewKey& key, const std::string& data, MutableOptions o) {
    std::optional<Result<PublishResult>> out;
    int completions = 0;
    CreateMutable(loop, Servers(), key, data, std::move(o), Progress(), nullptr, [&](Result<PublishResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  Result<PublishResult> Put(const caps::Cap& cap, const std::string& data, MutableOptions o) {
    std::optional<Result<PublishResult>> out;
    int completions = 0;
    PublishMutable(loop, Servers(), cap, data, std::move(o), Progress(), nullptr, [&](Result<PublishResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  Result<PublishResult> Update(const caps::Cap& cap, std::uint64_t offset, const std::string& data, MutableOptions o) {
    std::optional<Result<PublishResult>> out;
    int completions = 0;
    UpdateMutable(loop, Servers(), cap, offset, data, std::move(o), Progress(), nullptr, [&](Result<PublishResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  Result<RetrieveResult> Get(const caps::Cap& cap) {
    std::optional<Result<RetrieveResult>> out;
    int completions = 0;
    RetrieveMutable(loop, Servers(), cap, Progress(), nullptr, [&](Result<RetrieveResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  // One servermap update of the file of `cap`, read as `format`.
  Result<Servermap> MapOnce(std::vector<grid::GridServer> grid, const caps::Cap& cap, MapMode mode,
                            caps::MutableFormat as) {
    MapRequest req;
    req.mode = mode;
    req.format = as;
    req.storage_index = *caps::StorageIndexOf(cap);
    req.fingerprint = cap.digest;
    req.writekey = mode == MapMode::kWrite ? cap.key : std::string();
    std::optional<Result<Servermap>> out;
    int completions = 0;
    UpdateServermap(loop, std::move(grid), std::move(req), nullptr, nullptr, [&](Result<Servermap> m) {
      ++completions;
      out.emplace(std::move(m));
    });
    return Await(out, completions);
  }

  Result<RetrieveResult> GetRange(const caps::Cap& cap, std::uint64_t offset, std::uint64_t size) {
    RetrieveOptions o;
    o.offset = offset;
    o.size = size;
    return GetWith(cap, std::move(o));
  }

  Result<RetrieveResult> GetWith(const caps::Cap& cap, RetrieveOptions o) {
    std::optional<Result<RetrieveResult>> out;
    int completions = 0;
    RetrieveMutable(loop, Servers(), cap, std::move(o), Progress(), nullptr, [&](Result<RetrieveResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  // Flips one byte inside the (first) block of share `shnum` on `server`:
  // only the full verification of a retrieve sees it.
  void CorruptBlock(std::size_t server, const NewKey& key, std::uint32_t shnum) {
    std::string share = ReadShare(server, key.writecap, shnum);
    auto header = FormatOfShare(share);
    ASSERT_TRUE(header.ok()) << header.status().ToString();
    auto h = (*header)->ParseHeader(share);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    // MDMF: past the segment's salt, into its block.
    std::uint64_t at = h->share_data.offset + (h->format == caps::MutableFormat::kMdmf ? kSaltSize : 0) + 7;
    Overwrite(server, key, shnum, at, std::string(1, static_cast<char>(share[at] ^ 0x20)));
  }

  // A file with seqnum 1 (`v1`, 2-of-6, one share per server) on six
  // servers, then seqnum 2 (`v2`) on three of them only: the holders of
  // shares 3-5 refuse its writes and keep seqnum 1 (`keep_v1`); their
  // shares of seqnum 2 move to the others.
  struct TwoVersionFile {
    NewKey key;
    std::string v1, v2;
    std::set<std::size_t> keep_v1;
    std::optional<PublishResult> put;
  };
  void MakeTwoVersions(unsigned seed, TwoVersionFile* f) {
    StartServers(6);
    f->key = Key();
    f->v1 = Pattern(30000, seed);
    f->v2 = Pattern(31000, seed + 1);
    const NewKey& key = f->key;
    std::set<std::size_t>* keep_v1 = &f->keep_v1;
    auto created = Create(key, f->v1, Options(2, 6, 6));
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    for (std::uint32_t sh : {3u, 4u, 5u}) keep_v1->insert(ServerIndex(created->placement.at(sh).front()));
    ASSERT_EQ(keep_v1->size(), 3u);
    for (std::size_t i : *keep_v1) {
      gbs::ClientOptions co;
      co.TEST_fault = [](std::string_view endpoint) {
        return endpoint == "read-test-write" ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
      };
      ReplaceClient(i, std::move(co));
    }
    auto r = Put(key.writecap, f->v2, Options(2, 6, 3));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->seqnum, 2u);
    f->put.emplace(std::move(*r));
  }

  grid::ProgressFn Progress() {
    return [this](const std::string& phase, std::uint64_t, std::uint64_t) { phases.insert(phase); };
  }

  std::size_t ServerIndex(const std::string& name) { return static_cast<std::size_t>(std::stoul(name.substr(1))); }

  // Share `shnum` as server `server` stores it.
  std::string ReadShare(std::size_t server, const caps::Cap& cap, std::uint32_t shnum) {
    std::string si = *caps::StorageIndexOf(cap);
    gbs::StorageIndex sidx{};
    std::copy(si.begin(), si.end(), sidx.begin());
    std::optional<Result<std::string>> out;
    servers[server]->client->ReadMutable(sidx, shnum, 0, 1 << 24, [&](Result<std::string> r) { out.emplace(r); });
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    EXPECT_TRUE(out->ok()) << out->status().ToString();
    return out->ok() ? **out : std::string();
  }

  // Overwrites bytes of a stored share through the server, with the file's
  // write enabler for that server and no test vector.
  void Overwrite(std::size_t server, const NewKey& key, std::uint32_t shnum, std::uint64_t offset,
                 const std::string& bytes) {
    caps::MutableKeys keys = caps::DeriveMutableKeys(key.privkey_pkcs8, key.pubkey_spki);
    gbs::StorageIndex sidx{};
    std::copy(keys.storage_index.begin(), keys.storage_index.end(), sidx.begin());
    gbs::RtwRequest req;
    req.shares[shnum].write.push_back(gbs::WriteVector{offset, bytes});
    std::string seed = *gbs::ServerSeed(servers[server]->nurl);
    std::optional<Result<gbs::RtwResponse>> out;
    servers[server]->client->ReadTestWrite(sidx, caps::WriteEnablerOf(keys.write_enabler_master, seed),
                                           {std::string(32, 'r'), std::string(32, 'c')}, req,
                                           [&](Result<gbs::RtwResponse> r) { out.emplace(std::move(r)); });
    ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    ASSERT_TRUE(out->ok()) << out->status().ToString();
    ASSERT_TRUE((*out)->success);
  }

  std::uint64_t Requests(std::size_t server, const std::string& endpoint) {
    std::uint64_t n = 0;
    for (const auto& [ep, by_status] : servers[server]->gbs->stats().requests) {
      if (ep != endpoint) continue;
      for (const auto& [status, count] : by_status) n += count;
    }
    return n;
  }

  // Every share 0..n-1 placed, each one parsing and verifying as stored.
  void ExpectPlacedAndValid(const PublishResult& r, const NewKey& key, std::uint32_t n) {
    ASSERT_EQ(r.placement.size(), n);
    for (std::uint32_t sh = 0; sh < n; ++sh) {
      ASSERT_TRUE(r.placement.count(sh)) << "share " << sh << " not placed";
      for (const std::string& name : r.placement.at(sh)) {
        const ShareFormat& f = FormatFor(key.writecap.format);
        auto share = f.ParseShare(ReadShare(ServerIndex(name), key.writecap, sh));
        ASSERT_TRUE(share.ok()) << share.status().ToString();
        EXPECT_EQ(share->header.seqnum, r.seqnum);
        EXPECT_EQ(share->header.n, n);
        Status st = f.VerifyShare(*share, sh, key.writecap.digest);
        EXPECT_TRUE(st.ok()) << "share " << sh << " on " << name << ": " << st.ToString();
      }
    }
  }

  std::set<std::string> phases;
  // The format of the files Key() makes.
  caps::MutableFormat format = caps::MutableFormat::kSdmf;
};

// The operation tests that must hold for both formats: the same engine,
// parameterised by the format (tests named .../SDMF and .../MDMF).
class MutableFormatTest : public MutableTest, public ::testing::WithParamInterface<caps::MutableFormat> {
 protected:
  void SetUp() override {
    MutableTest::SetUp();
    format = GetParam();
  }
};

inline std::string FormatName(const ::testing::TestParamInfo<caps::MutableFormat>& info) {
  return info.param == caps::MutableFormat::kMdmf ? "MDMF" : "SDMF";
}

}  // namespace cairn::mutable_files
