// `cairn image keygen|sign|verify`: the signed board image (docs/boards.md).
//
// An image is three files side by side:
//   cairn-VERSION-BOARD.squashfs   the root overlay (made by mksquashfs)
//   cairn-VERSION-BOARD.manifest   text: version, board, the squashfs's size
//                                  and SHA-256, every file's mode, size, SHA-256
//   cairn-VERSION-BOARD.sig        RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte
//                                  salt) over the manifest's bytes, 256 bytes
// RSA-2048 PSS because cairn already carries and tests that signature for
// Tahoe-LAFS mutable files (crypto/rsa.h, the same on mbedTLS 2.28 and 3.6),
// and because verifying it is cheap on the smallest board; a PSS signature
// made on the build machine needs no per-signature secret nonce, unlike ECDSA.
// openssl verifies the same files (docs/boards.md). Offline; single-threaded.
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/core/file.h"
#include "cairn/core/limits.h"
#include "cairn/core/version.h"
#include "cairn/crypto/base64.h"
#include "cairn/crypto/rsa.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "crypto/sha256.h"

namespace cairn::cli {
namespace {

constexpr const char* kUsage =
    "image keygen PRIVATE.pem PUBLIC.pem | sign IMAGE --root DIR --board NAME --key PRIVATE.pem | "
    "verify IMAGE --pubkey PUBLIC.pem [--board NAME] [--root DIR] | install UPDATE.rootfs [--pubkey KEY] | status | "
    "mark-good";
constexpr const char* kKeygenUsage = "image keygen PRIVATE.pem PUBLIC.pem";
constexpr const char* kSignUsage = "image sign IMAGE --root DIR --board NAME --key PRIVATE.pem [--version V]";
constexpr const char* kVerifyUsage = "image verify IMAGE --pubkey PUBLIC.pem [--board NAME] [--root DIR]";
constexpr const char* kMagic = "cairn-image 1";

std::string Hex(const std::uint8_t* p, std::size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

struct Digest {
  std::uint64_t size = 0;
  std::string sha256;  // hex
  unsigned mode = 0;
};

// Size and SHA-256 of a file, read in 64 KiB pieces (an image is megabytes).
Result<Digest> HashFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string msg = path + ": " + std::strerror(errno);
    return errno == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
  }
  struct stat st;
  Digest d;
  if (fstat(fd, &st) == 0) d.mode = st.st_mode & 07777;
  crypto::Sha256State h;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::IoError(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<std::size_t>(n));
    d.size += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  std::uint8_t out[32];
  h.Finish(out);
  d.sha256 = Hex(out, sizeof out);
  return d;
}

Status WriteFileMode(const std::string& path, const std::string& data, mode_t mode, bool exclusive) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode);
  if (fd < 0) {
    std::string msg = path + ": " + std::strerror(errno);
    return errno == EEXIST ? Status::Conflict(msg + " (will not overwrite a key)") : Status::IoError(msg);
  }
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) return Status::IoError(path + ": " + std::strerror(err));
  return Status();
}

