// The daemon's composition root. Loop thread only.
#include "daemon/node.h"

#include <cjson/cJSON.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "cairn/core/file.h"
#include "cairn/core/log.h"
#include "cairn/core/openmetrics.h"
#include "cairn/core/version.h"
#include "cairn/crypto/aead.h"
#include "cairn/platform/platform.h"
#include "cairn/tls/session.h"


namespace cairn::daemon {
namespace {

struct Memory {
  std::uint64_t anon = 0, file = 0, shmem = 0;
};

// Resident memory split the way the benchmarks report it: anonymous (heap,
// stacks) and file-backed (binaries, and LMDB's mapped pages).
Memory ReadMemory() {
  Memory m;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return m;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kb;
    if (std::sscanf(line, "RssAnon: %llu kB", &kb) == 1) m.anon = kb * 1024;
    if (std::sscanf(line, "RssFile: %llu kB", &kb) == 1) m.file = kb * 1024;
    if (std::sscanf(line, "RssShmem: %llu kB", &kb) == 1) m.shmem = kb * 1024;
  }
  std::fclose(f);
  return m;
}


control::CommandsOptions CommandsOptionsOf(const Config& config, const NodePaths& paths) {
  control::CommandsOptions o;
  o.test_hooks = std::getenv("CAIRN_TEST_HOOKS") != nullptr;
  o.private_dir = paths.private_dir;
  o.spool_dir = paths.dir + "/tmp";
  o.shares_needed = config.shares_needed;
  o.shares_total = config.shares_total;
  o.shares_happy = config.shares_happy;
  o.max_segment_size = config.max_segment_size;
  o.sdmf_max_bytes = config.limits.sdmf_max_bytes;
  return o;
}

}  // namespace

Node::Node(Loop& loop, NodePaths paths, Config config, std::string node_id)
    : loop_(loop),
      paths_(std::move(paths)),
      config_(std::move(config)),
      node_id_(std::move(node_id)),
      started_ms_(loop.NowMs()),
      commands_(loop, config_.limits, *this, CommandsOptionsOf(config_, paths_)),
      control_(loop, config_.limits, commands_) {}

Node::~Node() = default;

Status Node::Start() {
  started_ = true;
  // The record layer every TLS context made from here on uses (the storage
  // listener's and the grid client's): limits.tls_own_records is the field
  // kill switch; CAIRN_TLS_OWN_RECORDS still overrides it for tests.
  tls::SetOwnRecords(config_.limits.tls_own_records != 0);
  // Open the share store first: a node whose store cannot open (missing,
  // unreadable, unknown format) must not accept requests. Opening is bounded:
  // it maps the environment and finishes only what a crash left in flight.
  store::StoreOptions so = store::StoreOptions::FromLimits(config_.limits, paths_.store);
  so.read_only = config_.read_only;
  so.expiry = config_.lease_expiry == "age" ? store::LeaseExpiry::kAge : store::LeaseExpiry::kOff;
  auto opened = store::ShareStore::Open(loop_, std::move(so));
  if (!opened.ok()) return opened.status();
  store_ = std::move(opened).value();
  // Task records are read (and unfinished ones marked interrupted) before
  // any client can ask about them.
  CAIRN_TRY(commands_.Open(paths_.control_db));
  auto watch = [this](int signum) {
    auto* h = new uv_signal_t;
    uv_signal_init(loop_.uv(), h);
    h->data = this;
    uv_signal_start(
        h,
        [](uv_signal_t* s, int sig) {
          auto* node = static_cast<Node*>(s->data);
          // Adapter only: the shutdown runs from the queue.
          node->loop_.Post([node, sig] { node->OnSignal(sig); });
        },
        signum);
    // Signal watchers alone do not keep the loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(h));
    return h;
  };
  sigterm_ = watch(SIGTERM);
  sigint_ = watch(SIGINT);
  CAIRN_TRY(StartStorage());
  RefreshSpace();
  ScheduleMemoryTrim();
  if (config_.metrics_port != 0) {
    metrics_ = std::make_unique<MetricsListener>(loop_, [this] { return MetricsText(); });
    CAIRN_TRY(metrics_->Start(config_.metrics_port));
    CAIRN_LOG(Info, "metrics on http://127.0.0.1:%u/metrics", static_cast<unsigned>(metrics_->port()));
  }
  CAIRN_TRY(control_.Start(paths_.socket));
  StartBoardWatch();
  CAIRN_LOG(Info, "cairnd %s node %s (%s, board %s) storage %s:%u control unix:%s", kVersion, node_id_.c_str(),
            config_.nickname.c_str(), config_.board.c_str(), config_.listen_address.c_str(),
            static_cast<unsigned>(http_->port()), paths_.socket.c_str());
  return Status();
}

