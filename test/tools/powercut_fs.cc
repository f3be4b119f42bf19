// powercut_fs: a FUSE file system for tests that can lose power. Usage:
//
//   powercut_fs BACKING MOUNTPOINT [--seed N] [--tear] [--fsync-delay-ms N] [--size-limit BYTES]
//               [--cut-at-sync N]
//
// At mount it loads the plain directory tree in BACKING (regular files,
// directories, sockets) and serves it at MOUNTPOINT; it prints "ready" on
// stdout once mounted. Everything it serves is held in memory, twice: the
// *current* state (what reads, stat and readdir see) and the *durable*
// state (what survives a power cut). A change reaches the durable state only
// as a disk's contract promises:
//
//   * a file's bytes and size: fsync(2) or fdatasync(2) of the file (both copy
//     the whole current content: a data sync also makes the size durable);
//     a write through a descriptor opened with O_SYNC or O_DSYNC makes that
//     write's bytes durable, and the size up to its end (LMDB writes its
//     meta pages so);
//   * a directory's entries (create, mknod, mkdir, unlink, rmdir, rename):
//     fsync(2) of that directory, which makes all of its current entries
//     durable. A rename is two entry changes, one in each directory, each
//     durable with its own directory's fsync (the strictest reading of
//     POSIX: after a cut the file may have either name, both, or neither).
//     A directory whose own entry in its parent is not durable is not
//     reachable after a cut, whatever was synced inside it.
//
// Signals (the test's commands):
//
//   SIGUSR1  cut the power: from this instant every request fails with EIO;
//            with --tear, the most recent write not made durable since is
//            torn: a prefix of it ending at a 512-byte boundary of the file
//            (or its end), chosen with the seeded generator, reaches the
//            durable state, as a disk that lost power mid-write leaves it;
//            every other change not durable is dropped; BACKING is rewritten
//            to the durable state; the mount is detached and the process
//            exits 0. The caller then kills (or has killed) the processes
//            using the mount; a new powercut_fs on BACKING is the machine
//            coming back up.
//   SIGUSR2  with --cut-at-sync N: arm the counter of sync points (below);
//            it prints "armed" once armed.
//   SIGTERM, SIGINT  a clean shutdown: BACKING is rewritten to the current
//            state (as an orderly unmount syncs everything), then as above.
//
// --fsync-delay-ms N makes every fsync, fdatasync and directory fsync take N
// ms more (a slow disk; requests of other threads go on meanwhile). The
// kernel follows an O_SYNC/O_DSYNC write through FUSE with an fsync of the
// file once the write has returned, so such a write is delayed too, and
// without the page cache's pages of it held locked meanwhile (a delay in
// the write itself would hold them, and stall every reader of a mapping of
// them, as no disk does); that fsync also makes the rest of the file
// durable, more than O_DSYNC promises.
// --cut-at-sync N (a test that walks every point of one operation): once
// armed, the Nth sync point cuts the power itself, as SIGUSR1 does, instead
// of happening. Sync points are fsync and fdatasync of a file, fsync of a
// directory and writes through an O_SYNC/O_DSYNC descriptor. It prints
// "cut at sync point N: <what> of <name>" first.
// --size-limit BYTES makes it a file system of that size: writes and
// truncations that would make the files' current bytes exceed it fail with
// ENOSPC, and statfs reports the space left.
//
// What it supports: regular files (read, write, pwrite, truncate,
// ftruncate, O_TRUNC, O_APPEND through the kernel), directories, UNIX
// socket nodes (bind(2) of cairnd's control socket), rename (not
// RENAME_EXCHANGE), fsync/fdatasync of files and directories, statfs,
// shared mappings. The kernel keeps mappings in its page cache and sends
// their dirty pages as ordinary writes at writeback; msync(MS_SYNC) arrives
// as an fsync. So a writable shared mapping is handled as the disk would:
// what is synced is durable, the rest is not. LMDB's lock file (lock.mdb) is
// exactly such a mapping and is never synced: after a cut it comes back
// empty or as it was at its last durable point, and LMDB, the first process
// to open the environment again, reinitialises it (its contents are only
// reader slots and the writer mutex, which must not survive a reboot
// anyway). mmap reads of data.mdb read the current state.
//
// What it does not support, and refuses loudly (a line "powercut_fs:
// unsupported ..." on stderr and an error to the caller): hard links,
// symbolic links, device nodes and FIFOs, fallocate, copy_file_range,
// setting extended attributes, RENAME_EXCHANGE. Reading extended attributes
// answers that there are none (true: none can be set). File times are kept
// only in memory and are not durable; ownership is the mounter's.
//
// Threading: libfuse's multi-threaded loop calls the handlers on its
// threads; one mutex guards the whole model. A fsync's delay is slept before
// taking it. The signal thread takes it to cut.
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

