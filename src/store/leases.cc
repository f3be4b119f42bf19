// Leases (add/renew, cancel), the expiry index, share deletion and
// corruption advisories. A share's latest lease expiry is kept in its record
// and mirrored by one entry in lease_expiry, updated in the same transaction,
// so the sweep visits only expired entries. Commit worker thread.
#include "store/ops.h"

namespace cairn::store {

using schema::Kind;
using schema::LeaseValue;
using schema::ShareRecord;
using schema::State;

Result<std::uint64_t> MaxLeaseExpiry(const Txn& t, const std::string& share_key) {
  std::uint64_t max = 0;
  CAIRN_TRY(t.Scan(t.dbs().leases, share_key, [&](std::string_view, std::string_view v) {
    LeaseValue l;
    if (schema::DecodeLease(v, &l) && l.expiry > max) max = l.expiry;
    return true;
  }));
  return max;
}

Status SetLeaseIndex(Batch& b, const std::string& share_key, ShareRecord* rec, std::uint64_t t) {
  CAIRN_TRY(b.txn->Del(b.txn->dbs().lease_expiry, schema::TimeKey(rec->expiry_time, share_key)));
  CAIRN_TRY(b.txn->Put(b.txn->dbs().lease_expiry, schema::TimeKey(t, share_key), ""));
  rec->expiry_time = t;
  return Status();
}

Status RenewLease(Batch& b, const std::string& share_key, ShareRecord* rec, const LeaseSecrets& lease) {
  std::string key = share_key + schema::HashSecret(lease.renew);
  std::uint64_t expiry = b.now + b.options.lease_seconds;
  std::string_view have;
  Status st = b.txn->Get(b.txn->dbs().leases, key, &have);
  LeaseValue l;
  if (st.ok() && schema::DecodeLease(have, &l)) {
    if (l.expiry < expiry) l.expiry = expiry;  // never backdates
  } else if (st.ok() || st.code() == Code::kNotFound) {
    l.cancel_hash = schema::HashSecret(lease.cancel);
    l.expiry = expiry;
  } else {
    return st;
  }
  CAIRN_TRY(b.txn->Put(b.txn->dbs().leases, key, schema::EncodeLease(l)));
  // Uploads in progress expire by inactivity; their lease counts from completion.
  if (rec->state != State::kIncoming && l.expiry > rec->expiry_time) {
    CAIRN_TRY(SetLeaseIndex(b, share_key, rec, l.expiry));
  }
  return Status();
}

Status DeleteShare(Batch& b, Kind kind, const StorageIndex& si, ShareNum shnum, const ShareRecord& rec) {
  Txn& t = *b.txn;
  std::string key = schema::ShareKey(kind, si, shnum);
  std::vector<std::string> doomed_keys;
  auto collect = [&](std::string_view k, std::string_view) {
    doomed_keys.emplace_back(k);
    return true;
  };
  CAIRN_TRY(t.Scan(t.dbs().leases, key, collect));
  for (const std::string& k : doomed_keys) CAIRN_TRY(t.Del(t.dbs().leases, k));
  doomed_keys.clear();
  CAIRN_TRY(t.Scan(t.dbs().corrupt, key, collect));
  for (const std::string& k : doomed_keys) CAIRN_TRY(t.Del(t.dbs().corrupt, k));
  doomed_keys.clear();
  if (rec.state == State::kIncoming) {
    CAIRN_TRY(t.Del(t.dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key)));
    b.totals.incoming_bytes -= rec.size;
  } else {
    CAIRN_TRY(t.Del(t.dbs().lease_expiry, schema::TimeKey(rec.expiry_time, key)));
    b.totals.used_bytes -= rec.size;
    b.totals.shares--;
  }
  if (kind == Kind::kMutable) {
    std::string prefix(reinterpret_cast<const char*>(si.data()), si.size());
    schema::PutBe32(&prefix, shnum);
    CAIRN_TRY(t.Scan(t.dbs().data, prefix, collect));
    for (const std::string& k : doomed_keys) CAIRN_TRY(t.Del(t.dbs().data, k));
  } else {
    CAIRN_TRY(b.Doom(DoomedFile{rec.file_id, si, shnum}));
    if (b.Pending(key)) b.PutPending(key, std::nullopt);
  }
  return t.Del(t.dbs().shares, key);
}

