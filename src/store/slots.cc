// Mutable slots: Tahoe's read-test-write (tahoe-protocol.md §2.2) in one
// transaction, with the share data in fixed-size chunks. Bytes past a
// chunk's stored end (and inside the data length) read as zeros, which is
// how a write beyond the end zero-fills the gap without storing zeros.
// Commit worker thread (writes); any thread holding a transaction (reads).
#include <algorithm>
#include <cstring>
#include <set>

#include "store/ops.h"

namespace cairn::store {

using schema::Kind;
using schema::kMutableChunk;
using schema::ShareRecord;
using schema::State;

namespace {

std::uint32_t ChunkOf(std::uint64_t offset) { return static_cast<std::uint32_t>(offset / kMutableChunk); }

Status WriteSlot(Batch& b, const StorageIndex& si, ShareNum shnum, std::uint64_t offset, const std::string& data) {
  if (data.empty()) return Status();
  std::uint64_t end = offset + data.size();
  for (std::uint32_t idx = ChunkOf(offset); idx <= ChunkOf(end - 1); ++idx) {
    std::uint64_t base = std::uint64_t{idx} * kMutableChunk;
    std::string key = schema::ChunkKey(si, shnum, idx);
    std::string_view have;
    Status st = b.txn->Get(b.txn->dbs().data, key, &have);
    if (!st.ok() && st.code() != Code::kNotFound) return st;
    std::string chunk(st.ok() ? have : std::string_view());
    std::uint64_t lo = std::max(offset, base), hi = std::min(end, base + kMutableChunk);
    if (chunk.size() < hi - base) chunk.resize(static_cast<std::size_t>(hi - base), '\0');
    std::memcpy(chunk.data() + (lo - base), data.data() + (lo - offset), static_cast<std::size_t>(hi - lo));
    CAIRN_TRY(b.txn->Put(b.txn->dbs().data, key, chunk));
  }
  return Status();
}

// Drops every stored byte at or past `new_length` (so a later extension
// reads zeros there).
Status TruncateSlot(Batch& b, const StorageIndex& si, ShareNum shnum, std::uint64_t old_length,
                    std::uint64_t new_length) {
  if (old_length == 0) return Status();
  std::uint32_t last = ChunkOf(old_length - 1);
  std::uint32_t first_gone = static_cast<std::uint32_t>((new_length + kMutableChunk - 1) / kMutableChunk);
  for (std::uint32_t idx = first_gone; idx <= last; ++idx) {
    CAIRN_TRY(b.txn->Del(b.txn->dbs().data, schema::ChunkKey(si, shnum, idx)));
  }
  if (new_length % kMutableChunk != 0) {
    std::uint32_t idx = ChunkOf(new_length);
    std::string key = schema::ChunkKey(si, shnum, idx);
    std::string_view have;
    Status st = b.txn->Get(b.txn->dbs().data, key, &have);
    std::size_t keep = static_cast<std::size_t>(new_length % kMutableChunk);
    if (st.ok() && have.size() > keep) {
      // `have` points into the map; mdb_put may move or overwrite that page
      // while copying, so write from a copy.
      std::string kept(have.substr(0, keep));
      CAIRN_TRY(b.txn->Put(b.txn->dbs().data, key, kept));
    }
    if (!st.ok() && st.code() != Code::kNotFound) return st;
  }
  return Status();
}

// The length a share will have after its write vectors and new_length.
std::uint64_t LengthAfter(std::uint64_t length, const ShareTestWrite& tw) {
  for (const WriteVector& w : tw.writes) length = std::max(length, w.offset + w.data.size());
  if (tw.new_length && *tw.new_length < length) length = *tw.new_length;
  return length;
}

}  // namespace

Result<std::string> ReadSlot(const Txn& t, const StorageIndex& si, ShareNum shnum, std::uint64_t length,
                             std::uint64_t offset, std::uint64_t size) {
  std::uint64_t end = std::min(length, offset + std::min(size, length));
  if (offset >= end) return std::string();
  std::string out(static_cast<std::size_t>(end - offset), '\0');
  for (std::uint32_t idx = ChunkOf(offset); idx <= ChunkOf(end - 1); ++idx) {
    std::uint64_t base = std::uint64_t{idx} * kMutableChunk;
    std::string_view have;
    Status st = t.Get(t.dbs().data, schema::ChunkKey(si, shnum, idx), &have);
    if (st.code() == Code::kNotFound) continue;  // zeros
    CAIRN_TRY(st);
    std::uint64_t lo = std::max(offset, base), hi = std::min({end, base + kMutableChunk, base + have.size()});
    if (lo < hi) std::memcpy(out.data() + (lo - offset), have.data() + (lo - base), static_cast<std::size_t>(hi - lo));
  }
  return out;
}

namespace {

using Slot = std::map<ShareNum, ShareRecord>;

// The slot's existing shares, each with the write enabler checked.
Result<Slot> LoadSlot(Batch& b, const StorageIndex& si, const std::string& we_hash) {
  Slot existing;
  Status bad;
  CAIRN_TRY(b.txn->Scan(b.txn->dbs().shares, schema::SiPrefix(Kind::kMutable, si),
                        [&](std::string_view k, std::string_view v) {
                          Kind kind;
                          StorageIndex s;
                          ShareNum n;
                          ShareRecord r;
                          if (!schema::ParseShareKey(k, &kind, &s, &n) || !schema::DecodeRecord(v, &r)) {
                            bad = Status::Integrity("store: malformed mutable share record");
                            return false;
                          }
                          existing[n] = r;
                          return true;
                        }));
  CAIRN_TRY(bad);
  for (auto& [n, rec] : existing) {
    if (!schema::SecretEquals(we_hash, rec.secret)) {
      return Status::Unauthenticated("mutable slot " + SiHex(si) + ": wrong write enabler");
    }
  }
  return existing;
}

// Every test of every share first (a missing share reads as empty), then
// the read vectors of every existing share, before any write.
Result<RtwResult> TestAndRead(Batch& b, const StorageIndex& si, const Slot& existing,
                              const std::vector<ShareTestWrite>& writes, const std::vector<ReadVector>& reads) {
  RtwResult out;
  out.success = true;
  for (const ShareTestWrite& tw : writes) {
    auto it = existing.find(tw.shnum);
    std::uint64_t length = it == existing.end() ? 0 : it->second.size;
    for (const TestVector& tv : tw.tests) {
      CAIRN_TRY_ASSIGN(std::string got, ReadSlot(*b.txn, si, tw.shnum, length, tv.offset, tv.size));
      if (got != tv.specimen) {
        out.success = false;
        break;
      }
    }
    if (!out.success) break;
  }
  for (auto& [n, rec] : existing) {
    std::vector<std::string>& row = out.data[n];
    for (const ReadVector& rv : reads) {
      CAIRN_TRY_ASSIGN(std::string got, ReadSlot(*b.txn, si, n, rec.size, rv.offset, rv.size));
      row.push_back(std::move(got));
    }
  }
  return out;
}

// Room for the growth, checked before anything is written: NoSpace past the
// largest slot or the free space less the reservation.
Status CheckRoom(Batch& b, const StorageIndex& si, const Slot& existing, const std::vector<ShareTestWrite>& writes) {
  std::uint64_t growth = 0;
  for (const ShareTestWrite& tw : writes) {
    if (tw.new_length && *tw.new_length == 0) continue;
    auto it = existing.find(tw.shnum);
    std::uint64_t before = it == existing.end() ? 0 : it->second.size;
    std::uint64_t after = LengthAfter(before, tw);
    if (after > b.options.max_mutable_share_bytes) {
      return Status::NoSpace("mutable share " + std::to_string(tw.shnum) + " of " + SiHex(si) + ": " +
                             std::to_string(after) + " bytes is " + kOverMaximumMutable + " " +
                             std::to_string(b.options.max_mutable_share_bytes));
    }
    if (after > before) growth += after - before;
  }
  if (growth > 0) {
    CAIRN_TRY_ASSIGN(std::uint64_t available, b.Available());
    if (growth > available) {
      return Status::NoSpace("mutable slot " + SiHex(si) + ": " + std::to_string(growth) +
                             " more bytes do not fit (reserved space)");
    }
  }
  return Status();
}

// The writes, truncations and deletions, and the lease on every share
// written.
Status ApplyWrites(Batch& b, const StorageIndex& si, const std::string& we_hash, const LeaseSecrets& lease,
                   const std::vector<ShareTestWrite>& writes, Slot& existing) {
  for (const ShareTestWrite& tw : writes) {
    std::string key = schema::ShareKey(Kind::kMutable, si, tw.shnum);
    auto it = existing.find(tw.shnum);
    if (tw.new_length && *tw.new_length == 0) {
      if (it != existing.end()) {
        CAIRN_TRY(DeleteShare(b, Kind::kMutable, si, tw.shnum, it->second));
        existing.erase(it);
      }
      continue;
    }
    ShareRecord rec;
    if (it != existing.end()) {
      rec = it->second;
    } else {
      rec.state = State::kMutable;
      rec.secret = we_hash;
      b.totals.shares++;
    }
    std::uint64_t before = rec.size;
    for (const WriteVector& w : tw.writes) {
      CAIRN_TRY(WriteSlot(b, si, tw.shnum, w.offset, w.data));
      rec.size = std::max(rec.size, w.offset + w.data.size());
    }
    if (tw.new_length && *tw.new_length < rec.size) {
      CAIRN_TRY(TruncateSlot(b, si, tw.shnum, rec.size, *tw.new_length));
      rec.size = *tw.new_length;
    }
    b.totals.used_bytes = b.totals.used_bytes + rec.size - before;
    CAIRN_TRY(RenewLease(b, key, &rec, lease));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
    existing[tw.shnum] = rec;
  }
  return Status();
}

}  // namespace

Result<RtwResult> ApplyReadTestWrite(Batch& b, const StorageIndex& si, const std::string& write_enabler,
                                     const LeaseSecrets& lease, const std::vector<ShareTestWrite>& writes,
                                     const std::vector<ReadVector>& reads) {
  std::string we_hash = schema::HashSecret(write_enabler);
  CAIRN_TRY_ASSIGN(Slot existing, LoadSlot(b, si, we_hash));
  CAIRN_TRY_ASSIGN(RtwResult out, TestAndRead(b, si, existing, writes, reads));
  if (!out.success) return out;
  CAIRN_TRY(CheckRoom(b, si, existing, writes));
  CAIRN_TRY(ApplyWrites(b, si, we_hash, lease, writes, existing));
  return out;
}

}  // namespace cairn::store
