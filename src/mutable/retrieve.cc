// SDMF retrieve (tahoe-protocol.md 4.5): RetrieveMutable. One Retriever per
// call, owned by the completions in flight, with one state machine:
//
//   kMapping   servermap update in read mode
//   kFetching  the newest recoverable version: k shares, lowest share
//              numbers first, each read whole and verified off the loop
//              (public key, signature, block hash, share hash chain); a
//              share that fails is reported to its server and another one
//              is fetched
//   kDecoding  zfec decode and decrypt, off the loop
//   kDone      delivered, once every advisory sent was answered
#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/mutable/sdmf.h"
#include "mutable/servermap.h"

namespace cairn::mutable_files {
namespace {

// One fetched share, parsed and verified on the thread pool.
struct VerifyJob {
  std::string bytes;
  std::uint32_t shnum = 0;
  std::string fingerprint;
  std::shared_ptr<SdmfShare> share;  // out, when verified
};

class Retriever : public std::enable_shared_from_this<Retriever> {
 public:
  Retriever(Loop& loop, std::vector<grid::GridServer> servers, grid::ProgressFn progress, grid::StopFn stop,
            Callback<void(Result<RetrieveResult>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        done_(std::move(done)) {}

  void Start(const caps::Cap& cap);

 private:
  enum class State { kMapping, kFetching, kDecoding, kDone };

  // A share of the chosen version on one server.
  struct Candidate {
    std::size_t share = 0;  // index into map_.shares
    bool tried = false;
  };

  void Mapped(Result<Servermap> map);
  void FetchMore();
  void Got(std::size_t candidate, Result<std::string> bytes);
  void Checked(std::size_t candidate, const Status& st, std::shared_ptr<SdmfShare> share);
  void Decode();
  void Fail(Status st);
  void Deliver(Result<RetrieveResult> r);
  void SideDone();

  Loop& loop_;
  std::vector<grid::GridServer> servers_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  Callback<void(Result<RetrieveResult>)> done_;
  State state_ = State::kMapping;

  std::string readkey_, fingerprint_;
  gbs::StorageIndex si_{};
  Servermap map_;
  std::string version_;  // signed prefix of the version being read
  std::uint32_t k_ = 0;
  std::vector<Candidate> candidates_;
  std::set<std::uint32_t> in_flight_;  // share numbers being fetched
  std::map<std::uint32_t, std::shared_ptr<SdmfShare>> verified_;
  RetrieveResult result_;
  std::size_t side_requests_ = 0;  // advisories and pool work still running
  std::optional<Result<RetrieveResult>> pending_;
};

void Retriever::Start(const caps::Cap& cap) {
  auto self = shared_from_this();
  if (cap.format != caps::MutableFormat::kSdmf ||
      (cap.kind != caps::CapKind::kMutableWrite && cap.kind != caps::CapKind::kMutableRead)) {
    return loop_.Post([self] { self->Fail(Status::BadCap("retrieve needs an SDMF read or write cap")); });
  }
  readkey_ = cap.kind == caps::CapKind::kMutableWrite ? caps::ReadKeyOf(cap.key) : cap.key;
  fingerprint_ = cap.digest;
  std::string si = caps::MutableStorageIndexOf(readkey_);
  si_ = ToStorageIndex(si);
  if (servers_.empty()) {
    return loop_.Post([self] { self->Fail(Status::NotEnoughServers("no storage servers are configured")); });
  }
  MapRequest req{MapMode::kRead, si, fingerprint_, std::string()};
  UpdateServermap(loop_, std::move(servers_), std::move(req), &progress_, &stop_,
                  [self](Result<Servermap> map) { self->Mapped(std::move(map)); });
}

void Retriever::Mapped(Result<Servermap> map) {
  if (!map.ok()) return Fail(map.status());
  map_ = std::move(*map);
  result_.corrupt_shares = map_.advisories;
  std::optional<std::string> best = map_.BestRecoverable();
  if (!best) {
    std::size_t failed = static_cast<std::size_t>(std::count(map_.failed.begin(), map_.failed.end(), true));
    if (map_.shares.empty() && failed < map_.servers.size()) {
      return Fail(Status::NotFound("no server holds a share of this mutable file"));
    }
    return Fail(Status::NotEnoughServers("no version of the file has enough verified shares (" +
                                         std::to_string(map_.shares.size()) + " shares seen, " +
                                         std::to_string(failed) + " of " + std::to_string(map_.servers.size()) +
                                         " servers failed)"));
  }
  version_ = *best;
  for (std::size_t i = 0; i < map_.shares.size(); ++i) {
    const SeenShare& s = map_.shares[i];
    if (!s.bad && s.header.signed_prefix == version_) {
      candidates_.push_back(Candidate{i});
      k_ = s.header.k;
    }
  }
  // Lowest share numbers first, then servers in permuted order.
  std::sort(candidates_.begin(), candidates_.end(), [&](const Candidate& a, const Candidate& b) {
    const SeenShare& x = map_.shares[a.share];
    const SeenShare& y = map_.shares[b.share];
    return std::tie(x.shnum, x.server) < std::tie(y.shnum, y.server);
  });
  state_ = State::kFetching;
  if (progress_) progress_("retrieving", 0, k_);
  FetchMore();
}

// Keeps one fetch in flight for each share number still needed.
void Retriever::FetchMore() {
  if (state_ != State::kFetching) return;
  if (stop_ && stop_()) return Fail(Status::Cancelled("retrieve cancelled"));
  auto self = shared_from_this();
  for (std::size_t c = 0; c < candidates_.size() && verified_.size() + in_flight_.size() < k_; ++c) {
    Candidate& cand = candidates_[c];
    const SeenShare& s = map_.shares[cand.share];
    if (cand.tried || verified_.count(s.shnum) || in_flight_.count(s.shnum)) continue;
    cand.tried = true;
    in_flight_.insert(s.shnum);
    if (s.head.size() >= s.header.o_eof) {  // the map's read already holds all of it
      std::string whole = s.head.substr(0, s.header.o_eof);
      loop_.Post([self, c, whole = std::move(whole)]() mutable { self->Got(c, std::move(whole)); });
    } else {
      map_.servers[s.server].client->ReadMutable(si_, s.shnum, 0, s.header.o_eof,
                                                 [self, c](Result<std::string> r) { self->Got(c, std::move(r)); });
    }
  }
  if (verified_.size() + in_flight_.size() < k_ && in_flight_.empty()) {
    Fail(Status::NotEnoughServers("only " + std::to_string(verified_.size()) + " of the " + std::to_string(k_) +
                                  " shares needed could be read and verified (" +
                                  std::to_string(result_.corrupt_shares) + " corrupt)"));
  }
}

void Retriever::Got(std::size_t candidate, Result<std::string> bytes) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  if (state_ != State::kFetching) {
    in_flight_.erase(s.shnum);
    return;
  }
  if (!bytes.ok()) {
    CAIRN_LOG(Info, "retrieve: share %u on %s: %s", s.shnum, map_.servers[s.server].name.c_str(),
              bytes.status().ToString().c_str());
    in_flight_.erase(s.shnum);
    return FetchMore();
  }
  // Verifying hashes the whole block (and checks the signature): on the
  // thread pool, like the decode. The share stays in flight meanwhile.
  auto job = std::make_shared<VerifyJob>();
  job->bytes = std::move(*bytes);
  job->shnum = s.shnum;
  job->fingerprint = fingerprint_;
  auto self = shared_from_this();
  ++side_requests_;
  loop_.Offload(
      [job]() -> Status {
        CAIRN_TRY_ASSIGN(SdmfShare share, ParseSdmfShare(job->bytes));
        job->bytes.clear();
        CAIRN_TRY(VerifySdmfShare(share, job->shnum, job->fingerprint));
        job->share = std::make_shared<SdmfShare>(std::move(share));
        return Status::Ok();
      },
      [self, candidate, job](Status st) {
        self->Checked(candidate, st, job->share);
        self->SideDone();
      });
}

void Retriever::Checked(std::size_t candidate, const Status& st, std::shared_ptr<SdmfShare> share) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  in_flight_.erase(s.shnum);
  if (state_ != State::kFetching) return;
  const std::string& name = map_.servers[s.server].name;
  if (st.ok() && share->signed_prefix != version_) {
    // Rewritten since the map read it: not corrupt, just not this version.
    CAIRN_LOG(Info, "retrieve: share %u on %s changed since the servermap", s.shnum, name.c_str());
    return FetchMore();
  }
  if (!st.ok()) {
    CAIRN_LOG(Warn, "retrieve: share %u on %s is corrupt: %s", s.shnum, name.c_str(), st.ToString().c_str());
    ++result_.corrupt_shares;
    ++side_requests_;
    auto self = shared_from_this();
    map_.servers[s.server].client->AdviseCorrupt(true, si_, s.shnum, st.message().substr(0, 1000),
                                                 [self](Status advised) {
                                                   advised.IgnoreError();  // advisory only
                                                   self->SideDone();
                                                 });
    return FetchMore();
  }
  verified_[s.shnum] = std::move(share);
  result_.shares_used[s.shnum] = name;
  if (progress_) progress_("retrieving", verified_.size(), k_);
  if (verified_.size() >= k_) return Decode();
  FetchMore();
}

// zfec decode and AES of up to the whole file: on the thread pool.
void Retriever::Decode() {
  state_ = State::kDecoding;
  auto self = shared_from_this();
  auto shares = std::make_shared<std::map<std::uint32_t, std::shared_ptr<SdmfShare>>>(std::move(verified_));
  auto out = std::make_shared<std::string>();
  auto readkey = readkey_;
  ++side_requests_;
  loop_.Offload(
      [shares, out, readkey]() -> Status {
        std::map<std::uint32_t, const SdmfShare*> view;
        for (const auto& [sh, share] : *shares) view[sh] = share.get();
        CAIRN_TRY_ASSIGN(*out, DecodeSdmf(view, readkey));
        return Status::Ok();
      },
      [self, shares, out](Status st) {
        if (self->state_ == State::kDecoding) {
          if (!st.ok()) {
            self->Fail(st.WithContext("decoding"));
          } else {
            self->state_ = State::kDone;
            self->result_.seqnum = shares->begin()->second->seqnum;
            self->result_.contents = std::move(*out);
            self->Deliver(std::move(self->result_));
          }
        }
        self->SideDone();
      });
}

void Retriever::Fail(Status st) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  Deliver(std::move(st));
}

// The caller hears of the end only once every advisory was answered.
void Retriever::Deliver(Result<RetrieveResult> r) {
  pending_.emplace(std::move(r));
  if (side_requests_ > 0) return;
  auto done = std::move(done_);
  done(std::move(*pending_));
}

void Retriever::SideDone() {
  if (--side_requests_ == 0 && pending_ && done_) {
    auto done = std::move(done_);
    done(std::move(*pending_));
  }
}

}  // namespace

void RetrieveMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::ProgressFn progress,
                     grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done) {
  auto r = std::make_shared<Retriever>(loop, std::move(servers), std::move(progress), std::move(stop),
                                       std::move(done));
  r->Start(cap);
}

}  // namespace cairn::mutable_files
