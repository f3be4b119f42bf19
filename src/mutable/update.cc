// The first half of an in-place MDMF update (see update.h). One Updater per
// call, owned by the completions in flight; its result goes through a
// grid::Operation (once, on a later turn). Reads: the old plaintext by
// ranged retrieves, each share's tree nodes by ranged reads; the checks,
// the encode and the signature run on the thread pool.
#include "mutable/update.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "cairn/core/endian.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"
#include "cairn/grid/operation.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/mutable_file.h"
#include "mutable/mdmf_segments.h"
#include "mutable/retrieve.h"
#include "mutable/share_reads.h"

namespace cairn::mutable_files {
namespace {

// Tree nodes this close together are read in one range (see retrieve.cc).
constexpr std::uint64_t kTreeReadGap = 4096;

// One share number's old block hash tree as read from one holder.
struct TreeRead {
  std::size_t holder = 0;  // index into the map's shares
  Status error;
  std::set<std::size_t> wanted;  // the nodes kept (empty: all, when the file grows)
  TreeNodes nodes;         // the nodes read (needed ones and the touched leaves; or all)
  std::string prefix;      // the share's signed prefix, read with them
  bool verified = false;
};

class Updater : public std::enable_shared_from_this<Updater> {
 public:
  Updater(Loop& loop, const Servermap& map, UpdateRequest req, Callback<void(Result<UpdateWrites>)> done)
      : loop_(loop), op_(loop, "mutable update", std::move(done)), map_(map), req_(std::move(req)) {}

  void Start();

 private:
  void FetchOld(std::uint64_t from, std::uint64_t to, std::string* into);
  void ReadTree(std::uint32_t shnum);
  void TreeDone(std::uint32_t shnum);
  void Done();  // one pending step finished
  void Encode();
  std::vector<std::size_t> Holders(std::uint32_t shnum) const;

  Loop& loop_;
  grid::Operation<UpdateWrites> op_;
  Servermap map_;
  UpdateRequest req_;
  gbs::StorageIndex si_{};
  ShareHeader old_;
  MdmfGeometry g_old_, g_new_;
  std::uint64_t first_ = 0, last_ = 0, new_len_ = 0;
  bool grows_ = false;
  std::string before_, after_;  // old plaintext kept around the write in its first and last segment
  std::vector<std::shared_ptr<TreeRead>> trees_;  // per share number
  std::vector<std::size_t> tried_;                // per share number: holders tried
  std::size_t pending_ = 0;
  std::size_t bytes_read_ = 0;
};

std::vector<std::size_t> Updater::Holders(std::uint32_t shnum) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < map_.shares.size(); ++i) {
    const SeenShare& s = map_.shares[i];
    if (s.shnum == shnum && !s.bad && !map_.failed[s.server] && s.header.signed_prefix == req_.version) {
      out.push_back(i);
    }
  }
  return out;
}

