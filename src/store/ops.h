// The store's write operations, each applied inside the batch's current
// (child) transaction on the commit's worker thread. Each either changes
// everything it should or returns an error, after which the caller aborts
// its child transaction (and restores the totals), so nothing is half done.
// Reads of mutable data share ReadSlot with the loop's read path.
#pragma once

#include <string>
#include <vector>

#include "cairn/store/store.h"
#include "store/commit.h"
#include "store/schema.h"
#include "store/txn.h"

namespace cairn::store {

// In the NoSpace message of a slot over the largest mutable share size: a
// limit, not a full store (StoreStats::full_reason leaves it out).
inline constexpr char kOverMaximumMutable[] = "over the maximum mutable share size";

// buckets.cc — immutable.
Result<AllocateResult> ApplyAllocate(Batch& b, const StorageIndex& si, const std::vector<ShareNum>& shnums,
                                     std::uint64_t allocated_size, const std::string& upload_secret,
                                     const LeaseSecrets& lease);
Result<WriteResult> ApplyWriteChunk(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret,
                                    std::uint64_t offset, const std::string& data);
Status ApplyCloseBucket(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret);
Status ApplyAbort(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret);
// Ranges of [0, size) not covered by `written` (ascending, merged).
std::vector<Range> Missing(const std::vector<Range>& written, std::uint64_t size);
// An upload's ranges file: magic, count, ranges, checksum. Decode is false
// on anything malformed or torn (the file is then ignored).
std::string EncodeRangesFile(const std::vector<Range>& ranges);
bool DecodeRangesFile(std::string_view in, std::vector<Range>* ranges);

// slots.cc — mutable.
Result<RtwResult> ApplyReadTestWrite(Batch& b, const StorageIndex& si, const std::string& write_enabler,
                                     const LeaseSecrets& lease, const std::vector<ShareTestWrite>& writes,
                                     const std::vector<ReadVector>& reads);
// Bytes [offset, offset+size) of a slot whose data is `length` long,
// truncated at the end. Any transaction.
Result<std::string> ReadSlot(const Txn& t, const StorageIndex& si, ShareNum shnum, std::uint64_t length,
                             std::uint64_t offset, std::uint64_t size);

// leases.cc — leases, expiry, deletion, advisories.
// Adds or renews the lease on one share and moves its expiry index entry;
// the caller writes `rec` back.
Status RenewLease(Batch& b, const std::string& share_key, schema::ShareRecord* rec, const LeaseSecrets& lease);
// The latest expiry among a share's leases (0 if it has none).
Result<std::uint64_t> MaxLeaseExpiry(const Txn& t, const std::string& share_key);
// Points the share's lease_expiry entry at `t` (complete or mutable shares).
Status SetLeaseIndex(Batch& b, const std::string& share_key, schema::ShareRecord* rec, std::uint64_t t);
// Removes a share and everything of it: record, leases, index entries,
// advisories, mutable data; its body file is unlinked after the commit.
Status DeleteShare(Batch& b, schema::Kind kind, const StorageIndex& si, ShareNum shnum, const schema::ShareRecord& rec);
Status ApplyAddLease(Batch& b, const StorageIndex& si, const LeaseSecrets& lease);
Status ApplyCancelLease(Batch& b, const StorageIndex& si, const std::string& cancel_secret);
// Deletes the share named by an expiry index entry if it is still expired
// (checked on fresh state: a renewal may have moved it since the sweep saw it).
Status ApplyExpire(Batch& b, bool upload_index, const std::string& time_key, bool* deleted);
Status ApplyAdviseCorrupt(Batch& b, schema::Kind kind, const StorageIndex& si, ShareNum shnum,
                          const std::string& reason);

}  // namespace cairn::store
