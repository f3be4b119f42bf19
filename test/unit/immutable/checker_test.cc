// CheckImmutable and RepairImmutable against in-process GBS servers, with
// shares written by hand (the encoder's, placed on chosen servers): exact
// counts for missing shares, a corrupt block that a plain check believes
// and verify catches (advisory sent), repair of missing and corrupt shares
// (the file reads back, the check after it is healthy), rebalancing of
// crowded shares to the configured happiness, an unrecoverable file left
// untouched, a LIT cap, and completions never inside the call.
#include "cairn/immutable/checker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cairn/immutable/chk.h"
#include "cairn/immutable/repairer.h"
#include "unit/immutable/transfer_fixture.h"

namespace cairn::immutable {
namespace {

using testing::Pattern;

class CheckerTest : public TransferFixture {
 protected:
  // Encodes `data` with a fixed key into n shares (k-of-n, `segsize`).
  void Encode(const std::string& data, std::uint32_t k, std::uint32_t n, std::uint64_t segsize) {
    ChkParams p{k, n, segsize};
    auto enc = ChkEncoder::Create(std::string(16, 'K'), p, data.size());
    ASSERT_TRUE(enc.ok());
    shares_.assign(n, enc->ShareHeader());
    for (std::uint64_t off = 0; off < data.size(); off += enc->layout().segment_size) {
      auto blocks = enc->EncodeSegment(data.substr(off, enc->layout().segment_size));
      ASSERT_TRUE(blocks.ok());
      for (std::uint32_t i = 0; i < n; ++i) shares_[i] += (*blocks)[i];
    }
    ASSERT_TRUE(enc->Finish().ok());
    for (std::uint32_t i = 0; i < n; ++i) shares_[i] += enc->ShareTrailer(i);
    cap_ = enc->Cap();
    layout_ = enc->layout();
    std::memcpy(si_.data(), enc->storage_index().data(), 16);
  }

  // Stores share `sh` (as it is in shares_) on server `server`.
  void Place(std::size_t server, std::uint32_t sh) {
    std::optional<Status> done;
    gbs::Client* c = servers[server]->client.get();
    const std::string& bytes = shares_[sh];
    gbs::StorageIndex si = si_;
    c->Allocate(si, "upload-secret", {std::string(32, 'r'), std::string(32, 'c')}, {{sh}, bytes.size()},
                [&, c, si, sh](Result<gbs::AllocateResponse> r) {
                  if (!r.ok()) return done.emplace(r.status()), void();
                  c->WriteChunk(si, sh, "upload-secret", 0, bytes,
                                [&](Result<gbs::WriteResult> w) { done.emplace(w.ok() ? Status() : w.status()); });
                });
    ASSERT_TRUE(loop.RunUntil([&] { return done.has_value(); }, 20000));
    ASSERT_TRUE(done->ok()) << done->ToString();
  }

