// CHK download over GBS (see the header). One Download object per call,
// owned by the completions in flight. At most one work item runs on the
// thread pool at a time (decode and write of one segment, or the final
// sync), and the loop does not change the reader meanwhile (hash areas that
// arrive then wait in deferred_; BlockSize and ueb() only read what never
// changes), so the ChkReader is never changed while another thread uses it. Loop thread only,
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
  std::uint64_t id = 0;  // this activation of (server, shnum): answers for an older one are dropped
};

// A segment in the fetch window: its verified-size blocks by share number
// and the share numbers whose block is being read.
struct Segment {
  std::map<std::uint32_t, std::string> blocks;
  std::set<std::uint32_t> fetching;
};

// A read in flight: which activation it serves and when it was sent.
struct Read {
  std::uint64_t share_id = 0;
  std::uint64_t sent_ms = 0;
};

// Segments whose blocks are fetched ahead of the one being decoded: the
// next segments' reads overlap the pool's verify, decode, decrypt and
// write of the current one. The window bounds memory to kWindow segments'
// k blocks plus one plaintext segment.
constexpr std::uint64_t kWindow = 3;
// A read is overdue after kOverdueFactor times the median of the recent
// answers' latencies, and never sooner than kOverdueFloorMs; the check runs
// every kOverdueCheckMs while blocks are fetched.
constexpr std::uint64_t kOverdueFactor = 4;
constexpr std::uint64_t kOverdueFloorMs = 1000;
constexpr std::uint64_t kOverdueCheckMs = 200;
constexpr std::size_t kLatencySamples = 32;

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
  enum class State { kOpening, kLocating, kFetching, kSyncing, kDone };

  void Opened(Status st);
  void Locate();
  void ListDone(std::size_t server, Result<gbs::ShareNumbers> shares);
  void Activate();
  void HeaderRead(std::size_t server, std::uint32_t shnum, std::uint64_t id, Result<std::string> r);
  void HashesRead(Share share, Result<std::string> r);
  void AcceptHashes(const Share& share, const std::string& bytes);
  void Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why);
  void Pump();
  void FetchBlock(const Share& share, std::uint64_t seg);
  void BlockRead(Share share, std::uint64_t seg, Result<std::string> r);
  void DropActive(std::uint32_t shnum);
  void MaybeDecode();
  void Decoded(std::uint64_t seg, std::optional<std::uint32_t> bad, Status st);
  void Finish();
  // A read of `share` (one activation) whose answer reaches `done` only if
  // the activation is still wanted then; a late answer for an abandoned one
  // is counted and dropped.
  void ReadShare(const Share& share, std::uint64_t offset, std::uint64_t length,
                 Callback<void(Result<std::string>)> done);
  void NoteLatency(std::uint64_t ms);
  std::uint64_t OverdueMs() const;
  void ArmOverdueCheck();
  void CheckOverdue();
  bool HasSpareFor(std::size_t server, std::uint32_t shnum) const;
  void Abandon(std::uint64_t share_id);
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
  std::map<std::uint32_t, Share> pending_;  // share number -> the activation being verified
  std::map<std::uint32_t, Share> active_;
  std::uint64_t next_share_id_ = 0;
  std::unique_ptr<ChkReader> reader_;
  bool crypttext_tree_accepted_ = false;
  // Hash areas that arrived while the pool was decoding (the reader is not
  // changed meanwhile): accepted once the decode is done.
  std::vector<std::pair<Share, std::string>> deferred_;

  std::map<std::uint64_t, Segment> window_;  // segments next_decode_ .. next_fetch_ - 1
  std::uint64_t next_decode_ = 0;
  std::uint64_t next_fetch_ = 0;
  bool decoding_ = false;  // segment next_decode_ is on the pool

  std::uint64_t next_read_id_ = 0;
  std::map<std::uint64_t, Read> reads_;  // reads in flight whose answers are still wanted
  std::deque<std::uint64_t> latencies_;  // of recent answers, in ms
  std::unique_ptr<Timer> overdue_timer_;
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
  const std::uint64_t sent = loop_.NowMs();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i].client->ListImmutable(si_, [self, i, sent](Result<gbs::ShareNumbers> shares) {
      if (shares.ok()) self->NoteLatency(self->loop_.NowMs() - sent);
      self->ListDone(i, std::move(shares));
    });
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
    ArmOverdueCheck();
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
    Share share;
    share.server = server;
    share.shnum = shnum;
    share.id = ++next_share_id_;
    pending_[shnum] = share;
    auto self = shared_from_this();
    ReadShare(share, 0, kChkHeaderMaxSize, [self, server, shnum, id = share.id](Result<std::string> r) {
      self->HeaderRead(server, shnum, id, std::move(r));
    });
  }
  if (active_.size() + pending_.size() < cap_.k && pending_.empty()) {
    if (lists_outstanding_ > 0) return;  // a server may still name more shares
    return Fail(Status::NotEnoughServers("found " + std::to_string(active_.size()) + " usable shares, need " +
                                         std::to_string(cap_.k)));
  }
  if (active_.size() == cap_.k) Pump();
}

