#include "cairn/gbs/nurl.h"

#include <gtest/gtest.h>

namespace cairn::gbs {
namespace {

const char kSpki[] = "FbM8swjPYtWudEbwVOXa6I_k_rkijEMFqGlXg8fpBH8";

TEST(NurlTest, RoundTrips) {
  Nurl n{kSpki, "127.0.0.1", 3456, "swiss-NUM_1", false};
  std::string text = FormatNurl(n);
  EXPECT_EQ(text, std::string("pb://") + kSpki + "@127.0.0.1:3456/swiss-NUM_1#v=1");
  auto back = ParseNurl(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->spki_hash, kSpki);
  EXPECT_EQ(back->host, "127.0.0.1");
  EXPECT_EQ(back->port, 3456);
  EXPECT_EQ(back->swissnum, "swiss-NUM_1");
  Nurl v6{kSpki, "::1", 1, "s", true};
  EXPECT_EQ(FormatNurl(v6), std::string("pb+tor://") + kSpki + "@[::1]:1/s#v=1");
  auto b6 = ParseNurl(FormatNurl(v6));
  ASSERT_TRUE(b6.ok());
  EXPECT_EQ(b6->host, "::1");
  EXPECT_TRUE(b6->tor);
}

TEST(NurlTest, RejectsWhatARealClientRejects) {
  std::string base = std::string("pb://") + kSpki + "@";
  const std::string bad[] = {
      base + "tcp:127.0.0.1:3456/s#v=1",  // the trap in section 8
      base + "127.0.0.1:3456/s",           // a FURL, not a NURL
      base + "127.0.0.1:3456/s#v=2",
      "http://" + std::string(kSpki) + "@h:1/s#v=1",
      "pb://short@h:1/s#v=1",
      base + "h/s#v=1",
      base + "h:0/s#v=1",
      base + "h:70000/s#v=1",
      base + "h:12a/s#v=1",
      base + ":1/s#v=1",
      base + "h:1/#v=1",
      base + "h:1/a/b#v=1",
      base + "::1:5/s#v=1",
      base + "[::1/s#v=1",
      base + "[[]:5345/s#v=1",
      base + "[nothex]:1/s#v=1",
      base + "ho st:1/s#v=1",
      base + std::string("h\0x:1/s#v=1", 9),
      "",
  };
  for (const std::string& t : bad) EXPECT_FALSE(ParseNurl(t).ok()) << t;
}

}  // namespace
}  // namespace cairn::gbs
