// The user's files as the cairn command streams them over the control
// socket: an input read by this process (with the user's permissions) into
// data frames, and an output written beside its final name and renamed
// once complete. Single-threaded process.
#pragma once

#include <cstdint>
#include <functional>
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

// Calls `method` with `params`, sending `streams`' input in data frames and
// showing progress on stderr; waits for the task's end unless `async`.
Result<Json> CallSending(const Options& opts, const char* method, Json params, const ControlClient::Streams& streams,
                         bool async);
// Prints the answer of CallSending when it needs no command's own words: the
// JSON document with --json, "task N queued" for --async. True if printed.
bool PrintedPlainAnswer(const Options& opts, bool async, const Json& result);

// A whole download command after its arguments: FetchTo, then the answer.
// A failure is reported; the file written to stdout needs no more; --json
// prints the result; otherwise `say` (skipped with -q) tells where the file
// went. The exit code.
int FetchAndReport(const Options& opts, const char* method, Json params, const std::string& output,
                   const std::function<void(const cJSON* result)>& say);

// A whole command that calls `method` with `params` and waits for its
// answer: a failure is reported; --json prints the result; otherwise `show`
// prints it in the command's own words. The exit code.
int CallAndReport(const Options& opts, const std::string& method, Json params,
                  const std::function<void(const cJSON* result)>& show);

// Parses a download's arguments, `TARGET [-o|--output FILE]` in any order:
// the one positional argument into `target`, the file into `output` (left
// as is without -o). An unexpected argument prints the usage error and
// returns its exit code; otherwise 0.
int ParseTargetAndOutput(const Options& opts, const char* usage, std::string* target, std::string* output);

}  // namespace cairn::cli
