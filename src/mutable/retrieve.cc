// Mutable retrieve (tahoe-protocol.md 4.5): RetrieveMutable. One Retriever per
// call, owned by the completions in flight, with one state machine:
//
//   kMapping   servermap update in read mode
//   kFetching  the newest recoverable version not yet given up: k shares,
//              lowest share numbers first, each read whole and verified
//              off the loop (public key, signature, block hash, share hash
//              chain); a share that fails is reported to its server and
//              another one is fetched
//   kDecoding  zfec decode and decrypt, off the loop
//   kDone      the result was recorded in the grid::Operation, which
//              delivers it on a later turn, once every advisory sent was
//              answered and no job on the thread pool is left
//
// Shares are parsed, verified and decoded through the format interface
// (share_format.h) of the cap's format.
//
// An MDMF version is read a batch of segments at a time (kBatchSegments,
// or fewer at the ends of the range asked for): from each of k shares only
// the signed prefix (to see that it is still the version), the block hash
// tree nodes those segments need and their salts and blocks are read, each
// checked up to the signed root, and the batch is decoded before the next
// is fetched. A ranged read fetches only the segments that cover it.
//
// When a version runs out of shares, the retrieve moves on instead of
// failing (Tahoe reads the newest *recoverable* version):
//   - a share was rewritten since the map (another writer): mixing is
//     impossible (each share is checked against the version's signed
//     prefix), so the map is made once more, in check mode; a second
//     change is reported as UncoordinatedWrite;
//   - otherwise the next-newest recoverable version of the map is read;
//     if there is none and the map stopped early, it is made once more in
//     check mode (every server), shares already found bad staying bad.
#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/grid/operation.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/mutable/share_format.h"
#include "mutable/mdmf_segments.h"
#include "mutable/retrieve.h"
#include "mutable/servermap.h"
#include "mutable/share_reads.h"

namespace cairn::mutable_files {
namespace {

// One fetched share, parsed and verified on the thread pool.
struct VerifyJob {
  const ShareFormat* format = nullptr;
  std::string bytes;
  std::uint32_t shnum = 0;
  std::string fingerprint;
  std::shared_ptr<MutableShare> share;  // out, when verified
};

// Segments of an MDMF version fetched in one batch (2 MiB at k = 3): a
// 1 MiB range, which covers 9 segments wherever it starts, is one batch.
constexpr std::uint64_t kBatchSegments = 16;

// Block hash tree nodes this close together are read in one range: the
// tree's upper levels then come in one request (share_reads.h: each
// request costs more than 4 KiB of bytes).
constexpr std::uint64_t kTreeReadGap = 4096;

// The parts of one share read for a batch of MDMF segments, then checked
// on the thread pool.
struct PartsJob {
  Status error;          // the first read that failed
  std::string prefix;    // the share's signed prefix, read again
  TreeNodes chain;       // from the servermap's first read
  std::set<std::size_t> wanted;  // the block hash tree nodes needed
  TreeNodes tree;        // those of them read
  std::string data;      // salt ‖ block of each segment
  std::uint64_t bytes = 0;
  // Set on the pool:
  bool changed = false;  // the share is no longer the version
  std::shared_ptr<SegmentBlocks> segments;
};

class Retriever : public std::enable_shared_from_this<Retriever> {
 public:
  Retriever(Loop& loop, std::vector<grid::GridServer> servers, RetrieveOptions options, grid::ProgressFn progress,
            grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done)
      : loop_(loop),
        op_(loop, "mutable retrieve", std::move(done)),
        servers_(std::move(servers)),
        options_(std::move(options)),
        progress_(std::move(progress)),
        stop_(std::move(stop)) {}

  void Start(const caps::Cap& cap);
  // Starts from `map` instead of a servermap update of its own.
  void StartFrom(const caps::Cap& cap, Servermap map);
  void Begin(const caps::Cap& cap);

 private:
  enum class State { kMapping, kFetching, kDecoding, kDone };

  // A share of the chosen version on one server.
  struct Candidate {
    std::size_t share = 0;  // index into map_.shares
    bool tried = false;
  };