std::string Pem(const char* label, const std::string& der) {
  std::string b64 = crypto::Base64Encode(der);
  std::string out = std::string("-----BEGIN ") + label + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

// The public key as SubjectPublicKeyInfo, from PEM ("PUBLIC KEY") or DER.
Result<crypto::RsaKey> LoadPublicKey(const std::string& path) {
  CAIRN_TRY_ASSIGN(std::string text, ReadWholeFile(path, 64 * 1024));
  const std::string begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
  std::size_t b = text.find(begin), e = text.find(end);
  if (b == std::string::npos) return crypto::RsaKey::ParsePublicDer(text);
  if (e == std::string::npos || e < b) return Status::InvalidArgument(path + ": unterminated PEM");
  std::string body;
  for (char c : text.substr(b + begin.size(), e - b - begin.size())) {
    if (c != '\n' && c != '\r' && c != ' ') body += c;
  }
  auto der = crypto::Base64Decode(body);
  if (!der.ok()) return der.status().WithContext(path);
  auto key = crypto::RsaKey::ParsePublicDer(*der);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

// IMAGE's two companions: "x.squashfs" (an overlay) or "x.rootfs" (a root
// slot image) -> "x.manifest", "x.sig".
std::string Companion(const std::string& image, const char* ext) {
  std::string base = image;
  for (const std::string suffix : {".squashfs", ".rootfs"}) {
    if (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
      base.resize(base.size() - suffix.size());
      break;
    }
  }
  return base + ext;
}

std::string BaseName(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct Entry {
  std::string path;  // relative to the image's root
  Digest digest;
};

struct Manifest {
  std::string version, board, image;
  Digest image_digest;
  std::vector<Entry> files;
};

// The manifest's text, one record a line, fields separated by one space:
//   cairn-image 1
//   version 0.1.0
//   board rpi4
//   image cairn-0.1.0-rpi4.squashfs SIZE SHA256
//   file MODE SIZE SHA256 PATH        (MODE octal; PATH last, sorted)
std::string FormatManifest(const Manifest& m) {
  std::string out = std::string(kMagic) + "\n";
  out += "version " + m.version + "\n";
  out += "board " + m.board + "\n";
  out += "image " + m.image + " " + std::to_string(m.image_digest.size) + " " + m.image_digest.sha256 + "\n";
  for (const Entry& e : m.files) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", e.digest.mode);
    out += std::string("file ") + mode + " " + std::to_string(e.digest.size) + " " + e.digest.sha256 + " " + e.path +
           "\n";
  }
  return out;
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<Manifest> ParseManifest(const std::string& text) {
  Manifest m;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto bad = [&n](const std::string& why) { return Status::Integrity("manifest line " + std::to_string(n) + ": " + why); };
  while (std::getline(in, line)) {
    ++n;
    if (n == 1) {
      if (line != kMagic) return bad("not a cairn image manifest (\"" + std::string(kMagic) + "\" expected)");
      continue;
    }
    std::istringstream f(line);
    std::string kind;
    f >> kind;
    if (kind == "version") {
      f >> m.version;
    } else if (kind == "board") {
      f >> m.board;
    } else if (kind == "image") {
      f >> m.image >> m.image_digest.size >> m.image_digest.sha256;
      if (!f || !IsHex64(m.image_digest.sha256)) return bad("malformed image line");
    } else if (kind == "file") {
      Entry e;
      std::string mode;
      f >> mode >> e.digest.size >> e.digest.sha256;
      bool fields_ok = !f.fail() && f.get() == ' ';  // one space before the path
      std::getline(f, e.path);
      if (!fields_ok || !IsHex64(e.digest.sha256) || e.path.empty() || e.path[0] == '/' ||
          e.path.find("..") != std::string::npos) {
        return bad("malformed file line");
      }
      e.digest.mode = static_cast<unsigned>(std::strtoul(mode.c_str(), nullptr, 8));
      m.files.push_back(std::move(e));
    } else {
      return bad("unknown record \"" + kind + "\"");
    }
  }
  if (m.version.empty() || m.board.empty() || m.image.empty()) return Status::Integrity("manifest incomplete");
  return m;
}

bool TakeFlag(std::vector<std::string>* args, const char* flag, std::string* out, bool* bad) {
  for (std::size_t i = 0; i < args->size(); ++i) {
    if ((*args)[i] != flag) continue;
    if (i + 1 >= args->size()) {
      *bad = true;
      return false;
    }
    *out = (*args)[i + 1];
    args->erase(args->begin() + static_cast<std::ptrdiff_t>(i), args->begin() + static_cast<std::ptrdiff_t>(i) + 2);
    return true;
  }
  return false;
}

int Keygen(const Options& opts, const std::vector<std::string>& args) {
  if (args.size() != 2) return UsageError(kKeygenUsage, "two paths are needed");
  auto key = crypto::RsaKey::Generate();
  if (!key.ok()) return Fail(opts, key.status());
  Status st = WriteFileMode(args[0], Pem("PRIVATE KEY", key->PrivatePkcs8Der()), 0600, true);
  if (st.ok()) st = WriteFileMode(args[1], Pem("PUBLIC KEY", key->PublicSpkiDer()), 0644, false);
  if (!st.ok()) return Fail(opts, st);
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "private_key", args[0].c_str());
    cJSON_AddStringToObject(out.get(), "public_key", args[1].c_str());
    PrintJson(out);
  } else if (!opts.quiet) {
    std::printf("wrote %s (keep it secret) and %s\n", args[0].c_str(), args[1].c_str());
  }
  return 0;
}

int Sign(const Options& opts, std::vector<std::string> args) {
  std::string root, board, key_path, version = kVersion;
  bool bad = false;
  TakeFlag(&args, "--root", &root, &bad);
  TakeFlag(&args, "--board", &board, &bad);
  TakeFlag(&args, "--key", &key_path, &bad);
  TakeFlag(&args, "--version", &version, &bad);
  if (bad || args.size() != 1 || root.empty() || board.empty() || key_path.empty()) {
    return UsageError(kSignUsage, "IMAGE, --root, --board and --key are needed");
  }
  const std::string& image = args[0];
  auto key_text = ReadWholeFile(key_path, 64 * 1024);
  if (!key_text.ok()) return Fail(opts, key_text.status());
  auto key = crypto::RsaKey::ParsePrivate(*key_text);
  if (!key.ok()) return Fail(opts, key.status().WithContext(key_path));
  Manifest m;
  m.version = version;
  m.board = board;
  m.image = BaseName(image);
  auto id = HashFile(image);
  if (!id.ok()) return Fail(opts, id.status());
  m.image_digest = *id;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    std::string rel = std::filesystem::relative(it->path(), root, ec).string();
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) {
      return Fail(opts, Status::InvalidArgument(rel + ": only regular files and directories go in an image"));
    }
    if (rel.find('\n') != std::string::npos) return Fail(opts, Status::InvalidArgument("a file name holds a newline"));
    auto d = HashFile(it->path().string());
    if (!d.ok()) return Fail(opts, d.status());
    m.files.push_back({rel, *d});
  }
  if (ec) return Fail(opts, Status::IoError(root + ": " + ec.message()));
  std::sort(m.files.begin(), m.files.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  std::string text = FormatManifest(m);
  auto sig = key->Sign(text);
  if (!sig.ok()) return Fail(opts, sig.status());
  Status st = WriteFileMode(Companion(image, ".manifest"), text, 0644, false);
  if (st.ok()) st = WriteFileMode(Companion(image, ".sig"), *sig, 0644, false);
  if (!st.ok()) return Fail(opts, st);
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "manifest", Companion(image, ".manifest").c_str());
    cJSON_AddStringToObject(out.get(), "signature", Companion(image, ".sig").c_str());
    cJSON_AddNumberToObject(out.get(), "files", static_cast<double>(m.files.size()));
    PrintJson(out);
  } else if (!opts.quiet) {
    std::printf("signed %s: %zu files, manifest %s\n", m.image.c_str(), m.files.size(),
                Companion(image, ".manifest").c_str());
  }
  return 0;
}

