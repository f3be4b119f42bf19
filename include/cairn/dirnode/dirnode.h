// A Tahoe-LAFS directory's body (tahoe-dirnodes.md A.2-A.6): what the file
// behind a URI:DIR2*: cap holds, read and written byte-compatibly.
//
//   body  = entry*   entry = ns(ns(name) ns(ro_slot) ns(rw_slot) ns(metadata))
//
// Names are UTF-8 in NFC, entries sorted by name bytes (code point order).
// The rw slot holds the child's write cap encrypted to the directory's
// writekey (salt = H(rw cap), AES-CTR, Tahoe's own MAC); immutable
// directories hold an empty one, and a read-only directory never decrypts
// it, so a read cap never reveals a child's write cap (transitive
// read-only). Each parsed child keeps its entry's original bytes, and
// packing reuses them for every child that was not changed, as Tahoe does.
// Pure values and functions: any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/caps/cap.h"
#include "cairn/core/status.h"
#include "cairn/dirnode/pyjson.h"

namespace cairn::dirnode {

enum class NodeType { kFile, kDirectory, kUnknown };

struct Child {
  std::string ro_uri;   // the ro slot as stored (trailing spaces stripped); may be empty
  std::string rw_uri;   // the decrypted write cap; empty if none or not decrypted
  PyJson metadata = PyJson::Object();
  // The entry's bytes as read (the whole netstring); empty once the child
  // was changed, so that packing builds it again.
  std::string packed;
};

// Children by NFC name; std::string order is byte order, which for UTF-8
// is code point order, Tahoe's sort order.
using Children = std::map<std::string, Child>;

// How a directory may be read and written, from its cap.
struct DirAccess {
  bool immutable = false;  // DIR2-CHK / DIR2-LIT: rw slots must be empty
  std::string writekey;    // 16 bytes for a writable mutable dir, else empty
};
// From a directory cap (cap.directory): writable (DIR2, DIR2-MDMF),
// read-only (-RO), immutable (CHK, LIT). BadCap for verify caps and
// non-directory caps.
Result<DirAccess> AccessOf(const caps::Cap& dircap);

struct Parsed {
  Children children;
  std::size_t dropped = 0;  // children refused as Tahoe does (a mutable cap in an immutable dir)
};

// Reads a body. Integrity (the whole directory is unreadable, as in Tahoe)
// for a bad netstring, a name that is not UTF-8, metadata that is not a
// JSON object, or a non-empty rw slot in an immutable directory.
Result<Parsed> ParseBody(std::string_view body, const DirAccess& access);

// Writes a body: each child's `packed` bytes if it has them, else a new
// entry. REQUIRES: names are NFC. InvalidArgument for a mutable directory
// without its writekey, or a child an immutable directory cannot hold.
Result<std::string> PackBody(const Children& children, const DirAccess& access);

// The rw slot of `rw_cap` in a directory of `writekey` (48 + its length
// bytes), and back. Decrypt returns "" for a slot shorter than 48 bytes.
std::string EncryptRwCap(std::string_view writekey, std::string_view rw_cap);
std::string DecryptRwSlot(std::string_view writekey, std::string_view slot);

// The ro slot stored for a read cap: "ro." always removed, "imm." removed
// in immutable directories (strip_prefix_for_ro).
std::string RoSlotOf(std::string_view ro_uri, bool immutable);

// What a child is, from its caps: a file (a known file cap), a directory (a
// known directory cap) or unknown (kept as it is).
NodeType TypeOf(const Child& child);
// A child's ro_uri as Tahoe presents it: an unknown cap gets "ro." (mutable
// dir) or "imm." (immutable dir) unless it already has one of them.
std::string PresentedRoUri(const Child& child, bool immutable_dir);
// True if `child` may live in an immutable directory: CHK/LIT files,
// DIR2-CHK/LIT directories, unknown read-only caps.
bool DeepImmutable(const Child& child);

// Tahoe's update_metadata (A.6): `new_md` null keeps the old user keys,
// else replaces them (its "tahoe" key ignored); "tahoe" is then
// {"linkcrtime": old linkcrtime, else old ctime, else now, "linkmotime": now}
// and comes last.
PyJson UpdateMetadata(const PyJson* old_md, const PyJson* new_md, double now);

// ---- changes (each re-appliable: a retry after another writer's change
// runs it again on the newer children) ----------------------------------

// Sets `name` to the caps given (a read cap, a write cap or both; an
// unknown cap is kept as given), with metadata by UpdateMetadata. Conflict
// if `name` exists and `overwrite` is false; with `only_files`, Conflict if
// it is a directory (tahoe mv's replace=only-files).
Status SetChild(Children& children, const std::string& nfc_name, std::string rw_uri, std::string ro_uri,
                const PyJson* metadata, bool overwrite, bool only_files, double now);
// Removes `name`. NotFound if absent.
Status DeleteChild(Children& children, const std::string& nfc_name);

// The read cap of a cap string if it is a known write cap (SSK -> SSK-RO,
// DIR2 -> DIR2-RO), else the string itself.
std::string ReadCapOf(const std::string& cap);

}  // namespace cairn::dirnode
