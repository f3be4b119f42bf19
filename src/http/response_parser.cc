// HTTP/1.1 response parsing for the client. Loop thread only.
#include "http/response_parser.h"

#include <charconv>

namespace cairn::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseDecimal(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ContainsToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const std::string* ClientResponse::Header(std::string_view name) const {
  for (const Field& f : headers) {
    if (EqualsIgnoreCase(f.name, name)) return &f.value;
  }
  return nullptr;
}

ResponseParser::ResponseParser(std::size_t head_bytes, std::size_t max_headers)
    : head_limit_(head_bytes), max_headers_(max_headers) {}

void ResponseParser::Reset(bool no_body, std::uint64_t max_body) {
  state_ = State::kHead;
  no_body_ = no_body;
  keep_alive_ = true;
  started_ = false;
  max_body_ = max_body;
  remaining_ = 0;
  head_.clear();
  line_.clear();
  response_ = ClientResponse{};
  error_ = Status();
}

ResponseParser::Event ResponseParser::Fail(Status why) {
  state_ = State::kError;
  error_ = std::move(why);
  return Event::kError;
}

bool ResponseParser::TakeLine(std::string_view in, std::size_t* used, bool* too_long) {
  std::size_t nl = in.find('\n');
  std::size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
  *used = take;
  line_.append(in.substr(0, take));
  *too_long = line_.size() > 1024;
  if (nl == std::string_view::npos) return false;
  line_.pop_back();
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

ResponseParser::Event ResponseParser::Feed(std::string_view in, std::size_t* consumed) {
  *consumed = 0;
  if (!in.empty()) started_ = true;
  while (*consumed < in.size() || state_ == State::kDone) {
    std::string_view rest = in.substr(*consumed);
    switch (state_) {
      case State::kDone:
        return Event::kDone;
      case State::kError:
        return Event::kError;
      case State::kHead: {
        // Look for the blank line, also across the boundary of two pieces.
        std::size_t before = head_.size();
        std::size_t room = head_limit_ + 4 - before;
        head_.append(rest.substr(0, room));
        std::size_t from = before >= 3 ? before - 3 : 0;
        std::size_t end = head_.find("\r\n\r\n", from);
        if (end == std::string::npos) {
          if (head_.size() > head_limit_) return Fail(Status::FrameTooLarge("response head over its limit"));
          *consumed += head_.size() - before;
          continue;
        }
        *consumed += end + 4 - before;
        head_.resize(end + 2);  // keep the last line's CRLF
        Event ev = OnHead();
        if (ev != Event::kNeedMore) return ev;
        continue;
      }
      case State::kFixed: {
        std::size_t n = rest.size() < remaining_ ? rest.size() : static_cast<std::size_t>(remaining_);
        *consumed += n;
        remaining_ -= n;
        if (AppendBody(rest.substr(0, n)) == Event::kError) return Event::kError;
        if (remaining_ == 0) state_ = State::kDone;
        continue;
      }
      case State::kUntilClose:
        *consumed += rest.size();
        if (AppendBody(rest) == Event::kError) return Event::kError;
        continue;
      case State::kChunkSize:
      case State::kChunkCrlf:
      case State::kTrailers: {
        std::size_t used;
        bool too_long;
        bool complete = TakeLine(rest, &used, &too_long);
        *consumed += used;
        if (too_long) return Fail(Status::Integrity("chunked response: a line is too long"));
        if (!complete) continue;
        std::string line;
        line.swap(line_);
        if (state_ == State::kChunkCrlf) {
          if (!line.empty()) return Fail(Status::Integrity("chunked response: no CRLF after a chunk"));
          state_ = State::kChunkSize;
        } else if (state_ == State::kTrailers) {
          if (line.empty()) state_ = State::kDone;
        } else {
          std::string_view size = Trim(std::string_view(line).substr(0, line.find(';')));
          std::uint64_t n = 0;
          auto r = std::from_chars(size.data(), size.data() + size.size(), n, 16);
          if (size.empty() || size.size() > 15 || r.ec != std::errc() || r.ptr != size.data() + size.size()) {
            return Fail(Status::Integrity("chunked response: bad chunk size"));
          }
          remaining_ = n;
          state_ = n == 0 ? State::kTrailers : State::kChunkData;
        }
        continue;
      }
      case State::kChunkData: {
        std::size_t n = rest.size() < remaining_ ? rest.size() : static_cast<std::size_t>(remaining_);
        *consumed += n;
        remaining_ -= n;
        if (AppendBody(rest.substr(0, n)) == Event::kError) return Event::kError;
        if (remaining_ == 0) state_ = State::kChunkCrlf;
        continue;
      }
    }
  }
  if (state_ == State::kDone) return Event::kDone;
  return Event::kNeedMore;
}

ResponseParser::Event ResponseParser::FeedEof() {
  if (state_ == State::kUntilClose) {
    state_ = State::kDone;
    keep_alive_ = false;
    return Event::kDone;
  }
  if (state_ == State::kDone) return Event::kDone;
  if (state_ == State::kError) return Event::kError;
  return Fail(Status::Unavailable(started_ ? "the server closed the connection in the middle of a response"
                                           : "the server closed the connection before answering"));
}

ResponseParser::Event ResponseParser::AppendBody(std::string_view data) {
  if (response_.body.size() + data.size() > max_body_) {
    return Fail(Status::FrameTooLarge("response body over " + std::to_string(max_body_) + " bytes"));
  }
  response_.body.append(data);
  return Event::kNeedMore;
}

ResponseParser::Event ResponseParser::OnHead() {
  std::string_view h = head_;
  std::size_t eol = h.find("\r\n");
  std::string_view status_line = h.substr(0, eol);
  h.remove_prefix(eol + 2);
  // "HTTP/1.x NNN reason"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return Fail(Status::Integrity("not an HTTP/1.x status line"));
  }
  bool http10 = status_line[7] == '0';
  std::uint64_t code = 0;
  if (!ParseDecimal(status_line.substr(9, 3), &code) || code < 100 || code > 599 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return Fail(Status::Integrity("bad status code in the status line"));
  }
  ClientResponse r;
  r.status = static_cast<int>(code);
  while (!h.empty()) {
    eol = h.find("\r\n");
    std::string_view line = h.substr(0, eol);
    h.remove_prefix(eol + 2);
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos || line.front() == ' ' || line.front() == '\t') {
      return Fail(Status::Integrity("malformed response header line"));
    }
    if (r.headers.size() >= max_headers_) return Fail(Status::FrameTooLarge("too many response headers"));
    r.headers.push_back(Field{std::string(line.substr(0, colon)), std::string(Trim(line.substr(colon + 1)))});
  }
  head_.clear();
  if (code < 200) {  // interim (100 Continue): the real answer follows
    return Event::kNeedMore;
  }
  const std::string* conn = r.Header("Connection");
  keep_alive_ = http10 ? (conn && ContainsToken(*conn, "keep-alive")) : !(conn && ContainsToken(*conn, "close"));
  const std::string* te = r.Header("Transfer-Encoding");
  const std::string* cl = r.Header("Content-Length");
  response_ = std::move(r);
  if (no_body_ || code == 204 || code == 304) {
    state_ = State::kDone;
    return Event::kDone;
  }
  if (te) {
    if (!EqualsIgnoreCase(Trim(*te), "chunked")) return Fail(Status::Integrity("unsupported Transfer-Encoding"));
    state_ = State::kChunkSize;
    return Event::kNeedMore;
  }
  if (cl) {
    std::uint64_t n = 0;
    if (!ParseDecimal(Trim(*cl), &n)) return Fail(Status::Integrity("bad Content-Length"));
    if (n > max_body_) return Fail(Status::FrameTooLarge("response body of " + std::to_string(n) + " bytes, over the limit"));
    response_.body.reserve(static_cast<std::size_t>(n));
    remaining_ = n;
    state_ = n == 0 ? State::kDone : State::kFixed;
    return state_ == State::kDone ? Event::kDone : Event::kNeedMore;
  }
  keep_alive_ = false;
  state_ = State::kUntilClose;
  return Event::kNeedMore;
}

}  // namespace cairn::http
