// Mutable files (SDMF and MDMF) over GBS (tahoe-protocol.md sections 3 and 4): create,
// update (publish) and read (retrieve) a mutable file on the node's grid.
//
//   NewMutableKey   RSA-2048 key generation off the loop; the write cap is
//                   known before anything is sent (the caller records it).
//   CreateMutable   publishes seqnum 1 of a new key: share i goes to the
//                   i-th server in permuted order (round-robin when there
//                   are fewer servers than shares), in one read-test-write
//                   per server whose test vectors expect no share.
//   PublishMutable  servermap update in write mode (finds the newest
//                   version, its seqnum and the encrypted private key), then
//                   publishes seqnum+1 with test vectors expecting the
//                   version each server was seen to hold (or no share);
//                   the shares of a server that fails go to other servers.
//   UpdateMutable   MDMF only: writes bytes at an offset in place, sending
//                   each holder only the segments and hashes that change.
//   RetrieveMutable servermap update in read mode, then the newest
//                   recoverable version, every hash and the signature
//                   verified; corrupt shares are reported (advisory) and
//                   skipped. When too few shares of that version verify or
//                   can be read, the next-newest recoverable one is read
//                   (after one servermap update that asks every server, if
//                   the first stopped early). A share rewritten since the
//                   map (another writer) is never mixed in: the map is made
//                   once more, and a second change is UncoordinatedWrite.
//
// Every completion runs exactly once on a later loop turn, never inside the
// call that started it, also when a server fails at once (design rule 1,
// Tahoe-LAFS #877). Loop thread only. The file (or the range read, or the
// bytes of an update) is held in memory, and callers bound its size, unless
// it is streamed: an MDMF create reads its contents from a MutableSource
// (MutableOptions::source) a batch of segments at a time, and a retrieve
// with RetrieveOptions::sink hands the range over a batch at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/server.h"

