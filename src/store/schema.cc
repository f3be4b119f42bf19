// Key layouts and value encodings (docs/store.md). Any thread.
#include "store/schema.h"

#include <cstring>

#include "cairn/core/endian.h"
#include "cairn/crypto/mbedtls_compat.h"

namespace cairn::store::schema {
namespace {

// A bounds-checked reader over an encoded value.
struct Reader {
  const unsigned char* p;
  std::size_t left;
  bool ok = true;
  std::uint64_t U64() {
    if (left < 8) return ok = false, 0;
    std::uint64_t v = GetBe64(p);
    p += 8, left -= 8;
    return v;
  }
  std::uint32_t U32() {
    if (left < 4) return ok = false, 0;
    std::uint32_t v = GetBe32(p);
    p += 4, left -= 4;
    return v;
  }
  std::uint8_t U8() {
    if (left < 1) return ok = false, 0;
    left -= 1;
    return *p++;
  }
  std::string Bytes(std::size_t n) {
    if (left < n) return ok = false, std::string();
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n, left -= n;
    return s;
  }
};

}  // namespace

// The schema's fixed-width fields, through core/endian.h.
void PutBe32(std::string* out, std::uint32_t v) { PutBe(*out, v, 4); }
void PutBe64(std::string* out, std::uint64_t v) { PutBe(*out, v, 8); }
std::uint32_t GetBe32(const unsigned char* p) { return static_cast<std::uint32_t>(GetBe(p, 4)); }
std::uint64_t GetBe64(const unsigned char* p) { return GetBe(p, 8); }

std::string SiPrefix(Kind kind, const StorageIndex& si) {
  std::string k(1, static_cast<char>(kind));
  k.append(reinterpret_cast<const char*>(si.data()), si.size());
  return k;
}

std::string ShareKey(Kind kind, const StorageIndex& si, ShareNum shnum) {
  std::string k = SiPrefix(kind, si);
  PutBe32(&k, shnum);
  return k;
}

bool ParseShareKey(std::string_view key, Kind* kind, StorageIndex* si, ShareNum* shnum) {
  if (key.size() < kShareKeyLen) return false;
  if (key[0] != 'I' && key[0] != 'M') return false;
  *kind = static_cast<Kind>(key[0]);
  std::memcpy(si->data(), key.data() + 1, 16);
  *shnum = GetBe32(reinterpret_cast<const unsigned char*>(key.data() + 17));
  return true;
}

std::string TimeKey(std::uint64_t t, std::string_view share_key) {
  std::string k;
  PutBe64(&k, t);
  k.append(share_key);
  return k;
}

std::uint64_t TimeOf(std::string_view time_key) {
  return time_key.size() < 8 ? 0 : GetBe64(reinterpret_cast<const unsigned char*>(time_key.data()));
}

std::string ChunkKey(const StorageIndex& si, ShareNum shnum, std::uint32_t chunk) {
  std::string k(reinterpret_cast<const char*>(si.data()), si.size());
  PutBe32(&k, shnum);
  PutBe32(&k, chunk);
  return k;
}

// Record: u8 state | be64 size | be64 file id | be64 expiry | u8 secret
// length | secret | be32 range count | (be64 begin, be64 end)*.
std::string EncodeRecord(const ShareRecord& r) {
  std::string v;
  v.push_back(static_cast<char>(r.state));
  PutBe64(&v, r.size);
  PutBe64(&v, r.file_id);
  PutBe64(&v, r.expiry_time);
  v.push_back(static_cast<char>(r.secret.size()));
  v.append(r.secret);
  PutBe32(&v, static_cast<std::uint32_t>(r.written.size()));
  for (const Range& g : r.written) {
    PutBe64(&v, g.begin);
    PutBe64(&v, g.end);
  }
  return v;
}

bool DecodeRecord(std::string_view v, ShareRecord* r) {
  Reader in{reinterpret_cast<const unsigned char*>(v.data()), v.size()};
  std::uint8_t state = in.U8();
  if (state < 1 || state > 3) return false;
  r->state = static_cast<State>(state);
  r->size = in.U64();
  r->file_id = in.U64();
  r->expiry_time = in.U64();
  r->secret = in.Bytes(in.U8());
  std::uint32_t n = in.U32();
  if (!in.ok || n > kMaxRanges || in.left != std::size_t{n} * 16) return false;
  r->written.clear();
  for (std::uint32_t i = 0; i < n; ++i) {
    Range g;
    g.begin = in.U64();
    g.end = in.U64();
    r->written.push_back(g);
  }
  return in.ok;
}

std::string EncodeLease(const LeaseValue& l) {
  std::string v = l.cancel_hash;
  PutBe64(&v, l.expiry);
  return v;
}

bool DecodeLease(std::string_view v, LeaseValue* l) {
  if (v.size() != 40) return false;
  l->cancel_hash.assign(v.data(), 32);
  l->expiry = GetBe64(reinterpret_cast<const unsigned char*>(v.data() + 32));
  return true;
}

std::string EncodeTotals(const Totals& t) {
  std::string v;
  PutBe64(&v, t.used_bytes);
  PutBe64(&v, t.incoming_bytes);
  PutBe64(&v, t.shares);
  PutBe64(&v, t.next_file_id);
  return v;
}

bool DecodeTotals(std::string_view v, Totals* t) {
  Reader in{reinterpret_cast<const unsigned char*>(v.data()), v.size()};
  t->used_bytes = in.U64();
  t->incoming_bytes = in.U64();
  t->shares = in.U64();
  t->next_file_id = in.U64();
  return in.ok && in.left == 0;
}

std::string HashSecret(std::string_view secret) {
  unsigned char out[32];
  crypto::compat::Sha256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

bool SecretEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace cairn::store::schema