enum class Kind { kFile, kDir, kSocket };

struct Node {
  Kind kind = Kind::kFile;
  mode_t perm = 0644;
  std::string cur;  // current bytes (files)
  std::string dur;  // durable bytes (files)
  std::map<std::string, fuse_ino_t> cur_entries;  // directories
  std::map<std::string, fuse_ino_t> dur_entries;
  std::uint64_t cur_links = 0;  // names in the current namespace
  std::uint64_t opens = 0;
  struct timespec mtime {};
};

struct Handle {
  fuse_ino_t ino = 0;
  int flags = 0;
};

struct DirHandle {
  std::vector<std::pair<std::string, fuse_ino_t>> entries;
};

struct LastWrite {
  bool valid = false;
  fuse_ino_t ino = 0;
  std::uint64_t off = 0;
  std::uint64_t len = 0;
};

struct Fs {
  std::mutex mu;
  std::unordered_map<fuse_ino_t, std::unique_ptr<Node>> nodes;
  fuse_ino_t next_ino = FUSE_ROOT_ID + 1;
  bool cut = false;
  std::uint64_t used = 0;  // current bytes of all files
  std::uint64_t size_limit = 0;
  std::uint64_t fsync_delay_ms = 0;
  bool tear = false;
  std::mt19937_64 rng;
  LastWrite last_write;
  std::string backing;
  std::string mountpoint;
  std::uint64_t unsupported = 0;
  std::uint64_t cut_at_sync = 0;  // 0: never
  bool armed = false;
  std::uint64_t sync_points = 0;  // since armed
  fuse_session* se = nullptr;
};

Fs g_fs;

void Unsupported(fuse_req_t req, const char* what, int err) {
  std::fprintf(stderr, "powercut_fs: unsupported %s (refused: %s)\n", what, std::strerror(err));
  {
    std::lock_guard<std::mutex> lock(g_fs.mu);
    g_fs.unsupported++;
  }
  fuse_reply_err(req, err);
}

Node* Find(fuse_ino_t ino) {
  auto it = g_fs.nodes.find(ino);
  return it == g_fs.nodes.end() ? nullptr : it->second.get();
}

fuse_ino_t NewNode(Kind kind, mode_t perm) {
  fuse_ino_t ino = g_fs.next_ino++;
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->perm = perm & 07777;
  clock_gettime(CLOCK_REALTIME, &n->mtime);
  g_fs.nodes[ino] = std::move(n);
  return ino;
}

// Sets a file's current size, counting the space; false (ENOSPC) if it would
// pass the size limit.
bool Resize(Node* n, std::uint64_t size) {
  std::uint64_t old = n->cur.size();
  if (size > old && g_fs.size_limit != 0 && g_fs.used + (size - old) > g_fs.size_limit) return false;
  n->cur.resize(size, '\0');
  g_fs.used = g_fs.used - old + size;
  return true;
}

// A node no name and no descriptor reaches any more keeps only its durable
// bytes (an unlink that is not yet durable may still be undone by a cut).
void MaybeRelease(Node* n) {
  if (n->cur_links == 0 && n->opens == 0 && n->kind == Kind::kFile) {
    g_fs.used -= n->cur.size();
    std::string().swap(n->cur);
  }
}

void SyncFile(fuse_ino_t ino, Node* n) {
  n->dur = n->cur;
  if (g_fs.last_write.valid && g_fs.last_write.ino == ino) g_fs.last_write.valid = false;
}

