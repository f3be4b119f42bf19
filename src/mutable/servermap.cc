// Servermap update (see servermap.h). One Mapper per update, owned by the
// completions in flight; once it has a result, answers still arriving are
// dropped. Per server: list the shares, read each one's first
// kMapReadSize bytes, parse and verify the header through the share
// format, and in write mode fetch the encrypted private key until one
// passes the writekey check. The result goes through a grid::Operation:
// once, on a later turn, after the corruption advisories were answered.
#include "mutable/servermap.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "cairn/grid/operation.h"
#include "cairn/grid/placement.h"

namespace cairn::mutable_files {

gbs::StorageIndex ToStorageIndex(const std::string& si) {
  gbs::StorageIndex out{};
  std::memcpy(out.data(), si.data(), std::min(si.size(), out.size()));
  return out;
}

std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> Servermap::Versions() const {
  std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> v;
  for (const SeenShare& s : shares) {
    if (!s.bad) v[s.header.signed_prefix][s.shnum].push_back(s.server);
  }
  return v;
}

const ShareHeader* Servermap::HeaderOf(const std::string& version) const {
  for (const SeenShare& s : shares) {
    if (!s.bad && s.header.signed_prefix == version) return &s.header;
  }
  return nullptr;
}

// Signed prefixes compare as (version, seqnum, root hash, ...): the
// largest is Tahoe's "best" verinfo.
std::optional<std::string> Servermap::BestRecoverable() const {
  std::optional<std::string> best;
  for (const auto& [prefix, holders] : Versions()) {
    if (holders.size() >= HeaderOf(prefix)->k) best = prefix;  // map order: the last one is the largest
  }
  return best;
}

std::uint64_t Servermap::HighestSeqnum() const {
  std::uint64_t top = 0;
  for (const SeenShare& s : shares) {
    if (!s.bad) top = std::max(top, s.header.seqnum);
  }
  return top;
}

namespace {

class Mapper : public std::enable_shared_from_this<Mapper> {
 public:
  Mapper(Loop& loop, std::vector<grid::GridServer> servers, MapRequest request, grid::ProgressFn* progress,
         grid::StopFn* stop, Callback<void(Result<Servermap>)> done)
      : op_(loop, "servermap update", std::move(done)),
        format_(FormatFor(request.format)),
        request_(std::move(request)),
        progress_(progress),
        stop_(stop) {
    map_.servers = std::move(servers);
  }

  void Start();

 private:
  // Asks more servers, in permuted order, up to the mode's bound.
  void QueryMore();
  void Query(std::size_t server);
  void Listed(std::size_t server, Result<gbs::ShareNumbers> shares);
  void HeadRead(std::size_t server, std::uint32_t shnum, Result<std::string> bytes);
  void PrivkeyRead(std::size_t server, std::size_t share, Result<std::string> bytes);
  // Verifies a share's header and records it; returns its index in map_.shares.
  std::size_t Examine(std::size_t server, std::uint32_t shnum, std::string bytes);
  Status VerifyHeader(const ShareHeader& h, std::string_view bytes);
  bool TryPrivkey(std::string_view encprivkey);
  void MarkBad(std::size_t share, const std::string& why);
  void ReadDone(std::size_t server);
  void ServerFailed(std::size_t server, const Status& why);
  void CheckDone();
  bool Enough() const;
  bool Stopped() const { return stop_ && *stop_ && (*stop_)(); }

