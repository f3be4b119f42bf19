// The mutable rebalance (control/check_rebalance.h): map, plan, copy one
// share at a time, then delete the surplus copies. Loop thread only; each
// copied share is parsed, verified and its read-test-write encoded on the
// thread pool.
#include "control/check_rebalance.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/tags.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/grid/placement.h"
#include "cairn/mutable/share_format.h"
#include "mutable/servermap.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;

// A share is read in pieces of at most this many bytes, and written in
// write vectors of at most this many (a server's limit on one CBOR string is
// far above it).
constexpr std::uint64_t kPiece = 1 << 20;
constexpr std::uint64_t kMaxWriteVector = 4u << 20;

// One share to copy: to `target`, from the first of `sources` whose copy
// reads and verifies.
struct Move {
  std::size_t target = 0;
  std::uint32_t shnum = 0;
  std::vector<std::size_t> sources;  // indexes into the map's shares
  std::size_t next_source = 0;
};

class Rebalance : public std::enable_shared_from_this<Rebalance> {
 public:
  Rebalance(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, RebalanceOptions options,
            grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RebalanceResult>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        cap_(std::move(cap)),
        options_(std::move(options)),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        op_(loop, "mutable rebalance", std::move(done)) {}

  void Start();

 private:
  bool Stopping() { return stop_ && stop_(); }
  void Report(const char* phase, std::uint64_t done, std::uint64_t total) {
    if (progress_) progress_(phase, done, total);
  }
  void Mapped(Result<mf::Servermap> map);
  void NextMove();
  void ReadMore(std::shared_ptr<std::string> bytes, std::uint64_t eof);
  void Copy(std::shared_ptr<std::string> bytes);
  void Copied(Result<gbs::RtwResponse> r);
  void MoveFailed(const std::string& why);
  void AfterCopies();
  void DeleteSurplus();
  void Deleted(std::size_t server, std::vector<std::uint32_t> shnums, Result<gbs::RtwResponse> r);
  void Done();
  std::string WriteEnabler(std::size_t server) const;
  gbs::LeaseSecrets Lease(std::size_t server) const;

  Loop& loop_;
  std::vector<grid::GridServer> servers_;
  caps::Cap cap_;
  RebalanceOptions options_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  grid::Operation<RebalanceResult> op_;
  RebalanceResult result_;
  std::string storage_index_, we_master_, version_, checkstring_;
  gbs::StorageIndex si_{};
  const mf::ShareFormat* format_ = nullptr;
  mf::Servermap map_;
  // Share number -> servers holding an acknowledged copy of the version:
  // what the map saw, then each copy the moment its write is answered.
  grid::SharePlacement held_;
  std::vector<Move> moves_;
  std::size_t move_ = 0;
  std::size_t deletes_outstanding_ = 0, deletes_sent_ = 0;
};

void Rebalance::Start() {
  if (cap_.kind != caps::CapKind::kMutableWrite) {
    return op_.FinishSoon(Status::BadCap("rebalancing a mutable file needs its write cap"));
  }
  auto si = caps::StorageIndexOf(cap_);
  if (!si.ok()) return op_.FinishSoon(si.status());
  storage_index_ = *si;
  si_ = mf::ToStorageIndex(storage_index_);
  we_master_ = crypto::TaggedHash(crypto::tags::kWriteEnablerMaster, cap_.key);
  format_ = &mf::FormatFor(cap_.format);
  mf::MapRequest req;
  req.mode = mf::MapMode::kCheck;
  req.format = cap_.format;
  req.storage_index = storage_index_;
  req.fingerprint = cap_.digest;
  auto self = shared_from_this();
  // The map borrows the progress and stop callbacks: this object outlives it.
  mf::UpdateServermap(loop_, servers_, std::move(req), &progress_, &stop_,
                      [self](Result<mf::Servermap> map) { self->Mapped(std::move(map)); });
}

void Rebalance::Mapped(Result<mf::Servermap> map) {
  if (!map.ok()) return op_.Finish(map.status());
  if (Stopping()) return op_.Finish(Status::Cancelled("rebalance cancelled"));
  map_ = std::move(*map);
  auto versions = map_.Versions();
  bool bad = false;
  for (const mf::SeenShare& s : map_.shares) bad = bad || s.bad;
  if (versions.empty()) {
    result_.error = "no server holds a share of the file";
    return op_.Finish(std::move(result_));
  }
  if (versions.size() != 1 || bad) {
    result_.error = "the servers hold several versions or a bad share: not rebalanced";
    return op_.Finish(std::move(result_));
  }
  version_ = versions.begin()->first;
  const mf::ShareHeader* header = map_.HeaderOf(version_);
  checkstring_ = header->checkstring;
  result_.seqnum = header->seqnum;
  std::vector<grid::ServerState> states(map_.servers.size());
  std::size_t usable = 0;
  for (std::size_t i = 0; i < map_.servers.size(); ++i) {
    states[i].writable = map_.answered[i] && !map_.failed[i];
    if (states[i].writable) ++usable;
  }
  for (const auto& [sh, holders] : versions.begin()->second) {
    for (std::size_t s : holders) {
      held_[sh].insert(s);
      states[s].existing.insert(sh);
    }
  }
  result_.happiness_before = grid::Happiness(held_);
  const std::size_t want = std::min<std::size_t>({options_.happy, usable, header->n});
  if (result_.happiness_before >= want) {
    result_.happiness_after = result_.happiness_before;
    return AfterCopies();
  }
  // Only shares that exist can be copied; a missing share needs a repair.
  grid::PlacementPlan plan = grid::PlanPlacement(states, header->n);
  for (const auto& [target, shnums] : plan.new_shares) {
    for (std::uint32_t sh : shnums) {
      if (!held_.count(sh)) continue;
      Move m{target, sh, {}, 0};
      for (std::size_t i = 0; i < map_.shares.size(); ++i) {
        const mf::SeenShare& s = map_.shares[i];
        if (s.shnum == sh && !s.bad && s.header.signed_prefix == version_) m.sources.push_back(i);
      }
      moves_.push_back(std::move(m));
    }
  }
  CAIRN_LOG(Info, "rebalance: happiness %zu, want %zu: %zu shares to copy", result_.happiness_before, want,
            moves_.size());
  NextMove();
}

void Rebalance::NextMove() {
  if (Stopping()) return op_.Finish(Status::Cancelled("rebalance cancelled"));
  Report("rebalancing: copying", move_, moves_.size());
  if (move_ >= moves_.size()) return AfterCopies();
  Move& m = moves_[move_];
  if (m.next_source >= m.sources.size()) return MoveFailed("no holder gave a copy that verifies");
  const mf::SeenShare& from = map_.shares[m.sources[m.next_source]];
  if (options_.max_share_bytes && from.header.eof > options_.max_share_bytes) {
    return MoveFailed("the share (" + std::to_string(from.header.eof) + " bytes) is over limits.sdmf_max_bytes");
  }
  ReadMore(std::make_shared<std::string>(), from.header.eof);
}

void Rebalance::ReadMore(std::shared_ptr<std::string> bytes, std::uint64_t eof) {
  if (bytes->size() >= eof) return Copy(bytes);
  const Move& m = moves_[move_];
  const mf::SeenShare& from = map_.shares[m.sources[m.next_source]];
  const std::uint64_t offset = bytes->size();
  auto self = shared_from_this();
  map_.servers[from.server].client->ReadMutable(
      si_, from.shnum, offset, std::min(kPiece, eof - offset), [self, bytes, eof](Result<std::string> r) {
        if (!r.ok() || r->empty()) {
          Move& mv = self->moves_[self->move_];
          CAIRN_LOG(Info, "rebalance: reading share %u from %s failed: %s", static_cast<unsigned>(mv.shnum),
                    self->map_.servers[self->map_.shares[mv.sources[mv.next_source]].server].name.c_str(),
                    r.ok() ? "it ends early" : r.status().ToString().c_str());
          ++mv.next_source;
          return self->NextMove();
        }
        *bytes += *r;
        self->ReadMore(bytes, eof);
      });
}

// Verifies the copy and encodes its read-test-write on the pool, then sends
// it: the share must not exist on the target.
void Rebalance::Copy(std::shared_ptr<std::string> bytes) {
  const Move& m = moves_[move_];
  struct Job {
    std::shared_ptr<std::string> bytes;
    const mf::ShareFormat* format;
    std::uint32_t shnum;
    std::string fingerprint, version, why, body;
    std::size_t checkstring_size;
  };
  auto job = std::make_shared<Job>(
      Job{bytes, format_, m.shnum, cap_.digest, version_, std::string(), std::string(), format_->checkstring_size()});
  op_.SideStarted();
  auto self = shared_from_this();
  loop_.Offload(
      [job]() -> Status {
        auto share = job->format->ParseShare(*job->bytes);
        Status st = share.ok() ? Status::Ok() : share.status();
        if (st.ok() && share->header.signed_prefix != job->version) {
          st = Status::Conflict("the share changed since the servermap");
        }
        if (st.ok()) st = job->format->VerifyShare(*share, job->shnum, job->fingerprint);
        if (!st.ok()) {
          job->why = std::string(st.message());
          return st;
        }
        gbs::RtwRequest rtw;
        gbs::ShareTestWrite& tw = rtw.shares[job->shnum];
        tw.test.push_back(gbs::TestVector{0, 1, std::string_view()});  // no share there yet
        const std::string& b = *job->bytes;
        for (std::uint64_t at = 0; at < b.size(); at += kMaxWriteVector) {
          tw.write.push_back(gbs::WriteVector{at, std::string_view(b).substr(at, kMaxWriteVector)});
        }
        rtw.read.push_back(gbs::ReadVector{0, job->checkstring_size});
        job->body = gbs::EncodeRtwRequest(rtw);
        std::string().swap(*job->bytes);
        return Status::Ok();
      },
      [self, job](Status st) {
        self->op_.SideEnded();
        if (self->op_.finished()) return;
        Move& mv = self->moves_[self->move_];
        if (!st.ok()) {
          CAIRN_LOG(Warn, "rebalance: share %u from %s does not verify: %s", static_cast<unsigned>(mv.shnum),
                    self->map_.servers[self->map_.shares[mv.sources[mv.next_source]].server].name.c_str(),
                    job->why.c_str());
          ++mv.next_source;
          return self->NextMove();
        }
        const grid::GridServer& target = self->map_.servers[mv.target];
        target.client->ReadTestWriteEncoded(self->si_, self->WriteEnabler(mv.target), self->Lease(mv.target),
                                            std::move(job->body),
                                            [self](Result<gbs::RtwResponse> r) { self->Copied(std::move(r)); });
      });
}

void Rebalance::Copied(Result<gbs::RtwResponse> r) {
  if (op_.finished()) return;
  Move& m = moves_[move_];
  const std::string& name = map_.servers[m.target].name;
  if (!r.ok()) return MoveFailed(name + " failed the write: " + r.status().ToString());
  if (!r->success) return MoveFailed(name + " already holds share " + std::to_string(m.shnum));
  // Acknowledged: from now on this copy may stand in for the others.
  held_[m.shnum].insert(m.target);
  ++result_.copied;
  ++move_;
  auto self = shared_from_this();
  loop_.Post([self] { self->NextMove(); });
}

void Rebalance::MoveFailed(const std::string& why) {
  const Move& m = moves_[move_];
  CAIRN_LOG(Warn, "rebalance: share %u not copied to %s: %s", static_cast<unsigned>(m.shnum),
            map_.servers[m.target].name.c_str(), why.c_str());
  ++result_.copy_failed;
  ++move_;
  auto self = shared_from_this();
  loop_.Post([self] { self->NextMove(); });
}

// Every copy was answered (or there was none to make): the deletions may begin.
void Rebalance::AfterCopies() {
  result_.happiness_after = grid::Happiness(held_);
  if (options_.TEST_before_delete) {
    auto self = shared_from_this();
    options_.TEST_before_delete([self] { self->DeleteSurplus(); });
    return;
  }
  DeleteSurplus();
}

// The surplus copies: most crowded server first, each copy whose removal
// keeps the happiness of what is held and leaves its share another holder.
// Only servers that answered the map are asked to delete.
void Rebalance::DeleteSurplus() {
  if (Stopping()) return op_.Finish(Status::Cancelled("rebalance cancelled"));
  const std::size_t happiness = grid::Happiness(held_);
  std::map<std::size_t, std::size_t> load;
  for (const auto& [sh, holders] : held_) {
    for (std::size_t s : holders) ++load[s];
  }
  std::vector<std::pair<std::size_t, std::uint32_t>> copies;  // (server, share)
  for (const auto& [sh, holders] : held_) {
    if (holders.size() < 2) continue;
    for (std::size_t s : holders) copies.emplace_back(s, sh);
  }
  std::stable_sort(copies.begin(), copies.end(),
                   [&load](const auto& a, const auto& b) { return load[a.first] > load[b.first]; });
  std::map<std::size_t, std::vector<std::uint32_t>> surplus;
  for (const auto& [s, sh] : copies) {
    if (held_[sh].size() < 2 || map_.failed[s] || !map_.answered[s]) continue;
    held_[sh].erase(s);
    if (grid::Happiness(held_) < happiness) {
      held_[sh].insert(s);
      continue;
    }
    surplus[s].push_back(sh);
  }
  result_.happiness_after = grid::Happiness(held_);
  if (surplus.empty()) return Done();
  // Every request is counted before the first is sent.
  deletes_outstanding_ = deletes_sent_ = surplus.size();
  Report("rebalancing: deleting", 0, deletes_sent_);
  auto self = shared_from_this();
  for (const auto& entry : surplus) {
    const std::size_t s = entry.first;
    std::vector<std::uint32_t> shnums = entry.second;
    gbs::RtwRequest rtw;
    for (std::uint32_t sh : shnums) {
      gbs::ShareTestWrite& tw = rtw.shares[sh];
      // Only a share still at this version goes: never another writer's.
      tw.test.push_back(gbs::TestVector{0, checkstring_.size(), checkstring_});
      tw.new_length = 0;
    }
    rtw.read.push_back(gbs::ReadVector{0, checkstring_.size()});
    map_.servers[s].client->ReadTestWrite(si_, WriteEnabler(s), Lease(s), rtw,
                                          [self, s, shnums](Result<gbs::RtwResponse> r) {
                                            self->Deleted(s, shnums, std::move(r));
                                          });
  }
}

void Rebalance::Deleted(std::size_t server, std::vector<std::uint32_t> shnums, Result<gbs::RtwResponse> r) {
  --deletes_outstanding_;
  const std::string& name = map_.servers[server].name;
  if (r.ok() && r->success) {
    result_.deleted += shnums.size();
  } else {
    // The copies stay: counted as held again.
    for (std::uint32_t sh : shnums) held_[sh].insert(server);
    result_.kept += shnums.size();
    CAIRN_LOG(Warn, "rebalance: %s kept its surplus copies: %s", name.c_str(),
              r.ok() ? "a share changed since the map (another writer)" : r.status().ToString().c_str());
  }
  Report("rebalancing: deleting", deletes_sent_ - deletes_outstanding_, deletes_sent_);
  if (deletes_outstanding_ != 0) return;
  result_.happiness_after = grid::Happiness(held_);
  Done();
}

void Rebalance::Done() {
  std::size_t usable = 0;
  for (std::size_t i = 0; i < map_.servers.size(); ++i) usable += map_.answered[i] && !map_.failed[i] ? 1 : 0;
  const std::size_t want = std::min<std::size_t>({options_.happy, usable, map_.HeaderOf(version_)->n});
  if (result_.happiness_after < want && result_.error.empty()) {
    result_.error = "rebalance reached happiness " + std::to_string(result_.happiness_after) + " of " +
                    std::to_string(want) + " (" + std::to_string(result_.copy_failed) + " copies failed)";
  }
  op_.Finish(std::move(result_));
}

std::string Rebalance::WriteEnabler(std::size_t server) const {
  return caps::WriteEnablerOf(we_master_, map_.servers[server].lease_seed);
}

gbs::LeaseSecrets Rebalance::Lease(std::size_t server) const {
  caps::LeaseSecrets l = caps::LeaseSecretsFor(options_.lease_secret, storage_index_, map_.servers[server].lease_seed);
  return gbs::LeaseSecrets{l.renew, l.cancel};
}

}  // namespace

void RebalanceMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, RebalanceOptions options,
                      grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RebalanceResult>)> done) {
  auto r = std::make_shared<Rebalance>(loop, std::move(servers), std::move(writecap), std::move(options),
                                       std::move(progress), std::move(stop), std::move(done));
  r->Start();
}

}  // namespace cairn::control
