// Regression test for the power-cut test's cut 104 (issue 24): the write that
// completes an upload renames its body from incoming/ to shares/XX/ and
// syncs both directories before the commit. Each directory's entries become
// durable only with that directory's fsync, so syncing incoming/ first left,
// for a cut between the two fsyncs, a body with no durable name at all: after
// the reboot the upload (whose earlier ranges LMDB records as written) got a
// new, empty body, and finishing it produced a complete share with zeros
// where the acknowledged ranges were. This file models directory entries as
// a power cut leaves them (a PlatformWrapper that snapshots a directory's
// listing at each SyncDir) and cuts at every directory sync of the
// completing batch. It also checks the store's defence: an upload whose body
// is gone asks for its whole content again instead of completing with holes.
// Loop thread (the fixture's real Loop) and the commit worker, which calls
// the wrapper; the wrapper's state is guarded by its mutex.
#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

// Directory entries as a power cut would leave them: a directory's durable
// names are its listing at its last SyncDir (or at Track()). From the
// `cut_at`-th SyncDir after Arm() on, every SyncDir and SyncData fails (the
// power is off), and that SyncDir does not happen.
class DirEntryModel : public platform::PlatformWrapper {
 public:
  explicit DirEntryModel(platform::Platform* target) : PlatformWrapper(target) {}

  // Takes `dir`'s current listing as durable (a directory synced earlier).
  void Track(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    durable_[dir] = ListLocked(dir);
  }
  void Arm(int cut_at) {
    std::lock_guard<std::mutex> lock(mu_);
    cut_at_ = cut_at;
    dir_syncs_ = 0;
    cut_ = false;
  }
  bool cut() {
    std::lock_guard<std::mutex> lock(mu_);
    return cut_;
  }
  // The names of `dir` that survive the cut (none if it was never synced).
  std::set<std::string> Durable(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = durable_.find(dir);
    return it == durable_.end() ? std::set<std::string>{} : it->second;
  }

  Status SyncDir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_at_ > 0 && (cut_ || ++dir_syncs_ == cut_at_)) {
      cut_ = true;
      return Status::IoError("power cut before fsync of " + dir);
    }
    CAIRN_TRY(PlatformWrapper::SyncDir(dir));
    durable_[dir] = ListLocked(dir);
    return Status();
  }
  Status SyncData(int fd) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cut_) return Status::IoError("power cut");
    }
    return PlatformWrapper::SyncData(fd);
  }

 private:
  std::set<std::string> ListLocked(const std::string& dir) {
    std::vector<std::string> names;
    if (!PlatformWrapper::ListDir(dir, &names).ok()) return {};
    return std::set<std::string>(names.begin(), names.end());
  }

  std::mutex mu_;
  std::map<std::string, std::set<std::string>> durable_;
  int cut_at_ = 0;
  int dir_syncs_ = 0;
  bool cut_ = false;
};

class RenameDurability : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    CloseStore();
    options.platform = &model;
    options.sync_every_write = true;  // the policy of cut 104: the first range is durable when acknowledged
    Reopen();
  }

  // The file name of the body of `si`'s upload in incoming/.
  std::string BodyName(const StorageIndex& si) {
    for (const auto& e : std::filesystem::directory_iterator(dir + "/incoming")) {
      std::string name = e.path().filename();
      if (name.rfind(SiHex(si) + "-", 0) == 0 && name.find(".ranges") == std::string::npos) return name;
    }
    return "";
  }

  // Allocates share 0 of `si`, writes its first half (acknowledged: durable
  // under "always"), then cuts the power at the `cut_at`-th directory sync of
  // the write that completes it. True if the cut happened (false: that batch
  // has fewer directory syncs, and the write was acknowledged).
  bool CompleteWithCut(const StorageIndex& si, int cut_at, std::string* body, std::string* final_dir) {
    EXPECT_TRUE(Allocate(si, {0}, 8).ok());
    auto w = Write(si, 0, 0, "abcd");
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    *body = BodyName(si);
    EXPECT_FALSE(body->empty());
    std::string hex = SiHex(si);
    *final_dir = dir + "/shares/" + hex.substr(0, 2);
    for (const std::string& d : {dir + "/incoming", dir + "/shares", *final_dir}) model.Track(d);
    model.Arm(cut_at);
    auto done = Write(si, 0, 4, "efgh");
    bool cut = model.cut();
    EXPECT_EQ(done.ok(), !cut) << done.status().ToString();
    model.Arm(0);
    return cut;
  }

  // After the cut: the body has a durable name, in incoming/ or (reachable)
  // in shares/XX/.
  void ExpectBodyHasADurableName(const std::string& body, const std::string& final_dir, int cut_at) {
    bool in_incoming = model.Durable(dir + "/incoming").count(body) > 0;
    std::string xx = std::filesystem::path(final_dir).filename();
    bool in_final = model.Durable(dir + "/shares").count(xx) > 0 && model.Durable(final_dir).count(body) > 0;
    EXPECT_TRUE(in_incoming || in_final) << "a cut at directory sync " << cut_at << " of the completing batch "
                                         << "leaves the body " << body << " with no durable name";
  }

  DirEntryModel model{&fault};
};

