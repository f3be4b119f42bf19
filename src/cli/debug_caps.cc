// `cairn debug ssk-cap` and `cairn debug parse-cap`: offline tools that show
// what cairn derives from a key or reads from a cap, so our formats can be
// checked against Tahoe-LAFS from outside. They touch no node directory.
#include <cjson/cJSON.h>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"
#include "cairn/core/file.h"
#include "cairn/crypto/base64.h"
#include "cairn/crypto/rsa.h"
#include "cairn/immutable/chk.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

constexpr const char* kSskUsage = "debug ssk-cap --key KEY.pem [--format sdmf|mdmf]";
constexpr const char* kParseUsage = "debug parse-cap CAP";
constexpr const char* kChkUsage = "debug chk-cap --convergence B64 [-k K] [-n N] [--segment-size S] < FILE";



}  // namespace

int DebugChkCapMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn %s\n\n"
        "Prints the cap Tahoe-LAFS gives the file on stdin as an immutable (CHK) file,\n"
        "without uploading it: URI:LIT: for 55 bytes or less, else URI:CHK:. The\n"
        "convergence secret is base64; -k/-n default to 3/10 and the maximum segment\n"
        "size to 1 MiB (Tahoe-LAFS 1.19+; its test vectors use 131072). The file is held in\n"
        "memory. Offline: no node is needed.\n",
        kChkUsage);
    return 0;
  }
  immutable::ChkParams params;
  std::string convergence_b64;
  bool have_convergence = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    unsigned long long v = 0;
    bool has_value = i + 1 < opts.args.size();
    if (a == "--convergence" && has_value) {
      convergence_b64 = opts.args[++i];
      have_convergence = true;
    } else if (a == "-k" && has_value && ParseUint(opts.args[++i], 256, &v) && v >= 1) {
      params.k = static_cast<std::uint32_t>(v);
    } else if (a == "-n" && has_value && ParseUint(opts.args[++i], 256, &v) && v >= 1) {
      params.n = static_cast<std::uint32_t>(v);
    } else if (a == "--segment-size" && has_value && ParseUint(opts.args[++i], 1ull << 32, &v) && v >= 1) {
      params.max_segment_size = v;
    } else {
      return UsageError(kChkUsage, "bad or incomplete argument \"" + a + "\"");
    }
  }
  if (!have_convergence) return UsageError(kChkUsage, "--convergence B64 is required");
  if (params.n < params.k) return UsageError(kChkUsage, "-n must be at least -k");
  auto convergence = crypto::Base64Decode(convergence_b64);
  if (!convergence.ok()) return Fail(opts, convergence.status().WithContext("--convergence"));
  std::string data(std::istreambuf_iterator<char>(std::cin), {});
  auto cap = immutable::ChkCapOfBytes(data, *convergence, params);
  if (!cap.ok()) return Fail(opts, cap.status());
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(*cap).c_str());
    if (auto si = caps::StorageIndexOf(*cap); si.ok()) {
      cJSON_AddStringToObject(out.get(), "storage_index", Base32Encode(*si).c_str());
    }
    cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(data.size()));
    PrintJson(out);
  } else {
    std::printf("%s\n", caps::FormatCap(*cap).c_str());
  }
  return 0;
}

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
  auto text = ReadWholeFile(key_path, 64 * 1024);
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