void Download::HeaderRead(std::size_t server, std::uint32_t shnum, std::uint64_t id, Result<std::string> r) {
  if (state_ != State::kFetching) return;
  auto it = pending_.find(shnum);
  if (it == pending_.end() || it->second.id != id) return;
  if (!r.ok()) {
    ++result_.failed_reads;
    pending_.erase(it);
    return Activate();
  }
  auto header = ParseChkShareHeader(*r);
  if (!header.ok()) {
    pending_.erase(it);
    Corrupt(server, shnum, "share header: " + std::string(header.status().message()));
    return Activate();
  }
  it->second.header = *header;
  Share share = it->second;
  std::uint64_t from = header->o_crypttext_hash_tree;
  std::uint64_t to = header->o_uri_extension + header->ueb_length_size() + kMaxUebLength;
  auto self = shared_from_this();
  ReadShare(share, from, to - from, [self, share](Result<std::string> r2) { self->HashesRead(share, std::move(r2)); });
}

void Download::HashesRead(Share share, Result<std::string> r) {
  if (state_ != State::kFetching) return;
  auto it = pending_.find(share.shnum);
  if (it == pending_.end() || it->second.id != share.id) return;
  if (!r.ok()) {
    ++result_.failed_reads;
    pending_.erase(it);
    return Activate();
  }
  AcceptHashes(share, *r);
}

