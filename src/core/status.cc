// Status strings and the code tables expanded from error_codes.def. Any thread.
#include "cairn/core/status.h"

#include <cstdio>
#include <cstdlib>

namespace cairn {
namespace {

struct CodeInfo {
  std::string_view name;
  int http;
  int exit_code;
  std::string_view meaning;
};

constexpr CodeInfo kCodes[] = {
#define X(name, wire, http, exit_code, meaning) {wire, http, exit_code, meaning},
#include "cairn/core/error_codes.def"
#undef X
};

const CodeInfo& Info(Code code) { return kCodes[static_cast<std::size_t>(code)]; }

}  // namespace

std::string_view CodeName(Code code) { return Info(code).name; }
int CodeHttpStatus(Code code) { return Info(code).http; }
int CodeExitCode(Code code) { return Info(code).exit_code; }
std::string_view CodeMeaning(Code code) { return Info(code).meaning; }

bool CodeFromName(std::string_view name, Code* out) {
  for (std::size_t i = 0; i < std::size(kCodes); ++i) {
    if (kCodes[i].name == name) {
      *out = static_cast<Code>(i);
      return true;
    }
  }
  return false;
}

void CheckFailed(const char* file, int line, const char* cond, std::string_view msg) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s: %.*s\n", file, line, cond, static_cast<int>(msg.size()),
               msg.data());
  std::fflush(stderr);
  std::abort();
}

Status::Status(Code code, std::string_view message) {
  if (code != Code::kOk) rep_ = std::make_unique<Rep>(Rep{code, std::string(message)});
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return Status();
  std::string msg(context);
  if (!rep_->message.empty()) {
    msg += ": ";
    msg += rep_->message;
  }
  return Status(rep_->code, msg);
}

}  // namespace cairn