void Updater::Start() {
  const ShareHeader* h = map_.HeaderOf(req_.version);
  if (!h || h->format != caps::MutableFormat::kMdmf) {
    return op_.FinishSoon(Status::InvalidArgument("an in-place update needs an MDMF version"));
  }
  old_ = *h;
  if (req_.data.empty()) return op_.FinishSoon(Status::InvalidArgument("an update writes at least one byte"));
  if (req_.offset > old_.data_length) {
    return op_.FinishSoon(Status::InvalidArgument("offset " + std::to_string(req_.offset) + " is past the file's end (" +
                                                  std::to_string(old_.data_length) + " bytes)"));
  }
  si_ = ToStorageIndex(caps::MutableStorageIndexOf(req_.readkey));
  const std::uint64_t seg = old_.segment_size;
  const std::uint64_t end = req_.offset + req_.data.size();
  new_len_ = std::max(old_.data_length, end);
  grows_ = new_len_ != old_.data_length;
  g_old_ = MdmfGeometryOf(old_.data_length, old_.k);
  g_new_ = MdmfGeometryOf(new_len_, old_.k);
  first_ = req_.offset / seg;
  last_ = (end - 1) / seg;
  // Every share's new block tree root is a leaf of the share hash tree:
  // all N share numbers must be readable.
  trees_.resize(old_.n);
  tried_.assign(old_.n, 0);
  for (std::uint32_t sh = 0; sh < old_.n; ++sh) {
    if (Holders(sh).empty()) {
      return op_.FinishSoon(Status::NotEnoughServers(
          "no server holds share " + std::to_string(sh) + " of seqnum " + std::to_string(old_.seqnum) +
          ": an in-place update needs every share of the version (publish the whole file instead)"));
    }
  }
  // The old bytes of the first and last segment that the write leaves.
  const std::uint64_t seg_from = first_ * seg;
  const std::uint64_t seg_to = std::min(new_len_, (last_ + 1) * seg);
  pending_ = 1;  // this function's own hold, released below
  if (first_ == last_ && seg_from < req_.offset && end < seg_to) {
    FetchOld(seg_from, seg_to, &before_);  // both in one segment: one read, cut in Encode
  } else {
    if (seg_from < req_.offset) FetchOld(seg_from, req_.offset, &before_);
    if (end < seg_to) FetchOld(end, seg_to, &after_);
  }
  for (std::uint32_t sh = 0; sh < old_.n; ++sh) ReadTree(sh);
  Done();
}

void Updater::FetchOld(std::uint64_t from, std::uint64_t to, std::string* into) {
  ++pending_;
  RetrieveOptions o;
  o.offset = from;
  o.size = to - from;
  auto self = shared_from_this();
  const std::uint64_t seqnum = old_.seqnum, length = old_.data_length;
  // From the publish's own map: no second servermap update.
  RetrieveFromMap(loop_, map_, req_.writecap, std::move(o),
                  [self, into, seqnum, length, from, to](Result<RetrieveResult> got) {
                    if (self->op_.finished()) return;
                    if (!got.ok()) return self->op_.Finish(got.status().WithContext("reading the old segment"));
                    if (got->seqnum != seqnum || got->file_size != length || got->contents.size() != to - from) {
                      return self->op_.Finish(Status::UncoordinatedWrite(
                          "the file changed (seqnum " + std::to_string(got->seqnum) + ") while it was updated"));
                    }
                    self->bytes_read_ += got->bytes_fetched;
                    *into = std::move(got->contents);
                    self->Done();
                  });
}

// The tree nodes of share `shnum`'s next untried holder: those the touched
// segments need and their own leaves, or the whole tree when the file grows.
void Updater::ReadTree(std::uint32_t shnum) {
  std::vector<std::size_t> holders = Holders(shnum);
  if (tried_[shnum] >= holders.size()) {
    if (op_.finished()) return;
    return op_.Finish(Status::NotEnoughServers("no holder of share " + std::to_string(shnum) +
                                               " of the version could be read for the update"));
  }
  ++pending_;
  auto t = std::make_shared<TreeRead>();
  t->holder = holders[tried_[shnum]++];
  trees_[shnum] = t;
  const SeenShare& s = map_.shares[t->holder];
  const std::uint64_t tree_at = s.header.block_hash_tree.offset;
  std::vector<ByteRange> ranges;
  if (grows_) {
    ranges.push_back(s.header.block_hash_tree);
  } else {
    std::vector<std::size_t> nodes = NeededTreeNodes(g_old_.num_segments, first_, last_);
    const std::size_t width = crypto::HashTreeWidth(static_cast<std::size_t>(g_old_.num_segments));
    for (std::uint64_t leaf = first_; leaf <= last_; ++leaf) nodes.push_back(width - 1 + static_cast<std::size_t>(leaf));
    std::sort(nodes.begin(), nodes.end());
    t->wanted.insert(nodes.begin(), nodes.end());
    ranges = TreeNodeRanges(tree_at, nodes, kTreeReadGap);
  }
  auto self = shared_from_this();
  // The signed prefix again, with the nodes: a share rewritten since the
  // map (another writer) is told from a corrupt one. A few at a time
  // (share_reads.h).
  ranges.insert(ranges.begin(), ByteRange{0, kMdmfSignedPrefixSize});
  ReadShareRanges(loop_, *map_.servers[s.server].client, si_, shnum, ranges, 2,
                  [self, t, shnum, ranges, tree_at](std::vector<Result<std::string>> got) {
                    for (std::size_t i = 0; i < got.size(); ++i) {
                      if (!got[i].ok()) {
                        if (t->error.ok()) t->error = got[i].status();
                        continue;
                      }
                      if (i == 0) {
                        t->prefix = std::move(*got[i]);
                        continue;
                      }
                      const std::string& b = *got[i];
                      self->bytes_read_ += b.size();
                      const std::size_t at = static_cast<std::size_t>((ranges[i].offset - tree_at) / crypto::kHashSize);
                      for (std::size_t n = 0; n * crypto::kHashSize < b.size(); ++n) {
                        if (!t->wanted.empty() && !t->wanted.count(at + n)) continue;  // read only to join ranges
                        t->nodes[at + n] = b.substr(n * crypto::kHashSize, crypto::kHashSize);
                      }
                    }
                    self->TreeDone(shnum);
                  });
}

