// SHA-256 and Tahoe-LAFS's tagged hashes over crypto/sha256.h (SHA-1 from
// mbedTLS).
#include "cairn/crypto/hash.h"

#include <cstdint>
#include <vector>

#include "cairn/core/status.h"
#include "cairn/crypto/mbedtls_compat.h"
#include "crypto/sha256.h"

namespace cairn::crypto {
namespace {

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// A SHA-256 context (crypto/sha256.h: SHA-NI where the CPU has it).
class Sha {
 public:
  void Update(std::string_view data) { state_.Update(data.data(), data.size()); }
  // a.Update(da) and b.Update(db) together (equal lengths): SHA-NI's rounds
  // of the two interleave.
  static void UpdateTwo(Sha& a, std::string_view da, Sha& b, std::string_view db) {
    CAIRN_CHECK(da.size() == db.size(), "UpdateTwo of unequal lengths");
    Sha256State::UpdateTwo(a.state_, da.data(), b.state_, db.data(), da.size());
  }
  void UpdateNetstring(std::string_view data) {
    Update(std::to_string(data.size()));
    Update(":");
    Update(data);
    Update(",");
  }
  // SHA-256d of everything so far, cut to `size` bytes.
  std::string FinishDouble(std::size_t size) {
    std::uint8_t first[kHashSize];
    state_.Finish(first);
    Sha256State second;
    second.Update(first, sizeof first);
    std::string out(kHashSize, '\0');
    second.Finish(reinterpret_cast<std::uint8_t*>(out.data()));
    CAIRN_CHECK(size <= kHashSize, "hash truncated to more than 32 bytes");
    out.resize(size);
    return out;
  }

 private:
  Sha256State state_;
};

}  // namespace

std::string Sha256(std::string_view data) {
  Sha256State state;
  state.Update(data.data(), data.size());
  std::string out(kHashSize, '\0');
  state.Finish(reinterpret_cast<std::uint8_t*>(out.data()));
  return out;
}

std::string Sha1(std::string_view data) {
  std::string out(20, '\0');
  CAIRN_CHECK(compat::Sha1(Bytes(data), data.size(), reinterpret_cast<unsigned char*>(out.data())) == 0, "sha1");
  return out;
}

std::string Sha256d(std::string_view data) {
  Sha sha;
  sha.Update(data);
  return sha.FinishDouble(kHashSize);
}

std::string Netstring(std::string_view data) {
  std::string out = std::to_string(data.size());
  out.reserve(out.size() + data.size() + 2);
  out += ':';
  out += data;
  out += ',';
  return out;
}

std::string TaggedHash(std::string_view tag, std::string_view value, std::size_t size) {
  Sha sha;
  sha.UpdateNetstring(tag);
  sha.Update(value);
  return sha.FinishDouble(size);
}

std::string TaggedPairHash(std::string_view tag, std::string_view a, std::string_view b, std::size_t size) {
  Sha sha;
  sha.UpdateNetstring(tag);
  sha.UpdateNetstring(a);
  sha.UpdateNetstring(b);
  return sha.FinishDouble(size);
}

struct Sha256dHasher::State {
  Sha sha;
};

std::vector<std::string> TaggedHashes(std::string_view tag, const std::vector<std::string_view>& values,
                                      std::size_t size) {
  std::vector<std::string> out;
  out.reserve(values.size());
  std::size_t i = 0;
  for (; i + 1 < values.size(); i += 2) {
    Sha a, b;
    a.UpdateNetstring(tag);
    b.UpdateNetstring(tag);
    if (values[i].size() == values[i + 1].size()) {
      Sha::UpdateTwo(a, values[i], b, values[i + 1]);
    } else {
      a.Update(values[i]);
      b.Update(values[i + 1]);
    }
    out.push_back(a.FinishDouble(size));
    out.push_back(b.FinishDouble(size));
  }
  if (i < values.size()) out.push_back(TaggedHash(tag, values[i], size));
  return out;
}

std::string TaggedHashAndUpdate(std::string_view tag, std::string_view value, Sha256dHasher& running,
                                std::size_t size) {
  CAIRN_CHECK(running.state_ != nullptr, "Sha256dHasher used after Finish");
  Sha sha;
  sha.UpdateNetstring(tag);
  Sha::UpdateTwo(sha, value, running.state_->sha, value);
  return sha.FinishDouble(size);
}

Sha256dHasher::Sha256dHasher() : state_(std::make_unique<State>()) {}
Sha256dHasher::Sha256dHasher(std::string_view tag) : Sha256dHasher() { state_->sha.UpdateNetstring(tag); }
Sha256dHasher::~Sha256dHasher() = default;
Sha256dHasher::Sha256dHasher(Sha256dHasher&&) noexcept = default;
Sha256dHasher& Sha256dHasher::operator=(Sha256dHasher&&) noexcept = default;

void Sha256dHasher::Update(std::string_view data) {
  CAIRN_CHECK(state_ != nullptr, "Sha256dHasher used after Finish");
  state_->sha.Update(data);
}

std::string Sha256dHasher::Finish(std::size_t size) {
  CAIRN_CHECK(state_ != nullptr, "Sha256dHasher finished twice");
  std::string out = state_->sha.FinishDouble(size);
  state_.reset();
  return out;
}

}  // namespace cairn::crypto
