// The HTTP/1.1 request parser (RFC 9112), strict where a lenient reading
// would let two parties disagree about where a request ends: no obs-fold, no
// bare CR or LF, one Content-Length at most, never Content-Length together
// with Transfer-Encoding, chunk sizes checked for overflow. Loop thread only.
#include "http/parser.h"

#include <limits>
#include <utility>

namespace cairn::http {
namespace {

// A chunk-size line (hex size plus ignored extensions) longer than this is
// refused: nothing legitimate needs more.
constexpr std::size_t kMaxChunkLine = 1024;

bool IsTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// field-vchar, SP and HTAB: visible ASCII and obs-text; never CTLs or DEL.
bool IsFieldValueChar(unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f); }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls `fn` with each non-empty, OWS-trimmed element of a comma list.
template <typename Fn>
void ForEachListElement(std::string_view list, Fn fn) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view element = TrimOws(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

Parser::Parser(ParserLimits limits) : limits_(limits) {}

ParseEvent Parser::Fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
  return ParseEvent::kError;
}

ParseEvent Parser::Parse(std::string_view in, std::size_t max_piece, std::size_t* consumed, std::string_view* body) {
  *consumed = 0;
  *body = std::string_view();
  for (;;) {
    std::string_view rest = in.substr(*consumed);
    std::size_t n = 0;
    switch (state_) {
      case State::kError:
        return ParseEvent::kError;

      case State::kHead: {
        ParseEvent ev = ParseHeadBytes(rest, &n);
        *consumed += n;
        return ev;
      }

      case State::kHeadDone:
        body_bytes_ = 0;
        if (head_.chunked) {
          state_ = State::kChunkSize;
          line_buf_.clear();
        } else if (head_.content_length && *head_.content_length > 0) {
          remaining_ = *head_.content_length;
          state_ = State::kFixedBody;
        } else {
          state_ = State::kHead;
          return ParseEvent::kMessageEnd;
        }
        continue;

      case State::kBodyEnd:
        state_ = State::kHead;
        return ParseEvent::kMessageEnd;

      case State::kFixedBody:
      case State::kChunkData: {
        if (rest.empty()) return ParseEvent::kNeedMore;
        n = rest.size() < max_piece ? rest.size() : max_piece;
        if (remaining_ < n) n = static_cast<std::size_t>(remaining_);
        *body = rest.substr(0, n);
        *consumed += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = state_ == State::kChunkData ? State::kChunkDataEnd : State::kBodyEnd;
        return ParseEvent::kBody;
      }

      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers: {
        std::size_t limit = kMaxChunkLine;
        if (state_ == State::kChunkDataEnd) limit = 0;
        if (state_ == State::kTrailers) limit = limits_.header_bytes - trailer_bytes_;
        bool complete = false;
        ParseEvent ev = ParseLine(rest, limit, &n, &complete);
        *consumed += n;
        if (ev == ParseEvent::kError || !complete) return ev;
        if (state_ == State::kChunkDataEnd) {
          if (!line_buf_.empty()) return Fail(400, "chunk data longer than its size");
          state_ = State::kChunkSize;
          continue;
        }
        ev = state_ == State::kChunkSize ? OnChunkSizeLine() : OnTrailerLine();
        if (ev != ParseEvent::kNeedMore) return ev;
        continue;
      }
    }
    return Fail(500, "parser in an unknown state");
  }
}

ParseEvent Parser::ParseHeadBytes(std::string_view in, std::size_t* consumed) {
  std::size_t i = 0;
  while (i < in.size()) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    ++i;
    if (!head_buf_.empty() && head_buf_.back() == '\r' && c != '\n') {
      *consumed = i;
      return Fail(400, "bare CR in the request head");
    }
    if (c == '\n' && (head_buf_.empty() || head_buf_.back() != '\r')) {
      *consumed = i;
      return Fail(400, "bare LF in the request head");
    }
    head_buf_.push_back(static_cast<char>(c));
    ++head_bytes_;
    if (head_bytes_ > limits_.header_bytes) {
      *consumed = i;
      if (head_buf_.find('\n') == std::string::npos) {
        return Fail(414, "request line longer than " + std::to_string(limits_.header_bytes) + " bytes");
      }
      return Fail(431, "request head longer than " + std::to_string(limits_.header_bytes) + " bytes");
    }
    if (head_buf_.size() == 2 && head_buf_ == "\r\n") {
      // RFC 9112 2.2: ignore empty lines before the request line; they
      // still count against the head's byte limit.
      head_buf_.clear();
    } else if (c == '\n' && head_buf_.size() >= 4 && head_buf_.compare(head_buf_.size() - 4, 4, "\r\n\r\n") == 0) {
      *consumed = i;
      head_bytes_ = 0;
      if (!ParseHead()) return ParseEvent::kError;
      head_buf_.clear();
      state_ = State::kHeadDone;
      return ParseEvent::kHead;
    }
  }
  *consumed = i;
  return ParseEvent::kNeedMore;
}

