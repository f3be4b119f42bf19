// CHK upload over GBS (see the header). One Upload object per call, owned
// by the completions in flight (shared_ptr): it lives until the last of them
// has run. Its completion is a grid::Operation: delivered once, on a later
// turn, only after every bucket abort and pool job of the upload has ended.
// Work on the thread pool touches only the encoder, the file descriptor and
// the buffers handed to it, never while the loop does: at most one offload
// runs at a time, and the loop reads its results only from the offload's
// completion. Loop thread only, except those work items.
#include "cairn/immutable/uploader.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <set>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/crypto/random.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/grid/placement.h"
#include "immutable/file_io.h"

namespace cairn::immutable {
namespace {

// Allocation rounds at most: the first plan, then re-plans of the shares
// no server took.
constexpr std::size_t kMaxAllocateRounds = 4;

// A PATCH carries up to this many bytes of one share's blocks (several
// consecutive segments when blocks are small): fewer requests, and each
// server's store commits fewer, larger writes.
constexpr std::uint64_t kBatchBytes = 1 << 20;

// The first pass reads the file in pieces of this size, and reports
// progress every kHashReportEvery pieces.
constexpr std::size_t kHashPiece = 1 << 20;
constexpr std::uint64_t kHashReportEvery = 16;

gbs::StorageIndex ToSi(const std::string& si) {
  gbs::StorageIndex out{};
  std::memcpy(out.data(), si.data(), out.size());
  return out;
}

// InvalidArgument unless the parameters can make an upload.
Status CheckOptions(const UploadOptions& o) {
  const ChkParams& p = o.params;
  if (p.k < 1 || p.n < p.k || p.n > 256 || o.happy < 1 || o.happy > p.n || p.max_segment_size < 1 ||
      o.segments_in_flight < 1) {
    return Status::InvalidArgument(
        "upload needs 1 <= k <= N <= 256, 1 <= happy "
        "<= N and a positive segment size");
  }
  return Status();
}

// One share being written to one server.
struct Bucket {
  std::size_t server = 0;  // index into servers_
  std::uint32_t shnum = 0;
  bool live = true;
  bool complete = false;
};

using Asks = std::map<std::size_t, std::set<std::uint32_t>>;  // server -> shares to allocate there

class Upload : public std::enable_shared_from_this<Upload> {
 public:
  Upload(Loop& loop, std::vector<GridServer> servers, std::string path, UploadOptions options, ProgressFn progress,
         StopFn stop, Callback<void(Result<UploadResult>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        path_(std::move(path)),
        options_(std::move(options)),
        progress_(std::move(progress)),
        stop_(std::move(stop)),
        op_(loop, "immutable upload", std::move(done)) {}

  ~Upload() { CloseFile(fd_); }

  void Start();

 private:
  enum class State { kHashing, kQuerying, kAllocating, kStreaming, kFinishing, kDone };

  // Pass 1 (on the pool).
  Status OpenAndKey(const std::weak_ptr<Upload>& weak);
  Result<std::string> HashForKey(const std::weak_ptr<Upload>& weak);
  void PostHashingProgress(const std::weak_ptr<Upload>& weak, std::uint64_t done);
  void Hashed(Status st);
  // Placement.
  void Query();
  void PermuteServers();
  Status PrepareServers();
  void AskServers();
  void VersionAnswered(std::size_t server, std::uint64_t share_size, Result<gbs::Version> v);
  void ListAnswered(std::size_t server, Result<gbs::ShareNumbers> shares);
  void Plan();
  void AllocateRound(const Asks& asks);
  void AllocateAnswered(std::size_t server, std::size_t asked, Result<gbs::AllocateResponse> r);
  bool NextRound();
  // Repair: moves each ask of a share its server holds corrupt
  // (options_.avoid) to the usable server holding the fewest shares that
  // neither holds nor avoids it.
  void Reroute(Asks* asks, const std::vector<grid::ServerState>& usable) const;
  bool Avoided(std::size_t server, std::uint32_t sh) const {
    auto it = options_.avoid.find(server);
    return it != options_.avoid.end() && it->second.count(sh) > 0;
  }
  std::vector<grid::ServerState> UsableServers(std::set<std::uint32_t>* placed) const;
  void Allocated();
  std::size_t CurrentHappiness() const;
  // Streaming.
  void EncodeNext();
  void Pump();
  bool BatchReady() const;
  std::size_t MaxBatch() const { return std::max<std::size_t>(1, options_.segments_in_flight / 2); }
  void AddEncodedToBatch();
  void SendPendingBatch();
  void SendBatch(std::uint64_t first, std::size_t count, std::uint64_t len, std::vector<std::string> blocks);
  void BatchAnswered(std::size_t count, std::uint64_t len);
  void WriteDone(std::size_t bucket, bool trailer, Result<gbs::WriteResult> r);
  void DropServer(std::size_t server, const Status& why);

  // The end.
  bool Stopping();
  void Report(const char* phase, std::uint64_t done, std::uint64_t total) {
    if (progress_) progress_(phase, done, total);
  }
  void Fail(Status st);
  void Succeed();
  UploadResult MakeResult(std::size_t happiness) const;
  void AbortBucketsOn(std::size_t server);
  void AbortBucket(const Bucket& b);
  // Loop::Offload as side work of op_: the end is not reported while work
  // of this operation still runs on the pool.
  void Offload(Callback<Status()> work, Callback<void(Status)> done);

  Loop& loop_;
  std::vector<GridServer> servers_;
  std::string path_;
  UploadOptions options_;
  ProgressFn progress_;
  StopFn stop_;
  grid::Operation<UploadResult> op_;  // the completion; bucket aborts and pool work are its side work
  State state_ = State::kHashing;

  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::atomic<bool> abandon_{false};  // set on the loop, read by the first pass on the pool
  std::string key_;
  std::string literal_;  // the file itself, for LIT
  std::unique_ptr<ChkEncoder> encoder_;
  gbs::StorageIndex si_{};

  // Per server (same index as servers_).
  std::vector<grid::ServerState> states_;
  std::vector<bool> answered_version_, answered_list_, failed_;
  std::vector<std::string> upload_secrets_;
  std::vector<gbs::LeaseSecrets> leases_;
  std::size_t outstanding_ = 0;
  std::size_t rounds_ = 0;  // allocation rounds started

  grid::SharePlacement existing_;  // shares already on servers (kept)
  std::vector<Bucket> buckets_;

  // Streaming.
  std::uint64_t next_encode_ = 0;  // the next segment to encode
  bool encoding_ = false;
  bool encoded_ready_ = false;
  std::uint64_t encoded_seg_ = 0;
  std::vector<std::string> encoded_;  // blocks of encoded_seg_, waiting to be sent
  // Consecutive segments batched for one PATCH per share: share -> blocks.
  std::vector<std::string> batch_;
  std::uint64_t batch_first_ = 0;
  std::size_t batch_segs_ = 0;
  std::uint64_t batch_len_ = 0;          // plaintext bytes of the batch
  std::uint64_t batch_block_bytes_ = 0;  // bytes of each share in the batch
  std::size_t writes_in_flight_ = 0;
  std::size_t segments_in_flight_ = 0;  // segments with PATCHes outstanding
  std::size_t max_segments_in_flight_ = 0;
  std::uint64_t segments_sent_ = 0;
  std::uint64_t bytes_acked_ = 0;  // plaintext bytes whose PATCHes were all answered
  // Each share's trailer, made on the pool with the last segment: the last
  // batch's PATCH carries it (it follows the last block in the share), so
  // a one-segment file is one PATCH per share.
  std::map<std::uint32_t, std::string> trailers_;
};

void Upload::Start() {
  Status valid = CheckOptions(options_);
  if (!valid.ok()) {
    state_ = State::kDone;
    return op_.FinishSoon(std::move(valid));
  }
  Report("hashing", 0, 0);
  // Pass 1, off the loop: the convergent key needs every byte of the file.
  Upload* u = this;
  auto self = shared_from_this();
  std::weak_ptr<Upload> weak = self;
  Offload([u, weak]() -> Status { return u->OpenAndKey(weak); }, [self](Status st) { self->Hashed(st); });
}

// On the pool: opens the file and reads it whole (LIT), or derives the
// convergent key (unless the caller gave it) and makes the encoder.
Status Upload::OpenAndKey(const std::weak_ptr<Upload>& weak) {
  CAIRN_TRY_ASSIGN(fd_, OpenForRead(path_, &size_));
  if (size_ <= caps::kLiteralMaxSize) {
    literal_.resize(static_cast<std::size_t>(size_));
    return ReadAt(fd_, 0, literal_.data(), literal_.size(), path_);
  }
  if (!options_.convergent_key.empty() && options_.prehashed_size == size_) {
    key_ = options_.convergent_key;  // hashed as the file arrived
  } else {
    CAIRN_TRY_ASSIGN(key_, HashForKey(weak));
  }
  CAIRN_TRY_ASSIGN(ChkEncoder enc, ChkEncoder::Create(key_, options_.params, size_));
  encoder_ = std::make_unique<ChkEncoder>(std::move(enc));
  return Status();
}

// On the pool: the convergent key of the whole file; Cancelled when the
// loop asked to stop meanwhile.
Result<std::string> Upload::HashForKey(const std::weak_ptr<Upload>& weak) {
  const ChkParams& params = options_.params;
  caps::ConvergentKeyHasher hasher(options_.convergence, params.k, params.n,
                                   caps::ChkSegmentSize(size_, params.max_segment_size, params.k));
  // No larger than the file: a 1 MiB buffer zeroed (and mapped and
  // unmapped) for every 4 KiB file was a tenth of a backup's client CPU.
  std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(kHashPiece, std::max<std::uint64_t>(size_, 1))), '\0');
  for (std::uint64_t off = 0; off < size_; off += buf.size()) {
    std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size_ - off));
    if (abandon_.load(std::memory_order_relaxed)) return Status::Cancelled("upload cancelled");
    CAIRN_TRY(ReadAt(fd_, off, buf.data(), len, path_));
    hasher.Update(std::string_view(buf.data(), len));
    if ((off / buf.size()) % kHashReportEvery == kHashReportEvery - 1) PostHashingProgress(weak, off + len);
  }
  return hasher.Finish();
}

