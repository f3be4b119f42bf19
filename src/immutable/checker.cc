// The immutable checker and verifier (include/cairn/immutable/checker.h).
// One Check object per call: it lists the shares on every server, then (for
// verify) walks the shares found, kVerifyParallel at a time, each through
// header -> hash areas -> blocks, one read in flight per share; block hashes
// are checked on the thread pool. Loop thread only (the pool jobs touch only
// their share's own reader and bytes).
#include "cairn/immutable/checker.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <set>

#include "cairn/core/endian.h"
#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/immutable/chk_reader.h"

namespace cairn::immutable {
namespace {

// Readers reject a UEB this long or longer (tahoe-protocol.md 5.4).
constexpr std::uint64_t kMaxUebLength = 2000;
// About this many bytes of blocks are read (and hashed) at a time.
constexpr std::uint64_t kBlockReadBytes = 1 << 20;

// Reads of at most this many bytes of blocks are hashed on the loop.
constexpr std::uint64_t kInlineVerifyBytes = 64 << 10;

// Checks `count` blocks from segment `first` on in `bytes` (each `block`
// bytes apart); on failure *why names the block. Any thread (the reader is
// used by one thread at a time).
Status VerifyBlockRun(const ChkReader& reader, const std::string& bytes, std::uint64_t first, std::uint64_t count,
                      std::uint64_t block, std::uint32_t shnum, std::string* why) {
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t seg = first + i;
    const std::uint64_t at = i * block;
    const std::uint64_t size = reader.BlockSize(seg);
    if (bytes.size() < at + size) {
      *why = "block " + std::to_string(seg) + " is short (the share ends early)";
      return Status::Integrity(*why);
    }
    Status st = reader.VerifyBlock(shnum, seg, std::string_view(bytes).substr(at, size));
    if (!st.ok()) {
      *why = "block " + std::to_string(seg) + ": " + std::string(st.message());
      return st;
    }
  }
  return Status();
}

// One share being verified. The reader is used by one pool job at a time.
struct ShareCheck {
  std::size_t server = 0;
  std::uint32_t shnum = 0;
  ChkShareHeader header;
  std::shared_ptr<ChkReader> reader;
  std::uint64_t next_segment = 0;
};

class Check : public std::enable_shared_from_this<Check> {
 public:
  Check(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, CheckOptions options,
        grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        cap_(std::move(cap)),
        options_(options),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        op_(loop, "immutable check", std::move(done)) {}

  void Start();

 private:
  bool Stopping() { return op_.finished() || (stop_ && stop_()); }
  void Report(const char* phase, std::uint64_t done, std::uint64_t total) {
    if (progress_) progress_(phase, done, total);
  }
  void Listed(std::size_t i, Result<gbs::ShareNumbers> shares);
  void StartVerify();
  void NextShares();
  void HeaderRead(std::shared_ptr<ShareCheck> s, Result<std::string> r);
  void HashesRead(std::shared_ptr<ShareCheck> s, Result<std::string> r);
  void ReadBlocks(std::shared_ptr<ShareCheck> s);
  void BlocksRead(std::shared_ptr<ShareCheck> s, std::uint64_t first, std::uint64_t count, Result<std::string> r);
  void BlocksChecked(const std::shared_ptr<ShareCheck>& s, std::uint64_t first, std::uint64_t count, std::uint64_t size,
                     const Status& st, const std::string& why);
  void ShareGood(const ShareCheck& s);
  void ShareCorrupt(const ShareCheck& s, const std::string& why);
  void ShareUnread(const ShareCheck& s, const Status& st);
  void ShareEnded();
  void Done();

  Loop& loop_;
  std::vector<grid::GridServer> servers_;
  caps::Cap cap_;
  CheckOptions options_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  grid::Operation<grid::CheckResults> op_;
  gbs::StorageIndex si_{};
  grid::CheckResults results_;
  std::size_t outstanding_ = 0;
  std::vector<std::set<std::uint32_t>> listed_;  // per server
  std::vector<bool> answered_;
  std::deque<std::shared_ptr<ShareCheck>> queue_;
  std::size_t active_ = 0;
  std::uint64_t bytes_done_ = 0;
  std::uint64_t bytes_total_ = 0;
};

void Check::Start() {
  results_.k = cap_.k;
  results_.n = cap_.n;
  results_.happy = options_.happy;
  results_.verified = options_.verify;
  if (cap_.kind == caps::CapKind::kLiteral) {
    results_.FinishLiteral();
    return op_.FinishSoon(std::move(results_));
  }
  if (cap_.kind != caps::CapKind::kChk && cap_.kind != caps::CapKind::kChkVerifier) {
    return op_.FinishSoon(
        Status::BadCap("not an immutable file's cap (URI:LIT:, URI:CHK: or "
                       "URI:CHK-Verifier:)"));
  }
  auto si = caps::StorageIndexOf(cap_);
  if (!si.ok()) return op_.FinishSoon(si.status());
  results_.storage_index = *si;
  std::copy(si->begin(), si->end(), si_.begin());
  listed_.resize(servers_.size());
  answered_.assign(servers_.size(), false);
  if (servers_.empty()) {
    results_.FinishImmutable();
    return op_.FinishSoon(std::move(results_));
  }
  outstanding_ = servers_.size();
  auto self = shared_from_this();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i].client->ListImmutable(si_, [self, i](Result<gbs::ShareNumbers> r) { self->Listed(i, std::move(r)); });
  }
}