struct Problem {
  const char* kind;  // bad_signature, bad_manifest, wrong_board, missing, unreadable, hash_mismatch, mode_mismatch
  std::string file;
  std::string message;
};

// Compares one file with its manifest entry (and its mode, for files of an
// unpacked image); adds what differs.
void CheckFile(const std::string& path, const std::string& name, const Digest& want, bool check_mode,
               std::vector<Problem>* out) {
  auto got = HashFile(path);
  if (!got.ok()) {
    bool missing = got.status().code() == Code::kNotFound;
    out->push_back({missing ? "missing" : "unreadable", name, std::string(got.status().message())});
    return;
  }
  if (got->size != want.size) {
    out->push_back({"hash_mismatch", name,
                    std::to_string(got->size) + " bytes, the manifest says " + std::to_string(want.size) +
                        (got->size < want.size ? " (truncated?)" : "")});
  } else if (got->sha256 != want.sha256) {
    out->push_back({"hash_mismatch", name, "SHA-256 " + got->sha256 + ", the manifest says " + want.sha256});
  }
  if (check_mode && got->mode != want.mode) {
    char msg[64];
    std::snprintf(msg, sizeof msg, "mode %04o, the manifest says %04o", got->mode, want.mode);
    out->push_back({"mode_mismatch", name, msg});
  }
}

