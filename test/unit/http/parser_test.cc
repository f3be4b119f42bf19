// The request parser on a table of good and bad requests, each fed whole,
// split at every byte boundary and byte by byte: the transcript of events
// must not depend on how the bytes arrive.
#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::http {
namespace {

// What the parser reported, in a form that compares across feedings.
struct Transcript {
  std::vector<std::string> events;  // "HEAD GET / 1 ka", "BODY <bytes>", "END", "ERROR 400"
  bool operator==(const Transcript& o) const { return events == o.events; }
};

std::string Describe(const Request& r) {
  std::string s = "HEAD " + r.method + " " + r.target + " " + std::to_string(r.version_minor);
  s += r.keep_alive ? " ka" : " close";
  if (r.chunked) s += " chunked";
  if (r.content_length) s += " cl=" + std::to_string(*r.content_length);
  for (const Field& f : r.headers) s += " [" + f.name + ":" + f.value + "]";
  return s;
}

// Feeds `input` in pieces ending at `cuts` (ascending), like a connection
// that keeps unconsumed bytes for the next call. Body pieces are merged so
// that the transcript does not depend on piece sizes.
Transcript Feed(std::string_view input, const std::vector<std::size_t>& cuts, ParserLimits limits = {},
                std::size_t max_piece = 7) {
  Parser p(limits);
  Transcript t;
  std::string buffer;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    buffer.append(input.substr(from, end - from));
    from = end;
    for (;;) {
      std::size_t consumed = 0;
      std::string_view body;
      ParseEvent ev = p.Parse(buffer, max_piece, &consumed, &body);
      EXPECT_LE(consumed, buffer.size());
      if (ev == ParseEvent::kBody) {
        EXPECT_LE(body.size(), max_piece);
        EXPECT_GT(body.size(), 0u);
        if (!t.events.empty() && t.events.back().rfind("BODY ", 0) == 0) {
          t.events.back().append(body);
        } else {
          t.events.push_back("BODY " + std::string(body));
        }
      }
      buffer.erase(0, consumed);
      if (ev == ParseEvent::kHead) t.events.push_back(Describe(p.head()));
      if (ev == ParseEvent::kMessageEnd) t.events.push_back("END");
      if (ev == ParseEvent::kError) {
        t.events.push_back("ERROR " + std::to_string(p.error_status()));
        return t;
      }
      if (ev == ParseEvent::kNeedMore) {
        EXPECT_TRUE(buffer.empty()) << "kNeedMore must consume everything";
        break;
      }
    }
  }
  return t;
}

