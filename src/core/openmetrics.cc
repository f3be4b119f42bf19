// OpenMetrics text writer. Any thread.
#include "cairn/core/openmetrics.h"

#include <cmath>
#include <cstdio>

namespace cairn {
namespace {

void AppendEscaped(std::string* out, std::string_view s) {
  for (char c : s) {
    if (c == '\\' || c == '"') out->push_back('\\');
    if (c == '\n') {
      *out += "\\n";
      continue;
    }
    out->push_back(c);
  }
}

}  // namespace

void OpenMetricsWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  if (!families_.insert(std::string(name)).second) return;
  out_ += "# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += "\n# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(&out_, help);
  out_ += '\n';
}

void OpenMetricsWriter::Sample(std::string_view name, double value, Labels labels) {
  out_ += name;
  if (labels.size()) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      AppendEscaped(&out_, v);
      out_ += '"';
    }
    out_ += '}';
  }
  char buf[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, " %.0f\n", value);
  } else {
    std::snprintf(buf, sizeof buf, " %.9g\n", value);
  }
  out_ += buf;
}

void OpenMetricsWriter::Counter(std::string_view name, std::string_view help, double value, Labels labels) {
  Family(name, "counter", help);
  Sample(std::string(name) + "_total", value, labels);
}

void OpenMetricsWriter::Gauge(std::string_view name, std::string_view help, double value, Labels labels) {
  Family(name, "gauge", help);
  Sample(name, value, labels);
}

std::string OpenMetricsWriter::Finish() {
  out_ += "# EOF\n";
  return std::move(out_);
}

}  // namespace cairn
