// ShareStore: the storage server's shares — immutable buckets, mutable slots,
// leases and space — in LMDB (index, mutable data, commit point) plus one file
// per immutable share body. docs/store.md describes the schema and the rules.
//
// Every call is asynchronous: it returns at once and its completion runs
// exactly once on a later turn of the loop — also when the call fails at
// once (bad argument, read-only store, full queue, closed store). Writes are
// applied one after another in arrival order (so writes to one (storage
// index, share number) are serialized and a read-test-write sees every
// earlier write), batched into one LMDB write transaction per commit (group
// commit) run off the loop, and acknowledged only once that transaction is
// durable — except, under the default sync policy, an upload's intermediate
// chunk writes, acknowledged once in the page cache (StoreOptions::
// sync_every_write). Arguments are copied or moved in; nothing need outlive
// a call.
//
// Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/limits.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"

namespace cairn::platform {
class Platform;
}

namespace cairn::store {

using StorageIndex = std::array<std::uint8_t, 16>;
using ShareNum = std::uint32_t;

// Lease secrets as the client sends them (32 bytes each).
struct LeaseSecrets {
  std::string renew;
  std::string cancel;
};

enum class LeaseExpiry { kOff, kAge };

struct StoreOptions {
  std::string dir;                            // the LMDB environment and the share bodies
  platform::Platform* platform = nullptr;     // nullptr: the host platform
  std::uint64_t map_bytes = 1ull << 30;       // initial LMDB map size
  std::uint64_t map_max_bytes = 16ull << 30;  // grown on MDB_MAP_FULL up to this
  std::uint64_t reserved_bytes = 0;           // free space never given to shares
  std::uint64_t max_immutable_share_bytes = 1ull << 40;
  std::uint64_t max_mutable_share_bytes = 1ull << 30;
  std::uint64_t lease_seconds = 31ull * 24 * 3600;
  std::uint64_t upload_idle_seconds = 30 * 60;  // abandoned uploads are aborted after this
  std::uint64_t sweep_interval_ms = 60000;      // how often the expiry sweep starts
  std::uint64_t queue_ops = 4096;               // queued writes; more are refused
  std::uint64_t queue_bytes = 64ull << 20;      // queued write payload; more are refused
  std::uint64_t batch_ops = 256;                // writes in one transaction; 1 = no group commit
  std::uint64_t batch_bytes = 16ull << 20;      // write payload in one transaction
  bool read_only = false;                       // refuse every write, immutable and mutable
  // The fsync policy (docs/store.md, "Durability"). false ("complete"): an
  // upload's intermediate writes are acknowledged once in the page cache
  // (they survive a crash of cairnd, not of the machine); the write that
  // completes a share, and every other write, once fsynced. true
  // ("always"): every write once fsynced.
  bool sync_every_write = false;
  // TESTS ONLY (limit test_store_skip_sync): no fdatasync of bodies, no
  // directory fsync, LMDB opened MDB_NOSYNC, so acknowledged writes are
  // lost at a power cut. It exists so the power-cut test can prove it
  // detects exactly that (test/integration/test_power_cut.py).
  bool test_skip_sync = false;
  LeaseExpiry expiry = LeaseExpiry::kOff;

  // The options a node's limits give (map, reserved space, sizes, queues).
  static StoreOptions FromLimits(const Limits& limits, std::string dir);
};

// Immutable allocate: which shares are already complete here (all of the
// storage index's, not only the requested ones) and which were allocated now.
struct AllocateResult {
  std::vector<ShareNum> already_have;
  std::vector<ShareNum> allocated;
  bool out_of_space = false;  // some shares were left out for want of free space
};

// A byte range [begin, end).
struct Range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool operator==(const Range&) const = default;
};

// After an immutable chunk write: the ranges still missing, and whether this
// write completed the share (it is then readable and listed).
struct WriteResult {
  bool complete = false;
  std::vector<Range> required;
};

