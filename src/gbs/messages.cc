// GBS CBOR messages (see the header).
#include "cairn/gbs/messages.h"

#include <algorithm>
#include <set>

#include "cairn/cbor/cbor.h"

namespace cairn::gbs {
namespace {

using cbor::Item;
using cbor::Reader;
using cbor::Type;
using cbor::Writer;

void WriteSet(Writer& w, const ShareNumbers& s) {
  w.Tag(cbor::kTagSet);
  w.Array(s.size());
  for (std::uint32_t n : s) w.Uint(n);
}

Result<ShareNumbers> ReadShareSet(Reader& r, const char* what) {
  auto set = r.ReadUintSet();
  if (!set.ok()) return Status::InvalidArgument(std::string(what) + ": " + std::string(set.status().message()));
  if (set->size() > kMaxShareNumber + 1) return Status::InvalidArgument(std::string(what) + ": more than 256 shares");
  ShareNumbers out;
  for (std::uint64_t n : *set) {
    if (n > kMaxShareNumber) return Status::InvalidArgument(std::string(what) + ": share number above 255");
    out.push_back(static_cast<std::uint32_t>(n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads a closed map: `on_key` is called for each key in `keys` (index,
// reader positioned at the value); any other key, a repeat, or a missing
// one is an error.
template <typename F>
Status ReadClosedMap(Reader& r, std::initializer_list<std::string_view> keys, const char* what, F on_key,
                     bool byte_keys = false) {
  CAIRN_TRY_ASSIGN(std::uint64_t pairs, r.ReadMap());
  std::vector<bool> seen(keys.size());
  for (std::uint64_t i = 0; i < pairs; ++i) {
    std::string_view key;
    if (byte_keys) {
      CAIRN_TRY_ASSIGN(key, r.ReadBytes());
    } else {
      CAIRN_TRY_ASSIGN(key, r.ReadText());
    }
    std::size_t idx = 0;
    for (std::string_view k : keys) {
      if (k == key) break;
      ++idx;
    }
    if (idx == keys.size()) {
      return Status::InvalidArgument(std::string(what) + ": unexpected key \"" + std::string(key) + "\"");
    }
    if (seen[idx]) return Status::InvalidArgument(std::string(what) + ": key \"" + std::string(key) + "\" repeated");
    seen[idx] = true;
    CAIRN_TRY(on_key(idx));
  }
  std::size_t idx = 0;
  for (std::string_view k : keys) {
    if (!seen[idx++]) return Status::InvalidArgument(std::string(what) + ": missing key \"" + std::string(k) + "\"");
  }
  return Status::Ok();
}

Status Whole(const Reader& r, const char* what) {
  Status st = r.ExpectEnd();
  if (!st.ok()) return Status::InvalidArgument(std::string(what) + ": trailing bytes after the message");
  return st;
}

Result<std::uint32_t> ReadShareNumber(Reader& r) {
  CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadUint());
  if (n > kMaxShareNumber) return Status::InvalidArgument("share number " + std::to_string(n) + " is above 255");
  return static_cast<std::uint32_t>(n);
}

}  // namespace

std::string EncodeVersion(const Version& v) {
  Writer w;
  w.Map(2);
  w.Bytes(kStorageProtocolV1);
  w.Map(3);
  w.Bytes("maximum-immutable-share-size");
  w.Uint(v.maximum_immutable_share_size);
  w.Bytes("maximum-mutable-share-size");
  w.Uint(v.maximum_mutable_share_size);
  w.Bytes("available-space");
  w.Uint(v.available_space);
  w.Bytes("application-version");
  w.Bytes(v.application_version);
  return w.Take();
}

Result<Version> DecodeVersion(std::string_view body) {
  Reader r(body);
  Version v;
  CAIRN_TRY(ReadClosedMap(
      r, {kStorageProtocolV1, "application-version"}, "version",
      [&](std::size_t k) -> Status {
        if (k == 1) {
          CAIRN_TRY_ASSIGN(std::string_view app, r.ReadBytes());
          v.application_version = std::string(app);
          return Status::Ok();
        }
        return ReadClosedMap(
            r, {"maximum-immutable-share-size", "maximum-mutable-share-size", "available-space"}, "version v1",
            [&](std::size_t j) -> Status {
              CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadUint());
              (j == 0 ? v.maximum_immutable_share_size : j == 1 ? v.maximum_mutable_share_size : v.available_space) = n;
              return Status::Ok();
            },
            true);
      },
      true));
  CAIRN_TRY(Whole(r, "version"));
  return v;
}

std::string EncodeAllocateRequest(const AllocateRequest& a) {
  Writer w;
  w.Map(2);
  w.Text("share-numbers");
  WriteSet(w, a.share_numbers);
  w.Text("allocated-size");
  w.Uint(a.allocated_size);
  return w.Take();
}

Result<AllocateRequest> DecodeAllocateRequest(std::string_view body) {
  Reader r(body);
  AllocateRequest a;
  CAIRN_TRY(ReadClosedMap(r, {"share-numbers", "allocated-size"}, "allocate", [&](std::size_t k) -> Status {
    if (k == 0) {
      CAIRN_TRY_ASSIGN(a.share_numbers, ReadShareSet(r, "share-numbers"));
    } else {
      CAIRN_TRY_ASSIGN(a.allocated_size, r.ReadUint());
    }
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "allocate"));
  return a;
}

std::string EncodeAllocateResponse(const AllocateResponse& a) {
  Writer w;
  w.Map(2);
  w.Text("already-have");
  WriteSet(w, a.already_have);
  w.Text("allocated");
  WriteSet(w, a.allocated);
  return w.Take();
}

Result<AllocateResponse> DecodeAllocateResponse(std::string_view body) {
  Reader r(body);
  AllocateResponse a;
  CAIRN_TRY(ReadClosedMap(r, {"already-have", "allocated"}, "allocate response", [&](std::size_t k) -> Status {
    CAIRN_TRY_ASSIGN((k == 0 ? a.already_have : a.allocated), ReadShareSet(r, k == 0 ? "already-have" : "allocated"));
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "allocate response"));
  return a;
}

std::string EncodeRequired(const std::vector<Range>& required) {
  Writer w;
  w.Map(1);
  w.Text("required");
  w.Array(required.size());
  for (const Range& g : required) {
    w.Map(2);
    w.Text("begin");
    w.Uint(g.begin);
    w.Text("end");
    w.Uint(g.end);
  }
  return w.Take();
}

Result<std::vector<Range>> DecodeRequired(std::string_view body) {
  Reader r(body);
  std::vector<Range> out;
  CAIRN_TRY(ReadClosedMap(r, {"required"}, "required", [&](std::size_t) -> Status {
    CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadArray());
    for (std::uint64_t i = 0; i < n; ++i) {
      Range g;
      CAIRN_TRY(ReadClosedMap(r, {"begin", "end"}, "required range", [&](std::size_t k) -> Status {
        CAIRN_TRY_ASSIGN((k == 0 ? g.begin : g.end), r.ReadUint());
        return Status::Ok();
      }));
      out.push_back(g);
    }
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "required"));
  return out;
}

std::string EncodeShareSet(const ShareNumbers& shares) {
  Writer w;
  WriteSet(w, shares);
  return w.Take();
}

Result<ShareNumbers> DecodeShareSet(std::string_view body) {
  Reader r(body);
  CAIRN_TRY_ASSIGN(ShareNumbers s, ReadShareSet(r, "share set"));
  CAIRN_TRY(Whole(r, "share set"));
  return s;
}

std::string EncodeCorruption(std::string_view reason) {
  Writer w;
  w.Map(1);
  w.Text("reason");
  w.Text(reason);
  return w.Take();
}

Result<std::string> DecodeCorruption(std::string_view body) {
  Reader r(body);
  std::string reason;
  CAIRN_TRY(ReadClosedMap(r, {"reason"}, "corruption advisory", [&](std::size_t) -> Status {
    CAIRN_TRY_ASSIGN(std::string_view t, r.ReadText());
    if (t.empty() || t.size() > 32765) return Status::InvalidArgument("reason must be 1 to 32765 bytes");
    reason = std::string(t);
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "corruption advisory"));
  return reason;
}

std::string EncodeRtwRequest(const RtwRequest& q) {
  Writer w;
  w.Map(2);
  w.Text("test-write-vectors");
  w.Map(q.shares.size());
  for (const auto& [shnum, tw] : q.shares) {
    w.Uint(shnum);
    w.Map(3);
    w.Text("test");
    w.Array(tw.test.size());
    for (const TestVector& t : tw.test) {
      w.Map(3);
      w.Text("offset");
      w.Uint(t.offset);
      w.Text("size");
      w.Uint(t.size);
      w.Text("specimen");
      w.Bytes(t.specimen);
    }
    w.Text("write");
    w.Array(tw.write.size());
    for (const WriteVector& v : tw.write) {
      w.Map(2);
      w.Text("offset");
      w.Uint(v.offset);
      w.Text("data");
      w.Bytes(v.data);
    }
    w.Text("new-length");
    if (tw.new_length) {
      w.Uint(*tw.new_length);
    } else {
      w.Null();
    }
  }
  w.Text("read-vector");
  w.Array(q.read.size());
  for (const ReadVector& v : q.read) {
    w.Map(2);
    w.Text("offset");
    w.Uint(v.offset);
    w.Text("size");
    w.Uint(v.size);
  }
  return w.Take();
}

namespace {

Status ReadShareTestWrite(Reader& r, ShareTestWrite* tw) {
  return ReadClosedMap(r, {"test", "write", "new-length"}, "test-write vector", [&](std::size_t k) -> Status {
    if (k == 0) {
      CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadArray());
      if (n > kMaxTestVectors) return Status::InvalidArgument("more than 30 test vectors for one share");
      for (std::uint64_t i = 0; i < n; ++i) {
        TestVector t;
        CAIRN_TRY(ReadClosedMap(r, {"offset", "size", "specimen"}, "test vector", [&](std::size_t j) -> Status {
          if (j == 2) {
            CAIRN_TRY_ASSIGN(t.specimen, r.ReadBytes());
          } else {
            CAIRN_TRY_ASSIGN((j == 0 ? t.offset : t.size), r.ReadUint());
          }
          return Status::Ok();
        }));
        tw->test.push_back(t);
      }
    } else if (k == 1) {
      CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadArray());
      for (std::uint64_t i = 0; i < n; ++i) {
        WriteVector v;
        CAIRN_TRY(ReadClosedMap(r, {"offset", "data"}, "write vector", [&](std::size_t j) -> Status {
          if (j == 1) {
            CAIRN_TRY_ASSIGN(v.data, r.ReadBytes());
          } else {
            CAIRN_TRY_ASSIGN(v.offset, r.ReadUint());
          }
          return Status::Ok();
        }));
        tw->write.push_back(v);
      }
    } else {
      Item item;
      CAIRN_TRY(r.Next(&item));
      if (item.type == Type::kUint) {
        tw->new_length = item.arg;
      } else if (item.type != Type::kNull) {
        return Status::InvalidArgument("new-length must be an unsigned integer or null");
      }
    }
    return Status::Ok();
  });
}

}  // namespace

Result<RtwRequest> DecodeRtwRequest(std::string_view body) {
  Reader r(body);
  RtwRequest q;
  CAIRN_TRY(ReadClosedMap(r, {"test-write-vectors", "read-vector"}, "read-test-write", [&](std::size_t k) -> Status {
    if (k == 0) {
      CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadMap());
      if (n > kMaxShareNumber + 1) return Status::InvalidArgument("more than 256 shares in one read-test-write");
      for (std::uint64_t i = 0; i < n; ++i) {
        CAIRN_TRY_ASSIGN(std::uint32_t shnum, ReadShareNumber(r));
        if (q.shares.count(shnum)) return Status::InvalidArgument("share " + std::to_string(shnum) + " repeated");
        CAIRN_TRY(ReadShareTestWrite(r, &q.shares[shnum]));
      }
    } else {
      CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadArray());
      if (n > kMaxReadVectors) return Status::InvalidArgument("more than 30 read vectors");
      for (std::uint64_t i = 0; i < n; ++i) {
        ReadVector v;
        CAIRN_TRY(ReadClosedMap(r, {"offset", "size"}, "read vector", [&](std::size_t j) -> Status {
          CAIRN_TRY_ASSIGN((j == 0 ? v.offset : v.size), r.ReadUint());
          return Status::Ok();
        }));
        q.read.push_back(v);
      }
    }
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "read-test-write"));
  return q;
}

std::string EncodeRtwResponse(const RtwResponse& p) {
  Writer w;
  w.Map(2);
  w.Text("success");
  w.Bool(p.success);
  w.Text("data");
  w.Map(p.data.size());
  for (const auto& [shnum, reads] : p.data) {
    w.Uint(shnum);
    w.Array(reads.size());
    for (const std::string& b : reads) w.Bytes(b);
  }
  return w.Take();
}

Result<RtwResponse> DecodeRtwResponse(std::string_view body) {
  Reader r(body);
  RtwResponse p;
  CAIRN_TRY(ReadClosedMap(r, {"success", "data"}, "read-test-write response", [&](std::size_t k) -> Status {
    if (k == 0) {
      Item item;
      CAIRN_TRY(r.Next(&item));
      if (item.type != Type::kTrue && item.type != Type::kFalse) {
        return Status::InvalidArgument("success must be a boolean");
      }
      p.success = item.type == Type::kTrue;
      return Status::Ok();
    }
    CAIRN_TRY_ASSIGN(std::uint64_t n, r.ReadMap());
    for (std::uint64_t i = 0; i < n; ++i) {
      CAIRN_TRY_ASSIGN(std::uint32_t shnum, ReadShareNumber(r));
      if (p.data.count(shnum)) return Status::InvalidArgument("share " + std::to_string(shnum) + " repeated");
      auto& reads = p.data[shnum];
      CAIRN_TRY_ASSIGN(std::uint64_t m, r.ReadArray());
      for (std::uint64_t j = 0; j < m; ++j) {
        CAIRN_TRY_ASSIGN(std::string_view b, r.ReadBytes());
        reads.emplace_back(b);
      }
    }
    return Status::Ok();
  }));
  CAIRN_TRY(Whole(r, "read-test-write response"));
  return p;
}

}  // namespace cairn::gbs
