// NFC normalization (see the header). The three tables are generated; the
// algorithm is UAX #15's, with Hangul syllables composed and decomposed
// arithmetically. Pure functions: any thread.
#include "cairn/dirnode/nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace cairn::dirnode {
namespace {

struct CombiningClass {
  char32_t cp;
  std::uint8_t ccc;
};
struct Decomposition {
  char32_t cp, first, second;
};
struct Composition {
  char32_t first, second, cp;
};

#include "dirnode/nfc_tables.inc"

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

std::uint8_t Ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::lower_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), cp,
                             [](const CombiningClass& e, char32_t v) { return e.cp < v; });
  return it != std::end(kCombiningClasses) && it->cp == cp ? it->ccc : 0;
}

void Decompose(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    auto it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                               [](const Decomposition& e, char32_t v) { return e.cp < v; });
    if (it != std::end(kDecompositions) && it->cp == cp) {
      Decompose(it->first, out);
      if (it->second) Decompose(it->second, out);
      return;
    }
  }
  out->push_back(cp);
}

// The primary composite of `a` and `b`, or 0.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::make_pair(a, b),
                             [](const Composition& e, const std::pair<char32_t, char32_t>& v) {
                               return e.first < v.first || (e.first == v.first && e.second < v.second);
                             });
  return it != std::end(kCompositions) && it->first == a && it->second == b ? it->cp : 0;
}

Result<std::vector<char32_t>> DecodeUtf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return Status::InvalidArgument("not well-formed UTF-8");
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t j = 1; j < len; ++j) {
      unsigned char t = static_cast<unsigned char>(s[i + j]);
      if ((t >> 6) != 2) return Status::InvalidArgument("not well-formed UTF-8");
      cp = (cp << 6) | (t & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Status::InvalidArgument("not well-formed UTF-8");
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void EncodeUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

const char* NfcUnicodeVersion() { return "14.0.0"; }

bool IsUtf8(std::string_view text) { return DecodeUtf8(text).ok(); }

Result<std::string> NormalizeNfc(std::string_view utf8) {
  // ASCII is its own NFC form: most names end here.
  if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(utf8);
  }
  CAIRN_TRY_ASSIGN(std::vector<char32_t> cps, DecodeUtf8(utf8));
  std::vector<char32_t> d;
  d.reserve(cps.size() * 2);
  for (char32_t cp : cps) Decompose(cp, &d);
  // Canonical ordering: each run of non-starters sorted by class, stably.
  for (std::size_t i = 0; i < d.size();) {
    if (Ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < d.size() && Ccc(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<long>(i), d.begin() + static_cast<long>(j),
                     [](char32_t a, char32_t b) { return Ccc(a) < Ccc(b); });
    i = j;
  }
  // Canonical composition: each character joins the last starter unless a
  // character between them has a class as high as its own (blocked).
  std::vector<char32_t> out;
  out.reserve(d.size());
  std::size_t starter = SIZE_MAX;
  int last_ccc = -1;
  for (char32_t cp : d) {
    const int ccc = Ccc(cp);
    if (starter != SIZE_MAX) {
      const bool adjacent = starter + 1 == out.size();
      if ((adjacent || (last_ccc != 0 && last_ccc < ccc))) {
        if (char32_t composite = Compose(out[starter], cp)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = out.size();
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    out.push_back(cp);
  }
  std::string text;
  text.reserve(utf8.size());
  for (char32_t cp : out) EncodeUtf8(cp, &text);
  return text;
}

}  // namespace cairn::dirnode
