// InputFile and OutputFile (file_io.h). Single-threaded process.
#include "cli/file_io.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "cairn/core/file.h"
#include "cli/output.h"

namespace cairn::cli {

InputFile::~InputFile() {
  if (owned_) ::close(fd_);
}

Status InputFile::Open(const std::string& path) {
  path_ = path;
  fd_ = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    return err == ENOENT   ? Status::NotFound("no such file: " + path)
           : err == EACCES ? Status::PermissionDenied("cannot read " + path)
                           : Status::IoError("cannot open " + path + ": " + std::strerror(err));
  }
  owned_ = fd_ != STDIN_FILENO;
  struct stat st;
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) size_ = static_cast<std::uint64_t>(st.st_size);
  return Status();
}

ControlClient::Streams InputFile::Streams() {
  ControlClient::Streams streams;
  streams.max_chunk = 256 << 10;  // within every board's control_chunk_bytes
  streams.next_input = [this](std::size_t max, bool* eof) -> Result<std::string> {
    std::string chunk(max, '\0');
    std::size_t got = 0;
    while (got < max) {
      ssize_t n = ::read(fd_, chunk.data() + got, max - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::IoError("reading " + path_ + ": " + std::strerror(errno));
      if (n == 0) {
        *eof = true;
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    chunk.resize(got);
    return chunk;
  };
  return streams;
}

OutputFile::~OutputFile() {
  if (!temp_.empty() && fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

Status OutputFile::Open(const std::string& path) {
  if (path.empty() || path == "-") {
    fd_ = STDOUT_FILENO;
    return Status();
  }
  path_ = path;
  if (path_[0] != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return Status::IoError("cannot read the current directory");
    path_ = std::string(cwd) + "/" + path_;
  }
  std::string temp = path_ + ".cairn-XXXXXX";
  fd_ = ::mkstemp(temp.data());
  if (fd_ < 0) return Status::IoError("cannot create a file beside " + path_ + ": " + std::strerror(errno));
  temp_ = temp;
  return Status();
}

Status OutputFile::Write(std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError(std::string("writing the file: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  return Status();
}

Status OutputFile::Commit() {
  if (temp_.empty()) return Status();
  mode_t mask = ::umask(0);  // a new file's usual mode, as if created by open(2)
  ::umask(mask);
  int fd = fd_;
  fd_ = -1;
  bool ok = ::fchmod(fd, 0666 & ~mask) == 0 && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_.c_str());
    temp_.clear();
    return Status::IoError("cannot write " + path_ + ": " + std::strerror(err));
  }
  temp_.clear();
  // The new name must be durable too: a file the command reported written
  // is still there after a power cut.
  return SyncDir(ParentDir(path_));
}

Result<Json> FetchTo(const Options& opts, const char* method, Json params, const std::string& output,
                     bool* to_stdout) {
  OutputFile out;
  CAIRN_TRY(out.Open(output));
  *to_stdout = out.to_stdout();
  ControlClient client;
  CAIRN_TRY(client.Connect(opts.node_dir, opts.timeout_ms));
  ControlClient::Streams streams;
  streams.on_data = [&out](std::string_view data, bool) { return out.Write(data); };
  auto result = client.CallWithData(method, std::move(params), streams, true,
                                    [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok() || out.to_stdout()) return result;
  CAIRN_TRY(out.Commit());
  cJSON_AddStringToObject(result->get(), "path", out.path().c_str());
  return result;
}

int FetchAndReport(const Options& opts, const char* method, Json params, const std::string& output,
                   const std::function<void(const cJSON* result)>& say) {
  bool to_stdout = false;
  auto result = FetchTo(opts, method, std::move(params), output, &to_stdout);
  if (!result.ok()) return Fail(opts, result.status());
  if (to_stdout) return 0;
  if (opts.json) {
    PrintJson(*result);
  } else if (!opts.quiet) {
    say(result->get());
  }
  return 0;
}

int CallAndReport(const Options& opts, const std::string& method, Json params,
                  const std::function<void(const cJSON* result)>& show) {
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call(method, std::move(params));
  if (!result.ok()) return Fail(opts, result.status());
  if (opts.json) {
    PrintJson(*result);
  } else {
    show(result->get());
  }
  return 0;
}

Result<Json> CallSending(const Options& opts, const char* method, Json params, const ControlClient::Streams& streams,
                         bool async) {
  ControlClient client;
  CAIRN_TRY(client.Connect(opts.node_dir, opts.timeout_ms));
  return client.CallWithData(method, std::move(params), streams, !async,
                             [&opts](const cJSON* event) { PrintProgress(opts, event); });
}

bool PrintedPlainAnswer(const Options& opts, bool async, const Json& result) {
  if (opts.json) {
    PrintJson(result);
    return true;
  }
  const cJSON* task = cJSON_GetObjectItemCaseSensitive(result.get(), "task");
  if (async && cJSON_GetObjectItemCaseSensitive(result.get(), "state") && cJSON_IsNumber(task)) {
    std::printf("task %.0f queued\n", task->valuedouble);
    return true;
  }
  return false;
}

int ParseTargetAndOutput(const Options& opts, const char* usage, std::string* target, std::string* output) {
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if ((a == "-o" || a == "--output") && i + 1 < opts.args.size()) {
      *output = opts.args[++i];
    } else if (target->empty() && !a.empty() && a[0] != '-') {
      *target = a;
    } else {
      return UsageError(usage, "unexpected argument \"" + a + "\"");
    }
  }
  return 0;
}

}  // namespace cairn::cli