void Check::Listed(std::size_t i, Result<gbs::ShareNumbers> shares) {
  if (op_.finished()) return;
  if (shares.ok()) {
    answered_[i] = true;
    listed_[i].insert(shares->begin(), shares->end());
  } else {
    results_.servers_failed.push_back(servers_[i].name + ": " + shares.status().ToString());
  }
  Report("listing", servers_.size() - outstanding_ + 1, servers_.size());
  if (--outstanding_ > 0) return;
  if (Stopping()) return op_.Finish(Status::Cancelled("check cancelled"));
  for (std::size_t s = 0; s < servers_.size(); ++s) {
    if (!answered_[s]) continue;
    results_.servers_responding.push_back(servers_[s].name);
    if (options_.verify) continue;
    // A plain check believes the listing (Tahoe's checker does too).
    for (std::uint32_t sh : listed_[s]) {
      if (sh < cap_.n) results_.good[sh].insert(servers_[s].name);
    }
  }
  if (!options_.verify) return Done();
  StartVerify();
}

void Check::StartVerify() {
  for (std::size_t s = 0; s < servers_.size(); ++s) {
    for (std::uint32_t sh : listed_[s]) {
      auto share = std::make_shared<ShareCheck>();
      share->server = s;
      share->shnum = sh;
      queue_.push_back(share);
    }
  }
  // The blocks of one share: the file size over k, rounded up (the padding
  // of the tail is not counted; the figure is for progress only).
  bytes_total_ = queue_.size() * ((cap_.size + cap_.k - 1) / std::max<std::uint32_t>(cap_.k, 1));
  Report("verifying", 0, bytes_total_);
  if (queue_.empty()) return Done();
  NextShares();
}

// Starts shares until kVerifyParallel are being read.
void Check::NextShares() {
  if (Stopping()) {
    if (active_ == 0) op_.Finish(Status::Cancelled("check cancelled"));
    return;
  }
  if (queue_.empty() && active_ == 0) return Done();
  while (active_ < kVerifyParallel && !queue_.empty()) {
    std::shared_ptr<ShareCheck> s = queue_.front();
    queue_.pop_front();
    ++active_;
    auto self = shared_from_this();
    servers_[s->server].client->ReadImmutable(si_, s->shnum, 0, kChkHeaderMaxSize,
                                              [self, s](Result<std::string> r) { self->HeaderRead(s, std::move(r)); });
  }
}