// From the pool: progress reaches the loop through its queue (a long first
// pass must not look like a hung daemon), and the loop answers with whether
// to stop (a stopping daemon must not wait for a whole large file to be
// hashed).
void Upload::PostHashingProgress(const std::weak_ptr<Upload>& weak, std::uint64_t done) {
  loop_.PostFromAnyThread([weak, done] {
    auto up = weak.lock();
    if (!up || up->state_ != State::kHashing) return;
    up->Report("hashing", done, up->size_);
    if (up->stop_ && up->stop_()) up->abandon_.store(true, std::memory_order_relaxed);
  });
}

void Upload::Hashed(Status st) {
  if (state_ == State::kDone) return;
  if (!st.ok()) return Fail(st);
  if (Stopping()) return;
  Report("hashing", size_, size_);
  if (!encoder_) {  // LIT: nothing is stored
    UploadResult r;
    r.cap.kind = caps::CapKind::kLiteral;
    r.cap.literal = std::move(literal_);
    r.size = size_;
    state_ = State::kDone;
    return op_.Finish(std::move(r));
  }
  si_ = ToSi(encoder_->storage_index());
  if (servers_.empty()) return Fail(Status::NotEnoughServers("no storage servers are configured"));
  Query();
}

bool Upload::Stopping() {
  if (stop_ && stop_()) {
    Fail(Status::Cancelled("upload cancelled"));
    return true;
  }
  return false;
}

