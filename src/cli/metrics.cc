// `cairn metrics`: the node's metrics as OpenMetrics text, for scripts and
// for a Prometheus textfile collector.
#include <cjson/cJSON.h>

#include <cstdio>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {

int MetricsMain(const Options& opts) {
  if (!opts.args.empty()) {
    if (opts.args[0] == "--help" || opts.args[0] == "-h") {
      std::printf("usage: cairn metrics\n\nPrints the running node's metrics in the OpenMetrics text format.\n");
      return 0;
    }
    return UsageError("metrics", "metrics takes no arguments");
  }
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call("metrics", Json());
  if (!result.ok()) return Fail(opts, result.status());
  if (opts.json) {
    PrintJson(*result);
  } else {
    const cJSON* text = cJSON_GetObjectItemCaseSensitive(result->get(), "text");
    std::fputs(cJSON_IsString(text) ? text->valuestring : "", stdout);
  }
  return 0;
}

}  // namespace cairn::cli
