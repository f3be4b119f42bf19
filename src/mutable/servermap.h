// The servermap of an SDMF file (tahoe-protocol.md 4.1): which share of
// which version each server holds, found by asking the servers in permuted
// order for their shares of the storage index and reading each share's
// first bytes. Publish and retrieve both start from one.
//
//   write mode  every server is asked and must answer (or fail); the
//               encrypted private key is fetched and accepted only if it
//               decrypts, under the cap's writekey, to a key whose hash is
//               that writekey.
//   read mode   done as soon as 2k servers answered, a version is
//               recoverable and no unrecoverable version is newer (or
//               when every server answered).
//
// A share whose header does not verify (public key not the cap's, bad
// signature, unparseable) is recorded as bad and reported to its server
// with a corruption advisory; the map is delivered only after those
// advisories were answered. Loop thread only; the completion runs on a
// later turn, exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/gbs/client.h"
#include "cairn/grid/server.h"

namespace cairn::mutable_files {

// What the map reads of each share at first; SDMF headers, the public key,
// the signature and the hash chain fit in it, and small files entirely.
inline constexpr std::uint64_t kMapReadSize = 4000;

gbs::StorageIndex ToStorageIndex(const std::string& si);

// The 107-byte SDMF header.
struct SdmfHeader {
  std::uint64_t seqnum = 0;
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t o_signature = 0;
  std::uint64_t o_encprivkey = 0;
  std::uint64_t o_eof = 0;
  std::string signed_prefix;  // bytes [0, 75): names the version
  std::string checkstring;    // bytes [0, 57)
};
Result<SdmfHeader> ParseSdmfHeader(std::string_view bytes);

// One share on one server as the map saw it.
struct SeenShare {
  std::size_t server = 0;  // index into Servermap::servers
  std::uint32_t shnum = 0;
  bool bad = false;        // failed verification (or is not SDMF)
  SdmfHeader header;       // valid unless bad
  std::string head;        // the bytes read from offset 0 (up to kMapReadSize)
  std::string old_checkstring;  // what a publish must expect there: 57 bytes, or the first 75 if bad
};

struct Servermap {
  std::vector<grid::GridServer> servers;  // in permuted order
  std::vector<bool> answered;             // gave its whole answer
  std::vector<bool> failed;               // a query failed: not used for the publish
  std::vector<std::string> failures;      // why, per server (for messages)
  std::vector<SeenShare> shares;
  std::string pubkey;                     // SPKI DER, once a share showed it
  std::string encprivkey;                 // write mode: the stored bytes that passed the check
  std::string privkey;                    // write mode: their decryption (PKCS#8 DER)
  std::size_t advisories = 0;             // corruption advisories sent

  // Good shares per version (signed prefix), share number -> servers.
  std::map<std::string, std::map<std::uint32_t, std::vector<std::size_t>>> Versions() const;
  // The newest version with at least k distinct good shares, if any.
  std::optional<std::string> BestRecoverable() const;
  // The highest seqnum of any good share (0 if none).
  std::uint64_t HighestSeqnum() const;
};

enum class MapMode { kRead, kWrite };

struct MapRequest {
  MapMode mode = MapMode::kRead;
  std::string storage_index;  // 16 bytes
  std::string fingerprint;    // 32 bytes
  std::string writekey;       // write mode: 16 bytes
};

// `progress` and `stop` are borrowed: they must outlive the completion.
void UpdateServermap(Loop& loop, std::vector<grid::GridServer> servers, MapRequest request,
                     grid::ProgressFn* progress, grid::StopFn* stop, Callback<void(Result<Servermap>)> done);

}  // namespace cairn::mutable_files
