// Immutable repair (include/cairn/immutable/repairer.h): UEB, download,
// upload, check again, one step after the other. Loop thread only.
#include "cairn/immutable/repairer.h"

#include <algorithm>
#include <memory>

#include "cairn/core/endian.h"
#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/operation.h"
#include "cairn/immutable/checker.h"
#include "cairn/immutable/chk_reader.h"
#include "cairn/immutable/downloader.h"

namespace cairn::immutable {
namespace {

constexpr std::uint64_t kMaxUebLength = 2000;

class Repair : public std::enable_shared_from_this<Repair> {
 public:
  Repair(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::CheckResults pre,
         RepairOptions options, grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RepairResult>)> done)
      : loop_(loop),
        servers_(std::move(servers)),
        cap_(std::move(cap)),
        pre_(std::move(pre)),
        options_(std::move(options)),
        progress_(std::make_shared<grid::ProgressFn>(std::move(progress))),
        stop_(std::make_shared<grid::StopFn>(std::move(stop))),
        op_(loop, "immutable repair", std::move(done)) {}

  void Start();

 private:
  grid::ProgressFn Progress() {
    auto p = progress_;
    return [p](const std::string& phase, std::uint64_t done, std::uint64_t total) {
      if (*p) (*p)("repair: " + phase, done, total);
    };
  }
  grid::StopFn Stop() {
    auto s = stop_;
    return [s] { return *s && (*s)(); };
  }
  void ReadUeb(std::size_t candidate);
  void UebRead(std::size_t candidate, std::size_t server, std::uint32_t shnum, Result<std::string> r);
  void Download();
  void Upload(std::uint64_t segment_size);
  void CheckAgain();
  void Failed(const std::string& why);