namespace {

// Every share of `si` that leases apply to: complete immutable and mutable.
Status LeasedShares(const Txn& t, const StorageIndex& si,
                    std::vector<std::pair<std::string, ShareRecord>>* out) {
  for (Kind kind : {Kind::kImmutable, Kind::kMutable}) {
    CAIRN_TRY(t.Scan(t.dbs().shares, schema::SiPrefix(kind, si), [&](std::string_view k, std::string_view v) {
      ShareRecord r;
      if (schema::DecodeRecord(v, &r) && r.state != State::kIncoming) out->emplace_back(std::string(k), r);
      return true;
    }));
  }
  return Status();
}

}  // namespace

Status ApplyAddLease(Batch& b, const StorageIndex& si, const LeaseSecrets& lease) {
  std::vector<std::pair<std::string, ShareRecord>> shares;
  CAIRN_TRY(LeasedShares(*b.txn, si, &shares));
  if (shares.empty()) return Status::NotFound("storage index " + SiHex(si) + ": no shares here");
  for (auto& [key, rec] : shares) {
    CAIRN_TRY(RenewLease(b, key, &rec, lease));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
  }
  return Status();
}

Status ApplyCancelLease(Batch& b, const StorageIndex& si, const std::string& cancel_secret) {
  std::vector<std::pair<std::string, ShareRecord>> shares;
  CAIRN_TRY(LeasedShares(*b.txn, si, &shares));
  std::string cancel_hash = schema::HashSecret(cancel_secret);
  bool any = false;
  for (auto& [key, rec] : shares) {
    std::vector<std::string> gone;
    CAIRN_TRY(b.txn->Scan(b.txn->dbs().leases, key, [&](std::string_view k, std::string_view v) {
      LeaseValue l;
      if (schema::DecodeLease(v, &l) && schema::SecretEquals(l.cancel_hash, cancel_hash)) gone.emplace_back(k);
      return true;
    }));
    if (gone.empty()) continue;
    any = true;
    for (const std::string& k : gone) CAIRN_TRY(b.txn->Del(b.txn->dbs().leases, k));
    CAIRN_TRY_ASSIGN(std::uint64_t max, MaxLeaseExpiry(*b.txn, key));
    CAIRN_TRY(SetLeaseIndex(b, key, &rec, max));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
  }
  if (!any) return Status::NotFound("storage index " + SiHex(si) + ": no lease with that cancel secret");
  return Status();
}

Status ApplyExpire(Batch& b, bool upload_index, const std::string& time_key, bool* deleted) {
  *deleted = false;
  MDB_dbi index = upload_index ? b.txn->dbs().upload_expiry : b.txn->dbs().lease_expiry;
  std::string key = time_key.substr(8);
  Kind kind;
  StorageIndex si;
  ShareNum shnum;
  if (!schema::ParseShareKey(key, &kind, &si, &shnum)) return b.txn->Del(index, time_key);
  ShareRecord rec;
  Status st = b.txn->GetRecord(key, &rec);
  if (st.code() == Code::kNotFound) return b.txn->Del(index, time_key);
  CAIRN_TRY(st);
  bool right_index = upload_index == (rec.state == State::kIncoming);
  if (!right_index || rec.expiry_time != schema::TimeOf(time_key)) return b.txn->Del(index, time_key);
  if (rec.expiry_time > b.now) return Status();  // renewed meanwhile
  *deleted = true;
  return DeleteShare(b, kind, si, shnum, rec);
}

Status ApplyAdviseCorrupt(Batch& b, Kind kind, const StorageIndex& si, ShareNum shnum, const std::string& reason) {
  std::string key = schema::ShareKey(kind, si, shnum);
  ShareRecord rec;
  Status st = b.txn->GetRecord(key, &rec);
  if (st.code() == Code::kNotFound || (st.ok() && rec.state == State::kIncoming)) {
    return Status::NotFound("share " + std::to_string(shnum) + " of " + SiHex(si) + " is not here");
  }
  CAIRN_TRY(st);
  std::uint8_t count = 0;
  CAIRN_TRY(b.txn->Scan(b.txn->dbs().corrupt, key, [&](std::string_view, std::string_view) {
    ++count;
    return true;
  }));
  if (count >= schema::kMaxAdvisories) return Status();  // bounded: the first ones are kept
  return b.txn->Put(b.txn->dbs().corrupt, key + std::string(1, static_cast<char>(count)), reason);
}

}  // namespace cairn::store