  void Map(MapMode mode);
  void Mapped(Result<Servermap> map);
  // Picks the newest recoverable version not given up and fetches it.
  void Choose();
  // The current version ran out of shares: the next step (see the top).
  void VersionFailed();
  // No recoverable version is left in the map: a second map if the first
  // stopped early, else NotFound or NotEnoughServers.
  void NoVersionLeft();
  // A fetched share that is corrupt or could not be read.
  void MarkBad(const SeenShare& s);
  void FetchMore();
  void Got(std::size_t candidate, Result<std::string> bytes);
  void Checked(std::size_t candidate, const Status& st, std::shared_ptr<MutableShare> share);
  void Decode();
  // MDMF: the next batch of segments, one share's parts, its check, the
  // batch's decode.
  void StartBatch();
  void FetchParts(std::size_t candidate);
  void PartsRead(std::size_t candidate, const std::shared_ptr<PartsJob>& job);
  void PartsChecked(std::size_t candidate, const Status& st, const std::shared_ptr<PartsJob>& job);
  void DecodeBatch();
  // A share that failed verification: counted, reported to its server.
  void Corrupt(const SeenShare& s, const Status& st);
  std::size_t Have() const { return segmented_ ? batch_.size() : verified_.size(); }
  void Succeed(std::uint64_t seqnum, std::uint64_t file_size);
  // Records the result (kDone) unless one was; the operation delivers it.
  void Fail(Status st);

  Loop& loop_;
  // Side work: advisories and jobs on the thread pool.
  grid::Operation<RetrieveResult> op_;
  std::vector<grid::GridServer> servers_;
  RetrieveOptions options_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  State state_ = State::kMapping;

  const ShareFormat* format_ = nullptr;  // the cap's
  caps::MutableFormat cap_format_ = caps::MutableFormat::kSdmf;
  std::string readkey_, fingerprint_, storage_index_;
  gbs::StorageIndex si_{};
  Servermap map_;
  std::string version_;  // signed prefix of the version being read
  std::uint32_t k_ = 0;
  std::vector<Candidate> candidates_;
  std::set<std::uint32_t> in_flight_;  // share numbers being fetched
  std::map<std::uint32_t, std::shared_ptr<MutableShare>> verified_;
  std::set<std::string> given_up_;  // versions that ran out of shares
  // Shares found bad while fetching: (server name, share number, version).
  std::set<std::tuple<std::string, std::uint32_t, std::string>> known_bad_;
  bool changed_ = false;   // a share was rewritten since the map
  bool remapped_ = false;  // the second map was made
  bool from_map_ = false;  // the first map was given (StartFrom)
  // Reads of one share in flight at once (share_reads.h): fewer when the
  // map is an update's, which reads the same servers meanwhile.
  std::size_t reads_at_once_ = kShareReadsAtOnce;
  RetrieveResult result_;
  std::uint64_t delivered_ = 0;  // bytes of the range handed to options_.sink

