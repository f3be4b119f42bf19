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
    "verify IMAGE --pubkey PUBLIC.pem [--board NAME] [--root DIR]";
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

// IMAGE's two companions: "x.squashfs" -> "x.manifest", "x.sig".
std::string Companion(const std::string& image, const char* ext) {
  std::string base = image;
  const std::string suffix = ".squashfs";
  if (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
    base.resize(base.size() - suffix.size());
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

int Verify(const Options& opts, std::vector<std::string> args) {
  std::string pubkey, board(BuildBoard()), root;
  bool bad = false;
  TakeFlag(&args, "--pubkey", &pubkey, &bad);
  TakeFlag(&args, "--board", &board, &bad);
  TakeFlag(&args, "--root", &root, &bad);
  if (bad || args.size() != 1 || pubkey.empty()) return UsageError(kVerifyUsage, "IMAGE and --pubkey are needed");
  const std::string& image = args[0];
  auto key = LoadPublicKey(pubkey);
  if (!key.ok()) return Fail(opts, key.status());
  const std::string manifest_path = Companion(image, ".manifest"), sig_path = Companion(image, ".sig");
  auto manifest_text = ReadWholeFile(manifest_path, 64 << 20);
  if (!manifest_text.ok()) return Fail(opts, manifest_text.status());
  auto signature = ReadWholeFile(sig_path, 64 * 1024);
  if (!signature.ok()) return Fail(opts, signature.status());
  const std::string& text = *manifest_text;
  const std::string& sig = *signature;

  std::vector<Problem> problems;
  Manifest m;
  std::size_t checked = 0;
  // Nothing in a manifest whose signature fails is worth reading.
  if (Status st = key->Verify(text, sig); !st.ok()) {
    problems.push_back({"bad_signature", BaseName(manifest_path),
                        "the signature " + BaseName(sig_path) + " does not match this manifest and key"});
  } else if (auto parsed = ParseManifest(text); !parsed.ok()) {
    problems.push_back({"bad_manifest", BaseName(manifest_path), std::string(parsed.status().message())});
  } else {
    m = std::move(parsed).value();
    if (m.board != board) {
      problems.push_back({"wrong_board", m.image, "built for board " + m.board + ", expected " + board});
    }
    CheckFile(image, m.image, m.image_digest, false, &problems);
    if (!root.empty()) {
      for (const Entry& e : m.files) {
        CheckFile(root + "/" + e.path, e.path, e.digest, true, &problems);
        ++checked;
      }
    }
  }

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
        "       cairn %s\n\n"
        "The signed board image (docs/boards.md). keygen makes an RSA-2048 signing key\n"
        "pair (PEM). sign writes IMAGE's .manifest (version, board, the SHA-256 of IMAGE\n"
        "and of every file under DIR) and .sig (RSA-PSS over the manifest). verify\n"
        "checks the signature with the public key, the board (default: this build's),\n"
        "IMAGE's size and SHA-256, and with --root every listed file under DIR (an\n"
        "unpacked image: size, SHA-256, mode). Exit 0 good, 1 a check failed (each\n"
        "problem named), 2 usage, 3 the key, manifest or signature file is missing.\n",
        kKeygenUsage, kSignUsage, kVerifyUsage);
    return args.empty() ? 2 : 0;
  }
  std::string sub = args[0];
  args.erase(args.begin());
  if (sub == "keygen") return Keygen(opts, args);
  if (sub == "sign") return Sign(opts, std::move(args));
  if (sub == "verify") return Verify(opts, std::move(args));
  return UsageError(kUsage, "unknown image command \"" + sub + "\"");
}

}  // namespace cairn::cli