void Node::RefreshSpace() {
  if (!store_ || stopping_) return;
  store_->Space([this](Result<store::SpaceInfo> info) {
    if (stopping_) return;
    if (info.ok()) {
      space_ = *info;
      space_wall_ms_ = static_cast<std::uint64_t>(std::time(nullptr)) * 1000;
    }
    space_timer_ = loop_.PostAfter(10000, [this] { RefreshSpace(); });
  });
}

// A large upload or download leaves freed buffers in the middle of the heap
// (blocks under limits.malloc_mmap_threshold_bytes come from it); they stay
// resident until trimmed. put_get_bench: 10 MB of a client's idle anonymous
// memory after a 64 MiB put and get, 2.5 MB once trimmed. At least 1 s
// apart; an unchanged count of free bytes (nothing freed since) is skipped.
void Node::ScheduleMemoryTrim() {
  if (stopping_ || config_.limits.malloc_trim_ms == 0) return;
  const std::uint64_t every_ms = std::max<std::uint64_t>(config_.limits.malloc_trim_ms, 1000);
  trim_timer_ = loop_.PostAfter(every_ms, [this] {
    if (stopping_) return;
    constexpr std::uint64_t kMinFree = 1 << 20;
    std::uint64_t t0 = uv_hrtime();
    if (platform::ReleaseFreeMemory(kMinFree, &heap_free_seen_)) {
      CAIRN_LOG(Debug, "returned up to %llu free heap bytes to the system in %llu us",
                static_cast<unsigned long long>(heap_free_seen_),
                static_cast<unsigned long long>((uv_hrtime() - t0) / 1000));
    }
    ScheduleMemoryTrim();
  });
}

void Node::StartBoardWatch() {
  platform::BoardHardware hw = platform::BoardHardwareOf(config_.board);
  platform::BoardWatchOptions o;
  o.watchdog = config_.watchdog.value_or(hw.watchdog);
  o.watchdog_interval_ms = config_.watchdog_interval_ms.value_or(hw.watchdog_interval_ms);
  o.led = config_.led.value_or(hw.led);
  if (o.watchdog.empty() && o.led.empty()) return;
  std::string what = o.watchdog.empty() ? "" : "watchdog " + o.watchdog + " every " +
                                                   std::to_string(o.watchdog_interval_ms) + " ms";
  if (!o.led.empty()) what += (what.empty() ? "" : ", ") + std::string("status LED ") + o.led;
  board_watch_ = std::make_unique<platform::BoardWatch>(loop_, std::move(o), [this] {
    platform::HealthSample h;
    if (store_) {
      store::StoreStats ss = store_->stats();
      h.commits = ss.commits;
      h.pending = ss.queued_ops;
      h.store_error = ss.sticky_error;
    }
    h.busy = http_ && http_->open_connections() > 0;
    return h;
  });
  Status st = board_watch_->Start();
  if (!st.ok()) {
    // A missing device (driver not loaded) must not keep the node down; the
    // error shows in the log and in `cairn status` as the last error.
    CAIRN_LOG(Error, "running without the watchdog: %s", st.ToString().c_str());
    board_watch_.reset();
    return;
  }
  CAIRN_LOG(Info, "%s", what.c_str());
}

