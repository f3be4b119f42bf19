// CHK download over GBS (see the header). One Download object per call,
// owned by the completions in flight. At most one work item runs on the
// thread pool at a time (decode and write of one segment, or the final
// sync), and the loop neither fetches nor changes the reader meanwhile, so
// the ChkReader is never used by two threads at once. Loop thread only,
// except those work items.
#include "cairn/immutable/downloader.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>

#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/placement.h"
#include "cairn/immutable/chk_reader.h"
#include "immutable/file_io.h"

namespace cairn::immutable {
namespace {

// The UEB is shorter than this in every share a reader accepts.
constexpr std::uint64_t kMaxUebLength = 2000;

std::uint64_t GetBe(std::string_view b) {
  std::uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<std::uint8_t>(c);
  return v;
}

struct Share {
  std::size_t server = 0;
  std::uint32_t shnum = 0;
  ChkShareHeader header;
};

class Download : public std::enable_shared_from_this<Download> {
 public:
  Download(Loop& loop, std::vector<GridServer> servers, caps::Cap cap, std::string path, ProgressFn progress,
           StopFn stop, Callback<void(Result<DownloadResult>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        cap_(std::move(cap)),
        path_(std::move(path)),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        done_(std::move(done)) {}
  ~Download() { CloseFile(fd_); }

  void Start();

 private:
  enum class State { kOpening, kLocating, kFetching, kDecoding, kSyncing, kDone };

  void Opened(Status st);
  void Locate();
  void ListDone(std::size_t server, Result<gbs::ShareNumbers> shares);
  void Activate();
  void HeaderRead(std::size_t server, std::uint32_t shnum, Result<std::string> r);
  void HashesRead(Share share, Result<std::string> r);
  void Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why);
  void FetchSegment();
  void FetchBlock(const Share& share);
  void BlockRead(Share share, std::uint64_t seg, Result<std::string> r);
  void DropActive(std::uint32_t shnum);
  void MaybeDecode();
  void Decoded(std::uint64_t seg, std::optional<std::uint32_t> bad, Status st);
  void Finish();
  bool Stopping();
  void Fail(Status st);
  void Deliver(Result<DownloadResult> r);
  void SideDone();
  // Loop::Offload, counted like a request: the end is not reported while
  // work of this operation still runs on the pool.
  void Offload(Callback<Status()> work, Callback<void(Status)> done);

  Loop& loop_;
  std::vector<GridServer> servers_;
  caps::Cap cap_;
  std::string path_;
  ProgressFn progress_;
  StopFn stop_;
  Callback<void(Result<DownloadResult>)> done_;
  std::size_t side_requests_ = 0;                         // advisories and pool work still running
  std::optional<Result<DownloadResult>> result_pending_;  // the result, held until they end
  State state_ = State::kOpening;
  int fd_ = -1;

  gbs::StorageIndex si_{};
  std::size_t lists_outstanding_ = 0;
  // (server, share) pairs not tried yet, in the order their servers answered.
  std::deque<std::pair<std::size_t, std::uint32_t>> candidates_;
  std::set<std::uint32_t> pending_;  // share numbers being activated
  std::map<std::uint32_t, Share> active_;
  std::unique_ptr<ChkReader> reader_;
  bool crypttext_tree_accepted_ = false;

  std::uint64_t seg_ = 0;
  std::map<std::uint32_t, std::string> blocks_;  // of segment seg_, by share number
  std::set<std::uint32_t> fetching_;             // blocks of seg_ in flight
  DownloadResult result_;
};

void Download::Start() {
  auto self = shared_from_this();
  if (cap_.kind != caps::CapKind::kLiteral && cap_.kind != caps::CapKind::kChk) {
    return loop_.Post([self] { self->Fail(Status::BadCap("only LIT and CHK caps can be downloaded here")); });
  }
  Download* d = this;
  Offload(
      [d]() -> Status {
        CAIRN_TRY_ASSIGN(d->fd_, OpenForWrite(d->path_));
        if (d->cap_.kind != caps::CapKind::kLiteral) return Status();
        const std::string& data = d->cap_.literal;
        CAIRN_TRY(WriteAt(d->fd_, 0, data.data(), data.size(), d->path_));
        Status st = SyncAndClose(d->fd_, d->path_);
        d->fd_ = -1;
        return st;
      },
      [self](Status st) { self->Opened(st); });
}

void Download::Opened(Status st) {
  if (state_ == State::kDone) return;
  if (!st.ok()) return Fail(st);
  if (cap_.kind == caps::CapKind::kLiteral) {
    state_ = State::kDone;
    result_.size = cap_.literal.size();
    if (progress_) progress_("downloading", result_.size, result_.size);
    return Deliver(std::move(result_));
  }
  if (Stopping()) return;
  Locate();
}

bool Download::Stopping() {
  if (stop_ && stop_()) {
    Fail(Status::Cancelled("download cancelled"));
    return true;
  }
  return false;
}

void Download::Locate() {
  state_ = State::kLocating;
  auto si = caps::StorageIndexOf(cap_);
  if (!si.ok()) return Fail(si.status());
  std::memcpy(si_.data(), si->data(), si_.size());
  if (servers_.empty()) return Fail(Status::NotEnoughServers("no storage servers are configured"));
  if (progress_) progress_("locating", 0, servers_.size());
  std::vector<std::string> seeds;
  for (const GridServer& s : servers_) seeds.push_back(s.seed);
  std::vector<GridServer> permuted;
  for (std::size_t i : grid::PermutedOrder(*si, seeds)) permuted.push_back(std::move(servers_[i]));
  servers_ = std::move(permuted);
  lists_outstanding_ = servers_.size();
  auto self = shared_from_this();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i].client->ListImmutable(
        si_, [self, i](Result<gbs::ShareNumbers> shares) { self->ListDone(i, std::move(shares)); });
  }
}

// Servers that answer first are asked first (fastest first): fetching
// starts as soon as k distinct shares are known, and answers that come
// later only add candidates (replacements), so one slow server never holds
// a download up while others have enough.
void Download::ListDone(std::size_t server, Result<gbs::ShareNumbers> shares) {
  --lists_outstanding_;
  if (state_ == State::kDone || state_ == State::kSyncing) return;
  if (shares.ok()) {
    for (std::uint32_t sh : *shares) {
      if (sh < cap_.n) candidates_.emplace_back(server, sh);
    }
  } else {
    ++result_.failed_reads;
    CAIRN_LOG(Info, "download: list on %s: %s", servers_[server].name.c_str(), shares.status().ToString().c_str());
  }
  if (state_ == State::kLocating) {
    std::set<std::uint32_t> distinct;
    for (const auto& c : candidates_) distinct.insert(c.second);
    if (distinct.size() < cap_.k && lists_outstanding_ > 0) return;
    if (Stopping()) return;
    state_ = State::kFetching;
    return Activate();
  }
  // A late answer may be what a stalled activation waits for.
  if (state_ == State::kFetching && active_.size() + pending_.size() < cap_.k) Activate();
}

// Starts verifying candidate shares until k distinct ones are active or
// being activated; fails when that can no longer happen (no candidate
// left, nothing being verified and no server still to answer).
void Download::Activate() {
  if (state_ != State::kFetching) return;
  while (active_.size() + pending_.size() < cap_.k && !candidates_.empty()) {
    const std::size_t server = candidates_.front().first;
    const std::uint32_t shnum = candidates_.front().second;
    candidates_.pop_front();
    if (active_.count(shnum) || pending_.count(shnum)) {
      // Another copy of a share in use: keep it for later, as a replacement.
      bool other_distinct = false;
      for (const auto& c : candidates_) {
        if (!active_.count(c.second) && !pending_.count(c.second)) other_distinct = true;
      }
      candidates_.push_back({server, shnum});
      if (!other_distinct) break;
      continue;
    }
    pending_.insert(shnum);
    auto self = shared_from_this();
    servers_[server].client->ReadImmutable(
        si_, shnum, 0, kChkHeaderMaxSize,
        [self, server, shnum](Result<std::string> r) { self->HeaderRead(server, shnum, std::move(r)); });
  }
  if (active_.size() + pending_.size() < cap_.k && pending_.empty()) {
    if (lists_outstanding_ > 0) return;  // a server may still name more shares
    return Fail(Status::NotEnoughServers("found " + std::to_string(active_.size()) + " usable shares, need " +
                                         std::to_string(cap_.k)));
  }
  if (active_.size() == cap_.k) FetchSegment();
}

void Download::HeaderRead(std::size_t server, std::uint32_t shnum, Result<std::string> r) {
  if (state_ != State::kFetching) return;
  if (!r.ok()) {
    ++result_.failed_reads;
    pending_.erase(shnum);
    return Activate();
  }
  auto header = ParseChkShareHeader(*r);
  if (!header.ok()) {
    pending_.erase(shnum);
    Corrupt(server, shnum, "share header: " + std::string(header.status().message()));
    return Activate();
  }
  Share share{server, shnum, *header};
  std::uint64_t from = header->o_crypttext_hash_tree;
  std::uint64_t to = header->o_uri_extension + header->ueb_length_size() + kMaxUebLength;
  auto self = shared_from_this();
  servers_[server].client->ReadImmutable(
      si_, shnum, from, to - from, [self, share](Result<std::string> r2) { self->HashesRead(share, std::move(r2)); });
}

// Checks a share's hash areas (and, the first time, the UEB and the
// crypttext hash tree) against the cap.
void Download::HashesRead(Share share, Result<std::string> r) {
  if (state_ != State::kFetching) return;
  pending_.erase(share.shnum);
  if (!r.ok()) {
    ++result_.failed_reads;
    return Activate();
  }
  const ChkShareHeader& h = share.header;
  std::string_view bytes = *r;
  std::uint64_t base = h.o_crypttext_hash_tree;
  std::uint64_t ueb_len_at = h.o_uri_extension - base;
  if (bytes.size() < ueb_len_at + h.ueb_length_size()) {
    Corrupt(share.server, share.shnum, "share is shorter than its offsets");
    return Activate();
  }
  std::uint64_t ueb_len = GetBe(bytes.substr(ueb_len_at, h.ueb_length_size()));
  std::uint64_t ueb_at = ueb_len_at + h.ueb_length_size();
  if (ueb_len >= kMaxUebLength || bytes.size() < ueb_at + ueb_len) {
    Corrupt(share.server, share.shnum, "bad URI extension block length");
    return Activate();
  }
  std::string_view ueb = bytes.substr(ueb_at, ueb_len);
  if (!reader_) {
    auto reader = ChkReader::Create(cap_, ueb);
    if (!reader.ok()) {
      Corrupt(share.server, share.shnum, "URI extension block: " + std::string(reader.status().message()));
      return Activate();
    }
    reader_ = std::make_unique<ChkReader>(std::move(*reader));
  }
  const ChkUeb& u = reader_->ueb();
  if (h.block_size != u.segment_size / u.k) {
    Corrupt(share.server, share.shnum, "block size disagrees with the URI extension block");
    return Activate();
  }
  std::string_view ct_tree = bytes.substr(0, h.o_block_hashes - base);
  if (!crypttext_tree_accepted_) {
    Status st = reader_->AcceptCrypttextTree(ct_tree);
    if (!st.ok()) {
      Corrupt(share.server, share.shnum, "crypttext hash tree: " + std::string(st.message()));
      return Activate();
    }
    crypttext_tree_accepted_ = true;
  }
  Status st = reader_->AcceptShareHashes(share.shnum,
                                         bytes.substr(h.o_block_hashes - base, h.o_share_hashes - h.o_block_hashes),
                                         bytes.substr(h.o_share_hashes - base, h.o_uri_extension - h.o_share_hashes));
  if (!st.ok()) {
    Corrupt(share.server, share.shnum, "share hashes: " + std::string(st.message()));
    return Activate();
  }
  active_[share.shnum] = share;
  if (active_.size() < cap_.k) return Activate();
  // A replacement arriving while a segment is being fetched fills its gap.
  if (!fetching_.empty() || !blocks_.empty()) return FetchBlock(share);
  FetchSegment();
}

void Download::Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why) {
  ++result_.corrupt_shares;
  CAIRN_LOG(Warn, "download: share %u on %s is corrupt: %s", static_cast<unsigned>(shnum),
            servers_[server].name.c_str(), why.c_str());
  std::string reason = why.substr(0, 1000);
  ++side_requests_;
  auto self = shared_from_this();
  servers_[server].client->AdviseCorrupt(false, si_, shnum, reason, [self](Status) { self->SideDone(); });
}

