// cairn.json parsing and printing. Any thread.
#include "cairn/core/config.h"

#include <cjson/cJSON.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cairn/core/json.h"

namespace cairn {
namespace {

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

Status ParseInto(const cJSON* root, Config* c) {
  CAIRN_TRY_ASSIGN(JsonObjectReader top, JsonObjectReader::Open(root, ""));
  std::uint64_t format = 0;
  CAIRN_TRY(top.Uint("format", &format, true));
  if (format != Config::kFormat) {
    return Status::UnsupportedVersion("config format " + std::to_string(format) + " (this cairn reads format " +
                                      std::to_string(Config::kFormat) + ")");
  }
  CAIRN_TRY(top.String("nickname", &c->nickname));
  c->board = std::string(BuildBoard());
  CAIRN_TRY(top.String("board", &c->board));
  CAIRN_TRY_ASSIGN(c->limits, BoardDefaults(c->board));

  std::string level = LevelName(c->log_level);
  CAIRN_TRY(top.String("log_level", &level));
  if (!ParseLogLevel(level, &c->log_level)) {
    return Status::InvalidArgument("key \"log_level\" must be one of error, warn, info, debug");
  }

  CAIRN_TRY(top.String("log_sink", &c->log_sink));
  if (c->log_sink != "stderr" && c->log_sink != "syslog") {
    return Status::InvalidArgument("key \"log_sink\" must be \"stderr\" or \"syslog\"");
  }

  const cJSON* storage = nullptr;
  CAIRN_TRY(top.Object("storage", &storage));
  if (storage) {
    CAIRN_TRY_ASSIGN(JsonObjectReader s, JsonObjectReader::Open(storage, "storage."));
    CAIRN_TRY(s.String("listen", &c->listen_address));
    std::uint64_t port = c->port;
    CAIRN_TRY(s.Uint("port", &port, false, 65535));
    c->port = static_cast<std::uint16_t>(port);
    CAIRN_TRY(s.String("host", &c->public_host));
    CAIRN_TRY(s.Bool("read_only", &c->read_only));
    CAIRN_TRY(s.String("lease_expiry", &c->lease_expiry));
    if (c->lease_expiry != "off" && c->lease_expiry != "age") {
      return Status::InvalidArgument("key \"storage.lease_expiry\" must be \"off\" or \"age\"");
    }
    CAIRN_TRY(s.Finish());
  }

  const cJSON* client = nullptr;
  CAIRN_TRY(top.Object("client", &client));
  if (client) {
    CAIRN_TRY_ASSIGN(JsonObjectReader cl, JsonObjectReader::Open(client, "client."));
    std::uint64_t k = c->shares_needed, n = c->shares_total, happy = c->shares_happy;
    CAIRN_TRY(cl.Uint("shares_needed", &k, false, 256));
    CAIRN_TRY(cl.Uint("shares_total", &n, false, 256));
    CAIRN_TRY(cl.Uint("shares_happy", &happy, false, 256));
    CAIRN_TRY(cl.Uint("max_segment_size", &c->max_segment_size, false, std::uint64_t{1} << 30));
    CAIRN_TRY(cl.Finish());
    if (k < 1 || n < k || happy < 1 || happy > n || c->max_segment_size < 1) {
      return Status::InvalidArgument(
          "keys \"client.*\" need 1 <= shares_needed <= shares_total <= 256, 1 <= shares_happy <= shares_total "
          "and a positive max_segment_size");
    }
    c->shares_needed = static_cast<std::uint32_t>(k);
    c->shares_total = static_cast<std::uint32_t>(n);
    c->shares_happy = static_cast<std::uint32_t>(happy);
  }

  const cJSON* metrics = nullptr;
  CAIRN_TRY(top.Object("metrics", &metrics));
  if (metrics) {
    CAIRN_TRY_ASSIGN(JsonObjectReader m, JsonObjectReader::Open(metrics, "metrics."));
    std::uint64_t port = 0;
    CAIRN_TRY(m.Uint("port", &port, false, 65535));
    c->metrics_port = static_cast<std::uint16_t>(port);
    CAIRN_TRY(m.Finish());
  }

  const cJSON* hardware = nullptr;
  CAIRN_TRY(top.Object("hardware", &hardware));
  if (hardware) {
    CAIRN_TRY_ASSIGN(JsonObjectReader h, JsonObjectReader::Open(hardware, "hardware."));
    std::string watchdog, led;
    std::uint64_t interval = 0;
    CAIRN_TRY(h.String("watchdog", &watchdog));
    CAIRN_TRY(h.String("led", &led));
    CAIRN_TRY(h.Uint("watchdog_interval_ms", &interval, false, 3600000));
    CAIRN_TRY(h.Finish());
    if (cJSON_GetObjectItemCaseSensitive(hardware, "watchdog")) c->watchdog = watchdog;
    if (cJSON_GetObjectItemCaseSensitive(hardware, "led")) c->led = led;
    if (cJSON_GetObjectItemCaseSensitive(hardware, "watchdog_interval_ms")) {
      if (interval < 100) return Status::InvalidArgument("key \"hardware.watchdog_interval_ms\" must be at least 100");
      c->watchdog_interval_ms = interval;
    }
  }

  const cJSON* limits = nullptr;
  CAIRN_TRY(top.Object("limits", &limits));
  if (limits) {
    for (const cJSON* item = limits->child; item; item = item->next) {
      std::uint64_t probe;
      if (!c->limits.Get(item->string, &probe)) {
        return Status::InvalidArgument(std::string("unknown key \"limits.") + item->string + "\"");
      }
    }
    CAIRN_TRY_ASSIGN(JsonObjectReader l, JsonObjectReader::Open(limits, "limits."));
    for (std::string_view name : Limits::Names()) {
      std::string key(name);
      std::uint64_t v;
      CAIRN_CHECK(c->limits.Get(key, &v), "limit names are consistent");
      CAIRN_TRY(l.Uint(key.c_str(), &v));
      CAIRN_TRY(c->limits.Set(key, v));
    }
    CAIRN_TRY(l.Finish());
  }
  return top.Finish();
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view source) {
  auto json = Json::Parse(text);
  if (!json.ok()) return json.status().WithContext(source);
  Config c;
  Status st = ParseInto(json->get(), &c);
  if (!st.ok()) return st.WithContext(source);
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    int err = errno;
    std::string msg = path + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > (1u << 20)) {
      std::fclose(f);
      return Status::InvalidArgument(path + ": larger than 1 MiB");
    }
  }
  std::fclose(f);
  return ParseConfig(text, path);
}