// A holder's nodes are checked on the thread pool: the leaves (and the
// siblings) up to the block tree's root, the chain up to the signed root.
void Updater::TreeDone(std::uint32_t shnum) {
  if (op_.finished()) return;
  std::shared_ptr<TreeRead> t = trees_[shnum];
  const SeenShare& s = map_.shares[t->holder];
  if (!t->error.ok()) {
    CAIRN_LOG(Info, "update: share %u on %s: %s", shnum, map_.servers[s.server].name.c_str(),
              t->error.ToString().c_str());
    --pending_;
    return ReadTree(shnum);
  }
  if (t->prefix != req_.version) {
    return op_.Finish(Status::UncoordinatedWrite(
        "share " + std::to_string(shnum) + " on " + map_.servers[s.server].name + " holds seqnum " +
        std::to_string(SeqnumOfCheckstring(t->prefix)) + " now, not the version being updated (seqnum " +
        std::to_string(old_.seqnum) + "): another writer changed the file"));
  }
  auto chain = ParseShareHashChain(s.head, s.header.share_hash_chain);
  if (!chain.ok()) {
    --pending_;
    return ReadTree(shnum);
  }
  auto self = shared_from_this();
  const ShareHeader old = old_;
  const bool grows = grows_;
  const std::size_t width = crypto::HashTreeWidth(static_cast<std::size_t>(g_old_.num_segments));
  auto checked = std::make_shared<Status>();
  op_.SideStarted();
  loop_.Offload(
      [t, old, grows, width, shnum, chain = std::move(*chain), checked]() -> Status {
        TreeNodes nodes;
        if (grows) {
          if (t->nodes.size() != 2 * width - 1) return Status::Integrity("the block hash tree has the wrong size");
          for (std::size_t i = width - 1; i < 2 * width - 1; ++i) nodes[i] = t->nodes[i];
        } else {
          nodes = t->nodes;
        }
        auto root = CompleteTree(width, nodes);
        if (!root.ok()) return Status::Integrity(std::string(root.status().message()));
        CAIRN_TRY(crypto::VerifyHashTreeLeaf(old.root_hash, old.n, shnum, *root, chain));
        if (grows) t->nodes = std::move(nodes);  // every node, recomputed from the leaves
        t->verified = true;
        return Status::Ok();
      },
      [self, t, shnum](Status st) {
        self->op_.SideEnded();
        if (self->op_.finished()) return;
        if (!st.ok()) {
          CAIRN_LOG(Warn, "update: share %u's block hash tree does not verify: %s", shnum, st.ToString().c_str());
          --self->pending_;
          return self->ReadTree(shnum);
        }
        self->Done();
      });
}

void Updater::Done() {
  if (op_.finished() || --pending_ > 0) return;
  Encode();
}

