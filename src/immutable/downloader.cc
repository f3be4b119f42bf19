// CHK download over GBS (see the header). One Download object per call,
// owned by the completions in flight. Its completion is a grid::Operation:
// delivered once, on a later turn, only after every corruption advisory and
// pool job of the download has ended. At most one work item runs on the
// thread pool at a time (decode and write of one segment, or the final
// sync), and the loop does not change the reader meanwhile (hash areas that
// arrive then wait in deferred_; BlockSize and ueb() only read what never
// changes), so the ChkReader is never changed while another thread uses it.
// Loop thread only, except those work items.
#include "cairn/immutable/downloader.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>

#include "cairn/core/endian.h"
#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/grid/placement.h"
#include "cairn/immutable/chk_reader.h"
#include "immutable/file_io.h"

namespace cairn::immutable {
namespace {

// The UEB is shorter than this in every share a reader accepts.
constexpr std::uint64_t kMaxUebLength = 2000;

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

// The URI extension block in `bytes`, a share's hash areas read from its
// o_crypttext_hash_tree on; Integrity when they are too short for it.
Result<std::string_view> UebOf(const ChkShareHeader& h, std::string_view bytes) {
  const std::uint64_t ueb_len_at = h.o_uri_extension - h.o_crypttext_hash_tree;
  if (bytes.size() < ueb_len_at + h.ueb_length_size()) return Status::Integrity("share is shorter than its offsets");
  const std::uint64_t ueb_len = GetBe(bytes, static_cast<std::size_t>(ueb_len_at), h.ueb_length_size());
  const std::uint64_t ueb_at = ueb_len_at + h.ueb_length_size();
  if (ueb_len >= kMaxUebLength || bytes.size() < ueb_at + ueb_len) {
    return Status::Integrity("bad URI extension block length");
  }
  return bytes.substr(ueb_at, ueb_len);
}

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
        op_(loop, "immutable download", std::move(done)) {}
  ~Download() { CloseFile(fd_); }

  void Start();

 private:
  enum class State { kOpening, kLocating, kFetching, kSyncing, kDone };

  Status OpenOutput();
  void Opened(Status st);
  // Finding and verifying shares.
  void Locate();
  void ListDone(std::size_t server, Result<gbs::ShareNumbers> shares);
  void Activate();
  bool HasOtherDistinctCandidate() const;
  void StartActivation(std::size_t server, std::uint32_t shnum);
  void HeaderRead(std::size_t server, std::uint32_t shnum, std::uint64_t id, Result<std::string> r);
  void HashesRead(Share share, Result<std::string> r);
  void AcceptHashes(const Share& share, const std::string& bytes);
  Status CheckHashAreas(const Share& share, std::string_view bytes);
  Status UseUeb(std::string_view ueb);
  void Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why);
  // Fetching and decoding segments.
  void Pump();
  void FetchBlock(const Share& share, std::uint64_t seg);
  void BlockRead(Share share, std::uint64_t seg, Result<std::string> r);
  void DropActive(std::uint32_t shnum);
  void MaybeDecode();
  Status DecodeAndWrite(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks,
                        std::optional<std::uint32_t>* bad);
  void DecodeAnswered(std::uint64_t seg, std::optional<std::uint32_t> bad,
                      std::map<std::uint32_t, std::string> blocks, Status st);
  void Decoded(std::uint64_t seg, std::optional<std::uint32_t> bad, Status st);
  void AcceptDeferred();
  void SyncOutput();
  void Synced(Status st);
  // A read of `share` (one activation) whose answer reaches `done` only if
  // the activation is still wanted then; a late answer for an abandoned one
  // is counted and dropped.
  void ReadShare(const Share& share, std::uint64_t offset, std::uint64_t length,
                 Callback<void(Result<std::string>)> done);
  // Overdue reads.
  void NoteLatency(std::uint64_t ms);
  std::uint64_t OverdueMs() const;
  void ArmOverdueCheck();
  void CheckOverdue();
  bool HasSpareFor(std::size_t server, std::uint32_t shnum) const;
  void Abandon(std::uint64_t share_id);
  const Share* FindActivation(std::uint64_t share_id) const;
  void ForgetActivation(std::uint64_t share_id, std::uint32_t shnum);
  void DemoteServer(std::size_t server, std::uint32_t shnum);
  // The end.
  bool Stopping();
  void Fail(Status st);
  // Loop::Offload as side work of op_: the end is not reported while work
  // of this operation still runs on the pool.
  void Offload(Callback<Status()> work, Callback<void(Status)> done);

