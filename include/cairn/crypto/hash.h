// SHA-256, and Tahoe-LAFS's hash constructions on top of it:
//   SHA256d(x)                = SHA-256(SHA-256(x))
//   netstring(x)              = "<decimal len>:" x ","
//   tagged_hash(tag, v)       = SHA256d(netstring(tag) v)
//   tagged_pair_hash(tag,a,b) = SHA256d(netstring(tag) netstring(a) netstring(b))
// each optionally cut to its first `size` bytes (after the second SHA-256).
// Byte strings are std::string / std::string_view throughout. Pure
// functions and self-contained objects: any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::crypto {

inline constexpr std::size_t kHashSize = 32;

std::string Sha256(std::string_view data);
// SHA-1: only where Tahoe-LAFS defines something with it (server permutation).
std::string Sha1(std::string_view data);
std::string Sha256d(std::string_view data);
std::string Netstring(std::string_view data);
std::string TaggedHash(std::string_view tag, std::string_view value, std::size_t size = kHashSize);
std::string TaggedPairHash(std::string_view tag, std::string_view a, std::string_view b,
                           std::size_t size = kHashSize);

class Sha256dHasher;

// TaggedHash(tag, v) of each value, in order. Two at a time where lengths
// are equal (a segment's blocks): faster with SHA-NI (crypto/sha256.h).
std::vector<std::string> TaggedHashes(std::string_view tag, const std::vector<std::string_view>& values,
                                      std::size_t size = kHashSize);
// TaggedHash(tag, value), and running.Update(value), in one pass: a CHK
// segment's hash and the whole crypttext's.
std::string TaggedHashAndUpdate(std::string_view tag, std::string_view value, Sha256dHasher& running,
                                std::size_t size = kHashSize);

// Incremental SHA-256d, for values too large to hold at once (a whole file's
// ciphertext, a convergent key over the plaintext). With a tag it computes
// tagged_hash(tag, everything passed to Update).
class Sha256dHasher {
 public:
  Sha256dHasher();
  explicit Sha256dHasher(std::string_view tag);
  ~Sha256dHasher();
  Sha256dHasher(Sha256dHasher&&) noexcept;
  Sha256dHasher& operator=(Sha256dHasher&&) noexcept;

  void Update(std::string_view data);
  // The digest, cut to `size` bytes. The hasher is spent afterwards.
  std::string Finish(std::size_t size = kHashSize);

 private:
  friend std::string TaggedHashAndUpdate(std::string_view, std::string_view, Sha256dHasher&, std::size_t);
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cairn::crypto