Status Node::StartStorage() {
  CAIRN_TRY_ASSIGN(std::string key, ReadWholeFile(paths_.tls_key));
  CAIRN_TRY_ASSIGN(std::string cert, ReadWholeFile(paths_.tls_cert));
  CAIRN_TRY_ASSIGN(std::string swissnum, ReadWholeFile(paths_.swissnum));
  while (!swissnum.empty() && (swissnum.back() == '\n' || swissnum.back() == '\r')) swissnum.pop_back();
  tls::ServerOptions to;
  to.key_pem = std::move(key);
  to.cert_pem = std::move(cert);
  to.prefer_chacha = config_.limits.tls_prefer_chacha == 1;
  tls_first_suite_by_ = "limit";
  if (config_.limits.tls_prefer_chacha >= 2) {
    // Whichever seals faster on this CPU: a few milliseconds, once.
    crypto::AeadSealCost cost = crypto::MeasureAeadSealCost();
    to.prefer_chacha = cost.chacha20_poly1305_ns_per_byte < cost.aes_128_gcm_ns_per_byte;
    tls_first_suite_by_ = "measured";
    tls_aes_ns_per_byte_ = cost.aes_128_gcm_ns_per_byte;
    tls_chacha_ns_per_byte_ = cost.chacha20_poly1305_ns_per_byte;
    CAIRN_LOG(Info, "TLS: %s first (sealing 16 KiB records: AES-128-GCM %.3f ns/byte, ChaCha20-Poly1305 %.3f)",
              to.prefer_chacha ? "ChaCha20-Poly1305" : "AES-128-GCM", cost.aes_128_gcm_ns_per_byte,
              cost.chacha20_poly1305_ns_per_byte);
  }
  tls_first_suite_ = to.prefer_chacha ? "chacha20-poly1305" : "aes-128-gcm";
  CAIRN_TRY_ASSIGN(std::shared_ptr<tls::Context> ctx, tls::Context::NewServer(to));
  gbs::StorageServerOptions go;
  go.swissnum = std::move(swissnum);
  go.application_version = std::string("cairn/") + kVersion;
  go.rtw_body_bytes = config_.limits.gbs_rtw_body_bytes;
  go.read_bytes = config_.limits.gbs_read_bytes;
  go.write_piece_bytes = config_.limits.gbs_write_piece_bytes;
  go.read_piece_bytes = config_.limits.gbs_read_piece_bytes;
  go.upload_buffer_bytes = config_.limits.gbs_upload_buffer_bytes;
  gbs_ = std::make_unique<gbs::StorageServer>(loop_, *store_, std::move(go));
  http::ServerOptions ho = http::ServerOptions::FromLimits(config_.limits);
  ho.address = config_.listen_address;
  ho.port = config_.port;
  http_ = std::make_unique<http::Server>(loop_, std::move(ctx));
  gbs::StorageServer* handler = gbs_.get();
  Status st = http_->Start(ho, [handler](std::shared_ptr<http::Exchange> ex) { handler->Handle(std::move(ex)); });
  if (!st.ok()) return st.WithContext("storage listener on " + config_.listen_address + ":" + std::to_string(config_.port));
  return Status();
}

void Node::OnSignal(int signum) {
  CAIRN_LOG(Info, "received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  Stop([this] { loop_.Stop(); });
}

void Node::Stop(Task done) {
  if (stopping_) {
    CAIRN_LOG(Info, "shutdown already in progress");
    return;
  }
  stopping_ = true;
  space_timer_.reset();
  trim_timer_.reset();
  stopped_ = std::move(done);
  // A shutdown that cannot finish in 5 s is a bug; say so and leave, so a
  // supervisor can restart the node instead of waiting forever.
  stop_deadline_ = loop_.PostAfter(5000, [] {
    CAIRN_LOG(Error, "shutdown did not finish within 5 s; exiting");
    std::_Exit(1);
  });
  // Order: stop taking requests first (control, then the storage listener);
  // the tasks' records next; the store last, after everything that writes.
  control_.Close([this] {
    auto after_http = [this] {
      auto after_metrics = [this] { commands_.Close([this] { CloseStore(); }); };
      if (!metrics_) return after_metrics();
      metrics_->Close([this, after_metrics]() mutable {
        metrics_.reset();
        after_metrics();
      });
    };
    if (!http_) return after_http();
    http_->Close([this, after_http]() mutable {
      http_.reset();
      gbs_.reset();
      after_http();
    });
  });
}

void Node::CloseStore() {
  if (!store_) return Finish();
  store_->Close([this] {
    store_.reset();
    Finish();
  });
}

void Node::Finish() {
  for (uv_signal_s* h : {sigterm_, sigint_}) {
    if (h) uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_signal_t*>(x); });
  }
  sigterm_ = sigint_ = nullptr;
  stop_deadline_.reset();
  if (board_watch_) board_watch_->Stop();  // the magic close: this was a clean stop
  CAIRN_LOG(Info, "stopped cleanly");
  if (stopped_) loop_.Post(std::move(stopped_));
}

