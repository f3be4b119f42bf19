// The mutable checker, verifier and repairer (control/check_mutable.h).
// Loop thread only; whole shares are parsed and verified on the pool.
#include "control/check_mutable.h"

#include <algorithm>
#include <deque>
#include <memory>

#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/mutable/share_format.h"
#include "mutable/servermap.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;

// A share is read in pieces of at most this many bytes.
constexpr std::uint64_t kReadPiece = 1 << 20;

struct ShareToVerify {
  std::size_t server = 0;
  std::uint32_t shnum = 0;
  std::uint64_t eof = 0;
  std::string bytes;
};

class MutableCheck : public std::enable_shared_from_this<MutableCheck> {
 public:
  MutableCheck(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, bool verify, std::uint32_t happy,
               grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        cap_(std::move(cap)),
        verify_(verify),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        op_(loop, "mutable check", std::move(done)) {
    results_.happy = happy;
    results_.is_mutable = true;
    results_.verified = verify;
  }

  void Start();

 private:
  bool Stopping() { return op_.finished() || (stop_ && stop_()); }
  void Mapped(Result<mf::Servermap> map);
  void NextShare();
  void ReadMore(std::shared_ptr<ShareToVerify> s);
  void Verify(std::shared_ptr<ShareToVerify> s);
  void Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why);
  void Done();

  Loop& loop_;
  std::vector<grid::GridServer> servers_;
  caps::Cap cap_;
  bool verify_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  grid::Operation<grid::CheckResults> op_;
  gbs::StorageIndex si_{};
  grid::CheckResults results_;
  mf::Servermap map_;
  std::string best_;  // the best version's signed prefix
  std::deque<std::shared_ptr<ShareToVerify>> queue_;
  std::uint64_t bytes_done_ = 0, bytes_total_ = 0;
};

void MutableCheck::Start() {
  if (cap_.kind != caps::CapKind::kMutableWrite && cap_.kind != caps::CapKind::kMutableRead &&
      cap_.kind != caps::CapKind::kMutableVerifier) {
    return op_.FinishSoon(Status::BadCap("not a mutable file's cap"));
  }
  auto si = caps::StorageIndexOf(cap_);
  if (!si.ok()) return op_.FinishSoon(si.status());
  results_.storage_index = *si;
  si_ = mf::ToStorageIndex(*si);
  mf::MapRequest req;
  req.mode = mf::MapMode::kCheck;
  req.format = cap_.format;
  req.storage_index = *si;
  req.fingerprint = cap_.digest;
  auto self = shared_from_this();
  // The map borrows the progress and stop callbacks: this object outlives it.
  mf::UpdateServermap(loop_, servers_, req, &progress_, &stop_,
                      [self](Result<mf::Servermap> map) { self->Mapped(std::move(map)); });
}

void MutableCheck::Mapped(Result<mf::Servermap> map) {
  if (!map.ok()) return op_.Finish(map.status());
  map_ = std::move(*map);
  for (std::size_t i = 0; i < map_.servers.size(); ++i) {
    if (map_.answered[i] && !map_.failed[i]) {
      results_.servers_responding.push_back(map_.servers[i].name);
    } else {
      results_.servers_failed.push_back(map_.servers[i].name + ": " + map_.failures[i]);
    }
  }
  // The servermap sent the advisories for shares whose header failed.
  for (const mf::SeenShare& s : map_.shares) {
    if (s.bad) {
      results_.corrupt.push_back(
          grid::CorruptShare{map_.servers[s.server].name, s.shnum, "header, key or signature does not verify"});
    }
  }
  auto versions = map_.Versions();
  auto best = map_.BestRecoverable();
  // Without a recoverable version the newest one names k and N.
  if (best) {
    best_ = *best;
  } else if (!versions.empty()) {
    best_ = versions.rbegin()->first;
  }
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    const mf::ShareHeader* h = map_.HeaderOf(it->first);
    grid::VersionSeen v;
    v.seqnum = h->seqnum;
    v.root_hash = h->root_hash;
    v.k = h->k;
    v.n = h->n;
    for (const auto& [sh, holders] : it->second) {
      v.shares.insert(sh);
      for (std::size_t s : holders) {
        const std::string key =
            "seq" + std::to_string(h->seqnum) + "-" + grid::Base32Prefix(h->root_hash, 4) + "-sh" + std::to_string(sh);
        results_.mutable_sharemap[key].insert(map_.servers[s].name);
        if (it->first == best_) {
          results_.good[sh].insert(map_.servers[s].name);
        } else {
          ++results_.wrong_shares;
        }
      }
    }
    if (it->first == best_) {
      results_.k = h->k;
      results_.n = h->n;
    }
    results_.versions.push_back(std::move(v));
  }
  if (!verify_ || best_.empty()) return Done();
  // Verify: every share of the best version, read in full, one at a time.
  for (const mf::SeenShare& s : map_.shares) {
    if (s.bad || s.header.signed_prefix != best_) continue;
    auto v = std::make_shared<ShareToVerify>();
    v->server = s.server;
    v->shnum = s.shnum;
    v->eof = s.header.eof;
    bytes_total_ += s.header.eof;
    queue_.push_back(v);
  }
  // Only shares that verify count as good.
  results_.good.clear();
  NextShare();
}