TEST_F(RenameDurability, EveryCutDuringCompletionIntoANewDirectoryLeavesTheBodyNamed) {
  int cuts = 0;
  for (int cut_at = 1; cut_at < 10; ++cut_at) {
    StorageIndex si = Si(10 + cut_at);  // a new shares/XX each time
    std::string body, final_dir;
    if (!CompleteWithCut(si, cut_at, &body, &final_dir)) break;
    cuts++;
    ExpectBodyHasADurableName(body, final_dir, cut_at);
    Reopen();  // the failed sync is sticky until the store is opened again
  }
  // A new shares/XX: shares/, shares/XX/ and incoming/ are synced.
  EXPECT_EQ(cuts, 3);
}

TEST_F(RenameDurability, EveryCutDuringCompletionIntoAnExistingDirectoryLeavesTheBodyNamed) {
  int cuts = 0;
  for (int cut_at = 1; cut_at < 10; ++cut_at) {
    StorageIndex si = Si(1);
    si[1] = static_cast<std::uint8_t>(cut_at);  // the same shares/XX, a new storage index
    if (cut_at == 1) PutImmutable(Si(1), 5, "existing");
    std::string body, final_dir;
    if (!CompleteWithCut(si, cut_at, &body, &final_dir)) break;
    cuts++;
    ExpectBodyHasADurableName(body, final_dir, cut_at);
    Reopen();
  }
  EXPECT_EQ(cuts, 2);  // shares/XX/ and incoming/
}

TEST_F(RenameDurability, ACompletionRedoneAfterACrashSyncsTheRenameItFinds) {
  // The first completion renamed the body and failed before its commit (a
  // process crash after the rename, or a batch redone in a grown map): the
  // write done again finds the body in shares/XX/ and must make that name
  // durable before the commit that says the share is complete.
  std::string body, final_dir;
  ASSERT_TRUE(CompleteWithCut(Si(1), 1, &body, &final_dir));
  Reopen();  // the same boot: the rename is in the page cache, not durable
  ASSERT_TRUE(std::filesystem::exists(final_dir + "/" + body));
  auto w = Write(Si(1), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(w->complete);
  std::string xx = std::filesystem::path(final_dir).filename();
  EXPECT_TRUE(model.Durable(dir + "/shares").count(xx));
  EXPECT_TRUE(model.Durable(final_dir).count(body)) << "the share is complete in LMDB, its name is not durable";
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
}

TEST_F(RenameDurability, AnExpiredShareIsForgottenOnlyOnceItsUnlinkIsDurable) {
  // The body of a deleted share is unlinked after the commit that dooms it;
  // the next commit forgets the doomed entry. Were the unlink not durable by
  // then, a power cut would bring the body back with nothing naming it.
  CloseStore();
  options.expiry = LeaseExpiry::kAge;
  Reopen();
  PutImmutable(Si(1), 0, "immutable");
  std::string final_dir = dir + "/shares/" + SiHex(Si(1)).substr(0, 2);
  model.Track(final_dir);
  ASSERT_EQ(model.Durable(final_dir).size(), 1u);
  fault.AdvanceWallSeconds(40 * 24 * 3600);
  Sweep();
  ASSERT_EQ(ListImm(Si(1))->size(), 0u);
  ASSERT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "next commit")})->success);
  EXPECT_TRUE(model.Durable(final_dir).empty()) << "the doomed entry is gone, the body's name is still durable";
}

TEST_F(RenameDurability, AnUploadWhoseBodyIsGoneAsksForItAllAgain) {
  // A body lost with its directory entry (as before the fix) must not be
  // replaced by an empty file that later completes with zeros where the
  // recorded ranges were.
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd").ok());
  std::string body = BodyName(Si(1));
  CloseStore();
  std::filesystem::remove(dir + "/incoming/" + body);
  Reopen();
  auto w = Write(Si(1), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_FALSE(w->complete);
  EXPECT_EQ(w->required, (std::vector<Range>{{0, 4}}));
  w = Write(Si(1), 0, 0, "abcd");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->complete);
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
}

}  // namespace
}  // namespace cairn::store