Json Node::StatusJson() {
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddStringToObject(o, "version", kVersion);
  cJSON_AddStringToObject(o, "node_id", node_id_.c_str());
  cJSON_AddStringToObject(o, "nickname", config_.nickname.c_str());
  cJSON_AddStringToObject(o, "board", config_.board.c_str());
  cJSON_AddNumberToObject(o, "pid", getpid());
  cJSON_AddNumberToObject(o, "uptime_s", static_cast<double>((loop_.NowMs() - started_ms_) / 1000));
  cJSON_AddStringToObject(o, "node_dir", paths_.dir.c_str());
  cJSON_AddStringToObject(o, "store_path", paths_.store.c_str());
  cJSON* listening = cJSON_AddArrayToObject(o, "listening");
  cJSON* ctl = cJSON_CreateObject();
  cJSON_AddStringToObject(ctl, "kind", "control");
  cJSON_AddStringToObject(ctl, "address", ("unix:" + paths_.socket).c_str());
  cJSON_AddItemToArray(listening, ctl);
  if (http_) {
    cJSON* storage = cJSON_CreateObject();
    cJSON_AddStringToObject(storage, "kind", "storage");
    cJSON_AddStringToObject(storage, "address",
                            (config_.listen_address + ":" + std::to_string(http_->port())).c_str());
    cJSON_AddNumberToObject(storage, "connections", static_cast<double>(http_->open_connections()));
    // Who protects new connections' application records (docs/tls.md).
    cJSON_AddStringToObject(storage, "tls_records", tls::OwnRecordsDefault() ? "cairn" : "mbedtls");
    // The suite offered first, and whether the limit or a measurement chose it.
    cJSON_AddStringToObject(storage, "tls_first_suite", tls_first_suite_.c_str());
    cJSON_AddStringToObject(storage, "tls_first_suite_by", tls_first_suite_by_.c_str());
    if (tls_first_suite_by_ == "measured") {
      cJSON_AddNumberToObject(storage, "tls_aes_128_gcm_ns_per_byte", tls_aes_ns_per_byte_);
      cJSON_AddNumberToObject(storage, "tls_chacha20_poly1305_ns_per_byte", tls_chacha_ns_per_byte_);
    }
    cJSON_AddItemToArray(listening, storage);
  }
  Memory m = ReadMemory();
  cJSON* rss = cJSON_AddObjectToObject(o, "rss");
  cJSON_AddNumberToObject(rss, "anon_bytes", static_cast<double>(m.anon));
  cJSON_AddNumberToObject(rss, "file_bytes", static_cast<double>(m.file));
  cJSON_AddNumberToObject(rss, "shmem_bytes", static_cast<double>(m.shmem));
  LoopStats ls = loop_.stats();
  cJSON* lp = cJSON_AddObjectToObject(o, "loop");
  cJSON_AddNumberToObject(lp, "iterations", static_cast<double>(ls.iterations));
  cJSON_AddNumberToObject(lp, "tasks_run", static_cast<double>(ls.tasks_run));
  cJSON_AddNumberToObject(lp, "max_busy_us", static_cast<double>(ls.max_busy_us));
  cJSON_AddNumberToObject(lp, "max_busy_cpu_us", static_cast<double>(ls.max_busy_cpu_us));
  cJSON_AddNumberToObject(lp, "max_drain_cpu_us", static_cast<double>(ls.max_drain_cpu_us));
  cJSON_AddNumberToObject(lp, "max_drain_tasks", static_cast<double>(ls.max_drain_tasks));
  cJSON_AddNumberToObject(lp, "queue_high_water", static_cast<double>(ls.queue_high_water));
  const control::ServerStats& cs = control_.stats();
  cJSON* c = cJSON_AddObjectToObject(o, "control");
  cJSON_AddNumberToObject(c, "connections_open", static_cast<double>(cs.connections_open));
  cJSON_AddNumberToObject(c, "connections_accepted", static_cast<double>(cs.connections_accepted));
  cJSON_AddNumberToObject(c, "requests", static_cast<double>(cs.requests));
  cJSON_AddNumberToObject(c, "bad_frames", static_cast<double>(cs.bad_frames));
  cJSON_AddItemToObject(o, "tasks", commands_.TaskSummary().release());
  cJSON_AddItemToObject(o, "maintenance", commands_.MaintenanceStatus().release());
  cJSON_AddItemToObject(o, "backup_schedules", commands_.BackupScheduleStatus().release());
  if (store_) {
    store::StoreStats ss = store_->stats();
    cJSON* st = cJSON_AddObjectToObject(o, "store");
    cJSON_AddNumberToObject(st, "shares", static_cast<double>(ss.shares));
    cJSON_AddNumberToObject(st, "commits", static_cast<double>(ss.commits));
    cJSON_AddNumberToObject(st, "queued_ops", static_cast<double>(ss.queued_ops));
    cJSON_AddBoolToObject(st, "read_only", store_->options().read_only);
    if (!ss.sticky_error.empty()) cJSON_AddStringToObject(st, "write_error", ss.sticky_error.c_str());
    cJSON_AddNumberToObject(st, "no_space_refusals", static_cast<double>(ss.no_space_refusals));
    if (!ss.full_reason.empty()) {
      cJSON* full = cJSON_AddObjectToObject(st, "full");
      cJSON_AddStringToObject(full, "reason", ss.full_reason.c_str());
      cJSON_AddNumberToObject(full, "since_ms", static_cast<double>(ss.full_since_ms));
      cJSON_AddNumberToObject(full, "needed_bytes", static_cast<double>(ss.full_needed_bytes));
      if (space_) cJSON_AddNumberToObject(full, "available_bytes", static_cast<double>(space_->available_bytes));
    }
    if (space_) {
      cJSON_AddNumberToObject(st, "available_bytes", static_cast<double>(space_->available_bytes));
      cJSON_AddNumberToObject(st, "used_bytes", static_cast<double>(space_->used_bytes));
      cJSON_AddNumberToObject(st, "incoming_bytes", static_cast<double>(space_->incoming_bytes));
      cJSON_AddNumberToObject(st, "space_as_of_ms", static_cast<double>(space_wall_ms_));
    }
  }
  if (board_watch_) {
    cJSON* hw = cJSON_AddObjectToObject(o, "watchdog");
    cJSON_AddStringToObject(hw, "state", platform::BoardWatch::StateName(board_watch_->state()));
    cJSON_AddNumberToObject(hw, "pets", static_cast<double>(board_watch_->pets()));
    if (!board_watch_->problem().empty()) cJSON_AddStringToObject(hw, "problem", board_watch_->problem().c_str());
  }
  LastError last = GetLastError();
  if (last.wall_ms != 0) {
    cJSON* le = cJSON_AddObjectToObject(o, "last_error");
    cJSON_AddStringToObject(le, "message", last.line.c_str());
    cJSON_AddNumberToObject(le, "wall_ms", static_cast<double>(last.wall_ms));
  }
  return out;
}

}  // namespace cairn::daemon