  // MDMF: the version's header, and segments [batch_first_, batch_last_]
  // being read; segments before next_segment_ are done, end_segment_ is
  // one past the last wanted. File bytes [cut_from_, cut_to_) are kept.
  bool segmented_ = false;
  ShareHeader header_;
  std::uint64_t next_segment_ = 0, end_segment_ = 0, batch_first_ = 0, batch_last_ = 0;
  std::uint64_t cut_from_ = 0, cut_to_ = 0;
  std::map<std::uint32_t, std::shared_ptr<SegmentBlocks>> batch_;
};

void Retriever::Start(const caps::Cap& cap) {
  Begin(cap);
  if (state_ != State::kDone && !from_map_) Map(MapMode::kRead);
}

// Checks the cap and derives the keys; kDone with the error if it fails.
void Retriever::Begin(const caps::Cap& cap) {
  if (cap.kind != caps::CapKind::kMutableWrite && cap.kind != caps::CapKind::kMutableRead) {
    state_ = State::kDone;
    return op_.FinishSoon(Status::BadCap("retrieve needs a mutable file's read or write cap"));
  }
  cap_format_ = cap.format;
  format_ = &FormatFor(cap.format);
  readkey_ = cap.kind == caps::CapKind::kMutableWrite ? caps::ReadKeyOf(cap.key) : cap.key;
  fingerprint_ = cap.digest;
  storage_index_ = caps::MutableStorageIndexOf(readkey_);
  si_ = ToStorageIndex(storage_index_);
  if (servers_.empty()) {
    state_ = State::kDone;
    return op_.FinishSoon(Status::NotEnoughServers("no storage servers are configured"));
  }
}

void Retriever::StartFrom(const caps::Cap& cap, Servermap map) {
  servers_ = map.servers;
  map.advisories = 0;  // its maker counted them
  from_map_ = true;
  reads_at_once_ = 2;
  Start(cap);
  if (state_ == State::kDone) return;  // failed at once: delivered later
  // The map given stands for the first servermap update, on a later turn.
  ++result_.servermap_updates;
  auto self = shared_from_this();
  auto given = std::make_shared<Servermap>(std::move(map));
  loop_.Post([self, given] { self->Mapped(std::move(*given)); });
}

void Retriever::Map(MapMode mode) {
  auto self = shared_from_this();
  state_ = State::kMapping;
  ++result_.servermap_updates;
  MapRequest req{mode, cap_format_, storage_index_, fingerprint_, std::string()};
  // The second map asks the servers of the first (already permuted).
  std::vector<grid::GridServer> servers = mode == MapMode::kRead ? std::move(servers_) : map_.servers;
  UpdateServermap(loop_, std::move(servers), std::move(req), &progress_, &stop_,
                  [self](Result<Servermap> map) { self->Mapped(std::move(map)); });
}

void Retriever::Mapped(Result<Servermap> map) {
  if (state_ != State::kMapping) return;
  if (!map.ok()) return Fail(map.status());
  map_ = std::move(*map);
  result_.corrupt_shares += map_.advisories;
  for (SeenShare& s : map_.shares) {
    if (!s.bad && known_bad_.count({map_.servers[s.server].name, s.shnum, s.header.signed_prefix})) s.bad = true;
  }
  if (!options_.TEST_before_fetch) return Choose();
  auto self = shared_from_this();
  options_.TEST_before_fetch([self] { self->loop_.Post([self] { self->Choose(); }); });
}

void Retriever::Choose() {
  if (state_ != State::kMapping && state_ != State::kFetching) return;
  std::optional<std::string> best;
  for (const auto& [prefix, holders] : map_.Versions()) {
    const std::uint32_t k = map_.HeaderOf(prefix)->k;
    if (holders.size() >= k && !given_up_.count(prefix)) best = prefix;  // map order: the last is the newest
  }
  if (!best) return NoVersionLeft();
  version_ = *best;
  ++result_.versions_tried;
  candidates_.clear();
  verified_.clear();
  result_.shares_used.clear();
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
  header_ = *map_.HeaderOf(version_);
  const std::uint64_t length = header_.data_length;
  cut_from_ = std::min(options_.offset, length);
  cut_to_ = cut_from_ + std::min(options_.size, length - cut_from_);
  result_.contents.clear();
  segmented_ = header_.format == caps::MutableFormat::kMdmf;
  if (progress_) progress_("retrieving", 0, segmented_ ? cut_to_ - cut_from_ : k_);
  if (!segmented_) return FetchMore();
  if (cut_to_ == cut_from_) return Succeed(header_.seqnum, length);  // the signed header says so: nothing to fetch
  next_segment_ = cut_from_ / header_.segment_size;
  end_segment_ = (cut_to_ - 1) / header_.segment_size + 1;
  StartBatch();
}

void Retriever::StartBatch() {
  batch_first_ = next_segment_;
  batch_last_ = std::min(end_segment_, batch_first_ + kBatchSegments) - 1;
  batch_.clear();
  // The shares found good so far are asked again, lowest numbers first.
  for (Candidate& c : candidates_) c.tried = map_.shares[c.share].bad;
  state_ = State::kFetching;
  FetchMore();
}

void Retriever::NoVersionLeft() {
  bool asked_all = true;  // every server answered or failed
  for (std::size_t i = 0; i < map_.servers.size(); ++i) asked_all = asked_all && (map_.answered[i] || map_.failed[i]);
  if (!asked_all && !remapped_) {
    remapped_ = true;
    return Map(MapMode::kCheck);
  }
  std::size_t failed = static_cast<std::size_t>(std::count(map_.failed.begin(), map_.failed.end(), true));
  if (map_.shares.empty() && failed < map_.servers.size()) {
    return Fail(Status::NotFound("no server holds a share of this mutable file"));
  }
  return Fail(Status::NotEnoughServers(
      "no version of the file has enough verified shares (" + std::to_string(map_.shares.size()) +
      " shares seen, " + std::to_string(result_.corrupt_shares) + " corrupt, " + std::to_string(failed) + " of " +
      std::to_string(map_.servers.size()) + " servers failed, " + std::to_string(given_up_.size()) +
      " versions given up)"));
}

void Retriever::VersionFailed() {
  CAIRN_LOG(Info, "retrieve: seqnum %llu has too few good shares (%zu of %u)",
            static_cast<unsigned long long>(SeqnumOfCheckstring(version_)), verified_.size(), k_);
  if (delivered_ > 0) {
    // The sink holds part of this version: another one cannot follow it.
    const std::string at = " after " + std::to_string(delivered_) + " bytes of seqnum " +
                           std::to_string(SeqnumOfCheckstring(version_)) + " were read";
    if (changed_) return Fail(Status::UncoordinatedWrite("the file's shares changed while it was read" + at));
    return Fail(Status::NotEnoughServers("the version being read ran out of good shares" + at));
  }
  given_up_.insert(version_);
  if (changed_) {
    if (remapped_) {
      return Fail(Status::UncoordinatedWrite("the file's shares changed while it was read, twice: another writer"));
    }
    remapped_ = true;
    changed_ = false;
    given_up_.clear();  // the new map sees what the servers hold now
    return Map(MapMode::kCheck);
  }
  Choose();
}

void Retriever::MarkBad(const SeenShare& s) {
  known_bad_.insert({map_.servers[s.server].name, s.shnum, version_});
  for (SeenShare& seen : map_.shares) {
    if (seen.server == s.server && seen.shnum == s.shnum) seen.bad = true;
  }
}

// Keeps one fetch in flight for each share number still needed.
void Retriever::FetchMore() {
  if (state_ != State::kFetching) return;
  if (stop_ && stop_()) return Fail(Status::Cancelled("retrieve cancelled"));
  auto self = shared_from_this();
  for (std::size_t c = 0; c < candidates_.size() && Have() + in_flight_.size() < k_; ++c) {
    Candidate& cand = candidates_[c];
    const SeenShare& s = map_.shares[cand.share];
    if (cand.tried || verified_.count(s.shnum) || batch_.count(s.shnum) || in_flight_.count(s.shnum)) continue;
    cand.tried = true;
    in_flight_.insert(s.shnum);
    if (segmented_) {
      FetchParts(c);
    } else if (s.head.size() >= s.header.eof) {  // the map's read already holds all of it
      std::string whole = s.head.substr(0, s.header.eof);
      loop_.Post([self, c, whole = std::move(whole)]() mutable { self->Got(c, std::move(whole)); });
    } else {
      map_.servers[s.server].client->ReadMutable(si_, s.shnum, 0, s.header.eof,
                                                 [self, c](Result<std::string> r) { self->Got(c, std::move(r)); });
    }
  }
  if (Have() + in_flight_.size() < k_ && in_flight_.empty()) VersionFailed();
}

// The parts of one share a batch needs, each its own ranged read; all are
// counted before the first is sent.
void Retriever::FetchParts(std::size_t candidate) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  const MdmfGeometry g = MdmfGeometryOf(header_.data_length, header_.k);
  auto job = std::make_shared<PartsJob>();
  auto chain = ParseShareHashChain(s.head, s.header.share_hash_chain);
  Status layout = chain.ok() ? Status::Ok() : chain.status();
  if (layout.ok() && (s.header.block_hash_tree.offset != g.BlockHashTreeOffset() ||
                      s.header.block_hash_tree.length != g.BlockHashTreeNodes() * crypto::kHashSize)) {
    layout = Status::Integrity("its offsets do not fit its segments");
  }
  auto self = shared_from_this();
  if (!layout.ok()) {
    loop_.Post([self, candidate, layout] {
      self->in_flight_.erase(self->map_.shares[self->candidates_[candidate].share].shnum);
      if (self->state_ != State::kFetching) return;
      self->Corrupt(self->map_.shares[self->candidates_[candidate].share], layout);
      self->FetchMore();
    });
    return;
  }
  job->chain = std::move(*chain);
  const std::vector<std::size_t> nodes = NeededTreeNodes(g.num_segments, batch_first_, batch_last_);
  job->wanted.insert(nodes.begin(), nodes.end());
  const std::vector<ByteRange> tree = TreeNodeRanges(s.header.block_hash_tree.offset, nodes, kTreeReadGap);
  const ByteRange data = SegmentRange(g, batch_first_, batch_last_);
  const std::uint64_t tree_at = s.header.block_hash_tree.offset;
  // The prefix, the data, then the tree's ranges, a few at a time.
  std::vector<ByteRange> ranges{ByteRange{0, format_->signed_prefix_size()}, data};
  ranges.insert(ranges.end(), tree.begin(), tree.end());
  ReadShareRanges(loop_, *map_.servers[s.server].client, si_, s.shnum, ranges, reads_at_once_,
                  [self, candidate, job, ranges, tree_at](std::vector<Result<std::string>> got) {
                    for (std::size_t i = 0; i < got.size(); ++i) {
                      if (!got[i].ok()) {
                        if (job->error.ok()) job->error = got[i].status();
                        continue;
                      }
                      std::string& b = *got[i];
                      job->bytes += b.size();
                      if (i == 0) {
                        job->prefix = std::move(b);
                      } else if (i == 1) {
                        job->data = std::move(b);
                      } else {
                        const std::size_t first =
                            static_cast<std::size_t>((ranges[i].offset - tree_at) / crypto::kHashSize);
                        for (std::size_t n = 0; n * crypto::kHashSize < b.size(); ++n) {
                          if (job->wanted.count(first + n)) {
                            job->tree[first + n] = b.substr(n * crypto::kHashSize, crypto::kHashSize);
                          }
                        }
                      }
                    }
                    self->PartsRead(candidate, job);
                  });
}

void Retriever::PartsRead(std::size_t candidate, const std::shared_ptr<PartsJob>& job) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  result_.bytes_fetched += job->bytes;
  if (state_ != State::kFetching) {
    in_flight_.erase(s.shnum);
    return;
  }
  if (!job->error.ok()) {
    CAIRN_LOG(Info, "retrieve: share %u on %s: %s", s.shnum, map_.servers[s.server].name.c_str(),
              job->error.ToString().c_str());
    in_flight_.erase(s.shnum);
    MarkBad(s);
    return FetchMore();
  }
  // Hashing the blocks: on the thread pool. The share stays in flight.
  auto self = shared_from_this();
  const std::string version = version_;
  const ShareHeader header = header_;
  const std::uint64_t first = batch_first_, last = batch_last_;
  const std::uint32_t shnum = s.shnum;
  op_.SideStarted();
  loop_.Offload(
      [job, version, header, first, last, shnum]() -> Status {
        if (job->prefix != version) {
          job->changed = true;
          return Status::Ok();
        }
        const MdmfGeometry g = MdmfGeometryOf(header.data_length, header.k);
        CAIRN_TRY_ASSIGN(SegmentBlocks segs, SplitSegments(g, first, last, job->data));
        job->data.clear();
        CAIRN_TRY(VerifySegments(header, shnum, job->chain, std::move(job->tree), segs));
        job->segments = std::make_shared<SegmentBlocks>(std::move(segs));
        return Status::Ok();
      },
      [self, candidate, job](Status st) {
        self->PartsChecked(candidate, st, job);
        self->op_.SideEnded();
      });
}