void Download::FetchSegment() {
  if (state_ != State::kFetching || Stopping()) return;
  blocks_.clear();
  for (const auto& [sh, share] : active_) FetchBlock(share);
}

void Download::FetchBlock(const Share& share) {
  std::uint64_t seg = seg_;
  fetching_.insert(share.shnum);
  std::uint64_t offset = share.header.o_data + seg * share.header.block_size;
  auto self = shared_from_this();
  servers_[share.server].client->ReadImmutable(
      si_, share.shnum, offset, reader_->BlockSize(seg),
      [self, share, seg](Result<std::string> r) { self->BlockRead(share, seg, std::move(r)); });
}

void Download::BlockRead(Share share, std::uint64_t seg, Result<std::string> r) {
  if (state_ != State::kFetching || seg != seg_) return;
  fetching_.erase(share.shnum);
  auto it = active_.find(share.shnum);
  if (it == active_.end() || it->second.server != share.server) return;
  if (!r.ok()) {
    ++result_.failed_reads;
    DropActive(share.shnum);
    return Activate();
  }
  if (r->size() != reader_->BlockSize(seg)) {
    Corrupt(share.server, share.shnum, "block " + std::to_string(seg) + " is short");
    DropActive(share.shnum);
    return Activate();
  }
  blocks_[share.shnum] = std::move(*r);
  MaybeDecode();
}