  Loop& loop_;
  std::vector<GridServer> servers_;
  caps::Cap cap_;
  std::string path_;
  ProgressFn progress_;
  StopFn stop_;
  grid::Operation<DownloadResult> op_;  // the completion; advisories and pool work are its side work
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
  if (cap_.kind != caps::CapKind::kLiteral && cap_.kind != caps::CapKind::kChk) {
    state_ = State::kDone;
    return op_.FinishSoon(Status::BadCap("only LIT and CHK caps can be downloaded here"));
  }
  Download* d = this;
  auto self = shared_from_this();
  Offload([d]() -> Status { return d->OpenOutput(); }, [self](Status st) { self->Opened(st); });
}

// On the pool: creates the output file; a LIT cap's data is written and
// synced at once.
Status Download::OpenOutput() {
  CAIRN_TRY_ASSIGN(fd_, OpenForWrite(path_));
  if (cap_.kind != caps::CapKind::kLiteral) return Status();
  const std::string& data = cap_.literal;
  CAIRN_TRY(WriteAt(fd_, 0, data.data(), data.size(), path_));
  Status st = SyncAndClose(fd_, path_);
  fd_ = -1;
  return st;
}

void Download::Opened(Status st) {
  if (state_ == State::kDone) return;
  if (!st.ok()) return Fail(st);
  if (cap_.kind == caps::CapKind::kLiteral) {
    state_ = State::kDone;
    result_.size = cap_.literal.size();
    if (progress_) progress_("downloading", result_.size, result_.size);
    return op_.Finish(std::move(result_));
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
  for (const GridServer& s : servers_) seeds.push_back(s.permutation_seed);
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
      bool other_distinct = HasOtherDistinctCandidate();
      candidates_.push_back({server, shnum});
      if (!other_distinct) break;
      continue;
    }
    StartActivation(server, shnum);
  }
  if (active_.size() + pending_.size() < cap_.k && pending_.empty()) {
    if (lists_outstanding_ > 0) return;  // a server may still name more shares
    return Fail(Status::NotEnoughServers("found " + std::to_string(active_.size()) + " usable shares, need " +
                                         std::to_string(cap_.k)));
  }
  if (active_.size() == cap_.k) Pump();
}

// A candidate whose share number is neither active nor being activated.
bool Download::HasOtherDistinctCandidate() const {
  for (const auto& c : candidates_) {
    if (!active_.count(c.second) && !pending_.count(c.second)) return true;
  }
  return false;
}

// A new activation of (server, shnum): its header is read first.
void Download::StartActivation(std::size_t server, std::uint32_t shnum) {
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
  Status st = CheckHashAreas(share, read);
  if (!st.ok()) {
    Corrupt(share.server, share.shnum, std::string(st.message()));
    return Activate();
  }
  active_[share.shnum] = share;
  if (active_.size() < cap_.k) return Activate();
  Pump();
}

