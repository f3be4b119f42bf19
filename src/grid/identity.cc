// Server identities from NURLs and announcements (cairn/grid/identity.h).
// Pure functions: any thread.
#include "cairn/grid/identity.h"

#include "cairn/core/base32.h"
#include "cairn/crypto/hash.h"
#include "cairn/gbs/nurl.h"

namespace cairn::grid {

const char* IdentityKindName(IdentityKind kind) { return kind == IdentityKind::kAnnounced ? "announced" : "cairn"; }

Result<ServerIdentity> CairnIdentity(std::string_view nurl) {
  CAIRN_TRY_ASSIGN(gbs::Nurl parsed, gbs::ParseNurl(nurl));
  CAIRN_TRY_ASSIGN(std::string seed, gbs::ServerSeed(parsed));
  return ServerIdentity{IdentityKind::kCairn, seed, seed};
}

Result<std::string> TubIdOfFurl(std::string_view furl) {
  // Only the part before '@' is ever quoted: the rest holds the swissnum.
  std::string_view rest = furl;
  if (rest.substr(0, 5) == "pb://") {
    rest.remove_prefix(5);
  } else if (rest.substr(0, 9) == "pb+tor://") {
    rest.remove_prefix(9);
  } else {
    return Status::InvalidArgument("the anonymous-storage-FURL does not start with pb://");
  }
  std::size_t at = rest.find('@');
  if (at == std::string_view::npos)
    return Status::InvalidArgument("the anonymous-storage-FURL has no '@' after its tub id");
  std::string_view tub = rest.substr(0, at);
  if (tub.size() > 64) return Status::InvalidArgument("the anonymous-storage-FURL's tub id is too long");
  auto raw = Base32Decode(tub);
  if (!raw.ok() || raw->size() != 20) {
    return Status::InvalidArgument("the anonymous-storage-FURL's tub id \"" + std::string(tub) +
                                   "\" is not base32 of 20 bytes");
  }
  return *raw;
}

Result<ServerIdentity> AnnouncedIdentity(std::string_view furl, std::string_view permutation_seed_base32,
                                         std::string_view server_id) {
  if (furl.empty()) {
    return Status::InvalidArgument(
        "the announcement has no anonymous-storage-FURL (a Tahoe-LAFS client takes the server's lease and "
        "write-enabler seed from its tub id)");
  }
  ServerIdentity id;
  id.kind = IdentityKind::kAnnounced;
  CAIRN_TRY_ASSIGN(id.tub_id, TubIdOfFurl(furl));
  if (!permutation_seed_base32.empty()) {
    auto seed = Base32Decode(permutation_seed_base32);
    if (!seed.ok() || seed->empty()) {
      return Status::InvalidArgument("permutation-seed-base32 \"" + std::string(permutation_seed_base32.substr(0, 80)) +
                                     "\" is not base32");
    }
    id.permutation_seed = *seed;
  } else if (server_id.substr(0, 3) == "v0-" && Base32Decode(server_id.substr(3)).ok()) {
    id.permutation_seed = *Base32Decode(server_id.substr(3));
  } else if (!server_id.empty()) {
    id.permutation_seed = crypto::Sha256(server_id);
  } else {
    return Status::InvalidArgument(
        "the announcement has no permutation-seed-base32 and no server id to derive it from");
  }
  return id;
}

}  // namespace cairn::grid
