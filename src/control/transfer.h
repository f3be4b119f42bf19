// The one transfer path of the control plane: a request's input received
// over the control socket (into memory or a spool file), a task submitted
// and its outcome answered, and a file sent back in data frames. Every
// method that takes or returns a file (put, get, mutable.*, and the debug
// hooks) uses these; none reads or writes data frames on its own.
// Loop thread only, except where a function says it runs on the thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "cairn/control/server.h"
#include "cairn/core/json.h"
#include "cairn/core/loop.h"
#include "control/tasks.h"

namespace cairn::control {

// ---- spool files ----------------------------------------------------------

// A daemon-owned temporary file in the spool directory: a put's input as it
// arrives, a get's output before it is sent back. Closed and removed when
// the last holder lets go, on the loop thread: an unlink is one short
// system call (the destructor may run during shutdown, after the loop has
// stopped taking thread-pool work). What a crash leaves is removed at the
// next start (OpenSpool).
struct Spool {
  std::string path;
  int fd = -1;
  ~Spool();
};

// Creates the spool directory and removes what an earlier run left in it
// (files named put-* and get-*). Blocking, at start-up.
Status OpenSpool(const std::string& dir);
// Creates a spool file `dir`/`prefix`-XXXXXX into `spool`. Blocking: thread
// pool only.
Status CreateSpool(const std::string& dir, const char* prefix, Spool* spool);
// The same from the loop: `done` runs once on a later turn with the open
// spool file or IoError.
void MakeSpool(Loop& loop, std::string dir, const char* prefix, Callback<void(Result<std::shared_ptr<Spool>>)> done);

// ---- receiving input ------------------------------------------------------

// Consumes one chunk of input (`offset` is where it starts in the input;
// `eof` marks the last) and calls `consumed` once, now or on a later turn,
// with OK or why the input cannot be taken.
using ChunkSink =
    std::function<void(std::shared_ptr<std::string> data, std::uint64_t offset, bool eof, Callback<void(Status)> consumed)>;

struct ReceiveLimits {
  std::optional<std::uint64_t> announced;  // params.size, checked as the input arrives
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::string over_max;  // InvalidArgument's message when more than `max` bytes arrive
};

// Reads `input` to its end, one chunk at a time (the next is read only once
// the sink consumed the last), checking each against `limits` before the
// sink sees it. `done` runs once, on a later turn, with the bytes received,
// or: the input's error (the client broke the sequence or left),
// InvalidArgument (over `max`, or not the announced size), the sink's error,
// or ShuttingDown once `stopping` (may be empty) says so.
void ReceiveInput(Loop& loop, InputStream input, ReceiveLimits limits, std::function<bool()> stopping, ChunkSink sink,
                  Callback<void(Result<std::uint64_t>)> done);

// A sink that appends to `into`.
ChunkSink ToMemory(std::shared_ptr<std::string> into);
// A sink that writes each chunk at its offset of `spool` on the thread pool,
// then runs `each` (may be empty) on it there (a put hashes its input as it
// arrives). NoSpace or IoError if the write fails.
ChunkSink ToSpool(Loop& loop, std::shared_ptr<Spool> spool, std::function<void(const std::string&)> each);

// ---- sending output -------------------------------------------------------

// Chunks of output sent back: within every board's control_chunk_bytes.
inline constexpr std::size_t kSendChunk = 256 << 10;

// The bytes a request sends back: `size` bytes read by `read_at` (offset,
// length), on the thread pool if `on_pool` (file I/O), else on the loop.
struct Output {
  std::uint64_t size = 0;
  bool on_pool = false;
  std::function<Result<std::string>(std::uint64_t offset, std::size_t n)> read_at;

  static Output Memory(std::shared_ptr<const std::string> bytes);
  static Output Spooled(std::shared_ptr<Spool> spool, std::uint64_t size);
};

// Sends `output` in data frames of at most `chunk` bytes (at least one
// frame, the last marked eof), each once the client has taken all but one
// chunk, then answers with `result`. Answers Unavailable if the client left,
// or the read's error.
void SendOutput(Loop& loop, std::shared_ptr<Reply> reply, Output output, Json result, std::size_t chunk = kSendChunk);

// ---- submit and answer ----------------------------------------------------

// How a successful task is answered: `result` is its result with "task"
// added. Empty: `reply->Result(result)`.
using Answer = Callback<void(std::shared_ptr<Reply> reply, Json result)>;

// Submits `spec` and answers `reply`: when `wait` is false, at once with
// {"task", "state": "queued", "waiting_on"?}; else with the task's progress
// events, then its error (with the task's id as context) or its answer.
void SubmitAndAnswer(TaskTable& tasks, bool wait, Reply reply, TaskSpec spec, Answer answer = nullptr);

}  // namespace cairn::control