bool Parser::ParseHead() {
  head_ = Request();
  std::string_view rest(head_buf_);
  rest.remove_suffix(2);  // the empty line's CRLF; every line below ends with CRLF
  std::size_t eol = rest.find("\r\n");
  if (!ParseRequestLine(rest.substr(0, eol))) return false;
  rest.remove_prefix(eol + 2);
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (head_.headers.size() >= limits_.max_headers) {
      Fail(431, "more than " + std::to_string(limits_.max_headers) + " header lines");
      return false;
    }
    Field field;
    if (!ParseFieldLine(line, &field)) return false;
    head_.headers.push_back(std::move(field));
  }
  return DeriveFraming();
}

bool Parser::ParseRequestLine(std::string_view line) {
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    Fail(400, "the request line is not METHOD SP TARGET SP VERSION");
    return false;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) {
    Fail(400, "bad method");
    return false;
  }
  bool origin_form = !target.empty() && target.front() == '/';
  bool asterisk = target == "*" && method == "OPTIONS";
  if (!origin_form && !asterisk) {
    Fail(400, "the request target must be a path (origin-form)");
    return false;
  }
  for (unsigned char c : target) {
    if (c < 0x21 || c > 0x7e) {
      Fail(400, "bad character in the request target");
      return false;
    }
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9') {
    Fail(400, "bad HTTP version");
    return false;
  }
  if (version[5] != '1') {
    Fail(505, "only HTTP/1.x is supported");
    return false;
  }
  head_.method = std::string(method);
  head_.target = std::string(target);
  // A later 1.x minor is answered as 1.1 (RFC 9110 2.5).
  head_.version_minor = version[7] == '0' ? 0 : 1;
  return true;
}

bool Parser::ParseFieldLine(std::string_view line, Field* out) {
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    Fail(400, "obsolete line folding in a header");
    return false;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    Fail(400, "bad header line");
    return false;
  }
  std::string_view value = TrimOws(line.substr(colon + 1));
  for (unsigned char c : value) {
    if (!IsFieldValueChar(c)) {
      Fail(400, "bad character in a header value");
      return false;
    }
  }
  out->name = std::string(line.substr(0, colon));
  out->value = std::string(value);
  return true;
}

bool Parser::DeriveFraming() {
  Request& r = head_;
  bool http11 = r.version_minor == 1;
  int content_lengths = 0, hosts = 0, expects = 0;
  bool transfer_encoding = false, chunked_last = false, chunked_twice = false, unknown_coding = false;
  bool conn_close = false, conn_keep_alive = false;
  for (const Field& f : r.headers) {
    if (EqualsIgnoreCase(f.name, "Content-Length")) {
      if (++content_lengths > 1) {
        Fail(400, "more than one Content-Length");
        return false;
      }
      if (f.value.empty()) {
        Fail(400, "empty Content-Length");
        return false;
      }
      std::uint64_t n = 0;
      for (unsigned char c : f.value) {
        if (c < '0' || c > '9') {
          Fail(400, "Content-Length is not a decimal number");
          return false;
        }
        if (n > (std::numeric_limits<std::uint64_t>::max() - (c - '0')) / 10) {
          Fail(400, "Content-Length overflows");
          return false;
        }
        n = n * 10 + (c - '0');
      }
      r.content_length = n;
    } else if (EqualsIgnoreCase(f.name, "Transfer-Encoding")) {
      transfer_encoding = true;
      ForEachListElement(f.value, [&](std::string_view coding) {
        if (EqualsIgnoreCase(coding, "chunked")) {
          if (chunked_last) chunked_twice = true;
          chunked_last = true;
        } else {
          if (chunked_last) chunked_twice = true;  // chunked must be the final coding
          chunked_last = false;
          unknown_coding = true;
        }
      });
    } else if (EqualsIgnoreCase(f.name, "Host")) {
      ++hosts;
    } else if (EqualsIgnoreCase(f.name, "Connection")) {
      ForEachListElement(f.value, [&](std::string_view option) {
        if (EqualsIgnoreCase(option, "close")) conn_close = true;
        if (EqualsIgnoreCase(option, "keep-alive")) conn_keep_alive = true;
      });
    } else if (EqualsIgnoreCase(f.name, "Expect")) {
      ++expects;
      if (!EqualsIgnoreCase(f.value, "100-continue") || expects > 1) {
        Fail(417, "the only expectation supported is 100-continue");
        return false;
      }
      r.expect_continue = http11;
    }
  }
  if (http11 ? hosts != 1 : hosts > 1) {
    Fail(400, "an HTTP/1.1 request needs exactly one Host header");
    return false;
  }
  if (transfer_encoding) {
    // Both framings at once is how requests are smuggled past a proxy.
    if (content_lengths > 0) {
      Fail(400, "both Content-Length and Transfer-Encoding");
      return false;
    }
    if (!http11) {
      Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      return false;
    }
    if (unknown_coding && !chunked_twice) {
      Fail(501, "unsupported transfer-coding (only chunked is)");
      return false;
    }
    if (!chunked_last || chunked_twice) {
      Fail(400, "chunked must be the only, final transfer-coding");
      return false;
    }
    r.chunked = true;
  }
  r.keep_alive = !conn_close && (http11 || conn_keep_alive);
  return true;
}

