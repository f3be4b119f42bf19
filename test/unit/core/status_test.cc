#include "cairn/core/status.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CAIRN_TRY_ASSIGN(int h, Half(x));
  CAIRN_TRY_ASSIGN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_EQ(sizeof(Status), sizeof(void*));
}

TEST(StatusTest, CarriesCodeMessageAndContext) {
  Status s = Status::NotFound("alias \"x\"").WithContext("rename");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.ToString(), "not_found: rename: alias \"x\"");
  Status copy = s;
  EXPECT_EQ(copy.message(), s.message());
}

TEST(StatusTest, TableMapsNamesHttpAndExitCodes) {
  EXPECT_EQ(CodeName(Code::kConflict), "conflict");
  EXPECT_EQ(CodeHttpStatus(Code::kConflict), 409);
  EXPECT_EQ(CodeExitCode(Code::kNotFound), 3);
  Code c;
  ASSERT_TRUE(CodeFromName("uncoordinated_write", &c));
  EXPECT_EQ(c, Code::kUncoordinatedWrite);
  EXPECT_FALSE(CodeFromName("nope", &c));
}

TEST(StatusTest, TryPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn
