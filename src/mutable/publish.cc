// Mutable publish (tahoe-protocol.md 4.2-4.4): NewMutableKey, CreateMutable
// and PublishMutable. One Publisher per call, owned by the completions in
// flight, with one state machine:
//
//   kMapping    servermap update in write mode (not for a create): every
//               share of every version, the newest seqnum, the private key
//   kEncoding   encrypt, encode, hash, sign and build the N shares on the
//               thread pool, in steps that use both cores
//   kWriting    one read-test-write per server holding all its shares, each
//               share tested against the checkstring the map saw there (or
//               "no share"); a server that fails loses its shares to other
//               servers, which get their own request
//   kDone       the result was recorded in the grid::Operation, which
//               delivers it once, on a later turn
//
// The shares are built and their checkstrings read through the format
// interface (share_format.h) of the cap's format. An in-place MDMF update
// (UpdateMutable) is the same machine with kEncoding replaced by
// PrepareUpdate (update.h): each share's writes are then the parts that
// change, sent only to holders of the version updated, and a failed
// server's shares are not placed elsewhere.
//
// A streamed MDMF create (MutableOptions::source) writes each share in
// rounds, one read-test-write per server per round, every round waiting
// for all answers of the one before (the source is read and encoded a
// batch of kStreamSegments segments at a time on the thread pool; the
// block hashes are kept, 32 bytes per segment and share):
//
//   round 1       tests "no share" (as a create does), writes the first
//                 batch's salts and blocks and, at [0, 41), a marker: version
//                 byte 1, seqnum 0 and 32 random bytes of this publish
//   rounds 2..m   test (0, 41, marker), write the next batch
//   last round    tests (0, 41, marker), writes the header (signed prefix,
//                 offsets, encrypted private key, share hash chain,
//                 signature, verification key) and the block hash tree
//
// So a round lands only on the share this publish began (another writer's
// share never carries its marker), and the real checkstring appears only
// with the last round, when the share is whole: until then the share's
// seqnum 0 header fails every reader's signature check. Tahoe-LAFS sends an
// MDMF share in one request (its publish holds the whole share); the share
// written here is byte for byte the one it would write. A server that fails
// loses its shares for the rest of the publish (the earlier rounds' blocks
// are no longer held); the publish fails NotEnoughServers as soon as fewer
// than k share numbers, or servers of too little happiness, are left.
//
// Answers only record what happened; the driver (Advance) runs on a later
// turn than the answer, after every request of a round was sent and marked
// outstanding, so no answer can make it send anything twice (Tahoe-LAFS
// #877). A request answers at most once here, whatever the client does.
#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "cairn/caps/keys.h"
#include "cairn/core/clock.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "cairn/grid/operation.h"
#include "cairn/grid/placement.h"
#include "cairn/mutable/mutable_file.h"
#include "cairn/mutable/share_format.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/random.h"
#include "cairn/core/endian.h"
#include "cairn/mutable/mdmf.h"
#include "mutable/mdmf_segments.h"
#include "mutable/servermap.h"
#include "mutable/update.h"

namespace cairn::mutable_files {
namespace {

using clock::MonotonicMs;
using clock::ThreadCpuMs;

std::string Describe(std::string_view checkstring) {
  if (checkstring.empty()) return "no share";
  return "seqnum " + std::to_string(SeqnumOfCheckstring(checkstring));
}

// The largest write vector a publish sends: a share past it is sent as
// several. Servers refuse a CBOR string over 64 MiB (cairn's limit).
constexpr std::size_t kMaxWriteVector = 4u << 20;

// A streamed create's round: this many segments (1 MiB of the file at
// k = 3) are read, encoded and sent at a time.
constexpr std::uint64_t kStreamSegments = 8;

// What the encoding steps (on the thread pool) read and produce; the loop
// does not touch it while a step runs.
struct EncodeJob {
  const ShareFormat* format = nullptr;
  std::string privkey;  // PKCS#8 DER, to sign with
  std::string readkey, pubkey, encprivkey, contents;
  std::uint32_t k = 0, n = 0;
  std::uint64_t seqnum = 0;
  std::optional<crypto::RsaKey> key;
  std::unique_ptr<ShareEncoder> enc;
  std::string signature;
  std::vector<std::string> shares;  // out
  std::vector<double> part_cpu_ms;  // per part of the running step: its thread CPU
  double started_ms = 0, cpu_ms = 0;  // when the first step began to run; the steps' CPU
};

// Runs work(0) ... work(parts - 1) on the thread pool at once, then `done`
// on the loop (in the turn of the last part's completion) with the first
// failure, or Ok. Each part's thread CPU is added to job->cpu_ms.
void OffloadParts(Loop& loop, const std::shared_ptr<EncodeJob>& job, std::size_t parts,
                  std::function<Status(std::size_t)> work, Callback<void(Status)> done) {
  struct Join {
    std::size_t left;
    Status first;
    Callback<void(Status)> done;
  };
  auto join = std::make_shared<Join>(Join{parts, Status::Ok(), std::move(done)});
  auto shared_work = std::make_shared<std::function<Status(std::size_t)>>(std::move(work));
  job->part_cpu_ms.assign(parts, 0);
  for (std::size_t i = 0; i < parts; ++i) {
    loop.Offload(
        [job, shared_work, i]() -> Status {
          if (job->started_ms == 0) job->started_ms = MonotonicMs();  // the first step has one part
          const double cpu = ThreadCpuMs();
          Status st = (*shared_work)(i);
          job->part_cpu_ms[i] = ThreadCpuMs() - cpu;
          return st;
        },
        [join, job, i](Status st) {
          job->cpu_ms += job->part_cpu_ms[i];
          if (!st.ok() && join->first.ok()) join->first = st;
          if (--join->left == 0) join->done(join->first);
        });
  }
}

// A read-test-write body to encode on the thread pool: the shares to write
// (read-only while any job runs) and, per share, the checkstring to test.
struct BodyJob {
  std::shared_ptr<const std::vector<ShareWrites>> shares;
  std::size_t checkstring_size = 0;  // of the format: what the read vector reads back
  std::vector<std::pair<std::uint32_t, std::string>> writes;  // shnum, expected checkstring ("" = no share)
  std::string body;  // out
};

class Publisher : public std::enable_shared_from_this<Publisher> {
 public:
  Publisher(Loop& loop, std::vector<grid::GridServer> servers, std::string contents, MutableOptions options,
            grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<PublishResult>)> done)
      : loop_(loop),
        op_(loop, "mutable publish", std::move(done)),
        servers_(std::move(servers)),
        contents_(std::move(contents)),
        options_(std::move(options)),
        progress_(std::move(progress)),
        stop_(std::move(stop)) {}