ParseEvent Parser::ParseLine(std::string_view in, std::size_t limit, std::size_t* consumed, bool* complete) {
  *complete = false;
  std::size_t i = 0;
  while (i < in.size()) {
    char c = in[i++];
    bool after_cr = !line_buf_.empty() && line_buf_.back() == '\r';
    if (after_cr && c != '\n') {
      *consumed = i;
      return Fail(400, "bare CR in a chunk or trailer line");
    }
    if (c == '\n') {
      *consumed = i;
      if (!after_cr) return Fail(400, "bare LF in a chunk or trailer line");
      line_buf_.pop_back();
      *complete = true;
      return ParseEvent::kNeedMore;
    }
    line_buf_.push_back(c);
    // +1: the CR of the line's end is held in line_buf_ until its LF comes.
    if (line_buf_.size() > limit + (c == '\r' ? 1 : 0)) {
      *consumed = i;
      if (state_ == State::kTrailers) return Fail(431, "trailers too long");
      if (state_ == State::kChunkDataEnd) return Fail(400, "chunk data longer than its size");
      return Fail(400, "chunk-size line too long");
    }
  }
  *consumed = i;
  return ParseEvent::kNeedMore;
}

ParseEvent Parser::OnChunkSizeLine() {
  std::string_view line(line_buf_);
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size() && HexValue(static_cast<unsigned char>(line[i])) >= 0; ++i) {
    if (size > (std::numeric_limits<std::uint64_t>::max() >> 4)) return Fail(400, "chunk size overflows");
    size = (size << 4) | static_cast<std::uint64_t>(HexValue(static_cast<unsigned char>(line[i])));
  }
  if (i == 0) return Fail(400, "bad chunk size");
  std::string_view rest = TrimOws(line.substr(i));
  if (!rest.empty()) {
    // Chunk extensions are allowed and ignored, but must look like them.
    if (rest.front() != ';') return Fail(400, "bad chunk size");
    for (unsigned char c : rest) {
      if (!IsFieldValueChar(c)) return Fail(400, "bad character in a chunk extension");
    }
  }
  line_buf_.clear();
  if (size == 0) {
    state_ = State::kTrailers;
    trailer_bytes_ = 0;
    trailer_lines_ = 0;
  } else {
    state_ = State::kChunkData;
    remaining_ = size;
  }
  return ParseEvent::kNeedMore;
}

ParseEvent Parser::OnTrailerLine() {
  if (line_buf_.empty()) {
    state_ = State::kHead;
    return ParseEvent::kMessageEnd;
  }
  trailer_bytes_ += line_buf_.size() + 2;
  if (trailer_bytes_ > limits_.header_bytes) return Fail(431, "trailers too long");
  if (++trailer_lines_ > limits_.max_headers) return Fail(431, "too many trailer lines");
  Field ignored;
  if (!ParseFieldLine(line_buf_, &ignored)) return ParseEvent::kError;
  line_buf_.clear();
  return ParseEvent::kNeedMore;
}

}  // namespace cairn::http
