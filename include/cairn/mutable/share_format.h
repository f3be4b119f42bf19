// The mutable share formats behind one interface (tahoe-protocol.md 3.6-3.8):
// what the servermap update, publish and retrieve need of a share, whatever
// its version byte. SDMF (version 0, one segment) and MDMF (version 1,
// segments of about 128 KiB) implement it; the operations never name either.
//
//   ParseHeader   a share's first bytes: version, seqnum, root hash, IV,
//                 k, N, segment size, data length, and where each part of
//                 the share lies (from its offsets table); the checkstring
//                 and the signed prefix. The one parser of each header.
//   ParseShare    a whole share: the header and every part (verification
//                 key, signature, share hash chain, block hash tree, salts
//                 and blocks per segment, encrypted private key).
//   VerifyShare   a parsed share against the cap's fingerprint: public key,
//                 signature, every block, the block hash tree, the share
//                 hash chain up to the signed root.
//   Decode        the plaintext from k verified shares of one version.
//   NewEncoder    building a new version, in steps the caller may spread
//                 over threads, with the RSA signature made in between.
//
// The formats are stateless singletons: any thread. Values they return are
// self-contained: one thread at a time each.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/status.h"

namespace cairn::mutable_files {

// Tahoe's rule for a share found bad: its first 75 bytes (whatever its
// format) are what a publish's test vector must then expect there.
inline constexpr std::size_t kBadShareCheckstringSize = 75;

// Bytes [offset, offset + length) of a share.
struct ByteRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t end() const { return offset + length; }
};

// What a share's header says. Every range lies inside [0, eof) and the
// ranges are in the order the format gives them.
struct ShareHeader {
  caps::MutableFormat format = caps::MutableFormat::kSdmf;
  std::uint64_t seqnum = 0;
  std::string root_hash;  // 32 bytes: the share hash tree's root
  std::string iv;         // SDMF: the 16-byte IV; MDMF: empty (each segment has a salt)
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t segment_size = 0;
  std::uint64_t data_length = 0;
  std::uint64_t num_segments = 0;  // SDMF: 1 (also when empty); MDMF: ceil(length / segment size)
  std::string signed_prefix;       // names the version; what the signature covers
  std::string checkstring;         // what a publish's test vector expects
  ByteRange verification_key;      // the public key, SPKI DER
  ByteRange signature;
  ByteRange share_hash_chain;
  ByteRange share_data;            // blocks (MDMF: salt ‖ block per segment)
  ByteRange block_hash_tree;
  ByteRange encprivkey;
  std::uint64_t eof = 0;
};

// A whole share, parsed (not yet verified).
struct MutableShare {
  ShareHeader header;
  std::string verification_key;
  std::string signature;
  std::map<std::size_t, std::string> share_hash_chain;  // node index -> hash
  std::vector<std::string> block_hash_tree;             // every node, flattened
  std::vector<std::string> salts;                       // per segment (SDMF: none; the IV is in the header)
  std::vector<std::string> blocks;                      // per segment
  std::string encprivkey;
};

// What a new version is built from. `iv` (SDMF only): the 16-byte IV, or
// empty for a random one; MDMF draws a fresh salt per segment.
struct EncodeParams {
  std::string_view readkey;
  std::string_view pubkey_spki_der;
  std::string encprivkey;  // as stored: CryptPrivateKey of the exact PKCS#8 bytes
  std::string_view plaintext;
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t seqnum = 0;
  std::string iv;
};

// A new version being built, after the blocks were encoded: HashBlocks for
// every share (disjoint ranges may run on several threads at once), then
// Seal (on one thread), then sign signed_prefix() and LayOut (disjoint
// ranges at once), then SetSignature on each share.
class ShareEncoder {
 public:
  virtual ~ShareEncoder() = default;
  virtual std::uint32_t n() const = 0;
  // Hashes the blocks of shares [from, to).
  virtual void HashBlocks(std::uint32_t from, std::uint32_t to) = 0;
  // The share hash tree, each share's chain, the signed prefix.
  virtual void Seal() = 0;
  // REQUIRES: Seal. The bytes to sign.
  virtual const std::string& signed_prefix() const = 0;
  // REQUIRES: Seal. Shares [from, to) into (*out)[from, to) (out has n()
  // entries), each with a zero signature.
  virtual void LayOut(std::uint32_t from, std::uint32_t to, std::vector<std::string>* out) const = 0;
  // Writes the real signature into a share LayOut made. InvalidArgument
  // unless it is a 256-byte signature and the share holds its place.
  virtual Status SetSignature(std::string& share, std::string_view signature) const = 0;
};

class ShareFormat {
 public:
  virtual ~ShareFormat() = default;
  virtual caps::MutableFormat format() const = 0;
  virtual const char* name() const = 0;  // "SDMF", "MDMF"
  // The bytes a header needs: ParseHeader fails on fewer.
  virtual std::size_t header_size() const = 0;
  virtual std::size_t signed_prefix_size() const = 0;
  virtual std::size_t checkstring_size() const = 0;

  // Parses the header at the start of `bytes` (which may end before the
  // share does). InvalidArgument, naming the field, on a short or garbled
  // header or another version byte.
  virtual Result<ShareHeader> ParseHeader(std::string_view bytes) const = 0;
  // Parses a whole share (bytes [0, eof) at least). InvalidArgument as
  // ParseHeader, or when a part lies past the end or is ragged.
  virtual Result<MutableShare> ParseShare(std::string_view bytes) const = 0;
  // Checks share `shnum` against the file's public-key fingerprint.
  // Integrity on any mismatch.
  virtual Status VerifyShare(const MutableShare& share, std::uint32_t shnum, std::string_view fingerprint) const = 0;
  // The plaintext from k verified shares of one version (share number ->
  // share). InvalidArgument if fewer than k or of different versions.
  virtual Result<std::string> Decode(const std::map<std::uint32_t, const MutableShare*>& shares,
                                     std::string_view readkey) const = 0;
  // Encrypts and erasure-codes `params.plaintext`. InvalidArgument unless
  // 1 <= k <= N <= 255.
  virtual Result<std::unique_ptr<ShareEncoder>> NewEncoder(EncodeParams params) const = 0;
};

const ShareFormat& SdmfFormat();
const ShareFormat& MdmfFormat();
// The format a cap names.
const ShareFormat& FormatFor(caps::MutableFormat format);
// The format of a share, by its version byte; InvalidArgument for another.
Result<const ShareFormat*> FormatOfShare(std::string_view bytes);
// The seqnum in a checkstring or signed prefix of either format (bytes
// 1-8; of a shorter string, the bytes it has): for messages.
std::uint64_t SeqnumOfCheckstring(std::string_view checkstring);

}  // namespace cairn::mutable_files
