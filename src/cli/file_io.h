// The user's files as the cairn command streams them over the control
// socket: an input read by this process (with the user's permissions) into
// data frames, and an output written beside its final name and renamed
// once complete. Single-threaded process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cairn/core/status.h"
#include "cli/cli.h"
#include "cli/client.h"

namespace cairn::cli {

// A file to send ("-" is stdin). `size` is known for regular files.
class InputFile {
 public:
  ~InputFile();
  Status Open(const std::string& path);
  std::optional<std::uint64_t> size() const { return size_; }
  // Streams whose next_input reads this file to its end.
  ControlClient::Streams Streams();

 private:
  std::string path_;
  int fd_ = -1;
  bool owned_ = false;
  std::optional<std::uint64_t> size_;
};

// Where received data goes: stdout ("" or "-"), or a temporary file beside
// `path` that replaces it only once Commit succeeds (removed otherwise).
class OutputFile {
 public:
  ~OutputFile();
  Status Open(const std::string& path);
  Status Write(std::string_view data);
  // fsync, the usual mode, rename over the final name.
  Status Commit();
  bool to_stdout() const { return temp_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_, temp_;
  int fd_ = -1;
};

// Calls `method` with `params` and writes the answer's data frames to
// `output` (OutputFile's rules). The result, with "path" added when written
// to a file; `to_stdout` tells which.
Result<Json> FetchTo(const Options& opts, const char* method, Json params, const std::string& output,
                     bool* to_stdout);

}  // namespace cairn::cli
