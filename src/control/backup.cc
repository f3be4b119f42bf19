// The `backup` method (see backup.h): the local tree walked one directory
// at a time (listing and stat on the thread pool), files uploaded with a
// bounded window, snapshot directories packed and uploaded bottom-up, the
// backup database read when a directory is listed and written in batches,
// each row only once its upload is done; a reused cap whose last check is
// old is checked first (Tahoe's rule, backup_db.h) and uploaded again if
// unhealthy. Loop thread only, except the offloaded work.
//
// Memory: what is held grows with the directories on the current path and
// the upload window, never with the tree. A directory's entries are
// consumed from the front as they are started, and a finished child is
// kept only as its packed body entry and its cap (a few hundred bytes: the
// metadata's parsed form is ten times larger); the body is written to its
// spool file straight from those on the thread pool. The uploads in flight
// are bounded by count and by the bytes their uploads buffer (one large
// file runs alone).
#include "control/backup.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/clock.h"
#include "cairn/core/file.h"
#include "cairn/crypto/random.h"
#include "cairn/dirnode/backup.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/nfc.h"
#include "control/backup_db.h"
#include "control/check.h"
#include "control/dirs.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

// Uploads of one directory's files running at once: at most this many, and
// at most kUploadBuffers of upload buffers between them (UploadBuffers; a
// file that needs more runs alone), so that many small files overlap their
// round trips while large ones do not multiply the upload buffers.
constexpr std::size_t kUploadWindow = 16;
constexpr std::uint64_t kUploadBuffers = 24ull << 20;
// Database rows written per transaction at most (and at every directory's
// end, whichever comes first).
constexpr std::size_t kRowsPerCommit = 256;
// Lines kept in the result (warnings, and with verbose the per-item ones).
constexpr std::size_t kMaxLines = 100000;

enum class Kind { kFile, kDirectory, kSymlink, kSpecial, kUnreadable, kBadName };

struct Entry {
  std::string name;  // NFC
  std::string raw;   // as listed, if not the NFC name (the local path uses it)
  Kind kind = Kind::kFile;
  struct stat st {};
  std::optional<std::string> cap;  // known to the backup database
  bool check = false;              // cap is reused only if a check finds it healthy
};

// A finished child of the directory being built: its cap (for the
// directory hash) and its entry in the immutable body (tahoe-dirnodes.md A:
// the netstring of name, ro slot, empty rw slot and metadata JSON).
struct Packed {
  std::string cap;
  std::string entry;
};
// By NFC name: byte order, the order of Tahoe's bodies and of its hash.
using PackedChildren = std::map<std::string, Packed>;

// One local directory being backed up.
struct Frame {
  std::string path;
  std::string name;       // in its parent (NFC); empty for the root
  dirnode::PyJson metadata;
  bool listed = false;
  std::deque<Entry> entries;  // not yet started; popped as each starts
  std::size_t in_flight = 0;
  std::uint64_t buffers_in_flight = 0;
  PackedChildren children;
  std::string EntryPath(const Entry& e) const { return path + "/" + (e.raw.empty() ? e.name : e.raw); }
};

// The bytes an upload of a file of `size` bytes buffers at most: its
// segments in flight plus the one encoding and the one waiting, each
// expanded N/k times (immutable/uploader.h, "Memory").
std::uint64_t UploadBuffers(std::uint64_t size, const immutable::UploadOptions& o) {
  const std::uint64_t segment = std::min<std::uint64_t>(std::max<std::uint64_t>(size, 1), o.params.max_segment_size);
  const std::uint64_t held = std::min<std::uint64_t>(std::max<std::uint64_t>(size, 1), (o.segments_in_flight + 2) * segment);
  return held * o.params.n / std::max<std::uint32_t>(o.params.k, 1);
}

struct Counts {
  std::uint64_t files_uploaded = 0, files_reused = 0, files_skipped = 0;
  std::uint64_t dirs_created = 0, dirs_reused = 0, dirs_skipped = 0;
  std::uint64_t files_checked = 0, dirs_checked = 0;
};

