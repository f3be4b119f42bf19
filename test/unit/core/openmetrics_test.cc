#include "cairn/core/openmetrics.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(OpenMetricsTest, FamiliesOnceSamplesWithLabelsAndEof) {
  OpenMetricsWriter w;
  w.Counter("cairn_requests", "Requests \"served\".", 3, {{"method", "status"}});
  w.Counter("cairn_requests", "Requests \"served\".", 4, {{"method", "tasks.list"}});
  w.Gauge("cairn_loop_max_busy_seconds", "Longest iteration.", 0.0015);
  EXPECT_EQ(w.Finish(),
            "# TYPE cairn_requests counter\n"
            "# HELP cairn_requests Requests \\\"served\\\".\n"
            "cairn_requests_total{method=\"status\"} 3\n"
            "cairn_requests_total{method=\"tasks.list\"} 4\n"
            "# TYPE cairn_loop_max_busy_seconds gauge\n"
            "# HELP cairn_loop_max_busy_seconds Longest iteration.\n"
            "cairn_loop_max_busy_seconds 0.0015\n"
            "# EOF\n");
}

}  // namespace
}  // namespace cairn
