// libFuzzer target: any bytes as a directory body (the plaintext behind a
// dir cap, which any holder of the write cap can set to anything), read as
// a writable, a read-only and an immutable directory. Whatever parses must
// pack and parse back to the same children; rebuilt from its values alone
// (every entry packed again) it must parse to the same children too; names
// are NFC (normalizing them again changes nothing); metadata re-serializes
// to itself. The same bytes as metadata JSON: what parses dumps, parses
// and dumps the same. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/nfc.h"
#include "cairn/dirnode/pyjson.h"

namespace {

using cairn::dirnode::Children;
using cairn::dirnode::DirAccess;

bool SameChildren(const Children& a, const Children& b, bool compare_ro) {
  if (a.size() != b.size()) return false;
  auto i = a.begin();
  auto j = b.begin();
  for (; i != a.end(); ++i, ++j) {
    if (i->first != j->first || i->second.rw_uri != j->second.rw_uri) return false;
    if (compare_ro && i->second.ro_uri != j->second.ro_uri) return false;
    if (cairn::dirnode::DumpPyJson(i->second.metadata) != cairn::dirnode::DumpPyJson(j->second.metadata)) return false;
  }
  return true;
}

void CheckAccess(std::string_view body, const DirAccess& access) {
  auto parsed = cairn::dirnode::ParseBody(body, access);
  if (!parsed.ok()) return;
  for (const auto& entry : parsed->children) {
    auto again = cairn::dirnode::NormalizeNfc(entry.first);
    if (!again.ok() || *again != entry.first) __builtin_trap();
    auto md = cairn::dirnode::ParsePyJson(cairn::dirnode::DumpPyJson(entry.second.metadata));
    if (!md.ok() || cairn::dirnode::DumpPyJson(*md) != cairn::dirnode::DumpPyJson(entry.second.metadata)) {
      __builtin_trap();
    }
  }
  auto kept = cairn::dirnode::PackBody(parsed->children, access);
  if (!kept.ok()) __builtin_trap();  // every child still has its own bytes
  auto reread = cairn::dirnode::ParseBody(*kept, access);
  if (!reread.ok() || !SameChildren(parsed->children, reread->children, true)) __builtin_trap();
  // Rebuilt from the values: the ro slot loses a "ro." (and, immutable,
  // an "imm.") prefix as Tahoe strips it, so ro caps are not compared.
  if (access.writekey.empty() && !access.immutable) return;  // a read-only dir cannot be written
  Children rebuilt = parsed->children;
  for (auto& entry : rebuilt) entry.second.packed.clear();
  auto packed = cairn::dirnode::PackBody(rebuilt, access);
  if (!packed.ok()) __builtin_trap();
  auto again = cairn::dirnode::ParseBody(*packed, access);
  if (!again.ok() || !SameChildren(parsed->children, again->children, false)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  DirAccess writable;
  writable.writekey = std::string("0123456789abcdef");
  DirAccess read_only;
  DirAccess immutable;
  immutable.immutable = true;
  CheckAccess(bytes, writable);
  CheckAccess(bytes, read_only);
  CheckAccess(bytes, immutable);
  auto json = cairn::dirnode::ParsePyJson(bytes);
  if (json.ok()) {
    std::string once = cairn::dirnode::DumpPyJson(*json);
    auto back = cairn::dirnode::ParsePyJson(once);
    if (!back.ok() || cairn::dirnode::DumpPyJson(*back) != once) __builtin_trap();
  }
  return 0;
}