// Asks every server, in permuted order, for its room and the shares of
// this file it already holds.
void Upload::Query() {
  state_ = State::kQuerying;
  Report("placing", 0, servers_.size());
  PermuteServers();
  Status st = PrepareServers();
  if (!st.ok()) return Fail(st);
  AskServers();
}

// Puts servers_ in the permuted order of this file's storage index.
void Upload::PermuteServers() {
  std::vector<std::string> seeds;
  for (const GridServer& s : servers_) seeds.push_back(s.permutation_seed);
  std::vector<std::size_t> order = grid::PermutedOrder(encoder_->storage_index(), seeds);
  std::vector<GridServer> permuted;
  for (std::size_t i : order) permuted.push_back(std::move(servers_[i]));
  servers_ = std::move(permuted);
  // options_.avoid names servers by their index as given: follow them.
  std::map<std::size_t, std::set<std::uint32_t>> avoid;
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    auto it = options_.avoid.find(order[pos]);
    if (it != options_.avoid.end()) avoid[pos] = it->second;
  }
  options_.avoid = std::move(avoid);
}

// The per-server state, lease secrets and fresh upload secrets.
Status Upload::PrepareServers() {
  std::size_t m = servers_.size();
  states_.assign(m, grid::ServerState{});
  answered_version_.assign(m, false);
  answered_list_.assign(m, false);
  failed_.assign(m, false);
  upload_secrets_.resize(m);
  leases_.resize(m);
  for (std::size_t i = 0; i < m; ++i) {
    caps::LeaseSecrets l = caps::LeaseSecretsFor(options_.lease_secret, encoder_->storage_index(), servers_[i].lease_seed);
    leases_[i] = gbs::LeaseSecrets{l.renew, l.cancel};
    CAIRN_TRY_ASSIGN(upload_secrets_[i], crypto::RandomBytes(32));
  }
  return Status();
}