// Checks a share's hash areas (and, the first time, the UEB and the
// crypttext hash tree) against the cap. While the pool decodes (and reads
// the reader), they wait in deferred_ (the share stays pending).
void Download::AcceptHashes(const Share& share, const std::string& read) {
  if (decoding_) {
    deferred_.emplace_back(share, read);
    return;
  }
  pending_.erase(share.shnum);
  const ChkShareHeader& h = share.header;
  std::string_view bytes = read;
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
  Pump();
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

// Fills the window: every segment in it has a read in flight or a block from
// each active share until it holds k blocks (a replacement share fills the
// gaps its predecessor left), and new segments enter while there is room.
void Download::Pump() {
  if (state_ != State::kFetching || Stopping()) return;
  if (active_.size() < cap_.k) return;
  const std::uint64_t segments = reader_->ueb().num_segments;
  while (next_fetch_ < segments && next_fetch_ < next_decode_ + kWindow) window_[next_fetch_++];
  for (auto& [seg, s] : window_) {
    if (decoding_ && seg == next_decode_) continue;
    for (const auto& [sh, share] : active_) {
      if (s.blocks.size() + s.fetching.size() >= cap_.k) break;
      if (s.blocks.count(sh) || s.fetching.count(sh)) continue;
      FetchBlock(share, seg);
    }
  }
  MaybeDecode();
}

void Download::FetchBlock(const Share& share, std::uint64_t seg) {
  window_[seg].fetching.insert(share.shnum);
  std::uint64_t offset = share.header.o_data + seg * share.header.block_size;
  auto self = shared_from_this();
  ReadShare(share, offset, reader_->BlockSize(seg),
            [self, share, seg](Result<std::string> r) { self->BlockRead(share, seg, std::move(r)); });
}

void Download::BlockRead(Share share, std::uint64_t seg, Result<std::string> r) {
  if (state_ != State::kFetching) return;
  auto w = window_.find(seg);
  if (w == window_.end()) return;  // decoded from other blocks meanwhile
  auto it = active_.find(share.shnum);
  if (it == active_.end() || it->second.id != share.id) return;
  w->second.fetching.erase(share.shnum);
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
  w->second.blocks[share.shnum] = std::move(*r);
  MaybeDecode();
}

// A share no longer used: its blocks and reads are forgotten (answers for
// it are dropped: its activation is gone).
void Download::DropActive(std::uint32_t shnum) {
  active_.erase(shnum);
  for (auto& [seg, s] : window_) {
    s.blocks.erase(shnum);
    s.fetching.erase(shnum);
  }
}

// Verifies k blocks of the next segment, decodes and writes it on the pool.
void Download::MaybeDecode() {
  if (decoding_ || state_ != State::kFetching) return;
  auto w = window_.find(next_decode_);
  if (w == window_.end() || w->second.blocks.size() < cap_.k) return;
  decoding_ = true;
  std::uint64_t seg = next_decode_;
  auto blocks = std::make_shared<std::map<std::uint32_t, std::string>>();
  while (blocks->size() < cap_.k) {
    auto first = w->second.blocks.begin();
    blocks->emplace(first->first, std::move(first->second));
    w->second.blocks.erase(first);
  }
  auto bad = std::make_shared<std::optional<std::uint32_t>>();
  Download* d = this;
  auto self = shared_from_this();
  Offload(
      [d, blocks, bad, seg]() -> Status {
        std::uint32_t bad_share = 0;
        Status st = d->reader_->VerifyBlocks(seg, *blocks, &bad_share);
        if (!st.ok()) {
          *bad = bad_share;
          return st;
        }
        CAIRN_TRY_ASSIGN(std::string plain, d->reader_->DecodeSegment(seg, *blocks));
        std::uint64_t offset = seg * d->reader_->ueb().segment_size;
        return WriteAt(d->fd_, offset, plain.data(), plain.size(), d->path_);
      },
      [self, seg, bad, blocks](Status st) {
        self->decoding_ = false;
        if (self->state_ != State::kFetching) return;
        if (st.ok() || !bad->has_value()) return self->Decoded(seg, std::nullopt, st);
        // Keep the good blocks: only the bad share's block is fetched again.
        auto again = self->window_.find(seg);
        for (auto& [sh, block] : *blocks) {
          if (sh != **bad && again != self->window_.end()) again->second.blocks[sh] = std::move(block);
        }
        self->Decoded(seg, *bad, st);
      });
}

void Download::Decoded(std::uint64_t seg, std::optional<std::uint32_t> bad, Status st) {
  if (!bad && !st.ok()) return Fail(st.WithContext("segment " + std::to_string(seg)));
  if (bad) {
    auto it = active_.find(*bad);
    if (it != active_.end())
      Corrupt(it->second.server, *bad, "block " + std::to_string(seg) + ": " + std::string(st.message()));
    DropActive(*bad);
  } else {
    window_.erase(seg);
    ++next_decode_;
    const ChkUeb& u = reader_->ueb();
    std::uint64_t done = std::min(u.size, next_decode_ * u.segment_size);
    if (progress_) progress_("downloading", done, u.size);
    if (next_decode_ == u.num_segments) return Finish();
  }
  // Hash areas that waited for the pool.
  auto deferred = std::move(deferred_);
  deferred_.clear();
  for (auto& [share, bytes] : deferred) {
    if (state_ != State::kFetching) return;
    auto it = pending_.find(share.shnum);
    if (it == pending_.end() || it->second.id != share.id) continue;
    AcceptHashes(share, bytes);
  }
  Activate();
  Pump();
}

void Download::Finish() {
  state_ = State::kSyncing;
  overdue_timer_.reset();
  reads_.clear();  // answers still on their way are not wanted
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

void Download::ReadShare(const Share& share, std::uint64_t offset, std::uint64_t length,
                         Callback<void(Result<std::string>)> done) {
  const std::uint64_t id = ++next_read_id_;
  reads_[id] = Read{share.id, loop_.NowMs()};
  auto self = shared_from_this();
  servers_[share.server].client->ReadImmutable(
      si_, share.shnum, offset, length, [self, id, done = std::move(done)](Result<std::string> r) mutable {
        auto it = self->reads_.find(id);
        if (it == self->reads_.end()) {
          // Abandoned as overdue (or the download ended): never used.
          if (self->state_ == State::kFetching) CAIRN_LOG(Info, "download: dropped a late answer");
          return;
        }
        if (r.ok()) self->NoteLatency(self->loop_.NowMs() - it->second.sent_ms);
        self->reads_.erase(it);
        done(std::move(r));
      });
}

void Download::NoteLatency(std::uint64_t ms) {
  latencies_.push_back(ms);
  if (latencies_.size() > kLatencySamples) latencies_.pop_front();
}

std::uint64_t Download::OverdueMs() const {
  if (latencies_.empty()) return kOverdueFloorMs;
  std::vector<std::uint64_t> v(latencies_.begin(), latencies_.end());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return std::max(kOverdueFloorMs, kOverdueFactor * v[v.size() / 2]);
}

void Download::ArmOverdueCheck() {
  std::weak_ptr<Download> weak = shared_from_this();
  overdue_timer_ = loop_.PostAfter(kOverdueCheckMs, [weak] {
    if (auto self = weak.lock()) self->CheckOverdue();
  });
}

// A share whose read is overdue is given up for another (a distinct share
// number not in use, or another server's copy of the same one) when there
// is one; without a spare it is waited for. Its late answers are dropped.
void Download::CheckOverdue() {
  if (state_ != State::kFetching) return;
  const std::uint64_t now = loop_.NowMs();
  const std::uint64_t limit = OverdueMs();
  std::set<std::uint64_t> overdue;
  for (const auto& [id, read] : reads_) {
    if (now - read.sent_ms > limit) overdue.insert(read.share_id);
  }
  for (std::uint64_t share_id : overdue) {
    if (state_ != State::kFetching) return;
    Abandon(share_id);
  }
  if (state_ == State::kFetching) ArmOverdueCheck();
}

bool Download::HasSpareFor(std::size_t server, std::uint32_t shnum) const {
  for (const auto& [s, sh] : candidates_) {
    if (s == server) continue;
    if (sh == shnum || (!active_.count(sh) && !pending_.count(sh))) return true;
  }
  return false;
}

void Download::Abandon(std::uint64_t share_id) {
  const Share* share = nullptr;
  for (const auto& [sh, s] : active_) {
    if (s.id == share_id) share = &s;
  }
  for (const auto& [sh, s] : pending_) {
    if (s.id == share_id) share = &s;
  }
  if (!share) return;
  const std::size_t server = share->server;
  const std::uint32_t shnum = share->shnum;
  if (!HasSpareFor(server, shnum)) return;
  CAIRN_LOG(Info, "download: share %u on %s is overdue (%llu ms); using another", static_cast<unsigned>(shnum),
            servers_[server].name.c_str(), static_cast<unsigned long long>(OverdueMs()));
  ++result_.overdue_shares;
  for (auto it = reads_.begin(); it != reads_.end();) {
    it = it->second.share_id == share_id ? reads_.erase(it) : std::next(it);
  }
  if (pending_.count(shnum) && pending_[shnum].id == share_id) pending_.erase(shnum);
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    it = it->first.id == share_id ? deferred_.erase(it) : std::next(it);
  }
  if (active_.count(shnum) && active_[shnum].id == share_id) DropActive(shnum);
  // The slow server's shares become the last resort.
  std::deque<std::pair<std::size_t, std::uint32_t>> fast, slow;
  for (const auto& c : candidates_) (c.first == server ? slow : fast).push_back(c);
  slow.emplace_back(server, shnum);
  candidates_ = std::move(fast);
  candidates_.insert(candidates_.end(), slow.begin(), slow.end());
  Activate();
}

void Download::Fail(Status st) {
  if (state_ == State::kDone) return;
  bool created = state_ != State::kOpening || fd_ >= 0;
  state_ = State::kDone;
  overdue_timer_.reset();
  reads_.clear();
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