  grid::Operation<Servermap> op_;  // its side work: the corruption advisories
  const ShareFormat& format_;
  MapRequest request_;
  grid::ProgressFn* progress_;
  grid::StopFn* stop_;
  Servermap map_;
  gbs::StorageIndex si_{};
  std::vector<std::size_t> reads_left_;  // per server
  std::size_t servers_done_ = 0;         // answered or failed
  std::size_t next_ = 0;                 // the next server to ask
  std::map<std::string, std::shared_ptr<crypto::RsaKey>> keys_;  // SPKI DER -> parsed key
  std::map<std::string, bool> verified_;                         // prefix ‖ signature -> valid
};

void Mapper::Start() {
  std::vector<std::string> seeds;
  for (const grid::GridServer& s : map_.servers) seeds.push_back(s.permutation_seed);
  std::vector<grid::GridServer> permuted;
  for (std::size_t i : grid::PermutedOrder(request_.storage_index, seeds)) permuted.push_back(map_.servers[i]);
  map_.servers = std::move(permuted);
  const std::size_t m = map_.servers.size();
  map_.answered.assign(m, false);
  map_.failed.assign(m, false);
  map_.failures.assign(m, std::string());
  reads_left_.assign(m, 0);
  si_ = ToStorageIndex(request_.storage_index);
  if (progress_ && *progress_) (*progress_)("mapping", 0, m);
  if (m == 0) {
    if (Stopped()) return op_.FinishSoon(Status::Cancelled("servermap update cancelled"));
    return op_.FinishSoon(std::move(map_));
  }
  QueryMore();
}

void Mapper::QueryMore() {
  const std::size_t bound = request_.mode == MapMode::kRead ? kReadQueriesInFlight : map_.servers.size();
  while (!op_.finished() && next_ < map_.servers.size() && next_ - servers_done_ < bound) Query(next_++);
}

void Mapper::Query(std::size_t server) {
  auto self = shared_from_this();
  map_.servers[server].client->ListMutable(
      si_, [self, server](Result<gbs::ShareNumbers> r) { self->Listed(server, std::move(r)); });
}

void Mapper::Listed(std::size_t server, Result<gbs::ShareNumbers> shares) {
  if (op_.finished()) return;
  if (!shares.ok()) return ServerFailed(server, shares.status());
  if (shares->empty()) {
    reads_left_[server] = 1;
    return ReadDone(server);
  }
  reads_left_[server] = shares->size();
  auto self = shared_from_this();
  for (std::uint32_t sh : *shares) {
    map_.servers[server].client->ReadMutable(si_, sh, 0, kMapReadSize, [self, server, sh](Result<std::string> r) {
      self->HeadRead(server, sh, std::move(r));
    });
  }
}

void Mapper::HeadRead(std::size_t server, std::uint32_t shnum, Result<std::string> bytes) {
  if (op_.finished() || map_.failed[server]) return;
  if (!bytes.ok()) return ServerFailed(server, bytes.status().WithContext("share " + std::to_string(shnum)));
  std::size_t index = Examine(server, shnum, std::move(*bytes));
  const SeenShare& s = map_.shares[index];
  if (request_.mode == MapMode::kWrite && map_.privkey.empty() && !s.bad) {
    const ByteRange key = s.header.encprivkey;
    if (key.end() <= s.head.size()) {
      std::string_view enc(s.head);
      enc = enc.substr(key.offset, key.length);
      if (!TryPrivkey(enc)) MarkBad(index, "its encrypted private key does not match the write cap");
    } else {
      // The key lies past the first read: one more ranged read.
      auto self = shared_from_this();
      map_.servers[server].client->ReadMutable(
          si_, shnum, key.offset, key.length,
          [self, server, index](Result<std::string> r) { self->PrivkeyRead(server, index, std::move(r)); });
      return;
    }
  }
  ReadDone(server);
}

void Mapper::PrivkeyRead(std::size_t server, std::size_t share, Result<std::string> bytes) {
  if (op_.finished() || map_.failed[server]) return;
  if (!bytes.ok()) return ServerFailed(server, bytes.status().WithContext("private key"));
  if (map_.privkey.empty() && !TryPrivkey(*bytes)) {
    MarkBad(share, "its encrypted private key does not match the write cap");
  }
  ReadDone(server);
}

std::size_t Mapper::Examine(std::size_t server, std::uint32_t shnum, std::string bytes) {
  SeenShare s;
  s.server = server;
  s.shnum = shnum;
  s.head = std::move(bytes);
  map_.shares.push_back(std::move(s));
  const std::size_t index = map_.shares.size() - 1;
  SeenShare& seen = map_.shares.back();
  auto header = format_.ParseHeader(seen.head);
  Status st = header.ok() ? VerifyHeader(*header, seen.head) : header.status();
  if (!st.ok()) {
    MarkBad(index, std::string(st.message()));
  } else {
    seen.header = std::move(*header);
    seen.old_checkstring = seen.header.checkstring;
  }
  return index;
}

Status Mapper::VerifyHeader(const ShareHeader& h, std::string_view bytes) {
  if (h.signature.end() > bytes.size() || h.verification_key.end() > bytes.size()) {
    return Status::Integrity("the signature lies past the header read");
  }
  std::string pubkey(bytes.substr(h.verification_key.offset, h.verification_key.length));
  if (caps::FingerprintOf(pubkey) != request_.fingerprint) return Status::Integrity("its public key is not the cap's");
  auto& key = keys_[pubkey];
  if (!key) {
    auto parsed = crypto::RsaKey::ParsePublicDer(pubkey);
    if (!parsed.ok()) return Status::Integrity("its public key does not parse");
    key = std::make_shared<crypto::RsaKey>(std::move(*parsed));
  }
  std::string signature(bytes.substr(h.signature.offset, h.signature.length));
  auto [it, fresh] = verified_.emplace(h.signed_prefix + signature, false);
  if (fresh) it->second = key->Verify(h.signed_prefix, signature).ok();
  if (!it->second) return Status::Integrity("bad signature over its header");
  if (map_.pubkey.empty()) map_.pubkey = std::move(pubkey);
  return Status::Ok();
}

// The writekey check is the only proof that a fetched private key is the
// file's: it is made over the exact stored bytes (never re-encoded).
bool Mapper::TryPrivkey(std::string_view encprivkey) {
  std::string key = caps::CryptPrivateKey(request_.writekey, encprivkey);
  if (crypto::TaggedHash(crypto::tags::kWriteKey, key, caps::kKeySize) != request_.writekey) return false;
  map_.encprivkey = std::string(encprivkey);
  map_.privkey = std::move(key);
  return true;
}

void Mapper::MarkBad(std::size_t share, const std::string& why) {
  SeenShare& s = map_.shares[share];
  s.bad = true;
  s.old_checkstring = s.head.substr(0, kBadShareCheckstringSize);
  CAIRN_LOG(Info, "servermap: share %u on %s is bad: %s", s.shnum, map_.servers[s.server].name.c_str(),
            why.c_str());
  ++map_.advisories;
  op_.SideStarted();
  auto self = shared_from_this();
  map_.servers[s.server].client->AdviseCorrupt(true, si_, s.shnum, why.substr(0, 1000), [self](Status st) {
    st.IgnoreError();  // advisory only: the server may not even keep it
    self->op_.SideEnded();
    self->CheckDone();
  });
}

void Mapper::ReadDone(std::size_t server) {
  if (--reads_left_[server] > 0) return;
  map_.answered[server] = true;
  ++servers_done_;
  if (progress_ && *progress_) (*progress_)("mapping", servers_done_, map_.servers.size());
  CheckDone();
  QueryMore();
}

void Mapper::ServerFailed(std::size_t server, const Status& why) {
  if (map_.failed[server] || map_.answered[server]) return;
  map_.failed[server] = true;
  map_.failures[server] = why.ToString();
  CAIRN_LOG(Info, "servermap: server %s failed: %s", map_.servers[server].name.c_str(), why.ToString().c_str());
  ++servers_done_;
  if (progress_ && *progress_) (*progress_)("mapping", servers_done_, map_.servers.size());
  CheckDone();
  QueryMore();
}

// Read mode: 2k answers, a recoverable version, nothing newer unrecoverable.
bool Mapper::Enough() const {
  if (servers_done_ == map_.servers.size()) return true;
  if (request_.mode != MapMode::kRead) return false;
  std::optional<std::string> best = map_.BestRecoverable();
  if (!best) return false;
  const ShareHeader& header = *map_.HeaderOf(*best);
  std::size_t k = header.k;
  std::size_t answered = static_cast<std::size_t>(std::count(map_.answered.begin(), map_.answered.end(), true));
  if (answered < std::min(2 * k, map_.servers.size())) return false;
  return map_.HighestSeqnum() <= header.seqnum;
}

// The map is complete once its advisories were answered: op_ holds the
// result until then.
void Mapper::CheckDone() {
  if (op_.finished()) return;
  if (Stopped()) return op_.Finish(Status::Cancelled("servermap update cancelled"));
  if (Enough()) op_.Finish(std::move(map_));
}

}  // namespace

void UpdateServermap(Loop& loop, std::vector<grid::GridServer> servers, MapRequest request,
                     grid::ProgressFn* progress, grid::StopFn* stop, Callback<void(Result<Servermap>)> done) {
  auto m = std::make_shared<Mapper>(loop, std::move(servers), std::move(request), progress, stop, std::move(done));
  m->Start();
}

}  // namespace cairn::mutable_files