void Download::DropActive(std::uint32_t shnum) {
  active_.erase(shnum);
  blocks_.erase(shnum);
  fetching_.erase(shnum);
}

// Verifies the k blocks, decodes and writes the segment on the thread pool.
void Download::MaybeDecode() {
  if (blocks_.size() < cap_.k || !fetching_.empty()) return;
  state_ = State::kDecoding;
  std::uint64_t seg = seg_;
  auto blocks = std::make_shared<std::map<std::uint32_t, std::string>>(std::move(blocks_));
  blocks_.clear();
  auto bad = std::make_shared<std::optional<std::uint32_t>>();
  Download* d = this;
  auto self = shared_from_this();
  Offload(
      [d, blocks, bad, seg]() -> Status {
        for (const auto& [sh, block] : *blocks) {
          Status st = d->reader_->VerifyBlock(sh, seg, block);
          if (!st.ok()) {
            *bad = sh;
            return st;
          }
        }
        CAIRN_TRY_ASSIGN(std::string plain, d->reader_->DecodeSegment(seg, *blocks));
        std::uint64_t offset = seg * d->reader_->ueb().segment_size;
        return WriteAt(d->fd_, offset, plain.data(), plain.size(), d->path_);
      },
      [self, seg, bad, blocks](Status st) {
        if (self->state_ != State::kDecoding) return;
        self->state_ = State::kFetching;
        if (st.ok() || !bad->has_value()) return self->Decoded(seg, std::nullopt, st);
        // Keep the good blocks: only the bad share's block is fetched again.
        for (auto& [sh, block] : *blocks) {
          if (sh != **bad) self->blocks_[sh] = std::move(block);
        }
        self->Decoded(seg, *bad, st);
      });
}

