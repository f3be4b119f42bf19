// The control plane's transfer path (control/transfer.h). Loop thread only;
// spool file I/O runs on the thread pool.
#include "control/transfer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cairn/control/protocol.h"

namespace cairn::control {

// ---- spool files ----------------------------------------------------------

Spool::~Spool() {
  if (fd >= 0) ::close(fd);
  if (!path.empty()) ::unlink(path.c_str());
}

Status OpenSpool(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError("cannot create " + dir + ": " + std::strerror(errno));
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::IoError("cannot read " + dir + ": " + std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("put-", 0) == 0 || name.rfind("get-", 0) == 0) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
  return Status();
}

Status CreateSpool(const std::string& dir, const char* prefix, Spool* spool) {
  std::string tmpl = dir + "/" + prefix + "-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Status::IoError("cannot create a file in " + dir + ": " + std::strerror(errno));
  spool->fd = fd;
  spool->path = tmpl;
  return Status();
}

void MakeSpool(Loop& loop, std::string dir, const char* prefix, Callback<void(Result<std::shared_ptr<Spool>>)> done) {
  auto spool = std::make_shared<Spool>();
  loop.Offload([spool, dir = std::move(dir), prefix]() -> Status { return CreateSpool(dir, prefix, spool.get()); },
               [spool, done = std::move(done)](Status created) mutable {
                 if (!created.ok()) return done(created);
                 done(spool);
               });
}

namespace {

Status WriteAll(int fd, const std::string& data, std::uint64_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == EDQUOT) return Status::NoSpace("spooling to " + path + ": no space left");
      return Status::IoError("spooling to " + path + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return Status();
}

Result<std::string> ReadAll(const Spool& spool, std::uint64_t offset, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(spool.fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IoError("reading back " + spool.path);
    got += static_cast<std::size_t>(r);
  }
  return out;
}

// One ReceiveInput: reads a chunk, checks it, hands it to the sink, and
// reads the next once the sink has consumed it.
struct Receiver {
  Loop* loop;
  InputStream input;
  ReceiveLimits limits;
  std::function<bool()> stopping;
  ChunkSink sink;
  Callback<void(Result<std::uint64_t>)> done;
  std::uint64_t received = 0;

  bool Stopping() const { return stopping && stopping(); }
  static void End(const std::shared_ptr<Receiver>& self, Result<std::uint64_t> outcome) {
    auto done = std::move(self->done);
    done(std::move(outcome));
  }
  static void Read(std::shared_ptr<Receiver> self) {
    if (self->Stopping()) return End(self, Status::ShuttingDown("the daemon is stopping"));
    self->input.Read([self](Result<InputChunk> chunk) {
      if (self->Stopping()) return End(self, Status::ShuttingDown("the daemon is stopping"));
      if (!chunk.ok()) return End(self, chunk.status());
      std::uint64_t offset = self->received;
      self->received += chunk->data.size();
      if (self->received > self->limits.max) return End(self, Status::InvalidArgument(self->limits.over_max));
      Status sized = CheckAnnouncedSize(self->limits.announced, self->received, chunk->eof);
      if (!sized.ok()) return End(self, sized);
      bool eof = chunk->eof;
      auto data = std::make_shared<std::string>(std::move(chunk->data));
      self->sink(std::move(data), offset, eof, [self, eof](Status consumed) {
        if (self->Stopping()) return End(self, Status::ShuttingDown("the daemon is stopping"));
        if (!consumed.ok()) return End(self, consumed);
        if (!eof) return Read(self);
        End(self, self->received);
      });
    });
  }
};

// One SendOutput: a chunk read, sent, and the next once the client has
// taken all but one.
struct Sender {
  Loop* loop;
  std::shared_ptr<Reply> reply;
  Output output;
  Json result;
  std::size_t chunk;
  std::uint64_t sent = 0;

  static void Next(std::shared_ptr<Sender> self) {
    if (!self->reply->connected()) return self->reply->Error(Status::Unavailable("the client left"));
    std::uint64_t offset = self->sent;
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(self->chunk, self->output.size - offset));
    if (!self->output.on_pool) return Send(self, self->output.read_at(offset, n));
    auto bytes = std::make_shared<Result<std::string>>(std::string());
    self->loop->Offload(
        [self, bytes, offset, n]() -> Status {
          *bytes = self->output.read_at(offset, n);
          return bytes->status();
        },
        [self, bytes](Status read) {
          if (!read.ok()) return self->reply->Error(read);
          Send(self, std::move(*bytes));
        });
  }
  static void Send(const std::shared_ptr<Sender>& self, Result<std::string> bytes) {
    if (!bytes.ok()) return self->reply->Error(bytes.status());
    self->sent += bytes->size();
    bool eof = self->sent >= self->output.size;
    self->reply->Data(std::move(*bytes), eof);
    if (eof) return self->reply->Result(std::move(self->result));
    self->reply->WhenWritable([self] { Next(self); });
  }
};

}  // namespace

