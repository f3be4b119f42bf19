// Immutable buckets: allocate, chunk writes (written once), completion,
// close, abort, reads, lists, advisories, persistence and crash leftovers.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

using Buckets = StoreTest;

TEST_F(Buckets, AllocateReportsAlreadyHaveAndAllocated) {
  PutImmutable(Si(1), 2, "complete share");
  auto a = Allocate(Si(1), {0, 1, 2}, 10, "other-secret");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->already_have, (std::vector<ShareNum>{2}));
  EXPECT_EQ(a->allocated, (std::vector<ShareNum>{0, 1}));
  // In progress (any uploader): in neither set; already_have lists every
  // complete share of the storage index, not only the requested ones.
  auto again = Allocate(Si(1), {1, 3}, 10, "third");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_have, (std::vector<ShareNum>{2}));
  EXPECT_EQ(again->allocated, (std::vector<ShareNum>{3}));
}

TEST_F(Buckets, ChunksCompleteTheShareWhichBecomesReadable) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 10).ok());
  auto w1 = Write(Si(1), 0, 0, "01234");
  ASSERT_TRUE(w1.ok());
  EXPECT_FALSE(w1->complete);
  EXPECT_EQ(w1->required, (std::vector<Range>{{5, 10}}));
  EXPECT_EQ(ListImm(Si(1))->size(), 0u);  // in progress: invisible
  EXPECT_EQ(ReadImm(Si(1), 0, 0, 10).status().code(), Code::kNotFound);
  auto w2 = Write(Si(1), 0, 5, "56789");
  ASSERT_TRUE(w2.ok());
  EXPECT_TRUE(w2->complete);
  EXPECT_TRUE(w2->required.empty());
  EXPECT_EQ(*ListImm(Si(1)), (std::vector<ShareNum>{0}));
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 10), "0123456789");
  EXPECT_EQ(*ReadImm(Si(1), 0, 3, 4), "3456");
  EXPECT_EQ(*ReadImm(Si(1), 0, 8, 100), "89");  // truncated at the end
  EXPECT_EQ(*ReadImm(Si(1), 0, 10, 5), "");      // at the end: empty
  EXPECT_EQ(*ReadImm(Si(1), 0, 50, 5), "");
  // After completion no upload is in progress.
  EXPECT_EQ(Write(Si(1), 0, 0, "0").status().code(), Code::kNotFound);
}

TEST_F(Buckets, OverlapsMustCarryTheSameBytes) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 10).ok());
  ASSERT_TRUE(Write(Si(1), 0, 2, "2345").ok());
  EXPECT_TRUE(Write(Si(1), 0, 2, "2345").ok());  // the same again
  EXPECT_TRUE(Write(Si(1), 0, 4, "4567").ok());  // overlap, same bytes
  auto bad = Write(Si(1), 0, 0, "01X3");
  EXPECT_EQ(bad.status().code(), Code::kConflict) << bad.status().ToString();
  // Nothing of the conflicting write landed: its first bytes are still missing.
  auto w = Write(Si(1), 0, 0, "01");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->required, (std::vector<Range>{{8, 10}}));
  ASSERT_TRUE(Write(Si(1), 0, 8, "89")->complete);
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 10), "0123456789");
}

TEST_F(Buckets, WrongSecretPastTheEndAndUnknownShare) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  EXPECT_EQ(Write(Si(1), 0, 0, "ab", "wrong").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(Write(Si(1), 0, 3, "ab").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Write(Si(1), 1, 0, "ab").status().code(), Code::kNotFound);
  EXPECT_EQ(Write(Si(2), 0, 0, "ab").status().code(), Code::kNotFound);
}

TEST_F(Buckets, CloseOnlyWhenComplete) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "ab").ok());
  Status st = StatusCall([&](auto cb) { store->CloseBucket(Si(1), 0, "upload-secret", std::move(cb)); });
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("[2, 4)"), std::string_view::npos) << st.ToString();
  EXPECT_EQ(StatusCall([&](auto cb) { store->CloseBucket(Si(1), 0, "nope", std::move(cb)); }).code(),
            Code::kUnauthenticated);
  ASSERT_TRUE(Write(Si(1), 0, 2, "cd").ok());
  EXPECT_TRUE(StatusCall([&](auto cb) { store->CloseBucket(Si(1), 0, "upload-secret", std::move(cb)); }).ok());
}