// What verifying an image found: its manifest (empty unless the signature
// is good and the manifest reads) and every problem, in order.
struct Verification {
  Manifest manifest;
  std::vector<Problem> problems;
  std::size_t checked = 0;  // files checked under --root
  std::string manifest_text, signature;
};

// Checks IMAGE's signature with KEY, the manifest's board against BOARD, the
// image's size and SHA-256, and with a non-empty ROOT every listed file under
// it. A key, manifest or signature that cannot be read is the returned error.
Result<Verification> VerifyImage(const std::string& image, const std::string& pubkey, const std::string& board,
                                 const std::string& root) {
  CAIRN_TRY_ASSIGN(crypto::RsaKey key, LoadPublicKey(pubkey));
  const std::string manifest_path = Companion(image, ".manifest"), sig_path = Companion(image, ".sig");
  Verification v;
  CAIRN_TRY_ASSIGN(v.manifest_text, ReadWholeFile(manifest_path, 64 << 20));
  CAIRN_TRY_ASSIGN(v.signature, ReadWholeFile(sig_path, 64 * 1024));
  // Nothing in a manifest whose signature fails is worth reading.
  if (Status st = key.Verify(v.manifest_text, v.signature); !st.ok()) {
    v.problems.push_back({"bad_signature", BaseName(manifest_path),
                          "the signature " + BaseName(sig_path) + " does not match this manifest and key"});
  } else if (auto parsed = ParseManifest(v.manifest_text); !parsed.ok()) {
    v.problems.push_back({"bad_manifest", BaseName(manifest_path), std::string(parsed.status().message())});
  } else {
    v.manifest = std::move(parsed).value();
    const Manifest& m = v.manifest;
    if (m.board != board) {
      v.problems.push_back({"wrong_board", m.image, "built for board " + m.board + ", expected " + board});
    }
    CheckFile(image, m.image, m.image_digest, false, &v.problems);
    if (!root.empty()) {
      for (const Entry& e : m.files) {
        CheckFile(root + "/" + e.path, e.path, e.digest, true, &v.problems);
        ++v.checked;
      }
    }
  }
  return v;
}

int Verify(const Options& opts, std::vector<std::string> args) {
  std::string pubkey, board(BuildBoard()), root;
  bool bad = false;
  TakeFlag(&args, "--pubkey", &pubkey, &bad);
  TakeFlag(&args, "--board", &board, &bad);
  TakeFlag(&args, "--root", &root, &bad);
  if (bad || args.size() != 1 || pubkey.empty()) return UsageError(kVerifyUsage, "IMAGE and --pubkey are needed");
  const std::string& image = args[0];
  auto verified = VerifyImage(image, pubkey, board, root);
  if (!verified.ok()) return Fail(opts, verified.status());
  const Manifest& m = verified->manifest;
  const std::vector<Problem>& problems = verified->problems;
  const std::size_t checked = verified->checked;

  if (opts.json) {
    Json out = Json::NewObject();
    cJSON* o = out.get();
    cJSON_AddBoolToObject(o, "ok", problems.empty());
    cJSON_AddStringToObject(o, "image", image.c_str());
    cJSON_AddStringToObject(o, "version", m.version.c_str());
    cJSON_AddStringToObject(o, "board", m.board.c_str());
    cJSON_AddNumberToObject(o, "files_listed", static_cast<double>(m.files.size()));
    cJSON_AddNumberToObject(o, "files_checked", static_cast<double>(checked));
    cJSON* list = cJSON_AddArrayToObject(o, "problems");
    for (const Problem& p : problems) {
      cJSON* item = cJSON_CreateObject();
      cJSON_AddStringToObject(item, "kind", p.kind);
      cJSON_AddStringToObject(item, "file", p.file.c_str());
      cJSON_AddStringToObject(item, "message", p.message.c_str());
      cJSON_AddItemToArray(list, item);
    }
    PrintJson(out);
  } else if (problems.empty()) {
    if (!opts.quiet) {
      std::printf("ok: %s, version %s, board %s: signature good, image SHA-256 good", m.image.c_str(),
                  m.version.c_str(), m.board.c_str());
      if (!root.empty()) std::printf(", %zu files good under %s", checked, root.c_str());
      std::printf("\n");
    }
  } else {
    for (const Problem& p : problems) {
      std::fprintf(stderr, "cairn: image verify: %s: %s: %s\n", p.kind, p.file.c_str(), p.message.c_str());
    }
  }
  return problems.empty() ? 0 : CodeExitCode(Code::kIntegrity);
}