  void StartCreate(NewKey key);
  void StartUpdate(caps::Cap writecap);
  // In place: bytes [offset, offset + contents) of an MDMF file.
  void StartPartial(caps::Cap writecap, std::uint64_t offset);

 private:
  enum class State { kMapping, kEncoding, kWriting, kDone };

  // One share for one server.
  struct Writer {
    enum class Is { kQueued, kSent, kWritten, kFailed, kRejected };
    std::size_t server = 0;
    std::uint32_t shnum = 0;
    std::string expect;  // the checkstring the server must hold; empty: no share
    Is is = Is::kQueued;
  };
  // One read-test-write: every queued share of one server.
  struct Request {
    std::size_t server = 0;
    std::vector<std::size_t> writers;
    bool settled = false;
  };

  void FailLater(Status st);
  void Mapped(Result<Servermap> map);
  void Encode();
  void HashBlocks(const std::shared_ptr<EncodeJob>& job);
  void SignAndLayOut(const std::shared_ptr<EncodeJob>& job);
  void Encoded(Status st, const std::shared_ptr<EncodeJob>& job);
  void StartStream();
  void StreamEncode();
  void StreamEncoded(Status st, std::vector<ShareWrites> writes, bool last);
  void PrepareInPlace();
  void Prepared(Result<UpdateWrites> writes);
  void StartWriting();
  std::size_t PlaceAll();  // returns the planned happiness
  std::string FailedServers() const;
  std::string RefusedServers(std::size_t placed) const;
  void PlaceHomeless();
  void SendQueued();
  void SendRequest(std::size_t r);
  void Hand(std::size_t r, std::string body);
  void Answered(std::size_t request, Result<gbs::RtwResponse> r);
  void Record(const Request& req, const gbs::RtwResponse& r);
  bool Judge(const Request& req, std::uint32_t shnum, const std::string& checkstring);
  void Advance();
  void Finish();
  bool Live(const Writer& w) const {
    return w.is == Writer::Is::kQueued || w.is == Writer::Is::kSent || w.is == Writer::Is::kWritten;
  }
  bool Usable(std::size_t server) const { return !map_.failed[server] && !failed_[server] && !bad_[server]; }
  void Report(const char* phase, std::uint64_t done, std::uint64_t total) {
    if (progress_) progress_(phase, done, total);
  }
  bool Stopped() { return stop_ && stop_(); }
  // Records the result (kDone); the operation delivers it on a later turn.
  void Deliver(Result<PublishResult> r);

  Loop& loop_;
  grid::Operation<PublishResult> op_;
  std::vector<grid::GridServer> servers_;
  std::string contents_;
  MutableOptions options_;
  grid::ProgressFn progress_;
  grid::StopFn stop_;
  State state_ = State::kMapping;

  const ShareFormat* format_ = nullptr;  // the cap's
  caps::Cap writecap_;
  std::string writekey_, readkey_, storage_index_, fingerprint_, we_master_;
  std::string privkey_, pubkey_, encprivkey_;
  std::uint32_t k_ = 0, n_ = 0;
  std::uint64_t seqnum_ = 0;
  gbs::StorageIndex si_{};
  Servermap map_;