void MutableCheck::NextShare() {
  if (Stopping()) return op_.Finish(Status::Cancelled("check cancelled"));
  if (queue_.empty()) return Done();
  std::shared_ptr<ShareToVerify> s = queue_.front();
  queue_.pop_front();
  ReadMore(s);
}

void MutableCheck::ReadMore(std::shared_ptr<ShareToVerify> s) {
  if (s->bytes.size() >= s->eof) return Verify(s);
  const std::uint64_t offset = s->bytes.size();
  const std::uint64_t length = std::min(kReadPiece, s->eof - offset);
  auto self = shared_from_this();
  map_.servers[s->server].client->ReadMutable(si_, s->shnum, offset, length, [self, s](Result<std::string> r) {
    if (self->op_.finished()) return;
    if (!r.ok()) {
      self->results_.servers_failed.push_back(self->map_.servers[s->server].name + ": share " +
                                              std::to_string(s->shnum) + ": " + r.status().ToString());
      return self->NextShare();
    }
    if (r->empty()) return self->Corrupt(s->server, s->shnum, "share ends before its header says");
    s->bytes += *r;
    self->bytes_done_ += r->size();
    if (self->progress_) self->progress_("verifying", self->bytes_done_, self->bytes_total_);
    self->ReadMore(s);
  });
}

void MutableCheck::Verify(std::shared_ptr<ShareToVerify> s) {
  auto why = std::make_shared<std::string>();
  const mf::ShareFormat* format = &mf::FormatFor(cap_.format);
  std::string fingerprint = cap_.digest;
  std::string best = best_;
  op_.SideStarted();
  auto self = shared_from_this();
  loop_.Offload(
      [s, why, format, fingerprint, best]() -> Status {
        auto share = format->ParseShare(s->bytes);
        if (!share.ok()) {
          *why = std::string(share.status().message());
          return share.status();
        }
        if (share->header.signed_prefix != best) {
          *why = "the share changed since the servermap (another version)";
          return Status::Conflict(*why);
        }
        Status st = format->VerifyShare(*share, s->shnum, fingerprint);
        if (!st.ok()) *why = std::string(st.message());
        return st;
      },
      [self, s, why](Status st) {
        self->op_.SideEnded();
        if (self->op_.finished()) return;
        s->bytes.clear();
        if (st.code() == Code::kConflict) {
          ++self->results_.wrong_shares;
          return self->NextShare();
        }
        if (!st.ok()) return self->Corrupt(s->server, s->shnum, *why);
        self->results_.good[s->shnum].insert(self->map_.servers[s->server].name);
        self->NextShare();
      });
}

void MutableCheck::Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why) {
  CAIRN_LOG(Warn, "verify: mutable share %u on %s is corrupt: %s", static_cast<unsigned>(shnum),
            map_.servers[server].name.c_str(), why.c_str());
  results_.corrupt.push_back(grid::CorruptShare{map_.servers[server].name, shnum, why});
  op_.SideStarted();
  map_.servers[server].client->AdviseCorrupt(true, si_, shnum, why.substr(0, 1000),
                                             [op = op_](Status) { op.SideEnded(); });
  NextShare();
}

void MutableCheck::Done() {
  results_.FinishMutable();
  op_.Finish(std::move(results_));
}

// ---- repair -----------------------------------------------------------------

struct RepairState {
  Loop* loop;
  std::vector<grid::GridServer> servers;
  caps::Cap cap;
  grid::CheckResults pre;
  mf::MutableOptions options;
  std::uint64_t max_share_bytes;
  bool verify;
  std::shared_ptr<grid::ProgressFn> progress;
  std::shared_ptr<grid::StopFn> stop;
  grid::Operation<MutableRepairResult> op;
  MutableRepairResult result;

  grid::ProgressFn Progress() {
    auto p = progress;
    return [p](const std::string& phase, std::uint64_t done, std::uint64_t total) {
      if (*p) (*p)("repair: " + phase, done, total);
    };
  }
  grid::StopFn Stop() {
    auto s = stop;
    return [s] { return *s && (*s)(); };
  }
};

// The check after a repair (or after a failed one).
void CheckAfter(const std::shared_ptr<RepairState>& r) {
  CheckMutable(*r->loop, r->servers, r->cap, r->verify, r->options.happy, r->Progress(), r->Stop(),
               [r](Result<grid::CheckResults> post) {
                 if (!post.ok()) return r->op.Finish(post.status());
                 r->result.post = std::move(*post);
                 r->result.successful = r->result.error.empty() && r->result.post.healthy;
                 r->op.Finish(std::move(r->result));
               });
}