TEST_F(Buckets, AbortNeedsTheSecretAndFreesTheSlot) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "ab").ok());
  auto abort = [&](const std::string& secret, ShareNum n = 0) {
    return StatusCall([&](auto cb) { store->Abort(Si(1), n, secret, std::move(cb)); });
  };
  EXPECT_EQ(abort("wrong").code(), Code::kUnauthenticated);
  EXPECT_TRUE(abort("upload-secret").ok());
  EXPECT_EQ(abort("upload-secret").code(), Code::kNotFound);
  EXPECT_EQ(Write(Si(1), 0, 2, "cd").status().code(), Code::kNotFound);
  // The share can be allocated again, by anyone, and starts empty.
  auto a = Allocate(Si(1), {0}, 4, "new-secret");
  EXPECT_EQ(a->allocated, (std::vector<ShareNum>{0}));
  auto w = Write(Si(1), 0, 0, "xy", "new-secret");
  ASSERT_TRUE(w.ok()) << w.status().ToString();  // no conflict with the aborted bytes
  EXPECT_EQ(w->required, (std::vector<Range>{{2, 4}}));
  PutImmutable(Si(1), 5, "done");
  EXPECT_EQ(abort("upload-secret", 5).code(), Code::kFailedPrecondition);  // complete
  EXPECT_EQ(store->stats().shares, 1u);
}

TEST_F(Buckets, CorruptionAdvisoriesNeedAShare) {
  PutImmutable(Si(1), 0, "data");
  EXPECT_TRUE(StatusCall([&](auto cb) { store->AdviseCorrupt(false, Si(1), 0, "bad hash", std::move(cb)); }).ok());
  EXPECT_EQ(StatusCall([&](auto cb) { store->AdviseCorrupt(false, Si(1), 1, "x", std::move(cb)); }).code(),
            Code::kNotFound);
  EXPECT_EQ(StatusCall([&](auto cb) { store->AdviseCorrupt(true, Si(1), 0, "x", std::move(cb)); }).code(),
            Code::kNotFound);
  // Bounded: many advisories are accepted, only the first few are kept.
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(StatusCall([&](auto cb) { store->AdviseCorrupt(false, Si(1), 0, "again", std::move(cb)); }).ok());
  }
}

TEST_F(Buckets, CompleteSharesAndUploadsSurviveAReopen) {
  PutImmutable(Si(1), 0, "persisted");
  ASSERT_TRUE(Allocate(Si(2), {0}, 6).ok());
  ASSERT_TRUE(Write(Si(2), 0, 0, "abc").ok());
  Reopen();
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 100), "persisted");
  auto w = Write(Si(2), 0, 3, "def");  // the acknowledged first half is still there
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->complete);
  EXPECT_EQ(*ReadImm(Si(2), 0, 0, 6), "abcdef");
  EXPECT_EQ(store->stats().shares, 2u);
}

TEST_F(Buckets, LargeShareInChunksAtOffsets) {
  const std::size_t kSize = 3 * 1000000 + 17;
  std::string data(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) data[i] = static_cast<char>(i * 131 + i / 7);
  ASSERT_TRUE(Allocate(Si(3), {1}, kSize).ok());
  for (std::size_t off = 0; off < kSize; off += 1000000) {
    auto w = Write(Si(3), 1, off, data.substr(off, 1000000));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->complete, off + 1000000 >= kSize);
  }
  EXPECT_EQ(*ReadImm(Si(3), 1, 0, kSize), data);
  EXPECT_EQ(*ReadImm(Si(3), 1, 2999990, 100), data.substr(2999990));
}

TEST_F(Buckets, OrphanedUploadBodiesAreRemovedAtOpen) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "ab").ok());
  CloseStore();
  // A body whose allocation never committed (a crash between the file's
  // creation and the commit) and a stray file.
  std::string orphan = dir + "/incoming/" + std::string(32, 'a') + "-3-999";
  std::ofstream(orphan) << "junk";
  std::ofstream(dir + "/incoming/garbage") << "junk";
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_FALSE(std::filesystem::exists(dir + "/incoming/garbage"));
  EXPECT_TRUE(Write(Si(1), 0, 2, "cd")->complete);  // the live upload's body stayed
}

TEST_F(Buckets, AbortedBodyFilesAreUnlinked) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "ab").ok());
  auto files = [&] {
    std::size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir + "/incoming")) n += e.is_regular_file();
    return n;
  };
  EXPECT_EQ(files(), 2u);  // the body and its ranges file (not yet synced)
  EXPECT_TRUE(StatusCall([&](auto cb) { store->Abort(Si(1), 0, "upload-secret", std::move(cb)); }).ok());
  EXPECT_EQ(files(), 0u);
}

// --- the fsync policy (docs/store.md, "Durability") ---------------------------