  // The new version's writes, share i's at i: a whole share at offset 0,
  // or (in place) the parts that change.
  std::shared_ptr<const std::vector<ShareWrites>> shares_;
  bool in_place_ = false;        // an in-place update: no share has a home but where the version is
  // A streamed create (see the top): the source, the file's geometry, the
  // next segment to send, the marker rounds test, each share's block
  // hashes so far (32 bytes each), and whether the last round was sent.
  std::shared_ptr<MutableSource> source_;
  bool streamed_ = false;
  MdmfGeometry geometry_;
  std::uint64_t next_segment_ = 0;
  std::string marker_;
  std::shared_ptr<std::vector<std::string>> leaves_;
  bool last_round_ = false;
  std::size_t rounds_ = 0;
  std::uint64_t offset_ = 0;     // in place: where the bytes go
  std::uint64_t new_size_ = 0;   // the new version's data length
  std::string version_;          // in place: the signed prefix of the version updated
  std::uint64_t bytes_written_ = 0;
  std::string new_checkstring_;
  std::vector<Writer> writers_;
  std::vector<Request> requests_;
  std::size_t outstanding_ = 0;
  std::size_t answered_ = 0;
  std::vector<bool> failed_;  // per server: a request failed during the publish
  std::vector<bool> bad_;     // per server: held something we did not expect
  std::vector<std::string> failures_;
  std::string surprise_;      // non-empty: another writer was seen
  // Per server that refused the write enabler (401): the shares it was to
  // update, each with what it held before ("no share" or "seqnum N").
  std::map<std::size_t, std::vector<std::pair<std::uint32_t, std::string>>> refused_;
  bool stopping_ = false;
  std::size_t replaced_ = 0;
  PublishTiming timing_;
  double start_ms_ = 0, start_cpu_ms_ = 0, sending_ms_ = 0;
};

// A failure found inside a start function: delivered from a later turn.
void Publisher::FailLater(Status st) {
  state_ = State::kDone;
  op_.FinishSoon(std::move(st));
}

void Publisher::StartCreate(NewKey key) {
  start_ms_ = MonotonicMs();
  start_cpu_ms_ = ThreadCpuMs();
  const MutableOptions& o = options_;
  if (o.k < 1 || o.n < o.k || o.n > 255 || o.happy < 1 || o.happy > o.n) {
    return FailLater(Status::InvalidArgument("a mutable file needs 1 <= k <= N <= 255 and 1 <= happy <= N"));
  }
  caps::MutableKeys keys = caps::DeriveMutableKeys(key.privkey_pkcs8, key.pubkey_spki);
  writecap_ = caps::MutableWriteCap(keys, key.writecap.format);  // the format the key was made for
  format_ = &FormatFor(writecap_.format);
  if (key.writecap.key != keys.writekey || key.writecap.digest != keys.fingerprint) {
    return FailLater(Status::InvalidArgument("the write cap is not the key's"));
  }
  writekey_ = keys.writekey;
  readkey_ = keys.readkey;
  storage_index_ = keys.storage_index;
  fingerprint_ = keys.fingerprint;
  we_master_ = keys.write_enabler_master;
  privkey_ = std::move(key.privkey_pkcs8);
  pubkey_ = std::move(key.pubkey_spki);
  encprivkey_ = caps::CryptPrivateKey(writekey_, privkey_);
  k_ = o.k;
  n_ = o.n;
  seqnum_ = 1;
  si_ = ToStorageIndex(storage_index_);
  // A new file has no servermap: every server is taken to hold nothing,
  // which each write's "no share" test then checks.
  std::vector<std::string> seeds;
  for (const grid::GridServer& s : servers_) seeds.push_back(s.permutation_seed);
  for (std::size_t i : grid::PermutedOrder(storage_index_, seeds)) map_.servers.push_back(servers_[i]);
  map_.answered.assign(map_.servers.size(), true);
  map_.failed.assign(map_.servers.size(), false);
  map_.failures.assign(map_.servers.size(), std::string());
  if (map_.servers.empty()) return FailLater(Status::NotEnoughServers("no storage servers are configured"));
  state_ = State::kEncoding;
  if (options_.source) return StartStream();
  Encode();
}

void Publisher::StartStream() {
  source_ = options_.source;
  if (writecap_.format != caps::MutableFormat::kMdmf || !contents_.empty() || !source_->read_at) {
    return FailLater(Status::InvalidArgument("a streamed create needs an MDMF key, a source and no other contents"));
  }
  streamed_ = true;
  geometry_ = MdmfGeometryOf(source_->size, k_);
  new_size_ = source_->size;
  auto token = crypto::RandomBytes(32);
  if (!token.ok()) return FailLater(token.status());
  marker_.push_back('\1');
  PutBe(marker_, 0, 8);
  marker_ += *token;
  new_checkstring_ = marker_;
  leaves_ = std::make_shared<std::vector<std::string>>(n_);
  auto self = shared_from_this();
  loop_.Post([self] { self->StreamEncode(); });
}

// The next round's writes, on the thread pool: the next batch of segments
// read from the source and encoded, or (after the last batch) the block
// hash trees, the share hash tree, the signed prefix, its signature and
// each share's header.
void Publisher::StreamEncode() {
  if (state_ == State::kDone) return;
  state_ = State::kEncoding;
  struct Job {
    std::shared_ptr<MutableSource> source;
    std::shared_ptr<std::vector<std::string>> leaves;
    MdmfGeometry g;
    std::uint32_t k = 0, n = 0;
    std::uint64_t first = 0, last = 0, seqnum = 0;
    bool data = false, first_round = false;
    std::string readkey, marker, privkey, pubkey, encprivkey;
    std::vector<ShareWrites> writes;
    std::string checkstring;
    double cpu_ms = 0;
  };
  auto job = std::make_shared<Job>();
  job->source = source_;
  job->leaves = leaves_;
  job->g = geometry_;
  job->k = k_;
  job->n = n_;
  job->seqnum = seqnum_;
  job->data = next_segment_ < geometry_.num_segments;
  job->first_round = rounds_ == 0;
  job->first = next_segment_;
  job->last = std::min(geometry_.num_segments, next_segment_ + kStreamSegments) - 1;
  job->readkey = readkey_;
  job->marker = marker_;
  if (!job->data) {
    job->privkey = privkey_;
    job->pubkey = pubkey_;
    job->encprivkey = encprivkey_;
  }
  Report("encoding", next_segment_ * geometry_.segsize, new_size_);
  const double started = MonotonicMs();
  auto self = shared_from_this();
  loop_.Offload(
      [job]() -> Status {
        const double cpu = ThreadCpuMs();
        job->writes.assign(job->n, ShareWrites());
        if (job->data) {
          const std::uint64_t from = job->first * job->g.segsize;
          const std::uint64_t to = std::min(job->g.data_length, (job->last + 1) * job->g.segsize);
          CAIRN_TRY_ASSIGN(std::string plain, job->source->read_at(from, static_cast<std::size_t>(to - from)));
          if (plain.size() != to - from) return Status::IoError("the source came back short");
          CAIRN_TRY_ASSIGN(EncodedSegments enc, EncodeSegments(job->g, job->k, job->n, job->first, plain,
                                                               job->readkey));
          for (std::uint32_t i = 0; i < job->n; ++i) {
            std::string blocks;
            for (std::size_t j = 0; j < enc.shares[i].blocks.size(); ++j) {
              blocks += enc.shares[i].salts[j];
              blocks += enc.shares[i].blocks[j];
              (*job->leaves)[i] += enc.leaves[i][j];
            }
            if (job->first_round) job->writes[i].emplace_back(0, job->marker);
            job->writes[i].emplace_back(job->g.SegmentOffset(job->first), std::move(blocks));
          }
          job->cpu_ms = ThreadCpuMs() - cpu;
          return Status::Ok();
        }
        // The last round: the trees, the root, the signature, the headers.
        std::vector<std::string> roots(job->n), trees(job->n);
        for (std::uint32_t i = 0; i < job->n; ++i) {
          std::string& flat = (*job->leaves)[i];
          std::vector<std::string> leaves;
          for (std::size_t at = 0; at < flat.size(); at += crypto::kHashSize) {
            leaves.push_back(flat.substr(at, crypto::kHashSize));
          }
          std::string().swap(flat);
          crypto::HashTree tree(std::move(leaves));
          roots[i] = tree.Root();
          trees[i] = tree.Flatten();
        }
        crypto::HashTree share_tree(roots);
        const std::string prefix =
            MdmfSignedPrefix(job->seqnum, share_tree.Root(), job->k, job->n, job->g.segsize, job->g.data_length);
        CAIRN_TRY_ASSIGN(crypto::RsaKey key, crypto::RsaKey::ParsePrivate(job->privkey));
        CAIRN_TRY_ASSIGN(std::string signature, key.Sign(prefix));
        const std::uint64_t o_bht = job->g.BlockHashTreeOffset();
        for (std::uint32_t i = 0; i < job->n; ++i) {
          std::string chain;
          for (std::size_t idx : share_tree.NeededHashes(i, /*include_leaf=*/false)) {
            PutBe(chain, idx, 2);
            chain += share_tree.Node(idx);
          }
          const std::uint64_t o_chain = kMdmfPrivateKeyOffset + job->encprivkey.size();
          const std::uint64_t o_sig = o_chain + chain.size();
          const std::uint64_t o_vk = o_sig + signature.size();
          const std::uint64_t o_vk_end = o_vk + job->pubkey.size();
          if (o_vk_end > kMdmfShareDataOffset) return Status::Internal("MDMF header fields overflow their reservation");
          std::string head = prefix;
          for (std::uint64_t o : {kMdmfPrivateKeyOffset, o_chain, o_sig, o_vk, o_vk_end, kMdmfShareDataOffset, o_bht,
                                  o_bht + trees[i].size()}) {
            PutBe(head, o, 8);
          }
          head += job->encprivkey;
          head += chain;
          head += signature;
          head += job->pubkey;
          // The tree first, the header (and so the checkstring) with it:
          // one request, applied at once by the server.
          job->writes[i].emplace_back(o_bht, std::move(trees[i]));
          job->writes[i].emplace_back(0, std::move(head));
        }
        job->checkstring = prefix.substr(0, kMdmfCheckstringSize);
        job->cpu_ms = ThreadCpuMs() - cpu;
        return Status::Ok();
      },
      [self, job, started](Status st) {
        self->timing_.encode_ms += MonotonicMs() - started;
        self->timing_.encode_cpu_ms += job->cpu_ms;
        if (!job->data && st.ok()) self->new_checkstring_ = job->checkstring;
        if (job->data) self->next_segment_ = job->last + 1;
        self->StreamEncoded(st, std::move(job->writes), !job->data);
      });
}

// A round's writes are ready: the first round places the shares (as any
// create) and sends; later rounds go to the writers whose shares took every
// round so far, each now tested against the marker.
void Publisher::StreamEncoded(Status st, std::vector<ShareWrites> writes, bool last) {
  if (state_ != State::kEncoding) return;
  if (!st.ok()) return Deliver(st.WithContext("encoding the new version"));
  if (Stopped()) return Deliver(Status::Cancelled("publish cancelled"));
  last_round_ = last;
  shares_ = std::make_shared<const std::vector<ShareWrites>>(std::move(writes));
  if (rounds_++ == 0) return StartWriting();
  state_ = State::kWriting;
  for (Writer& w : writers_) {
    if (w.is != Writer::Is::kWritten) continue;
    w.is = Writer::Is::kQueued;
    w.expect = marker_;
  }
  sending_ms_ = MonotonicMs();
  SendQueued();
  if (outstanding_ == 0) {
    auto self = shared_from_this();
    loop_.Post([self] { self->Advance(); });
  }
}

void Publisher::StartUpdate(caps::Cap writecap) {
  start_ms_ = MonotonicMs();
  start_cpu_ms_ = ThreadCpuMs();
  if (writecap.kind != caps::CapKind::kMutableWrite) {
    return FailLater(Status::BadCap("publish needs a write cap (URI:SSK: or URI:MDMF:)"));
  }
  if (options_.happy < 1) return FailLater(Status::InvalidArgument("happy must be at least 1"));
  writecap_ = std::move(writecap);
  format_ = &FormatFor(writecap_.format);
  writekey_ = writecap_.key;
  readkey_ = caps::ReadKeyOf(writekey_);
  storage_index_ = caps::MutableStorageIndexOf(readkey_);
  fingerprint_ = writecap_.digest;
  we_master_ = crypto::TaggedHash(crypto::tags::kWriteEnablerMaster, writekey_);
  si_ = ToStorageIndex(storage_index_);
  if (servers_.empty()) return FailLater(Status::NotEnoughServers("no storage servers are configured"));
  MapRequest req{MapMode::kWrite, writecap_.format, storage_index_, fingerprint_, writekey_};
  auto self = shared_from_this();
  UpdateServermap(loop_, std::move(servers_), std::move(req), &progress_, &stop_,
                  [self](Result<Servermap> map) { self->Mapped(std::move(map)); });
}

void Publisher::StartPartial(caps::Cap writecap, std::uint64_t offset) {
  in_place_ = true;
  offset_ = offset;
  if (writecap.kind == caps::CapKind::kMutableWrite && writecap.format != caps::MutableFormat::kMdmf) {
    start_ms_ = MonotonicMs();
    return FailLater(Status::InvalidArgument("an in-place update needs an MDMF file (URI:MDMF:); SDMF is "
                                             "one segment: publish the whole file"));
  }
  StartUpdate(std::move(writecap));
}

void Publisher::Mapped(Result<Servermap> map) {
  if (!map.ok()) return Deliver(map.status());
  map_ = std::move(*map);
  timing_.map_ms = MonotonicMs() - start_ms_;
  if (map_.shares.empty()) {
    std::size_t failed = static_cast<std::size_t>(std::count(map_.failed.begin(), map_.failed.end(), true));
    if (failed == map_.servers.size()) return Deliver(Status::NotEnoughServers("no server answered the servermap query"));
    return Deliver(Status::NotFound("no server holds a share of this mutable file"));
  }
  if (map_.privkey.empty()) {
    return Deliver(Status::Integrity("no share held a verified version with the file's private key"));
  }
  // The file keeps its encoding: k and N of the newest version seen.
  const SeenShare* newest = nullptr;
  for (const SeenShare& s : map_.shares) {
    if (!s.bad && (!newest || s.header.signed_prefix > newest->header.signed_prefix)) newest = &s;
  }
  // A sequence number past the expected version's: someone published after
  // the read. (Another version at the same number is a collision its
  // writers were told of; this publish supersedes it, as any would.)
  if (!options_.expected_version.empty() &&
      map_.HighestSeqnum() != SeqnumOfCheckstring(options_.expected_version)) {
    return Deliver(Status::UncoordinatedWrite(
        "the file changed after it was read (seqnum " +
        std::to_string(SeqnumOfCheckstring(options_.expected_version)) + " read, seqnum " +
        std::to_string(map_.HighestSeqnum()) + " now): nothing was written"));
  }
  k_ = newest->header.k;
  n_ = newest->header.n;
  privkey_ = map_.privkey;
  encprivkey_ = map_.encprivkey;
  pubkey_ = map_.pubkey;
  seqnum_ = map_.HighestSeqnum() + 1;
  if (Stopped()) return Deliver(Status::Cancelled("publish cancelled"));
  state_ = State::kEncoding;
  if (options_.TEST_before_write) {
    auto self = shared_from_this();  // the continuation keeps the publish alive
    options_.TEST_before_write([self] { self->in_place_ ? self->PrepareInPlace() : self->Encode(); });
    return;
  }
  if (in_place_) return PrepareInPlace();
  Encode();
}

// In place: the newest recoverable version is the one updated; update.h
// reads what it needs of it and builds each share's writes.
void Publisher::PrepareInPlace() {
  std::optional<std::string> best = map_.BestRecoverable();
  if (!best) return Deliver(Status::NotEnoughServers("no version of the file has k verified shares"));
  version_ = *best;
  Report("encoding", 0, contents_.size());
  UpdateRequest req;
  req.writecap = writecap_;
  req.readkey = readkey_;
  req.privkey = privkey_;
  req.version = version_;
  req.seqnum = seqnum_;
  req.offset = offset_;
  req.data = std::move(contents_);
  const double started = MonotonicMs();
  auto self = shared_from_this();
  PrepareUpdate(loop_, map_, std::move(req), [self, started](Result<UpdateWrites> w) {
    self->timing_.encode_ms = MonotonicMs() - started;
    self->Prepared(std::move(w));
  });
}

void Publisher::Prepared(Result<UpdateWrites> writes) {
  if (state_ != State::kEncoding) return;
  if (!writes.ok()) return Deliver(writes.status());
  if (Stopped()) return Deliver(Status::Cancelled("publish cancelled"));
  new_checkstring_ = writes->checkstring;
  new_size_ = writes->size;
  shares_ = std::make_shared<const std::vector<ShareWrites>>(std::move(writes->shares));
  StartWriting();
}

// Encrypt, encode, sign and lay out the shares on the thread pool: RSA
// signing and a large zfec encode are too slow for the loop.
void Publisher::Encode() {
  auto self = shared_from_this();
  auto job = std::make_shared<EncodeJob>();
  job->format = format_;
  job->privkey = privkey_;
  job->readkey = readkey_;
  job->pubkey = pubkey_;
  job->encprivkey = encprivkey_;
  job->contents = std::move(contents_);
  job->k = k_;
  job->n = n_;
  job->seqnum = seqnum_;
  Report("encoding", 0, job->contents.size());
  const double queued = MonotonicMs();
  // In steps over the cores: encrypt and FEC-encode (one thread), hash the
  // N blocks (two halves at once), seal the share hash tree (loop: N
  // hashes), then sign and lay out the shares (two halves) at once.
  OffloadParts(
      loop_, job, 1,
      [job](std::size_t) -> Status {
        CAIRN_TRY_ASSIGN(crypto::RsaKey key, crypto::RsaKey::ParsePrivate(job->privkey));
        job->key.emplace(std::move(key));
        // The format draws the IV (SDMF) or the segments' salts (MDMF).
        CAIRN_TRY_ASSIGN(job->enc, job->format->NewEncoder(EncodeParams{job->readkey, job->pubkey, job->encprivkey,
                                                                        job->contents, job->k, job->n, job->seqnum,
                                                                        std::string()}));
        return Status::Ok();
      },
      [self, job, queued](Status st) {
        self->timing_.encode_wait_ms = job->started_ms - queued;
        if (!st.ok()) return self->Encoded(st, job);
        self->HashBlocks(job);
      });
}

void Publisher::HashBlocks(const std::shared_ptr<EncodeJob>& job) {
  auto self = shared_from_this();
  const std::uint32_t half = (job->n + 1) / 2;
  OffloadParts(
      loop_, job, 2,
      [job, half](std::size_t part) -> Status {
        job->enc->HashBlocks(part == 0 ? 0 : half, part == 0 ? half : job->n);
        return Status::Ok();
      },
      [self, job](Status) {
        job->enc->Seal();
        self->SignAndLayOut(job);
      });
}

// The signature and the layout at once: each share gets a zero signature,
// replaced once the signature is made.
void Publisher::SignAndLayOut(const std::shared_ptr<EncodeJob>& job) {
  auto self = shared_from_this();
  const std::uint32_t half = (job->n + 1) / 2;
  job->shares.assign(job->n, std::string());
  OffloadParts(
      loop_, job, 3,
      [job, half](std::size_t part) -> Status {
        if (part == 0) {
          CAIRN_TRY_ASSIGN(job->signature, job->key->Sign(job->enc->signed_prefix()));
        } else {
          job->enc->LayOut(part == 1 ? 0 : half, part == 1 ? half : job->n, &job->shares);
        }
        return Status::Ok();
      },
      [self, job](Status st) {
        for (std::string& share : job->shares) {
          if (!st.ok()) break;
          st = job->enc->SetSignature(share, job->signature);
        }
        self->timing_.encode_ms = MonotonicMs() - job->started_ms;
        self->timing_.encode_cpu_ms = job->cpu_ms;
        self->Encoded(st, job);
      });
}

void Publisher::Encoded(Status st, const std::shared_ptr<EncodeJob>& job) {
  if (state_ != State::kEncoding) return;
  if (!st.ok()) return Deliver(st.WithContext("encoding the new version"));
  if (Stopped()) return Deliver(Status::Cancelled("publish cancelled"));
  contents_ = std::move(job->contents);
  new_size_ = contents_.size();
  new_checkstring_ = job->shares.at(0).substr(0, format_->checkstring_size());
  std::vector<ShareWrites> writes(job->shares.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    std::string& share = job->shares[i];
    if (share.size() <= kMaxWriteVector) {
      writes[i].emplace_back(0, std::move(share));
      continue;
    }
    // A large share goes as consecutive write vectors (as Tahoe sends an
    // MDMF share: a vector per segment), each within a server's limit on
    // one CBOR string.
    for (std::size_t at = 0; at < share.size(); at += kMaxWriteVector) {
      writes[i].emplace_back(at, share.substr(at, kMaxWriteVector));
    }
    std::string().swap(share);
  }
  shares_ = std::make_shared<const std::vector<ShareWrites>>(std::move(writes));
  StartWriting();
}

void Publisher::StartWriting() {
  const std::size_t m = map_.servers.size();
  failed_.assign(m, false);
  bad_.assign(m, false);
  failures_.assign(m, std::string());
  state_ = State::kWriting;
  std::size_t happiness = PlaceAll();
  const std::size_t happy = std::min<std::size_t>(options_.happy, n_);
  if (happiness < happy) {
    // Nothing is written when the servers that answered cannot be enough.
    return Deliver(Status::NotEnoughServers("servers of happiness would be " + std::to_string(happiness) +
                                            ", need " + std::to_string(happy) + FailedServers()));
  }
  sending_ms_ = MonotonicMs();
  SendQueued();
  if (outstanding_ == 0) {
    auto self = shared_from_this();
    loop_.Post([self] { self->Advance(); });
  }
}

// Every share the map saw on a server that answered is written there again
// (tested against what was seen: the old version's checkstring, or the
// first 75 bytes of a bad share); shares with no home then go where
// PlanPlacement puts them (fresh file: share i on the i-th server).
std::size_t Publisher::PlaceAll() {
  std::vector<grid::ServerState> states(map_.servers.size());
  std::set<std::pair<std::size_t, std::uint32_t>> seen;
  for (const SeenShare& s : map_.shares) {
    if (!Usable(s.server) || s.shnum >= n_ || !seen.insert({s.server, s.shnum}).second) continue;
    // In place, only the version's own shares can take its changed parts.
    if (in_place_ && (s.bad || s.header.signed_prefix != version_ || shares_->at(s.shnum).empty())) continue;
    writers_.push_back(Writer{s.server, s.shnum, s.old_checkstring});
    states[s.server].existing.insert(s.shnum);
  }
  if (in_place_) {
    grid::SharePlacement planned;
    for (const Writer& w : writers_) planned[w.shnum].insert(w.server);
    return grid::Happiness(planned);
  }
  for (std::size_t i = 0; i < states.size(); ++i) states[i].writable = Usable(i);
  grid::PlacementPlan plan = grid::PlanPlacement(states, n_);
  for (const auto& [server, shnums] : plan.new_shares) {
    for (std::uint32_t sh : shnums) writers_.push_back(Writer{server, sh, std::string()});
  }
  return plan.happiness;
}

// Shares that lost every home (their servers failed) go to the usable
// server with the fewest shares of this publish, in permuted order, that
// does not already have them.
void Publisher::PlaceHomeless() {
  std::vector<std::size_t> load(map_.servers.size(), 0);
  std::set<std::uint32_t> housed;
  std::set<std::pair<std::size_t, std::uint32_t>> tried;
  for (const Writer& w : writers_) {
    tried.insert({w.server, w.shnum});
    if (!Live(w)) continue;
    ++load[w.server];
    housed.insert(w.shnum);
  }
  for (std::uint32_t sh = 0; sh < n_; ++sh) {
    if (housed.count(sh)) continue;
    std::optional<std::size_t> best;
    for (std::size_t s = 0; s < map_.servers.size(); ++s) {
      if (!Usable(s) || tried.count({s, sh})) continue;
      if (!best || load[s] < load[*best]) best = s;
    }
    if (!best) continue;  // nowhere left for this share
    writers_.push_back(Writer{*best, sh, std::string()});
    ++load[*best];
    ++replaced_;
    CAIRN_LOG(Info, "publish: share %u goes to %s instead", sh, map_.servers[*best].name.c_str());
  }
}

// One request per server for all its queued shares. Every request of the
// round is recorded and counted outstanding before the first is sent.
void Publisher::SendQueued() {
  std::map<std::size_t, std::size_t> by_server;  // server -> request
  const std::size_t first = requests_.size();
  for (std::size_t w = 0; w < writers_.size(); ++w) {
    if (writers_[w].is != Writer::Is::kQueued) continue;
    auto [it, fresh] = by_server.emplace(writers_[w].server, requests_.size());
    if (fresh) requests_.push_back(Request{writers_[w].server, {}, false});
    requests_[it->second].writers.push_back(w);
    writers_[w].is = Writer::Is::kSent;
  }
  outstanding_ += requests_.size() - first;
  for (std::size_t r = first; r < requests_.size(); ++r) SendRequest(r);
}

// One read-test-write: request r's shares, each tested against what its
// writer expects there. The body (a share is about 350 KB) is encoded on
// the thread pool: the loop, which TLS-encrypts one request's body while
// the pool encodes the next, no longer copies them all in one turn.
void Publisher::SendRequest(std::size_t r) {
  auto job = std::make_shared<BodyJob>();
  job->shares = shares_;
  job->checkstring_size = format_->checkstring_size();
  for (std::size_t w : requests_[r].writers) {
    job->writes.emplace_back(writers_[w].shnum, writers_[w].expect);
    for (const auto& part : shares_->at(writers_[w].shnum)) bytes_written_ += part.second.size();
  }
  auto self = shared_from_this();
  loop_.Offload(
      [job]() -> Status {
        gbs::RtwRequest rtw;
        for (const auto& [shnum, expect] : job->writes) {
          gbs::ShareTestWrite& tw = rtw.shares[shnum];
          if (expect.empty()) {
            tw.test.push_back(gbs::TestVector{0, 1, std::string_view()});  // the share must not exist
          } else {
            tw.test.push_back(gbs::TestVector{0, expect.size(), expect});
          }
          for (const auto& [at, bytes] : job->shares->at(shnum)) tw.write.push_back(gbs::WriteVector{at, bytes});
        }
        rtw.read.push_back(gbs::ReadVector{0, job->checkstring_size});
        job->body = gbs::EncodeRtwRequest(rtw);
        return Status::Ok();
      },
      [self, job, r](Status st) {
        if (!st.ok()) return self->Answered(r, st.WithContext("encoding the read-test-write"));
        self->Hand(r, std::move(job->body));
      });
}

void Publisher::Hand(std::size_t r, std::string body) {
  timing_.send_ms = MonotonicMs() - sending_ms_;
  const grid::GridServer& server = map_.servers[requests_[r].server];
  caps::LeaseSecrets lease = caps::LeaseSecretsFor(options_.lease_secret, storage_index_, server.lease_seed);
  auto self = shared_from_this();
  server.client->ReadTestWriteEncoded(si_, caps::WriteEnablerOf(we_master_, server.lease_seed),
                                      gbs::LeaseSecrets{lease.renew, lease.cancel}, std::move(body),
                                      [self, r](Result<gbs::RtwResponse> a) { self->Answered(r, std::move(a)); });
}

// Is `checkstring`, read from share `shnum` on the request's server, one
// this publish can explain: ours, the one a writer of ours expected there,
// or what the map saw there? If not, another writer was at work: the first
// such finding is kept as the UncoordinatedWrite message.
bool Publisher::Judge(const Request& req, std::uint32_t shnum, const std::string& checkstring) {
  if (checkstring == new_checkstring_) return true;
  const std::size_t size = format_->checkstring_size();
  for (const Writer& w : writers_) {
    if (w.server == req.server && w.shnum == shnum &&
        checkstring == std::string_view(w.expect).substr(0, size)) {
      return true;
    }
  }
  for (const SeenShare& s : map_.shares) {
    if (s.server == req.server && s.shnum == shnum &&
        checkstring == std::string_view(s.old_checkstring).substr(0, size)) {
      return true;
    }
  }
  if (!surprise_.empty()) return false;
  surprise_ = "server " + map_.servers[req.server].name + " holds share " + std::to_string(shnum) + " at " +
              Describe(checkstring) + ", which this publish (seqnum " + std::to_string(seqnum_) +
              ") did not expect: another writer changed the file";
  return false;
}

void Publisher::Answered(std::size_t index, Result<gbs::RtwResponse> r) {
  Request& req = requests_[index];
  if (req.settled) return;  // a second answer to one request changes nothing
  req.settled = true;
  --outstanding_;
  ++answered_;
  timing_.last_answer_ms = MonotonicMs() - sending_ms_;
  if (answered_ == 1) timing_.first_answer_ms = timing_.last_answer_ms;
  if (state_ != State::kWriting) return;
  Report("publishing", answered_, requests_.size());
  const std::string& name = map_.servers[req.server].name;
  if (!r.ok() && r.status().code() == Code::kUnauthenticated) {
    // The server refused our write enabler: its identity is not the one we
    // derived it from, or someone else holds the slot. Its shares still
    // find other homes, but the publish will not report success: the
    // shares it holds stay at their old version.
    CAIRN_LOG(Warn, "publish: server %s refused the write enabler: %s", name.c_str(),
              r.status().ToString().c_str());
    failed_[req.server] = true;
    failures_[req.server] = "refused the write enabler (401)";
    for (std::size_t w : req.writers) {
      writers_[w].is = Writer::Is::kFailed;
      refused_[req.server].emplace_back(writers_[w].shnum, Describe(writers_[w].expect));
    }
  } else if (!r.ok()) {
    // Not a surprise: the server is dropped and its shares find other homes.
    CAIRN_LOG(Info, "publish: server %s failed: %s", name.c_str(), r.status().ToString().c_str());
    failed_[req.server] = true;
    failures_[req.server] = std::string(r.status().message());
    for (std::size_t w : req.writers) writers_[w].is = Writer::Is::kFailed;
  } else {
    Record(req, *r);
  }
  auto self = shared_from_this();
  loop_.Post([self] { self->Advance(); });
}

// An answer that arrived: which writes took, and whether everything the
// server read back can be explained.
void Publisher::Record(const Request& req, const gbs::RtwResponse& r) {
  bool explained = true;
  std::set<std::uint32_t> mine;
  for (std::size_t w : req.writers) {
    Writer& wr = writers_[w];
    mine.insert(wr.shnum);
    auto it = r.data.find(wr.shnum);
    std::string cs = it == r.data.end() || it->second.empty() ? std::string() : it->second[0];
    explained = Judge(req, wr.shnum, cs) && explained;
    // A failed test writes nothing, unless our version is already there.
    wr.is = r.success || cs == new_checkstring_ ? Writer::Is::kWritten : Writer::Is::kRejected;
  }
  for (const auto& [sh, reads] : r.data) {
    if (!mine.count(sh)) explained = Judge(req, sh, reads.empty() ? std::string() : reads[0]) && explained;
  }
  if (!r.success && explained && surprise_.empty()) {
    bool all_ours = true;
    for (std::size_t w : req.writers) all_ours = all_ours && writers_[w].is == Writer::Is::kWritten;
    if (!all_ours) {
      surprise_ = "server " + map_.servers[req.server].name +
                  " refused the write's test vector: another writer changed the file";
    }
  }
  if (!surprise_.empty() && !r.success) bad_[req.server] = true;
}

// The driver: on its own turn, re-places shares whose servers failed and
// sends them, or finishes once nothing is outstanding.
void Publisher::Advance() {
  if (state_ != State::kWriting) return;
  if (!stopping_ && Stopped()) stopping_ = true;
  // In place, a failed server's shares have no other home: only a whole
  // share could go elsewhere, and an update does not hold one.
  if (!stopping_ && surprise_.empty() && !in_place_ && !streamed_) {
    PlaceHomeless();
    SendQueued();
  }
  if (outstanding_ != 0) return;
  if (streamed_ && !last_round_ && !stopping_ && surprise_.empty()) {
    // The next round, unless the shares still written cannot be enough.
    grid::SharePlacement live;
    for (const Writer& w : writers_) {
      if (w.is == Writer::Is::kWritten) live[w.shnum].insert(w.server);
    }
    const std::size_t happy = std::min<std::size_t>(options_.happy, n_);
    if (live.size() >= k_ && grid::Happiness(live) >= happy) return StreamEncode();
  }
  Finish();
}

void Publisher::Finish() {
  if (stopping_) return Deliver(Status::Cancelled("publish cancelled"));
  if (!surprise_.empty()) return Deliver(Status::UncoordinatedWrite(surprise_));
  grid::SharePlacement placed;
  for (const Writer& w : writers_) {
    if (w.is == Writer::Is::kWritten) placed[w.shnum].insert(w.server);
  }
  const std::size_t happiness = grid::Happiness(placed);
  const std::size_t happy = std::min<std::size_t>(options_.happy, n_);
  if (!refused_.empty()) return Deliver(Status::Unauthenticated(RefusedServers(placed.size())));
  if (placed.size() < k_ || happiness < happy) {
    return Deliver(Status::NotEnoughServers(std::to_string(placed.size()) + " of " + std::to_string(n_) +
                                            " shares placed on servers of happiness " + std::to_string(happiness) +
                                            ", need " + std::to_string(k_) + " shares and happiness " +
                                            std::to_string(happy) + FailedServers()));
  }
  PublishResult res;
  res.writecap = writecap_;
  res.seqnum = seqnum_;
  res.size = new_size_;
  res.bytes_written = bytes_written_;
  res.happiness = happiness;
  for (const auto& [sh, holders] : placed) {
    for (std::size_t s : holders) res.placement[sh].push_back(map_.servers[s].name);
  }
  res.writes_sent = requests_.size();
  res.servers_failed = static_cast<std::size_t>(std::count(failed_.begin(), failed_.end(), true));
  res.shares_replaced = replaced_;
  timing_.total_ms = MonotonicMs() - start_ms_;
  timing_.loop_cpu_ms = ThreadCpuMs() - start_cpu_ms_;
  res.timing = timing_;
  Report("publishing", requests_.size(), requests_.size());
  Deliver(std::move(res));
}

// " (failed: s1: why; s4: why)", or " (too few servers)".
std::string Publisher::FailedServers() const {
  std::string failed;
  for (std::size_t s = 0; s < map_.servers.size(); ++s) {
    std::string why = failed_[s] ? failures_[s] : map_.failed[s] ? map_.failures[s] : std::string();
    if (why.empty()) continue;
    failed += (failed.empty() ? "" : "; ") + map_.servers[s].name + ": " + why;
  }
  return failed.empty() ? std::string(" (too few servers)") : " (failed: " + failed + ")";
}

// What an authorization failure left behind: the servers that refused, the
// shares each did not update, and where the new version went.
std::string Publisher::RefusedServers(std::size_t placed) const {
  std::string servers, shares;
  bool stale = false;
  for (const auto& [s, refused] : refused_) {
    servers += (servers.empty() ? "" : ", ") + map_.servers[s].name;
    for (const auto& [shnum, held] : refused) {
      shares += (shares.empty() ? "" : "; ") + std::string("share ") + std::to_string(shnum) + " on " +
                map_.servers[s].name + " (" + held + ")";
      stale = stale || held != "no share";
    }
  }
  std::string msg = "server(s) " + servers +
                    " refused this publish's write enabler (HTTP 401). Not updated: " + shares + ". ";
  if (stale) msg += "The file now has stale shares there. ";
  msg += "The new version (seqnum " + std::to_string(seqnum_) + ") is on " + std::to_string(placed) + " of " +
         std::to_string(n_) + " shares elsewhere. Either the server's identity is misconfigured (a Tahoe-LAFS node "
         "added by its NURL alone: add it from its announcement with `cairn servers add ENTRY-FILE`), or another "
         "client holds this slot with another write enabler.";
  return msg;
}

void Publisher::Deliver(Result<PublishResult> r) {
  state_ = State::kDone;
  op_.Finish(std::move(r));
}

}  // namespace

