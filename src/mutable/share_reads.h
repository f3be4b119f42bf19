// Several byte ranges of one mutable share read from one server, a few at a
// time. The GBS client keeps a few kept-alive connections per server
// (http::ClientOptions::max_idle); every request beyond those in flight at
// once dials a new TLS connection, a handshake of several ms of CPU, and
// the extra connections are closed again once idle. A ranged MDMF read or
// an in-place update needs a share's signed prefix, its salts and blocks
// and a block hash tree node or range per tree level (more levels, more
// ranges, as the file grows): sent all at once they made the handshakes
// the bulk of each operation's time. Loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/gbs/client.h"
#include "cairn/mutable/share_format.h"

namespace cairn::mutable_files {

// Requests of one ReadShareRanges call in flight at once, by default: a
// retrieve's reads of one share use three of the client's kept-alive
// connections (4). An update reads a share's tree while a retrieve reads
// its old segments from the same servers: each then uses two.
inline constexpr std::size_t kShareReadsAtOnce = 3;

// Reads `ranges` of share `shnum` (each exactly: a shorter answer is
// Integrity), at most `at_once` (>= 1) at a time, then runs `done` once
// with one result per range, in order. After the first failure no further
// range is asked for (those left get that failure). `done` runs on a later
// turn than the call (from the client's completions, or posted when
// `ranges` is empty). REQUIRES: every range's length > 0; `client` outlives
// the reads.
void ReadShareRanges(Loop& loop, gbs::Client& client, const gbs::StorageIndex& si, std::uint32_t shnum,
                     std::vector<ByteRange> ranges, std::size_t at_once,
                     Callback<void(std::vector<Result<std::string>>)> done);

}  // namespace cairn::mutable_files
