// Ranges of one share read a few at a time (see share_reads.h).
#include "mutable/share_reads.h"

#include <algorithm>
#include <memory>

namespace cairn::mutable_files {
namespace {

struct Reads {
  Loop* loop = nullptr;
  gbs::Client* client = nullptr;
  gbs::StorageIndex si{};
  std::uint32_t shnum = 0;
  std::vector<ByteRange> ranges;
  std::vector<Result<std::string>> results;
  std::size_t next = 0;       // the next range to ask for
  std::size_t in_flight = 0;
  std::size_t at_once = 1;
  Status failed;              // the first failure: nothing more is asked
  Callback<void(std::vector<Result<std::string>>)> done;
};

void Pump(const std::shared_ptr<Reads>& r) {
  while (r->failed.ok() && r->next < r->ranges.size() && r->in_flight < r->at_once) {
    const std::size_t i = r->next++;
    const ByteRange range = r->ranges[i];
    ++r->in_flight;
    r->client->ReadMutable(r->si, r->shnum, range.offset, range.length, [r, i, range](Result<std::string> got) {
      --r->in_flight;
      if (got.ok() && got->size() != range.length) got = Status::Integrity("a ranged read came back short");
      if (!got.ok() && r->failed.ok()) r->failed = got.status();
      r->results[i] = std::move(got);
      Pump(r);
    });
  }
  if (r->in_flight > 0) return;
  for (std::size_t i = r->next; i < r->ranges.size(); ++i) r->results[i] = r->failed;
  r->next = r->ranges.size();
  if (r->done) {
    auto done = std::move(r->done);
    r->done = nullptr;
    done(std::move(r->results));
  }
}

}  // namespace

void ReadShareRanges(Loop& loop, gbs::Client& client, const gbs::StorageIndex& si, std::uint32_t shnum,
                     std::vector<ByteRange> ranges, std::size_t at_once,
                     Callback<void(std::vector<Result<std::string>>)> done) {
  auto r = std::make_shared<Reads>();
  r->loop = &loop;
  r->client = &client;
  r->si = si;
  r->shnum = shnum;
  r->at_once = std::max<std::size_t>(1, at_once);
  r->ranges = std::move(ranges);
  r->results.assign(r->ranges.size(), Status::Internal("not read"));
  r->done = std::move(done);
  if (r->ranges.empty()) {
    loop.Post([r] { Pump(r); });
    return;
  }
  Pump(r);
}

}  // namespace cairn::mutable_files