// ---- receiving input ------------------------------------------------------

void ReceiveInput(Loop& loop, InputStream input, ReceiveLimits limits, std::function<bool()> stopping, ChunkSink sink,
                  Callback<void(Result<std::uint64_t>)> done) {
  auto rx = std::make_shared<Receiver>(Receiver{&loop, std::move(input), std::move(limits), std::move(stopping),
                                                std::move(sink), std::move(done)});
  Receiver::Read(std::move(rx));
}

ChunkSink ToMemory(std::shared_ptr<std::string> into) {
  return [into](std::shared_ptr<std::string> data, std::uint64_t, bool, Callback<void(Status)> consumed) {
    *into += *data;
    consumed(Status());
  };
}

ChunkSink ToSpool(Loop& loop, std::shared_ptr<Spool> spool, std::function<void(const std::string&)> each) {
  Loop* l = &loop;
  return [l, spool, each](std::shared_ptr<std::string> data, std::uint64_t offset, bool,
                          Callback<void(Status)> consumed) {
    // Fed on the pool one chunk at a time: the next is read only once this
    // one is written (and hashed).
    l->Offload(
        [spool, each, data, offset]() -> Status {
          CAIRN_TRY(WriteAll(spool->fd, *data, offset, spool->path));
          if (each) each(*data);
          return Status();
        },
        std::move(consumed));
  };
}

// ---- sending output -------------------------------------------------------

Output Output::Memory(std::shared_ptr<const std::string> bytes) {
  Output o;
  o.size = bytes->size();
  o.read_at = [bytes](std::uint64_t offset, std::size_t n) -> Result<std::string> {
    return bytes->substr(static_cast<std::size_t>(offset), n);
  };
  return o;
}

Output Output::Spooled(std::shared_ptr<Spool> spool, std::uint64_t size) {
  Output o;
  o.size = size;
  o.on_pool = true;
  o.read_at = [spool](std::uint64_t offset, std::size_t n) { return ReadAll(*spool, offset, n); };
  return o;
}

void SendOutput(Loop& loop, std::shared_ptr<Reply> reply, Output output, Json result, std::size_t chunk) {
  auto tx = std::make_shared<Sender>(Sender{&loop, reply, std::move(output), std::move(result), chunk});
  reply->WhenWritable([tx] { Sender::Next(tx); });
}

// ---- submit and answer ----------------------------------------------------

void SubmitAndAnswer(TaskTable& task_table, bool wait, Reply reply, TaskSpec spec, Answer answer) {
  TaskTable* tasks = &task_table;
  // Shared by the progress watcher and the final answer.
  auto shared = std::make_shared<Reply>(std::move(reply));
  auto then = std::make_shared<Answer>(std::move(answer));
  tasks->Submit(std::move(spec), [tasks, wait, shared, then](Result<TaskId> id) {
    if (!id.ok()) return shared->Error(id.status());
    if (!wait) {
      Json out = Json::NewObject();
      cJSON_AddNumberToObject(out.get(), "task", static_cast<double>(*id));
      cJSON_AddStringToObject(out.get(), "state", "queued");
      // What it waits for, as tasks.show tells it: {key, held_by} per busy key.
      auto shown = tasks->Show(*id);
      const cJSON* waiting = shown.ok() ? cJSON_GetObjectItemCaseSensitive(shown->get(), "waiting_on") : nullptr;
      if (waiting) cJSON_AddItemToObject(out.get(), "waiting_on", cJSON_Duplicate(waiting, true));
      return shared->Result(std::move(out));
    }
    TaskId task = *id;
    tasks->WatchProgress(task, [shared](Json event) { shared->Progress(std::move(event)); });
    tasks->Wait(task, [task, shared, then](Result<Json> record) {
      if (!record.ok()) return shared->Error(record.status());
      const cJSON* o = record->get();
      const cJSON* error = cJSON_GetObjectItemCaseSensitive(o, "error");
      if (error) return shared->Error(ErrorFromJson(error).WithContext("task " + std::to_string(task)));
      // The record is this callback's own: its result is taken, not copied.
      cJSON* result = cJSON_DetachItemFromObjectCaseSensitive(record->get(), "result");
      Json out(result ? result : cJSON_CreateObject());
      cJSON_AddNumberToObject(out.get(), "task", static_cast<double>(task));
      if (!*then) return shared->Result(std::move(out));
      (*then)(shared, std::move(out));
    });
  });
}

}  // namespace cairn::control