// A uniform draw from [0, 1) (53 random bits); 0 if the kernel gave none.
double Uniform() {
  auto bytes = crypto::RandomBytes(8);
  if (!bytes.ok()) return 0;
  std::uint64_t x = 0;
  std::memcpy(&x, bytes->data(), sizeof x);
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

// Tahoe's decision for a cap the database knows (backup_db.h): the draw is
// made only when the probability is strictly between 0 and 1.
bool DueForCheck(const BackupKnown& known, std::int64_t now_s) {
  const double p = BackupCheckProbability(known.checked_s, now_s);
  if (p <= 0) return false;
  if (p >= 1) return true;
  return BackupShouldCheck(known.checked_s, now_s, Uniform());
}

std::int64_t NowSeconds() { return static_cast<std::int64_t>(clock::UnixMs() / 1000); }

// What the walk needs of the daemon, copied at submission.
struct Env {
  Loop* loop;
  NameTable* servers;
  grid::Grid* grid;
  immutable::UploadOptions upload_options;
  std::string spool_dir;
  std::string db_dir;
  CheckEnv check;
};

struct Backup : std::enable_shared_from_this<Backup> {
  Env env;
  TaskRun* run = nullptr;
  std::string from;
  std::vector<std::string> excludes;
  bool verbose = false;
  bool ignore_timestamps = false;  // Tahoe's --ignore-timestamps: every file is uploaded
  std::shared_ptr<BackupDb> db;
  std::vector<std::unique_ptr<Frame>> stack;
  Counts counts;
  std::uint64_t done_items = 0, total_items = 1;
  std::vector<std::string> lines, warnings;
  std::uint64_t lines_dropped = 0;
  // Rows waiting for a commit, and whether one is running.
  std::vector<BackupFileRow> pending_files;
  std::vector<std::pair<std::string, std::string>> pending_dirs;
  std::vector<std::pair<std::string, std::int64_t>> pending_checked;  // cap, Unix seconds
  bool flushing = false;
  std::vector<Task> after_flush;
  Status failed;  // the first error; the walk stops starting work
  bool pumping_posted = false;
  double started_ms = 0;
  Callback<void(Result<Json>)> done;

  void Line(std::string text) {
    if (!verbose) return;
    if (lines.size() < kMaxLines) {
      lines.push_back(std::move(text));
    } else {
      ++lines_dropped;
    }
  }
  void Warn(std::string text) {
    if (warnings.size() < kMaxLines) warnings.push_back(std::move(text));
  }
  void Progress() { run->Progress("backing up", done_items, total_items); }

  // Runs Pump on a later turn (at most one queued).
  void Schedule() {
    if (pumping_posted) return;
    pumping_posted = true;
    auto self = shared_from_this();
    env.loop->Post([self] {
      self->pumping_posted = false;
      self->Pump();
    });
  }

  // ---- the database's batches ----

  // Commits the queued rows (one commit at a time, in order), then runs
  // `then` (may be empty) once everything queued before it is durable.
  void Flush(Task then) {
    if (then) after_flush.push_back(std::move(then));
    if (flushing) return;
    if (pending_files.empty() && pending_dirs.empty() && pending_checked.empty()) {
      auto waiting = std::move(after_flush);
      after_flush.clear();
      for (Task& t : waiting) env.loop->Post(std::move(t));
      return;
    }
    flushing = true;
    auto files = std::make_shared<std::vector<BackupFileRow>>(std::move(pending_files));
    auto dirs = std::make_shared<std::vector<std::pair<std::string, std::string>>>(std::move(pending_dirs));
    auto checked = std::make_shared<std::vector<std::pair<std::string, std::int64_t>>>(std::move(pending_checked));
    pending_files.clear();
    pending_dirs.clear();
    pending_checked.clear();
    auto self = shared_from_this();
    // The waiters so far wait for this commit; later ones for a later one.
    auto waiting = std::make_shared<std::vector<Task>>(std::move(after_flush));
    after_flush.clear();
    env.loop->Offload([self, files, dirs, checked] { return self->db->Record(*files, *dirs, *checked); },
                      [self, waiting](Status st) {
                        self->flushing = false;
                        if (!st.ok() && self->failed.ok()) self->failed = st.WithContext("the backup database");
                        for (Task& t : *waiting) self->env.loop->Post(std::move(t));
                        if (!self->pending_files.empty() || !self->pending_dirs.empty() ||
                            !self->pending_checked.empty() || !self->after_flush.empty()) {
                          self->Flush(nullptr);
                        }
                      });
  }
  void QueueRows() {
    // An upload's "checked" row goes with its file or directory row.
    if (std::max(pending_files.size() + pending_dirs.size(), pending_checked.size()) >= kRowsPerCommit) {
      Flush(nullptr);
    }
  }

  // ---- the walk ----

  void Start() {
    auto self = shared_from_this();
    auto frame = std::make_shared<std::unique_ptr<Frame>>(std::make_unique<Frame>());
    (*frame)->path = from;
    auto opened = std::make_shared<std::shared_ptr<BackupDb>>();
    env.loop->Offload(
        [frame, opened, db_dir = env.db_dir]() -> Status {
          CAIRN_TRY_ASSIGN(*opened, BackupDb::Open(db_dir));
          struct stat st {};
          if (stat((*frame)->path.c_str(), &st) != 0) {
            return Status::NotFound((*frame)->path + ": " + std::strerror(errno));
          }
          if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument((*frame)->path + " is not a directory");
          (*frame)->metadata = dirnode::StatMetadata(st);
          return Status();
        },
        [self, frame, opened](Status st) {
          if (!st.ok()) return self->done(st);
          self->db = *opened;
          self->stack.push_back(std::move(*frame));
          self->Progress();
          self->Pump();
        });
  }

  // Lists the top frame's directory on the thread pool: names (excludes
  // applied), lstat of each, and the database's answer for each file.
  void List(Frame* f) {
    auto self = shared_from_this();
    auto entries = std::make_shared<std::deque<Entry>>();
    auto unlistable = std::make_shared<bool>(false);
    env.loop->Offload(
        [self, f, entries, unlistable]() -> Status {
          DIR* d = opendir(f->path.c_str());
          if (!d) {
            *unlistable = true;
            return Status();
          }
          while (struct dirent* de = readdir(d)) {
            std::string name = de->d_name;
            if (name == "." || name == "..") continue;
            if (dirnode::Excluded(name, self->excludes)) continue;
            Entry e;
            const std::string path = f->path + "/" + name;
            auto nfc = dirnode::NormalizeNfc(name);
            if (!nfc.ok()) {
              e.kind = Kind::kBadName;
              e.name = name;
              entries->push_back(std::move(e));
              continue;
            }
            e.name = std::move(*nfc);
            if (e.name != name) e.raw = name;
            if (lstat(path.c_str(), &e.st) != 0) {
              e.kind = Kind::kUnreadable;
            } else if (S_ISLNK(e.st.st_mode)) {
              e.kind = Kind::kSymlink;
            } else if (S_ISDIR(e.st.st_mode)) {
              e.kind = Kind::kDirectory;
            } else if (S_ISREG(e.st.st_mode)) {
              int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
              if (fd < 0) {
                e.kind = Kind::kUnreadable;
              } else {
                close(fd);
              }
            } else {
              e.kind = Kind::kSpecial;
            }
            entries->push_back(std::move(e));
          }
          closedir(d);
          std::vector<BackupFileRow> ask;
          std::vector<std::size_t> index;
          // Tahoe's --ignore-timestamps: no file counts as unchanged.
          for (std::size_t i = 0; !self->ignore_timestamps && i < entries->size(); ++i) {
            const Entry& e = (*entries)[i];
            if (e.kind != Kind::kFile) continue;
            ask.push_back(BackupFileRow{f->EntryPath(e), static_cast<std::uint64_t>(e.st.st_size),
                                        static_cast<std::int64_t>(e.st.st_mtim.tv_sec),
                                        static_cast<std::int64_t>(e.st.st_ctim.tv_sec), {}});
            index.push_back(i);
          }
          std::vector<std::optional<BackupKnown>> known;
          CAIRN_TRY(self->db->LookupFiles(ask, &known));
          const std::int64_t now = NowSeconds();
          for (std::size_t j = 0; j < index.size(); ++j) {
            if (!known[j]) continue;
            Entry& e = (*entries)[index[j]];
            e.cap = known[j]->cap;
            e.check = DueForCheck(*known[j], now);
          }
          return Status();
        },
        [self, f, entries, unlistable](Status st) {
          if (!st.ok() && self->failed.ok()) self->failed = st;
          f->listed = true;
          if (*unlistable) {
            // Tahoe: "permission denied on directory"; its snapshot is empty.
            self->Warn("WARNING: permission denied on directory '" + f->path + "'");
            ++self->counts.dirs_skipped;
          }
          f->entries = std::move(*entries);
          self->total_items += f->entries.size();
          self->Progress();
          self->Pump();
        });
  }

  void Pump() {
    if (stack.empty()) return;
    Frame* f = stack.back().get();
    if (!failed.ok() || run->cancel_requested()) {
      if (f->in_flight > 0) return;  // the last upload's completion comes back here
      Status why = failed.ok() ? Status::Cancelled("cancelled") : failed;
      // What finished is kept: the rows are committed before the answer.
      auto self = shared_from_this();
      stack.clear();
      return Flush([self, why] { self->done(why); });
    }
    if (!f->listed) return List(f);
    while (!f->entries.empty()) {
      if (!failed.ok()) return Pump();  // AddChild failed: stop as above
      Entry& front = f->entries.front();
      if (front.kind == Kind::kDirectory) {
        if (f->in_flight > 0) return;  // the files first: their completions come back here
        auto sub = std::make_unique<Frame>();
        sub->path = f->EntryPath(front);
        sub->name = front.name;
        sub->metadata = dirnode::StatMetadata(front.st);
        f->entries.pop_front();
        stack.push_back(std::move(sub));
        return Schedule();
      }
      if (front.kind == Kind::kFile && (!front.cap || front.check) && f->in_flight > 0) {
        // A check holds a place in the window but no upload buffers.
        const std::uint64_t need =
            front.cap ? 0 : UploadBuffers(static_cast<std::uint64_t>(front.st.st_size), env.upload_options);
        if (f->in_flight >= kUploadWindow || f->buffers_in_flight + need > kUploadBuffers) return;
      }
      Entry e = std::move(front);
      f->entries.pop_front();
      const std::string path = f->EntryPath(e);
      switch (e.kind) {
        case Kind::kFile:
          if (e.cap && e.check) {
            CheckFile(f, std::move(e), path);
          } else if (e.cap) {
            Line("skipping '" + path + "'..");
            AddChild(f, e.name, *e.cap, dirnode::StatMetadata(e.st));
            ++counts.files_reused;
            ++done_items;
          } else {
            Upload(f, std::move(e), path);
          }
          break;
        case Kind::kSymlink:
          Skip("WARNING: cannot backup symlink '" + path + "'");
          break;
        case Kind::kSpecial:
          Skip("WARNING: cannot backup special file '" + path + "'");
          break;
        case Kind::kUnreadable:
          Skip("WARNING: permission denied on file '" + path + "'");
          break;
        case Kind::kBadName:
          Skip("WARNING: could not list directory '" + f->path + "' due to a filename encoding error");
          break;
        case Kind::kDirectory:
          break;
      }
    }
    Progress();
    if (f->in_flight > 0) return;
    FinishDirectory();
  }

  void Skip(std::string warning) {
    Warn(std::move(warning));
    ++counts.files_skipped;
    ++done_items;
  }

  // Keeps `name` -> `cap` as its packed body entry (a file's or a
  // directory's; both caps are immutable, so packing fails only on a broken
  // invariant, which stops the backup).
  void AddChild(Frame* f, const std::string& name, const std::string& cap, dirnode::PyJson metadata) {
    dirnode::Children one;
    dirnode::Child& child = one[name];
    child.ro_uri = cap;
    child.metadata = std::move(metadata);
    dirnode::DirAccess access;
    access.immutable = true;
    auto entry = dirnode::PackBody(one, access);
    if (!entry.ok()) {
      if (failed.ok()) failed = entry.status().WithContext(f->path + "/" + name);
      return;
    }
    f->children[name] = Packed{cap, std::move(*entry)};
  }

  // Checks `cap` as `cairn check` does (control/check.h) on a later turn;
  // `answered` gets whether it answered healthy (an error counts as not
  // healthy: Tahoe uploads again when it cannot check).
  void RunCheck(const std::string& cap_text, Callback<void(bool)> answered) {
    auto cap = caps::ParseCap(cap_text);
    auto snapshot = cap.ok() ? GridSnapshot(*env.servers) : Result<std::vector<grid::ServerEntry>>(cap.status());
    if (!snapshot.ok()) {
      return env.loop->Post([answered = std::move(answered)]() mutable { answered(false); });
    }
    JobHooks hooks;
    TaskRun* r = run;
    hooks.stop = [r] { return r->cancel_requested(); };
    RunCheckJob(env.check, CheckWanted{}, *cap, std::move(*snapshot), std::move(hooks),
                [answered = std::move(answered)](Result<Json> checked) mutable {
                  const cJSON* results =
                      checked.ok() ? cJSON_GetObjectItemCaseSensitive(checked->get(), "results") : nullptr;
                  answered(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(results, "healthy")));
                });
  }

  // A file the database knows whose check is due: reused if healthy, else
  // uploaded again (Tahoe's check_backupdb_file).
  void CheckFile(Frame* f, Entry entry, const std::string& entry_path) {
    ++f->in_flight;
    ++counts.files_checked;
    Line("checking " + *entry.cap);
    auto self = shared_from_this();
    auto e = std::make_shared<Entry>(std::move(entry));
    RunCheck(*e->cap, [self, f, e, entry_path](bool healthy) {
      --f->in_flight;
      if (!self->failed.ok() || self->run->cancel_requested()) return self->Pump();
      if (!healthy) return self->Upload(f, std::move(*e), entry_path);
      self->Line("skipping '" + entry_path + "'..");
      self->AddChild(f, e->name, *e->cap, dirnode::StatMetadata(e->st));
      ++self->counts.files_reused;
      ++self->done_items;
      self->pending_checked.emplace_back(*e->cap, NowSeconds());
      self->QueueRows();
      self->Pump();
    });
  }

  void Upload(Frame* f, Entry entry, const std::string& entry_path) {
    const std::uint64_t buffers = UploadBuffers(static_cast<std::uint64_t>(entry.st.st_size), env.upload_options);
    ++f->in_flight;
    f->buffers_in_flight += buffers;
    Line("uploading '" + entry_path + "'..");
    auto snapshot = GridSnapshot(*env.servers);
    auto self = shared_from_this();
    // Only what the completion needs: the name, the path and the stat.
    struct Item {
      std::string name, path;
      struct stat st;
    };
    auto item = std::make_shared<Item>(Item{std::move(entry.name), entry_path, entry.st});
    auto finish = [self, f, item, buffers](Result<immutable::UploadResult> up) {
      const Item& e = *item;
      --f->in_flight;
      f->buffers_in_flight -= buffers;
      ++self->done_items;
      if (!up.ok()) {
        const Code code = up.status().code();
        // A file that went away or became unreadable since it was listed is
        // skipped as Tahoe skips an unreadable one; a grid error stops the
        // backup.
        if (code == Code::kIoError || code == Code::kNotFound || code == Code::kPermissionDenied) {
          self->Warn("WARNING: permission denied on file '" + e.path + "'");
          ++self->counts.files_skipped;
        } else if (self->failed.ok()) {
          self->failed = up.status().WithContext(e.path);
        }
        return self->Pump();
      }
      const std::string cap = caps::FormatCap(up->cap);
      self->Line(" " + e.path + " -> " + cap);
      self->AddChild(f, e.name, cap, dirnode::StatMetadata(e.st));
      ++self->counts.files_uploaded;
      // Recorded only now that the upload is done; Tahoe: an upload is also a check.
      self->pending_checked.emplace_back(cap, NowSeconds());
      self->pending_files.push_back(BackupFileRow{e.path, static_cast<std::uint64_t>(e.st.st_size),
                                                  static_cast<std::int64_t>(e.st.st_mtim.tv_sec),
                                                  static_cast<std::int64_t>(e.st.st_ctim.tv_sec), cap});
      self->QueueRows();
      self->Pump();
    };
    if (!snapshot.ok()) {
      return env.loop->Post([finish, st = snapshot.status()]() mutable { finish(st); });
    }
    JobHooks hooks;
    TaskRun* r = run;
    hooks.stop = [r] { return r->cancel_requested(); };
    PutJob(*env.grid, std::move(*snapshot), entry_path, env.upload_options, std::move(hooks), std::move(finish));
  }

  // All of the top frame's children are done: its snapshot directory,
  // reused from the database or packed and uploaded. The children leave the
  // frame for the thread pool, which hashes them, asks the database and
  // writes the body to a spool file, entry by entry.
  void FinishDirectory() {
    Frame* f = stack.back().get();
    auto children = std::make_shared<PackedChildren>(std::move(f->children));
    f->children.clear();
    auto self = shared_from_this();
    auto dirhash = std::make_shared<std::string>();
    auto known = std::make_shared<std::optional<BackupKnown>>();
    auto check = std::make_shared<bool>(false);
    env.loop->Offload(
        [self, children, dirhash, known, check]() -> Status {
          std::vector<std::pair<std::string, std::string>> hashed;
          hashed.reserve(children->size());
          for (const auto& [name, child] : *children) hashed.emplace_back(name, child.cap);
          *dirhash = dirnode::BackupDirHash(std::move(hashed));
          CAIRN_TRY_ASSIGN(*known, self->db->LookupDir(*dirhash));
          if (*known) *check = DueForCheck(**known, NowSeconds());
          return Status();
        },
        [self, f, children, dirhash, known, check](Status st) {
          if (!st.ok()) {
            if (self->failed.ok()) self->failed = st;
            return self->Pump();
          }
          if (*known && *check) {
            // Tahoe's check_backupdb_directory: reused if healthy, else made again.
            const std::string cap = (*known)->cap;
            self->Line("checking " + cap);
            ++self->counts.dirs_checked;
            return self->RunCheck(cap, [self, f, children, dirhash, cap](bool healthy) {
              if (!self->failed.ok() || self->run->cancel_requested()) return self->Pump();
              if (!healthy) {
                self->Line(" creating directory for '" + f->path + "'");
                return self->UploadDirectory(children, *dirhash);
              }
              self->Line(" re-using old directory for '" + f->path + "'");
              ++self->counts.dirs_reused;
              self->pending_checked.emplace_back(cap, NowSeconds());
              self->QueueRows();
              self->DirectoryDone(cap);
            });
          }
          if (*known) {
            self->Line(" re-using old directory for '" + f->path + "'");
            ++self->counts.dirs_reused;
            return self->DirectoryDone((*known)->cap);
          }
          self->Line(" creating directory for '" + f->path + "'");
          self->UploadDirectory(children, *dirhash);
        });
  }

  void UploadDirectory(std::shared_ptr<PackedChildren> children, const std::string& dirhash) {
    auto self = shared_from_this();
    auto spool = std::make_shared<Spool>();
    env.loop->Offload(
        [spool, children, dir = env.spool_dir]() -> Status {
          CAIRN_TRY(CreateSpool(dir, "put", spool.get()));
          // The body is the entries in name order (dirnode::PackBody),
          // written in pieces of about kBodyPiece bytes.
          constexpr std::size_t kBodyPiece = 64 << 10;
          std::string piece;
          std::uint64_t at = 0;
          auto write = [&]() -> Status {
            std::size_t off = 0;
            while (off < piece.size()) {
              ssize_t n = pwrite(spool->fd, piece.data() + off, piece.size() - off, static_cast<off_t>(at + off));
              if (n < 0) {
                if (errno == EINTR) continue;
                return Status::IoError(spool->path + ": " + std::strerror(errno));
              }
              off += static_cast<std::size_t>(n);
            }
            at += piece.size();
            piece.clear();
            return Status();
          };
          for (auto it = children->begin(); it != children->end(); it = children->erase(it)) {
            piece += it->second.entry;
            if (piece.size() >= kBodyPiece) CAIRN_TRY(write());
          }
          return write();
        },
        [self, dirhash, spool, children](Status st) {
          children->clear();
          auto snapshot = st.ok() ? GridSnapshot(*self->env.servers) : Result<std::vector<grid::ServerEntry>>(st);
          if (!snapshot.ok()) {
            if (self->failed.ok()) self->failed = snapshot.status();
            return self->Pump();
          }
          JobHooks hooks;
          TaskRun* r = self->run;
          hooks.stop = [r] { return r->cancel_requested(); };
          PutJob(*self->env.grid, std::move(*snapshot), spool->path, self->env.upload_options, std::move(hooks),
                 [self, dirhash, spool](Result<immutable::UploadResult> up) {
                   if (!up.ok()) {
                     if (self->failed.ok()) self->failed = up.status();
                     return self->Pump();
                   }
                   caps::Cap cap = up->cap;
                   cap.directory = true;
                   const std::string text = caps::FormatCap(cap);
                   ++self->counts.dirs_created;
                   self->pending_dirs.emplace_back(dirhash, text);
                   self->pending_checked.emplace_back(text, NowSeconds());
                   self->QueueRows();
                   self->DirectoryDone(text);
                 });
        });
  }

  void DirectoryDone(const std::string& cap) {
    std::unique_ptr<Frame> f = std::move(stack.back());
    stack.pop_back();
    ++done_items;
    Progress();
    if (stack.empty()) {
      // The root: every row committed, then the answer.
      auto self = shared_from_this();
      return Flush([self, cap] {
        if (!self->failed.ok()) return self->done(self->failed);
        self->done(self->ResultJson(cap));
      });
    }
    AddChild(stack.back().get(), f->name, cap, std::move(f->metadata));
    Schedule();
  }

  Json ResultJson(const std::string& snapshot) const {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "root", snapshot.c_str());
    cJSON_AddNumberToObject(out.get(), "files_uploaded", static_cast<double>(counts.files_uploaded));
    cJSON_AddNumberToObject(out.get(), "files_reused", static_cast<double>(counts.files_reused));
    cJSON_AddNumberToObject(out.get(), "files_skipped", static_cast<double>(counts.files_skipped));
    cJSON_AddNumberToObject(out.get(), "directories_created", static_cast<double>(counts.dirs_created));
    cJSON_AddNumberToObject(out.get(), "directories_reused", static_cast<double>(counts.dirs_reused));
    cJSON_AddNumberToObject(out.get(), "directories_skipped", static_cast<double>(counts.dirs_skipped));
    cJSON_AddNumberToObject(out.get(), "files_checked", static_cast<double>(counts.files_checked));
    cJSON_AddNumberToObject(out.get(), "directories_checked", static_cast<double>(counts.dirs_checked));
    cJSON_AddNumberToObject(out.get(), "elapsed_ms", clock::MonotonicMs() - started_ms);
    cJSON* w = cJSON_AddArrayToObject(out.get(), "warnings");
    for (const std::string& line : warnings) cJSON_AddItemToArray(w, cJSON_CreateString(line.c_str()));
    if (verbose) {
      cJSON* l = cJSON_AddArrayToObject(out.get(), "lines");
      for (const std::string& line : lines) cJSON_AddItemToArray(l, cJSON_CreateString(line.c_str()));
      if (lines_dropped) cJSON_AddNumberToObject(out.get(), "lines_dropped", static_cast<double>(lines_dropped));
    }
    return out;
  }
};

