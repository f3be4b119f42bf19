// Servermap update (see servermap.h). One Mapper per update, owned by the
// completions in flight; once it has delivered, answers still arriving are
// dropped. Per server: list the shares, read each one's first
// kMapReadSize bytes, verify the header, and in write mode fetch the
// encrypted private key until one passes the writekey check.
#include "mutable/servermap.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "cairn/caps/keys.h"
#include "cairn/core/log.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "cairn/grid/placement.h"
#include "cairn/mutable/sdmf.h"

namespace cairn::mutable_files {

gbs::StorageIndex ToStorageIndex(const std::string& si) {
  gbs::StorageIndex out{};
  std::memcpy(out.data(), si.data(), std::min(si.size(), out.size()));
  return out;
}

namespace {

std::uint64_t GetBe(std::string_view b, std::size_t at, std::size_t len) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < len; ++i) v = (v << 8) | static_cast<std::uint8_t>(b[at + i]);
  return v;
}

}  // namespace

Result<SdmfHeader> ParseSdmfHeader(std::string_view b) {
  if (b.size() < kSdmfHeaderSize) return Status::InvalidArgument("share is shorter than an SDMF header");
  if (b[0] != 0) {
    return Status::InvalidArgument("not an SDMF share (version byte " +
                                   std::to_string(static_cast<std::uint8_t>(b[0])) + ")");
  }
  SdmfHeader h;
  h.seqnum = GetBe(b, 1, 8);
  h.k = static_cast<std::uint8_t>(b[57]);
  h.n = static_cast<std::uint8_t>(b[58]);
  h.o_signature = GetBe(b, 75, 4);
  h.o_encprivkey = GetBe(b, 91, 8);
  h.o_eof = GetBe(b, 99, 8);
  h.signed_prefix = std::string(b.substr(0, kSdmfSignedPrefixSize));
  h.checkstring = std::string(b.substr(0, kSdmfCheckstringSize));
  if (h.k < 1 || h.n < h.k) return Status::InvalidArgument("SDMF header has k/N out of range");
  if (h.o_signature < kSdmfHeaderSize || h.o_signature > h.o_encprivkey || h.o_encprivkey > h.o_eof) {
    return Status::InvalidArgument("SDMF header offsets are out of order");
  }
  return h;
}

std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> Servermap::Versions() const {
  std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> v;
  for (const SeenShare& s : shares) {
    if (!s.bad) v[s.header.signed_prefix][s.shnum].push_back(s.server);
  }
  return v;
}

