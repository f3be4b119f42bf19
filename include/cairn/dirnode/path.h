// Tahoe-LAFS's CLI path syntax (tahoe-dirnodes.md D, scripts/common.py
// get_alias): "ALIAS:path/to/child", "URI:DIR2:...:path" and
// "URI:DIR2:.../path" (the old form "URI:...:./path" too), a bare "path"
// under the default alias. Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::dirnode {

struct DirPath {
  std::string alias;                    // the alias named (or the default); empty if `root_cap` is set
  std::string root_cap;                 // the cap the path starts at ("URI:...", "ro.URI:...", "imm.URI:...")
  std::vector<std::string> components;  // NFC names; empty: the root itself
  bool trailing_slash = false;          // "ALIAS:dir/": the path names a directory to put something in

  // The path as a user would type it again.
  std::string ToString() const;
};

// Parses `text` after stripping spaces at both ends. A path with no ':'
// before its first '/' (or none at all) starts at `default_alias`. Empty
// segments ("a//b") are skipped. InvalidArgument for an empty alias name
// or a component that is not UTF-8; names are NFC-normalized.
Result<DirPath> ParseDirPath(std::string_view text, std::string_view default_alias = "tahoe");

}  // namespace cairn::dirnode