void Attr(fuse_ino_t ino, const Node* n, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_blksize = 4096;
  switch (n->kind) {
    case Kind::kDir:
      st->st_mode = S_IFDIR | n->perm;
      st->st_nlink = 2;
      break;
    case Kind::kSocket:
      st->st_mode = S_IFSOCK | n->perm;
      st->st_nlink = 1;
      break;
    case Kind::kFile:
      st->st_mode = S_IFREG | n->perm;
      st->st_nlink = n->cur_links;
      st->st_size = static_cast<off_t>(n->cur.size());
      st->st_blocks = static_cast<blkcnt_t>((n->cur.size() + 511) / 512);
      break;
  }
  st->st_mtim = n->mtime;
  st->st_ctim = n->mtime;
  st->st_atim = n->mtime;
}

void ReplyEntry(fuse_req_t req, fuse_ino_t ino, const Node* n) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = ino;
  Attr(ino, n, &e.attr);
  e.attr_timeout = 0;
  e.entry_timeout = 0;
  fuse_reply_entry(req, &e);
}

// Every handler starts so: after the cut, nothing answers.
#define LOCK_OR_EIO(req)                          \
  std::unique_lock<std::mutex> lock(g_fs.mu);    \
  if (g_fs.cut) {                                \
    fuse_reply_err(req, EIO);                    \
    return;                                      \
  }

void SlowDisk() {
  if (g_fs.fsync_delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(g_fs.fsync_delay_ms));
}

void Tear();
[[noreturn]] void Finish(bool durable);

// A name of `ino` in the current namespace (for the sync point's line).
std::string NameOf(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return "/";
  for (const auto& [dir_ino, node] : g_fs.nodes) {
    for (const auto& [name, child] : node->cur_entries) {
      if (child == ino) return name;
    }
  }
  return "?";
}

// Called with the lock held at each sync point, before it takes effect:
// with --cut-at-sync armed, the Nth cuts the power here and never returns.
void SyncPoint(const char* what, fuse_ino_t ino) {
  if (!g_fs.armed || ++g_fs.sync_points != g_fs.cut_at_sync) return;
  g_fs.cut = true;
  std::printf("cut at sync point %llu: %s of %s\n", static_cast<unsigned long long>(g_fs.sync_points), what,
              NameOf(ino).c_str());
  if (g_fs.tear) Tear();
  Finish(true);
}

// --- the handlers ---------------------------------------------------------

void OpInit(void*, fuse_conn_info* conn) {
  // Every write must reach us when the caller makes it, and the page cache
  // must never be dropped behind a mapping's back.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  LOCK_OR_EIO(req);
  Node* p = Find(parent);
  if (!p || p->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  auto it = p->cur_entries.find(name);
  if (it == p->cur_entries.end()) return (void)fuse_reply_err(req, ENOENT);
  ReplyEntry(req, it->second, Find(it->second));
}

void OpForget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  struct stat st;
  Attr(ino, n, &st);
  fuse_reply_attr(req, &st, 0);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (n->kind != Kind::kFile) return (void)fuse_reply_err(req, EISDIR);
    if (!Resize(n, static_cast<std::uint64_t>(attr->st_size))) return (void)fuse_reply_err(req, ENOSPC);
    clock_gettime(CLOCK_REALTIME, &n->mtime);
  }
  if (to_set & FUSE_SET_ATTR_MODE) n->perm = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_MTIME) n->mtime = attr->st_mtim;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) clock_gettime(CLOCK_REALTIME, &n->mtime);
  struct stat st;
  Attr(ino, n, &st);
  fuse_reply_attr(req, &st, 0);
}

// Adds a new node named `name` in `parent`, or fails with an errno.
int AddEntry(fuse_ino_t parent, const char* name, Kind kind, mode_t perm, fuse_ino_t* out) {
  Node* p = Find(parent);
  if (!p || p->kind != Kind::kDir) return ENOTDIR;
  if (std::strlen(name) > 255) return ENAMETOOLONG;
  if (p->cur_entries.count(name)) return EEXIST;
  fuse_ino_t ino = NewNode(kind, perm);
  p->cur_entries[name] = ino;
  Find(ino)->cur_links = 1;
  *out = ino;
  return 0;
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  Kind kind;
  if (S_ISREG(mode)) {
    kind = Kind::kFile;
  } else if (S_ISSOCK(mode)) {
    kind = Kind::kSocket;
  } else {
    return Unsupported(req, "mknod of a device node or FIFO", EPERM);
  }
  LOCK_OR_EIO(req);
  fuse_ino_t ino = 0;
  if (int err = AddEntry(parent, name, kind, mode, &ino)) return (void)fuse_reply_err(req, err);
  ReplyEntry(req, ino, Find(ino));
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  LOCK_OR_EIO(req);
  fuse_ino_t ino = 0;
  if (int err = AddEntry(parent, name, Kind::kDir, mode, &ino)) return (void)fuse_reply_err(req, err);
  ReplyEntry(req, ino, Find(ino));
}