void Retriever::PartsChecked(std::size_t candidate, const Status& st, const std::shared_ptr<PartsJob>& job) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  in_flight_.erase(s.shnum);
  if (state_ != State::kFetching) return;
  if (st.ok() && job->changed) {
    CAIRN_LOG(Info, "retrieve: share %u on %s changed since the servermap", s.shnum,
              map_.servers[s.server].name.c_str());
    changed_ = true;
    return FetchMore();
  }
  if (!st.ok()) {
    Corrupt(s, st);
    return FetchMore();
  }
  batch_[s.shnum] = job->segments;
  result_.shares_used[s.shnum] = map_.servers[s.server].name;
  if (batch_.size() >= k_) return DecodeBatch();
  FetchMore();
}

// zfec decode and AES of one batch: on the thread pool. Its part of the
// range is kept; then the next batch, or the end.
void Retriever::DecodeBatch() {
  state_ = State::kDecoding;
  auto self = shared_from_this();
  auto shares = std::make_shared<std::map<std::uint32_t, std::shared_ptr<SegmentBlocks>>>(std::move(batch_));
  batch_.clear();
  auto out = std::make_shared<std::string>();
  const ShareHeader header = header_;
  const std::string readkey = readkey_;
  // The batch holds file bytes from `from` on; [cut_from_, cut_to_) is kept.
  const std::uint64_t from = batch_first_ * header_.segment_size;
  const std::uint64_t cut_from = cut_from_, cut_to = cut_to_;
  std::function<Status(std::string_view)>* sink = options_.sink ? &options_.sink : nullptr;
  op_.SideStarted();
  loop_.Offload(
      [shares, out, header, readkey, from, cut_from, cut_to, sink]() -> Status {
        std::map<std::uint32_t, const SegmentBlocks*> view;
        for (const auto& [sh, segs] : *shares) view[sh] = segs.get();
        CAIRN_TRY_ASSIGN(std::string plain, DecodeSegments(header, view, readkey));
        shares->clear();
        const std::uint64_t keep_from = std::max(from, cut_from);
        const std::uint64_t keep_to = std::min(from + plain.size(), cut_to);
        if (keep_to <= keep_from) return Status::Ok();
        std::string_view kept = std::string_view(plain).substr(static_cast<std::size_t>(keep_from - from),
                                                               static_cast<std::size_t>(keep_to - keep_from));
        if (sink) return (*sink)(kept);
        *out = std::string(kept);
        return Status::Ok();
      },
      [self, out](Status st) {
        self->op_.SideEnded();
        if (self->state_ != State::kDecoding) return;
        if (!st.ok()) return self->Fail(st.WithContext("decoding"));
        const std::uint64_t end = std::min(self->cut_to_, (self->batch_last_ + 1) * self->header_.segment_size);
        if (self->options_.sink) {
          self->delivered_ = end - self->cut_from_;
        } else {
          self->result_.contents += *out;
        }
        if (self->progress_) self->progress_("retrieving", end - self->cut_from_, self->cut_to_ - self->cut_from_);
        self->next_segment_ = self->batch_last_ + 1;
        if (self->next_segment_ < self->end_segment_) return self->StartBatch();
        self->Succeed(self->header_.seqnum, self->header_.data_length);
      });
}

