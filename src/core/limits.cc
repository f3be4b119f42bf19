// Limits from the board tables generated out of boards/*.mk. The only file
// that sees board values. Any thread.
#include "cairn/core/limits.h"

#include <cstdlib>

namespace cairn {
namespace {

struct BoardRow {
  const char* board;
  const char* key;
  const char* value;
};

constexpr BoardRow kBoardRows[] = {
#include "board_defaults.inc"
};

}  // namespace

Status Limits::Set(std::string_view name, std::uint64_t value) {
#define CAIRN_LIMIT_SET(field, def, meaning) \
  if (name == #field) {                      \
    field = value;                           \
    return Status();                         \
  }
  CAIRN_LIMITS(CAIRN_LIMIT_SET)
#undef CAIRN_LIMIT_SET
  return Status::InvalidArgument("unknown limit \"" + std::string(name) + "\"");
}

bool Limits::Get(std::string_view name, std::uint64_t* value) const {
#define CAIRN_LIMIT_GET(field, def, meaning) \
  if (name == #field) {                      \
    *value = field;                          \
    return true;                             \
  }
  CAIRN_LIMITS(CAIRN_LIMIT_GET)
#undef CAIRN_LIMIT_GET
  return false;
}

std::vector<std::string_view> Limits::Names() {
  return {
#define CAIRN_LIMIT_NAME(field, def, meaning) #field,
      CAIRN_LIMITS(CAIRN_LIMIT_NAME)
#undef CAIRN_LIMIT_NAME
  };
}

std::vector<std::string> KnownBoards() {
  std::vector<std::string> out;
  for (const BoardRow& row : kBoardRows) {
    if (out.empty() || out.back() != row.board) out.emplace_back(row.board);
  }
  return out;
}

std::string_view BuildBoard() { return CAIRN_BOARD; }

Result<Limits> BoardDefaults(std::string_view board) {
  Limits limits;
  bool found = false;
  for (const BoardRow& row : kBoardRows) {
    if (board != row.board) continue;
    found = true;
    if (row.key[0] == '\0') continue;  // the row that names the board
    char* end = nullptr;
    unsigned long long v = std::strtoull(row.value, &end, 10);
    // A malformed board file is a build defect, caught by the unit tests.
    CAIRN_CHECK(end && *end == '\0', std::string("board ") + row.board + ": bad value for " + row.key);
    CAIRN_CHECK(limits.Set(row.key, v).ok(), std::string("board ") + row.board + ": unknown limit " + row.key);
  }
  if (!found) {
    std::string known;
    for (const std::string& b : KnownBoards()) known += (known.empty() ? "" : ", ") + b;
    return Status::InvalidArgument("unknown board \"" + std::string(board) + "\" (known: " + known + ")");
  }
  return limits;
}

}  // namespace cairn