void Upload::AskServers() {
  const std::uint64_t share_size = encoder_->ShareSize();
  const bool list = options_.list_existing;
  outstanding_ = (list ? 2 : 1) * servers_.size();
  auto self = shared_from_this();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i].client->GetVersion(
        [self, i, share_size](Result<gbs::Version> v) { self->VersionAnswered(i, share_size, std::move(v)); });
    if (!list) continue;  // the allocations' already-have answers tell
    servers_[i].client->ListImmutable(
        si_, [self, i](Result<gbs::ShareNumbers> shares) { self->ListAnswered(i, std::move(shares)); });
  }
}

void Upload::VersionAnswered(std::size_t i, std::uint64_t share_size, Result<gbs::Version> v) {
  if (state_ != State::kQuerying) return;
  answered_version_[i] = true;
  if (!v.ok()) {
    failed_[i] = true;
    CAIRN_LOG(Info, "upload: server %s: %s", servers_[i].name.c_str(), v.status().ToString().c_str());
  } else if (v->maximum_immutable_share_size < share_size) {
    states_[i].writable = false;  // read-only for this upload: only its existing shares count
  }
  if (--outstanding_ == 0) Plan();
}

void Upload::ListAnswered(std::size_t i, Result<gbs::ShareNumbers> shares) {
  if (state_ != State::kQuerying) return;
  answered_list_[i] = true;
  if (!shares.ok()) {
    failed_[i] = true;
  } else {
    for (std::uint32_t sh : *shares) {
      if (!Avoided(i, sh)) states_[i].existing.insert(sh);
    }
  }
  if (--outstanding_ == 0) Plan();
}

void Upload::Plan() {
  if (Stopping()) return;
  std::vector<grid::ServerState> usable = states_;
  std::size_t reachable = 0;
  for (std::size_t i = 0; i < usable.size(); ++i) {
    if (failed_[i])
      usable[i] = grid::ServerState{false, {}};
    else
      ++reachable;
  }
  grid::PlacementPlan plan = grid::PlanPlacement(usable, options_.params.n);
  Report("placing", reachable, servers_.size());
  if (plan.happiness < options_.happy) {
    return Fail(Status::NotEnoughServers("servers of happiness would be " + std::to_string(plan.happiness) + ", need " +
                                         std::to_string(options_.happy) + " (" + std::to_string(reachable) + " of " +
                                         std::to_string(servers_.size()) + " servers answered)"));
  }
  existing_ = plan.existing;
  state_ = State::kAllocating;
  Reroute(&plan.new_shares, usable);
  AllocateRound(plan.new_shares);
}

// Asks each server of `asks` for buckets for its shares.
void Upload::AllocateRound(const Asks& asks) {
  ++rounds_;
  outstanding_ = asks.size();
  if (outstanding_ == 0) return Allocated();
  auto self = shared_from_this();
  for (const auto& [server, shares] : asks) {
    gbs::AllocateRequest req;
    req.share_numbers.assign(shares.begin(), shares.end());
    req.allocated_size = encoder_->ShareSize();
    std::size_t i = server;
    std::size_t asked = shares.size();
    servers_[i].client->Allocate(
        si_, upload_secrets_[i], leases_[i], req,
        [self, i, asked](Result<gbs::AllocateResponse> r) { self->AllocateAnswered(i, asked, std::move(r)); });
  }
}