// --- the A/B root slots of a whole-disk image (docs/boards.md) --------------
//
// The initramfs writes /run/cairn/slots at every boot, "key=value" lines:
//   booted=a|b  a=/dev/vda2  b=/dev/vda3  boot=/boot  (and boot_dev, data_dev)
// The boot state is BOOT/cairn/bootstate on the FAT boot partition, which
// the initramfs reads (and counts down) before it picks the slot:
//   good=a|b    try=a|b or empty    tries=N
// BOOT/cairn/slot-X.manifest and .sig are the signed manifest of what slot X
// holds, copied there by the build and by every install.

constexpr const char* kSlotsFile = "/run/cairn/slots";
constexpr const char* kImageKey = "/etc/cairn/image-key.pub";
constexpr const char* kInstallUsage = "image install UPDATE.rootfs [--pubkey KEY] [--slots FILE] [--board NAME]";
constexpr const char* kStatusUsage = "image status [--slots FILE]";
constexpr const char* kMarkGoodUsage = "image mark-good [--slots FILE]";

// "key=value" lines; later keys win, other lines are ignored.
std::vector<std::pair<std::string, std::string>> ParseKeyValues(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::string Lookup(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& key) {
  std::string value;
  for (const auto& [k, v] : kv) {
    if (k == key) value = v;
  }
  return value;
}

struct Slots {
  std::string booted;  // "a" or "b"
  std::string dev_a, dev_b, boot;
  std::string Device(const std::string& slot) const { return slot == "a" ? dev_a : dev_b; }
  std::string StatePath() const { return boot + "/cairn/bootstate"; }
  std::string ManifestPath(const std::string& slot, const char* ext) const {
    return boot + "/cairn/slot-" + slot + ext;
  }
};

Result<Slots> LoadSlots(const std::string& path) {
  auto text = ReadWholeFile(path, 64 * 1024);
  if (!text.ok()) {
    return text.status().WithContext("not booted from a cairn disk image with A/B slots");
  }
  auto kv = ParseKeyValues(*text);
  Slots s{Lookup(kv, "booted"), Lookup(kv, "a"), Lookup(kv, "b"), Lookup(kv, "boot")};
  if ((s.booted != "a" && s.booted != "b") || s.dev_a.empty() || s.dev_b.empty() || s.boot.empty()) {
    return Status::Integrity(path + ": needs booted=a|b, a=, b= and boot=");
  }
  return s;
}

struct BootState {
  std::string good = "a", try_slot;
  int tries = 0;
};

Result<BootState> LoadBootState(const Slots& slots) {
  CAIRN_TRY_ASSIGN(std::string text, ReadWholeFile(slots.StatePath(), 64 * 1024));
  auto kv = ParseKeyValues(text);
  BootState st;
  st.good = Lookup(kv, "good") == "b" ? "b" : "a";
  std::string t = Lookup(kv, "try");
  st.try_slot = (t == "a" || t == "b") ? t : "";
  st.tries = std::atoi(Lookup(kv, "tries").c_str());
  return st;
}

// Replaces PATH with DATA: a sibling written, synced and renamed over it, then
// the directory synced. The boot partition is FAT: rename replaces there too.
Status ReplaceFile(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".new";
  ::unlink(tmp.c_str());
  CAIRN_TRY(WriteFileMode(tmp, data, 0644, true));
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(path + ": rename: " + std::strerror(errno));
  std::string dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status();
}

Status SaveBootState(const Slots& slots, const BootState& st) {
  return ReplaceFile(slots.StatePath(),
                     "good=" + st.good + "\ntry=" + st.try_slot + "\ntries=" + std::to_string(st.tries) + "\n");
}

// Writes IMAGE over the start of DEVICE (a partition, or a file in tests),
// syncs it, drops it from the page cache and reads it back: the SHA-256 of
// the first SIZE bytes read must be WANT.
Status WriteSlot(const std::string& image, const std::string& device, const Digest& want) {
  int in = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::IoError(image + ": " + std::strerror(errno));
  int out = ::open(device.c_str(), O_WRONLY | O_CLOEXEC);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return Status::IoError(device + ": " + std::strerror(err));
  }
  off_t capacity = ::lseek(out, 0, SEEK_END);
  Status st;
  if (capacity < 0 || static_cast<std::uint64_t>(capacity) < want.size) {
    st = Status::NoSpace(device + ": " + std::to_string(capacity) + " bytes, the image has " +
                         std::to_string(want.size));
  }
  std::vector<char> buf(1 << 20);
  std::uint64_t done = 0;
  while (st.ok() && done < want.size) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = Status::IoError(image + ": " + (n == 0 ? std::string("shorter than its manifest") : std::strerror(errno)));
      break;
    }
    std::size_t put = 0;
    while (st.ok() && put < static_cast<std::size_t>(n)) {
      ssize_t w = ::pwrite(out, buf.data() + put, static_cast<std::size_t>(n) - put, static_cast<off_t>(done + put));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) st = Status::IoError(device + ": write: " + std::strerror(errno));
      else put += static_cast<std::size_t>(w);
    }
    done += static_cast<std::uint64_t>(n);
  }
  if (st.ok() && ::fsync(out) != 0) st = Status::IoError(device + ": fsync: " + std::strerror(errno));
  ::close(in);
  ::close(out);
  if (!st.ok()) return st;

  // Read back what the device now holds, not what the page cache kept.
  int back = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (back < 0) return Status::IoError(device + ": " + std::strerror(errno));
  ::posix_fadvise(back, 0, 0, POSIX_FADV_DONTNEED);
  crypto::Sha256State h;
  done = 0;
  while (done < want.size) {
    std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), want.size - done));
    ssize_t n = ::pread(back, buf.data(), len, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(back);
      return Status::IoError(device + ": reading back: " + (n == 0 ? std::string("short") : std::strerror(errno)));
    }
    h.Update(buf.data(), static_cast<std::size_t>(n));
    done += static_cast<std::uint64_t>(n);
  }
  ::close(back);
  std::uint8_t digest[32];
  h.Finish(digest);
  if (Hex(digest, sizeof digest) != want.sha256) {
    return Status::Integrity(device + ": what was read back differs from the image (SHA-256 " +
                             Hex(digest, sizeof digest) + ", the manifest says " + want.sha256 + ")");
  }
  return Status();
}

