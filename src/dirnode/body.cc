// Directory bodies: parse, pack, the rw slot's encryption, child types and
// Tahoe's metadata rules (see include/cairn/dirnode/dirnode.h). Pure
// functions: any thread.
#include <string>

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/nfc.h"

namespace cairn::dirnode {
namespace {

// Tahoe's hashutil tags for the rw slot (dirnodes: _encrypt_rw_uri).
constexpr std::string_view kRwSaltTag = "allmydata_dirnode_child_rwcap_to_salt_v1";
constexpr std::string_view kRwKeyTag = "allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1";
constexpr std::size_t kSaltSize = 16;
constexpr std::size_t kMacSize = 32;

// One netstring at *pos of `s`: its data, and *pos moved past the ','.
// The length is decimal ASCII without leading zeros.
Result<std::string_view> Netstring(std::string_view s, std::size_t* pos, const char* what) {
  std::size_t colon = s.find(':', *pos);
  auto bad = [what, pos](const char* why) {
    return Status::Integrity(std::string("directory body: ") + what + " at byte " + std::to_string(*pos) + ": " + why);
  };
  if (colon == std::string_view::npos || colon == *pos || colon - *pos > 19) return bad("no netstring length");
  std::uint64_t len = 0;
  for (std::size_t i = *pos; i < colon; ++i) {
    if (s[i] < '0' || s[i] > '9') return bad("a netstring length that is not decimal");
    len = len * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  if (s[*pos] == '0' && colon - *pos > 1) return bad("a netstring length with a leading zero");
  if (len > s.size() - colon - 1 || colon + 1 + len >= s.size() || s[colon + 1 + len] != ',') {
    return bad("a netstring that overruns the body or lacks its ','");
  }
  std::string_view data = s.substr(colon + 1, static_cast<std::size_t>(len));
  *pos = colon + 2 + static_cast<std::size_t>(len);
  return data;
}

std::string Ns(std::string_view data) { return std::to_string(data.size()) + ":" + std::string(data) + ","; }

std::string RstripSpaces(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0 && s[end - 1] == ' ') --end;
  return std::string(s.substr(0, end));
}

std::string CapKey(std::string_view writekey, std::string_view salt) {
  return crypto::TaggedPairHash(kRwKeyTag, salt, writekey, 16);
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

Result<DirAccess> AccessOf(const caps::Cap& dircap) {
  if (!dircap.directory) return Status::BadCap("not a directory cap");
  DirAccess a;
  switch (dircap.kind) {
    case caps::CapKind::kMutableWrite: a.writekey = dircap.key; return a;
    case caps::CapKind::kMutableRead: return a;
    case caps::CapKind::kChk:
    case caps::CapKind::kLiteral: a.immutable = true; return a;
    case caps::CapKind::kChkVerifier:
    case caps::CapKind::kMutableVerifier: break;
  }
  return Status::BadCap("a directory's verify cap cannot read it");
}

std::string EncryptRwCap(std::string_view writekey, std::string_view rw_cap) {
  std::string salt = crypto::TaggedHash(kRwSaltTag, rw_cap, kSaltSize);
  std::string key = CapKey(writekey, salt);
  std::string ct = crypto::AesCtrTransform(key, rw_cap).value();
  // Tahoe's MAC: the 16-byte key XORed with ipad/opad unpadded (not RFC 2104).
  std::string ikey = key, okey = key;
  for (char& c : ikey) c = static_cast<char>(c ^ 0x36);
  for (char& c : okey) c = static_cast<char>(c ^ 0x5c);
  std::string mac = crypto::Sha256(okey + crypto::Sha256(ikey + salt + ct));
  return salt + ct + mac;
}

std::string DecryptRwSlot(std::string_view writekey, std::string_view slot) {
  if (slot.size() < kSaltSize + kMacSize) return "";
  std::string_view salt = slot.substr(0, kSaltSize);
  std::string_view ct = slot.substr(kSaltSize, slot.size() - kSaltSize - kMacSize);
  // Readers since Tahoe 1.3.0 do not check the MAC; neither does this one.
  return crypto::AesCtrTransform(CapKey(writekey, salt), ct).value();
}

std::string RoSlotOf(std::string_view ro_uri, bool immutable) {
  if (StartsWith(ro_uri, "ro.")) return std::string(ro_uri.substr(3));
  if (immutable && StartsWith(ro_uri, "imm.")) return std::string(ro_uri.substr(4));
  return std::string(ro_uri);
}

NodeType TypeOf(const Child& child) {
  const std::string& text = !child.rw_uri.empty() ? child.rw_uri : child.ro_uri;
  auto cap = caps::ParseCap(text);
  if (!cap.ok()) return NodeType::kUnknown;
  if (cap->kind == caps::CapKind::kChkVerifier || cap->kind == caps::CapKind::kMutableVerifier) {
    return NodeType::kUnknown;
  }
  return cap->directory ? NodeType::kDirectory : NodeType::kFile;
}

std::string PresentedRoUri(const Child& child, bool immutable_dir) {
  if (TypeOf(child) != NodeType::kUnknown || child.ro_uri.empty()) return child.ro_uri;
  if (immutable_dir) {
    if (StartsWith(child.ro_uri, "imm.")) return child.ro_uri;
    return "imm." + RoSlotOf(child.ro_uri, false);
  }
  if (StartsWith(child.ro_uri, "ro.") || StartsWith(child.ro_uri, "imm.")) return child.ro_uri;
  return "ro." + child.ro_uri;
}

bool DeepImmutable(const Child& child) {
  if (!child.rw_uri.empty()) return false;
  auto cap = caps::ParseCap(child.ro_uri);
  if (!cap.ok()) return true;  // an unknown read-only cap
  return cap->kind == caps::CapKind::kChk || cap->kind == caps::CapKind::kLiteral;
}

std::string ReadCapOf(const std::string& text) {
  auto cap = caps::ParseCap(text);
  if (!cap.ok()) return text;
  auto ro = caps::ToReadCap(*cap);
  if (!ro.ok()) return text;
  return caps::FormatCap(*ro);
}

Result<Parsed> ParseBody(std::string_view body, const DirAccess& access) {
  Parsed out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t start = pos;
    CAIRN_TRY_ASSIGN(std::string_view entry, Netstring(body, &pos, "an entry"));
    std::size_t at = 0;
    CAIRN_TRY_ASSIGN(std::string_view name, Netstring(entry, &at, "a name"));
    CAIRN_TRY_ASSIGN(std::string_view ro, Netstring(entry, &at, "a ro slot"));
    CAIRN_TRY_ASSIGN(std::string_view rw, Netstring(entry, &at, "a rw slot"));
    CAIRN_TRY_ASSIGN(std::string_view md, Netstring(entry, &at, "the metadata"));
    auto nfc = NormalizeNfc(name);
    if (!nfc.ok()) return Status::Integrity("directory body: a child name is not UTF-8");
    Child child;
    child.ro_uri = RstripSpaces(ro);
    if (access.immutable) {
      if (!rw.empty()) {
        return Status::Integrity("directory body: the rwcapdata field of a dirnode in an immutable directory was not empty");
      }
    } else if (!access.writekey.empty()) {
      child.rw_uri = RstripSpaces(DecryptRwSlot(access.writekey, rw));
    }
    auto metadata = ParsePyJson(md);
    if (!metadata.ok()) return Status::Integrity("directory body: child \"" + *nfc + "\": " + std::string(metadata.status().message()));
    if (metadata->kind != PyJson::Kind::kObject) {
      return Status::Integrity("directory body: child \"" + *nfc + "\": metadata is not a JSON object");
    }
    child.metadata = std::move(*metadata);
    child.packed = std::string(body.substr(start, pos - start));
    // Tahoe drops (and logs) a child its directory cannot hold.
    if (access.immutable && !DeepImmutable(child)) {
      ++out.dropped;
      continue;
    }
    out.children[*nfc] = std::move(child);
  }
  return out;
}

Result<std::string> PackBody(const Children& children, const DirAccess& access) {
  std::string body;
  for (const auto& [name, child] : children) {
    if (!child.packed.empty()) {
      body += child.packed;
      continue;
    }
    std::string rw_slot;
    if (access.immutable) {
      if (!DeepImmutable(child)) return Status::InvalidArgument("child \"" + name + "\" is not immutable: an immutable directory cannot hold it");
    } else {
      if (access.writekey.empty()) return Status::InvalidArgument("a read-only directory cannot be written");
      rw_slot = EncryptRwCap(access.writekey, child.rw_uri);
    }
    std::string entry = Ns(name) + Ns(RoSlotOf(child.ro_uri, access.immutable)) + Ns(rw_slot) +
                        Ns(DumpPyJson(child.metadata));
    body += Ns(entry);
  }
  return body;
}

PyJson UpdateMetadata(const PyJson* old_md, const PyJson* new_md, double now) {
  PyJson md = PyJson::Object();
  if (new_md) {
    md = *new_md;
    md.Erase("tahoe");
  } else if (old_md) {
    md = *old_md;
    md.Erase("tahoe");
  }
  PyJson crtime = PyJson::Float(now);
  if (old_md) {
    const PyJson* tahoe = old_md->Find("tahoe");
    const PyJson* old_cr = tahoe && tahoe->kind == PyJson::Kind::kObject ? tahoe->Find("linkcrtime") : nullptr;
    if (old_cr) {
      crtime = *old_cr;
    } else if (const PyJson* ctime = old_md->Find("ctime")) {
      crtime = *ctime;
    }
  }
  PyJson tahoe = PyJson::Object();
  tahoe.Set("linkcrtime", std::move(crtime));
  tahoe.Set("linkmotime", PyJson::Float(now));
  md.Set("tahoe", std::move(tahoe));
  return md;
}

Status SetChild(Children& children, const std::string& nfc_name, std::string rw_uri, std::string ro_uri,
                const PyJson* metadata, bool overwrite, bool only_files, double now) {
  auto it = children.find(nfc_name);
  if (it != children.end()) {
    if (!overwrite) return Status::Conflict("\"" + nfc_name + "\" exists already");
    if (only_files && TypeOf(it->second) == NodeType::kDirectory) {
      return Status::Conflict("\"" + nfc_name + "\" is a directory: it is not replaced");
    }
  }
  if (ro_uri.empty() && !rw_uri.empty()) {
    ro_uri = ReadCapOf(rw_uri);
    // An unknown write cap cannot be reduced to a read cap (MustNotBeUnknownRWError).
    if (ro_uri == rw_uri && !caps::ParseCap(rw_uri).ok()) {
      return Status::InvalidArgument("an unknown cap given as a write cap cannot be stored without its read cap");
    }
    if (ro_uri == rw_uri) rw_uri.clear();  // a read cap or an immutable one: nothing to hide
  }
  Child child;
  child.metadata = UpdateMetadata(it != children.end() ? &it->second.metadata : nullptr, metadata, now);
  child.rw_uri = std::move(rw_uri);
  child.ro_uri = std::move(ro_uri);
  children[nfc_name] = std::move(child);
  return Status();
}

Status DeleteChild(Children& children, const std::string& nfc_name) {
  if (children.erase(nfc_name) == 0) return Status::NotFound("no child named \"" + nfc_name + "\"");
  return Status();
}

}  // namespace cairn::dirnode