// A server that fails is dropped (with any bucket it took in an earlier
// round); one that takes fewer shares than asked (full) gets no more asks.
void Upload::AllocateAnswered(std::size_t i, std::size_t asked, Result<gbs::AllocateResponse> r) {
  if (state_ != State::kAllocating) return;
  if (!r.ok()) {
    failed_[i] = true;
    CAIRN_LOG(Info, "upload: allocate on %s: %s", servers_[i].name.c_str(), r.status().ToString().c_str());
    AbortBucketsOn(i);
  } else {
    for (std::uint32_t sh : r->already_have) {
      if (!Avoided(i, sh)) existing_[sh].insert(i);
    }
    for (std::uint32_t sh : r->allocated) buckets_.push_back(Bucket{i, sh});
    if (r->allocated.size() + r->already_have.size() < asked) states_[i].writable = false;
  }
  if (--outstanding_ == 0) Allocated();
}

// After a round: shares no server took (refused or failed) are planned
// again on the servers still usable, in further rounds, while a round can
// place something new. Returns true if a round was started.
bool Upload::NextRound() {
  if (rounds_ >= kMaxAllocateRounds) return false;
  std::set<std::uint32_t> placed;
  std::vector<grid::ServerState> usable = UsableServers(&placed);
  if (placed.size() >= options_.params.n) return false;
  grid::PlacementPlan plan = grid::PlanPlacement(usable, options_.params.n);
  // Only the shares still missing, on servers that do not hold them.
  Asks asks;
  for (const auto& [server, shares] : plan.new_shares) {
    for (std::uint32_t sh : shares) {
      if (!placed.count(sh) && !usable[server].existing.count(sh)) asks[server].insert(sh);
    }
  }
  Reroute(&asks, usable);
  if (asks.empty()) return false;
  CAIRN_LOG(Info, "upload: allocation round %zu for %zu missing shares", rounds_ + 1,
            static_cast<std::size_t>(options_.params.n - placed.size()));
  AllocateRound(asks);
  return true;
}