int Install(const Options& opts, std::vector<std::string> args) {
  std::string pubkey = kImageKey, slots_path = kSlotsFile, board(BuildBoard());
  bool bad = false;
  TakeFlag(&args, "--pubkey", &pubkey, &bad);
  TakeFlag(&args, "--slots", &slots_path, &bad);
  TakeFlag(&args, "--board", &board, &bad);
  if (bad || args.size() != 1) return UsageError(kInstallUsage, "UPDATE is needed");
  const std::string& image = args[0];
  auto slots = LoadSlots(slots_path);
  if (!slots.ok()) return Fail(opts, slots.status());
  auto verified = VerifyImage(image, pubkey, board, "");
  if (!verified.ok()) return Fail(opts, verified.status());
  if (!verified->problems.empty()) {
    for (const Problem& p : verified->problems) {
      std::fprintf(stderr, "cairn: image install: %s: %s: %s\n", p.kind, p.file.c_str(), p.message.c_str());
    }
    return Fail(opts, Status::Integrity(image + ": not installed: it did not verify"));
  }
  auto state = LoadBootState(*slots);
  if (!state.ok()) return Fail(opts, state.status());
  const std::string target = slots->booted == "a" ? "b" : "a";
  // From here until the end, the target slot holds nothing bootable: the
  // initramfs must not pick it (a crash half way leaves the good slot).
  BootState st = *state;
  if (st.good == target) st.good = slots->booted;
  st.try_slot.clear();
  st.tries = 0;
  Status s = SaveBootState(*slots, st);
  if (s.ok()) s = WriteSlot(image, slots->Device(target), verified->manifest.image_digest);
  if (s.ok()) s = ReplaceFile(slots->ManifestPath(target, ".manifest"), verified->manifest_text);
  if (s.ok()) s = ReplaceFile(slots->ManifestPath(target, ".sig"), verified->signature);
  if (s.ok()) {
    st.try_slot = target;
    st.tries = 1;
    s = SaveBootState(*slots, st);
  }
  if (!s.ok()) return Fail(opts, s.WithContext("image install"));
  const Manifest& m = verified->manifest;
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "slot", target.c_str());
    cJSON_AddStringToObject(out.get(), "device", slots->Device(target).c_str());
    cJSON_AddStringToObject(out.get(), "version", m.version.c_str());
    cJSON_AddNumberToObject(out.get(), "bytes", static_cast<double>(m.image_digest.size));
    PrintJson(out);
  } else if (!opts.quiet) {
    std::printf("installed %s (version %s) into slot %s (%s), read back and verified; it is tried once at the next "
                "boot\n",
                m.image.c_str(), m.version.c_str(), target.c_str(), slots->Device(target).c_str());
  }
  return 0;
}

