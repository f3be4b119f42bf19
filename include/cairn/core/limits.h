// Limits: every bound and board-dependent default in one struct. Filled from
// the board's defaults (boards/<name>.mk, embedded at build time), then the
// node's overrides from cairn.json. Code never tests the board's name; board
// values reach code only through this struct. Any thread (plain data).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn {

// One X row per limit: X(name, default_if_the_board_omits_it, "meaning").
#define CAIRN_LIMITS(X)                                                                       \
  X(max_connections, 256, "open GBS connections at once")                                     \
  X(control_max_clients, 32, "open control-socket connections at once")                       \
  X(control_frame_bytes, 65536, "longest control-socket line (one JSON frame), bytes")        \
  X(control_idle_ms, 30000, "a control connection mid-frame longer than this is closed, ms")  \
  X(control_chunk_bytes, 1048576, "largest raw attachment of one control data frame, bytes")   \
  X(http_header_bytes, 16384, "request line plus headers, bytes")                             \
  X(http_max_headers, 64, "header lines per request")                                         \
  X(http_body_bytes, 1048576, "largest request body outside share uploads, bytes")           \
  X(http_idle_ms, 60000, "idle keep-alive GBS connection timeout, ms")                       \
  X(http_request_ms, 30000, "a request head not complete this long after it began gets 408, ms") \
  X(tls_handshake_ms, 10000, "a TLS handshake not finished in this long is dropped, ms")      \
  X(lmdb_map_bytes, 1073741824, "initial LMDB map size, bytes")                               \
  X(lmdb_map_max_bytes, 17179869184ULL, "largest LMDB map size it may grow to, bytes")        \
  X(store_reserved_bytes, 1073741824, "free space never given to shares (allocations and growth refused below it), bytes") \
  X(store_max_immutable_share_bytes, 1099511627776ULL, "largest immutable share accepted, bytes")  \
  X(store_max_mutable_share_bytes, 1073741824, "largest mutable share (kept in LMDB), bytes")       \
  X(store_lease_ms, 2678400000ULL, "lease duration from an add or renew (31 days), ms")              \
  X(store_upload_idle_ms, 1800000, "an upload without writes this long is aborted, ms")              \
  X(store_sweep_interval_ms, 3600000, "time between two expiry sweeps, ms")                          \
  X(store_queue_ops, 4096, "share writes queued or committing at once; more are refused as busy")  \
  X(store_queue_bytes, 67108864, "payload of queued share writes; more are refused as busy, bytes") \
  X(store_batch_ops, 256, "share writes group-committed in one LMDB transaction (1: no grouping)")  \
  X(store_batch_bytes, 16777216, "payload group-committed in one LMDB transaction, bytes")          \
  X(store_sync_every_write, 0, "1: fsync every upload write before acknowledging it; 0: only the write completing a share (docs/store.md)") \
  X(test_store_skip_sync, 0, "TESTS ONLY: 1 acknowledges share writes without any fsync (the power-cut test's negative run); never set on a real node") \
  X(gbs_rtw_body_bytes, 67108864, "largest mutable read-test-write request (held in memory), bytes") \
  X(sdmf_max_bytes, 16777216, "largest mutable (SDMF) file: held in memory while published or read, bytes") \
  X(gbs_read_bytes, 16777216, "longest answer to one ranged share read, bytes")               \
  X(gbs_write_piece_bytes, 262144, "upload bytes handed to the store per write, bytes")          \
  X(gbs_read_piece_bytes, 262144, "a longer immutable read is streamed in pieces this big, bytes")  \
  X(gbs_upload_buffer_bytes, 8388608, "upload bytes held in memory, all uploads together, bytes") \
  X(grid_connect_ms, 5000, "a client connection to a grid server not made in this long fails, ms") \
  X(grid_keep_idle_ms, 10000, "a kept-alive client connection to a grid server idle this long is closed, ms") \
  X(control_inflight, 16, "requests one control connection may have unanswered at once")      \
  X(task_history, 1000, "finished control tasks kept")                                        \
  X(tasks_max_active, 64, "control tasks queued or running at once; more are refused as busy")  \
  X(tasks_max_per_key, 32, "control tasks waiting on one resource at once")                   \
  X(threadpool, 4, "libuv thread-pool size (UV_THREADPOOL_SIZE)")                             \
  X(tls_prefer_chacha, 2, "0: AES-128-GCM first; 1: ChaCha20-Poly1305 first (boards without AES instructions); 2: whichever seals faster here, timed at start") \
  X(tls_own_records, 1, "1: cairn seals and opens TLS 1.2 application records itself; 0: mbedTLS does (the kill switch)") \
  X(malloc_mmap_threshold_bytes, 4194304, "blocks this big get their own mapping, unmapped when freed; smaller ones reuse freed heap memory, bytes") \
  X(malloc_trim_ms, 5000, "this often, free heap memory goes back to the system (0: never), ms")

struct Limits {
#define CAIRN_LIMIT_FIELD(name, def, meaning) std::uint64_t name = def;
  CAIRN_LIMITS(CAIRN_LIMIT_FIELD)
#undef CAIRN_LIMIT_FIELD

  // Sets one limit by name. InvalidArgument naming the key if unknown.
  Status Set(std::string_view name, std::uint64_t value);
  // Reads one limit by name; false if unknown.
  bool Get(std::string_view name, std::uint64_t* value) const;
  // Every limit's name, in declaration order.
  static std::vector<std::string_view> Names();
};

// The defaults of a board compiled into this binary. InvalidArgument (listing
// the known boards) if `board` is not one of them.
Result<Limits> BoardDefaults(std::string_view board);
// The boards compiled into this binary.
std::vector<std::string> KnownBoards();
// The board this binary was built for (make BOARD=...).
std::string_view BuildBoard();

}  // namespace cairn