namespace cairn::daemon {
namespace {

// A number member of a status object, 0 where the object or member is missing.
double Num(const cJSON* obj, const char* key) {
  const cJSON* v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : nullptr;
  return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

void WriteLoopMetrics(OpenMetricsWriter& w, const LoopStats& ls) {
  w.Counter("cairn_loop_iterations", "Event-loop iterations.", static_cast<double>(ls.iterations));
  w.Counter("cairn_loop_callbacks", "Callbacks run from the eventual-send queue.", static_cast<double>(ls.tasks_run));
  w.Counter("cairn_loop_busy_seconds", "Time the loop spent outside its poll wait.",
            static_cast<double>(ls.total_busy_us) / 1e6);
  w.Gauge("cairn_loop_max_busy_seconds", "The longest single loop iteration (a stall).",
          static_cast<double>(ls.max_busy_us) / 1e6);
  w.Gauge("cairn_loop_max_busy_cpu_seconds", "The most CPU time the loop thread used in one iteration.",
          static_cast<double>(ls.max_busy_cpu_us) / 1e6);
}

// The maintenance schedule (docs/check.md): its passes and the last one's
// totals, from `status`, the object Commands::MaintenanceStatus gives.
void WriteMaintenanceMetrics(OpenMetricsWriter& w, const cJSON* status) {
  w.Counter("cairn_maintenance_passes", "Maintenance passes (deep-checks of every alias) ended.",
            Num(status, "passes"));
  w.Gauge("cairn_maintenance_running", "1 while a maintenance pass runs.",
          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "running")) ? 1.0 : 0.0);
  w.Gauge("cairn_maintenance_next_run_timestamp_seconds", "When the next maintenance pass is due (0: none).",
          Num(status, "next_run_ms") / 1000.0);
  const cJSON* last = cJSON_GetObjectItemCaseSensitive(status, "last");
  if (!cJSON_IsObject(last)) return;
  w.Gauge("cairn_maintenance_last_finished_timestamp_seconds", "When the last maintenance pass ended.",
          Num(last, "finished_ms") / 1000.0);
  w.Gauge("cairn_maintenance_last_objects", "The last maintenance pass's objects, by outcome.",
          Num(last, "objects_checked"), {{"outcome", "checked"}});
  w.Gauge("cairn_maintenance_last_objects", "", Num(last, "unhealthy"), {{"outcome", "unhealthy"}});
  w.Gauge("cairn_maintenance_last_objects", "", Num(last, "repaired"), {{"outcome", "repaired"}});
  w.Gauge("cairn_maintenance_last_objects", "", Num(last, "unrecoverable"), {{"outcome", "unrecoverable"}});
  w.Gauge("cairn_maintenance_last_leases_renewed", "Leases the last maintenance pass renewed (servers x objects).",
          Num(last, "leases_renewed"));
}

// Scheduled backups (docs/dirs.md, "Scheduled backups"): per target, its
// runs, the next run and the last run's outcome and files, from `status`,
// the object Commands::BackupScheduleStatus gives. One family at a time over
// every schedule, so a family's samples stay together.
void WriteBackupScheduleMetrics(OpenMetricsWriter& w, const cJSON* status) {
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(status, "schedules");
  w.Gauge("cairn_backup_schedules", "Scheduled backups.", static_cast<double>(cJSON_GetArraySize(list)));
  auto each = [list](auto&& emit) {
    const cJSON* b;
    cJSON_ArrayForEach(b, list) {
      const cJSON* t = cJSON_GetObjectItemCaseSensitive(b, "target");
      emit(b, cJSON_GetObjectItemCaseSensitive(b, "last"), std::string(cJSON_IsString(t) ? t->valuestring : ""));
    }
  };
  each([&](const cJSON* b, const cJSON*, const std::string& target) {
    w.Counter("cairn_backup_schedule_runs", "Scheduled backup runs ended, by target.", Num(b, "runs"),
              {{"target", target}});
  });
  each([&](const cJSON* b, const cJSON*, const std::string& target) {
    w.Gauge("cairn_backup_schedule_running", "1 while a target's scheduled backup runs.",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "running")) ? 1.0 : 0.0, {{"target", target}});
  });
  each([&](const cJSON* b, const cJSON*, const std::string& target) {
    w.Gauge("cairn_backup_schedule_next_run_timestamp_seconds",
            "When a target's next scheduled backup is due (0: running).", Num(b, "next_run_ms") / 1000.0,
            {{"target", target}});
  });
  each([&](const cJSON*, const cJSON* last, const std::string& target) {
    w.Gauge("cairn_backup_schedule_last_finished_timestamp_seconds",
            "When a target's last scheduled backup ended (0: none yet).", Num(last, "finished_ms") / 1000.0,
            {{"target", target}});
  });
  each([&](const cJSON*, const cJSON* last, const std::string& target) {
    const cJSON* state = cJSON_GetObjectItemCaseSensitive(last, "state");
    w.Gauge("cairn_backup_schedule_last_succeeded", "1 if a target's last scheduled backup succeeded.",
            cJSON_IsString(state) && std::string(state->valuestring) == "succeeded" ? 1.0 : 0.0,
            {{"target", target}});
  });
  each([&](const cJSON*, const cJSON* last, const std::string& target) {
    w.Gauge("cairn_backup_schedule_last_files", "A target's last scheduled backup's files, by outcome.",
            Num(last, "files_uploaded"), {{"target", target}, {"outcome", "uploaded"}});
    w.Gauge("cairn_backup_schedule_last_files", "", Num(last, "files_reused"), {{"target", target}, {"outcome", "reused"}});
    w.Gauge("cairn_backup_schedule_last_files", "", Num(last, "files_skipped"),
            {{"target", target}, {"outcome", "skipped"}});
  });
}