  Loop& loop_;
  std::vector<grid::GridServer> servers_;
  caps::Cap cap_;
  grid::CheckResults pre_;
  RepairOptions options_;
  std::shared_ptr<grid::ProgressFn> progress_;
  std::shared_ptr<grid::StopFn> stop_;
  grid::Operation<RepairResult> op_;
  gbs::StorageIndex si_{};
  RepairResult result_;
  // (server, share) of good shares to read the UEB from, in order.
  std::vector<std::pair<std::size_t, std::uint32_t>> ueb_sources_;
  std::uint64_t segment_size_ = 0;
};

void Repair::Start() {
  if (cap_.kind != caps::CapKind::kChk) {
    return op_.FinishSoon(
        Status::BadCap("repair needs the file's read cap (URI:CHK:): a verify "
                       "cap cannot re-encode"));
  }
  if (!pre_.recoverable || (pre_.healthy && !pre_.needs_rebalancing)) return op_.FinishSoon(std::move(result_));
  std::copy(pre_.storage_index.begin(), pre_.storage_index.end(), si_.begin());
  result_.attempted = true;
  for (const auto& [sh, names] : pre_.good) {
    for (const std::string& name : names) {
      for (std::size_t i = 0; i < servers_.size(); ++i) {
        if (servers_[i].name == name) ueb_sources_.emplace_back(i, sh);
      }
    }
  }
  ReadUeb(0);
}

// The UEB of the first good share that gives one matching the cap: the
// re-encoding must use its segment size, or the shares would differ.
void Repair::ReadUeb(std::size_t candidate) {
  if (*stop_ && (*stop_)()) return op_.Finish(Status::Cancelled("repair cancelled"));
  if (candidate >= ueb_sources_.size()) return Failed("no share gave a URI extension block that matches the cap");
  const auto [server, shnum] = ueb_sources_[candidate];
  auto self = shared_from_this();
  // The header, then everything to the end of the longest UEB a reader takes.
  const std::size_t s = server;
  const std::uint32_t sh = shnum;
  servers_[s].client->ReadImmutable(si_, sh, 0, kChkHeaderMaxSize, [self, candidate, s, sh](Result<std::string> r) {
    if (!r.ok()) return self->ReadUeb(candidate + 1);
    auto h = ParseChkShareHeader(*r);
    if (!h.ok()) return self->ReadUeb(candidate + 1);
    const std::uint64_t at = h->o_uri_extension;
    const std::uint64_t len_size = h->ueb_length_size();
    self->servers_[s].client->ReadImmutable(
        self->si_, sh, at, len_size + kMaxUebLength, [self, candidate, s, sh, len_size](Result<std::string> r2) {
          if (!r2.ok() || r2->size() < len_size) return self->UebRead(candidate, s, sh, Status::Integrity("short"));
          const std::uint64_t len = GetBe(*r2, 0, static_cast<std::size_t>(len_size));
          if (len >= kMaxUebLength || r2->size() < len_size + len) {
            return self->UebRead(candidate, s, sh, Status::Integrity("bad UEB length"));
          }
          self->UebRead(candidate, s, sh,
                        r2->substr(static_cast<std::size_t>(len_size), static_cast<std::size_t>(len)));
        });
  });
}

void Repair::UebRead(std::size_t candidate, std::size_t, std::uint32_t, Result<std::string> r) {
  if (!r.ok()) return ReadUeb(candidate + 1);
  auto ueb = ParseChkUeb(*r, cap_);
  if (!ueb.ok()) return ReadUeb(candidate + 1);
  segment_size_ = ueb->segment_size;
  Download();
}

void Repair::Download() {
  auto self = shared_from_this();
  DownloadFile(loop_, servers_, cap_, options_.spool_path, Progress(), Stop(), [self](Result<DownloadResult> down) {
    if (!down.ok()) {
      if (down.status().code() == Code::kCancelled) return self->op_.Finish(down.status());
      return self->Failed("download: " + down.status().ToString());
    }
    self->Upload(self->segment_size_);
  });
}

void Repair::Upload(std::uint64_t segment_size) {
  UploadOptions up;
  up.params.k = cap_.k;
  up.params.n = cap_.n;
  up.params.max_segment_size = segment_size;
  // Tahoe repairs with happy = 0; cairn asks for the configured value, but
  // never for more servers than answered the check (capped at N).
  const std::size_t reachable = pre_.servers_responding.size();
  up.happy = static_cast<std::uint32_t>(
      std::max<std::size_t>(1, std::min<std::size_t>({options_.happy, reachable, static_cast<std::size_t>(cap_.n)})));
  up.lease_secret = options_.lease_secret;
  up.convergent_key = cap_.key;  // the cap's key: the same storage index, the same shares
  up.prehashed_size = cap_.size;
  up.convergence = "repair";  // unused: the key is given
  for (const grid::CorruptShare& c : pre_.corrupt) {
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i].name == c.server) up.avoid[i].insert(c.shnum);
    }
  }
  auto self = shared_from_this();
  UploadFile(loop_, servers_, options_.spool_path, std::move(up), Progress(), Stop(), [self](Result<UploadResult> r) {
    if (!r.ok()) {
      if (r.status().code() == Code::kCancelled) return self->op_.Finish(r.status());
      return self->Failed("upload: " + r.status().ToString());
    }
    if (r->cap.digest != self->cap_.digest) {
      // Cannot happen with the UEB's segment size; never report it
      // as repaired.
      return self->Failed(
          "the re-encoded file's URI extension "
          "block differs from the cap's");
    }
    self->result_.shares_uploaded = r->shares_uploaded;
    self->result_.shares_reused = r->shares_reused;
    self->result_.happiness = r->happiness;
    self->CheckAgain();
  });
}

void Repair::Failed(const std::string& why) {
  CAIRN_LOG(Warn, "repair: %s", why.c_str());
  result_.error = why;
  CheckAgain();
}

// Post-repair results come from a new check (Tahoe computes them from the
// upload's share map; a check also sees what another client did meanwhile).
void Repair::CheckAgain() {
  CheckOptions opts;
  opts.verify = options_.verify;
  opts.happy = options_.happy;
  auto self = shared_from_this();
  CheckImmutable(loop_, servers_, cap_, opts, Progress(), Stop(), [self](Result<grid::CheckResults> r) {
    if (!r.ok()) return self->op_.Finish(r.status());
    self->result_.post = std::move(*r);
    self->result_.successful = self->result_.error.empty() && self->result_.post.healthy;
    self->op_.Finish(std::move(self->result_));
  });
}

}  // namespace

void RepairImmutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::CheckResults pre,
                     RepairOptions options, grid::ProgressFn progress, grid::StopFn stop,
                     Callback<void(Result<RepairResult>)> done) {
  auto repair = std::make_shared<Repair>(loop, std::move(servers), std::move(cap), std::move(pre), std::move(options),
                                         std::move(progress), std::move(stop), std::move(done));
  repair->Start();
}

}  // namespace cairn::immutable