void Upload::Reroute(Asks* asks, const std::vector<grid::ServerState>& usable) const {
  if (options_.avoid.empty()) return;
  std::vector<std::pair<std::size_t, std::uint32_t>> moved;
  for (auto& [server, shares] : *asks) {
    for (auto it = shares.begin(); it != shares.end();) {
      if (Avoided(server, *it)) {
        moved.emplace_back(server, *it);
        it = shares.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [from, sh] : moved) {
    std::size_t best = usable.size();
    std::size_t best_load = 0;
    for (std::size_t j = 0; j < usable.size(); ++j) {
      if (j == from || !usable[j].writable || failed_[j] || usable[j].existing.count(sh) || Avoided(j, sh)) continue;
      auto asked = asks->find(j);
      if (asked != asks->end() && asked->second.count(sh)) continue;
      const std::size_t load = usable[j].existing.size() + (asked == asks->end() ? 0 : asked->second.size());
      if (best == usable.size() || load < best_load) {
        best = j;
        best_load = load;
      }
    }
    if (best < usable.size()) (*asks)[best].insert(sh);
  }
  for (auto it = asks->begin(); it != asks->end();) it = it->second.empty() ? asks->erase(it) : std::next(it);
}

// The servers as placement sees them now: failed ones hold nothing and take
// nothing; the others hold their existing shares and live buckets, which
// are also added to *placed.
std::vector<grid::ServerState> Upload::UsableServers(std::set<std::uint32_t>* placed) const {
  std::vector<grid::ServerState> usable(servers_.size());
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    if (failed_[i]) {
      usable[i] = grid::ServerState{false, {}};
      continue;
    }
    usable[i].writable = states_[i].writable;
  }
  for (const auto& [sh, holders] : existing_) {
    for (std::size_t s : holders) {
      if (failed_[s]) continue;
      usable[s].existing.insert(sh);
      placed->insert(sh);
    }
  }
  for (const Bucket& b : buckets_) {
    if (!b.live) continue;
    usable[b.server].existing.insert(b.shnum);
    placed->insert(b.shnum);
  }
  return usable;
}

std::size_t Upload::CurrentHappiness() const {
  grid::SharePlacement p;
  for (const auto& [sh, holders] : existing_) {
    for (std::size_t s : holders) {
      if (!failed_[s]) p[sh].insert(s);
    }
  }
  for (const Bucket& b : buckets_) {
    if (b.live) p[b.shnum].insert(b.server);
  }
  return grid::Happiness(p);
}

void Upload::Allocated() {
  if (Stopping()) return;
  if (NextRound()) return;
  std::size_t h = CurrentHappiness();
  if (h < options_.happy) {
    return Fail(Status::NotEnoughServers("after allocation, servers of happiness is " + std::to_string(h) + ", need " +
                                         std::to_string(options_.happy)));
  }
  state_ = State::kStreaming;
  Report("uploading", 0, size_);
  EncodeNext();
}

// Reads and encodes segment next_encode_ on the thread pool.
void Upload::EncodeNext() {
  const ChkLayout& l = encoder_->layout();
  if (next_encode_ >= l.num_segments || encoding_ || encoded_ready_) return;
  encoding_ = true;
  std::uint64_t seg = next_encode_++;
  std::uint64_t offset = seg * l.segment_size;
  std::uint64_t len = seg + 1 == l.num_segments ? l.tail_size : l.segment_size;
  auto out = std::make_shared<std::vector<std::string>>();
  // With the last segment: the trees and each share's trailer (the shares
  // of the buckets as they are now; a bucket dropped later sends nothing).
  auto trailers = std::make_shared<std::map<std::uint32_t, std::string>>();
  const bool last = seg + 1 == l.num_segments;
  std::set<std::uint32_t> shares;
  if (last) {
    for (const Bucket& b : buckets_) {
      if (b.live) shares.insert(b.shnum);
    }
  }
  Upload* u = this;
  auto self = shared_from_this();
  Offload(
      [u, out, offset, len, last, trailers, shares = std::move(shares)]() -> Status {
        std::string plain(static_cast<std::size_t>(len), '\0');
        CAIRN_TRY(ReadAt(u->fd_, offset, plain.data(), plain.size(), u->path_));
        CAIRN_TRY_ASSIGN(*out, u->encoder_->EncodeSegment(std::move(plain)));
        if (last) {
          // Also with no share left to write (all were on the servers):
          // the cap needs the trees.
          CAIRN_TRY(u->encoder_->Finish());
          for (std::uint32_t sh : shares) (*trailers)[sh] = u->encoder_->ShareTrailer(sh);
        }
        return Status();
      },
      [self, out, seg, trailers](Status st) {
        self->encoding_ = false;
        if (self->state_ != State::kStreaming) return;
        if (!st.ok()) return self->Fail(st.WithContext("segment " + std::to_string(seg)));
        self->encoded_ready_ = true;
        self->encoded_seg_ = seg;
        self->encoded_ = std::move(*out);
        if (!trailers->empty()) self->trailers_ = std::move(*trailers);
        self->Pump();
      });
}

// Batches consecutive encoded segments (one PATCH per share carries their
// blocks: they are contiguous in the share) and sends a batch once it holds
// kBatchBytes of each share or half the window of segments, or ends the
// file, and the window has room for it. A segment joins a batch only while
// the batch could still be sent whole, so at most segments_in_flight
// segments are in flight or batched, plus one encoded and one encoding.
void Upload::Pump() {
  if (state_ != State::kStreaming) return;
  if (Stopping()) return;
  const std::size_t window = options_.segments_in_flight;
  if (encoded_ready_ && !BatchReady() && segments_in_flight_ + batch_segs_ < window) AddEncodedToBatch();
  // The last batch carries the trailers, whose PATCH must complete each
  // share: it waits until every earlier PATCH was answered (sent alongside
  // them, it may arrive first, and the server answers that ranges are
  // still missing).
  const bool ends_file = batch_segs_ > 0 && batch_first_ + batch_segs_ == encoder_->layout().num_segments;
  if (BatchReady() && segments_in_flight_ + batch_segs_ <= window && (!ends_file || writes_in_flight_ == 0)) {
    SendPendingBatch();
    // The encoded segment may join the next batch now.
    if (encoded_ready_) return Pump();
  }
}

// The batch is full (by segments or bytes) or ends the file.
bool Upload::BatchReady() const {
  return batch_segs_ > 0 && (batch_segs_ >= MaxBatch() || batch_block_bytes_ >= kBatchBytes ||
                             batch_first_ + batch_segs_ == encoder_->layout().num_segments);
}

// Moves the encoded segment into the batch (starting one if none) and
// starts encoding the next.
void Upload::AddEncodedToBatch() {
  const ChkLayout& l = encoder_->layout();
  const std::uint64_t seg = encoded_seg_;
  const bool last = seg + 1 == l.num_segments;
  if (batch_segs_ == 0) {
    batch_first_ = seg;
    batch_ = std::move(encoded_);
    batch_len_ = 0;
    batch_block_bytes_ = 0;
    // Room for the whole batch at once: appending never doubles a buffer.
    if (MaxBatch() > 1) {
      for (std::string& b : batch_) b.reserve(static_cast<std::size_t>(MaxBatch() * l.block_size));
    }
  } else {
    for (std::size_t sh = 0; sh < batch_.size(); ++sh) batch_[sh] += encoded_[sh];
  }
  batch_block_bytes_ += batch_.empty() ? 0 : (last ? l.tail_block_size : l.block_size);
  ++batch_segs_;
  batch_len_ += last ? l.tail_size : l.segment_size;
  encoded_ready_ = false;
  encoded_.clear();
  EncodeNext();
}

void Upload::SendPendingBatch() {
  SendBatch(batch_first_, batch_segs_, batch_len_, std::move(batch_));
  batch_.clear();
  batch_segs_ = 0;
  batch_len_ = 0;
  batch_block_bytes_ = 0;
}

// One PATCH per live bucket with segments first .. first + count - 1 of its
// share (the share header first for segment 0, the trailer after the last
// segment, whose PATCH completes the share); `len` plaintext bytes.
void Upload::SendBatch(std::uint64_t first, std::size_t count, std::uint64_t len, std::vector<std::string> blocks) {
  const ChkLayout& l = encoder_->layout();
  const bool last = first + count == l.num_segments;
  std::uint64_t offset = first == 0 ? 0 : l.header_size + first * l.block_size;
  std::string header = first == 0 ? encoder_->ShareHeader() : std::string();
  auto self = shared_from_this();
  auto outstanding = std::make_shared<std::size_t>(0);
  // A share's blocks are moved into its last PATCH, copied only for
  // another server's copy of the same share: no batch is held twice.
  std::map<std::uint32_t, std::size_t> uses;
  for (const Bucket& bucket : buckets_) {
    if (bucket.live) ++uses[bucket.shnum];
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const Bucket& bucket = buckets_[b];
    if (!bucket.live) continue;
    std::string data;
    if (!header.empty()) {
      data = header + blocks[bucket.shnum];
    } else if (--uses[bucket.shnum] == 0) {
      data = std::move(blocks[bucket.shnum]);
    } else {
      data = blocks[bucket.shnum];
    }
    if (last) {
      auto trailer = trailers_.find(bucket.shnum);
      CAIRN_CHECK(trailer != trailers_.end(), "upload: no trailer for a live share");
      data += trailer->second;
    }
    ++writes_in_flight_;
    ++*outstanding;
    servers_[bucket.server].client->WriteChunk(
        si_, bucket.shnum, upload_secrets_[bucket.server], offset, std::move(data),
        [self, b, outstanding, count, len, last](Result<gbs::WriteResult> r) {
          // The batch leaves the window when its last PATCH is answered.
          if (--*outstanding == 0) self->BatchAnswered(count, len);
          self->WriteDone(b, last, std::move(r));
        });
  }
  segments_sent_ += count;
  if (*outstanding > 0) {
    segments_in_flight_ += count;
    max_segments_in_flight_ = std::max(max_segments_in_flight_, segments_in_flight_);
  } else {
    bytes_acked_ += len;  // nothing to send: every share was already there
  }
  if (last) {
    // Nothing more to send: the upload ends when the last PATCH is answered.
    state_ = State::kFinishing;
    trailers_.clear();
    if (writes_in_flight_ == 0) Succeed();
  }
}

void Upload::BatchAnswered(std::size_t count, std::uint64_t len) {
  segments_in_flight_ -= count;
  bytes_acked_ += len;
  if (state_ == State::kStreaming) Report("uploading", bytes_acked_, size_);
}

void Upload::WriteDone(std::size_t b, bool trailer, Result<gbs::WriteResult> r) {
  --writes_in_flight_;
  if (state_ != State::kStreaming && state_ != State::kFinishing) return;
  Bucket& bucket = buckets_[b];
  if (bucket.live) {
    if (!r.ok()) {
      DropServer(bucket.server, r.status());
    } else if (trailer && !r->complete) {
      DropServer(bucket.server,
                 Status::Internal("share " + std::to_string(bucket.shnum) + " is not complete after its last write"));
    } else if (trailer) {
      bucket.complete = true;
    }
  }
  if (state_ == State::kDone) return;
  if (state_ == State::kStreaming) return Pump();
  if (writes_in_flight_ == 0) Succeed();
}

// A server that failed a write loses every bucket on it (they are aborted);
// the upload goes on while happiness holds.
void Upload::DropServer(std::size_t server, const Status& why) {
  if (failed_[server]) return;
  failed_[server] = true;
  CAIRN_LOG(Info, "upload: dropping server %s: %s", servers_[server].name.c_str(), why.ToString().c_str());
  AbortBucketsOn(server);
  std::size_t h = CurrentHappiness();
  if (h < options_.happy) {
    Fail(Status::NotEnoughServers("server " + servers_[server].name + " failed (" + why.ToString() +
                                  "); servers of happiness fell to " + std::to_string(h) + ", need " +
                                  std::to_string(options_.happy)));
  }
}

void Upload::Fail(Status st) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  // A failed upload aborts its buckets (best effort: the servers also drop
  // them after 30 minutes without writes).
  for (Bucket& b : buckets_) {
    if (!b.live || b.complete) continue;
    b.live = false;
    AbortBucket(b);
  }
  // The file is closed with the object, once no work on the pool reads it.
  op_.Finish(std::move(st));
}