// Integrity, naming what is wrong, unless `bytes` (the share's hash areas
// and UEB) agree with the cap; the first good ones make the reader.
Status Download::CheckHashAreas(const Share& share, std::string_view bytes) {
  const ChkShareHeader& h = share.header;
  const std::uint64_t base = h.o_crypttext_hash_tree;
  CAIRN_TRY_ASSIGN(std::string_view ueb, UebOf(h, bytes));
  CAIRN_TRY(UseUeb(ueb));
  const ChkUeb& u = reader_->ueb();
  if (h.block_size != u.segment_size / u.k) {
    return Status::Integrity("block size disagrees with the URI extension block");
  }
  if (!crypttext_tree_accepted_) {
    Status st = reader_->AcceptCrypttextTree(bytes.substr(0, h.o_block_hashes - base));
    if (!st.ok()) return Status::Integrity("crypttext hash tree: " + std::string(st.message()));
    crypttext_tree_accepted_ = true;
  }
  Status st = reader_->AcceptShareHashes(share.shnum,
                                         bytes.substr(h.o_block_hashes - base, h.o_share_hashes - h.o_block_hashes),
                                         bytes.substr(h.o_share_hashes - base, h.o_uri_extension - h.o_share_hashes));
  if (!st.ok()) return Status::Integrity("share hashes: " + std::string(st.message()));
  return Status();
}

// The first UEB that checks against the cap makes the reader; later shares'
// UEBs are not read again (their hashes are checked against its roots).
Status Download::UseUeb(std::string_view ueb) {
  if (reader_) return Status();
  auto reader = ChkReader::Create(cap_, ueb);
  if (!reader.ok()) return Status::Integrity("URI extension block: " + std::string(reader.status().message()));
  reader_ = std::make_unique<ChkReader>(std::move(*reader));
  return Status();
}

// The caller hears of the end only once every advisory this download sent
// was answered: after its completion, nothing of it is left running.
void Download::Corrupt(std::size_t server, std::uint32_t shnum, const std::string& why) {
  ++result_.corrupt_shares;
  CAIRN_LOG(Warn, "download: share %u on %s is corrupt: %s", static_cast<unsigned>(shnum),
            servers_[server].name.c_str(), why.c_str());
  std::string reason = why.substr(0, 1000);
  op_.SideStarted();
  servers_[server].client->AdviseCorrupt(false, si_, shnum, reason, [op = op_](Status) { op.SideEnded(); });
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
  Offload([d, blocks, bad, seg]() -> Status { return d->DecodeAndWrite(seg, *blocks, bad.get()); },
          [self, seg, bad, blocks](Status st) { self->DecodeAnswered(seg, *bad, std::move(*blocks), st); });
}

// On the pool: verifies the blocks of `seg` (*bad names the share whose
// block failed), decodes, decrypts and writes the segment at its offset.
Status Download::DecodeAndWrite(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks,
                                std::optional<std::uint32_t>* bad) {
  std::uint32_t bad_share = 0;
  Status st = reader_->VerifyBlocks(seg, blocks, &bad_share);
  if (!st.ok()) {
    *bad = bad_share;
    return st;
  }
  CAIRN_TRY_ASSIGN(std::string plain, reader_->DecodeSegment(seg, blocks));
  std::uint64_t offset = seg * reader_->ueb().segment_size;
  return WriteAt(fd_, offset, plain.data(), plain.size(), path_);
}

void Download::DecodeAnswered(std::uint64_t seg, std::optional<std::uint32_t> bad,
                              std::map<std::uint32_t, std::string> blocks, Status st) {
  decoding_ = false;
  if (state_ != State::kFetching) return;
  if (st.ok() || !bad.has_value()) return Decoded(seg, std::nullopt, st);
  // Keep the good blocks: only the bad share's block is fetched again.
  auto again = window_.find(seg);
  for (auto& [sh, block] : blocks) {
    if (sh != *bad && again != window_.end()) again->second.blocks[sh] = std::move(block);
  }
  Decoded(seg, bad, st);
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
    if (next_decode_ == u.num_segments) return SyncOutput();
  }
  AcceptDeferred();
  // Both return at once if the download ended meanwhile.
  Activate();
  Pump();
}