// The version a slot's stored manifest names ("" when it has none).
std::string SlotVersion(const Slots& slots, const std::string& slot) {
  auto text = ReadWholeFile(slots.ManifestPath(slot, ".manifest"), 64 << 20);
  if (!text.ok()) return "";
  auto m = ParseManifest(*text);
  return m.ok() ? m->version : "";
}

int SlotStatus(const Options& opts, std::vector<std::string> args) {
  std::string slots_path = kSlotsFile;
  bool bad = false;
  TakeFlag(&args, "--slots", &slots_path, &bad);
  if (bad || !args.empty()) return UsageError(kStatusUsage, "no arguments but --slots");
  auto slots = LoadSlots(slots_path);
  if (!slots.ok()) return Fail(opts, slots.status());
  auto state = LoadBootState(*slots);
  if (!state.ok()) return Fail(opts, state.status());
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON* o = out.get();
    cJSON_AddStringToObject(o, "booted", slots->booted.c_str());
    cJSON_AddStringToObject(o, "good", state->good.c_str());
    cJSON_AddStringToObject(o, "try", state->try_slot.c_str());
    cJSON_AddNumberToObject(o, "tries", state->tries);
    cJSON* list = cJSON_AddObjectToObject(o, "slots");
    for (const char* slot : {"a", "b"}) {
      cJSON* item = cJSON_AddObjectToObject(list, slot);
      cJSON_AddStringToObject(item, "device", slots->Device(slot).c_str());
      cJSON_AddStringToObject(item, "version", SlotVersion(*slots, slot).c_str());
    }
    PrintJson(out);
    return 0;
  }
  for (const char* slot : {"a", "b"}) {
    std::string version = SlotVersion(*slots, slot), marks;
    if (slots->booted == slot) marks += " booted";
    if (state->good == slot) marks += " good";
    if (state->try_slot == slot) marks += " try(" + std::to_string(state->tries) + " left)";
    std::printf("slot %s  %-12s %-14s%s\n", slot, slots->Device(slot).c_str(),
                version.empty() ? "(no manifest)" : version.c_str(), marks.c_str());
  }
  return 0;
}