std::string ConfigToJson(const Config& c) {
  Json root = Json::NewObject();
  cJSON* r = root.get();
  cJSON_AddNumberToObject(r, "format", static_cast<double>(Config::kFormat));
  cJSON_AddStringToObject(r, "nickname", c.nickname.c_str());
  cJSON_AddStringToObject(r, "board", c.board.c_str());
  cJSON_AddStringToObject(r, "log_level", LevelName(c.log_level));
  cJSON_AddStringToObject(r, "log_sink", c.log_sink.c_str());
  cJSON* s = cJSON_AddObjectToObject(r, "storage");
  cJSON_AddStringToObject(s, "listen", c.listen_address.c_str());
  cJSON_AddNumberToObject(s, "port", c.port);
  cJSON_AddStringToObject(s, "host", c.public_host.c_str());
  if (c.read_only) cJSON_AddBoolToObject(s, "read_only", 1);
  if (c.lease_expiry != "off") cJSON_AddStringToObject(s, "lease_expiry", c.lease_expiry.c_str());
  if (c.shares_needed != 3 || c.shares_total != 10 || c.shares_happy != 7 || c.max_segment_size != (1u << 20)) {
    cJSON* cl = cJSON_AddObjectToObject(r, "client");
    cJSON_AddNumberToObject(cl, "shares_needed", c.shares_needed);
    cJSON_AddNumberToObject(cl, "shares_total", c.shares_total);
    cJSON_AddNumberToObject(cl, "shares_happy", c.shares_happy);
    cJSON_AddNumberToObject(cl, "max_segment_size", static_cast<double>(c.max_segment_size));
  }
  if (c.metrics_port != 0) {
    cJSON* m = cJSON_AddObjectToObject(r, "metrics");
    cJSON_AddNumberToObject(m, "port", c.metrics_port);
  }
  if (c.watchdog || c.watchdog_interval_ms || c.led) {
    cJSON* h = cJSON_AddObjectToObject(r, "hardware");
    if (c.watchdog) cJSON_AddStringToObject(h, "watchdog", c.watchdog->c_str());
    if (c.watchdog_interval_ms) cJSON_AddNumberToObject(h, "watchdog_interval_ms", static_cast<double>(*c.watchdog_interval_ms));
    if (c.led) cJSON_AddStringToObject(h, "led", c.led->c_str());
  }
  auto defaults = BoardDefaults(c.board);
  cJSON* l = cJSON_CreateObject();
  for (std::string_view name : Limits::Names()) {
    std::string key(name);
    std::uint64_t mine = 0, def = 0;
    c.limits.Get(key, &mine);
    if (!defaults.ok() || !defaults->Get(key, &def) || mine != def) {
      cJSON_AddNumberToObject(l, key.c_str(), static_cast<double>(mine));
    }
  }
  if (l->child) {
    cJSON_AddItemToObject(r, "limits", l);
  } else {
    cJSON_Delete(l);
  }
  return root.PrintPretty() + "\n";
}

}  // namespace cairn
