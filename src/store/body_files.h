// The names of the files that hold immutable share bodies, formatted and
// parsed in this one place: DIR/incoming/<si>-<shnum>-<file id> while
// uploading (and its ranges file, <body>.ranges, beside it),
// DIR/shares/<first two hex digits of si>/<si>-<shnum>-<file id> once
// complete. <si> is the storage index in lower-case hex, <file id> a number
// from the totals, never reused. Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/store/store.h"

namespace cairn::store {

struct BodyPaths {
  std::string dir;
  std::string Incoming() const { return dir + "/incoming"; }
  std::string Shares() const { return dir + "/shares"; }
  // <si>-<shnum>-<file id>.
  std::string Name(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  std::string IncomingPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  // The ranges written to an upload's body and not yet fsynced (sync policy
  // "complete"): beside the body, named <body>.ranges.
  std::string RangesPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  std::string FinalDir(const StorageIndex& si) const;
  std::string FinalPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
};

// A file name in incoming/, taken apart.
struct BodyName {
  StorageIndex si{};
  ShareNum shnum = 0;
  std::uint64_t file_id = 0;
  bool ranges_file = false;  // <body>.ranges rather than the body
};

// Parses what BodyPaths::Name (or its ranges file's name) formats. False on
// anything else, including a name that does not format back to itself
// (leading zeros, upper-case hex, a sign, out-of-range numbers).
bool ParseBodyName(std::string_view file_name, BodyName* out);

}  // namespace cairn::store