void Check::HeaderRead(std::shared_ptr<ShareCheck> s, Result<std::string> r) {
  if (!r.ok()) return ShareUnread(*s, r.status());
  auto header = ParseChkShareHeader(*r);
  if (!header.ok()) return ShareCorrupt(*s, "share header: " + std::string(header.status().message()));
  s->header = *header;
  const std::uint64_t from = header->o_crypttext_hash_tree;
  const std::uint64_t to = header->o_uri_extension + header->ueb_length_size() + kMaxUebLength;
  auto self = shared_from_this();
  servers_[s->server].client->ReadImmutable(si_, s->shnum, from, to - from,
                                            [self, s](Result<std::string> r2) { self->HashesRead(s, std::move(r2)); });
}

// The UEB against the cap, then the crypttext tree and the share's own
// hashes against the UEB (on the loop: a few hashes per segment).
void Check::HashesRead(std::shared_ptr<ShareCheck> s, Result<std::string> r) {
  if (!r.ok()) return ShareUnread(*s, r.status());
  const ChkShareHeader& h = s->header;
  const std::string& bytes = *r;
  const std::uint64_t base = h.o_crypttext_hash_tree;
  const std::uint64_t len_at = h.o_uri_extension - base;
  if (bytes.size() < len_at + h.ueb_length_size()) return ShareCorrupt(*s, "share is shorter than its offsets");
  const std::uint64_t ueb_len = GetBe(bytes, static_cast<std::size_t>(len_at), h.ueb_length_size());
  const std::uint64_t ueb_at = len_at + h.ueb_length_size();
  if (ueb_len >= kMaxUebLength || bytes.size() < ueb_at + ueb_len) {
    return ShareCorrupt(*s, "bad URI extension block length");
  }
  // A verify cap has no key; the reader needs one only to decrypt, which
  // verifying never does.
  caps::Cap reader_cap = cap_;
  if (reader_cap.kind == caps::CapKind::kChkVerifier) {
    reader_cap.kind = caps::CapKind::kChk;
    reader_cap.key.assign(caps::kKeySize, '\0');
  }
  auto reader = ChkReader::Create(reader_cap, std::string_view(bytes).substr(ueb_at, ueb_len));
  if (!reader.ok()) return ShareCorrupt(*s, "URI extension block: " + std::string(reader.status().message()));
  s->reader = std::make_shared<ChkReader>(std::move(*reader));
  const ChkUeb& u = s->reader->ueb();
  if (h.block_size != u.segment_size / u.k) return ShareCorrupt(*s, "block size disagrees with the UEB");
  std::string_view view(bytes);
  Status st = s->reader->AcceptCrypttextTree(view.substr(0, h.o_block_hashes - base));
  if (!st.ok()) return ShareCorrupt(*s, "crypttext hash tree: " + std::string(st.message()));
  st = s->reader->AcceptShareHashes(s->shnum, view.substr(h.o_block_hashes - base, h.o_share_hashes - h.o_block_hashes),
                                    view.substr(h.o_share_hashes - base, h.o_uri_extension - h.o_share_hashes));
  if (!st.ok()) return ShareCorrupt(*s, "share hashes: " + std::string(st.message()));
  ReadBlocks(s);
}

// Reads the next run of whole blocks (about kBlockReadBytes).
void Check::ReadBlocks(std::shared_ptr<ShareCheck> s) {
  if (Stopping()) return ShareUnread(*s, Status::Cancelled("check cancelled"));
  const ChkUeb& u = s->reader->ueb();
  if (s->next_segment >= u.num_segments) return ShareGood(*s);
  const std::uint64_t block = s->header.block_size;
  const std::uint64_t per_read = std::max<std::uint64_t>(1, kBlockReadBytes / std::max<std::uint64_t>(block, 1));
  const std::uint64_t first = s->next_segment;
  const std::uint64_t count = std::min(per_read, u.num_segments - first);
  std::uint64_t length = 0;
  for (std::uint64_t seg = first; seg < first + count; ++seg) length += s->reader->BlockSize(seg);
  auto self = shared_from_this();
  servers_[s->server].client->ReadImmutable(
      si_, s->shnum, s->header.o_data + first * block, length,
      [self, s, first, count](Result<std::string> r) { self->BlocksRead(s, first, count, std::move(r)); });
}