void Upload::AbortBucketsOn(std::size_t server) {
  for (Bucket& b : buckets_) {
    if (b.server != server || !b.live) continue;
    b.live = false;
    AbortBucket(b);
  }
}

// The caller hears of the end only once every abort this upload sent was
// answered: after its completion, nothing of it is left running.
void Upload::AbortBucket(const Bucket& b) {
  op_.SideStarted();
  servers_[b.server].client->Abort(si_, b.shnum, upload_secrets_[b.server],
                                   [op = op_](Status) { op.SideEnded(); });
}

void Upload::Offload(Callback<Status()> work, Callback<void(Status)> done) {
  op_.SideStarted();
  auto self = shared_from_this();
  loop_.Offload(std::move(work), [self, done = std::move(done)](Status st) mutable {
    done(st);
    self->op_.SideEnded();
  });
}

void Upload::Succeed() {
  if (state_ == State::kDone) return;
  std::size_t h = CurrentHappiness();
  if (h < options_.happy) {
    return Fail(Status::NotEnoughServers("servers of happiness is " + std::to_string(h) + ", need " +
                                         std::to_string(options_.happy)));
  }
  state_ = State::kDone;
  // The file is closed with the object, once no work on the pool reads it.
  UploadResult r = MakeResult(h);
  Report("uploading", size_, size_);
  op_.Finish(std::move(r));
}