int MarkGood(const Options& opts, std::vector<std::string> args) {
  std::string slots_path = kSlotsFile;
  bool bad = false;
  TakeFlag(&args, "--slots", &slots_path, &bad);
  if (bad || !args.empty()) return UsageError(kMarkGoodUsage, "no arguments but --slots");
  auto slots = LoadSlots(slots_path);
  if (!slots.ok()) return Fail(opts, slots.status());
  auto state = LoadBootState(*slots);
  if (!state.ok()) return Fail(opts, state.status());
  bool changed = false;
  if (state->try_slot == slots->booted) {
    BootState st{slots->booted, "", 0};
    if (Status s = SaveBootState(*slots, st); !s.ok()) return Fail(opts, s);
    changed = true;
  }
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "booted", slots->booted.c_str());
    cJSON_AddBoolToObject(out.get(), "marked", changed);
    PrintJson(out);
  } else if (!opts.quiet) {
    if (changed) {
      std::printf("slot %s marked good\n", slots->booted.c_str());
    } else {
      std::printf("slot %s: nothing to mark (it was not on trial; the good slot is %s)\n", slots->booted.c_str(),
                  state->good.c_str());
    }
  }
  return 0;
}

bool IsHelp(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

}  // namespace

int ImageMain(const Options& opts) {
  std::vector<std::string> args = opts.args;  // the words after "image"
  if (args.empty() || IsHelp(args)) {
    std::printf(
        "usage: cairn %s\n"
        "       cairn %s\n"
        "       cairn %s\n"
        "       cairn %s\n"
        "       cairn %s\n"
        "       cairn %s\n\n"
        "The signed board image (docs/boards.md). keygen makes an RSA-2048 signing key\n"
        "pair (PEM). sign writes IMAGE's .manifest (version, board, the SHA-256 of IMAGE\n"
        "and of every file under DIR) and .sig (RSA-PSS over the manifest). verify\n"
        "checks the signature with the public key, the board (default: this build's),\n"
        "IMAGE's size and SHA-256, and with --root every listed file under DIR (an\n"
        "unpacked image: size, SHA-256, mode). Exit 0 good, 1 a check failed (each\n"
        "problem named), 2 usage, 3 the key, manifest or signature file is missing.\n\n"
        "On a box booted from a whole-disk image (A/B root slots): install verifies a\n"
        "root slot image (default key %s), writes it into the slot\n"
        "not booted, reads it back and marks it to be tried once at the next boot;\n"
        "status shows both slots; mark-good makes the booted slot the good one if it\n"
        "was on trial (the box's init runs it once cairnd answers). --slots FILE\n"
        "replaces %s, which the initramfs writes.\n",
        kKeygenUsage, kSignUsage, kVerifyUsage, kInstallUsage, kStatusUsage, kMarkGoodUsage, kImageKey, kSlotsFile);
    return args.empty() ? 2 : 0;
  }
  std::string sub = args[0];
  args.erase(args.begin());
  if (sub == "keygen") return Keygen(opts, args);
  if (sub == "sign") return Sign(opts, std::move(args));
  if (sub == "verify") return Verify(opts, std::move(args));
  if (sub == "install") return Install(opts, std::move(args));
  if (sub == "status") return SlotStatus(opts, std::move(args));
  if (sub == "mark-good") return MarkGood(opts, std::move(args));
  return UsageError(kUsage, "unknown image command \"" + sub + "\"");
}

}  // namespace cairn::cli