void Retriever::Corrupt(const SeenShare& s, const Status& st) {
  const std::string& name = map_.servers[s.server].name;
  CAIRN_LOG(Warn, "retrieve: share %u on %s is corrupt: %s", s.shnum, name.c_str(), st.ToString().c_str());
  ++result_.corrupt_shares;
  MarkBad(s);
  op_.SideStarted();
  auto self = shared_from_this();
  map_.servers[s.server].client->AdviseCorrupt(true, si_, s.shnum, st.message().substr(0, 1000),
                                               [self](Status advised) {
                                                 advised.IgnoreError();  // advisory only
                                                 self->op_.SideEnded();
                                               });
}

void Retriever::Succeed(std::uint64_t seqnum, std::uint64_t file_size) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  result_.seqnum = seqnum;
  result_.version = version_;
  result_.file_size = file_size;
  result_.offset = cut_from_;
  result_.length = cut_to_ - cut_from_;
  op_.Finish(std::move(result_));
}

void Retriever::Got(std::size_t candidate, Result<std::string> bytes) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  if (bytes.ok()) result_.bytes_fetched += bytes->size();
  if (state_ != State::kFetching) {
    in_flight_.erase(s.shnum);
    return;
  }
  if (!bytes.ok()) {
    CAIRN_LOG(Info, "retrieve: share %u on %s: %s", s.shnum, map_.servers[s.server].name.c_str(),
              bytes.status().ToString().c_str());
    in_flight_.erase(s.shnum);
    MarkBad(s);
    return FetchMore();
  }
  // Verifying hashes the whole block (and checks the signature): on the
  // thread pool, like the decode. The share stays in flight meanwhile.
  auto job = std::make_shared<VerifyJob>();
  job->format = format_;
  job->bytes = std::move(*bytes);
  job->shnum = s.shnum;
  job->fingerprint = fingerprint_;
  auto self = shared_from_this();
  op_.SideStarted();
  loop_.Offload(
      [job]() -> Status {
        CAIRN_TRY_ASSIGN(MutableShare share, job->format->ParseShare(job->bytes));
        job->bytes.clear();
        CAIRN_TRY(job->format->VerifyShare(share, job->shnum, job->fingerprint));
        job->share = std::make_shared<MutableShare>(std::move(share));
        return Status::Ok();
      },
      [self, candidate, job](Status st) {
        self->Checked(candidate, st, job->share);
        self->op_.SideEnded();
      });
}

