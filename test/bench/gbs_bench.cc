// GBS benchmark: a release cairnd on 127.0.0.1 (started from the build
// directory next to this program) measured through gbs::Client over TLS:
// immutable upload and download MB/s with 1 and 16 clients (and one
// upload under the "always" fsync policy, on a second node), mutable
// read-test-write and version requests per second, cairnd's memory during
// 100 concurrent uploads, and its loop's worst iteration. JSON lines.
//
// A board's build runs under its emulator, the client staying native
// (`make bench BOARD=kirkwood`):
//   gbs_bench --board-build build/kirkwood/release --runner qemu-arm --uploads 24
// Its memory is then the guest's own, not the emulator's (see Memory below).
//
// `--nurl NURL` measures any GBS server instead (a Tahoe-LAFS storage node,
// another cairnd) with the same client: single-stream and 16-client upload
// and download only, and no server CPU figures (its process is not ours).
// Its storage indexes carry this run's pid, so runs do not collide.
//
// The first lines compare the TLS record layers on the same machine in the
// same run: single-stream upload and download with cairn's own records
// (src/tls/own_records.cc) on both ends, then with mbedTLS's on both
// (limits.tls_own_records = 0, CAIRN_TLS_OWN_RECORDS=0 for cairnd).
//
// Each transfer line also gives the CPU seconds cairnd and this client
// spent on it, and the MiB/s cairnd would reach with a core of its own
// (MiB / its CPU seconds): on a shared machine the wall-clock figure says
// as much about the neighbours as about the server, and a client busier
// than the server would mean the bench, not cairnd, sets the pace.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>

#include "cairn/gbs/client.h"
#include "cairn/tls/session.h"

using namespace cairn;

namespace {

constexpr std::uint64_t kChunk = 1000000;  // Tahoe's PATCH size

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// The emulator that runs a board's cairn and cairnd ("" runs them natively).
std::string g_runner;

// Under qemu-user the guest's address space starts here (QEMU_GUEST_BASE), far
// from the emulator's own mappings: a 32-bit guest spans the 4 GiB above it,
// a 64-bit guest's mappings stay well below twice it.
constexpr std::uint64_t kGuestBase = 0x100000000000ull;

std::uint64_t ProcField(int pid, const std::string& name) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(name + ":", 0) == 0) return std::stoull(line.substr(name.size() + 1)) * 1024;
  }
  return 0;
}

struct Rss {
  std::uint64_t anon = 0;
  std::uint64_t file = 0;  // LMDB's map and the mapped libraries
};

// cairnd's resident memory. Natively, /proc/PID/status. Under an emulator the
// process is qemu, whose translation cache and heap a real board would not
// have: only the mappings inside the guest's range count, summed from
// /proc/PID/smaps (a private page written since mapping counts as anonymous).
Rss Memory(int pid) {
  Rss r;
  if (g_runner.empty()) {
    r.anon = ProcField(pid, "RssAnon");
    r.file = ProcField(pid, "RssFile");
    return r;
  }
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  bool guest = false;
  std::uint64_t rss = 0;
  auto kib = [&](const std::string& l) { return std::stoull(l.substr(l.find(':') + 1)) * 1024; };
  while (std::getline(f, line)) {
    std::size_t dash = line.find('-');
    if (dash != std::string::npos && dash > 0 && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find(':') > dash) {
      std::uint64_t start = std::stoull(line.substr(0, dash), nullptr, 16);
      guest = start >= kGuestBase && start < 2 * kGuestBase;
    } else if (guest && line.rfind("Rss:", 0) == 0) {
      rss = kib(line);
    } else if (guest && line.rfind("Anonymous:", 0) == 0) {
      std::uint64_t anon = kib(line);
      r.anon += anon;
      r.file += rss - std::min(rss, anon);
    }
  }
  return r;
}

