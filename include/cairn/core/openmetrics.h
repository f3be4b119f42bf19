// OpenMetrics text exposition (what Prometheus scrapes): a writer that emits
// each metric family once, with HELP and TYPE, and "# EOF" at the end.
// Any thread; one writer per thread.
#pragma once

#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace cairn {

class OpenMetricsWriter {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  // `name` without the "_total" suffix; the sample gets it.
  void Counter(std::string_view name, std::string_view help, double value, Labels labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, Labels labels = {});
  // The whole exposition, ending in "# EOF\n".
  std::string Finish();

 private:
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, double value, Labels labels);
  std::string out_;
  std::set<std::string, std::less<>> families_;
};

}  // namespace cairn
