// The pure rules of `tahoe backup` (see backup.h): snapshot metadata, the
// directory hash, Archives names and --exclude matching. Any thread.
#include "cairn/dirnode/backup.h"

#include <algorithm>
#include <ctime>

#include "cairn/core/base32.h"
#include "cairn/crypto/hash.h"

namespace cairn::dirnode {
namespace {

PyJson Int(std::int64_t v) {
  PyJson out;
  out.kind = PyJson::Kind::kInt;
  out.integer = std::to_string(v);
  return out;
}

// Python's float of a stat time: seconds + nanoseconds * 1e-9.
PyJson StatTime(const struct timespec& ts) {
  return PyJson::Float(static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9);
}

std::string Netstring(const std::string& s) { return std::to_string(s.size()) + ":" + s + ","; }

// Matches the set that starts after '[' at pattern[*at]; on return *at is
// just past its ']'. False in *ok if the set has no closing ']' (then '['
// is an ordinary character, as fnmatch.translate makes it).
bool MatchSet(const std::string& p, std::size_t* at, unsigned char c, bool* ok) {
  std::size_t i = *at;
  bool negate = false;
  if (i < p.size() && p[i] == '!') {
    negate = true;
    ++i;
  }
  std::size_t first = i;
  bool matched = false;
  while (i < p.size() && (p[i] != ']' || i == first)) {
    unsigned char lo = static_cast<unsigned char>(p[i]);
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      unsigned char hi = static_cast<unsigned char>(p[i + 2]);
      if (lo <= c && c <= hi) matched = true;
      i += 3;
    } else {
      if (lo == c) matched = true;
      ++i;
    }
  }
  if (i >= p.size()) {
    *ok = false;
    return false;
  }
  *ok = true;
  *at = i + 1;
  return matched != negate;
}

bool Match(const std::string& p, std::size_t pi, const std::string& s, std::size_t si) {
  while (pi < p.size()) {
    const char pc = p[pi];
    if (pc == '*') {
      while (pi < p.size() && p[pi] == '*') ++pi;
      if (pi == p.size()) return true;
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (Match(p, pi, s, k)) return true;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (pc == '?') {
      ++pi;
      ++si;
      continue;
    }
    if (pc == '[') {
      std::size_t at = pi + 1;
      bool ok = false;
      bool in = MatchSet(p, &at, static_cast<unsigned char>(s[si]), &ok);
      if (ok) {
        if (!in) return false;
        pi = at;
        ++si;
        continue;
      }
    }
    if (pc != s[si]) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

}  // namespace

PyJson StatMetadata(const struct stat& st) {
  PyJson md = PyJson::Object();
  md.Set("ctime", StatTime(st.st_ctim));
  md.Set("mtime", StatTime(st.st_mtim));
  md.Set("st_mode", Int(static_cast<std::int64_t>(st.st_mode)));
  md.Set("st_ino", Int(static_cast<std::int64_t>(st.st_ino)));
  md.Set("st_dev", Int(static_cast<std::int64_t>(st.st_dev)));
  md.Set("st_uid", Int(static_cast<std::int64_t>(st.st_uid)));
  md.Set("st_gid", Int(static_cast<std::int64_t>(st.st_gid)));
  return md;
}

std::string BackupDirHash(std::vector<std::pair<std::string, std::string>> children) {
  std::sort(children.begin(), children.end());
  std::string all;
  for (const auto& child : children) {
    all += Netstring(child.first);
    all += Netstring(child.second);
  }
  return Base32Encode(crypto::TaggedHash("allmydata_backupdb_dirhash_v1", all));
}

std::string ArchiveName(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d_%H:%M:%SZ", &tm);
  return text;
}

const std::vector<std::string>& VcsExcludes() {
  static const std::vector<std::string> kNames = {
      "CVS",    "RCS",          "SCCS",          ".git",     ".gitignore", ".cvsignore",
      ".svn",   ".arch-ids",    "{arch}",        "=RELEASE-ID", "=meta-update", "=update",
      ".bzr",   ".bzrignore",   ".bzrtags",      ".hg",      ".hgignore",  "_darcs"};
  return kNames;
}

bool FnMatch(const std::string& pattern, const std::string& name) { return Match(pattern, 0, name, 0); }

bool Excluded(const std::string& basename, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (FnMatch(p, basename)) return true;
  }
  return false;
}

}  // namespace cairn::dirnode