// CPU seconds (user + system) of process `pid` so far.
double ProcCpu(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU spent by cairnd and by this client between construction and Line().
struct CpuMeter {
  int pid;
  double server0 = ProcCpu(pid), client0 = SelfCpu();
  // JSON members: both CPU figures and cairnd's MiB per CPU second.
  std::string Line(double mib) const {
    double server = ProcCpu(pid) - server0, client = SelfCpu() - client0;
    char buf[160];
    std::snprintf(buf, sizeof buf, ", \"server_cpu_s\": %.2f, \"client_cpu_s\": %.2f, \"server_mib_per_cpu_s\": %.1f",
                  server, client, server > 0 ? mib / server : 0.0);
    return buf;
  }
};

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

gbs::StorageIndex Si(int n) {
  gbs::StorageIndex si{};
  si[0] = static_cast<std::uint8_t>(n);
  si[1] = static_cast<std::uint8_t>(n >> 8);
  std::uint32_t run = static_cast<std::uint32_t>(getpid());
  for (int i = 0; i < 4; ++i) si[2 + i] = static_cast<std::uint8_t>(run >> (8 * i));
  si[15] = 0x5a;
  return si;
}

const gbs::LeaseSecrets kLease{std::string(32, 'r'), std::string(32, 'c')};
const std::string kSecret = "bench-upload-secret!";

struct Bench {
  Loop loop;
  std::shared_ptr<tls::Context> ctx = *tls::Context::NewClient();
  gbs::Nurl nurl;
  std::string chunk = std::string(kChunk, 'x');
  int failures = 0;

  std::vector<std::unique_ptr<gbs::Client>> Clients(int n) {
    std::vector<std::unique_ptr<gbs::Client>> v;
    for (int i = 0; i < n; ++i) v.push_back(std::make_unique<gbs::Client>(loop, ctx, nurl));
    return v;
  }
  void CloseAll(std::vector<std::unique_ptr<gbs::Client>>& v) {
    int left = static_cast<int>(v.size());
    for (auto& c : v) c->Close([&] { --left; });
    loop.RunUntil([&] { return left == 0; }, 60000);
    v.clear();
  }
  // Uploads one share of `size` bytes: allocate, then one PATCH at a time.
  void Upload(gbs::Client* c, gbs::StorageIndex si, std::uint64_t size, std::function<void()> done) {
    c->Allocate(si, kSecret, kLease, {{0}, size}, [=, this](Result<gbs::AllocateResponse> a) {
      if (!a.ok()) {
        ++failures;
        std::fprintf(stderr, "gbs_bench: allocate: %s\n", a.status().ToString().c_str());
        return done();
      }
      Patch(c, si, 0, size, done);
    });
  }
  void Patch(gbs::Client* c, gbs::StorageIndex si, std::uint64_t off, std::uint64_t size, std::function<void()> done) {
    std::uint64_t n = std::min<std::uint64_t>(kChunk, size - off);
    c->WriteChunk(si, 0, kSecret, off, chunk.substr(0, n), [=, this](Result<gbs::WriteResult> w) {
      if (!w.ok()) {
        ++failures;
        std::fprintf(stderr, "gbs_bench: write: %s\n", w.status().ToString().c_str());
        return done();
      }
      if (off + n < size) return Patch(c, si, off + n, size, done);
      done();
    });
  }
  void Download(gbs::Client* c, gbs::StorageIndex si, std::uint64_t off, std::uint64_t size, std::function<void()> done) {
    c->ReadImmutable(si, 0, off, 1 << 20, [=, this](Result<std::string> r) {
      if (!r.ok() || r->empty()) {
        ++failures;
        return done();
      }
      if (off + r->size() < size) return Download(c, si, off + r->size(), size, done);
      done();
    });
  }
};

// A release cairnd on a fresh node in `dir` with `limits` (JSON members)
// added to its cairn.json; its pid and NURL, or pid -1. `own_records` 0 or
// 1 sets CAIRN_TLS_OWN_RECORDS for it (-1: inherited).
std::pair<pid_t, std::string> StartNode(const std::string& bin, const std::string& dir, const std::string& limits,
                                        int own_records = -1) {
  std::string node = dir + "/node";
  std::filesystem::create_directories(dir);
  int port = 20000 + (getpid() * 7 + static_cast<int>(dir.size())) % 20000;
  Run(g_runner + " " + bin + "/cairn init " + node + " --port " + std::to_string(port) + " >/dev/null 2>&1");
  {
    std::ifstream in(node + "/cairn.json");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cfg = ss.str();
    std::size_t brace = cfg.find('{');
    if (brace == std::string::npos) {
      std::fprintf(stderr, "gbs_bench: cairn init failed\n");
      return {-1, ""};
    }
    cfg.insert(brace + 1, "\n\t\"limits\": {\"store_reserved_bytes\": 0" + limits + "},");
    std::ofstream(node + "/cairn.json") << cfg;
  }
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    if (own_records >= 0) setenv("CAIRN_TLS_OWN_RECORDS", own_records ? "1" : "0", 1);
    std::string cairnd = bin + "/cairnd";
    if (g_runner.empty()) {
      execl(cairnd.c_str(), "cairnd", node.c_str(), nullptr);
    } else {
      setenv("QEMU_GUEST_BASE", std::to_string(kGuestBase).c_str(), 1);
      execlp(g_runner.c_str(), g_runner.c_str(), cairnd.c_str(), node.c_str(), nullptr);
    }
    _exit(127);
  }
  for (int i = 0; i < 1000 && !std::filesystem::exists(node + "/control.sock"); ++i) usleep(20000);
  std::string nurl = Run(g_runner + " " + bin + "/cairn -d " + node + " nurl");
  while (!nurl.empty() && (nurl.back() == '\n' || nurl.back() == ' ')) nurl.pop_back();
  return {pid, nurl};
}