void NewMutableKey(Loop& loop, Callback<void(Result<NewKey>)> done) {
  NewMutableKey(loop, caps::MutableFormat::kSdmf, std::move(done));
}

void NewMutableKey(Loop& loop, caps::MutableFormat format, Callback<void(Result<NewKey>)> done) {
  grid::Operation<NewKey> op(loop, "mutable key generation", std::move(done));
  crypto::GenerateRsaKeyOffLoop(loop, [op, format](Result<crypto::RsaKey> key) {
    if (!key.ok()) return op.Finish(key.status());
    NewKey out;
    out.privkey_pkcs8 = key->PrivatePkcs8Der();
    out.pubkey_spki = key->PublicSpkiDer();
    out.writecap = caps::MutableWriteCap(caps::DeriveMutableKeys(out.privkey_pkcs8, out.pubkey_spki), format);
    op.Finish(std::move(out));
  });
}

void CreateMutable(Loop& loop, std::vector<grid::GridServer> servers, NewKey key, std::string contents,
                   MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                   Callback<void(Result<PublishResult>)> done) {
  auto p = std::make_shared<Publisher>(loop, std::move(servers), std::move(contents), std::move(options),
                                       std::move(progress), std::move(stop), std::move(done));
  p->StartCreate(std::move(key));
}

void UpdateMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, std::uint64_t offset,
                   std::string data, MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                   Callback<void(Result<PublishResult>)> done) {
  auto p = std::make_shared<Publisher>(loop, std::move(servers), std::move(data), std::move(options),
                                       std::move(progress), std::move(stop), std::move(done));
  p->StartPartial(std::move(writecap), offset);
}

void PublishMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, std::string contents,
                    MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                    Callback<void(Result<PublishResult>)> done) {
  auto p = std::make_shared<Publisher>(loop, std::move(servers), std::move(contents), std::move(options),
                                       std::move(progress), std::move(stop), std::move(done));
  p->StartUpdate(std::move(writecap));
}

}  // namespace cairn::mutable_files