void Download::Decoded(std::uint64_t seg, std::optional<std::uint32_t> bad, Status st) {
  if (bad) {
    auto it = active_.find(*bad);
    if (it != active_.end())
      Corrupt(it->second.server, *bad, "block " + std::to_string(seg) + ": " + std::string(st.message()));
    DropActive(*bad);
    return Activate();
  }
  if (!st.ok()) return Fail(st.WithContext("segment " + std::to_string(seg)));
  const ChkUeb& u = reader_->ueb();
  std::uint64_t done = std::min(u.size, (seg + 1) * u.segment_size);
  if (progress_) progress_("downloading", done, u.size);
  if (seg + 1 < u.num_segments) {
    ++seg_;
    return FetchSegment();
  }
  Finish();
}

void Download::Finish() {
  state_ = State::kSyncing;
  for (const auto& [sh, share] : active_) result_.shares_used[sh] = servers_[share.server].name;
  result_.size = cap_.size;
  Download* d = this;
  auto self = shared_from_this();
  Offload(
      [d]() -> Status {
        int fd = d->fd_;
        d->fd_ = -1;
        return SyncAndClose(fd, d->path_);
      },
      [self](Status st) {
        if (self->state_ != State::kSyncing) return;
        if (!st.ok()) return self->Fail(st);
        self->state_ = State::kDone;
        self->Deliver(std::move(self->result_));
      });
}

void Download::Fail(Status st) {
  if (state_ == State::kDone) return;
  bool created = state_ != State::kOpening || fd_ >= 0;
  state_ = State::kDone;
  CloseFile(fd_);
  fd_ = -1;
  if (created) {
    // Nothing partial stays behind under the output's name.
    std::string path = path_;
    Offload(
        [path]() -> Status {
          ::unlink(path.c_str());
          return Status();
        },
        [](Status) {});
  }
  Deliver(std::move(st));
}

// The caller hears of the end only once every request this download made
// was answered (advisories, the removal of a partial output): after its
// completion, nothing of it is left running.
void Download::Deliver(Result<DownloadResult> r) {
  result_pending_.emplace(std::move(r));
  if (side_requests_ > 0) return;
  auto done = std::move(done_);
  done(std::move(*result_pending_));
}

void Download::Offload(Callback<Status()> work, Callback<void(Status)> done) {
  ++side_requests_;
  auto self = shared_from_this();
  loop_.Offload(std::move(work), [self, done = std::move(done)](Status st) mutable {
    done(st);
    self->SideDone();
  });
}

void Download::SideDone() {
  if (--side_requests_ == 0 && result_pending_) {
    auto done = std::move(done_);
    done(std::move(*result_pending_));
  }
}

}  // namespace

void DownloadFile(Loop& loop, std::vector<GridServer> servers, caps::Cap cap, std::string path, ProgressFn progress,
                  StopFn stop, Callback<void(Result<DownloadResult>)> done) {
  auto d = std::make_shared<Download>(loop, std::move(servers), std::move(cap), std::move(path), std::move(progress),
                                      std::move(stop), std::move(done));
  d->Start();
}

}  // namespace cairn::immutable