Status StringArray(const cJSON* params, const char* key, std::vector<std::string>* out) {
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(params, key);
  if (!list) return Status();
  if (!cJSON_IsArray(list)) return Status::InvalidArgument(std::string("params.") + key + " must be an array of strings");
  const cJSON* item;
  cJSON_ArrayForEach(item, list) {
    if (!cJSON_IsString(item)) return Status::InvalidArgument(std::string("params.") + key + " must be an array of strings");
    out->emplace_back(item->valuestring);
  }
  return Status();
}

}  // namespace

void BackupRun(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string from, to;
  bool exclude_vcs = false, verbose = false, ignore_timestamps = false;
  std::vector<std::string> excludes;
  Status st = r->String("from", &from, true);
  if (st.ok()) st = r->String("to", &to, true);
  if (st.ok()) st = r->Bool("exclude_vcs", &exclude_vcs);
  if (st.ok()) st = r->Bool("verbose", &verbose);
  if (st.ok()) st = r->Bool("ignore_timestamps", &ignore_timestamps);
  r->Accept("exclude");
  if (st.ok()) st = StringArray(req.params.get(), "exclude", &excludes);
  if (st.ok()) st = r->Finish();
  if (st.ok() && !req.wait) st = Status::InvalidArgument("backup runs two tasks in turn: it cannot answer before they end");
  if (st.ok() && (from.empty() || from[0] != '/')) st = Status::InvalidArgument("params.from must be an absolute path");
  while (st.ok() && from.size() > 1 && from.back() == '/') from.pop_back();
  auto target = st.ok() ? BackupTargetText(to) : Result<std::string>(st);
  auto keys = target.ok() ? BackupResolveKeys(to) : Result<std::vector<LockKey>>(target.status());
  if (!keys.ok()) return reply.Error(keys.status());
  if (exclude_vcs) {
    for (const std::string& name : dirnode::VcsExcludes()) excludes.push_back(name);
  }
  // Two backups of one target never overlap.
  keys->push_back(LockKeys::Backup(*target));

  Env env{&c.loop, &c.servers, &c.grid, {}, c.options.spool_dir, ParentDir(c.options.private_dir) + "/backupdb",
          CheckEnvOf(c)};
  env.upload_options.params.k = c.options.shares_needed;
  env.upload_options.params.n = c.options.shares_total;
  env.upload_options.params.max_segment_size = c.options.max_segment_size;
  env.upload_options.happy = c.options.shares_happy;
  // Mostly new files: the allocations say which shares are there already.
  env.upload_options.list_existing = false;
  auto tools = DirToolsOf(c);

  TaskSpec walk = NewTaskSpec("backup", req, std::move(*keys));
  walk.body = [env, tools, from, to, excludes, verbose, ignore_timestamps](TaskRun& run) {
    TaskRun* runp = &run;
    auto b = std::make_shared<Backup>();
    b->env = env;
    b->run = runp;
    b->from = from;
    b->excludes = excludes;
    b->verbose = verbose;
    b->ignore_timestamps = ignore_timestamps;
    b->started_ms = clock::MonotonicMs();
    b->done = [runp, tools, to](Result<Json> walked) {
      if (!walked.ok()) return runp->Fail(walked.status());
      // Tahoe names the snapshot after the upload, to the second.
      const std::string archive = dirnode::ArchiveName(static_cast<std::int64_t>(clock::UnixMs() / 1000));
      auto result = std::make_shared<Json>(std::move(*walked));
      ResolveBackupTarget(tools, runp, to, [runp, result, archive](Result<Json> found) {
        if (!found.ok()) return runp->Fail(found.status());
        cJSON_AddStringToObject(result->get(), "archive", archive.c_str());
        cJSON_AddItemToObject(result->get(), "target", found->release());
        runp->Succeed(std::move(*result));
      });
    };
    b->Start();
  };
  auto params = std::make_shared<Json>(cJSON_Duplicate(req.params.get(), true));
  ChainTasks(&c.tasks, std::move(reply), std::move(walk), [tools, params, to](const cJSON* walked) -> Result<TaskSpec> {
    Json extra(cJSON_Duplicate(walked, true));
    cJSON_DeleteItemFromObjectCaseSensitive(extra.get(), "target");
    cJSON_DeleteItemFromObjectCaseSensitive(extra.get(), "task");
    const cJSON* root = cJSON_GetObjectItemCaseSensitive(walked, "root");
    const cJSON* archive = cJSON_GetObjectItemCaseSensitive(walked, "archive");
    if (!cJSON_IsString(root) || !cJSON_IsString(archive)) return Status::Internal("backup: no snapshot");
    return SnapshotLinkSpec(tools, params->get(), cJSON_GetObjectItemCaseSensitive(walked, "target"), to,
                            root->valuestring, archive->valuestring, std::move(extra));
  });
}

}  // namespace cairn::control
