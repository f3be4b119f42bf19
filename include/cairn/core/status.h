// Status and Result<T>: the one error type used across cairn.
//
// A Status is OK (no allocation, one null pointer) or carries a Code from
// error_codes.def and a human message. Result<T> is a T or a non-OK Status.
// Both are [[nodiscard]]. Any thread; a given object is not shared unlocked.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cairn {

enum class Code : std::uint8_t {
#define X(name, wire, http, exit_code, meaning) k##name,
#include "cairn/core/error_codes.def"
#undef X
};

// Stable lower-case name used on the wire ("not_found"); never changes.
std::string_view CodeName(Code code);
// HTTP status and CLI exit code from the table.
int CodeHttpStatus(Code code);
int CodeExitCode(Code code);
std::string_view CodeMeaning(Code code);
// Parses a wire name; returns false if unknown.
bool CodeFromName(std::string_view name, Code* out);

// Aborts with file, line and message. For programmer errors and broken
// invariants only, never for bad input, full disks or misbehaving peers.
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, std::string_view msg);

#define CAIRN_CHECK(cond, msg)                                       \
  do {                                                               \
    if (!(cond)) ::cairn::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK.
  Status(Code code, std::string_view message);

  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
#define X(name, wire, http, exit_code, meaning) \
  static Status name(std::string_view msg) { return Status(Code::k##name, msg); }
#include "cairn/core/error_codes.def"
#undef X

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // Empty for OK.
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : std::string_view(); }
  // "not_found: alias \"x\" does not exist", or "ok".
  std::string ToString() const;
  // Returns a copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;
  // Explicitly ignores a status whose failure does not matter here; say why at the call.
  void IgnoreError() const {}

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

// A value of type T, or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design.
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    CAIRN_CHECK(!std::get<Status>(v_).ok(), "Result constructed from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER(a, b) a##b
#define CAIRN_CONCAT(a, b) CAIRN_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
// (A name per expansion: a CAIRN_TRY inside a lambda inside another's
// expression must not shadow the outer one's status.)
#define CAIRN_TRY(expr) CAIRN_TRY_IMPL(CAIRN_CONCAT(cairn_try_status_, __COUNTER__), expr)
#define CAIRN_TRY_IMPL(st, expr)       \
  do {                                 \
    ::cairn::Status st = (expr);       \
    if (!st.ok()) return st;           \
  } while (0)

// `lhs` = value of the Result `expr`, or returns its Status.
#define CAIRN_TRY_ASSIGN(lhs, expr) \
  CAIRN_TRY_ASSIGN_IMPL(CAIRN_CONCAT(cairn_try_result_, __COUNTER__), lhs, expr)
#define CAIRN_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