// Drops the name `name` from `p` (current namespace only).
void DropName(Node* p, const std::string& name) {
  auto it = p->cur_entries.find(name);
  Node* n = Find(it->second);
  p->cur_entries.erase(it);
  n->cur_links--;
  MaybeRelease(n);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  LOCK_OR_EIO(req);
  Node* p = Find(parent);
  if (!p || p->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  auto it = p->cur_entries.find(name);
  if (it == p->cur_entries.end()) return (void)fuse_reply_err(req, ENOENT);
  if (Find(it->second)->kind == Kind::kDir) return (void)fuse_reply_err(req, EISDIR);
  DropName(p, name);
  fuse_reply_err(req, 0);
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  LOCK_OR_EIO(req);
  Node* p = Find(parent);
  if (!p || p->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  auto it = p->cur_entries.find(name);
  if (it == p->cur_entries.end()) return (void)fuse_reply_err(req, ENOENT);
  Node* d = Find(it->second);
  if (d->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  if (!d->cur_entries.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
  DropName(p, name);
  fuse_reply_err(req, 0);
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
              unsigned int flags) {
  if (flags & RENAME_EXCHANGE) return Unsupported(req, "rename with RENAME_EXCHANGE", EINVAL);
  LOCK_OR_EIO(req);
  Node* p = Find(parent);
  Node* q = Find(newparent);
  if (!p || !q || p->kind != Kind::kDir || q->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  auto it = p->cur_entries.find(name);
  if (it == p->cur_entries.end()) return (void)fuse_reply_err(req, ENOENT);
  fuse_ino_t ino = it->second;
  Node* n = Find(ino);
  auto target = q->cur_entries.find(newname);
  if (target != q->cur_entries.end()) {
    if (target->second == ino) return (void)fuse_reply_err(req, 0);
    if (flags & RENAME_NOREPLACE) return (void)fuse_reply_err(req, EEXIST);
    Node* t = Find(target->second);
    if (t->kind == Kind::kDir && n->kind != Kind::kDir) return (void)fuse_reply_err(req, EISDIR);
    if (t->kind != Kind::kDir && n->kind == Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
    if (t->kind == Kind::kDir && !t->cur_entries.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
    DropName(q, newname);
  }
  p->cur_entries.erase(name);
  q->cur_entries[newname] = ino;
  fuse_reply_err(req, 0);
}

void OpLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { Unsupported(req, "link (hard links)", EPERM); }

void OpSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { Unsupported(req, "symlink", EPERM); }

void OpReadlink(fuse_req_t req, fuse_ino_t) { Unsupported(req, "readlink", EINVAL); }

void OpenHandle(fuse_ino_t ino, Node* n, fuse_file_info* fi) {
  auto* h = new Handle{ino, fi->flags};
  n->opens++;
  fi->fh = reinterpret_cast<std::uint64_t>(h);
  fi->direct_io = 0;
  fi->keep_cache = 0;
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (n->kind == Kind::kDir) return (void)fuse_reply_err(req, EISDIR);
  if (n->kind == Kind::kSocket) return (void)fuse_reply_err(req, ENXIO);
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) Resize(n, 0);
  OpenHandle(ino, n, fi);
  fuse_reply_open(req, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  LOCK_OR_EIO(req);
  Node* p = Find(parent);
  if (!p || p->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  fuse_ino_t ino = 0;
  auto it = p->cur_entries.find(name);
  if (it != p->cur_entries.end()) {
    if (fi->flags & O_EXCL) return (void)fuse_reply_err(req, EEXIST);
    ino = it->second;
    Node* n = Find(ino);
    if (n->kind != Kind::kFile) return (void)fuse_reply_err(req, EISDIR);
    if (fi->flags & O_TRUNC) Resize(n, 0);
  } else if (int err = AddEntry(parent, name, Kind::kFile, mode, &ino)) {
    return (void)fuse_reply_err(req, err);
  }
  Node* n = Find(ino);
  OpenHandle(ino, n, fi);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = ino;
  Attr(ino, n, &e.attr);
  fuse_reply_create(req, &e, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  std::uint64_t o = static_cast<std::uint64_t>(off);
  if (o >= n->cur.size()) return (void)fuse_reply_buf(req, nullptr, 0);
  std::size_t len = std::min<std::uint64_t>(size, n->cur.size() - o);
  fuse_reply_buf(req, n->cur.data() + o, len);
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<Handle*>(fi->fh);  // its flags never change
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  std::uint64_t o = static_cast<std::uint64_t>(off);
  if (h->flags & O_DSYNC) SyncPoint("O_DSYNC write", ino);
  if (o + size > n->cur.size() && !Resize(n, o + size)) return (void)fuse_reply_err(req, ENOSPC);
  std::memcpy(n->cur.data() + o, buf, size);
  clock_gettime(CLOCK_REALTIME, &n->mtime);
  g_fs.last_write = LastWrite{true, ino, o, size};
  // O_SYNC and O_DSYNC: this write (only) is durable when it returns.
  if (h->flags & O_DSYNC) {
    if (n->dur.size() < o + size) n->dur.resize(o + size, '\0');
    std::memcpy(n->dur.data() + o, buf, size);
    g_fs.last_write.valid = false;
  }
  fuse_reply_write(req, size);
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  LOCK_OR_EIO(req);
  fuse_reply_err(req, 0);
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::lock_guard<std::mutex> lock(g_fs.mu);
  delete reinterpret_cast<Handle*>(fi->fh);
  if (Node* n = Find(ino)) {
    n->opens--;
    MaybeRelease(n);
  }
  fuse_reply_err(req, 0);
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  SlowDisk();
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  SyncPoint(datasync ? "fdatasync" : "fsync", ino);
  SyncFile(ino, n);
  fuse_reply_err(req, 0);
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (n->kind != Kind::kDir) return (void)fuse_reply_err(req, ENOTDIR);
  auto* h = new DirHandle;
  h->entries.assign(n->cur_entries.begin(), n->cur_entries.end());
  fi->fh = reinterpret_cast<std::uint64_t>(h);
  fuse_reply_open(req, fi);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  LOCK_OR_EIO(req);
  auto* h = reinterpret_cast<DirHandle*>(fi->fh);
  std::string buf(size, '\0');
  std::size_t used = 0;
  // Offsets: 1 is ".", 2 is "..", 3 + i is entry i.
  for (off_t i = off; i < static_cast<off_t>(h->entries.size()) + 2; ++i) {
    struct stat st;
    std::memset(&st, 0, sizeof st);
    std::string name;
    if (i == 0 || i == 1) {
      name = i == 0 ? "." : "..";
      st.st_ino = ino;
      st.st_mode = S_IFDIR;
    } else {
      const auto& e = h->entries[static_cast<std::size_t>(i - 2)];
      name = e.first;
      st.st_ino = e.second;
      Node* n = Find(e.second);
      st.st_mode = n && n->kind == Kind::kDir ? S_IFDIR : (n && n->kind == Kind::kSocket ? S_IFSOCK : S_IFREG);
    }
    std::size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, i + 1);
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  SlowDisk();
  LOCK_OR_EIO(req);
  Node* n = Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  SyncPoint("directory fsync", ino);
  n->dur_entries = n->cur_entries;
  fuse_reply_err(req, 0);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  LOCK_OR_EIO(req);
  struct statvfs s;
  std::memset(&s, 0, sizeof s);
  const std::uint64_t total = g_fs.size_limit ? g_fs.size_limit : (1ull << 40);
  s.f_bsize = 4096;
  s.f_frsize = 4096;
  s.f_blocks = total / 4096;
  s.f_bfree = g_fs.used >= total ? 0 : (total - g_fs.used) / 4096;
  s.f_bavail = s.f_bfree;
  s.f_files = 1 << 20;
  s.f_ffree = (1 << 20) - g_fs.nodes.size();
  s.f_favail = s.f_ffree;
  s.f_namemax = 255;
  fuse_reply_statfs(req, &s);
}

void OpSetxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  Unsupported(req, "setxattr", ENOTSUP);
}

void OpGetxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { fuse_reply_err(req, ENODATA); }

void OpListxattr(fuse_req_t req, fuse_ino_t, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, 0);
  fuse_reply_buf(req, nullptr, 0);
}

void OpFallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  Unsupported(req, "fallocate", EOPNOTSUPP);
}

void OpCopyFileRange(fuse_req_t req, fuse_ino_t, off_t, fuse_file_info*, fuse_ino_t, off_t, fuse_file_info*, size_t,
                     int) {
  Unsupported(req, "copy_file_range", EOPNOTSUPP);
}

// --- loading and saving BACKING --------------------------------------------

bool Load(const std::string& path, fuse_ino_t dir_ino) {
  DIR* d = opendir(path.c_str());
  if (!d) {
    std::fprintf(stderr, "powercut_fs: %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  bool ok = true;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string child = path + "/" + name;
    struct stat st;
    if (lstat(child.c_str(), &st) != 0) {
      ok = false;
      break;
    }
    Kind kind;
    if (S_ISDIR(st.st_mode)) {
      kind = Kind::kDir;
    } else if (S_ISREG(st.st_mode)) {
      kind = Kind::kFile;
    } else if (S_ISSOCK(st.st_mode)) {
      kind = Kind::kSocket;
    } else {
      std::fprintf(stderr, "powercut_fs: unsupported file type in the backing tree: %s\n", child.c_str());
      ok = false;
      break;
    }
    fuse_ino_t ino = NewNode(kind, st.st_mode);
    Node* n = Find(ino);
    n->cur_links = 1;
    Node* parent = Find(dir_ino);
    parent->cur_entries[name] = ino;
    parent->dur_entries[name] = ino;
    if (kind == Kind::kDir) {
      ok = Load(child, ino);
    } else if (kind == Kind::kFile) {
      int fd = open(child.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        ok = false;
        break;
      }
      n->cur.resize(static_cast<std::size_t>(st.st_size));
      std::size_t got = 0;
      while (got < n->cur.size()) {
        ssize_t r = pread(fd, n->cur.data() + got, n->cur.size() - got, static_cast<off_t>(got));
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
      }
      close(fd);
      if (got != n->cur.size()) ok = false;
      n->dur = n->cur;
      g_fs.used += n->cur.size();
    }
    if (!ok) break;
  }
  closedir(d);
  return ok;
}

void RemoveTree(const std::string& path, bool keep_top) {
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      struct stat st;
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child, false);
      } else {
        unlink(child.c_str());
      }
    }
    closedir(d);
  }
  if (!keep_top) rmdir(path.c_str());
}

// Writes the durable (or, for a clean shutdown, the current) tree under
// `path`. A file reachable by two names is written under both.
bool Save(const std::string& path, fuse_ino_t dir_ino, bool durable) {
  Node* dir = Find(dir_ino);
  const auto& entries = durable ? dir->dur_entries : dir->cur_entries;
  bool ok = true;
  for (const auto& [name, ino] : entries) {
    Node* n = Find(ino);
    std::string child = path + "/" + name;
    if (n->kind == Kind::kDir) {
      ok = mkdir(child.c_str(), n->perm | 0700) == 0 && Save(child, ino, durable);
    } else if (n->kind == Kind::kSocket) {
      ok = mknod(child.c_str(), S_IFSOCK | n->perm, 0) == 0;
    } else {
      const std::string& bytes = durable ? n->dur : n->cur;
      int fd = open(child.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, n->perm | 0600);
      ok = fd >= 0;
      std::size_t put = 0;
      while (ok && put < bytes.size()) {
        ssize_t w = write(fd, bytes.data() + put, bytes.size() - put);
        if (w <= 0) ok = false;
        put += w > 0 ? static_cast<std::size_t>(w) : 0;
      }
      if (fd >= 0) close(fd);
    }
    if (!ok) {
      std::fprintf(stderr, "powercut_fs: writing %s: %s\n", child.c_str(), std::strerror(errno));
      return false;
    }
  }
  return true;
}

// Tears the last write not made durable since (see the file comment).
void Tear() {
  const LastWrite& w = g_fs.last_write;
  if (!w.valid) {
    std::printf("tear none\n");
    return;
  }
  Node* n = Find(w.ino);
  std::uint64_t end = w.off + w.len;
  if (!n || n->cur.size() < end) {
    std::printf("tear none\n");
    return;
  }
  std::vector<std::uint64_t> cuts = {w.off};
  for (std::uint64_t b = (w.off / 512 + 1) * 512; b < end; b += 512) cuts.push_back(b);
  cuts.push_back(end);
  std::uint64_t keep = cuts[g_fs.rng() % cuts.size()];
  if (n->dur.size() < keep) n->dur.resize(keep, '\0');
  std::memcpy(n->dur.data() + w.off, n->cur.data() + w.off, keep - w.off);
  std::printf("tear ino %llu write [%llu, %llu) kept to %llu\n", static_cast<unsigned long long>(w.ino),
              static_cast<unsigned long long>(w.off), static_cast<unsigned long long>(end),
              static_cast<unsigned long long>(keep));
}

[[noreturn]] void Finish(bool durable) {
  RemoveTree(g_fs.backing, true);
  bool ok = Save(g_fs.backing, FUSE_ROOT_ID, durable);
  sync();
  umount2(g_fs.mountpoint.c_str(), MNT_DETACH);
  std::printf("%s unsupported=%llu\n", durable ? "cut" : "stopped", static_cast<unsigned long long>(g_fs.unsupported));
  std::fflush(stdout);
  // The /dev/fuse descriptor closes with the process: the kernel aborts the
  // connection, so a process still using the mount gets ENOTCONN.
  _exit(ok ? 0 : 1);
}

void SignalThread(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    std::unique_lock<std::mutex> lock(g_fs.mu);
    if (sig == SIGUSR2) {
      g_fs.armed = g_fs.cut_at_sync != 0;
      g_fs.sync_points = 0;
      std::printf("%s\n", g_fs.armed ? "armed" : "not armed (no --cut-at-sync)");
      continue;
    }
    g_fs.cut = true;
    if (sig == SIGUSR1) {
      if (g_fs.tear) Tear();
      Finish(true);
    }
    Finish(false);
  }
}

int Usage() {
  std::fprintf(stderr,
               "usage: powercut_fs BACKING MOUNTPOINT [--seed N] [--tear] [--fsync-delay-ms N] "
               "[--size-limit BYTES] [--cut-at-sync N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  g_fs.backing = argv[1];
  g_fs.mountpoint = argv[2];
  std::uint64_t seed = 1;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tear") {
      g_fs.tear = true;
    } else if (i + 1 < argc &&
               (a == "--seed" || a == "--fsync-delay-ms" || a == "--size-limit" || a == "--cut-at-sync")) {
      std::uint64_t v = std::strtoull(argv[++i], nullptr, 10);
      if (a == "--cut-at-sync") g_fs.cut_at_sync = v;
      if (a == "--seed") seed = v;
      if (a == "--fsync-delay-ms") g_fs.fsync_delay_ms = v;
      if (a == "--size-limit") g_fs.size_limit = v;
    } else {
      return Usage();
    }
  }
  g_fs.rng.seed(seed);
  setvbuf(stdout, nullptr, _IOLBF, 0);

  auto root = std::make_unique<Node>();
  root->kind = Kind::kDir;
  root->perm = 0755;
  root->cur_links = 1;
  g_fs.nodes[FUSE_ROOT_ID] = std::move(root);
  if (!Load(g_fs.backing, FUSE_ROOT_ID)) return 1;

  // The signals are taken by one thread; every other thread (libfuse's
  // workers too) inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.symlink = OpSymlink;
  ops.readlink = OpReadlink;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.fallocate = OpFallocate;
  ops.copy_file_range = OpCopyFileRange;

  char arg0[] = "powercut_fs";
  char arg1[] = "-o";
  char arg2[] = "fsname=powercut,subtype=powercut";
  char* fargv[] = {arg0, arg1, arg2, nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, fargv);
  g_fs.se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (!g_fs.se) return 1;
  if (fuse_session_mount(g_fs.se, g_fs.mountpoint.c_str()) != 0) return 1;
  std::thread(SignalThread, set).detach();
  std::printf("ready\n");
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 16);
  int rc = fuse_session_loop_mt(g_fs.se, cfg);
  fuse_loop_cfg_destroy(cfg);
  return rc == 0 ? 0 : 1;
}