void WriteGbsMetrics(OpenMetricsWriter& w, const gbs::StorageServerStats& gs) {
  bool first = true;
  for (const auto& [endpoint, by_status] : gs.requests) {
    for (const auto& [status, count] : by_status) {
      w.Counter("cairn_gbs_requests", first ? "GBS requests answered, by endpoint and HTTP status." : "",
                static_cast<double>(count), {{"endpoint", endpoint}, {"status", std::to_string(status)}});
      first = false;
    }
  }
  w.Counter("cairn_gbs_bytes_in", "GBS request body bytes received.", static_cast<double>(gs.bytes_in));
  w.Counter("cairn_gbs_bytes_out", "GBS response body bytes sent.", static_cast<double>(gs.bytes_out));
  w.Counter("cairn_gbs_uploads_queued", "GBS uploads that waited for an upload slot.",
            static_cast<double>(gs.uploads_queued));
}

// The store's counters, and its space where the node measures it (`space`
// may be null).
void WriteStoreMetrics(OpenMetricsWriter& w, const store::StoreStats& ss, const store::SpaceInfo* space) {
  w.Gauge("cairn_store_shares", "Shares held (complete immutable and mutable).", static_cast<double>(ss.shares));
  w.Counter("cairn_store_commits", "Store write transactions committed.", static_cast<double>(ss.commits));
  w.Counter("cairn_store_writes", "Store writes committed.", static_cast<double>(ss.ops_committed));
  w.Gauge("cairn_store_queued_writes", "Store writes queued or committing.", static_cast<double>(ss.queued_ops));
  w.Counter("cairn_store_expired_shares", "Shares deleted by the lease expiry sweep.",
            static_cast<double>(ss.expired_shares));
  w.Gauge("cairn_store_full", "1 while the store refuses writes for want of space (cairn status says why).",
          ss.full_reason.empty() ? 0.0 : 1.0);
  w.Counter("cairn_store_no_space_refusals", "Store writes refused for want of space.",
            static_cast<double>(ss.no_space_refusals));
  if (!space) return;
  w.Gauge("cairn_store_bytes", "Store space by kind (available is free space less the reservation).",
          static_cast<double>(space->available_bytes), {{"kind", "available"}});
  w.Gauge("cairn_store_bytes", "", static_cast<double>(space->used_bytes), {{"kind", "used"}});
  w.Gauge("cairn_store_bytes", "", static_cast<double>(space->incoming_bytes), {{"kind", "incoming"}});
}

}  // namespace