// Signed prefixes compare as (version, seqnum, root hash, IV, ...): the
// largest is Tahoe's "best" verinfo.
std::optional<std::string> Servermap::BestRecoverable() const {
  std::optional<std::string> best;
  for (const auto& [prefix, holders] : Versions()) {
    std::uint32_t k = static_cast<std::uint8_t>(prefix[57]);
    if (holders.size() >= k) best = prefix;  // map order: the last one is the largest
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
      : loop_(loop), request_(std::move(request)), progress_(progress), stop_(stop), done_(std::move(done)) {
    map_.servers = std::move(servers);
  }

  void Start();

 private:
  void Listed(std::size_t server, Result<gbs::ShareNumbers> shares);
  void HeadRead(std::size_t server, std::uint32_t shnum, Result<std::string> bytes);
  void PrivkeyRead(std::size_t server, std::size_t share, Result<std::string> bytes);
  // Verifies a share's header and records it; returns its index in map_.shares.
  std::size_t Examine(std::size_t server, std::uint32_t shnum, std::string bytes);
  Status VerifyHeader(const SdmfHeader& h, std::string_view bytes);
  bool TryPrivkey(std::string_view encprivkey);
  void MarkBad(std::size_t share, const std::string& why);
  void ReadDone(std::size_t server);
  void ServerFailed(std::size_t server, const Status& why);
  void CheckDone();
  bool Enough() const;
  void Deliver(Result<Servermap> r);

  Loop& loop_;
  MapRequest request_;
  grid::ProgressFn* progress_;
  grid::StopFn* stop_;
  Callback<void(Result<Servermap>)> done_;
  Servermap map_;
  gbs::StorageIndex si_{};
  std::vector<std::size_t> reads_left_;  // per server
  std::size_t servers_done_ = 0;         // answered or failed
  std::size_t advisories_out_ = 0;
  bool finished_ = false;                // no more answers are looked at
  bool delivered_ = false;
  std::optional<Result<Servermap>> pending_;
  std::map<std::string, std::shared_ptr<crypto::RsaKey>> keys_;  // SPKI DER -> parsed key
  std::map<std::string, bool> verified_;                         // prefix ‖ signature -> valid
};

void Mapper::Start() {
  auto self = shared_from_this();
  std::vector<std::string> seeds;
  for (const grid::GridServer& s : map_.servers) seeds.push_back(s.seed);
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
  if (m == 0) return loop_.Post([self] { self->CheckDone(); });
  for (std::size_t i = 0; i < m; ++i) {
    map_.servers[i].client->ListMutable(si_, [self, i](Result<gbs::ShareNumbers> r) { self->Listed(i, std::move(r)); });
  }
}

void Mapper::Listed(std::size_t server, Result<gbs::ShareNumbers> shares) {
  if (finished_) return;
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
  if (finished_ || map_.failed[server]) return;
  if (!bytes.ok()) return ServerFailed(server, bytes.status().WithContext("share " + std::to_string(shnum)));
  std::size_t index = Examine(server, shnum, std::move(*bytes));
  const SeenShare& s = map_.shares[index];
  if (request_.mode == MapMode::kWrite && map_.privkey.empty() && !s.bad) {
    if (s.header.o_eof <= s.head.size()) {
      std::string_view enc(s.head);
      enc = enc.substr(s.header.o_encprivkey, s.header.o_eof - s.header.o_encprivkey);
      if (!TryPrivkey(enc)) MarkBad(index, "its encrypted private key does not match the write cap");
    } else {
      // The key lies past the first read: one more ranged read.
      auto self = shared_from_this();
      map_.servers[server].client->ReadMutable(
          si_, shnum, s.header.o_encprivkey, s.header.o_eof - s.header.o_encprivkey,
          [self, server, index](Result<std::string> r) { self->PrivkeyRead(server, index, std::move(r)); });
      return;
    }
  }
  ReadDone(server);
}

void Mapper::PrivkeyRead(std::size_t server, std::size_t share, Result<std::string> bytes) {
  if (finished_ || map_.failed[server]) return;
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
  auto header = ParseSdmfHeader(seen.head);
  Status st = header.ok() ? VerifyHeader(*header, seen.head) : header.status();
  if (!st.ok()) {
    MarkBad(index, std::string(st.message()));
  } else {
    seen.header = std::move(*header);
    seen.old_checkstring = seen.header.checkstring;
  }
  return index;
}

Status Mapper::VerifyHeader(const SdmfHeader& h, std::string_view bytes) {
  const std::uint64_t sig_end = h.o_signature + crypto::kRsaSignatureSize;
  if (sig_end > bytes.size()) return Status::Integrity("the signature lies past the header read");
  std::string pubkey(bytes.substr(kSdmfHeaderSize, h.o_signature - kSdmfHeaderSize));
  if (caps::FingerprintOf(pubkey) != request_.fingerprint) return Status::Integrity("its public key is not the cap's");
  auto& key = keys_[pubkey];
  if (!key) {
    auto parsed = crypto::RsaKey::ParsePublicDer(pubkey);
    if (!parsed.ok()) return Status::Integrity("its public key does not parse");
    key = std::make_shared<crypto::RsaKey>(std::move(*parsed));
  }
  std::string signature(bytes.substr(h.o_signature, crypto::kRsaSignatureSize));
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
  s.old_checkstring = s.head.substr(0, kSdmfSignedPrefixSize);
  CAIRN_LOG(Info, "servermap: share %u on %s is bad: %s", s.shnum, map_.servers[s.server].name.c_str(),
            why.c_str());
  ++map_.advisories;
  ++advisories_out_;
  auto self = shared_from_this();
  map_.servers[s.server].client->AdviseCorrupt(true, si_, s.shnum, why.substr(0, 1000), [self](Status st) {
    st.IgnoreError();  // advisory only: the server may not even keep it
    --self->advisories_out_;
    self->CheckDone();
  });
}

void Mapper::ReadDone(std::size_t server) {
  if (--reads_left_[server] > 0) return;
  map_.answered[server] = true;
  ++servers_done_;
  if (progress_ && *progress_) (*progress_)("mapping", servers_done_, map_.servers.size());
  CheckDone();
}

void Mapper::ServerFailed(std::size_t server, const Status& why) {
  if (map_.failed[server] || map_.answered[server]) return;
  map_.failed[server] = true;
  map_.failures[server] = why.ToString();
  CAIRN_LOG(Info, "servermap: server %s failed: %s", map_.servers[server].name.c_str(), why.ToString().c_str());
  ++servers_done_;
  if (progress_ && *progress_) (*progress_)("mapping", servers_done_, map_.servers.size());
  CheckDone();
}

// Read mode: 2k answers, a recoverable version, nothing newer unrecoverable.
bool Mapper::Enough() const {
  if (servers_done_ == map_.servers.size()) return true;
  if (request_.mode == MapMode::kWrite) return false;
  std::optional<std::string> best = map_.BestRecoverable();
  if (!best) return false;
  std::size_t k = static_cast<std::uint8_t>((*best)[57]);
  std::size_t answered = static_cast<std::size_t>(std::count(map_.answered.begin(), map_.answered.end(), true));
  if (answered < std::min(2 * k, map_.servers.size())) return false;
  std::uint64_t best_seqnum = GetBe(*best, 1, 8);
  return map_.HighestSeqnum() <= best_seqnum;
}

void Mapper::CheckDone() {
  if (delivered_) return;
  if (!finished_) {
    if (stop_ && *stop_ && (*stop_)()) {
      finished_ = true;
      pending_.emplace(Status::Cancelled("servermap update cancelled"));
    } else if (Enough()) {
      finished_ = true;
      pending_.emplace(std::move(map_));
    } else {
      return;
    }
  }
  if (advisories_out_ > 0) return;  // the map is complete once its advisories were answered
  delivered_ = true;
  auto done = std::move(done_);
  done(std::move(*pending_));
}

}  // namespace

void UpdateServermap(Loop& loop, std::vector<grid::GridServer> servers, MapRequest request,
                     grid::ProgressFn* progress, grid::StopFn* stop, Callback<void(Result<Servermap>)> done) {
  auto m = std::make_shared<Mapper>(loop, std::move(servers), std::move(request), progress, stop, std::move(done));
  m->Start();
}

}  // namespace cairn::mutable_files