// What the thread pool needs to encode an update, and its result.
struct UpdateJob {
  UpdateRequest req;
  ShareHeader old;
  MdmfGeometry g_old, g_new;
  std::uint64_t first, last, new_len;
  bool grows;
  std::string plaintext;  // segments [first, last] of the new version
  std::vector<std::shared_ptr<TreeRead>> trees;
  std::vector<ShareHeader> headers;  // per share number: its source holder's
  UpdateWrites out;
};

// Each share's new block hash tree root from the touched segments' leaves
// `enc.leaves`. When the file grows, `trees[i]` gets share i's whole new tree
// (flattened); else `changed[i]` gets the nodes on the touched leaves' paths.
Status NewTrees(UpdateJob& job, EncodedSegments& enc, std::vector<std::string>& roots, std::vector<std::string>& trees,
                std::vector<TreeNodes>& changed) {
  const std::size_t w_old = crypto::HashTreeWidth(static_cast<std::size_t>(job.g_old.num_segments));
  const std::size_t w_new = crypto::HashTreeWidth(static_cast<std::size_t>(job.g_new.num_segments));
  for (std::uint32_t i = 0; i < job.old.n; ++i) {
    TreeNodes& nodes = job.trees[i]->nodes;
    if (job.grows) {
      std::vector<std::string> leaves;
      for (std::uint64_t s = 0; s < job.first; ++s) leaves.push_back(nodes.at(w_old - 1 + s));
      for (std::string& leaf : enc.leaves[i]) leaves.push_back(std::move(leaf));
      crypto::HashTree tree(std::move(leaves));
      roots[i] = tree.Root();
      trees[i] = tree.Flatten();
      continue;
    }
    for (std::size_t j = 0; j < enc.leaves[i].size(); ++j) nodes[w_new - 1 + job.first + j] = enc.leaves[i][j];
    CAIRN_TRY_ASSIGN(roots[i], CompleteTree(w_new, nodes));
    std::size_t lo = w_new - 1 + job.first, hi = w_new - 1 + job.last;
    for (;;) {
      for (std::size_t x = lo; x <= hi; ++x) changed[i][x] = nodes.at(x);
      if (hi == 0) break;
      lo = (lo - 1) / 2;
      hi = (hi - 1) / 2;
    }
  }
  return Status::Ok();
}

// Adds one write per run of adjacent `changed` nodes (one per level) of a
// block hash tree that starts at `o_bht`.
void AddTreeNodeWrites(ShareWrites& w, std::uint64_t o_bht, const TreeNodes& changed) {
  std::string run;
  std::size_t run_first = 0, prev = 0;
  for (const auto& [x, hash] : changed) {
    if (!run.empty() && x != prev + 1) {
      w.emplace_back(o_bht + run_first * crypto::kHashSize, std::move(run));
      run.clear();
    }
    if (run.empty()) run_first = x;
    run += hash;
    prev = x;
  }
  if (!run.empty()) w.emplace_back(o_bht + run_first * crypto::kHashSize, std::move(run));
}