// The result of a finished upload: the shares that are on servers now.
UploadResult Upload::MakeResult(std::size_t happiness) const {
  UploadResult r;
  r.cap = encoder_->Cap();
  r.size = size_;
  r.happiness = happiness;
  r.max_segments_in_flight = max_segments_in_flight_;
  std::map<std::uint32_t, std::set<std::size_t>> holders;
  for (const auto& [sh, servers] : existing_) {
    for (std::size_t s : servers) {
      if (!failed_[s]) {
        holders[sh].insert(s);
        ++r.shares_reused;
      }
    }
  }
  for (const Bucket& b : buckets_) {
    if (b.live && b.complete) {
      holders[b.shnum].insert(b.server);
      ++r.shares_uploaded;
    }
  }
  for (const auto& [sh, servers] : holders) {
    for (std::size_t s : servers) r.placement[sh].push_back(servers_[s].name);
  }
  return r;
}

}  // namespace

void UploadFile(Loop& loop, std::vector<GridServer> servers, std::string path, UploadOptions options,
                ProgressFn progress, StopFn stop, Callback<void(Result<UploadResult>)> done) {
  auto u = std::make_shared<Upload>(loop, std::move(servers), std::move(path), std::move(options), std::move(progress),
                                    std::move(stop), std::move(done));
  u->Start();
}

}  // namespace cairn::immutable