std::string Node::MetricsText() {
  OpenMetricsWriter w;
  w.Gauge("cairn_uptime_seconds", "Seconds since cairnd started.",
          static_cast<double>(loop_.NowMs() - started_ms_) / 1000.0);
  Memory m = ReadMemory();
  w.Gauge("cairn_resident_bytes", "Resident memory by kind (LMDB pages are file-backed).", static_cast<double>(m.anon),
          {{"kind", "anon"}});
  w.Gauge("cairn_resident_bytes", "", static_cast<double>(m.file), {{"kind", "file"}});
  WriteLoopMetrics(w, loop_.stats());
  const control::ServerStats& cs = control_.stats();
  w.Gauge("cairn_control_connections", "Open control-socket connections.", static_cast<double>(cs.connections_open));
  w.Counter("cairn_control_requests", "Control-socket frames handled.", static_cast<double>(cs.requests));
  w.Counter("cairn_control_bad_frames", "Control-socket frames refused as malformed or oversized.",
            static_cast<double>(cs.bad_frames));
  Json tasks = commands_.TaskSummary();
  const cJSON* by_state = cJSON_GetObjectItemCaseSensitive(tasks.get(), "by_state");
  const cJSON* s;
  cJSON_ArrayForEach(s, by_state) {
    w.Gauge("cairn_tasks", "Control task records kept, by state.", s->valuedouble, {{"state", s->string}});
  }
  WriteMaintenanceMetrics(w, commands_.MaintenanceStatus().get());
  WriteBackupScheduleMetrics(w, commands_.BackupScheduleStatus().get());
  if (gbs_) WriteGbsMetrics(w, gbs_->stats());
  if (store_) WriteStoreMetrics(w, store_->stats(), space_ ? &*space_ : nullptr);
  if (http_) {
    w.Gauge("cairn_gbs_connections", "Open GBS (storage) connections.", static_cast<double>(http_->open_connections()));
    w.Counter("cairn_gbs_connections_accepted", "GBS (storage) connections accepted, each a TLS handshake.",
              static_cast<double>(http_->accepted_connections()));
  }
  return w.Finish();
}

}  // namespace cairn::daemon