// Checks that every way of splitting `input` gives the whole-feed transcript.
Transcript CheckAllSplits(std::string_view input, ParserLimits limits = {}) {
  Transcript whole = Feed(input, {}, limits, 1 << 20);
  for (std::size_t i = 0; i <= input.size(); ++i) {
    EXPECT_EQ(Feed(input, {i}, limits), whole) << "split at " << i << " of: " << input;
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
  EXPECT_EQ(Feed(input, every, limits, 1), whole) << "byte by byte: " << input;
  return whole;
}

struct Good {
  const char* name;
  std::string input;
  std::vector<std::string> events;
};

TEST(HttpParserTest, GoodRequests) {
  const std::vector<Good> cases = {
      {"get", "GET /storage/v1/version HTTP/1.1\r\nHost: a\r\nAccept: application/cbor\r\n\r\n",
       {"HEAD GET /storage/v1/version 1 ka [Host:a] [Accept:application/cbor]", "END"}},
      {"content-length body", "PATCH /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
       {"HEAD PATCH /x 1 ka cl=11 [Host:a] [Content-Length:11]", "BODY hello world", "END"}},
      {"content-length zero", "PUT /l HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
       {"HEAD PUT /l 1 ka cl=0 [Host:a] [Content-Length:0]", "END"}},
      {"chunked with extensions and trailers",
       "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;name=value\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
       {"HEAD POST /c 1 ka chunked [Host:a] [Transfer-Encoding:chunked]", "BODY hello0123456789", "END"}},
      {"chunked uppercase hex and case-insensitive coding",
       "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
       {"HEAD POST /c 1 ka chunked [Host:a] [Transfer-Encoding:Chunked]", "BODY 0123456789012345678901234567890",
        "END"}},
      {"http/1.0 closes by default", "GET / HTTP/1.0\r\n\r\n", {"HEAD GET / 0 close", "END"}},
      {"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
       {"HEAD GET / 0 ka [Connection:Keep-Alive]", "END"}},
      {"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
       {"HEAD GET / 1 close [Host:a] [Connection:foo, close]", "END"}},
      {"later 1.x minor is 1.1", "GET / HTTP/1.7\r\nHost: a\r\n\r\n", {"HEAD GET / 1 ka [Host:a]", "END"}},
      {"leading empty line ignored", "\r\nGET /q?a=b HTTP/1.1\r\nHost: a\r\n\r\n",
       {"HEAD GET /q?a=b 1 ka [Host:a]", "END"}},
      {"whitespace around values trimmed, obs-text kept",
       "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v \xc3\xa9 \t\r\nX-Empty:\r\n\r\n",
       {"HEAD GET / 1 ka [Host:a] [X-A:v \xc3\xa9] [X-Empty:]", "END"}},
      {"pipelined requests stay apart",
       "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
       "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
       {"HEAD GET /1 1 ka [Host:a]", "END", "HEAD POST /2 1 ka cl=3 [Host:a] [Content-Length:3]", "BODY abc", "END",
        "HEAD POST /3 1 ka chunked [Host:a] [Transfer-Encoding:chunked]", "BODY de", "END",
        "HEAD GET /4 1 ka [Host:a]", "END"}},
      {"options asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", {"HEAD OPTIONS * 1 ka [Host:a]", "END"}},
  };
  for (const Good& c : cases) {
    SCOPED_TRACE(c.name);
    Transcript t = CheckAllSplits(c.input);
    EXPECT_EQ(t.events, c.events);
  }
}

struct Bad {
  const char* name;
  std::string input;
  int status;
};

TEST(HttpParserTest, BadRequests) {
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string post = "POST / HTTP/1.1\r\nHost: a\r\n";
  const std::vector<Bad> cases = {
      {"obs-fold", get + "X-A: b\r\n c\r\n\r\n", 400},
      {"duplicate content-length", post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
      {"content-length list", post + "Content-Length: 3, 3\r\n\r\nabc", 400},
      {"content-length sign", post + "Content-Length: +3\r\n\r\nabc", 400},
      {"content-length negative", post + "Content-Length: -1\r\n\r\n", 400},
      {"content-length empty", post + "Content-Length:\r\n\r\n", 400},
      {"content-length overflow", post + "Content-Length: 18446744073709551616\r\n\r\n", 400},
      {"content-length and transfer-encoding", post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"unknown transfer-coding", post + "Transfer-Encoding: gzip\r\n\r\n", 501},
      {"unknown coding before chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"chunked not last", post + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"chunked twice", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"transfer-encoding in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"bad chunk size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"empty chunk size", post + "Transfer-Encoding: chunked\r\n\r\n\r\n", 400},
      {"chunk size overflow", post + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 400},
      {"chunk size junk", post + "Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk longer than its size", post + "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400},
      {"chunk-size line too long", post + "Transfer-Encoding: chunked\r\n\r\n1;" + std::string(2000, 'x') + "\r\n",
       400},
      {"bare LF in head", "GET / HTTP/1.1\nHost: a\n\n", 400},
      {"bare CR in head", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
      {"bare LF in chunk line", post + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400},
      {"http/2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"http/0.9 style", "GET /\r\n\r\n", 400},
      {"bad version", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
      {"missing host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two hosts", get + "Host: b\r\n\r\n", 400},
      {"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"absolute form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"space before colon", get + "X-A : b\r\n\r\n", 400},
      {"no colon", get + "X-A b\r\n\r\n", 400},
      {"NUL in value", get + std::string("X-A: a\0b\r\n\r\n", 13), 400},
      {"DEL in value", get + "X-A: a\x7f\r\n\r\n", 400},
      {"control in target", std::string("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
      {"unknown expectation", get + "Expect: 200-ok\r\n\r\n", 417},
      {"trailer folding", post + "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", 400},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.name);
    Transcript t = CheckAllSplits(c.input);
    ASSERT_FALSE(t.events.empty());
    EXPECT_EQ(t.events.back(), "ERROR " + std::to_string(c.status));
  }
}

TEST(HttpParserTest, HeadLimits) {
  ParserLimits small{256, 4};
  std::string base = "GET / HTTP/1.1\r\nHost: a\r\n";
  // Exactly at the byte limit is fine; one more is 431.
  std::string pad = "X: " + std::string(256 - base.size() - 7, 'v') + "\r\n\r\n";
  std::string at_limit = base + pad;
  ASSERT_EQ(at_limit.size(), 256u);
  EXPECT_EQ(CheckAllSplits(at_limit, small).events.back(), "END");
  std::string over = base + "X: " + std::string(256 - base.size() - 6, 'v') + "\r\n\r\n";
  EXPECT_EQ(CheckAllSplits(over, small).events.back(), "ERROR 431");
  // A request line alone over the limit is 414.
  EXPECT_EQ(CheckAllSplits("GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", small).events.back(), "ERROR 414");
  // Header count.
  EXPECT_EQ(CheckAllSplits(base + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", small).events.back(), "END");
  EXPECT_EQ(CheckAllSplits(base + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", small).events.back(), "ERROR 431");
  // Endless empty lines before a request count against the byte limit.
  std::string crlfs;
  for (int i = 0; i < 200; ++i) crlfs += "\r\n";
  EXPECT_EQ(Feed(crlfs, {}, small).events.back(), "ERROR 414");
}

TEST(HttpParserTest, TrailerLimits) {
  ParserLimits small{256, 4};
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  EXPECT_EQ(CheckAllSplits(head + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", small).events.back(), "END");
  EXPECT_EQ(CheckAllSplits(head + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", small).events.back(), "ERROR 431");
  EXPECT_EQ(Feed(head + "A: " + std::string(300, 'x') + "\r\n\r\n", {}, small).events.back(), "ERROR 431");
}

TEST(HttpParserTest, BodyIsNotBufferedAndPiecesAreBounded) {
  std::string body(100000, 'b');
  std::string req = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + body;
  Parser p({});
  std::size_t consumed = 0;
  std::string_view piece;
  ASSERT_EQ(p.Parse(req, 4096, &consumed, &piece), ParseEvent::kHead);
  std::string_view rest = std::string_view(req).substr(consumed);
  std::size_t total = 0;
  for (;;) {
    ParseEvent ev = p.Parse(rest, 4096, &consumed, &piece);
    if (ev == ParseEvent::kMessageEnd) break;
    ASSERT_EQ(ev, ParseEvent::kBody);
    EXPECT_EQ(piece.data(), rest.data()) << "a view into the input, not a copy";
    EXPECT_LE(piece.size(), 4096u);
    total += piece.size();
    rest.remove_prefix(consumed);
  }
  EXPECT_EQ(total, body.size());
  EXPECT_EQ(p.body_bytes(), body.size());
  EXPECT_TRUE(p.idle());
}

TEST(HttpParserTest, ErrorIsSticky) {
  Parser p({});
  std::size_t consumed = 0;
  std::string_view body;
  EXPECT_EQ(p.Parse("BAD\r\n\r\n", 10, &consumed, &body), ParseEvent::kError);
  EXPECT_EQ(p.error_status(), 400);
  EXPECT_EQ(p.Parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 10, &consumed, &body), ParseEvent::kError);
  EXPECT_EQ(consumed, 0u);
}

TEST(HttpParserTest, RequestAccessors) {
  Parser p({});
  std::size_t consumed = 0;
  std::string_view body;
  ASSERT_EQ(p.Parse("GET /a/b?x=1?y HTTP/1.1\r\nhost: h\r\nX-Tahoe-Authorization: one\r\n"
                    "x-tahoe-authorization: two\r\n\r\n",
                    10, &consumed, &body),
            ParseEvent::kHead);
  Request r = p.TakeHead();
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.query(), "x=1?y");
  ASSERT_NE(r.Header("HOST"), nullptr);
  EXPECT_EQ(*r.Header("HOST"), "h");
  EXPECT_EQ(r.Header("Content-Type"), nullptr);
  EXPECT_EQ(r.HeaderValues("X-TAHOE-AUTHORIZATION"), (std::vector<std::string_view>{"one", "two"}));
  EXPECT_FALSE(r.has_body());
}

}  // namespace
}  // namespace cairn::http