void StopNode(pid_t pid) {
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

// Immutable upload then download of `clients` shares at once (64 MiB for
// one client, 16 MiB each for more), one JSON line each; `extra` (JSON
// members) is added to both. `pid` is the server's (-1: not ours).
void UpDown(Bench& b, int pid, int clients, int* next_si, const std::string& extra) {
  std::uint64_t size = clients == 1 ? 64ull << 20 : 16ull << 20;
  auto cs = b.Clients(clients);
  int left = clients;
  int first_si = *next_si;
  double mib = static_cast<double>(size) * clients / (1 << 20);
  CpuMeter up_cpu{pid};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < clients; ++i) b.Upload(cs[i].get(), Si((*next_si)++), size, [&] { --left; });
  b.loop.RunUntil([&] { return left == 0; }, 600000);
  double up = Seconds(t0);
  std::string up_cpu_line = up_cpu.Line(mib);
  left = clients;
  CpuMeter down_cpu{pid};
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < clients; ++i) b.Download(cs[i].get(), Si(first_si + i), 0, size, [&] { --left; });
  b.loop.RunUntil([&] { return left == 0; }, 600000);
  double down = Seconds(t0);
  std::printf("{\"bench\": \"gbs_immutable_upload\", \"sync\": \"complete\", \"clients\": %d, \"share_mib\": %llu, \"patch_bytes\": %llu, "
              "\"mib_per_s\": %.1f%s%s}\n",
              clients, static_cast<unsigned long long>(size >> 20), static_cast<unsigned long long>(kChunk),
              mib / up, up_cpu_line.c_str(), extra.c_str());
  std::printf("{\"bench\": \"gbs_immutable_download\", \"clients\": %d, \"share_mib\": %llu, \"read_bytes\": %d, "
              "\"mib_per_s\": %.1f%s%s}\n",
              clients, static_cast<unsigned long long>(size >> 20), 1 << 20, mib / down, down_cpu.Line(mib).c_str(),
              extra.c_str());
  std::fflush(stdout);
  b.CloseAll(cs);
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin = std::filesystem::canonical("/proc/self/exe").parent_path().parent_path().string();
  int uploads = 100;  // concurrent uploads during the memory measurement
  std::string external;  // --nurl
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 < argc && a == "--board-build") {
      bin = std::filesystem::canonical(argv[++i]).string();
    } else if (i + 1 < argc && a == "--runner") {
      g_runner = argv[++i];
    } else if (i + 1 < argc && a == "--uploads") {
      uploads = std::atoi(argv[++i]);
    } else if (i + 1 < argc && a == "--nurl") {
      external = argv[++i];
    } else {
      std::fprintf(stderr, "usage: gbs_bench [--board-build DIR --runner CMD] [--uploads N] [--nurl NURL]\n");
      return 2;
    }
  }
  if (!external.empty()) {
    auto parsed = gbs::ParseNurl(external);
    if (!parsed.ok()) {
      std::fprintf(stderr, "gbs_bench: %s\n", parsed.status().ToString().c_str());
      return 2;
    }
    Bench b;
    b.nurl = *parsed;
    int next_si = 1;
    for (int clients : {1, 16}) UpDown(b, -1, clients, &next_si, ", \"server\": \"nurl\"");
    return b.failures == 0 ? 0 : 1;
  }
  if (uploads < 1) uploads = 1;
  std::string dir = std::filesystem::temp_directory_path() / ("cairn-gbs-bench-" + std::to_string(getpid()));

  // The record layers side by side: cairn's own on both ends, then mbedTLS's.
  for (int own : {1, 0}) {
    std::string sub = dir + (own ? "/own-records" : "/mbedtls-records");
    auto [rpid, rnurl] = StartNode(bin, sub, own ? "" : ", \"tls_own_records\": 0", own);
    auto rparsed = gbs::ParseNurl(rnurl);
    if (rpid < 0 || !rparsed.ok()) {
      std::fprintf(stderr, "gbs_bench: no NURL (%s)\n", rnurl.c_str());
      if (rpid > 0) StopNode(rpid);
      return 1;
    }
    Bench rb;
    rb.ctx->set_own_records(own != 0);
    rb.nurl = *rparsed;
    int next = 1;
    UpDown(rb, rpid, 1, &next, std::string(", \"records\": \"") + (own ? "cairn" : "mbedtls") + "\"");
    StopNode(rpid);
    if (rb.failures != 0) return 1;
  }

  // Single-stream upload under the "always" fsync policy (every PATCH
  // fsynced before its answer), for comparison with the default below.
  {
    auto [spid, snurl] = StartNode(bin, dir + "/always", ", \"store_sync_every_write\": 1");
    auto sparsed = gbs::ParseNurl(snurl);
    if (spid < 0 || !sparsed.ok()) {
      std::fprintf(stderr, "gbs_bench: no NURL (%s)\n", snurl.c_str());
      if (spid > 0) StopNode(spid);
      return 1;
    }
    Bench sb;
    sb.nurl = *sparsed;
    auto cs = sb.Clients(1);
    std::uint64_t size = 64ull << 20;
    bool done = false;
    CpuMeter cpu{spid};
    auto t0 = std::chrono::steady_clock::now();
    sb.Upload(cs[0].get(), Si(1), size, [&] { done = true; });
    sb.loop.RunUntil([&] { return done; }, 600000);
    double mib = static_cast<double>(size) / (1 << 20);
    std::printf("{\"bench\": \"gbs_immutable_upload\", \"sync\": \"always\", \"clients\": 1, \"share_mib\": %llu, "
                "\"patch_bytes\": %llu, \"mib_per_s\": %.1f%s}\n",
                static_cast<unsigned long long>(size >> 20), static_cast<unsigned long long>(kChunk),
                mib / Seconds(t0), cpu.Line(mib).c_str());
    sb.CloseAll(cs);
    StopNode(spid);
    if (sb.failures != 0) return 1;
  }

  dir += "/default";
  std::string node = dir + "/node";
  // Plain variables: clang 14 cannot capture a structured binding in a lambda.
  std::pair<pid_t, std::string> started = StartNode(bin, dir, "");
  pid_t pid = started.first;
  std::string nurl_text = started.second;
  auto parsed = gbs::ParseNurl(nurl_text);
  if (pid < 0 || !parsed.ok()) {
    std::fprintf(stderr, "gbs_bench: no NURL (%s): %s\n", nurl_text.c_str(), parsed.status().ToString().c_str());
    if (pid > 0) StopNode(pid);
    return 1;
  }
  Bench b;
  b.nurl = *parsed;
  int next_si = 1;
  // cairnd's peak memory over everything below, sampled every 20 ms.
  Rss peak;
  std::unique_ptr<Timer> watcher;
  std::function<void()> watch = [&] {
    Rss m = Memory(pid);
    peak.anon = std::max(peak.anon, m.anon);
    peak.file = std::max(peak.file, m.file);
    watcher = b.loop.PostAfter(20, watch);
  };
  watch();

  // Immutable upload and download, 1 and 16 clients.
  for (int clients : {1, 16}) UpDown(b, pid, clients, &next_si, "");

  // Mutable read-test-write (small writes, 16 in flight) and version.
  {
    auto cs = b.Clients(1);
    gbs::Client* c = cs[0].get();
    const int kTotal = 3000, kInFlight = 16;
    int sent = 0, done = 0;
    std::string we(32, 'W');
    std::function<void()> one = [&] {
      if (sent == kTotal) return;
      gbs::RtwRequest w;
      w.shares[static_cast<std::uint32_t>(sent % 10)].write.push_back({0, "sixty-four bytes of mutable share data, more or less, for a bench"});
      gbs::StorageIndex si = Si(1000 + sent / 10);
      ++sent;
      c->ReadTestWrite(si, we, kLease, w, [&](Result<gbs::RtwResponse> r) {
        if (!r.ok() || !r->success) ++b.failures;
        ++done;
        one();
      });
    };
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kInFlight; ++i) one();
    b.loop.RunUntil([&] { return done == kTotal; }, 600000);
    std::printf("{\"bench\": \"gbs_mutable_rtw\", \"requests\": %d, \"in_flight\": %d, \"requests_per_s\": %.0f}\n",
                kTotal, kInFlight, kTotal / Seconds(t0));
    sent = done = 0;
    const int kVersions = 10000;
    std::function<void()> ver = [&] {
      if (sent == kVersions) return;
      ++sent;
      c->GetVersion([&](Result<gbs::Version> r) {
        if (!r.ok()) ++b.failures;
        ++done;
        ver();
      });
    };
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kInFlight; ++i) ver();
    b.loop.RunUntil([&] { return done == kVersions; }, 600000);
    std::printf("{\"bench\": \"gbs_version\", \"requests\": %d, \"in_flight\": %d, \"requests_per_s\": %.0f}\n",
                kVersions, kInFlight, kVersions / Seconds(t0));
    b.CloseAll(cs);
  }

  // cairnd's memory while 100 clients (--uploads) upload at once (8 MiB
  // shares); a board with fewer connections (max_connections) refuses more.
  {
    const int kUploads = uploads;
    auto cs = b.Clients(kUploads);
    int left = kUploads;
    std::uint64_t max_anon = 0, max_file = 0;
    std::unique_ptr<Timer> sampler;
    std::function<void()> sample = [&] {
      Rss m = Memory(pid);
      max_anon = std::max(max_anon, m.anon);
      max_file = std::max(max_file, m.file);
      if (left > 0) sampler = b.loop.PostAfter(20, sample);
    };
    std::uint64_t before = Memory(pid).anon;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kUploads; ++i) b.Upload(cs[i].get(), Si(5000 + i), 8ull << 20, [&] { --left; });
    sample();
    b.loop.RunUntil([&] { return left == 0; }, 600000);
    double secs = Seconds(t0);
    sampler.reset();
    std::printf("{\"bench\": \"gbs_cairnd_rss_100_uploads\", \"uploads\": %d, \"share_mib\": 8, \"mib_per_s\": %.1f, "
                "\"anon_before_bytes\": %llu, \"max_anon_bytes\": %llu, \"max_file_bytes\": %llu}\n",
                kUploads, kUploads * 8.0 / secs, static_cast<unsigned long long>(before),
                static_cast<unsigned long long>(max_anon), static_cast<unsigned long long>(max_file));
    b.CloseAll(cs);
  }

  std::string status = Run(g_runner + " " + bin + "/cairn -d " + node + " --json status");
  auto field = [&](const char* name) -> unsigned long long {
    std::size_t at = status.find(std::string("\"") + name + "\"");
    return at == std::string::npos ? 0 : std::strtoull(status.c_str() + status.find(':', at) + 1, nullptr, 10);
  };
  std::printf("{\"bench\": \"gbs_cairnd_loop\", \"max_busy_us\": %llu, \"max_busy_cpu_us\": %llu, "
              "\"max_drain_cpu_us\": %llu, \"max_drain_tasks\": %llu, \"client_failures\": %d}\n",
              field("max_busy_us"), field("max_busy_cpu_us"), field("max_drain_cpu_us"), field("max_drain_tasks"),
              b.failures);
  watcher.reset();
  std::printf("{\"bench\": \"gbs_cairnd_rss_whole_run\", \"board_build\": \"%s\", \"runner\": \"%s\", "
              "\"max_anon_bytes\": %llu, \"max_file_bytes\": %llu}\n",
              std::filesystem::path(bin).parent_path().filename().c_str(), g_runner.c_str(),
              static_cast<unsigned long long>(peak.anon), static_cast<unsigned long long>(peak.file));
  StopNode(pid);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
  return b.failures == 0 ? 0 : 1;
}