void Retriever::Checked(std::size_t candidate, const Status& st, std::shared_ptr<MutableShare> share) {
  const SeenShare& s = map_.shares[candidates_[candidate].share];
  in_flight_.erase(s.shnum);
  if (state_ != State::kFetching) return;
  const std::string& name = map_.servers[s.server].name;
  if (st.ok() && share->header.signed_prefix != version_) {
    // Rewritten since the map read it: not corrupt, just not this version.
    CAIRN_LOG(Info, "retrieve: share %u on %s changed since the servermap", s.shnum, name.c_str());
    changed_ = true;
    return FetchMore();
  }
  if (!st.ok()) {
    Corrupt(s, st);
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
  auto shares = std::make_shared<std::map<std::uint32_t, std::shared_ptr<MutableShare>>>(std::move(verified_));
  auto out = std::make_shared<std::string>();
  auto readkey = readkey_;
  const ShareFormat* format = format_;
  auto size = std::make_shared<std::uint64_t>(0);
  const std::uint64_t cut_from = cut_from_, cut_to = cut_to_;
  std::function<Status(std::string_view)>* sink = options_.sink ? &options_.sink : nullptr;
  op_.SideStarted();
  loop_.Offload(
      [shares, out, readkey, format, size, cut_from, cut_to, sink]() -> Status {
        std::map<std::uint32_t, const MutableShare*> view;
        for (const auto& [sh, share] : *shares) view[sh] = share.get();
        CAIRN_TRY_ASSIGN(*out, format->Decode(view, readkey));
        *size = out->size();
        // SDMF is one segment: the range is cut from the whole file.
        *out = out->substr(static_cast<std::size_t>(cut_from), static_cast<std::size_t>(cut_to - cut_from));
        if (sink && !out->empty()) {
          Status st = (*sink)(*out);
          out->clear();
          return st;
        }
        return Status::Ok();
      },
      [self, shares, out, size](Status st) {
        if (self->state_ == State::kDecoding) {
          if (!st.ok()) {
            self->Fail(st.WithContext("decoding"));
          } else {
            if (!self->options_.sink) self->result_.contents = std::move(*out);
            self->Succeed(shares->begin()->second->header.seqnum, *size);
          }
        }
        self->op_.SideEnded();
      });
}

// The caller hears of the end only once every advisory was answered and
// no pool job is left: the operation holds the result until then.
void Retriever::Fail(Status st) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  op_.Finish(std::move(st));
}

}  // namespace

void RetrieveMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::ProgressFn progress,
                     grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done) {
  RetrieveMutable(loop, std::move(servers), std::move(cap), RetrieveOptions{}, std::move(progress), std::move(stop),
                  std::move(done));
}

void RetrieveMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, RetrieveOptions options,
                     grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done) {
  auto r = std::make_shared<Retriever>(loop, std::move(servers), std::move(options), std::move(progress),
                                       std::move(stop), std::move(done));
  r->Start(cap);
}

void RetrieveFromMap(Loop& loop, Servermap map, caps::Cap cap, RetrieveOptions options,
                     Callback<void(Result<RetrieveResult>)> done) {
  auto r = std::make_shared<Retriever>(loop, std::vector<grid::GridServer>(), std::move(options), nullptr, nullptr,
                                       std::move(done));
  r->StartFrom(cap, std::move(map));
}

}  // namespace cairn::mutable_files