  Result<grid::CheckResults> Check(bool verify, std::uint32_t happy = 3) {
    CheckOptions o;
    o.verify = verify;
    o.happy = happy;
    std::optional<Result<grid::CheckResults>> out;
    int completions = 0;
    CheckImmutable(loop, Grid(), cap_, o, nullptr, nullptr, [&](Result<grid::CheckResults> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    EXPECT_EQ(completions, 0) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
    RunSomeMoreTurns();
    EXPECT_EQ(completions, 1);
    return std::move(*out);
  }

  Result<RepairResult> Repair(const grid::CheckResults& pre, std::uint32_t happy, bool verify) {
    RepairOptions o;
    o.spool_path = root + "/repair-spool";
    o.happy = happy;
    o.lease_secret = std::string(32, 'L');
    o.verify = verify;
    std::optional<Result<RepairResult>> out;
    RepairImmutable(loop, Grid(), cap_, pre, o, nullptr, nullptr,
                    [&](Result<RepairResult> r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
    return std::move(*out);
  }

  // The share numbers each server lists.
  std::vector<std::set<std::uint32_t>> Listing() {
    std::vector<std::set<std::uint32_t>> out(servers.size());
    for (std::size_t i = 0; i < servers.size(); ++i) {
      std::optional<Result<gbs::ShareNumbers>> got;
      servers[i]->client->ListImmutable(si_, [&](Result<gbs::ShareNumbers> r) { got.emplace(std::move(r)); });
      EXPECT_TRUE(loop.RunUntil([&] { return got.has_value(); }, 20000));
      if (got->ok()) out[i].insert((*got)->begin(), (*got)->end());
    }
    return out;
  }

  bool Advised(std::size_t server) {
    for (const auto& [endpoint, by_status] : servers[server]->gbs->stats().requests) {
      if (endpoint.find("corrupt") != std::string::npos) return true;
    }
    return false;
  }

  std::vector<std::string> shares_;
  caps::Cap cap_;
  ChkLayout layout_;
  gbs::StorageIndex si_{};
};

TEST_F(CheckerTest, LiteralIsHealthyAndBadCapFailsOnALaterTurn) {
  StartServers(1);
  auto lit = caps::ParseCap("URI:LIT:nbswy3dp");
  ASSERT_TRUE(lit.ok());
  cap_ = *lit;
  auto r = Check(false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->healthy);
  EXPECT_TRUE(r->literal);
  cap_.kind = caps::CapKind::kMutableRead;
  auto bad = Check(false);
  EXPECT_EQ(bad.status().code(), Code::kBadCap);
}

// Shares 0..2 of a 2-of-4 file on three of five servers: exact counts.
TEST_F(CheckerTest, MissingSharesGiveExactCounts) {
  StartServers(5);
  Encode(Pattern(20000, 1), 2, 4, 4096);
  for (std::uint32_t sh = 0; sh < 3; ++sh) Place(sh, sh);
  auto r = Check(false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->healthy);
  EXPECT_TRUE(r->recoverable);
  EXPECT_EQ(r->shares_good, 3u);
  EXPECT_EQ(r->good_share_hosts, 3u);
  EXPECT_EQ(r->servers_responding.size(), 5u);
  EXPECT_EQ(r->k, 2u);
  EXPECT_EQ(r->n, 4u);
  EXPECT_EQ(r->summary, "Not Healthy: 3 shares (enc 2-of-4)");
  // A verify of the same shares finds them all good.
  auto v = Check(true);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->shares_good, 3u);
  EXPECT_TRUE(v->corrupt.empty());
}

TEST_F(CheckerTest, VerifyCatchesACorruptBlockThatCheckBelieves) {
  StartServers(4);
  Encode(Pattern(20000, 2), 2, 4, 4096);
  // Share 1's third block has a flipped bit.
  shares_[1][layout_.header_size + 2 * layout_.block_size + 7] ^= 0x10;
  for (std::uint32_t sh = 0; sh < 4; ++sh) Place(sh, sh);
  auto plain = Check(false);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->healthy);
  EXPECT_FALSE(Advised(1));
  auto v = Check(true);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_FALSE(v->healthy);
  EXPECT_EQ(v->shares_good, 3u);
  ASSERT_EQ(v->corrupt.size(), 1u);
  EXPECT_EQ(v->corrupt[0].server, "s1");
  EXPECT_EQ(v->corrupt[0].shnum, 1u);
  EXPECT_NE(v->corrupt[0].reason.find("block 2"), std::string::npos) << v->corrupt[0].reason;
  EXPECT_TRUE(Advised(1));
  EXPECT_FALSE(Advised(0));
}

TEST_F(CheckerTest, RepairRestoresMissingShares) {
  StartServers(5);
  const std::string data = Pattern(30000, 3);
  Encode(data, 2, 4, 4096);
  Place(0, 0);
  Place(1, 3);
  auto pre = Check(false);
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(pre->shares_good, 2u);
  auto rep = Repair(*pre, 3, false);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->attempted);
  EXPECT_TRUE(rep->successful) << rep->error;
  EXPECT_EQ(rep->shares_uploaded, 2u);
  EXPECT_TRUE(rep->post.healthy);
  EXPECT_GE(rep->post.happiness, 3u);
  // Regenerated shares are the encoder's bytes, and the file reads back.
  auto listing = Listing();
  for (std::size_t s = 0; s < servers.size(); ++s) {
    for (std::uint32_t sh : listing[s]) {
      std::optional<Result<std::string>> got;
      servers[s]->client->ReadImmutable(si_, sh, 0, shares_[sh].size() + 10,
                                        [&](Result<std::string> r) { got.emplace(std::move(r)); });
      ASSERT_TRUE(loop.RunUntil([&] { return got.has_value(); }, 20000));
      ASSERT_TRUE(got->ok());
      EXPECT_TRUE(**got == shares_[sh]) << "share " << sh << " on s" << s;
    }
  }
  auto down = Get(cap_, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
  auto again = Check(false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->healthy);
}

// The corrupt share stays where it is (GBS cannot delete it) but a good
// copy of its number goes to another server: a verify after is healthy.
TEST_F(CheckerTest, RepairReplacesACorruptShareOnAnotherServer) {
  StartServers(5);
  Encode(Pattern(20000, 4), 2, 4, 4096);
  shares_[2][layout_.header_size + 5] ^= 0x01;
  for (std::uint32_t sh = 0; sh < 4; ++sh) Place(sh, sh);
  auto pre = Check(true);
  ASSERT_TRUE(pre.ok());
  ASSERT_EQ(pre->corrupt.size(), 1u);
  auto rep = Repair(*pre, 3, true);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->successful) << rep->error << " uploaded " << rep->shares_uploaded << " reused " << rep->shares_reused
                               << ": " << rep->post.summary;
  EXPECT_TRUE(rep->post.healthy);
  EXPECT_EQ(rep->post.shares_good, 4u);
  ASSERT_TRUE(rep->post.good.count(2));
  EXPECT_EQ(rep->post.good.at(2).count("s2"), 0u);
  auto listing = Listing();
  EXPECT_EQ(listing[2], (std::set<std::uint32_t>{2}));  // still there: no delete in GBS
}

// All ten shares of a 3-of-10 file on two of seven servers: healthy by
// Tahoe's rule, happiness 2; repair raises it to the configured 7.
TEST_F(CheckerTest, RepairRebalancesCrowdedShares) {
  StartServers(7);
  const std::string data = Pattern(40000, 5);
  Encode(data, 3, 10, 8192);
  for (std::uint32_t sh = 0; sh < 10; ++sh) Place(sh < 5 ? 0 : 1, sh);
  auto pre = Check(false, 7);
  ASSERT_TRUE(pre.ok());
  EXPECT_TRUE(pre->healthy);
  EXPECT_EQ(pre->happiness, 2u);
  EXPECT_TRUE(pre->needs_rebalancing);
  auto rep = Repair(*pre, 7, false);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->attempted);
  EXPECT_TRUE(rep->successful) << rep->error;
  EXPECT_GE(rep->post.happiness, 7u);
  EXPECT_FALSE(rep->post.needs_rebalancing);
  auto down = Get(cap_, root + "/out");
  ASSERT_TRUE(down.ok());
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

TEST_F(CheckerTest, BelowKIsUnrecoverableAndNothingIsWritten) {
  StartServers(4);
  Encode(Pattern(20000, 6), 2, 4, 4096);
  Place(0, 0);
  auto pre = Check(false);
  ASSERT_TRUE(pre.ok());
  EXPECT_FALSE(pre->recoverable);
  EXPECT_EQ(pre->unrecoverable_versions, 1u);
  auto before = Listing();
  auto rep = Repair(*pre, 3, false);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->attempted);
  EXPECT_FALSE(rep->successful);
  EXPECT_EQ(Listing(), before);
}

TEST_F(CheckerTest, AStoppedServerIsNotResponding) {
  StartServers(4);
  Encode(Pattern(20000, 7), 2, 4, 4096);
  for (std::uint32_t sh = 0; sh < 4; ++sh) Place(sh, sh);
  StopServer(*servers[3], false);
  auto r = Check(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->servers_responding.size(), 3u);
  EXPECT_EQ(r->servers_failed.size(), 1u);
  EXPECT_EQ(r->shares_good, 3u);
  EXPECT_FALSE(r->healthy);
}

// `tasks cancel` reaches a running verify through its stop callback: asked
// between steps, it ends the check with Cancelled, once, after the reads and
// pool jobs in flight have ended.
TEST_F(CheckerTest, StopEndsAVerifyWithCancelled) {
  StartServers(4);
  Encode(Pattern(200000, 8), 2, 4, 4096);
  for (std::uint32_t sh = 0; sh < 4; ++sh) Place(sh, sh);
  auto verifying = std::make_shared<bool>(false);
  std::uint64_t last_done = 0;
  CheckOptions o;
  o.verify = true;
  std::optional<Result<grid::CheckResults>> out;
  int completions = 0;
  CheckImmutable(
      loop, Grid(), cap_, o,
      [verifying, &last_done](const std::string& phase, std::uint64_t done, std::uint64_t) {
        if (phase == "verifying" && done > 0) *verifying = true;
        last_done = done;
      },
      [verifying] { return *verifying; },
      [&](Result<grid::CheckResults> r) {
        ++completions;
        out.emplace(std::move(r));
      });
  ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
  RunSomeMoreTurns();
  EXPECT_EQ(completions, 1);
  EXPECT_EQ(out->status().code(), Code::kCancelled) << out->status().ToString();
  EXPECT_GT(last_done, 0u);
}

}  // namespace
}  // namespace cairn::immutable