// The new segments, trees, root, prefix and signature, and every share's
// write vectors into job.out. Runs on the thread pool.
Status EncodeUpdate(UpdateJob& job) {
  const std::uint32_t n = job.old.n;
  CAIRN_TRY_ASSIGN(EncodedSegments enc,
                   EncodeSegments(job.g_new, job.old.k, n, job.first, job.plaintext, job.req.readkey));
  std::vector<std::string> roots(n);
  std::vector<std::string> trees(n);  // grows: the whole new tree, flattened
  std::vector<TreeNodes> changed(n);  // else: the nodes on the touched leaves' paths
  CAIRN_TRY(NewTrees(job, enc, roots, trees, changed));
  crypto::HashTree share_tree(roots);
  const std::string prefix =
      MdmfSignedPrefix(job.req.seqnum, share_tree.Root(), job.old.k, job.old.n, job.g_new.segsize, job.new_len);
  CAIRN_TRY_ASSIGN(crypto::RsaKey key, crypto::RsaKey::ParsePrivate(job.req.privkey));
  CAIRN_TRY_ASSIGN(std::string signature, key.Sign(prefix));
  const std::uint64_t o_bht = job.g_new.BlockHashTreeOffset();
  const std::uint64_t o_eof = o_bht + job.g_new.BlockHashTreeNodes() * crypto::kHashSize;
  job.out.shares.assign(n, ShareWrites());
  for (std::uint32_t i = 0; i < n; ++i) {
    const ShareHeader& h = job.headers[i];
    ShareWrites& w = job.out.shares[i];
    std::string blocks;
    for (std::size_t j = 0; j < enc.shares[i].blocks.size(); ++j) {
      blocks += enc.shares[i].salts[j];
      blocks += enc.shares[i].blocks[j];
    }
    w.emplace_back(job.g_new.SegmentOffset(job.first), std::move(blocks));
    if (job.grows) {
      w.emplace_back(o_bht, std::move(trees[i]));
    } else {
      AddTreeNodeWrites(w, o_bht, changed[i]);
    }
    std::string chain;
    for (std::size_t idx : share_tree.NeededHashes(i, /*include_leaf=*/false)) {
      PutBe(chain, idx, 2);
      chain += share_tree.Node(idx);
    }
    if (chain.size() != h.share_hash_chain.length) {
      return Status::Integrity("share " + std::to_string(i) + "'s hash chain does not fit its place");
    }
    if (!chain.empty()) w.emplace_back(h.share_hash_chain.offset, std::move(chain));
    w.emplace_back(h.signature.offset, signature);
    std::string offsets;
    for (std::uint64_t o : {h.encprivkey.offset, h.share_hash_chain.offset, h.signature.offset,
                            h.verification_key.offset, h.verification_key.end(), kMdmfShareDataOffset, o_bht, o_eof}) {
      PutBe(offsets, o, 8);
    }
    w.emplace_back(kMdmfSignedPrefixSize, std::move(offsets));
    w.emplace_back(0, prefix);
  }
  job.out.checkstring = prefix.substr(0, kMdmfCheckstringSize);
  job.out.size = job.new_len;
  job.out.first_segment = job.first;
  job.out.last_segment = job.last;
  return Status::Ok();
}

// Hands the encode (EncodeUpdate) to the thread pool with what it needs.
void Updater::Encode() {
  auto job = std::make_shared<UpdateJob>();
  const std::uint64_t seg = old_.segment_size;
  const std::uint64_t seg_from = first_ * seg;
  if (first_ == last_ && !before_.empty() && after_.empty() && seg_from + before_.size() > req_.offset) {
    // One read held both sides: [seg_from, seg_to).
    after_ = before_.substr(static_cast<std::size_t>(req_.offset + req_.data.size() - seg_from));
    before_.resize(static_cast<std::size_t>(req_.offset - seg_from));
  }
  job->plaintext = std::move(before_);
  job->plaintext += req_.data;
  job->plaintext += after_;
  job->req = std::move(req_);
  job->old = old_;
  job->g_old = g_old_;
  job->g_new = g_new_;
  job->first = first_;
  job->last = last_;
  job->new_len = new_len_;
  job->grows = grows_;
  job->trees = trees_;
  for (const auto& t : trees_) job->headers.push_back(map_.shares[t->holder].header);
  job->out.bytes_read = bytes_read_;
  auto self = shared_from_this();
  op_.SideStarted();
  loop_.Offload([job]() -> Status { return EncodeUpdate(*job); },
                [self, job](Status st) {
                  self->op_.SideEnded();
                  if (self->op_.finished()) return;
                  if (!st.ok()) return self->op_.Finish(st.WithContext("encoding the update"));
                  self->op_.Finish(std::move(job->out));
                });
}

}  // namespace

void PrepareUpdate(Loop& loop, const Servermap& map, UpdateRequest request, Callback<void(Result<UpdateWrites>)> done) {
  auto u = std::make_shared<Updater>(loop, map, std::move(request), std::move(done));
  u->Start();
}

}  // namespace cairn::mutable_files