TEST_F(Buckets, OnlyTheWriteThatCompletesAShareIsSynced) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  int before = fault.syncs();
  auto w = Write(Si(1), 0, 0, "abcd");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->required, (std::vector<Range>{{4, 8}}));
  EXPECT_EQ(fault.syncs(), before);  // acknowledged from the page cache
  // The unsynced range counts: an overlap must match it.
  EXPECT_EQ(Write(Si(1), 0, 2, "XX").status().code(), Code::kConflict);
  Status st = StatusCall([&](auto cb) { store->CloseBucket(Si(1), 0, "upload-secret", std::move(cb)); });
  EXPECT_NE(st.message().find("missing [4, 8)"), std::string_view::npos) << st.ToString();
  w = Write(Si(1), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->complete);
  EXPECT_GT(fault.syncs(), before);  // the body, before the commit that completes it
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
  EXPECT_FALSE(std::filesystem::exists(dir + "/incoming/" + SiHex(Si(1)) + "-0-1.ranges"));
}

TEST_F(Buckets, SyncEveryWriteSyncsIntermediateWrites) {
  CloseStore();
  options.sync_every_write = true;
  Reopen();
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  int before = fault.syncs();
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd").ok());
  EXPECT_GT(fault.syncs(), before);
  EXPECT_TRUE(Write(Si(1), 0, 4, "efgh")->complete);
}

TEST_F(Buckets, UnsyncedRangesSurviveAProcessCrash) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd").ok());
  Reopen();  // same boot: the page cache kept the body and its ranges file
  EXPECT_EQ(Write(Si(1), 0, 0, "abcX").status().code(), Code::kConflict);
  auto w = Write(Si(1), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->complete);
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
}

TEST_F(Buckets, PowerLossKeepsCompleteSharesAndResetsUnsyncedRanges) {
  // Complete: written in two chunks, the first never synced on its own.
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd").ok());
  ASSERT_TRUE(Write(Si(1), 0, 4, "efgh")->complete);
  // In progress: one acknowledged, unsynced chunk.
  ASSERT_TRUE(Allocate(Si(2), {0}, 8).ok());
  ASSERT_TRUE(Write(Si(2), 0, 0, "abcd").ok());
  CloseStore();
  fault.LoseUnsyncedWrites(dir);  // the second upload's bytes never reached the disk
  Reopen();
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
  EXPECT_EQ(*ListImm(Si(2)), std::vector<ShareNum>{});
  // Its range is no longer claimed: the client writes it again, and a
  // zeroed body can never be read as complete.
  auto w = Write(Si(2), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->required, (std::vector<Range>{{0, 4}}));
  w = Write(Si(2), 0, 0, "WXYZ");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->complete);
  EXPECT_EQ(*ReadImm(Si(2), 0, 0, 8), "WXYZefgh");
}

TEST_F(Buckets, ATornRangesFileRestartsTheUpload) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd").ok());
  CloseStore();
  std::string ranges = dir + "/incoming/" + SiHex(Si(1)) + "-0-1.ranges";
  ASSERT_TRUE(std::filesystem::exists(ranges));
  std::filesystem::resize_file(ranges, 10);
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(ranges));
  auto w = Write(Si(1), 0, 4, "efgh");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->required, (std::vector<Range>{{0, 4}}));
}

TEST_F(Buckets, UnknownFormatVersionIsRefused) {
  CloseStore();
  // Patch the stored format version in the closed environment's file.
  {
    auto r = ShareStore::Open(loop, options);
    ASSERT_TRUE(r.ok());
    bool closed = false;
    (*r)->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 5000));
  }
  std::string path = dir + "/data.mdb";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // The format record is the key "format" with a 4-byte big-endian value 1
  // (every copy: old pages may still hold one).
  const std::string record("format\0\0\0\1", 10);
  std::size_t patched = 0;
  for (std::size_t at = bytes.find(record); at != std::string::npos; at = bytes.find(record, at + 1), ++patched) {
    bytes[at + 9] = 9;
  }
  ASSERT_GT(patched, 0u);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  auto r = ShareStore::Open(loop, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnsupportedVersion) << r.status().ToString();
  EXPECT_NE(r.status().message().find("format 9"), std::string_view::npos);
}

TEST_F(Buckets, MissingDirectoryIsAnError) {
  options.dir = dir + "/does-not-exist";
  auto r = ShareStore::Open(loop, options);
  EXPECT_FALSE(r.ok());
}

TEST_F(Buckets, RefusalsAreDeliveredOnALaterTurn) {
  CloseStore();
  options.read_only = true;
  Reopen();
  // Sync() checks the completion did not run inside the call.
  EXPECT_EQ(Allocate(Si(1), {0}, 4).status().code(), Code::kReadOnly);
  EXPECT_EQ(ReadImm(Si(1), 0, 0, 4).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace cairn::store