struct TestVector {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::string specimen;
};
struct WriteVector {
  std::uint64_t offset = 0;
  std::string data;
};
struct ReadVector {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};
struct ShareTestWrite {
  ShareNum shnum = 0;
  std::vector<TestVector> tests;
  std::vector<WriteVector> writes;
  std::optional<std::uint64_t> new_length;  // truncate only (Tahoe never extends); 0 deletes
};
struct RtwResult {
  bool success = false;
  std::map<ShareNum, std::vector<std::string>> data;  // read vectors, every existing share
};

struct SpaceInfo {
  std::uint64_t available_bytes = 0;  // free - reserved (0 when read-only)
  std::uint64_t used_bytes = 0;       // shares' bytes, from the index
  std::uint64_t incoming_bytes = 0;   // allocated to uploads in progress
  std::uint64_t map_bytes = 0;        // current LMDB map size
};

struct StoreStats {
  std::uint64_t commits = 0;
  std::uint64_t ops_committed = 0;
  std::uint64_t largest_batch = 0;
  std::uint64_t queued_ops = 0;
  std::uint64_t queued_bytes = 0;
  std::uint64_t map_grows = 0;
  std::uint64_t expired_shares = 0;
  std::uint64_t shares = 0;  // immutable complete + mutable, from the index
  std::string sticky_error;  // non-empty once writes are refused until restart
  // Why the store refuses writes for want of space, "" while it does not: set
  // by a refusal (free space less the reservation below an allocation or a
  // slot's growth, ENOSPC from a body write or an LMDB commit, the LMDB map
  // full at its limit); cleared by an allocation that allocates, by a write
  // at least as large as the refused one that succeeds, or by a Space()
  // reading whose available bytes cover the refused write (at least one
  // 4 KiB page; never for a full map, which free disk space does not cure).
  // A slot over the largest mutable share size is a limit, not "full".
  std::string full_reason;
  std::uint64_t full_since_ms = 0;      // wall clock (the platform's) of the first refusal of this spell
  std::uint64_t full_needed_bytes = 0;  // what the last refused write needed
  std::uint64_t no_space_refusals = 0;  // writes refused for want of space since Open
};

class ShareStore {
 public:
  // Opens (creating if needed) the store in options.dir: checks the schema's
  // format version (UnsupportedVersion if unknown), removes orphaned body
  // files of interrupted uploads and deletions (bounded by what was in
  // flight, never a walk over all shares), and starts the expiry sweep.
  // Synchronous: at start-up only.
  static Result<std::unique_ptr<ShareStore>> Open(Loop& loop, StoreOptions options);
  // REQUIRES: Close() completed (or Open's caller never used it).
  ~ShareStore();
  ShareStore(const ShareStore&) = delete;
  ShareStore& operator=(const ShareStore&) = delete;

  // Refuses new calls (ShuttingDown), lets queued writes commit, stops the
  // sweep; `done` runs on a later turn once nothing is in flight.
  void Close(Task done);

