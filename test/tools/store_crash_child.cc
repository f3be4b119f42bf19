// store_crash_child: the writer side of the store's crash test
// (test/integration/test_store_crash.py). Usage:
//
//   store_crash_child DIR EXPECT_FILE RUN [verify-only]
//
// 1. Opens the store in DIR and checks everything EXPECT_FILE says was
//    acknowledged before earlier kills:
//      M <slot> <version>            slot <slot>'s shares 0 and 1 hold a version >= this,
//                                    the same in both shares and in both chunks of each
//      I <si> <shnum> <offset> <len> these bytes of an upload are recorded
//      C <si> <shnum> <size>         this immutable share is complete and intact
//    and prints "FAIL <why>" (exit 1) or "READY".
// 2. Unless verify-only, writes until killed: 8 slots, each rewritten by
//    read-test-write with a new version in two chunks of two shares at once,
//    and immutable uploads in 64 KiB chunks. Each acknowledgement is printed
//    as one line (one write(2), so a kill never leaves half a line).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/store/store.h"

namespace {

using cairn::Loop;
using cairn::Result;
using cairn::Status;
using namespace cairn::store;

constexpr int kSlots = 8;
constexpr std::uint64_t kSecondStamp = 20000;  // in the slot's second chunk
constexpr std::uint64_t kShareSize = 256 * 1024;
constexpr std::uint64_t kChunk = 64 * 1024;

StorageIndex SlotSi(int slot) {
  StorageIndex si{};
  si[0] = 0xaa;
  si[1] = static_cast<std::uint8_t>(slot);
  return si;
}

StorageIndex UploadSi(unsigned run, int k) {
  StorageIndex si{};
  si[0] = 0xbb;
  si[1] = static_cast<std::uint8_t>(run >> 8);
  si[2] = static_cast<std::uint8_t>(run);
  si[3] = static_cast<std::uint8_t>(k);
  return si;
}

std::string Body(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t len) {
  std::string s(static_cast<std::size_t>(len), '\0');
  for (std::uint64_t i = 0; i < len; ++i) {
    std::uint64_t x = offset + i;
    s[static_cast<std::size_t>(i)] = static_cast<char>((x * 2654435761u >> 13) ^ si[2] ^ si[3] ^ (shnum * 31));
  }
  return s;
}

std::string Stamp(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(v));
  return buf;
}

void Say(const std::string& line) {
  std::string l = line + "\n";
  ssize_t n = write(1, l.data(), l.size());
  (void)n;
}

[[noreturn]] void Fail(const std::string& why) {
  Say("FAIL " + why);
  std::exit(1);
}

LeaseSecrets Lease() { return {std::string(32, 'r'), std::string(32, 'c')}; }
const std::string kWe(32, 'w');
const std::string kUpload = "crash-upload-secret";

class Child {
 public:
  Child(Loop& loop, ShareStore& store, unsigned run) : loop_(loop), store_(store), run_(run) {}

  template <typename R, typename F>
  R Wait(F start) {
    std::optional<R> out;
    start([&](R r) { out.emplace(std::move(r)); });
    if (!loop_.RunUntil([&] { return out.has_value(); }, 60000)) Fail("timed out");
    return std::move(*out);
  }