// Hash areas that waited for the pool.
void Download::AcceptDeferred() {
  auto deferred = std::move(deferred_);
  deferred_.clear();
  for (auto& [share, bytes] : deferred) {
    if (state_ != State::kFetching) return;
    auto it = pending_.find(share.shnum);
    if (it == pending_.end() || it->second.id != share.id) continue;
    AcceptHashes(share, bytes);
  }
}

// Every segment is written: the output is synced and closed on the pool.
void Download::SyncOutput() {
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
      [self](Status st) { self->Synced(st); });
}

void Download::Synced(Status st) {
  if (state_ != State::kSyncing) return;
  if (!st.ok()) return Fail(st);
  state_ = State::kDone;
  op_.Finish(std::move(result_));
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
  const Share* share = FindActivation(share_id);
  if (!share) return;
  const std::size_t server = share->server;
  const std::uint32_t shnum = share->shnum;
  if (!HasSpareFor(server, shnum)) return;
  CAIRN_LOG(Info, "download: share %u on %s is overdue (%llu ms); using another", static_cast<unsigned>(shnum),
            servers_[server].name.c_str(), static_cast<unsigned long long>(OverdueMs()));
  ++result_.overdue_shares;
  ForgetActivation(share_id, shnum);
  DemoteServer(server, shnum);
  Activate();
}

// The activation `share_id`, pending or active (pending wins), or null.
const Share* Download::FindActivation(std::uint64_t share_id) const {
  const Share* share = nullptr;
  for (const auto& [sh, s] : active_) {
    if (s.id == share_id) share = &s;
  }
  for (const auto& [sh, s] : pending_) {
    if (s.id == share_id) share = &s;
  }
  return share;
}

// Drops every trace of activation `share_id` of `shnum`: its reads (their
// answers are then dropped), its verification, its deferred hash areas,
// its blocks.
void Download::ForgetActivation(std::uint64_t share_id, std::uint32_t shnum) {
  for (auto it = reads_.begin(); it != reads_.end();) {
    it = it->second.share_id == share_id ? reads_.erase(it) : std::next(it);
  }
  if (pending_.count(shnum) && pending_[shnum].id == share_id) pending_.erase(shnum);
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    it = it->first.id == share_id ? deferred_.erase(it) : std::next(it);
  }
  if (active_.count(shnum) && active_[shnum].id == share_id) DropActive(shnum);
}

// The slow server's shares become the last resort, (server, shnum) last.
void Download::DemoteServer(std::size_t server, std::uint32_t shnum) {
  std::deque<std::pair<std::size_t, std::uint32_t>> fast, slow;
  for (const auto& c : candidates_) (c.first == server ? slow : fast).push_back(c);
  slow.emplace_back(server, shnum);
  candidates_ = std::move(fast);
  candidates_.insert(candidates_.end(), slow.begin(), slow.end());
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
    // Nothing partial stays behind under the output's name; the caller
    // hears of the end only once it is removed.
    std::string path = path_;
    Offload(
        [path]() -> Status {
          ::unlink(path.c_str());
          return Status();
        },
        [](Status) {});
  }
  op_.Finish(std::move(st));
}

void Download::Offload(Callback<Status()> work, Callback<void(Status)> done) {
  op_.SideStarted();
  auto self = shared_from_this();
  loop_.Offload(std::move(work), [self, done = std::move(done)](Status st) mutable {
    done(st);
    self->op_.SideEnded();
  });
}

}  // namespace

void DownloadFile(Loop& loop, std::vector<GridServer> servers, caps::Cap cap, std::string path, ProgressFn progress,
                  StopFn stop, Callback<void(Result<DownloadResult>)> done) {
  auto d = std::make_shared<Download>(loop, std::move(servers), std::move(cap), std::move(path), std::move(progress),
                                      std::move(stop), std::move(done));
  d->Start();
}

}  // namespace cairn::immutable
