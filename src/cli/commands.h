// Every command's entry point, each defined in its own src/cli/<name>.cc and
// listed once in the table in src/cli/main.cc. Single-threaded.
#pragma once

#include <string>

#include "cairn/core/status.h"
#include "cairn/gbs/nurl.h"
#include "cli/cli.h"

namespace cairn::cli {

int InitMain(const Options& opts);
int StatusMain(const Options& opts);
int TasksMain(const Options& opts);
int NurlMain(const Options& opts);
int MetricsMain(const Options& opts);
int AliasMain(const Options& opts);
int TahoeEntryMain(const Options& opts);
int ServersMain(const Options& opts);
int PutMain(const Options& opts);
int GetMain(const Options& opts);
int MutableMain(const Options& opts);
int MutableCreateMain(const Options& opts);
int MutablePutMain(const Options& opts);
int MutableGetMain(const Options& opts);
int DebugSskCapMain(const Options& opts);
int DebugChkCapMain(const Options& opts);
int DebugParseCapMain(const Options& opts);
int ImageMain(const Options& opts);
int CheckMain(const Options& opts);
int DeepCheckMain(const Options& opts);
int MaintenanceMain(const Options& opts);
int BackupScheduleMain(const Options& opts);

// The NURL of the node in `node_dir`, from its files.
Result<gbs::Nurl> NodeNurl(const std::string& node_dir);

}  // namespace cairn::cli