// The rebalance step, when the check before the repair asked for it; then
// the check after.
void RebalanceThenCheck(const std::shared_ptr<RepairState>& r) {
  if (!r->pre.needs_rebalancing) return CheckAfter(r);
  RebalanceOptions o;
  o.happy = r->options.happy;
  o.lease_secret = r->options.lease_secret;
  o.max_share_bytes = r->max_share_bytes;
  RebalanceMutable(*r->loop, r->servers, r->cap, std::move(o), r->Progress(), r->Stop(),
                   [r](Result<RebalanceResult> got) {
                     if (!got.ok()) {
                       if (got.status().code() == Code::kCancelled) return r->op.Finish(got.status());
                       if (r->result.error.empty()) r->result.error = "rebalance: " + got.status().ToString();
                       return CheckAfter(r);
                     }
                     r->result.rebalanced = true;
                     r->result.rebalance = std::move(*got);
                     if (!r->result.seqnum) r->result.seqnum = r->result.rebalance.seqnum;
                     if (r->result.error.empty() && !r->result.rebalance.error.empty()) {
                       r->result.error = "rebalance: " + r->result.rebalance.error;
                     }
                     CheckAfter(r);
                   });
}

// Why a repair of `pre` is not attempted, or "".
std::string WhyNotRepair(const caps::Cap& cap, const grid::CheckResults& pre) {
  if (cap.kind != caps::CapKind::kMutableWrite) return "repairing a mutable file needs its write cap";
  if (!pre.recoverable) return "no version is recoverable";
  std::uint64_t best = 0;
  for (const grid::VersionSeen& v : pre.versions) {
    if (v.recoverable()) best = std::max(best, v.seqnum);
  }
  for (const grid::VersionSeen& v : pre.versions) {
    if (!v.recoverable() && v.seqnum > best) {
      return "an unrecoverable version (seqnum " + std::to_string(v.seqnum) +
             ") is newer than the best recoverable one: a repair would roll it "
             "back";
    }
  }
  return "";
}

}  // namespace

void CheckMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, bool verify, std::uint32_t happy,
                  grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done) {
  auto check = std::make_shared<MutableCheck>(loop, std::move(servers), std::move(cap), verify, happy,
                                              std::move(progress), std::move(stop), std::move(done));
  check->Start();
}

void RepairMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::CheckResults pre,
                   mf::MutableOptions options, std::uint64_t max_share_bytes, bool verify, grid::ProgressFn progress,
                   grid::StopFn stop, Callback<void(Result<MutableRepairResult>)> done) {
  auto r = std::make_shared<RepairState>(RepairState{
      &loop, std::move(servers), std::move(cap), std::move(pre), std::move(options), max_share_bytes, verify,
      std::make_shared<grid::ProgressFn>(std::move(progress)), std::make_shared<grid::StopFn>(std::move(stop)),
      grid::Operation<MutableRepairResult>(loop, "mutable repair", std::move(done)), MutableRepairResult{}});
  if (r->pre.healthy && !r->pre.needs_rebalancing) return r->op.FinishSoon(std::move(r->result));
  std::string why = WhyNotRepair(r->cap, r->pre);
  if (!why.empty()) {
    r->result.error = why;
    return r->op.FinishSoon(std::move(r->result));
  }
  r->result.attempted = true;
  if (r->pre.healthy) {
    // Only crowded: the same version is spread, no new one is made.
    return RebalanceThenCheck(r);
  }
  // Tahoe's repairer: the best version, published again as a new one.
  mf::RetrieveMutable(loop, r->servers, r->cap, r->Progress(), r->Stop(), [r](Result<mf::RetrieveResult> got) {
    if (!got.ok()) {
      if (got.status().code() == Code::kCancelled) return r->op.Finish(got.status());
      r->result.error = "retrieve: " + got.status().ToString();
      return CheckAfter(r);
    }
    // Published against the version read: a version another node published
    // since the read makes the publish fail (UncoordinatedWrite) rather than
    // be rolled back.
    r->options.expected_version = got->version;
    mf::PublishMutable(*r->loop, r->servers, r->cap, std::move(got->contents), r->options, r->Progress(), r->Stop(),
                       [r](Result<mf::PublishResult> pub) {
                         if (!pub.ok()) {
                           if (pub.status().code() == Code::kCancelled) return r->op.Finish(pub.status());
                           r->result.error = "publish: " + pub.status().ToString();
                           return CheckAfter(r);
                         }
                         r->result.seqnum = pub->seqnum;
                         RebalanceThenCheck(r);
                       });
  });
}

}  // namespace cairn::control
