// A temporary store on a real Loop with a FaultPlatform, and Sync(): start
// an asynchronous call, check that it did not complete inside the call, run
// the loop until it does.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/store/store.h"
#include "support/fault_platform.h"

namespace cairn::store {

inline StorageIndex Si(int n) {
  StorageIndex si{};
  si[0] = static_cast<std::uint8_t>(n);
  si[15] = static_cast<std::uint8_t>(n * 7 + 1);
  return si;
}

inline LeaseSecrets Lease(char c) { return LeaseSecrets{std::string(32, c), std::string(32, static_cast<char>(c + 1))}; }

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-store-XXXXXX";
    dir = mkdtemp(tmpl);
    fault.SetWallSeconds(1700000000);
    options.dir = dir;
    options.platform = &fault;
    options.reserved_bytes = 0;
    options.map_bytes = 4 << 20;
    options.map_max_bytes = 64 << 20;
    options.sweep_interval_ms = 3600000;
    Reopen();
  }
  void TearDown() override {
    CloseStore();
    std::filesystem::remove_all(dir);
  }
  void Reopen() {
    CloseStore();
    auto r = ShareStore::Open(loop, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    store = std::move(r).value();
  }
  void CloseStore() {
    if (!store) return;
    bool closed = false;
    store->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
    store.reset();
  }

  template <typename R, typename F>
  R Sync(F start) {
    std::optional<R> out;
    start([&](R r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    return std::move(*out);
  }

  // Shorthands for the common calls.
  Result<AllocateResult> Allocate(const StorageIndex& si, std::vector<ShareNum> shnums, std::uint64_t size,
                                  const std::string& secret = "upload-secret", char lease = 'a') {
    return Sync<Result<AllocateResult>>(
        [&](auto cb) { store->Allocate(si, shnums, size, secret, Lease(lease), std::move(cb)); });
  }
  Result<WriteResult> Write(const StorageIndex& si, ShareNum n, std::uint64_t off, std::string data,
                            const std::string& secret = "upload-secret") {
    return Sync<Result<WriteResult>>([&](auto cb) { store->WriteChunk(si, n, secret, off, data, std::move(cb)); });
  }
  Result<std::string> ReadImm(const StorageIndex& si, ShareNum n, std::uint64_t off, std::uint64_t len) {
    return Sync<Result<std::string>>([&](auto cb) { store->ReadImmutable(si, n, off, len, std::move(cb)); });
  }
  Result<std::vector<ShareNum>> ListImm(const StorageIndex& si) {
    return Sync<Result<std::vector<ShareNum>>>([&](auto cb) { store->ListImmutable(si, std::move(cb)); });
  }
  Result<RtwResult> Rtw(const StorageIndex& si, std::vector<ShareTestWrite> w, std::vector<ReadVector> r = {},
                        const std::string& we = std::string(32, 'W'), char lease = 'a') {
    return Sync<Result<RtwResult>>(
        [&](auto cb) { store->ReadTestWrite(si, we, Lease(lease), std::move(w), std::move(r), std::move(cb)); });
  }
  Result<std::string> ReadMut(const StorageIndex& si, ShareNum n, std::uint64_t off, std::uint64_t len) {
    return Sync<Result<std::string>>([&](auto cb) { store->ReadMutable(si, n, off, len, std::move(cb)); });
  }
  Result<std::vector<ShareNum>> ListMut(const StorageIndex& si) {
    return Sync<Result<std::vector<ShareNum>>>([&](auto cb) { store->ListMutable(si, std::move(cb)); });
  }
  Status StatusCall(Callback<void(Callback<void(Status)>)> start) {
    return Sync<Status>([&](auto cb) { start(Callback<void(Status)>(std::move(cb))); });
  }
  void Sweep() {
    bool done = false;
    store->TEST_Sweep([&] { done = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, 20000));
  }
  // Writes `data` as one whole share (allocate, one chunk).
  void PutImmutable(const StorageIndex& si, ShareNum n, const std::string& data) {
    auto a = Allocate(si, {n}, data.size());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto w = Write(si, n, 0, data);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->complete);
  }

  Loop loop;
  testing::FaultPlatform fault;
  std::string dir;
  StoreOptions options;
  std::unique_ptr<ShareStore> store;
};

inline ShareTestWrite WriteAt(ShareNum n, std::uint64_t off, std::string data) {
  ShareTestWrite tw;
  tw.shnum = n;
  tw.writes.push_back({off, std::move(data)});
  return tw;
}

}  // namespace cairn::store
