// `cairn debug ssk-cap` and `cairn debug parse-cap`: offline tools that show
// what cairn derives from a key or reads from a cap, so our formats can be
// checked against Tahoe-LAFS from outside. They touch no node directory.
#include <cjson/cJSON.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"
#include "cairn/crypto/rsa.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

constexpr const char* kSskUsage = "debug ssk-cap --key KEY.pem [--format sdmf|mdmf]";
constexpr const char* kParseUsage = "debug parse-cap CAP";

bool IsHelp(const Options& opts) {
  for (const std::string& a : opts.args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

Result<std::string> ReadKeyFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (ss.str().size() > 64 * 1024) return Status::InvalidArgument(path + " is too large to be an RSA key");
  return ss.str();
}

}  // namespace

int DebugSskCapMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn %s\n\n"
        "Prints the write cap Tahoe-LAFS gives a mutable file whose RSA-2048 key is KEY.pem\n"
        "(PEM or DER, PKCS#1 or PKCS#8). With --json, also the read cap, the verify cap and\n"
        "the storage index. Offline: no node is needed.\n",
        kSskUsage);
    return 0;
  }
  std::string key_path;
  caps::MutableFormat format = caps::MutableFormat::kSdmf;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--key" && i + 1 < opts.args.size()) {
      key_path = opts.args[++i];
    } else if (a == "--format" && i + 1 < opts.args.size()) {
      const std::string& f = opts.args[++i];
      if (f == "sdmf") {
        format = caps::MutableFormat::kSdmf;
      } else if (f == "mdmf") {
        format = caps::MutableFormat::kMdmf;
      } else {
        return UsageError(kSskUsage, "--format is sdmf or mdmf, not \"" + f + "\"");
      }
    } else {
      return UsageError(kSskUsage, "unexpected argument \"" + a + "\"");
    }
  }
  if (key_path.empty()) return UsageError(kSskUsage, "--key KEY.pem is required");
  auto text = ReadKeyFile(key_path);
  if (!text.ok()) return Fail(opts, text.status());
  auto key = crypto::RsaKey::ParsePrivate(*text);
  if (!key.ok()) return Fail(opts, key.status().WithContext(key_path));
  caps::MutableKeys keys = caps::DeriveMutableKeys(key->PrivatePkcs8Der(), key->PublicSpkiDer());
  caps::Cap write = caps::MutableWriteCap(keys, format);
  if (!opts.json) {
    std::printf("%s\n", caps::FormatCap(write).c_str());
    return 0;
  }
  Json out = Json::NewObject();
  cJSON_AddStringToObject(out.get(), "write_cap", caps::FormatCap(write).c_str());
  cJSON_AddStringToObject(out.get(), "read_cap", caps::FormatCap(*caps::ToReadCap(write)).c_str());
  cJSON_AddStringToObject(out.get(), "verify_cap", caps::FormatCap(*caps::ToVerifyCap(write)).c_str());
  cJSON_AddStringToObject(out.get(), "storage_index", Base32Encode(keys.storage_index).c_str());
  PrintJson(out);
  return 0;
}

int DebugParseCapMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn %s\n\n"
        "Shows what a capability string holds: its kind, keys (Tahoe base32), encoding\n"
        "parameters and storage index, and the weaker caps derived from it. Exit code 7\n"
        "(bad_cap) with the reason if the cap is malformed.\n",
        kParseUsage);
    return 0;
  }
  if (opts.args.size() != 1) return UsageError(kParseUsage, "parse-cap takes exactly one cap");
  auto cap = caps::ParseCap(opts.args[0]);
  if (!cap.ok()) return Fail(opts, cap.status());
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddStringToObject(o, "kind", caps::CapKindName(*cap).c_str());
  cJSON_AddBoolToObject(o, "mutable", cap->is_mutable());
  cJSON_AddBoolToObject(o, "read_only", cap->is_read_only());
  switch (cap->kind) {
    case caps::CapKind::kLiteral:
      cJSON_AddNumberToObject(o, "size", static_cast<double>(cap->literal.size()));
      break;
    case caps::CapKind::kChk:
    case caps::CapKind::kChkVerifier:
      if (cap->kind == caps::CapKind::kChk) cJSON_AddStringToObject(o, "key", Base32Encode(cap->key).c_str());
      cJSON_AddStringToObject(o, "uri_extension_hash", Base32Encode(cap->digest).c_str());
      cJSON_AddNumberToObject(o, "k", cap->k);
      cJSON_AddNumberToObject(o, "n", cap->n);
      cJSON_AddNumberToObject(o, "size", static_cast<double>(cap->size));
      break;
    default: {
      const char* name = cap->kind == caps::CapKind::kMutableWrite  ? "writekey"
                         : cap->kind == caps::CapKind::kMutableRead ? "readkey"
                                                                    : nullptr;
      if (name) cJSON_AddStringToObject(o, name, Base32Encode(cap->key).c_str());
      cJSON_AddStringToObject(o, "fingerprint", Base32Encode(cap->digest).c_str());
      break;
    }
  }
  if (auto si = caps::StorageIndexOf(*cap); si.ok()) {
    cJSON_AddStringToObject(o, "storage_index", Base32Encode(*si).c_str());
  }
  if (auto rc = caps::ToReadCap(*cap); rc.ok() && rc->kind != cap->kind) {
    cJSON_AddStringToObject(o, "read_cap", caps::FormatCap(*rc).c_str());
  }
  if (auto vc = caps::ToVerifyCap(*cap); vc.ok() && vc->kind != cap->kind) {
    cJSON_AddStringToObject(o, "verify_cap", caps::FormatCap(*vc).c_str());
  }
  if (opts.json) {
    PrintJson(out);
    return 0;
  }
  // People get the same fields, one per line, in the order above.
  const cJSON* item;
  cJSON_ArrayForEach(item, o) {
    if (cJSON_IsString(item)) {
      std::printf("%-20s %s\n", item->string, item->valuestring);
    } else if (cJSON_IsBool(item)) {
      std::printf("%-20s %s\n", item->string, cJSON_IsTrue(item) ? "yes" : "no");
    } else {
      std::printf("%-20s %.0f\n", item->string, item->valuedouble);
    }
  }
  return 0;
}

}  // namespace cairn::cli