void Check::BlocksRead(std::shared_ptr<ShareCheck> s, std::uint64_t first, std::uint64_t count, Result<std::string> r) {
  if (!r.ok()) return ShareUnread(*s, r.status());
  auto bytes = std::make_shared<std::string>(std::move(*r));
  auto why = std::make_shared<std::string>();
  std::shared_ptr<ChkReader> reader = s->reader;
  const std::uint64_t block = s->header.block_size;
  const std::uint32_t shnum = s->shnum;
  // A few blocks of a small file hash in microseconds: on the loop (bounded
  // by kInlineVerifyBytes), where a pool job would wait behind the task
  // store's fsyncs. More is pool work.
  if (bytes->size() <= kInlineVerifyBytes) {
    Status st = VerifyBlockRun(*reader, *bytes, first, count, block, shnum, why.get());
    return BlocksChecked(s, first, count, bytes->size(), st, *why);
  }
  op_.SideStarted();
  auto self = shared_from_this();
  loop_.Offload(
      [reader, bytes, why, first, count, block, shnum]() -> Status {
        return VerifyBlockRun(*reader, *bytes, first, count, block, shnum, why.get());
      },
      [self, s, first, count, bytes, why](Status st) {
        self->op_.SideEnded();
        if (self->op_.finished()) return;
        self->BlocksChecked(s, first, count, bytes->size(), st, *why);
      });
}

void Check::BlocksChecked(const std::shared_ptr<ShareCheck>& s, std::uint64_t first, std::uint64_t count,
                          std::uint64_t size, const Status& st, const std::string& why) {
  if (!st.ok()) return ShareCorrupt(*s, why);
  bytes_done_ += size;
  Report("verifying", std::min(bytes_done_, bytes_total_), bytes_total_);
  s->next_segment = first + count;
  ReadBlocks(s);
}

void Check::ShareGood(const ShareCheck& s) {
  results_.good[s.shnum].insert(servers_[s.server].name);
  ShareEnded();
}

// The share's server hears of it (side work: the check ends after the answer).
void Check::ShareCorrupt(const ShareCheck& s, const std::string& why) {
  CAIRN_LOG(Warn, "verify: share %u on %s is corrupt: %s", static_cast<unsigned>(s.shnum),
            servers_[s.server].name.c_str(), why.c_str());
  results_.corrupt.push_back(grid::CorruptShare{servers_[s.server].name, s.shnum, why});
  op_.SideStarted();
  servers_[s.server].client->AdviseCorrupt(false, si_, s.shnum, why.substr(0, 1000),
                                           [op = op_](Status) { op.SideEnded(); });
  ShareEnded();
}

// A read that failed (the server, not the data): the share is not counted
// as good, and it is not corrupt either.
void Check::ShareUnread(const ShareCheck& s, const Status& st) {
  if (st.code() != Code::kCancelled) {
    results_.servers_failed.push_back(servers_[s.server].name + ": share " + std::to_string(s.shnum) + ": " +
                                      st.ToString());
  }
  ShareEnded();
}

void Check::ShareEnded() {
  --active_;
  NextShares();
}

void Check::Done() {
  if (op_.finished()) return;
  results_.FinishImmutable();
  op_.Finish(std::move(results_));
}

}  // namespace

void CheckImmutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, CheckOptions options,
                    grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done) {
  auto check = std::make_shared<Check>(loop, std::move(servers), std::move(cap), options, std::move(progress),
                                       std::move(stop), std::move(done));
  check->Start();
}

}  // namespace cairn::immutable
