// The node's configuration: DIR/cairn.json, strict JSON. Board defaults come
// first, then the node's overrides; an unknown key anywhere is an error that
// names the key. Any thread (plain data).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/core/limits.h"
#include "cairn/core/log.h"
#include "cairn/core/status.h"

namespace cairn {

struct Config {
  static constexpr std::uint64_t kFormat = 1;

  std::string nickname;                    // "nickname"
  std::string board;                       // "board": whose defaults apply
  std::string listen_address = "127.0.0.1";  // "storage.listen": GBS bind address
  std::uint16_t port = 3456;               // "storage.port"
  std::string public_host = "127.0.0.1";   // "storage.host": host named in the NURL
  bool read_only = false;                  // "storage.read_only": refuse every share write
  std::string lease_expiry = "off";        // "storage.lease_expiry": "off" or "age"
  std::uint16_t metrics_port = 0;          // "metrics.port": /metrics on 127.0.0.1 (0: off)
  LogLevel log_level = LogLevel::kInfo;    // "log_level"
  std::string log_sink = "stderr";         // "log_sink": "stderr" or "syslog"
  // The immutable-file client ("client." keys), Tahoe-LAFS's defaults.
  std::uint32_t shares_needed = 3;         // "client.shares_needed": k
  std::uint32_t shares_total = 10;         // "client.shares_total": N (k..256)
  std::uint32_t shares_happy = 7;          // "client.shares_happy": servers of happiness (1..N)
  std::uint64_t max_segment_size = 1 << 20;  // "client.max_segment_size": enters the convergent key
  Limits limits;                           // board defaults + "limits" overrides
  // The board's watchdog and status LED (cairn/platform/board_io.h): unset
  // keeps the board's value (boards/<name>.mk, HW_ lines), "" turns one off.
  std::optional<std::string> watchdog;     // "hardware.watchdog": device path
  std::optional<std::uint64_t> watchdog_interval_ms;  // "hardware.watchdog_interval_ms"
  std::optional<std::string> led;          // "hardware.led": name under /sys/class/leds, or a path
};

// Parses cairn.json text. `source` names the file in error messages.
Result<Config> ParseConfig(std::string_view text, std::string_view source);
// Reads and parses a file.
Result<Config> LoadConfigFile(const std::string& path);
// The JSON a node directory stores: everything but limits equal to the
// board's defaults (so a later image's better defaults still apply).
std::string ConfigToJson(const Config& config);

}  // namespace cairn