  void Verify(const std::string& expect_file) {
    std::ifstream in(expect_file);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string kind;
      ls >> kind;
      if (kind == "M") {
        int slot;
        std::uint64_t version;
        ls >> slot >> version;
        std::uint64_t v = SlotVersion(slot);
        if (v < version) Fail("slot " + std::to_string(slot) + " lost acknowledged version " + std::to_string(version));
      } else if (kind == "I") {
        std::string hex;
        ShareNum shnum;
        std::uint64_t off, len;
        ls >> hex >> shnum >> off >> len;
        CheckChunk(Parse(hex), shnum, off, len);
      } else if (kind == "C") {
        std::string hex;
        ShareNum shnum;
        std::uint64_t size;
        ls >> hex >> shnum >> size;
        StorageIndex si = Parse(hex);
        auto r = Wait<Result<std::string>>([&](auto cb) { store_.ReadImmutable(si, shnum, 0, size + 10, std::move(cb)); });
        if (!r.ok()) Fail("complete share " + hex + ": " + r.status().ToString());
        if (*r != Body(si, shnum, 0, size)) Fail("complete share " + hex + " differs");
      }
    }
    for (int slot = 0; slot < kSlots; ++slot) versions_[slot] = SlotVersion(slot);
  }

  void Start() {
    for (int slot = 0; slot < kSlots; ++slot) NextSlotWrite(slot);
    for (int k = 0; k < 4; ++k) StartUpload(k);
  }

 private:
  static StorageIndex Parse(const std::string& hex) {
    StorageIndex si{};
    for (std::size_t i = 0; i < 16; ++i) si[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    return si;
  }

  // The slot's version, after checking that both shares and both chunks of
  // each agree (no write half applied). 0 if the slot does not exist yet.
  std::uint64_t SlotVersion(int slot) {
    std::string seen;
    for (ShareNum shnum : {0u, 1u}) {
      for (std::uint64_t off : {std::uint64_t{0}, kSecondStamp}) {
        auto r = Wait<Result<std::string>>([&](auto cb) { store_.ReadMutable(SlotSi(slot), shnum, off, 16, std::move(cb)); });
        std::string got = r.ok() ? *r : std::string("absent");
        if (seen.empty()) seen = got;
        if (got != seen) Fail("slot " + std::to_string(slot) + " partly written: " + seen + " vs " + got);
      }
    }
    return seen == "absent" ? 0 : std::strtoull(seen.c_str(), nullptr, 10);
  }

  void CheckChunk(const StorageIndex& si, ShareNum shnum, std::uint64_t off, std::uint64_t len) {
    std::string want = Body(si, shnum, off, len);
    auto r = Wait<Result<std::string>>([&](auto cb) { store_.ReadImmutable(si, shnum, off, len, std::move(cb)); });
    if (r.ok()) {
      if (*r != want) Fail("chunk of complete share " + SiHex(si) + " differs");
      return;
    }
    // Still uploading: recorded bytes refuse different ones (Conflict).
    std::string flipped = want;
    for (char& c : flipped) c = static_cast<char>(c ^ 0x5a);
    auto w = Wait<Result<WriteResult>>(
        [&](auto cb) { store_.WriteChunk(si, shnum, kUpload, off, flipped, std::move(cb)); });
    if (w.status().code() != cairn::Code::kConflict) {
      Fail("acknowledged chunk of " + SiHex(si) + "/" + std::to_string(shnum) + " at " + std::to_string(off) +
           " missing: " + w.status().ToString());
    }
  }

  void NextSlotWrite(int slot) {
    std::uint64_t v = ++versions_[slot];
    std::string s = Stamp(v);
    std::vector<ShareTestWrite> tws;
    for (ShareNum shnum : {0u, 1u}) {
      ShareTestWrite tw;
      tw.shnum = shnum;
      tw.writes = {{0, s}, {kSecondStamp, s}};
      tws.push_back(std::move(tw));
    }
    store_.ReadTestWrite(SlotSi(slot), kWe, Lease(), std::move(tws), {}, [this, slot, v](Result<RtwResult> r) {
      if (!r.ok() || !r->success) Fail("slot write: " + r.status().ToString());
      Say("M " + std::to_string(slot) + " " + std::to_string(v));
      NextSlotWrite(slot);
    });
  }

  void StartUpload(int k) {
    StorageIndex si = UploadSi(run_, k + 4 * next_upload_[k]++);
    store_.Allocate(si, {0, 1}, kShareSize, kUpload, Lease(), [this, k, si](Result<AllocateResult> r) {
      if (!r.ok() || r->allocated.size() != 2) Fail("allocate: " + r.status().ToString());
      WriteNext(k, si, 0, 0);
    });
  }

  void WriteNext(int k, StorageIndex si, ShareNum shnum, std::uint64_t off) {
    store_.WriteChunk(si, shnum, kUpload, off, Body(si, shnum, off, kChunk),
                      [this, k, si, shnum, off](Result<WriteResult> r) {
                        if (!r.ok()) Fail("write chunk: " + r.status().ToString());
                        Say("I " + SiHex(si) + " " + std::to_string(shnum) + " " + std::to_string(off) + " " +
                            std::to_string(kChunk));
                        if (r->complete) Say("C " + SiHex(si) + " " + std::to_string(shnum) + " " + std::to_string(kShareSize));
                        if (off + kChunk < kShareSize) return WriteNext(k, si, shnum, off + kChunk);
                        if (shnum == 0) return WriteNext(k, si, 1, 0);
                        StartUpload(k);
                      });
  }

  Loop& loop_;
  ShareStore& store_;
  unsigned run_;
  std::map<int, std::uint64_t> versions_;
  std::map<int, unsigned> next_upload_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: store_crash_child DIR EXPECT_FILE RUN [verify-only]\n");
    return 2;
  }
  Loop loop;
  StoreOptions options;
  options.dir = argv[1];
  options.reserved_bytes = 0;
  options.map_bytes = 8 << 20;
  options.map_max_bytes = 256 << 20;
  auto opened = ShareStore::Open(loop, options);
  if (!opened.ok()) Fail("open: " + opened.status().ToString());
  auto store = std::move(opened).value();
  Child child(loop, *store, static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)));
  child.Verify(argv[2]);
  Say("READY");
  if (argc > 4) {
    bool closed = false;
    store->Close([&] { closed = true; });
    loop.RunUntil([&] { return closed; }, 60000);
    return 0;
  }
  child.Start();
  loop.Run();  // until killed
  return 0;
}