namespace cairn::mutable_files {

// A new MDMF file's contents, read a batch of segments at a time: `size`
// bytes; read_at(offset, n) returns exactly bytes [offset, offset + n) or
// an error. Called on the thread pool, one call at a time, in order.
struct MutableSource {
  std::uint64_t size = 0;
  std::function<Result<std::string>(std::uint64_t offset, std::size_t n)> read_at;
};

struct MutableOptions {
  std::uint32_t k = 3;       // shares needed
  std::uint32_t n = 10;      // shares in total
  std::uint32_t happy = 7;   // servers of happiness a publish must reach
  std::string lease_secret;  // the client's raw lease secret (32 bytes)
  // A read-modify-write's guard: the version its change was made to (a
  // RetrieveResult::version). When set, a publish whose servermap update
  // finds a higher sequence number than that version's fails with
  // UncoordinatedWrite before it writes anything, so a change is never
  // published over a version that appeared after its read. Its writes then
  // test every share against the map, so a version published after the
  // check fails them the same way. Another version at the same sequence
  // number (two writers that collided, both told UncoordinatedWrite) does
  // not stop it: requiring the exact version there would leave a directory
  // unchangeable until someone published past the collision.
  std::string expected_version;
  // CreateMutable of an MDMF key only: the contents come from here (the
  // `contents` argument must then be empty), streamed into the shares in
  // rounds of read-test-writes (publish.cc says how each round is tested),
  // so the publish holds a few segments of the file, never all of it. A
  // server that fails part way loses its shares (they are not placed
  // elsewhere: the earlier rounds' blocks are gone).
  std::shared_ptr<MutableSource> source;
  // Tests only: called after the servermap update of a publish with the
  // continuation that sends the writes, so that a test can make two
  // publishers map before either writes. Unset: the publish goes straight on.
  std::function<void(std::function<void()> resume)> TEST_before_write;
};

// A freshly generated key pair and its write cap.
struct NewKey {
  caps::Cap writecap;          // URI:SSK: or URI:MDMF: (its format is the file's)
  std::string privkey_pkcs8;   // DER
  std::string pubkey_spki;     // DER
};

// Where a publish's time went, in ms (wall time from a steady clock, CPU
// time of the thread named), for benchmarks and the task's result. Zero for
// a phase that did not run (a create has no servermap update).
struct PublishTiming {
  double map_ms = 0;           // servermap update, write mode
  double encode_wait_ms = 0;   // encode job queued on the thread pool before it ran
  double encode_ms = 0;        // the job's run: encrypt, encode, hash, sign, lay out
  double encode_cpu_ms = 0;    // the job's thread CPU
  double send_ms = 0;          // from the writes' start until the last request was handed to its
                               // client (its body encoded on the pool, its first bytes TLS-encrypted)
  double first_answer_ms = 0;  // from the writes' start to the first answer
  double last_answer_ms = 0;   // ... to the last answer of the publish
  double total_ms = 0;         // from the start to the result
  double loop_cpu_ms = 0;      // loop thread CPU from the start to the result (all its work)
};

struct PublishResult {
  caps::Cap writecap;
  std::uint64_t seqnum = 0;
  std::uint64_t size = 0;
  std::size_t happiness = 0;
  // Share number -> names of the servers that hold it after the publish.
  std::map<std::uint32_t, std::vector<std::string>> placement;
  std::size_t writes_sent = 0;       // read-test-write requests sent
  std::size_t servers_failed = 0;    // servers that failed during the publish
  std::size_t shares_replaced = 0;   // shares sent to another server after theirs failed
  std::uint64_t bytes_written = 0;   // share bytes in the read-test-write requests sent
  PublishTiming timing;
};

struct RetrieveOptions {
  // Only bytes [offset, offset + size) of the file, cut at its end (an
  // offset at or past the end reads nothing). An MDMF file's reader then
  // fetches and verifies only the segments that cover them (their salts
  // and blocks and the block hash tree nodes they need), from k shares.
  // The default: the whole file.
  std::uint64_t offset = 0;
  std::uint64_t size = UINT64_MAX;
  // When set, the range is handed here a piece at a time, in order (on the
  // thread pool, one call at a time), instead of being gathered in
  // RetrieveResult::contents, which stays empty: an MDMF read then holds
  // one batch of segments. An error it returns fails the retrieve. Once a
  // piece was handed over, a version that runs out of shares fails the
  // retrieve (NotEnoughServers, or UncoordinatedWrite if its shares were
  // rewritten) instead of falling back to another version.
  std::function<Status(std::string_view bytes)> sink;
  // Tests only: called after each servermap update of a retrieve, before
  // a version is chosen and fetched, with the continuation that does so
  // (a test can publish another version in between). Unset: straight on.
  std::function<void(std::function<void()> resume)> TEST_before_fetch;
};

struct RetrieveResult {
  std::string contents;            // the range asked for (the whole file by default)
  std::uint64_t seqnum = 0;
  std::string version;             // the version read, exactly: its signed prefix
  std::uint64_t file_size = 0;     // of the version read
  std::uint64_t offset = 0;        // where `contents` begins in the file
  std::uint64_t length = 0;        // bytes of the range read (in `contents` or given to the sink)
  std::uint64_t bytes_fetched = 0; // share bytes read after the servermap update
  std::map<std::uint32_t, std::string> shares_used;  // share number -> server name
  std::size_t corrupt_shares = 0;                    // advisories sent
  std::size_t servermap_updates = 0;                 // 1, or 2 after a second look
  std::size_t versions_tried = 0;                    // more than 1 after a fallback
};

// Generates an RSA-2048 key off the loop thread; its write cap names
// `format` (URI:SSK: or URI:MDMF:), which CreateMutable then publishes.
// The first form makes an SDMF key, Tahoe's default. `done` runs once, on a
// later turn.
void NewMutableKey(Loop& loop, Callback<void(Result<NewKey>)> done);
void NewMutableKey(Loop& loop, caps::MutableFormat format, Callback<void(Result<NewKey>)> done);

// Publishes `contents` as seqnum 1 of the file of `key`; or, with
// `options.source` (an MDMF key only; `contents` empty), the source's bytes,
// streamed in rounds of read-test-writes (publish.cc). Errors:
// InvalidArgument (bad k/N/happy), NotEnoughServers (fewer than `happy`
// servers of happiness could be reached, naming the servers that failed),
// UncoordinatedWrite (a server already holds a share of this file),
// Cancelled.
void CreateMutable(Loop& loop, std::vector<grid::GridServer> servers, NewKey key, std::string contents,
                   MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                   Callback<void(Result<PublishResult>)> done);

// Replaces the contents of the file of `writecap` (URI:SSK: or URI:MDMF:,
// shares of the cap's format). The new
// version keeps the file's k and N (those of its newest version, as Tahoe
// does); `options.happy` still applies (at most N). Errors: BadCap
// (not a write cap), NotFound (no server holds a share), NotEnoughServers,
// UncoordinatedWrite (another writer's version appeared during the publish),
// Integrity (no version could be verified), Cancelled.
void PublishMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, std::string contents,
                    MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                    Callback<void(Result<PublishResult>)> done);

// Writes `data` at `offset` of the MDMF file of `writecap` (URI:MDMF:) in
// place, as Tahoe-LAFS's MDMF update does: the newest recoverable version
// is mapped (write mode), the old bytes of the first and last touched
// segment the write leaves are read (ranged retrieves), the touched
// segments are re-encoded under fresh salts, and each holder of that
// version's shares gets only their salts and blocks, the changed block
// hash tree nodes (the whole tree when the file grows: it moves), the
// share hash chain, the signature, the offsets and the signed prefix, in
// one read-test-write tested against the version's checkstring. Untouched
// blocks are neither read nor written. Writing past the end grows the file;
// `offset` past the end is InvalidArgument. A server that fails keeps the
// old version (its shares are not placed elsewhere). Errors as
// PublishMutable, and InvalidArgument for an SDMF cap (one segment: publish
// the whole file) or an empty `data`; NotEnoughServers when a share number
// of the version has no readable holder (every share's tree is needed).
void UpdateMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, std::uint64_t offset,
                   std::string data, MutableOptions options, grid::ProgressFn progress, grid::StopFn stop,
                   Callback<void(Result<PublishResult>)> done);

// Reads the newest recoverable version of the file of `cap` (URI:SSK:,
// URI:SSK-RO:, URI:MDMF: or URI:MDMF-RO:). Errors: BadCap, NotFound (no shares), NotEnoughServers
// (shares exist but fewer than k verified ones of any version),
// UncoordinatedWrite (the shares changed under the read twice), Cancelled.
void RetrieveMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::ProgressFn progress,
                     grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done);
void RetrieveMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, RetrieveOptions options,
                     grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RetrieveResult>)> done);

}  // namespace cairn::mutable_files