  // --- immutable buckets ---------------------------------------------------
  // Allocates upload slots for `shnums` of `allocated_size` bytes each. A
  // share already complete is reported in already_have; one in progress (any
  // uploader) or one that does not fit (size limit, free space minus reserved
  // and other uploads' allocations) is in neither set. Leases for `lease` are
  // added or renewed on the storage index's complete shares and set on the
  // new ones. ReadOnly on a read-only store.
  void Allocate(const StorageIndex& si, std::vector<ShareNum> shnums, std::uint64_t allocated_size,
                std::string upload_secret, LeaseSecrets lease, Callback<void(Result<AllocateResult>)> done);
  // Writes `data` at `offset` of an upload in progress. Bytes are written
  // once: an overlap with different bytes is Conflict (nothing written), the
  // same bytes again are accepted. NotFound if no upload is in progress
  // (also after completion), Unauthenticated on a wrong upload secret,
  // InvalidArgument past the allocated size.
  void WriteChunk(const StorageIndex& si, ShareNum shnum, std::string upload_secret, std::uint64_t offset,
                  std::string data, Callback<void(Result<WriteResult>)> done);
  // OK if the share is complete; FailedPrecondition naming the missing
  // ranges if not; NotFound/Unauthenticated as for WriteChunk.
  void CloseBucket(const StorageIndex& si, ShareNum shnum, std::string upload_secret, Callback<void(Status)> done);
  // Abandons an upload in progress and frees its space. Unauthenticated on a
  // wrong secret; FailedPrecondition if the share is complete; else NotFound.
  void Abort(const StorageIndex& si, ShareNum shnum, std::string upload_secret, Callback<void(Status)> done);
  // The complete immutable shares of `si` (empty if none), ascending.
  void ListImmutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done);
  // Bytes [offset, offset+length) of a complete share, truncated at its end
  // (empty when offset is at or past the end). NotFound if not complete here.
  void ReadImmutable(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t length,
                     Callback<void(Result<std::string>)> done);
  // The length of a complete share (a streamed read's Content-Range needs its
  // clamped end first). NotFound if not complete here.
  void ImmutableSize(const StorageIndex& si, ShareNum shnum, Callback<void(Result<std::uint64_t>)> done);

  // --- mutable slots -------------------------------------------------------
  // Tahoe's slot_testv_and_readv_and_writev, atomically in one transaction:
  // Unauthenticated if `write_enabler` differs from any existing share's;
  // every test vector of every share is evaluated first; read vectors are
  // read from every existing share before any write; if all tests pass the
  // writes, truncations and deletions (new_length 0) apply and leases are
  // added or renewed, else nothing changes (success = false, not an error).
  // NoSpace if the growth does not fit (size limit, free space), nothing
  // written.
  void ReadTestWrite(const StorageIndex& si, std::string write_enabler, LeaseSecrets lease,
                     std::vector<ShareTestWrite> writes, std::vector<ReadVector> reads,
                     Callback<void(Result<RtwResult>)> done);
  void ListMutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done);
  void ReadMutable(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t length,
                   Callback<void(Result<std::string>)> done);

  // --- both ----------------------------------------------------------------
  // Records a corruption advisory (kept, bounded per share, and logged).
  // NotFound if the share is not here.
  void AdviseCorrupt(bool is_mutable, const StorageIndex& si, ShareNum shnum, std::string reason,
                     Callback<void(Status)> done);
  // Adds or renews a lease on every share of `si` (complete immutable and
  // mutable): renew secret matches → expiry = max(old, now + lease time).
  // NotFound if `si` has no shares.
  void AddLease(const StorageIndex& si, LeaseSecrets lease, Callback<void(Status)> done);
  // Removes the leases whose cancel secret matches; a share left without
  // leases becomes expired (deleted by the sweep when expiry is on).
  // NotFound if no lease matched.
  void CancelLease(const StorageIndex& si, std::string cancel_secret, Callback<void(Status)> done);

  // --- space and backpressure ----------------------------------------------
  // Runs on a later turn with the free space (statvfs) less the reservation
  // and the index's totals.
  void Space(Callback<void(Result<SpaceInfo>)> done);
  // True when new writes would be refused with ResourceExhausted; callers
  // that feed chunks stop reading their input until `WhenRoom` fires.
  bool queue_full() const;
  // True if a write carrying `bytes` of payload would be queued now (not
  // refused as ResourceExhausted).
  bool has_room(std::size_t bytes) const;
  // `ready` runs on a later turn once the queue is below half its bounds.
  void WhenRoom(Task ready);
  StoreStats stats() const;
  const StoreOptions& options() const;

  // Starts an expiry sweep now (tests); `done` runs when it has finished.
  void TEST_Sweep(Task done);

  struct Impl;

 private:
  explicit ShareStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Lower-case hex of a storage index (file names, log lines).
std::string SiHex(const StorageIndex& si);

}  // namespace cairn::store
